"""File formats: the writer and the reader of each format, and the registry that lists them.

One module per format, holding both directions (writer: the bytes of one synthetic file in the
layout DLIO and MLPerf Storage read; reader: the bytes of one file decoded in memory):

==========  =====================================================  ==============================
format      writer                                                 reader
==========  =====================================================  ==============================
npz         :func:`npz_file`, :func:`generate_npz`                 :func:`read_npz_bytes`
tfrecord    :func:`tfrecord_file`, :func:`generate_tfrecord`,      :func:`iter_tfrecord`,
            :func:`tfrecord_index`                                 :func:`parse_example`,
                                                                   :func:`read_tfrecord`
hdf5        :func:`hdf5_file`, :func:`generate_hdf5`               :func:`read_hdf5`
jpeg, png   :func:`jpeg_file`, :func:`png_file` (Pillow)           :func:`decode_image`
parquet     :func:`parquet_file` (pyarrow)                         :func:`read_parquet_bytes`
raw         :func:`random_bytes`                                   the bytes themselves
safetensors :func:`safetensors_bytes`, :func:`build_header`        :func:`parse_header`,
                                                                   :func:`read_safetensors_bytes`,
                                                                   :func:`parse_index`
==========  =====================================================  ==============================

Everything else uses the registry: :func:`get_format` gives a format's :class:`FileFormat`
(build, expected size, reader, options it takes); :func:`dataset_file` builds file ``index`` of
a DLIO-style dataset; :func:`generate` builds one file of about ``size`` bytes for
:func:`objio.put`'s ``object_type``. Adding a format is adding one module here and its entry in
:data:`_REGISTRY`.

Sizes follow DLIO: a *sample* (``record_length_bytes``) is a ``dim1 x dim2`` ``uint8`` image with
``dim1 = dim2 = int(sqrt(record_size))``, or a per-file shape drawn from
``record_size_stdev`` (:func:`record_dims`); raw and parquet samples are sized in bytes
(:func:`record_sizes_many`). Every file is deterministic in ``(seed, index)`` (see
``objio/formats/_common.py``): nothing for storage to deduplicate or compress.

Readers take the bytes of one file (``bytes``, ``bytearray``, ``memoryview`` or any buffer; what
:meth:`objio.Client.get` returns). A malformed file raises :class:`ValueError` saying what is
wrong and where (the byte offset for TFRecord).

This package sits below the object API: its modules import only the foundations (and
:mod:`objio.engine` for the URI forms of :func:`read_tfrecord` / :func:`read_hdf5`), so
:func:`objio.put` and :func:`objio.read_npz` can use it.
"""

from __future__ import annotations

from typing import Any

from . import hdf5, image, npz, parquet, raw, safetensors, tfrecord
from ._common import (
    JPEG_QUALITY,
    FileFormat,
    FileOptions,
    _check_common,
    _check_int,
    random_bytes,
    record_dims,
    record_dims_many,
    record_sizes_many,
)
from .hdf5 import generate_hdf5, hdf5_file, read_hdf5
from .image import decode_image, jpeg_file, png_file
from .npz import generate_npz, npz_file, read_npz_bytes
from .parquet import (
    DEFAULT_PARQUET_COLUMNS,
    PARQUET_DTYPES,
    normalize_parquet_columns,
    parquet_file,
    parquet_row_size,
    read_parquet_bytes,
)
from .raw import read_raw
from .safetensors import (
    build_header,
    parse_header,
    parse_index,
    read_safetensors_bytes,
    safetensors_bytes,
)
from .tfrecord import (
    generate_tfrecord,
    iter_tfrecord,
    parse_example,
    read_tfrecord,
    read_tfrecord_bytes,
    tfrecord_file,
    tfrecord_index,
)

