"""Synthetic training-data objects in the layouts DLIO reads.

DLIO (``argonne-lcf/dlio_benchmark``, the storage benchmark behind MLPerf
Storage) generates its datasets with the modules
``dlio_benchmark/data_generator/{npz,tf,hdf5}_generator.py`` and reads them
back with ``dlio_benchmark/reader/{npz,tf,hdf5}_reader.py``.  The functions
here produce the *bytes of one file* in the same layouts (array / dataset /
feature names, shapes, dtypes), without writing anything to disk, so the
result can be uploaded straight to an object store.

Every function is deterministic in ``(seed, index)``: the same pair always
gives the same bytes, and two different pairs give different random payloads,
so a storage system can neither deduplicate nor compress the generated files.
The payload is the raw output of :class:`numpy.random.SFC64` seeded through
:class:`numpy.random.SeedSequence`, both of which numpy keeps stable, so it is
the same on every platform and numpy version; the container around it (npy
header text, HDF5 metadata, DEFLATE output) is the same for a given numpy /
HDF5 / zlib version.  No timestamps or other run-dependent data go into any
file.  Each object type draws from its own random stream, so e.g. the RAW and
NPZ objects with the same ``(seed, index)`` do not share payload bytes either.

Sizes
-----
``size`` is the requested size of the *whole file* in bytes.

* ``RAW`` files are exactly ``size`` bytes.
* ``NPZ``, ``TFRECORD`` and ``HDF5`` files hold ``samples`` square ``uint8``
  images of ``dim x dim`` bytes (DLIO's ``dimension = int(sqrt(record_length))``).
  ``dim`` is the largest value for which the whole file, headers included,
  fits in ``size`` bytes, so the file is at most ``size`` bytes and smaller
  only by the rounding of ``dim`` (less than ``2 * dim * samples`` bytes).
  ``dim`` is never below 1: when ``size`` is smaller than the format's own
  overhead (about 460 bytes for NPZ, 48 bytes per record for TFRecord,
  about 2 KiB for HDF5) the file is a valid file with ``dim = 1`` and is
  *larger* than ``size``.  ``NPZ`` with ``compress=True`` is sized as
  if uncompressed (random data does not compress; DEFLATE adds a few bytes).

Datasets (``objio gen``)
------------------------
:func:`dataset_file` and the per-format ``*_file`` functions (:func:`npz_file`,
:func:`tfrecord_file`, :func:`hdf5_file`, :func:`jpeg_file`,
:func:`png_file`, :func:`parquet_file`) size files the way DLIO does, by the
bytes of one *sample* (``record_length_bytes``): a sample is a ``dim1 x dim2``
``uint8`` image with ``dim1 = dim2 = int(sqrt(record_size))``, or a per-file
shape drawn from ``record_size_stdev`` (:func:`record_dims`).  The formats
are :data:`FORMATS`; JPEG needs Pillow, Parquet pyarrow (extra ``parquet``),
HDF5 h5py (extra ``hdf5``).  :mod:`objio.formats` reads all of them back.
"""

from __future__ import annotations

import io
import itertools
import math
import os
import struct
import zipfile
import zlib
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import google_crc32c
import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_PARQUET_COLUMNS",
    "FORMATS",
    "JPEG_QUALITY",
    "OBJECT_TYPES",
    "PARQUET_DTYPES",
    "build_file",
    "dataset_file",
    "expected_file_size",
    "generate",
    "generate_hdf5",
    "generate_npz",
    "generate_tfrecord",
    "hdf5_file",
    "jpeg_file",
    "normalize_format",
    "normalize_object_type",
    "normalize_parquet_columns",
    "npz_file",
    "parquet_file",
    "parquet_row_size",
    "png_file",
    "random_bytes",
    "record_dims",
    "record_dims_many",
    "record_sizes_many",
    "tfrecord_file",
    "tfrecord_index",
]

OBJECT_TYPES: tuple[str, ...] = ("NPZ", "TFRECORD", "HDF5", "RAW")

# One random stream per object type, mixed into the seed (see _bit_generator).
_STREAM_RAW = 0
_STREAM_NPZ = 1
_STREAM_TFRECORD = 2
_STREAM_HDF5 = 3

_U64_LIMIT = 1 << 64
# Labels are int64 zeros, as DLIO's [0] * samples becomes; little-endian on
# every platform.
_LABEL_DTYPE = np.dtype("<i8")
# Random data is produced in chunks of this many bytes: large enough to
# amortise the per-call cost, small enough to stay in cache while copied.
_CHUNK = 1 << 20

_HDF5_IMPORT_ERROR = "object_type='HDF5' needs h5py: pip install 'objio[hdf5]'"


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------


def normalize_object_type(object_type: str) -> str:
    """Return the canonical (upper-case) name of an object type.

    Args:
        object_type: one of ``NPZ``, ``TFRECORD``, ``HDF5``, ``RAW`` in any
            letter case (``"npz"``, ``"Npz"``, ``"TFRecord"``, ...).

    Returns:
        The matching entry of :data:`OBJECT_TYPES`.

    Raises:
        ValueError: if ``object_type`` is not a string or names no known type;
            the message lists the allowed values.
    """
    if isinstance(object_type, str):
        upper = object_type.upper()
        if upper in OBJECT_TYPES:
            return upper
    raise ValueError(
        f"object_type must be one of {', '.join(OBJECT_TYPES)} (case-insensitive), got {object_type!r}"
    )


