"""Helpers shared by objio's readers and writer: argument checks, buffer views, ranged GETs
with retries, and the object identity (uri, bucket, key)."""

from __future__ import annotations

import logging
from typing import Any

from .. import engine
from .._integrity import Piece, ReadCheck
from ..backend import GetResult
from ..config import MiB
from ..uri import ObjectURI, object_uri

log = logging.getLogger("objio.io")

DEFAULT_WINDOW_SIZE = 64 * MiB
"""Default read-ahead window of :class:`SequentialReader` (bytes of chunk buffers)."""
DEFAULT_BUFFER_SIZE = 8 * MiB
"""Default buffer of :class:`RangeReader` (the seed's ``range_based`` default)."""
DEFAULT_MAX_GAP_SIZE = 32 * MiB
"""Default largest gap :class:`CoalescingReader` bridges (the seed's ``dcp_optimized``)."""
MAX_GROUP_SIZE = 16 * MiB
"""Largest span :class:`CoalescingReader` fetches as one group when it can split between
ranges (a range larger than this is one group of its own)."""
GROUP_WINDOW_SIZE = 32 * MiB
"""Bytes of groups :class:`CoalescingReader` fetches ahead of the one being read (at least one
group)."""
DEFAULT_MAX_PARTS_IN_FLIGHT = 8
"""Default number of parts :class:`ObjectWriter` uploads at once."""
PARTS_PER_SIZE_STEP = 800
"""The writer doubles its part size after every this many parts (see :func:`part_size_for`)."""

READER_TYPES = ("sequential", "range_based", "coalescing")
_READER_ALIASES = {"sequential": "sequential", "range_based": "range_based",
                   "coalescing": "coalescing", "dcp_optimized": "coalescing"}
_PEEK_SIZE = 64 * 1024  # readline without a buffer (range_based, buffer_size=0) fetches this much
_DEFAULT_PART = 8 * MiB


# ---------------------------------------------------------------------------------- helpers
def _int_arg(name: str, value: Any, minimum: int, allowed: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value


def _byte_view(b: Any, name: str, writable: bool) -> memoryview:
    """A 1-D unsigned-byte memoryview of a buffer-protocol object, without copying."""
    try:
        mv = memoryview(b)
    except TypeError:
        raise TypeError(f"{name} must be a bytes-like object (bytes, bytearray, memoryview, "
                        f"numpy array), got {type(b).__name__}") from None
    if writable and mv.readonly:
        raise TypeError(f"{name} must be a writable bytes-like object (bytearray, memoryview, "
                        f"numpy array), got a read-only {type(b).__name__}")
    if not mv.c_contiguous:
        raise ValueError(f"{name} must be a C-contiguous buffer; pass numpy.ascontiguousarray(x) "
                         "or bytes(x) for a strided one")
    if mv.ndim != 1 or mv.format != "B":
        mv = mv.cast("B")
    return mv


async def _get(backend: Any, obj: ObjectURI, start: int, stop: int, attempts: int, *,
               etag: str = "", total: int | None = -1,
               into: memoryview | None = None, check: ReadCheck | None = None) -> GetResult:
    """One GET of bytes [start, stop) with retries, checked to come from the version the
    reader first saw (``etag``, ``total``; see :func:`objio.engine.get_range`): a changed
    object raises ``ObjectStoreError`` with code ``ObjectChanged``. With ``check``: the
    bytes' CRC32C pieces in ``result.crcs`` (see :func:`objio.engine.get_range`)."""
    return await engine.get_range(backend, obj, start, stop, attempts, etag=etag,
                                  total=-1 if total is None else total, into=into, check=check)


async def _probe(backend: Any, obj: ObjectURI, start: int, stop: int, attempts: int, *,
                 config: Any = None, verify: bool = False) -> GetResult:
    """A GET of [start, stop) when the object's size is not known yet: learns size and ETag
    (with a HEAD when the range starts at or past the end of the object). With ``verify`` a
    probe from byte 0 is :func:`objio.engine.get_first`: it brings the stored CRC32C
    (``result.stored``) and checks an object it holds whole."""
    if verify and start == 0 and config is not None:
        return await engine.get_first(backend, obj, config, stop)
    r = await _get(backend, obj, start, stop, attempts)
    if r.total_size < 0:
        info = await engine.with_retries(lambda: backend.head(obj), attempts)
        r.total_size, r.etag = info.size, info.etag
    return r


async def _fill(backend: Any, obj: ObjectURI, start: int, view: memoryview, etag: str,
                attempts: int, piece: int, parallel: int, total: int | None = -1,
                check: ReadCheck | None = None) -> list[Piece]:
    """Fill ``view`` with bytes [start, start + len(view)) (all inside the object): one GET,
    or concurrent ranged GETs of ``piece`` bytes, each received straight into its slice.
    Returns the CRC32C pieces of what arrived when ``check`` is given (else [])."""
    n = len(view)
    if n == 0:
        return []
    if n <= piece:
        r = await _get(backend, obj, start, start + n, attempts, etag=etag, total=total,
                       into=view, check=check)
        return r.crcs or []
    out: list[Piece] = []

    async def one(off: int) -> None:
        end = min(off + piece, n)
        r = await _get(backend, obj, start + off, start + end, attempts, etag=etag, total=total,
                       into=view[off:end], check=check)
        out.extend(r.crcs or ())

    await engine.bounded_map(one, range(0, n, piece), max(1, parallel), keep_results=False)
    return out


def _resolve_client(client: Any) -> Any:
    if client is None:
        from ..api import default_client

        return default_client()
    return client


def _object_uri(uri: Any, what: str) -> ObjectURI:
    return object_uri(uri, what)


class _ObjectIdentity:
    """``uri``, ``name``, ``bucket`` and ``key`` of the object a reader or writer serves."""

    _obj: ObjectURI

    @property
    def uri(self) -> str:
        """The object's URI (``s3://bucket/key`` or ``file:///path``)."""
        return str(self._obj)

    @property
    def name(self) -> str:
        return str(self._obj)

    @property
    def bucket(self) -> str:
        """The bucket ("" for file://)."""
        return self._obj.bucket

    @property
    def key(self) -> str:
        """The object key (the absolute path for file://)."""
        return self._obj.key
