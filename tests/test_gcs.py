"""gs:// specifics against LocalGCSServer (fake-gcs-server): URIs, configuration and credentials
(google-auth: a service-account file, application default credentials, anonymous for an
emulator), composite uploads, batch deletes, listing completeness and read integrity (through
the fault proxy), retries, error types, the server command, and the CLI (ls/cp/rm/mb between
gs://, s3://, az:// and local)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

import objio
from faultproxy import FaultProxy, Forge, Response, Rewrite
from objio import engine
from objio.cli import main
from objio.config import ClientConfig
from objio.gcs import GCSBackend
from objio.gcs.backend import UPLOADS_PREFIX
from objio.gcs_server import LocalGCSServer
from objio.uri import object_uri, parse_uri

BUCKET = "objio-test"


@pytest.fixture
def prefix(gs_client: objio.Client) -> str:
    return f"gs://{BUCKET}/t-{uuid.uuid4().hex[:8]}/"


@pytest.fixture
def no_gcs_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("STORAGE_EMULATOR_HOST", "OBJIO_GCS_ENDPOINT_URL", "OBJIO_GCS_CREDENTIALS",
                "OBJIO_GCS_PROJECT", "GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT",
                "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(var, raising=False)


# ----------------------------------------------------------------------------------- URIs
def test_uri_forms() -> None:
    for text in ("gs://my-bucket/a/b.bin", "gcs://my-bucket/a/b.bin", "GS://my-bucket/a/b.bin"):
        obj = parse_uri(text)
        assert (obj.scheme, obj.bucket, obj.key) == ("gs", "my-bucket", "a/b.bin")
        assert str(obj) == "gs://my-bucket/a/b.bin"
    assert parse_uri("gs://my_bucket.with.dots/k").bucket == "my_bucket.with.dots"
    assert str(parse_uri("gs://bkt").joinpath("x")) == "gs://bkt/x"
    with pytest.raises(ValueError, match=r"names a bucket, not an object.*gs://bkt/OBJECT"):
        object_uri("gs://bkt/", "get")


@pytest.mark.parametrize("uri,rule", [
    ("gs://Upper/x", "lower-case letters"),
    ("gs://ab/x", "3-63 characters"),
    ("gs://-dash/x", "starting and ending with a letter or digit"),
    ("gs://" + "a" * 64 + "/x", "without dots is at most 63"),
    ("gs://a." + "b" * 64 + "/x", "component"),
    ("gs://192.168.1.1/x", "IP address"),
    ("gs://googlebucket/x", "'goog'"),
    ("gs://my-google-data/x", "'google'"),
    ("gcs:///x", "expected gs://bucket/object"),
])
def test_bad_bucket_names_name_the_uri_and_the_rule(uri: str, rule: str) -> None:
    with pytest.raises(ValueError, match="Google Cloud Storage") as e:
        parse_uri(uri)
    assert rule in str(e.value) and repr(uri) in str(e.value)


# ----------------------------------------------------------------------- configuration, auth
def test_emulator_host_is_the_endpoint_and_implies_anonymous(no_gcs_env: None,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:4443")
    cfg = ClientConfig().resolved()
    assert cfg.gcs_endpoint_url == "http://127.0.0.1:4443"
    b = GCSBackend(cfg)
    assert "anonymous" in repr(b) and b.project == "objio"
    with pytest.raises(ValueError, match="gcs_endpoint_url must be an http"):
        ClientConfig(gcs_endpoint_url="ftp://x")


def test_without_google_auth_the_error_says_what_to_install(no_gcs_env: None,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           gs_client: objio.Client) -> None:
    monkeypatch.setitem(sys.modules, "google.auth", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'objio\[gcs\]'.*STORAGE_EMULATOR_HOST"):
        objio.Client(ClientConfig()).get("gs://some-bucket/x")
    with pytest.raises(ImportError, match="objio"):
        GCSBackend(ClientConfig(gcs_credentials="default").resolved())
    # an emulator (or anonymous) needs no google-auth
    assert "anonymous" in repr(GCSBackend(ClientConfig(gcs_credentials="anonymous").resolved()))


def test_application_default_credentials_are_found_on_first_use(
        no_gcs_env: None, monkeypatch: pytest.MonkeyPatch, gs_proxy: FaultProxy) -> None:
    """Looking for application default credentials may ask the metadata server (seconds where
    there is none): not when the backend is made, only when a request needs a token, off the
    event loop; none found is a PermissionError saying what to set, and nothing is sent."""
    import google.auth
    from google.auth import exceptions

    calls: list[bool] = []  # on the engine's loop thread?

    def no_adc(*args: Any, **kwargs: Any) -> Any:
        calls.append(engine.in_engine_thread())
        raise exceptions.DefaultCredentialsError("Could not automatically determine "
                                                 "credentials.")

    monkeypatch.setattr(google.auth, "default", no_adc)
    cfg = ClientConfig(gcs_endpoint_url=gs_proxy.endpoint_url, gcs_credentials="default")
    backend = GCSBackend(cfg.resolved())
    assert calls == [] and "application default" in repr(backend)
    gs_proxy.clear()
    with pytest.raises(PermissionError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        objio.Client(cfg).get(f"gs://{BUCKET}/x")
    assert calls == [False]
    assert gs_proxy.log == []


def test_missing_credentials_file_is_named(no_gcs_env: None) -> None:
    with pytest.raises(FileNotFoundError, match="no-such-file.json"):
        GCSBackend(ClientConfig(gcs_credentials="/tmp/no-such-file.json").resolved())


class _TokenServer:
    """An OAuth2 token endpoint on loopback: answers every JWT-bearer grant with a token."""

    def __init__(self) -> None:
        grants: list[dict[str, list[str]]] = []
        self.grants = grants

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("content-length") or 0)
                grants.append(parse_qs(self.rfile.read(n).decode()))
                body = json.dumps({"access_token": "ya29.test-token", "expires_in": 3600,
                                   "token_type": "Bearer"}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _service_account_file(path: Path, token_uri: str) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "sa-project", "private_key_id": "k1",
        "private_key": pem, "client_email": "objio-test@sa-project.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": token_uri}))
    return path


@pytest.mark.parametrize("how", ["file", "application-default"])
def test_service_account_credentials_send_a_bearer_token(
        how: str, no_gcs_env: None, tmp_path: Path, gs_proxy: FaultProxy,
        gs_client: objio.Client, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A service-account JSON file (named by gcs_credentials, or found by google-auth's
    application default credentials through GOOGLE_APPLICATION_CREDENTIALS) gives OAuth2
    tokens (a JWT-bearer grant to its token_uri), fetched once and sent with every request;
    the project of a new bucket is the service account's."""
    tokens = _TokenServer()
    try:
        sa = _service_account_file(tmp_path / "sa.json", tokens.url)
        if how == "file":
            cfg = ClientConfig(gcs_endpoint_url=gs_proxy.endpoint_url, gcs_credentials=str(sa))
        else:
            monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(sa))
            cfg = ClientConfig(gcs_endpoint_url=gs_proxy.endpoint_url,
                               gcs_credentials="default")
        gs_client.put_bytes(prefix + "auth", b"with a token")
        gs_proxy.clear()
        c = objio.Client(cfg)
        assert bytes(c.get(prefix + "auth")) == b"with a token"
        bucket = f"gs://sa-{uuid.uuid4().hex[:8]}"
        c.create_bucket(bucket)
        assert [r.headers.get("authorization") for r in gs_proxy.log] == \
            ["Bearer ya29.test-token"] * 2
        assert [r.query.get("project") for r in gs_proxy.log][1] == "sa-project"
        assert len(tokens.grants) == 1
        assert tokens.grants[0]["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
        assert "PRIVATE KEY" not in repr(c) and "ya29" not in repr(engine.backend_for(
            parse_uri(prefix), c.config.resolved()))
    finally:
        tokens.stop()
        gs_proxy.clear()


def test_environ_points_another_process_at_it(gcs_server: LocalGCSServer,
                                              gs_client: objio.Client, prefix: str) -> None:
    gs_client.put_bytes(prefix + "env", b"via STORAGE_EMULATOR_HOST")
    env = {k: v for k, v in os.environ.items() if "GCS" not in k and "GOOGLE" not in k}
    env.update(gcs_server.environ())
    code = f"import objio; print(bytes(objio.Client().get({prefix + 'env'!r})).decode())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "via STORAGE_EMULATOR_HOST"


def test_server_command_kind_gcs() -> None:
    from conftest import objio_server_process

    with objio_server_process("--kind", "gcs") as info:
        host = info["STORAGE_EMULATOR_HOST"]
        assert host == info["endpoint_url"]
        c = objio.Client(ClientConfig(gcs_endpoint_url=host))
        c.create_bucket("gs://cli-server")
        c.put_bytes("gs://cli-server/k", b"v")
        assert bytes(c.get("gs://cli-server/k")) == b"v"


def test_server_stops_its_process() -> None:
    server = LocalGCSServer().start()
    proc = server._proc
    assert proc is not None and server.running
    server.stop()
    assert not server.running and proc.poll() is not None  # reaped
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.endpoint_url


# -------------------------------------------------------------------------- uploads, deletes
def test_writer_and_large_put_go_as_composed_parts(gs_client: objio.Client, prefix: str,
                                                   gs_proxy: FaultProxy,
                                                   gcs_server: LocalGCSServer) -> None:
    """A writer of 70 parts: uploaded as objects, composed in a tree (32 sources per
    compose), read back whole (checked against the CRC32C the store computed); no part or
    intermediate object is left. A put larger than range_threshold goes the same way."""
    data = os.urandom(70 * 1000)
    c = objio.Client(gcs_server.config.replace(gcs_endpoint_url=gs_proxy.endpoint_url),
                     range_threshold=1024 * 1024)
    gs_proxy.clear()
    with objio.open(prefix + "big", "wb", client=c, part_size=1000) as w:
        w.write(data)
    assert bytes(gs_client.get(prefix + "big")) == data
    composes = [r for r in gs_proxy.log if r.path.endswith("/compose")]
    assert len(composes) == 4  # 3 of up to 32 parts, then the object
    assert gs_client.list(f"gs://{BUCKET}/{UPLOADS_PREFIX}") == []
    big = os.urandom(3 * 1024 * 1024 + 7)
    gs_proxy.clear()
    c.put_bytes(prefix + "multi", big)
    assert sum(1 for r in gs_proxy.log if r.path.endswith("/compose")) == 1
    assert bytes(gs_client.get(prefix + "multi")) == big
    assert gs_client.list(f"gs://{BUCKET}/{UPLOADS_PREFIX}") == []


def test_parts_composed_in_a_tree_and_abort_deletes_them(gs_client: objio.Client,
                                                          prefix: str) -> None:
    obj = parse_uri(prefix + "tree")
    backend = engine.backend_for(obj, gs_client.config)
    import google_crc32c

    chunks = [os.urandom(500 + i) for i in range(40)]
    uid = engine.run(backend.create_multipart(obj, checksum="crc32c"))
    sent = [(i + 1, engine.run(backend.upload_part(
        obj, uid, i + 1, c, checksum_crc32c=google_crc32c.value(c)))) for i, c in
        enumerate(chunks)]
    whole = google_crc32c.value(b"".join(chunks))
    engine.run(backend.complete_multipart(obj, uid, list(reversed(sent)),
                                          checksum_crc32c=whole))
    assert bytes(gs_client.get(str(obj))) == b"".join(chunks)
    assert gs_client.stat(str(obj)).size == sum(map(len, chunks))
    assert gs_client.list(f"gs://{BUCKET}/{UPLOADS_PREFIX}{uid}/") == []
    # abort: every part of the upload goes, the object stays as it was
    uid2 = engine.run(backend.create_multipart(obj))
    for i in range(3):
        engine.run(backend.upload_part(obj, uid2, i + 1, b"x" * 10))
    assert len(gs_client.list(f"gs://{BUCKET}/{UPLOADS_PREFIX}{uid2}/")) == 3
    engine.run(backend.abort_multipart(obj, uid2))
    assert gs_client.list(f"gs://{BUCKET}/{UPLOADS_PREFIX}{uid2}/") == []
    assert bytes(gs_client.get(str(obj))) == b"".join(chunks)
    # a whole-object CRC32C that does not match the composite: refused, nothing left
    uid3 = engine.run(backend.create_multipart(obj))
    tag = engine.run(backend.upload_part(obj, uid3, 1, b"abc"))
    with pytest.raises(objio.IntegrityError, match="CRC32C"):
        engine.run(backend.complete_multipart(obj, uid3, [(1, tag)], checksum_crc32c=1))
    assert not gs_client.exists(str(obj))


def test_parts_left_after_a_composed_upload_are_not_a_failure(
        gs_client: objio.Client, gs_proxy: FaultProxy, gcs_server: LocalGCSServer,
        prefix: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """The object is composed; deleting its parts then fails: the upload succeeded (the object
    is there, whole), the parts left are named in a warning."""
    monkeypatch.setattr(engine, "_BACKOFF_BASE_S", 0.001)
    c = objio.Client(gcs_server.config.replace(gcs_endpoint_url=gs_proxy.endpoint_url),
                     max_attempts=2)
    busy = Response(503, "Busy", [("Content-Type", "application/json")],
                    b'{"error": {"code": 503, "message": "busy"}}')
    gs_proxy.clear()
    gs_proxy.add(lambda r: r.path.endswith("/batch/storage/v1"), Forge(lambda r: busy),
                 times=None)
    data = os.urandom(5000)
    try:
        with caplog.at_level("WARNING", logger="objio.gcs"):
            with objio.open(prefix + "left", "wb", client=c, part_size=1000) as w:
                w.write(data)
    finally:
        gs_proxy.clear()
    assert bytes(gs_client.get(prefix + "left")) == data
    assert "were not all deleted" in caplog.text and UPLOADS_PREFIX in caplog.text


def test_errors_and_deletes(gs_client: objio.Client, prefix: str) -> None:
    with pytest.raises(FileNotFoundError) as e:
        gs_client.get("gs://no-such-bucket/x")
    assert "gs://no-such-bucket/x" in str(e.value)
    with pytest.raises(FileNotFoundError, match="NoSuchBucket"):
        gs_client.list("gs://no-such-bucket/")
    gs_client.put_bytes(prefix + "once", b"1", exist_ok=False)
    with pytest.raises(FileExistsError):
        gs_client.put_bytes(prefix + "once", b"2", exist_ok=False)
    assert bytes(gs_client.get(prefix + "once")) == b"1"
    gs_client.put_many([(f"{prefix}d{i:03d}", b"x") for i in range(250)])
    uris = [f"{prefix}d{i:03d}" for i in range(250)] + [prefix + "never-there"]
    assert gs_client.delete_many(uris) == 251  # batches of 100 deletes
    assert gs_client.list(prefix) == [parse_uri(prefix).key + "once"]
    gs_client.delete(prefix + "never-there")  # as S3: deleting what is gone is fine
    with pytest.raises(FileNotFoundError):
        gs_client.delete("gs://no-such-bucket/x")
    with pytest.raises(FileNotFoundError):
        gs_client.delete_many(["gs://no-such-bucket/x", "gs://no-such-bucket/y"])
    with pytest.raises(FileExistsError):
        gs_client.create_bucket(f"gs://{BUCKET}")


def test_gen_writes_to_a_bucket_and_names_a_missing_one(gs_client: objio.Client,
                                                        prefix: str) -> None:
    from objio.gen.generate import check_bucket

    check_bucket(gs_client, prefix)  # the bucket exists: nothing raised
    with pytest.raises(FileNotFoundError, match="gs://no-such-bucket"):
        check_bucket(gs_client, "gs://no-such-bucket/train/")
    gs_client.put(prefix + "gen/", num=3, size=1000, object_type="NPZ")
    assert len(gs_client.list(prefix + "gen/")) == 3


def test_model_connector_reads_and_lists_gs(gcs_server: LocalGCSServer,
                                            gs_client: objio.Client, prefix: str) -> None:
    from objio.model import ModelConnector

    data = os.urandom(3 * 1024 * 1024 + 5)
    gs_client.put_bytes(prefix + "w/a.bin", data)
    mc = ModelConnector(config=gcs_server.config)
    with mc.open(prefix + "w/a.bin") as f:
        assert f.read() == data
    assert [i.key for i in mc.list(prefix + "w/")] == [parse_uri(prefix).key + "w/a.bin"]


def test_stat_reports_generation_and_the_stored_checksums(gs_client: objio.Client,
                                                          prefix: str) -> None:
    import base64
    import hashlib

    import google_crc32c

    gs_client.put_bytes(prefix + "s", b"12345")
    obj = parse_uri(prefix + "s")
    backend = engine.backend_for(obj, gs_client.config)
    info = engine.run(backend.head(obj, checksum=True))
    assert info.size == 5 and info.etag.isdigit()
    assert info.crc32c == google_crc32c.value(b"12345")
    assert info.content_md5 == base64.b64encode(hashlib.md5(b"12345").digest()).decode()
    gs_client.put_bytes(prefix + "s", b"123456")
    assert gs_client.stat(prefix + "s").etag != info.etag  # a new generation


def _err(code: int, reason: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message,
                                 "errors": [{"reason": reason, "message": message}]}}).encode()


