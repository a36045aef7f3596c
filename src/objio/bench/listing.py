"""``objio bench list``: objio's listings against obstore's and boto3's, on the same keys.

    objio bench list [s3://bucket/prefix] [--keys 100000] [--latency-ms 20] [--rounds 3]
                     [--layout uniform|skewed] [--peers obstore,boto3] [--json FILE]
                     [--plot FILE.png]

The keys (empty objects) are created once under the prefix (``list-<layout>-<keys>/``;
kept for the next run). Each round lists the prefix once per case, the cases in an order
rotated from round to round, and checks that every case returned the same keys:

* ``sequential``: ``objio.list_objects(prefix)`` (one ListObjectsV2 request after another,
  1000 keys each, an ObjectInfo per key);
* ``keys``: ``objio.list(prefix)`` (the same requests, keys only: sizes, dates and ETags are
  never decoded);
* ``fastlist``: ``list_objects(prefix, fast=True)`` (:mod:`objio.fastlist`);
* ``obstore``, ``boto3``: their sequential listings
  (:meth:`objio.bench.peers.Library.prefix_lister`: ``obstore.list`` in batches of 1000,
  the ``list_objects_v2`` paginator), each with every object's metadata, as ``sequential``.

Reported (medians over rounds): seconds, keys/s, client CPU seconds (the whole process, all
threads) and CPU microseconds per key; each case's keys/s and CPU per key relative to
obstore's; FastList's speedup over the sequential listing. ``--latency-ms N`` puts a delay
proxy (:mod:`objio.bench.latency`) between every client and the server, adding N ms to every
request as a store in another region would: listing is latency-bound there.

Layouts: ``uniform`` is ``{i:06d}.bin``; ``skewed`` puts 99% of the keys under ``big/`` and
spreads the rest over other names (characters before and after ``/``, unicode).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from ..api import Client
from ..config import plural
from ..uri import parse_uri
from ._common import cpu_seconds, environment, median, one_line
from .peers import LIBRARIES, Access

LAYOUTS = ("uniform", "skewed")
CASES = ("sequential", "keys", "fastlist")
"""objio's cases, in their order."""
PEER_CASES = ("obstore", "boto3")
"""The peers whose sequential listing is measured
(:meth:`objio.bench.peers.Library.prefix_lister`)."""


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


def ensure_keys(client: Client, base: str, keys: int, layout: str,
                log: Callable[[str], None] = print) -> None:
    """Create the ``keys`` keys of ``layout`` (empty objects) under ``base`` (a ``/``-terminated
    prefix) unless exactly that many are there (kept for the next run)."""
    root = parse_uri(base)
    names = layout_keys(layout, keys)
    have = client.list(base, fast=True)
    if len(have) != keys:
        if have:
            client.delete(base)
        log(f"creating {keys:,} keys ({layout}) under {base} ...")
        t0 = time.perf_counter()
        client.put_many(((root.joinpath(k), b"") for k in names), max_in_flight=64)
        log(f"  {time.perf_counter() - t0:.1f} s")


