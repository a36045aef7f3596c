"""Each ``objio bench`` kind's share of the work per rank (:class:`objio.bench.split.Task`),
under ``--clients N`` and under torchrun / mpirun / srun. Rank *r* of *n* takes item *i*
when ``i mod n == r``:

* :class:`Objects` (``objio bench``): object *i* of ``--num``, read ``--epochs`` times;
* :class:`Listing` (``bench list``): the keys fall into key-prefix groups (the shortest prefix
  length giving at least 4 groups per rank); each rank lists its own groups;
* :class:`Model` (``bench model``): each rank loads its own safetensors shard files with
  ``objio.model.iter_safetensors`` (the aggregate is the bytes of all ranks over the common
  window);
* :class:`Checkpoint` (``bench checkpoint``): each rank saves its own shard of the state dict
  (``--size`` / ranks bytes, ``torch.save`` through objio's writer to its own object, as a DCP
  rank writes its own files), every rank waits, then each loads its shard back and checks it;
* :class:`Train` (``bench --workload``): each rank reads its own files of the workload's
  dataset every epoch (DLIO's rule: file *i* to rank *i mod n*) through a real DataLoader with
  the emulated compute; samples/s is the aggregate, AU is per rank (as MLPerf Storage reports
  it).
"""

from __future__ import annotations

from typing import Any

from ..api import Client
from ..uri import parse_uri
from .split import Task, timed

TEMPLATE = "object_{}_of_{}.dat"
GiB = 1024 ** 3


def _at_least(what: str, have: int, size: int) -> None:
    if have < size:
        raise ValueError(f"{what} ({have}) must be at least the number of ranks ({size}): "
                         "every rank takes its own share")


class Objects(Task):
    """The get phase of the objects benchmark (see the module docs)."""

    kind, unit, ops = "objects", "objects", ("GET",)

    def __init__(self, uri: str, *, num: int, size: int, epochs: int, max_in_flight: int) -> None:
        self.uri, self.num, self.size, self.epochs = uri, num, size, epochs
        self.max_in_flight = max_in_flight
        prefix = parse_uri(uri)
        self.uris = [str(prefix.joinpath(TEMPLATE.format(i, num))) for i in range(num)]

    def config(self) -> dict[str, Any]:
        return {"uri": self.uri, "num": self.num, "size": self.size, "epochs": self.epochs,
                "max_in_flight": self.max_in_flight}

    def check(self, size: int) -> None:
        _at_least("--num", self.num, size)

    def prepare(self, client: Client) -> None:
        client.put(parse_uri(self.uri), num=self.num, template=TEMPLATE, size=self.size,
                   max_in_flight=self.max_in_flight, should_create_bucket=False)

    def run(self, client: Client, rank: int, size: int, barrier: Any) -> dict[str, Any]:
        from .clients import read_slice

        part = read_slice(client, self.uris[rank::size], self.epochs, self.max_in_flight,
                          lambda: barrier("start"))
        return {"items": part["objects"], **part}

    def cleanup(self, client: Client) -> None:
        client.delete_many(self.uris)

    def summarize(self, per: list[dict[str, Any]], agg: dict[str, Any]) -> dict[str, Any]:
        return {"objects": agg["items"], "objects_per_s": agg["ops_per_s"]}


def key_groups(keys: list[str], size: int) -> list[str]:
    """Disjoint key prefixes covering ``keys``: those of the shortest length (at most the
    shortest key's) giving at least ``4 * size`` prefixes, else the longest such length.
    Sorted."""
    shortest = min(len(k) for k in keys)
    groups: list[str] = []
    for n in range(1, shortest + 1):
        groups = sorted({k[:n] for k in keys})
        if len(groups) >= 4 * size:
            break
    return groups


