"""TFRecord: TensorFlow's record files of ``tf.train.Example`` messages (DLIO
``data_generator/tf_generator.py``, ``reader/tf_reader.py``, ``reader/dali_tfrecord_reader.py``).

Framing (``tensorflow/core/lib/io/record_writer.cc``): per record a ``uint64`` little-endian
data length, the ``uint32`` masked CRC32C of those 8 bytes, the data, the ``uint32`` masked
CRC32C of the data, ``masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8 (mod 2**32)``.
The ``tf.train.Example`` protobuf (``tensorflow/core/example/{example,feature}.proto``) is
encoded and decoded here without TensorFlow or protobuf; CRC32C comes from ``google_crc32c``.

Writer: :func:`tfrecord_file` / :func:`generate_tfrecord` (features ``image``: one
``dim1 * dim2``-byte image, ``size``: ``[dim1]``) and :func:`tfrecord_index` (DALI's ``.idx``).
Reader: :func:`iter_tfrecord` (both CRCs checked), :func:`parse_example`, :func:`read_tfrecord`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import google_crc32c
import numpy as np

from ._common import (
    _STREAM_TFRECORD,
    FileFormat,
    FileOptions,
    _best_dim,
    _byte_view,
    _check_common,
    _check_dims,
    _check_int,
    _fetch,
    _random_array,
)


def _encode_varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative int."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _len_field(field: int, payload_len: int) -> bytes:
    """Tag and length prefix of a length-delimited (wire type 2) field."""
    return _encode_varint((field << 3) | 2) + _encode_varint(payload_len)


def _mask(crc: int) -> int:
    """TFRecord's CRC mask: rotate right by 15 bits and add a constant."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


@lru_cache(maxsize=1 << 16)
def _tf_example_parts(dim: int, dim2: int | None = None) -> tuple[bytes, bytes]:
    """Serialized ``tf.train.Example`` around a ``dim * dim2`` byte image
    (``dim2`` defaults to ``dim``; ``size`` holds ``[dim]``, the row count).

    Returns ``(head, tail)`` such that ``head + image + tail`` is the message
    ``Example{features: Features{feature: {"image": Feature{bytes_list:
    BytesList{value: [image]}}, "size": Feature{int64_list: Int64List{value:
    [dim]}}}}}`` (map entries in key order, as deterministic serialization
    writes them).

    Field numbers (``tensorflow/core/example/{example,feature}.proto``):
    ``Example.features = 1``; ``Features.feature = 1`` (``map<string,
    Feature>``, each entry a message with ``key = 1``, ``value = 2``);
    ``Feature.bytes_list = 1``, ``Feature.int64_list = 3``;
    ``BytesList.value = 1`` (repeated bytes); ``Int64List.value = 1``
    (packed varints).
    """
    image_len = dim * (dim if dim2 is None else dim2)
    # "image" entry, everything before the image bytes.
    bytes_list_len = len(_len_field(1, image_len)) + image_len
    feature_img_len = len(_len_field(1, bytes_list_len)) + bytes_list_len
    key_img = _len_field(1, 5) + b"image"
    entry_img_len = len(key_img) + len(_len_field(2, feature_img_len)) + feature_img_len
    # "size" entry, all after the image bytes.
    packed = _encode_varint(dim)
    int64_list = _len_field(1, len(packed)) + packed
    feature_size = _len_field(3, len(int64_list)) + int64_list
    entry_size = _len_field(1, 4) + b"size" + _len_field(2, len(feature_size)) + feature_size
    features_len = (
        len(_len_field(1, entry_img_len))
        + entry_img_len
        + len(_len_field(1, len(entry_size)))
        + len(entry_size)
    )
    head = b"".join(
        (
            _len_field(1, features_len),  # Example.features
            _len_field(1, entry_img_len),  # Features.feature entry "image"
            key_img,
            _len_field(2, feature_img_len),  # entry value: Feature
            _len_field(1, bytes_list_len),  # Feature.bytes_list
            _len_field(1, image_len),  # BytesList.value[0]
        )
    )
    tail = _len_field(1, len(entry_size)) + entry_size  # Features.feature entry "size"
    return head, tail


