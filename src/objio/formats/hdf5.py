"""HDF5 (DLIO ``data_generator/hdf5_generator.py``, ``reader/hdf5_reader.py``), through h5py.

Writer: datasets ``records`` (``uint8``, ``(samples, dim1, dim2)``, hard-linked as
``records_0``) and ``labels`` (``int64`` zeros), built in memory with h5py's ``core`` driver (no
temporary file). Reader: :func:`read_hdf5`. Needs the ``hdf5`` extra (h5py).
"""

from __future__ import annotations

import itertools
import os
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from ._common import (
    _LABEL_DTYPE,
    _STREAM_HDF5,
    FileFormat,
    FileOptions,
    _best_dim,
    _check_common,
    _check_dims,
    _check_int,
    _fetch,
    _file_object,
    _random_array,
)

_HDF5_IMPORT_ERROR = "object_type='HDF5' needs h5py: pip install 'objio[hdf5]'"


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
        FileNotFoundError: downloading ``data_or_uri``: no such object or bucket.
        PermissionError: downloading ``data_or_uri``: access denied.
    """
    try:
        import h5py
    except ImportError as exc:
        raise ImportError("read_hdf5 needs h5py: pip install 'objio[hdf5]'") from exc
    if isinstance(data_or_uri, (bytes, bytearray, memoryview)):
        data = data_or_uri
    else:
        data = _fetch(data_or_uri, client)
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


def _requires() -> None:
    try:
        import h5py  # noqa: F401
    except ImportError as exc:
        raise ImportError("format 'hdf5' needs h5py: pip install 'objio[hdf5]'") from exc


def _build(dims: tuple[int, int], samples: int, seed: int, index: int, options: FileOptions) -> bytes:
    return hdf5_file(dims, samples, seed=seed, index=index, chunks=options.chunks or None,
                     compression=options.compression, compression_level=options.compression_level)


def _expected_size(dims: tuple[int, int], samples: int, options: FileOptions) -> tuple[int, bool]:
    try:
        overhead = _hdf5_overhead(samples)
        exact = options.compression is None
    except ImportError:
        overhead, exact = 2048 + 8 * samples, False
    return dims[0] * dims[1] * samples + overhead, exact


FORMAT = FileFormat("hdf5", build=_build, expected_size=_expected_size, read=read_hdf5,
                    compressions=(None, "gzip", "lzf"),
                    options=frozenset({"chunks", "compression_level"}), requires=_requires,
                    sized=generate_hdf5)
