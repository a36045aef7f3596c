"""``objio bench model``: load a sharded safetensors model from object storage with objio and
its peers, in the same run.

    objio bench model [s3://bucket/prefix] [--size 2GiB] [--shards 8] [--rounds 3]
                      [--latency-ms N] [--libs ...] [--json FILE] [--plot FILE.png]

The model is a synthetic one shaped like a real checkpoint (:mod:`objio.gen.models`, default
``llama3-8b`` scaled to about ``--size`` bytes, split into ``--shards`` shards with its
``model.safetensors.index.json``), generated once (on the embedded server when no URI is
given). Every case loads every tensor of the shards into CPU memory as ``torch`` tensors:

=====================  ===========================================================================
case                   how (each set up once through its adapter in :mod:`objio.bench.peers`)
=====================  ===========================================================================
objio                  ``objio.model.iter_safetensors`` (ranged GETs into one buffer per shard,
                       tensors as views)
objio-connector        ``objio.ModelConnector``: open every shard, then read each whole and make
                       its tensors (the reference's example)
runai-model-streamer   Run:ai Model Streamer's ``SafetensorsStreamer`` on the same s3:// URIs
boto3                  ``get_object()["Body"].read()`` per shard + ``safetensors.torch.load``
s3torchconnector       its ``S3Reader`` ``.read()`` per shard + ``safetensors.torch.load``
=====================  ===========================================================================

Each case runs in a fresh forked process (imports and client setup happen before the timer), the
cases interleaved and their order rotated each round. Reported per run and as medians over
rounds: GiB/s (model bytes / wall seconds), time to first tensor (seconds), client CPU seconds
per GiB (user + system of the process and of any child processes it waited for), and peak RSS
growth during the load (MiB, VmHWM reset before the timer: the loaded model itself is part of
it). Every run is checked: the tensor count, their total bytes and one tensor's bytes must
match the generated model. ``--latency-ms N`` puts a delay proxy (:mod:`objio.bench.latency`)
between every client and the server.
"""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing as mp
import os
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from ..api import Client
from ..config import GiB, MiB, format_size, plural
from ..uri import parse_uri
from ._common import cpu_seconds, environment, median, one_line, peak_rss_bytes, reset_peak_rss, rss_bytes
from .peers import Access, library

CASES: dict[str, tuple[str, str]] = {
    "objio": ("objio", "model_loader"),
    "objio-connector": ("objio", "connector_loader"),
    "runai-model-streamer": ("runai-model-streamer", "model_loader"),
    "boto3": ("boto3", "model_loader"),
    "s3torchconnector": ("s3torchconnector", "model_loader"),
}
"""Case label -> (library, adapter method)."""

DEFAULT_SIZE = 2 * GiB
DEFAULT_SHARDS = 8
DEFAULT_MODEL = "llama3-8b"
DEFAULT_PREFIX = "model-bench/"


def _digest(t: Any) -> str:
    import torch

    return hashlib.sha1(t.contiguous().reshape(-1).view(torch.uint8).numpy()).hexdigest()


def _child(case: tuple[str, str], env: dict[str, Any], conn: Any) -> None:
    try:
        lib = library(case[0], env["access"])
        method = getattr(lib, case[1])
        kwargs = {"prefetch_memory": env["prefetch_memory"]} if case[1] == "connector_loader" else {}
        run = method(env["bucket"], env["keys"], env["uris"], env["max_in_flight"], **kwargs)
        import torch  # noqa: F401 - imported before the timer by every case

        first: list[float] = []

        def on_tensor(name: str) -> None:
            if not first:
                first.append(time.perf_counter())

        reset_peak_rss()
        rss0 = rss_bytes()
        c0 = cpu_seconds(children=True)
        t0 = time.perf_counter()
        tensors = run(on_tensor)
        wall = time.perf_counter() - t0
        cpu = cpu_seconds(children=True) - c0
        peak = peak_rss_bytes()
        nbytes = sum(t.numel() * t.element_size() for t in tensors.values())
        check = env["check_tensor"]
        conn.send({"ok": True, "wall_s": wall, "ttft_s": (first[0] - t0) if first else None,
                   "cpu_s": cpu, "peak_rss_growth_mib": max(0, peak - rss0) / MiB,
                   "tensors": len(tensors), "bytes": nbytes,
                   "digest": _digest(tensors[check]) if check in tensors else None})
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        conn.send({"ok": False, "error": one_line(e), "trace": traceback.format_exc()})
    finally:
        conn.close()
        os._exit(0)