@pytest.mark.parametrize("op,status,body,exc,code,retryable", [
    ("GetObject", 404, _err(404, "notFound", "No such object: b/k"), FileNotFoundError,
     "NoSuchKey", False),
    ("GetObject", 404, b"Not Found", FileNotFoundError, "NoSuchKey", False),
    ("GetObject", 401, _err(401, "required", "Anonymous caller"), PermissionError,
     "AccessDenied", False),
    ("PutObject", 412, _err(412, "conditionNotMet", "At least one of the pre-conditions you "
                            "specified did not hold."), FileExistsError, "PreconditionFailed",
     False),
    ("CreateBucket", 409, _err(409, "conflict", "Your previous request to create the named "
                               "bucket succeeded and you already own it."), FileExistsError,
     "BucketAlreadyExists", False),
    ("PutObject", 400, _err(400, "invalid", 'Provided CRC32C "AAAAAA==" doesn\'t match '
                            'calculated CRC32C "mnG7TA=="'), objio.IntegrityError, "BadDigest",
     True),
    ("PutObject", 400, _err(400, "invalid", "Invalid argument."), objio.ObjectStoreError,
     "invalid", False),
    ("GetObject", 429, _err(429, "rateLimitExceeded", "slow down"), objio.ObjectStoreError,
     "SlowDown", True),
    ("GetObject", 500, _err(500, "backendError", "Backend Error"), objio.ObjectStoreError,
     "InternalError", True),
])
def test_json_api_errors_are_translated(op: str, status: int, body: bytes, exc: type,
                                        code: str, retryable: bool) -> None:
    from objio.errors import gcs_error_from_response

    e = gcs_error_from_response(op, "gs://b/k", status, body,
                                not_found="NoSuchKey")
    assert isinstance(e, exc) and e.code == code and e.retryable == retryable
    assert e.status == status and "gs://b/k" in str(e) and op in str(e)