class Listing(Task):
    """``bench list``: every rank lists its own key-prefix groups of the list benchmark's keys
    (sequential ListObjectsV2, keys only)."""

    kind, unit, ops = "list", "keys", ("LIST",)

    def __init__(self, uri: str, *, keys: int, layout: str) -> None:
        self.keys, self.layout = keys, layout
        self.uri = str(parse_uri(uri).joinpath(f"list-{layout}-{keys}/"))

    def config(self) -> dict[str, Any]:
        return {"uri": self.uri, "keys": self.keys, "layout": self.layout}

    def _groups(self, size: int) -> list[str]:
        from .listing import layout_keys

        return key_groups(layout_keys(self.layout, self.keys), size)

    def check(self, size: int) -> None:
        _at_least("the key-prefix groups of --keys", len(self._groups(size)), size)

    def prepare(self, client: Client) -> None:
        from .listing import ensure_keys

        ensure_keys(client, self.uri, self.keys, self.layout, log=lambda line: None)

    def run(self, client: Client, rank: int, size: int, barrier: Any) -> dict[str, Any]:
        mine = self._groups(size)[rank::size]
        client.stat(self.uri + self._first_key(mine[0]))  # connection, credentials
        barrier("start")

        def work() -> tuple[int, int, dict[str, Any]]:
            n = sum(len(client.list(self.uri + g)) for g in mine)
            return n, 0, {"groups": len(mine)}

        return timed(work)

    def _first_key(self, group: str) -> str:
        from .listing import layout_keys

        return next(k for k in layout_keys(self.layout, self.keys) if k.startswith(group))

    def summarize(self, per: list[dict[str, Any]], agg: dict[str, Any]) -> dict[str, Any]:
        return {"keys_per_s": agg["items_per_s_over_duration"],
                "complete": agg["items"] == self.keys}

    def columns(self) -> list[tuple[str, str, str]]:
        return [("groups", "groups", "d")]


class Model(Task):
    """``bench model``: each rank loads its own shards (objio's ``iter_safetensors``)."""

    kind, unit, ops = "model", "shards", ("GET",)

    def __init__(self, uri: str, *, model: str, size: int, shards: int, max_in_flight: int,
                 seed: int = 0) -> None:
        from ..gen.models import max_shard_size_for, model_preset, plan_shards

        self.model, self.size, self.shards = model, size, shards
        self.max_in_flight, self.seed = max_in_flight, seed
        root = parse_uri(uri)
        if root.key and not root.key.endswith("/"):
            root = root.with_key(root.key + "/")
        self.uri = str(root)
        base = model_preset(model)
        preset = model_preset(model, min(1.0, size / base.total_bytes()))
        plan = plan_shards(preset, max_shard_size_for(preset, shards))
        self.files = [str(root.joinpath(s.name)) for s in plan]
        self.model_bytes = preset.total_bytes()

    def config(self) -> dict[str, Any]:
        return {"uri": self.uri, "model": self.model, "model_bytes": self.model_bytes,
                "shards": len(self.files), "max_in_flight": self.max_in_flight}

    def check(self, size: int) -> None:
        _at_least("the model's shards", len(self.files), size)

    def prepare(self, client: Client) -> None:
        from .model import prepare_model

        prepare_model(client, self.uri, model=self.model, size=self.size, shards=self.shards,
                      seed=self.seed, log=lambda line: None)

    def run(self, client: Client, rank: int, size: int, barrier: Any) -> dict[str, Any]:
        import torch  # noqa: F401 - imported before the clock

        from ..model import iter_safetensors

        mine = self.files[rank::size]
        client.stat(mine[0])
        barrier("start")

        def work() -> tuple[int, int, dict[str, Any]]:
            tensors = nbytes = 0
            for _, t in iter_safetensors(mine, client=client, max_in_flight=self.max_in_flight):
                tensors += 1
                nbytes += t.numel() * t.element_size()
                del t
            return len(mine), nbytes, {"tensors": tensors}

        return timed(work)

    def summarize(self, per: list[dict[str, Any]], agg: dict[str, Any]) -> dict[str, Any]:
        d = agg["duration_s"]
        return {"gib_per_s_over_duration": agg["bytes"] / GiB / d if d else None,
                "tensors": sum(r["tensors"] for r in per)}

    def columns(self) -> list[tuple[str, str, str]]:
        return [("tensors", "tensors", ",d")]