def _measure(case: tuple[str, str], env: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_child, args=(case, env, child))
    p.start()
    child.close()
    try:
        if not parent.poll(timeout_s):
            p.kill()
            return {"ok": False, "error": f"timed out after {timeout_s:.0f} s"}
        return dict(parent.recv())
    except EOFError:
        return {"ok": False, "error": f"the process exited with {p.exitcode}"}
    finally:
        p.join(10)


def _expected_digest(preset: Any, name: str, seed: int) -> str:
    """sha1 of the generated tensor ``name`` (regenerated, no torch needed)."""
    import math

    from ..formats.safetensors import DTYPES, fill_tensor_bytes

    numbers = {n: (i, s) for i, (n, s) in enumerate(preset.tensors())}
    i, shape = numbers[name]
    buf = bytearray(math.prod(shape) * DTYPES[preset.dtype])
    fill_tensor_bytes(buf, preset.dtype, seed=seed, index=i)
    return hashlib.sha1(buf).hexdigest()


def prepare_model(client: Client, prefix: str, *, model: str = DEFAULT_MODEL,
                  size: int = DEFAULT_SIZE, shards: int = DEFAULT_SHARDS, seed: int = 0,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Generate the benchmark model under ``prefix`` unless the same one is there already.
    Returns ``{"uri", "preset", "files" (shard URIs), "bytes", "tensors", "generated"}``."""
    from ..gen.models import INDEX_NAME, generate_model, max_shard_size_for, model_preset, plan_shards

    base = model_preset(model)
    preset = model_preset(model, min(1.0, size / base.total_bytes()))
    max_shard = max_shard_size_for(preset, shards)
    plan = plan_shards(preset, max_shard)
    root = parse_uri(prefix)
    if root.key and not root.key.endswith("/"):
        root = root.with_key(root.key + "/")
    names = [s.name for s in plan]
    try:
        existing = {i.key: i.size for i in client.list_objects(str(root))}
    except FileNotFoundError:
        if root.scheme != "file":
            raise
        existing = {}  # a local directory not made yet
    want = {root.key + n for n in names} | ({root.key + INDEX_NAME} if len(plan) > 1 else set())
    generated = False
    if not want <= set(existing):
        log(f"generating the model: {model} at {format_size(preset.total_bytes())}, "
            f"{len(plan)} shards, under {root} ...")
        generate_model(client, root, preset, max_shard_size=max_shard, seed=seed)
        generated = True
    return {"uri": str(root), "model": model, "preset": preset, "seed": seed,
            "files": [str(root.joinpath(n)) for n in names], "bytes": preset.total_bytes(),
            "tensors": len(preset.tensors()), "generated": generated,
            "objects": sorted(want)}


def run_model_bench(client: Client, prefix: str, *, model: str = DEFAULT_MODEL,
                    size: int = DEFAULT_SIZE, shards: int = DEFAULT_SHARDS, rounds: int = 3,
                    libs: Sequence[str] | None = None, max_in_flight: int = 32,
                    prefetch_memory: int | None = None, latency_ms: float = 0.0,
                    keep: bool = True, seed: int = 0, timeout_s: float = 900.0,
                    log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the benchmark (see the module docs) and return its report: ``{"kind": "model",
    "config", "model", "runs": {case: [run, ...]}, "summary": {case: medians}, "environment"}``
    (seconds, bytes, GiB/s with GiB = 2**30 bytes, MiB = 2**20 bytes).

    Raises: ValueError (unknown case, rounds < 1, ...), FileNotFoundError (no bucket),
    PermissionError, ObjectStoreError (from generating the model)."""
    names = list(CASES) if libs is None else list(libs)
    unknown = [n for n in names if n not in CASES]
    if unknown or not names:
        raise ValueError(f"libs must be a list of {', '.join(CASES)}, got {list(libs or [])}")
    for name, v in (("rounds", rounds), ("shards", shards), ("max_in_flight", max_in_flight)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if parse_uri(prefix).scheme != "s3":
        raise ValueError(f"the model benchmark needs an s3:// prefix, got {prefix!r}")
    m = prepare_model(client, prefix, model=model, size=size, shards=shards, seed=seed, log=log)
    preset = m["preset"]
    check = preset.tensors()[len(preset.tensors()) // 2][0]
    expected_digest = _expected_digest(preset, check, seed)
    proxy = None
    try:
        access = Access.from_client(client)
        if latency_ms:
            from .latency import LatencyProxy

            if not access.endpoint_url:
                raise ValueError("--latency-ms needs an http:// endpoint (the embedded server or "
                                 "--endpoint-url)")
            proxy = LatencyProxy(access.endpoint_url, latency_ms).start()
            access = dataclasses.replace(access, endpoint_url=proxy.endpoint_url)
        bucket = parse_uri(m["uri"]).bucket
        env = {"access": access, "bucket": bucket,
               "keys": [parse_uri(u).key for u in m["files"]], "uris": m["files"],
               "max_in_flight": max_in_flight, "prefetch_memory": prefetch_memory,
               "check_tensor": check}
        runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        status: dict[str, str] = {}
        for r in range(rounds):
            k = r % len(names)
            for name in names[k:] + names[:k]:
                if name in status:
                    continue
                lib = library(CASES[name][0], access)
                if not lib.installed():
                    status[name] = f"not installed (pip install {lib.dist})"
                    log(f"{name}: skipped: {status[name]}")
                    continue
                res = _measure(CASES[name], env, timeout_s)
                if res.get("ok"):
                    bad = _check(res, m, expected_digest)
                    if bad:
                        res = {"ok": False, "error": bad}
                if res.get("ok"):
                    res["gib_per_s"] = m["bytes"] / GiB / res["wall_s"]
                    res["cpu_s_per_gib"] = res["cpu_s"] / (m["bytes"] / GiB)
                    ttft = res["ttft_s"]
                    log(f"round {r + 1}/{rounds} {name:21s} {res['gib_per_s']:6.2f} GiB/s  "
                        f"first tensor {'-' if ttft is None else f'{ttft:.3f}'} s  "
                        f"CPU {res['cpu_s_per_gib']:5.2f} s/GiB  "
                        f"peak RSS +{res['peak_rss_growth_mib']:.0f} MiB")
                else:
                    log(f"round {r + 1}/{rounds} {name:21s} FAILED: {res.get('error')}")
                    status[name] = f"failed: {res.get('error')}"
                runs[name].append(res)
    finally:
        if proxy is not None:
            proxy.stop()
    if not keep:
        for key in m["objects"]:
            client.delete(f"s3://{parse_uri(m['uri']).bucket}/{key}")
    summary = summarize(runs, status, m["bytes"])
    return {
        "kind": "model",
        "config": {"uri": m["uri"], "model": model, "size": size, "shards": shards,
                   "rounds": rounds, "libs": names, "max_in_flight": max_in_flight,
                   "prefetch_memory": prefetch_memory, "latency_ms": latency_ms, "seed": seed},
        "model": {"uri": m["uri"], "bytes": m["bytes"], "tensors": m["tensors"],
                  "shards": len(m["files"]), "generated": m["generated"],
                  "preset": dataclasses.asdict(preset)},
        "runs": runs,
        "summary": summary,
        "environment": environment(["runai-model-streamer", "boto3", "s3torchconnector",
                                    "safetensors", "torch"]),
    }


def _check(res: dict[str, Any], m: dict[str, Any], digest: str) -> str | None:
    if res["tensors"] != m["tensors"] or res["bytes"] != m["bytes"]:
        return (f"loaded {res['tensors']} tensors / {res['bytes']} bytes, expected "
                f"{m['tensors']} / {m['bytes']}")
    if res.get("digest") != digest:
        return "a tensor's bytes differ from the model's"
    return None


def summarize(runs: dict[str, list[dict[str, Any]]], status: dict[str, str],
              model_bytes: int) -> dict[str, Any]:
    """Per case: medians over its successful runs (GiB/s, time to first tensor, CPU s/GiB),
    the largest peak RSS growth, and ``objio_ratio`` (objio's GiB/s / the case's)."""
    out: dict[str, Any] = {}
    for name, rs in runs.items():
        ok = [r for r in rs if r.get("ok")]
        if not ok or name in status:
            out[name] = {"status": "skipped" if not rs else "failed",
                         "reason": status.get(name, "no run")}
            continue
        out[name] = {"status": "ok", "runs": len(ok),
                     "gib_per_s": median([r["gib_per_s"] for r in ok]),
                     "ttft_s": median([r["ttft_s"] for r in ok]),
                     "cpu_s_per_gib": median([r["cpu_s_per_gib"] for r in ok]),
                     "peak_rss_growth_mib": max(r["peak_rss_growth_mib"] for r in ok),
                     "load_s": [r["wall_s"] for r in ok], "ttft_samples_s": [r["ttft_s"] for r in ok]}
    mine = out.get("objio", {}).get("gib_per_s")
    for row in out.values():
        if row.get("status") == "ok" and mine:
            row["objio_ratio"] = mine / row["gib_per_s"]
    out["_model_mib"] = model_bytes / MiB
    return out


def print_report(report: dict[str, Any], console: Any = None, *, wide: bool = False) -> None:
    """The report as a table (rich; plain text when not a terminal); every column fits
    :data:`~objio.bench.report.TABLE_WIDTH` (``wide`` changes nothing)."""
    from rich.console import Console

    from .report import table, wrap

    console = console or Console()
    cfg, m = report["config"], report["model"]
    lat = f", +{cfg['latency_ms']:g} ms per request" if cfg["latency_ms"] else ""
    console.print(wrap(f"objio bench model: {cfg['model']}-shaped, {m['tensors']} tensors, "
                       f"{format_size(m['bytes'])} in {plural(m['shards'], 'shard')} under "
                       f"{m['uri']}{lat}; {plural(cfg['rounds'], 'round')}, order rotated, each "
                       f"run in a fresh process; max_in_flight {cfg['max_in_flight']}"),
                  highlight=False)
    cols = [("case", "left", True), ("GiB/s", "right", True), ("first tensor s", "right", True),
            ("CPU s/GiB", "right", True), ("peak RSS +MiB", "right", True),
            ("objio/case", "right", True)]
    rows: list[list[str]] = []
    skipped = []
    for name, row in report["summary"].items():
        if name.startswith("_"):
            continue
        if row.get("status") != "ok":
            skipped.append((name, row.get("reason", "")))
            continue
        ratio = row.get("objio_ratio")
        ttft = row.get("ttft_s")
        rows.append([name, f"{row['gib_per_s']:.2f}", "-" if ttft is None else f"{ttft:.3f}",
                     f"{row['cpu_s_per_gib']:.2f}", f"{row['peak_rss_growth_mib']:.0f}",
                     "-" if ratio is None else f"{ratio:.2f}x"])
    t = table("median over rounds (peak RSS: largest growth)", cols, rows, wide=wide)
    console.print(t)
    for name, reason in skipped:
        console.print(f"  {name}: {reason}", highlight=False, markup=False)
