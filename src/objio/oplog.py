"""The op-log: one line per HTTP request objio sends, never dropped.

Turned on with ``ClientConfig(op_log=PATH)``, ``OBJIO_OP_LOG=PATH`` or ``--op-log PATH`` on
the command line. Every request is a line, retries and multipart parts included (each its own
line, tied to its operation by ``op_id`` and ``attempt``), failed ones too (``status`` 0 when
no response came, the error's code and text).

Format: tab-separated values with a header line. The first 14 columns are warp's
(``--benchdata``: ``idx thread op client_id n_objects bytes endpoint file error start
first_byte end duration_ns cat``) with the same meaning; times are integer nanoseconds since
the UNIX epoch (UTC), as s3dlio's op-log writes them (warp writes RFC 3339 text: formatting it
cost more client CPU than the 5% an op-log may take); objio's columns follow:

* ``idx``: the line's number in this process (from 0); ``thread``: the HTTP connection that
  carried the request (connections serve one request at a time, as warp's threads);
* ``op``: warp's name where one exists (``GET``, ``PUT``, ``STAT``, ``DELETE``, ``LIST``),
  else the API name (``UploadPart``, ``CreateMultipartUpload``, ``DeleteObjects``...);
  ``cat``: always the API name: S3's (``GetObject``, ``PutObject``, ``HeadObject``...), on
  ``az://`` the Blob service's (``GetBlob``, ``PutBlock``, ``PutBlockList``,
  ``CopyBlobFromURL``...), on ``gs://`` the JSON API call as objio names it (``GetObject``,
  ``ComposeObject``, ``DeleteObjects`` for a batch...); ``file://`` operations are one line
  each (no HTTP request), with ``endpoint`` ``file://``;
* ``client_id``: ``host:rank:pid``; ``n_objects``: 1; ``bytes``: body bytes sent or
  received; ``endpoint``: ``scheme://host``; ``file``: ``bucket/key``;
* ``error``: the error's text, empty on success; ``start``: the request's first byte sent
  (connection set-up and signing are before it); ``first_byte``: the response's first byte;
  ``end``: the request done (response read, or the error); ``duration_ns``: end - start;
* then ``last_byte`` (the response body's last byte), ``status`` (HTTP status; 0: no
  response), ``error_code`` (the store's code, e.g. ``SlowDown``, ``ServerBusy``, or the
  connection error's kind),
  ``op_id`` (one per operation: its attempts share it), ``attempt`` (1, 2, ...), ``part``
  (the part number of an UploadPart, else empty), ``host``, ``rank``, ``pid``.

Times are taken from one monotonic clock (``time.perf_counter``) mapped to UTC once, when the
log is opened, so differences between lines are exact whatever the wall clock does.

A path ending in ``.zst`` is zstd-compressed (the ``zstandard`` package): each batch of lines
is one zstd frame, so the file is a valid zstd stream whoever appends (``zstd -dc`` reads it).
``{pid}`` and ``{rank}`` in the path are replaced (one file per process or per rank).

Never drops an entry: lines are kept in memory in batches handed to a writer thread through a
bounded queue; when the writer falls behind, the thread that logs waits for room (back-pressure)
rather than discarding. After ``fork`` (DataLoader workers) a child appends to the same file
(``O_APPEND``, whole batches per write: lines of two processes never mix) with its own pid; its
parent's unwritten lines stay the parent's. Lines are written at least every second, when a
batch fills, and at exit.
"""

from __future__ import annotations

import atexit
import contextvars
import itertools
import os
import queue
import socket
import threading
import time
from typing import Any

COLUMNS = ("idx", "thread", "op", "client_id", "n_objects", "bytes", "endpoint", "file",
           "error", "start", "first_byte", "end", "duration_ns", "cat",
           "last_byte", "status", "error_code", "op_id", "attempt", "part", "host", "rank",
           "pid")
"""The header: warp's 14 columns, then objio's."""

WARP_OPS = {"GetObject": "GET", "PutObject": "PUT", "HeadObject": "STAT",
            "DeleteObject": "DELETE", "ListObjectsV2": "LIST",
            # Azure Blob service
            "GetBlob": "GET", "PutBlob": "PUT", "GetBlobProperties": "STAT",
            "DeleteBlob": "DELETE", "ListBlobs": "LIST",
            # Cloud Storage JSON API (GetObject, PutObject, DeleteObject as above)
            "GetObjectMetadata": "STAT", "ListObjects": "LIST"}
"""The API names objio logs (S3's, the Blob service's, the JSON API's as objio names them)
-> warp's op names (where warp has one); the API name is the ``cat`` column."""

ATTEMPT: contextvars.ContextVar[tuple[int, int]] = contextvars.ContextVar(
    "objio_attempt", default=(0, 1))
