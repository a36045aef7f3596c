"""Single-object streaming benchmark: objio's file-like reader and writer against boto3 and
obstore, on an embedded LocalS3Server (or, with ``--server azure|gcs``, Azurite or
fake-gcs-server: obstore's AzureStore / GCSStore, no boto3), in the same run.

    objio bench stream [--size 1GiB] [--rounds 3] [--chunk 8MiB] [--server s3|azure|gcs]
                       [--json FILE]

Operations (each run in a fresh forked process, rounds interleaved between libraries):

* write: ``objio.open(uri, "wb").write`` in ``--chunk`` pieces, vs boto3 ``upload_fileobj``
  with its default TransferConfig (10 threads, 8 MiB parts).
* read: ``objio.open(uri, "rb").readinto`` of a ``--chunk`` buffer to the end, vs boto3
  ``download_fileobj`` (default TransferConfig) into a sink that discards, vs obstore
  ``get(...).stream()`` and ``open_reader(...).read(chunk)``.

Each library's import and client construction happen before the timer starts; the timed part
is the transfer, including connection setup. The order of the libraries rotates each round.
Reported per run: MiB/s, client CPU seconds (user + system of the process: all threads), the
server's CPU seconds over the same time, both also per MiB (ms), and peak RSS growth during
the run (MiB). The summary gives medians and objio/peer ratios.
Every library is set up through its adapter in :mod:`objio.bench.peers`; obstore and boto3 are
imported only inside the forked children (obstore is not fork-safe).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any, cast

from ..api import Client
from ..config import MiB, format_size, plural
from ._common import median, rss_bytes
from .peers import LIBRARIES, Access, library

BUCKET = "objio-bench-io"


_SEED_BLOCK = 64 * MiB


def _payload(size: int) -> bytes:
    """Deterministic incompressible-looking data: a random block repeated."""
    import numpy as np

    block = np.random.default_rng(1234).bytes(min(size, _SEED_BLOCK)) if size else b""
    reps = -(-size // max(1, len(block))) if size else 0
    return (block * reps)[:size]


CASES: dict[str, dict[str, tuple[str, str]]] = {
    "write": {"objio": ("objio", "stream_writer"), "boto3": ("boto3", "stream_writer")},
    "read": {"objio": ("objio", "stream_reader"), "boto3": ("boto3", "stream_reader"),
             "obstore-get": ("obstore", "stream_reader"),
             "obstore-reader": ("obstore", "file_reader")},
}
"""Per operation, each case's label -> (library, adapter method of :mod:`objio.bench.peers`
that sets up the timed transfer)."""


def _setup(op: str, case: tuple[str, str], env: dict[str, Any]) -> Callable[[], Any]:
    """Import the library and build its client (not timed); returns the transfer to time."""
    lib = library(case[0], env["access"])
    method = getattr(lib, case[1])
    if op == "write":
        data = _payload(env["size"])
        return cast(Callable[[], Any], method(BUCKET, env["key"], data, env["chunk"]))
    read = cast(Callable[[], int], method(BUCKET, "src", env["chunk"]))

    def run() -> None:
        n = read()
        if n != env["size"]:
            raise AssertionError(f"read {n} bytes, expected {env['size']}")

    return run


def _child(op: str, case: tuple[str, str], env: dict[str, Any], conn: Any) -> None:
    try:
        fn = _setup(op, case, env)
        rss0 = rss_bytes()
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        fn()
        wall = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        peak = ru1.ru_maxrss * 1024  # KiB on Linux
        conn.send({"ok": True, "wall_s": wall,
                   "cpu_s": (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime),
                   "peak_rss_delta_mib": max(0, peak - rss0) / MiB})
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        conn.send({"ok": False, "error": f"{type(e).__name__}: {e}",
                   "trace": traceback.format_exc()})
    finally:
        conn.close()
        os._exit(0)


def _server_cpu_s(pid: int | None) -> float | None:
    """CPU seconds (user + system) used so far by the server process, if readable."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _measure(op: str, case: tuple[str, str], env: dict[str, Any], timeout_s: float,
             server_pid: int | None = None,
             server_cpu: Callable[[], float | None] | None = None) -> dict[str, Any]:
    def cpu() -> float | None:
        return server_cpu() if server_cpu is not None else _server_cpu_s(server_pid)

    s0 = cpu()
    res = _measure_child(op, case, env, timeout_s)
    s1 = cpu()
    if s0 is not None and s1 is not None:
        res["server_cpu_s"] = s1 - s0
    return res


