"""SigV4 checked against botocore's signer as an independent oracle: same request, same
credentials, same time -> same canonical path and same signature."""

from __future__ import annotations

import datetime
import hashlib
from unittest import mock

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials as BotoCredentials
from botocore.utils import percent_encode

from objio.s3.sigv4 import (
    EMPTY_SHA256,
    UNSIGNED_PAYLOAD,
    Credentials,
    SigV4Signer,
    canonical_query,
    uri_encode_path,
)

KEYS = ["plain/key.bin", "with space/a b.txt", "uni/ü日本.npz", "plus+sign", "pct%41", "eq=a=b",
        "tilde~x", "deep/a/b/c/", "star*and(paren)!", "semi;colon:at@comma,"]
WHEN = datetime.datetime(2026, 11, 24, 12, 34, 56)


def _botocore_auth(method: str, url: str, headers: dict[str, str], creds: Credentials,
                   payload_hash: str, body: bytes = b"") -> str:
    req = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    req.context["client_config"] = Config(
        s3={"payload_signing_enabled": payload_hash != UNSIGNED_PAYLOAD})
    auth = S3SigV4Auth(BotoCredentials(creds.access_key_id, creds.secret_access_key,
                                       creds.session_token), "s3", "eu-west-1")
    with mock.patch("botocore.auth.get_current_datetime", return_value=WHEN):
        auth.add_auth(req)
    return str(req.headers["Authorization"])


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("token", [None, "session-token/+="])
def test_signature_matches_botocore(key: str, token: str | None) -> None:
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    path = f"/my-bucket/{key}"
    encoded = uri_encode_path(path)
    assert encoded == percent_encode(path, safe="/~")  # botocore's own key encoding
    query = canonical_query([("partNumber", "3"), ("uploadId", "a/b+c=d"), ("uploads", "")])
    headers = {"range": "bytes=0-99"}
    ours = SigV4Signer("eu-west-1").sign("PUT", "s3.example.com:9000", encoded, query,
                                         dict(headers), UNSIGNED_PAYLOAD, creds,
                                         WHEN.strftime("%Y%m%dT%H%M%SZ"))
    theirs = _botocore_auth("PUT", f"https://s3.example.com:9000{encoded}?{query}",
                            {"Range": "bytes=0-99"}, creds, UNSIGNED_PAYLOAD)
    assert ours["authorization"] == theirs


def test_signed_payload_matches_botocore() -> None:
    creds = Credentials("AKID", "secret")
    body = b"hello world" * 100
    h = hashlib.sha256(body).hexdigest()
    ours = SigV4Signer("eu-west-1").sign("PUT", "h", "/b/k", "", {}, h, creds,
                                         WHEN.strftime("%Y%m%dT%H%M%SZ"))
    assert ours["authorization"] == _botocore_auth("PUT", "https://h/b/k", {}, creds, h, body)
    ours = SigV4Signer("eu-west-1").sign("GET", "h", "/b", "list-type=2&prefix=a%2Fb", {},
                                         EMPTY_SHA256, creds, WHEN.strftime("%Y%m%dT%H%M%SZ"))
    assert ours["authorization"] == _botocore_auth(
        "GET", "https://h/b?list-type=2&prefix=a%2Fb", {}, creds, EMPTY_SHA256)


def test_canonical_query_sorted_and_encoded() -> None:
    assert canonical_query([("prefix", "a b/c"), ("list-type", "2"), ("delimiter", "/")]) == \
        "delimiter=%2F&list-type=2&prefix=a%20b%2Fc"


def test_credentials_repr_hides_secret() -> None:
    assert "s3cr3t" not in repr(Credentials("AKID", "s3cr3t", "tok"))
