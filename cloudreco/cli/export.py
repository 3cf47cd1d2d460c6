"""``cloudreco export``: every image of a channel as its original file beside a JSON sidecar
of what the catalog holds about it; resumable, as files already there with the content the
catalog lists are left alone."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import click

from cloudreco.cli import connect
from cloudreco.cli.filenames import file_stems
from cloudreco.cli.progress import each
from cloudreco.cli.reasons import Failed, list_by_reason
from cloudreco.client import ApiError, AsyncClient, Image, ResultCode
from shared.imageformat import sniff

_SUFFIXES = {"jpeg": ".jpg", "png": ".png"}


@dataclass
class Report:
    """What an export did, by image: written (its file or sidecar), unchanged, without an
    original, failed by reason."""

    written: int = 0
    unchanged: int = 0
    without: list[str] = field(default_factory=list)
    failed: Failed[str] = field(default_factory=Failed)


@click.command()
@click.argument("channel")
@click.argument("folder", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=4, show_default=True,
              help="downloads at once")
@click.option("--retries", type=click.IntRange(0), default=3, show_default=True,
              help="retries of a download answered 20015 system busy, with backoff")
@connect.connection_options
def export(channel: str, folder: Path, jobs: int, retries: int, url: str | None,
           username: str | None, secretkey: str | None) -> None:
    """Export a channel's images to a folder.

    Writes each image of CHANNEL into DIR (made if missing) as the file it was added as,
    byte for byte (NAME.jpg or NAME.png), and NAME.json: its channel, identifier, metadata,
    level, file and SHA-256. NAME is the identifier, or a safe file name made of it (see
    README). Files already there with the same content are left alone, so a second run
    writes only what changed. Images added before originals were kept get their .json
    alone. Exit status 1 if any image failed or had no original.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise click.UsageError(f"cannot make {folder}: {e.strerror}") from e

    async def work() -> int:
        async with connect.client(url, username, secretkey, retries=retries,
                                  connections=jobs) as api:
            images = [image async for image in api.iter_images(channel)]
            report = await export_images(api, channel, images, folder, jobs)
        summarise(channel, folder, len(images), report)
        return 1 if report.failed.count or report.without else 0

    connect.run(work())


async def export_images(api: AsyncClient, channel: str, images: list[Image], folder: Path,
                        jobs: int) -> Report:
    """Export ``images`` of ``channel`` into ``folder``, ``jobs`` downloads at a time."""
    report = Report()
    stems = file_stems(image.identifier for image in images)

    async def one(image: Image) -> None:
        try:
            await _export(api, channel, image, folder, stems[image.identifier], report)
        except ApiError as e:
            report.failed[str(e)].append(image.identifier)
        except (aiohttp.ClientError, TimeoutError) as e:  # before OSError: some are both
            report.failed[f"no answer ({type(e).__name__})"].append(image.identifier)
        except OSError as e:
            report.failed[f"not written ({e.strerror})"].append(image.identifier)

    if images:
        await each(images, jobs, one, f"exporting {channel}", lambda: report.failed.count)
    return report


async def _export(api: AsyncClient, channel: str, image: Image, folder: Path, stem: str,
                  report: Report) -> None:
    wrote = False
    name, sha256 = None, image.sha256
    if sha256 is None:
        report.without.append(image.identifier)
    else:
        name = await asyncio.to_thread(_already_there, folder, stem, sha256)
        if name is None:
            data = await api.get_original(channel, image.identifier)
            sha256 = hashlib.sha256(data).hexdigest()  # replaced since it was listed?
            name = stem + _SUFFIXES.get(sniff(data[:16]) or "", ".bin")
            await asyncio.to_thread(_write, folder / name, data)
            wrote = True
    sidecar = json.dumps({"channel": channel, "identifier": image.identifier,
                          "metadata": image.metadata, "level": image.level, "file": name,
                          "sha256": sha256}, indent=2, ensure_ascii=False) + "\n"
    wrote |= await asyncio.to_thread(_write_if_changed, folder / f"{stem}.json",
                                     sidecar.encode())
    if wrote:
        report.written += 1
    else:
        report.unchanged += 1


def _already_there(folder: Path, stem: str, sha256: str) -> str | None:
    """The name of the file of ``stem`` in ``folder`` whose content has ``sha256``, if any."""
    for suffix in _SUFFIXES.values():
        path = folder / (stem + suffix)
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == sha256:
            return path.name
    return None


def _write(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all (an interrupted export leaves no half file)."""
    part = path.with_name(f".{path.name}.part")
    part.write_bytes(data)
    os.replace(part, path)


def _write_if_changed(path: Path, data: bytes) -> bool:
    if path.is_file() and path.read_bytes() == data:
        return False
    _write(path, data)
    return True


def summarise(channel: str, folder: Path, images: int, report: Report) -> None:
    """The export's outcome on standard output: counts, images without an original,
    failures by reason."""
    if not report.written and not report.failed.count and not report.without:
        click.echo(f"{channel}: nothing to export; all {images} images are already in "
                   f"{folder}")
        return
    click.echo(f"{channel}: {report.written} written, {report.unchanged} unchanged, "
               f"{len(report.without)} without an original, {report.failed.count} failed, "
               f"of {images} images")
    reasons = dict(report.failed)
    if report.without:
        reasons[f"{int(ResultCode.NO_ORIGINAL)} {ResultCode.NO_ORIGINAL.message} (added "
                "before originals were kept; only its .json written)"] = report.without
    list_by_reason({reason: sorted(names) for reason, names in reasons.items()})