__all__ = [
    # readers
    "decode_image", "iter_tfrecord", "parse_example", "read_hdf5", "read_npz_bytes",
    "read_parquet_bytes", "read_raw", "read_tfrecord", "read_tfrecord_bytes", "parse_header",
    "parse_index", "read_safetensors_bytes",
    # writers
    "generate_hdf5", "generate_npz", "generate_tfrecord", "hdf5_file", "jpeg_file", "npz_file",
    "parquet_file", "png_file", "random_bytes", "tfrecord_file", "tfrecord_index",
    "build_header", "safetensors_bytes",
    # the registry and datasets
    "FORMATS", "OBJECT_TYPES", "FileFormat", "FileOptions", "get_format", "normalize_format",
    "normalize_object_type", "check_options", "dataset_file", "build_file",
    "expected_file_size", "generate", "record_dims", "record_dims_many", "record_sizes_many",
    "JPEG_QUALITY", "DEFAULT_PARQUET_COLUMNS", "PARQUET_DTYPES", "normalize_parquet_columns",
    "parquet_row_size",
]

_REGISTRY: dict[str, FileFormat] = {
    f.name: f for f in (npz.FORMAT, tfrecord.FORMAT, hdf5.FORMAT, image.JPEG, image.PNG,
                        parquet.FORMAT, raw.FORMAT, safetensors.FORMAT)
}

FORMATS: tuple[str, ...] = tuple(_REGISTRY)
"""Formats of :func:`dataset_file` and ``objio gen``; each is also the file extension."""

OBJECT_TYPES: tuple[str, ...] = tuple(name.upper() for name, f in _REGISTRY.items() if f.sized)
"""``object_type`` values of :func:`objio.put` (formats with a whole-file-size generator):
``NPZ``, ``TFRECORD``, ``HDF5``, ``RAW``."""


def normalize_format(fmt: str) -> str:
    """Return the canonical (lower-case) name of a dataset format.

    Args:
        fmt: one of :data:`FORMATS` (``npz``, ``tfrecord``, ``hdf5``,
            ``jpeg``, ``png``, ``parquet``, ``raw``, ``safetensors``) in any letter case.

    Raises:
        ValueError: unknown format; the message lists the formats.
    """
    if isinstance(fmt, str) and fmt.lower() in FORMATS:
        return fmt.lower()
    raise ValueError(f"format must be one of {', '.join(FORMATS)} (case-insensitive), got {fmt!r}")


def get_format(fmt: str) -> FileFormat:
    """The registry entry of ``fmt`` (any letter case).

    Raises:
        ValueError: an unknown format, listing the formats.
    """
    return _REGISTRY[normalize_format(fmt)]


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


