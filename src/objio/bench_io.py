"""Single-object streaming benchmark: objio's file-like reader and writer against boto3 and
obstore, on an embedded LocalS3Server, in the same run.

    python -m objio.bench_io [--size 1GiB] [--rounds 3] [--chunk 8MiB] [--json FILE]

Operations (each run in a fresh forked process, rounds interleaved between libraries):

* write: ``objio.open(uri, "wb").write`` in ``--chunk`` pieces, vs boto3 ``upload_fileobj``
  with its default TransferConfig (10 threads, 8 MiB parts).
* read: ``objio.open(uri, "rb").readinto`` of a ``--chunk`` buffer to the end, vs boto3
  ``download_fileobj`` (default TransferConfig) into a sink that discards, vs obstore
  ``get(...).stream()`` and ``open_reader(...).read(chunk)``.

Each library's import and client construction happen before the timer starts; the timed part
is the transfer, including connection setup. The order of the libraries rotates each round.
Reported per run: MiB/s, client CPU seconds (user + system of the process: all threads), the
server's CPU seconds over the same time, and peak RSS growth during the run (MiB). The
summary gives medians and objio/peer ratios.
obstore and boto3 are imported only inside the forked children (obstore is not fork-safe).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
import traceback
from typing import Any, Callable, Sequence

from .config import MiB, format_size, parse_size

BUCKET = "objio-bench-io"
_SEED_BLOCK = 64 * MiB


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _payload(size: int) -> bytes:
    """Deterministic incompressible-looking data: a random block repeated."""
    import numpy as np

    block = np.random.default_rng(1234).bytes(min(size, _SEED_BLOCK)) if size else b""
    reps = -(-size // max(1, len(block))) if size else 0
    return (block * reps)[:size]


# --------------------------------------------------------------------------- the runs
# Each setup function (not timed) imports its library, builds its client and returns the
# transfer to time: a callable of no arguments.
Setup = Callable[[dict[str, Any], bytes], Callable[[], None]]


def _objio_client(env: dict[str, Any]) -> Any:
    import objio

    return objio.Client(objio.ClientConfig(**env["config"]))


def _setup_objio_write(env: dict[str, Any], data: bytes) -> Callable[[], None]:
    from .io import open as oopen

    client, chunk, mv = _objio_client(env), env["chunk"], memoryview(data)

    def run() -> None:
        with oopen(f"s3://{BUCKET}/{env['key']}", "wb", client=client) as f:
            for off in range(0, len(mv), chunk):
                f.write(mv[off: off + chunk])

    return run


def _setup_objio_read(env: dict[str, Any], _: bytes) -> Callable[[], None]:
    from .io import open as oopen

    client, buf = _objio_client(env), bytearray(env["chunk"])

    def run() -> None:
        n = 0
        with oopen(f"s3://{BUCKET}/src", "rb", client=client) as f:
            while got := f.readinto(buf):
                n += got
        assert n == env["size"], (n, env["size"])

    return run


def _boto3_client(env: dict[str, Any]) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", endpoint_url=env["endpoint_url"], region_name=env["region"],
        aws_access_key_id=env["access_key_id"], aws_secret_access_key=env["secret_access_key"],
        config=Config(s3={"addressing_style": "path"}))


class _Sink:
    """A write-only file that discards what it gets (download target)."""

    def __init__(self) -> None:
        self.n = 0

    def write(self, b: Any) -> int:
        self.n += len(b)
        return len(b)


def _setup_boto3_write(env: dict[str, Any], data: bytes) -> Callable[[], None]:
    import io

    client = _boto3_client(env)
    return lambda: client.upload_fileobj(io.BytesIO(data), BUCKET, env["key"])


def _setup_boto3_read(env: dict[str, Any], _: bytes) -> Callable[[], None]:
    client = _boto3_client(env)

    def run() -> None:
        sink = _Sink()
        client.download_fileobj(BUCKET, "src", sink)
        assert sink.n == env["size"], (sink.n, env["size"])

    return run


def _obstore_store(env: dict[str, Any]) -> Any:
    from obstore.store import S3Store

    return S3Store(BUCKET, endpoint=env["endpoint_url"], region=env["region"],
                   access_key_id=env["access_key_id"],
                   secret_access_key=env["secret_access_key"],
                   virtual_hosted_style_request=False, client_options={"allow_http": True})


def _setup_obstore_get(env: dict[str, Any], _: bytes) -> Callable[[], None]:
    import obstore

    store = _obstore_store(env)

    def run() -> None:
        n = 0
        for chunk in obstore.get(store, "src").stream(min_chunk_size=env["chunk"]):
            n += len(memoryview(chunk))
        assert n == env["size"], (n, env["size"])

    return run


def _setup_obstore_reader(env: dict[str, Any], _: bytes) -> Callable[[], None]:
    import obstore

    store, chunk = _obstore_store(env), env["chunk"]

    def run() -> None:
        n = 0
        f = obstore.open_reader(store, "src", buffer_size=chunk)
        while k := len(memoryview(f.read(chunk))):
            n += k
        assert n == env["size"], (n, env["size"])

    return run


RUNS: dict[str, dict[str, Setup]] = {
    "write": {"objio": _setup_objio_write, "boto3": _setup_boto3_write},
    "read": {"objio": _setup_objio_read, "boto3": _setup_boto3_read,
             "obstore-get": _setup_obstore_get, "obstore-reader": _setup_obstore_reader},
}


def _child(setup: Setup, env: dict[str, Any], conn: Any) -> None:
    try:
        data = _payload(env["size"]) if env["needs_data"] else b""
        fn = setup(env, data)
        rss0 = _rss_bytes()
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


def _measure(fn: Setup, env: dict[str, Any], timeout_s: float,
             server_pid: int | None = None) -> dict[str, Any]:
    s0 = _server_cpu_s(server_pid)
    res = _measure_child(fn, env, timeout_s)
    s1 = _server_cpu_s(server_pid)
    if s0 is not None and s1 is not None:
        res["server_cpu_s"] = s1 - s0
    return res


def _measure_child(fn: Setup, env: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_child, args=(fn, env, child))
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


# --------------------------------------------------------------------------- driver
def run(size: int, rounds: int, chunk: int, server: Any = None,
        ops: Sequence[str] = ("write", "read"), timeout_s: float = 600.0,
        log: Callable[[str], None] = print,
        libs: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark on ``server`` (a started LocalS3Server; one is started when None)
    and return the report (see :func:`print_report`). ``libs`` limits the libraries run
    (names as in :data:`RUNS`, e.g. ``["objio", "boto3"]``); default: all."""
    from .server import LocalS3Server

    if server is None:
        with LocalS3Server() as srv:
            return run(size, rounds, chunk, srv, ops, timeout_s, log, libs)
    import objio

    cfg = server.config
    client = objio.Client(cfg)
    client.create_bucket(f"s3://{BUCKET}", exist_ok=True)
    log(f"uploading the {format_size(size)} source object ...")
    client.put_bytes(f"s3://{BUCKET}/src", _payload(size))
    env_base = {
        "config": {"endpoint_url": cfg.endpoint_url, "region": cfg.region,
                   "access_key_id": cfg.access_key_id, "secret_access_key": cfg.secret_access_key},
        "endpoint_url": server.endpoint_url, "region": server.region,
        "access_key_id": server.access_key_id, "secret_access_key": server.secret_access_key,
        "size": size, "chunk": chunk,
    }
    proc = getattr(server, "_proc", None)
    server_pid = proc.pid if proc is not None else None
    results: dict[str, dict[str, list[dict[str, Any]]]] = {op: {} for op in ops}
    for r in range(rounds):
        for op in ops:
            chosen = [(k, f) for k, f in RUNS[op].items() if libs is None or k in libs]
            if not chosen:
                continue
            k = r % len(chosen)
            for lib, fn in chosen[k:] + chosen[:k]:  # the order rotates each round
                # A fresh key per write: overwriting would make the server delete the
                # previous object while the next upload is measured.
                env = dict(env_base, needs_data=(op == "write"), key=f"w-{lib}-{r}")
                res = _measure(fn, env, timeout_s, server_pid)
                if res.get("ok"):
                    res["mib_s"] = size / MiB / res["wall_s"]
                    scpu = res.get("server_cpu_s")
                    log(f"round {r + 1}/{rounds} {op:5s} {lib:15s} {res['mib_s']:8.1f} MiB/s  "
                        f"cpu {res['cpu_s']:6.2f} s  server cpu "
                        f"{'?' if scpu is None else f'{scpu:6.2f}'} s  "
                        f"peak RSS +{res['peak_rss_delta_mib']:.0f} MiB")
                else:
                    log(f"round {r + 1}/{rounds} {op:5s} {lib:15s} FAILED: {res.get('error')}")
                results[op].setdefault(lib, []).append(res)
    if "write" in ops and (libs is None or "objio" in libs):  # objio wrote the payload
        got = client.get(f"s3://{BUCKET}/w-objio-{rounds - 1}")
        ok = bytes(got) == _payload(size)
        del got
        log(f"objio-written object verified: {ok}")
        if not ok:
            raise AssertionError("the object written by objio differs from the payload")
    return {"size": size, "rounds": rounds, "chunk": chunk, "python": sys.version.split()[0],
            "results": results, "summary": summarize(results)}


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
                "mib_s": statistics.median(x["mib_s"] for x in ok),
                "cpu_s": statistics.median(x["cpu_s"] for x in ok),
                "peak_rss_delta_mib": max(x["peak_rss_delta_mib"] for x in ok),
                "server_cpu_s": statistics.median(x.get("server_cpu_s") or 0.0 for x in ok),
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
    print(f"\nsingle object of {format_size(report['size'])}, {report['chunk'] // MiB} MiB "
          f"chunks, median of {report['rounds']} rounds (objio ratio = objio MiB/s / peer MiB/s)",
          file=out)
    print(f"{'op':6s} {'library':15s} {'MiB/s':>9s} {'CPU s':>7s} {'server CPU s':>13s} "
          f"{'peak RSS+':>10s} {'objio ratio':>12s}", file=out)
    for op, rows in report["summary"].items():
        for lib, row in rows.items():
            if row is None:
                print(f"{op:6s} {lib:15s} {'failed':>9s}", file=out)
                continue
            ratio = f"{row['objio_ratio']:.2f}x" if "objio_ratio" in row else ""
            print(f"{op:6s} {lib:15s} {row['mib_s']:9.1f} {row['cpu_s']:7.2f} "
                  f"{row['server_cpu_s']:13.2f} {row['peak_rss_delta_mib']:6.0f} MiB "
                  f"{ratio:>12s}", file=out)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m objio.bench_io", description=__doc__.split("\n")[0])
    p.add_argument("--size", default="1GiB", help="object size (default 1GiB)")
    p.add_argument("--rounds", type=int, default=3, help="rounds, interleaved (default 3)")
    p.add_argument("--chunk", default="8MiB", help="read/write call size (default 8MiB)")
    p.add_argument("--ops", default="write,read", help="comma list: write, read")
    p.add_argument("--libs", default=None,
                   help="comma list of libraries (objio, boto3, obstore-get, obstore-reader); "
                        "default: all")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    args = p.parse_args(argv)
    size = parse_size(args.size, "--size")
    chunk = parse_size(args.chunk, "--chunk")
    if args.rounds < 1 or chunk < 1:
        p.error("--rounds and --chunk must be >= 1")
    ops = [o.strip() for o in args.ops.split(",") if o.strip()]
    if not ops or set(ops) - set(RUNS):
        p.error(f"--ops must be a comma list of {', '.join(RUNS)}")
    libs = None
    if args.libs:
        libs = [x.strip() for x in args.libs.split(",") if x.strip()]
        known = {k for runs in RUNS.values() for k in runs}
        if not libs or set(libs) - known:
            p.error(f"--libs must be a comma list of {', '.join(sorted(known))}")
    report = run(size, args.rounds, chunk, ops=ops, libs=libs)
    print_report(report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
