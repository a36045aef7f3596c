"""``objio bench oplog``: what the op-log costs (:mod:`objio.oplog`), on the small-GET run.

``num`` objects of ``size`` bytes are written once; each round reads them all with
``get_many_stats`` (``max_in_flight`` at once) three ways in an order rotated from round to
round: op-log off, to a plain ``.tsv``, and to a ``.tsv.zst``. Reported (medians over rounds):
objects/s, client CPU milliseconds per object (the whole process) and each logged case's
ratios to the unlogged one. The issue's budget: at most 3% of the throughput and 5% of the
client CPU.

Raises: ValueError (bad arguments), what objio's get raises.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

from ..api import Client
from ..uri import parse_uri
from ._common import cpu_seconds, environment, median

CASES = ("off", "tsv", "zst")


def run_oplog_cost(client: Client, prefix_uri: str, *, num: int = 1000, size: int = 128 * 1024,
                   rounds: int = 7, max_in_flight: int = 64) -> dict[str, Any]:
    """Run the benchmark (see the module docs); returns ``{"config", "runs": {case: [...]},
    "summary": {case: {"objects_per_s", "cpu_ms_per_object", "throughput_vs_off",
    "cpu_vs_off"}}, "log_bytes_per_line", "environment"}``."""
    for name, v in (("num", num), ("size", size), ("rounds", rounds),
                    ("max_in_flight", max_in_flight)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    from .. import oplog

    prefix = parse_uri(prefix_uri)
    uris = [str(prefix.joinpath(f"oplog-cost/o{i}")) for i in range(num)]
    block = os.urandom(size)
    client.put_many([(u, block) for u in uris], max_in_flight=max_in_flight)
    d = tempfile.mkdtemp(prefix="objio-oplog-cost-")
    paths = {"tsv": os.path.join(d, "ops.tsv"), "zst": os.path.join(d, "ops.tsv.zst")}
    clients = {"off": client, **{k: Client(client.config.replace(op_log=p))
                                 for k, p in paths.items()}}
    runs: dict[str, list[dict[str, float]]] = {c: [] for c in CASES}
    try:
        for c in clients.values():  # connections, imports, log files: not timed
            c.get_many_stats(uris[: min(num, 64)], max_in_flight=max_in_flight)
        for r in range(rounds):
            order = CASES[r % 3:] + CASES[: r % 3]
            for case in order:
                c0, t0 = cpu_seconds(), time.perf_counter()
                n, _ = clients[case].get_many_stats(uris, max_in_flight=max_in_flight)
                wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
                runs[case].append({"objects_per_s": n / wall, "cpu_ms_per_object": cpu / n * 1e3})
        for p in paths.values():
            oplog.close(p)
        lines = sum(1 for _ in open(paths["tsv"], encoding="utf-8")) - 1
        per_line = {"tsv": os.path.getsize(paths["tsv"]) / max(lines, 1),
                    "zst": os.path.getsize(paths["zst"]) / max(lines, 1)}
    finally:
        client.delete_many(uris)
        for p in paths.values():
            if os.path.exists(p):
                os.remove(p)
        os.rmdir(d)
    summary: dict[str, Any] = {}
    for case, rs in runs.items():
        summary[case] = {"objects_per_s": median([x["objects_per_s"] for x in rs]),
                         "cpu_ms_per_object": median([x["cpu_ms_per_object"] for x in rs])}
    base = summary["off"]
    for row in summary.values():
        row["throughput_vs_off"] = row["objects_per_s"] / base["objects_per_s"]
        row["cpu_vs_off"] = row["cpu_ms_per_object"] / base["cpu_ms_per_object"]
    return {"kind": "oplog", "config": {"uri": str(prefix), "num": num, "size": size,
                                        "rounds": rounds, "max_in_flight": max_in_flight},
            "runs": runs, "summary": summary, "log_bytes_per_line": per_line,
            "environment": environment([])}


def print_report(rep: dict[str, Any], out: Any = None) -> None:
    """The report as text."""
    import sys

    out = out or sys.stdout
    cfg = rep["config"]
    print(f"objio bench oplog: {cfg['num']} GETs of {cfg['size']:,} bytes, "
          f"{cfg['max_in_flight']} in flight, median of {cfg['rounds']} interleaved rounds",
          file=out)
    print(f"  {'op-log':8s} {'objects/s':>10s} {'CPU ms/obj':>11s} {'throughput':>11s} "
          f"{'CPU':>7s}", file=out)
    for case, row in rep["summary"].items():
        print(f"  {case:8s} {row['objects_per_s']:10,.0f} {row['cpu_ms_per_object']:11.4f} "
              f"{row['throughput_vs_off']:10.3f}x {row['cpu_vs_off']:6.3f}x", file=out)
    b = rep["log_bytes_per_line"]
    print(f"  log size: {b['tsv']:.0f} bytes per request as .tsv, {b['zst']:.1f} as .tsv.zst",
          file=out)