# ------------------------------------------------------------------ listing, read integrity
def _is_list(r: Any) -> bool:
    return r.method == "GET" and r.path.endswith("/o")


def test_listing_follows_page_tokens(gs_client: objio.Client, prefix: str) -> None:
    gs_client.put_many([(f"{prefix}k{i:02d}", b"x") for i in range(25)]
                       + [(f"{prefix}sub/x", b"y")])
    obj = parse_uri(prefix)
    backend = engine.backend_for(obj, gs_client.config)

    async def pages() -> list[Any]:
        return [p async for p in backend.list_pages(obj.with_key(""), obj.key, "/",
                                                    page_size=10)]

    got = engine.run(pages())
    assert len(got) >= 3
    assert [k for p in got for k in p.keys] == [f"{obj.key}k{i:02d}" for i in range(25)]
    assert [x for p in got for x in p.prefixes] == [obj.key + "sub/"]
    assert len(gs_client.list(prefix)) == 26

    async def after() -> list[str]:
        return [k async for p in backend.list_pages(obj.with_key(""), obj.key,
                                                    start_after=f"{obj.key}k20", page_size=3)
                for k in p.keys]

    assert engine.run(after()) == [f"{obj.key}k{i}" for i in range(21, 25)] + [obj.key + "sub/x"]


    async def after_in_prefix() -> tuple[list[str], list[str]]:
        got = [p async for p in backend.list_pages(obj.with_key(""), obj.key, "/",
                                                   start_after=f"{obj.key}sub/a")]
        return [k for p in got for k in p.keys], [x for p in got for x in p.prefixes]

    gs_client.put_many([(f"{prefix}sub/y", b"z")])
    # start_after inside a common prefix that still has keys after it: the prefix is listed
    assert engine.run(after_in_prefix()) == ([], [obj.key + "sub/"])


