"""A TCP proxy that adds a fixed delay to every request, to emulate a remote region.

Between a client and an S3 server on loopback every request takes well under a millisecond
to reach the server; to a store in another region it takes tens of milliseconds. Listing
(one request per 1000 keys, each waiting for the previous) and small requests are bound by
that latency, not by bandwidth, so a benchmark on loopback says little about them.
:class:`LatencyProxy` sits between the client and the server and holds every chunk of bytes
going from the client to the server for ``delay_ms`` milliseconds before passing it on; the
server's responses pass straight through. Every request therefore reaches the server
``delay_ms`` later (one round trip of that length), while data already in flight keeps
flowing (the delay is applied per chunk with its arrival time, not by slowing the stream):
bandwidth is unchanged. New connections are accepted at once (no delay on the handshake).

The proxy forwards bytes unchanged (SigV4 signatures cover the Host header the client sends,
which is the proxy's address: the server checks the signature against the same header). It
runs in its own process with its own event loop, so its work never competes with the
client's engine thread for the GIL; the benchmark clients point their endpoint at
:attr:`LatencyProxy.endpoint_url`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections import deque
from urllib.parse import urlsplit

_CHUNK = 256 * 1024
_QUEUE_CHUNKS = 256  # per direction and connection: at most this many chunks held back


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float) -> None:
    """Copy ``reader`` to ``writer``, each chunk ``delay_s`` after it arrived."""
    if delay_s <= 0:
        try:
            while data := await reader.read(_CHUNK):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
        return
    loop = asyncio.get_running_loop()
    queue: deque[tuple[float, bytes]] = deque()
    ready = asyncio.Event()
    room = asyncio.Event()
    room.set()
    done = False

    async def receive() -> None:
        nonlocal done
        try:
            while data := await reader.read(_CHUNK):
                queue.append((loop.time() + delay_s, data))
                ready.set()
                if len(queue) >= _QUEUE_CHUNKS:
                    room.clear()
                    await room.wait()
        finally:
            done = True
            ready.set()

    task = asyncio.ensure_future(receive())
    try:
        while True:
            if not queue:
                if done:
                    break
                ready.clear()
                await ready.wait()
                continue
            due, data = queue[0]
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            queue.popleft()
            room.set()
            writer.write(data)
            await writer.drain()
    finally:
        task.cancel()
        writer.close()


async def _serve(upstream: tuple[str, int], delay_s: float) -> None:
    async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        try:
            sr, sw = await asyncio.open_connection(*upstream)
        except OSError:
            cw.close()
            return
        for w in (cw, sw):
            sock = w.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(_pump(cr, sw, delay_s), _pump(sr, cw, 0.0),
                             return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_reader(sys.stdin.fileno(), stop.set)  # the parent closing stdin stops the proxy
    async with server:
        await stop.wait()


def _main(spec: str) -> None:
    """Entry point of the proxy process: ``spec`` is JSON ``[host, port, delay_s]``."""
    host, port, delay_s = json.loads(spec)
    asyncio.run(_serve((host, int(port)), float(delay_s)))


class LatencyProxy:
    """A delay proxy in front of ``endpoint_url`` (``http://host:port``) adding ``delay_ms``
    milliseconds to every request (see the module docs). Use as a context manager or call
    :meth:`start` / :meth:`stop`; :attr:`endpoint_url` is where clients connect.

    Raises: ValueError (``delay_ms < 0``, an endpoint that is not ``http://host:port``),
    OSError (the proxy process could not start)."""

    def __init__(self, endpoint_url: str, delay_ms: float) -> None:
        if isinstance(delay_ms, bool) or not isinstance(delay_ms, (int, float)) or delay_ms < 0:
            raise ValueError(f"delay_ms must be a number of milliseconds >= 0, got {delay_ms!r}")
        parts = urlsplit(endpoint_url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"the latency proxy needs an http://host:port endpoint, got "
                             f"{endpoint_url!r}")
        self.upstream = (parts.hostname, parts.port)
        self.delay_ms = float(delay_ms)
        self.endpoint_url = ""
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> LatencyProxy:
        spec = json.dumps([self.upstream[0], self.upstream[1], self.delay_ms / 1000.0])
        code = "import sys; from objio.bench.latency import _main; _main(sys.argv[1])"
        self._proc = subprocess.Popen([sys.executable, "-c", code, spec], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            raise OSError("the latency proxy process did not start")
        self.endpoint_url = f"http://127.0.0.1:{int(line)}"
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> LatencyProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
