"""``cloudreco add``: import image files into a channel, several uploads at once, with a
progress bar; resumable, as identifiers already in the channel are skipped; failures summed
up by result code at the end."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import click

from cloudreco.cli import connect
from cloudreco.cli.progress import each
from cloudreco.cli.reasons import Failed, list_by_reason
from cloudreco.cli.sources import identifier_for, image_files
from cloudreco.client import ApiError, AsyncClient, ResultCode


@dataclass
class Report:
    """What an import did: images added (with their levels where known), files skipped,
    failures by reason."""

    added: int = 0
    levels: Counter[int] = field(default_factory=Counter)
    skipped: int = 0
    failed: Failed[Path] = field(default_factory=Failed)


@click.command()
@click.argument("channel")
@click.argument("paths", nargs=-1, required=True, metavar="DIR|FILES...",
                type=click.Path(exists=True, path_type=Path))
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=4, show_default=True,
              help="uploads at once")
@click.option("--retries", type=click.IntRange(0), default=3, show_default=True,
              help="retries of an upload answered 20015 system busy, with backoff")
@connect.connection_options
def add(channel: str, paths: tuple[Path, ...], jobs: int, retries: int, url: str | None,
        username: str | None, secretkey: str | None) -> None:
    """Add image files to a channel.

    Adds the images of DIR (its .jpg, .jpeg and .png files) or FILES to CHANNEL. Each
    image's identifier is its file name without the extension, fitted to the identifier
    rule (see README). Identifiers already in CHANNEL are skipped, so a second run adds
    only what the first did not. Exit status 1 if any file failed.
    """
    files = image_files(paths)
    if not files:
        raise click.UsageError("no .jpg, .jpeg or .png files in " + ", ".join(map(str, paths)))

    async def work() -> int:
        async with connect.client(url, username, secretkey, retries=retries,
                                  connections=jobs) as api:
            report = await import_files(api, channel, files, jobs)
        summarise(channel, len(files), report)
        return 1 if report.failed.count else 0

    connect.run(work())


async def import_files(api: AsyncClient, channel: str, files: list[Path], jobs: int
                       ) -> Report:
    """Upload the files whose identifiers the channel lacks, ``jobs`` at a time."""
    report = Report()
    existing = {image.identifier async for image in api.iter_images(channel)}
    named: dict[str, Path] = {}
    for path in files:
        identifier = identifier_for(path)
        if identifier in named:  # the first file of an identifier has it, run after run
            report.failed[f"{ResultCode.IDENTIFIER_TAKEN} {ResultCode.IDENTIFIER_TAKEN.message}"
                          f" (by another file of this import)"].append(path)
        else:
            named[identifier] = path
    todo = {i: path for i, path in named.items() if i not in existing}
    report.skipped = len(named) - len(todo)
    if todo:
        async def upload(item: tuple[str, Path]) -> None:
            await _upload(api, channel, *item, report)

        await each(list(todo.items()), jobs, upload, f"adding to {channel}",
                   lambda: report.failed.count)
    return report


async def _upload(api: AsyncClient, channel: str, identifier: str, path: Path,
                  report: Report) -> None:
    try:
        added = await api.add_image(channel, identifier, path)
    except ApiError as e:
        if e.code != ResultCode.IDENTIFIER_TAKEN:
            report.failed[str(e)].append(path)
        elif e.attempts > 1:  # an attempt answered 20015 after the matcher had stored it
            report.added += 1
        else:  # added by someone else since the channel was read
            report.skipped += 1
    except (aiohttp.ClientError, TimeoutError) as e:  # before OSError: some are both
        report.failed[f"no answer ({type(e).__name__})"].append(path)
    except OSError as e:
        report.failed[f"file not readable ({e.strerror})"].append(path)
    else:
        report.added += 1
        report.levels[added.level] += 1


def summarise(channel: str, files: int, report: Report) -> None:
    """The import's outcome on standard output: counts, levels, failures by reason."""
    added = report.added
    if not added and not report.failed.count:
        click.echo(f"{channel}: nothing to add; all {files} images are already there")
        return
    click.echo(f"{channel}: {added} added, {report.skipped} already there, "
               f"{report.failed.count} failed, of {files} files")
    if report.levels:
        click.echo("added by level: " + ", ".join(f"{level}: {report.levels[level]}"
                                                  for level in sorted(report.levels)))
    list_by_reason(report.failed, "failed, ")