def run_list_bench(client: Client, prefix: str, *, keys: int = 100_000, layout: str = "uniform",
                   latency_ms: float = 0.0, rounds: int = 3, max_in_flight: int = 32,
                   peers: list[str] | None = None,
                   log: Callable[[str], None] = print,
                   server_cpu: Callable[[], float | None] | None = None) -> dict[str, Any]:
    """Run the benchmark (see the module docs) and return its report: ``{"kind": "list",
    "config", "runs": {case: [...]}, "summary": {case: medians, "speedup"}, "skipped":
    {peer: reason}, "environment"}`` (seconds; keys/s; CPU microseconds per key).
    ``peers``: of :data:`PEER_CASES` (None: every one installed). ``server_cpu``: the
    server's CPU seconds so far (:meth:`objio.server.LocalS3Server.cpu_seconds`, a server on
    this machine): each case then also reports the server's CPU microseconds per key
    (``server_us_per_key``), which bounds a sequential listing's keys/s whoever the client is.

    Raises: ValueError (bad arguments), FileNotFoundError (no bucket), PermissionError,
    AssertionError (two listings differ)."""
    for name, v in (("keys", keys), ("rounds", rounds), ("max_in_flight", max_in_flight)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    wanted = list(PEER_CASES) if peers is None else list(peers)
    unknown = [p for p in wanted if p not in PEER_CASES]
    if unknown:
        raise ValueError(f"peers must be among {', '.join(PEER_CASES)}, got {unknown}")
    root = parse_uri(prefix)
    if root.scheme != "s3":
        raise ValueError(f"the list benchmark needs an s3:// prefix, got {prefix!r}")
    base = root.joinpath(f"list-{layout}-{keys}/")
    ensure_keys(client, str(base), keys, layout, log)
    proxy = None
    skipped: dict[str, str] = {}
    try:
        cfg = client.config.replace(max_in_flight=max_in_flight)
        if latency_ms:
            from .latency import LatencyProxy

            if not cfg.endpoint_url:
                raise ValueError("--latency-ms needs an http:// endpoint (the embedded server or "
                                 "--endpoint-url)")
            proxy = LatencyProxy(cfg.endpoint_urls[0], latency_ms).start()  # the first of several
            cfg = dataclasses.replace(cfg, endpoint_url=proxy.endpoint_url)
        lister = Client(cfg)
        uri = str(base)
        cases: dict[str, Callable[[], list[str]]] = {
            "sequential": lambda: [i.key for i in lister.list_objects(uri)],
            "keys": lambda: lister.list(uri),
            "fastlist": lambda: [i.key for i in lister.list_objects(uri, fast=True)],
        }
        access = Access.from_client(lister)
        for name in wanted:
            lib = LIBRARIES[name]
            if not lib.installed():
                skipped[name] = f"{lib.dist} is not installed"
                continue
            try:
                cases[name] = lib(access).prefix_lister(base.bucket, base.key)
            except Exception as e:  # noqa: BLE001 - reported as skipped
                skipped[name] = one_line(e)
        for run in cases.values():  # connections, credentials, imports: never timed
            run()
        runs: dict[str, list[dict[str, Any]]] = {c: [] for c in cases}
        reference: list[str] | None = None
        order = list(cases)
        for r in range(rounds):
            shift = r % len(order)
            for case in order[shift:] + order[:shift]:
                s0 = server_cpu() if server_cpu is not None else None
                c0, t0 = cpu_seconds(), time.perf_counter()
                got_keys = cases[case]()
                wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
                s1 = server_cpu() if server_cpu is not None else None
                if reference is None:
                    reference = got_keys
                if len(got_keys) != keys or got_keys != reference:
                    raise AssertionError(f"{case} listed {len(got_keys)} keys, not the "
                                         f"{keys} the other listings gave")
                runs[case].append({"wall_s": wall, "cpu_s": cpu, "keys": len(got_keys),
                                   "keys_per_s": len(got_keys) / wall,
                                   "cpu_us_per_key": cpu / len(got_keys) * 1e6})
                if s0 is not None and s1 is not None:
                    runs[case][-1]["server_us_per_key"] = (s1 - s0) / len(got_keys) * 1e6
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
                         "cpu_us_per_key": median([x["cpu_us_per_key"] for x in rs]),
                         "wall_s_samples": [x["wall_s"] for x in rs]}
        server = [x["server_us_per_key"] for x in rs if "server_us_per_key" in x]
        if server:
            summary[case]["server_us_per_key"] = median(server)
    if "obstore" in summary:
        ref = summary["obstore"]
        for row in summary.values():
            row["keys_per_s_vs_obstore"] = row["keys_per_s"] / ref["keys_per_s"]
            row["cpu_per_key_vs_obstore"] = row["cpu_us_per_key"] / ref["cpu_us_per_key"]
    seq, fast = summary["sequential"]["wall_s"], summary["fastlist"]["wall_s"]
    summary["speedup"] = seq / fast if fast else None
    return {"kind": "list",
            "config": {"uri": str(base), "keys": keys, "layout": layout, "rounds": rounds,
                       "latency_ms": latency_ms, "max_in_flight": max_in_flight,
                       "cases": list(runs)},
            "runs": runs, "summary": summary, "skipped": skipped,
            "environment": environment([n for n in runs if n in PEER_CASES])}


def print_report(report: dict[str, Any], out: Any = None) -> None:
    """The report as text lines."""
    import sys

    from .report import wrap

    out = out or sys.stdout
    cfg, s = report["config"], report["summary"]
    lat = f"+{cfg['latency_ms']:g} ms per request" if cfg["latency_ms"] else "no added latency"
    print(wrap(f"objio bench list: {plural(cfg['keys'], 'key')} ({cfg['layout']}) under "
               f"{cfg['uri']}, {lat}, median of {plural(cfg['rounds'], 'round')}"), file=out)
    vs = "obstore" in s
    head = f"  {'case':12s} {'seconds':>9s} {'keys/s':>12s} {'CPU us/key':>11s}"
    if vs:
        head += f" {'keys/s vs obstore':>18s} {'CPU/key vs obstore':>19s}"
    print(head, file=out)
    for case in cfg.get("cases", CASES):
        row = s[case]
        line = (f"  {case:12s} {row['wall_s']:9.3f} {row['keys_per_s']:12,.0f} "
                f"{row['cpu_us_per_key']:11.2f}")
        if vs:
            line += (f" {row['keys_per_s_vs_obstore']:17.2f}x "
                     f"{row['cpu_per_key_vs_obstore']:18.2f}x")
        print(line, file=out)
    server = [f"{case} {s[case]['server_us_per_key']:.1f}" for case in cfg.get("cases", CASES)
              if s.get(case, {}).get("server_us_per_key") is not None]
    if server:
        from .report import wrap

        print(wrap("  server CPU us/key (the embedded server, same cores): " + ", ".join(server)),
              file=out)
    if s.get("speedup"):
        print(f"  FastList speedup over sequential: {s['speedup']:.2f}x", file=out)
    for name, why in report.get("skipped", {}).items():
        print(f"  {name}: skipped ({why})", file=out)
