"""``objio bench``: a DLIO-style put + get benchmark, optionally against peer libraries.

The benchmark writes ``num`` synthetic objects of ``size`` bytes (``RAW``, ``NPZ``,
``TFRECORD`` or ``HDF5``, see :mod:`objio.formats`) under a prefix, reads all of them back
``epochs`` times, and reports per phase:

* throughput in MiB/s (MiB = 2**20 bytes) and objects/s, over the phase's wall time (seconds);
* per-request latency percentiles p50/p90/p99 in milliseconds, of the time to first byte
  (GET only) and of the whole transfer;
* client CPU time in seconds (user + system of the whole process, all threads, from
  ``getrusage(RUSAGE_SELF)``), and CPU milliseconds per object and per MiB.

With ``compare`` the same objects are also read, in the same process and with the same
``max_in_flight``, by peer libraries (``obstore``, ``boto3``, ``s3torchconnector``,
``s3dlio``), interleaved epoch by epoch (objio, then each peer, then the next epoch) so that
machine noise hits every tool alike. Each tool's result is the median over epochs, and
``objio_ratio`` is objio's median MiB/s divided by the tool's (above 1: objio is faster).
A peer that is not installed, or fails, is reported as skipped with a one-line reason.

Without a URI the CLI starts an embedded SeaweedFS server (:class:`objio.server.LocalS3Server`)
on loopback, so the numbers then measure the client stack plus a local server, not a network;
``--server azure|gcs`` starts Azurite or fake-gcs-server instead (``az://``, ``gs://``: only
obstore among the peers reaches them, through its AzureStore / GCSStore). With a server on
this machine, each tool's get runs also report the server's CPU (``server_cpu_s``,
``server_cpu_ms_per_mib``), from its ``cpu_seconds()``.

Python API: :func:`run_bench` returns the report as a JSON-ready dict; :func:`print_report`
renders it. The command line (``objio bench``, ``python -m objio.bench``) is
:mod:`objio.cli.bench`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..api import Client
from ..config import MiB, format_size, parse_size, plural
from ..engine import RequestRecord
from ..uri import ObjectURI, parse_uri
from ._common import (
    cpu_seconds,
    endpoint_lines,
    endpoint_report,
    environment,
    median,
    one_line,
    percentiles_ms,
)
from .ops import parse_ops, print_ops, run_ops
from .peers import PEERS, Access, Advance, Getter, library
from .report import Progress, fmt, latencies

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

__all__ = ["PEERS", "DEFAULT_PREFIX", "TEMPLATE", "parse_peers", "run_bench", "print_report"]


DEFAULT_PREFIX = "bench/"
"""Prefix used on the embedded server when no URI is given."""


TEMPLATE = "object_{}_of_{}.dat"
"""Object names under the prefix: ``TEMPLATE.format(index, num)``."""


def parse_peers(value: str | Sequence[str] | None) -> list[str] | None:
    """Peer names from a comma list (``"obstore,boto3"``) or a sequence; None stays None
    (meaning all of :data:`PEERS`). Raises: ValueError naming an unknown peer."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    names: list[str] = []
    for item in items:
        name = item.strip().lower()
        if not name:
            continue
        if name not in PEERS:
            raise ValueError(f"unknown peer {item.strip()!r}; choose from {', '.join(PEERS)}")
        if name not in names:
            names.append(name)
    if not names:
        raise ValueError(f"--peers is empty; choose from {', '.join(PEERS)}")
    return names


def _record_weight(r: RequestRecord) -> tuple[int, int]:
    return 1, r.nbytes


def _pair_weight(p: tuple[int, int]) -> tuple[int, int]:
    return p


def _run_stats(objects: int, nbytes: int, wall_s: float, cpu_s: float,
               records: Sequence[RequestRecord] | None = None, *,
               ttfb: bool = True) -> dict[str, Any]:
    """Statistics of one run: counts, bytes, seconds, MiB/s, objects/s, CPU, latencies (ms)."""
    mib = nbytes / MiB
    out: dict[str, Any] = {
        "objects": objects,
        "bytes": nbytes,
        "wall_s": wall_s,
        "mib_per_s": mib / wall_s if wall_s > 0 else None,
        "objects_per_s": objects / wall_s if wall_s > 0 else None,
        "cpu_s": cpu_s,
        "cpu_ms_per_object": 1000.0 * cpu_s / objects if objects else None,
        "cpu_ms_per_mib": 1000.0 * cpu_s / mib if mib else None,
    }
    if records is not None:
        out["latency_ms"] = {
            "ttfb": percentiles_ms([r.ttfb_s for r in records]) if ttfb else None,
            "total": percentiles_ms([r.total_s for r in records]),
        }
    return out


