"""objio.torch: S3Reader / S3ReaderConstructor / S3Writer with the seed's names and semantics,
importable without torch; against the real LocalS3Server."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from collections import namedtuple
from functools import partial
from typing import Any

import numpy as np
import pytest

import objio
from objio.config import MiB
from objio.torch import (
    DEFAULT_BUFFER_SIZE,
    DEFAULT_MAX_GAP_SIZE,
    DCPOptimizedConstructor,
    DCPOptimizedS3Reader,
    RangedS3Reader,
    S3Reader,
    S3ReaderConstructor,
    S3Writer,
    SequentialS3Reader,
)

BUCKET = "objio-test"


def test_imports_and_works_without_torch(tmp_path: Any) -> None:
    p = tmp_path / "f.bin"
    p.write_bytes(b"hello\nworld\n")
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None          # any "import torch" now raises ImportError
        import objio.torch as t
        from objio.torch import S3Reader, S3ReaderConstructor, S3Writer
        r = S3ReaderConstructor.range_based()("", {str(p)!r})
        assert isinstance(r, S3Reader) and r.readline() == b"hello\\n"
        w = S3Writer("", {str(tmp_path / "g.bin")!r})
        w.write(b"x"); w.close()
        print("ok", S3ReaderConstructor.get_reader_type_string(S3ReaderConstructor.default()))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok sequential"


def test_reader_type_strings() -> None:
    c = S3ReaderConstructor
    assert c.get_reader_type_string(c.sequential()) == "sequential"
    assert c.get_reader_type_string(c.default()) == "sequential"
    assert c.get_reader_type_string(None) == "sequential"
    assert c.get_reader_type_string(c.range_based()) == "range_based"
    assert c.get_reader_type_string(c.range_based(buffer_size=0)) == "range_based"
    assert c.get_reader_type_string(c.dcp_optimized()) == "dcp_optimized"
    assert c.get_reader_type_string(lambda *a: None) == "unknown"  # type: ignore[arg-type]
    assert isinstance(c.sequential(), partial) and c.sequential().func is SequentialS3Reader
    rb = c.range_based(16 * MiB)
    assert isinstance(rb, partial) and rb.func is RangedS3Reader
    assert rb.keywords == {"buffer_size": 16 * MiB}
    assert isinstance(c.dcp_optimized(), DCPOptimizedConstructor)
    assert c.dcp_optimized().max_gap_size == DEFAULT_MAX_GAP_SIZE == 32 * MiB
    assert c.dcp_optimized(float("inf")).max_gap_size == float("inf")
    assert DEFAULT_BUFFER_SIZE == 8 * MiB
    with pytest.raises(ValueError, match="buffer_size"):
        c.range_based(-1)
    with pytest.raises(ValueError, match="max_gap_size"):
        c.dcp_optimized(-5)


def test_s3reader_is_the_abstract_base() -> None:
    with pytest.raises(TypeError):
        S3Reader()  # type: ignore[abstract]
    assert issubclass(SequentialS3Reader, S3Reader) and issubclass(RangedS3Reader, S3Reader)
    assert issubclass(DCPOptimizedS3Reader, S3Reader)
    assert issubclass(S3Reader, io.BufferedIOBase)


@pytest.mark.parametrize("make", [
    lambda b, k: SequentialS3Reader(b, k), lambda b, k: RangedS3Reader(b, k),
    lambda b, k: DCPOptimizedS3Reader(b, k, [(0, 10)]),
    lambda b, k: S3ReaderConstructor.sequential()(b, k),
    lambda b, k: S3ReaderConstructor.dcp_optimized()(b, k)])
def test_readers_refuse_a_missing_bucket_or_key_with_valueerror(make: Any) -> None:
    """As s3torchconnector's readers: None or "" as the bucket or the key is a ValueError."""
    for bucket, key, word in [(None, "k", "Bucket"), ("", "k", "Bucket"), ("b", None, "Key"),
                              ("b", "", "Key"), (None, None, "Bucket")]:
        with pytest.raises(ValueError, match=f"{word} should be specified"):
            make(bucket, key)


def test_an_empty_bucket_still_means_a_local_file(tmp_path: Any) -> None:
    (tmp_path / "f.bin").write_bytes(b"local bytes")
    for key in (str(tmp_path / "f.bin"), f"file://{tmp_path}/f.bin"):
        with SequentialS3Reader("", key) as r:
            assert r.read() == b"local bytes"


@pytest.mark.parametrize("constructor", [S3ReaderConstructor.sequential(),
                                         S3ReaderConstructor.default(),
                                         S3ReaderConstructor.range_based(),
                                         S3ReaderConstructor.range_based(buffer_size=0),
                                         S3ReaderConstructor.range_based(buffer_size=1000)])