def generate(
    object_type: str, size: int, *, seed: int = 0, index: int = 0, samples: int = 1
) -> bytes | bytearray:
    """Return the bytes of one synthetic file of the given type, of about ``size`` bytes.

    ``RAW`` is exactly ``size`` random bytes (:func:`random_bytes`); ``NPZ``
    (:func:`generate_npz`, uncompressed), ``TFRECORD`` (:func:`generate_tfrecord`) and ``HDF5``
    (:func:`generate_hdf5`) hold ``samples`` square images whose side is chosen so the whole
    file is at most ``size`` bytes when ``size`` covers the format's overhead, and otherwise the
    smallest valid file (``dim = 1``), so e.g. ``generate("npz", 1024)`` works.

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
    sized = _REGISTRY[kind.lower()].sized
    assert sized is not None
    data: bytes | bytearray = sized(size, seed=seed, index=index, samples=samples)
    return data


def _takers(option: str) -> str:
    names = [repr(n) for n, f in _REGISTRY.items() if option in f.options]
    return " and ".join(names) if len(names) <= 2 else ", ".join(names)


def check_options(fmt: str, samples: int, record_size: int, options: FileOptions) -> FileOptions:
    """Check that ``options`` apply to ``fmt`` for files of ``samples`` samples of
    ``record_size`` bytes; returns them normalised (e.g. Parquet columns with their sizes).

    Raises:
        ValueError: an option the format does not take, a compression it does not know,
            ``samples != 1`` for one-sample formats, a quality outside 1..100, or images wider
            than the format can encode; the message names the option and the allowed values.
        ImportError: the format's optional package is missing (Parquet codecs are checked by
            pyarrow).
    """
    f = get_format(fmt)
    kind = f.name
    if f.one_sample and samples != 1:
        raise ValueError(f"format {kind!r} holds one sample per file: samples must be 1, got {samples}")
    if f.compressions is not None and options.compression not in f.compressions:
        if f.compressions == (None,) and f.options & {"quality", "compression_level"}:
            raise ValueError(f"format {kind!r} takes no compression (use quality / compression_level)")
        names = ", ".join(repr(c) for c in f.compressions)
        raise ValueError(f"compression for format {kind!r} must be one of {names}, got {options.compression!r}")
    if options.chunks not in (None, False) and "chunks" not in f.options:
        raise ValueError(f"chunks applies to format {_takers('chunks')} only, not {kind!r}")
    if options.compression_level is not None and "compression_level" not in f.options:
        raise ValueError(f"compression_level applies to {_takers('compression_level')} only, not {kind!r}")
    if (options.columns is not None or options.row_group_size is not None) and "columns" not in f.options:
        raise ValueError(f"columns and row_group_size apply to format {_takers('columns')} only, not {kind!r}")
    if isinstance(options.quality, bool) or not isinstance(options.quality, int) or not 1 <= options.quality <= 100:
        raise ValueError(f"quality must be 1..100, got {options.quality!r}")
    if f.max_side is not None:
        side = max(record_dims(record_size))
        if side > f.max_side:
            raise ValueError(f"record_size {record_size} gives {side}-pixel {kind} images; the limit is {f.max_side}")
    return f.check(options, record_size) if f.check is not None else options


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
    * ``raw``: :func:`random_bytes`, ``samples * size`` bytes;
    * ``safetensors``: tensors ``x`` (``uint8``, ``(samples, dim1, dim2)``) and ``y``
      (``int64`` zeros, ``(samples,)``), see :mod:`objio.formats.safetensors`.

    Every file is fixed by ``(seed, index)``; distinct indices give distinct
    random payloads.

    Raises:
        ValueError: unknown format (the message lists them), an argument out
            of range, ``samples != 1`` for jpeg/png, or an option the
            format does not take.
        ImportError: h5py (hdf5) or pyarrow (parquet) missing.
    """
    f = get_format(fmt)
    record_size = _check_int("record_size", record_size, 1)
    samples = _check_int("samples", samples, 1)
    _, seed, index = _check_common(0, seed, index)
    options = check_options(f.name, samples, record_size, FileOptions(
        compression=compression, compression_level=compression_level, chunks=chunks,
        quality=quality, columns=columns, row_group_size=row_group_size))
    if f.shaped:
        dims = record_dims(record_size, record_size_stdev, seed=seed, index=index)
    else:
        (size,) = record_sizes_many(record_size, record_size_stdev, seed=seed, start=index)
        dims = (1, size)
    data: bytes | bytearray = f.build(dims, samples, seed, index, options)
    return data


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
    f = get_format(fmt)
    if not f.shaped:
        image_formats = ", ".join(n for n, g in _REGISTRY.items() if g.shaped)
        raise ValueError(f"build_file makes {image_formats} files, not {f.name!r}")
    options = FileOptions(compression=compression, compression_level=compression_level,
                          chunks=chunks, quality=quality)
    check_options(f.name, samples, 1, options)
    data: bytes = f.build(dims, samples, seed, index, options)
    return data


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
    f = get_format(fmt)
    if not f.shaped:
        dims = (1, int(record_size or 0))
    return f.expected_size(dims, samples, FileOptions(compression=compression, columns=columns))
