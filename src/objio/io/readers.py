"""The readers behind ``objio.open(uri, "rb")``: sequential (read-ahead), range-based and
coalescing (see :mod:`objio.io`)."""

from __future__ import annotations

import bisect
import io
import math
import operator
import threading
from typing import TYPE_CHECKING, Any, Iterable, NamedTuple, Sequence

from .. import engine
from .._buffers import BufferPool, new_buffer
from .._integrity import Piece, ReadCheck, patch
from ..backend import GetResult
from ..errors import IntegrityError
from ..uri import ObjectURI
from ._common import (
    _DEFAULT_PART,
    _PEEK_SIZE,
    DEFAULT_BUFFER_SIZE,
    DEFAULT_MAX_GAP_SIZE,
    DEFAULT_WINDOW_SIZE,
    GROUP_WINDOW_SIZE,
    MAX_GROUP_SIZE,
    _byte_view,
    _fill,
    _get,
    _int_arg,
    _object_uri,
    _ObjectIdentity,
    _probe,
    _resolve_client,
)


class ObjectReader(_ObjectIdentity, io.BufferedIOBase):
    """Base class of objio's readers: a read-only, seekable binary file over one object.

    Args:
        uri: ``s3://bucket/key``, ``file:///path`` or a local path (or an :class:`ObjectURI`).
        client: the :class:`objio.Client` to use (default: :func:`objio.default_client`).
        size: the object's size in bytes, if known (e.g. from a listing): saves a request.
        etag: the object's ETag, if known; reads then fail if the object changes.

    Position and size are in bytes. Seeking to a negative position raises ValueError; seeking
    past the end is allowed (reads there return ``b""``). Its errors are listed below.

    Integrity (:attr:`verify`, on when the client's ``checksums`` is): the CRC32C of every
    range fetched is computed as it arrives; a GET from byte 0 is sent without a Range header,
    so that it brings the CRC32C the store keeps with the object (S3 sends it with
    whole-object responses only). Once the ranges fetched cover the whole object (a reader
    that reads to the end), their CRCs are combined and compared with it, in the read that
    fetched the last missing bytes. On a mismatch the suspect ranges are read once more: bytes
    not yet returned by a read (those of the current ``read``/``readinto`` and those still
    buffered) are replaced by the second reading when it matches; if bytes already returned
    were wrong, or the second reading does not match either, that read raises
    :class:`objio.IntegrityError` naming the object and the byte range. A reader that stops
    before the end cannot be checked against a whole-object CRC32C and is not; nor is an object
    the store keeps no CRC32C for; bytes fetched again after seeking back are not checked again.

    Raises:
        ValueError: bad arguments; on ``seek``, a negative position.
        FileNotFoundError: on a read, no such object or bucket.
        PermissionError: on a read, access denied.
        TimeoutError: on a read, no progress within the client's timeouts, after the retries.
        ObjectStoreError: on a read, anything else from the store, also when the object
            changes while it is being read.
        IntegrityError: on a read, the bytes fetched do not match the object's CRC32C (see
            above).
    """

    reader_type = ""

    def __init__(self, uri: Any, *, client: Any = None, size: int | None = None,
                 etag: str | None = None) -> None:
        self._obj = _object_uri(uri, "open")
        self._client = _resolve_client(client)
        cfg = self._client.config
        self._backend = self._client._backend(self._obj)
        self._attempts = cfg.max_attempts or 1
        self._piece = cfg.part_size or _DEFAULT_PART
        self._parallel = min(16, cfg.max_in_flight or 16)
        self._size: int | None = None if size is None else _int_arg("size", size, 0,
                                                                    "an integer >= 0 or None")
        self._etag = etag or ""
        self._pos = 0
        # whole-object CRC32C check (file:// reads bring no stored checksum)
        self._verify = bool(cfg.checksums) and self._obj.scheme != "file"
        self._crc_check: ReadCheck | None = None
        self._high = 0  # bytes before this offset may have been returned by an earlier call
        self._dest: tuple[int, memoryview] | None = None  # (offset, buffer) of this readinto

    @property
    def verify(self) -> bool:
        """Whether a read that covers the whole object is checked against the CRC32C the store
        keeps with it (see the class docs): the client's ``checksums``. Set it to False before
        the first read to skip the check (e.g. when the caller verifies the bytes itself);
        True has no effect with ``checksums`` off."""
        return self._verify

    @verify.setter
    def verify(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise ValueError(f"verify must be True or False, got {value!r}")
        self._verify = value and bool(self._client.config.checksums) \
            and self._obj.scheme != "file"
        if not self._verify:
            self._crc_check = None

    # -- identity (uri, name, bucket, key: _ObjectIdentity) ---------------------------------
    @property
    def mode(self) -> str:
        return "rb"

    @property
    def size(self) -> int:
        """The object's size in bytes (a HEAD request the first time, unless already known)."""
        return self._ensure_size()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.uri!r} pos={self._pos}>"

    # -- io protocol ---------------------------------------------------------------------
    def readable(self) -> bool:
        self._check_open()
        return True

    def seekable(self) -> bool:
        self._check_open()
        return True

    def writable(self) -> bool:
        self._check_open()
        return False

    def tell(self) -> int:
        self._check_open()
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        """Move to ``offset`` (bytes) relative to the start (0), the current position (1) or the
        end (2, needs the size: one HEAD unless known). Returns the new position. No request is
        made until the next read.

        Raises:
            TypeError: ``offset`` is not an integer.
            ValueError: ``whence`` is not 0, 1 or 2, or the position would be negative.
            FileNotFoundError: ``whence=2`` and the object does not exist.
        """
        self._check_open()
        try:
            offset = operator.index(offset)
        except TypeError:
            raise TypeError(f"seek offset must be an integer, got {type(offset).__name__}") from None
        if whence == io.SEEK_SET:
            new = offset
        elif whence == io.SEEK_CUR:
            new = self._pos + offset
        elif whence == io.SEEK_END:
            new = self._ensure_size() + offset
        else:
            raise ValueError(f"whence must be 0 (SEEK_SET), 1 (SEEK_CUR) or 2 (SEEK_END), "
                             f"got {whence!r}")
        if new < 0:
            raise ValueError(f"negative seek position {new} in {self.uri}")
        self._pos = new
        return new

    def read(self, size: int | None = -1, /) -> bytes:
        """Up to ``size`` bytes from the current position (all the rest when ``size`` is None
        or negative); ``b""`` at the end."""
        self._check_open()
        n = self._want(size)
        if n == 0:
            return b""
        if self._size is None and n > self._piece:
            self._learn_size()  # never allocate more than the object holds
        if self._size is not None:
            n = min(n, max(0, self._size - self._pos))
            if n == 0:
                return b""
        buf = new_buffer(n)
        got = self._readinto_dest(memoryview(buf))
        return bytes(memoryview(buf)[:got])

    def read1(self, size: int | None = -1, /) -> bytes:
        """Like :meth:`read` (up to ``size`` bytes), from at most one buffered block or one
        request."""
        return self.read(size)

    def readinto(self, b: Any, /) -> int:
        """Read into a writable buffer (bytearray, memoryview, numpy array); returns the number
        of bytes read (fewer than ``len(b)`` only at the end of the object)."""
        self._check_open()
        return self._readinto_dest(_byte_view(b, "readinto() argument", writable=True))

    def readinto1(self, b: Any, /) -> int:
        """Like :meth:`readinto` (returns the number of bytes read into ``b``)."""
        return self.readinto(b)

    def readline(self, size: int | None = -1, /) -> bytes:
        """The next line, including its ``b"\\n"`` (at most ``size`` bytes)."""
        self._check_open()
        limit = -1 if size is None else operator.index(size)
        out = bytearray()
        while limit < 0 or len(out) < limit:
            buf, lo, hi = self._peek()
            if lo >= hi:
                break
            if limit >= 0:
                hi = min(hi, lo + limit - len(out))
            i = buf.find(b"\n", lo, hi)
            end = hi if i < 0 else i + 1
            out += memoryview(buf)[lo:end]
            self._pos += end - lo
            if i >= 0:
                break
        return bytes(out)

    def prefetch(self) -> None:
        """Start fetching the first bytes now, without waiting (the seed's ``prefetch``)."""
        self._check_open()

    def close(self) -> None:
        """Release buffers and cancel requests still in flight. Idempotent."""
        if not self.closed:
            try:
                self._release()
            finally:
                super().close()

    # -- for subclasses ------------------------------------------------------------------
    def _check_open(self) -> None:
        """Raise on a closed reader. Every public call starts here, before it moves the
        position: so the bytes before the position at that point may have been returned by
        an earlier call (the integrity check must not replace them silently)."""
        if self.closed:
            raise ValueError(f"I/O operation on closed reader ({self.uri})")
        if self._pos > self._high:
            self._high = self._pos

    def _readinto_dest(self, mv: memoryview) -> int:
        """``_readinto(mv)`` with ``mv`` known as this call's destination (bytes there are not
        returned yet: a second reading after a checksum mismatch may replace them)."""
        self._dest = (self._pos, mv)
        try:
            return self._readinto(mv)
        finally:
            self._dest = None

    # -- integrity (see the class docs) ----------------------------------------------------
    def _checker(self) -> ReadCheck | None:
        """This read's CRC32C record, once the size is known; None when not verifying, when
        the object has no stored checksum, or once the check is over."""
        if not self._verify or self._size is None:
            return None
        c = self._crc_check
        if c is None:
            c = self._crc_check = ReadCheck(self.uri, self._size)
        return None if c.done or not c.needed else c

    def _learn_stored(self, r: GetResult, start: int) -> None:
        """What a probe (:func:`_probe`) told about the stored checksum: a probe from byte 0
        was a whole-object GET with checksums (:func:`objio.engine.get_first`), which has
        already checked an object it held whole."""
        c = self._checker()
        if c is None or start != 0:
            return
        c.learn(r.stored)
        if r.stored is not None and r.total_size <= len(r.data):
            c.done = True  # get_first checked it

    def _account(self, pieces: Any) -> None:
        """Record CRC32C pieces of bytes fetched; once they cover the whole object, compare
        them with the stored CRC32C (re-reading suspect ranges once; IntegrityError)."""
        c = self._crc_check
        if c is None or c.done or not pieces:
            return
        complete = c.add(pieces)
        obj, backend, attempts = self._obj, self._backend, self._attempts
        if c.wants_parts or (complete and not c.known):
            async def learn() -> None:
                if not c.known:  # no GET from byte 0 told it: ask
                    info = await engine.with_retries(
                        lambda: backend.head(obj, checksum=True), attempts)
                    c.learn(info.stored)
                await engine.find_parts(backend, obj, c, attempts)
            engine.run(learn())
        if complete and c.needed:
            try:
                engine.run(engine.settle(backend, obj, c, etag=self._etag, attempts=attempts,
                                         piece=self._piece, parallel=self._parallel,
                                         repair=self._repair))
            except IntegrityError:
                self._release()  # nothing buffered is served after this
                raise

    def _repair(self, start: int, data: memoryview) -> bool:
        """Put a second reading of bytes [start, start + len(data)) where this reader holds
        them; False when they may have been returned already (see :meth:`_check_open`)."""
        end = start + len(data)
        if start < self._high:
            return False
        copied = max(self._high, self._pos)  # this call has copied out bytes up to here
        d = self._dest
        if start < copied and (d is None or not (d[0] <= start and min(end, copied)
                                                 <= d[0] + len(d[1]))):
            return False
        if d is not None:
            patch(d[1], d[0], start, data)
        self._patch_held(start, data)
        return True

    def _patch_held(self, start: int, data: memoryview) -> None:
        """Replace bytes [start, start + len(data)) in the buffers the reader holds."""

    def _want(self, size: int | None) -> int:
        """Bytes a read of ``size`` asks for (the rest of the object when negative)."""
        if size is None:
            size = -1
        size = operator.index(size)
        if size < 0:
            return max(0, self._ensure_size() - self._pos)
        return size

    def _head(self) -> None:
        obj, backend, verify = self._obj, self._backend, self._verify
        info = engine.run(engine.with_retries(lambda: backend.head(obj, checksum=verify),
                                              self._attempts))
        self._learn(info.size, info.etag)
        c = self._checker()
        if c is not None:
            c.learn(info.stored)

    def _ensure_size(self) -> int:
        if self._size is None:
            self._head()
        assert self._size is not None
        return self._size

    def _learn_size(self) -> None:
        """Learn the size before a large read (the sequential reader uses its first GET)."""
        self._ensure_size()

    def _learn(self, size: int, etag: str) -> None:
        if self._size is None:
            self._size = size
        elif size >= 0 and size != self._size:
            raise engine._changed(self._obj, f"it is now {size} bytes, not {self._size}")
        if not self._etag:
            self._etag = etag
        elif etag and etag != self._etag:
            raise engine._changed(self._obj, f"its ETag is now {etag!r}, not {self._etag!r}")

    def _readinto(self, mv: memoryview) -> int:
        raise NotImplementedError

    def _peek(self) -> tuple[Any, int, int]:
        """(buffer, lo, hi): bytes available at the position without a copy (``buf[lo:hi]``,
        ``buf`` supports ``find``); lo == hi at the end."""
        raise NotImplementedError

    def _release(self) -> None:
        pass

    def _on_data(self, start: int, view: memoryview) -> None:
        """Called with bytes [start, start + len(view)) of the object as they arrive from the
        store (the sequential reader: each chunk, each direct read); for subclasses that
        check what they receive (:class:`objio.torch.checkpoint` verifies CRC32C here)."""


