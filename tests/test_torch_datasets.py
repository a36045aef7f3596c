"""objio.torch datasets (S3MapDataset, S3IterableDataset, S3ClientConfig) and transforms:
drop-in signatures, listing once, sharding exactly once, shuffling, DataLoader workers under
fork/spawn/forkserver, and decoding of our generated formats; against the real LocalS3Server."""

from __future__ import annotations

import collections
import dataclasses
import inspect
import io
import logging
import math
import os
import pickle
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

import objio  # noqa: E402
from objio import formats  # noqa: E402
from objio.config import MiB  # noqa: E402
from objio.gen import GenSpec, generate_dataset  # noqa: E402
from objio.torch import RangedS3Reader, S3Reader, S3ReaderConstructor, SequentialS3Reader  # noqa: E402
from objio.torch import datasets as dsmod  # noqa: E402
from objio.torch import transforms as T  # noqa: E402
from objio.torch.config import S3ClientConfig  # noqa: E402
from objio.torch.datasets import (  # noqa: E402
    PrefetchedS3Reader,
    S3IterableDataset,
    S3MapDataset,
)

pytestmark = pytest.mark.backends("s3", "az", "gs")

TIMEOUT_S = 120  # DataLoader batch timeout: a hang fails instead of blocking the suite


@pytest.fixture
def client(store: Any) -> objio.Client:
    """The store's client: tests taking ``client`` / ``prefix`` run on s3:// and az://."""
    return store.client


# ------------------------------------------------------------------------------ helpers
# Module-level so that spawn/forkserver workers can unpickle them.
def key_of(reader: S3Reader) -> str:
    return reader.key


def key_and_worker(reader: S3Reader) -> tuple[str, int]:
    info = torch.utils.data.get_worker_info()
    return reader.key, -1 if info is None else info.id


def key_and_bytes(reader: S3Reader) -> tuple[str, bytes]:
    return reader.key, reader.read()


def reader_kind(reader: S3Reader) -> tuple[str, str, bytes]:
    return type(reader).__name__, reader.key, reader.read()


def is_sequential(reader: S3Reader) -> bool:
    return isinstance(reader, SequentialS3Reader)


def forbid_listing(worker_id: int) -> None:
    """worker_init_fn: any listing in a worker fails loudly."""
    import objio.api
    import objio.torch.datasets as d

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"worker {worker_id} tried to list")

    d._list_pages = boom  # type: ignore[assignment]
    d.list_fast = boom  # type: ignore[assignment]
    objio.api.Client.list_objects = boom  # type: ignore[method-assign]
    objio.api.Client.list = boom  # type: ignore[method-assign]


def put_objects(client: objio.Client, prefix: str, n: int, size: int = 100) -> dict[str, bytes]:
    """n objects with distinct content; returns {key: data}."""
    items = {}
    for i in range(n):
        data = (f"{i:05d}-".encode() + os.urandom(size))[:size] if size >= 6 else os.urandom(size)
        items[f"{prefix}obj_{i:04d}.bin"] = data
    client.put_many(list(items.items()))
    return {objio.parse_uri(u).key: d for u, d in items.items()}


def cfg_of(server: Any) -> objio.ClientConfig:
    """The client configuration of a local server, or of a ``store`` (conftest's Store)."""
    return server.config