def _measure_child(op: str, case: tuple[str, str], env: dict[str, Any],
                   timeout_s: float) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_child, args=(op, case, env, child))
    p.start()
    child.close()
    try:
        if not parent.poll(timeout_s):
            p.kill()
            return {"ok": False, "error": f"timed out after {timeout_s}s"}
        return dict(parent.recv())
    except EOFError:
        return {"ok": False, "error": f"child exited with {p.exitcode}"}
    finally:
        p.join(10)


def run(size: int, rounds: int, chunk: int, server: Any = None,
        ops: Sequence[str] = ("write", "read"), timeout_s: float = 600.0,
        log: Callable[[str], None] = print,
        libs: Sequence[str] | None = None, scheme: str = "s3") -> dict[str, Any]:
    """Run the benchmark on ``server`` (a started local server whose objects have the URI
    ``scheme``: a LocalS3Server for ``s3``, a LocalAzureServer for ``az``, a LocalGCSServer
    for ``gs``; a LocalS3Server is started when None) and return the report (see
    :func:`print_report`). ``libs`` limits the libraries run (labels as in :data:`CASES`,
    e.g. ``["objio", "boto3"]``); default: all that reach ``scheme`` (boto3 only ``s3``).
    The server's CPU per run comes from its ``cpu_seconds()`` where it has one."""
    from ..server import LocalS3Server

    if server is None:
        with LocalS3Server() as srv:
            return run(size, rounds, chunk, srv, ops, timeout_s, log, libs)
    client = Client(server.config)
    client.create_bucket(f"{scheme}://{BUCKET}", exist_ok=True)
    log(f"uploading the {format_size(size)} source object ...")
    uploader = client
    if scheme == "gs":
        # one upload request: fake-gcs-server composes a large object's parts (objio's
        # composite upload) in memory slowly enough to time out on a loaded machine
        import dataclasses

        uploader = Client(dataclasses.replace(client.config, range_threshold=size + 1))
    uploader.put_bytes(f"{scheme}://{BUCKET}/src", _payload(size))
    env_base = {"access": Access.from_client(client, scheme=scheme), "size": size,
                "chunk": chunk}
    proc = getattr(server, "_proc", None)
    server_pid = proc.pid if proc is not None else None
    server_cpu = getattr(server, "cpu_seconds", None)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {op: {} for op in ops}
    for r in range(rounds):
        for op in ops:
            chosen = [(k, c) for k, c in CASES[op].items() if (libs is None or k in libs)
                      and scheme in LIBRARIES[c[0]].schemes]
            if not chosen:
                continue
            k = r % len(chosen)
            for lib, case in chosen[k:] + chosen[:k]:  # the order rotates each round
                # A fresh key per write: overwriting would make the server delete the
                # previous object while the next upload is measured.
                env = dict(env_base, key=f"w-{lib}-{r}")
                if server_pid is not None:
                    # A server on this machine's disk: every run starts with the dirty pages
                    # written back (untimed). Past vm.dirty_ratio Linux throttles writers,
                    # whichever library is running then (see objio.bench.ops.run_ops).
                    os.sync()
                res = _measure(op, case, env, timeout_s, server_pid, server_cpu)
                if res.get("ok"):
                    res["mib_s"] = size / MiB / res["wall_s"]
                    res["cpu_ms_per_mib"] = 1000.0 * res["cpu_s"] / (size / MiB)
                    if res.get("server_cpu_s") is not None:
                        res["server_cpu_ms_per_mib"] = 1000.0 * res["server_cpu_s"] / (size / MiB)
                    scpu = res.get("server_cpu_s")
                    log(f"round {r + 1}/{rounds} {op:5s} {lib:15s} {res['mib_s']:8.1f} MiB/s  "
                        f"cpu {res['cpu_s']:6.2f} s  server cpu "
                        f"{'?' if scpu is None else f'{scpu:6.2f}'} s  "
                        f"peak RSS +{res['peak_rss_delta_mib']:.0f} MiB")
                else:
                    log(f"round {r + 1}/{rounds} {op:5s} {lib:15s} FAILED: {res.get('error')}")
                results[op].setdefault(lib, []).append(res)
    if "write" in ops and (libs is None or "objio" in libs):  # objio wrote the payload
        got = client.get(f"{scheme}://{BUCKET}/w-objio-{rounds - 1}")
        ok = bytes(got) == _payload(size)
        del got
        log(f"objio-written object verified: {ok}")
        if not ok:
            raise AssertionError("the object written by objio differs from the payload")
    return {"size": size, "rounds": rounds, "chunk": chunk, "python": sys.version.split()[0],
            "scheme": scheme, "results": results, "summary": summarize(results)}


