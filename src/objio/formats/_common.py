"""What every format module shares: the deterministic random payload, sample shapes as DLIO
draws them, argument checks, buffer views, and :class:`FileFormat` (one entry of the registry in
:mod:`objio.formats`).

Every synthetic file is deterministic in ``(seed, index)``: the same pair always gives the same
bytes, and two different pairs give different random payloads, so a storage system can neither
deduplicate nor compress the generated files. The payload is the raw output of
:class:`numpy.random.SFC64` seeded through :class:`numpy.random.SeedSequence`, both of which
numpy keeps stable, so it is the same on every platform and numpy version. Each format draws
from its own random stream (``_STREAM_*``), so e.g. the RAW and NPZ files with the same
``(seed, index)`` do not share payload bytes either.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

# One random stream per use, mixed into the seed (see _bit_generator). Never renumber: the
# bytes of every generated file depend on these.
_STREAM_RAW = 0
_STREAM_NPZ = 1
_STREAM_TFRECORD = 2
_STREAM_HDF5 = 3
_STREAM_DIMS = 4
_STREAM_JPEG = 5
_STREAM_PNG = 6
_STREAM_PARQUET = 7

_U64_LIMIT = 1 << 64


# Labels are int64 zeros, as DLIO's [0] * samples becomes; little-endian on
# every platform.
_LABEL_DTYPE = np.dtype("<i8")


# Random data is produced in chunks of this many bytes: large enough to
# amortise the per-call cost, small enough to stay in cache while copied.
_CHUNK = 1 << 20


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


def _check_stdev(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"record_size_stdev must be a number of bytes >= 0, got {value!r}")
    stdev = float(value)
    if not math.isfinite(stdev) or stdev < 0:
        raise ValueError(f"record_size_stdev must be a number of bytes >= 0, got {value!r}")
    return stdev


def _check_dims(dims: object) -> tuple[int, int]:
    if not isinstance(dims, (tuple, list)) or len(dims) != 2:
        raise ValueError(f"dims must be a pair (dim1, dim2) of ints >= 1, got {dims!r}")
    return _check_int("dims[0]", dims[0], 1), _check_int("dims[1]", dims[1], 1)


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
    """Sample shapes ``(dim1, dim2)`` of files ``start .. start+count-1`` for a mean
    ``record_size`` and a ``record_size_stdev`` in bytes; see :func:`record_dims`."""
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


def _byte_view(data: Any) -> memoryview:
    try:
        view = memoryview(data)
    except TypeError:
        raise ValueError(f"expected a bytes-like object, got {type(data).__name__}") from None
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    return view


def _file_object(data: Any) -> io.BytesIO:
    # BytesIO shares the buffer of a bytes object until written to; other
    # bytes-like objects are copied once.
    return io.BytesIO(data if isinstance(data, bytes) else bytes(_byte_view(data)))


def _fetch(uri: Any, client: Any = None) -> Any:
    """The bytes of the object ``uri``: ``client.get(uri)``, or without a client one GET with the
    process default configuration (what :func:`objio.configure` set, else the environment).

    Raises: as :func:`objio.get` (FileNotFoundError, PermissionError, ...)."""
    if client is not None:
        return client.get(uri)
    from .. import engine
    from ..config import default_config
    from ..uri import parse_uri

    obj = parse_uri(uri)
    config = default_config()
    return engine.run(engine.get_object(engine.backend_for(obj, config), obj, config))


# --------------------------------------------------------------------------
# the registry entry of a format
# --------------------------------------------------------------------------

JPEG_QUALITY = 75
"""JPEG quality used unless told otherwise (Pillow's default, which DLIO's jpeg_generator uses)."""


@dataclass(frozen=True)
class FileOptions:
    """Per-format options of the files of a dataset (DLIO's names where it has them).

    Attributes:
        compression: npz ``"zip"`` (savez_compressed); hdf5 ``"gzip"`` or ``"lzf"``; parquet
            any pyarrow codec; ``None`` for none.
        compression_level: gzip level for hdf5 (DLIO's default 4), zlib level for png (0).
        chunks: hdf5 chunking: ``True`` (h5py automatic) or a chunk shape.
        quality: JPEG quality, 1-100.
        columns: Parquet columns ``[(name, dtype, size), ...]``; ``None`` for ``data`` + ``label``.
        row_group_size: Parquet rows per row group, or ``None``.
    """

    compression: str | None = None
    compression_level: int | None = None
    chunks: bool | tuple[int, ...] | None = None
    quality: int = JPEG_QUALITY
    columns: Any = None
    row_group_size: int | None = None


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class FileFormat:
    """One file format: how to write a file of a dataset, how big it will be, and how to read it.

    Every module of :mod:`objio.formats` defines its entry (``FORMAT``, or ``JPEG`` / ``PNG``)
    and :mod:`objio.formats` lists them; everything else (``objio gen``, ``objio.put``, the
    PyTorch transforms, the benchmarks) goes through the registry.

    Attributes:
        name: the format name, also the file extension (``npz``).
        build: ``build(dims, samples, seed, index, options)`` -> the bytes of one file whose
            ``samples`` samples have the shape ``dims = (dim1, dim2)`` (formats that are not
            image-shaped get ``(1, bytes per sample)``).
        expected_size: ``expected_size(dims, samples, options)`` -> ``(bytes, exact)``.
        read: the format's reader: the bytes of one file -> its content (arrays, records, a
            table; see the module).
        shaped: samples are ``dim1 x dim2`` ``uint8`` images (False: sized in bytes, as raw
            and parquet).
        compressions: the ``compression`` values it accepts (``None`` in the tuple: none);
            ``None``: any, checked by ``check``.
        options: the :class:`FileOptions` fields it takes besides ``compression``.
        one_sample: one sample per file (images).
        max_side: the largest image side it can encode, in pixels.
        requires: raises ImportError naming the extra when an optional package is missing.
        index: the side file written next to each data file (TFRecord ``.idx``), or None.
        sized: ``sized(size, seed=, index=, samples=)`` -> one file of about ``size`` bytes
            (the ``object_type`` of :func:`objio.put`), or None.
        check: format-specific validation of the options for ``(options, record_size)``;
            returns them normalised.
    """

    name: str
    build: Callable[[tuple[int, int], int, int, int, FileOptions], Any]
    expected_size: Callable[[tuple[int, int], int, FileOptions], tuple[int, bool]]
    read: Callable[[Any], Any]
    shaped: bool = True
    compressions: tuple[str | None, ...] | None = (None,)
    options: frozenset[str] = frozenset()
    one_sample: bool = False
    max_side: int | None = None
    requires: Callable[[], None] = _nothing
    index: Callable[[Any], bytes] | None = None
    sized: Callable[..., Any] | None = None
    check: Callable[[FileOptions, int], FileOptions] | None = None
