"""objio's one HTTP/1.1 request path (objio.s3.http) under faults, for the requests that are
not GETs of object data too (PUT, HEAD, DELETE, POST, listings): requests cut on the way,
lost, stalled, short, malformed and framed in every way HTTP allows answers, and kept-alive
connections the server closes. What must hold: a request the server may have applied is never
sent again behind the engine's back (the engine retries, and knows); a GET or HEAD on a
kept-alive connection the server had closed is sent again at once; every other failure is a
retryable error of the right type. Against the real LocalS3Server behind tests/faultproxy.py."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import objio
from faultproxy import (
    CloseAfter,
    CutRequest,
    FaultProxy,
    LoseResponse,
    Raw,
    Rechunk,
    Request,
    Reset,
    Stall,
    Truncate,
)
from objio import engine
from objio.config import MiB
from objio.server import LocalS3Server

_fresh = itertools.count(1)


@pytest.fixture(autouse=True)
def _fast_backoff(proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(engine, "_BACKOFF_BASE_S", 0.001)
    proxy.clear()
    yield
    proxy.clear()


def _client(s3_server: LocalS3Server, proxy: FaultProxy, **kw: Any) -> objio.Client:
    """A client through the proxy with a backend (and connection pool) of its own."""
    kw.setdefault("max_attempts", 3)
    return objio.Client(s3_server.config.replace(endpoint_url=proxy.endpoint_url),
                        connect_timeout_s=10.0 + next(_fresh) / 1000, **kw)


def _is(method: str, query: str | None = None) -> Callable[[Request], bool]:
    return lambda r: r.method == method and (query is None or query in r.query)


def _count(proxy: FaultProxy, method: str) -> int:
    return len([r for r in proxy.log if r.method == method])


def _opened(c: objio.Client, uri: str) -> int:
    return engine.backend_for(objio.parse_uri(uri), c.config)._http.connections_opened  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------ requests cut, lost
def test_a_reset_in_the_middle_of_a_put_body_is_retried(s3_server: LocalS3Server,
                                                        proxy: FaultProxy, client: objio.Client,
                                                        prefix: str) -> None:
    c = _client(s3_server, proxy)
    data = os.urandom(3 * MiB)
    proxy.add(_is("PUT"), CutRequest(100_000), times=1)
    c.put_bytes(prefix + "a", data)
    assert _count(proxy, "PUT") == 2  # the cut one, and the engine's retry
    assert bytes(client.get(prefix + "a")) == data


def test_a_lost_put_response_goes_to_the_engine(s3_server: LocalS3Server, proxy: FaultProxy,
                                                client: objio.Client, prefix: str) -> None:
    proxy.add(_is("PUT"), LoseResponse(), times=1)
    one = _client(s3_server, proxy, max_attempts=1)
    with pytest.raises(objio.ObjectStoreError) as e:
        one.put_bytes(prefix + "b", b"applied, answer lost")
    assert e.value.retryable and e.value.code == "ConnectionError"
    assert _count(proxy, "PUT") == 1  # not sent again behind the engine's back
    assert bytes(client.get(prefix + "b")) == b"applied, answer lost"
    proxy.clear()
    proxy.add(_is("PUT"), LoseResponse(), times=1)
    _client(s3_server, proxy).put_bytes(prefix + "c", b"retried by the engine")
    assert _count(proxy, "PUT") == 2
    assert bytes(client.get(prefix + "c")) == b"retried by the engine"


# ------------------------------------------------------------------------------ stalls, short, malformed
OPS: dict[str, tuple[str, Callable[[objio.Client, str], Any]]] = {
    "put": ("PUT", lambda c, u: c.put_bytes(u, b"x" * 1000)),
    "head": ("HEAD", lambda c, u: c.stat(u)),
    "delete": ("DELETE", lambda c, u: c.delete(u)),
}


@pytest.mark.parametrize("op", list(OPS))
def test_a_stalled_response_times_out_and_is_retried(s3_server: LocalS3Server, proxy: FaultProxy,
                                                     client: objio.Client, prefix: str,
                                                     op: str) -> None:
    method, call = OPS[op]
    uri = prefix + "s"
    client.put_bytes(uri, b"here")
    proxy.add(_is(method), Stall(3.0), times=1)
    with pytest.raises(TimeoutError):
        call(_client(s3_server, proxy, read_timeout_s=0.3, max_attempts=1), uri)
    proxy.clear()
    proxy.add(_is(method), Stall(3.0), times=1)
    call(_client(s3_server, proxy, read_timeout_s=0.3), uri)
    assert _count(proxy, method) == 2


def test_a_short_listing_body_is_retried(s3_server: LocalS3Server, proxy: FaultProxy,
                                         client: objio.Client, prefix: str) -> None:
    client.put_many([(f"{prefix}k{i}", b"x") for i in range(30)])
    is_list = _is("GET", "list-type")
    proxy.add(is_list, Truncate(200), times=1)
    with pytest.raises(objio.ObjectStoreError) as e:
        _client(s3_server, proxy, max_attempts=1).list(prefix)
    assert e.value.code == "IncompleteBody" and e.value.retryable
    proxy.clear()
    proxy.add(is_list, Truncate(200), times=1)
    assert len(_client(s3_server, proxy).list(prefix)) == 30
    assert _count(proxy, "GET") == 2


MALFORMED_HEAD = {  # wrong whatever the request
    "status line": b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n",
    "not HTTP": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    "header line": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nno colon here\r\n\r\n",
    "content-length": b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
    "two lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Length: 9\r\n\r\n",
    # a digit to str.isdigit(), not to int(): once a ValueError in the protocol callback
    "non-ASCII length": "HTTP/1.1 200 OK\r\nContent-Length: \u00b2\r\n\r\n".encode("latin-1"),
}
MALFORMED_BODY = {  # wrong where a body follows (not after a HEAD)
    "chunk size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "chunk end": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    "transfer-encoding": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
}
CASES = [(w, op) for w in MALFORMED_HEAD for op in ("put", "head")] + \
    [(w, "put") for w in MALFORMED_BODY]


@pytest.mark.parametrize(("what", "op"), CASES)
def test_a_malformed_response_is_a_retryable_error(s3_server: LocalS3Server, proxy: FaultProxy,
                                                   client: objio.Client, prefix: str, what: str,
                                                   op: str) -> None:
    method, call = OPS[op]
    uri = prefix + "m"
    client.put_bytes(uri, b"here")
    raw = MALFORMED_HEAD.get(what) or MALFORMED_BODY[what]
    proxy.add(_is(method), Raw(raw), times=1)
    with pytest.raises(objio.ObjectStoreError) as e:
        call(_client(s3_server, proxy, max_attempts=1), uri)
    assert e.value.code == "BadResponse" and e.value.retryable
    proxy.add(_is(method), Raw(raw), times=1)
    call(_client(s3_server, proxy), uri)  # the engine's retry gets a good answer


# ------------------------------------------------------------------------------ framing
def test_chunked_answers_to_every_kind_of_request(s3_server: LocalS3Server, proxy: FaultProxy,
                                                  client: objio.Client, prefix: str) -> None:
    c = _client(s3_server, proxy, max_attempts=1)
    proxy.add(lambda r: True, Rechunk(), times=None)
    c.put_many([(f"{prefix}k{i}", b"x%d" % i) for i in range(5)])  # empty chunked bodies
    assert len(c.list(prefix)) == 5  # a listing page
    assert c.stat(prefix + "k1").size == 2
    assert bytes(c.get(prefix + "k3")) == b"x3"
    with pytest.raises(FileNotFoundError):  # an error body, chunked
        c.stat(prefix + "nothing")
    with pytest.raises(FileNotFoundError):
        c.get(prefix + "nothing")
    c.delete(prefix)  # DeleteObjects: a POST and its XML answer
    assert client.list(prefix) == []


def test_an_interim_100_continue_is_skipped(s3_server: LocalS3Server, proxy: FaultProxy,
                                            client: objio.Client, prefix: str) -> None:
    client.put_bytes(prefix + "d", b"x")
    proxy.add(_is("DELETE"), Raw(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
                                 forward=True), times=1)
    _client(s3_server, proxy, max_attempts=1).delete(prefix + "d")
    assert not client.exists(prefix + "d")


def test_a_body_that_ends_with_the_connection(s3_server: LocalS3Server, proxy: FaultProxy,
                                              client: objio.Client, prefix: str) -> None:
    """A whole-object answer without Content-Length or chunks (delimited by the connection):
    nothing tells whether it is whole, so objio asks for the range, whose Content-Range
    does; with a short one, the GET still returns every byte."""
    data = os.urandom(100_000)
    client.put_bytes(prefix + "e", data)
    etag = client.stat(prefix + "e").etag
    proxy.add(lambda r: r.method == "GET" and r.range is None,
              Raw(f'HTTP/1.1 200 OK\r\nETag: "{etag}"\r\n\r\n'.encode() + data[:5000]), times=1)
    c = _client(s3_server, proxy, max_attempts=1)
    assert bytes(c.get(prefix + "e")) == data
    assert [r.range for r in proxy.log if r.method == "GET"] == [None, (0, c.config.range_threshold - 1)]


# ------------------------------------------------------------------------------ kept-alive connections
def test_a_connection_closed_after_a_kept_alive_answer_is_not_used_again(
        s3_server: LocalS3Server, proxy: FaultProxy, client: objio.Client, prefix: str) -> None:
    c = _client(s3_server, proxy, max_attempts=1)  # any error would surface
    client.put_bytes(prefix + "k", b"x")
    for method, call in OPS.values():
        proxy.clear()
        c.stat(prefix + "k")  # a kept-alive connection in the pool...
        closing = CloseAfter()
        proxy.add(lambda r: True, closing, times=1)  # ...answered once more, then closed
        c.stat(prefix + "k")
        assert closing.closed.wait(5)
        call(c, prefix + "k")  # goes on a new connection, at the first try
        assert _count(proxy, method) == 1 + 2 * (method == "HEAD")
        c.put_bytes(prefix + "k", b"x")


@pytest.mark.parametrize("op", ["get", "head"])
def test_a_get_or_head_on_a_connection_the_server_dropped_is_sent_again(
        s3_server: LocalS3Server, proxy: FaultProxy, client: objio.Client, prefix: str,
        op: str) -> None:
    """The server closes a kept-alive connection just as the next request arrives (no byte of
    an answer): a GET or HEAD is sent again at once on a new connection (harmless: nothing is
    changed), without the engine's retry (max_attempts=1) or its back-off."""
    uri = prefix + "g"
    client.put_bytes(uri, b"data")
    c = _client(s3_server, proxy, max_attempts=1)
    c.stat(uri)  # a kept-alive connection in the pool
    method = "GET" if op == "get" else "HEAD"
    proxy.clear()
    proxy.add(_is(method), Reset(), times=1)
    got = bytes(c.get(uri)) if op == "get" else c.stat(uri).size
    assert got == (b"data" if op == "get" else 4)
    assert _count(proxy, method) == 2
    assert _opened(c, uri) == 2


