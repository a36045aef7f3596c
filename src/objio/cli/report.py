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