def test_constructors_make_working_readers(client: objio.Client, prefix: str,
                                           constructor: Any) -> None:
    data = np.random.default_rng(0).integers(0, 256, 3 * 1000 + 7, dtype=np.uint8).tobytes()
    client.put_bytes(prefix + "o.bin", data)
    key = prefix[len(f"s3://{BUCKET}/"):] + "o.bin"
    r = constructor(BUCKET, key, client)
    assert isinstance(r, S3Reader)
    assert r.bucket == BUCKET and r.key == key
    assert r.readable() and r.seekable() and not r.writable()
    r.prefetch()
    assert r.read(10) == data[:10] and r.tell() == 10
    assert r.seek(-7, io.SEEK_END) == len(data) - 7
    assert r.read() == data[-7:]
    r.seek(100)
    buf = bytearray(1000)
    assert r.readinto(buf) == 1000 and buf == data[100:1100]
    assert r.read(None) == data[1100:]
    r.close()
    # size/etag from a listing save the HEAD request
    info = client.stat(prefix + "o.bin")
    with constructor(BUCKET, key, client, size=info.size, etag=info.etag) as r2:
        assert r2.size == len(data) and r2.read() == data


ReadItem = namedtuple("ReadItem", "storage_index")
StorageInfo = namedtuple("StorageInfo", "relative_path offset length")


def test_dcp_constructor_uses_plan_ranges(client: objio.Client, prefix: str) -> None:
    data = np.random.default_rng(1).integers(0, 256, 10_000, dtype=np.uint8).tobytes()
    client.put_bytes(prefix + "ckpt/__0_0.distcp", data)
    client.put_bytes(prefix + "ckpt/.metadata", b"metadata")
    storage = {
        "a": StorageInfo("__0_0.distcp", 5000, 100),   # plan order need not be file order
        "b": StorageInfo("__0_0.distcp", 0, 200),
        "c": StorageInfo("__0_0.distcp", 9000, 1000),
    }
    plan = [ReadItem("a"), ReadItem("b"), ReadItem("c")]
    ctor = S3ReaderConstructor.dcp_optimized(max_gap_size=1000)
    ctor.set_item_ranges_by_file(plan, storage, prefix + "ckpt")
    base = prefix[len(f"s3://{BUCKET}/"):] + "ckpt/"
    r = ctor(BUCKET, base + "__0_0.distcp", client)
    assert isinstance(r, DCPOptimizedS3Reader)
    assert r.ranges == [(0, 200), (5000, 5100), (9000, 10000)]
    assert r.groups == [(0, 200), (5000, 5100), (9000, 10000)]
    for s, e in r.ranges:           # DCP reads each item in offset order
        r.seek(s)
        assert r.read(e - s) == data[s:e]
    with pytest.raises(ValueError, match="backward"):
        r.seek(0)
        r.read(1)
    m = ctor(BUCKET, base + ".metadata", client)  # no ranges for this file: sequential
    assert isinstance(m, SequentialS3Reader) and m.read() == b"metadata"
    # Coalescing everything: one group for the whole plan.
    ctor2 = S3ReaderConstructor.dcp_optimized(float("inf"))
    ctor2.set_item_ranges_by_file(plan, storage, prefix + "ckpt/")
    assert ctor2(BUCKET, base + "__0_0.distcp", client).groups == [(0, 10000)]


def test_s3writer_seed_interface(client: objio.Client, prefix: str) -> None:
    key = prefix[len(f"s3://{BUCKET}/"):] + "w.bin"
    with S3Writer(BUCKET, key, client) as w:
        assert w.writable() and not w.readable()
        assert w.write(b"abc") == 3
        assert w.write(memoryview(b"defg")) == 4
        w.flush()
        assert w.tell() == 7 and not w.closed
    assert w.closed
    assert not w.writable() and not w.readable()   # the seed's: False once closed, no error
    assert bytes(client.get(prefix + "w.bin")) == b"abcdefg"
    with S3Writer.from_uri(prefix + "w2.bin", client, part_size=5 * MiB) as w2:
        w2.write(bytes(11 * MiB))
    assert client.stat(prefix + "w2.bin").size == 11 * MiB
    assert client.list_multipart_uploads(prefix) == []


def test_torch_save_and_load_through_writer_and_readers(client: objio.Client, prefix: str) -> None:
    torch = pytest.importorskip("torch")
    state = {"w": torch.arange(1_000_000, dtype=torch.float32).reshape(1000, 1000),
             "b": torch.ones(7), "step": 3}
    key = prefix[len(f"s3://{BUCKET}/"):] + "model.pt"
    with S3Writer(BUCKET, key, client, part_size=5 * MiB) as w:
        torch.save(state, w)
    for ctor in (S3ReaderConstructor.sequential(), S3ReaderConstructor.range_based(),
                 S3ReaderConstructor.range_based(buffer_size=0)):
        with ctor(BUCKET, key, client) as r:
            got = torch.load(r, weights_only=True)
        assert torch.equal(got["w"], state["w"]) and torch.equal(got["b"], state["b"])
        assert got["step"] == 3