class Checkpoint(Task):
    """``bench checkpoint``: each rank saves, then loads, its own shard of the state dict."""

    kind, unit, ops = "checkpoint", "shards", ("PUT", "UploadPart", "GET")
    barriers = ("start", "saved")

    def __init__(self, uri: str, *, size: int, seed: int = 0) -> None:
        self.uri, self.size, self.seed = uri, size, seed

    def config(self) -> dict[str, Any]:
        return {"uri": self.uri, "size": self.size}

    def _uri(self, rank: int, size: int) -> str:
        return str(parse_uri(self.uri).joinpath(f"rank{rank}-of-{size}.pt"))

    def check(self, size: int) -> None:
        if self.size // size < 1024 * 1024:
            raise ValueError(f"--size ({self.size} bytes) must give every rank at least 1 MiB")

    def run(self, client: Client, rank: int, size: int, barrier: Any) -> dict[str, Any]:
        import time

        import torch

        from ..io import open as oopen
        from ._common import cpu_seconds
        from .checkpoint import _equal, make_state_dict, state_bytes

        sd = make_state_dict(self.size // size, seed=self.seed + rank, key_prefix=f"rank{rank}.")
        nbytes = state_bytes(sd)[0]
        uri = self._uri(rank, size)
        barrier("start")
        c0, t0 = cpu_seconds(), time.perf_counter()
        with oopen(uri, "wb", client=client) as f:
            torch.save(sd, f)
        save_s = time.perf_counter() - t0
        barrier("saved")
        t1 = time.perf_counter()
        with oopen(uri, "rb", client=client) as f:
            back = torch.load(f, weights_only=True)
        load_s = time.perf_counter() - t1
        if not _equal(sd, back):
            raise AssertionError(f"rank {rank}: the checkpoint loaded from {uri} differs from "
                                 "the one saved")
        return {"items": 1, "bytes": 2 * nbytes, "state_bytes": nbytes, "save_s": save_s,
                "load_s": load_s, "wall_s": save_s + load_s,
                "cpu_s": cpu_seconds() - c0}

    def cleanup(self, client: Client) -> None:
        client.delete(self.uri if self.uri.endswith("/") else self.uri + "/")

    def summarize(self, per: list[dict[str, Any]], agg: dict[str, Any]) -> dict[str, Any]:
        total = sum(r["state_bytes"] for r in per)
        save, load = max(r["save_s"] for r in per), max(r["load_s"] for r in per)
        return {"state_bytes": total, "save_s": save, "load_s": load,
                "save_gib_per_s": total / GiB / save if save else None,
                "load_gib_per_s": total / GiB / load if load else None}

    def columns(self) -> list[tuple[str, str, str]]:
        return [("save_s", "save s", ".2f"), ("load_s", "load s", ".2f")]

    def summary_lines(self, agg: dict[str, Any]) -> list[str]:
        return [f"save {agg['state_bytes'] / GiB:.3f} GiB in {agg['save_s']:.2f} s (slowest "
                f"rank): {agg['save_gib_per_s']:.3f} GiB/s; load in {agg['load_s']:.2f} s: "
                f"{agg['load_gib_per_s']:.3f} GiB/s"]


class Train(Task):
    """``bench --workload``: each rank trains on its own files (see the module docs)."""

    kind, unit, ops = "train", "samples", ("GET",)

    def __init__(self, uri: str, *, workload: str, scale: float, settings: Any, epochs: int,
                 dataset: str, decode: bool = True, seed: int = 0) -> None:
        self.uri, self.workload, self.scale, self.settings = uri, workload, scale, settings
        self.epochs, self.dataset, self.decode, self.seed = epochs, dataset, decode, seed

    def config(self) -> dict[str, Any]:
        s = self.settings
        return {"uri": self.uri, "workload": self.workload, "scale": self.scale,
                "epochs": self.epochs, "dataset": self.dataset, "batch_size": s.batch_size,
                "workers": s.workers, "compute_time_s": s.compute_time}

    def _spec(self) -> Any:
        from ..gen import workload_spec

        return workload_spec(self.workload, scale=self.scale, seed=self.seed)

    def check(self, size: int) -> None:
        _at_least("the workload's files", self._spec().num_files, size)

    def prepare(self, client: Client) -> None:
        from ..gen import generate_dataset
        from .train import _dataset_present

        spec = self._spec()
        if not _dataset_present(client, spec, self.uri):
            generate_dataset(client, self.uri, spec, rank=0, world_size=1)  # all of it, here

    def run(self, client: Client, rank: int, size: int, barrier: Any) -> dict[str, Any]:
        from .. import torch as objio_torch
        from .peers import Access
        from .train import SampleBytes

        spec = self._spec()
        train = str(parse_uri(self.uri).joinpath("train/"))
        bucket = parse_uri(train).bucket  # listed before the clock, as the single-process run
        files = [f"s3://{bucket}/{k}" for k in client.list(train)]
        mine = files[rank::size]
        access = Access.from_client(client)
        cfg = objio_torch.S3ClientConfig(force_path_style=access.path_style,
                                         unsigned=access.unsigned, profile=access.profile)
        common: dict[str, Any] = dict(region=access.region, endpoint=access.endpoint_url,
                                      transform=SampleBytes(spec.format, decode=self.decode),
                                      s3client_config=cfg)
        if self.dataset == "map":  # this rank's files, as DLIO's DistributedSampler
            ds: Any = objio_torch.S3MapDataset.from_objects(mine, **common)
            len(ds)
        else:  # every file; the dataset shards over ranks, then DataLoader workers
            ds = objio_torch.S3IterableDataset.from_objects(files, enable_sharding=True, **common)
        barrier("start")

        def work() -> tuple[int, int, dict[str, Any]]:
            from ..config import temporary_environ

            epochs = []
            # credentials for the datasets' clients (as the single-process run); the iterable
            # dataset's rank when torch.distributed is not initialised
            with temporary_environ({**access.aws_env(), "RANK": str(rank),
                                    "WORLD_SIZE": str(size)}):
                epochs = self._epochs(ds)
            au = [e["au_pct"] for e in epochs]
            return (sum(e["samples"] for e in epochs), sum(e["bytes"] for e in epochs),
                    {"files": len(mine), "au_pct": sum(au) / len(au),
                     "epochs": [{k: e[k] for k in ("samples", "bytes", "wall_s", "au_pct",
                                                   "samples_per_s")} for e in epochs]})

        return timed(work)

    def _epochs(self, ds: Any) -> list[dict[str, Any]]:
        from .train import _loader, run_epoch

        out = []
        for epoch in range(self.epochs):
            if hasattr(ds, "set_epoch"):
                ds.set_epoch(epoch)
            out.append(run_epoch(_loader(ds, self.dataset, self.settings, epoch),
                                 self.settings.compute_time))
        return out

    def summarize(self, per: list[dict[str, Any]], agg: dict[str, Any]) -> dict[str, Any]:
        from .train import PRESETS

        target = 100 * PRESETS[self.workload].au
        return {"samples_per_s": agg["items_per_s_over_duration"], "au_target_pct": target,
                "au_pct_per_rank": [r["au_pct"] for r in per],
                "au_met": all(r["au_pct"] >= target for r in per)}

    def columns(self) -> list[tuple[str, str, str]]:
        return [("files", "files", "d"), ("au_pct", "AU %", ".1f")]

    def summary_lines(self, agg: dict[str, Any]) -> list[str]:
        return [f"AU per rank (target {agg['au_target_pct']:.0f} %): "
                + ", ".join(f"{a:.1f} %" for a in agg["au_pct_per_rank"])
                + (" - met" if agg["au_met"] else " - not met on every rank")]
