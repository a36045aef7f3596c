"""The writer behind ``objio.open(uri, "wb")``: one PutObject, or a multipart upload with parts
uploading while the caller writes (see :mod:`objio.io`)."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import io
import sys
import warnings
from typing import Any

from .. import _crc32c, engine
from .._buffers import Gather, new_buffer
from ..config import MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE
from ..errors import AlreadyExistsError, NotFoundError
from ..uri import ObjectURI
from ._common import (
    _DEFAULT_PART,
    DEFAULT_MAX_PARTS_IN_FLIGHT,
    PARTS_PER_SIZE_STEP,
    _byte_view,
    _int_arg,
    _object_uri,
    _ObjectIdentity,
    _resolve_client,
    log,
)

# ---------------------------------------------------------------------------------- writer
ZERO_COPY_MIN = 256 * 1024
"""Bytes below which :meth:`ObjectWriter.write_zero_copy` copies instead of borrowing."""


def part_size_for(part_number: int, base: int) -> int:
    """Size of part ``part_number`` (1-based) of a stream of unknown length: ``base`` for the
    first :data:`PARTS_PER_SIZE_STEP` (800) parts, then doubling every 800 parts (capped at
    5 GiB), so 10,000 parts hold more than S3's 5 TiB object limit even at the 5 MiB minimum
    (13.7 TiB; 16 TiB at the default 8 MiB)."""
    return min(MAX_PART_SIZE, base << ((part_number - 1) // PARTS_PER_SIZE_STEP))


class ObjectWriter(_ObjectIdentity, io.BufferedIOBase):
    """A write-only binary file that uploads one object.

    Args:
        uri: ``s3://bucket/key``, ``file:///path`` or a local path.
        client: the :class:`objio.Client` (default :func:`objio.default_client`).
        part_size: bytes per part (default: the client's ``part_size``, 8 MiB; for s3:// at
            least 5 MiB, the S3 minimum). Objects up to this size are one PutObject. After
            every 800 parts the part size doubles (see :func:`part_size_for`) so a stream of
            any size fits S3's 10,000 parts. (Stores that require equal part sizes, such as R2,
            see equal parts for objects under 800 parts.)
        max_parts_in_flight: parts uploaded at once (default
            :data:`DEFAULT_MAX_PARTS_IN_FLIGHT`); ``write`` waits for the oldest part when the
            limit is reached. Memory: at most ``(max_parts_in_flight + 1) * part_size``.
        exist_ok: when False the object must not exist yet: a conditional PutObject
            (``If-None-Match: *``) for small objects; for multipart uploads a HEAD just before
            completing (a writer racing between that HEAD and the completion can still win).
            If the key exists, ``close()`` raises FileExistsError.
        checksum: ``"crc32c"`` (the default, from the client's ``ClientConfig.checksums``,
            on unless turned off) computes the CRC32C of every part while it is written and
            hands it to the store, which checks what it received and keeps the whole
            object's CRC32C with it (S3 ``x-amz-checksum-crc32c``, type FULL_OBJECT; file://
            the ``user.objio.crc32c`` extended attribute); :attr:`crc32c` gives it after
            ``close()``. A store that refuses checksum headers, or the FULL_OBJECT type (HTTP
            400/501), gets what it takes (per-part CRC32Cs, or none) after one warning per
            client configuration (see :func:`objio.engine.checksum_support`); with checksums
            from the configuration, a writer to such a store computes none. Cost: one pass
            over the data, about 0.07 CPU seconds per GiB.

    ``write`` accepts bytes, bytearray, memoryview and any C-contiguous buffer (numpy arrays)
    and copies the data once, into the part buffer (a write that fits in the current part
    buffer, such as the many small writes of ``torch.save``, takes a short path: one slice
    assignment, about 1 microsecond). Two cases send the caller's memory itself,
    without a copy: whole parts of an immutable ``bytes`` object (kept referenced until sent),
    and whole parts of a mutable buffer covering at least ``max_parts_in_flight`` parts (then
    ``write`` returns only once those parts are uploaded, so the caller may reuse it).
    :meth:`write_zero_copy` sends any buffer of 256 KiB or more without a copy when the
    caller guarantees that it stays unchanged until ``close()`` (DCP saves use it for tensor
    storages): a part then goes out as a list of pieces, copied small writes and borrowed
    views, one after another.

    ``close()`` sends the object (completes the multipart upload) and raises if anything
    failed. ``abort()``, an exception inside ``with``, a failed part, or garbage collection of
    an unclosed writer abort the upload: the key shows no new object (it stays absent, or the
    previous object stays unchanged) and no multipart upload is left behind.

    Raises:
        ValueError: ``part_size`` above 5 GiB, ``exist_ok`` not a
            bool, ``checksum`` not ``"crc32c"`` or None, or a bad URI.
        FileExistsError: ``exist_ok=False`` and the key exists (on ``close()``).
    """

    def __init__(self, uri: Any, *, client: Any = None, part_size: int | None = None,
                 max_parts_in_flight: int | None = None, exist_ok: bool = True,
                 checksum: str | None = None) -> None:
        self._obj = _object_uri(uri, "open for writing")
        self._client = _resolve_client(client)
        cfg = self._client.config
        ps = (cfg.part_size or _DEFAULT_PART) if part_size is None else part_size
        lo = MIN_PART_SIZE if self._obj.scheme == "s3" else 1
        _int_arg("part_size", ps, lo, f"an integer between {lo} and {MAX_PART_SIZE} bytes"
                 + (" (S3's multipart minimum is 5 MiB)" if lo > 1 else ""))
        if ps > MAX_PART_SIZE:
            raise ValueError(f"part_size must be at most {MAX_PART_SIZE} bytes (5 GiB), got {ps}")
        m = DEFAULT_MAX_PARTS_IN_FLIGHT if max_parts_in_flight is None else max_parts_in_flight
        self._m = _int_arg("max_parts_in_flight", m, 1, "an integer >= 1")
        if not isinstance(exist_ok, bool):
            raise ValueError(f"exist_ok must be True or False, got {exist_ok!r}")
        self._exist_ok = exist_ok
        if checksum not in (None, "crc32c"):
            raise ValueError(f"checksum must be 'crc32c' or None, got {checksum!r}")
        self._backend = self._client._backend(self._obj)
        # ClientConfig.checksums turns it on for all (unless the store refused checksums)
        if checksum is None and cfg.checksums and engine.checksum_support(self._backend).puts:
            checksum = "crc32c"
        self._checksum = checksum
        self._kind: str | None = None  # the multipart upload's checksum type (start_multipart)
        self._crc = 0            # CRC32C of the parts emitted so far, in order
        self._pcrc = 0           # CRC32C of the first _pcrc_n bytes of the part being filled
        self._pcrc_n = 0
        self._part_sizes: dict[int, int] = {}
        self._crc_final: int | None = None
        self._attempts = cfg.max_attempts or 1
        self._base_part = ps
        self._ps = ps
        # The part being filled: ``_fill`` bytes in all, held as ``_pieces`` (buffer segments
        # and borrowed views, see write_zero_copy) followed by ``_buf[_seg:_bofs]``.
        self._buf: bytearray | None = None
        self._fill = 0
        self._bofs = 0
        self._seg = 0
        self._pieces: list[memoryview] = []
        self._keep: list[Any] = []
        self._free: list[bytearray] = []
        # parts in flight: (part number, future, owned buffer, write waits for it, kept objects)
        self._inflight: collections.deque[tuple[int, Any, bytearray | None, bool, list[Any]]] = \
            collections.deque()
        self._parts: list[tuple[int, str, int | None]] = []  # number, ETag, CRC32C sent
        self._upload_id: str | None = None
        self._next_part = 1
        self._written = 0
        self._tasks: set[asyncio.Task[Any]] = set()  # part uploads; touched on the loop only
        self._buffers_allocated = 0
        self._constructed = True

    # -- identity (uri, name, bucket, key: _ObjectIdentity) ---------------------------------
    @property
    def mode(self) -> str:
        return "wb"

    @property
    def part_size(self) -> int:
        """The current part size in bytes (grows for very long streams)."""
        return self._ps

    @property
    def max_parts_in_flight(self) -> int:
        return self._m

    @property
    def crc32c(self) -> int | None:
        """The CRC32C (unsigned 32-bit) of the whole object, once ``close()`` has sent it;
        None without ``checksum="crc32c"`` or before."""
        return self._crc_final

    def running_crc32c(self) -> int | None:
        """The CRC32C (unsigned 32-bit) of every byte written so far (``tell()`` bytes), or
        None when this writer computes none (``checksum`` off). Every byte goes through
        CRC32C once, here or when its part is sent, so a caller that needs the CRC32C of
        ranges of the stream gets them without a second pass over the data: bytes
        ``[a, b)`` have ``running(b) ^ objio._crc32c.combine(running(a), 0, b - a)``
        (DCP saves record each item's CRC32C this way)."""
        self._check_open()
        if self._checksum is None:
            return None
        return _crc32c.combine(self._crc, self._part_crc(), self._fill)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.uri!r} written={self._written}>"

    # -- io protocol ---------------------------------------------------------------------
    def readable(self) -> bool:
        self._check_open()
        return False

    def writable(self) -> bool:
        self._check_open()
        return True

    def seekable(self) -> bool:
        self._check_open()
        return False

    def tell(self) -> int:
        """Bytes written so far."""
        self._check_open()
        return self._written

    def flush(self) -> None:
        """No-op (data is sent as parts fill up and on ``close()``)."""
        self._check_open()

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(f"I/O operation on closed writer ({self.uri})")

    def write(self, data: Any, /) -> int:
        """Append ``data`` (a bytes-like object); returns its length in bytes. May wait while
        ``max_parts_in_flight`` parts are being uploaded.

        Raises:
            OSError: the upload's error (FileNotFoundError: no such bucket; PermissionError:
                access denied; ...), after aborting the upload, if a part failed.
            ValueError: the writer is closed.
        """
        buf = self._buf
        if buf is not None:  # open, with a part buffer: small writes (torch.save) stop here
            try:
                mv = memoryview(data)
            except TypeError:
                mv = None
            if mv is not None and mv.ndim == 1 and mv.c_contiguous:
                n = mv.nbytes
                fill = self._fill
                if fill + n < self._ps:
                    o = self._bofs
                    buf[o: o + n] = mv
                    self._bofs = o + n
                    self._fill = fill + n
                    self._written += n
                    return n
        self._check_open()
        mv = _byte_view(data, "write() argument", writable=False)
        if len(mv):
            self._append(mv, borrow=False)
        return len(mv)

    def write_zero_copy(self, data: Any, /, *, keep: Any = None) -> int:
        """Append ``data`` like :meth:`write`, but without copying it: its memory is sent as
        it is (as pieces of the parts it falls in), so it must stay valid and unchanged until
        ``close()`` or ``abort()`` has returned. ``keep`` (for instance the tensor that owns
        ``data``'s memory) is referenced until then. Data under 256 KiB is copied (a piece of
        its own would cost more than the copy). Returns the length in bytes; raises like
        :meth:`write`."""
        self._check_open()
        mv = _byte_view(data, "write_zero_copy() argument", writable=False)
        if len(mv):
            self._append(mv, borrow=len(mv) >= ZERO_COPY_MIN, keep=keep)
        return len(mv)

    def _append(self, mv: memoryview, borrow: bool, keep: Any = None) -> None:
        """Add ``mv`` to the stream: whole parts of it sent as they are when they may be
        (borrowed, ``bytes``, or a mutable buffer covering the parts in flight: then waited
        for), the rest copied into part buffers, or, ``borrow``, kept as pieces of parts."""
        n = len(mv)
        immutable = borrow or isinstance(mv.obj, bytes)
        must_wait = False
        off = 0
        try:
            while off < n:
                ps = self._ps
                if self._fill == ps:
                    self._emit_current()
                    ps = self._ps
                if self._fill == 0 and n - off >= ps and (
                        immutable or must_wait or n - off >= self._m * ps):
                    self._emit(mv[off: off + ps], None, wait=not immutable,
                               keep=[mv, keep] if borrow else None)
                    must_wait = must_wait or not immutable
                    off += ps
                    continue
                k = min(ps - self._fill, n - off)
                if borrow:
                    self._flush_segment()
                    self._pieces.append(mv[off: off + k])
                    self._keep.append(keep)
                else:
                    if self._buf is None:
                        self._buf = self._take_buffer()
                        self._bofs = self._seg = 0
                    o = self._bofs
                    self._buf[o: o + k] = mv[off: off + k]
                    self._bofs = o + k
                self._fill += k
                off += k
            if must_wait:
                while any(e[3] for e in self._inflight):
                    self._wait_any()
        except BaseException:
            self._fail()
            raise
        self._written += n

    def close(self) -> None:
        """Send the object: one PutObject, or the last part and CompleteMultipartUpload.
        Idempotent.

        Raises:
            OSError: the upload's error, after aborting the upload, if anything failed
                (FileNotFoundError: no such bucket; PermissionError: access denied; ...).
            FileExistsError: ``exist_ok=False`` and the key exists.
        """
        if self.closed:
            return
        try:
            if self._upload_id is None:
                crc = None if self._checksum is None else self._part_crc()
                data = self._current_part()
                if isinstance(data, Gather):
                    data = data.tobytes()  # one PutObject (a single piece when nothing was kept)
                engine.run(engine.put_single(self._backend, self._obj, data, self._attempts,
                                             if_none_match=not self._exist_ok,
                                             checksum_crc32c=crc))
                self._crc_final = crc
            else:
                if self._fill:
                    self._emit_current()
                while self._inflight:
                    self._wait_any()
                if not self._exist_ok:
                    self._check_absent()
                done = sorted(self._parts)
                parts, whole = engine.completion(self._kind, done,
                                                 [self._part_sizes[p[0]] for p in done])
                engine.run(engine.complete_multipart(self._backend, self._obj, self._upload_id,
                                                     parts, self._attempts,
                                                     checksum_crc32c=whole))
                self._upload_id = None
                if self._checksum is not None:
                    self._crc_final = self._crc
        except BaseException:
            self._fail()
            raise
        finally:
            self._drop_buffers()
            super().close()

    def abort(self) -> None:
        """Abandon the upload: nothing is written (an open multipart upload is aborted after
        its part uploads stop). The writer is closed afterwards. Idempotent."""
        if self.closed:
            return
        try:
            self._abort_upload(wait=True)
        finally:
            self._drop_buffers()
            super().close()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    def __del__(self) -> None:
        try:
            if self.closed or not getattr(self, "_constructed", False) or sys.is_finalizing():
                return  # (at interpreter exit no new engine thread can start: nothing to do)
            warnings.warn(f"the writer of {self.uri} was never closed: the upload is aborted "
                          "(call close(), or write in a with block, to send it)",
                          ResourceWarning, stacklevel=2)
            self._abort_upload(wait=False)
            self._drop_buffers()
            io.BufferedIOBase.close(self)
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass

    # -- internals -------------------------------------------------------------------------
    def _take_buffer(self) -> bytearray:
        while self._free:
            b = self._free.pop()
            if len(b) == self._ps:
                return b
        self._buffers_allocated += 1
        return new_buffer(self._ps)

    def _flush_segment(self) -> None:
        """End the current buffer segment (the next bytes are a borrowed piece)."""
        if self._buf is not None and self._bofs > self._seg:
            self._pieces.append(memoryview(self._buf)[self._seg: self._bofs])
            self._seg = self._bofs

    def _current_part(self) -> Any:
        """The bytes of the part being filled: a memoryview of the part buffer, or a Gather
        when borrowed pieces are part of it."""
        seg = memoryview(self._buf)[self._seg: self._bofs] if self._buf is not None else \
            memoryview(b"")
        if not self._pieces:
            return seg
        return Gather(self._pieces + [seg] if len(seg) else self._pieces)

    def _part_crc(self) -> int:
        """The CRC32C of the part being filled, continued from the bytes an earlier call
        covered (each byte is run through CRC32C once)."""
        if self._pcrc_n < self._fill:
            data = self._current_part()
            crc, skip = self._pcrc, self._pcrc_n
            for piece in (data.pieces if isinstance(data, Gather) else (data,)):
                n = len(piece)
                if skip >= n:
                    skip -= n
                    continue
                crc = _crc32c.crc32c(piece[skip:] if skip else piece, crc)
                skip = 0
            self._pcrc, self._pcrc_n = crc, self._fill
        return self._pcrc

    def _emit_current(self) -> None:
        crc = None if self._checksum is None else self._part_crc()
        data = self._current_part()
        buf, keep = self._buf, self._keep
        if buf is not None and self._bofs == 0:  # no byte of it in this part
            self._free.append(buf)
            buf = None
        self._buf = None
        self._fill = self._bofs = self._seg = 0
        self._pcrc = self._pcrc_n = 0
        self._pieces, self._keep = [], []
        self._emit(data, buf, wait=False, keep=keep, crc=crc)

    def _emit(self, view: memoryview | Gather, owned: bytearray | None, wait: bool,
              keep: list[Any] | None = None, crc: int | None = None) -> None:
        """Upload ``view`` as the next part (starting the multipart upload if needed);
        ``owned`` (its buffer, recycled afterwards) and ``keep`` stay referenced until the
        part is uploaded. ``crc``: the part's CRC32C when already known."""
        if self._upload_id is None:
            self._upload_id, self._kind = engine.run(engine.start_multipart(
                self._backend, self._obj, self._attempts, checksum=self._checksum is not None))
        self._harvest()  # finished parts, in any order (recycles buffers, fails fast)
        while len(self._inflight) >= self._m:
            self._wait_any()
        pn = self._next_part
        if pn > MAX_PARTS:
            raise ValueError(f"{self.uri}: more than {MAX_PARTS} parts; use a larger part_size")
        if self._checksum is None:
            crc = None
        else:
            if crc is None:
                crc = 0
                for piece in (view.pieces if isinstance(view, Gather) else (view,)):
                    crc = _crc32c.crc32c(piece, crc)
            self._crc = _crc32c.combine(self._crc, crc, len(view))
        self._part_sizes[pn] = len(view)
        self._next_part = pn + 1
        self._ps = part_size_for(self._next_part, self._base_part)
        fut = engine.submit(_upload_part(self._backend, self._obj, self._upload_id, pn, view,
                                         self._attempts, self._tasks,
                                         crc if self._kind is not None else None))
        self._inflight.append((pn, fut, owned, wait, keep or []))

    def _wait_any(self) -> None:
        """Wait until a part in flight has finished (whichever: waiting for the oldest would
        leave the others' connections idle behind one slow part), then collect every finished
        one."""
        if self._inflight and not any(e[1].done() for e in self._inflight):
            concurrent.futures.wait([e[1] for e in self._inflight],
                                    return_when=concurrent.futures.FIRST_COMPLETED)
        self._harvest()

    def _harvest(self) -> None:
        """Collect the finished parts (raises the error of a failed one)."""
        if not any(e[1].done() for e in self._inflight):
            return
        pending: collections.deque[tuple[int, Any, bytearray | None, bool, list[Any]]] = \
            collections.deque()
        while self._inflight:
            entry = self._inflight.popleft()
            pn, fut, owned = entry[0], entry[1], entry[2]
            if not fut.done():
                pending.append(entry)
                continue
            try:
                etag, sent = fut.result()
            except BaseException:
                self._inflight.extendleft(reversed(pending))
                raise
            self._parts.append((pn, etag, sent))
            if owned is not None and len(owned) == self._ps and len(self._free) < self._m:
                self._free.append(owned)
        self._inflight = pending

    def _check_absent(self) -> None:
        obj, backend = self._obj, self._backend
        try:
            engine.run(engine.with_retries(lambda: backend.head(obj), self._attempts))
        except NotFoundError:
            return
        raise AlreadyExistsError(f"PutObject {self.uri} failed: the object exists and "
                                 "exist_ok=False", operation="PutObject", uri=self.uri,
                                 code="PreconditionFailed")

    def _fail(self) -> None:
        """After an error: abort the upload and close the writer (the error is re-raised by
        the caller)."""
        try:
            self._abort_upload(wait=True)
        except BaseException as e:  # noqa: BLE001 - the original error matters more
            log.warning("aborting the upload of %s failed: %s", self.uri, e)
        self._drop_buffers()
        io.BufferedIOBase.close(self)

    def _abort_upload(self, wait: bool) -> None:
        uid, self._upload_id = self._upload_id, None
        # what running part uploads may still read stays referenced until they have stopped
        kept = [(e[2], e[4]) for e in self._inflight]
        self._inflight.clear()
        if uid is None:
            return
        coro = _drain_and_abort(self._backend, self._obj, uid, self._attempts, self._tasks,
                                kept)
        if engine.in_engine_thread():  # a finaliser running on the loop: schedule it there
            asyncio.get_running_loop().create_task(coro)
            return
        fut = engine.submit(coro)
        if wait:
            fut.result()

    def _drop_buffers(self) -> None:
        self._buf = None
        self._fill = self._bofs = self._seg = 0
        self._pieces, self._keep = [], []
        self._free.clear()


