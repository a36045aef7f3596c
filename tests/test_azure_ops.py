"""az:// operations beyond the object set, against LocalAzureServer (Azurite): server-side
copies (Copy Blob From URL, Copy Blob with its status polled), presigned URLs (service SAS)
and Delete Container (``objio rb``)."""

from __future__ import annotations

import logging
import os
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import google_crc32c
import pytest

import objio
from faultproxy import FaultProxy, Request, Response, Rewrite
from objio import engine
from objio.azure_server import LocalAzureServer
from objio.cli import main
from objio.config import ClientConfig

BUCKET = "objio-test"


@pytest.fixture
def prefix(az_client: objio.Client) -> str:
    return f"az://{BUCKET}/o-{uuid.uuid4().hex[:8]}/"


def _through_proxy(az_proxy: FaultProxy, azure_server: LocalAzureServer,
                   **kw: Any) -> objio.Client:
    endpoint = f"{az_proxy.endpoint_url}/{azure_server.account}"
    return objio.Client(azure_server.config.replace(azure_endpoint_url=endpoint, **kw),
                        max_attempts=3)


def _copies(proxy: FaultProxy) -> list[Request]:
    return [r for r in proxy.log if r.method == "PUT" and "x-ms-copy-source" in r.headers]


def _body_moves(proxy: FaultProxy) -> list[Request]:
    """Requests that carried blob bytes through the client: Get Blob, PUTs with a body."""
    return [r for r in proxy.log if (r.method == "GET" and "comp" not in r.query)
            or (r.method == "PUT" and r.body)]


def _stored_crc(client: objio.Client, uri: str) -> int | None:
    obj = objio.parse_uri(uri)
    return engine.run(client._backend(obj).head(obj, checksum=True)).crc32c


# ------------------------------------------------------------------------------ copy
def test_copy_between_az_uris_is_made_by_the_service(az_pclient: objio.Client,
                                                     az_proxy: FaultProxy,
                                                     az_client: objio.Client,
                                                     prefix: str) -> None:
    data = os.urandom(300_000)
    src, dst = prefix + "src/a b+c&ü.bin", prefix + "dst/x y.bin"
    az_client.put_bytes(src, data)
    assert az_pclient.copy(src, dst) == len(data)
    assert _body_moves(az_proxy) == []  # no byte through the client
    [req] = _copies(az_proxy)
    assert req.headers["x-ms-requires-sync"] == "true"  # Copy Blob From URL
    assert req.headers["x-ms-source-if-match"] == f'"{az_client.stat(src).etag}"'
    assert "sig=" in req.headers["x-ms-copy-source"]  # the source authorized by a SAS
    assert bytes(az_client.get(dst)) == data
    assert _stored_crc(az_client, dst) == google_crc32c.value(data)  # metadata kept


def test_copy_above_the_sync_limit_is_copy_blob_polled(
        az_proxy: FaultProxy, azure_server: LocalAzureServer, az_client: objio.Client,
        prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "_BACKOFF_BASE_S", 0.001)
    az_proxy.clear()
    c = _through_proxy(az_proxy, azure_server, copy_threshold=1000)
    data = os.urandom(5000)
    az_client.put_bytes(prefix + "big", data)

    def pending(r: Request, resp: Response) -> Response:
        resp.set("x-ms-copy-status", "pending")
        return resp

    is_copy = lambda r: r.method == "PUT" and "x-ms-copy-source" in r.headers  # noqa: E731
    is_poll = lambda r: r.method == "HEAD" and r.path.endswith("/copy")  # noqa: E731
    az_proxy.add(is_copy, Rewrite(pending), times=1)
    az_proxy.add(is_poll, Rewrite(pending), times=2)  # still pending twice, then done
    assert c.copy(prefix + "big", prefix + "copy") == 5000
    [req] = _copies(az_proxy)
    assert "x-ms-requires-sync" not in req.headers  # Copy Blob
    assert [r.method for r in az_proxy.log if is_poll(r)] == ["HEAD"] * 4  # 3 polls, 1 check
    assert _body_moves(az_proxy) == []
    assert bytes(az_client.get(prefix + "copy")) == data
    assert _stored_crc(az_client, prefix + "copy") == google_crc32c.value(data)


