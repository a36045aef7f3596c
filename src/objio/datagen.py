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
    "OBJECT_TYPES",
    "generate",
    "generate_hdf5",
    "generate_npz",
    "generate_tfrecord",
    "normalize_object_type",
    "random_bytes",
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


def _npz_file_size(dim: int, samples: int) -> int:
    """Exact size of the uncompressed NPZ file :func:`_npz_stored` writes."""
    total = _END_OF_CENTRAL_DIR.size
    for name, shape, nbytes in (
        ("x.npy", (dim, dim, samples), dim * dim * samples),
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
    records = _random_array(dim * dim * samples, seed, index, _STREAM_NPZ).reshape(dim, dim, samples)
    labels = np.zeros(samples, dtype=_LABEL_DTYPE)
    if compress or _npz_file_size(dim, samples) >= _ZIP32_LIMIT:
        return _npz_zipfile(records, labels, bool(compress))
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


def _tf_example_parts(dim: int) -> tuple[bytes, bytes]:
    """Serialized ``tf.train.Example`` around a ``dim * dim`` byte image.

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
    image_len = dim * dim
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


def _tfrecord_file_size(dim: int, samples: int) -> int:
    head, tail = _tf_example_parts(dim)
    return samples * (8 + 4 + len(head) + dim * dim + len(tail) + 4)


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
    image_len = dim * dim
    images = _random_array(image_len * samples, seed, index, _STREAM_TFRECORD)
    # google_crc32c takes bytes or read-only buffers (not memoryviews), and
    # slices of a read-only array are read-only: CRC and join without copies.
    images.flags.writeable = False

    head, tail = _tf_example_parts(dim)
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


def _hdf5_bytes(records: npt.NDArray[np.uint8], samples: int) -> bytes:
    try:
        import h5py
    except ImportError as exc:
        raise ImportError(_HDF5_IMPORT_ERROR) from exc

    # In-memory file (core driver, no backing store): nothing touches disk.
    # The name only identifies the open file to HDF5, which refuses to open
    # two core files of the same name at once, so make it unique per call.
    name = f"objio-datagen-{os.getpid()}-{next(_hdf5_names)}.h5"
    with h5py.File(name, "w", driver="core", backing_store=False, block_size=1 << 20) as f:
        f.create_dataset("records", data=records)
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