"""(operation id, attempt number) of the request being sent, set by
:func:`objio.engine.with_retries` (each call one operation, ids from 1 in this process; its
attempts 1, 2, ...); (0, 1) outside one."""

opened = False
"""Whether this process has made an :class:`OpLog`: until then
:func:`objio.engine.with_retries` does not set :data:`ATTEMPT` (nothing reads it)."""

_BATCH = 512
"""Lines per batch handed to the writer."""
_QUEUE_BATCHES = 64
"""Batches waiting for the writer before a logging thread waits (back-pressure)."""
_FLUSH_S = 1.0


def rank() -> int:
    """This process's rank: ``RANK`` (torchrun), ``OMPI_COMM_WORLD_RANK`` (Open MPI),
    ``PMI_RANK`` (MPICH), ``SLURM_PROCID`` (srun), else 0."""
    for name in ("RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"):
        v = os.environ.get(name)
        if v is not None and v.strip().isdigit():
            return int(v)
    return 0


class OpLog:
    """One op-log file (see the module docs). Use :func:`get` (one writer per path per
    process) rather than the constructor.

    Raises (constructor): OSError (the file cannot be created), ImportError (a ``.zst``
    path without the ``zstandard`` package), ValueError (an empty path)."""

    def __init__(self, path: str) -> None:
        global opened
        if not path:
            raise ValueError("op_log must be a file path, got an empty string")
        opened = True
        self.path = path.replace("{pid}", str(os.getpid())).replace("{rank}", str(rank()))
        self._zstd: Any = None
        if self.path.endswith(".zst"):
            try:
                import zstandard
            except ImportError:
                raise ImportError(f"op_log {self.path!r} ends in .zst: install the zstandard "
                                  "package (pip install zstandard) or drop the .zst") from None
            self._zstd = zstandard.ZstdCompressor(level=3)
        parent = os.path.dirname(self.path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o666)
        self._write(("\t".join(COLUMNS) + "\n").encode())
        self._wall0 = time.time_ns()  # perf_counter() values -> ns since the epoch (UTC)
        self._mono0 = time.perf_counter()
        self._setup_process()
        self.closed = False

    def _setup_process(self) -> None:
        """Per-process state: after fork, the child starts with its own (empty) batch and
        writer; the file descriptor is shared (appends)."""
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self._idx = itertools.count()
        self._queue: queue.Queue[bytes | None] = queue.Queue(_QUEUE_BATCHES)
        self._writer: threading.Thread | None = None
        self._wake = threading.Event()
        host = socket.gethostname()
        pid = os.getpid()
        r = rank()
        self._client = f"{host}:{r}:{pid}"
        self._tail = f"\t{host}\t{r}\t{pid}\n"

    # ------------------------------------------------------------------------- logging
    def record(self, *, api: str, bucket: str, key: str | None, nbytes: int, endpoint: str,
               status: int, error_code: str = "", error: str = "", start: float,
               first_byte: float | None, last_byte: float | None, end: float,
               thread: int = 0, op_id: int = 0, attempt: int = 1,
               part: int | None = None) -> None:
        """Log one request: ``api`` the S3 API name, ``nbytes`` body bytes sent and received,
        times ``time.perf_counter()`` values (seconds; None: that moment did not happen).
        Waits (never drops) when the writer is a full queue behind."""
        w0, m0 = self._wall0, self._mono0
        s = w0 + int((start - m0) * 1e9)
        e = w0 + int((end - m0) * 1e9)
        if error:
            error = error.replace("\t", " ").replace("\n", " ").replace("\r", " ")
        line = (f"{next(self._idx)}\t{thread}\t{WARP_OPS.get(api, api)}\t{self._client}\t1"
                f"\t{nbytes}\t{endpoint}\t{bucket}/{key or ''}\t{error}\t{s}"
                f"\t{w0 + int((first_byte - m0) * 1e9) if first_byte else ''}\t{e}\t{e - s}"
                f"\t{api}\t{w0 + int((last_byte - m0) * 1e9) if last_byte else ''}\t{status}"
                f"\t{error_code}\t{op_id}\t{attempt}\t{'' if part is None else part}"
                f"{self._tail}")
        batch: list[str] | None = None
        with self._lock:
            if self.closed:
                return
            self._lines.append(line)
            if len(self._lines) >= _BATCH:
                batch, self._lines = self._lines, []
            if self._writer is None:
                self._start_writer()
        if batch is not None:
            self._queue.put("".join(batch).encode())  # blocks while the writer is behind

    def _start_writer(self) -> None:
        self._writer = threading.Thread(target=self._run, name="objio-oplog", daemon=True)
        self._writer.start()

    def _run(self) -> None:
        q = self._queue
        while True:
            try:
                data = q.get(timeout=_FLUSH_S)
            except queue.Empty:
                data = self._take()
                if data:
                    self._write(data)
                continue
            try:
                if data is None:
                    return
                self._write(data)
            finally:
                q.task_done()

    def _take(self) -> bytes:
        with self._lock:
            lines, self._lines = self._lines, []
        return "".join(lines).encode() if lines else b""

    def _write(self, data: bytes) -> None:
        if self._zstd is not None:
            data = self._zstd.compress(data)
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]

    def flush(self) -> None:
        """Write every line logged so far to the file (waits for the writer)."""
        if self.closed:
            return
        data = self._take()
        writer = self._writer
        if writer is not None and writer.is_alive():
            if data:
                self._queue.put(data)
            self._queue.join()
        elif data:
            self._write(data)

    def close(self) -> None:
        """Write what is left and close the file."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            lines, self._lines = self._lines, []
        writer = self._writer
        if writer is not None and writer.is_alive():
            if lines:
                self._queue.put("".join(lines).encode())
            self._queue.put(None)
            writer.join()
        elif lines:
            self._write("".join(lines).encode())
        while True:  # batches left by a writer that is not running
            try:
                data = self._queue.get_nowait()
            except queue.Empty:
                break
            if data:
                self._write(data)
        os.close(self._fd)

    def _after_fork_in_child(self) -> None:
        if self.closed:
            return
        self._setup_process()  # the parent's unwritten lines stay the parent's


def record_response(log: OpLog, *, api: str, bucket: str, key: str | None, endpoint: str,
                    r: Any, nbytes: int, t0: float, error_code: str = "", error: str = "",
                    part: int | None = None) -> None:
    """The line of a request that got a response ``r`` (an :class:`objio.s3.http.Response`:
    its send, first-byte and last-byte moments and its connection); ``t0``
    (``time.perf_counter()``) stands for the send moment when the client did not record it;
    ``nbytes``: body bytes sent and received."""
    op_id, attempt = ATTEMPT.get()
    log.record(api=api, bucket=bucket, key=key, nbytes=nbytes, endpoint=endpoint,
               status=r.status, error_code=error_code, error=error, start=r.sent_at or t0,
               first_byte=(r.sent_at + r.ttfb_s) if r.sent_at else None,
               last_byte=r.done_at or None, end=time.perf_counter(), thread=r.conn,
               op_id=op_id, attempt=attempt, part=part)


def record_failure(log: OpLog, *, api: str, bucket: str, key: str | None, endpoint: str,
                   t0: float, error: BaseException, part: int | None = None) -> None:
    """The line of a request that got no response (status 0): refused, reset, timed out,
    cancelled; ``error_code`` the error's code, else its type's name."""
    op_id, attempt = ATTEMPT.get()
    log.record(api=api, bucket=bucket, key=key, nbytes=0, endpoint=endpoint, status=0,
               error_code=getattr(error, "code", "") or type(error).__name__,
               error=str(error) or type(error).__name__, start=t0, first_byte=None,
               last_byte=None, end=time.perf_counter(), op_id=op_id, attempt=attempt, part=part)


async def logged_request(log: OpLog, http: Any, *, api: str, bucket: str, key: str | None,
                         endpoint: str, error_code: Any, method: str, host: str, target: str,
                         headers: dict[str, str], body: Any = None, **kwargs: Any) -> Any:
    """``http.request(method, host, target, headers, body, **kwargs)`` (objio's HTTP client)
    with its op-log lines: one for the response, one for each try the client sent again by
    itself (a kept-alive connection the server had closed), one for a request that got no
    response (then re-raised). ``error_code(r)``: the store's error code of a response whose
    status is 400 or more. The backends of ``az://`` and ``gs://`` send every request
    through this when an op-log is on; S3's does the same in its own ``_send``."""
    sent = sum(len(p) for p in body) if body else 0
    t0 = time.perf_counter()

    def resent(start: float, error: BaseException) -> None:
        record_failure(log, api=api, bucket=bucket, key=key, endpoint=endpoint, t0=start,
                       error=error)

    try:
        r = await http.request(method, host, target, headers, body, resent=resent, **kwargs)
    except BaseException as e:
        record_failure(log, api=api, bucket=bucket, key=key, endpoint=endpoint, t0=t0, error=e)
        raise
    into = kwargs.get("into")
    got = len(r.body) if r.body is not None else (
        len(into) if into is not None and 200 <= r.status < 300 else 0)
    code = error_code(r) if r.status >= 400 else ""
    record_response(log, api=api, bucket=bucket, key=key, endpoint=endpoint, r=r,
                    nbytes=sent + got, t0=t0, error_code=code,
                    error=f"HTTP {r.status} {code}".strip() if r.status >= 400 else "")
    return r


def _size(data: Any) -> int:
    try:
        return len(data) if not isinstance(data, memoryview) else data.nbytes
    except TypeError:
        return 0


class LoggedBackend:
    """A backend without HTTP requests (``file://``) with its operations in the op-log: one
    line per call (``endpoint`` ``file://``, ``status`` 200, or 0 and the error's type on
    failure; no first or last byte). Everything else is the wrapped backend's."""

    def __init__(self, inner: Any, log: OpLog) -> None:
        self._inner = inner
        self._log = log

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _line(self, api: str, obj: Any, nbytes: int, start: float,
              error: BaseException | None = None) -> None:
        op_id, attempt = ATTEMPT.get()
        bucket, key = (obj.bucket, obj.key) if obj.bucket else ("", obj.key.lstrip("/"))
        self._log.record(
            api=api, bucket=bucket, key=key, nbytes=nbytes, endpoint=f"{obj.scheme}://",
            status=0 if error is not None else 200,
            error_code="" if error is None else (getattr(error, "code", "") or
                                                 type(error).__name__),
            error="" if error is None else (str(error) or type(error).__name__), start=start,
            first_byte=None, last_byte=None, end=time.perf_counter(), op_id=op_id,
            attempt=attempt)

    async def _call(self, api: str, obj: Any, method: str, *args: Any,
                    sent: int = 0, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            result = await getattr(self._inner, method)(obj, *args, **kwargs)
        except BaseException as e:
            self._line(api, obj, 0, t0, e)
            raise
        got = _size(getattr(result, "data", b"")) if api == "GetObject" else 0
        self._line(api, obj, sent + got, t0)
        return result

    async def get(self, obj: Any, *args: Any, **kwargs: Any) -> Any:
        return await self._call("GetObject", obj, "get", *args, **kwargs)

    async def head(self, obj: Any, **kwargs: Any) -> Any:
        return await self._call("HeadObject", obj, "head", **kwargs)

    async def put(self, obj: Any, data: Any, **kwargs: Any) -> Any:
        return await self._call("PutObject", obj, "put", data, sent=_size(data), **kwargs)

    async def delete(self, obj: Any) -> Any:
        return await self._call("DeleteObject", obj, "delete")

    async def delete_many(self, bucket_uri: Any, keys: Any) -> Any:
        return await self._call("DeleteObjects", bucket_uri, "delete_many", keys)

    async def upload_part(self, obj: Any, upload_id: str, part_number: int, data: Any,
                          **kwargs: Any) -> Any:
        return await self._call("UploadPart", obj, "upload_part", upload_id, part_number, data,
                                sent=_size(data), **kwargs)

    async def list_pages(self, bucket_uri: Any, *args: Any, **kwargs: Any) -> Any:
        pages = self._inner.list_pages(bucket_uri, *args, **kwargs)
        while True:
            t0 = time.perf_counter()
            try:
                page = await pages.__anext__()
            except StopAsyncIteration:
                return
            except BaseException as e:
                self._line("ListObjectsV2", bucket_uri, 0, t0, e)
                raise
            self._line("ListObjectsV2", bucket_uri, 0, t0)
            yield page


_LOGS: dict[str, OpLog] = {}
_LOGS_LOCK = threading.Lock()


def get(path: str) -> OpLog:
    """The process's :class:`OpLog` for ``path`` (opened, truncated, on first use; shared
    by every client with that path)."""
    log = _LOGS.get(path)
    if log is not None and not log.closed:
        return log
    with _LOGS_LOCK:
        log = _LOGS.get(path)
        if log is None or log.closed:
            log = _LOGS[path] = OpLog(path)
        return log


def close(path: str) -> None:
    """Flush and close this process's op-log for ``path`` (if open)."""
    with _LOGS_LOCK:
        log = _LOGS.pop(path, None)
    if log is not None:
        log.close()


def close_all() -> None:
    """Flush and close every op-log of this process (also run at exit)."""
    with _LOGS_LOCK:
        logs = list(_LOGS.values())
        _LOGS.clear()
    for log in logs:
        log.close()


def _after_fork_in_child() -> None:
    global _LOGS_LOCK
    _LOGS_LOCK = threading.Lock()
    for log in _LOGS.values():
        log._after_fork_in_child()


class _Anchor:
    """A weak-referenceable object for multiprocessing's after-fork registry."""


_ANCHOR = _Anchor()


def _close_at_child_exit(_: object) -> None:
    # A multiprocessing child (a DataLoader worker) ends with os._exit, which skips atexit:
    # its finalizers run first.
    from multiprocessing import util

    util.Finalize(None, close_all, exitpriority=100)


atexit.register(close_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
    from multiprocessing import util as _mp_util

    _mp_util.register_after_fork(_ANCHOR, _close_at_child_exit)
