"""The user's commands that read a catalog: find, list, stats. Each prints one
tab-separated line per result, for people and for scripts alike."""

from __future__ import annotations

from pathlib import Path

import click

from cloudreco.cli import connect
from cloudreco.client import ImageRejectedError


@click.command()
@click.argument("photos", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--channel", help="search this channel (default: every channel the "
                                "credentials may search)")
@connect.connection_options
def find(photos: tuple[Path, ...], channel: str | None, url: str | None,
         username: str | None, secretkey: str | None) -> None:
    """Find the targets in photos.

    Prints a line per photo: the photo, then the target's identifier, channel, score and
    metadata, or "no match". A photo the service refuses (20006, 20007, 20013) is
    reported on standard error and makes the exit status 1.
    """
    async def work() -> int:
        refused = 0
        async with connect.client(url, username, secretkey) as api:
            for photo in photos:
                try:
                    found = await api.find_image(photo, channel=channel)
                except ImageRejectedError as e:
                    click.echo(f"{photo}\t{e}", err=True)
                    refused += 1
                    continue
                m = found.match
                click.echo(f"{photo}\tno match" if m is None else
                           f"{photo}\t{m.identifier}\t{m.channel}\t{m.score:g}\t"
                           f"{m.metadata or ''}")
        return 1 if refused else 0

    connect.run(work())


@click.command("list")
@click.argument("channel")
@connect.connection_options
def list_images(channel: str, url: str | None, username: str | None,
                secretkey: str | None) -> None:
    """List a channel's images.

    Prints a line per image of CHANNEL, by identifier: identifier, level, match ratio,
    metadata.
    """
    async def work() -> int:
        async with connect.client(url, username, secretkey) as api:
            async for image in api.iter_images(channel):
                click.echo(f"{image.identifier}\t{image.level}\t{image.matchratio or 0:g}\t"
                           f"{image.metadata or ''}")
        return 0

    connect.run(work())


@click.command()
@click.argument("start")
@click.argument("end")
@click.option("--channel", help="count CHANNEL's images, one line per identifier and day "
                                "(default: one line per channel and day)")
@click.option("--identifier", help="count only this image (needs --channel)")
@connect.connection_options
def stats(start: str, end: str, channel: str | None, identifier: str | None,
          url: str | None, username: str | None, secretkey: str | None) -> None:
    """Count matches by day.

    Prints a line per day (UTC) from START to END inclusive (each yyyy, yyyyMM or
    yyyyMMdd) and channel, or identifier with --channel: date, channel or identifier,
    count of FindImage matches.
    """
    if identifier and not channel:
        raise click.UsageError("--identifier needs --channel (an identifier is unique only "
                               "in its channel)")

    async def work() -> int:
        async with connect.client(url, username, secretkey) as api:
            counted = await api.statistics(start, end, channel=channel, identifier=identifier)
        for r in counted.records:
            click.echo(f"{r.date:%Y%m%d}\t{r.identifier or r.channel}\t{r.count}")
        return 0

    connect.run(work())


COMMANDS = [find, list_images, stats]
