"""The chaos benchmark (``make chaos``): a fresh local stack under a steady load of FindImage
(photos of known targets), AddImage (new identifiers) and RemoveImage (acknowledged ones);
one scenario at a time, a process of the stack is SIGKILLed and the supervisor must bring it
back. In the gateway scenario the clients call nginx (deploy/nginx.conf) in front of the
gateways, when nginx is installed. For each scenario it prints the answers by code, the
failover window (first to last failed answer after the fault), the time until FindImage
answered 0 again, wrong identifiers, acknowledged images lost and removed images returned.

    python -m benchmarks.chaos [--scenarios replica redis postgres gateway]
        [--seconds-before 5 --seconds-after 20] [--clients 4] [--write BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import textwrap
from pathlib import Path

from benchmarks.chaos.faults import FAULTS
from benchmarks.chaos.scenarios import STACK_ENV, Outcome, front, prepare, run_scenario
from benchmarks.recognition import machine
from cloudreco.local import LocalStack

ENDPOINTS = ("FindImage", "AddImage", "RemoveImage", "GetImage", "GetImages")
WIDTH = 100  # BENCHMARKS.md's prose wraps at the code's line length


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f}"


def _answers(o: Outcome) -> str:
    return "; ".join(
        f"{e} " + ", ".join(f"{code}: {n}" for code, n in sorted(o.answers[e].items()))
        for e in ENDPOINTS if e in o.answers)


def table(outcomes: list[Outcome]) -> str:
    """One Markdown row per scenario."""
    rows = ["| scenario | answers by code | no answer | window s | recovery s | back s "
            "| wrong ids | misses | acknowledged lost | removed returned | stored unacked |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for o in outcomes:
        no_answer = ", ".join(f"{why} {n}" for why, n in sorted(o.no_answer.items())) or "0"
        rows.append(
            f"| {o.scenario} | {_answers(o)} | {no_answer} | {o.window:.2f} "
            f"| {_seconds(o.recovery)} | {o.back:.2f} | {len(o.wrong)} | {len(o.misses)} "
            f"| {len(o.lost)} | {len(o.removed_returned)} | {o.unacknowledged_stored} |")
    return "\n".join(rows)


def details(outcomes: list[Outcome]) -> str:
    """What each fault was, and every failed answer, wrong, missed, lost or returned
    identifier by name."""
    return "\n".join(textwrap.fill(f"- {o.scenario}: {o.how}." + "".join(
        f" {label}: {', '.join(names)}." for label, names in (
            ("Failed answers", [f"{k} x{n}" for k, n in sorted(o.failed_codes.items())]),
            ("Wrong", o.wrong), ("Missed", o.misses), ("Lost", o.lost),
            ("Removed returned", o.removed_returned))
        if names), WIDTH, subsequent_indent="  ") for o in outcomes)


def section(outcomes: list[Outcome], args: argparse.Namespace, base: int, pool: int) -> str:
    """The dated Markdown section ``--write`` appends."""
    command = " ".join(["python -m benchmarks.chaos", *sys.argv[1:]])
    shards = f"{args.shards} shard" + ("s" if args.shards > 1 else "")
    prose = (
        f"`{command}` on {machine()}: 2 gateway processes on one port, {shards} x "
        f"{args.replicas} replicas, "
        f"{args.clients} FindImage clients and one writer (AddImage, RemoveImage, with "
        f"GetImage and FindImage read-backs), {args.seconds_before:g} s of load before each "
        f"fault and {args.seconds_after:g} s after; {base} base targets, {pool} pool "
        "targets. Window: first to last failed answer after the fault; recovery: fault to "
        "the first FindImage answered 0 after the last failure; back: fault to a new process "
        "in place and /health 200 with every replica; no answer: requests without an HTTP "
        "answer, refused (nothing listened) or dropped (the connection broke mid-request); "
        "misses: no identifier for a photo of a target in the catalog; stored unacked: "
        "AddImage without answer 0 whose image the audit found stored.")
    return "\n".join([f"## Chaos run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC", "",
                      textwrap.fill(prose, WIDTH), "", table(outcomes), "",
                      details(outcomes), ""])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/bench/public"))
    p.add_argument("--scenarios", nargs="+", choices=list(FAULTS), default=list(FAULTS))
    p.add_argument("--seconds-before", type=float, default=5.0)
    p.add_argument("--seconds-after", type=float, default=20.0)
    p.add_argument("--clients", type=int, default=4, help="FindImage clients")
    p.add_argument("--shards", type=int, default=1)
    p.add_argument("--replicas", type=int, default=2)
    p.add_argument("--targets", type=int, default=1000,
                   help="catalog targets tried, in name order (default: all); half stay in, "
                        "half are added and removed under the load")
    p.add_argument("--write", type=Path, help="append a dated section to this Markdown file")
    args = p.parse_args()
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="cloudreco-chaos-") as tmp:
        stack = LocalStack(Path(tmp) / "data", shards=args.shards,
                           CLOUDRECO_REPLICAS=str(args.replicas), **STACK_ENV)
        stack.start()
        try:
            with front(stack, Path(tmp) / "nginx") as nginx:
                chaos = prepare(stack, args.data, args.targets, args.replicas, nginx)
                print(f"{len(chaos.catalog.base)} base and {len(chaos.catalog.pool)} pool "
                      "targets", flush=True)
                for name in args.scenarios:
                    outcomes.append(run_scenario(
                        chaos, FAULTS[name], before=args.seconds_before,
                        after=args.seconds_after, clients=args.clients))
                    print(table(outcomes[-1:]), flush=True)
        finally:
            stack.stop()
    report = section(outcomes, args, len(chaos.catalog.base), len(chaos.catalog.pool))
    print(report)
    if args.write:
        args.write.write_text(args.write.read_text().rstrip() + "\n\n" + report)
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
