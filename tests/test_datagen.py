"""Tests for objio.datagen: every format is read back by an independent reader.

* NPZ: ``numpy.load`` / ``zipfile`` and a comparison with ``numpy.savez``.
* TFRecord: a framing walker written here, CRC32C from ``google_crc32c``
  with the TFRecord mask re-implemented here, and ``google.protobuf``
  parsing with ``tf.train.Example`` message classes built here from a
  descriptor (not objio's encoder).
* HDF5: ``h5py``.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import google_crc32c
import numpy as np
import pytest

from objio import datagen
from objio.datagen import (
    OBJECT_TYPES,
    generate,
    generate_hdf5,
    generate_npz,
    generate_tfrecord,
    normalize_object_type,
    random_bytes,
    tfrecord_index,
)
from objio.formats import hdf5 as hdf5_format
from objio.formats import npz as npz_format

FORMATS = ("NPZ", "TFRECORD", "HDF5")
KiB = 1024
MiB = 1024 * 1024


def _need_h5py(object_type: str) -> None:
    if object_type == "HDF5":
        pytest.importorskip("h5py")


# --------------------------------------------------------------------------
# object types and argument validation
# --------------------------------------------------------------------------


def test_object_types() -> None:
    assert OBJECT_TYPES == ("NPZ", "TFRECORD", "HDF5", "RAW")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("npz", "NPZ"),
        ("Npz", "NPZ"),
        ("NPZ", "NPZ"),
        ("tfrecord", "TFRECORD"),
        ("TFRecord", "TFRECORD"),
        ("hdf5", "HDF5"),
        ("Hdf5", "HDF5"),
        ("raw", "RAW"),
        ("RAW", "RAW"),
    ],
)
def test_normalize_object_type_is_case_insensitive(given: str, expected: str) -> None:
    assert normalize_object_type(given) == expected


@pytest.mark.parametrize("bad", ["xyz", "", "npz ", "h5", "tf", None, 3, b"npz"])
def test_normalize_object_type_rejects_unknown(bad: Any) -> None:
    with pytest.raises(ValueError) as info:
        normalize_object_type(bad)
    message = str(info.value)
    assert "object_type" in message
    assert "NPZ, TFRECORD, HDF5, RAW" in message
    assert repr(bad) in message


def test_normalize_object_type_message() -> None:
    with pytest.raises(ValueError, match=r"^object_type must be one of NPZ, TFRECORD, HDF5, RAW") as info:
        normalize_object_type("xyz")
    assert str(info.value) == (
        "object_type must be one of NPZ, TFRECORD, HDF5, RAW (case-insensitive), got 'xyz'"
    )


def test_generate_unknown_type_lists_allowed_values() -> None:
    with pytest.raises(ValueError, match="NPZ, TFRECORD, HDF5, RAW") as info:
        generate("parquet", 1024)
    assert "'parquet'" in str(info.value)


@pytest.mark.parametrize("object_type", OBJECT_TYPES)
@pytest.mark.parametrize("size", [-1, -(1 << 40)])
def test_negative_size_is_rejected(object_type: str, size: int) -> None:
    with pytest.raises(ValueError, match="size"):
        generate(object_type, size)


@pytest.mark.parametrize(
    "func", [random_bytes, generate_npz, generate_tfrecord, generate_hdf5], ids=lambda f: f.__name__
)
@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"size": -5}, "size"),
        ({"size": 1.5}, "size"),
        ({"size": "10"}, "size"),
        ({"size": True}, "size"),
        ({"size": 10, "seed": -1}, "seed"),
        ({"size": 10, "seed": 1 << 64}, "seed"),
        ({"size": 10, "index": -1}, "index"),
        ({"size": 10, "index": 1 << 64}, "index"),
    ],
)
def test_bad_arguments_name_the_argument(func: Any, kwargs: dict[str, Any], name: str) -> None:
    rest = {k: v for k, v in kwargs.items() if k != "size"}
    with pytest.raises(ValueError, match=name):
        func(kwargs["size"], **rest)


@pytest.mark.parametrize("func", [generate_npz, generate_tfrecord, generate_hdf5], ids=lambda f: f.__name__)
@pytest.mark.parametrize("samples", [0, -3, 2.0])
def test_bad_samples(func: Any, samples: Any) -> None:
    with pytest.raises(ValueError, match="samples"):
        func(1024, samples=samples)


def test_numpy_integers_are_accepted() -> None:
    assert generate("raw", np.int64(10), seed=np.uint64(3), index=np.int32(4)) == random_bytes(
        10, seed=3, index=4
    )


# --------------------------------------------------------------------------
# RAW / random_bytes
# --------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 4095, MiB - 1, MiB, MiB + 3, 2 * MiB + 13])
def test_raw_size_is_exact(size: int) -> None:
    data = generate("RAW", size, seed=1, index=2)
    assert isinstance(data, bytearray)
    assert len(data) == size
    assert data == random_bytes(size, seed=1, index=2)


def test_random_bytes_is_a_stream_independent_of_chunking() -> None:
    # A shorter request is a prefix of a longer one, across the 1 MiB chunks.
    long = random_bytes(3 * MiB + 5, seed=7, index=11)
    for n in (1, 8, 1000, MiB - 3, MiB, MiB + 1, 2 * MiB + 9):
        assert random_bytes(n, seed=7, index=11) == long[:n]


def test_random_bytes_known_answer() -> None:
    # Pinned: the payload must not change between numpy versions or platforms
    # (numpy keeps SeedSequence and SFC64 raw output stable).
    assert random_bytes(16, seed=0, index=0).hex() == "6f9b3f01272d658ccf8aaf285b00a367"
    digest = hashlib.sha256(random_bytes(4096, seed=1, index=2)).hexdigest()
    assert digest == "3f44e563011e0a748e07885d3e638ab2bcb3bd66e7d9f156268fa71f712fadfd"


def test_random_bytes_is_incompressible_and_uses_all_byte_values() -> None:
    data = random_bytes(MiB, seed=5, index=6)
    assert len(zlib.compress(bytes(data), 6)) >= len(data)
    counts = np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256)
    assert counts.min() > 0.8 * len(data) / 256


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ((0, 1), (0, 2)),
        ((0, 1), (1, 0)),  # swapped seed and index
        ((1, 0), (2, 0)),
        ((1 << 32, 0), (0, 1)),  # collides with the naive SeedSequence([seed, index])
        ((0, 1 << 32), (0, 0)),
        ((1, 0), (1, 1 << 32)),
        (((1 << 64) - 1, 0), (0, (1 << 64) - 1)),
    ],
)
def test_random_bytes_differ_for_different_seed_or_index(a: tuple[int, int], b: tuple[int, int]) -> None:
    assert random_bytes(256, seed=a[0], index=a[1]) != random_bytes(256, seed=b[0], index=b[1])


def test_many_indices_give_distinct_blocks() -> None:
    # No two files share even a 4 KiB block: nothing to deduplicate.
    blocks: set[bytes] = set()
    for index in range(200):
        data = random_bytes(16 * KiB, seed=42, index=index)
        blocks.update(bytes(data[i : i + 4096]) for i in range(0, len(data), 4096))
    assert len(blocks) == 200 * 4


# --------------------------------------------------------------------------
# properties common to all formats
# --------------------------------------------------------------------------


@pytest.mark.parametrize("object_type", OBJECT_TYPES)
def test_deterministic(object_type: str) -> None:
    _need_h5py(object_type)
    a = generate(object_type, 200 * KiB, seed=3, index=4, samples=5)
    b = generate(object_type, 200 * KiB, seed=3, index=4, samples=5)
    assert a == b


@pytest.mark.parametrize("object_type", OBJECT_TYPES)
def test_different_index_or_seed_gives_different_bytes(object_type: str) -> None:
    _need_h5py(object_type)
    base = generate(object_type, 64 * KiB, seed=3, index=4)
    assert generate(object_type, 64 * KiB, seed=3, index=5) != base
    assert generate(object_type, 64 * KiB, seed=4, index=4) != base
    # Not just somewhere different: the payloads share no 4 KiB block.
    other = bytes(generate(object_type, 64 * KiB, seed=3, index=5))
    blocks = {other[i : i + 4096] for i in range(0, len(other) - 4096, 512)}
    mine = bytes(base)
    assert not any(mine[i : i + 4096] in blocks for i in range(4096, len(mine) - 8192, 4096))


def test_formats_do_not_share_payload_with_raw() -> None:
    raw = bytes(random_bytes(4 * KiB, seed=1, index=1))
    for object_type in ("NPZ", "TFRECORD"):
        assert raw[:64] not in bytes(generate(object_type, 64 * KiB, seed=1, index=1))


def test_determinism_across_processes() -> None:
    types = [t for t in OBJECT_TYPES if t != "HDF5"]
    try:
        import h5py  # noqa: F401
    except ImportError:
        pass
    else:
        types.append("HDF5")
    code = (
        "import hashlib, sys\n"
        "from objio.datagen import generate\n"
        "for t in sys.argv[1:]:\n"
        "    print(t, hashlib.sha256(generate(t, 300000, seed=9, index=8, samples=3)).hexdigest())\n"
    )
    src = str(Path(datagen.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run(
        [sys.executable, "-c", code, *types], env=env, check=True, capture_output=True, text=True
    ).stdout
    expected = "".join(
        f"{t} {hashlib.sha256(generate(t, 300000, seed=9, index=8, samples=3)).hexdigest()}\n" for t in types
    )
    assert out == expected


@pytest.mark.parametrize("object_type", FORMATS)
@pytest.mark.parametrize("samples", [1, 3, 16])
def test_formatted_sizes_are_close_to_requested(object_type: str, samples: int) -> None:
    _need_h5py(object_type)
    rng = np.random.default_rng(1234)
    sizes = sorted({int(s) for s in rng.integers(3 * KiB, 3 * MiB, size=6)} | {64 * KiB, MiB})
    for size in sizes:
        data = generate(object_type, size, seed=1, index=size, samples=samples)
        dim = _dim_of(object_type, data)
        assert len(data) <= size, (size, samples)
        # dim is the largest that fits: one more would add (2*dim+1) bytes
        # per sample (plus at most a few header bytes per sample).
        assert size - len(data) < (2 * dim + 1 + 8) * samples + 64, (size, samples, len(data), dim)


@pytest.mark.parametrize("object_type", FORMATS)
@pytest.mark.parametrize("size", [0, 1, 100, 1024])
def test_tiny_sizes_still_give_valid_files(object_type: str, size: int) -> None:
    _need_h5py(object_type)
    data = generate(object_type, size, samples=2)
    assert _dim_of(object_type, data) >= 1
    if size == 1024 and object_type != "HDF5":
        assert len(data) <= 1024  # e.g. put(size=1024, object_type="npz")


def test_large_file_sizes() -> None:
    for object_type in ("NPZ", "TFRECORD", "RAW"):
        data = generate(object_type, 16 * MiB, index=1)
        assert 16 * MiB - 3 * 4096 <= len(data) <= 16 * MiB


def _dim_of(object_type: str, data: bytes | bytearray) -> int:
    if object_type == "NPZ":
        with np.load(io.BytesIO(data)) as npz:
            return int(npz["x"].shape[0])
    if object_type == "TFRECORD":
        records = _read_tfrecords(bytes(data))
        return int(math.isqrt(len(_parse_example(records[0])["image"])))
    import h5py

    with h5py.File(io.BytesIO(data), "r") as f:
        return int(f["records"].shape[1])


# --------------------------------------------------------------------------
# NPZ
# --------------------------------------------------------------------------


@pytest.mark.parametrize("samples", [1, 4])
@pytest.mark.parametrize("compress", [False, True])
def test_npz_layout(samples: int, compress: bool) -> None:
    data = generate_npz(300 * KiB, seed=2, index=3, samples=samples, compress=compress)
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        assert sorted(npz.files) == ["x", "y"]
        x, y = npz["x"], npz["y"]
    dim = math.isqrt(300 * KiB // samples) - 1
    assert x.dtype == np.uint8
    assert x.ndim == 3 and x.shape[0] == x.shape[1] and x.shape[2] == samples
    assert dim - 2 <= x.shape[0] <= dim + 1
    assert y.dtype == np.int64 and y.shape == (samples,)
    assert not y.any()
    # Random image bytes, not zeros; samples differ from each other.
    assert len(np.unique(x)) == 256
    assert len({x[..., k].tobytes() for k in range(samples)}) == samples

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        infos = archive.infolist()
        assert [i.filename for i in infos] == ["x.npy", "y.npy"]
        method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        assert all(i.compress_type == method for i in infos)
        members = {i.filename: archive.read(i) for i in infos}

    # The members are byte-for-byte what numpy.savez writes for these arrays.
    reference = io.BytesIO()
    np.savez(reference, x=x, y=y)
    with zipfile.ZipFile(reference) as archive:
        assert {i.filename: archive.read(i) for i in archive.infolist()} == members


def test_npz_samples_layout_matches_dlio_reader() -> None:
    # DLIO's reader takes sample k as x[..., k]; each is a dim x dim image.
    data = generate_npz(64 * KiB, samples=4)
    with np.load(io.BytesIO(data)) as npz:
        x = npz["x"]
    image = x[..., 2]
    assert image.shape == (x.shape[0], x.shape[1])
    assert image.nbytes == x.shape[0] ** 2


@pytest.mark.parametrize("compress", [False, True])
def test_npz_does_not_depend_on_the_clock(compress: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # numpy.savez stamps the current time; generate_npz must not.
    before = generate_npz(10 * KiB, index=1, compress=compress)
    later = time.time() + 3 * 24 * 3600 + 7
    monkeypatch.setattr(time, "time", lambda: later)
    monkeypatch.setattr(time, "localtime", lambda *a: time.gmtime(later))
    assert generate_npz(10 * KiB, index=1, compress=compress) == before


def test_npz_compressed_is_valid_and_same_arrays() -> None:
    plain = generate_npz(100 * KiB, seed=1, index=1, samples=2)
    packed = generate_npz(100 * KiB, seed=1, index=1, samples=2, compress=True)
    assert plain != packed
    with np.load(io.BytesIO(plain)) as a, np.load(io.BytesIO(packed)) as b:
        assert np.array_equal(a["x"], b["x"]) and np.array_equal(a["y"], b["y"])


def test_npz_zip64_fallback_path_is_equivalent() -> None:
    # The >= 4 GiB fallback goes through zipfile; check it on a small archive.
    records = np.arange(2 * 5 * 5, dtype=np.uint8).reshape(5, 5, 2)
    labels = np.zeros(2, dtype="<i8")
    fast = npz_format._npz_stored(records, labels)
    slow = npz_format._npz_zipfile(records, labels, False)
    for data in (fast, slow):
        with np.load(io.BytesIO(data)) as npz:
            assert np.array_equal(npz["x"], records) and np.array_equal(npz["y"], labels)
    assert len(fast) == npz_format._npz_file_size(5, 2)


# --------------------------------------------------------------------------
# TFRecord: independent framing walker, CRC check, protobuf parser
# --------------------------------------------------------------------------


def _mask(crc: int) -> int:
    """TFRecord masked CRC32C, written independently of objio."""
    rotated = ((crc >> 15) | (crc << 17)) & 0xFFFFFFFF
    return (rotated + 0xA282EAD8) & 0xFFFFFFFF


def _walk_tfrecords(data: bytes) -> list[tuple[int, int, bytes]]:
    """(offset, framed length, payload) per record, checking both CRCs."""
    out = []
    pos = 0
    while pos < len(data):
        header = data[pos : pos + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[pos + 8 : pos + 12])
        assert length_crc == _mask(int(google_crc32c.value(header))), f"bad length CRC at {pos}"
        payload = data[pos + 12 : pos + 12 + length]
        assert len(payload) == length, "truncated record"
        (data_crc,) = struct.unpack("<I", data[pos + 12 + length : pos + 16 + length])
        assert data_crc == _mask(int(google_crc32c.value(payload))), f"bad data CRC at {pos}"
        out.append((pos, 16 + length, payload))
        pos += 16 + length
    assert pos == len(data)
    return out


def _read_tfrecords(data: bytes) -> list[bytes]:
    return [payload for _, _, payload in _walk_tfrecords(data)]


def test_crc32c_sanity() -> None:
    # The CRC-32C check value, and the mask of it as TensorFlow computes it.
    assert google_crc32c.value(b"123456789") == 0xE3069283
    assert _mask(0) == 0xA282EAD8


_EXAMPLE_CLASS: Any = None


def _example_class() -> Any:
    """tf.train.Example, built from a descriptor (tensorflow/core/example/*.proto)."""
    global _EXAMPLE_CLASS
    if _EXAMPLE_CLASS is not None:
        return _EXAMPLE_CLASS
    pytest.importorskip("google.protobuf")
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(
        name="objio_test_example.proto", package="objio_test.tensorflow", syntax="proto3"
    )

    def message(name: str) -> Any:
        m = fdp.message_type.add()
        m.name = name
        return m

    def field(m: Any, name: str, number: int, ftype: int, label: int = F.LABEL_OPTIONAL, **kw: Any) -> Any:
        f = m.field.add(name=name, number=number, type=ftype, label=label, **kw)
        return f

    bytes_list = message("BytesList")
    field(bytes_list, "value", 1, F.TYPE_BYTES, F.LABEL_REPEATED)
    float_list = message("FloatList")
    field(float_list, "value", 1, F.TYPE_FLOAT, F.LABEL_REPEATED).options.packed = True
    int64_list = message("Int64List")
    field(int64_list, "value", 1, F.TYPE_INT64, F.LABEL_REPEATED).options.packed = True

    feature = message("Feature")
    feature.oneof_decl.add(name="kind")
    for name, number, type_name in (
        ("bytes_list", 1, ".objio_test.tensorflow.BytesList"),
        ("float_list", 2, ".objio_test.tensorflow.FloatList"),
        ("int64_list", 3, ".objio_test.tensorflow.Int64List"),
    ):
        field(feature, name, number, F.TYPE_MESSAGE, type_name=type_name, oneof_index=0)

    features = message("Features")
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    field(entry, "key", 1, F.TYPE_STRING)
    field(entry, "value", 2, F.TYPE_MESSAGE, type_name=".objio_test.tensorflow.Feature")
    field(
        features,
        "feature",
        1,
        F.TYPE_MESSAGE,
        F.LABEL_REPEATED,
        type_name=".objio_test.tensorflow.Features.FeatureEntry",
    )

    example = message("Example")
    field(example, "features", 1, F.TYPE_MESSAGE, type_name=".objio_test.tensorflow.Features")

    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    _EXAMPLE_CLASS = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("objio_test.tensorflow.Example")
    )
    return _EXAMPLE_CLASS


def _parse_example(payload: bytes) -> dict[str, Any]:
    example = _example_class().FromString(payload)
    # Re-serializing with protobuf gives back exactly our bytes: the encoding
    # is the canonical one (field order, packed int64, map entry order).
    assert example.SerializeToString(deterministic=True) == payload
    out: dict[str, Any] = {}
    for key, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        if kind == "bytes_list":
            assert len(feature.bytes_list.value) == 1
            out[key] = feature.bytes_list.value[0]
        elif kind == "int64_list":
            out[key] = list(feature.int64_list.value)
        else:
            raise AssertionError(f"unexpected feature kind {kind} for {key}")
    return out


@pytest.mark.parametrize("samples", [1, 3, 20])
@pytest.mark.parametrize("size", [0, 1000, 64 * KiB, 300 * KiB + 17])
def test_tfrecord_layout(samples: int, size: int) -> None:
    data = generate_tfrecord(size, seed=4, index=5, samples=samples)
    payloads = _read_tfrecords(data)
    assert len(payloads) == samples
    images = []
    for payload in payloads:
        features = _parse_example(payload)
        assert sorted(features) == ["image", "size"]
        image = features["image"]
        dim = math.isqrt(len(image))
        assert dim >= 1 and dim * dim == len(image)
        assert features["size"] == [dim]
        images.append(image)
    # all records the same dim; random, distinct images
    assert len({len(i) for i in images}) == 1
    if len(images[0]) >= 64:
        assert len(set(images)) == samples
        assert len(set(images[0])) > 32


def test_tfrecord_image_is_random_uint8() -> None:
    (payload,) = _read_tfrecords(generate_tfrecord(MiB, index=9))
    image = np.frombuffer(_parse_example(payload)["image"], dtype=np.uint8)
    assert image.size == 1023 * 1023 or image.size == 1022 * 1022
    assert len(np.unique(image)) == 256
    assert len(zlib.compress(image.tobytes())) >= image.size


def test_tfrecord_many_samples_like_resnet50() -> None:
    # MLPerf Storage ResNet-50: 1251 records per file.
    data = generate_tfrecord(1251 * 20 * KiB, index=1, samples=1251)
    assert len(_walk_tfrecords(data)) == 1251
    assert len(data) <= 1251 * 20 * KiB


@pytest.mark.parametrize("samples", [1, 2, 17])
def test_tfrecord_index_matches_record_offsets(samples: int) -> None:
    data = generate_tfrecord(50 * KiB, samples=samples, index=3)
    expected = "".join(f"{offset} {length}\n" for offset, length, _ in _walk_tfrecords(data))
    index = tfrecord_index(data)
    assert isinstance(index, bytes)
    assert index.decode("ascii") == expected
    assert tfrecord_index(bytearray(data)) == index
    assert tfrecord_index(memoryview(data)) == index
    lines = index.decode().splitlines()
    assert len(lines) == samples
    offsets = [tuple(map(int, line.split())) for line in lines]
    assert offsets[0][0] == 0
    assert sum(length for _, length in offsets) == len(data)


def test_tfrecord_index_edge_cases() -> None:
    assert tfrecord_index(b"") == b""
    data = generate_tfrecord(4 * KiB, samples=2)
    with pytest.raises(ValueError, match="truncated"):
        tfrecord_index(data[:-1])
    with pytest.raises(ValueError, match="truncated"):
        tfrecord_index(data + b"\x01\x02\x03")


# --------------------------------------------------------------------------
# HDF5
# --------------------------------------------------------------------------


@pytest.mark.parametrize("samples", [1, 5])
def test_hdf5_layout(samples: int) -> None:
    h5py = pytest.importorskip("h5py")
    data = generate_hdf5(400 * KiB, seed=6, index=7, samples=samples)
    assert data[:8] == b"\x89HDF\r\n\x1a\n"
    with h5py.File(io.BytesIO(data), "r") as f:
        assert {"records", "labels"} <= set(f.keys())
        records, labels = f["records"], f["labels"]
        assert records.dtype == np.uint8
        assert records.ndim == 3 and records.shape[0] == samples
        dim = records.shape[1]
        assert records.shape == (samples, dim, dim)
        assert records.chunks is None and records.compression is None
        assert labels.dtype == np.int64 and labels.shape == (samples,)
        assert not labels[()].any()
        # records_0 (newer DLIO readers) is the same dataset, not a copy.
        assert f["records_0"] == records
        values = records[()]
    assert len(np.unique(values)) == 256
    assert len({values[k].tobytes() for k in range(samples)}) == samples
    assert len(data) <= 400 * KiB


def test_hdf5_writes_no_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("h5py")
    monkeypatch.chdir(tmp_path)
    generate_hdf5(100 * KiB, samples=2)
    assert list(tmp_path.iterdir()) == []


def test_hdf5_concurrent_generation() -> None:
    pytest.importorskip("h5py")
    expected = [generate_hdf5(50 * KiB, index=i) for i in range(4)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: generate_hdf5(50 * KiB, index=i % 4), range(32)))
    assert all(r == expected[i % 4] for i, r in enumerate(results))


def test_hdf5_without_h5py_raises_import_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "h5py", None)  # makes `import h5py` fail
    hdf5_format._hdf5_overhead.cache_clear()
    try:
        with pytest.raises(ImportError) as info:
            generate("hdf5", 10 * KiB)
        assert str(info.value) == "object_type='HDF5' needs h5py: pip install 'objio[hdf5]'"
        with pytest.raises(ImportError, match=r"objio\[hdf5\]"):
            generate_hdf5(10 * KiB)
    finally:
        hdf5_format._hdf5_overhead.cache_clear()


# ==========================================================================
# DLIO datasets: formats, record shapes, per-format files (objio gen)
# ==========================================================================

DATASET_FORMATS = datagen.FORMATS


def _need(fmt: str) -> None:
    if fmt == "hdf5":
        pytest.importorskip("h5py")
    if fmt == "parquet":
        pytest.importorskip("pyarrow")


def test_formats_list() -> None:
    assert DATASET_FORMATS == ("npz", "tfrecord", "hdf5", "jpeg", "png", "parquet", "raw", "safetensors")


@pytest.mark.parametrize("given", ["npz", "NPZ", "TFRecord", "Hdf5", "JPEG", "png", "Parquet", "raw"])
def test_normalize_format(given: str) -> None:
    assert datagen.normalize_format(given) == given.lower()


@pytest.mark.parametrize("bad", ["jpg", "csv", "", "npz ", None, 7])
def test_unknown_format_lists_the_formats(bad: Any) -> None:
    with pytest.raises(ValueError) as info:
        datagen.normalize_format(bad)
    assert "npz, tfrecord, hdf5, jpeg, png, parquet, raw" in str(info.value)
    with pytest.raises(ValueError, match="npz, tfrecord, hdf5, jpeg, png, parquet, raw"):
        datagen.dataset_file(bad, 1024)


def test_put_object_types_are_unchanged() -> None:
    # objio.put keeps accepting exactly these; the new formats are objio gen's.
    assert OBJECT_TYPES == ("NPZ", "TFRECORD", "HDF5", "RAW")
    for fmt in ("jpeg", "png", "parquet"):
        with pytest.raises(ValueError, match="NPZ, TFRECORD, HDF5, RAW"):
            normalize_object_type(fmt)


# --------------------------------------------------------------------------
# record shapes (DLIO utils/config.py + data_generator.get_dimension)
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record_size", "dim"),
    [(1, 1), (3, 1), (4, 2), (65536, 256), (114660, 338), (2828486, 1681), (146600628, 12107)],
)
def test_record_dims_without_stdev_is_dlio_dimension(record_size: int, dim: int) -> None:
    # DLIO: dimension = int(math.sqrt(record_length))
    assert dim == int(math.sqrt(record_size))
    assert datagen.record_dims(record_size) == (dim, dim)
    assert datagen.record_dims(record_size, 0, seed=5, index=9) == (dim, dim)
    assert datagen.record_sizes_many(record_size, count=3) == [record_size] * 3


def test_record_dims_with_stdev_is_deterministic_and_per_file() -> None:
    many = datagen.record_dims_many(146_600_628, 68_341_808, seed=3, start=0, count=300)
    # Any file alone (and any window) gives the same shape as the bulk draw.
    assert [datagen.record_dims(146_600_628, 68_341_808, seed=3, index=i) for i in (0, 1, 157, 299)] == [
        many[0],
        many[1],
        many[157],
        many[299],
    ]
    assert datagen.record_dims_many(146_600_628, 68_341_808, seed=3, start=100, count=50) == many[100:150]
    assert datagen.record_dims_many(146_600_628, 68_341_808, seed=4, start=0, count=300) != many
    assert all(d1 >= 1 and d2 >= 1 for d1, d2 in many)
    assert len(set(many)) > 250  # shapes vary per file, dim1 != dim2 in general


def test_record_dims_follow_dlios_normal_distribution() -> None:
    # DLIO: dimension_stdev = record_length_stdev / 2 / sqrt(record_length); each of
    # dim1, dim2 ~ max(int(normal(dimension, dimension_stdev)), 1).
    record, stdev = 146_600_628, 68_341_808
    dims = np.array(datagen.record_dims_many(record, stdev, seed=1, count=20000), dtype=np.float64)
    dim = int(math.sqrt(record))
    dim_stdev = stdev / 2 / math.sqrt(record)
    assert abs(dims.mean() - (dim - 0.5)) < 0.03 * dim  # int() truncates: about -0.5
    assert abs(dims.std() - dim_stdev) < 0.03 * dim_stdev
    assert abs(np.corrcoef(dims[:, 0], dims[:, 1])[0, 1]) < 0.05  # independent draws
    # samples are then dim1 * dim2 bytes: mean ~ record, spread ~ stdev / sqrt(2)
    sizes = dims[:, 0] * dims[:, 1]
    assert abs(sizes.mean() - record) < 0.03 * record
    assert 0.6 * stdev < sizes.std() < 0.85 * stdev


def test_record_dims_clamp_to_one() -> None:
    dims = datagen.record_dims_many(100, 10_000, seed=0, count=500)
    assert min(min(d) for d in dims) == 1
    assert min(datagen.record_sizes_many(100, 10_000, count=500)) == 1


def test_record_sizes_many_follow_the_normal_distribution() -> None:
    sizes = np.array(datagen.record_sizes_many(2_828_486, 71_311, seed=2, count=20000), dtype=np.float64)
    assert abs(sizes.mean() - 2_828_486) < 3000
    assert abs(sizes.std() - 71_311) < 0.03 * 71_311


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"record_size": 0}, "record_size"),
        ({"record_size": -5}, "record_size"),
        ({"record_size": 1.5}, "record_size"),
        ({"record_size": 10, "record_size_stdev": -1}, "record_size_stdev"),
        ({"record_size": 10, "record_size_stdev": float("nan")}, "record_size_stdev"),
        ({"record_size": 10, "record_size_stdev": "1"}, "record_size_stdev"),
        ({"record_size": 10, "seed": -1}, "seed"),
        ({"record_size": 10, "index": -1}, "index"),
    ],
)
def test_record_dims_bad_arguments(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        datagen.record_dims(**kwargs)


# --------------------------------------------------------------------------
# per-format files with explicit sample shapes, read by independent readers
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dims", [(1, 1), (7, 13), (40, 25)])
@pytest.mark.parametrize("samples", [1, 3])
def test_npz_file_layout(dims: tuple[int, int], samples: int) -> None:
    data = datagen.npz_file(dims, samples, seed=1, index=2)
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        assert sorted(npz.files) == ["x", "y"]
        x, y = npz["x"], npz["y"]
    assert x.dtype == np.uint8 and x.shape == (*dims, samples)
    assert y.dtype == np.int64 and y.shape == (samples,) and not y.any()
    assert datagen.expected_file_size("npz", dims, samples) == (len(data), True)


def test_npz_file_matches_generate_npz_for_the_same_dim() -> None:
    data = generate_npz(64 * KiB, seed=3, index=4, samples=2)
    with np.load(io.BytesIO(data)) as npz:
        dim = npz["x"].shape[0]
    assert datagen.npz_file((dim, dim), 2, seed=3, index=4) == data


def test_npz_file_compressed() -> None:
    plain = datagen.npz_file((30, 20), 2, index=1)
    packed = datagen.npz_file((30, 20), 2, index=1, compress=True)
    with np.load(io.BytesIO(plain)) as a, np.load(io.BytesIO(packed)) as b:
        assert np.array_equal(a["x"], b["x"])
    with zipfile.ZipFile(io.BytesIO(packed)) as archive:
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in archive.infolist())


@pytest.mark.parametrize("dims", [(1, 1), (5, 9), (64, 32)])
@pytest.mark.parametrize("samples", [1, 4])
def test_tfrecord_file_layout(dims: tuple[int, int], samples: int) -> None:
    data = datagen.tfrecord_file(dims, samples, seed=2, index=3)
    payloads = _read_tfrecords(data)  # independent framing + CRC check
    assert len(payloads) == samples
    images = []
    for payload in payloads:
        features = _parse_example(payload)  # google.protobuf, canonical re-encoding
        assert sorted(features) == ["image", "size"]
        assert features["size"] == [dims[0]]
        assert len(features["image"]) == dims[0] * dims[1]
        images.append(features["image"])
    if dims[0] * dims[1] >= 64:
        assert len(set(images)) == samples
    assert datagen.expected_file_size("tfrecord", dims, samples) == (len(data), True)
    index = tfrecord_index(data).decode().splitlines()
    assert [tuple(map(int, line.split())) for line in index] == [(o, n) for o, n, _ in _walk_tfrecords(data)]


@pytest.mark.parametrize("dims", [(1, 1), (6, 11)])
def test_hdf5_file_layout(dims: tuple[int, int]) -> None:
    h5py = pytest.importorskip("h5py")
    data = datagen.hdf5_file(dims, 3, seed=4, index=5)
    with h5py.File(io.BytesIO(data), "r") as f:
        assert {"records", "records_0", "labels"} == set(f.keys())
        assert f["records"].shape == (3, *dims) and f["records"].dtype == np.uint8
        assert f["records"].chunks is None and f["records"].compression is None
        assert f["labels"].shape == (3,) and f["labels"].dtype == np.int64
        assert f["records_0"] == f["records"]
    assert datagen.expected_file_size("hdf5", dims, 3)[0] == len(data)


def test_hdf5_file_chunked_and_gzip_like_dlio() -> None:
    h5py = pytest.importorskip("h5py")
    plain = datagen.hdf5_file((64, 64), 4, index=1)
    data = datagen.hdf5_file((64, 64), 4, index=1, chunks=(1, 64, 64), compression="gzip")
    with h5py.File(io.BytesIO(data), "r") as f, h5py.File(io.BytesIO(plain), "r") as g:
        records = f["records"]
        assert records.chunks == (1, 64, 64)
        assert records.compression == "gzip" and records.compression_opts == 4  # DLIO's default level
        assert np.array_equal(records[()], g["records"][()])
    auto = datagen.hdf5_file((64, 64), 4, index=1, chunks=True, compression="lzf")
    with h5py.File(io.BytesIO(auto), "r") as f:
        assert f["records"].chunks is not None and f["records"].compression == "lzf"
    with pytest.raises(ValueError, match="compression"):
        datagen.hdf5_file((4, 4), 1, compression="zip")


def test_jpeg_file_read_by_pillow() -> None:
    from PIL import Image

    data = datagen.jpeg_file((48, 80), seed=1, index=2)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        assert image.mode == "L"  # grayscale, as DLIO's Image.fromarray(2-D uint8)
        assert image.size == (80, 48)  # (width, height)
        pixels = np.asarray(image)
    assert pixels.shape == (48, 80) and pixels.dtype == np.uint8
    assert pixels.std() > 40  # random noise, not a flat image
    assert datagen.jpeg_file((48, 80), seed=1, index=2) == data
    assert datagen.jpeg_file((48, 80), seed=1, index=3) != data
    assert len(datagen.jpeg_file((48, 80), index=2, quality=95)) > len(datagen.jpeg_file((48, 80), index=2, quality=30))


@pytest.mark.parametrize("dims", [(1, 1), (1, 70000), (3, 5), (100, 257), (300, 300)])
@pytest.mark.parametrize("level", [0, 6])
def test_png_file_read_by_pillow(dims: tuple[int, int], level: int) -> None:
    from PIL import Image

    if level and dims[0] * dims[1] > 10**5:
        pytest.skip("slow zlib level on a large image")
    data = datagen.png_file(dims, seed=1, index=2, compress_level=level)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and image.mode == "L"
        assert image.size == (dims[1], dims[0])
        image.load()  # decodes and checks every chunk CRC and the zlib stream
        pixels = np.asarray(image)
    assert pixels.shape == dims
    if dims[0] * dims[1] > 4096:
        assert len(np.unique(pixels)) == 256
    # The level changes the encoding, not the pixels.
    other = datagen.png_file(dims, seed=1, index=2, compress_level=9 - level)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(other))), pixels)
    if level == 0:
        estimate, exact = datagen.expected_file_size("png", dims)
        assert not exact and abs(estimate - len(data)) <= 0.01 * len(data) + 64


def test_png_file_chunk_crcs_independently() -> None:
    data = datagen.png_file((20, 30), index=1)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, kinds = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        kinds.append(kind)
        if kind == b"IDAT":
            raw = zlib.decompress(body)
            assert len(raw) == 20 * 31  # 20 scanlines of a filter byte + 30 pixels
        pos += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND"
    assert b"IDAT" in kinds and set(kinds[1:-1]) <= {b"IDAT"}  # Pillow may split IDAT


def test_parquet_file_read_by_pyarrow() -> None:
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    data = datagen.parquet_file(10, record_size=100, seed=1, index=2)
    table = pq.read_table(io.BytesIO(data))
    assert table.column_names == ["data", "label"]
    assert str(table.schema.field("data").type) == "binary"
    assert str(table.schema.field("label").type) == "int64"
    values = table.column("data").to_pylist()
    assert all(len(v) == 100 for v in values) and len(set(values)) == 10
    assert all(v >= 0 for v in table.column("label").to_pylist())
    assert datagen.parquet_file(10, record_size=100, seed=1, index=2) == data
    assert datagen.parquet_file(10, record_size=100, seed=1, index=3) != data


def test_parquet_file_columns_and_row_groups() -> None:
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    columns = [("img", "binary", 64), ("label", "int32", None), ("emb", "float32", 8), ("u", "uint16", 1)]
    data = datagen.parquet_file(25, columns=columns, row_group_size=10, index=1)
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    assert meta.num_rows == 25 and meta.num_row_groups == 3
    table = pq.read_table(io.BytesIO(data))
    assert table.column_names == ["img", "label", "emb", "u"]
    assert {len(v) for v in table.column("img").to_pylist()} == {64}
    emb = table.column("emb").to_pylist()
    assert all(len(row) == 8 and all(0 <= x < 1 for x in row) for row in emb)
    assert all(x >= 0 for x in table.column("label").to_pylist())
    zstd = datagen.parquet_file(25, columns=columns, row_group_size=10, index=1, compression="zstd")
    assert pq.read_table(io.BytesIO(zstd)).equals(table)


@pytest.mark.parametrize(
    ("columns", "match"),
    [
        ([], "at least one"),
        ([("a", "string", 1)], "binary, int8"),
        ([("a", "int64", 0)], "size"),
        ([("a", "int64", 1), ("a", "int32", 1)], "unique"),
        ([("", "int64", 1)], "non-empty"),
        ([("a",)], r"\(name, dtype, size\)"),
        ("data:binary", "sequence"),
    ],
)
def test_parquet_bad_columns(columns: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        datagen.normalize_parquet_columns(columns, 10)


def test_parquet_without_pyarrow_raises_import_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match=r"pip install 'objio\[parquet\]'"):
        datagen.parquet_file(1, record_size=10)
    with pytest.raises(ImportError, match=r"objio\[parquet\]"):
        datagen.dataset_file("parquet", 10)


# --------------------------------------------------------------------------
# dataset_file: every format, determinism, uniqueness, sizes
# --------------------------------------------------------------------------


def _samples_for(fmt: str) -> int:
    return 1 if fmt in ("jpeg", "png") else 3


@pytest.mark.parametrize("fmt", DATASET_FORMATS)
def test_dataset_file_is_deterministic_and_unique(fmt: str) -> None:
    _need(fmt)
    samples = _samples_for(fmt)
    a = datagen.dataset_file(fmt, 20000, samples=samples, seed=7, index=3, record_size_stdev=2000)
    assert datagen.dataset_file(fmt, 20000, samples=samples, seed=7, index=3, record_size_stdev=2000) == a
    others = [
        datagen.dataset_file(fmt, 20000, samples=samples, seed=7, index=i, record_size_stdev=2000) for i in range(4, 9)
    ]
    others.append(datagen.dataset_file(fmt, 20000, samples=samples, seed=8, index=3, record_size_stdev=2000))
    assert len({bytes(x) for x in [a, *others]}) == 7
    # no shared 4 KiB block between two files of the dataset
    other = bytes(others[0])
    blocks = {other[i : i + 4096] for i in range(0, len(other) - 4096, 512)}
    mine = bytes(a)
    assert not any(mine[i : i + 4096] in blocks for i in range(4096, len(mine) - 8192, 4096))


@pytest.mark.parametrize("fmt", DATASET_FORMATS)
def test_dataset_file_sizes_follow_the_record_size(fmt: str) -> None:
    _need(fmt)
    samples = _samples_for(fmt)
    data = datagen.dataset_file(fmt, 10000, samples=samples, seed=1, index=1)
    dim = int(math.sqrt(10000))
    size, exact = datagen.expected_file_size(fmt, (dim, dim), samples, record_size=10000 if fmt in ("raw", "parquet") else dim * dim)
    if exact:
        assert len(data) == size
    else:
        assert 0.8 * size < len(data) < 1.25 * size
    if fmt == "raw":
        assert len(data) == 10000 * samples


def test_dataset_file_in_the_dlio_layouts() -> None:
    data = datagen.dataset_file("npz", 114660, samples=2, index=1)
    with np.load(io.BytesIO(data)) as npz:
        assert npz["x"].shape == (338, 338, 2)
    rec = _read_tfrecords(datagen.dataset_file("tfrecord", 114660, samples=2, index=1))
    assert _parse_example(rec[0])["size"] == [338]


def test_dataset_file_with_stdev_uses_record_dims() -> None:
    dims = datagen.record_dims(50000, 20000, seed=2, index=6)
    assert dims[0] != dims[1]
    data = datagen.dataset_file("npz", 50000, samples=2, seed=2, index=6, record_size_stdev=20000)
    with np.load(io.BytesIO(data)) as npz:
        assert npz["x"].shape == (*dims, 2)
    (size,) = datagen.record_sizes_many(50000, 20000, seed=2, start=6)
    assert len(datagen.dataset_file("raw", 50000, samples=2, seed=2, index=6, record_size_stdev=20000)) == 2 * size


@pytest.mark.parametrize(
    ("fmt", "kwargs", "match"),
    [
        ("jpeg", {"samples": 2}, "one sample per file"),
        ("png", {"samples": 3}, "one sample per file"),
        ("npz", {"compression": "gzip"}, "compression"),
        ("tfrecord", {"compression": "zip"}, "compression"),
        ("raw", {"chunks": True}, "chunks"),
        ("npz", {"samples": 0}, "samples"),
        ("npz", {"index": -1}, "index"),
    ],
)
def test_dataset_file_bad_options(fmt: str, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        datagen.dataset_file(fmt, 1000, **kwargs)


@pytest.mark.parametrize("record_size", [0, -1])
def test_dataset_file_record_size_too_small(record_size: int) -> None:
    with pytest.raises(ValueError, match="record_size"):
        datagen.dataset_file("npz", record_size)


def test_jpeg_side_limit() -> None:
    with pytest.raises(ValueError, match="65500"):
        datagen.jpeg_file((10, 70000))


def test_generation_speed_is_not_asserted_but_runs_large_files() -> None:
    # A 16 MiB sample in each fast format, just to exercise the large-buffer paths.
    for fmt in ("npz", "tfrecord", "png", "raw"):
        data = datagen.dataset_file(fmt, 16 * MiB, index=1)
        assert 16 * MiB - 16 * KiB <= len(data) <= 16 * MiB + 16 * KiB
