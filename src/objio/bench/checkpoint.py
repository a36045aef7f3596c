"""Checkpoint benchmark (``objio bench checkpoint``): save and load a transformer-shaped state
dict through objio and s3torchconnector, in the same run, against a local-disk baseline.

Cases (each run in fresh spawned processes; rounds interleaved, every other round in the reverse
order and the order rotated every two rounds, the page cache written back before each case):

* ``disk``: ``torch.save`` to a file in a temporary directory and ``torch.load`` from it (what
  the storage path costs compared with a local file system and its page cache).
* ``objio``: ``torch.save`` / ``torch.load`` through :class:`objio.torch.S3Checkpoint`.
* ``s3torchconnector``: the same through ``s3torchconnector.S3Checkpoint``.
* ``objio-dcp``: ``torch.distributed.checkpoint.save`` / ``load`` with
  :class:`objio.torch.dcp.S3StorageWriter` / ``S3StorageReader`` on ``ranks`` real processes
  (gloo process group), each rank holding ``1/ranks`` of the state dict.
* ``s3torchconnector-dcp``: the same with s3torchconnector's DCP classes.

Every library is set up through its adapter in :mod:`objio.bench.peers`. The state dict is
built (and the library imported, its client made) before the clock starts. The state dict is a
Llama-style model: per layer the attention (q, k, v, o: h x h) and MLP (gate, up, down: h x
3.5h) weights and two norms, plus embeddings, in bf16, and for every weight Adam's fp32 master
copy, ``exp_avg`` and ``exp_avg_sq``: 2 bytes of model for 12 of optimizer per parameter, the
ratio of MLPerf Storage's checkpoint sizes; ``h`` is chosen so the total is ``size``.

Reported per case and operation (medians over rounds): GiB/s (state-dict bytes / wall
seconds; DCP: from the barrier before to the barrier after, on rank 0), client CPU seconds per
GiB (user + system of the process doing it; DCP: the sum over ranks), peak RSS during the
operation (the high-water mark, reset before it: ``/proc/self/clear_refs``; DCP: the largest
rank) and how much of it is beyond the state dict, and the ratio to s3torchconnector.

Presets (``workload``): MLPerf Storage v2.0's checkpointing workloads, with their total
checkpoint sizes and closed-division process counts as defined in mlcommons/storage,
``mlpstorage/config.py`` (``LLM_SIZE_BY_RANK``: model + optimizer GB; ``LLM_ALLOWED_VALUES``:
processes): llama3-8b 15 + 90 GB on 8 processes, llama3-70b 130 + 781 GB on 64, llama3-405b
755 + 4533 GB on 512. ``scale`` multiplies the size (the process count stays the preset's
unless ``ranks`` is given).
"""

from __future__ import annotations

import gc
import json
import math
import multiprocessing as mp
import os
import shutil
import socket
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .. import engine
from ..config import GiB, MiB, format_size, plural
from ..uri import parse_uri
from ._common import cpu_seconds, environment, median, peak_rss_bytes, ratio, reset_peak_rss, rss_bytes
from .peers import Access, library

__all__ = ["CASES", "PRESETS", "Preset", "run_checkpoint", "print_report", "plan_layers"]

CASES = ("disk", "objio", "s3torchconnector", "objio-dcp", "s3torchconnector-dcp")
"""Every case, in the order of the first round."""

_LIBRARY = {"objio": "objio", "s3torchconnector": "s3torchconnector",
            "objio-dcp": "objio", "s3torchconnector-dcp": "s3torchconnector"}
_PEER_OF = {"objio": "s3torchconnector", "objio-dcp": "s3torchconnector-dcp"}
_GB = 1_000_000_000
_LAYERS_MIN = 4
_LAYERS_MAX = 32
_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class Preset:
    """An MLPerf Storage checkpointing workload: total bytes (model + optimizer) and ranks."""

    name: str
    model_bytes: int
    optimizer_bytes: int
    ranks: int

    @property
    def total_bytes(self) -> int:
        return self.model_bytes + self.optimizer_bytes


PRESETS: dict[str, Preset] = {
    "llama3-8b": Preset("llama3-8b", 15 * _GB, 90 * _GB, 8),
    "llama3-70b": Preset("llama3-70b", 130 * _GB, 781 * _GB, 64),
    "llama3-405b": Preset("llama3-405b", 755 * _GB, 4533 * _GB, 512),
}
"""MLPerf Storage v2.0 checkpointing workloads (mlcommons/storage, mlpstorage/config.py)."""