class _BufferedRead1:
    """``read1``/``readinto1`` of the readers that buffer blocks: at most what :meth:`_peek`
    has at the position (the current chunk or group), without another request when it is
    there."""

    _pos: int
    if TYPE_CHECKING:  # ObjectReader's (declared only: the mixin comes first in the MRO)
        def _check_open(self) -> None: ...
        def _peek(self) -> tuple[Any, int, int]: ...

    def read1(self, size: int | None = -1, /) -> bytes:
        """Up to ``size`` bytes, at most to the end of the current buffered block."""
        self._check_open()
        size = -1 if size is None else operator.index(size)
        buf, lo, hi = self._peek()
        if size >= 0:
            hi = min(hi, lo + size)
        self._pos += hi - lo
        return bytes(memoryview(buf)[lo:hi])

    def readinto1(self, b: Any, /) -> int:
        """Like :meth:`read1` into a writable buffer; returns the number of bytes read."""
        self._check_open()
        mv = _byte_view(b, "readinto1() argument", writable=True)
        if not len(mv):
            return 0
        buf, lo, hi = self._peek()
        k = min(hi - lo, len(mv))
        mv[:k] = memoryview(buf)[lo: lo + k]
        self._pos += k
        return k


class _Chunk:
    __slots__ = ("idx", "start", "stop", "fut", "buf", "probe", "used")

    def __init__(self, idx: int, start: int, stop: int, fut: Any, buf: Any, probe: bool) -> None:
        self.idx = idx
        self.used = 0             # when it was last read (0: read ahead, never read yet)
        self.start = start
        self.stop = stop          # exclusive; for a probe: known once it has completed
        self.fut = fut            # concurrent future of the GET, None once resolved
        self.buf = buf            # bytearray holding bytes [start, stop) at offset 0
        self.probe = probe


