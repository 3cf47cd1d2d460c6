"""The user's commands (add, export, find, list, stats), run as a user runs them: subprocesses
calling the real gateway on its socket."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from cloudreco.cli.filenames import file_stems
from cloudreco.cli.sources import identifier_for
from tests.api import Api, User
from tests.images import encode, flat, photo_of, target

HOME, FRUITS, BUILDING, BOARD, BABOON = (
    "pub.home.0", "pub.fruits.0", "pub.building.0", "pub.board.0", "pub.baboon.0")


async def cloudreco(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run ``cloudreco ARGS``; (exit status, standard output, standard error). Awaited, as
    the gateway it calls serves from this test's event loop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cloudreco", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 100)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def alice(api: Api) -> User:
    """alice, with her channel posters."""
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    return alice


@pytest.fixture
def env(api: Api, alice: User) -> dict[str, str]:
    """The environment of the commands: the gateway's URL and alice's credentials."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDRECO_")}
    return {**clean, "CLOUDRECO_URL": api.url, "CLOUDRECO_USERNAME": alice.name,
            "CLOUDRECO_SECRETKEY": alice.secret}


def _as_png(jpeg: bytes) -> bytes:
    return encode(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), ".png")


async def test_add_imports_a_directory_once(env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "catalog"
    folder.mkdir()
    for name, data in (("home sweet home.jpg", target(HOME)), ("fruits.JPG", target(FRUITS)),
                       ("building.jpeg", target(BUILDING)), ("board.jpg", target(BOARD)),
                       ("baboon.png", _as_png(target(BABOON)))):
        (folder / name).write_bytes(data)
    (folder / "notes.txt").write_text("not an image: left out")

    status, out, err = await cloudreco("add", "posters", str(folder), "--jobs", "3", env=env)
    assert status == 0, err
    assert out.splitlines()[0] == "posters: 5 added, 0 already there, 0 failed, of 5 files"
    assert out.splitlines()[1].startswith("added by level: ")
    status, listed, err = await cloudreco("list", "posters", env=env)
    assert status == 0, err
    rows = [line.split("\t") for line in listed.splitlines()]
    assert [r[0] for r in rows] == ["baboon", "board", "building", "fruits", "home_sweet_home"]
    assert all(1 <= int(r[1]) <= 5 and r[2:] == ["0", ""] for r in rows)

    status, out, err = await cloudreco("add", "posters", str(folder), env=env)
    assert status == 0, err
    assert out == "posters: nothing to add; all 5 images are already there\n"


async def test_add_reports_each_failure_under_its_code(env: dict[str, str], api: Api,
                                                       tmp_path: Path) -> None:
    files = {"home.jpg": target(HOME),
             "broken.jpg": b"\xff\xd8\xff not really a JPEG",
             "blank.png": flat(),
             "huge.jpg": b"\xff\xd8\xff" + os.urandom(3 * 1024 * 1024),
             "a b.jpg": target(FRUITS), "a_b.jpg": target(FRUITS)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    paths = [str(tmp_path / name) for name in files]

    status, out, err = await cloudreco("add", "posters", *paths, env=env)
    assert status == 1, err
    lines = out.splitlines()
    assert lines[0] == "posters: 2 added, 0 already there, 4 failed, of 6 files"
    failed = "\n".join(lines[2:])
    for reason, name in (("20006 file size limit exceeded", "huge.jpg"),
                         ("20007 file format not recognized", "broken.jpg"),
                         ("20013 image feature insufficient", "blank.png"),
                         ("20016 image name taken (by another file of this import)",
                          "a_b.jpg")):
        assert f"failed, {reason}: 1\n  {tmp_path / name}" in failed
    stored = await api.db.fetch("SELECT identifier FROM images ORDER BY identifier")
    assert [r["identifier"] for r in stored] == ["a_b", "home"]

    status, out, _ = await cloudreco("add", "posters", *paths, env=env)
    assert status == 1
    assert out.splitlines()[0] == "posters: 0 added, 2 already there, 4 failed, of 6 files"


async def test_export_writes_each_original_once(env: dict[str, str], api: Api, alice: User,
                                                tmp_path: Path) -> None:
    png = _as_png(target(BABOON))
    originals = {"home": target(HOME), "HOME": target(HOME), "baboon": png}
    async with api.connect(alice) as client:
        for identifier, data in originals.items():
            await client.add_image("posters", identifier, data, metadata={"id": identifier})
    await api.stored("posters", ["old.one"])  # added before originals were kept
    folder = tmp_path / "export"

    status, out, err = await cloudreco("export", "posters", str(folder), env=env)
    assert status == 1, err  # old.one has no original
    lines = out.splitlines()
    assert lines[0] == "posters: 4 written, 0 unchanged, 1 without an original, 0 failed, " \
                       "of 4 images"
    assert lines[1:] == ["20024 no original kept for this image (added before originals were "
                         "kept; only its .json written): 1", "  old.one"]
    sidecars = {(d := json.loads(p.read_text()))["identifier"]: d for p in folder.glob("*.json")}
    assert set(sidecars) == {*originals, "old.one"}
    for identifier, data in originals.items():
        sidecar = sidecars[identifier]
        assert (folder / sidecar["file"]).read_bytes() == data
        assert sidecar["metadata"] == json.dumps({"id": identifier})
        assert sidecar["channel"] == "posters" and 1 <= sidecar["level"] <= 5
    assert sidecars["baboon"]["file"] == "baboon.png"
    assert sidecars["old.one"]["file"] is None and (folder / "old.one.json").exists()
    assert sidecars["home"]["file"] != sidecars["HOME"]["file"]  # apart on any file system
    written = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert len(written) == 7

    status, out, _ = await cloudreco("export", "posters", str(folder), env=env)
    assert out.splitlines()[0] == "posters: 0 written, 4 unchanged, 1 without an original, " \
                                  "0 failed, of 4 images"
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == written

    (folder / "baboon.png").write_bytes(png[:100])  # cut short: written again
    status, out, _ = await cloudreco("export", "posters", str(folder), env=env)
    assert out.splitlines()[0].startswith("posters: 1 written, 3 unchanged")
    assert (folder / "baboon.png").read_bytes() == png


@pytest.mark.parametrize("identifiers, names", [
    (["poster.001", "a@b_c"], ["poster.001", "a@b_c"]),
    (["poster", "Poster"], ["poster~293b9207228b", "Poster~1ba76ea7e3d9"]),
    ([".x", "x.", "con", "nul.x", "a/b"],
     ["_x~", "x_~", "_con~", "_nul.x~", "a_b~"]),
])
def test_exported_names_are_safe_and_apart(identifiers: list[str], names: list[str]) -> None:
    stems = file_stems(identifiers)
    assert [stems[i][:len(n)] for i, n in zip(identifiers, names, strict=True)] == names
    assert len({stem.casefold() for stem in stems.values()}) == len(identifiers)


async def test_find_prints_each_photos_target_and_stats_count_them(
        env: dict[str, str], api: Api, alice: User, tmp_path: Path) -> None:
    async with api.connect(alice) as client:
        await client.add_image("posters", "home", target(HOME), metadata='{"n": 1}')
        await client.add_image("posters", "fruits", target(FRUITS))
    photos = {"home.jpg": photo_of(HOME)[0], "fruits.jpg": photo_of(FRUITS, seed=3)[0],
              "building.jpg": photo_of(BUILDING)[0], "blank.png": flat()}
    for name, data in photos.items():
        (tmp_path / name).write_bytes(data)

    status, out, err = await cloudreco("find", *(str(tmp_path / n) for n in photos), env=env)
    assert status == 1  # the blank photo is refused
    home, fruits, building = (line.split("\t") for line in out.splitlines())
    assert home[0] == str(tmp_path / "home.jpg") and home[1:3] == ["home", "posters"]
    assert float(home[3]) > 0 and home[4] == '{"n": 1}'
    assert fruits[1:3] == ["fruits", "posters"] and fruits[4] == ""
    assert building == [str(tmp_path / "building.jpg"), "no match"]
    assert err == f"{tmp_path / 'blank.png'}\t20013 image feature insufficient\n"

    today = f"{dt.datetime.now(dt.UTC).date():%Y%m%d}"
    status, out, err = await cloudreco("stats", "--channel", "posters", "2000", "2100",
                                       env=env)
    assert status == 0, err
    assert out.splitlines() == [f"{today}\tfruits\t1", f"{today}\thome\t1"]
    status, out, err = await cloudreco("stats", today, today, env=env)
    assert out.splitlines() == [f"{today}\tposters\t2"]


async def test_refusals_and_missing_credentials_end_the_command(env: dict[str, str]) -> None:
    status, _, err = await cloudreco("list", "nothing", env=env)
    assert (status, err) == (1, "cloudreco: 20003 channel not exists\n")
    status, _, err = await cloudreco("stats", "2026", "2025", env=env)
    assert (status, err) == (1, "cloudreco: 20019 date not valid (yyyy, yyyyMM or yyyyMMdd)\n")
    anonymous = {k: v for k, v in env.items() if k != "CLOUDRECO_USERNAME"}
    status, _, err = await cloudreco("list", "posters", env=anonymous)
    assert status == 2 and "CLOUDRECO_USERNAME" in err
    status, out, err = await cloudreco("list", "posters", "--username", "alice", env=anonymous)
    assert (status, out, err) == (0, "", "")


@pytest.mark.parametrize("name, identifier", [
    ("pub.poster.10.jpg", "pub.poster.10"),
    ("home sweet home.jpg", "home_sweet_home"),
    ("café-crème (2).png", "cafe_creme_2_"),
    ("7.jpg", "7__"),
    ("東京.jpg", "___"),
    ("x" * 60 + ".jpg", "x" * 41 + "_06ced2e0"),
])
def test_identifiers_come_from_file_names(name: str, identifier: str) -> None:
    assert identifier_for(Path("some/dir") / name) == identifier