# ------------------------------------------------------------------------------ state dict
def plan_layers(nbytes: int) -> tuple[int, int, int]:
    """(layers, hidden size h, vocabulary rows) of a Llama-style model whose bf16 weights plus
    fp32 Adam state (14 bytes per parameter) come to about ``nbytes``."""
    params = max(1, nbytes // 14)
    layers = _LAYERS_MIN
    while layers < _LAYERS_MAX and params > layers * 16 * 1024 * 1024:
        layers *= 2
    # per layer 4 h^2 (attention) + 10.5 h^2 (MLP, ffn 3.5 h); embeddings in and out: 2 x 8h x h
    h = max(64, int(math.sqrt(params / (14.5 * layers + 16))) // 64 * 64)
    ffn = h * 7 // 2
    per_layer = 4 * h * h + 3 * ffn * h + 2 * h
    vocab = max(1, (params - layers * per_layer - h) // (2 * h))  # the rest: embedding rows
    return layers, h, vocab


def make_state_dict(nbytes: int, seed: int = 0, key_prefix: str = "") -> dict[str, Any]:
    """A transformer-shaped state dict of about ``nbytes`` (see the module docs): ``model``
    (bf16) and ``optimizer`` (fp32 master, exp_avg, exp_avg_sq per weight), filled with
    incompressible bytes (a random block repeated)."""
    import numpy as np
    import torch

    layers, h, vocab = plan_layers(nbytes)
    ffn = h * 7 // 2
    shapes: dict[str, tuple[int, ...]] = {"embed_tokens.weight": (vocab, h)}
    for i in range(layers):
        p = f"layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            shapes[f"{p}self_attn.{name}.weight"] = (h, h)
        shapes[f"{p}mlp.gate_proj.weight"] = (ffn, h)
        shapes[f"{p}mlp.up_proj.weight"] = (ffn, h)
        shapes[f"{p}mlp.down_proj.weight"] = (h, ffn)
        shapes[f"{p}input_layernorm.weight"] = (h,)
        shapes[f"{p}post_attention_layernorm.weight"] = (h,)
    shapes["norm.weight"] = (h,)
    shapes["lm_head.weight"] = (vocab, h)
    block = np.frombuffer(np.random.default_rng(seed).bytes(16 * MiB), np.uint8)
    src = torch.from_numpy(block.copy())

    def filled(shape: tuple[int, ...], dtype: Any, salt: int) -> Any:
        t = torch.empty(shape, dtype=dtype)
        raw = t.view(-1).view(torch.uint8)
        off = (salt * 4099) % len(src)
        pos = 0
        while pos < len(raw):
            k = min(len(raw) - pos, len(src) - off)
            raw[pos: pos + k] = src[off: off + k]
            pos += k
            off = 0
        return t

    model: dict[str, Any] = {}
    optim: dict[str, Any] = {}
    for i, (name, shape) in enumerate(shapes.items()):
        model[key_prefix + name] = filled(shape, torch.bfloat16, i)
        for j, part in enumerate(("master", "exp_avg", "exp_avg_sq")):
            optim[f"{key_prefix}{name}.{part}"] = filled(shape, torch.float32, 7 * i + j + 1)
    return {"model": model, "optimizer": optim}


def state_bytes(sd: dict[str, Any]) -> tuple[int, int]:
    """(bytes, tensors) of a state dict made by :func:`make_state_dict`."""
    n = t = 0
    for group in sd.values():
        for v in group.values():
            n += v.nbytes
            t += 1
    return n, t


def _resident_like(sd: dict[str, Any]) -> dict[str, Any]:
    """A state dict shaped like ``sd`` to load into, zero-filled: resident before the clock
    starts, as a resuming job's model and optimizer are (built and initialized before the
    load), so the load is not charged with first-touch page faults on the target."""
    import torch

    return {g: {k: torch.zeros_like(v) for k, v in d.items()} for g, d in sd.items()}


def _equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Byte-wise equality (the random fill holds NaNs, which never compare equal)."""
    import torch

    def raw(t: Any) -> Any:
        return t.reshape(-1).view(torch.uint8)

    return a.keys() == b.keys() and all(
        a[g].keys() == b[g].keys() and all(torch.equal(raw(a[g][k]), raw(b[g][k])) for k in a[g])
        for g in a)


# ------------------------------------------------------------------------------ measuring
def _measure(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    # every timed operation starts from a collected heap: otherwise the first full collection
    # of a fresh process (torch's ~270k objects: ~0.2 s with the GIL held) lands in whichever
    # operation happens to cross the threshold
    gc.collect()
    base = rss_bytes()
    reset_peak_rss()
    c0, t0 = cpu_seconds(), time.perf_counter()
    out = fn()
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    peak = max(peak_rss_bytes(), base)
    return out, {"wall_s": wall, "cpu_s": cpu, "peak_rss": peak, "peak_extra": peak - base}


def _environ(env: dict[str, str | None]) -> Any:
    from ..config import temporary_environ

    return temporary_environ(env)


# ------------------------------------------------------------------------------ children
def _single_child(case: str, access: Access, uri: str, tmpdir: str, size: int, seed: int,
                  out: str) -> None:
    """One case's save then load in this (spawned) process; the report goes to ``out``."""
    res: dict[str, Any] = {"ok": False}
    try:
        import torch

        sd = make_state_dict(size, seed)
        res["bytes"], res["tensors"] = state_bytes(sd)
        warm = {"w": torch.arange(1 << 18, dtype=torch.float32)}  # 1 MiB
        if case == "disk":
            path = os.path.join(tmpdir, f"disk-{seed}.pt")

            def save() -> None:
                torch.save(sd, path)

            def load() -> Any:
                return torch.load(path, weights_only=True)

            env: dict[str, str | None] = {}
        else:
            lib = library(_LIBRARY[case], access)
            env = lib.env()

            def save() -> None:
                with _environ(env):
                    writer = lib.checkpoint_writer(uri)
                    with writer:
                        torch.save(sd, writer)

            def load() -> Any:
                with _environ(env):
                    reader = lib.checkpoint_reader(uri)
                    return torch.load(reader, weights_only=True)

            with _environ(env):  # first connections and the library's own start-up: not timed
                with lib.checkpoint_writer(uri + ".warmup") as w:
                    torch.save(warm, w)
                torch.load(lib.checkpoint_reader(uri + ".warmup"), weights_only=True)

        _, res["save"] = _measure(save)
        loaded, res["load"] = _measure(load)
        if not _equal(loaded, sd):
            raise AssertionError("the loaded state dict differs from the saved one")
        res["ok"] = True
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        res["error"] = f"{type(e).__name__}: {e}"
        res["trace"] = traceback.format_exc()
    with open(out, "w") as f:
        json.dump(res, f)


def _rank_child(rank: int, world: int, port: int, case: str, access: Access, path: str,
                size: int, seed: int, threads: int, out_dir: str) -> None:
    """One rank of a DCP case: its shard saved, then loaded, with barriers around each."""
    res: dict[str, Any] = {"ok": False}
    import datetime

    import torch.distributed as dist
    try:
        import torch
        import torch.distributed.checkpoint as dcp

        os.environ["MASTER_ADDR"] = "127.0.0.1"
        os.environ["MASTER_PORT"] = str(port)
        dist.init_process_group("gloo", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=_TIMEOUT_S))
        sd = make_state_dict(max(1, size // world), seed + rank, key_prefix=f"shard{rank}.")
        res["bytes"], res["tensors"] = state_bytes(sd)
        lib = library(_LIBRARY[case], access)
        env = lib.env()
        warm = {f"warmup{rank}": torch.arange(1 << 16, dtype=torch.float32)}
        with _environ(env):  # first connections, the first collectives: not timed
            dcp.save(warm, storage_writer=lib.dcp_storage_writer(path + "-warmup", threads))
            dcp.load(warm, storage_reader=lib.dcp_storage_reader(path + "-warmup", threads))
            writer = lib.dcp_storage_writer(path, threads)

        def save() -> None:
            dist.barrier()
            with _environ(env):
                dcp.save(sd, storage_writer=writer)
            dist.barrier()

        _, res["save"] = _measure(save)
        target = _resident_like(sd)
        with _environ(env):
            reader = lib.dcp_storage_reader(path, threads)

        def load() -> None:
            dist.barrier()
            with _environ(env):
                dcp.load(target, storage_reader=reader)
            dist.barrier()

        _, res["load"] = _measure(load)
        if not _equal(target, sd):
            raise AssertionError(f"rank {rank}: the loaded shard differs from the saved one")
        res["ok"] = True
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        res["error"] = f"{type(e).__name__}: {e}"
        res["trace"] = traceback.format_exc()
    finally:
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
            json.dump(res, f)
        if dist.is_initialized():
            dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_single(case: str, access: Access, uri: str, size: int, seed: int,
                timeout_s: float) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    tmpdir = tempfile.mkdtemp(prefix="objio-bench-ckpt-")
    out = os.path.join(tmpdir, "result.json")
    try:
        p = ctx.Process(target=_single_child, args=(case, access, uri, tmpdir, size, seed, out))
        p.start()
        p.join(timeout_s)
        if p.is_alive():
            p.kill()
            p.join()
            return {"ok": False, "error": f"timed out after {timeout_s:.0f} s"}
        if not os.path.exists(out):
            return {"ok": False, "error": f"the benchmark process exited with {p.exitcode}"}
        with open(out) as f:
            return dict(json.load(f))
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _run_ranks(case: str, access: Access, path: str, size: int, seed: int, ranks: int,
               threads: int, timeout_s: float) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    tmpdir = tempfile.mkdtemp(prefix="objio-bench-dcp-")
    port = _free_port()
    try:
        procs = [ctx.Process(target=_rank_child,
                             args=(r, ranks, port, case, access, path, size, seed, threads,
                                   tmpdir)) for r in range(ranks)]
        for p in procs:
            p.start()
        deadline = time.monotonic() + timeout_s
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))
        if any(p.is_alive() for p in procs):
            for p in procs:
                p.kill()
                p.join()
            return {"ok": False, "error": f"timed out after {timeout_s:.0f} s"}
        per_rank = []
        for r in range(ranks):
            fp = os.path.join(tmpdir, f"rank{r}.json")
            if not os.path.exists(fp):
                return {"ok": False, "error": f"rank {r} exited with {procs[r].exitcode}"}
            with open(fp) as f:
                per_rank.append(json.load(f))
        bad = [r for r in per_rank if not r.get("ok")]
        if bad:
            return {"ok": False, "error": bad[0].get("error"), "trace": bad[0].get("trace")}
        out: dict[str, Any] = {"ok": True, "bytes": sum(r["bytes"] for r in per_rank),
                               "tensors": sum(r["tensors"] for r in per_rank)}
        for op in ("save", "load"):
            out[op] = {
                "wall_s": per_rank[0][op]["wall_s"],
                "cpu_s": sum(r[op]["cpu_s"] for r in per_rank),
                "peak_rss": max(r[op]["peak_rss"] for r in per_rank),
                "peak_extra": max(r[op]["peak_extra"] for r in per_rank),
            }
        return out
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


# ------------------------------------------------------------------------------ the run
def _available(case: str) -> str | None:
    """Why ``case`` cannot run here (None if it can)."""
    from .peers import LIBRARIES

    name = _LIBRARY.get(case)
    if name is None:
        return None
    if not LIBRARIES[name].installed():
        return f"{name} is not installed"
    if case == "s3torchconnector-dcp":
        import importlib.util

        if importlib.util.find_spec("tenacity") is None:
            return "s3torchconnector's DCP needs tenacity (pip install 's3torchconnector[dcp]')"
    return None


def _summarize(runs: list[dict[str, Any]], cases: Sequence[str]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for case in cases:
        rows: dict[str, Any] = {}
        ok = [r for r in runs if r["case"] == case and r.get("ok")]
        for op in ("save", "load"):
            if not ok:
                rows[op] = None
                continue
            rows[op] = {
                "gib_s": median([r[op]["gib_s"] for r in ok]),
                "cpu_s_per_gib": median([r[op]["cpu_s_per_gib"] for r in ok]),
                "peak_rss_mib": max(r[op]["peak_rss"] for r in ok) / MiB,
                "peak_extra_mib": max(r[op]["peak_extra"] for r in ok) / MiB,
                "runs": len(ok),
            }
        summary[case] = rows
    for case, peer in _PEER_OF.items():
        mine, theirs = summary.get(case), summary.get(peer)
        if not mine or not theirs:
            continue
        by_round = {r["round"]: r for r in runs if r["case"] == peer and r.get("ok")}
        for op in ("save", "load"):
            if not (mine.get(op) and theirs.get(op)):
                continue
            # paired: each round's ratio (the two ran back to back), then the median
            pairs = [(r[op], by_round[r["round"]][op]) for r in runs
                     if r["case"] == case and r.get("ok") and r["round"] in by_round]
            mine[op]["vs_peer"] = median([ratio(a["gib_s"], b["gib_s"]) for a, b in pairs])
            mine[op]["cpu_vs_peer"] = median([ratio(a["cpu_s_per_gib"], b["cpu_s_per_gib"])
                                              for a, b in pairs])
            mine[op]["vs_peer_of_medians"] = ratio(mine[op]["gib_s"], theirs[op]["gib_s"])
    return summary


def _goals(summary: dict[str, Any], state_bytes_: int) -> dict[str, Any]:
    """The issue's performance goals, measured (not asserted)."""
    out: dict[str, Any] = {}
    for case in ("objio", "objio-dcp"):
        rows = summary.get(case) or {}
        save, load = rows.get("save"), rows.get("load")
        if not save or not load:
            continue
        out[case] = {
            "load_vs_peer>=1.5": None if load.get("vs_peer") is None else load["vs_peer"] >= 1.5,
            "save_vs_peer>=1.2": None if save.get("vs_peer") is None else save["vs_peer"] >= 1.2,
            "save_cpu_vs_peer<=0.5": None if save.get("cpu_vs_peer") is None
            else save["cpu_vs_peer"] <= 0.5,
            "save_extra_rss<=512MiB": save["peak_extra_mib"] <= 512,
        }
    return out


def _round_order(cases: Sequence[str], r: int) -> list[str]:
    """Round ``r``'s order: every other round the previous one reversed (so each case runs
    both before and after its neighbours), rotated by one every two rounds."""
    k = (r // 2) % max(1, len(cases))
    order = list(cases[k:]) + list(cases[:k])
    return order[::-1] if r % 2 else order


def _settle() -> None:
    """Before each case: write back the page cache (the previous case's gigabyte of dirty
    server pages would otherwise be flushed, on the same cores, during this one)."""
    if hasattr(os, "sync"):
        os.sync()
    time.sleep(0.5)


def run_checkpoint(client: Any, prefix: str, *, size: int, ranks: int = 2, rounds: int = 2,
                   threads: int = 4, cases: Sequence[str] = CASES, workload: str | None = None,
                   scale: float | None = None, timeout_s: float = _TIMEOUT_S,
                   log: Callable[[str], None] | None = None,
                   advance: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the checkpoint benchmark under ``prefix`` (``s3://bucket/prefix``; the bucket must
    exist) and return the report (see :func:`print_report`). ``size`` is the state dict's
    total bytes (the DCP cases split it over ``ranks`` processes, each writing ``threads``
    files at once). ``log`` gets one line per finished run; ``advance(label)`` is called as
    each run starts. Everything written is deleted afterwards.

    Raises: ValueError (bad arguments), FileNotFoundError / PermissionError (the bucket)."""
    if size < MiB:
        raise ValueError(f"--size must be at least 1 MiB, got {size} bytes")
    for name, v in (("--ranks", ranks), ("--rounds", rounds), ("--threads", threads)):
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    unknown = [c for c in cases if c not in CASES]
    if unknown or not cases:
        raise ValueError(f"--cases must be a comma list of {', '.join(CASES)}, got "
                         f"{','.join(cases) or 'nothing'}")
    phys = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if 3 * size > phys:
        raise ValueError(f"a state dict of {format_size(size)} does not fit in this machine's "
                         f"{format_size(phys)} of memory (saving and loading need about 3x); "
                         "use a smaller --size or --scale")
    obj = parse_uri(prefix)
    if obj.scheme != "s3":
        raise ValueError(f"objio bench checkpoint needs an s3://bucket/prefix, got {prefix!r}")
    backend = client._backend(obj)
    engine.run(backend.head_bucket(obj.with_key("")))  # the bucket exists, credentials work
    access = Access.from_client(client)
    base = obj.key.rstrip("/")
    run_id = uuid.uuid4().hex[:8]
    warm = str(obj.with_key(f"{base}/{run_id}/server-warmup" if base else f"{run_id}/warmup"))
    client.put_bytes(warm, os.urandom(min(size, 64 * MiB)))  # the server's first writes
    client.delete(warm)
    skipped = {c: why for c in cases if (why := _available(c)) is not None}
    active = [c for c in cases if c not in skipped]
    runs: list[dict[str, Any]] = []
    for r in range(rounds):
        for case in _round_order(active, r):
            _settle()
            if advance is not None:
                advance(f"round {r + 1}/{rounds} {case}")
            key = f"{base}/{run_id}/{case}-{r}" if base else f"{run_id}/{case}-{r}"
            uri = str(obj.with_key(key))
            try:
                if case.endswith("dcp"):
                    res = _run_ranks(case, access, uri, size, r, ranks, threads, timeout_s)
                else:
                    res = _run_single(case, access, uri + ".pt", size, r, timeout_s)
            finally:
                for leftover in (uri + "/", uri + "-warmup/", uri + ".pt", uri + ".pt.warmup"):
                    client.delete(leftover)
            res.update(case=case, round=r + 1)
            if res.get("ok"):
                for op in ("save", "load"):
                    m = res[op]
                    m["gib_s"] = res["bytes"] / GiB / m["wall_s"]
                    m["cpu_s_per_gib"] = m["cpu_s"] / (res["bytes"] / GiB)
                if log is not None:
                    log(f"round {r + 1}/{rounds} {case:21s} save {res['save']['gib_s']:6.3f} "
                        f"GiB/s {res['save']['cpu_s_per_gib']:5.2f} CPU s/GiB | load "
                        f"{res['load']['gib_s']:6.3f} GiB/s {res['load']['cpu_s_per_gib']:5.2f} "
                        "CPU s/GiB")
            elif log is not None:
                log(f"round {r + 1}/{rounds} {case:21s} FAILED: {res.get('error')}")
            runs.append(res)
    nbytes = next((r["bytes"] for r in runs if r.get("ok") and not r["case"].endswith("dcp")),
                  next((r["bytes"] for r in runs if r.get("ok")), size))
    layers, h, _ = plan_layers(size)
    summary = _summarize(runs, active)
    report: dict[str, Any] = {
        "kind": "checkpoint", "prefix": prefix, "size": size, "state_dict_bytes": nbytes,
        "tensors": next((r["tensors"] for r in runs if r.get("ok")), None),
        "layers": layers, "hidden_size": h, "ranks": ranks, "rounds": rounds,
        "threads": threads, "cases": list(active), "skipped": skipped,
        "workload": workload, "scale": scale,
        "preset": None if workload is None else PRESETS[workload].__dict__,
        "environment": environment(["torch", "s3torchconnector", "lightning"]),
        "runs": runs, "summary": summary, "goals": _goals(summary, nbytes),
    }
    return report


def print_report(report: dict[str, Any], console: Any, *, wide: bool = False) -> None:
    """The report as tables on a rich console: the default columns fit
    :data:`~objio.bench.report.TABLE_WIDTH`; ``wide``: every column."""
    from .report import fmt, table, times, wrap

    head = wrap(f"objio bench checkpoint: state dict {format_size(report['state_dict_bytes'])} "
                f"({report['tensors']} tensors, {plural(report['layers'], 'layer')}, hidden "
                f"{report['hidden_size']}, bf16 model + fp32 Adam), DCP on "
                f"{plural(report['ranks'], 'rank')} x {plural(report['threads'], 'file')}, "
                f"{plural(report['rounds'], 'round')}, under {report['prefix']}")
    if report.get("workload"):
        p = report["preset"]
        head += "\n" + wrap(f"  workload {report['workload']} (MLPerf Storage: "
                            f"{(p['model_bytes'] + p['optimizer_bytes']) / _GB:.0f} GB on "
                            f"{plural(p['ranks'], 'process', 'processes')}) at scale "
                            f"{report['scale']}")
    console.print(head, highlight=False)
    for case, why in report.get("skipped", {}).items():
        console.print(f"  {case}: skipped ({why})", highlight=False, markup=False)
    cols = [("case", "left", True), ("op", "left", True), ("GiB/s", "right", True),
            ("CPU s/GiB", "right", True), ("peak RSS MiB", "right", True),
            ("beyond state MiB", "right", False), ("vs s3torchconnector", "right", True),
            ("CPU vs s3torchconnector", "right", False)]
    rows: list[list[str]] = []
    for case, ops in report["summary"].items():
        for op in ("save", "load"):
            row = ops.get(op)
            if row is None:
                rows.append([case, op, "failed", "", "", "", "", ""])
                continue
            rows.append([case, op, fmt(row["gib_s"], ".3f"), fmt(row["cpu_s_per_gib"], ".2f"),
                         fmt(row["peak_rss_mib"], ".0f"), fmt(row["peak_extra_mib"], ".0f"),
                         times(row.get("vs_peer")), times(row.get("cpu_vs_peer"))])
    console.print(table(None, cols, rows, wide=wide, show_edge=False, box=None,
                        collapse_padding=False, header_style="bold"))
    console.print(wrap("medians over rounds; 'vs s3torchconnector': median of each round's ratio "
                       "(the two run back to back); DCP: wall time on rank 0 between barriers, "
                       "CPU summed over ranks, peak RSS of the largest rank; 'beyond state' "
                       "(--wide) = peak RSS minus RSS before the operation (load: includes the "
                       "loaded tensors)"), highlight=False)
