"""Protocol errors become the right Python exceptions (pure logic)."""

from __future__ import annotations

import pickle

import pytest

import objio
from objio.errors import error_from_response

BODY = b"<Error><Code>{code}</Code><Message>msg here</Message></Error>"


@pytest.mark.parametrize("status,code,exc", [
    (404, "NoSuchKey", FileNotFoundError), (404, "NoSuchBucket", FileNotFoundError),
    (403, "AccessDenied", PermissionError), (403, "SignatureDoesNotMatch", PermissionError),
    (403, "InvalidAccessKeyId", PermissionError), (412, "PreconditionFailed", FileExistsError),
    (409, "BucketAlreadyOwnedByYou", FileExistsError), (503, "SlowDown", objio.ObjectStoreError),
    (400, "InvalidArgument", objio.ObjectStoreError),
])
def test_mapping(status: int, code: str, exc: type) -> None:
    e = error_from_response("GetObject", "s3://b/k", status, BODY.replace(b"{code}", code.encode()))
    assert isinstance(e, exc) and isinstance(e, objio.ObjectStoreError) and isinstance(e, OSError)
    assert (e.operation, e.uri, e.status, e.code) == ("GetObject", "s3://b/k", status, code)
    assert "s3://b/k" in str(e) and code in str(e) and "msg here" in str(e)


def test_retryable_classification() -> None:
    assert error_from_response("GetObject", "u", 503, BODY.replace(b"{code}", b"SlowDown")).retryable
    assert error_from_response("GetObject", "u", 500, b"").retryable
    assert error_from_response("GetObject", "u", 429, b"").retryable
    assert not error_from_response("GetObject", "u", 400, b"").retryable
    assert not error_from_response("GetObject", "u", 403, b"").retryable


def test_bodyless_head_errors_are_named() -> None:
    e = error_from_response("HeadObject", "s3://b/k", 404)
    assert isinstance(e, FileNotFoundError) and e.code == "NotFound"
    assert str(e) == "HeadObject s3://b/k failed: NotFound: no such object or bucket (HTTP 404)"
    assert isinstance(error_from_response("HeadObject", "s3://b/k", 403), PermissionError)


def test_errors_pickle_with_their_attributes() -> None:
    e = error_from_response("GetObject", "s3://b/k", 404, BODY.replace(b"{code}", b"NoSuchKey"))
    e2 = pickle.loads(pickle.dumps(e))
    assert type(e2) is type(e) and (e2.code, e2.status, e2.uri, str(e2)) == (e.code, e.status, e.uri, str(e))