# ------------------------------------------------------------------------------ S3ClientConfig
def test_s3clientconfig_matches_the_seed() -> None:
    s3t = pytest.importorskip("s3torchconnector")
    ours = inspect.signature(S3ClientConfig)
    seed = inspect.signature(s3t.S3ClientConfig)
    assert [(p.name, p.default, p.kind) for p in ours.parameters.values()] == \
        [(p.name, p.default, p.kind) for p in seed.parameters.values()]
    c = S3ClientConfig()
    assert (c.throughput_target_gbps, c.part_size, c.unsigned, c.force_path_style,
            c.max_attempts, c.profile) == (10.0, 8 * MiB, False, False, 10, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.part_size = 5  # type: ignore[misc]
    assert S3ClientConfig(part_size=16 * MiB) == S3ClientConfig(part_size=16 * MiB)


@pytest.mark.parametrize("field,value", [
    ("throughput_target_gbps", 0), ("throughput_target_gbps", -1.0),
    ("throughput_target_gbps", float("nan")), ("throughput_target_gbps", float("inf")),
    ("part_size", 1), ("part_size", 6 * 1024**3),
    ("max_attempts", 0), ("max_attempts", -3), ("profile", ""),
])
def test_s3clientconfig_bad_value_is_a_valueerror(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        S3ClientConfig(**{field: value})


@pytest.mark.parametrize("field,value", [
    ("throughput_target_gbps", "10"), ("throughput_target_gbps", True),
    ("part_size", 8.0 * MiB), ("part_size", "8MiB"),
    ("unsigned", "yes"), ("unsigned", 1), ("force_path_style", None),
    ("max_attempts", 2.5), ("max_attempts", False), ("profile", 7),
])
def test_s3clientconfig_bad_type_is_a_typeerror(field: str, value: Any) -> None:
    with pytest.raises(TypeError, match=field):
        S3ClientConfig(**{field: value})


def test_s3clientconfig_maps_onto_clientconfig() -> None:
    cc = S3ClientConfig().to_client_config("eu-west-1", "http://localhost:9000")
    assert cc.region == "eu-west-1" and cc.endpoint_url == "http://localhost:9000"
    assert cc.part_size == 8 * MiB and cc.max_attempts == 10 and cc.max_in_flight == 64
    assert cc.force_path_style is None and cc.unsigned is None and cc.profile is None
    assert cc.resolved().path_style  # custom endpoint: path-style unless forced otherwise
    cc = S3ClientConfig(throughput_target_gbps=100, force_path_style=True, unsigned=True,
                        profile="p", max_attempts=3).to_client_config(None, "minio:9000")
    assert cc.max_in_flight == 640 and cc.force_path_style is True and cc.unsigned is True
    assert cc.profile == "p" and cc.max_attempts == 3 and cc.endpoint_url == "https://minio:9000"
    assert S3ClientConfig(throughput_target_gbps=0.1).max_in_flight == 4
    assert S3ClientConfig(throughput_target_gbps=1e6).max_in_flight == 1024
    with pytest.raises(ValueError, match="endpoint"):
        S3ClientConfig().to_client_config("us-east-1", "ftp://x")
    with pytest.raises(TypeError, match="s3client_config"):
        S3MapDataset.from_objects("s3://objio-test/x", region="us-east-1", s3client_config=42)


# ------------------------------------------------------------------------------ signatures
def _params(fn: Any) -> list[tuple[str, Any, Any]]:
    out = []
    for p in inspect.signature(fn).parameters.values():
        d = p.default
        if callable(d) and getattr(d, "__name__", "") == "identity":
            d = "identity"
        out.append((p.name, p.kind, d))
    return out


@pytest.mark.parametrize("cls_name", ["S3MapDataset", "S3IterableDataset"])
@pytest.mark.parametrize("method", ["from_prefix", "from_objects", "__init__"])
def test_dataset_signatures_match_the_seed(cls_name: str, method: str) -> None:
    s3t = pytest.importorskip("s3torchconnector")
    seed = _params(getattr(getattr(s3t, cls_name), method))
    ours = _params(getattr(getattr(dsmod, cls_name), method))
    if method != "__init__":  # one deliberate difference: region may be left out (env/config)
        assert ("region", inspect.Parameter.KEYWORD_ONLY, None) in ours
        seed = [("region", k, None) if n == "region" else (n, k, d) for n, k, d in seed]
    assert ours[: len(seed)] == seed
    assert all(kind == inspect.Parameter.KEYWORD_ONLY for _, kind, _ in ours[len(seed):])
    assert all(name in ("shuffle", "seed", "prefetch_objects", "prefetch_bytes")
               for name, _, _ in ours[len(seed):])


# ------------------------------------------------------------------------------ basics on S3
def test_map_dataset_from_prefix(store: Any, client: objio.Client, prefix: str) -> None:
    data = put_objects(client, prefix, 7, 1000)
    ds = S3MapDataset.from_prefix(prefix, region="us-east-1", s3client_config=cfg_of(store),
                                  transform=key_and_bytes)
    assert ds.region == "us-east-1" and ds.endpoint is None
    assert len(ds) == 7
    keys = sorted(data)
    assert [ds[i] for i in range(7)] == [(k, data[k]) for k in keys]
    assert ds[-1] == (keys[-1], data[keys[-1]])
    assert ds.__getitems__([3, 0, 6, 3]) == [(keys[i], data[keys[i]]) for i in (3, 0, 6, 3)]
    assert ds.object_uris == [f"{store.root}{k}" for k in keys]
    assert ds.total_bytes == 7000
    with pytest.raises(IndexError):
        ds[7]
    with pytest.raises(TypeError):
        ds["0"]  # type: ignore[index]
    # the identity transform hands out readers with the seed's interface
    plain = S3MapDataset.from_prefix(prefix, region="us-east-1", s3client_config=cfg_of(store))
    r = plain[2]
    assert isinstance(r, S3Reader) and r.bucket == "objio-test" and r.key == keys[2]
    assert r.read() == data[keys[2]]
    batch = plain.__getitems__([0, 1])
    assert all(isinstance(x, PrefetchedS3Reader) and isinstance(x, S3Reader) for x in batch)
    assert [x.read() for x in batch] == [data[keys[0]], data[keys[1]]]


def test_iterable_dataset_drop_in_with_env_credentials(s3_server: Any, client: objio.Client,
                                                        prefix: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The seed's way: region + endpoint + S3ClientConfig, credentials from AWS_* env vars;
    and the seed's own S3ClientConfig / reader constructors are accepted too."""
    data = put_objects(client, prefix, 5, 300)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_access_key)
    ds = S3IterableDataset.from_prefix(prefix, region=s3_server.region,
                                       endpoint=s3_server.endpoint_url,
                                       s3client_config=S3ClientConfig(force_path_style=True),
                                       transform=key_and_bytes)
    assert ds.endpoint == s3_server.endpoint_url
    assert list(ds) == sorted(data.items())
    # no secret travels with a pickled dataset
    blob = pickle.dumps(ds)
    assert s3_server.secret_access_key.encode() not in blob
    assert b"objio.api" not in blob  # no Client object
    s3t = pytest.importorskip("s3torchconnector")
    ds2 = S3MapDataset.from_prefix(
        prefix, region=s3_server.region, endpoint=s3_server.endpoint_url, transform=reader_kind,
        s3client_config=s3t.S3ClientConfig(force_path_style=True),
        reader_constructor=s3t.S3ReaderConstructor.range_based(buffer_size=0))
    kind, key, got = ds2[1]
    assert kind == "RangedS3Reader" and got == data[key]


def test_empty_prefix_is_an_empty_dataset(store: Any, prefix: str, tmp_path: Any) -> None:
    cfg = cfg_of(store)
    m = S3MapDataset.from_prefix(prefix, region="us-east-1", s3client_config=cfg)
    assert len(m) == 0
    assert list(DataLoader(m, batch_size=4)) == []
    it = S3IterableDataset.from_prefix(prefix, region="us-east-1", s3client_config=cfg,
                                       shuffle=True)
    assert list(it) == []
    assert list(DataLoader(it, batch_size=4, num_workers=2, timeout=TIMEOUT_S)) == []
    with pytest.raises(IndexError):
        m[0]
    # a local directory that does not exist is an error, like a missing bucket (issue 16, D2)
    with pytest.raises(FileNotFoundError, match="nothing"):
        len(S3MapDataset.from_prefix(str(tmp_path / "nothing") + "/", region="x"))
    missing = S3MapDataset.from_prefix(store.uri("objio-no-such-bucket", "x/"), region="us-east-1",
                                       s3client_config=cfg)
    with pytest.raises(FileNotFoundError):
        len(missing)


def test_datasets_log_building_at_info_as_the_seed(tmp_path: Any,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """Users grep their logs for s3torchconnector's "Building ... from_prefix/from_objects"."""
    (tmp_path / "a.bin").write_bytes(b"a")
    caplog.set_level(logging.INFO)
    S3MapDataset.from_prefix(f"file://{tmp_path}/", region="x")
    S3IterableDataset.from_prefix(f"file://{tmp_path}/", region="x")
    S3MapDataset.from_objects([f"file://{tmp_path}/a.bin"], region="x")
    S3IterableDataset.from_objects(f"file://{tmp_path}/a.bin", region="x")
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO
             and r.getMessage().startswith("Building ")]
    assert lines == [f"Building S3MapDataset from_prefix s3_uri='file://{tmp_path}/'",
                     f"Building S3IterableDataset from_prefix s3_uri='file://{tmp_path}/'",
                     "Building S3MapDataset from_objects", "Building S3IterableDataset from_objects"]


def test_from_objects_missing_object_names_it(store: Any, client: objio.Client,
                                              prefix: str, tmp_path: Any) -> None:
    data = put_objects(client, prefix, 2, 50)
    good = [f"{store.root}{k}" for k in sorted(data)]
    missing = f"{prefix}does-not-exist.bin"
    cfg = cfg_of(store)
    m = S3MapDataset.from_objects([good[0], missing, good[1]], region="us-east-1",
                                  s3client_config=cfg, transform=key_and_bytes)
    assert len(m) == 3
    assert m[0] == (objio.parse_uri(good[0]).key, data[objio.parse_uri(good[0]).key])
    with pytest.raises(FileNotFoundError, match="does-not-exist.bin"):
        m[1]
    with pytest.raises(FileNotFoundError, match="does-not-exist.bin"):
        m.__getitems__([0, 1, 2])
    it = S3IterableDataset.from_objects([good[0], missing], region="us-east-1",
                                        s3client_config=cfg, transform=key_and_bytes)
    got = []
    with pytest.raises(FileNotFoundError, match="does-not-exist.bin"):
        for x in it:
            got.append(x)
    assert len(got) == 1
    one = S3IterableDataset.from_objects(good[1], region="us-east-1", s3client_config=cfg,
                                         transform=key_of)
    assert list(one) == [objio.parse_uri(good[1]).key]
    local = S3MapDataset.from_objects([str(tmp_path / "nope.bin")], region="x", transform=key_of)
    with pytest.raises(FileNotFoundError, match="nope.bin"):
        local.__getitems__([0])
    for bad in (["http://x/y"], ["s3://Bad_Bucket/k"], ["s3://objio-test/"]):
        with pytest.raises(ValueError):
            S3MapDataset.from_objects(bad, region="us-east-1")
    with pytest.raises(TypeError, match="object_uris"):
        S3MapDataset.from_objects(42, region="us-east-1")  # type: ignore[arg-type]


def test_bad_arguments_types_and_values(store: Any) -> None:
    cfg = cfg_of(store)
    mk = S3IterableDataset.from_prefix
    for kw in ({"seed": -1}, {"prefetch_objects": 0}, {"prefetch_bytes": -1}):
        with pytest.raises(ValueError, match=next(iter(kw))):
            mk("s3://objio-test/x/", region="us-east-1", s3client_config=cfg, **kw)
    for kw in ({"shuffle": 1}, {"seed": "1"}, {"prefetch_objects": 2.0}, {"enable_sharding": "yes"},
               {"transform": 3}, {"reader_constructor": 5}):
        with pytest.raises(TypeError, match=next(iter(kw))):
            mk("s3://objio-test/x/", region="us-east-1", s3client_config=cfg, **kw)
    with pytest.raises(ValueError):
        mk("ftp://x/y", region="us-east-1")
    with pytest.raises(TypeError, match="s3_uri"):
        mk(42, region="us-east-1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="region"):
        mk("s3://objio-test/x/", region=5)  # type: ignore[arg-type]


def test_rank_env_errors(store: Any, client: objio.Client, prefix: str,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    put_objects(client, prefix, 2, 10)
    ds = S3IterableDataset.from_prefix(prefix, region="us-east-1", s3client_config=cfg_of(store),
                                       enable_sharding=True, transform=key_of)
    for rank, world in (("5", "2"), ("x", "2"), ("0", "0"), ("0", "two")):
        monkeypatch.setenv("RANK", rank)
        monkeypatch.setenv("WORLD_SIZE", world)
        with pytest.raises(ValueError, match="RANK|WORLD_SIZE"):
            list(ds)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert len(list(ds)) == 1


# ------------------------------------------------------------------------------ listing once
def test_listing_happens_once_and_travels(store: Any, client: objio.Client, prefix: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    data = put_objects(client, prefix, 9, 20)
    calls = []
    real = dsmod._list_pages

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(dsmod, "_list_pages", counting)
    cfg = cfg_of(store)
    m = S3MapDataset.from_prefix(prefix, region="us-east-1", s3client_config=cfg, transform=key_of)
    it = S3IterableDataset.from_prefix(prefix, region="us-east-1", s3client_config=cfg,
                                       transform=key_of)
    assert calls == []  # lazy: nothing listed at construction
    assert len(m) == 9 and m[0] == sorted(data)[0] and len(m) == 9
    assert list(it) == sorted(data) and list(it) == sorted(data)
    assert len(calls) == 2  # once per dataset
    m2, it2 = pickle.loads(pickle.dumps(m)), pickle.loads(pickle.dumps(it))
    monkeypatch.setattr(dsmod, "_list_pages", None)  # any further listing would fail
    assert [m2[i] for i in range(len(m2))] == sorted(data) and list(it2) == sorted(data)
    # workers get the list (fork: the parent finishes it before forking)
    fresh = S3IterableDataset.from_prefix(prefix, region="us-east-1", s3client_config=cfg,
                                          transform=key_of, enable_sharding=True)
    monkeypatch.setattr(dsmod, "_list_pages", counting)
    loader = DataLoader(fresh, batch_size=None, num_workers=2, worker_init_fn=forbid_listing,
                        timeout=TIMEOUT_S)
    assert sorted(loader) == sorted(data)
    assert len(calls) == 3


def test_many_keys_are_listed_page_by_page(tmp_path: Any) -> None:
    d = tmp_path / "many"
    d.mkdir()
    for i in range(2345):
        (d / f"f{i:05d}").write_bytes(b"%d" % i)
    it = S3IterableDataset.from_prefix(f"file://{d}/", region="x", transform=key_of)
    keys = list(it)
    assert len(keys) == 2345 and keys == sorted(keys)
    m = S3MapDataset.from_prefix(str(d) + "/", region="x", transform=T.read_bytes)
    assert len(m) == 2345 and bytes(m[1234]) == b"1234"
    # compact: the key bytes plus 16 bytes per key (offset, size), not one object per key
    assert len(pickle.dumps(m)) < sum(len(k) for k in keys) + 2345 * 20


def test_iteration_starts_before_the_listing_ends(tmp_path: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import threading

    for i in range(3):
        (tmp_path / f"f{i}").write_bytes(b"x%d" % i)
    first_item = threading.Event()
    events: list[str] = []

    async def two_pages(client: Any, obj: Any, first_page_only: bool = False) -> Any:
        yield [str(tmp_path / "f0")], [2], True
        # the second page only comes once the consumer got the first object (or after 30 s)
        await asyncio.get_running_loop().run_in_executor(None, first_item.wait, 30)
        events.append("page 2 listed")
        yield [str(tmp_path / "f1"), str(tmp_path / "f2")], [2, 2], False

    monkeypatch.setattr(dsmod, "_list_pages", two_pages)
    ds = S3IterableDataset.from_prefix(f"{tmp_path}/", region="x", transform=T.read_bytes)
    got = []
    for data in ds:
        got.append(bytes(data))
        if len(got) == 1:
            events.append("first object")
            first_item.set()
    assert got == [b"x0", b"x1", b"x2"]
    assert events == ["first object", "page 2 listed"]


def test_glob_and_seed_style_constructor(store: Any, client: objio.Client, prefix: str) -> None:
    client.put_many([(f"{prefix}a/x.npz", b"1"), (f"{prefix}a/y.txt", b"2"),
                     (f"{prefix}a/sub/z.npz", b"3")])
    cfg = cfg_of(store)
    ds = S3MapDataset.from_prefix(f"{prefix}a/*.npz", region="us-east-1", s3client_config=cfg,
                                  transform=key_of)
    assert [ds[i] for i in range(len(ds))] == [objio.parse_uri(prefix).key + "a/x.npz"]

    def objects(c: Any) -> list[str]:
        assert isinstance(c, objio.Client)
        return [f"{prefix}a/y.txt", f"{prefix}a/x.npz"]

    seedlike = S3MapDataset("us-east-1", objects, None, key_and_bytes, cfg)
    assert [v for _, v in seedlike.__getitems__([0, 1])] == [b"2", b"1"]


# ------------------------------------------------------------------------------ sharding
@pytest.mark.timeout(300)
@pytest.mark.filterwarnings("ignore:This DataLoader will create")
def test_sharding_exactly_once(store: Any, client: objio.Client, prefix: str,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    data = put_objects(client, prefix, 23, 10)
    for shuffle in (False, True):
        ds = S3IterableDataset.from_prefix(prefix, region="us-east-1",
                                           s3client_config=cfg_of(store),
                                           enable_sharding=True, transform=key_and_worker,
                                           shuffle=shuffle, seed=5)
        for world in (1, 2, 3):
            for workers in (0, 1, 2, 3):
                if shuffle and workers == 1:
                    continue  # keep the run short; 0, 2, 3 cover the shuffled case
                seen: collections.Counter[str] = collections.Counter()
                shards: dict[tuple[int, int], int] = {}
                for rank in range(world):
                    monkeypatch.setenv("RANK", str(rank))
                    monkeypatch.setenv("WORLD_SIZE", str(world))
                    ds.set_epoch(0)
                    loader = DataLoader(ds, batch_size=None, num_workers=workers,
                                        timeout=TIMEOUT_S if workers else 0)
                    for key, wid in loader:
                        seen[key] += 1
                        shards[(rank, wid)] = shards.get((rank, wid), 0) + 1
                assert seen == collections.Counter(list(data)), (world, workers, shuffle)
                sizes = [shards.get((r, w), 0) for r in range(world)
                         for w in (range(workers) if workers else [-1])]
                assert sum(sizes) == 23 and max(sizes) - min(sizes) <= 1, (world, workers, sizes)
    # without enable_sharding every worker yields everything (the seed's behaviour)
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    plain = S3IterableDataset.from_prefix(prefix, region="us-east-1",
                                          s3client_config=cfg_of(store), transform=key_of)
    got = list(DataLoader(plain, batch_size=None, num_workers=2, timeout=TIMEOUT_S))
    assert collections.Counter(got) == collections.Counter({k: 2 for k in data})


@pytest.mark.timeout(300)
@pytest.mark.filterwarnings("ignore:This DataLoader will create")
def test_sharding_with_uneven_worker_counts_per_rank(store: Any, client: objio.Client,
                                                     prefix: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Rank 0 with 1 DataLoader worker and rank 1 with 3 still read every object once: shards
    are cut by rank first, then by worker within the rank."""
    data = put_objects(client, prefix, 61, 10)
    ds = S3IterableDataset.from_prefix(prefix, region="us-east-1",
                                       s3client_config=cfg_of(store),
                                       enable_sharding=True, transform=key_of)
    seen: collections.Counter[str] = collections.Counter()
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank, workers in ((0, 1), (1, 3)):
        monkeypatch.setenv("RANK", str(rank))
        for key in DataLoader(ds, batch_size=None, num_workers=workers, timeout=TIMEOUT_S):
            seen[key] += 1
    assert seen == collections.Counter(list(data))


# ------------------------------------------------------------------------------ shuffling
def test_shuffle_is_deterministic_and_varies(store: Any, client: objio.Client,
                                             prefix: str) -> None:
    data = put_objects(client, prefix, 40, 10)
    keys = sorted(data)
    cfg = cfg_of(store)

    def it(seed: int = 7, shuffle: bool = True) -> S3IterableDataset:
        return S3IterableDataset.from_prefix(prefix, region="us-east-1", s3client_config=cfg,
                                             transform=key_of, shuffle=shuffle, seed=seed)

    a, b = it(), it()
    e0 = list(a)
    assert sorted(e0) == keys and e0 != keys
    assert list(b) == e0  # same (seed, epoch): same order
    e1 = list(a)  # iterated again without set_epoch: the next epoch
    assert a.epoch == 2 and sorted(e1) == keys and e1 != e0
    a.set_epoch(1)
    assert list(a) == e1
    a.set_epoch(0)
    assert list(a) == e0
    assert list(it(seed=8)) != e0
    assert list(it(shuffle=False)) == keys
    # a DataLoader with one worker per epoch sees set_epoch (the dataset is sent each epoch)
    c = it()
    for epoch, expected in ((0, e0), (1, e1), (0, e0)):
        c.set_epoch(epoch)
        assert list(DataLoader(c, batch_size=None, num_workers=1, timeout=TIMEOUT_S)) == expected
    # map style: dataset[i] is object perm[i], per epoch
    m = S3MapDataset.from_prefix(prefix, region="us-east-1", s3client_config=cfg,
                                 transform=key_of, shuffle=True, seed=7)
    m0 = [m[i] for i in range(len(m))]
    assert m0 == e0  # the same permutation as the iterable dataset
    m.set_epoch(1)
    assert m.__getitems__(list(range(40))) == e1
    with pytest.raises(ValueError):
        m.set_epoch(-1)


# ------------------------------------------------------------------------------ processes
@pytest.mark.timeout(600)
@pytest.mark.parametrize("context", ["fork", "spawn", "forkserver"])
def test_workers_after_parent_use(context: str, store: Any, client: objio.Client,
                                  prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = put_objects(client, prefix, 17, 2000)
    kw: dict[str, Any] = dict(region=store.config.region, transform=key_and_bytes)
    if store.kind == "s3":
        kw["endpoint"] = store.server.endpoint_url
    if context == "forkserver":
        # The forkserver keeps the environment it was started with (possibly by an earlier
        # test): credentials travel in an explicit objio.ClientConfig instead.
        kw["s3client_config"] = cfg_of(store)
    else:  # the seed's way: credentials in the environment (AWS_*, AZURE_STORAGE_*),
        # inherited by the workers
        for k, v in store.environ.items():
            if k != "AWS_ENDPOINT_URL":
                monkeypatch.setenv(k, v)
        kw["s3client_config"] = S3ClientConfig(force_path_style=True)
    m = S3MapDataset.from_prefix(prefix, **kw)
    it = S3IterableDataset.from_prefix(prefix, enable_sharding=True, shuffle=True, **kw)
    # objio used in the parent first: engine loop, connections, the datasets themselves
    assert client.get(f"{store.root}{sorted(data)[0]}") == data[sorted(data)[0]]
    assert m[3][1] == data[sorted(data)[3]] and len(list(it)) == 17
    expected = sorted(data.items())
    for persistent in (False, True):
        loader_kw: dict[str, Any] = dict(num_workers=2, multiprocessing_context=context,
                                         worker_init_fn=forbid_listing, timeout=TIMEOUT_S,
                                         persistent_workers=persistent)
        ml = DataLoader(m, batch_size=4, collate_fn=list, **loader_kw)
        il = DataLoader(it, batch_size=None, **loader_kw)
        orders = []
        for epoch in range(2 if persistent else 1):
            got_m = [x for batch in ml for x in batch]
            assert sorted(got_m) == expected, (context, persistent, epoch)
            got_i = [tuple(x) for x in il]  # default_convert turns tuples into lists
            assert sorted(got_i) == expected, (context, persistent, epoch)
            orders.append([k for k, _ in got_i])
        if persistent:
            assert orders[0] != orders[1]  # persistent workers move on to the next epoch


# ------------------------------------------------------------------------------ readers
def test_large_objects_stream_and_range_based(store: Any, client: objio.Client,
                                              prefix: str) -> None:
    big = os.urandom(3 * MiB + 17)
    small = b"small object"
    client.put_bytes(f"{prefix}a-big.bin", big)
    client.put_bytes(f"{prefix}b-small.bin", small)
    cfg = cfg_of(store)
    ds = S3MapDataset.from_prefix(prefix, region="us-east-1", s3client_config=cfg,
                                  transform=reader_kind, prefetch_bytes=1 * MiB)
    (k1, _, b1), (k2, _, b2) = ds.__getitems__([0, 1])
    assert (k1, b1 == big) == ("SequentialS3Reader", True)
    assert (k2, b2) == ("PrefetchedS3Reader", small)
    it = S3IterableDataset.from_objects([f"{prefix}a-big.bin", f"{prefix}b-small.bin"],
                                        region="us-east-1", s3client_config=cfg,
                                        transform=reader_kind, prefetch_bytes=1 * MiB)
    got = list(it)  # sizes unknown: a probe GET, then streaming for the big one
    assert [(k, b == big or b == small) for k, _, b in got] == \
        [("SequentialS3Reader", True), ("PrefetchedS3Reader", True)]
    rb = S3IterableDataset.from_prefix(prefix, region="us-east-1", s3client_config=cfg,
                                       transform=reader_kind,
                                       reader_constructor=S3ReaderConstructor.range_based(4096))
    assert [(k, b) for k, _, b in rb] == [("RangedS3Reader", big), ("RangedS3Reader", small)]
    seq = S3MapDataset.from_prefix(prefix, region="us-east-1", s3client_config=cfg,
                                   transform=T.read_bytes)
    assert bytes(seq[0]) == big and bytes(seq.__getitems__([0, 1])[0]) == big
    assert isinstance(S3MapDataset.from_prefix(prefix, region="us-east-1", s3client_config=cfg)[0],
                      SequentialS3Reader)
    # the constructor's class, also for objects served from memory (users' isinstance checks)
    checked = S3MapDataset.from_prefix(prefix, region="us-east-1", s3client_config=cfg,
                                       transform=is_sequential)
    assert checked.__getitems__([0, 1]) == [True, True]
    assert list(S3IterableDataset.from_prefix(prefix, region="us-east-1", s3client_config=cfg,
                                              transform=is_sequential)) == [True, True]
    assert isinstance(S3MapDataset.from_prefix(
        prefix, region="us-east-1", s3client_config=cfg,
        reader_constructor=S3ReaderConstructor.range_based())[1], RangedS3Reader)


def test_prefetched_reader_file_interface() -> None:
    r = PrefetchedS3Reader("b", "k/x", bytearray(b"line1\nline2\nrest"))
    assert (r.bucket, r.key, r.uri, r.size) == ("b", "k/x", "s3://b/k/x", 16)
    assert r.readable() and r.seekable() and not r.writable()
    assert r.readline() == b"line1\n" and r.tell() == 6
    assert list(r) == [b"line2\n", b"rest"]
    assert r.seek(-4, io.SEEK_END) == 12 and r.read() == b"rest" and r.read() == b""
    r.seek(2)
    buf = bytearray(3)
    assert r.readinto(buf) == 3 and buf == b"ne1"
    assert bytes(r.readview(2)) == b"\nl" and r.tell() == 7
    assert bytes(r.getbuffer()) == b"line1\nline2\nrest"
    r.seek(100)
    assert r.read(5) == b"" and r.readinto(bytearray(2)) == 0
    with pytest.raises(ValueError):
        r.seek(-1)
    r.seek(6)
    r2 = pickle.loads(pickle.dumps(r))
    assert r2.tell() == 6 and r2.read() == b"line2\nrest" and r2.key == "k/x"
    assert isinstance(r2, S3Reader)
    r.close()
    with pytest.raises(ValueError):
        r.read()
    local = PrefetchedS3Reader("", "/tmp/f", b"x")
    assert local.uri == "file:///tmp/f"


# ------------------------------------------------------------------------------ transforms
@pytest.mark.timeout(300)
def test_transforms_decode_generated_formats(store: Any, client: objio.Client,
                                             prefix: str) -> None:
    cfg = cfg_of(store)
    specs = {
        "npz": GenSpec(format="npz", num_files=3, samples_per_file=2, record_size=4096),
        "tfrecord": GenSpec(format="tfrecord", num_files=3, samples_per_file=4, record_size=1024),
        "hdf5": GenSpec(format="hdf5", num_files=2, samples_per_file=3, record_size=2500),
        "jpeg": GenSpec(format="jpeg", num_files=2, samples_per_file=1, record_size=4096),
    }
    for fmt, spec in specs.items():
        generate_dataset(client, f"{prefix}{fmt}/", spec)

    npz = S3MapDataset.from_prefix(f"{prefix}npz/train/", region="us-east-1", s3client_config=cfg,
                                   transform=T.decode_npz)
    assert len(npz) == 3
    x, y = npz[1]
    ref = formats.read_npz_bytes(client.get(npz.object_uris[1]))
    assert x.dtype == torch.uint8 and x.shape == (64, 64, 2) and y.shape == (2,)
    assert np.array_equal(x.numpy(), ref["x"]) and np.array_equal(y.numpy(), ref["y"])
    xs = npz.__getitems__([0, 2])
    assert [t[0].shape for t in xs] == [(64, 64, 2)] * 2
    assert torch.equal(DataLoader(npz, batch_size=3)._get_iterator().__next__()[0][1], x)

    tfr = S3IterableDataset.from_prefix(f"{prefix}tfrecord/train/", region="us-east-1",
                                        s3client_config=cfg, transform=T.tfrecord_samples)
    samples = list(tfr)
    assert len(samples) == 12  # 3 files x 4 records: a file yields its samples
    assert all(s["image"].shape == (32, 32) and s["size"] == 32 for s in samples)
    batch = next(iter(DataLoader(tfr, batch_size=5, num_workers=2, timeout=TIMEOUT_S)))
    assert batch["image"].shape == (5, 32, 32)
    ref_rec = formats.read_tfrecord(tfr.object_uris[0], client)[0]
    assert bytes(samples[0]["image"].numpy().tobytes()) == ref_rec["image"][0]
    per_file = S3MapDataset.from_prefix(f"{prefix}tfrecord/train/", region="us-east-1",
                                        s3client_config=cfg, transform=T.tfrecord_samples)
    assert len(per_file[0]) == 4 and len(T.decode_tfrecord(
        PrefetchedS3Reader("", "f", client.get(tfr.object_uris[2])))) == 4

    h5 = S3MapDataset.from_prefix(f"{prefix}hdf5/train/", region="us-east-1", s3client_config=cfg,
                                  transform=T.decode_hdf5)
    records, labels = h5[0]
    assert records.shape == (3, 50, 50) and labels.shape == (3,)
    ref_h5 = formats.read_hdf5(client.get(h5.object_uris[0]), "records")
    assert np.array_equal(records.numpy(), ref_h5)
    h5s = S3IterableDataset.from_prefix(f"{prefix}hdf5/train/", region="us-east-1",
                                        s3client_config=cfg, transform=T.hdf5_samples)
    assert len(list(h5s)) == 6

    img = S3MapDataset.from_prefix(f"{prefix}jpeg/train/", region="us-east-1", s3client_config=cfg,
                                   transform=T.decode_image)
    assert img[0].shape == (64, 64) and img[0].dtype == torch.uint8

    raw = S3MapDataset.from_prefix(f"{prefix}npz/train/", region="us-east-1", s3client_config=cfg,
                                   transform=T.to_tensor)
    t = raw[0]
    assert t.dtype == torch.uint8 and bytes(t.numpy().tobytes()) == bytes(client.get(raw.object_uris[0]))
    assert S3MapDataset.from_prefix(f"{prefix}npz/train/", region="us-east-1",
                                    s3client_config=cfg, transform=T.nbytes)[0] == len(t)
    with pytest.raises(ValueError, match="jpeg.*not an NPZ file"):
        S3MapDataset.from_prefix(f"{prefix}jpeg/train/", region="us-east-1", s3client_config=cfg,
                                 transform=T.decode_npz)[0]
    with pytest.raises(ValueError, match="no array"):
        S3MapDataset.from_prefix(f"{prefix}npz/train/", region="us-east-1", s3client_config=cfg,
                                 transform=T.DecodeNPZ(("x", "nope")))[0]


def test_samples_marker() -> None:
    s = T.Samples([1, 2, 3])
    assert list(s) == [1, 2, 3] and "Samples" in repr(s)
    assert math.isclose(sum(T.Samples(x / 2 for x in range(3))), 1.5)
