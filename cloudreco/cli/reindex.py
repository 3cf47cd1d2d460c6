"""``cloudreco reindex``: the operator's command that rebuilds stored features from the kept
originals while the stack serves (``matcher/reindex.py``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import asyncpg
import click
import cv2
from threadpoolctl import threadpool_limits

from cloudreco.cli.operate import operator_settings, with_pool
from cloudreco.cli.progress import each
from cloudreco.cli.reasons import Failed, list_by_reason
from gateway.catalog import channel_named
from matcher.catalog import features_older_than, image_names
from matcher.extractor import lower_priority
from matcher.reindex import Reindexer
from shared.codes import ResultCode
from shared.settings import Settings


@dataclass
class Report:
    """What a reindex did: images rebuilt (and how many changed level), gone meanwhile,
    without an original, left unchanged by reason."""

    before: dt.datetime
    rebuilt: int = 0
    level_changed: int = 0
    gone: int = 0
    without: list[str] = field(default_factory=list)
    failed: Failed[str] = field(default_factory=Failed)


@click.command()
@click.option("--channel", help="only this channel's images (default: every channel)")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=1, show_default=True,
              help="images extracted at once, one core each, at CLOUDRECO_ADD_NICE")
@click.option("--before", metavar="TIME",
              help="only images whose features were extracted before TIME (ISO 8601, UTC "
                   "unless it says; default: when the command starts)")
def reindex(channel: str | None, jobs: int, before: str | None) -> None:
    """Rebuild stored features from the kept originals.

    Extracts every image (of CHANNEL with --channel) again from its original with this
    installation's recognition pipeline and stores the result; each matcher replica swaps
    the image's index entries as it follows its shard's change log, while the stack serves.
    Run it after a pipeline change, with matchers that know it. An interrupted run goes on
    where it stopped with the --before it printed. Images added before originals were kept
    are listed and left unchanged. Exit status 1 if any image was not rebuilt.
    """
    since = None if before is None else _instant(before)
    settings = operator_settings()
    # One core per job, below FindImage's priority as AddImage's extraction is: the matchers
    # may share the machine. Threads started after this inherit the priority.
    lower_priority(settings.add_nice)
    cv2.setNumThreads(1)
    with threadpool_limits(1):
        report = with_pool(lambda pool: rebuild(pool, settings, channel, since, jobs),
                           settings)
    summarise(report)
    raise SystemExit(1 if report.failed.count or report.without else 0)


def _instant(text: str) -> dt.datetime:
    try:
        instant = dt.datetime.fromisoformat(text)
    except ValueError as e:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 time",
                                 param_hint="--before") from e
    return instant if instant.tzinfo else instant.replace(tzinfo=dt.UTC)


async def rebuild(pool: asyncpg.Pool, settings: Settings, channel: str | None,
                  before: dt.datetime | None, jobs: int) -> Report:
    """Rebuild the images of ``channel`` (or all) whose features are older than ``before``
    (default: now, by the database's clock), ``jobs`` at a time."""
    channel_id = None
    if channel is not None:
        named = await channel_named(pool, channel)
        if named is None:
            raise click.UsageError(f"no channel {channel!r}")
        channel_id = named.id
    report = Report(before or await pool.fetchval("SELECT now()"))
    ids, without = await features_older_than(pool, report.before, channel_id)
    report.without = [f"{c}/{i}" for c, i in without]
    click.echo(f"rebuilding the features of {len(ids)} images extracted before "
               f"{report.before.isoformat()}; if interrupted, run again with --before "
               f"{report.before.isoformat()}", err=True)
    reindexer = Reindexer(pool, settings, jobs)
    refused: dict[int, ResultCode] = {}

    async def one(image_id: int) -> None:
        outcome = await reindexer.rebuild(image_id)
        if outcome.gone:
            report.gone += 1
        elif outcome.code != ResultCode.SUCCESS:
            refused[image_id] = outcome.code
        else:
            report.rebuilt += 1
            report.level_changed += outcome.level_changed

    try:
        if ids:
            await each(ids, jobs, one, "rebuilding features", lambda: len(refused))
    finally:
        reindexer.close()
    names = await image_names(pool, list(refused))
    for image_id, code in refused.items():
        report.failed[f"{int(code)} {code.message}"].append(names.get(image_id, f"#{image_id}"))
    return report


def summarise(report: Report) -> None:
    """The outcome on standard output: counts, then what was left unchanged and why."""
    click.echo(f"{report.rebuilt} rebuilt ({report.level_changed} changed level), "
               f"{report.gone} removed meanwhile, {len(report.without)} without an original, "
               f"{report.failed.count} left unchanged")
    reasons = {f"{reason} (left unchanged)": names for reason, names in report.failed.items()}
    if report.without:
        reasons[f"{int(ResultCode.NO_ORIGINAL)} {ResultCode.NO_ORIGINAL.message} (added "
                "before originals were kept; left unchanged)"] = report.without
    list_by_reason(reasons)
