"""No orphaned multipart uploads and no false errors when responses get lost; deadlines that
a trickling server cannot dodge; a short server restart survived with the default retries.
Against the real LocalS3Server behind tests/faultproxy.py."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

import objio
from faultproxy import FaultProxy, Forge, LoseResponse, Response, Trickle
from objio import engine
from objio.config import MiB
from objio.server import LocalS3Server


@pytest.fixture
def pclient(proxy: FaultProxy, s3_server: LocalS3Server,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[objio.Client]:
    monkeypatch.setattr(engine, "_BACKOFF_BASE_S", 0.001)
    proxy.clear()
    yield objio.Client(s3_server.config.replace(endpoint_url=proxy.endpoint_url),
                       range_threshold=5 * MiB, part_size=5 * MiB, max_attempts=3)
    proxy.clear()


def _is(method: str, query: str | None = None) -> Any:
    return lambda r: r.method == method and (query is None or query in r.query)


def _uploads(client: objio.Client, prefix: str) -> list[tuple[str, str]]:
    return client.list_multipart_uploads(prefix)


# ------------------------------------------------------------------------------ C1, C4: lost responses
def test_lost_create_multipart_response_leaves_no_upload(pclient: objio.Client, proxy: FaultProxy,
                                                         client: objio.Client, prefix: str) -> None:
    data = os.urandom(11 * MiB)
    proxy.add(_is("POST", "uploads"), LoseResponse(), times=1)
    pclient.put_bytes(prefix + "a", data)
    assert len([r for r in proxy.log if r.method == "POST" and "uploads" in r.query]) == 2
    assert bytes(client.get(prefix + "a")) == data
    assert _uploads(client, prefix) == []
    proxy.add(_is("POST", "uploads"), LoseResponse(), times=1)  # the streaming writer too
    with objio.open(prefix + "w", "wb", client=pclient, part_size=5 * MiB) as w:
        w.write(data)
    assert bytes(client.get(prefix + "w")) == data
    assert _uploads(client, prefix) == []


def test_create_multipart_failing_after_a_lost_response_leaves_no_upload(
        pclient: objio.Client, proxy: FaultProxy, client: objio.Client, prefix: str) -> None:
    proxy.add(_is("POST", "uploads"), LoseResponse(), times=1)
    proxy.add(_is("POST", "uploads"), Forge(lambda r: Response(
        403, "Forbidden", [], b"<Error><Code>AccessDenied</Code><Message>no</Message></Error>")),
        times=1)
    with pytest.raises(PermissionError):
        pclient.put_bytes(prefix + "b", os.urandom(11 * MiB))
    assert _uploads(client, prefix) == []


def test_lost_complete_response_is_success(pclient: objio.Client, proxy: FaultProxy,
                                           client: objio.Client, prefix: str) -> None:
    data = os.urandom(11 * MiB)
    proxy.add(lambda r: r.method == "POST" and "uploadId" in r.query, LoseResponse(), times=1)
    pclient.put_bytes(prefix + "c", data)
    assert bytes(client.get(prefix + "c")) == data
    assert _uploads(client, prefix) == []


def test_exist_ok_false_with_a_lost_response_is_success(pclient: objio.Client, proxy: FaultProxy,
                                                        client: objio.Client, prefix: str) -> None:
    proxy.add(_is("PUT"), LoseResponse(), times=1)
    pclient.put_bytes(prefix + "d", b"mine", exist_ok=False)
    assert bytes(client.get(prefix + "d")) == b"mine"
    with pytest.raises(FileExistsError):  # someone else's object is still refused
        pclient.put_bytes(prefix + "d", b"other", exist_ok=False)
    proxy.add(_is("PUT"), LoseResponse(), times=1)  # the writer's single PUT too
    with objio.open(prefix + "e", "xb", client=pclient) as w:
        w.write(b"mine too")
    assert bytes(client.get(prefix + "e")) == b"mine too"


# ------------------------------------------------------------------------------ C2: one abort path
def test_abort_is_retried(pclient: objio.Client, proxy: FaultProxy, client: objio.Client,
                          prefix: str) -> None:
    err = b"<Error><Code>InvalidArgument</Code><Message>x</Message></Error>"
    proxy.add(lambda r: r.method == "PUT" and "partNumber" in r.query,
              Forge(lambda r: Response(400, "Bad Request", [], err)), times=None)
    slow = b"<Error><Code>SlowDown</Code><Message>x</Message></Error>"
    abort = proxy.add(lambda r: r.method == "DELETE" and "uploadId" in r.query,
                      Forge(lambda r: Response(503, "Slow Down", [], slow)), times=1)
    with pytest.raises(objio.ObjectStoreError):
        pclient.put_bytes(prefix + "f", os.urandom(11 * MiB))
    assert abort.hits == 1
    assert _uploads(client, prefix) == []
    with pytest.raises(objio.ObjectStoreError):  # the writer shares the abort path
        with objio.open(prefix + "g", "wb", client=pclient, part_size=5 * MiB) as w:
            w.write(os.urandom(11 * MiB))
    assert _uploads(client, prefix) == []


# ------------------------------------------------------------------------------ C3: Ctrl-C
def test_ctrl_c_aborts_uploads_before_returning(pclient: objio.Client, proxy: FaultProxy,
                                                client: objio.Client, prefix: str) -> None:
    proxy.add(lambda r: r.method == "PUT" and "partNumber" in r.query, Trickle(8, 0.1),
              times=None)

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        with pytest.raises(KeyboardInterrupt):
            pclient.put_bytes(prefix + "h", os.urandom(11 * MiB))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert _uploads(client, prefix) == []  # aborted before the interrupt reached the caller


# ------------------------------------------------------------------------------ C5: cleaning up
def test_abort_multipart_uploads(client: objio.Client, prefix: str) -> None:
    backend = engine.backend_for(objio.parse_uri(prefix), client.config)
    for k in ("x", "y"):
        engine.run(backend.create_multipart(objio.parse_uri(prefix + k)))
    assert len(_uploads(client, prefix)) == 2
    assert client.abort_multipart_uploads(prefix, older_than_s=3600) == 0
    assert client.abort_multipart_uploads(prefix, dry_run=True) == 2
    assert len(_uploads(client, prefix)) == 2
    assert client.abort_multipart_uploads(prefix) == 2
    assert _uploads(client, prefix) == []
    with pytest.raises(ValueError, match="older_than_s"):
        client.abort_multipart_uploads(prefix, older_than_s=-1)


def test_cli_rm_incomplete_uploads(client: objio.Client, s3_server: LocalS3Server, prefix: str,
                                   capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from objio.cli import main

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_access_key)
    backend = engine.backend_for(objio.parse_uri(prefix), client.config)
    engine.run(backend.create_multipart(objio.parse_uri(prefix + "z")))
    ep = ["--endpoint-url", s3_server.endpoint_url]
    assert main(["rm", "--incomplete-uploads", prefix, "--dryrun", *ep]) == 0
    assert "z" in capsys.readouterr().out and len(_uploads(client, prefix)) == 1
    assert main(["rm", "--incomplete-uploads", prefix, *ep]) == 0
    assert "1" in capsys.readouterr().out and _uploads(client, prefix) == []


# ------------------------------------------------------------------------------ D1: deadlines
def test_a_trickling_server_hits_the_request_deadline(proxy: FaultProxy, s3_server: LocalS3Server,
                                                      client: objio.Client, prefix: str) -> None:
    client.put_bytes(prefix + "t", os.urandom(64 * 1024))
    proxy.clear()
    proxy.add(_is("GET"), Trickle(512, 0.05), times=None)  # never silent for 0.5 s, ~6 s in all
    c = objio.Client(s3_server.config.replace(endpoint_url=proxy.endpoint_url),
                     read_timeout_s=0.5, request_timeout_s=1.0, max_attempts=1)
    with pytest.raises(TimeoutError):  # the trickle never stalls 0.5 s: only the deadline ends it
        c.get(prefix + "t")
    proxy.clear()


def test_put_deadline(proxy: FaultProxy, s3_server: LocalS3Server, prefix: str) -> None:
    proxy.clear()
    proxy.add(_is("PUT"), Trickle(8, 0.1), times=None)
    c = objio.Client(s3_server.config.replace(endpoint_url=proxy.endpoint_url),
                     read_timeout_s=0.5, request_timeout_s=1.0, max_attempts=1)
    with pytest.raises(TimeoutError):
        c.put_bytes(prefix + "p", b"x" * 1000)
    proxy.clear()


def test_deadline_grows_with_size() -> None:
    cfg = objio.ClientConfig(request_timeout_s=60.0, min_transfer_rate=MiB).resolved()
    assert cfg.deadline_s(0) == 60.0 and cfg.deadline_s(10 * MiB) == 60.0
    assert cfg.deadline_s(1024 * MiB) == 1024.0
    with pytest.raises(ValueError, match="min_transfer_rate"):
        objio.ClientConfig(min_transfer_rate=0)


# ------------------------------------------------------------------------------ D2: restarts
def test_a_five_second_restart_is_survived_with_defaults(proxy: FaultProxy,
                                                         s3_server: LocalS3Server,
                                                         client: objio.Client, prefix: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    uris = [f"{prefix}r{i}" for i in range(8)]
    client.put_many([(u, b"%d" % i) for i, u in enumerate(uris)])
    proxy.clear()
    monkeypatch.setattr(engine.random, "random", lambda: 0.5)  # the jitter at its mean
    c = objio.Client(s3_server.config.replace(endpoint_url=proxy.endpoint_url))  # defaults
    proxy.down_for(5.0)
    got = c.get_many(uris, max_in_flight=8)
    assert [bytes(d) for _, d in got] == [b"%d" % i for i in range(8)]
    assert len([r for r in proxy.log if r.method == "GET"]) > 8  # they were retried


def test_retry_quota_stops_retries_when_spent(pclient: objio.Client, proxy: FaultProxy,
                                              prefix: str) -> None:
    engine._quota.available = 0
    proxy.add(_is("GET"), Forge(lambda r: Response(
        503, "Slow Down", [], b"<Error><Code>SlowDown</Code><Message>x</Message></Error>")),
        times=None)
    with pytest.raises(objio.ObjectStoreError) as e:
        pclient.get(prefix + "nothing")
    assert e.value.code == "SlowDown"
    assert len([r for r in proxy.log if r.method == "GET"]) == 1  # no retry without quota



def test_a_slow_but_steady_body_is_not_a_stall(proxy: FaultProxy, s3_server: LocalS3Server,
                                               client: objio.Client, prefix: str) -> None:
    """A large body is read with a receive low-water mark of up to 1 MiB; a link slower than
    that per read timeout still delivers (the watchdog sees the bytes waiting)."""
    data = os.urandom(600 * 1024)
    client.put_bytes(prefix + "slow", data)
    proxy.clear()
    proxy.add(_is("GET"), Trickle(32 * 1024, 0.1), times=None)  # ~320 KiB/s
    c = objio.Client(s3_server.config.replace(endpoint_url=proxy.endpoint_url),
                     read_timeout_s=0.5, max_attempts=1)
    assert bytes(c.get(prefix + "slow")) == data
    proxy.clear()
