"""Proxies: ``HTTP_PROXY`` (absolute-form requests to the proxy) for http endpoints,
``HTTPS_PROXY`` (a CONNECT tunnel, TLS to the endpoint inside it) for https ones, ``NO_PROXY``,
loopback never proxied, proxy credentials. Against a tiny forwarding proxy written here: it
knows the endpoints by names that do not resolve (``*.objio.test``), so a request that
arrives at all went through it."""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import objio
from faultproxy import _read_response, encode, start_loop_server, stop_loop_thread
from objio.server import LocalS3Server
from test_tls import BODY, TLSServer, self_signed

_fresh = itertools.count(1)


class ForwardProxy:
    """An HTTP proxy on 127.0.0.1: CONNECT tunnels, and absolute-form requests forwarded
    (one upstream connection per request). ``hosts`` maps the names it serves to real
    ``(host, port)``; with ``auth`` ("user:password") it answers 407 without those
    credentials. ``seen`` lists the request lines it got."""

    def __init__(self, hosts: dict[str, tuple[str, int]], auth: str | None = None) -> None:
        self.hosts = hosts
        self.auth = None if auth is None else "Basic " + base64.b64encode(auth.encode()).decode()
        self.seen: list[str] = []
        self.loop, self.thread, self.port = start_loop_server(self.handle)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _where(self, hostport: str) -> tuple[str, int]:
        name, _, port = hostport.rpartition(":")
        return self.hosts[name][0], int(port)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head[:-4].decode("latin-1").split("\r\n")
                self.seen.append(lines[0])
                method, target, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip()
                           for k, _, v in (ln.partition(":") for ln in lines[1:])}
                if self.auth is not None and headers.get("proxy-authorization") != self.auth:
                    writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                                 b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                    await writer.drain()
                    return
                if method == "CONNECT":
                    r2, w2 = await asyncio.open_connection(*self._where(target))
                    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    await writer.drain()
                    await asyncio.gather(_pipe(reader, w2), _pipe(r2, writer))
                    return
                url = urlsplit(target)
                assert url.scheme == "http" and url.hostname in self.hosts, target
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                r2, w2 = await asyncio.open_connection(self.hosts[url.hostname][0],
                                                       url.port or 80)
                origin = url.path + (f"?{url.query}" if url.query else "")
                kept = [ln for ln in lines[1:] if not ln.lower().startswith("proxy-")]
                w2.write(("\r\n".join([f"{method} {origin} HTTP/1.1", *kept]) + "\r\n\r\n"
                          ).encode("latin-1") + body)
                await w2.drain()
                resp = await _read_response(r2, method)
                w2.close()
                writer.write(encode(resp))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def stop(self) -> None:
        stop_loop_thread(self.loop, self.thread)


async def _pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        w.close()


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def _client(config: objio.ClientConfig, **kw: object) -> objio.Client:
    """A client with a backend of its own (the proxy settings are read when it is made)."""
    return objio.Client(config, connect_timeout_s=10.0 + next(_fresh) / 1000, **kw)  # type: ignore[arg-type]


def test_http_endpoint_through_http_proxy(s3_server: LocalS3Server, client: objio.Client,
                                          prefix: str, no_proxy_env: pytest.MonkeyPatch) -> None:
    port = urlsplit(s3_server.endpoint_url).port
    proxy = ForwardProxy({"s3.objio.test": ("127.0.0.1", 0)})
    try:
        no_proxy_env.setenv("HTTP_PROXY", proxy.url)
        c = _client(s3_server.config.replace(endpoint_url=f"http://s3.objio.test:{port}"),
                    max_attempts=1)
        c.put_bytes(prefix + "a", b"through the proxy")
        c.put_many([(f"{prefix}m{i}", b"x" * 100_000) for i in range(4)], max_in_flight=4)
        assert bytes(c.get(prefix + "a")) == b"through the proxy"
        assert c.stat(prefix + "a").size == 17
        assert len(c.list(prefix)) == 5
        c.delete(prefix)
        assert client.list(prefix) == []
        assert proxy.seen and all(s.split(" ")[1].startswith(f"http://s3.objio.test:{port}/")
                                  for s in proxy.seen)
    finally:
        proxy.stop()


