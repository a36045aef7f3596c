"""Parquet through pyarrow (DLIO has no Parquet format; the DLIO layout otherwise: one row per sample).

Writer: :func:`parquet_file` (columns of random data, see :func:`normalize_parquet_columns`).
Reader: :func:`read_parquet_bytes`. Needs the ``parquet`` extra (pyarrow).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from ._common import (
    _STREAM_PARQUET,
    FileFormat,
    FileOptions,
    _bit_generator,
    _byte_view,
    _check_common,
    _check_int,
    _fill_random,
)

_PARQUET_IMPORT_ERROR = "format 'parquet' needs pyarrow: pip install 'objio[parquet]'"


ParquetColumn = tuple[str, str, "int | None"]
"""``(name, dtype, size)`` of one Parquet column, see :func:`parquet_file`."""


DEFAULT_PARQUET_COLUMNS: tuple[ParquetColumn, ...] = (("data", "binary", None), ("label", "int64", 1))


_PARQUET_INT_TYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


_PARQUET_FLOAT_TYPES = ("float32", "float64")


PARQUET_DTYPES: tuple[str, ...] = ("binary", *_PARQUET_INT_TYPES, *_PARQUET_FLOAT_TYPES)
"""Column types :func:`parquet_file` writes."""


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


def read_parquet_bytes(data: Any, columns: list[str] | None = None) -> Any:
    """A Parquet file as a :class:`pyarrow.Table` (optionally only ``columns``).

    Zero-copy: the table's buffers point into ``data`` where pyarrow allows.

    Returns:
        A :class:`pyarrow.Table` with the file's column names and Arrow types (for objio
        files: one row per sample, the columns it was written with, by default those of
        :data:`DEFAULT_PARQUET_COLUMNS`: ``data`` binary, ``label`` int64).

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


def _requires() -> None:
    _pyarrow()


def _check(options: FileOptions, record_size: int) -> FileOptions:
    columns = normalize_parquet_columns(options.columns, record_size)
    if options.row_group_size is not None:
        _check_int("row_group_size", options.row_group_size, 1)
    if options.compression is not None:
        pa, _ = _pyarrow()
        try:
            available = isinstance(options.compression, str) and pa.Codec.is_available(options.compression)
        except ValueError:  # pyarrow: not a codec name at all
            available = False
        if not available:
            raise ValueError(
                f"compression for format 'parquet' must be a pyarrow codec such as snappy, "
                f"zstd, gzip, lz4 or brotli, got {options.compression!r}"
            )
    return replace(options, columns=None if options.columns is None else columns)


def _build(dims: tuple[int, int], samples: int, seed: int, index: int, options: FileOptions) -> bytes:
    return parquet_file(samples, record_size=dims[1], columns=options.columns,
                        row_group_size=options.row_group_size, seed=seed, index=index,
                        compression=options.compression)


def _expected_size(dims: tuple[int, int], samples: int, options: FileOptions) -> tuple[int, bool]:
    row = parquet_row_size(options.columns, dims[1])
    return row * samples + 4 * samples + 1024, False


FORMAT = FileFormat("parquet", build=_build, expected_size=_expected_size,
                    read=read_parquet_bytes, shaped=False, compressions=None,
                    options=frozenset({"columns", "row_group_size"}), requires=_requires,
                    check=_check)
