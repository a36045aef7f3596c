"""objio's GET data path: a minimal HTTP/1.1 client for GET requests whose response body is
received straight into the destination buffer.

Why: with a general HTTP client every body byte is copied three times in user space (socket
read buffer -> parser slice -> stream queue -> result) and each request costs ~150 us of Python.
Here an :class:`asyncio.BufferedProtocol` hands the event loop a memoryview of the preallocated
result (or of the caller's ``into`` buffer), so the kernel copies the bytes once, into their
final place (``recv_into``), and a request is a few dozen Python operations.

Scope: GET with a Content-Length response (what S3 GetObject always sends); keep-alive
connection pooling per host; TLS through the event loop's ``ssl`` support; connect and
read-stall timeouts. Anything else (chunked transfer encoding, a response without a length)
raises :class:`Unsupported` so the caller can use the general client for that request. All other
S3 operations go through aiohttp.
"""

from __future__ import annotations

import asyncio
import fcntl
import socket
import ssl
import sys
import termios
import time
from typing import Any, Callable
from urllib.parse import urlsplit

from .._buffers import new_buffer
from .._crc32c import crc32c

_LOWAT = 1024 * 1024  # SO_RCVLOWAT while a body arrives (bytes)
_LOWAT_MIN = 256 * 1024  # bodies with less than this left are read as they come
_SCRATCH = 16 * 1024  # header reads: small, so little body lands here before the body buffer exists
_MAX_HEADER = 64 * 1024
_CRC_STEP = 256 * 1024  # the body's CRC32C is brought up to date every this many bytes (in L2)

_IDLE, _HEADERS, _BODY = 0, 1, 2


class Unsupported(Exception):
    """The response uses a framing this fast path does not handle (e.g. chunked)."""


class Response:
    """Status, lower-case headers and the body (``None`` when it was received ``into`` the
    caller's buffer, which happens only for a 2xx response whose length is the buffer's)."""

    __slots__ = ("status", "headers", "body", "ttfb_s", "crc32c")

    def __init__(self, status: int, headers: dict[str, str], body: bytearray | memoryview | None,
                 ttfb_s: float, crc: int | None = None) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.ttfb_s = ttfb_s
        self.crc32c = crc  # of the 2xx body received, when asked for (``crc=True``)


