"""``objio bench --op ...``: every object operation compared with the peer libraries.

Besides the put + get phases of :mod:`objio.bench.objects`, the objects benchmark measures
these operations on the same objects, objio and each peer that has the operation
(:mod:`objio.bench.peers`) taking turns within each round (the order rotated every round, as
the get phase does), ``epochs`` rounds:

=========  ==============================================================================
``put``    write ``num`` objects of ``size`` bytes (the same distinct payloads, made before
           the runs, for every tool) under ``<prefix>objio-bench-ops/put/``: objio
           ``put_many``; measured with ``--compare`` (without, the put phase is the number)
``head``   HEAD every object of the put phase: objio ``stat_many``
``list``   one full listing of the benchmark prefix, repeated to list about 10,000 keys a
           run (at most 20 times): objio ``list_objects`` (sequential ListObjectsV2)
``copy``   copy every object to ``<prefix>objio-bench-ops/copy/``: objio ``copy_many``
           (server-side) given the sources' listing entries (as ``objio cp -r`` / ``sync``:
           one CopyObject per object), without them (``HEAD first``: a HeadObject, then the
           CopyObject), and through the client (``server_side=False``: GET + PUT) as a
           reference
``delete`` delete ``num`` objects of ``min(size, 1 MiB)`` bytes under
           ``<prefix>objio-bench-ops/delete/``, made again (untimed) before every tool's run:
           objio ``delete_many``
``gen``    generate and write a small-file DLIO dataset of ``num`` files (the ``cosmoflow``
           preset: TFRecord, one ~2.7 MiB sample per file): objio's dataset writing
           (:func:`objio.gen.generate_dataset`, as ``objio gen``, its ``.idx`` index files
           included) against s3dlio's generation of typed objects (``s3dlio.put`` of
           ``tfrecord`` objects of the preset's mean size; no index files)
=========  ==============================================================================

Each run reports operations (objects, keys or files) per second, MiB/s where bytes move,
and client CPU per operation (user + system seconds of the whole process, all threads:
peers' native threads included); each tool's figure is the median over rounds, and
``objio_ratio`` objio's operations/s divided by the tool's. A peer without the operation,
not installed, or failing, is reported as skipped with the reason; objio's own failures
raise. Everything under ``<prefix>objio-bench-ops/`` is deleted at the end.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..config import MiB, format_size
from ..uri import ObjectURI
from ._common import cpu_seconds, median, one_line
from .peers import Access, Getter, library
from .report import fmt

if TYPE_CHECKING:
    from rich.console import Console

    from ..api import Client

__all__ = ["OPS", "DEFAULT_OPS", "parse_ops", "run_ops", "print_ops", "WORK_DIR"]

OPS: tuple[str, ...] = ("put", "get", "head", "list", "copy", "delete", "gen")
"""The operations ``objio bench --op`` measures (in the order they run)."""

DEFAULT_OPS: tuple[str, ...] = ("put", "get")
"""What ``objio bench`` measures without ``--op``: the put + get phases."""

WORK_DIR = "objio-bench-ops/"
"""Where the operations write, under the benchmark prefix (deleted at the end)."""

_ADAPTER = {"put": "putter", "head": "header", "list": "op_lister", "copy": "copier",
            "delete": "deleter", "gen": "generator"}
_UNIT = {"put": "objects", "head": "objects", "list": "keys", "copy": "objects",
         "delete": "objects", "gen": "files"}
_LIST_KEYS_PER_RUN = 10_000  # a listing run lists the prefix this many keys' worth...
_LIST_MAX_REPEATS = 20  # ...at most this many times
_DELETE_SIZE_CAP = 1 * MiB
GEN_PRESET = "cosmoflow"
"""The ``objio gen`` preset of the ``gen`` operation: DLIO's small-file workload."""