def _tfrecord_file_size(dim: int, samples: int, dim2: int | None = None) -> int:
    dim2 = dim if dim2 is None else dim2
    head, tail = _tf_example_parts(dim, dim2)
    return samples * (8 + 4 + len(head) + dim * dim2 + len(tail) + 4)


def generate_tfrecord(size: int, *, seed: int = 0, index: int = 0, samples: int = 1) -> bytes:
    """Return one TFRecord file of ``samples`` records, about ``size`` bytes.

    Each record is a serialized ``tf.train.Example`` with two features, as
    DLIO's ``tf_generator.py`` writes them and ``tf_reader.py`` parses them
    (``FixedLenFeature([], tf.string)`` / ``FixedLenFeature([], tf.int64)``):

    * ``image``: ``bytes_list`` with one value, ``dim * dim`` random bytes
      (a ``uint8`` ``dim x dim`` image, row-major);
    * ``size``: ``int64_list`` with one value, ``dim``.

    (DLIO releases before its 2025 "dimension-based generation" change store
    ``dimension`` in ``size``; later ones store the image size in bytes.
    DLIO's reader ignores the value.)

    Records are framed as TensorFlow's ``TFRecordWriter`` writes them:
    ``uint64`` little-endian data length, ``uint32`` LE masked CRC32C of
    those 8 length bytes, the data, ``uint32`` LE masked CRC32C of the data,
    where ``masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8 (mod
    2**32)``.  No compression.  The protobuf is encoded here directly (no
    TensorFlow / protobuf dependency); CRC32C comes from ``google_crc32c``.

    ``dim`` is the largest value for which the whole file is at most
    ``size`` bytes, and at least 1 (framing and protobuf take 48 bytes per
    record for small images), so a ``size`` below ``samples * 49`` gives a
    larger file.
    Use :func:`tfrecord_index` for the DALI / DLIO ``.idx`` file.

    Args:
        size: requested file size in bytes, ``>= 0``.
        seed: dataset seed, ``0 <= seed < 2**64``.
        index: file number within the dataset, ``0 <= index < 2**64``.
        samples: number of records in the file, ``>= 1``.

    Returns:
        The bytes of the ``.tfrecord`` file.

    Raises:
        ValueError: if ``size``, ``seed``, ``index`` or ``samples`` is out of
            range (the message names the argument).
    """
    size, seed, index = _check_common(size, seed, index)
    samples = _check_int("samples", samples, 1)
    dim = _best_dim(size, samples, lambda d: _tfrecord_file_size(d, samples))
    return _tfrecord_build(dim, dim, samples, seed, index)


def _tfrecord_build(dim1: int, dim2: int, samples: int, seed: int, index: int) -> bytes:
    image_len = dim1 * dim2
    images = _random_array(image_len * samples, seed, index, _STREAM_TFRECORD)
    # google_crc32c takes bytes or read-only buffers (not memoryviews), and
    # slices of a read-only array are read-only: CRC and join without copies.
    images.flags.writeable = False

    head, tail = _tf_example_parts(dim1, dim2)
    data_len = len(head) + image_len + len(tail)
    len_bytes = struct.pack("<Q", data_len)
    prefix = len_bytes + struct.pack("<I", _mask(google_crc32c.value(len_bytes))) + head
    head_crc = google_crc32c.value(head)
    extend = google_crc32c.extend
    pack_crc = struct.Struct("<I").pack

    parts: list[Any] = []
    for off in range(0, image_len * samples, image_len):
        image = images[off : off + image_len]
        crc = extend(extend(head_crc, image), tail)
        parts += (prefix, image, tail, pack_crc(_mask(crc)))
    return b"".join(parts)


