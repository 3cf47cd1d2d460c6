"""How the bulk commands (add, export, reindex) end: what failed, grouped by reason."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TypeVar

import click

T = TypeVar("T")

SHOWN_PER_REASON = 10  # items listed under each reason; the rest are counted


def list_by_reason(reasons: Mapping[str, Sequence[object]], prefix: str = "") -> None:
    """Each reason, sorted, with its count and up to ``SHOWN_PER_REASON`` of its items."""
    for reason, items in sorted(reasons.items()):
        click.echo(f"{prefix}{reason}: {len(items)}")
        for item in items[:SHOWN_PER_REASON]:
            click.echo(f"  {item}")
        if len(items) > SHOWN_PER_REASON:
            click.echo(f"  and {len(items) - SHOWN_PER_REASON} more")


class Failed(defaultdict[str, list[T]]):
    """Items that failed, by reason: ``failed[reason].append(item)``."""

    def __init__(self) -> None:
        super().__init__(list)

    @property
    def count(self) -> int:
        return sum(len(items) for items in self.values())
