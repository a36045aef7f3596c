"""``objio report LOG...``: op-logs of any number of clients on one timeline (:mod:`objio.report`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._common import write_json


def cmd_report(args: argparse.Namespace) -> int:
    from .. import report

    if args.compare:
        _, a = report.run([args.compare[0]], segment_s=args.segment)
        _, b = report.run([args.compare[1]], segment_s=args.segment)
        cmp = report.compare(a, b)
        if args.json:
            write_json(args.json, {"a": a, "b": b, "compare": cmp})
        if args.json != "-":
            print(f"objio report --compare: A = {args.compare[0]}, B = {args.compare[1]}")
            report.print_compare(cmp)
        return 0
    if not args.logs:
        raise ValueError("objio report needs at least one LOG (or --compare LOG_A LOG_B)")
    requests, rep = report.run(args.logs, segment_s=args.segment)
    if args.json != "-":
        report.print_report(rep)
    if args.plot:
        report.plot(requests, rep, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr if args.json == "-" else sys.stdout)
    if args.json:
        write_json(args.json, rep)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from ..replay import replay
    from ._common import client_from_args

    out = replay(client_from_args(args), args.logs, args.to, speed=args.speed,
                 as_fast_as_possible=args.as_fast_as_possible,
                 max_in_flight=args.max_in_flight)
    if args.json:
        write_json(args.json, out)
    if args.json != "-" and not getattr(args, "quiet", False):
        ok = ", ".join(f"{op} {n}" for op, n in sorted(out["replayed"].items())) or "none"
        print(f"replayed {sum(out['replayed'].values())} requests in {out['seconds']:.2f} s "
              f"({ok}); created first {out['created']}; late p50 {out['late_ms']['p50']:.1f} ms, "
              f"p99 {out['late_ms']['p99']:.1f} ms")
        if out["failed"]:
            print("failed: " + ", ".join(f"{op} {n}" for op, n in sorted(out["failed"].items())))
        if out["skipped"]:
            print("skipped (not replayed): "
                  + ", ".join(f"{op} {n}" for op, n in sorted(out["skipped"].items())))
    return 1 if out["failed"] else 0


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return v


def _segment(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--segment must be seconds > 0, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"--segment must be seconds > 0, got {text!r}")
    return v


def register(sub: Any) -> None:
    """Add ``report`` to the ``objio`` sub-command parser."""
    p = sub.add_parser(
        "report", help="analyze op-logs (objio --op-log, warp --benchdata, s3dlio) like warp",
        description="Merge the op-logs of any number of clients on one timeline and print "
                    "throughput per operation over the measured window (warm-up and tail cut "
                    "off) and per time segment, latency and time-to-first-byte percentiles, "
                    "per-endpoint and per-client rows and errors by code.")
    p.add_argument("logs", nargs="*", metavar="LOG",
                   help="op-log files (plain or .zst): objio's, warp's or s3dlio's")
    p.add_argument("--json", metavar="FILE", default=None,
                   help="also write the report as JSON to FILE ('-' = stdout, no text)")
    p.add_argument("--plot", metavar="FILE.png", default=None,
                   help="throughput over time per client and the latency CDF per operation")
    p.add_argument("--compare", nargs=2, metavar=("LOG_A", "LOG_B"), default=None,
                   help="before/after: B's throughput and latency over A's, per operation")
    p.add_argument("--segment", type=_segment, default=None, metavar="SECONDS",
                   help="length of the throughput segments (default: the window / 20)")
    p.set_defaults(func=cmd_report)

    from ._common import add_global_flags

    p = sub.add_parser(
        "replay", help="send an op-log's requests again, to another bucket or prefix",
        description="Re-issue the GET, PUT, STAT, DELETE and LIST requests of op-logs (objio's, "
                    "warp's, s3dlio's) against --to on the recorded timeline; objects the log "
                    "reads are created first when missing (sizes from the log). Exit 1 if any "
                    "replayed request failed.")
    p.add_argument("logs", nargs="+", metavar="LOG", help="op-log files (plain or .zst)")
    p.add_argument("--to", required=True, metavar="URI",
                   help="destination: s3://bucket/prefix/ (or a local directory) where each "
                        "recorded key goes")
    p.add_argument("--speed", type=_positive, default=1.0,
                   help="replay this many times faster than recorded (default 1.0)")
    p.add_argument("--as-fast-as-possible", action="store_true",
                   help="ignore the recorded timeline: every request as soon as a slot is free")
    p.add_argument("--max-in-flight", type=int, default=64,
                   help="requests at once (default 64)")
    p.add_argument("--json", metavar="FILE", default=None,
                   help="also write the summary as JSON to FILE ('-' = stdout, no text)")
    add_global_flags(p)
    p.set_defaults(func=cmd_replay)
