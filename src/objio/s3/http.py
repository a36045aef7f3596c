"""objio's HTTP/1.1 client: every S3 request (GET, PUT, HEAD, DELETE, POST) goes through it.

Why its own: a general client (aiohttp was used here for everything but GET) spends ~0.1-0.2 ms
of Python per small request building request and response objects, joins the request head
with the first body buffer (a copy of every small PUT body), and copies every received body
byte two or three times in user space. Here:

* a request is one ``bytes`` head (request line and headers, built with one ``join``) and the
  caller's body buffers, handed to the transport as they are (``transport.writelines``: uvloop
  sends them with one ``writev`` and keeps a reference to what the socket does not take at
  once; nothing is copied);
* the response is parsed by an :class:`asyncio.BufferedProtocol`: the event loop reads
  straight into the buffer the bytes belong in (for a GET body: the preallocated result or the
  caller's ``into`` buffer, so the kernel copies each byte once, into its final place);
* connections are kept alive in one pool per client (per backend, per process: the engine
  makes new backends in a forked child, so a child never touches its parent's sockets).

Framing handled: ``Content-Length`` bodies, ``Transfer-Encoding: chunked`` (decoded), bodies
ending with the connection (no length), no body (HEAD, 204, 304), interim 1xx responses
(skipped). Anything malformed raises :class:`BadResponse` and the connection is dropped.

Retries are the engine's (:mod:`objio.engine`); this client resends a request itself in one
case only, where that is provably harmless: a GET or HEAD sent on a kept-alive connection that
the server closed before any byte of a response (the server had dropped the idle connection).
Every other failure, a PUT on such a connection included, is raised, so the engine knows the
request may have been applied (e.g. a PUT whose response was lost). Before a pooled connection
is reused it is checked (``poll``) for an end-of-file or stray bytes the event loop has not
processed yet; such a connection is dropped and the request was never sent on it.

Proxies: ``HTTPS_PROXY`` / ``HTTP_PROXY`` (also lower case) and ``NO_PROXY``, read when the
client is made, with the standard library's rules (:func:`urllib.request.getproxies_environment`,
:func:`urllib.request.proxy_bypass_environment`); loopback addresses and ``localhost`` never
go through a proxy. An ``https://`` endpoint is reached through a ``CONNECT`` tunnel (TLS to
the endpoint inside it), an ``http://`` one by sending absolute-form requests to the proxy.
The proxy itself is spoken to over plain HTTP (``http://[user:password@]host:port``; the
credentials go in ``Proxy-Authorization: Basic``).
"""

from __future__ import annotations

import asyncio
import base64
import errno
import fcntl
import ipaddress
import itertools
import os
import re
import select
import socket
import ssl
import sys
import termios
import time
import urllib.request
from typing import Any, Callable, Sequence
from urllib.parse import unquote, urlsplit

from .._buffers import new_buffer
from .._crc32c import crc32c

_LOWAT = 1024 * 1024  # SO_RCVLOWAT while a body arrives (bytes)
_LOWAT_MIN = 256 * 1024  # bodies with less than this left are read as they come
_SCRATCH = 16 * 1024  # head reads: small, so little body lands here before the body buffer exists
_BIG_SCRATCH = 256 * 1024  # reads of bodies without a known length (chunked, to end of file)
_MAX_HEADER = 64 * 1024
_MAX_CHUNK_LINE = 4096
_CRC_STEP = 256 * 1024  # the body's CRC32C is brought up to date every this many bytes (in L2)
_JOIN_MAX = 16 * 1024  # request bodies up to this size are joined to the head: one buffer
_IDLE_MAX_S = 15.0  # a pooled connection idle for longer is closed, not reused
_REPLAYABLE = frozenset(("GET", "HEAD"))  # resent once after a stale kept-alive connection
_POLL_STALE = select.POLLIN | select.POLLERR | select.POLLHUP | getattr(select, "POLLRDHUP", 0)

_IDLE, _TUNNEL, _HEADERS, _BODY, _CHUNKED, _TO_EOF = range(6)


class ShortBody(ConnectionError):
    """The connection ended before the whole response body (``got`` of ``expected`` bytes;
    ``expected`` -1 when the body had no declared length: a chunked body cut short)."""

    def __init__(self, got: int, expected: int) -> None:
        of = f"{got} of {expected}" if expected >= 0 else f"{got} bytes, chunked, not"
        super().__init__(f"body cut short ({of} bytes)" if expected >= 0
                         else f"body cut short ({of} terminated)")
        self.got = got
        self.expected = expected


class BadResponse(ConnectionError):
    """What came back is not a well-formed HTTP/1.1 response (status line, headers or body
    framing); the connection is dropped."""


