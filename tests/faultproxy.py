"""A small fault-injecting HTTP/1.1 proxy for tests: it sits between objio and LocalS3Server
and can lose, reset, truncate, re-frame, rewrite, forge, stall or trickle single responses,
send raw bytes instead of a response, close a kept-alive connection after a response, cut a
request in the middle of its body, alter a request before the server sees it, or hold one
request at a known point (Hold).

Requests are parsed (request line, headers, Content-Length body) and forwarded unchanged (the
SigV4 signature stays valid) over a fresh upstream connection each; the response is read whole
(Content-Length, chunked, or none for HEAD/204/304) and handed to the first matching rule.

    proxy = FaultProxy(server.endpoint_url)
    proxy.add(lambda r: r.method == "GET" and "range" in r.headers, Truncate(1000), times=1)
    client = objio.Client(server.config.replace(endpoint_url=proxy.endpoint_url))
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    raw: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query, keep_blank_values=True))

    @property
    def range(self) -> tuple[int, int | None] | None:
        """The requested byte range ``(start, end or None)``, or None."""
        v = self.headers.get("range")
        if not v or not v.startswith("bytes="):
            return None
        a, _, b = v[6:].partition("-")
        return int(a), (int(b) if b else None)

    def with_body(self, body: bytes) -> Request:
        """This request with ``body`` instead of its own (Content-Length adjusted; the rest of
        the head, signature included, unchanged: a SigV4 request signed with UNSIGNED-PAYLOAD
        stays valid)."""
        head = self.raw[: len(self.raw) - len(self.body)]
        headers = dict(self.headers)
        if len(body) != len(self.body):
            lines = head.split(b"\r\n")
            head = b"\r\n".join(
                f"Content-Length: {len(body)}".encode() if ln.lower().startswith(b"content-length:")
                else ln for ln in lines)
            headers["content-length"] = str(len(body))
        return Request(self.method, self.target, headers, body, head + body)


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def set(self, name: str, value: str | None) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        if value is not None:
            self.headers.append((name, value))


class _HeadResponse(Response):
    """A HEAD response: its Content-Length is the server's, and no body follows."""