def test_no_proxy_and_loopback_go_direct(s3_server: LocalS3Server, client: objio.Client,
                                         prefix: str, no_proxy_env: pytest.MonkeyPatch) -> None:
    proxy = ForwardProxy({})
    try:
        no_proxy_env.setenv("HTTP_PROXY", proxy.url)
        # a loopback endpoint (LocalS3Server's) is never proxied
        c = _client(s3_server.config, max_attempts=1)
        c.put_bytes(prefix + "direct", b"x")
        assert bytes(c.get(prefix + "direct")) == b"x"
        # a name in NO_PROXY goes direct: this one does not resolve, so the request fails
        no_proxy_env.setenv("NO_PROXY", "example.org,.objio.test")
        port = urlsplit(s3_server.endpoint_url).port
        c2 = _client(s3_server.config.replace(endpoint_url=f"http://s3.objio.test:{port}"),
                     max_attempts=1)
        with pytest.raises(objio.ObjectStoreError) as e:
            c2.stat(prefix + "direct")
        assert e.value.code == "ConnectionError"
        assert proxy.seen == []
    finally:
        proxy.stop()


@pytest.fixture(scope="module")
def tls_named(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TLSServer, Path]]:
    """A TLS server whose certificate is for tls.objio.test (a name only the proxy knows)."""
    cert, key = self_signed(tmp_path_factory.mktemp("tls-named"), "tls.objio.test",
                            "DNS:tls.objio.test")
    server = TLSServer(cert, key)
    yield server, cert
    server.stop()


def test_https_endpoint_through_a_connect_tunnel(tls_named: tuple[TLSServer, Path],
                                                 no_proxy_env: pytest.MonkeyPatch) -> None:
    server, cert = tls_named
    proxy = ForwardProxy({"tls.objio.test": ("127.0.0.1", server.port)}, auth="me:p@ss word")
    try:
        no_proxy_env.setenv("AWS_CA_BUNDLE", str(cert))
        no_proxy_env.setenv("HTTPS_PROXY", f"http://me:p%40ss%20word@127.0.0.1:{proxy.port}")
        cfg = objio.ClientConfig(endpoint_url=f"https://tls.objio.test:{server.port}",
                                 access_key_id="k", secret_access_key="s", region="us-east-1")
        c = _client(cfg, max_attempts=1)
        assert bytes(c.get("s3://bkt/key")) == BODY
        assert c.get_many_stats(["s3://bkt/key"] * 8, max_in_flight=4) == (8, 8 * len(BODY))
        c.put_bytes("s3://bkt/up", b"x" * (2 << 20))
        assert proxy.seen[0] == f"CONNECT tls.objio.test:{server.port} HTTP/1.1"
        assert all(s.startswith("CONNECT ") for s in proxy.seen)  # the rest is TLS inside
        # wrong credentials: the proxy's 407 is not retried
        no_proxy_env.setenv("HTTPS_PROXY", f"http://me:wrong@127.0.0.1:{proxy.port}")
        with pytest.raises(objio.ObjectStoreError) as e:
            _client(cfg, max_attempts=3).get("s3://bkt/key")
        assert e.value.code == "ProxyError" and e.value.status == 407
        assert not e.value.retryable and "wrong" not in str(e.value)
    finally:
        proxy.stop()


def test_a_proxy_objio_cannot_use_is_a_value_error(s3_server: LocalS3Server,
                                                   no_proxy_env: pytest.MonkeyPatch) -> None:
    no_proxy_env.setenv("HTTP_PROXY", "socks5://user:secret@127.0.0.1:1080")
    port = urlsplit(s3_server.endpoint_url).port
    c = _client(s3_server.config.replace(endpoint_url=f"http://s3.objio.test:{port}"))
    with pytest.raises(ValueError, match="HTTP_PROXY") as e:
        c.stat("s3://bkt/key")
    assert "secret" not in str(e.value)
