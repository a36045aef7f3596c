"""``objio bench --clients N``: the get phase of the objects benchmark from N client processes
on this host (past one Python process's GIL), aggregated from their op-logs.

The objects are written once (``num`` objects of ``size`` bytes under the prefix, as the
single-client benchmark's put phase), then N processes (spawned: nothing of this process is
inherited) each read a disjoint slice of them (object *i* goes to client *i mod N*),
``epochs`` times, ``max_in_flight`` requests at once each, all starting together (a barrier),
each writing its own op-log (:mod:`objio.oplog`). The report merges the op-logs on one timeline
(:mod:`objio.report`): aggregate throughput over the common window (from the moment every
client has finished one request to the moment the last request starts), duration = the
slowest client's (MLPerf Storage's rule), one row per client, and the latency percentiles of
every GET.

Raises: ValueError (bad arguments), RuntimeError (a client process failed: its error).
"""

from __future__ import annotations

import time
from typing import Any

from ..api import Client
from ..uri import parse_uri
from ._common import cpu_seconds

MiB = 1024 * 1024
TEMPLATE = "object_{}_of_{}.dat"


def read_slice(c: Client, uris: list[str], epochs: int, max_in_flight: int,
               start: Any) -> dict[str, Any]:
    """One client's part: a HEAD first (connection, credentials: before the clock), then
    ``start()`` (the barrier every client waits at), then ``epochs`` reads of ``uris``.
    Returns {objects, bytes, wall_s, cpu_s}."""
    c.stat(uris[0])
    start()
    c0, t0 = cpu_seconds(), time.perf_counter()
    count = nbytes = 0
    for _ in range(epochs):
        n, b = c.get_many_stats(uris, max_in_flight=max_in_flight)
        count += n
        nbytes += b
    return {"objects": count, "bytes": nbytes, "wall_s": time.perf_counter() - t0,
            "cpu_s": cpu_seconds() - c0}


def run_clients(client: Client, prefix_uri: str, *, clients: int, num: int, size: int,
                epochs: int = 3, max_in_flight: int = 64, keep: bool = False,
                log_dir: str | None = None) -> dict[str, Any]:
    """Run the benchmark (see the module docs; :func:`objio.bench.split.run_spawned` with
    :class:`objio.bench.shares.Objects`); returns ``{"config", "clients": [per client:
    objects, bytes, wall_s, cpu_s, mib_per_s], "aggregate": {"mib_per_s", "objects_per_s",
    "window_s", "duration_s", ...}, "report": objio.report's analysis of the op-logs, "logs",
    "environment"}`` (MiB = 2**20 bytes; seconds)."""
    from .shares import Objects
    from .split import run_spawned

    for name, v in (("clients", clients), ("num", num), ("epochs", epochs),
                    ("max_in_flight", max_in_flight), ("size", size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    task = Objects(str(parse_uri(prefix_uri)), num=num, size=size, epochs=epochs,
                   max_in_flight=max_in_flight)
    return run_spawned(client, task, clients=clients, keep=keep, log_dir=log_dir)


def print_clients(rep: dict[str, Any], out: Any = None) -> None:
    """The report as text (fits 100 columns)."""
    import sys

    from ..report import print_report

    out = out or sys.stdout
    cfg, agg = rep["config"], rep["aggregate"]
    who = (f"{cfg['clients']} ranks ({cfg['gather']})" if cfg.get("gather")
           else f"--clients {cfg['clients']}")
    print(f"objio bench {who}: {cfg['num']} objects x {cfg['size']:,} "
          f"bytes, {cfg['epochs']} epoch(s), {cfg['max_in_flight']} in flight per client",
          file=out)
    print(f"  {'client':8s} {'objects':>9s} {'MiB/s':>10s} {'seconds':>9s} {'CPU s':>7s}",
          file=out)
    for r in rep["clients"]:
        print(f"  {r['rank']:<8d} {r['objects']:9,d} {r['mib_per_s']:10.1f} {r['wall_s']:9.2f} "
              f"{r['cpu_s']:7.2f}", file=out)
    print(f"  aggregate over the common window ({agg['window_s']:.2f} s): "
          f"{agg['mib_per_s']:.1f} MiB/s, {agg['objects_per_s']:.0f} objects/s; over the "
          f"slowest client's {agg['duration_s']:.2f} s: {agg['mib_per_s_over_duration']:.1f} MiB/s",
          file=out)
    print(f"  op-logs: {', '.join(rep['logs'])}", file=out)
    print_report(rep["report"], out)