@pytest.mark.parametrize("op", ["put", "delete"])
def test_a_put_or_delete_on_a_connection_the_server_dropped_goes_to_the_engine(
        s3_server: LocalS3Server, proxy: FaultProxy, client: objio.Client, prefix: str,
        op: str) -> None:
    """The same for a request that changes something: it may have been applied (the server
    cannot be told apart from one that did it and then failed), so it is not sent again
    behind the engine's back; the engine retries it, knowing."""
    method, call = OPS[op]
    uri = prefix + "p"
    client.put_bytes(uri, b"data")
    c = _client(s3_server, proxy, max_attempts=1)
    c.stat(uri)
    proxy.clear()
    proxy.add(_is(method), Reset(), times=1)
    with pytest.raises(objio.ObjectStoreError) as e:
        call(c, uri)
    assert e.value.retryable and e.value.code == "ConnectionError"
    assert _count(proxy, method) == 1
    c3 = _client(s3_server, proxy)
    c3.stat(uri)
    proxy.add(_is(method), Reset(), times=1)
    call(c3, uri)
    assert _count(proxy, method) == 3


def test_a_get_on_a_new_connection_that_is_dropped_is_not_sent_again(
        s3_server: LocalS3Server, proxy: FaultProxy, client: objio.Client, prefix: str) -> None:
    """A connection made for this request and closed without an answer: the server may be
    failing; that is the engine's to retry (with back-off), not resent at once."""
    client.put_bytes(prefix + "n", b"data")
    proxy.add(_is("GET"), Reset(), times=1)
    with pytest.raises(objio.ObjectStoreError) as e:
        _client(s3_server, proxy, max_attempts=1).get(prefix + "n")
    assert e.value.retryable
    assert _count(proxy, "GET") == 1


def test_requests_share_kept_alive_connections(s3_server: LocalS3Server, proxy: FaultProxy,
                                               client: objio.Client, prefix: str) -> None:
    """PUT, HEAD, GET, DELETE and listings, one after another, go on one connection."""
    c = _client(s3_server, proxy, max_attempts=1)
    for i in range(5):
        c.put_bytes(f"{prefix}s{i}", b"x" * 100_000)
        c.stat(f"{prefix}s{i}")
        c.get(f"{prefix}s{i}")
    c.list(prefix)
    c.delete(f"{prefix}s0")
    c.delete(prefix)
    assert _opened(c, prefix + "s0") == 1
