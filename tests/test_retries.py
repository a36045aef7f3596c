"""Retries, backoff, timeouts and truncated bodies, against a fault-injecting HTTP server that
speaks just enough S3 (raw asyncio TCP so it can misbehave at the byte level)."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterator
from typing import Any

import pytest

import objio
from faultproxy import start_loop_server, stop_loop_thread
from objio import engine

ERR = ('<?xml version="1.0"?><Error><Code>{code}</Code><Message>injected</Message></Error>')


class FaultServer:
    """GET /bkt/<scenario>/<n>: the first n requests misbehave as <scenario>, then 200 OK."""

    def __init__(self) -> None:
        self.hits: collections.Counter[str] = collections.Counter()
        self.loop, self.thread, self.port = start_loop_server(self.handle)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line = head.split(b"\r\n", 1)[0].decode()
                path = line.split(" ")[1].split("?")[0]
                self.hits[path] += 1
                n = self.hits[path]
                _, _, scenario, count = path.split("/", 3)
                fail = n <= int(count)
                body = b"0123456789" * 10
                if fail and scenario in ("e500", "e503", "e404", "e403", "e400", "e429"):
                    status = int(scenario[1:])
                    code = {500: "InternalError", 503: "SlowDown", 404: "NoSuchKey",
                            403: "AccessDenied", 400: "InvalidArgument", 429: "TooManyRequests"}[status]
                    err = ERR.format(code=code).encode()
                    writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: {len(err)}\r\n\r\n".encode() + err)
                elif fail and scenario == "short":
                    writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                                 + body[:37])
                    await writer.drain()
                    writer.close()
                    return
                elif fail and scenario == "hang":
                    await asyncio.sleep(30)
                    return
                elif fail and scenario == "reset":
                    writer.close()
                    return
                else:
                    writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n"
                                 f'ETag: "abc"\r\n\r\n'.encode() + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def stop(self) -> None:
        stop_loop_thread(self.loop, self.thread)


@pytest.fixture(scope="module")
def fault_server() -> Iterator[FaultServer]:
    s = FaultServer()
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "_BACKOFF_BASE_S", 0.001)


def _client(server: FaultServer, **kw: Any) -> objio.Client:
    return objio.Client(endpoint_url=f"http://127.0.0.1:{server.port}", access_key_id="k",
                        secret_access_key="s", **kw)


BODY = b"0123456789" * 10


@pytest.mark.parametrize("scenario", ["e500", "e503", "e429", "short", "reset"])
def test_transient_errors_are_retried(fault_server: FaultServer, scenario: str) -> None:
    c = _client(fault_server, max_attempts=4)
    path = f"/bkt/{scenario}/3"
    assert bytes(c.get("s3://bkt" + path[4:])) == BODY
    assert fault_server.hits[path] == 4


@pytest.mark.parametrize("scenario,exc", [("e404", FileNotFoundError), ("e403", PermissionError),
                                          ("e400", objio.ObjectStoreError)])
def test_client_errors_are_not_retried(fault_server: FaultServer, scenario: str, exc: type) -> None:
    c = _client(fault_server, max_attempts=5)
    path = f"/bkt/{scenario}/1"
    with pytest.raises(exc):
        c.get("s3://bkt" + path[4:])
    assert fault_server.hits[path] == 1


def test_gives_up_after_max_attempts(fault_server: FaultServer) -> None:
    c = _client(fault_server, max_attempts=3)
    path = "/bkt/e503/99"
    with pytest.raises(objio.ObjectStoreError) as e:
        c.get("s3://bkt" + path[4:])
    assert fault_server.hits[path] == 3
    assert (e.value.status, e.value.code, e.value.operation) == (503, "SlowDown", "GetObject")
    assert "bkt/e503/99" in e.value.uri


def test_read_stall_is_timeout_error(fault_server: FaultServer) -> None:
    c = _client(fault_server, max_attempts=2, read_timeout_s=0.2)
    path = "/bkt/hang/99"
    with pytest.raises(TimeoutError):
        c.get("s3://bkt" + path[4:])
    assert fault_server.hits[path] == 2


def test_connection_refused_is_an_oserror() -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    c = objio.Client(endpoint_url=f"http://127.0.0.1:{port}", access_key_id="k",
                     secret_access_key="s", max_attempts=2)
    with pytest.raises(objio.ObjectStoreError) as e:
        c.get("s3://bkt/x")
    assert e.value.code == "ConnectionError" and isinstance(e.value, OSError)


def test_backoff_grows_and_is_jittered() -> None:
    samples = [engine.backoff_s(a) for a in (1, 5) for _ in range(200)]
    first, fifth = samples[:200], samples[200:]
    assert all(0 <= s <= engine._BACKOFF_BASE_S * 2 for s in first)
    assert max(fifth) > max(first) and len(set(first)) > 100
