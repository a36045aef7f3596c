"""NPZ: numpy's ``.npz`` archive (DLIO ``data_generator/npz_generator.py`` and ``reader/npz_reader.py``).

Writer: a ZIP archive of ``x.npy`` (``uint8``, ``(dim1, dim2, samples)``, random) and ``y.npy``
(``int64`` zeros, ``(samples,)``), written directly (not through :func:`numpy.savez`, which
stamps the current time) so the bytes depend only on the arguments. Reader:
:func:`read_npz_bytes` (:func:`numpy.load`, no pickles).
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from typing import Any

import numpy as np
import numpy.typing as npt

from ._common import (
    _LABEL_DTYPE,
    _STREAM_NPZ,
    FileFormat,
    FileOptions,
    _best_dim,
    _byte_view,
    _check_common,
    _check_dims,
    _check_int,
    _file_object,
    _random_array,
)

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


def _load(data: Any, array_name: str | None, first: bool) -> Any:
    head = bytes(_byte_view(data)[:6])
    if head.startswith(b"\x93NUMPY"):
        raise ValueError("not an NPZ file: the data is a single .npy array, not an NPZ archive")
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise ValueError(f"not an NPZ file: it does not start with a ZIP header (starts with {head!r})")
    try:
        with np.load(_file_object(data), allow_pickle=False) as npz:
            names = list(npz.files)
            if array_name is None and not first:
                return {name: npz[name] for name in names}
            if not names:
                raise ValueError("the NPZ archive holds no arrays")
            name = names[0] if array_name is None else array_name
            if name not in names:
                raise ValueError(f"array_name {array_name!r} is not in the archive; arrays: {', '.join(names)}")
            return npz[name]
    except (OSError, EOFError) as exc:
        raise ValueError(f"not an NPZ file: {exc}") from exc


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
    return _load(data, array_name, first=False)


def read_npz_array(data: Any, array_name: str | None = None) -> Any:
    """One array of an ``.npz`` file: ``array_name``, or the first array of the archive when
    None (what :func:`objio.read_npz` returns).

    Raises:
        ValueError: not an NPZ file, an empty archive, or no array ``array_name`` (the message
            lists the arrays).
    """
    return _load(data, array_name, first=True)


def _build(dims: tuple[int, int], samples: int, seed: int, index: int, options: FileOptions) -> bytes:
    return npz_file(dims, samples, seed=seed, index=index, compress=options.compression == "zip")


def _expected_size(dims: tuple[int, int], samples: int, options: FileOptions) -> tuple[int, bool]:
    return _npz_file_size(dims[0], samples, dims[1]), options.compression is None


FORMAT = FileFormat("npz", build=_build, expected_size=_expected_size, read=read_npz_bytes,
                    compressions=(None, "zip"), sized=generate_npz)
