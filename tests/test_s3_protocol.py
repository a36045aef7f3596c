"""S3 protocol details: addressing styles, credential chain, listing parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

import objio
from objio import engine
from objio.config import ClientConfig
from objio.s3 import S3Backend
from objio.server import LocalS3Server
from objio.uri import parse_uri


def _backend(**kw: object) -> S3Backend:
    cfg = ClientConfig(access_key_id="AKID", secret_access_key="secret", **kw).resolved({})  # type: ignore[arg-type]
    return S3Backend(cfg)


def test_virtual_hosted_addressing_for_aws() -> None:
    b = _backend(region="eu-west-1")
    host, target, hdrs = b._prepare("GET", "my-bucket", "a b/ü.npz")
    assert host == "my-bucket.s3.eu-west-1.amazonaws.com"
    assert target == "/a%20b/%C3%BC.npz"
    assert hdrs["host"] == host and "Credential=AKID/" in hdrs["authorization"]
    # bucket-level requests address the bucket host's root
    host, target, _ = b._prepare("GET", "my-bucket", None, [("list-type", "2")])
    assert (host, target) == ("my-bucket.s3.eu-west-1.amazonaws.com", "/?list-type=2")


def test_path_style_for_custom_endpoints_and_dotted_buckets() -> None:
    b = _backend(endpoint_url="http://127.0.0.1:9000/base")
    host, target, _ = b._prepare("GET", "bkt", "k+1")
    assert (host, target) == ("127.0.0.1:9000", "/base/bkt/k%2B1")
    b = _backend(region="us-east-1")
    host, target, _ = b._prepare("GET", "my.dotted.bucket", "k")
    assert (host, target) == ("s3.us-east-1.amazonaws.com", "/my.dotted.bucket/k")
    b = _backend(endpoint_url="https://minio.example:9000", force_path_style=False)
    assert b._prepare("GET", "bkt", "k")[0] == "bkt.minio.example:9000"


def test_unsigned_requests_carry_no_authorization() -> None:
    b = S3Backend(ClientConfig(unsigned=True).resolved({}))
    _, _, hdrs = b._prepare("GET", "bkt", "k")
    assert "authorization" not in hdrs and hdrs["host"]


def test_session_token_header() -> None:
    b = _backend(session_token="tok")
    assert b._prepare("GET", "bkt", "k")[2]["x-amz-security-token"] == "tok"


def test_credentials_from_a_botocore_profile(s3_server: LocalS3Server, client: objio.Client,
                                             prefix: str, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    creds = tmp_path / "credentials"
    creds.write_text(f"[bench]\naws_access_key_id = {s3_server.access_key_id}\n"
                     f"aws_secret_access_key = {s3_server.secret_access_key}\n")
    for v in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client.put_bytes(prefix + "p", b"profile")
    c = objio.Client(endpoint_url=s3_server.endpoint_url, profile="bench")
    assert bytes(c.get(prefix + "p")) == b"profile"


def test_list_delimiter_and_start_after(client: objio.Client, prefix: str) -> None:
    for k in ["a/1", "a/2", "b/1", "c", "d"]:
        client.put_bytes(prefix + k, b"")
    obj = parse_uri(prefix)
    backend = engine.backend_for(obj, client.config)
    base = obj.key

    async def collect(**kw: object) -> tuple[list[str], list[str]]:
        keys: list[str] = []
        prefixes: list[str] = []
        async for page in backend.list_pages(obj.with_key(""), base, **kw):  # type: ignore[arg-type]
            keys += [o.key[len(base):] for o in page.objects]
            prefixes += [p[len(base):] for p in page.prefixes]
        return keys, prefixes

    assert engine.run(collect(delimiter="/")) == (["c", "d"], ["a/", "b/"])
    assert engine.run(collect(start_after=base + "b/1")) == (["c", "d"], [])
    assert engine.run(collect(page_size=2)) == (["a/1", "a/2", "b/1", "c", "d"], [])
    assert [i.key[len(base):] for i in client.list_objects(prefix, recursive=False)] == ["c", "d"]
