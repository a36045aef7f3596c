"""gs:// operations beyond the object basics, against LocalGCSServer (fake-gcs-server): V4
signed URLs (presign: the signature verified with the public key, the URL compared with
google-cloud-storage's, and used with a plain HTTP client), server-side copies
(objects.rewrite: no byte through the client, the source's generation, the copy checked),
in-progress composite uploads (list, abort, ``objio rm --incomplete-uploads``) and FastList."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

import objio
from faultproxy import FaultProxy, Forge, Response, Rewrite
from objio import engine
from objio.cli import main
from objio.gcs_server import LocalGCSServer
from objio.uri import parse_uri

BUCKET = "objio-test"


@pytest.fixture
def prefix(gs_client: objio.Client) -> str:
    return f"gs://{BUCKET}/ops-{uuid.uuid4().hex[:8]}/"


@pytest.fixture(scope="module")
def sa_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """A service-account JSON file with a fresh RSA key: (its path, the private key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path = tmp_path_factory.mktemp("sa") / "sa.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "sa-project", "private_key_id": "k1",
        "private_key": pem, "client_email": "signer@sa-project.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": "http://127.0.0.1:9/token"}))
    return path, key


# ------------------------------------------------------------------------------ presign
def _google(credentials: Path) -> objio.Client:
    """A client of Cloud Storage itself with these credentials (presign sends nothing)."""
    return objio.Client(gcs_credentials=str(credentials),
                        gcs_endpoint_url="https://storage.googleapis.com")


def _rebuilt_string_to_sign(url: str, method: str) -> tuple[str, bytes]:
    """Google's V4 string to sign, rebuilt from a signed URL (written here from Google's
    documentation, independently of objio.gcs.sign), and the URL's signature."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    signature = bytes.fromhex(dict(query)["X-Goog-Signature"])
    signed = sorted((k, v) for k, v in query if k != "X-Goog-Signature")
    canonical_query = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in signed)
    canonical = (f"{method}\n{parts.path}\n{canonical_query}\nhost:{parts.netloc}\n\nhost\n"
                 "UNSIGNED-PAYLOAD")
    q = dict(query)
    sts = (f"GOOG4-RSA-SHA256\n{q['X-Goog-Date']}\n{q['X-Goog-Date'][:8]}/auto/storage/"
           f"goog4_request\n{hashlib.sha256(canonical.encode()).hexdigest()}")
    return sts, signature


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_presigned_url_signature_verifies_with_the_public_key(
        method: str, sa_key: tuple[Path, object]) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    path, key = sa_key
    c = _google(path)
    name = "dir/a b+c~d%é.bin"
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    url = c.presign(f"gs://my-bucket/{name}", expires_s=900, method=method)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("https", "storage.googleapis.com")
    assert parts.path == "/my-bucket/dir/a%20b%2Bc~d%25%C3%A9.bin"
    q = dict(parse_qsl(parts.query))
    assert q["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    assert q["X-Goog-Expires"] == "900" and q["X-Goog-SignedHeaders"] == "host"
    stamp = datetime.datetime.strptime(q["X-Goog-Date"], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=datetime.timezone.utc)
    assert before <= stamp <= datetime.datetime.now(datetime.timezone.utc)
    assert q["X-Goog-Credential"] == (f"signer@sa-project.iam.gserviceaccount.com/"
                                      f"{q['X-Goog-Date'][:8]}/auto/storage/goog4_request")
    sts, signature = _rebuilt_string_to_sign(url, method)
    key.public_key().verify(signature, sts.encode(),  # type: ignore[attr-defined]
                            padding.PKCS1v15(), hashes.SHA256())
    # signed for this method only: the same URL read as the other method does not verify
    from cryptography.exceptions import InvalidSignature

    other, _ = _rebuilt_string_to_sign(url, "PUT" if method == "GET" else "GET")
    with pytest.raises(InvalidSignature):
        key.public_key().verify(signature, other.encode(),  # type: ignore[attr-defined]
                                padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.parametrize("method,name", [("GET", "plain.bin"), ("PUT", "a dir/ü ~+*'()!$&=;:@,?.x")])
def test_presigned_url_equals_google_cloud_storage(method: str, name: str,
                                                   sa_key: tuple[Path, object],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The same credentials, time and expiry give the URL google-cloud-storage's
    ``Blob.generate_signed_url(version="v4")`` gives (an independent implementation)."""
    from google.cloud import storage
    from google.cloud.storage import _signing
    from google.oauth2 import service_account

    path, _ = sa_key
    url = _google(path).presign(
        f"gs://my-bucket/{name}", expires_s=604800, method=method)
    stamp = dict(parse_qsl(urlsplit(url).query))["X-Goog-Date"]
    monkeypatch.setattr(_signing, "get_v4_now_dtstamps", lambda: (stamp, stamp[:8]))
    creds = service_account.Credentials.from_service_account_file(str(path))
    blob = storage.Client(project="sa-project", credentials=creds).bucket("my-bucket").blob(name)
    theirs = blob.generate_signed_url(version="v4", expiration=datetime.timedelta(days=7),
                                      method=method, credentials=creds,
                                      api_access_endpoint="https://storage.googleapis.com")
    assert url == theirs