def run_bench(
    client: Client,
    prefix_uri: str | ObjectURI,
    *,
    num: int,
    size: int | str,
    object_type: str = "RAW",
    max_in_flight: int = 64,
    epochs: int = 3,
    compare: bool = False,
    peers: str | Sequence[str] | None = None,
    seed: int = 0,
    keep: bool = False,
    progress: bool = False,
    peer_credentials: Mapping[str, Any] | None = None,
    console: Console | None = None,
    latency_samples: bool = False,
    ops: str | Sequence[str] | None = None,
    local_server: Any = None,
) -> dict[str, Any]:
    """Run the put + get benchmark (and the peer comparison) and return the report; with
    ``ops``, the other object operations too (:mod:`objio.bench.ops`).

    Args:
        client: the objio client to benchmark (its config also tells peers where to go).
        prefix_uri: ``s3://bucket/prefix``, ``az://container/prefix`` or
            ``gs://bucket/prefix`` (the bucket must exist); objects are written as
            ``prefix/object_{i}_of_{num}.dat``, overwriting same-named objects.
        num: number of objects (>= 1).
        size: bytes per object (an int or a string such as ``"128KiB"``; NPZ/TFRECORD/HDF5
            objects are at most this size, see :mod:`objio.formats`).
        object_type: ``RAW``, ``NPZ``, ``TFRECORD`` or ``HDF5`` (case-insensitive).
        max_in_flight: concurrent requests, for objio and every peer.
        epochs: how many times the objects are read back (>= 1).
        compare: also read the objects with the peer libraries, interleaved per epoch.
        peers: peer names (comma string or sequence), default all of :data:`PEERS` (those
            not installed are reported as skipped); used only with ``compare``.
        seed: seed of the synthetic data.
        keep: leave the objects in place (otherwise the ``object_*_of_{num}.dat`` objects under
            the prefix are deleted, also when the benchmark fails).
        progress: show rich progress bars on ``console`` (default: a stderr console).
        peer_credentials: overrides for the peers: any of ``endpoint_url``, ``region``,
            ``access_key_id``, ``secret_access_key``, ``session_token``, ``unsigned``,
            ``path_style``; by default the client's configuration and credentials are used.
        console: where progress bars go.
        latency_samples: also keep every objio GET's latencies (ms) in
            ``phases.get.latency_samples_ms`` (``{"ttfb": [...], "total": [...]}``: for plots).
        ops: the operations to measure (:data:`objio.bench.ops.OPS`: ``put``, ``get``,
            ``head``, ``list``, ``copy``, ``delete``, ``gen``; a comma string or a sequence),
            default ``put,get``. The put phase always runs (the other operations work on its
            objects); ``get`` is the get phase; the others (and ``put``, named with
            ``compare``) run ``epochs`` interleaved rounds of objio and every peer that has the
            operation, reported in ``ops``.
        local_server: the local server the client talks to, when it runs on this machine
            (the CLI's embedded LocalS3Server, LocalAzureServer or LocalGCSServer): each
            operation run then starts with the page cache's dirty pages written back (see
            :func:`objio.bench.ops.run_ops`) and reports the server's CPU per operation
            (``server_cpu_ms_per_op``), and every get run the server's CPU
            (``server_cpu_s``, ``server_cpu_ms_per_mib``).

    Returns:
        ``{"config", "server", "phases": {"put", "get": {"epochs", "summary"}}, "compare",
        "ops", "cleanup", "environment", "endpoints"}``; times in seconds, sizes in bytes, latencies in ms,
        throughput in MiB/s (2**20 bytes) and objects/s; ``compare`` maps each tool (objio
        first) to its per-epoch results, medians and ``objio_ratio``, or to
        ``{"status": "skipped", "reason": ...}``; ``ops`` maps each operation run to
        ``{"what", "unit", "tools": {tool: {"ops_per_s", "mib_per_s", "cpu_ms_per_op",
        "objio_ratio", "runs"} or {"status": "skipped", "reason"}}}``.
        ``endpoints``: the client's :meth:`objio.Client.endpoint_stats` after the run (one
        dict per S3 endpoint: requests, errors, bytes, latency p50/p99; counts since the
        client's first request in this process).

    Raises:
        ValueError: invalid arguments. FileNotFoundError (bucket missing), PermissionError,
        objio.ObjectStoreError: from objio's own put/get (peer failures are reported instead).
    """
    size_b = parse_size(size, "size")
    for name, v in (("num", num), ("epochs", epochs), ("max_in_flight", max_in_flight)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    from ..formats import normalize_object_type

    otype = normalize_object_type(object_type)
    prefix = parse_uri(prefix_uri)
    op_names = parse_ops(ops)
    peer_names = (parse_peers(peers) or list(PEERS)) if compare else []
    uris = [str(prefix.joinpath(TEMPLATE.format(i, num))) for i in range(num)]
    cfg = client.config

    report: dict[str, Any] = {
        "config": {
            "uri": str(prefix), "num": num, "size": size_b, "object_type": otype,
            "max_in_flight": max_in_flight, "epochs": epochs, "compare": compare,
            "peers": peer_names, "seed": seed, "keep": keep, "ops": op_names,
        },
        "server": _server_name(cfg, prefix.scheme),
        "phases": {},
        "compare": {},
        "ops": {},
        "cleanup": {},
        "environment": environment(PEERS),
    }
    if progress and console is None:
        from rich.console import Console

        console = Console(stderr=True)
    ok = False
    try:
        with Progress(progress, console) as prog:
            sizes = _put_phase(client, prefix, report, prog, num=num, size=size_b, otype=otype,
                               max_in_flight=max_in_flight, seed=seed)
            if "get" in op_names:
                _get_phases(client, prefix, uris, report, prog, epochs=epochs,
                            max_in_flight=max_in_flight, peer_names=peer_names,
                            peer_credentials=peer_credentials, latency_samples=latency_samples,
                            server_cpu=None if local_server is None
                            else getattr(local_server, "cpu_seconds", None))
        # put is compared only when asked for by name (the default put+get is today's run)
        measured = [op for op in op_names if op != "put" or ops is not None]
        report["ops"] = run_ops(client, prefix, measured, num=num, size=size_b,
                                max_in_flight=max_in_flight, rounds=epochs,
                                peer_names=peer_names, peer_credentials=peer_credentials,
                                uris=uris, sizes=[sizes[u] for u in uris], seed=seed,
                                settle=local_server is not None,
                                server_cpu=None if local_server is None
                                else local_server.cpu_seconds)
        ok = True
    finally:
        if keep:
            report["cleanup"] = {"kept": True, "deleted": 0}
        else:
            pattern = str(prefix.joinpath(TEMPLATE.format("*", num)))
            try:
                report["cleanup"] = {"kept": False, "deleted": client.delete(pattern)}
            except Exception:  # noqa: BLE001 - the benchmark's own error matters more
                if ok:
                    raise
    if prefix.scheme == "s3":
        report["endpoints"] = endpoint_report(client)
    return report


def _server_name(cfg: Any, scheme: str) -> str:
    """The store of a run, for the report: its endpoint(s), or what it is."""
    if scheme == "s3":
        return ", ".join(cfg.endpoint_urls) or f"AWS S3 ({cfg.region})"
    if scheme == "az":
        return cfg.azure_endpoint_url or f"Azure Blob Storage ({cfg.azure_account})"
    if scheme == "gs":
        return cfg.gcs_endpoint_url or "Google Cloud Storage"
    return "local files"


def _server_cpu_stats(stats: dict[str, Any], server_s: float | None) -> None:
    """Add the server's CPU over a run (``server_cpu_s``, ``server_cpu_ms_per_mib``) to its
    statistics, when the server runs on this machine."""
    if server_s is None:
        return
    mib = stats["bytes"] / MiB
    stats["server_cpu_s"] = server_s
    stats["server_cpu_ms_per_mib"] = 1000.0 * server_s / mib if mib else None


def _put_phase(client: Client, prefix: ObjectURI, report: dict[str, Any], prog: Progress, *,
               num: int, size: int, otype: str, max_in_flight: int, seed: int) -> dict[str, int]:
    """The put phase (objio alone); returns each object's size in bytes by URI."""
    records: list[RequestRecord] = []
    task = prog.add_task("put", num)
    with prog.track(task, "put", records, _record_weight):
        c0, t0 = cpu_seconds(), time.perf_counter()
        client.put(prefix, num=num, template=TEMPLATE, size=size, object_type=otype,
                   max_in_flight=max_in_flight, should_create_bucket=False, seed=seed,
                   observer=records.append)
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    report["phases"]["put"] = _run_stats(len(records), sum(r.nbytes for r in records), wall,
                                         cpu, records, ttfb=False)
    return {r.uri: r.nbytes for r in records}


def _get_phases(client: Client, prefix: ObjectURI, uris: list[str], report: dict[str, Any],
                prog: Progress, *, epochs: int, max_in_flight: int, peer_names: list[str],
                peer_credentials: Mapping[str, Any] | None, latency_samples: bool = False,
                server_cpu: Callable[[], float | None] | None = None) -> None:
    num = len(uris)
    expected_bytes = report["phases"]["put"]["bytes"]
    compare: dict[str, Any] = report["compare"]
    active: dict[str, Getter] = {}
    peer_runs: dict[str, list[dict[str, Any]]] = {}
    try:
        if peer_names:
            compare["objio"] = {"status": "ok", "version": __version__}
            access: Access | None = None
            try:
                if prefix.scheme not in ("s3", "az", "gs"):
                    raise ValueError("peers need an s3://, az:// or gs:// URI")
                access = Access.from_client(client, peer_credentials, scheme=prefix.scheme)
            except Exception as e:  # noqa: BLE001 - reported per peer, never a traceback
                for name in peer_names:
                    compare[name] = {"status": "skipped", "reason": one_line(e)}
            keys = [parse_uri(u).key for u in uris]
            for name in peer_names if access is not None else []:
                lib = library(name, access)  # type: ignore[arg-type]
                version = lib.version()
                if prefix.scheme not in lib.schemes:
                    compare[name] = {"status": "skipped", "version": version,
                                     "reason": f"reaches {', '.join(lib.schemes)} only, "
                                               f"not {prefix.scheme}://"}
                    continue
                if not lib.installed():
                    compare[name] = {"status": "skipped",
                                     "reason": f"not installed (pip install {lib.dist})"}
                    continue
                try:
                    getter = lib.getter(prefix.bucket, keys, uris, max_in_flight)
                except Exception as e:  # noqa: BLE001 - reported, never a traceback
                    compare[name] = {"status": "skipped", "version": version,
                                     "reason": f"setup failed: {one_line(e)}"}
                    continue
                active[name] = getter
                peer_runs[name] = []
                compare[name] = {"status": "ok", "version": version}

        task = prog.add_task("get", num * epochs * (1 + len(active)))
        epoch_stats: list[dict[str, Any]] = []
        all_records: list[RequestRecord] = []
        def run_objio(epoch: int) -> None:
            records: list[RequestRecord] = []
            with prog.track(task, f"get {epoch}/{epochs} objio", records, _record_weight):
                s0 = server_cpu() if server_cpu is not None else None
                c0, t0 = cpu_seconds(), time.perf_counter()
                count, nbytes = client.get_many_stats(uris, max_in_flight=max_in_flight,
                                                      observer=records.append)
                wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
                s1 = server_cpu() if server_cpu is not None else None
            stats = _run_stats(count, nbytes, wall, cpu, records)
            _server_cpu_stats(stats, None if s0 is None or s1 is None else s1 - s0)
            stats["epoch"] = epoch
            epoch_stats.append(stats)
            all_records.extend(records)

        def run_peer(name: str, epoch: int) -> None:
            try:
                s0 = server_cpu() if server_cpu is not None else None
                pcount, pbytes, wall, cpu = _timed_peer_run(
                    active[name], prog, task, f"get {epoch}/{epochs} {name}")
                s1 = server_cpu() if server_cpu is not None else None
                if (pcount, pbytes) != (num, expected_bytes):
                    raise RuntimeError(f"read {pcount} objects / {pbytes} bytes, expected "
                                       f"{num} / {expected_bytes}")
            except Exception as e:  # noqa: BLE001 - reported, never a traceback
                active.pop(name).close()
                compare[name] = {"status": "skipped", "version": compare[name].get("version"),
                                 "reason": f"failed in epoch {epoch}: {one_line(e)}"}
                return
            ps = _run_stats(pcount, pbytes, wall, cpu)
            _server_cpu_stats(ps, None if s0 is None or s1 is None else s1 - s0)
            ps["epoch"] = epoch
            peer_runs[name].append(ps)

        for epoch in range(1, epochs + 1):
            # Rotate who goes first each epoch: no tool always runs right after the put phase
            # (server still busy) or always right after a given peer.
            order = ["objio", *active]
            shift = (epoch - 1) % len(order)
            for name in order[shift:] + order[:shift]:
                if name == "objio":
                    run_objio(epoch)
                elif name in active:
                    run_peer(name, epoch)
        prog.finish(task)
    finally:
        for peer in active.values():
            peer.close()

    summary = _summary(epoch_stats)
    summary["latency_ms"] = {
        "ttfb": percentiles_ms([r.ttfb_s for r in all_records]),
        "total": percentiles_ms([r.total_s for r in all_records]),
    }
    report["phases"]["get"] = {"epochs": epoch_stats, "summary": summary}
    if latency_samples:
        report["phases"]["get"]["latency_samples_ms"] = {
            "ttfb": [1000.0 * r.ttfb_s for r in all_records],
            "total": [1000.0 * r.total_s for r in all_records]}
    if peer_names:
        compare["objio"].update(_summary(epoch_stats), epochs=_strip_latency(epoch_stats))
        compare["objio"]["objio_ratio"] = 1.0
        objio_mibs = compare["objio"]["mib_per_s"]
        for name, runs in peer_runs.items():
            if compare[name]["status"] != "ok":
                continue
            compare[name].update(_summary(runs), epochs=runs)
            peer_mibs = compare[name]["mib_per_s"]
            compare[name]["objio_ratio"] = (objio_mibs / peer_mibs
                                            if objio_mibs and peer_mibs else None)


def _timed_peer_run(peer: Getter, prog: Progress, task: TaskID | None,
                    description: str) -> tuple[int, int, float, float]:
    """One timed run of a peer: (objects, bytes, wall seconds, CPU seconds)."""
    done: list[tuple[int, int]] = []
    advance: Advance | None = (lambda c, b: done.append((c, b))) if prog.enabled else None
    with prog.track(task, description, done, _pair_weight):
        c0, t0 = cpu_seconds(), time.perf_counter()
        count, nbytes = peer.run(advance)
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    return count, nbytes, wall, cpu


def _strip_latency(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "latency_ms"} for r in runs]


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over runs, and medians over runs of the rates and of the CPU per object/MiB."""
    objects = sum(r["objects"] for r in runs)
    nbytes = sum(r["bytes"] for r in runs)
    wall = sum(r["wall_s"] for r in runs)
    cpu = sum(r["cpu_s"] for r in runs)
    server: dict[str, Any] = {}
    if runs and all("server_cpu_s" in r for r in runs):
        server = {"server_cpu_s": sum(r["server_cpu_s"] for r in runs),
                  "server_cpu_ms_per_mib": median([r["server_cpu_ms_per_mib"] for r in runs])}
    return {
        "runs": len(runs),
        "objects": objects,
        "bytes": nbytes,
        "wall_s": wall,
        "cpu_s": cpu,
        "mib_per_s": median([r["mib_per_s"] for r in runs]),
        "objects_per_s": median([r["objects_per_s"] for r in runs]),
        "cpu_ms_per_object": median([r["cpu_ms_per_object"] for r in runs]),
        "cpu_ms_per_mib": median([r["cpu_ms_per_mib"] for r in runs]),
        **server,
    }


def print_report(report: Mapping[str, Any], console: Console | None = None, *,
                 wide: bool = False) -> None:
    """Render a :func:`run_bench` report as rich tables (plain text when not a terminal): the
    default columns fit :data:`~objio.bench.report.TABLE_WIDTH` columns; ``wide``: every
    column (data, CPU s, CPU ms/obj, p90 latencies)."""
    from rich.console import Console

    from .report import table, wrap

    if console is None:
        console = Console()
    cfg = report["config"]
    console.print(wrap(
        f"objio bench: {plural(cfg['num'], 'object')} of {format_size(cfg['size'])} "
        f"{cfg['object_type']} under {cfg['uri']} ({report['server']}), max_in_flight "
        f"{cfg['max_in_flight']}, {plural(cfg['epochs'], 'get epoch')}"), highlight=False)

    pcts = ("p50", "p90", "p99") if wide else ("p50", "p99")
    cols = [("phase", "left", True), ("objects", "right", True), ("data", "right", False),
            ("wall s", "right", False), ("MiB/s", "right", True), ("obj/s", "right", True),
            (f"TTFB ms {'/'.join(pcts)}", "right", True),
            (f"total ms {'/'.join(pcts)}", "right", True), ("CPU s", "right", False),
            ("CPU ms/obj", "right", False), ("CPU ms/MiB", "right", True)]
    rows: list[list[str]] = []
    sections: list[int] = []

    def row(label: str, s: Mapping[str, Any]) -> None:
        lat = s.get("latency_ms") or {}
        rows.append([label, str(s["objects"]), format_size(s["bytes"]), fmt(s["wall_s"], ".3f"),
                     fmt(s["mib_per_s"], ".1f"), fmt(s["objects_per_s"], ".0f"),
                     latencies(lat.get("ttfb"), pcts), latencies(lat.get("total"), pcts),
                     fmt(s["cpu_s"], ".3f"), fmt(s["cpu_ms_per_object"], ".3f"),
                     fmt(s["cpu_ms_per_mib"], ".2f")])

    phases = report["phases"]
    if "put" in phases:
        row("put", phases["put"])
        sections.append(0)
    get = phases.get("get")
    if get:
        for s in get["epochs"]:
            row(f"get epoch {s['epoch']}", s)
        row("get (all)", get["summary"])
    console.print(table("phases", cols, rows, wide=wide, sections=sections))
    if get:
        console.print(wrap("  get (all): objects, data, wall s and CPU s are totals over the "
                           "epochs; MiB/s, obj/s and CPU per obj/MiB are medians over epochs; "
                           "latencies are pooled." + ("" if wide else
                                                       " --wide: every column; --json: all.")),
                      highlight=False)
    endpoints = report.get("endpoints") or []
    if len(endpoints) > 1:  # how the run spread over the store's endpoints
        for line in endpoint_lines(endpoints):
            console.print(line, highlight=False, markup=False)

    compare = report.get("compare") or {}
    if compare:
        skipped: list[tuple[str, str]] = []
        crows: list[list[str]] = []
        # the server's CPU per MiB over each tool's runs, when the server runs here
        server = any("server_cpu_ms_per_mib" in r for r in compare.values())
        for name, r in compare.items():
            if r.get("status") != "ok":
                skipped.append((name, r.get("reason", "")))
                continue
            ratio = r.get("objio_ratio")
            crows.append([name, fmt(r.get("mib_per_s"), ".1f"), fmt(r.get("objects_per_s"), ".0f"),
                          fmt(r.get("cpu_ms_per_object"), ".3f"), fmt(r.get("cpu_ms_per_mib"), ".2f"),
                          *([fmt(r.get("server_cpu_ms_per_mib"), ".2f")] if server else []),
                          "-" if ratio is None else f"{ratio:.2f}x"])
        ccols = [("tool", "left", True), ("MiB/s", "right", True), ("obj/s", "right", True),
                 ("CPU ms/GET", "right", True), ("CPU ms/MiB", "right", True),
                 *([("server CPU ms/MiB", "right", True)] if server else []),
                 ("objio/tool", "right", True)]
        console.print(table("compare (median over epochs, same objects, interleaved)", ccols,
                            crows, wide=wide))
        for name, reason in skipped:
            console.print(f"  {name}: skipped: {reason}", highlight=False, markup=False)
    if report.get("ops"):
        print_ops(report["ops"], console, wide=wide)
    cleanup = report.get("cleanup") or {}
    if cleanup.get("kept"):
        note = " (until the embedded server stops)" if report["server"] == "embedded" else ""
        console.print(f"objects kept under {cfg['uri']}{note}", highlight=False)
    elif "deleted" in cleanup:
        console.print(f"deleted {cleanup['deleted']} objects", highlight=False)
