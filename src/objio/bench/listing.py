"""``objio bench list``: FastList against objio's own sequential listing, on the same keys.

    objio bench list [s3://bucket/prefix] [--keys 100000] [--latency-ms 20] [--rounds 3]
                     [--layout uniform|skewed] [--json FILE] [--plot FILE.png]

The keys (empty objects) are created once under the prefix (``list-<layout>-<keys>/``;
kept for the next run). Each round lists the prefix sequentially
(``objio.list_objects(prefix)``: one ListObjectsV2 request after another, 1000 keys each) and
with FastList (``fast=True``, :mod:`objio.fastlist`), in rotating order, and checks that both
return the same keys. Reported: seconds, keys/s and client CPU seconds per listing (medians over
rounds), and FastList's speedup. ``--latency-ms N`` puts a delay proxy
(:mod:`objio.bench.latency`) between the client and the server, adding N ms to every request as
a store in another region would: listing is latency-bound there.

Layouts: ``uniform`` is ``{i:06d}.bin``; ``skewed`` puts 99% of the keys under ``big/`` and
spreads the rest over other names (characters before and after ``/``, unicode).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from ..api import Client
from ..uri import parse_uri
from ._common import cpu_seconds, environment, median

LAYOUTS = ("uniform", "skewed")
CASES = ("sequential", "fastlist")


def layout_keys(layout: str, n: int) -> list[str]:
    """The ``n`` keys (relative to the prefix) of a layout. Raises: ValueError."""
    if layout == "uniform":
        return [f"{i:06d}.bin" for i in range(n)]
    if layout == "skewed":
        big = n - n // 100
        rest = n - big
        chars = "abcxyzABCXYZ09-._~!éü日"
        return ([f"big/{i:06d}" for i in range(big)]
                + [f"{chars[i % len(chars)]}{i}/{i % 7}" for i in range(rest)])
    raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")


def run_list_bench(client: Client, prefix: str, *, keys: int = 100_000, layout: str = "uniform",
                   latency_ms: float = 0.0, rounds: int = 3, max_in_flight: int = 32,
                   log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the benchmark (see the module docs) and return its report: ``{"kind": "list",
    "config", "runs": {case: [...]}, "summary": {case: medians, "speedup"}, "environment"}``
    (seconds; keys/s).

    Raises: ValueError (bad arguments), FileNotFoundError (no bucket), PermissionError,
    AssertionError (the two listings differ)."""
    for name, v in (("keys", keys), ("rounds", rounds), ("max_in_flight", max_in_flight)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    root = parse_uri(prefix)
    if root.scheme != "s3":
        raise ValueError(f"the list benchmark needs an s3:// prefix, got {prefix!r}")
    base = root.joinpath(f"list-{layout}-{keys}/")
    names = layout_keys(layout, keys)
    have = client.list_objects(str(base), fast=True)
    if len(have) != keys:
        if have:
            client.delete(str(base))
        log(f"creating {keys:,} keys ({layout}) under {base} ...")
        t0 = time.perf_counter()
        client.put_many(((base.joinpath(k), b"") for k in names), max_in_flight=64)
        log(f"  {time.perf_counter() - t0:.1f} s")
    proxy = None
    try:
        cfg = client.config.replace(max_in_flight=max_in_flight)
        if latency_ms:
            from .latency import LatencyProxy

            if not cfg.endpoint_url:
                raise ValueError("--latency-ms needs an http:// endpoint (the embedded server or "
                                 "--endpoint-url)")
            proxy = LatencyProxy(cfg.endpoint_url, latency_ms).start()
            cfg = dataclasses.replace(cfg, endpoint_url=proxy.endpoint_url)
        lister = Client(cfg)
        lister.list_objects(str(base.joinpath("warm-up-")))  # connections, credentials
        runs: dict[str, list[dict[str, Any]]] = {c: [] for c in CASES}
        reference: list[str] | None = None
        for r in range(rounds):
            order = list(CASES) if r % 2 == 0 else list(CASES)[::-1]
            for case in order:
                c0, t0 = cpu_seconds(), time.perf_counter()
                got = lister.list_objects(str(base), fast=case == "fastlist")
                wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
                got_keys = [i.key for i in got]
                if reference is None:
                    reference = got_keys
                if len(got_keys) != keys or got_keys != reference:
                    raise AssertionError(f"{case} listed {len(got_keys)} keys, not the "
                                         f"{keys} the other listing gave")
                runs[case].append({"wall_s": wall, "cpu_s": cpu, "keys": len(got_keys),
                                   "keys_per_s": len(got_keys) / wall})
                log(f"round {r + 1}/{rounds} {case:10s} {wall:7.3f} s  "
                    f"{len(got_keys) / wall:10,.0f} keys/s  CPU {cpu:.2f} s")
    finally:
        if proxy is not None:
            proxy.stop()
    summary: dict[str, Any] = {}
    for case, rs in runs.items():
        summary[case] = {"wall_s": median([x["wall_s"] for x in rs]),
                         "keys_per_s": median([x["keys_per_s"] for x in rs]),
                         "cpu_s": median([x["cpu_s"] for x in rs]),
                         "wall_s_samples": [x["wall_s"] for x in rs]}
    seq, fast = summary["sequential"]["wall_s"], summary["fastlist"]["wall_s"]
    summary["speedup"] = seq / fast if fast else None
    return {"kind": "list",
            "config": {"uri": str(base), "keys": keys, "layout": layout, "rounds": rounds,
                       "latency_ms": latency_ms, "max_in_flight": max_in_flight},
            "runs": runs, "summary": summary, "environment": environment([])}


def print_report(report: dict[str, Any], out: Any = None) -> None:
    """The report as text lines."""
    import sys

    out = out or sys.stdout
    cfg, s = report["config"], report["summary"]
    lat = f"+{cfg['latency_ms']:g} ms per request" if cfg["latency_ms"] else "no added latency"
    print(f"objio bench list: {cfg['keys']:,} keys ({cfg['layout']}) under {cfg['uri']}, {lat}, "
          f"median of {cfg['rounds']} rounds", file=out)
    print(f"  {'case':12s} {'seconds':>9s} {'keys/s':>12s} {'client CPU s':>13s}", file=out)
    for case in CASES:
        row = s[case]
        print(f"  {case:12s} {row['wall_s']:9.3f} {row['keys_per_s']:12,.0f} "
              f"{row['cpu_s']:13.2f}", file=out)
    if s.get("speedup"):
        print(f"  FastList speedup: {s['speedup']:.2f}x", file=out)