def test_presigned_get_and_put_work_against_the_emulator(
        gcs_server: LocalGCSServer, gs_client: objio.Client, prefix: str,
        sa_key: tuple[Path, object]) -> None:
    """fake-gcs-server serves the XML API's ``/bucket/object`` for signed URLs (it does not
    check signatures: what is verified here is the URL's form: host, path, encoding)."""
    signer = objio.Client(gcs_server.config.replace(gcs_credentials=str(sa_key[0])))
    gs_client.put_bytes(prefix + "shared file.bin", b"shared bytes")
    url = signer.presign(prefix + "shared file.bin", expires_s=600)
    assert url.startswith(gcs_server.endpoint_url + "/")
    with urllib.request.urlopen(url) as r:
        assert r.read() == b"shared bytes"
    up = signer.presign(prefix + "up/ü.bin", expires_s=600, method="PUT")
    req = urllib.request.Request(up, data=b"uploaded", method="PUT",
                                 headers={"content-type": "application/octet-stream"})
    with urllib.request.urlopen(req) as r:
        assert r.status == 200
    assert bytes(gs_client.get(prefix + "up/ü.bin")) == b"uploaded"


def test_presign_refusals_name_what_is_wrong(gs_client: objio.Client, tmp_path: Path,
                                            sa_key: tuple[Path, object]) -> None:
    signer = _google(sa_key[0])
    for bad in (0, 604801):
        with pytest.raises(ValueError, match="expires_s must be .*604800"):
            signer.presign("gs://bkt/k", expires_s=bad)
    with pytest.raises(ValueError, match="method must be 'GET' or 'PUT'"):
        signer.presign("gs://bkt/k", method="DELETE")
    with pytest.raises(ValueError, match="names a bucket"):
        signer.presign("gs://bkt/")
    # anonymous (the emulator client) and user credentials cannot sign
    with pytest.raises(ValueError, match=r"needs credentials that can sign.*service account"):
        gs_client.presign(f"gs://{BUCKET}/k")
    user = tmp_path / "user.json"
    user.write_text(json.dumps({"type": "authorized_user", "client_id": "x",
                                "client_secret": "y", "refresh_token": "z"}))
    with pytest.raises(ValueError, match="hold no private key"):
        _google(user).presign("gs://bkt/k")