def parse_ops(value: str | Sequence[str] | None) -> list[str]:
    """Operation names from a comma list (``"put,head"``) or a sequence, in :data:`OPS`
    order; None: :data:`DEFAULT_OPS`. Raises: ValueError naming an unknown or no operation."""
    if value is None:
        return list(DEFAULT_OPS)
    items = value.split(",") if isinstance(value, str) else list(value)
    names = {item.strip().lower() for item in items if item.strip()}
    unknown = sorted(names - set(OPS))
    if unknown:
        raise ValueError(f"unknown operation {unknown[0]!r} for --op; choose from "
                         f"{', '.join(OPS)} (a comma list)")
    if not names:
        raise ValueError(f"--op is empty; choose from {', '.join(OPS)} (a comma list)")
    return [op for op in OPS if op in names]


def _stats(count: int, nbytes: int, wall: float, cpu: float) -> dict[str, Any]:
    """One run's figures (``bytes``: what moved, 0 when nothing did)."""
    return {"ops": count, "bytes": nbytes, "wall_s": wall, "cpu_s": cpu,
            "ops_per_s": count / wall if wall > 0 else None,
            "mib_per_s": nbytes / MiB / wall if wall > 0 and nbytes else None,
            "cpu_ms_per_op": 1000.0 * cpu / count if count else None}


def _timed(fn: Callable[[], tuple[int, int]],
           server_cpu: Callable[[], float | None] | None = None) -> dict[str, Any]:
    s0 = server_cpu() if server_cpu is not None else None
    c0, t0 = cpu_seconds(), time.perf_counter()
    count, nbytes = fn()
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    stats = _stats(count, nbytes, wall, cpu)
    s1 = server_cpu() if server_cpu is not None else None
    if s0 is not None and s1 is not None and count:
        stats["server_cpu_s"] = s1 - s0
        stats["server_cpu_ms_per_op"] = 1000.0 * (s1 - s0) / count
    return stats