class _Conn(asyncio.BufferedProtocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.scratch = bytearray(_SCRATCH)
        self.scratch_mv = memoryview(self.scratch)
        self.state = _IDLE
        self.fut: asyncio.Future[Response] | None = None
        self.head = bytearray()
        self.body_mv: memoryview | None = None
        self.body: bytearray | memoryview | None = None
        self.alloc: Callable[[int], memoryview] | None = None
        self.pos = 0
        self.length = 0
        self.keep_alive = True
        self.status = 0
        self.headers: dict[str, str] = {}
        self.t0 = 0.0
        self.ttfb = 0.0
        self.last_activity = 0.0
        self.into: memoryview | None = None
        self.limit: int | None = None  # keep at most this many body bytes (then close)
        self.cut = False  # the body was longer than ``limit``: the connection is closed
        self.sock: Any = None
        self.lowat = 1
        self.want_crc = False  # compute the CRC32C of a 2xx body as each read lands
        self.crc = 0
        self.crc_pos = 0

    # -- asyncio protocol -------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        if transport.get_extra_info("sslcontext") is None:  # plain TCP only: see _lowat
            self.sock = transport.get_extra_info("socket")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.fut is not None and not self.fut.done():
            if self.state == _BODY:
                err: Exception = _ShortBody(self.pos, self.length)
            else:
                err = ConnectionResetError(f"connection closed by the server before the response"
                                           f"{': ' + str(exc) if exc else ''}")
            self.fut.set_exception(err)

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost reports any unfinished response

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.state == _BODY and self.body_mv is not None:
            return self.body_mv[self.pos:]
        return self.scratch_mv

    def buffer_updated(self, nbytes: int) -> None:
        self.last_activity = self.loop.time()
        if self.state == _BODY:
            self.pos += nbytes
            if self.want_crc and self.pos - self.crc_pos >= _CRC_STEP:
                self._crc_update()  # the bytes just read are hot in cache: no re-read later
            if self.pos >= self.length:
                self._finish()
            elif self.lowat > self.length - self.pos:  # the tail: wake for whatever is left
                self._lowat(self.length - self.pos)
        elif self.state == _HEADERS:
            self._on_head_bytes(nbytes)
        else:  # data while idle: the server is confused; never reuse this connection
            self.closed = True
            if self.transport is not None:
                self.transport.abort()

    # -- response handling ------------------------------------------------------------------
    def _fail(self, exc: BaseException) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        if self.fut is not None and not self.fut.done():
            self.fut.set_exception(exc)

    def _on_head_bytes(self, nbytes: int) -> None:
        if self.head:  # headers spread over several reads (rare): accumulate
            self.head += self.scratch_mv[:nbytes]
            data: bytearray | memoryview = self.head
            end = self.head.find(b"\r\n\r\n")
        else:
            data = self.scratch_mv[:nbytes]
            end = self.scratch.find(b"\r\n\r\n", 0, nbytes)
            if end < 0:
                self.head = bytearray(data)
        if end < 0:
            if len(self.head) > _MAX_HEADER:
                self._fail(ConnectionError("response headers larger than 64 KiB"))
            return
        self.ttfb = time.perf_counter() - self.t0
        lines = bytes(data[:end]).decode("latin-1").split("\r\n")
        extra = data[end + 4:]
        self.head = bytearray()
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            self._fail(ConnectionError(f"malformed HTTP status line {lines[0][:100]!r}"))
            return
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.status = status
        self.headers = headers
        if headers.get("connection", "").lower() == "close":
            self.keep_alive = False
        if "content-length" not in headers or "chunked" in headers.get("transfer-encoding", ""):
            self._fail(Unsupported("response without Content-Length"))
            return
        try:
            length = int(headers["content-length"])
        except ValueError:
            self._fail(ConnectionError("malformed Content-Length"))
            return
        if len(extra) > length:
            self._fail(ConnectionError("more response data than Content-Length"))
            return
        ok = 200 <= status < 300
        if ok and self.limit is not None and length > self.limit:
            # Only the first ``limit`` bytes are wanted: receive those, then close the
            # connection (the rest of the body is never read).
            self.cut = True
            self.keep_alive = False
            length = self.limit
            extra = extra[:length]
        self.length = length
        if ok and self.into is not None and len(self.into) == length:
            self.body_mv = self.into
            self.body = None
        elif ok and self.alloc is not None and self.into is None:
            self.body = self.body_mv = self.alloc(length)
        else:  # an error body, or not the length the caller's buffer expects: kept aside
            self.into = None
            self.body = new_buffer(length) if ok else bytearray(length)
            self.body_mv = memoryview(self.body)
        n = len(extra)
        if n:
            self.body_mv[:n] = extra
        self.pos = n
        if not ok:
            self.want_crc = False
        self.state = _BODY
        if self.pos >= self.length:
            self._finish()
        elif self.length - self.pos >= _LOWAT_MIN:
            self._lowat(min(self.length - self.pos, _LOWAT))

    def pending(self) -> int:
        """Bytes waiting in the socket's receive queue (FIONREAD), 0 if unknown."""
        if self.sock is None:
            return 0
        try:
            out = fcntl.ioctl(self.sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
            return int.from_bytes(out, sys.byteorder)
        except (OSError, ValueError, AttributeError):
            return 0

    def _lowat(self, n: int) -> None:
        """Wake the loop only when ``n`` bytes can be read (SO_RCVLOWAT): a large body arrives in
        a few reads of about a MiB instead of many small ones, which saves wakeups, syscalls,
        callbacks and TCP window updates (a third of the client CPU of a big GET here). Plain
        TCP only (a TLS record layer sits between the socket and the body); a link too slow to
        fill it between two watchdog checks gets the low-water mark back to 1 byte."""
        if self.sock is None:
            return
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, max(1, n))
            self.lowat = n
        except (OSError, AttributeError):
            self.sock = None  # not supported here: leave it

    def _crc_update(self) -> None:
        """Extend the body's CRC32C over the bytes received since the last update (a small
        body gets one call at the end: each call costs a few microseconds besides the bytes)."""
        assert self.body_mv is not None
        self.crc = crc32c(self.body_mv[self.crc_pos:self.pos], self.crc)
        self.crc_pos = self.pos

    def _finish(self) -> None:
        if self.want_crc and self.crc_pos < self.pos:
            self._crc_update()
        if self.lowat > 1:
            self._lowat(1)
        self.state = _IDLE
        fut = self.fut
        resp = Response(self.status, self.headers, self.body if self.into is None else None,
                        self.ttfb, self.crc if self.want_crc else None)
        self.body_mv = None
        self.body = None
        self.into = None
        self.alloc = None
        if self.cut:  # the rest of a longer body is still coming: drop the connection
            self.closed = True
            if self.transport is not None:
                self.transport.abort()
        if fut is not None and not fut.done():
            fut.set_result(resp)

    def start(self, request: bytes, into: memoryview | None,
              alloc: Callable[[int], memoryview] | None,
              limit: int | None = None, crc: bool = False) -> asyncio.Future[Response]:
        assert self.transport is not None
        self.want_crc = crc
        self.crc = self.crc_pos = 0
        self.fut = self.loop.create_future()
        self.state = _HEADERS
        self.head = bytearray()
        self.into = into
        self.alloc = alloc
        self.limit = limit
        self.cut = False
        self.pos = 0
        self.t0 = time.perf_counter()
        self.last_activity = self.loop.time()
        self.transport.write(request)
        return self.fut


class _ShortBody(ConnectionError):
    def __init__(self, got: int, expected: int) -> None:
        super().__init__(f"body cut short ({got} of {expected} bytes)")
        self.got = got
        self.expected = expected


ShortBody = _ShortBody


class FastGetClient:
    """Keep-alive connection pool and GET requests for one endpoint scheme."""

    def __init__(self, scheme: str, connect_timeout_s: float, read_timeout_s: float,
                 ssl_context: ssl.SSLContext | None = None,
                 deadline_s: Callable[[int], float] | None = None) -> None:
        self.scheme = scheme
        # deadline_s(body bytes) -> seconds a whole response may take (0 before the headers)
        self.deadline_s = deadline_s
        self.default_port = 443 if scheme == "https" else 80
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.ssl: ssl.SSLContext | None = None
        if scheme == "https":
            self.ssl = ssl_context or ssl.create_default_context()
        self.idle: dict[str, list[_Conn]] = {}
        self.closed = False

    async def _connect(self, host: str) -> _Conn:
        loop = asyncio.get_running_loop()
        parts = urlsplit("//" + host)  # handles host, host:port, [v6]:port
        hostname = parts.hostname or host
        port = parts.port or self.default_port
        try:
            _, proto = await asyncio.wait_for(
                loop.create_connection(lambda: _Conn(loop), hostname, port, ssl=self.ssl,
                                       server_hostname=hostname if self.ssl else None),
                self.connect_timeout_s)
        except asyncio.TimeoutError:
            raise TimeoutError(f"connecting to {host} timed out after {self.connect_timeout_s}s") from None
        return proto

    def _acquire_idle(self, host: str) -> _Conn | None:
        pool = self.idle.get(host)
        while pool:
            c = pool.pop()
            if not c.closed:
                return c
        return None

    async def get(self, host: str, target: str, headers: dict[str, str],
                  into: memoryview | None = None,
                  alloc: Callable[[int], memoryview] | None = None,
                  limit: int | None = None, crc: bool = False) -> Response:
        """Send ``GET target`` with ``headers`` (lower-case names, ``host`` included) and
        return the response. With ``limit``, a 2xx body longer than ``limit`` bytes is
        received only up to ``limit`` bytes (the ``body``; its Content-Length header still
        says the full length) and the connection is then closed. With ``crc`` the CRC32C of a
        2xx body is computed read by read as it lands (hot in cache: no second pass over the
        bytes) and returned in ``crc32c``. Raises ConnectionError
        (retryable), TimeoutError, Unsupported."""
        lines = [f"GET {target} HTTP/1.1"]
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        conn = self._acquire_idle(host)
        reused = conn is not None
        while True:
            if conn is None:
                conn = await self._connect(host)
            try:
                return await self._exchange(conn, host, request, into, alloc, limit, crc)
            except ConnectionResetError:
                # A pooled keep-alive connection the server had already closed: try once more
                # on a fresh connection (GET is idempotent); other failures go to the caller.
                if not reused:
                    raise
                reused = False
                conn = None

    async def _exchange(self, conn: _Conn, host: str, request: bytes, into: memoryview | None,
                        alloc: Callable[[int], memoryview] | None,
                        limit: int | None = None, crc: bool = False) -> Response:
        loop = conn.loop
        fut = conn.start(request, into, alloc, limit, crc)
        timeout = self.read_timeout_s
        deadline_s = self.deadline_s
        started = loop.time()
        handle: asyncio.TimerHandle | None = None

        def watchdog() -> None:
            # Two limits: no byte for read_timeout_s (a stall), and the whole response taking
            # longer than its deadline (a server trickling bytes just fast enough).
            nonlocal handle
            now = loop.time()
            idle = now - conn.last_activity
            if idle >= timeout and conn.lowat > 1 and conn.pending() > 0:
                # Bytes did come, just fewer than the low-water mark: a slow link, not a stall.
                conn._lowat(1)
                conn.last_activity = now
                idle = 0.0
            if idle >= timeout:
                conn._fail(TimeoutError(f"no data from {host} for {timeout}s"))
                return
            wait = timeout - idle
            if deadline_s is not None:
                limit = deadline_s(conn.length if conn.state == _BODY else 0)
                if now - started >= limit:
                    conn._fail(TimeoutError(f"the response from {host} took longer than its "
                                            f"deadline of {limit:.0f}s"))
                    return
                wait = min(wait, limit - (now - started))
            handle = loop.call_later(max(wait, 0.01), watchdog)

        first = timeout if deadline_s is None else min(timeout, deadline_s(0))
        handle = loop.call_later(first, watchdog)
        try:
            resp = await fut
        except BaseException:
            conn.closed = True
            if conn.transport is not None:
                conn.transport.abort()
            raise
        finally:
            if handle is not None:
                handle.cancel()
        if conn.keep_alive and not conn.closed and not self.closed:
            self.idle.setdefault(host, []).append(conn)
        elif conn.transport is not None:
            conn.transport.close()
        return resp

    def close(self) -> None:
        self.closed = True
        for pool in self.idle.values():
            for c in pool:
                if c.transport is not None:
                    c.transport.close()
        self.idle.clear()
