"""Tests for objio.formats: the readers, checked against independent writers and readers.

* TFRecord: records framed here with a pure-Python CRC-32C (not google_crc32c)
  around ``tf.train.Example`` messages serialized by ``google.protobuf``
  (message classes built from a descriptor in test_datagen), so neither the
  framing nor the protobuf encoding comes from objio.
* NPZ / HDF5 / images / Parquet: files written by numpy, h5py, Pillow and
  pyarrow themselves, and objio's files read back.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import objio
from objio import datagen, formats
from objio.formats import (
    decode_image,
    iter_tfrecord,
    parse_example,
    read_hdf5,
    read_npz_bytes,
    read_parquet_bytes,
    read_tfrecord,
)

# --------------------------------------------------------------------------
# an independent TFRecord writer
# --------------------------------------------------------------------------


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def _crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), bit-reflected, table driven: slow, independent of google_crc32c."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _frame(payload: bytes) -> bytes:
    length = struct.pack("<Q", len(payload))
    return length + struct.pack("<I", _masked(_crc32c(length))) + payload + struct.pack("<I", _masked(_crc32c(payload)))


def test_pure_python_crc32c_check_value() -> None:
    assert _crc32c(b"123456789") == 0xE3069283


def _example(features: dict[str, Any]) -> bytes:
    from test_datagen import _example_class

    example = _example_class()()
    for key, value in features.items():
        feature = example.features.feature[key]
        kind, values = value
        getattr(feature, kind).value.extend(values)
    return example.SerializeToString()


# --------------------------------------------------------------------------
# iter_tfrecord
# --------------------------------------------------------------------------


def test_iter_tfrecord_reads_independently_framed_records() -> None:
    payloads = [b"", b"a", b"hello world" * 50, bytes(range(256))]
    data = b"".join(_frame(p) for p in payloads)
    records = list(iter_tfrecord(data))
    assert [bytes(r) for r in records] == payloads
    assert all(isinstance(r, memoryview) for r in records)
    # any bytes-like input
    assert [bytes(r) for r in iter_tfrecord(bytearray(data))] == payloads
    assert [bytes(r) for r in iter_tfrecord(memoryview(data))] == payloads
    assert list(iter_tfrecord(b"")) == []


def test_iter_tfrecord_is_zero_copy() -> None:
    data = bytearray(_frame(b"x" * 100))
    (record,) = iter_tfrecord(data)
    data[12] = ord("y")
    assert bytes(record[:1]) == b"y"


def test_iter_tfrecord_on_objio_files_matches_an_independent_crc() -> None:
    data = datagen.tfrecord_file((20, 30), 4, seed=1, index=2)
    records = list(iter_tfrecord(data))
    assert len(records) == 4
    pos = 0
    for record in records:
        (length,) = struct.unpack_from("<Q", data, pos)
        assert length == len(record)
        (length_crc,) = struct.unpack_from("<I", data, pos + 8)
        assert length_crc == _masked(_crc32c(data[pos : pos + 8]))
        (data_crc,) = struct.unpack_from("<I", data, pos + 12 + length)
        assert data_crc == _masked(_crc32c(bytes(record)))
        pos += 16 + length
    assert pos == len(data)


def _three_records() -> tuple[bytes, list[int]]:
    payloads = [b"first" * 10, b"second" * 10, b"third" * 10]
    offsets, pos = [], 0
    for p in payloads:
        offsets.append(pos)
        pos += 16 + len(p)
    return b"".join(_frame(p) for p in payloads), offsets


def test_corrupt_data_names_the_record_offset() -> None:
    data, offsets = _three_records()
    bad = bytearray(data)
    bad[offsets[1] + 12 + 3] ^= 0x01  # a data byte of the second record
    it = iter_tfrecord(bad)
    assert bytes(next(it)).startswith(b"first")  # records before it are still yielded
    with pytest.raises(ValueError, match=rf"data CRC mismatch .* byte offset {offsets[1]}\b"):
        next(it)
    # verify=False reads it anyway
    assert len(list(iter_tfrecord(bad, verify=False))) == 3


def test_corrupt_data_crc_field_is_detected() -> None:
    data, offsets = _three_records()
    bad = bytearray(data)
    bad[offsets[2] - 1] ^= 0x80  # last byte of record 1's data CRC
    with pytest.raises(ValueError, match=rf"data CRC mismatch .* byte offset {offsets[1]}\b"):
        list(iter_tfrecord(bad))


def test_corrupt_length_names_the_record_offset() -> None:
    data, offsets = _three_records()
    bad = bytearray(data)
    bad[offsets[2]] ^= 0x04  # the length of the third record
    with pytest.raises(ValueError, match=rf"length CRC mismatch .* byte offset {offsets[2]}\b"):
        list(iter_tfrecord(bad))


@pytest.mark.parametrize("cut", [1, 4, 5, 20])
def test_truncated_file_names_the_record_offset(cut: int) -> None:
    data, offsets = _three_records()
    with pytest.raises(ValueError, match=rf"truncated.*|byte offset {offsets[2]}"):
        list(iter_tfrecord(data[:-cut]))
    with pytest.raises(ValueError, match=rf"byte offset {offsets[2]}\b"):
        list(iter_tfrecord(data[:-cut], verify=False))


def test_trailing_garbage_is_an_error() -> None:
    data, _ = _three_records()
    with pytest.raises(ValueError, match=rf"byte offset {len(data)}\b"):
        list(iter_tfrecord(data + b"\x00\x01"))


def test_iter_tfrecord_rejects_non_bytes() -> None:
    with pytest.raises(ValueError, match="bytes-like"):
        list(iter_tfrecord("not bytes"))


# --------------------------------------------------------------------------
# parse_example
# --------------------------------------------------------------------------


def test_parse_example_of_protobuf_serialized_messages() -> None:
    pytest.importorskip("google.protobuf")
    payload = _example(
        {
            "image": ("bytes_list", [b"\x00\x01\x02", b"", b"xyz" * 100]),
            "size": ("int64_list", [0, 1, 127, 128, 300, 2**40, -1, -(2**63), 2**63 - 1]),
            "weights": ("float_list", [0.5, -2.25, 1e10]),
            "empty_ints": ("int64_list", []),
        }
    )
    parsed = parse_example(payload)
    assert parsed["image"] == [b"\x00\x01\x02", b"", b"xyz" * 100]
    assert parsed["size"] == [0, 1, 127, 128, 300, 2**40, -1, -(2**63), 2**63 - 1]
    assert parsed["weights"] == [0.5, -2.25, pytest.approx(1e10)]
    assert parsed["empty_ints"] == []
    assert set(parsed) == {"image", "size", "weights", "empty_ints"}


def _varint(v: int) -> bytes:
    out = bytearray()
    v &= (1 << 64) - 1
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _ld(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _entry(key: str, feature: bytes) -> bytes:
    return _ld(1, _ld(1, key.encode()) + _ld(2, feature))


def test_parse_example_unpacked_numbers_and_unknown_fields() -> None:
    # proto2-style unpacked repeated fields, as older writers emit them.
    ints = _varint(1 << 3 | 0) + _varint(5) + _varint(1 << 3 | 0) + _varint(-7)
    floats = _varint(1 << 3 | 5) + struct.pack("<f", 1.5) + _varint(1 << 3 | 5) + struct.pack("<f", -3.0)
    unknown = _varint(9 << 3 | 0) + _varint(42) + _ld(10, b"ignored")
    message = _ld(1, _entry("i", _ld(3, ints + unknown)) + _entry("f", _ld(2, floats)) + unknown) + unknown
    parsed = parse_example(message)
    assert parsed == {"i": [5, -7], "f": [1.5, -3.0]}
    if pytest.importorskip("google.protobuf"):
        from test_datagen import _example_class

        reference = _example_class().FromString(message)
        assert list(reference.features.feature["i"].int64_list.value) == [5, -7]


def test_parse_example_merges_like_protobuf() -> None:
    # Two Features messages merge; a later entry for the same key replaces it.
    first = _ld(1, _entry("a", _ld(3, _ld(1, _varint(1)))) + _entry("b", _ld(1, _ld(1, b"x"))))
    second = _ld(1, _entry("a", _ld(3, _ld(1, _varint(2)))))
    parsed = parse_example(first + second)
    assert parsed == {"a": [2], "b": [b"x"]}
    pytest.importorskip("google.protobuf")
    from test_datagen import _example_class

    reference = _example_class().FromString(first + second)
    assert list(reference.features.feature["a"].int64_list.value) == [2]


def test_parse_example_of_objio_records() -> None:
    data = datagen.tfrecord_file((12, 34), 2, seed=3, index=4)
    for record in iter_tfrecord(data):
        parsed = parse_example(record)
        assert set(parsed) == {"image", "size"}
        assert parsed["size"] == [12]
        (image,) = parsed["image"]
        assert isinstance(image, bytes) and len(image) == 12 * 34
        view = parse_example(record, copy=False)["image"][0]
        assert isinstance(view, memoryview) and bytes(view) == image


def test_parse_example_empty_message_and_feature_without_kind() -> None:
    assert parse_example(b"") == {}
    assert parse_example(_ld(1, _entry("k", b""))) == {"k": []}


@pytest.mark.parametrize(
    "bad",
    [
        b"\x0a",  # tag without length
        b"\x0a\x05abc",  # length past the end
        b"\x0a\x02\x0a\x10",  # entry length past the end of features
        b"\x0b",  # wire type 3 (group)
        b"\x0a\x03\x0a\x01\xff",  # truncated varint inside
    ],
)
def test_parse_example_rejects_malformed(bad: bytes) -> None:
    with pytest.raises(ValueError, match="tf.train.Example"):
        parse_example(bad)


# --------------------------------------------------------------------------
# read_tfrecord / read_hdf5 from the object store
# --------------------------------------------------------------------------


def test_read_tfrecord_from_s3(client: objio.Client, prefix: str) -> None:
    data = datagen.tfrecord_file((8, 8), 3, index=1)
    client.put_bytes(prefix + "a.tfrecord", data)
    examples = read_tfrecord(prefix + "a.tfrecord", client)
    assert len(examples) == 3
    assert all(e["size"] == [8] and len(e["image"][0]) == 64 for e in examples)

    bad = bytearray(data)
    bad[-1] ^= 0xFF
    client.put_bytes(prefix + "bad.tfrecord", bad)
    second = 2 * (len(data) // 3)
    with pytest.raises(ValueError, match=rf"bad\.tfrecord.*byte offset {second}\b"):
        read_tfrecord(prefix + "bad.tfrecord", client)
    with pytest.raises(FileNotFoundError):
        read_tfrecord(prefix + "missing.tfrecord", client)


def test_read_hdf5_from_s3(client: objio.Client, prefix: str) -> None:
    pytest.importorskip("h5py")
    data = datagen.hdf5_file((5, 7), 3, index=2)
    client.put_bytes(prefix + "a.hdf5", data)
    records = read_hdf5(prefix + "a.hdf5", "records", client=client)
    assert records.shape == (3, 5, 7) and records.dtype == np.uint8
    assert np.array_equal(records, read_hdf5(data, "records"))


# --------------------------------------------------------------------------
# HDF5, NPZ, images, Parquet from bytes
# --------------------------------------------------------------------------


def test_read_hdf5_of_an_h5py_written_file(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("a", data=np.arange(6).reshape(2, 3))
        f.create_dataset("g/b", data=np.ones(4, dtype=np.float32))
    data = path.read_bytes()
    arrays = read_hdf5(data)
    assert set(arrays) == {"a", "g/b"}
    assert np.array_equal(arrays["a"], np.arange(6).reshape(2, 3))
    assert np.array_equal(read_hdf5(bytearray(data), "g/b"), np.ones(4, dtype=np.float32))
    with pytest.raises(ValueError, match="a, g/b"):
        read_hdf5(data, "records")


def test_read_hdf5_of_objio_file_shares_the_hard_link() -> None:
    pytest.importorskip("h5py")
    arrays = read_hdf5(datagen.hdf5_file((4, 6), 2, index=1))
    assert set(arrays) == {"records", "records_0", "labels"}
    assert arrays["records"] is arrays["records_0"]
    assert arrays["records"].shape == (2, 4, 6)
    assert arrays["labels"].dtype == np.int64 and arrays["labels"].shape == (2,)


def test_read_hdf5_rejects_non_hdf5() -> None:
    pytest.importorskip("h5py")
    with pytest.raises(ValueError, match="not an HDF5 file"):
        read_hdf5(b"definitely not hdf5" * 10)


def test_read_npz_bytes() -> None:
    out = io.BytesIO()
    np.savez(out, a=np.arange(3), b=np.eye(2))
    arrays = read_npz_bytes(out.getvalue())
    assert set(arrays) == {"a", "b"}
    assert np.array_equal(read_npz_bytes(bytearray(out.getvalue()), "b"), np.eye(2))
    with pytest.raises(ValueError, match="arrays: a, b"):
        read_npz_bytes(out.getvalue(), "x")
    with pytest.raises(ValueError, match="not an NPZ"):
        read_npz_bytes(b"nope" * 10)
    single = io.BytesIO()
    np.save(single, np.arange(3))
    with pytest.raises(ValueError, match="single .npy"):
        read_npz_bytes(single.getvalue())
    x = read_npz_bytes(datagen.npz_file((3, 4), 5))["x"]
    assert x.shape == (3, 4, 5)


def test_decode_image_of_pillow_files() -> None:
    from PIL import Image

    pixels = np.arange(60, dtype=np.uint8).reshape(6, 10)
    for fmt in ("PNG", "JPEG"):
        out = io.BytesIO()
        Image.fromarray(pixels).save(out, format=fmt)
        image = decode_image(out.getvalue())
        assert image.shape == (6, 10) and image.dtype == np.uint8
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    assert np.array_equal(decode_image(bytearray(out.getvalue())), pixels)
    with pytest.raises(ValueError, match="not a decodable image"):
        decode_image(b"\x00" * 100)


def test_read_parquet_bytes() -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]}), sink)
    table = read_parquet_bytes(sink.getvalue())
    assert table.column("a").to_pylist() == [1, 2, 3]
    assert read_parquet_bytes(bytearray(sink.getvalue()), columns=["b"]).column_names == ["b"]
    with pytest.raises(ValueError, match="not a Parquet file"):
        read_parquet_bytes(b"PAR1 nope")


def test_module_exports() -> None:
    for name in ("decode_image", "iter_tfrecord", "parse_example", "read_hdf5", "read_npz_bytes",
                 "read_parquet_bytes", "read_tfrecord"):
        assert name in formats.__all__ and callable(getattr(formats, name))
    for name in formats.__all__:
        assert hasattr(formats, name)
    for fmt in formats.FORMATS:  # every registered format has its writer and its reader
        entry = formats.get_format(fmt)
        assert entry.name == fmt and callable(entry.build) and callable(entry.read)
