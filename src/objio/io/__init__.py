"""File-like access to objects: readers, a streaming writer and :func:`open`.

Everything that treats an object as a file (checkpoints, model loading, datasets, ``objio cat``
and ``objio cp``) goes through these classes. They work the same for ``s3://`` and ``file://``.

Readers (all :class:`io.BufferedIOBase`: ``read``, ``read1``, ``readinto``, ``readinto1``,
``readline``, iteration, ``seek`` with whence 0/1/2, ``tell``, context manager):

* :class:`SequentialReader` (``reader="sequential"``, the default): streams the object from the
  position being read. It keeps up to ``window_size // chunk_size`` ranged GETs of
  ``chunk_size`` bytes in flight ahead of the reader (memory: at most ``window_size`` bytes of
  chunk buffers), so one reader reaches the throughput of ``get_many``. A ``readinto`` of at
  least ``chunk_size`` bytes that are not already buffered or in flight lands straight in the
  caller's buffer (concurrent ranged GETs into slices of it, no copy).
  Random access: bytes still held in the window (the current chunk, chunks read ahead and
  chunks read recently, while the window has room) are served from memory; anything else is a
  new ranged GET of one chunk, after which read-ahead restarts at zero and grows (1, 2, 4, ...
  up to the window) with each chunk read in order. When the window is full, read-ahead that
  was never read is dropped first (farthest first), then the chunks read longest ago.
* :class:`RangeReader` (``reader="range_based"``): each read fetches only the bytes it needs.
  Reads smaller than ``buffer_size`` (default 8 MiB) are served from a buffer filled
  ``buffer_size`` bytes at a time; larger reads bypass it (straight into the caller's buffer
  for ``readinto``); a read overlapping the end of the buffer uses the buffered bytes and
  fetches only the rest. ``buffer_size=0`` disables the buffer. For sparse reads of big objects.
* :class:`CoalescingReader` (``reader="coalescing"``, the seed's ``dcp_optimized``): given the
  byte ranges that will be read, in order, it groups ranges whose gaps are at most
  ``max_gap_size`` (default 32 MiB; ``float("inf")`` always coalesces, 0 only merges touching
  ranges) into one ranged GET each (a group stops growing at 16 MiB between two ranges, so the
  first ranges are served while later ones still arrive), received straight into one buffer
  per group; every read is served from that buffer (``readview`` returns a memoryview without
  any copy). It holds the current group and fetches up to 32 MiB of the next ones ahead; with
  a :class:`GroupBuffers` (for callers that keep no view of a group they have moved past) the
  groups reuse each other's buffers. Reading before the current group, or bytes outside the
  declared ranges, raises ValueError (use the sequential reader for arbitrary access).

:class:`ObjectWriter` (``open(uri, "wb")``): data is collected in a part buffer; objects up to
``part_size`` bytes are sent as one PutObject on ``close()``, larger ones as a multipart upload
whose parts are uploaded concurrently while the caller keeps writing (at most
``max_parts_in_flight`` parts in flight; memory at most ``(max_parts_in_flight + 1) *
part_size``). ``close()`` completes the upload and raises if anything failed; an exception in a
``with`` block, ``abort()``, or a writer garbage-collected without ``close()`` aborts it, so
the key never shows a partial object and no multipart upload is left behind.

None of these objects is thread-safe (like Python's own file objects): use one per thread.
"""

from __future__ import annotations

import io
from typing import Any, Iterable

from ._common import (
    _READER_ALIASES,
    DEFAULT_BUFFER_SIZE,
    DEFAULT_MAX_GAP_SIZE,
    DEFAULT_MAX_PARTS_IN_FLIGHT,
    DEFAULT_WINDOW_SIZE,
    READER_TYPES,
)
from .readers import CoalescingReader, GroupBuffers, ObjectReader, RangeReader, SequentialReader
from .writer import ZERO_COPY_MIN, ObjectWriter, _TextWriter, part_size_for

__all__ = [
    "open", "ObjectReader", "SequentialReader", "RangeReader", "CoalescingReader",
    "GroupBuffers", "ObjectWriter", "READER_TYPES", "DEFAULT_WINDOW_SIZE", "DEFAULT_BUFFER_SIZE",
    "DEFAULT_MAX_GAP_SIZE", "DEFAULT_MAX_PARTS_IN_FLIGHT", "ZERO_COPY_MIN", "part_size_for",
]

# ---------------------------------------------------------------------------------- open
def _parse_mode(mode: Any) -> tuple[str, bool]:
    allowed = "'rb', 'r', 'wb', 'w', 'xb', 'x' (also 'rt', 'wt', 'xt')"
    if not isinstance(mode, str) or not mode or len(set(mode)) != len(mode) \
            or set(mode) - set("rwxbt"):
        raise ValueError(f"mode must be one of {allowed}, got {mode!r}")
    kinds = [c for c in mode if c in "rwx"]
    if len(kinds) != 1 or ("b" in mode and "t" in mode):
        raise ValueError(f"mode must be one of {allowed}, got {mode!r}")
    return kinds[0], "b" not in mode