def tfrecord_file(dims: tuple[int, int], samples: int = 1, *, seed: int = 0, index: int = 0) -> bytes:
    """One TFRecord file of ``samples`` ``tf.train.Example`` records of shape ``dims``.

    The layout of :func:`generate_tfrecord` (DLIO ``data_generator/tf_generator.py``,
    read by ``reader/tf_reader.py`` and ``reader/dali_tfrecord_reader.py``):
    feature ``image`` = ``bytes_list`` of one ``dim1 * dim2``-byte row-major
    ``uint8`` image, feature ``size`` = ``int64_list`` ``[dim1]`` (the image
    is ``dim1`` rows of ``len(image) // dim1`` bytes; square images store
    their side).  Framing: ``uint64`` LE length, masked CRC32C of the
    length, data, masked CRC32C of the data.  Write :func:`tfrecord_index`
    of the result to ``index/<split>/<file>.idx``.

    Raises:
        ValueError: ``dims``, ``samples``, ``seed`` or ``index`` out of range.
    """
    dim1, dim2 = _check_dims(dims)
    samples = _check_int("samples", samples, 1)
    _, seed, index = _check_common(0, seed, index)
    return _tfrecord_build(dim1, dim2, samples, seed, index)


def tfrecord_index(data: bytes | bytearray | memoryview) -> bytes:
    """Return the index file of a TFRecord file: one ``"offset size\\n"`` line per record.

    This is the format of DALI's ``tfrecord2idx`` script, which DLIO runs
    (or reimplements, ``TFRecordGenerator.create_index_file``) to write
    ``<data_folder>/index/{train,valid}/<file>.idx`` for its DALI reader:
    ``offset`` is the byte offset of the record in the file and ``size`` the
    length of the whole framed record (``8 + 4 + data_length + 4``), both in
    decimal ASCII.  CRCs are not checked.

    Args:
        data: the bytes of a TFRecord file.

    Returns:
        The ASCII content of the index file (empty for an empty file).

    Raises:
        ValueError: if the file ends inside a record (truncated or not a
            TFRecord file).
    """
    view = memoryview(data).cast("B")
    total = len(view)
    lines: list[str] = []
    offset = 0
    while offset < total:
        if offset + 12 > total:
            raise ValueError(
                f"truncated TFRecord: record header at offset {offset} runs past the end ({total} bytes)"
            )
        (data_len,) = struct.unpack_from("<Q", view, offset)
        record_len = 8 + 4 + data_len + 4
        if offset + record_len > total:
            raise ValueError(
                f"truncated TFRecord: record at offset {offset} needs {record_len} bytes, "
                f"only {total - offset} left"
            )
        lines.append(f"{offset} {record_len}\n")
        offset += record_len
    return "".join(lines).encode("ascii")


# --------------------------------------------------------------------------
# reader
# --------------------------------------------------------------------------


_U64 = struct.Struct("<Q")


_U32 = struct.Struct("<I")


FeatureValues = list[bytes] | list[int] | list[float] | list[memoryview]


def _masked_crc32c(view: memoryview) -> int:
    # google_crc32c only takes read-only buffers; a read-only numpy view of
    # the memory is one, without a copy.
    array = np.frombuffer(view, dtype=np.uint8)
    array.flags.writeable = False
    crc = int(google_crc32c.value(array))
    return _mask(crc)


def iter_tfrecord(data: Any, *, verify: bool = True) -> Iterator[memoryview]:
    """Yield the data of each record of a TFRecord file, in order.

    Each record is returned as a :class:`memoryview` slice of ``data``
    (zero-copy: it keeps ``data`` alive; ``bytes(record)`` copies it).  The
    file is the concatenation of framed records (see the module docstring);
    uncompressed files only.

    Args:
        data: the bytes of the file (bytes-like).
        verify: check both masked CRC32Cs of every record (the default).
            Costs about 0.1 ms per MiB.

    Yields:
        The serialized record payloads (for DLIO / objio files, a
        ``tf.train.Example``, see :func:`parse_example`).

    Raises:
        ValueError: a truncated record, or with ``verify`` a length or data
            CRC mismatch; the message names the byte offset of the record.
    """
    view = _byte_view(data)
    total = len(view)
    offset = 0
    while offset < total:
        if offset + 12 > total:
            raise ValueError(
                f"corrupt TFRecord: truncated record header at byte offset {offset} "
                f"({total - offset} bytes left, 12 needed)"
            )
        (length,) = _U64.unpack_from(view, offset)
        if verify:
            (length_crc,) = _U32.unpack_from(view, offset + 8)
            if _masked_crc32c(view[offset : offset + 8]) != length_crc:
                raise ValueError(f"corrupt TFRecord: length CRC mismatch in the record at byte offset {offset}")
        start = offset + 12
        end = start + length
        if end + 4 > total:
            raise ValueError(
                f"corrupt TFRecord: the record at byte offset {offset} needs {length + 16} bytes, "
                f"only {total - offset} left (truncated)"
            )
        payload = view[start:end]
        if verify:
            (data_crc,) = _U32.unpack_from(view, end)
            if _masked_crc32c(payload) != data_crc:
                raise ValueError(f"corrupt TFRecord: data CRC mismatch in the record at byte offset {offset}")
        yield payload
        offset = end + 4