def encode(resp: Response, *, chunked: bool = False, length: int | None = None,
           body: bytes | None = None) -> bytes:
    """Wire bytes of ``resp``: with Content-Length ``length`` (default: the body's) or chunked;
    ``body`` replaces what is actually sent (e.g. fewer bytes than the declared length)."""
    if isinstance(resp, _HeadResponse):
        return (f"HTTP/1.1 {resp.status} {resp.reason}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in resp.headers) + "\r\n").encode("latin-1")
    sent = resp.body if body is None else body
    headers = [(k, v) for k, v in resp.headers
               if k.lower() not in ("content-length", "transfer-encoding")]
    if chunked:
        headers.append(("Transfer-Encoding", "chunked"))
    else:
        headers.append(("Content-Length", str(len(resp.body) if length is None else length)))
    head = f"HTTP/1.1 {resp.status} {resp.reason}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    if not chunked:
        return head.encode("latin-1") + sent
    parts = [head.encode("latin-1")]
    for off in range(0, len(sent), 8192):
        piece = sent[off: off + 8192]
        parts.append(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    parts.append(b"0\r\n\r\n")
    return b"".join(parts)


# ------------------------------------------------------------------------------ actions
class Action:
    """What to do with one matched request. ``forward`` says whether the request goes to the
    server at all; ``respond`` returns the bytes to send (None: close the connection)."""

    forward = True
    close_after = False

    def request(self, req: Request) -> Request:
        """What is sent to the server (when ``forward``): the request as it came."""
        return req

    def respond(self, req: Request, resp: Response | None) -> bytes | None:
        assert resp is not None
        return encode(resp)


class Pass(Action):
    pass


class CloseAfter(Action):
    """Answer normally (the response says nothing about closing: a kept-alive response), then
    close the connection, as a server does with connections it keeps idle no longer.
    :attr:`closed` is set once the connection is closed."""

    close_after = True

    def __init__(self) -> None:
        self.closed = threading.Event()


class CutRequest(Action):
    """Read the request head and ``n`` bytes of its body, then reset the connection (RST):
    the request never reaches the server. Matched on the head alone (``body`` empty)."""

    forward = False

    def __init__(self, n: int) -> None:
        self.n = n

    def respond(self, req: Request, resp: Response | None) -> bytes | None:
        return None


class Raw(Action):
    """Answer with ``data`` (raw bytes, e.g. a malformed status line), then close; the server
    sees the request first when ``forward``."""

    close_after = True

    def __init__(self, data: bytes, forward: bool = False) -> None:
        self.data = data
        self.forward = forward

    def respond(self, req: Request, resp: Response | None) -> bytes | None:
        return self.data


class Stall(Action):
    """The server answers, but the answer is held back ``seconds`` (longer than the client's
    read timeout: a stalled response), then sent."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class AlterRequest(Action):
    """Send the server ``fn(request)`` instead of the request (e.g. ``req.with_body(...)``
    with a byte flipped: damage on the way in); its response goes back unchanged."""

    def __init__(self, fn: Callable[[Request], Request]) -> None:
        self.fn = fn

    def request(self, req: Request) -> Request:
        return self.fn(req)


class LoseResponse(Action):
    """The server handles the request, but its response never reaches the client."""

    def respond(self, req: Request, resp: Response | None) -> bytes | None:
        return None


class Reset(Action):
    """Close the client connection without forwarding anything."""

    forward = False

    def respond(self, req: Request, resp: Response | None) -> bytes | None:
        return None


class Truncate(Action):
    """Send only the first ``n`` body bytes, declaring the full length, then close."""

    close_after = True

    def __init__(self, n: int) -> None:
        self.n = n

    def respond(self, req: Request, resp: Response | None) -> bytes | None:
        assert resp is not None
        return encode(resp, body=resp.body[: self.n])


class Rechunk(Action):
    """Re-frame the response as chunked; ``keep`` bytes of the body (None: all), cleanly
    terminated (a short body that looks complete)."""

    def __init__(self, keep: int | None = None) -> None:
        self.keep = keep

    def respond(self, req: Request, resp: Response | None) -> bytes | None:
        assert resp is not None
        body = resp.body if self.keep is None else resp.body[: self.keep]
        return encode(resp, chunked=True, body=body)


class Rewrite(Action):
    """Pass the server's response through ``fn`` (which may change status, headers, body);
    with ``request``, the server gets ``request(req)`` instead of the request (as
    :class:`AlterRequest`), and ``fn`` still sees the request as the client sent it."""

    def __init__(self, fn: Callable[[Request, Response], Response], chunked: bool = False,
                 request: Callable[[Request], Request] | None = None) -> None:
        self.fn = fn
        self.chunked = chunked
        self.alter = request

    def request(self, req: Request) -> Request:
        return req if self.alter is None else self.alter(req)

    def respond(self, req: Request, resp: Response | None) -> bytes | None:
        assert resp is not None
        return encode(self.fn(req, resp), chunked=self.chunked)


class Forge(Action):
    """Answer without asking the server: ``fn(request)`` gives the response."""

    forward = False

    def __init__(self, fn: Callable[[Request], Response], chunked: bool = False) -> None:
        self.fn = fn
        self.chunked = chunked

    def respond(self, req: Request, resp: Response | None) -> bytes | None:
        return encode(self.fn(req), chunked=self.chunked)


class Trickle(Action):
    """Send the response ``step`` bytes at a time, ``interval_s`` apart (a slow server that
    never stalls long enough for a read timeout)."""

    def __init__(self, step: int, interval_s: float) -> None:
        self.step = step
        self.interval_s = interval_s

    def respond(self, req: Request, resp: Response | None) -> bytes | None:
        assert resp is not None
        return encode(resp)


class Hold(Action):
    """Hold the request until :meth:`release`: before it reaches the server (default), or
    with ``after_server=True`` once the server has answered, before the answer goes back.
    :attr:`reached` is set when a request is being held, :attr:`answered` once the server has
    answered it (whether or not the client still listens). For putting a client's interrupt
    at a known point of a request."""

    def __init__(self, after_server: bool = False) -> None:
        self.after_server = after_server
        self.reached = threading.Event()
        self.released = threading.Event()
        self.answered = threading.Event()

    def release(self) -> None:
        self.released.set()

    async def wait(self) -> None:
        self.reached.set()
        while not self.released.is_set():
            await asyncio.sleep(0.01)


@dataclass
class Rule:
    match: Callable[[Request], bool]
    action: Action
    times: int | None = 1
    hits: int = 0


@dataclass
class _State:
    rules: list[Rule] = field(default_factory=list)
    log: list[Request] = field(default_factory=list)
    down_until: float = 0.0


class FaultProxy:
    """An HTTP proxy on a free loopback port in front of ``upstream`` (``http://host:port``)."""

    def __init__(self, upstream: str) -> None:
        u = urlsplit(upstream)
        self.up_host = u.hostname or "127.0.0.1"
        self.up_port = u.port or 80
        self.state = _State()
        self.lock = threading.Lock()
        self.loop, self.thread, self.port = start_loop_server(self._handle, "fault-proxy")

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> list[Request]:
        with self.lock:
            return list(self.state.log)

    def add(self, match: Callable[[Request], bool], action: Action, times: int | None = 1) -> Rule:
        rule = Rule(match, action, times)
        with self.lock:
            self.state.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self.lock:
            self.state.rules.clear()
            self.state.log.clear()
            self.state.down_until = 0.0

    def down_for(self, seconds: float) -> None:
        """Refuse every request (connection closed at once) for ``seconds``: a restart."""
        with self.lock:
            self.state.down_until = time.monotonic() + seconds

    def _pick_head(self, req: Request) -> CutRequest | None:
        """A CutRequest rule matching a request of which only the head has been read."""
        with self.lock:
            for rule in self.state.rules:
                if isinstance(rule.action, CutRequest) and (
                        rule.times is None or rule.hits < rule.times) and rule.match(req):
                    rule.hits += 1
                    self.state.log.append(req)
                    return rule.action
        return None

    def _pick(self, req: Request) -> Action:
        with self.lock:
            self.state.log.append(req)
            now = time.monotonic()
            if self.state.down_until > now:  # "restarting": refuse
                return Reset()
            for rule in self.state.rules:
                if isinstance(rule.action, CutRequest):
                    continue
                if (rule.times is None or rule.hits < rule.times) and rule.match(req):
                    rule.hits += 1
                    return rule.action
        return Pass()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        action: Action | None = None
        try:
            while True:
                req = await _read_request(reader, self._pick_head, writer)
                if req is None:
                    return
                action = self._pick(req)
                hold = action if isinstance(action, Hold) else None
                if hold is not None and not hold.after_server:
                    await hold.wait()
                resp = await self._forward(action.request(req)) if action.forward else None
                if hold is not None:
                    hold.answered.set()
                    if hold.after_server:
                        await hold.wait()
                out = action.respond(req, resp)
                if out is None:
                    return
                if isinstance(action, Stall):
                    await asyncio.sleep(action.seconds)
                if isinstance(action, Trickle):
                    for off in range(0, len(out), action.step):
                        writer.write(out[off: off + action.step])
                        await writer.drain()
                        await asyncio.sleep(action.interval_s)
                else:
                    writer.write(out)
                    await writer.drain()
                if action.close_after:
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            if isinstance(action, CloseAfter):
                try:
                    await writer.wait_closed()
                except (ConnectionError, asyncio.CancelledError):
                    pass
                action.closed.set()

    async def _forward(self, req: Request) -> Response:
        r, w = await asyncio.open_connection(self.up_host, self.up_port)
        try:
            w.write(req.raw)
            await w.drain()
            return await _read_response(r, req.method)
        finally:
            w.close()

    def stop(self) -> None:
        stop_loop_thread(self.loop, self.thread)


def start_loop_server(handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                      Awaitable[None]],
                      name: str | None = None
                      ) -> tuple[asyncio.AbstractEventLoop, threading.Thread, int]:
    """Start a test server: ``asyncio.start_server(handle)`` on 127.0.0.1 (a free port), on
    an event loop of its own in a daemon thread. Returns (loop, thread, port); stop it with
    :func:`stop_loop_thread`."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port = [0]

    def main() -> None:
        asyncio.set_event_loop(loop)
        srv = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0))
        port[0] = srv.sockets[0].getsockname()[1]
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=main, name=name, daemon=True)
    thread.start()
    ready.wait()
    return loop, thread, port[0]


def stop_loop_thread(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    """Stop a test server's event loop running in ``thread``: cancel its tasks (open
    connections), stop the loop, join the thread, close the loop."""
    async def cancel_all() -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(cancel_all(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def _headers(lines: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        k, _, v = line.partition(":")
        out[k.strip().lower()] = v.strip()
    return out


async def _read_request(reader: asyncio.StreamReader,
                        cut: Callable[[Request], CutRequest | None] | None = None,
                        writer: asyncio.StreamWriter | None = None) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head[:-4].decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = _headers(lines[1:])
    body = b""
    n = int(headers.get("content-length", "0") or 0)
    action = cut(Request(method, target, headers, b"", head)) if cut is not None else None
    if action is not None:  # read part of the body, then reset the connection
        await reader.readexactly(min(action.n, n))
        if writer is not None:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        return None
    if n:
        body = await reader.readexactly(n)
    return Request(method, target, headers, body, head + body)


async def _read_response(reader: asyncio.StreamReader, method: str) -> Response:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].decode("latin-1").split("\r\n")
    _, status, *reason = lines[0].split(" ", 2)
    pairs: list[tuple[str, str]] = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        pairs.append((k.strip(), v.strip()))
    headers = {k.lower(): v for k, v in pairs}
    code = int(status)
    body = b""
    if method != "HEAD" and code not in (204, 304):
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parts = []
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            body = b"".join(parts)
            pairs = [(k, v) for k, v in pairs if k.lower() != "transfer-encoding"]
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        else:
            body = await reader.read()
    if method == "HEAD":  # keep the server's Content-Length: encode() must not recompute it
        return _HeadResponse(code, reason[0] if reason else "", pairs, b"")
    return Response(code, reason[0] if reason else "", pairs, body)