def summarize(results: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for op, libs in results.items():
        rows: dict[str, Any] = {}
        for lib, runs in libs.items():
            ok = [x for x in runs if x.get("ok")]
            if not ok:
                rows[lib] = None
                continue
            rows[lib] = {
                "mib_s": median([x["mib_s"] for x in ok]),
                "cpu_s": median([x["cpu_s"] for x in ok]),
                "cpu_ms_per_mib": median([x.get("cpu_ms_per_mib") for x in ok]),
                "server_cpu_ms_per_mib": median([x.get("server_cpu_ms_per_mib") for x in ok]),
                "peak_rss_delta_mib": max(x["peak_rss_delta_mib"] for x in ok),
                "server_cpu_s": median([x.get("server_cpu_s") or 0.0 for x in ok]),
                "runs": len(ok),
            }
        mine = rows.get("objio")
        for lib, row in rows.items():
            if row is not None and lib != "objio" and mine is not None:
                row["objio_ratio"] = mine["mib_s"] / row["mib_s"]
        summary[op] = rows
    return summary


def print_report(report: dict[str, Any], out: Any = None) -> None:
    out = out or sys.stdout
    from .report import wrap

    print("\n" + wrap(f"single object of {format_size(report['size'])}, "
                      f"{format_size(report['chunk'])} chunks, median of "
                      f"{plural(report['rounds'], 'round')} (objio ratio = objio MiB/s / peer "
                      "MiB/s; srv: the server's CPU over the same time)"), file=out)
    print(f"{'op':6s} {'library':15s} {'MiB/s':>9s} {'CPU s':>7s} {'CPU ms/MiB':>10s} "
          f"{'srv CPU s':>9s} {'srv ms/MiB':>10s} {'peak RSS+':>10s} {'objio ratio':>11s}",
          file=out)

    def per_mib(v: float | None) -> str:
        return f"{'-':>10s}" if v is None else f"{v:10.2f}"

    for op, rows in report["summary"].items():
        for lib, row in rows.items():
            if row is None:
                print(f"{op:6s} {lib:15s} {'failed':>9s}", file=out)
                continue
            ratio = f"{row['objio_ratio']:.2f}x" if "objio_ratio" in row else ""
            print(f"{op:6s} {lib:15s} {row['mib_s']:9.1f} {row['cpu_s']:7.2f} "
                  f"{per_mib(row.get('cpu_ms_per_mib'))} {row['server_cpu_s']:9.2f} "
                  f"{per_mib(row.get('server_cpu_ms_per_mib'))} "
                  f"{row['peak_rss_delta_mib']:6.0f} MiB {ratio:>11s}", file=out)