def test_copy_blob_failed_is_an_error_naming_why(
        az_proxy: FaultProxy, azure_server: LocalAzureServer, az_client: objio.Client,
        prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "_BACKOFF_BASE_S", 0.001)
    az_proxy.clear()
    c = _through_proxy(az_proxy, azure_server, copy_threshold=1000)
    az_client.put_bytes(prefix + "big", os.urandom(5000))

    def status(value: str) -> Rewrite:
        def fn(r: Request, resp: Response) -> Response:
            resp.set("x-ms-copy-status", value)
            resp.set("x-ms-copy-status-description", "500 InternalError reading the source")
            return resp
        return Rewrite(fn)

    az_proxy.add(lambda r: r.method == "PUT" and "x-ms-copy-source" in r.headers,
                 status("pending"), times=1)
    az_proxy.add(lambda r: r.method == "HEAD" and r.path.endswith("/copy"), status("failed"),
                 times=1)
    with pytest.raises(objio.ObjectStoreError, match="is failed .500 InternalError") as e:
        c.copy(prefix + "big", prefix + "copy")
    assert e.value.code == "CopyFailed" and "/copy" in str(e.value)


def test_copy_blob_pending_past_its_deadline_is_aborted_and_deleted(
        az_proxy: FaultProxy, azure_server: LocalAzureServer, az_client: objio.Client,
        prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Copy Blob the service never finishes does not hang the caller: after the request
    deadline (request_timeout_s, or the size at min_transfer_rate) it is aborted (Abort Copy
    Blob), its destination deleted, and a TimeoutError raised."""
    monkeypatch.setattr(engine, "_BACKOFF_BASE_S", 0.001)
    az_proxy.clear()
    c = _through_proxy(az_proxy, azure_server, copy_threshold=1000, request_timeout_s=0.5)
    az_client.put_bytes(prefix + "big", os.urandom(5000))

    def pending(r: Request, resp: Response) -> Response:
        resp.set("x-ms-copy-status", "pending")
        return resp

    az_proxy.add(lambda r: r.method == "PUT" and "x-ms-copy-source" in r.headers,
                 Rewrite(pending), times=1)
    az_proxy.add(lambda r: r.method == "HEAD" and r.path.endswith("/copy"), Rewrite(pending),
                 times=1000)
    with pytest.raises(objio.ObjectTimeoutError, match="still pending") as e:
        c.copy(prefix + "big", prefix + "copy")
    assert isinstance(e.value, TimeoutError) and e.value.code == "CopyTimeout"
    aborts = [r for r in az_proxy.log if r.headers.get("x-ms-copy-action") == "abort"]
    assert len(aborts) == 1 and "copyid=" in aborts[0].target
    assert not az_client.exists(prefix + "copy")
    assert az_client.exists(prefix + "big")


def test_copy_of_a_source_changed_since_it_was_listed(az_pclient: objio.Client,
                                                      az_proxy: FaultProxy,
                                                      az_client: objio.Client,
                                                      prefix: str) -> None:
    for i in range(3):
        az_client.put_bytes(prefix + f"s/{i}", f"v{i}".encode())
    infos = az_client.list_objects(prefix + "s/")
    pairs = [(f"az://{BUCKET}/{i.key}", f"az://{BUCKET}/{i.key}".replace("/s/", "/d/"))
             for i in infos]
    az_client.put_bytes(prefix + "s/1", b"changed since the listing")
    assert az_pclient.copy_many(pairs, sources=infos) == (3, 2 + 25 + 2)
    assert bytes(az_client.get(prefix + "d/1")) == b"changed since the listing"
    assert bytes(az_client.get(prefix + "d/2")) == b"v2"
    assert len(_copies(az_proxy)) == 4  # the changed one: 412, then a copy of what it is now


def test_copy_not_matching_its_source_is_made_again_then_deleted(
        az_pclient: objio.Client, az_proxy: FaultProxy, az_client: objio.Client, prefix: str,
        caplog: pytest.LogCaptureFixture) -> None:
    az_client.put_bytes(prefix + "src", b"payload")

    def short(r: Request, resp: Response) -> Response:
        resp.set("content-length", "3")
        return resp

    check = lambda r: r.method == "HEAD" and "/dst" in r.path  # noqa: E731
    az_proxy.add(check, Rewrite(short), times=1)
    with caplog.at_level(logging.WARNING, "objio.engine"):
        assert az_pclient.copy(prefix + "src", prefix + "dst") == 7
    assert any("copying it again" in r.message for r in caplog.records)
    assert len(_copies(az_proxy)) == 2
    az_proxy.clear()
    az_proxy.add(check, Rewrite(short), times=2)
    with pytest.raises(objio.IntegrityError, match="the copy was deleted"):
        az_pclient.copy(prefix + "src", prefix + "dst2")
    assert not az_client.exists(prefix + "dst2")


def test_cli_cp_and_mv_between_az_uris_copy_in_the_service(
        azure_server: LocalAzureServer, az_client: objio.Client, prefix: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in azure_server.environ().items():
        monkeypatch.setenv(k, v)
    calls: list[str] = []
    real = engine.copy_object

    async def spy(backend: Any, src: Any, dst: Any, *a: Any, **kw: Any) -> int:
        calls.append(str(dst))
        return await real(backend, src, dst, *a, **kw)

    monkeypatch.setattr(engine, "copy_object", spy)
    az_client.put_bytes(prefix + "a/1.bin", b"one")
    az_client.put_bytes(prefix + "a/2.bin", b"two")
    assert main(["cp", "--recursive", prefix + "a/", prefix + "b/"]) == 0
    assert main(["mv", prefix + "b/1.bin", prefix + "c/1.bin"]) == 0
    assert sorted(calls) == [prefix + "b/1.bin", prefix + "b/2.bin", prefix + "c/1.bin"]
    assert bytes(az_client.get(prefix + "c/1.bin")) == b"one"
    assert not az_client.exists(prefix + "b/1.bin")


# ------------------------------------------------------------------------------ presign
def _fetch(url: str, method: str = "GET", data: bytes | None = None,
           headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_presigned_get_and_put_work_with_a_plain_http_client(az_client: objio.Client,
                                                             prefix: str) -> None:
    az_client.put_bytes(prefix + "shared.bin", b"for anyone with the URL")
    url = az_client.presign(prefix + "shared.bin", expires_s=600)
    assert "sp=r&" in url and "sig=" in url
    assert _fetch(url) == (200, b"for anyone with the URL")
    other = url.replace("/shared.bin?", "/other.bin?")
    az_client.put_bytes(prefix + "other.bin", b"not shared")
    status, _ = _fetch(other)
    assert status == 403  # the signature names one blob
    up = az_client.presign(prefix + "up.bin", expires_s=600, method="PUT")
    assert _fetch(up, "PUT", b"uploaded", {"x-ms-blob-type": "BlockBlob"})[0] == 201
    assert bytes(az_client.get(prefix + "up.bin")) == b"uploaded"
    assert _fetch(url.replace("sp=r&", "sp=rw&"), "PUT", b"x",
                  {"x-ms-blob-type": "BlockBlob"})[0] == 403  # permissions are signed
    odd = prefix + "dir/a b+c&ü%#?.bin"  # the signature covers the name, not its encoding
    az_client.put_bytes(odd, b"odd")
    assert _fetch(az_client.presign(odd, expires_s=600)) == (200, b"odd")


def test_presigned_url_expires(az_client: objio.Client, prefix: str) -> None:
    az_client.put_bytes(prefix + "brief.bin", b"soon gone")
    url = az_client.presign(prefix + "brief.bin", expires_s=2)
    assert _fetch(url) == (200, b"soon gone")
    time.sleep(3.2)  # (se has whole seconds)
    status, body = _fetch(url)
    assert status == 403 and b"<Error>" in body


def test_presign_without_the_account_key_says_what_is_needed(
        azure_server: LocalAzureServer) -> None:
    sas_only = objio.Client(ClientConfig(azure_sas_token="sv=2023-11-03&sig=x",
                                         azure_endpoint_url=azure_server.endpoint_url))
    with pytest.raises(ValueError, match="account's key.*this client has a SAS token.*user "
                       "delegation SAS"):
        sas_only.presign(f"az://{BUCKET}/x")


def test_cli_presign_az(azure_server: LocalAzureServer, az_client: objio.Client, prefix: str,
                        monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str]) -> None:
    for k, v in azure_server.environ().items():
        monkeypatch.setenv(k, v)
    az_client.put_bytes(prefix + "c.txt", b"cli")
    assert main(["presign", prefix + "c.txt", "--expires-in", "60"]) == 0
    assert _fetch(capsys.readouterr().out.strip()) == (200, b"cli")


# ------------------------------------------------------------------------------ rb
def test_rb_deletes_an_empty_container_and_refuses_a_full_one(
        azure_server: LocalAzureServer, az_client: objio.Client,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for k, v in azure_server.environ().items():
        monkeypatch.setenv(k, v)
    container = f"az://rb-{uuid.uuid4().hex[:8]}"
    assert main(["mb", container]) == 0
    az_client.put_bytes(container + "/keep.txt", b"k")
    with pytest.raises(objio.ObjectStoreError, match="BucketNotEmpty") as e:
        az_client.delete_bucket(container)
    assert e.value.uri == container
    assert main(["rb", container]) != 0
    assert bytes(az_client.get(container + "/keep.txt")) == b"k"  # nothing deleted
    assert main(["rb", "--force", container]) == 0
    assert "remove_bucket" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError):
        az_client.list(container + "/")
    assert main(["mb", container]) == 0
    az_client.delete_bucket(container)
    with pytest.raises(FileNotFoundError):
        az_client.delete_bucket(container)


# ------------------------------------------------------------------------------ deletes
def test_bulk_deletes_are_one_request_per_blob_each_retried(
        az_proxy: FaultProxy, azure_server: LocalAzureServer, az_client: objio.Client,
        prefix: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from faultproxy import Forge
    from objio import oplog

    monkeypatch.setattr(engine, "_BACKOFF_BASE_S", 0.001)
    az_proxy.clear()
    path = tmp_path / "ops.tsv"
    c = _through_proxy(az_proxy, azure_server, op_log=str(path))
    uris = [f"{prefix}d{i}" for i in range(20)]
    az_client.put_many([(u, b"x") for u in uris])
    busy = Response(503, "Server Busy", [("x-ms-error-code", "ServerBusy")],
                    b"<?xml version='1.0'?><Error><Code>ServerBusy</Code></Error>")
    az_proxy.add(lambda r: r.method == "DELETE" and r.path.endswith("/d7"),
                 Forge(lambda r: busy), times=1)
    assert c.delete_many(uris + [prefix + "never-there"]) == 21
    assert az_client.list(prefix) == []
    deletes = [r for r in az_proxy.log if r.method == "DELETE"]
    assert len(deletes) == 22  # one per blob, the busy one twice
    oplog.get(str(path)).flush()
    rows = [ln.split("\t") for ln in path.read_text().splitlines()[1:]]
    assert len(rows) == 22 and {r[oplog.COLUMNS.index("op")] for r in rows} == {"DELETE"}


# ------------------------------------------------------------------------------ torch readers
def test_reader_constructors_take_the_scheme(az_client: objio.Client, prefix: str) -> None:
    pytest.importorskip("torch")
    import pickle

    from objio.torch import S3ReaderConstructor
    from objio.torch.datasets import PrefetchedS3Reader

    az_client.put_bytes(prefix + "r.bin", b"0123456789")
    key = objio.parse_uri(prefix + "r.bin").key
    for make in (S3ReaderConstructor.sequential(), S3ReaderConstructor.range_based()):
        r = make(BUCKET, key, az_client, scheme="az")
        assert (r.bucket, r.key) == (BUCKET, key)
        r.seek(3)
        assert r.read(4) == b"3456"
    with pytest.raises(ValueError, match="scheme must be 's3', 'gs' or 'az'"):
        S3ReaderConstructor.sequential()(BUCKET, key, az_client, scheme="gs3")
    p = PrefetchedS3Reader("c", "k/x", b"abc", scheme="az", account="other1")
    assert p.uri == "abfs://c@other1.dfs.core.windows.net/k/x"
    assert pickle.loads(pickle.dumps(p)).uri == p.uri


# ------------------------------------------------------------------------------ stream read
def test_stream_reads_use_fewer_larger_gets_on_azure(az_pclient: objio.Client,
                                                     az_proxy: FaultProxy,
                                                     az_client: objio.Client, prefix: str,
                                                     client: objio.Client) -> None:
    data = os.urandom(70 << 20)
    az_client.put_bytes(prefix + "big.bin", data)
    az_proxy.clear()
    with objio.open(prefix + "big.bin", "rb", client=az_pclient) as f:
        assert (f.chunk_size, f.window_size) == (32 << 20, 64 << 20)
        assert f.read() == data
    gets = [r for r in az_proxy.log if r.method == "GET"]
    assert len(gets) == 3  # 32 + 32 + 6 MiB (S3's defaults: 9 GETs of 8 MiB)
    with objio.open(prefix + "big.bin", "rb", client=az_pclient, chunk_size=8 << 20,
                    window_size=16 << 20) as f:  # explicit sizes win
        assert (f.chunk_size, f.window_size) == (8 << 20, 16 << 20)
    with objio.open(f"s3://{BUCKET}/nothing-read", "rb", client=client, size=0) as f:
        assert (f.chunk_size, f.window_size) == (8 << 20, 64 << 20)  # S3 unchanged
