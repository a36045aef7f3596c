"""objio.torch.dcp: DCP storage writer/reader on LocalS3Server and file://, with real
torch.distributed process groups (gloo, CPU, spawned ranks) for the multi-rank cases."""

from __future__ import annotations

import inspect
import json
import multiprocessing
import os
import pickle
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import google_crc32c
import pytest

torch = pytest.importorskip("torch")
import torch.distributed.checkpoint as dcp  # noqa: E402
from torch.distributed.checkpoint import FileSystemReader, FileSystemWriter  # noqa: E402
from torch.distributed.checkpoint.api import CheckpointException  # noqa: E402
from torch.distributed.checkpoint.planner import LoadItemType, LoadPlan, ReadItem  # noqa: E402
from torch.distributed.checkpoint.state_dict import get_state_dict  # noqa: E402

import dist_workers as W  # noqa: E402
import objio  # noqa: E402
from objio.torch import dcp as odcp  # noqa: E402
from objio.torch.dcp import (  # noqa: E402
    BinaryPrefixStrategy,
    DefaultPrefixStrategy,
    HexPrefixStrategy,
    NumericPrefixStrategy,
    RoundRobinPrefixStrategy,
    S3StorageReader,
    S3StorageWriter,
)

BUCKET = "objio-test"
pytestmark = pytest.mark.backends("s3", "az", "gs")


@pytest.fixture
def client(store: Any) -> objio.Client:
    """The store's client: tests taking ``client`` / ``prefix`` run on s3:// and az://."""
    return store.client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_ranks(fn: Any, world: int, *args: Any, out: Path) -> list[dict[str, Any]]:
    """Run ``fn(rank, world, port, *args, out)`` in ``world`` spawned processes (a real gloo
    process group) and return each rank's JSON report."""
    import torch.multiprocessing as tmp

    out.mkdir(parents=True, exist_ok=True)
    tmp.start_processes(fn, args=(world, free_port(), *args, str(out)), nprocs=world,
                        join=True, start_method="spawn")
    results = [json.loads((out / f"rank{r}.json").read_text()) for r in range(world)]
    for r, res in enumerate(results):
        assert "error" not in res, f"rank {r}: {res['error']}"
    return results


def unwrap(e: BaseException) -> BaseException:
    """The first rank's original exception inside DCP's CheckpointException."""
    if isinstance(e, CheckpointException):
        failure = next(iter(e.failures.values()))
        return failure[0] if isinstance(failure, tuple) else failure
    return e


def small_state(seed: int = 0) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    return {"w": torch.randn(300, 200, generator=g), "b": torch.randn(77, generator=g),
            "h": torch.randn(64, 64, generator=g).to(torch.bfloat16),
            "step": 3, "meta": {"name": "run", "lr": 0.1}}


def zeros_like_state(sd: dict[str, Any]) -> dict[str, Any]:
    return {"w": torch.zeros_like(sd["w"]), "b": torch.zeros_like(sd["b"]),
            "h": torch.zeros_like(sd["h"]), "step": 0, "meta": {"name": "", "lr": 0.0}}


