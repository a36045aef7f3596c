"""Code that runs inside real torch.distributed ranks (gloo, CPU), started by the tests with
``torch.multiprocessing`` (spawn). Each rank gets the server's ClientConfig explicitly and
writes what it saw to ``<out>/rank<N>.json`` for the test to check."""

from __future__ import annotations

import datetime
import json
import os
import signal
import traceback
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor import DTensor, Shard, distribute_tensor

import objio
from objio.torch.dcp import S3StorageReader, S3StorageWriter

DT_SHAPE = (1024, 384)  # the DTensor sharded over the ranks: 1.5 MiB of fp32


def init(rank: int, world: int, port: int) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=60))


def make_model(seed: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.ReLU(),
                                torch.nn.Linear(512, 256))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(8, 256)).sum().backward()
    opt.step()
    return model, opt


def full_dtensor_value(seed: int = 123) -> torch.Tensor:
    return torch.randn(DT_SHAPE, generator=torch.Generator().manual_seed(seed))


def state(model: torch.nn.Module, opt: torch.optim.Optimizer, dt: Any, step: int) -> dict[str, Any]:
    msd, osd = get_state_dict(model, opt)
    return {"model": msd, "optim": osd, "dt": dt, "step": step}


def digest(sd: dict[str, Any]) -> dict[str, float]:
    """Per tensor: the sum of its elements in float64 (enough to tell tensors apart)."""
    out: dict[str, float] = {}

    def walk(prefix: str, v: Any) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                walk(f"{prefix}.{k}", x)
        elif isinstance(v, DTensor):
            out[prefix] = float(v.full_tensor().double().sum())
        elif isinstance(v, torch.Tensor):
            out[prefix] = float(v.double().sum())
        elif isinstance(v, (int, float)):
            out[prefix] = float(v)

    walk("", sd)
    return out


def _write(out: str, rank: int, result: dict[str, Any]) -> None:
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)