class _Op:
    """One operation's prepared runs: ``tools`` maps each tool to a callable returning
    ``(operations, bytes)``; ``before`` (untimed) runs before each tool's run; ``expect``:
    the operations a run must report (a peer reporting another count failed)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.tools: dict[str, Callable[[], tuple[int, int]]] = {}
        self.closers: list[Callable[[], None]] = []
        self.before: Callable[[], None] | None = None
        self.expect: int | None = None
        self.repeats = 1  # calls of a peer's run per timed run
        self.moves_bytes = True  # MiB/s means something (False: HEAD, list, delete)
        self.result: dict[str, Any] = {"what": what, "tools": {}}


def run_ops(client: Client, prefix: ObjectURI, ops: Sequence[str], *, num: int, size: int,
            max_in_flight: int, rounds: int, peer_names: Sequence[str],
            peer_credentials: Mapping[str, Any] | None, uris: list[str],
            sizes: list[int], seed: int = 0,
            log: Callable[[str], None] | None = None,
            settle: bool = False,
            server_cpu: Callable[[], float | None] | None = None) -> dict[str, Any]:
    """Run the operations ``ops`` (see the module docstring; ``get`` is the objects
    benchmark's own phase and is skipped here, ``put`` only runs with peers) on the objects
    ``uris`` of the put phase (``sizes`` in bytes), ``rounds`` interleaved rounds, objio and
    ``peer_names``. Returns ``{op: {"what", "unit", "tools": {tool: result}}}``: each
    result is ``{"status": "ok", "runs": [...], "ops_per_s", "mib_per_s", "cpu_ms_per_op",
    "objio_ratio"}`` (medians over rounds) or ``{"status": "skipped", "reason"}``.

    ``settle`` (for a server on this machine's disk, e.g. the embedded one): before each
    timed run, untimed, the page cache's dirty pages are written back (``os.sync``). Linux
    throttles writers once dirty pages pass ``vm.dirty_ratio`` (20% of memory by default):
    on the 24 GiB bench machine, after ~4 GiB written, PUT/s fell from ~140 to ~55 for every
    client alike, so whichever tool ran after that point lost, whatever its own speed.

    ``server_cpu`` (e.g. :meth:`objio.server.LocalS3Server.cpu_seconds`, for a server on
    this machine): read before and after each timed run, giving each run's and each tool's
    ``server_cpu_ms_per_op``, the server's CPU per operation beside the client's (both on
    the same cores: what a tool saves or costs the server shows there).

    Raises: objio's own errors (a peer's are reported)."""
    out: dict[str, Any] = {}
    work = prefix.joinpath(WORK_DIR)
    for op in ops:
        if op == "get" or (op == "put" and not peer_names):
            continue
        if log is not None:
            log(f"bench op {op}: {rounds} round(s), objio and {len(peer_names)} peer(s)")
        try:
            out[op] = _run_op(client, prefix, work, op, num=num, size=size,
                              max_in_flight=max_in_flight, rounds=rounds,
                              peer_names=peer_names, peer_credentials=peer_credentials,
                              uris=uris, sizes=sizes, seed=seed, settle=settle,
                              server_cpu=server_cpu)
        finally:  # what the operation wrote goes before the next one (and the listing)
            client.delete(str(work))
    return out


def _payloads(num: int, size: int, seed: int) -> list[bytes]:
    """``num`` distinct payloads of ``size`` bytes (slices of one random block)."""
    import random

    block = random.Random(seed).randbytes(size + num)
    return [block[i: i + size] for i in range(num)]


def _run_op(client: Client, prefix: ObjectURI, work: ObjectURI, op: str, *, num: int,
            size: int, max_in_flight: int, rounds: int, peer_names: Sequence[str],
            peer_credentials: Mapping[str, Any] | None, uris: list[str], sizes: list[int],
            seed: int, settle: bool = False,
            server_cpu: Callable[[], float | None] | None = None) -> dict[str, Any]:
    bucket = prefix.bucket
    keys = [prefix.with_key(u[len(f"s3://{bucket}/"):]).key for u in uris]
    args: tuple[Any, ...]
    if op == "put":
        payloads = _payloads(num, size, seed)
        dst = [str(work.joinpath("put/" + k.rsplit("/", 1)[-1])) for k in keys]
        dkeys = [d[len(f"s3://{bucket}/"):] for d in dst]
        the = _Op(f"PUT of {num} x {format_size(size)} objects (the same payloads for every "
                  "tool), max_in_flight " + str(max_in_flight))
        def objio_put() -> tuple[int, int]:
            client.put_many(list(zip(dst, payloads, strict=True)), max_in_flight)
            return num, num * size

        the.tools["objio"] = objio_put
        args = (bucket, dkeys, dst, payloads, max_in_flight)
        the.expect = num
    elif op == "head":
        the = _Op(f"HEAD of the {num} objects, max_in_flight {max_in_flight}")
        the.tools["objio"] = lambda: (num, sum(i.size for i in
                                               client.stat_many(uris, max_in_flight)))
        args = (bucket, keys, uris, max_in_flight)
        the.expect = num
    elif op == "list":
        repeats = max(1, min(_LIST_MAX_REPEATS, _LIST_KEYS_PER_RUN // max(1, num)))
        listed = len(client.list(str(prefix)))
        the = _Op(f"full listing of {prefix} ({listed} keys), {repeats} time(s) a run")

        def objio_list() -> tuple[int, int]:
            return sum(len(client.list_objects(str(prefix))) for _ in range(repeats)), 0

        the.tools["objio"] = objio_list
        args = (bucket, prefix.key)
        the.expect = listed * repeats
        the.repeats = repeats
    elif op == "copy":
        dst = [str(work.joinpath("copy/" + k.rsplit("/", 1)[-1])) for k in keys]
        pairs = list(zip(uris, dst, strict=True))
        kpairs = [(k, d[len(f"s3://{bucket}/"):]) for k, d in zip(keys, dst, strict=True)]
        by_key = {i.key: i for i in client.list_objects(str(prefix))}
        entries = [by_key.get(k) for k in keys]
        the = _Op(f"copy of the {num} objects within the bucket (server-side: CopyObject; "
                  f"objio: with the sources' listing entries, as objio cp -r does), "
                  f"max_in_flight {max_in_flight}")
        the.tools["objio"] = lambda: client.copy_many(pairs, max_in_flight, sources=entries)
        the.tools["objio (HEAD first)"] = lambda: client.copy_many(pairs, max_in_flight)
        the.tools["objio (through client)"] = lambda: client.copy_many(
            pairs, max_in_flight, server_side=False)
        args = (bucket, kpairs, sizes, max_in_flight)
        the.expect = num
    elif op == "delete":
        dsize = min(size, _DELETE_SIZE_CAP)
        payloads = _payloads(num, dsize, seed)
        ddir = work.joinpath("delete/")
        dst = [str(ddir.joinpath(k.rsplit("/", 1)[-1])) for k in keys]
        dkeys = [d[len(f"s3://{bucket}/"):] for d in dst]
        the = _Op(f"delete of {num} objects of {format_size(dsize)} (made again, untimed, "
                  f"before every run), max_in_flight {max_in_flight}")

        def objio_delete() -> tuple[int, int]:
            return client.delete_many(dst, max_in_flight=min(max_in_flight, 8)), 0

        def remake() -> None:
            client.put_many(list(zip(dst, payloads, strict=True)), max_in_flight)

        the.tools["objio"] = objio_delete
        the.before = remake
        args = (bucket, dkeys, dst, ddir.key, max_in_flight)
        the.expect = num
    elif op == "gen":
        from ..gen import generate_dataset, workload_spec

        spec = workload_spec(GEN_PRESET, num_files=num, seed=seed)
        template = "img_{}_of_{}.tfrecord"
        the = _Op(f"dataset generation: {num} files of the {GEN_PRESET} preset (TFRecord, "
                  f"1 sample of ~{format_size(spec.record_size)} per file), max_in_flight "
                  f"{max_in_flight}")

        def objio_gen() -> tuple[int, int]:
            r = generate_dataset(client, str(work.joinpath("gen-objio/")), spec,
                                 max_in_flight=max_in_flight)
            return int(r["files"]), int(r["bytes"])

        the.tools["objio"] = objio_gen
        args = (str(work.joinpath("gen-s3dlio/")), num, template, spec.record_size,
                "tfrecord", max_in_flight)
        the.expect = num
    else:  # pragma: no cover - parse_ops checks
        raise ValueError(f"unknown operation {op!r}")
    the.result["what"] = the.what
    the.result["unit"] = _UNIT[op]
    the.moves_bytes = op in ("put", "copy", "gen")
    result = the.result["tools"]
    for name in the.tools:
        result[name] = {"status": "ok"}
    _prepare_peers(client, the, op, peer_names, peer_credentials, prefix, args)
    if op == "list":
        the.result["keys"] = (the.expect or 0) // the.repeats
    try:
        _interleave(the, rounds, settle, server_cpu)
    finally:
        for close in the.closers:
            try:
                close()
            except Exception:  # noqa: BLE001 - best-effort cleanup
                pass
    _summarize(the)
    return the.result


def _prepare_peers(client: Client, the: _Op, op: str, peer_names: Sequence[str],
                   peer_credentials: Mapping[str, Any] | None, prefix: ObjectURI,
                   args: tuple[Any, ...]) -> None:
    """Each peer's prepared run of ``op`` (its adapter method called with ``args``) into
    ``the.tools``, or the reason it is skipped into the result."""
    result = the.result["tools"]
    if not peer_names:
        return
    try:
        if prefix.scheme != "s3":
            raise ValueError("peers need an s3:// URI")
        access: Access | None = None
        for name in peer_names:
            if access is None:
                access = Access.from_client(client, peer_credentials)
            lib = library(name, access)
            version = lib.version()
            if not lib.has(_ADAPTER[op]):
                result[name] = {"status": "skipped", "version": version,
                                "reason": f"has no {op} operation"}
                continue
            if not lib.installed():
                result[name] = {"status": "skipped",
                                "reason": f"not installed (pip install {lib.dist})"}
                continue
            try:
                runner: Getter = getattr(lib, _ADAPTER[op])(*args)
            except Exception as e:  # noqa: BLE001 - reported, never a traceback
                result[name] = {"status": "skipped", "version": version,
                                "reason": f"setup failed: {one_line(e)}"}
                continue
            the.tools[name] = functools.partial(_repeat, runner, the.repeats)
            the.closers.append(runner.close)
            result[name] = {"status": "ok", "version": version}
    except Exception as e:  # noqa: BLE001 - reported per peer
        for name in peer_names:
            result.setdefault(name, {"status": "skipped", "reason": one_line(e)})


def _repeat(runner: Getter, times: int) -> tuple[int, int]:
    count = nbytes = 0
    for _ in range(times):
        c, b = runner.run(None)
        count += c
        nbytes += b
    return count, nbytes


def _interleave(the: _Op, rounds: int, settle: bool = False,
                server_cpu: Callable[[], float | None] | None = None) -> None:
    result = the.result["tools"]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in the.tools}
    for rnd in range(1, rounds + 1):
        order = list(the.tools)
        shift = (rnd - 1) % len(order)
        for name in order[shift:] + order[:shift]:
            if name not in the.tools:
                continue
            if the.before is not None:
                the.before()
            if settle:  # every tool starts with no dirty pages to write back (see run_ops)
                os.sync()
            objio = name.startswith("objio")
            try:
                stats = _timed(the.tools[name], server_cpu)
                if not the.moves_bytes:
                    stats.update(bytes=0, mib_per_s=None)
                if the.expect is not None and stats["ops"] != the.expect:
                    raise RuntimeError(f"did {stats['ops']} operations, expected {the.expect}")
            except Exception as e:
                if objio:
                    raise
                del the.tools[name]
                result[name] = {"status": "skipped", "version": result[name].get("version"),
                                "reason": f"failed in round {rnd}: {one_line(e)}"}
                continue
            stats["round"] = rnd
            runs[name].append(stats)
    for name, rs in runs.items():
        if result[name].get("status") == "ok":
            result[name]["runs"] = rs


def _summarize(the: _Op) -> None:
    result = the.result["tools"]
    base = result.get("objio", {})
    for r in result.values():
        if r.get("status") != "ok":
            continue
        rs = r.get("runs", [])
        r["ops_per_s"] = median([x["ops_per_s"] for x in rs])
        r["mib_per_s"] = median([x["mib_per_s"] for x in rs])
        r["cpu_ms_per_op"] = median([x["cpu_ms_per_op"] for x in rs])
        server = [x["server_cpu_ms_per_op"] for x in rs if "server_cpu_ms_per_op" in x]
        if server:
            r["server_cpu_ms_per_op"] = median(server)
    ref = base.get("ops_per_s")
    for r in result.values():
        if r.get("status") == "ok":
            r["objio_ratio"] = ref / r["ops_per_s"] if ref and r.get("ops_per_s") else None


def print_ops(ops: Mapping[str, Any], console: Console, *, wide: bool = False) -> None:
    """Render :func:`run_ops`'s results: one table per operation (medians over rounds; every
    column fits :data:`~objio.bench.report.TABLE_WIDTH`, ``wide`` changes nothing)."""
    from .report import table, wrap

    for op, res in ops.items():
        unit = res.get("unit", "objects")
        cols = [("tool", "left", True), (f"{unit}/s", "right", True), ("MiB/s", "right", True),
                (f"CPU ms/{unit[:-1]}", "right", True), ("objio/tool", "right", True)]
        rows: list[list[str]] = []
        skipped: list[tuple[str, str]] = []
        for name, r in res["tools"].items():
            if r.get("status") != "ok":
                skipped.append((name, r.get("reason", "")))
                continue
            ratio = r.get("objio_ratio")
            rows.append([name, fmt(r.get("ops_per_s"), ".0f"), fmt(r.get("mib_per_s"), ".1f"),
                         fmt(r.get("cpu_ms_per_op"), ".3f"),
                         "-" if ratio is None else f"{ratio:.2f}x"])
        title = wrap(f"{op}: {res.get('what', '')} (median over rounds, interleaved)")
        console.print(table(title, cols, rows, wide=wide))
        server = [f"{name} {r['server_cpu_ms_per_op']:.3f}" for name, r in res["tools"].items()
                  if r.get("status") == "ok" and r.get("server_cpu_ms_per_op") is not None]
        if server:
            console.print(wrap(f"  server CPU ms/{unit[:-1]} (the embedded server, same "
                               "cores): " + ", ".join(server)), highlight=False, markup=False)
        for name, reason in skipped:
            console.print(f"  {name}: skipped: {reason}", highlight=False, markup=False)