class SequentialReader(_BufferedRead1, ObjectReader):
    """Streams an object with concurrent read-ahead (see the module docs for the policy).

    Args:
        uri: the object; it, ``client``, ``size`` (bytes) and ``etag`` as for
            :class:`ObjectReader`.
        chunk_size: bytes per ranged GET (default: the client's ``part_size``, 8 MiB; on
            ``az://`` at least :data:`objio.azure.backend.STREAM_CHUNK_SIZE`, 32 MiB).
        window_size: read-ahead memory in bytes (default :data:`DEFAULT_WINDOW_SIZE`, 64 MiB;
            at least ``chunk_size``): up to ``window_size // chunk_size`` chunks are held or in
            flight (on ``az://`` by default 2 chunks of 32 MiB).

    The first request is one GET of ``chunk_size`` bytes, which also tells the object's size:
    an object smaller than a chunk costs exactly one request.

    Raises:
        ValueError: ``window_size`` smaller than ``chunk_size``, or a bad URI.
    """

    reader_type = "sequential"

    def __init__(self, uri: Any, *, client: Any = None, chunk_size: int | None = None,
                 window_size: int | None = None, size: int | None = None,
                 etag: str | None = None) -> None:
        super().__init__(uri, client=client, size=size, etag=etag)
        # A backend may ask for other defaults (Azure: fewer, larger GETs; see its
        # stream_chunk_size / stream_window_size); explicit arguments always win.
        pref_cs = getattr(self._backend, "stream_chunk_size", None)
        pref_ws = getattr(self._backend, "stream_window_size", None)
        cs = (max(self._piece, pref_cs) if isinstance(pref_cs, int) else self._piece) \
            if chunk_size is None else _int_arg("chunk_size", chunk_size, 1,
                                                "an integer >= 1 (bytes)")
        dws = pref_ws if isinstance(pref_ws, int) else DEFAULT_WINDOW_SIZE
        ws = max(dws, cs) if window_size is None else window_size
        ws = _int_arg("window_size", ws, 1, "an integer >= 1 (bytes)")
        if ws < cs:
            raise ValueError(f"window_size ({ws}) must be at least chunk_size ({cs}) bytes")
        self._cs = cs
        self._k = ws // cs
        self._chunks: dict[int, _Chunk] = {}
        self._free: list[bytearray] = []
        self._ahead = self._k - 1
        self._last = -1
        self._tick = 0

    @property
    def chunk_size(self) -> int:
        return self._cs

    @property
    def window_size(self) -> int:
        return self._k * self._cs

    def prefetch(self) -> None:
        self._check_open()
        if self._size is None or self._pos < self._size:
            self._plan(self._pos // self._cs)

    # -- chunk management ------------------------------------------------------------------
    def _schedule(self, idx: int) -> None:
        start = idx * self._cs
        if self._size is None:
            fut = engine.submit(_probe(self._backend, self._obj, start, start + self._cs,
                                       self._attempts, config=self._client.config,
                                       verify=self._verify))
            self._chunks[idx] = _Chunk(idx, start, start, fut, None, True)
            return
        stop = min(start + self._cs, self._size)
        buf = self._free.pop() if self._free else new_buffer(self._cs)
        view = memoryview(buf)[: stop - start]
        fut = engine.submit(_get(self._backend, self._obj, start, stop, self._attempts,
                                 etag=self._etag, total=self._size, into=view,
                                 check=self._checker()))
        self._chunks[idx] = _Chunk(idx, start, stop, fut, buf, False)

    def _drop(self, idx: int) -> None:
        ch = self._chunks.pop(idx)
        if ch.fut is not None:
            if not ch.fut.done():
                ch.fut.cancel()  # its buffer may still be written to: never reused
                return
            if ch.fut.cancelled() or ch.fut.exception() is not None:
                return
        if (isinstance(ch.buf, bytearray) and len(ch.buf) == self._cs
                and len(self._free) + len(self._chunks) < self._k):  # buffers <= the window
            self._free.append(ch.buf)

    def _plan(self, idx: int) -> None:
        """Make chunk ``idx`` and the read-ahead after it held or in flight, within the window."""
        if self._size is None:
            if idx not in self._chunks:
                # Size unknown: one probe at a time; nothing else can be scheduled yet.
                for i in [i for i in self._chunks if self._chunks[i].fut is not None]:
                    self._drop(i)
                self._schedule(idx)
            return
        n_chunks = -(-self._size // self._cs)
        hi = min(idx + 1 + self._ahead, n_chunks)
        wanted = range(idx, max(hi, idx + 1))
        # Chunks outside the wanted range stay while the window has room. Evicted first: read-
        # ahead never read (farthest first), then chunks read longest ago.
        chunks = self._chunks
        others = sorted((i for i in chunks if i not in wanted),
                        key=lambda i: (chunks[i].used, -abs(i - idx)))
        missing = sum(1 for i in wanted if i not in self._chunks)
        excess = len(self._chunks) + missing - self._k
        for i in others[: max(0, excess)]:
            self._drop(i)
        for i in wanted:
            if i not in self._chunks:
                self._schedule(i)

    def _touch(self, idx: int) -> None:
        """Adapt the read-ahead depth: doubles while chunks are read in order, drops to none
        after a jump to a chunk that is not held."""
        if idx == self._last + 1:
            if self._ahead < self._k - 1:
                self._ahead = min(self._k - 1, max(1, 2 * self._ahead))
        elif idx != self._last and idx not in self._chunks:
            self._ahead = 0
        self._last = idx

    def _resolve(self, ch: _Chunk) -> None:
        fut = ch.fut
        if fut is None:
            return
        try:
            r: GetResult = fut.result()
        except BaseException:
            if fut.done():  # failed or cancelled: forget it so the next read can retry
                self._chunks.pop(ch.idx, None)
            raise
        ch.fut = None
        view = memoryview(ch.buf if not ch.probe else r.data)
        if ch.probe:
            self._learn(r.total_size, r.etag)
            ch.buf = r.data
            ch.stop = ch.start + len(r.data)
            self._learn_stored(r, ch.start)
            c = self._checker()
            pieces = c.crcs(ch.start, view) if c is not None else None
        else:
            pieces = r.crcs
        view = view[: ch.stop - ch.start]
        self._account(pieces)
        self._on_data(ch.start, view)

    def _enter(self, idx: int) -> _Chunk:
        self._touch(idx)
        self._plan(idx)
        ch = self._chunks[idx]
        self._tick += 1
        ch.used = self._tick
        if ch.fut is not None:
            probe = ch.probe
            self._resolve(ch)
            if probe:
                self._plan(idx)  # the size is known now: start the read-ahead at once
        return ch

    def _direct_run(self, pos: int, want: int) -> int:
        """Bytes from ``pos`` that can go straight into the caller's buffer: up to the first
        chunk that is held or in flight; 0 if that is less than one chunk."""
        assert self._size is not None
        n = min(want, self._size - pos)
        idx = pos // self._cs
        later = [i for i in self._chunks if i > idx]
        if later:
            n = min(n, min(later) * self._cs - pos)
        return n if n >= self._cs else 0

    # -- reads -----------------------------------------------------------------------------
    def _readinto(self, mv: memoryview) -> int:
        n = len(mv)
        got = 0
        cs = self._cs
        while got < n:
            pos = self._pos
            if self._size is not None and pos >= self._size:
                break
            idx = pos // cs
            if self._size is not None and idx not in self._chunks:
                run = self._direct_run(pos, n - got)
                if run:
                    end = pos + run
                    last = (end - 1) // cs
                    self._touch(idx)
                    self._last = last
                    if end < self._size:  # read-ahead of what follows, while the run is fetched
                        self._plan(end // cs)
                    pieces = engine.run(_fill(self._backend, self._obj, pos, mv[got: got + run],
                                              self._etag, self._attempts, cs, self._parallel,
                                              self._size, check=self._checker()))
                    self._account(pieces)
                    self._on_data(pos, mv[got: got + run])
                    got += run
                    self._pos = end
                    continue
            ch = self._enter(idx)
            off = pos - ch.start
            k = min(ch.stop - pos, n - got)
            if k <= 0:
                break
            mv[got: got + k] = memoryview(ch.buf)[off: off + k]
            got += k
            self._pos = pos + k
        return got

    def _learn_size(self) -> None:
        if self._size is None:
            self._enter(self._pos // self._cs)  # the first chunk's GET tells the size

    def read(self, size: int | None = -1, /) -> bytes:
        self._check_open()
        if (size is None or operator.index(size) < 0) and self._size is None:
            self._learn_size()
        n = self._want(size)
        if n == 0:
            return b""
        pos = self._pos
        if self._size is not None and pos >= self._size:
            return b""
        if n <= self._cs:  # small read: one copy out of the chunk when it covers the range
            ch = self._enter(pos // self._cs)
            off = pos - ch.start
            if pos + n <= ch.stop or ch.stop == self._size:
                k = max(0, min(n, ch.stop - pos))
                self._pos = pos + k
                return bytes(memoryview(ch.buf)[off: off + k])
        return super().read(n)

    def _peek(self) -> tuple[Any, int, int]:
        pos = self._pos
        if self._size is not None and pos >= self._size:
            return b"", 0, 0
        ch = self._enter(pos // self._cs)
        if pos >= ch.stop:
            return b"", 0, 0
        return ch.buf, pos - ch.start, ch.stop - ch.start

    def _release(self) -> None:
        for idx in list(self._chunks):
            ch = self._chunks.pop(idx)
            if ch.fut is not None and not ch.fut.done():
                ch.fut.cancel()
        self._free.clear()

    def _patch_held(self, start: int, data: memoryview) -> None:
        for ch in self._chunks.values():
            if ch.fut is None and ch.buf is not None:
                patch(memoryview(ch.buf)[: ch.stop - ch.start], ch.start, start, data)


class RangeReader(ObjectReader):
    """Fetches only the bytes each read needs (the seed's ``range_based`` reader).

    Args:
        uri: the object; it, ``client``, ``size`` (bytes) and ``etag`` as for
            :class:`ObjectReader`.
        buffer_size: bytes per buffer fill (default :data:`DEFAULT_BUFFER_SIZE`, 8 MiB; 0
            disables the buffer). Reads smaller than this are served from the buffer, filled
            ``buffer_size`` bytes at a time from the read position; reads of at least this many
            bytes go straight to the caller (``readinto``: into its buffer, no copy; large ones
            as concurrent ranged GETs); a read that starts inside the buffer uses its bytes and
            handles the rest by the same rules.
    """

    reader_type = "range_based"

    def __init__(self, uri: Any, *, client: Any = None, buffer_size: int | None = None,
                 size: int | None = None, etag: str | None = None) -> None:
        super().__init__(uri, client=client, size=size, etag=etag)
        bs = DEFAULT_BUFFER_SIZE if buffer_size is None else buffer_size
        self._bs = _int_arg("buffer_size", bs, 0, "an integer >= 0 (bytes; 0 disables the buffer)")
        self._buf: bytearray | None = None
        self._buf_start = 0
        self._buf_len = 0

    @property
    def buffer_size(self) -> int:
        return self._bs

    def _covers(self, pos: int) -> bool:
        return self._buf_start <= pos < self._buf_start + self._buf_len

    def _fill_buffer(self, pos: int) -> None:
        self._buf_len = 0
        if self._size is None:  # first request: learn the size from it
            r = engine.run(_probe(self._backend, self._obj, pos, pos + self._bs, self._attempts,
                                  config=self._client.config, verify=self._verify))
            self._learn(r.total_size, r.etag)
            self._buf = r.data if isinstance(r.data, bytearray) else bytearray(r.data)
            self._buf_start, self._buf_len = pos, len(r.data)
            self._learn_stored(r, pos)
            c = self._checker()
            if c is not None:
                self._guarded(c.crcs(pos, memoryview(self._buf)[: self._buf_len]))
            return
        n = max(0, min(self._bs, self._size - pos))
        if self._buf is None or len(self._buf) < n:
            self._buf = new_buffer(self._bs)
        buf = self._buf
        self._buf = None  # dropped if the fetch does not complete
        pieces = engine.run(_fill(self._backend, self._obj, pos, memoryview(buf)[:n],
                                  self._etag, self._attempts, self._piece, self._parallel,
                                  self._size, check=self._checker()))
        self._buf, self._buf_start, self._buf_len = buf, pos, n
        self._guarded(pieces)

    def _guarded(self, pieces: Any) -> None:
        """:meth:`_account` for the buffer just filled: dropped if the check fails."""
        try:
            self._account(pieces)
        except BaseException:
            self._buf_len = 0
            raise

    def _patch_held(self, start: int, data: memoryview) -> None:
        if self._buf is not None and self._buf_len:
            patch(memoryview(self._buf)[: self._buf_len], self._buf_start, start, data)

    def prefetch(self) -> None:
        self._check_open()

    def _readinto(self, mv: memoryview) -> int:
        n = len(mv)
        if n == 0:
            return 0
        pos = self._pos
        got = 0
        if self._size is None:
            if self._bs and n < self._bs:
                self._fill_buffer(pos)
            else:
                self._head()
        assert self._size is not None
        end = min(pos + n, self._size)
        if pos >= end:
            return 0
        if self._covers(pos):
            assert self._buf is not None
            off = pos - self._buf_start
            got = min(end - pos, self._buf_len - off)
            mv[:got] = memoryview(self._buf)[off: off + got]
        rem = end - (pos + got)
        if rem > 0:
            p = pos + got
            if self._bs and rem < self._bs:
                self._fill_buffer(p)
                assert self._buf is not None
                k = min(rem, self._buf_len)
                mv[got: got + k] = memoryview(self._buf)[:k]
                got += k
            else:
                pieces = engine.run(_fill(self._backend, self._obj, p, mv[got: got + rem],
                                          self._etag, self._attempts, self._piece,
                                          self._parallel, self._size, check=self._checker()))
                self._account(pieces)
                got += rem
        self._pos = pos + got
        return got

    def read(self, size: int | None = -1, /) -> bytes:
        self._check_open()
        n = self._want(size)
        if n == 0:
            return b""
        pos = self._pos
        if self._bs and n < self._bs:
            if not self._covers(pos):
                if self._size is not None and pos >= self._size:
                    return b""
                self._fill_buffer(pos)
            assert self._size is not None and self._buf is not None
            if pos + n <= self._buf_start + self._buf_len or \
                    self._buf_start + self._buf_len >= self._size:
                off = pos - self._buf_start
                k = max(0, min(n, self._buf_len - off))
                self._pos = pos + k
                return bytes(memoryview(self._buf)[off: off + k])
        return super().read(n)

    def _peek(self) -> tuple[Any, int, int]:
        pos = self._pos
        if self._bs:
            if not self._covers(pos):
                if self._size is not None and pos >= self._size:
                    return b"", 0, 0
                self._fill_buffer(pos)
                if not self._covers(pos):
                    return b"", 0, 0
            assert self._buf is not None
            return self._buf, pos - self._buf_start, self._buf_len
        size = self._ensure_size()
        if pos >= size:
            return b"", 0, 0
        r = engine.run(_get(self._backend, self._obj, pos, min(pos + _PEEK_SIZE, size),
                            self._attempts, etag=self._etag, total=size,
                            check=self._checker()))
        dest, self._dest = self._dest, (pos, memoryview(r.data))  # what this call returns
        try:
            self._account(r.crcs)
        finally:
            self._dest = dest
        return r.data, 0, len(r.data)

    def _release(self) -> None:
        self._buf = None
        self._buf_len = 0


def _normalize_ranges(ranges: Any) -> list[tuple[int, int]]:
    if ranges is None or isinstance(ranges, (str, bytes)):
        raise ValueError("ranges must be a sequence of (start, end) byte ranges (end exclusive), "
                         f"got {ranges!r}")
    out: list[tuple[int, int]] = []
    prev = -1
    for i, r in enumerate(ranges):
        if hasattr(r, "start") and hasattr(r, "end"):
            s, e = r.start, r.end
        else:
            try:
                s, e = r
            except (TypeError, ValueError):
                raise ValueError(f"ranges[{i}] must be a (start, end) pair, got {r!r}") from None
        if (isinstance(s, bool) or isinstance(e, bool) or not isinstance(s, int)
                or not isinstance(e, int) or s < 0 or e < s):
            raise ValueError(f"ranges[{i}] must be integers 0 <= start <= end (end exclusive), "
                             f"got {r!r}")
        if s < prev:
            raise ValueError(
                f"ranges must be sorted by start offset (ranges[{i}] starts at {s}, before the "
                f"previous one at {prev}): sort them, or use reader='sequential' "
                "(S3ReaderConstructor.sequential()) for access in any order")
        prev = s
        if e > s:
            out.append((s, e))
    return out


def _coalesce(ranges: Sequence[tuple[int, int]], max_gap: float,
              max_group: float = float("inf")) -> list[tuple[int, int]]:
    """Spans of ``ranges`` (sorted by start): ranges at most ``max_gap`` apart share a span
    unless that makes it longer than ``max_group`` (overlapping ranges always share one)."""
    groups: list[tuple[int, int]] = []
    for s, e in ranges:
        if groups and s - groups[-1][1] <= max_gap:
            gs, ge = groups[-1]
            if s < ge or max(ge, e) - gs <= max_group:
                groups[-1] = (gs, max(ge, e))
                continue
        groups.append((s, e))
    return groups


def _check_max_gap(max_gap_size: Any) -> float:
    if (isinstance(max_gap_size, bool) or not isinstance(max_gap_size, (int, float))
            or math.isnan(max_gap_size) or max_gap_size < 0):
        raise ValueError("max_gap_size must be a number of bytes >= 0 or float('inf'), "
                         f"got {max_gap_size!r}")
    return max_gap_size


class GroupBuffers(BufferPool):
    """Buffers that :class:`CoalescingReader` groups are fetched into, reused from one group
    (and reader) to the next instead of each group taking fresh memory (whose page faults
    and kernel zeroing cost about as much CPU as receiving the bytes): a thread-safe
    :class:`~objio._buffers.BufferPool` whose :meth:`give` leaves the caller's view open.

    Only for callers that keep no view of a group once the reader has moved past it: a
    reused buffer is overwritten. Holds at most ``max_bytes`` of free buffers; :meth:`clear`
    drops them.
    """

    def __init__(self, max_bytes: int = 256 * 1024 * 1024) -> None:
        super().__init__(max_bytes)
        self._lock = threading.Lock()

    def take(self, n: int) -> memoryview:
        """A writable view of exactly ``n`` bytes (content unspecified)."""
        with self._lock:
            return super().take(n)

    def give(self, data: object) -> None:
        """Return the buffer behind ``data`` (a memoryview from :meth:`take`) for reuse."""
        if isinstance(data, memoryview):
            with self._lock:
                self._keep(data.obj)

    def clear(self) -> None:
        with self._lock:
            super().clear()


class _Group(NamedTuple):
    data: Any  # bytes [start, min(stop, size)) of the object
    size: int
    etag: str
    pieces: list[Piece]  # their CRC32C pieces, when a check was given
    probe: GetResult | None  # the first response, when the size was not known


async def _fetch_group(backend: Any, obj: ObjectURI, start: int, stop: int, size: int | None,
                       etag: str, attempts: int, piece: int, parallel: int,
                       buffer: memoryview | None = None, *, config: Any = None,
                       verify: bool = False, check: ReadCheck | None = None) -> _Group:
    """Bytes [start, min(stop, size)) in one buffer (``buffer``, of ``stop - start`` bytes,
    when given and the size is known); learns size and ETag when unknown (the caller then
    computes the CRC32C pieces itself: ``probe`` is set)."""
    if size is None:
        first = min(stop, start + piece)
        r = await _probe(backend, obj, start, first, attempts, config=config, verify=verify)
        size, etag = r.total_size, r.etag
        stop = min(stop, size)
        head = len(r.data)
        if start + head >= stop:
            data = r.data if isinstance(r.data, bytearray) else bytearray(r.data)
            return _Group(data, size, etag, [], r)
        buf = new_buffer(stop - start)
        mv = memoryview(buf)
        mv[:head] = r.data
        await _fill(backend, obj, start + head, mv[head:], etag, attempts, piece, parallel, size)
        return _Group(buf, size, etag, [], r)
    stop = min(stop, size)
    if stop <= start:
        return _Group(bytearray(), size, etag, [], None)
    if buffer is not None:
        view = buffer[:stop - start]
        pieces = await _fill(backend, obj, start, view, etag, attempts, piece, parallel, size,
                             check=check)
        return _Group(view, size, etag, pieces, None)
    buf = new_buffer(stop - start)
    pieces = await _fill(backend, obj, start, memoryview(buf), etag, attempts, piece, parallel,
                         size, check=check)
    return _Group(buf, size, etag, pieces, None)


def _is_buffer(d: Any) -> bool:
    return isinstance(d, (bytearray, memoryview))


class CoalescingReader(_BufferedRead1, ObjectReader):
    """Reads known byte ranges with one ranged GET per group of nearby ranges (the seed's
    ``dcp_optimized`` reader), fetching the next groups while the current one is read.

    Args:
        uri: the object; it, ``client``, ``size`` (bytes) and ``etag`` as for
            :class:`ObjectReader`.
        ranges: the byte ranges that will be read, as ``(start, end)`` pairs (end exclusive)
            or objects with ``start``/``end`` attributes, sorted by start.
        max_gap_size: ranges separated by at most this many bytes are fetched together
            (default :data:`DEFAULT_MAX_GAP_SIZE`; ``float("inf")``: one request for all; 0:
            only touching ranges merge). A group stops growing at :data:`MAX_GROUP_SIZE`
            (16 MiB) between two ranges, so the first ranges can be read while later ones
            still arrive; a larger single range is a group of its own (fetched in parallel
            pieces).
        buffers: a :class:`GroupBuffers` the groups are fetched into and handed back to once
            the reader has moved past them (only when no view of a group is kept after that:
            the buffer is reused), or None (default): a new buffer per group.

    Access rules: reads must lie inside one group (a coalesced span of ranges) and move
    forward from group to group; inside the current group any order works (seek back and
    forth freely). Moving to a later group releases the earlier ones. A read before the current
    group or outside every declared range raises ValueError. Memory: the current group and the
    groups fetched ahead of it (up to :data:`GROUP_WINDOW_SIZE`, 32 MiB, at least one group;
    once the object's size is known, after the first group).

    Raises:
        ValueError: ``buffers`` not a :class:`GroupBuffers`, ranges malformed or not sorted by
            start, or a bad URI; on a read: before the current group or outside every range.
    """

    reader_type = "coalescing"

    def __init__(self, uri: Any, ranges: Iterable[Any], *, max_gap_size: float = DEFAULT_MAX_GAP_SIZE,
                 client: Any = None, size: int | None = None, etag: str | None = None,
                 buffers: GroupBuffers | None = None) -> None:
        super().__init__(uri, client=client, size=size, etag=etag)
        if buffers is not None and not isinstance(buffers, GroupBuffers):
            raise ValueError(f"buffers must be a GroupBuffers or None, got {type(buffers).__name__}")
        self._buffers = buffers
        self._max_gap = _check_max_gap(max_gap_size)
        self._ranges = _normalize_ranges(ranges)
        self._groups = _coalesce(self._ranges, self._max_gap, MAX_GROUP_SIZE)
        self._starts = [g[0] for g in self._groups]
        self._cur = -1
        self._data: dict[int, Any] = {}  # group index -> concurrent future or buffer

    @property
    def ranges(self) -> list[tuple[int, int]]:
        """The declared ranges (empty ones dropped)."""
        return list(self._ranges)

    @property
    def groups(self) -> list[tuple[int, int]]:
        """The coalesced spans, one ranged GET each: ``(start, end)``, end exclusive."""
        return list(self._groups)

    @property
    def max_gap_size(self) -> float:
        return self._max_gap

    def prefetch(self) -> None:
        self._check_open()
        if self._groups and self._cur < 0:
            self._submit(0)

    def _submit(self, gi: int) -> None:
        if gi in self._data or gi >= len(self._groups):
            return
        s, e = self._groups[gi]
        buffer = None
        if self._buffers is not None and self._size is not None:
            buffer = self._buffers.take(max(0, min(e, self._size) - s))
        self._data[gi] = engine.submit(_fetch_group(self._backend, self._obj, s, e, self._size,
                                                    self._etag, self._attempts, self._piece,
                                                    self._parallel, buffer,
                                                    config=self._client.config,
                                                    verify=self._verify, check=self._checker()))

    def _drop(self, gi: int) -> None:
        """Release group ``gi``: cancel its fetch, or hand its buffer back for reuse."""
        d = self._data.pop(gi)
        if not _is_buffer(d):
            if not d.done():
                d.cancel()
        elif self._buffers is not None:
            self._buffers.give(memoryview(d))

    def _group_buffer(self, gi: int) -> Any:
        d = self._data.get(gi)
        if d is None:
            self._submit(gi)
            d = self._data[gi]
        if not _is_buffer(d):
            try:
                g: _Group = d.result()
            except BaseException:
                if d.done():
                    self._data.pop(gi, None)
                raise
            self._learn(g.size, g.etag)
            self._data[gi] = d = g.data
            pieces = g.pieces
            start = self._groups[gi][0]
            if g.probe is not None:
                self._learn_stored(g.probe, start)
                c = self._checker()
                pieces = c.crcs(start, memoryview(g.data)) if c is not None else []
            try:
                self._account(pieces)
            except BaseException:
                if gi in self._data:
                    self._drop(gi)
                raise
        if self._size is not None:
            self._read_ahead(gi)
        return d

    def _read_ahead(self, gi: int) -> None:
        """Fetch the groups after ``gi`` while it is read: up to GROUP_WINDOW_SIZE bytes."""
        ahead = 0
        for g in range(gi + 1, len(self._groups)):
            s, e = self._groups[g]
            if ahead and ahead + (e - s) > GROUP_WINDOW_SIZE:
                break
            self._submit(g)
            ahead += e - s

    def _locate(self, pos: int) -> int:
        gi = bisect.bisect_right(self._starts, pos) - 1
        if gi >= 0 and pos < self._groups[gi][1]:
            return gi
        return -1

    def _span(self, pos: int, n: int | None) -> tuple[Any, int, int]:
        """Buffer and offsets of bytes [pos, pos + n) (to the end of the object when n is
        None), validating the access pattern."""
        gi = self._locate(pos)
        if gi < 0:
            if self._ensure_size() <= pos:
                return b"", 0, 0
            raise ValueError(
                f"CoalescingReader({self.uri}): offset {pos} is outside the declared byte "
                f"ranges; declare every range that will be read, or use reader='sequential' / "
                "'range_based' (S3ReaderConstructor.sequential()) for arbitrary access")
        if gi < self._cur:
            s, e = self._groups[gi]
            raise ValueError(
                f"CoalescingReader({self.uri}): backward access to offset {pos} (in range group "
                f"[{s}, {e}), already released; the reader is at group "
                f"{self._groups[self._cur]}); reads must follow the order of the declared "
                "ranges. Use reader='sequential' (S3ReaderConstructor.sequential()) for "
                "out-of-order access")
        if gi > self._cur:
            for old in [g for g in self._data if g < gi]:
                self._drop(old)
            self._cur = gi
        buf = self._group_buffer(gi)
        assert self._size is not None
        gs, ge = self._groups[gi]
        ge = min(ge, self._size)
        if pos >= self._size:
            return b"", 0, 0
        end = self._size if n is None else min(pos + n, self._size)
        if end > ge:
            raise ValueError(
                f"CoalescingReader({self.uri}): the read of bytes [{pos}, {end}) goes past the "
                f"end of the declared ranges at {ge}; declare the ranges that will be read, or "
                "use reader='sequential' for reads outside them")
        return buf, pos - gs, end - gs

    def _readinto(self, mv: memoryview) -> int:
        if not len(mv):
            return 0
        buf, lo, hi = self._span(self._pos, len(mv))
        k = hi - lo
        mv[:k] = memoryview(buf)[lo:hi]
        self._pos += k
        return k

    def read(self, size: int | None = -1, /) -> bytes:
        return bytes(self.readview(size))

    def readview(self, size: int | None = -1, /, *, writable: bool = False) -> memoryview:
        """Like :meth:`read` (up to ``size`` bytes), but returns a memoryview of the fetched
        group without copying (it keeps the group's buffer alive while referenced). Read-only unless ``writable``:
        a writable view is of the reader's own buffer (for ``torch.frombuffer``; what is
        written there is seen by later reads of the same bytes)."""
        self._check_open()
        n = None if size is None or operator.index(size) < 0 else operator.index(size)
        if n == 0:
            return memoryview(bytearray())
        buf, lo, hi = self._span(self._pos, n)
        self._pos += hi - lo
        view = memoryview(buf)[lo:hi]
        return view if writable else view.toreadonly()

    def _peek(self) -> tuple[Any, int, int]:
        pos = self._pos
        gi = self._locate(pos)
        if gi < 0:
            return self._span(pos, 0)
        buf, lo, _ = self._span(pos, 0)
        gs, ge = self._groups[gi]
        assert self._size is not None
        return buf, lo, min(ge, self._size) - gs

    def _release(self) -> None:
        for gi in list(self._data):
            self._drop(gi)

    def _patch_held(self, start: int, data: memoryview) -> None:
        for gi, d in self._data.items():
            if _is_buffer(d):
                patch(d, self._groups[gi][0], start, data)