def _read_varint(view: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise ValueError("truncated varint")
        b = view[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ValueError("varint longer than 10 bytes")


def _fields(view: memoryview, start: int, end: int) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of each field of a message in ``view[start:end]``.

    The value of a length-delimited field (wire type 2) is ``(begin, end)``
    of its payload; varints are ints; fixed32 / fixed64 are their raw bytes'
    start offset.
    """
    pos = start
    while pos < end:
        tag, pos = _read_varint(view, pos, end)
        field, wire = tag >> 3, tag & 7
        if field == 0:
            raise ValueError("field number 0")
        if wire == 0:
            value, pos = _read_varint(view, pos, end)
            yield field, wire, value
        elif wire == 2:
            length, pos = _read_varint(view, pos, end)
            if pos + length > end:
                raise ValueError("length-delimited field runs past the end of its message")
            yield field, wire, (pos, pos + length)
            pos += length
        elif wire == 1:
            if pos + 8 > end:
                raise ValueError("truncated fixed64")
            yield field, wire, pos
            pos += 8
        elif wire == 5:
            if pos + 4 > end:
                raise ValueError("truncated fixed32")
            yield field, wire, pos
            pos += 4
        else:  # groups (3, 4) are not used by these messages
            raise ValueError(f"unsupported wire type {wire}")


def _signed64(value: int) -> int:
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value >> 63 else value


def _parse_list(view: memoryview, kind: int, start: int, end: int, copy: bool, out: list[Any]) -> None:
    """Append the values of a BytesList (1), FloatList (2) or Int64List (3) message to ``out``."""
    for field, wire, value in _fields(view, start, end):
        if field != 1:
            continue  # unknown field: skipped, as protobuf does
        if kind == 1:
            if wire != 2:
                raise ValueError("BytesList.value must be length-delimited")
            b, e = value
            out.append(bytes(view[b:e]) if copy else view[b:e])
        elif kind == 2:
            if wire == 5:  # unpacked float
                out.append(struct.unpack_from("<f", view, value)[0])
            elif wire == 2:  # packed floats
                b, e = value
                if (e - b) % 4:
                    raise ValueError("packed FloatList length is not a multiple of 4")
                out.extend(np.frombuffer(view[b:e], dtype="<f4").tolist())
            else:
                raise ValueError(f"FloatList.value has wire type {wire}")
        else:
            if wire == 0:  # unpacked int64
                out.append(_signed64(value))
            elif wire == 2:  # packed varints
                pos, e = value
                while pos < e:
                    v, pos = _read_varint(view, pos, e)
                    out.append(_signed64(v))
            else:
                raise ValueError(f"Int64List.value has wire type {wire}")


def _parse_feature(view: memoryview, start: int, end: int, copy: bool) -> list[Any]:
    values: list[Any] = []
    kind = 0
    for field, wire, value in _fields(view, start, end):
        if field not in (1, 2, 3):
            continue
        if wire != 2:
            raise ValueError(f"Feature field {field} must be length-delimited")
        if field != kind:  # oneof: a later member replaces an earlier one
            values = []
            kind = field
        _parse_list(view, kind, value[0], value[1], copy, values)
    return values


def parse_example(record: Any, *, copy: bool = True) -> dict[str, FeatureValues]:
    """Decode a serialized ``tf.train.Example`` into ``{feature name: values}``.

    A minimal protobuf decoder for ``Example{features: Features{feature:
    map<string, Feature>}}`` with ``Feature`` one of ``bytes_list``
    (field 1), ``float_list`` (2) or ``int64_list`` (3), each a message with
    ``repeated value = 1``.  Packed and unpacked repeated numbers are both
    accepted, int64 values are signed (two's complement varints), unknown
    fields are skipped, and repeated messages merge as protobuf merges them
    (later map entries replace earlier ones with the same key).

    Args:
        record: the serialized message (bytes-like), e.g. a record from
            :func:`iter_tfrecord`.
        copy: return ``bytes`` values as :class:`bytes` (the default) or as
            zero-copy :class:`memoryview` slices of ``record``.

    Returns:
        For each feature, a list of ``bytes`` (or memoryviews), ``int`` or
        ``float`` (float32 values widened to Python floats); an empty list for
        a feature with no kind set.  For DLIO / objio records:
        ``{"image": [<dim1*dim2 bytes>], "size": [dim1]}``.

    Raises:
        ValueError: the bytes are not a well-formed protobuf of this shape.
    """
    view = _byte_view(record)
    out: dict[str, FeatureValues] = {}
    try:
        for field, wire, value in _fields(view, 0, len(view)):
            if field != 1:
                continue
            if wire != 2:
                raise ValueError("Example.features must be length-delimited")
            for f_field, f_wire, entry in _fields(view, *value):
                if f_field != 1:
                    continue
                if f_wire != 2:
                    raise ValueError("Features.feature entries must be length-delimited")
                key = ""
                values: list[Any] = []
                for e_field, e_wire, e_value in _fields(view, *entry):
                    if e_wire != 2 or e_field not in (1, 2):
                        continue
                    if e_field == 1:
                        try:
                            key = bytes(view[e_value[0] : e_value[1]]).decode("utf-8")
                        except UnicodeDecodeError as exc:
                            raise ValueError("feature name is not UTF-8") from exc
                    else:
                        values = _parse_feature(view, e_value[0], e_value[1], copy)
                out[key] = values
    except ValueError as exc:
        raise ValueError(f"not a serialized tf.train.Example: {exc}") from None
    return out


def read_tfrecord(uri: Any, client: Any = None, *, verify: bool = True) -> list[dict[str, FeatureValues]]:
    """Download a TFRecord object and parse every record as a ``tf.train.Example``.

    Args:
        uri: the object (``s3://bucket/key``, a local path, ``file://...``).
        client: an :class:`objio.Client`; ``None`` for the process default.
        verify: check the CRCs (see :func:`iter_tfrecord`).

    Returns:
        One dict per record, in file order (see :func:`parse_example`).

    Raises:
        FileNotFoundError: from the store: no such object or bucket.
        PermissionError: from the store: access denied.
        ValueError: a corrupt record (the message names ``uri`` and the offset).
    """
    data = _fetch(uri, client)
    try:
        return read_tfrecord_bytes(data, verify=verify)
    except ValueError as exc:
        raise ValueError(f"{uri}: {exc}") from None


def read_tfrecord_bytes(data: Any, *, verify: bool = True) -> list[dict[str, FeatureValues]]:
    """Every record of a TFRecord file parsed as a ``tf.train.Example`` (see :func:`parse_example`).

    Raises:
        ValueError: a corrupt record, naming its byte offset.
    """
    return [parse_example(record) for record in iter_tfrecord(data, verify=verify)]


def _build(dims: tuple[int, int], samples: int, seed: int, index: int, options: FileOptions) -> bytes:
    return tfrecord_file(dims, samples, seed=seed, index=index)


def _expected_size(dims: tuple[int, int], samples: int, options: FileOptions) -> tuple[int, bool]:
    return _tfrecord_file_size(dims[0], samples, dims[1]), True


FORMAT = FileFormat("tfrecord", build=_build, expected_size=_expected_size,
                    read=read_tfrecord_bytes, index=tfrecord_index, sized=generate_tfrecord)