def test_listing_page_cut_short_is_retried_then_refused(gs_pclient: objio.Client,
                                                        gs_proxy: FaultProxy,
                                                        gs_client: objio.Client,
                                                        prefix: str) -> None:
    gs_client.put_many([(f"{prefix}k{i}", b"x") for i in range(5)])

    def cut(req: Any, resp: Response) -> Response:
        resp.body = resp.body[: len(resp.body) - 20]  # well framed, not whole
        return resp

    gs_proxy.add(_is_list, Rewrite(cut), times=1)
    assert len(gs_pclient.list(prefix)) == 5  # the cut page was asked for again
    gs_proxy.add(_is_list, Rewrite(cut), times=None)
    with pytest.raises(objio.ObjectStoreError) as e:
        gs_pclient.list(prefix)
    assert e.value.code == "IncompleteListing" and prefix.rstrip("/") in str(e.value)


def test_listing_token_that_does_not_move_is_an_error(gs_pclient: objio.Client,
                                                      gs_proxy: FaultProxy,
                                                      prefix: str) -> None:
    def page(req: Any) -> Response:  # a whole page whose nextPageToken is always "t1"
        sent = req.query.get("pageToken", "")
        body = json.dumps({"kind": "storage#objects", "nextPageToken": "t1",
                           "items": [{"name": f"k{sent}", "size": "1", "generation": "1"}]})
        return Response(200, "OK", [("Content-Type", "application/json")], body.encode())

    gs_proxy.add(_is_list, Forge(page), times=None)
    with pytest.raises(objio.ObjectStoreError, match="does not move forward") as e:
        gs_pclient.list(prefix)
    assert e.value.code == "IncompleteListing"


