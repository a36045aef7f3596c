"""Readers for the files :mod:`objio.datagen` writes (and DLIO, TensorFlow, numpy, h5py write).

The other direction of :mod:`objio.datagen`, for tests, tools and the PyTorch
transforms: every function takes the bytes of one file (``bytes``,
``bytearray``, ``memoryview`` or any buffer; what :meth:`objio.Client.get`
returns) and decodes it in memory.  Nothing is written to disk.

* TFRecord: :func:`iter_tfrecord` walks the framing of TensorFlow's
  ``TFRecordWriter`` (``tensorflow/core/lib/io/record_writer.cc``): per
  record a ``uint64`` little-endian data length, the ``uint32`` masked
  CRC32C of those 8 bytes, the data, the ``uint32`` masked CRC32C of the
  data, ``masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8 (mod 2**32)``.
  :func:`parse_example` decodes a serialized ``tf.train.Example``
  (``tensorflow/core/example/{example,feature}.proto``) without TensorFlow or
  protobuf.  :func:`read_tfrecord` does both for an object.
* NPZ: :func:`read_npz_bytes` (``numpy.load``).
* HDF5: :func:`read_hdf5` (h5py on an in-memory file object).
* JPEG / PNG: :func:`decode_image` (Pillow), as DLIO's ``reader/image_reader.py``.
* Parquet: :func:`read_parquet_bytes` (pyarrow).

Errors: a malformed file raises :class:`ValueError` whose message says what
is wrong and where (the byte offset for TFRecord).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from typing import Any

import google_crc32c
import numpy as np

__all__ = [
    "decode_image",
    "iter_tfrecord",
    "parse_example",
    "read_hdf5",
    "read_npz_bytes",
    "read_parquet_bytes",
    "read_tfrecord",
]

_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")

FeatureValues = list[bytes] | list[int] | list[float] | list[memoryview]


def _masked_crc32c(view: memoryview) -> int:
    # google_crc32c only takes read-only buffers; a read-only numpy view of
    # the memory is one, without a copy.
    array = np.frombuffer(view, dtype=np.uint8)
    array.flags.writeable = False
    crc = int(google_crc32c.value(array))
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _byte_view(data: Any) -> memoryview:
    try:
        view = memoryview(data)
    except TypeError:
        raise ValueError(f"expected a bytes-like object, got {type(data).__name__}") from None
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    return view


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


# --------------------------------------------------------------------------
# protobuf: tf.train.Example
# --------------------------------------------------------------------------


def _varint(view: memoryview, pos: int, end: int) -> tuple[int, int]:
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
        tag, pos = _varint(view, pos, end)
        field, wire = tag >> 3, tag & 7
        if field == 0:
            raise ValueError("field number 0")
        if wire == 0:
            value, pos = _varint(view, pos, end)
            yield field, wire, value
        elif wire == 2:
            length, pos = _varint(view, pos, end)
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
                    v, pos = _varint(view, pos, e)
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
        FileNotFoundError, PermissionError: from the store.
        ValueError: a corrupt record (the message names ``uri`` and the offset).
    """
    if client is None:
        from .api import default_client

        client = default_client()
    data = client.get(uri)
    try:
        return [parse_example(record) for record in iter_tfrecord(data, verify=verify)]
    except ValueError as exc:
        raise ValueError(f"{uri}: {exc}") from None


# --------------------------------------------------------------------------
# NPZ, HDF5, images, Parquet
# --------------------------------------------------------------------------


def _file_object(data: Any) -> io.BytesIO:
    # BytesIO shares the buffer of a bytes object until written to; other
    # bytes-like objects are copied once.
    return io.BytesIO(data if isinstance(data, bytes) else bytes(_byte_view(data)))


def read_npz_bytes(data: Any, array_name: str | None = None) -> Any:
    """The arrays of an ``.npz`` file, loaded with :func:`numpy.load` (no pickles).

    Args:
        data: the bytes of the file.
        array_name: one array to return; ``None`` for all of them.

    Returns:
        The array ``array_name`` (:class:`numpy.ndarray`), or a dict
        ``{name: array}`` of every array (for DLIO / objio files ``x``:
        ``uint8`` ``(dim1, dim2, samples)`` and ``y``: ``int64`` ``(samples,)``).

    Raises:
        ValueError: not an NPZ file, or no array ``array_name`` (the message
            lists the arrays).
    """
    head = bytes(_byte_view(data)[:6])
    if head.startswith(b"\x93NUMPY"):
        raise ValueError("not an NPZ file: the data is a single .npy array, not an NPZ archive")
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise ValueError(f"not an NPZ file: it does not start with a ZIP header (starts with {head!r})")
    try:
        with np.load(_file_object(data), allow_pickle=False) as npz:
            names = list(npz.files)
            if array_name is None:
                return {name: npz[name] for name in names}
            if array_name not in names:
                raise ValueError(f"array_name {array_name!r} is not in the archive; arrays: {', '.join(names)}")
            return npz[array_name]
    except (OSError, EOFError) as exc:
        raise ValueError(f"not an NPZ file: {exc}") from exc