def _check_int(name: str, value: object, minimum: int, *, u64: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if u64 and value >= _U64_LIMIT:
        raise ValueError(f"{name} must be < 2**64, got {value}")
    return value


def _check_common(size: object, seed: object, index: object) -> tuple[int, int, int]:
    return (
        _check_int("size", size, 0),
        _check_int("seed", seed, 0, u64=True),
        _check_int("index", index, 0, u64=True),
    )


# --------------------------------------------------------------------------
# random data
# --------------------------------------------------------------------------


def _bit_generator(seed: int, index: int, stream: int) -> np.random.SFC64:
    # A fixed-length entropy vector: SeedSequence([seed, index]) would make
    # (seed=2**32, index=0) and (seed=0, index=1) collide, because
    # SeedSequence splits big ints into 32-bit words and ignores trailing
    # zero words.  Five 32-bit words per (seed, index, stream) are unambiguous.
    mask = 0xFFFFFFFF
    entropy = [seed & mask, seed >> 32, index & mask, index >> 32, stream]
    return np.random.SFC64(np.random.SeedSequence(entropy))


def _fill_random(out: npt.NDArray[np.uint8], bitgen: np.random.SFC64) -> None:
    """Fill the 1-D uint8 array *out* with the raw output of *bitgen*.

    The byte stream depends only on the generator state, not on the chunking:
    it is the little-endian bytes of successive ``random_raw()`` words.
    """
    n = out.shape[0]
    full = n - n % _CHUNK
    words = _CHUNK // 8
    for off in range(0, full, _CHUNK):
        out[off : off + _CHUNK] = bitgen.random_raw(words).astype("<u8", copy=False).view(np.uint8)
    rest = n - full
    if rest:
        raw = bitgen.random_raw((rest + 7) // 8).astype("<u8", copy=False)
        out[full:] = raw.view(np.uint8)[:rest]


def _random_array(n: int, seed: int, index: int, stream: int) -> npt.NDArray[np.uint8]:
    out = np.empty(n, dtype=np.uint8)
    _fill_random(out, _bit_generator(seed, index, stream))
    return out


def random_bytes(size: int, *, seed: int = 0, index: int = 0) -> bytearray:
    """Return ``size`` pseudo-random bytes, determined by ``(seed, index)``.

    The bytes are the raw 64-bit output of :class:`numpy.random.SFC64`
    seeded (through :class:`numpy.random.SeedSequence`) from ``seed`` and
    ``index``, written little-endian, so the result is identical on every
    platform and numpy version; different ``(seed, index)`` pairs give
    independent streams.  The data is incompressible and never repeats
    between files.  Generation runs in numpy, in 1 MiB chunks written
    straight into the result, at about 3 GB/s per core; for large sizes the
    kernel's cost of providing fresh memory pages can dominate.

    Args:
        size: number of bytes, ``>= 0``.
        seed: dataset seed, ``0 <= seed < 2**64``.
        index: file number within the dataset, ``0 <= index < 2**64``.

    Returns:
        A new :class:`bytearray` of exactly ``size`` bytes (the RAW object).

    Raises:
        ValueError: if ``size``, ``seed`` or ``index`` is not an int in range
            (the message names the argument).
    """
    size, seed, index = _check_common(size, seed, index)
    buf = bytearray(size)
    if size:
        _fill_random(np.frombuffer(buf, dtype=np.uint8), _bit_generator(seed, index, _STREAM_RAW))
    return buf


def _best_dim(size: int, samples: int, file_size: Callable[[int], int]) -> int:
    """Largest ``dim >= 1`` with ``file_size(dim) <= size`` (1 if none)."""
    dim = max(1, math.isqrt(size // samples))
    while dim > 1 and file_size(dim) > size:
        # Shrink by the estimated excess first, then step down one at a time.
        excess = file_size(dim) - size
        dim = max(1, min(dim - 1, math.isqrt(max(0, dim * dim - excess // samples))))
    return dim


# --------------------------------------------------------------------------
# NPZ
# --------------------------------------------------------------------------


_ZIP_DOS_TIME = 0  # 00:00:00
_ZIP_DOS_DATE = (1 << 5) | 1  # 1980-01-01, the earliest DOS date (zipfile's default)
_ZIP32_LIMIT = 0xFFFFFFFF
_LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")  # 30 bytes + name
_CENTRAL_HEADER = struct.Struct("<IHHHHHHIIIHHHHHII")  # 46 bytes + name
_END_OF_CENTRAL_DIR = struct.Struct("<IHHHHIIH")  # 22 bytes


def _npy_header(dtype: np.dtype[Any], shape: tuple[int, ...]) -> bytes:
    """The ``.npy`` (format 1.0) header numpy writes for a C-order array."""
    out = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(out, header)
    return out.getvalue()


def _npz_members(
    records: npt.NDArray[np.uint8], labels: npt.NDArray[Any]
) -> list[tuple[str, bytes, npt.NDArray[Any]]]:
    return [
        ("x.npy", _npy_header(records.dtype, records.shape), records),
        ("y.npy", _npy_header(labels.dtype, labels.shape), labels),
    ]


def _npz_file_size(dim: int, samples: int, dim2: int | None = None) -> int:
    """Exact size of the uncompressed NPZ file :func:`_npz_stored` writes
    for ``x`` of shape ``(dim, dim2, samples)`` (``dim2`` defaults to ``dim``)."""
    dim2 = dim if dim2 is None else dim2
    total = _END_OF_CENTRAL_DIR.size
    for name, shape, nbytes in (
        ("x.npy", (dim, dim2, samples), dim * dim2 * samples),
        ("y.npy", (samples,), samples * _LABEL_DTYPE.itemsize),
    ):
        dtype = np.dtype(np.uint8) if name == "x.npy" else _LABEL_DTYPE
        total += _LOCAL_HEADER.size + _CENTRAL_HEADER.size + 2 * len(name)
        total += len(_npy_header(dtype, shape)) + nbytes
    return total


def _npz_stored(records: npt.NDArray[np.uint8], labels: npt.NDArray[Any]) -> bytes:
    """An uncompressed (STORED) ZIP of ``x.npy`` and ``y.npy``, as np.savez.

    Written directly rather than through :func:`numpy.savez` because savez
    stamps the current time into the archive (not reproducible) and copies
    the payload several times; here the payload is copied once, into the
    result.  Only for archives below 4 GiB (no ZIP64 records needed).
    """
    parts: list[Any] = []
    central: list[bytes] = []
    offset = 0
    for name, header, array in _npz_members(records, labels):
        name_bytes = name.encode("ascii")
        crc = zlib.crc32(array.data, zlib.crc32(header))
        size = len(header) + array.nbytes
        local = _LOCAL_HEADER.pack(
            0x04034B50, 20, 0, 0, _ZIP_DOS_TIME, _ZIP_DOS_DATE, crc, size, size, len(name_bytes), 0
        )
        central.append(
            _CENTRAL_HEADER.pack(
                0x02014B50,
                (3 << 8) | 20,
                20,
                0,
                0,
                _ZIP_DOS_TIME,
                _ZIP_DOS_DATE,
                crc,
                size,
                size,
                len(name_bytes),
                0,
                0,
                0,
                0,
                0o100644 << 16,
                offset,
            )
            + name_bytes
        )
        parts += (local, name_bytes, header, array)
        offset += len(local) + len(name_bytes) + size
    directory = b"".join(central)
    parts += (directory, _END_OF_CENTRAL_DIR.pack(0x06054B50, 0, 0, 2, 2, len(directory), offset, 0))
    return b"".join(parts)


def _npz_zipfile(records: npt.NDArray[np.uint8], labels: npt.NDArray[Any], compress: bool) -> bytes:
    """The same archive through :mod:`zipfile` (DEFLATE, or ZIP64 sizes)."""
    out = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(out, "w", compression=method, allowZip64=True) as archive:
        for name, header, array in _npz_members(records, labels):
            info = zipfile.ZipInfo(name)  # fixed 1980-01-01 timestamp
            info.create_system = 3  # not platform dependent
            info.external_attr = 0o100644 << 16
            info.compress_type = method
            with archive.open(info, "w", force_zip64=True) as member:
                member.write(header)
                member.write(array.data)
    return out.getvalue()


def generate_npz(
    size: int, *, seed: int = 0, index: int = 0, samples: int = 1, compress: bool = False
) -> bytes:
    """Return one NPZ file (the :func:`numpy.savez` layout) of about ``size`` bytes.

    Layout, as DLIO's ``npz_generator.py`` writes it (``np.savez(path,
    x=records, y=record_labels)``) and ``npz_reader.py`` reads it
    (``np.load(f)['x'][..., sample_index]``): a ZIP archive of two ``.npy``
    (format 1.0, C order) members,

    * ``x.npy``: ``uint8`` array of shape ``(dim, dim, samples)``, random
      bytes (sample ``k`` is ``x[..., k]``);
    * ``y.npy``: ``int64`` (little-endian) array of shape ``(samples,)``,
      all zeros (the labels; DLIO saves the list ``[0] * samples``).

    The archive is uncompressed (ZIP ``STORED``) unless ``compress``, and
    every member carries the fixed timestamp 1980-01-01 00:00, so the bytes
    depend only on the arguments (:func:`numpy.savez` itself stamps the
    current time).  Load it with ``numpy.load(io.BytesIO(data))``.

    ``dim`` is the largest value for which the whole file is at most
    ``size`` bytes (see the module docstring), and at least 1: for ``size``
    below the NPZ overhead (about 460 bytes plus 8 per sample) the file is
    larger than ``size``.  Archives of 4 GiB or more are written through
    :mod:`zipfile` with ZIP64 records, which add a few dozen bytes.

    Args:
        size: requested file size in bytes, ``>= 0``.
        seed: dataset seed, ``0 <= seed < 2**64``.
        index: file number within the dataset, ``0 <= index < 2**64``.
        samples: number of samples (images) in the file, ``>= 1``.
        compress: DEFLATE the members, as :func:`numpy.savez_compressed`
            (DLIO's ``compression: zip``) does.  ``dim`` is still chosen for
            the uncompressed size; random data does not shrink, so the file
            is a little larger than ``size``, and generation is much slower
            (about 50 MB/s).

    Returns:
        The bytes of the ``.npz`` file.

    Raises:
        ValueError: if ``size``, ``seed``, ``index`` or ``samples`` is out of
            range (the message names the argument).
    """
    size, seed, index = _check_common(size, seed, index)
    samples = _check_int("samples", samples, 1)
    dim = _best_dim(size, samples, lambda d: _npz_file_size(d, samples))
    return _npz_build(dim, dim, samples, seed, index, bool(compress))


def _npz_build(dim1: int, dim2: int, samples: int, seed: int, index: int, compress: bool) -> bytes:
    records = _random_array(dim1 * dim2 * samples, seed, index, _STREAM_NPZ).reshape(dim1, dim2, samples)
    labels = np.zeros(samples, dtype=_LABEL_DTYPE)
    if compress or _npz_file_size(dim1, samples, dim2) >= _ZIP32_LIMIT:
        return _npz_zipfile(records, labels, compress)
    return _npz_stored(records, labels)


# --------------------------------------------------------------------------
# TFRecord
# --------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative int."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _len_field(field: int, payload_len: int) -> bytes:
    """Tag and length prefix of a length-delimited (wire type 2) field."""
    return _varint((field << 3) | 2) + _varint(payload_len)


def _masked_crc32c(crc: int) -> int:
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
    packed = _varint(dim)
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
    prefix = len_bytes + struct.pack("<I", _masked_crc32c(google_crc32c.value(len_bytes))) + head
    head_crc = google_crc32c.value(head)
    extend = google_crc32c.extend
    pack_crc = struct.Struct("<I").pack

    parts: list[Any] = []
    for off in range(0, image_len * samples, image_len):
        image = images[off : off + image_len]
        crc = extend(extend(head_crc, image), tail)
        parts += (prefix, image, tail, pack_crc(_masked_crc32c(crc)))
    return b"".join(parts)


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
# HDF5
# --------------------------------------------------------------------------

_hdf5_names = itertools.count()


def _hdf5_bytes(
    records: npt.NDArray[np.uint8],
    samples: int,
    chunks: bool | tuple[int, ...] | None = None,
    compression: str | None = None,
    compression_level: int | None = None,
) -> bytes:
    try:
        import h5py
    except ImportError as exc:
        raise ImportError(_HDF5_IMPORT_ERROR) from exc

    # In-memory file (core driver, no backing store): nothing touches disk.
    # The name only identifies the open file to HDF5, which refuses to open
    # two core files of the same name at once, so make it unique per call.
    name = f"objio-datagen-{os.getpid()}-{next(_hdf5_names)}.h5"
    with h5py.File(name, "w", driver="core", backing_store=False, block_size=1 << 20) as f:
        f.create_dataset(
            "records", data=records, chunks=chunks, compression=compression, compression_opts=compression_level
        )
        # DLIO >= 2025-09 reads records_{i} (hdf5.num_dset_per_record, default
        # 1): a hard link to the same dataset serves both, with no extra data.
        f["records_0"] = f["records"]
        f.create_dataset("labels", data=np.zeros(samples, dtype=_LABEL_DTYPE))
        f.flush()
        image: bytes = f.id.get_file_image()
    return image


@lru_cache(maxsize=256)
def _hdf5_overhead(samples: int) -> int:
    records = np.zeros((samples, 1, 1), dtype=np.uint8)
    return len(_hdf5_bytes(records, samples)) - records.nbytes


def generate_hdf5(size: int, *, seed: int = 0, index: int = 0, samples: int = 1) -> bytes:
    """Return one HDF5 file of about ``size`` bytes, built in memory with h5py.

    Layout, as DLIO's ``hdf5_generator.py`` writes it and ``hdf5_reader.py``
    reads it (``f['records'][sample_index]``):

    * ``records``: ``uint8`` dataset of shape ``(samples, dim, dim)``,
      contiguous, uncompressed, random bytes;
    * ``records_0``: a hard link to ``records`` (the same dataset, no extra
      data), the name DLIO releases since September 2025 read;
    * ``labels``: ``int64`` dataset of shape ``(samples,)``, all zeros.

    The file is built with h5py's ``core`` driver without a backing store and
    returned as its file image: no temporary file is written.  The file is
    bit-for-bit reproducible for a given HDF5 version (h5py does not record
    object times by default).  h5py's default file-format versions are used
    (DLIO's own writer uses the same defaults up to 2025; later versions pass
    ``libver="latest"``).

    ``dim`` is chosen so the whole file is at most ``size`` bytes (see the
    module docstring); it is at least 1, so for ``size`` below the HDF5
    overhead (about 2 KiB plus 8 bytes per sample) the file is larger than
    ``size``.

    Args:
        size: requested file size in bytes, ``>= 0``.
        seed: dataset seed, ``0 <= seed < 2**64``.
        index: file number within the dataset, ``0 <= index < 2**64``.
        samples: number of samples (images) in the file, ``>= 1``.

    Returns:
        The bytes of the ``.h5`` file.

    Raises:
        ImportError: if h5py (the optional ``hdf5`` extra) is not installed.
        ValueError: if ``size``, ``seed``, ``index`` or ``samples`` is out of
            range (the message names the argument).
    """
    size, seed, index = _check_common(size, seed, index)
    samples = _check_int("samples", samples, 1)
    overhead = _hdf5_overhead(samples)
    dim = _best_dim(size, samples, lambda d: d * d * samples + overhead)
    records = _random_array(dim * dim * samples, seed, index, _STREAM_HDF5)
    return _hdf5_bytes(records.reshape(samples, dim, dim), samples)


# --------------------------------------------------------------------------
# dispatch
# --------------------------------------------------------------------------


def generate(
    object_type: str, size: int, *, seed: int = 0, index: int = 0, samples: int = 1
) -> bytes | bytearray:
    """Return the bytes of one synthetic file of the given type.

    Dispatches to :func:`random_bytes` (``RAW``, exactly ``size`` bytes),
    :func:`generate_npz` (``NPZ``, uncompressed), :func:`generate_tfrecord`
    (``TFRECORD``) or :func:`generate_hdf5` (``HDF5``); see those for the
    layouts.  Formatted files are at most ``size`` bytes when ``size`` covers
    the format's overhead, and otherwise the smallest valid file (``dim = 1``),
    so e.g. ``generate("npz", 1024)`` works.

    Args:
        object_type: ``NPZ``, ``TFRECORD``, ``HDF5`` or ``RAW``, any case.
        size: requested file size in bytes, ``>= 0``.
        seed: dataset seed, ``0 <= seed < 2**64``.
        index: file number within the dataset, ``0 <= index < 2**64``.
        samples: samples (images / records) per file for ``NPZ``,
            ``TFRECORD`` and ``HDF5``, ``>= 1``; ignored for ``RAW``.

    Returns:
        ``bytearray`` for ``RAW``, ``bytes`` otherwise.

    Raises:
        ValueError: unknown ``object_type`` (the message lists the allowed
            values), or ``size``, ``seed``, ``index`` or ``samples`` out of
            range (the message names the argument).
        ImportError: ``HDF5`` without h5py installed.
    """
    kind = normalize_object_type(object_type)
    size, seed, index = _check_common(size, seed, index)
    samples = _check_int("samples", samples, 1)
    if kind == "RAW":
        return random_bytes(size, seed=seed, index=index)
    if kind == "NPZ":
        return generate_npz(size, seed=seed, index=index, samples=samples)
    if kind == "TFRECORD":
        return generate_tfrecord(size, seed=seed, index=index, samples=samples)
    return generate_hdf5(size, seed=seed, index=index, samples=samples)


# ==========================================================================
# DLIO datasets: per-sample record sizes and the files of a dataset
# ==========================================================================
#
# ``objio gen`` (see :mod:`objio.gen`) sizes files as DLIO does: by the size
# of one *sample* (``record_length_bytes``), not of the whole file.  The
# functions below take the sample shape ``(dim1, dim2)`` and the number of
# samples per file and return the bytes of one file.

FORMATS: tuple[str, ...] = ("npz", "tfrecord", "hdf5", "jpeg", "png", "parquet", "raw")
"""Formats of :func:`dataset_file` and ``objio gen``; each is also the file extension."""

_STREAM_DIMS = 4
_STREAM_JPEG = 5
_STREAM_PNG = 6
_PNG_MAX_SIDE = (1 << 31) - 1  # PNG spec: width and height are 31-bit
_STREAM_PARQUET = 7

JPEG_QUALITY = 75
"""JPEG quality used unless told otherwise (Pillow's default, which DLIO's jpeg_generator uses)."""

_PARQUET_IMPORT_ERROR = "format 'parquet' needs pyarrow: pip install 'objio[parquet]'"
_PILLOW_IMPORT_ERROR = "format 'jpeg' needs Pillow: pip install pillow"
# Pillow's JPEG encoder limit (libjpeg: 65500 pixels per side).
_JPEG_MAX_SIDE = 65500

ParquetColumn = tuple[str, str, "int | None"]
"""``(name, dtype, size)`` of one Parquet column, see :func:`parquet_file`."""

DEFAULT_PARQUET_COLUMNS: tuple[ParquetColumn, ...] = (("data", "binary", None), ("label", "int64", 1))
_PARQUET_INT_TYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
_PARQUET_FLOAT_TYPES = ("float32", "float64")
PARQUET_DTYPES: tuple[str, ...] = ("binary", *_PARQUET_INT_TYPES, *_PARQUET_FLOAT_TYPES)
"""Column types :func:`parquet_file` writes."""


def normalize_format(fmt: str) -> str:
    """Return the canonical (lower-case) name of a dataset format.

    Args:
        fmt: one of :data:`FORMATS` (``npz``, ``tfrecord``, ``hdf5``,
            ``jpeg``, ``png``, ``parquet``, ``raw``) in any letter case.

    Raises:
        ValueError: unknown format; the message lists the formats.
    """
    if isinstance(fmt, str) and fmt.lower() in FORMATS:
        return fmt.lower()
    raise ValueError(f"format must be one of {', '.join(FORMATS)} (case-insensitive), got {fmt!r}")


def _check_stdev(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"record_size_stdev must be a number of bytes >= 0, got {value!r}")
    stdev = float(value)
    if not math.isfinite(stdev) or stdev < 0:
        raise ValueError(f"record_size_stdev must be a number of bytes >= 0, got {value!r}")
    return stdev


def _normal_pairs(seed: int, start: int, count: int) -> list[tuple[float, float]]:
    """Two standard normal variates per file ``start .. start+count-1``.

    The variates of file ``i`` come from words ``2i`` and ``2i+1`` of one
    PCG64 stream per dataset (seeded from ``seed`` through SeedSequence;
    :meth:`PCG64.advance` jumps to file ``start``), by the Box-Muller
    transform in Python floats: they depend only on ``(seed, i)``, not on
    which files are asked for together.
    """
    mask = 0xFFFFFFFF
    bitgen = np.random.PCG64(np.random.SeedSequence([seed & mask, seed >> 32, 0, 0, _STREAM_DIMS]))
    if start:
        bitgen.advance(2 * start)
    words = bitgen.random_raw(2 * count).tolist()
    out = []
    two_pi = 2.0 * math.pi
    for k in range(count):
        u1 = ((words[2 * k] >> 11) + 1) * 2.0**-53  # (0, 1]
        u2 = (words[2 * k + 1] >> 11) * 2.0**-53  # [0, 1)
        r = math.sqrt(-2.0 * math.log(u1))
        out.append((r * math.cos(two_pi * u2), r * math.sin(two_pi * u2)))
    return out


def record_dims_many(
    record_size: int, record_size_stdev: float = 0, *, seed: int = 0, start: int = 0, count: int = 1
) -> list[tuple[int, int]]:
    """Sample shapes ``(dim1, dim2)`` of files ``start .. start+count-1``; see :func:`record_dims`."""
    record_size = _check_int("record_size", record_size, 1)
    stdev = _check_stdev(record_size_stdev)
    seed = _check_int("seed", seed, 0, u64=True)
    start = _check_int("start", start, 0, u64=True)
    count = _check_int("count", count, 0)
    dim = math.isqrt(record_size)
    if stdev == 0:
        return [(dim, dim)] * count
    # DLIO utils/config.py: dimension_stdev = record_length_stdev / 2 / sqrt(record_length)
    scale = stdev / 2.0 / math.sqrt(record_size)
    return [
        (max(int(dim + scale * z1), 1), max(int(dim + scale * z2), 1))
        for z1, z2 in _normal_pairs(seed, start, count)
    ]


def record_dims(record_size: int, record_size_stdev: float = 0, *, seed: int = 0, index: int = 0) -> tuple[int, int]:
    """The sample shape ``(dim1, dim2)`` of file ``index``, as DLIO derives it.

    DLIO (``dlio_benchmark/utils/config.py``, ``derive_configurations``)
    sets ``dimension = int(sqrt(record_length))`` and ``dimension_stdev =
    record_length_stdev / 2 / sqrt(record_length)``;
    ``data_generator/data_generator.py`` (``get_dimension``) then draws two
    values per file from ``normal(dimension, dimension_stdev)`` and takes
    ``max(int(d), 1)`` of each: ``dim1`` (rows) and ``dim2`` (columns).
    Without a stdev both are ``dimension`` (a square image of at most
    ``record_size`` bytes).  Here the normal variates are determined by
    ``(seed, index)`` alone (see :func:`record_dims_many`), not by a global
    RNG state, so any file can be regenerated on its own.

    Args:
        record_size: bytes per sample (DLIO's ``record_length_bytes``), ``>= 1``.
        record_size_stdev: standard deviation of the sample size in bytes
            (``record_length_bytes_stdev``), ``>= 0``.
        seed: dataset seed, ``0 <= seed < 2**64``.
        index: file number within the dataset, ``0 <= index < 2**64``.

    Returns:
        ``(dim1, dim2)``, each ``>= 1``; a sample is ``dim1 * dim2`` bytes.

    Raises:
        ValueError: an argument out of range (the message names it).
    """
    index = _check_int("index", index, 0, u64=True)
    return record_dims_many(record_size, record_size_stdev, seed=seed, start=index, count=1)[0]


def record_sizes_many(
    record_size: int, record_size_stdev: float = 0, *, seed: int = 0, start: int = 0, count: int = 1
) -> list[int]:
    """Bytes per sample of files ``start .. start+count-1`` for ``raw`` and ``parquet``.

    These formats have no image shape: a file's sample size is
    ``max(int(normal(record_size, record_size_stdev)), 1)`` (the first of
    the two variates :func:`record_dims` uses), or ``record_size`` without a
    stdev.
    """
    record_size = _check_int("record_size", record_size, 1)
    stdev = _check_stdev(record_size_stdev)
    seed = _check_int("seed", seed, 0, u64=True)
    start = _check_int("start", start, 0, u64=True)
    count = _check_int("count", count, 0)
    if stdev == 0:
        return [record_size] * count
    return [max(int(record_size + stdev * z1), 1) for z1, _ in _normal_pairs(seed, start, count)]


def _check_dims(dims: object) -> tuple[int, int]:
    if not isinstance(dims, (tuple, list)) or len(dims) != 2:
        raise ValueError(f"dims must be a pair (dim1, dim2) of ints >= 1, got {dims!r}")
    return _check_int("dims[0]", dims[0], 1), _check_int("dims[1]", dims[1], 1)


def npz_file(
    dims: tuple[int, int], samples: int = 1, *, seed: int = 0, index: int = 0, compress: bool = False
) -> bytes:
    """One NPZ file of ``samples`` samples of shape ``dims``.

    The layout of :func:`generate_npz` (DLIO ``data_generator/npz_generator.py``,
    read by ``reader/npz_reader.py`` as ``np.load(f)['x'][..., i]``) with
    ``x`` of shape ``(dim1, dim2, samples)`` ``uint8`` and ``y`` ``int64``
    zeros of shape ``(samples,)``.  The file size is exactly
    ``dim1 * dim2 * samples`` plus about 460 + 8 * ``samples`` bytes
    (uncompressed).  ``compress`` DEFLATEs the members like
    :func:`numpy.savez_compressed` (DLIO ``compression: zip``).  For the
    same ``(seed, index)`` and a square shape the bytes equal those of
    :func:`generate_npz` when it picks the same ``dim``.

    Raises:
        ValueError: ``dims``, ``samples``, ``seed`` or ``index`` out of range.
    """
    dim1, dim2 = _check_dims(dims)
    samples = _check_int("samples", samples, 1)
    _, seed, index = _check_common(0, seed, index)
    return _npz_build(dim1, dim2, samples, seed, index, bool(compress))


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


def hdf5_file(
    dims: tuple[int, int],
    samples: int = 1,
    *,
    seed: int = 0,
    index: int = 0,
    chunks: bool | tuple[int, ...] | None = None,
    compression: str | None = None,
    compression_level: int | None = None,
) -> bytes:
    """One HDF5 file of ``samples`` samples of shape ``dims``, built in memory with h5py.

    The layout of :func:`generate_hdf5` (DLIO ``data_generator/hdf5_generator.py``,
    read by ``reader/hdf5_reader.py``): dataset ``records`` ``uint8``
    ``(samples, dim1, dim2)`` (hard-linked as ``records_0``, the name DLIO
    reads since 2025) and ``labels`` ``int64`` zeros ``(samples,)``.  Like
    DLIO's ``chunk_dims`` / ``compression`` options: ``chunks`` (``True``
    for h5py's automatic chunking, or a chunk shape) and ``compression``
    (``"gzip"`` with ``compression_level`` 0-9, DLIO's default level is 4;
    or ``"lzf"``).  Nothing is written to disk.

    Raises:
        ImportError: h5py (extra ``hdf5``) is not installed.
        ValueError: an argument out of range, or a chunk shape / compression
            h5py rejects.
    """
    dim1, dim2 = _check_dims(dims)
    samples = _check_int("samples", samples, 1)
    _, seed, index = _check_common(0, seed, index)
    if compression is not None and compression not in ("gzip", "lzf"):
        raise ValueError(f"compression must be None, 'gzip' or 'lzf' for hdf5, got {compression!r}")
    if compression == "gzip" and compression_level is None:
        compression_level = 4  # DLIO's compression_level default
    records = _random_array(dim1 * dim2 * samples, seed, index, _STREAM_HDF5).reshape(samples, dim1, dim2)
    try:
        return _hdf5_bytes(records, samples, chunks, compression, compression_level)
    except TypeError as exc:  # h5py: bad chunk shape
        raise ValueError(f"hdf5 chunks {chunks!r} do not fit records of shape {records.shape}: {exc}") from exc


def _pil_image() -> Any:
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError(_PILLOW_IMPORT_ERROR) from exc
    return Image


def jpeg_file(dims: tuple[int, int], *, seed: int = 0, index: int = 0, quality: int = JPEG_QUALITY) -> bytes:
    """One JPEG file: a ``dim1 x dim2`` (rows x columns) 8-bit grayscale image of random pixels.

    As DLIO's ``data_generator/jpeg_generator.py`` writes it: a 2-D
    ``uint8`` array through ``PIL.Image.fromarray`` (mode ``L``,
    grayscale) and ``Image.save(format="JPEG")``, one sample per file; read
    by ``reader/image_reader.py`` as ``np.asarray(Image.open(f))``.
    Encoded by Pillow at ``quality`` (75, Pillow's default, unless given),
    baseline, no EXIF or timestamps, so the bytes are fixed by ``(seed,
    index)`` for a given Pillow / libjpeg.  Random pixels do not compress
    well: the file is about 0.56 bytes per pixel at quality 75.

    Raises:
        ImportError: Pillow is not installed.
        ValueError: an argument out of range, or a side above 65500 pixels
            (the JPEG limit).
    """
    dim1, dim2 = _check_dims(dims)
    _, seed, index = _check_common(0, seed, index)
    quality = _check_int("quality", quality, 1)
    if quality > 100:
        raise ValueError(f"quality must be 1..100, got {quality}")
    if max(dim1, dim2) > _JPEG_MAX_SIDE:
        raise ValueError(
            f"jpeg images are at most {_JPEG_MAX_SIDE} pixels per side, got {dim1} x {dim2} "
            "(use a smaller record size)"
        )
    image_cls = _pil_image()
    pixels = _random_array(dim1 * dim2, seed, index, _STREAM_JPEG).reshape(dim1, dim2)
    out = io.BytesIO()
    image_cls.fromarray(pixels).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def png_file(dims: tuple[int, int], *, seed: int = 0, index: int = 0, compress_level: int = 0) -> bytes:
    """One PNG file: a ``dim1 x dim2`` (rows x columns) 8-bit grayscale image of random pixels.

    The image DLIO's ``data_generator/png_generator.py`` writes: a 2-D ``uint8`` array saved
    by Pillow (``PIL.Image.fromarray``, mode ``L``) as PNG; read by ``reader/image_reader.py``
    with ``Image.open``. Random pixels do not compress, so ``compress_level`` defaults to 0
    (zlib stored blocks), Pillow's fastest setting (about 50 MB/s here; level 6 is ~25 MB/s).

    Raises:
        ImportError: Pillow is not installed.
        ValueError: an argument out of range.
    """
    dim1, dim2 = _check_dims(dims)
    _, seed, index = _check_common(0, seed, index)
    compress_level = _check_int("compress_level", compress_level, 0)
    if compress_level > 9:
        raise ValueError(f"compress_level must be 0..9, got {compress_level}")
    image_cls = _pil_image()
    pixels = _random_array(dim1 * dim2, seed, index, _STREAM_PNG).reshape(dim1, dim2)
    out = io.BytesIO()
    image_cls.fromarray(pixels).save(out, format="PNG", compress_level=compress_level)
    return out.getvalue()


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError(_PARQUET_IMPORT_ERROR) from exc
    return pa, pq


def normalize_parquet_columns(
    columns: Any, record_size: int | None = None
) -> tuple[tuple[str, str, int], ...]:
    """Validate a Parquet column spec and fill in default sizes.

    Args:
        columns: ``None`` for :data:`DEFAULT_PARQUET_COLUMNS`, or a sequence
            of ``(name, dtype, size)``: ``dtype`` one of
            :data:`PARQUET_DTYPES`; for ``binary`` ``size`` is bytes per
            value (``None``: ``record_size``), for numeric types the values
            per row (``None`` or 1: a scalar column, more: a fixed-size list).
        record_size: bytes per sample, for binary columns without a size.

    Returns:
        ``((name, dtype, size), ...)`` with every size an int ``>= 1``.

    Raises:
        ValueError: empty spec, duplicate or empty names, unknown dtype (the
            message lists the types), or a size below 1.
    """
    spec = DEFAULT_PARQUET_COLUMNS if columns is None else columns
    if isinstance(spec, (str, bytes)) or not hasattr(spec, "__iter__"):
        raise ValueError(f"columns must be a sequence of (name, dtype, size), got {columns!r}")
    out: list[tuple[str, str, int]] = []
    for column in spec:
        if not isinstance(column, (tuple, list)) or len(column) not in (2, 3):
            raise ValueError(f"each column must be (name, dtype, size), got {column!r}")
        name, dtype = column[0], column[1]
        size = column[2] if len(column) == 3 else None
        if not isinstance(name, str) or not name:
            raise ValueError(f"column names must be non-empty strings, got {name!r}")
        if dtype not in PARQUET_DTYPES:
            raise ValueError(f"column {name!r}: dtype must be one of {', '.join(PARQUET_DTYPES)}, got {dtype!r}")
        if size is None:
            if dtype == "binary":
                if record_size is None:
                    raise ValueError(f"column {name!r}: binary columns need a size or a record_size")
                size = record_size
            else:
                size = 1
        out.append((name, dtype, _check_int(f"column {name!r} size", size, 1)))
    if not out:
        raise ValueError("columns must name at least one column")
    names = [c[0] for c in out]
    if len(set(names)) != len(names):
        raise ValueError(f"column names must be unique, got {names}")
    return tuple(out)


def parquet_row_size(columns: Any, record_size: int | None = None) -> int:
    """Bytes of payload per row for a column spec (see :func:`normalize_parquet_columns`)."""
    total = 0
    for _, dtype, size in normalize_parquet_columns(columns, record_size):
        total += size if dtype == "binary" else size * np.dtype(dtype).itemsize
    return total


def parquet_file(
    rows: int,
    *,
    record_size: int | None = None,
    columns: Any = None,
    row_group_size: int | None = None,
    seed: int = 0,
    index: int = 0,
    compression: str | None = None,
) -> bytes:
    """One Parquet file of ``rows`` rows of random data, written by pyarrow in memory.

    DLIO itself has no Parquet format; this follows the DLIO layout otherwise
    (one row per sample).  Columns (see :func:`normalize_parquet_columns`):
    by default ``data`` (``binary``, ``record_size`` random bytes per row)
    and ``label`` (``int64``).  Binary columns hold random bytes; integer
    columns random non-negative values (sign bit clear); float columns
    uniform values in ``[0, 1)``; a ``size > 1`` numeric column is a
    ``fixed_size_list`` of ``size`` values.  Written uncompressed unless
    ``compression`` (any pyarrow codec: ``"snappy"``, ``"zstd"``, ...), with
    no dictionary encoding and no statistics for binary columns (random
    values do not repeat), in row groups of ``row_group_size`` rows
    (pyarrow's default, 1Mi rows, if ``None``).  The bytes are fixed by
    ``(seed, index)`` for a given pyarrow version.

    Args:
        rows: rows in the file (samples per file), ``>= 1``.
        record_size: bytes per row of binary columns without a size.
        columns: column spec, ``None`` for the default.
        row_group_size: rows per row group, ``>= 1``, or ``None``.
        seed: dataset seed, ``0 <= seed < 2**64``.
        index: file number within the dataset, ``0 <= index < 2**64``.
        compression: pyarrow compression codec name, or ``None``.

    Returns:
        The bytes of the ``.parquet`` file.

    Raises:
        ImportError: pyarrow (extra ``parquet``) is not installed.
        ValueError: an argument out of range or a bad column spec.
    """
    rows = _check_int("rows", rows, 1)
    _, seed, index = _check_common(0, seed, index)
    spec = normalize_parquet_columns(columns, record_size)
    if row_group_size is not None:
        row_group_size = _check_int("row_group_size", row_group_size, 1)
    pa, pq = _pyarrow()
    bitgen = _bit_generator(seed, index, _STREAM_PARQUET)
    arrays = []
    for _name, dtype, size in spec:
        if dtype == "binary":
            data = np.empty(rows * size, dtype=np.uint8)
            _fill_random(data, bitgen)
            small = rows * size < (1 << 31)
            offsets: npt.NDArray[Any] = np.arange(0, (rows + 1) * size, size, dtype=np.int32 if small else np.int64)
            kind = pa.binary() if small else pa.large_binary()
            arrays.append(pa.Array.from_buffers(kind, rows, [None, pa.py_buffer(offsets), pa.py_buffer(data)]))
            continue
        np_dtype = np.dtype(dtype).newbyteorder("<")
        raw = np.empty(rows * size * np_dtype.itemsize, dtype=np.uint8)
        _fill_random(raw, bitgen)
        if dtype in _PARQUET_FLOAT_TYPES:
            if dtype == "float64":
                values: npt.NDArray[Any] = (raw.view("<u8") >> np.uint64(11)).astype(np.float64) * 2.0**-53
            else:
                values = (raw.view("<u4") >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-24)
        else:
            values = raw.view(np_dtype)
            if np_dtype.kind == "i":
                unsigned = raw.view(np_dtype.str.replace("i", "u"))
                unsigned >>= 1  # clear the sign bit: non-negative values
                values = raw.view(np_dtype)
        flat = pa.array(values.astype(np.dtype(dtype), copy=False))
        arrays.append(flat if size == 1 else pa.FixedSizeListArray.from_arrays(flat, size))
    table = pa.Table.from_arrays(arrays, names=[c[0] for c in spec])
    sink = pa.BufferOutputStream()
    non_binary = [name for name, dtype, _ in spec if dtype != "binary"]
    pq.write_table(
        table,
        sink,
        row_group_size=row_group_size,
        compression=compression or "none",
        use_dictionary=False,
        write_statistics=non_binary if non_binary else False,
    )
    out: bytes = sink.getvalue().to_pybytes()
    return out


# --------------------------------------------------------------------------
# one file of a dataset, and its expected size
# --------------------------------------------------------------------------


def dataset_file(
    fmt: str,
    record_size: int,
    *,
    samples: int = 1,
    seed: int = 0,
    index: int = 0,
    record_size_stdev: float = 0,
    compression: str | None = None,
    compression_level: int | None = None,
    chunks: bool | tuple[int, ...] | None = None,
    quality: int = JPEG_QUALITY,
    columns: Any = None,
    row_group_size: int | None = None,
) -> bytes | bytearray:
    """The bytes of file ``index`` of a DLIO-style dataset.

    Sizes follow DLIO: each sample is a ``dim1 x dim2`` ``uint8`` image with
    the shape from :func:`record_dims` (``int(sqrt(record_size))`` square
    without a stdev); ``raw`` and ``parquet`` use the per-file sample size
    of :func:`record_sizes_many` instead (``record_size`` bytes without a
    stdev).  The layouts:

    * ``npz``: :func:`npz_file` (``compression="zip"`` for savez_compressed);
    * ``tfrecord``: :func:`tfrecord_file` (index: :func:`tfrecord_index`);
    * ``hdf5``: :func:`hdf5_file` (``chunks``, ``compression`` gzip/lzf,
      ``compression_level``);
    * ``jpeg``, ``png``: :func:`jpeg_file` (``quality``), :func:`png_file`
      (``compression_level`` = zlib level); one sample per file, so
      ``samples`` must be 1;
    * ``parquet``: :func:`parquet_file`, ``samples`` rows (``columns``,
      ``row_group_size``, ``compression`` = codec);
    * ``raw``: :func:`random_bytes`, ``samples * size`` bytes.

    Every file is fixed by ``(seed, index)``; distinct indices give distinct
    random payloads.

    Raises:
        ValueError: unknown format (the message lists them), an argument out
            of range, ``samples != 1`` for jpeg/png, or an option the
            format does not take.
        ImportError: h5py (hdf5) or pyarrow (parquet) missing.
    """
    kind = normalize_format(fmt)
    record_size = _check_int("record_size", record_size, 1)
    samples = _check_int("samples", samples, 1)
    _, seed, index = _check_common(0, seed, index)
    _check_options(kind, samples, compression, chunks)
    if kind in ("raw", "parquet"):
        (size,) = record_sizes_many(record_size, record_size_stdev, seed=seed, start=index)
        if kind == "raw":
            return random_bytes(size * samples, seed=seed, index=index)
        return parquet_file(
            samples,
            record_size=size,
            columns=columns,
            row_group_size=row_group_size,
            seed=seed,
            index=index,
            compression=compression,
        )
    dims = record_dims(record_size, record_size_stdev, seed=seed, index=index)
    return build_file(
        kind,
        dims,
        samples,
        seed=seed,
        index=index,
        compression=compression,
        compression_level=compression_level,
        chunks=chunks,
        quality=quality,
    )


def _check_options(kind: str, samples: int, compression: str | None, chunks: object) -> None:
    if kind in ("jpeg", "png") and samples != 1:
        raise ValueError(f"format {kind!r} holds one sample per file: samples must be 1, got {samples}")
    allowed = {"npz": (None, "zip"), "hdf5": (None, "gzip", "lzf"), "raw": (None,), "tfrecord": (None,)}
    if kind in allowed and compression not in allowed[kind]:
        names = ", ".join(repr(c) for c in allowed[kind])
        raise ValueError(f"compression for format {kind!r} must be one of {names}, got {compression!r}")
    if kind in ("jpeg", "png") and compression is not None:
        raise ValueError(f"format {kind!r} takes no compression (use quality / compression_level)")
    if chunks not in (None, False) and kind != "hdf5":
        raise ValueError(f"chunks applies to format 'hdf5' only, not {kind!r}")


def build_file(
    fmt: str,
    dims: tuple[int, int],
    samples: int = 1,
    *,
    seed: int = 0,
    index: int = 0,
    compression: str | None = None,
    compression_level: int | None = None,
    chunks: bool | tuple[int, ...] | None = None,
    quality: int = JPEG_QUALITY,
) -> bytes:
    """One file of an image-shaped format (npz, tfrecord, hdf5, jpeg, png) with samples of shape ``dims``.

    The dispatch behind :func:`dataset_file` once the shape is known (for
    callers that computed the shapes in bulk with :func:`record_dims_many`).

    Raises:
        ValueError: unknown or non-image format (raw, parquet), bad arguments.
    """
    kind = normalize_format(fmt)
    if kind in ("raw", "parquet"):
        raise ValueError(f"build_file makes npz, tfrecord, hdf5, jpeg and png files, not {kind!r}")
    _check_options(kind, samples, compression, chunks)
    if kind == "npz":
        return npz_file(dims, samples, seed=seed, index=index, compress=compression == "zip")
    if kind == "tfrecord":
        return tfrecord_file(dims, samples, seed=seed, index=index)
    if kind == "hdf5":
        return hdf5_file(
            dims,
            samples,
            seed=seed,
            index=index,
            chunks=chunks or None,
            compression=compression,
            compression_level=compression_level,
        )
    if kind == "jpeg":
        return jpeg_file(dims, seed=seed, index=index, quality=quality)
    level = 0 if compression_level is None else compression_level
    return png_file(dims, seed=seed, index=index, compress_level=level)


def expected_file_size(
    fmt: str,
    dims: tuple[int, int],
    samples: int = 1,
    *,
    record_size: int | None = None,
    compression: str | None = None,
    columns: Any = None,
) -> tuple[int, bool]:
    """The size in bytes of a file :func:`dataset_file` would write, without writing it.

    Args:
        fmt: the format.
        dims: sample shape (image formats; ignored for raw / parquet).
        samples: samples per file.
        record_size: bytes per sample for raw / parquet (the per-file size
            from :func:`record_sizes_many`).
        compression: as for :func:`dataset_file`.
        columns: Parquet column spec.

    Returns:
        ``(size, exact)``: exact for uncompressed npz, tfrecord and raw;
        an estimate for jpeg (0.56 bytes per pixel at quality 75), hdf5 (if
        h5py is missing or with compression), parquet and compressed files.
    """
    kind = normalize_format(fmt)
    dim1, dim2 = dims
    pixels = dim1 * dim2
    if kind == "raw":
        return int(record_size or 0) * samples, True
    if kind == "parquet":
        row = parquet_row_size(columns, record_size)
        return row * samples + 4 * samples + 1024, False
    if kind == "npz":
        return _npz_file_size(dim1, samples, dim2), compression is None
    if kind == "tfrecord":
        return _tfrecord_file_size(dim1, samples, dim2), True
    if kind == "png":  # Pillow's chunking of IDAT is its own: an estimate within ~0.1%
        raw = dim1 * (dim2 + 1)
        return 8 + 25 + 12 + 2 + raw + 5 * max(1, -(-raw // 65535)) + 4 + 12, False
    if kind == "jpeg":
        return int(pixels * 0.56) + 700, False
    try:
        overhead = _hdf5_overhead(samples)
        exact = compression is None
    except ImportError:
        overhead, exact = 2048 + 8 * samples, False
    return pixels * samples + overhead, exact