@pytest.mark.parametrize("size", [100_000, 3 * 1024 * 1024])
def test_flipped_byte_fails_the_stored_crc32c(gs_pclient: objio.Client, gs_proxy: FaultProxy,
                                              gs_client: objio.Client, prefix: str,
                                              size: int, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    """Every object has a CRC32C in Cloud Storage (x-goog-hash): a whole-object read is
    checked against it (ranged parts combined); a damaged response is read once more, then
    IntegrityError."""
    data = os.urandom(size)
    gs_client.put_bytes(prefix + "sum", data)
    c = objio.Client(gs_pclient.config, range_threshold=1024 * 1024, part_size=5 * 1024 * 1024)

    def flip(req: Any, resp: Response) -> Response:
        body = bytearray(resp.body)
        body[len(body) // 2] ^= 1
        resp.body = bytes(body)
        return resp

    def is_read(r: Any) -> bool:
        return r.method == "GET" and r.query.get("alt") == "media" and "sum" in r.path

    gs_proxy.add(is_read, Rewrite(flip), times=1)
    assert bytes(c.get(prefix + "sum")) == data  # the damaged response was read again
    gs_proxy.add(is_read, Rewrite(flip), times=None)
    with pytest.raises(objio.IntegrityError, match="CRC32C"):
        c.get(prefix + "sum")


def test_upload_damaged_on_the_way_is_sent_again(gs_pclient: objio.Client, gs_proxy: FaultProxy,
                                                 gs_client: objio.Client,
                                                 prefix: str) -> None:
    """The CRC32C sent with an upload is compared with the one the store computed (Cloud
    Storage refuses a mismatch itself; the emulator does not): a damaged body is sent again."""
    data = os.urandom(50_000)

    def damage(req: Any) -> Any:
        body = bytearray(req.body)
        body[len(body) // 2] ^= 1
        return req.with_body(bytes(body))

    from faultproxy import AlterRequest

    gs_proxy.add(lambda r: r.method == "POST" and "uploadType" in r.query,
                 AlterRequest(damage), times=1)
    gs_pclient.put_bytes(prefix + "up", data)
    assert bytes(gs_client.get(prefix + "up")) == data
    assert sum(1 for r in gs_proxy.log if r.method == "POST") == 2


def test_lost_response_of_a_create_only_put_is_not_an_error(gs_pclient: objio.Client,
                                                           gs_proxy: FaultProxy,
                                                           gs_client: objio.Client,
                                                           prefix: str) -> None:
    """put_bytes(exist_ok=False) whose response is lost: the retry finds the object (412);
    it is the one this call sent (its MD5: a gs:// etag is the generation, not the MD5), so
    that is success. Another writer's object stays a FileExistsError."""
    from faultproxy import LoseResponse

    data = os.urandom(10_000)
    gs_proxy.add(lambda r: r.method == "POST" and "uploadType" in r.query, LoseResponse(),
                 times=1)
    gs_pclient.put_bytes(prefix + "once", data, exist_ok=False)
    assert bytes(gs_client.get(prefix + "once")) == data
    with pytest.raises(FileExistsError):
        gs_pclient.put_bytes(prefix + "once", b"other bytes", exist_ok=False)


@pytest.mark.parametrize("status,reason", [(503, "backendError"), (429, "rateLimitExceeded")])
def test_503_and_429_are_retried(gs_pclient: objio.Client, gs_proxy: FaultProxy,
                                 gs_client: objio.Client, prefix: str, status: int,
                                 reason: str) -> None:
    gs_client.put_bytes(prefix + "busy", b"ok")
    busy = Response(status, "Busy", [("Content-Type", "application/json")], json.dumps(
        {"error": {"code": status, "message": "try again",
                   "errors": [{"reason": reason, "message": "try again"}]}}).encode())
    gs_proxy.add(lambda r: r.method == "GET", Forge(lambda r: busy), times=2)
    assert bytes(gs_pclient.get(prefix + "busy")) == b"ok"
    gs_proxy.add(lambda r: r.method == "GET", Forge(lambda r: busy), times=None)
    with pytest.raises(objio.ObjectStoreError) as e:
        gs_pclient.get(prefix + "busy")
    assert e.value.retryable and e.value.status == status
    assert e.value.code == ("InternalError" if status == 503 else "SlowDown")


def test_denied_is_permission_error(gs_pclient: objio.Client, gs_proxy: FaultProxy,
                                    prefix: str) -> None:
    denied = Response(403, "Forbidden", [("Content-Type", "application/json")], json.dumps(
        {"error": {"code": 403, "message": "objio-test@x does not have storage.objects.get",
                   "errors": [{"reason": "forbidden"}]}}).encode())
    gs_proxy.add(lambda r: True, Forge(lambda r: denied), times=None)
    with pytest.raises(PermissionError) as e:
        gs_pclient.get(prefix + "x")
    assert isinstance(e.value, objio.AccessDeniedError) and "storage.objects.get" in str(e.value)


# --------------------------------------------------------------------------------------- CLI
def test_cli_ls_cp_rm_mb_between_schemes(gcs_server: LocalGCSServer, gs_client: objio.Client,
                                         cli_env: list[str],
                                         client: objio.Client, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    for k, v in gcs_server.environ().items():
        monkeypatch.setenv(k, v)
    bucket = f"gs://cli-{uuid.uuid4().hex[:8]}"
    assert main(["mb", bucket]) == 0
    capsys.readouterr()
    assert main(["ls", "gs://"]) == 0
    names = [ln.split()[-1] for ln in capsys.readouterr().out.splitlines()]
    assert bucket[5:] in names and BUCKET in names
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"alpha")
    (src / "sub" / "b.txt").write_bytes(b"beta")
    assert main(["cp", "--recursive", str(src) + "/", bucket + "/up/"]) == 0
    capsys.readouterr()
    assert main(["ls", "--recursive", bucket + "/up/"]) == 0
    out = capsys.readouterr().out
    assert "up/a.txt" in out and "up/sub/b.txt" in out
    s3 = f"s3://{BUCKET}/cli-gs-{uuid.uuid4().hex[:8]}/"
    assert main(["cp", "--recursive", bucket + "/up/", s3, *cli_env]) == 0
    assert bytes(client.get(s3 + "sub/b.txt")) == b"beta"
    assert main(["cp", s3 + "a.txt", bucket + "/back/a.txt", *cli_env]) == 0
    assert main(["cp", bucket + "/back/a.txt", str(tmp_path / "a.copy")]) == 0
    assert (tmp_path / "a.copy").read_bytes() == b"alpha"
    assert main(["cp", bucket + "/back/a.txt", bucket + "/back/a2.txt"]) == 0
    assert main(["sync", bucket + "/up/", str(tmp_path / "synced")]) == 0
    assert (tmp_path / "synced" / "sub" / "b.txt").read_bytes() == b"beta"
    assert main(["rm", "--recursive", bucket + "/up/"]) == 0
    capsys.readouterr()
    assert main(["ls", "--recursive", bucket + "/"]) == 0
    assert [ln.split()[-1].rsplit("/", 1)[-1] for ln in
            capsys.readouterr().out.strip().splitlines()] == ["a.txt", "a2.txt"]
    # rb removes the gs:// bucket, never the S3 bucket of the same name
    client.create_bucket(bucket.replace("gs://", "s3://"), exist_ok=True)
    assert main(["rb", bucket]) == 1  # not empty
    assert "BucketNotEmpty" in capsys.readouterr().err
    assert main(["rb", "--force", bucket]) == 0
    with pytest.raises(FileNotFoundError):
        objio.Client(gcs_server.config).list(bucket + "/")
    assert client.list(bucket.replace("gs://", "s3://") + "/") == []  # still there
    client.delete_bucket(bucket.replace("gs://", "s3://"))


def test_cli_cp_between_gs_and_az(gcs_server: LocalGCSServer, gs_client: objio.Client,
                                  azure_server: Any, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    for k, v in {**gcs_server.environ(), **azure_server.environ()}.items():
        monkeypatch.setenv(k, v)
    az = objio.Client(azure_server.config)
    az.create_bucket(f"az://{BUCKET}", exist_ok=True)
    gs = f"gs://{BUCKET}/cli-az-{uuid.uuid4().hex[:8]}/"
    azp = f"az://{BUCKET}/cli-gs-{uuid.uuid4().hex[:8]}/"
    payload = os.urandom(70_000)
    (tmp_path / "p.bin").write_bytes(payload)
    assert main(["cp", str(tmp_path / "p.bin"), gs + "p.bin"]) == 0
    assert main(["cp", gs + "p.bin", azp + "p.bin"]) == 0
    assert main(["cp", azp + "p.bin", gs + "q.bin"]) == 0
    assert bytes(az.get(azp + "p.bin")) == payload
    assert bytes(objio.Client(gcs_server.config).get(gs + "q.bin")) == payload
    capsys.readouterr()
    assert main(["cp", str(tmp_path / "p.bin"), "gs://no-such-bucket-cli/p.bin"]) == 1
    assert "objio mb gs://no-such-bucket-cli makes it" in capsys.readouterr().err