class _MetadataServerAndIAM:
    """google-auth's transport for a VM without a key: the metadata server (the service
    account's email and a token) and the IAM Credentials API's signBlob, which signs with
    ``key`` (or refuses with ``status``). Records the requests."""

    EMAIL = "vm-sa@sa-project.iam.gserviceaccount.com"

    def __init__(self, key: object, status: int = 200) -> None:
        self.key, self.status = key, status
        self.calls: list[tuple[str, str, dict[str, str], bytes | None]] = []

    def handle(self, url: str, method: str = "GET", body: bytes | None = None,
               headers: dict[str, str] | None = None, **_: object) -> object:
        from objio.gcs.auth import _Response

        self.calls.append((method, url, dict(headers or {}), body))
        js = {"content-type": "application/json", "metadata-flavor": "Google"}
        if url.startswith("http://metadata.google.internal/") or "169.254.169.254" in url:
            if url.endswith("/token") or "/token?" in url:
                return _Response(200, js, json.dumps({"access_token": "vm-token",
                                                      "expires_in": 3600,
                                                      "token_type": "Bearer"}).encode())
            if "/service-accounts/default/" in url:
                return _Response(200, js, json.dumps({
                    "email": self.EMAIL, "aliases": ["default"],
                    "scopes": ["https://www.googleapis.com/auth/devstorage.read_write"]}).encode())
        if url == ("https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/"
                   f"{self.EMAIL}:signBlob") and method == "POST":
            if self.status != 200:
                return _Response(self.status, js, b'{"error": {"status": "PERMISSION_DENIED"}}')
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import padding

            payload = base64.b64decode(json.loads(body or b"{}")["payload"])
            sig = self.key.sign(payload, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[attr-defined]
            return _Response(200, js, json.dumps({"keyId": "k1", "signedBlob":
                                                  base64.b64encode(sig).decode()}).encode())
        return _Response(404, {}, b"not found")


def _on_a_vm(monkeypatch: pytest.MonkeyPatch, transport: _MetadataServerAndIAM) -> objio.Client:
    """A client whose application default credentials are the metadata server's."""
    import google.auth
    from google.auth import compute_engine

    from objio.gcs import auth

    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setattr(google.auth, "default", lambda scopes=None, **_: (
        compute_engine.Credentials(universe_domain="googleapis.com"), "sa-project"))
    monkeypatch.setattr(auth._UrllibRequest, "__call__",
                        lambda _self, *args, **kwargs: transport.handle(*args, **kwargs))
    return objio.Client(gcs_credentials="default", gcs_endpoint_url="https://storage.googleapis.com")


def test_presign_on_a_vm_signs_through_iam_sign_blob(monkeypatch: pytest.MonkeyPatch,
                                                     sa_key: tuple[Path, object]) -> None:
    """Metadata-server credentials hold no key: the URL is signed by IAM signBlob as their
    service account, called with their token; the signature verifies with that account's
    public key and names it in X-Goog-Credential."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    key = sa_key[1]
    iam = _MetadataServerAndIAM(key)
    url = _on_a_vm(monkeypatch, iam).presign("gs://my-bucket/dir/x.bin", expires_s=600)
    q = dict(parse_qsl(urlsplit(url).query))
    assert q["X-Goog-Credential"].startswith(f"{iam.EMAIL}/")
    sts, signature = _rebuilt_string_to_sign(url, "GET")
    key.public_key().verify(signature, sts.encode(),  # type: ignore[attr-defined]
                            padding.PKCS1v15(), hashes.SHA256())
    sign_calls = [c for c in iam.calls if c[1].endswith(":signBlob")]
    assert len(sign_calls) == 1
    _, _, headers, body = sign_calls[0]
    assert {k.lower(): v for k, v in headers.items()}["authorization"] == "Bearer vm-token"
    assert base64.b64decode(json.loads(body or b"{}")["payload"]) == sts.encode()


def test_presign_on_a_vm_refused_by_iam_names_the_permission(
        monkeypatch: pytest.MonkeyPatch, sa_key: tuple[Path, object]) -> None:
    client = _on_a_vm(monkeypatch, _MetadataServerAndIAM(sa_key[1], status=403))
    with pytest.raises(PermissionError, match=r"signBlob.*iam\.serviceAccounts\.signBlob"):
        client.presign("gs://my-bucket/x.bin")


def test_cli_presign_gs(gcs_server: LocalGCSServer, gs_client: objio.Client, prefix: str,
                        sa_key: tuple[Path, object], monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str]) -> None:
    gs_client.put_bytes(prefix + "c.txt", b"cli")
    for k, v in gcs_server.environ().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("OBJIO_GCS_CREDENTIALS", str(sa_key[0]))
    assert main(["presign", prefix + "c.txt", "--expires-in", "60"]) == 0
    url = capsys.readouterr().out.strip()
    assert "X-Goog-Expires=60&" in url
    with urllib.request.urlopen(url) as r:
        assert r.read() == b"cli"


# ------------------------------------------------------------------------------ copy
def _is_rewrite(r: object) -> bool:
    return r.method == "POST" and "/rewriteTo/" in r.path  # type: ignore[attr-defined]


def test_copy_between_gs_uris_is_a_rewrite_no_byte_through_the_client(
        gs_pclient: objio.Client, gs_proxy: FaultProxy, prefix: str) -> None:
    data = bytes(range(256)) * 4096 + b"tail"
    gs_pclient.put_bytes(prefix + "src.bin", data)
    other = f"gs://{BUCKET}-2/{parse_uri(prefix).key}dst.bin"
    gs_pclient.create_bucket(f"gs://{BUCKET}-2", exist_ok=True)
    gs_proxy.clear()
    assert gs_pclient.copy(prefix + "src.bin", prefix + "dst.bin") == len(data)
    assert gs_pclient.copy(prefix + "src.bin", other) == len(data)  # another bucket
    assert [(r.method, _is_rewrite(r)) for r in gs_proxy.log] == \
        [("GET", False), ("POST", True)] * 2  # metadata, then the rewrite: no media GET
    assert all("alt" not in r.query for r in gs_proxy.log)
    gen = gs_pclient.stat(prefix + "src.bin").etag
    assert [r.query.get("ifSourceGenerationMatch") for r in gs_proxy.log if _is_rewrite(r)] \
        == [gen, gen]
    assert sum(len(r.body) for r in gs_proxy.log) < 100  # request bodies: "{}"
    assert bytes(gs_pclient.get(prefix + "dst.bin")) == data
    assert bytes(gs_pclient.get(other)) == data
    # copy_many with what a listing said (the generation): no metadata request first
    infos = gs_pclient.list_objects(prefix)
    gs_proxy.clear()
    n, nbytes = gs_pclient.copy_many([(prefix + "src.bin", prefix + "many.bin")],
                                  sources=[i for i in infos if i.key.endswith("src.bin")])
    assert (n, nbytes) == (1, len(data))
    assert [_is_rewrite(r) for r in gs_proxy.log] == [True]


def test_rewrite_follows_the_rewrite_token(gs_pclient: objio.Client, gs_proxy: FaultProxy,
                                           prefix: str) -> None:
    """Cloud Storage may answer a rewrite 'not done' with a token: sent again with it."""
    gs_pclient.put_bytes(prefix + "big", b"b" * 5000)
    calls: list[str | None] = []

    def partial(req: object) -> Response:
        calls.append(req.query.get("rewriteToken"))  # type: ignore[attr-defined]
        body = json.dumps({"kind": "storage#rewriteResponse", "totalBytesRewritten": "1000",
                           "objectSize": "5000", "done": False,
                           "rewriteToken": f"tok{len(calls)}"}).encode()
        return Response(200, "OK", [("Content-Type", "application/json")], body)

    gs_proxy.add(_is_rewrite, Forge(partial), times=2)
    assert gs_pclient.copy(prefix + "big", prefix + "big-copy") == 5000
    tokens = [r.query.get("rewriteToken") for r in gs_proxy.log if _is_rewrite(r)]
    assert tokens == [None, "tok1", "tok2"]
    assert bytes(gs_pclient.get(prefix + "big-copy")) == b"b" * 5000


def test_source_replaced_during_the_copy_is_copied_again(gs_pclient: objio.Client,
                                                         gs_proxy: FaultProxy,
                                                         prefix: str) -> None:
    """A 412 on ifSourceGenerationMatch (fake-gcs-server does not check it: forged here) starts
    the copy over once, from the source's current generation."""
    gs_pclient.put_bytes(prefix + "s", b"v1")
    old = gs_pclient.stat(prefix + "s").etag
    gs_pclient.put_bytes(prefix + "s", b"version two")
    stale = objio.ObjectInfo(parse_uri(prefix).key + "s", 2, 0.0, old)

    def refused(req: object) -> Response:
        return Response(412, "Precondition Failed", [("Content-Type", "application/json")],
                        json.dumps({"error": {"code": 412, "message": "Precondition Failed",
                                              "errors": [{"reason": "conditionNotMet"}]}})
                        .encode())

    gs_proxy.clear()
    gs_proxy.add(lambda r: _is_rewrite(r) and r.query.get("ifSourceGenerationMatch") == old,
                 Forge(refused), times=None)
    assert gs_pclient.copy_many([(prefix + "s", prefix + "d")], sources=[stale]) == (1, 11)
    assert bytes(gs_pclient.get(prefix + "d")) == b"version two"
    kinds = [("rewrite" if _is_rewrite(r) else r.method) for r in gs_proxy.log]
    assert kinds[:3] == ["rewrite", "GET", "rewrite"]


def test_copy_that_does_not_match_is_made_again_then_deleted(gs_pclient: objio.Client,
                                                             gs_proxy: FaultProxy,
                                                             prefix: str) -> None:
    gs_pclient.put_bytes(prefix + "s", b"source bytes")

    def bad_crc(req: object, resp: Response) -> Response:
        doc = json.loads(resp.body)
        doc["resource"]["crc32c"] = base64.b64encode(b"\0\0\0\0").decode()
        resp.body = json.dumps(doc).encode()
        return resp

    gs_proxy.add(_is_rewrite, Rewrite(bad_crc), times=1)  # once: copied again, fine
    assert gs_pclient.copy(prefix + "s", prefix + "d1") == 12
    assert sum(1 for r in gs_proxy.log if _is_rewrite(r)) == 2
    gs_proxy.clear()
    gs_proxy.add(_is_rewrite, Rewrite(bad_crc), times=None)
    with pytest.raises(objio.IntegrityError, match=r"made twice.*CRC32C.*copy was deleted"):
        gs_pclient.copy(prefix + "s", prefix + "d2")
    gs_proxy.clear()
    assert not gs_pclient.exists(prefix + "d2")


def test_cli_cp_mv_sync_between_gs_uris_copy_server_side(
        gcs_server: LocalGCSServer, gs_proxy: FaultProxy, gs_client: objio.Client,
        prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    gs_client.put_many([(f"{prefix}in/f{i}", f"file {i}".encode()) for i in range(3)])
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gs_proxy.endpoint_url.split("://")[1])
    gs_proxy.clear()
    assert main(["cp", "-r", prefix + "in/", prefix + "cp/", "-q"]) == 0
    assert main(["sync", prefix + "in/", prefix + "sync/", "-q"]) == 0
    assert main(["mv", prefix + "in/f0", prefix + "mv/f0", "-q"]) == 0
    log = list(gs_proxy.log)
    gs_proxy.clear()
    assert not [r for r in log if r.query.get("alt") == "media"]  # no byte read
    assert not [r for r in log if "uploadType" in r.query]  # no byte written
    assert sum(1 for r in log if _is_rewrite(r)) == 7
    base = parse_uri(prefix).key
    assert sorted(gs_client.list(prefix)) == sorted(
        [f"{base}cp/f{i}" for i in range(3)] + [f"{base}sync/f{i}" for i in range(3)]
        + [f"{base}in/f1", f"{base}in/f2", f"{base}mv/f0"])
    assert bytes(gs_client.get(prefix + "mv/f0")) == b"file 0"


def test_mv_keeps_the_source_when_the_copy_fails(gcs_server: LocalGCSServer,
                                                 gs_proxy: FaultProxy,
                                                 gs_client: objio.Client, prefix: str,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    gs_client.put_bytes(prefix + "keep", b"precious")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gs_proxy.endpoint_url.split("://")[1])
    monkeypatch.setenv("OBJIO_MAX_ATTEMPTS", "1")
    gs_proxy.clear()
    gs_proxy.add(_is_rewrite, Forge(lambda r: Response(
        403, "Forbidden", [("Content-Type", "application/json")],
        b'{"error":{"code":403,"message":"denied","errors":[{"reason":"forbidden"}]}}')),
        times=None)
    try:
        assert main(["mv", prefix + "keep", prefix + "moved", "-q"]) != 0
    finally:
        gs_proxy.clear()
    assert bytes(gs_client.get(prefix + "keep")) == b"precious"
    assert not gs_client.exists(prefix + "moved")


# ------------------------------------------------------------------------------ incomplete uploads
def test_incomplete_composite_uploads_are_listed_and_aborted(
        gcs_server: LocalGCSServer, gs_client: objio.Client, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from objio.gcs.backend import UPLOADS_PREFIX

    bucket = f"gs://up-{uuid.uuid4().hex[:8]}"
    gs_client.create_bucket(bucket)
    backend = engine.backend_for(parse_uri(bucket + "/x"), gs_client.config)
    started = {}
    for key in ("a/x.bin", "b/ü y.bin"):
        obj = parse_uri(f"{bucket}/{key}")
        uid = engine.run(backend.create_multipart(obj))
        for n in (1, 2):
            engine.run(backend.upload_part(obj, uid, n, b"p" * 100))
        started[key] = uid
    legacy = uuid.uuid4().hex  # parts that do not name their destination
    gs_client.put_bytes(f"{bucket}/{UPLOADS_PREFIX}{legacy}/00001", b"old part")
    with objio.open(f"{bucket}/a/done.bin", "wb", client=gs_client, part_size=1000) as w:
        w.write(b"d" * 3000)  # a completed composite upload leaves nothing to list
    gs_client.put_bytes(f"{bucket}/a/plain.bin", b"plain")

    assert sorted(gs_client.list_multipart_uploads(bucket + "/")) == sorted(
        [("a/x.bin", started["a/x.bin"]), ("b/ü y.bin", started["b/ü y.bin"]), ("", legacy)])
    assert gs_client.list_multipart_uploads(bucket + "/a/") == [("a/x.bin", started["a/x.bin"])]
    assert gs_client.abort_multipart_uploads(bucket + "/a/", older_than_s=3600) == 0
    assert gs_client.abort_multipart_uploads(bucket + "/a/", dry_run=True) == 1
    assert len(gs_client.list(f"{bucket}/{UPLOADS_PREFIX}")) == 5
    assert gs_client.abort_multipart_uploads(bucket + "/a/") == 1
    assert [k.split("/")[1] for k in gs_client.list(f"{bucket}/{UPLOADS_PREFIX}")] == \
        sorted([started["b/ü y.bin"]] * 2 + [legacy])

    for k, v in gcs_server.environ().items():
        monkeypatch.setenv(k, v)
    assert main(["rm", "--incomplete-uploads", bucket + "/", "--older-than", "1h"]) == 0
    assert "aborted 0" in capsys.readouterr().out
    assert main(["rm", "--incomplete-uploads", bucket + "/"]) == 0
    out = capsys.readouterr().out
    assert f"abort: {bucket}/b/ü y.bin (upload {started['b/ü y.bin']})" in out
    assert f"abort: {bucket}/(destination not recorded) (upload {legacy})" in out
    assert "aborted 2 incomplete" in out
    assert gs_client.list(bucket + "/") == ["a/done.bin", "a/plain.bin"]
    assert bytes(gs_client.get(f"{bucket}/a/done.bin")) == b"d" * 3000


# ------------------------------------------------------------------------------ FastList
_ODD = ["a-b", "a/x", "a/y", "a0", "a.b", "a!", "a~", "é-", "é/1", "日本/1", "日本-x", "sp ace",
        "plus+sign", "pct%20", "q?r", "0!", "0/1", "0.", "z/y/x", "big-", "big!"]


@pytest.fixture(scope="module")
def big_gs_prefix(gs_client: objio.Client) -> str:
    """2,500 keys: 2,400 under big/ (skewed as a whole), and keys that sort before and after
    '/' and unicode ones."""
    prefix = f"gs://{BUCKET}/fast-{uuid.uuid4().hex[:8]}/"
    keys = [f"big/{i:05d}" for i in range(2400)] + _ODD
    keys += [f"{c}{i}" for i, c in zip(range(100 - len(_ODD)), "bcdxyzBCDXYZ-._~" * 10,
                                         strict=False)]
    gs_client.put_many(((prefix + k, b"") for k in keys), max_in_flight=32)
    return prefix


def test_fastlist_on_gs_splits_with_start_offset_and_equals_the_sequential_listing(
        gs_client: objio.Client, big_gs_prefix: str, gs_proxy: FaultProxy,
        gcs_server: LocalGCSServer) -> None:
    from objio import fastlist

    seq = gs_client.list_objects(big_gs_prefix)
    assert len(seq) == 2500
    assert gs_client.list_objects(big_gs_prefix, fast=True) == seq  # keys, sizes, generations
    c = objio.Client(gcs_server.config.replace(gcs_endpoint_url=gs_proxy.endpoint_url))
    obj = parse_uri(big_gs_prefix)
    for page_size in (1000, 97):
        stats: dict[str, object] = {}
        gs_proxy.clear()
        got = engine.run(fastlist.list_fast(c._backend(obj), obj.with_key(""), obj.key,
                                            max_in_flight=16, page_size=page_size,
                                            stats=stats))
        assert [i.key for i in got] == [i.key for i in seq]
        # split into ranges listed side by side: ranges start with startOffset
        assert stats["order"] == "bytes"
        assert stats["requests"] > -(-2500 // page_size)
        assert sum(1 for r in gs_proxy.log if "startOffset" in r.query) > 1
    gs_proxy.clear()


def test_objio_ls_fast_gs(gs_proxy: FaultProxy, big_gs_prefix: str,
                          monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gs_proxy.endpoint_url.split("://")[1])
    gs_proxy.clear()
    assert main(["ls", "-r", big_gs_prefix]) == 0
    seq = capsys.readouterr().out.splitlines()
    assert [r.query.get("startOffset") for r in gs_proxy.log] == [None] * 3  # 3 pages
    gs_proxy.clear()
    assert main(["ls", "-r", "--fast", big_gs_prefix]) == 0
    assert capsys.readouterr().out.splitlines() == seq
    assert len(seq) == 2500
    assert sum(1 for r in gs_proxy.log if "startOffset" in r.query) > 1
    gs_proxy.clear()