def open(  # noqa: A001 - objio.open, like builtins.open
    uri: Any,
    mode: str = "rb",
    *,
    client: Any = None,
    reader: str | None = None,
    buffer_size: int | None = None,
    chunk_size: int | None = None,
    window_size: int | None = None,
    max_gap_size: float | None = None,
    ranges: Iterable[Any] | None = None,
    size: int | None = None,
    part_size: int | None = None,
    max_parts_in_flight: int | None = None,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    exist_ok: bool = True,
) -> Any:
    """Open an object (``s3://bucket/key``, ``file:///path`` or a local path) as a file.

    Modes: ``"rb"`` (a reader), ``"wb"`` (an :class:`ObjectWriter`), ``"xb"`` (a writer with
    ``exist_ok=False``), and the text modes ``"r"``, ``"w"``, ``"x"`` (an
    :class:`io.TextIOWrapper`, ``encoding`` default UTF-8; in ``"w"`` mode an exception inside
    ``with`` aborts the upload too).

    Read options:
        reader: ``"sequential"`` (default; read-ahead streaming), ``"range_based"`` (fetch what
            each read needs) or ``"coalescing"`` (alias ``"dcp_optimized"``: known ranges; the
            default when ``ranges`` is given). See :mod:`objio.io`.
        chunk_size, window_size: sequential reader (bytes per GET, read-ahead memory).
        buffer_size: range_based reader (default 8 MiB; 0 disables the buffer).
        ranges, max_gap_size: coalescing reader.
        size: the object's size if known (saves a request).
    Write options: ``part_size``, ``max_parts_in_flight``, ``exist_ok`` (see
    :class:`ObjectWriter`).

    Opening makes no request: a missing object raises FileNotFoundError on the first read (or
    a seek relative to the end); a writer sends its data as parts fill up and on ``close()``.

    Raises:
        ValueError: a bad mode, option or URI; an option that does not apply to the mode or
            reader.
        FileNotFoundError: the object or bucket does not exist (on the first read, or a seek
            relative to the end).
        PermissionError: access denied.
        FileExistsError: exclusive modes (``"xb"``, ``"x"``), on ``close()``, when the key exists.
    """
    kind, text = _parse_mode(mode)
    if not text:
        for name, v in (("encoding", encoding), ("errors", errors), ("newline", newline)):
            if v is not None:
                raise ValueError(f"binary mode ({mode!r}) takes no {name} argument")
    read_opts: dict[str, Any] = {"reader": reader, "buffer_size": buffer_size, "chunk_size": chunk_size,
                 "window_size": window_size, "max_gap_size": max_gap_size, "ranges": ranges,
                 "size": size}
    write_opts: dict[str, Any] = {"part_size": part_size, "max_parts_in_flight": max_parts_in_flight}
    if kind == "r":
        for name, v in write_opts.items():
            if v is not None:
                raise ValueError(f"{name} applies to the write modes ('wb', 'w'), not {mode!r}")
        if exist_ok is not True:
            raise ValueError(f"exist_ok applies to the write modes ('wb', 'w'), not {mode!r}")
        f: Any = _make_reader(uri, client, reader, buffer_size, chunk_size, window_size,
                              max_gap_size, ranges, size)
        if text:
            return io.TextIOWrapper(f, encoding=encoding or "utf-8", errors=errors,
                                    newline=newline)
        return f
    for name, v in read_opts.items():
        if v is not None:
            raise ValueError(f"{name} applies to the read modes ('rb', 'r'), not {mode!r}")
    if kind == "x":
        exist_ok = False
    w = ObjectWriter(uri, client=client, part_size=part_size,
                     max_parts_in_flight=max_parts_in_flight, exist_ok=exist_ok)
    if text:
        return _TextWriter(w, encoding=encoding or "utf-8", errors=errors, newline=newline)
    return w


def _make_reader(uri: Any, client: Any, reader: str | None, buffer_size: int | None,
                 chunk_size: int | None, window_size: int | None, max_gap_size: float | None,
                 ranges: Iterable[Any] | None, size: int | None) -> ObjectReader:
    if reader is None:
        kind = "coalescing" if ranges is not None else "sequential"
    elif isinstance(reader, str) and reader in _READER_ALIASES:
        kind = _READER_ALIASES[reader]
    else:
        raise ValueError(f"reader must be one of {', '.join(map(repr, READER_TYPES))} (or "
                         f"'dcp_optimized'), got {reader!r}")
    given: dict[str, Any] = {"buffer_size": buffer_size, "chunk_size": chunk_size, "window_size": window_size,
             "max_gap_size": max_gap_size, "ranges": ranges}
    applies = {"sequential": ("chunk_size", "window_size"), "range_based": ("buffer_size",),
               "coalescing": ("max_gap_size", "ranges")}[kind]
    for name, v in given.items():
        if v is not None and name not in applies:
            owner = next(k for k, names in (("sequential", ("chunk_size", "window_size")),
                                            ("range_based", ("buffer_size",)),
                                            ("coalescing", ("max_gap_size", "ranges")))
                         if name in names)
            raise ValueError(f"{name} applies to reader={owner!r}, not reader={kind!r}")
    if kind == "sequential":
        return SequentialReader(uri, client=client, chunk_size=chunk_size,
                                window_size=window_size, size=size)
    if kind == "range_based":
        return RangeReader(uri, client=client, buffer_size=buffer_size, size=size)
    if ranges is None:
        raise ValueError("reader='coalescing' needs ranges=[(start, end), ...] (the byte "
                         "ranges that will be read, in order)")
    return CoalescingReader(uri, ranges, client=client, size=size,
                            max_gap_size=DEFAULT_MAX_GAP_SIZE if max_gap_size is None
                            else max_gap_size)