# The coroutines below hold no reference to the writer, so an abandoned writer is collected
# (and its upload aborted) in the thread that dropped it, not later on the engine loop.
async def _upload_part(backend: Any, obj: ObjectURI, upload_id: str, pn: int,
                       view: memoryview | Gather,
                       attempts: int, tasks: set[asyncio.Task[Any]],
                       crc: int | None = None) -> tuple[str, int | None]:
    task = asyncio.current_task()
    assert task is not None
    tasks.add(task)
    try:
        return await engine.upload_part(backend, obj, upload_id, pn, view, attempts,
                                        checksum_crc32c=crc)
    finally:
        tasks.discard(task)


async def _drain_and_abort(backend: Any, obj: ObjectURI, upload_id: str, attempts: int,
                           tasks: set[asyncio.Task[Any]], kept: Any = None) -> None:
    """Stop the part uploads still running, then abort the multipart upload (parts that
    complete after an abort could otherwise linger). ``kept``: what the part uploads read
    from, referenced until they have stopped."""
    await asyncio.sleep(0)  # part uploads submitted just before this one start (and register)
    running = list(tasks)
    for t in running:
        t.cancel()
    # to the end even if this task is cancelled too (the engine's shutdown at exit)
    await engine.finish(asyncio.gather(*running, return_exceptions=True))
    await engine.finish(engine.abort_multipart(backend, obj, upload_id, attempts))


class _TextWriter(io.TextIOWrapper):
    """Text-mode writer: like io.TextIOWrapper, but an exception inside ``with`` aborts the
    upload instead of completing it."""

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    def abort(self) -> None:
        """Abandon the upload (see :meth:`ObjectWriter.abort`)."""
        buffer: Any = self.buffer
        buffer.abort()