def _failure(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def key_of(reader: Any) -> str:
    return str(reader.key)


# ------------------------------------------------------------------------------ 2-rank session
def session(rank: int, world: int, port: int, cfg: objio.ClientConfig, base: str,
            data_prefix: str, out: str) -> None:
    """Save from 2 ranks (model + Adam + a DTensor over both ranks), load back on 2 ranks,
    async_save + load, a save where one rank fails mid-write, then the datasets sharded over
    2 ranks x 2 DataLoader workers."""
    import time

    t0 = time.perf_counter()
    result: dict[str, Any] = {"t": {}}
    try:
        init(rank, world, port)
        result["t"]["init"] = time.perf_counter() - t0
        mesh = init_device_mesh("cpu", (world,))
        model, opt = make_model(seed=1)
        dt = distribute_tensor(full_dtensor_value(), mesh, [Shard(0)])
        sd = state(model, opt, dt, step=7)
        result["saved"] = digest(sd)

        dcp.save(sd, storage_writer=S3StorageWriter(None, f"{base}/sync", s3client_config=cfg))
        model2, opt2 = make_model(seed=2)
        dt2 = distribute_tensor(torch.zeros(DT_SHAPE), mesh, [Shard(0)])
        target = state(model2, opt2, dt2, step=0)
        dcp.load(target, storage_reader=S3StorageReader(None, f"{base}/sync", s3client_config=cfg))
        set_state_dict(model2, opt2, model_state_dict=target["model"],
                       optim_state_dict=target["optim"])
        result["loaded"] = digest(state(model2, opt2, target["dt"], target["step"]))
        result["local_shard_equal"] = bool(torch.equal(
            target["dt"].to_local(), full_dtensor_value().chunk(world)[rank]))
        result["t"]["sync"] = time.perf_counter() - t0

        fut = dcp.async_save(sd, storage_writer=S3StorageWriter(None, f"{base}/async",
                                                                 s3client_config=cfg))
        fut.result()
        model3, opt3 = make_model(seed=3)
        target3 = state(model3, opt3, distribute_tensor(torch.zeros(DT_SHAPE), mesh, [Shard(0)]), 0)
        dcp.load(target3, storage_reader=S3StorageReader(None, f"{base}/async",
                                                          s3client_config=cfg))
        set_state_dict(model3, opt3, model_state_dict=target3["model"],
                       optim_state_dict=target3["optim"])
        result["async_loaded"] = digest(state(model3, opt3, target3["dt"], target3["step"]))
        result["t"]["async"] = time.perf_counter() - t0

        # One rank fails in the middle of writing its files: the save must fail everywhere.
        if rank == 1:
            from objio.torch import dcp as odcp

            original = odcp.S3StorageWriter._write_item
            calls = [0]

            def failing(self: Any, stream: Any, item: Any, planner: Any, name: str) -> Any:
                calls[0] += 1
                if calls[0] == 3:
                    raise OSError("injected failure in the middle of a save")
                return original(self, stream, item, planner, name)

            odcp.S3StorageWriter._write_item = failing  # type: ignore[method-assign]
        try:
            dcp.save(sd, storage_writer=S3StorageWriter(None, f"{base}/failed",
                                                         s3client_config=cfg, thread_count=2))
            result["failed_save"] = "no error"
        except BaseException as e:  # noqa: BLE001 - DCP raises CheckpointException (BaseException)
            result["failed_save"] = _failure(e)
        dist.barrier()
        result["t"]["failed"] = time.perf_counter() - t0

        result["datasets"] = datasets_sharded(rank, world, cfg, data_prefix)
        result["t"]["datasets"] = time.perf_counter() - t0
    except BaseException as e:  # noqa: BLE001 - reported to the test
        result["error"] = _failure(e) + "\n" + traceback.format_exc()
    finally:
        _write(out, rank, result)
        if dist.is_initialized():
            dist.destroy_process_group()


def datasets_sharded(rank: int, world: int, cfg: objio.ClientConfig,
                     prefix: str) -> dict[str, list[list[str]]]:
    from torch.utils.data import DataLoader, DistributedSampler

    from objio.torch import S3IterableDataset, S3MapDataset

    it = S3IterableDataset.from_prefix(prefix, region="us-east-1", s3client_config=cfg,
                                       enable_sharding=True, shuffle=True, seed=3,
                                       transform=key_of)
    mp = S3MapDataset.from_prefix(prefix, region="us-east-1", s3client_config=cfg,
                                  transform=key_of)
    sampler = DistributedSampler(mp, num_replicas=world, rank=rank, shuffle=True, seed=3)
    out: dict[str, list[list[str]]] = {"iterable": [], "map": []}
    # fork, as under torchrun (a process made by spawn would spawn its workers too)
    for epoch in range(2):
        it.set_epoch(epoch)
        sampler.set_epoch(epoch)
        out["iterable"].append(list(DataLoader(it, batch_size=None, num_workers=2,
                                               multiprocessing_context="fork")))
        keys: list[str] = []
        for batch in DataLoader(mp, batch_size=4, sampler=sampler, num_workers=2,
                                collate_fn=list, multiprocessing_context="fork"):
            keys.extend(batch)
        out["map"].append(keys)
    return out


# ------------------------------------------------------------------------------ resharding
def load_resharded(rank: int, world: int, port: int, cfg: objio.ClientConfig, path: str,
                   out: str) -> None:
    """Load the 2-rank checkpoint into ``world`` ranks (the DTensor sharded over them)."""
    result: dict[str, Any] = {}
    try:
        init(rank, world, port)
        mesh = init_device_mesh("cpu", (world,))
        model, opt = make_model(seed=5)
        target = state(model, opt, distribute_tensor(torch.zeros(DT_SHAPE), mesh, [Shard(0)]), 0)
        dcp.load(target, storage_reader=S3StorageReader(None, path, s3client_config=cfg))
        set_state_dict(model, opt, model_state_dict=target["model"],
                       optim_state_dict=target["optim"])
        result["loaded"] = digest(state(model, opt, target["dt"], target["step"]))
        result["local_shard_equal"] = bool(torch.equal(
            target["dt"].to_local(), full_dtensor_value().chunk(world)[rank]))
    except BaseException as e:  # noqa: BLE001 - reported to the test
        result["error"] = _failure(e) + "\n" + traceback.format_exc()
    finally:
        _write(out, rank, result)
        if dist.is_initialized():
            dist.destroy_process_group()


# ------------------------------------------------------------------------------ a killed rank
def save_and_die(rank: int, world: int, port: int, cfg: objio.ClientConfig, path: str,
                 out: str) -> None:
    """Rank 1 SIGKILLs itself in the middle of writing its data; rank 0 reports how its save
    ended."""
    result: dict[str, Any] = {}
    try:
        init(rank, world, port)
        mesh = init_device_mesh("cpu", (world,))
        model, opt = make_model(seed=1)
        sd = state(model, opt, distribute_tensor(full_dtensor_value(), mesh, [Shard(0)]), 1)
        if rank == 1:
            from objio.io.writer import ObjectWriter

            original = ObjectWriter.write
            written = [0]

            def dying(self: Any, data: Any) -> int:
                written[0] += 1
                if written[0] == 50:
                    os.kill(os.getpid(), signal.SIGKILL)
                return original(self, data)

            ObjectWriter.write = dying  # type: ignore[method-assign]
        dcp.save(sd, storage_writer=S3StorageWriter(None, path, s3client_config=cfg))
        result["save"] = "no error"
    except BaseException as e:  # noqa: BLE001 - reported to the test
        result["save"] = _failure(e)
    finally:
        _write(out, rank, result)
        os._exit(0)  # the peer is gone: skip destroy_process_group (it would wait for it)