def read_hdf5(data_or_uri: Any, dataset: str | None = None, *, client: Any = None) -> Any:
    """Datasets of an HDF5 file, read with h5py from memory (no temporary file).

    Args:
        data_or_uri: the bytes of the file, or the URI of an object (a
            ``str`` / path / :class:`objio.ObjectURI`) to download with
            ``client`` (the process default if ``None``).
        dataset: the path of one dataset (``"records"``); ``None`` for all.

    Returns:
        The dataset as a :class:`numpy.ndarray`, or ``{path: array}`` for every
        dataset in the file (for DLIO / objio files ``records`` and
        ``records_0``, one hard-linked dataset returned as one array under both
        names, ``uint8`` ``(samples, dim1, dim2)``; ``labels`` ``int64``
        ``(samples,)``).

    Raises:
        ImportError: h5py (extra ``hdf5``) is not installed.
        ValueError: not an HDF5 file, or no dataset ``dataset`` (the message
            lists the datasets).
        FileNotFoundError, PermissionError: downloading ``data_or_uri``.
    """
    try:
        import h5py
    except ImportError as exc:
        raise ImportError("read_hdf5 needs h5py: pip install 'objio[hdf5]'") from exc
    if isinstance(data_or_uri, (bytes, bytearray, memoryview)):
        data = data_or_uri
    else:
        if client is None:
            from .api import default_client

            client = default_client()
        data = client.get(data_or_uri)
    try:
        f = h5py.File(_file_object(data), "r")
    except OSError as exc:
        raise ValueError(f"not an HDF5 file: {exc}") from exc
    with f:
        paths: list[str] = []

        def walk(group: Any, base: str) -> None:
            for name in group:
                path = f"{base}{name}"
                item = group.get(name)
                if isinstance(item, h5py.Group):
                    walk(item, path + "/")
                elif isinstance(item, h5py.Dataset):
                    paths.append(path)

        walk(f, "")
        if dataset is not None:
            if dataset.lstrip("/") not in paths:
                raise ValueError(f"dataset {dataset!r} is not in the file; datasets: {', '.join(paths)}")
            return f[dataset][()]
        arrays: dict[str, Any] = {}
        seen: list[tuple[Any, Any]] = []  # (object id, array): hard links read once
        for path in paths:
            obj = f[path]
            for oid, array in seen:
                if oid == obj.id:
                    arrays[path] = array
                    break
            else:
                arrays[path] = obj[()]
                seen.append((obj.id, arrays[path]))
        return arrays


def decode_image(data: Any) -> Any:
    """Decode a JPEG / PNG (any format Pillow reads) into a :class:`numpy.ndarray`.

    As DLIO's ``reader/image_reader.py``: ``np.asarray(Image.open(f))``.  For
    objio / DLIO files: ``uint8`` of shape ``(dim1, dim2)`` (grayscale).

    Raises:
        ImportError: Pillow is not installed.
        ValueError: the bytes are not an image Pillow can decode.
    """
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as exc:
        raise ImportError("decode_image needs Pillow: pip install pillow") from exc
    try:
        with Image.open(_file_object(data)) as image:
            image.load()
            return np.asarray(image)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"not a decodable image: {exc}") from exc


def read_parquet_bytes(data: Any, columns: list[str] | None = None) -> Any:
    """A Parquet file as a :class:`pyarrow.Table` (optionally only ``columns``).

    Zero-copy: the table's buffers point into ``data`` where pyarrow allows.

    Raises:
        ImportError: pyarrow (extra ``parquet``) is not installed.
        ValueError: not a Parquet file.
    """
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError("read_parquet_bytes needs pyarrow: pip install 'objio[parquet]'") from exc
    try:
        return pq.read_table(pa.BufferReader(pa.py_buffer(_byte_view(data))), columns=columns)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValueError(f"not a Parquet file: {exc}") from exc
