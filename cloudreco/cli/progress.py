"""The progress bar of the user's bulk commands (add, export): count, rate, time left,
failures so far, on standard error."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

T = TypeVar("T")


class RateColumn(ProgressColumn):
    """Images a second, over the last half minute."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-.- images/s" if speed is None else f"{speed:.1f} images/s")


def progress() -> Progress:
    """A bar whose tasks carry a ``failed`` field."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    RateColumn(), TimeRemainingColumn(), TextColumn("{task.fields[failed]} failed"),
                    console=Console(stderr=True))


async def each(items: list[T], jobs: int, work: Callable[[T], Awaitable[None]],
               description: str, failures: Callable[[], int]) -> None:
    """Run ``work`` on every item, ``jobs`` at a time, under a progress bar that shows
    ``failures()`` as it goes."""
    with progress() as bar:
        task = bar.add_task(description, total=len(items), failed=0)
        pending = iter(items)

        async def worker() -> None:
            for item in pending:  # shared: each item is taken once
                await work(item)
                bar.update(task, advance=1, failed=failures())

        async with asyncio.TaskGroup() as group:
            for _ in range(min(jobs, len(items))):
                group.create_task(worker())
