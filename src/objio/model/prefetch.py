"""Prefetch in open order: the scheduler behind :meth:`objio.model.ModelConnector.open`.

Every :meth:`~Prefetcher.open` queues an object. One scheduler per connector, running on the
engine's event loop, fetches the queued objects in the order they were opened, in chunks of
``chunk_size`` bytes with up to ``max_in_flight`` ranged GETs at once (each received straight
into its own buffer), while the bytes fetched and not yet consumed stay within
``prefetch_memory``:

* The scheduler always takes the first chunk not yet fetched of the earliest opened object
  that still has one (an object being read on demand goes first, see below). An object's
  first request is its first chunk, which also tells its size; while that answer is on its
  way, later objects are asked for their size with a HEAD request (no data, no budget), so
  their chunks can follow without a pause. No chunk of a later object is requested before
  every chunk of an earlier one has been, so objects complete in open order (exactly so with
  ``max_in_flight=1``).
* A chunk's bytes count against the budget from the moment its request is sent until the
  reader has consumed them (read past the chunk's end, or moved on to a later chunk: the
  chunks before the read position are released), or the object is closed or garbage
  collected. When the next chunk would exceed the budget, prefetch waits for a release.
* A read of bytes that are not fetched yet is served on demand, ahead of the queue and
  outside the budget (the caller is waiting, so those bytes are consumed right away): the
  chunk read and up to ``demand_window - 1`` chunks after it are fetched at once, and that
  object moves to the front of the prefetch queue. The budget being held by earlier objects
  nobody reads yet therefore never blocks a read (no deadlock), and the extra memory is at
  most ``demand_window`` chunks per object being read on demand.
* Seeking back to bytes already released fetches them again (a ranged GET of their chunk).

Memory bound: ``prefetch_memory`` bytes of prefetched, unconsumed data, plus ``demand_window``
chunks per object being read on demand, plus the chunk each open reader is reading.

Integrity (with the client's ``checksums`` on): an object's first chunk is fetched without a
Range header, so it brings the CRC32C the store keeps with the object; every chunk's CRC32C is
computed as it lands, and once every chunk has arrived (a complete prefetch, or a reader that
read everything) they are combined and compared with the stored one (see
:mod:`objio._integrity`). On a mismatch the suspect chunks are fetched once more: a chunk not
handed to its reader yet is replaced in place when the second reading matches; a chunk already
handed over is corrected in the read that is still in progress if its bytes have not been
returned yet; otherwise, or when the second reading does not match either, the read that
reaches the end of the object raises :class:`objio.IntegrityError` naming the object and the
byte range. That read waits for the check: the end of an object is returned only once it is
verified. Objects without a stored CRC32C, and objects not read or prefetched completely, are
not checked.

All scheduler state lives on the engine loop; readers talk to it through ``engine.run``
(acquire a chunk: at most once per chunk) and ``call_soon_threadsafe`` (release, close), so a
read served from a prefetched chunk makes no request and takes no lock.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import weakref
from typing import Any

from .. import engine
from .._buffers import new_buffer
from .._integrity import ReadCheck, integrity_error, patch
from ..backend import GetResult
from ..config import ClientConfig
from ..errors import AlreadyExistsError, ObjectStoreError
from ..io.readers import ObjectReader
from ..uri import ObjectURI

log = logging.getLogger("objio.model")


class _Chunk:
    __slots__ = ("idx", "start", "stop", "buf", "demand", "task", "done", "error", "nbytes")

    def __init__(self, idx: int, start: int, stop: int, demand: bool, nbytes: int) -> None:
        self.idx = idx
        self.start = start
        self.stop = stop            # exclusive; for a chunk of unknown size: start + chunk_size
        self.buf: bytearray | None = None
        self.demand = demand        # fetched on demand: outside the budget
        self.nbytes = nbytes        # bytes counted (budget or demand)
        self.task: asyncio.Task[None] | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.error: BaseException | None = None


class _Object:
    __slots__ = ("seq", "obj", "backend", "size", "etag", "chunks", "next_idx", "closed",
                 "on_demand", "sizing", "head", "failed", "fetched", "complete", "check",
                 "acquired", "verdict", "fixes", "error", "__weakref__")

    def __init__(self, seq: int, obj: ObjectURI, backend: Any, size: int | None) -> None:
        self.seq = seq
        self.obj = obj
        self.backend = backend
        self.size = size
        self.etag = ""
        self.chunks: dict[int, _Chunk] = {}
        self.next_idx = 0           # the prefetcher's next chunk (never behind the reader)
        self.closed = False
        self.on_demand = False      # read on demand: first in the queue
        self.sizing: _Chunk | None = None  # the request that will tell the size
        self.head: asyncio.Task[None] | None = None  # a HEAD asking for the size
        self.failed = False         # a prefetch request failed: reads will ask again
        self.fetched: set[int] = set()  # chunks that arrived at least once
        self.complete = False       # every chunk arrived once (for the completion order)
        self.check: ReadCheck | None = None  # CRC32C pieces (with checksums on)
        self.acquired: set[int] = set()  # chunks handed to the reader
        self.verdict: asyncio.Task[None] | None = None  # the whole-object check, once complete
        self.fixes: list[tuple[int, memoryview]] = []  # second readings of handed-out chunks
        self.error: BaseException | None = None  # the check's IntegrityError


class Prefetcher:
    """The scheduler of one connector (see the module docs). Create it anywhere; its state is
    used on the engine loop only.

    Args:
        prefetch_memory: bytes of prefetched, unconsumed data at most (>= 1).
        chunk_size: bytes per ranged GET (>= 1).
        max_in_flight: prefetch requests at once (>= 1); on-demand requests come on top.
        demand_window: chunks fetched at once by a read of bytes not prefetched yet (>= 1).
        attempts: requests per chunk, retries included.
        config: the client's configuration; with its ``checksums`` on, whole objects are
            checked against their stored CRC32C (see the module docs).
    """

    def __init__(self, prefetch_memory: int, chunk_size: int, max_in_flight: int,
                 demand_window: int, attempts: int, config: ClientConfig | None = None) -> None:
        self.budget = prefetch_memory
        self.chunk_size = chunk_size
        self.max_in_flight = max_in_flight
        self.demand_window = demand_window
        self.attempts = attempts
        self.config = config
        self.verify = bool(config is not None and config.checksums)
        self.used = 0               # prefetched bytes not yet consumed (in flight or held)
        self.peak_used = 0
        self.demand_bytes = 0       # bytes fetched on demand and not yet consumed
        self.in_flight = 0
        self.heads = 0
        self.max_heads = max(1, max_in_flight // 4)
        self.head_requests = 0
        self.requests = 0
        self.demand_requests = 0
        self.completed: list[str] = []  # objects whose every chunk arrived, in that order
        self.trace: list[tuple[int, int, bool]] | None = None  # (seq, chunk, demand) per request
        self._seq = itertools.count()
        self._queue: list[_Object] = []  # open objects with chunks left to prefetch
        self._objects: weakref.WeakSet[_Object] = weakref.WeakSet()  # every open object
        self._lock = threading.Lock()  # guards _seq across caller threads

    # ---------------------------------------------------------------- caller side (any thread)
    def register(self, obj: ObjectURI, backend: Any, size: int | None) -> _Object:
        with self._lock:
            seq = next(self._seq)
        state = _Object(seq, obj, backend, size)
        engine.run(self._add(state))
        return state

    def release_below(self, state: _Object, idx: int) -> None:
        """Chunks before ``idx`` are consumed (no wait)."""
        self._soon(self._release_below, state, idx)

    def close(self, state: _Object) -> None:
        """Forget the object: cancel its requests, release its chunks (no wait)."""
        self._soon(self._close, state)

    def close_all(self) -> None:
        """Close every object opened through this prefetcher (no wait)."""
        for state in list(self._objects):
            self._soon(self._close, state)

    def _soon(self, fn: Any, *args: Any) -> None:
        try:
            lp = engine.loop()
        except RuntimeError:  # interpreter shutting down
            return
        if engine.in_engine_thread():
            fn(*args)
        else:
            try:
                lp.call_soon_threadsafe(fn, *args)
            except RuntimeError:  # loop closed
                pass

    def stats(self) -> dict[str, Any]:
        """Counters (read without a lock: a snapshot): ``prefetch_memory``, ``prefetched_bytes``
        (held or in flight, not consumed), ``peak_prefetched_bytes``, ``demand_bytes``,
        ``requests`` (GETs), ``head_requests``, ``demand_requests``, ``open_objects``, ``completed`` (URIs in the order
        their last chunk arrived)."""
        return {"prefetch_memory": self.budget, "chunk_size": self.chunk_size,
                "prefetched_bytes": self.used, "peak_prefetched_bytes": self.peak_used,
                "demand_bytes": self.demand_bytes, "requests": self.requests,
                "head_requests": self.head_requests,
                "demand_requests": self.demand_requests, "queued_objects": len(self._queue),
                "completed": list(self.completed)}

    # ---------------------------------------------------------------- loop side
    async def _add(self, state: _Object) -> None:
        self._queue.append(state)
        self._objects.add(state)
        self._poke()

    def _poke(self) -> None:
        """Start what the order and the budget allow now (called on the loop after every
        change: an open, a completed request, a release, a close)."""
        while self.in_flight < self.max_in_flight and self._start_next():
            pass

    def _start_next(self) -> bool:
        """Start the next request, if the order and the budget allow one: the next chunk of
        the first object in the order (its first chunk tells its size), or, while that first
        object's size is still unknown, a HEAD of a later object (no data, no budget) so its
        chunks can follow at once; never a chunk of a later object."""
        order = sorted(self._queue, key=lambda s: (not s.on_demand, s.seq))
        blocked = False  # an earlier object is still waiting for its size
        for s in order:
            if s.closed or s.failed:
                self._queue.remove(s)
                continue
            if s.size is None:
                if not blocked and s.sizing is None:
                    need = self.chunk_size
                    if self.used + need > self.budget and self.used > 0:
                        return False
                    self._fetch(s, s.next_idx, demand=False)
                    return True
                if s.sizing is None and s.head is None and self.heads < self.max_heads:
                    self._head(s)
                    return True
                blocked = True
                continue
            if blocked:
                continue
            n_chunks = -(-s.size // self.chunk_size)
            idx = s.next_idx
            while idx < n_chunks and idx in s.chunks:
                idx += 1
            s.next_idx = idx
            if idx >= n_chunks:
                self._queue.remove(s)
                continue
            start = idx * self.chunk_size
            need = min(self.chunk_size, s.size - start)
            if self.used + need > self.budget and self.used > 0:
                return False  # wait for a release (never skip ahead: keep the open order)
            self._fetch(s, idx, demand=False)
            return True
        return False

    def _head(self, s: _Object) -> None:
        self.heads += 1
        self.in_flight += 1
        self.head_requests += 1

        async def head() -> None:
            try:
                info = await engine.with_retries(
                    lambda: s.backend.head(s.obj, checksum=self._verifies(s)), self.attempts)
                if s.size is None and s.sizing is None:
                    self._learn(s, info.size, info.etag)
                    if s.check is not None:
                        s.check.learn(info.stored)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the object's own GET will report it
                log.debug("HEAD %s failed: %s", s.obj, e)
                s.failed = True
            finally:
                self.heads -= 1
                self.in_flight -= 1
                self._poke()

        s.head = asyncio.ensure_future(head())

    def _fetch(self, s: _Object, idx: int, *, demand: bool) -> _Chunk:
        start = idx * self.chunk_size
        stop = start + self.chunk_size if s.size is None else min(start + self.chunk_size, s.size)
        ch = _Chunk(idx, start, stop, demand, stop - start)
        if demand:
            self.demand_bytes += ch.nbytes
            self.demand_requests += 1
        else:
            self.used += ch.nbytes
            self.peak_used = max(self.peak_used, self.used)
            self.in_flight += 1
        self.requests += 1
        if self.trace is not None:
            self.trace.append((s.seq, idx, demand))
        s.chunks[idx] = ch
        if s.size is None:
            s.sizing = ch
        ch.task = asyncio.ensure_future(self._get(s, ch))
        return ch

    def _verifies(self, s: _Object) -> bool:
        return self.verify and s.obj.scheme != "file"

    async def _get(self, s: _Object, ch: _Chunk) -> None:
        try:
            if s.size is None:
                if self._verifies(s) and ch.start == 0:
                    # no Range: brings the stored CRC32C (and checks an object it holds whole)
                    assert self.config is not None
                    r: GetResult = await engine.get_first(s.backend, s.obj, self.config,
                                                          ch.stop)
                else:
                    r = await engine.with_retries(
                        lambda: s.backend.get(s.obj, ch.start, ch.stop - 1), self.attempts)
                total = r.total_size
                if total < 0:  # the range starts at/after the end: learn the size
                    info = await engine.with_retries(lambda: s.backend.head(s.obj),
                                                     self.attempts)
                    total, r.etag = info.size, info.etag
                self._learn(s, total, r.etag)
                data = r.data if isinstance(r.data, bytearray) else bytearray(r.data)
                ch.stop = ch.start + len(data)
                self._recount(ch, len(data))
                ch.buf = data
                c = s.check
                if c is not None and ch.start == 0:
                    c.learn(r.stored)
                    if r.stored is not None and total <= len(data):
                        c.done = True  # get_first checked it
                await self._account(s, ch.start, memoryview(data))
            else:
                buf = new_buffer(ch.stop - ch.start)
                if ch.stop > ch.start:
                    etag = s.etag or None
                    view = memoryview(buf)
                    c = s.check
                    unranged = c is not None and ch.start == 0 and not c.known
                    r = await engine.with_retries(
                        lambda: s.backend.get(s.obj, ch.start, ch.stop - 1, if_match=etag,
                                              into=view, unranged=unranged), self.attempts)
                    if unranged and c is not None:
                        c.learn(r.stored)
                    await self._account(s, ch.start, view)
                ch.buf = buf
        except AlreadyExistsError as e:  # If-Match failed: the object changed
            ch.error = ObjectStoreError(
                f"GetObject {s.obj} failed: the object changed while it was being read (ETag "
                f"is no longer {s.etag!r}); open it again", operation="GetObject",
                uri=str(s.obj), status=e.status, code=e.code)
        except asyncio.CancelledError:
            ch.error = ValueError(f"{s.obj} was closed")
            raise
        except Exception as e:  # noqa: BLE001 - handed to the reader that waits for it
            ch.error = e
        finally:
            if s.sizing is ch:
                s.sizing = None
            if not ch.demand:
                self.in_flight -= 1
            if ch.error is None:
                s.fetched.add(ch.idx)
            if not ch.done.done():
                ch.done.set_result(None)
            if ch.error is not None and s.chunks.get(ch.idx) is ch:
                self._drop(s, ch)  # a later read asks again and gets the error itself
                if not ch.demand:
                    s.failed = True  # no more prefetch of it
            self._check_complete(s)
            self._poke()

    # ---------------------------------------------------------------- integrity (loop side)
    async def _account(self, s: _Object, start: int, view: memoryview) -> None:
        """The CRC32C pieces of a chunk that just landed; once every byte of the object has
        arrived, the whole-object check starts (:meth:`_settle`)."""
        c = s.check
        if c is None or c.done or not c.needed:
            return
        if c.wants_parts:
            await engine.find_parts(s.backend, s.obj, c, self.attempts)
        pieces = await engine.crc_of(c, start, view)
        if c.add(pieces) and s.verdict is None and not s.closed:
            s.verdict = asyncio.ensure_future(self._settle(s))

    async def _settle(self, s: _Object) -> None:
        c = s.check
        assert c is not None
        try:
            if not c.known:  # no chunk from byte 0 told it: ask
                info = await engine.with_retries(lambda: s.backend.head(s.obj, checksum=True),
                                                 self.attempts)
                c.learn(info.stored)
            if not c.needed:
                return
            await engine.find_parts(s.backend, s.obj, c, self.attempts)
            await engine.settle(s.backend, s.obj, c, etag=s.etag, attempts=self.attempts,
                                piece=self.chunk_size, parallel=max(1, self.max_in_flight),
                                repair=lambda a, d: self._repair(s, a, d))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - raised by the reader reaching the end
            s.error = e

    def _repair(self, s: _Object, start: int, data: memoryview) -> bool:
        """A second reading of bytes [start, start + len(data)): replaces them in chunks not
        handed to the reader yet; for chunks handed over, the reader decides (``fixes``)."""
        end = start + len(data)
        first, last = start // self.chunk_size, (end - 1) // self.chunk_size
        for idx in range(first, last + 1):
            lo = max(start, idx * self.chunk_size)
            hi = min(end, (idx + 1) * self.chunk_size)
            piece = data[lo - start: hi - start]
            ch = s.chunks.get(idx)
            if idx in s.acquired:
                s.fixes.append((lo, piece))
            elif ch is not None and ch.buf is not None and ch.task is not None \
                    and ch.task.done():
                memoryview(ch.buf)[lo - ch.start: hi - ch.start] = piece
        return True

    async def outcome(self, state: _Object) -> tuple[BaseException | None,
                                                     list[tuple[int, memoryview]]]:
        """Wait for the object's whole-object check if it has started; returns its error (if
        any) and the second readings of chunks already handed to the reader."""
        if state.verdict is not None:
            await asyncio.shield(state.verdict)
        elif state.check is not None:  # not every byte arrived: a partial read, not checked
            state.check.done = True
        fixes, state.fixes = state.fixes, []
        return state.error, fixes

    def _learn(self, s: _Object, size: int, etag: str) -> None:
        if s.size is None:
            s.size = size
            s.etag = etag
            if self._verifies(s):
                s.check = ReadCheck(str(s.obj), size)
            n_chunks = -(-size // self.chunk_size)
            # chunks planned before the size was known past the end are empty: drop them
            for idx in [i for i in s.chunks if i >= max(1, n_chunks)]:
                ch = s.chunks[idx]
                if ch is not s.sizing:
                    self._drop(s, ch)

    def _recount(self, ch: _Chunk, nbytes: int) -> None:
        delta = nbytes - ch.nbytes
        ch.nbytes = nbytes
        if ch.demand:
            self.demand_bytes += delta
        else:
            self.used += delta

    def _drop(self, s: _Object, ch: _Chunk) -> None:
        if s.chunks.get(ch.idx) is ch:
            del s.chunks[ch.idx]
        if ch.task is not None and not ch.task.done():
            ch.task.cancel()
        if ch.demand:
            self.demand_bytes -= ch.nbytes
        else:
            self.used -= ch.nbytes
        ch.nbytes = 0
        ch.buf = None

    def _check_complete(self, s: _Object) -> None:
        if s.complete or s.size is None or s.closed:
            return
        if len(s.fetched) >= -(-s.size // self.chunk_size):
            s.complete = True
            self.completed.append(str(s.obj))

    def _release_below(self, s: _Object, idx: int) -> None:
        for i in [i for i in s.chunks if i < idx]:
            ch = s.chunks[i]
            if ch is s.sizing:
                continue
            self._drop(s, ch)
        s.next_idx = max(s.next_idx, idx)
        self._poke()

    def _close(self, s: _Object) -> None:
        if s.closed:
            return
        s.closed = True
        if s.head is not None and not s.head.done():
            s.head.cancel()
        if s.verdict is not None and not s.verdict.done():
            s.verdict.cancel()
        for ch in list(s.chunks.values()):
            self._drop(s, ch)
        if s in self._queue:
            self._queue.remove(s)
        self._poke()

    async def acquire(self, s: _Object, idx: int) -> _Chunk:
        """Chunk ``idx`` of ``s`` once its bytes are there (chunks before it are released);
        fetched on demand when it is not prefetched, with the next chunks of the demand
        window. Raises: the chunk's request error."""
        s.acquired.add(idx)
        self._release_below(s, idx)
        ch = s.chunks.get(idx)
        if ch is None and s.sizing is not None and idx > 0:
            await asyncio.shield(s.sizing.done)  # the size first: it tells where the end is
            ch = s.chunks.get(idx)
        if ch is None:
            if s.size is not None and idx * self.chunk_size >= s.size:
                raise EOFError
            s.on_demand = True
            ch = self._fetch(s, idx, demand=True)
            if s.size is not None:
                n_chunks = -(-s.size // self.chunk_size)
                for j in range(idx + 1, min(n_chunks, idx + self.demand_window)):
                    if j not in s.chunks:
                        self._fetch(s, j, demand=True)
            if s not in self._queue and not s.closed:
                self._queue.append(s)
            self._poke()
        await asyncio.shield(ch.done)
        if ch.error is not None:
            raise ch.error
        return ch


class PrefetchedObject(ObjectReader):
    """A file opened by :meth:`objio.model.ModelConnector.open`: read-only, seekable, binary
    (``read``, ``readinto``, ``read1``, ``readline``, iteration, ``seek`` whence 0/1/2,
    ``tell``, ``close``, context manager; :class:`io.BufferedIOBase`). Reads are served from
    the bytes the connector prefetched, in open order; see :mod:`objio.model.prefetch`.

    Closing it (or dropping the last reference to it) releases its prefetched bytes at once.
    ``size`` is the object's size in bytes (known after the first request). Not thread-safe
    (like Python's files): use one per thread. Errors: FileNotFoundError (on the first read),
    PermissionError, TimeoutError, ObjectStoreError, ValueError (I/O on a closed object).
    """

    reader_type = "prefetched"

    def __init__(self, uri: Any, prefetcher: Prefetcher, *, client: Any,
                 size: int | None = None) -> None:
        super().__init__(uri, client=client, size=size)
        self._verify = False  # the prefetcher checks whole objects (see the module docs)
        self._pf = prefetcher
        self._state = prefetcher.register(self._obj, self._backend, size)
        self._cs = prefetcher.chunk_size
        self._cur: _Chunk | None = None
        self._checked = not prefetcher.verify  # the end was reached and the check is over
        # closing on garbage collection without keeping the object alive
        self._finalizer = weakref.finalize(self, prefetcher.close, self._state)
        self._finalizer.atexit = False  # at exit the engine is gone: nothing to release

    # -- chunk access ----------------------------------------------------------------------
    def _chunk(self, pos: int) -> _Chunk | None:
        """The chunk holding ``pos`` (None at/after the end)."""
        cur = self._cur
        if cur is not None and cur.start <= pos < cur.stop and cur.buf is not None:
            return cur
        idx = pos // self._cs
        self._cur = None
        try:
            ch = engine.run(self._pf.acquire(self._state, idx))
        except EOFError:
            self._sync_size()
            self._end_check()
            return None
        self._sync_size()
        if ch.buf is None or pos >= ch.stop:
            self._end_check()
            return None
        self._cur = ch
        return ch

    def _end_check(self) -> None:
        """At the end of the object: wait for the whole-object check (if every chunk arrived)
        and apply its second readings to bytes this call has not returned yet; raise
        IntegrityError for bytes already returned, or when the check failed."""
        if self._checked or self._size is None or self._pos < self._size:
            return
        self._checked = True
        error, fixes = engine.run(self._pf.outcome(self._state))
        if error is not None:
            raise error
        lost = []
        for start, data in fixes:
            if self._repair(start, data):
                cur = self._cur
                if cur is not None and cur.buf is not None:
                    patch(memoryview(cur.buf)[: cur.stop - cur.start], cur.start, start, data)
            else:
                lost.append((start, start + len(data)))
        if lost:
            raise integrity_error(self.uri, lost, "they were damaged in transit and had been "
                                  "returned before the whole object could be checked (a "
                                  "second reading matches): read the object again")

    def _sync_size(self) -> None:
        s = self._state
        if self._size is None and s.size is not None:
            self._learn(s.size, s.etag)

    def _head(self) -> None:
        """The size, from the first answer about the object (no HEAD request)."""
        self._chunk(self._pos)
        if self._size is None:
            self._chunk(0)
        if self._size is None:  # pragma: no cover - the first answer always tells it
            super()._head()

    def _learn_size(self) -> None:
        self._ensure_size()

    def _readinto(self, mv: memoryview) -> int:
        n = len(mv)
        got = 0
        while got < n:
            ch = self._chunk(self._pos)
            buf = None if ch is None else ch.buf
            if ch is None or buf is None:
                break
            off = self._pos - ch.start
            k = min(ch.stop - self._pos, n - got)
            mv[got: got + k] = memoryview(buf)[off: off + k]
            got += k
            self._pos += k
        self._end_check()
        self._after_read()
        return got

    def _peek(self) -> tuple[Any, int, int]:
        ch = self._chunk(self._pos)
        buf = None if ch is None else ch.buf
        if ch is None or buf is None:
            return b"", 0, 0
        return buf, self._pos - ch.start, ch.stop - ch.start

    def read1(self, size: int | None = -1, /) -> bytes:
        self._check_open()
        buf, lo, hi = self._peek()
        if size is not None and size >= 0:
            hi = min(hi, lo + size)
        if self._size is not None and self._pos + (hi - lo) >= self._size:
            # the end: the check first (it may replace bytes of this chunk)
            self._dest = (self._pos, memoryview(buf)[lo:hi])
            try:
                self._pos += hi - lo
                self._end_check()
            finally:
                self._dest = None
        else:
            self._pos += hi - lo
        out = bytes(memoryview(buf)[lo:hi])
        self._after_read()
        return out

    def _after_read(self) -> None:
        """Release the current chunk as soon as it has been read to its end."""
        cur = self._cur
        if cur is not None and self._pos >= cur.stop:
            self._cur = None
            self._pf.release_below(self._state, cur.idx + 1)

    def _release(self) -> None:
        self._cur = None
        self._finalizer()

    @property
    def prefetcher_stats(self) -> dict[str, Any]:
        """The connector's prefetch counters (see :meth:`Prefetcher.stats`)."""
        return self._pf.stats()
