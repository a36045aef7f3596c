"""HTTPS: objio's HTTP client verifies and speaks TLS for every request kind (a local TLS server
with a self-signed certificate that the test trusts through AWS_CA_BUNDLE)."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import objio
from faultproxy import stop_loop_thread
from objio import engine

BODY = b"tls-body-" * 1000


class TLSServer:
    """Answers GET with BODY and PUT with 200, over TLS on 127.0.0.1."""

    def __init__(self, cert: Path, key: Path) -> None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(self.loop)
            srv = self.loop.run_until_complete(
                asyncio.start_server(self.handle, "127.0.0.1", 0, ssl=ctx))
            self.port = srv.sockets[0].getsockname()[1]
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=main, daemon=True)
        self.thread.start()
        ready.wait()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                length = next((int(x.split(":")[1]) for x in lines
                               if x.lower().startswith("content-length:")), 0)
                if length:
                    await reader.readexactly(length)
                body = BODY if lines[0].startswith("GET") else b""
                writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n"
                             f'ETag: "e"\r\n\r\n'.encode() + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def stop(self) -> None:
        stop_loop_thread(self.loop, self.thread)


def self_signed(d: Path, cn: str, san: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``cn`` (subjectAltName ``san``) and its key, in ``d``:
    (cert.pem, key.pem)."""
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", f"/CN={cn}", "-addext", f"subjectAltName={san}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TLSServer, Path]]:
    cert, key = self_signed(tmp_path_factory.mktemp("tls"), "localhost",
                            "DNS:localhost,IP:127.0.0.1")
    server = TLSServer(cert, key)
    yield server, cert
    server.stop()


def test_get_put_head_delete_over_tls(tls: tuple[TLSServer, Path],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    server, cert = tls
    monkeypatch.setenv("AWS_CA_BUNDLE", str(cert))
    engine.shutdown()  # backends are cached per config: start from new ones for this case
    c = objio.Client(endpoint_url=f"https://localhost:{server.port}", access_key_id="k",
                     secret_access_key="s", region="us-east-1")
    assert bytes(c.get("s3://bkt/key")) == BODY
    assert c.get_many_stats(["s3://bkt/key"] * 20, max_in_flight=4) == (20, 20 * len(BODY))
    c.put_bytes("s3://bkt/up", b"x" * 1000)  # a small body: sent with the head
    c.put_bytes("s3://bkt/up", b"x" * (2 << 20))  # a large one: the caller's buffer as it is
    assert c.stat("s3://bkt/key").etag == "e"  # HEAD: no body follows its headers
    c.delete("s3://bkt/up")
    backend = engine.backend_for(objio.parse_uri("s3://bkt/key"), c.config)
    assert backend._http.connections_opened <= 4  # type: ignore[attr-defined]  # kept alive


def test_untrusted_certificate_is_refused(tls: tuple[TLSServer, Path],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    server, _ = tls
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    c = objio.Client(endpoint_url=f"https://localhost:{server.port}", access_key_id="k",
                     secret_access_key="s", max_attempts=1)
    with pytest.raises(objio.ObjectStoreError) as e:
        c.get("s3://bkt/key")
    assert "certificate" in str(e.value).lower()
