"""The real-photo benchmark, through the HTTP API of a fresh stack.

    python -m benchmarks.real --data ../shared/bench/real    (make bench-real)

Starts a local stack (``cloudreco run``) in a scratch data directory, adds the real set's
catalog with AddImage, sends every photo to FindImage (one client), then runs the exhaustive
SIFT reference (benchmarks/reference.py) on the same photos against the same catalog. Writes
into BENCHMARKS.md's ``bench:real`` block: recall per group (each phone, each Oxford
sequence), false positives on the photos of things not in the catalog, wrong identifiers, the
corner error of right answers whose truth has a homography (``H``), FindImage latency by
photo size, and the reference's answers per group. The host is shared: the report carries
the load average and a yardstick of the host's speed before and after.

The images are research data without a licence to redistribute (see their README): they are
read from ``--data`` and never copied.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from benchmarks import reference
from benchmarks.recall import corner_error
from benchmarks.recognition import (
    CHANNEL,
    Client,
    Run,
    add_all,
    host_speed,
    machine,
    open_channel,
    percentile,
    truth,
    write_report,
)
from cloudreco.local import LocalStack
from shared.codes import ResultCode
from shared.imageformat import dimensions

FIND_RETRIES = 2
SIZE_BANDS = ((0, 700), (701, 1000), (1001, 1 << 30))  # photos' long side, px


@dataclass(frozen=True)
class Answer:
    identifier: str  # "" for none, "error <code>" for an answer other than 0
    corners: list[list[float]] | None
    seconds: float
    size: tuple[int, int]
    busy: int  # answers 20015 before this one


async def find_all(client: Client, data: Path, rows: list[dict[str, str]]) -> dict[str, Answer]:
    """Every photo sent to FindImage in turn (one client: latency as a single user sees it)."""
    out = {}
    for row in rows:
        photo = (data / "queries" / f"{row['query']}.jpg").read_bytes()
        seconds, body = await client.post("FindImage", {"channel": CHANNEL}, photo)
        busy = 0
        while body["returncode"] == ResultCode.SYSTEM_BUSY and busy < FIND_RETRIES:
            busy += 1  # the shared host was slow, not the photo: send it again
            seconds, body = await client.post("FindImage", {"channel": CHANNEL}, photo)
        code = body["returncode"]
        out[row["query"]] = Answer(
            body.get("identifier", "") if code == 0 else f"error {code}",
            body.get("corners"),
            seconds,
            dimensions(photo) or (0, 0),
            busy,
        )
    return out


async def bench(
    stack: LocalStack, data: Path, rows: list[dict[str, str]]
) -> tuple[Run, dict[str, Answer]]:
    secret = open_channel(stack)
    run = Run()
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        client = Client(session, stack.url, secret)
        await add_all(client, sorted((data / "catalog").glob("*.jpg")), run)
        answers = await find_all(client, data, rows)
    return run, answers


def groups(rows: list[dict[str, str]], answers: dict[str, str]) -> dict[str, dict[str, int]]:
    """Per group (truth's ``difficulty``): photos, right answers, wrong identifiers, false
    positives (answers to photos of things not in the catalog), other return codes."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        got, g = answers[row["query"]], out[row["difficulty"]]
        g["photos"] += 1
        if got.startswith("error"):
            g["errors"] += 1
        elif not row["expected"]:
            g["false"] += bool(got)
        else:
            g["right"] += got == row["expected"]
            g["wrong"] += bool(got) and got != row["expected"]
    return {k: dict(v) for k, v in out.items()}


def corner_errors(
    data: Path, rows: list[dict[str, str]], answers: dict[str, Answer]
) -> list[float]:
    """The mean corner distance (px) of each right answer whose truth has a homography."""
    return [
        corner_error(
            np.array(a.corners, np.float64), row["H"], data / "catalog" / f"{row['expected']}.jpg"
        )
        for row in rows
        if row["H"] and (a := answers[row["query"]]).corners and a.identifier == row["expected"]
    ]


def latency_by_size(answers: dict[str, Answer]) -> list[tuple[str, int, float, float]]:
    """(photo sizes, photos, p50 ms, p95 ms) per band of the photos' long side."""
    out = []
    for low, high in SIZE_BANDS:
        band = [a for a in answers.values() if low <= max(a.size) <= high]
        if band:
            sides = sorted({max(a.size) for a in band})
            label = f"{sides[0]} px" if len(sides) == 1 else f"{sides[0]}-{sides[-1]} px"
            seconds = [a.seconds for a in band]
            out.append((label, len(band), percentile(seconds, 50), percentile(seconds, 95)))
    return out


def summarise(
    data: Path,
    rows: list[dict[str, str]],
    run: Run,
    answers: dict[str, Answer],
    ref: dict[str, str],
    ref_seconds: list[float],
) -> dict[str, Any]:
    service = {q: a.identifier for q, a in answers.items()}
    errors = corner_errors(data, rows, answers)
    return {
        "catalog": len(run.levels),
        "add_failed": dict(run.add_failed),
        "busy": {"add": run.add_busy, "find": sum(a.busy for a in answers.values())},
        "add_per_second": len(run.levels) / run.add_seconds,
        "groups": groups(rows, service),
        "reference": groups(rows, ref),
        "negative_groups": sorted({r["difficulty"] for r in rows if not r["expected"]}),
        "corner_px": {
            "median": float(np.median(errors)) if errors else None,
            "max": max(errors, default=None),
            "photos": len(errors),
            "with_h": sum(bool(r["H"]) for r in rows),
        },
        "latency_ms": {
            "all": (
                percentile([a.seconds for a in answers.values()], 50),
                percentile([a.seconds for a in answers.values()], 95),
            ),
            "by_size": latency_by_size(answers),
        },
        "reference_ms": float(np.median(ref_seconds)) * 1000,
        "answers": service,
    }


def _cell(g: dict[str, int], negatives: bool) -> str:
    if negatives:
        return f"{g.get('false', 0)} of {g['photos']} false positives"
    return f"{g.get('right', 0)}/{g['photos']} = {g.get('right', 0) / g['photos']:.3f}"


def _total(gs: dict[str, dict[str, int]], names: list[str]) -> dict[str, int]:
    return {k: sum(gs[n].get(k, 0) for n in names) for k in ("photos", "right", "wrong")}


def markdown(s: dict[str, Any], started: str, load: tuple[str, str]) -> str:
    gs, ref = s["groups"], s["reference"]
    names = list(gs)
    positives = [n for n in names if n not in s["negative_groups"]]
    lines = [
        f"Run {started} UTC on {machine()} (load average {load[0]} before, {load[1]} after): "
        "`make bench-real` "
        f"({s['catalog']} catalog images added, refused: {s['add_failed'] or 'none'})",
        "",
        "| group | cloudreco over HTTP | wrong identifiers | other answers | exhaustive "
        "SIFT-1000 reference |",
        "|---|---|---|---|---|",
    ]
    for n in names:
        neg = n not in positives
        lines.append(
            f"| {n} | {_cell(gs[n], neg)} | {gs[n].get('wrong', 0)} | "
            f"{gs[n].get('errors', 0)} | {_cell(ref[n], neg)} |"
        )
    for label, part in (
        ("phone photos", [n for n in positives if n.startswith("phone")]),
        ("all positives", positives),
    ):
        mine, theirs = _total(gs, part), _total(ref, part)
        lines.append(
            f"| **{label}** | {_cell(mine, False)} | {mine['wrong']} | | {_cell(theirs, False)} |"
        )
    c, lat = s["corner_px"], s["latency_ms"]
    corners = (
        "none" if c["median"] is None else f"median {c['median']:.2f} px, max {c['max']:.2f} px"
    )
    lines += [
        "",
        f"Corner error (mean distance of the answer's four corners from the truth's, over "
        f"the right answers whose truth has a homography): {corners}, over {c['photos']} of "
        f"{c['with_h']} photos.",
        "",
        "| FindImage latency, 1 client | photos | p50 | p95 |",
        "|---|---|---|---|",
        *[
            f"| long side {label} | {n} | {p50:.0f} ms | {p95:.0f} ms |"
            for label, n, p50, p95 in lat["by_size"]
        ],
        f"| all | {sum(n for _, n, _, _ in lat['by_size'])} | {lat['all'][0]:.0f} ms | "
        f"{lat['all'][1]:.0f} ms |",
        "",
        f"Answered 20015 and sent again: AddImage {s['busy']['add']}, FindImage "
        f"{s['busy']['find']}. AddImage {s['add_per_second']:.1f} /s (4 clients). The "
        "reference: median "
        f"{s['reference_ms']:.0f} ms a photo on one core. Host yardstick (one real photo's "
        "extraction, 1 thread) before / after: "
        + " / ".join(f"{ms:.1f} ms" for ms in s["host_ms"])
        + ".",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", type=Path, required=True, help="the real set (../shared/bench/real)")
    p.add_argument("--json", type=Path, help="also write the summary and every answer here")
    p.add_argument("--no-report", action="store_true", help="print only, leave BENCHMARKS.md")
    args = p.parse_args()
    if not (args.data / "truth.csv").exists():
        raise SystemExit(f"no real benchmark set at {args.data} (see its README)")
    started = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M}"
    load_before = f"{os.getloadavg()[0]:.1f}"
    rows = truth(args.data)
    host_before = host_speed(args.data)
    with tempfile.TemporaryDirectory(prefix="cloudreco-bench-real-") as tmp:
        stack = LocalStack(Path(tmp) / "data")
        stack.start()
        try:
            run, answers = asyncio.run(bench(stack, args.data, rows))
        finally:
            stack.stop()
    ref, ref_seconds = reference.run(
        sorted((args.data / "catalog").glob("*.jpg")),
        [args.data / "queries" / f"{r['query']}.jpg" for r in rows],
        os.cpu_count() or 1,
    )
    summary = summarise(args.data, rows, run, answers, ref, ref_seconds)
    summary["host_ms"] = [host_before, host_speed(args.data)]
    body = markdown(summary, started, (load_before, f"{os.getloadavg()[0]:.1f}"))
    print(body)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    if not args.no_report:
        write_report("real", body)
        print("wrote BENCHMARKS.md")


if __name__ == "__main__":
    main()