# ------------------------------------------------------------------------------ prefix strategies
def test_prefix_strategy_key_layouts() -> None:
    assert DefaultPrefixStrategy()(3) == "__3_"
    b = BinaryPrefixStrategy(prefix_count=4, min_prefix_length=3)
    assert b.prefix_map == ["000", "100", "010", "110"]          # reversed binary digits
    assert [b(r) for r in (0, 1, 5)] == ["000/__0_", "100/__1_", "100/__5_"]
    h = HexPrefixStrategy(epoch_num=2, prefix_count=20, min_prefix_length=1)
    assert len(h.prefix_map[0]) == 2 and h(17) == "11/epoch_2/__17_" and h(15) == "f0/epoch_2/__15_"
    assert HexPrefixStrategy(prefix_count=1)(0) == "0000000000/__0_"  # default: 10 digits
    rr = RoundRobinPrefixStrategy(["fast", "faster"], epoch_num=1)
    assert [rr(r) for r in range(3)] == ["fast/epoch_1/__0_", "faster/epoch_1/__1_",
                                        "fast/epoch_1/__2_"]
    for bad in ({"min_prefix_length": 0}, {"prefix_count": 0}, {"epoch_num": "1"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            NumericPrefixStrategy(16, **bad)
    with pytest.raises(ValueError, match="user_prefixes"):
        RoundRobinPrefixStrategy([])


def test_prefix_strategies_match_the_seed() -> None:
    s3t = pytest.importorskip("s3torchconnector.dcp")
    from s3torchconnector.dcp.s3_prefix_strategy import RoundRobinPrefixStrategy as SeedRR

    for ours, seed in ((BinaryPrefixStrategy, s3t.BinaryPrefixStrategy),
                       (HexPrefixStrategy, s3t.HexPrefixStrategy)):
        for kw in ({}, {"prefix_count": 37}, {"epoch_num": 4, "prefix_count": 3,
                                              "min_prefix_length": 2}):
            assert [ours(**kw)(r) for r in range(40)] == [seed(**kw)(r) for r in range(40)]
    assert [RoundRobinPrefixStrategy(["a", "b", "c"], 2)(r) for r in range(7)] == \
        [SeedRR(["a", "b", "c"], 2)(r) for r in range(7)]


def test_signatures_match_the_seed() -> None:
    seed = pytest.importorskip("s3torchconnector.dcp")
    for name in ("S3StorageWriter", "S3StorageReader", "S3FileSystem"):
        mine = inspect.signature(getattr(odcp, name)).parameters
        theirs = inspect.signature(getattr(seed, name)).parameters
        for p in theirs.values():
            assert p.name in mine, (name, p.name)
            assert mine[p.name].kind == p.kind, (name, p.name)
            if p.name != "thread_count" and p.default is not inspect.Parameter.empty:
                assert mine[p.name].default == p.default, (name, p.name)  # (thread_count: 4, 1)
    assert inspect.signature(S3StorageWriter).parameters["thread_count"].default > 1


def test_s3filesystem_paths_and_modes_as_the_seed() -> None:
    fs = odcp.S3FileSystem(None)
    assert fs.concat_path("str_path", "suffix") == "str_path/suffix"       # not file:///...
    assert fs.concat_path(Path("rel", "dir"), "f.distcp") == "rel/dir/f.distcp"
    assert fs.concat_path("/abs/ckpt", ".metadata") == "/abs/ckpt/.metadata"
    assert fs.concat_path("s3://bkt/ckpt", ".metadata") == "s3://bkt/ckpt/.metadata"
    assert fs.concat_path("s3://bkt/ckpt/", "x") == "s3://bkt/ckpt/x"
    for mode in ("r", "w", "ab", "xb"):
        with pytest.raises(ValueError, match=(
                rf"^Invalid mode='{mode}' mode argument: create_stream only supports rb "
                r"\(read mode\) & wb \(write mode\)")):
            with fs.create_stream("s3://bkt/ckpt/x", mode):
                pass


def test_rename_across_buckets_is_refused(store: Any, client: objio.Client,
                                          prefix: str) -> None:
    fs = odcp.S3FileSystem(None, s3client_config=store.config)
    client.put_bytes(prefix + "a", b"x")
    client.create_bucket(store.uri("objio-other"), exist_ok=True)
    with pytest.raises(ValueError, match="Source and destination buckets cannot be different"):
        fs.rename(prefix + "a", store.uri("objio-other", "a"))
    assert client.exists(prefix + "a") and not client.exists(store.uri("objio-other", "a"))
    fs.rename(prefix + "a", prefix + "b")                  # within the bucket: a move
    assert client.exists(prefix + "b") and not client.exists(prefix + "a")
    with pytest.raises(FileNotFoundError, match=prefix + "a"):
        fs.rename(prefix + "a", prefix + "c")


# ------------------------------------------------------------------------------ one process
def test_save_load_verified_and_corruption_detected(store: Any, client: objio.Client,
                                                    prefix: str) -> None:
    cfg = store.config
    path = prefix + "ckpt"
    sd = small_state()
    dcp.save(sd, storage_writer=S3StorageWriter(None, path, s3client_config=cfg,
                                                prefix_strategy=HexPrefixStrategy(prefix_count=2)))
    keys = sorted(k[len(objio.parse_uri(path).key) + 1:] for k in client.list(path + "/"))
    # exactly DCP's objects: .metadata and the data files, no objio extra
    assert keys[0] == ".metadata" and len(keys) == 1 + odcp.DEFAULT_THREAD_COUNT
    assert all(k.startswith("0000000000/__0_") and k.endswith(".distcp") for k in keys[1:])
    # the items' CRC32Cs live in .metadata, beside each item's storage info
    metadata = pickle.loads(bytes(client.get(path + "/.metadata")))
    infos = list(metadata.storage_data.values())
    assert {i.relative_path for i in infos} <= set(keys[1:])
    for info in infos:
        item = bytes(client.get_range(f"{path}/{info.relative_path}", info.offset, info.length))
        assert getattr(info, odcp.CRC32C_ATTR) == google_crc32c.value(item)

    out = zeros_like_state(sd)
    reader = S3StorageReader(None, path, s3client_config=cfg)
    dcp.load(out, storage_reader=reader)
    assert all(torch.equal(out[k], sd[k]) for k in ("w", "b", "h"))
    assert out["step"] == 3 and out["meta"] == sd["meta"]

    # flip one byte of a data file (rewritten without touching .metadata): detected
    victim = max(keys[1:], key=lambda k: client.stat(f"{path}/{k}").size)
    _flip_a_byte(client, f"{path}/{victim}")
    with pytest.raises(CheckpointException) as ei:
        dcp.load(zeros_like_state(sd), storage_reader=S3StorageReader(None, path,
                                                                        s3client_config=cfg))
    err = unwrap(ei.value)
    assert isinstance(err, objio.IntegrityError) and isinstance(err, ValueError)
    assert f"{path}/{victim}" in str(err) and "bytes [" in str(err) and "CRC32C" in str(err)
    # verify=False reads it anyway (the flipped byte is in a tensor's data)
    dcp.load(zeros_like_state(sd), storage_reader=S3StorageReader(None, path, s3client_config=cfg,
                                                                   verify=False))


def _flip_a_byte(client: objio.Client, uri: str) -> None:
    data = bytearray(client.get(uri))
    data[len(data) // 2] ^= 0x40
    client.put_bytes(uri, bytes(data))


def _as_an_earlier_release_wrote_it(client: objio.Client, path: str) -> None:
    """Rewrite a checkpoint as objio releases before 2026-12 did: no CRC32Cs in .metadata, a
    ``.metadata.crc32c`` manifest beside it."""
    metadata = pickle.loads(bytes(client.get(path + "/.metadata")))
    files: dict[str, list[list[int]]] = {}
    for info in metadata.storage_data.values():
        crc = info.__dict__.pop(odcp.CRC32C_ATTR)
        files.setdefault(info.relative_path, []).append([info.offset, info.length, crc])
    manifest = {"format": "objio-dcp-crc32c", "version": 1, "algorithm": "crc32c",
                "save_id": metadata.storage_meta.save_id,
                "files": {n: {"size": sum(i[1] for i in items), "items": sorted(items)}
                          for n, items in files.items()}}
    client.put_bytes(path + "/.metadata.crc32c", json.dumps(manifest).encode())
    client.put_bytes(path + "/.metadata", pickle.dumps(metadata))


def test_checkpoints_with_the_earlier_manifest_object_load_verified(
        store: Any, client: objio.Client, prefix: str) -> None:
    cfg, path = store.config, prefix + "old"
    sd = small_state(4)
    dcp.save(sd, storage_writer=S3StorageWriter(None, path, s3client_config=cfg))
    _as_an_earlier_release_wrote_it(client, path)
    out = zeros_like_state(sd)
    dcp.load(out, storage_reader=S3StorageReader(None, path, s3client_config=cfg))
    assert all(torch.equal(out[k], sd[k]) for k in ("w", "b", "h"))

    victim = max((k for k in client.list(path + "/") if k.endswith(".distcp")),
                 key=lambda k: client.stat(f"{store.root}{k}").size)
    _flip_a_byte(client, f"{store.root}{victim}")
    with pytest.raises(CheckpointException) as ei:
        dcp.load(zeros_like_state(sd), storage_reader=S3StorageReader(None, path,
                                                                        s3client_config=cfg))
    assert isinstance(unwrap(ei.value), objio.IntegrityError)
    # a manifest nested past the JSON parser's recursion: the documented IntegrityError
    client.put_bytes(path + "/.metadata.crc32c", b"[" * 200_000 + b"]" * 200_000)
    with pytest.raises(CheckpointException) as ei:
        dcp.load(zeros_like_state(sd), storage_reader=S3StorageReader(None, path,
                                                                        s3client_config=cfg))
    # (torch reports a metadata read failure as an AssertionError carrying its message)
    assert "the CRC32C manifest is unreadable" in str(unwrap(ei.value))
    assert "RecursionError" not in str(unwrap(ei.value))
    # saving over it removes the old manifest: the layout becomes exactly DCP's
    dcp.save(sd, storage_writer=S3StorageWriter(None, path, s3client_config=cfg))
    assert not client.exists(path + "/.metadata.crc32c")


def test_layout_is_dcp_s_own_both_ways(tmp_path: Path) -> None:
    sd = small_state(1)
    ours = tmp_path / "ours"
    dcp.save(sd, storage_writer=S3StorageWriter(None, f"file://{ours}"))
    out = zeros_like_state(sd)
    dcp.load(out, storage_reader=FileSystemReader(str(ours)))        # torch's reader
    assert all(torch.equal(out[k], sd[k]) for k in ("w", "b", "h"))

    theirs = tmp_path / "theirs"
    dcp.save(sd, storage_writer=FileSystemWriter(str(theirs)))       # torch's writer
    out = zeros_like_state(sd)
    dcp.load(out, storage_reader=S3StorageReader(None, theirs))      # no manifest: unverified
    assert all(torch.equal(out[k], sd[k]) for k in ("w", "b", "h")) and out["step"] == 3


@pytest.mark.parametrize("kw", [{"thread_count": 1}, {"thread_count": 3},
                                {"thread_count": 8}, {"thread_count": 2, "single_file_per_rank": False}])
def test_file_set_is_torchs_for_any_thread_count(tmp_path: Path, kw: dict[str, Any]) -> None:
    """torch's FileSystemWriter (and s3torchconnector, built on it) writes one file per thread,
    an empty one for a thread that got no item: tests that count or list files see the same
    set from objio. Empty state dict too (a rank with nothing to save)."""
    for name, sd in (("small", small_state(5)), ("empty", {})):
        ours, theirs = tmp_path / name / "ours", tmp_path / name / "theirs"
        dcp.save(sd, storage_writer=S3StorageWriter(None, f"file://{ours}", **kw))
        dcp.save(sd, storage_writer=FileSystemWriter(str(theirs), **kw))

        def files(d: Path) -> dict[str, bool]:
            return {p.name: p.stat().st_size == 0 for p in d.iterdir()}

        assert files(ours) == files(theirs), (name, kw)
        if sd:
            out = zeros_like_state(sd)
            dcp.load(out, storage_reader=S3StorageReader(None, f"file://{ours}"))
            assert all(torch.equal(out[k], sd[k]) for k in ("w", "b", "h"))


@pytest.mark.parametrize("scheme", ["s3", "file"])
def test_tensors_load_without_torch_load_and_fall_back_when_needed(
        scheme: str, s3_server: Any, prefix: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain tensor items are copied from the fetched bytes into the state dict (no torch.load);
    anything tensor_view does not take still loads through torch.load."""
    cfg = s3_server.config if scheme == "s3" else None
    path = prefix + "fast" if scheme == "s3" else f"file://{tmp_path}/fast"
    g = torch.Generator().manual_seed(5)
    sd = {"big": torch.randn(700, 300, generator=g),
          "strided": torch.randn(40, 30, generator=g).t(),     # saved as a transposed view
          "bf16": torch.randn(1000, generator=g).to(torch.bfloat16)}  # tensors only: the
    # planner's own load_bytes calls torch.load for non-tensor items
    dcp.save(sd, storage_writer=S3StorageWriter(None, path, s3client_config=cfg))

    def no_torch_load(*a: Any, **k: Any) -> Any:
        raise AssertionError("torch.load was called for a plain tensor item")

    monkeypatch.setattr(odcp.torch, "load", no_torch_load)
    out = {"big": torch.zeros(700, 300), "strided": torch.zeros(30, 40),
           "bf16": torch.zeros(1000, dtype=torch.bfloat16)}
    dcp.load(out, storage_reader=S3StorageReader(None, path, s3client_config=cfg))
    assert all(torch.equal(out[k], sd[k]) for k in ("big", "strided", "bf16"))

    monkeypatch.undo()
    calls = []
    real_load = torch.load

    def counted(*a: Any, **k: Any) -> Any:
        calls.append(1)
        return real_load(*a, **k)

    monkeypatch.setattr(odcp, "tensor_view", lambda data: None)
    monkeypatch.setattr(odcp.torch, "load", counted)
    out = {"big": torch.zeros(700, 300), "strided": torch.zeros(30, 40),
           "bf16": torch.zeros(1000, dtype=torch.bfloat16)}
    dcp.load(out, storage_reader=S3StorageReader(None, path, s3client_config=cfg))
    assert all(torch.equal(out[k], sd[k]) for k in ("big", "strided", "bf16"))
    assert len(calls) == 3


def test_files_of_a_rank_are_written_concurrently(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    running, peak, lock = [0], [0], threading.Lock()
    original = S3StorageWriter._write_file

    def tracked(self: Any, *args: Any) -> Any:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            time.sleep(0.2)  # long enough for the other files to start
            return original(self, *args)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(S3StorageWriter, "_write_file", tracked)
    sd = {f"t{i}": torch.full((1000,), float(i)) for i in range(8)}
    dcp.save(sd, storage_writer=S3StorageWriter(None, f"file://{tmp_path}/c", thread_count=4))
    assert peak[0] == 4
    assert len([p for p in os.listdir(tmp_path / "c") if p.endswith(".distcp")]) == 4


def test_the_files_of_a_rank_share_its_parts_in_flight(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A rank writing 4 files at once holds the part buffers of about one writer's default
    (8 parts in flight), not 4 x 8: less memory, fewer fresh pages, same server-bound speed."""
    seen: list[int] = []
    real = odcp.S3Writer

    def recording(*a: Any, **k: Any) -> Any:
        seen.append(k.get("max_parts_in_flight"))
        return real(*a, **k)

    monkeypatch.setattr(odcp, "S3Writer", recording)
    sd = {f"t{i}": torch.full((1000,), float(i)) for i in range(8)}
    dcp.save(sd, storage_writer=S3StorageWriter(None, f"file://{tmp_path}/c", thread_count=4))
    assert seen == [2, 2, 2, 2]
    seen.clear()
    dcp.save(sd, storage_writer=S3StorageWriter(None, f"file://{tmp_path}/d", thread_count=1))
    assert seen == [objio.io.DEFAULT_MAX_PARTS_IN_FLIGHT]


def test_tensor_storages_are_sent_without_a_copy(store: Any, client: objio.Client,
                                                 prefix: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Storages of 256 KiB and more go to the writer as borrowed memory (torch's serializer
    writes them in one call at the storage's own address); smaller ones and views (cloned
    first) are copied; everything loads back equal, and the checkpoint verifies."""
    from objio._buffers import buffer_address

    borrowed: list[int] = []
    real = objio.io.ObjectWriter.write_zero_copy

    def spy(self: Any, data: Any, /, *, keep: Any = None) -> int:
        borrowed.append(buffer_address(memoryview(data)))
        return real(self, data, keep=keep)

    monkeypatch.setattr(objio.io.ObjectWriter, "write_zero_copy", spy)
    base = torch.arange(3 << 20, dtype=torch.float32)        # 12 MiB: several 5 MiB parts
    sd = {"big": torch.randn(1 << 20),                        # 4 MiB
          "bf16": torch.randn(1 << 18).to(torch.bfloat16),   # 512 KiB
          "small": torch.randn(1000),                        # copied
          "view": base[5: (2 << 20) + 5],                     # a view: cloned, then borrowed
          "whole": base}
    uri = prefix + "zc"
    cfg = store.config.replace(part_size=5 << 20)
    dcp.save(sd, storage_writer=S3StorageWriter(None, uri, s3client_config=cfg, thread_count=2))
    own = {t.untyped_storage().data_ptr() for t in (sd["big"], sd["bf16"], base)}
    assert len(borrowed) == 4 and own <= set(borrowed)       # the view's clone is the 4th
    target = {k: torch.zeros_like(v) for k, v in sd.items()}
    dcp.load(target, storage_reader=S3StorageReader(None, uri, s3client_config=cfg))
    for k in sd:
        assert torch.equal(target[k], sd[k]), k


def test_only_the_tensors_own_memory_is_borrowed() -> None:
    """The item stream borrows a write only when it is the tensor's storage itself (same
    length AND address): bytes of the same length from anywhere else, e.g. a transform
    extension's reused buffer, are copied, as anything after the storage is."""
    calls: list[tuple[str, bytes]] = []

    class Recorder:
        def running_crc32c(self) -> int | None:
            return None  # a writer without checksums: the stream computes the items' CRC32C

        def write(self, b: Any) -> int:
            calls.append(("copy", bytes(b)))
            return len(b)

        def write_zero_copy(self, b: Any, *, keep: Any = None) -> int:
            assert keep is t
            calls.append(("borrow", bytes(b)))
            return len(b)

    t = torch.arange(1 << 16, dtype=torch.float32)       # 256 KiB
    raw = memoryview(t.numpy()).cast("B")
    stream = odcp._ItemStream(Recorder())  # type: ignore[arg-type]
    stream.expect(t)
    stream.write(bytearray(raw))          # same bytes and length, another address: copied
    stream.write(raw)                     # the storage: borrowed
    stream.write(raw)                     # once only
    stream.expect(torch.arange(10))       # below 256 KiB: never borrowed
    stream.write(memoryview(torch.arange(10).numpy()).cast("B"))
    assert [c[0] for c in calls] == ["copy", "borrow", "copy", "copy"]
    assert calls[0][1] == calls[1][1] == raw.tobytes()


class _RecordingConstructor(odcp.DCPOptimizedConstructor):
    """The dcp_optimized constructor, recording what the reader hands it and every seek of
    the readers it makes."""

    def __init__(self) -> None:
        super().__init__()
        self.base_paths: list[Any] = []
        self.offsets_in_plan: list[tuple[str, int]] = []
        self.seeks: dict[str, list[int]] = {}

    def set_item_ranges_by_file(self, plan_items: list[Any], storage_data: dict[Any, Any],
                                base_path: Any) -> None:
        self.base_paths.append(base_path)
        self.offsets_in_plan = [(storage_data[i.storage_index].relative_path,
                                 storage_data[i.storage_index].offset) for i in plan_items]
        super().set_item_ranges_by_file(plan_items, storage_data, base_path)

    def __call__(self, bucket: str, key: str, client: Any = None, **kwargs: Any) -> Any:
        reader = super().__call__(bucket, key, client, **kwargs)
        log = self.seeks.setdefault(key.rsplit("/", 1)[-1], [])
        real = reader.seek

        def seek(offset: int, whence: int = 0) -> int:
            log.append(offset)
            return int(real(offset, whence))

        reader.seek = seek
        return reader


def test_load_plan_and_reads_follow_the_seeds_order(tmp_path: Path) -> None:
    """prepare_local_plan sorts on the offset alone (s3torchconnector's stable sort) and hands
    set_item_ranges_by_file the path as given (trailing slash kept); the load then reads each
    data file's items in ascending offset order, whatever the read method."""
    sd = {f"t{i}": torch.full((100 + 37 * i,), float(i)) for i in range(12)}
    sd["step"] = 7
    given = f"file://{tmp_path}/ck/"
    dcp.save(sd, storage_writer=S3StorageWriter(None, given, thread_count=3))
    ctor = _RecordingConstructor()
    out = {k: torch.zeros_like(v) if isinstance(v, torch.Tensor) else 0 for k, v in sd.items()}
    dcp.load(out, storage_reader=S3StorageReader(None, given, reader_constructor=ctor))
    assert all(torch.equal(out[k], sd[k]) for k in sd if k != "step") and out["step"] == 7
    assert ctor.base_paths == [given]
    offsets = [o for _, o in ctor.offsets_in_plan]
    assert offsets == sorted(offsets)                        # by offset alone, across files
    assert len({f for f, _ in ctor.offsets_in_plan}) == 3    # (three files interleave)
    data_files = {f: seeks for f, seeks in ctor.seeks.items() if f.endswith(".distcp")}
    assert len(data_files) == 3
    for name, seeks in data_files.items():
        assert seeks and seeks == sorted(seeks), (name, seeks)


def test_bad_load_plans_are_valueerrors(tmp_path: Path) -> None:
    sd = small_state()
    dcp.save(sd, storage_writer=S3StorageWriter(None, f"file://{tmp_path}"))
    reader = S3StorageReader(None, f"file://{tmp_path}")
    metadata = reader.read_metadata()
    reader.set_up_storage_reader(metadata, True)
    item = next(iter(metadata.storage_data))
    bogus = ReadItem(type=LoadItemType.TENSOR, dest_index=item, dest_offsets=torch.Size([0]),
                     storage_index=type(item)("no.such.tensor", torch.Size([0])),
                     storage_offsets=torch.Size([0]), lengths=torch.Size([1]))
    with pytest.raises(ValueError, match="does not have, e.g. .no.such.tensor."):
        reader.prepare_local_plan(LoadPlan([bogus]))
    reader.storage_data = {}
    with pytest.raises(ValueError, match="no storage entries"):
        reader.prepare_local_plan(LoadPlan([bogus]))


def test_overwrite_retires_the_old_checkpoint_first(store: Any, client: objio.Client,
                                                    prefix: str) -> None:
    cfg, path = store.config, prefix + "ow"
    dcp.save(small_state(1), storage_writer=S3StorageWriter(None, path, s3client_config=cfg))
    first_metadata = bytes(client.get(path + "/.metadata"))
    sd2 = small_state(2)
    dcp.save(sd2, storage_writer=S3StorageWriter(None, path, s3client_config=cfg))
    assert bytes(client.get(path + "/.metadata")) != first_metadata
    out = zeros_like_state(sd2)
    dcp.load(out, storage_reader=S3StorageReader(None, path, s3client_config=cfg))
    assert torch.equal(out["w"], sd2["w"])
    with pytest.raises(CheckpointException) as ei:
        dcp.save(sd2, storage_writer=S3StorageWriter(None, path, s3client_config=cfg,
                                                     overwrite=False))
    assert isinstance(unwrap(ei.value), FileExistsError)
    assert "Checkpoint already exists" in str(unwrap(ei.value))   # torch's words
    assert path in str(unwrap(ei.value))


def test_constructors_do_no_io_and_first_use_gives_the_clear_error(
        s3_server: Any, client: objio.Client, prefix: str, proxy: Any) -> None:
    """As s3torchconnector's: creating S3StorageWriter / S3StorageReader / S3FileSystem sends
    no request (DCP builds storage objects in many places); the first use checks the bucket
    or the checkpoint, with the same typed error."""
    cfg = s3_server.config
    via = cfg.replace(endpoint_url=proxy.endpoint_url)
    before = len(proxy.log)
    w = S3StorageWriter(None, "s3://no-such-bucket-x/ckpt", s3client_config=via)
    S3StorageReader(None, prefix + "nothing-here", s3client_config=via)
    odcp.S3FileSystem(None, s3client_config=via)
    S3StorageWriter(None, prefix + "c", s3client_config=via.replace(secret_access_key="bad"))
    assert len(proxy.log) == before                  # no request at all
    with pytest.raises(CheckpointException) as ei:   # the bucket check: before any data
        dcp.save(small_state(), storage_writer=w)
    assert isinstance(unwrap(ei.value), FileNotFoundError)
    assert "no-such-bucket-x" in str(unwrap(ei.value))
    assert not [r for r in proxy.log[before:] if r.method in ("PUT", "POST")]

    bad = cfg.replace(secret_access_key="not-the-secret")
    with pytest.raises(CheckpointException) as ei:
        dcp.save(small_state(), storage_writer=S3StorageWriter(None, prefix + "c",
                                                               s3client_config=bad))
    assert isinstance(unwrap(ei.value), PermissionError)
    with pytest.raises(PermissionError):
        S3StorageReader(None, prefix + "c", s3client_config=bad).read_metadata()
    with pytest.raises(FileNotFoundError, match=f"{prefix}nothing-here is not a checkpoint"):
        S3StorageReader(None, prefix + "nothing-here", s3client_config=cfg).read_metadata()
    with pytest.raises(CheckpointException) as ei:
        dcp.load(zeros_like_state(small_state()),
                 storage_reader=S3StorageReader(None, prefix + "nothing-here",
                                                s3client_config=cfg))
    assert "is not a checkpoint" in str(unwrap(ei.value))
    client.put_bytes(prefix + "partial/__0_0.distcp", b"x" * 10)
    with pytest.raises(FileNotFoundError, match="incomplete checkpoint"):
        S3StorageReader(None, prefix + "partial", s3client_config=cfg).read_metadata()
    with pytest.raises(ValueError, match="thread_count"):
        S3StorageWriter(None, prefix + "c", s3client_config=cfg, thread_count=0)
    with pytest.raises(ValueError, match="prefix inside the bucket"):
        S3StorageWriter(None, f"s3://{BUCKET}", s3client_config=cfg)


# ------------------------------------------------------------------------------ real ranks
@pytest.fixture(scope="module")
def two_rank_session(s3_server: Any, s3_client: objio.Client,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One 2-rank run (spawned, gloo) doing several things; the tests below check its parts."""
    import uuid

    base = f"s3://{BUCKET}/dcp-2ranks-{uuid.uuid4().hex[:8]}"
    data_prefix = f"{base}/data/"
    keys = [f"{data_prefix}obj_{i:03d}.bin" for i in range(24)]
    s3_client.put_many([(k, f"object {k}".encode()) for k in keys])
    out = tmp_path_factory.mktemp("two-ranks")
    results = run_ranks(W.session, 2, s3_server.config, base, data_prefix, out=out)
    yield {"base": base, "keys": [objio.parse_uri(k).key for k in keys], "ranks": results}


def test_dcp_two_ranks_save_and_load(two_rank_session: dict[str, Any]) -> None:
    r0, r1 = two_rank_session["ranks"]
    assert r0["saved"] == r1["saved"]               # full_tensor() of the DTensor: same everywhere
    for r in (r0, r1):
        assert r["loaded"] == r["saved"]
        assert r["local_shard_equal"] is True
    assert any(k.startswith(".dt") for k in r0["saved"])
    assert any(k.startswith(".optim") for k in r0["saved"])


def test_dcp_async_save_then_load(two_rank_session: dict[str, Any]) -> None:
    for r in two_rank_session["ranks"]:
        assert r["async_loaded"] == r["saved"]


def test_a_failed_save_leaves_no_metadata_and_no_upload(two_rank_session: dict[str, Any],
                                                        s3_server: Any,
                                                        client: objio.Client) -> None:
    path = two_rank_session["base"] + "/failed"
    for r in two_rank_session["ranks"]:
        assert "CheckpointException" in r["failed_save"] and "injected failure" in r["failed_save"]
    assert not client.exists(path + "/.metadata")
    assert client.list_multipart_uploads(path + "/") == []
    with pytest.raises(FileNotFoundError, match="incomplete checkpoint"):
        S3StorageReader(None, path, s3client_config=s3_server.config).read_metadata()


def test_datasets_shard_exactly_once_over_ranks_and_workers(
        two_rank_session: dict[str, Any]) -> None:
    keys = sorted(two_rank_session["keys"])
    r0, r1 = (r["datasets"] for r in two_rank_session["ranks"])
    for kind in ("iterable", "map"):
        for epoch in range(2):
            got = r0[kind][epoch] + r1[kind][epoch]
            assert sorted(got) == keys, (kind, epoch)   # every object exactly once
            assert r0[kind][epoch] and r1[kind][epoch]
        assert r0[kind][0] != r0[kind][1]                # shuffled differently per epoch


def test_resharding_two_ranks_to_one(two_rank_session: dict[str, Any], s3_server: Any) -> None:
    model, opt = W.make_model(seed=9)
    msd, osd = get_state_dict(model, opt)
    target = {"model": msd, "optim": osd, "dt": torch.zeros(W.DT_SHAPE), "step": 0}
    dcp.load(target, storage_reader=S3StorageReader(None, two_rank_session["base"] + "/sync",
                                                    s3client_config=s3_server.config))
    assert torch.equal(target["dt"], W.full_dtensor_value())
    saved_model, _ = W.make_model(seed=1)
    assert all(torch.equal(v, saved_model.state_dict()[k]) for k, v in target["model"].items())
    assert W.digest(target) == two_rank_session["ranks"][0]["saved"]


def test_resharding_two_ranks_to_three(two_rank_session: dict[str, Any], s3_server: Any,
                                       tmp_path: Path) -> None:
    results = run_ranks(W.load_resharded, 3, s3_server.config,
                        two_rank_session["base"] + "/sync", out=tmp_path)
    for r in results:
        assert r["loaded"] == two_rank_session["ranks"][0]["saved"]
        assert r["local_shard_equal"] is True


def test_a_killed_rank_leaves_an_incomplete_checkpoint(s3_server: Any, client: objio.Client,
                                                      prefix: str, tmp_path: Path) -> None:
    path = prefix + "killed"
    ctx = multiprocessing.get_context("spawn")
    port = free_port()
    procs = [ctx.Process(target=W.save_and_die,
                         args=(r, 2, port, s3_server.config, path, str(tmp_path)))
             for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        if p.is_alive():
            p.kill()
            p.join()
    assert procs[1].exitcode == -9                       # SIGKILL in the middle of its save
    rank0 = json.loads((tmp_path / "rank0.json").read_text())
    assert rank0["save"] != "no error"
    assert not client.exists(path + "/.metadata")
    assert client.list(path + "/")                       # data was being written
    with pytest.raises(FileNotFoundError, match="incomplete checkpoint"):
        S3StorageReader(None, path, s3client_config=s3_server.config).read_metadata()