class ProxyError(ConnectionError):
    """The proxy refused to open a tunnel (``status``: its HTTP status; 0: it closed the
    connection)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class NotConnected(ConnectionError):
    """No connection to the endpoint could be made (refused, unreachable, the name not
    resolved): the request was not sent, so sending it elsewhere is harmless whatever it is."""


class ConnectTimeout(NotConnected, TimeoutError):
    """Connecting took longer than ``connect_timeout_s``: the request was not sent."""


class Unreachable(NotConnected):
    """No connection could be opened: the host refused it (nothing listens on the port:
    ``reason`` ``"refused"``) or its name does not resolve (``"unresolved"``). ``target`` is
    ``host:port`` of what was dialled (the proxy's, when ``proxy`` is true). Nothing was
    sent: another endpoint may take the request (:class:`NotConnected`)."""

    def __init__(self, reason: str, target: str, proxy: bool = False) -> None:
        who = f"the proxy {target}" if proxy else target
        super().__init__(f"connection refused by {who}" if reason == "refused"
                         else f"host name of {who} does not resolve")
        self.reason = reason
        self.target = target
        self.proxy = proxy


def _unreachable_reason(e: OSError) -> str | None:
    """``"refused"`` or ``"unresolved"`` for a connection attempt's error, else None. Several
    addresses tried (``localhost``: ::1 and 127.0.0.1) come as one OSError whose text lists
    each error: refused when every one was."""
    if isinstance(e, socket.gaierror):
        return "unresolved"
    if isinstance(e, ConnectionRefusedError) or e.errno == errno.ECONNREFUSED:
        return "refused"
    text = str(e)
    if e.errno is None and text.startswith("Multiple exceptions:"):
        codes = re.findall(r"\[Errno (-?\d+)\]", text)
        if codes and all(int(c) in (errno.ECONNREFUSED, errno.EADDRNOTAVAIL) for c in codes) \
                and str(errno.ECONNREFUSED) in codes:
            return "refused"
    return None


class _Stale(ConnectionResetError):
    """A kept-alive connection ended before any byte of the response came back."""


class _NotSent(_Stale):
    """The connection was closed before the request was written: nothing was sent."""


class Headers(dict):  # type: ignore[type-arg]
    """Response headers: names lower case; ``get``, ``[]`` and ``in`` take any case. A header
    sent several times holds its values joined with ``", "`` (HTTP's list rule)."""

    __slots__ = ()

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return dict.get(self, name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())  # type: ignore[no-any-return]

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, name.lower() if isinstance(name, str) else name)


class Response:
    """Status, headers and the body: ``None`` when it was received ``into`` the caller's
    buffer (only for a 2xx response whose length is that buffer's) or when there is none
    (HEAD, 204); else a bytearray or memoryview of exactly the bytes received.

    ``framed``: the body's length was declared (Content-Length), so a body that ended early
    raised :class:`ShortBody`; False for a chunked or connection-delimited body (a chunked
    one cut short raises too; one delimited by the connection cannot be told from whole).
    ``cut``: the body was longer than the ``limit`` asked; only ``limit`` bytes were kept and
    the connection was closed. ``sent_at`` / ``done_at``: ``time.perf_counter()`` when the
    request started going out and when the response's last byte came (first byte:
    ``sent_at + ttfb_s``); ``conn``: the number of the connection that carried it (from 1 in
    this process)."""

    __slots__ = ("status", "headers", "body", "ttfb_s", "crc32c", "framed", "cut", "sent_at",
                 "done_at", "conn")

    def __init__(self, status: int, headers: Headers, body: bytearray | memoryview | None,
                 ttfb_s: float, crc: int | None = None, framed: bool = True,
                 cut: bool = False) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.ttfb_s = ttfb_s
        self.crc32c = crc  # of the 2xx body received, when asked for (``crc=True``)
        self.framed = framed
        self.cut = cut
        self.sent_at = 0.0
        self.done_at = 0.0
        self.conn = 0


class _Proxy:
    __slots__ = ("host", "port", "auth", "url")

    def __init__(self, url: str, host: str, port: int, auth: str | None) -> None:
        self.url = url
        self.host = host
        self.port = port
        self.auth = auth  # the Proxy-Authorization value, or None


def _parse_proxy(url: str, name: str) -> _Proxy:
    """A proxy URL from the environment variable ``name``. Raises ValueError for a scheme
    other than http (a TLS or SOCKS proxy)."""
    parts = urlsplit(url if "://" in url else "http://" + url)
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise ValueError(f"{name}={_redact(url)!r}: objio speaks to a proxy over plain HTTP; "
                         "expected http://[user:password@]host:port")
    auth = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        auth = "Basic " + base64.b64encode(pair.encode()).decode()
    return _Proxy(_redact(url), parts.hostname, parts.port or 80, auth)


def _redact(url: str) -> str:
    """``url`` without the password of its user info (for messages)."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, sep, userinfo = head.rpartition("://")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{tail}"


def _is_loopback(hostname: str) -> bool:
    if hostname.lower() in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


def proxy_settings(scheme: str) -> tuple[str, str | None, dict[str, str]]:
    """(environment variable name, proxy URL or None, the proxy environment) for endpoints of
    ``scheme``: ``HTTPS_PROXY`` for https, ``HTTP_PROXY`` for http (lower-case names too,
    as :func:`urllib.request.getproxies_environment` reads them)."""
    env = urllib.request.getproxies_environment()
    key = "https" if scheme == "https" else "http"
    return f"{key.upper()}_PROXY", env.get(key) or None, env


_serials = itertools.count(1)
"""Connection numbers (Response.conn)."""


class _Conn(asyncio.BufferedProtocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.serial = next(_serials)
        self.loop = loop
        self.transport: Any = None
        self.closed = False
        self.scratch = bytearray(_SCRATCH)
        self.scratch_mv = memoryview(self.scratch)
        self.big_mv: memoryview | None = None
        self.state = _IDLE
        self.fut: asyncio.Future[Response] | None = None
        self.method = "GET"
        self.head = bytearray()
        self.body_mv: memoryview | None = None
        self.body: bytearray | memoryview | None = None
        self.alloc: Callable[[int], memoryview] | None = None
        self.pos = 0
        self.length = 0
        self.keep_alive = True
        self.status = 0
        self.headers = Headers()
        self.t0 = 0.0
        self.ttfb = 0.0
        self.last_activity = 0.0
        self.idle_since = 0.0
        self.received = 0  # response bytes received for the request in progress
        self.into: memoryview | None = None
        self.limit: int | None = None  # keep at most this many body bytes (then close)
        self.cut = False  # the body was longer than ``limit``: the connection is closed
        self.sock: Any = None
        self.poller: Any = None
        self.lowat = 1
        self.want_crc = False  # compute the CRC32C of a 2xx body as each read lands
        self.crc = 0
        self.crc_pos = 0
        self.forward: _Proxy | None = None  # plain HTTP through this proxy (absolute-form)
        # the request's watchdog (see watch)
        self.w_handle: asyncio.TimerHandle | None = None
        self.w_host = ""
        self.w_timeout = 0.0
        self.w_deadline_s: Callable[[int], float] | None = None
        self.w_size = 0
        self.w_started = 0.0
        self.w_unsent = 0
        # chunked decoding
        self.raw = bytearray()
        self.rpos = 0
        self.out = bytearray()
        self.chunk_left = 0
        self.need_crlf = False
        self.in_trailer = False

    # -- asyncio protocol -------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        raw = transport.get_extra_info("socket")
        if raw is not None:
            try:
                self.poller = select.poll()
                self.poller.register(raw.fileno(), _POLL_STALE)
            except (OSError, ValueError, AttributeError):
                self.poller = None
        if transport.get_extra_info("sslcontext") is None:  # plain TCP only: see _lowat
            self.sock = raw

    def use_tls(self, transport: Any) -> None:
        """The TLS transport that now carries this connection (after a proxy tunnel)."""
        self.transport = transport
        self.sock = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        fut = self.fut
        if fut is None or fut.done():
            return
        if self.state == _TO_EOF and exc is None:
            self._finish()  # the end of the connection is the end of the body
            return
        err: Exception
        if self.state == _BODY:
            err = ShortBody(self.pos, self.length)
        elif self.state in (_CHUNKED, _TO_EOF):
            err = ShortBody(len(self.out), -1)
        elif self.state == _TUNNEL:
            err = ProxyError("the proxy closed the connection before answering CONNECT")
        elif self.received == 0:
            err = _Stale("connection closed by the server before the response"
                         f"{': ' + str(exc) if exc else ''}")
        else:
            err = BadResponse("connection closed by the server in the middle of the response "
                              "headers")
        fut.set_exception(err)

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost reports any unfinished response

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.state == _BODY and self.body_mv is not None:
            return self.body_mv[self.pos:]
        if self.state in (_CHUNKED, _TO_EOF):
            if self.big_mv is None:
                self.big_mv = memoryview(bytearray(_BIG_SCRATCH))
            return self.big_mv
        return self.scratch_mv

    def buffer_updated(self, nbytes: int) -> None:
        self.last_activity = self.loop.time()
        self.received += nbytes
        state = self.state
        if state == _BODY:
            self.pos += nbytes
            if self.want_crc and self.pos - self.crc_pos >= _CRC_STEP:
                self._crc_update()  # the bytes just read are hot in cache: no re-read later
            if self.pos >= self.length:
                self._finish()
            elif self.lowat > self.length - self.pos:  # the tail: wake for whatever is left
                self._lowat(self.length - self.pos)
        elif state == _HEADERS or state == _TUNNEL:
            self._on_head_bytes(self.scratch, 0, nbytes)
        elif state == _CHUNKED:
            assert self.big_mv is not None
            self.raw += self.big_mv[:nbytes]
            self._on_chunked()
        elif state == _TO_EOF:
            assert self.big_mv is not None
            self.out += self.big_mv[:nbytes]
            self._check_limit()
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

    def _on_head_bytes(self, buf: bytearray, start: int, stop: int) -> None:
        """Response head bytes ``buf[start:stop]`` have arrived (status line, headers)."""
        while True:
            if self.head:  # a head spread over several reads (rare): accumulate
                self.head += memoryview(buf)[start:stop]
                buf, start, stop = self.head, 0, len(self.head)
                self.head = bytearray()
            end = buf.find(b"\r\n\r\n", start, stop)
            if end < 0:
                if stop - start > _MAX_HEADER:
                    self._fail(BadResponse("response headers larger than 64 KiB"))
                else:
                    self.head = bytearray(memoryview(buf)[start:stop])
                return
            if not self.ttfb:
                self.ttfb = time.perf_counter() - self.t0
            if not self._parse_head(bytes(memoryview(buf)[start:end])):
                return
            start = end + 4
            if 100 <= self.status < 200 and self.state == _HEADERS:
                # An interim response (100 Continue, 103 Early Hints): the real one follows.
                if self.status == 101:
                    self._fail(BadResponse("unexpected 101 Switching Protocols"))
                    return
                if start >= stop:
                    return
                continue
            self._start_body(memoryview(buf)[start:stop])
            return

    def _parse_head(self, block: bytes) -> bool:
        """Status line and headers of one response head (without the blank line)."""
        lines = block.decode("latin-1").split("\r\n")
        status_line = lines[0]
        version, _, rest = status_line.partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit() or (
                len(rest) > 3 and rest[3] != " "):
            self._fail(BadResponse(f"malformed HTTP status line {status_line[:100]!r}"))
            return False
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            name = name.lower()
            if not colon or not name or name != name.strip() or " " in name:
                self._fail(BadResponse(f"malformed HTTP header line {line[:100]!r}"))
                return False
            value = value.strip()
            if name == "content-length" and not (value.isascii() and value.isdigit()):
                self._fail(BadResponse(f"malformed Content-Length {value[:40]!r}"))
                return False
            if name in headers:
                if name == "content-length":
                    if headers[name] != value:
                        self._fail(BadResponse("conflicting Content-Length headers"))
                        return False
                    continue
                value = headers[name] + ", " + value
            headers[name] = value
        self.status = int(code)
        self.headers = Headers(headers)
        conn = headers.get("connection", "").lower()
        if version == "HTTP/1.0":
            self.keep_alive = "keep-alive" in conn
        elif "close" in conn:
            self.keep_alive = False
        return True

    def _start_body(self, extra: memoryview | bytearray) -> None:
        status = self.status
        headers = self.headers
        if self.state == _TUNNEL:  # the proxy's answer to CONNECT
            if len(extra):
                self._fail(BadResponse("the proxy sent bytes after its CONNECT answer"))
                return
            self.state = _IDLE
            fut = self.fut
            if fut is not None and not fut.done():
                fut.set_result(Response(status, headers, None, self.ttfb))
            return
        if self.method == "HEAD" or status == 204 or status == 304:
            self.length = 0
            if len(extra):
                self.keep_alive = False  # bytes that belong to no response
            self.state = _BODY
            self._finish()
            return
        te = dict.get(headers, "transfer-encoding")
        if te is not None:
            if te.lower().rsplit(",", 1)[-1].strip() != "chunked":
                self._fail(BadResponse(f"unsupported Transfer-Encoding {te[:100]!r}"))
                return
            self.state = _CHUNKED
            self.raw = bytearray(extra)
            self.rpos = 0
            self.out = bytearray()
            self.chunk_left = 0
            self.need_crlf = self.in_trailer = False
            if not 200 <= status < 300:
                self.want_crc = False
            self._on_chunked()
            return
        cl = dict.get(headers, "content-length")
        if cl is None:  # the body ends with the connection
            self.keep_alive = False
            self.state = _TO_EOF
            self.out = bytearray(extra)
            self.want_crc = False
            self._check_limit()
            return
        length = int(cl)
        if len(extra) > length:
            self._fail(BadResponse("more response data than Content-Length"))
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
        else:  # an error body, a body without a destination, or not the caller's length
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

    def _check_limit(self) -> None:
        """A body of unknown length past the ``limit`` asked for (2xx only): keep ``limit``
        bytes, close the connection."""
        if self.limit is not None and len(self.out) > self.limit and 200 <= self.status < 300:
            del self.out[self.limit:]
            self.cut = True
            self.keep_alive = False
            self._finish()

    def _on_chunked(self) -> None:
        """Decode what has arrived of a chunked body (``raw`` from ``rpos``) into ``out``."""
        raw = self.raw
        while True:
            if self.chunk_left:
                take = min(self.chunk_left, len(raw) - self.rpos)
                if take <= 0:
                    break
                self.out += memoryview(raw)[self.rpos:self.rpos + take]
                self.rpos += take
                self.chunk_left -= take
                if self.limit is not None and len(self.out) > self.limit \
                        and 200 <= self.status < 300:
                    self._check_limit()
                    return
                if self.chunk_left:
                    break
                self.need_crlf = True
            if self.need_crlf:
                if len(raw) - self.rpos < 2:
                    break
                if raw[self.rpos:self.rpos + 2] != b"\r\n":
                    self._fail(BadResponse("malformed chunked body (no CRLF after a chunk)"))
                    return
                self.rpos += 2
                self.need_crlf = False
            i = raw.find(b"\r\n", self.rpos)
            if i < 0:
                if len(raw) - self.rpos > _MAX_CHUNK_LINE:
                    self._fail(BadResponse("malformed chunked body (a line too long)"))
                    return
                break
            line = bytes(raw[self.rpos:i])
            self.rpos = i + 2
            if self.in_trailer:
                if not line:  # the blank line after the last chunk (and trailers)
                    if self.rpos < len(raw):
                        self.keep_alive = False  # bytes that belong to no response
                    self._finish()
                    return
                continue
            size = line.split(b";", 1)[0].strip()
            try:
                n = int(size, 16)
            except ValueError:
                n = -1
            if n < 0 or not size or size.startswith((b"-", b"+", b"0x", b"0X")):
                self._fail(BadResponse(f"malformed chunk size {size[:40]!r}"))
                return
            if n == 0:
                self.in_trailer = True
            else:
                self.chunk_left = n
        if self.rpos > 65536:
            del raw[:self.rpos]
            self.rpos = 0

    def pending(self) -> int:
        """Bytes waiting in the socket's receive queue (FIONREAD), 0 if unknown."""
        if self.sock is None:
            return 0
        try:
            out = fcntl.ioctl(self.sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
            return int.from_bytes(out, sys.byteorder)
        except (OSError, ValueError, AttributeError):
            return 0

    def stale(self) -> bool:
        """Whether this idle connection has an end-of-file, an error or stray bytes waiting
        that the event loop has not handled yet (then it must not carry a request)."""
        if self.closed:
            return True
        if self.poller is None:
            return False
        try:
            return bool(self.poller.poll(0))
        except (OSError, ValueError):
            return True

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

    # -- the request's watchdog -------------------------------------------------------------
    def watch(self, host: str, timeout: float, deadline_s: Callable[[int], float] | None,
              size: int) -> None:
        """Watch the request just started (``size``: the bytes it sends, plus any the server
        moves for it) until :meth:`unwatch`: it fails with TimeoutError when nothing was sent
        or received for ``timeout`` seconds (a stall), or when the whole request takes longer
        than ``deadline_s(n)`` (n: the larger of ``size`` and the response body's length; a
        server trickling bytes just fast enough). The state is this connection's (one request
        at a time), not a closure's: nothing to collect per request."""
        self.w_host = host
        self.w_timeout = timeout
        self.w_deadline_s = deadline_s
        self.w_size = size
        self.w_started = self.loop.time()
        self.w_unsent = self.transport.get_write_buffer_size()
        first = timeout if deadline_s is None else min(timeout, deadline_s(size))
        self.w_handle = self.loop.call_later(first, self._watchdog)

    def unwatch(self) -> None:
        if self.w_handle is not None:
            self.w_handle.cancel()
            self.w_handle = None

    def _watchdog(self) -> None:
        now = self.loop.time()
        timeout = self.w_timeout
        if self.w_unsent:  # the body is still going out: progress counts as activity
            left = self.transport.get_write_buffer_size()
            if left != self.w_unsent:
                self.w_unsent = left
                self.last_activity = now
        idle = now - self.last_activity
        if idle >= timeout and self.lowat > 1 and self.pending() > 0:
            # Bytes did come, just fewer than the low-water mark: a slow link, not a stall.
            self._lowat(1)
            self.last_activity = now
            idle = 0.0
        if idle >= timeout:
            self.w_handle = None
            self._fail(TimeoutError(f"no data from {self.w_host} for {timeout}s"))
            return
        wait = timeout - idle
        deadline_s = self.w_deadline_s
        if deadline_s is not None:
            limit = deadline_s(max(self.w_size, self.length if self.state == _BODY else 0))
            if now - self.w_started >= limit:
                self.w_handle = None
                self._fail(TimeoutError(f"the response from {self.w_host} took longer than "
                                        f"its deadline of {limit:.0f}s"))
                return
            wait = min(wait, limit - (now - self.w_started))
        self.w_handle = self.loop.call_later(max(wait, 0.01), self._watchdog)

    def _crc_update(self) -> None:
        """Extend the body's CRC32C over the bytes received since the last update (a small
        body gets one call at the end: each call costs a few microseconds besides the bytes)."""
        assert self.body_mv is not None
        self.crc = crc32c(self.body_mv[self.crc_pos:self.pos], self.crc)
        self.crc_pos = self.pos

    def _finish(self) -> None:
        state = self.state
        if state == _BODY:
            if self.want_crc and self.crc_pos < self.pos:
                self._crc_update()
            body = self.body if self.into is None else None
            framed = True
        else:  # chunked, or ended by the connection
            body = self.out
            framed = False
            self.want_crc = False
            self.out = bytearray()
            self.raw = bytearray()
        if self.lowat > 1:
            self._lowat(1)
        self.state = _IDLE
        fut = self.fut
        resp = Response(self.status, self.headers, body, self.ttfb,
                        self.crc if self.want_crc else None, framed, self.cut)
        resp.sent_at, resp.done_at, resp.conn = self.t0, time.perf_counter(), self.serial
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

    def start(self, head: bytes, body: Sequence[Any] | None, method: str,
              into: memoryview | None, alloc: Callable[[int], memoryview] | None,
              limit: int | None = None, crc: bool = False) -> asyncio.Future[Response]:
        """Send one request (``head`` then the ``body`` buffers) and return the future of its
        response."""
        transport = self.transport
        assert transport is not None
        self.fut = self.loop.create_future()
        if self.closed or transport.is_closing():  # the request is never sent
            self.fut.set_exception(_NotSent("the connection was closed before the request"))
            return self.fut
        self.want_crc = crc
        self.crc = self.crc_pos = 0
        self.state = _HEADERS
        self.method = method
        self.head = bytearray()
        self.into = into
        self.alloc = alloc
        self.limit = limit
        self.cut = False
        self.pos = 0
        self.received = 0
        self.ttfb = 0.0
        self.t0 = time.perf_counter()
        self.last_activity = self.loop.time()
        if body:
            transport.writelines((head, *body))
        else:
            transport.write(head)
        return self.fut

    def tunnel(self, request: bytes) -> asyncio.Future[Response]:
        """Send a CONNECT ``request`` to the proxy; the future gets the proxy's answer."""
        self.fut = self.loop.create_future()
        self.state = _TUNNEL
        self.method = "CONNECT"
        self.head = bytearray()
        self.received = 0
        self.t0 = time.perf_counter()
        self.transport.write(request)
        return self.fut

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class HTTPClient:
    """Keep-alive connections to one endpoint scheme (``http`` or ``https``) and HTTP/1.1
    requests on them. Runs on one event loop (the engine's); not thread-safe.

    Args:
        scheme: ``http`` or ``https``.
        connect_timeout_s: seconds a new connection may take (TCP, proxy tunnel and TLS
            handshake together).
        read_timeout_s: seconds without a byte sent or received during a request before it
            fails with TimeoutError (a stall).
        ssl_context: the TLS context for https (default: the system's CAs).
        deadline_s: ``deadline_s(n)`` -> seconds a whole request moving ``n`` bytes (its
            body, or the response body once its length is known) may take; None: no limit.
        proxies: whether to honour ``HTTP(S)_PROXY`` / ``NO_PROXY`` (read now).
    """

    @classmethod
    def for_config(cls, scheme: str, config: Any, ca_bundle_env: str) -> HTTPClient:
        """The client a backend of the resolved ``config`` (:class:`objio.config.ClientConfig`)
        sends through: its ``connect_timeout_s`` and ``read_timeout_s`` (seconds) and request
        deadlines (``config.deadline_s``); for ``https``, the default TLS context with the CA
        bundle the environment variable ``ca_bundle_env`` names, if set (``AWS_CA_BUNDLE``
        for S3 as botocore reads it; ``REQUESTS_CA_BUNDLE`` for Azure and GCS, as their SDKs
        do)."""
        ctx = None
        if scheme == "https":
            ctx = ssl.create_default_context(cafile=os.environ.get(ca_bundle_env) or None)
        return cls(scheme, config.connect_timeout_s or 10.0, config.read_timeout_s or 30.0,
                   ssl_context=ctx, deadline_s=config.deadline_s)

    def __init__(self, scheme: str, connect_timeout_s: float, read_timeout_s: float,
                 ssl_context: ssl.SSLContext | None = None,
                 deadline_s: Callable[[int], float] | None = None,
                 proxies: bool = True) -> None:
        self.scheme = scheme
        self.deadline_s = deadline_s
        self.default_port = 443 if scheme == "https" else 80
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.ssl: ssl.SSLContext | None = None
        if scheme == "https":
            self.ssl = ssl_context or ssl.create_default_context()
        self.idle: dict[str, list[_Conn]] = {}
        self.closed = False
        self.connections_opened = 0  # new connections made (for tests and measurements)
        self._proxy_var, self._proxy_url, self._proxy_env = (
            proxy_settings(scheme) if proxies else ("", None, {}))
        self._proxies: dict[str, _Proxy | None] = {}

    # ----------------------------------------------------------------------------- proxies
    def proxy_for(self, hostname: str) -> _Proxy | None:
        """The proxy a request to ``hostname`` goes through, or None (direct). Raises
        ValueError for a proxy URL objio cannot use."""
        try:
            return self._proxies[hostname]
        except KeyError:
            pass
        proxy = None
        if self._proxy_url and not _is_loopback(hostname) and not \
                urllib.request.proxy_bypass_environment(  # type: ignore[attr-defined]
                    hostname, self._proxy_env):
            proxy = _parse_proxy(self._proxy_url, self._proxy_var)
        self._proxies[hostname] = proxy
        return proxy

    # ----------------------------------------------------------------------------- connections
    async def _connect(self, host: str) -> _Conn:
        parts = urlsplit("//" + host)  # handles host, host:port, [v6]:port
        hostname = parts.hostname or host
        port = parts.port or self.default_port
        proxy = self.proxy_for(hostname)
        try:
            conn = await asyncio.wait_for(self._open(hostname, port, proxy),
                                          self.connect_timeout_s)
        except asyncio.TimeoutError:
            via = f" through the proxy {proxy.url}" if proxy is not None else ""
            raise ConnectTimeout(f"connecting to {host}{via} timed out after "
                                 f"{self.connect_timeout_s}s") from None
        except (ssl.SSLError, ProxyError):
            raise
        except OSError as e:  # refused, unreachable, name not resolved: nothing was sent
            if _unreachable_reason(e) is not None:
                raise self._unreachable(e, hostname, port, proxy) from e
            why = f"cannot connect to {host}: {e.strerror or e}"
            raise (NotConnected(e.errno, why) if e.errno is not None else NotConnected(why)) \
                from e
        self.connections_opened += 1
        return conn

    @staticmethod
    def _unreachable(e: OSError, hostname: str, port: int, proxy: _Proxy | None) -> Unreachable:
        """``e`` (refused, or a name that does not resolve) as :class:`Unreachable`. Which of
        the endpoint and the proxy failed: a proxy's own errors come before its tunnel (an
        https endpoint's name is resolved by the proxy, which answers with an HTTP status)."""
        reason = _unreachable_reason(e) or "refused"
        if proxy is not None:
            hostname, port = proxy.host, proxy.port
        target = f"[{hostname}]:{port}" if ":" in hostname else f"{hostname}:{port}"
        return Unreachable(reason, target, proxy=proxy is not None)

    async def _open(self, hostname: str, port: int, proxy: _Proxy | None) -> _Conn:
        loop = asyncio.get_running_loop()
        if proxy is None:
            _, conn = await loop.create_connection(
                lambda: _Conn(loop), hostname, port, ssl=self.ssl,
                server_hostname=hostname if self.ssl else None)
            return conn
        _, conn = await loop.create_connection(lambda: _Conn(loop), proxy.host, proxy.port)
        if self.ssl is None:  # plain HTTP: absolute-form requests to the proxy
            conn.forward = proxy
            return conn
        try:
            target = f"[{hostname}]:{port}" if ":" in hostname else f"{hostname}:{port}"
            lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
            if proxy.auth:
                lines.append(f"Proxy-Authorization: {proxy.auth}")
            answer = await conn.tunnel(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            if not 200 <= answer.status < 300:
                raise ProxyError(f"the proxy {proxy.url} refused CONNECT {target}: HTTP "
                                 f"{answer.status}", answer.status)
            tls = await loop.start_tls(conn.transport, conn, self.ssl, server_hostname=hostname)
        except BaseException:
            conn.closed = True
            if conn.transport is not None:
                conn.transport.abort()
            raise
        conn.use_tls(tls)
        return conn

    def _acquire_idle(self, host: str) -> _Conn | None:
        pool = self.idle.get(host)
        if not pool:
            return None
        while pool:
            c = pool.pop()
            if c.loop.time() - c.idle_since > _IDLE_MAX_S or c.stale():
                c.close()
                continue
            return c
        return None

    # ----------------------------------------------------------------------------- requests
    async def request(self, method: str, host: str, target: str, headers: dict[str, str],
                      body: Sequence[Any] | None = None, *,
                      into: memoryview | None = None,
                      alloc: Callable[[int], memoryview] | None = None,
                      limit: int | None = None, crc: bool = False,
                      moves: int = 0,
                      resent: Callable[[float, BaseException], None] | None = None) -> Response:
        """Send ``method target`` with ``headers`` (lower-case names, ``host`` included) and
        the ``body`` buffers (bytes-like, each of byte format; sent as they are, not copied:
        they must not change until this returns), and return the response.

        ``into`` / ``alloc``: where a 2xx body goes (the caller's buffer when its length is the
        body's; else ``alloc(n)``; else a new buffer). With ``limit``, a 2xx body longer than
        ``limit`` bytes is received only up to ``limit`` bytes (Content-Length still says the
        full length; ``cut`` is set) and the connection is then closed. ``resent(start,
        error)`` is called for a request sent on a kept-alive connection the server had
        closed and that is then sent again (below): the op-log's line for that first try
        (``start``: ``time.perf_counter()`` when it began). With ``crc`` the
        CRC32C of a 2xx body of known length is computed read by read as it lands (hot in
        cache: no second pass over the bytes) and returned in ``crc32c``. ``moves``: bytes
        the server moves for this request besides its body (a server-side copy), added to
        the byte count its deadline is computed from.

        Raises ConnectionError (ShortBody, BadResponse, ProxyError, a reset: the request may
        or may not have been applied), TimeoutError (no byte moved for ``read_timeout_s``, the
        deadline passed, or the connection could not be made in time), ssl.SSLError,
        ValueError (an unusable proxy setting)."""
        size = 0
        pieces: Sequence[Any] | None = None
        extra = b""
        if body:
            size = sum(len(p) for p in body)
            headers["content-length"] = str(size)
            if size <= _JOIN_MAX:
                extra = b"".join(body)
            else:
                pieces = body
        elif method in ("PUT", "POST"):
            headers["content-length"] = "0"
        conn = self._acquire_idle(host)
        reused = conn is not None
        again = True  # one transparent resend at most
        while True:
            if conn is None:
                conn = await self._connect(host)
            if conn.forward is not None:
                request_target = f"{self.scheme}://{host}{target}"
                if conn.forward.auth:
                    headers["proxy-authorization"] = conn.forward.auth
            else:
                request_target = target
            head = "".join([f"{method} {request_target} HTTP/1.1\r\n",
                            *[f"{k}: {v}\r\n" for k, v in headers.items()], "\r\n"]
                           ).encode()
            if extra:
                head += extra
            began = time.perf_counter()
            try:
                return await self._exchange(conn, host, head, pieces, method, size + moves,
                                            into, alloc, limit, crc)
            except _Stale as e:
                # Nothing was sent: send it on a new connection. The server closed a
                # kept-alive connection before any byte of a response: a GET or HEAD is sent
                # again, once, on a new connection; any other request may have been applied,
                # and the caller (the engine) decides.
                if not again or not (isinstance(e, _NotSent) or (
                        reused and method in _REPLAYABLE)):
                    raise ConnectionResetError(str(e)) from None
                if resent is not None and not isinstance(e, _NotSent):
                    resent(began, e)
                again = reused = False
                conn = None

    async def _exchange(self, conn: _Conn, host: str, head: bytes, body: Sequence[Any] | None,
                        method: str, size: int, into: memoryview | None,
                        alloc: Callable[[int], memoryview] | None,
                        limit: int | None = None, crc: bool = False) -> Response:
        loop = conn.loop
        fut = conn.start(head, body, method, into, alloc, limit, crc)
        transport = conn.transport
        conn.watch(host, self.read_timeout_s, self.deadline_s, size)
        try:
            resp = await fut
        except BaseException:
            conn.closed = True
            if conn.transport is not None:
                conn.transport.abort()
            raise
        finally:
            conn.unwatch()
        if conn.closed:
            return resp
        if conn.keep_alive and not self.closed and not transport.get_write_buffer_size():
            conn.idle_since = loop.time()
            self.idle.setdefault(host, []).append(conn)
        else:
            conn.closed = True
            if transport.get_write_buffer_size():  # an answer before the whole body was sent
                transport.abort()
            else:
                transport.close()
        return resp

    def close(self) -> None:
        self.closed = True
        for pool in self.idle.values():
            for c in pool:
                c.close()
        self.idle.clear()
