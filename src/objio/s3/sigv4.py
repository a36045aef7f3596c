"""AWS Signature Version 4 for S3 (header authorization, and query authorization for
presigned URLs).

Implements the algorithm of the AWS documentation "Signature Version 4 signing process":
canonical request -> string to sign -> HMAC-SHA256 with a key derived from the secret, date,
region and service. S3 specifics: the canonical URI is URI-encoded once (``/`` kept), and the
payload hash is either ``UNSIGNED-PAYLOAD`` or the hex SHA-256 of the body
(``x-amz-content-sha256``). Checked against botocore's signer in the tests.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Iterable, NamedTuple
from urllib.parse import quote

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


class Credentials(NamedTuple):
    """A static credential set. ``session_token`` is None for long-term keys."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:  # never show secrets
        return f"Credentials(access_key_id={self.access_key_id!r}, secret_access_key='***')"


def uri_encode_path(path: str) -> str:
    """SigV4 URI-encode a path: every byte but ``A-Za-z0-9-_.~/`` as %XX of its UTF-8."""
    return quote(path, safe="/~")


def uri_encode(value: str) -> str:
    """SigV4 URI-encode a query key or value (``/`` encoded too)."""
    return quote(value, safe="~")


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    """Sorted, encoded ``k=v&...`` (also the query string we send, so both always agree)."""
    enc = sorted((uri_encode(k), uri_encode(v)) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in enc)


_date_cache: tuple[int, str] = (-1, "")


def amz_date(now: float | None = None) -> str:
    """``YYYYMMDD'T'HHMMSS'Z'`` in UTC (cached per second: called for every request)."""
    global _date_cache
    sec = int(time.time() if now is None else now)
    cached = _date_cache
    if cached[0] == sec:
        return cached[1]
    text = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(sec))
    _date_cache = (sec, text)
    return text


class SigV4Signer:
    """Signs S3 requests for one region. Derived signing keys are cached per day."""

    def __init__(self, region: str, service: str = "s3") -> None:
        self.region = region
        self.service = service
        self._key_cache: tuple[str, str, bytes] | None = None  # (secret, date, key)

    def _signing_key(self, secret: str, date: str) -> bytes:
        cached = self._key_cache
        if cached is not None and cached[0] == secret and cached[1] == date:
            return cached[2]
        k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
        k = hmac.new(k, self.region.encode(), hashlib.sha256).digest()
        k = hmac.new(k, self.service.encode(), hashlib.sha256).digest()
        k = hmac.new(k, b"aws4_request", hashlib.sha256).digest()
        self._key_cache = (secret, date, k)
        return k

    def sign(
        self,
        method: str,
        host: str,
        encoded_path: str,
        query: str,
        headers: dict[str, str],
        payload_hash: str,
        creds: Credentials,
        timestamp: str | None = None,
    ) -> dict[str, str]:
        """Add the SigV4 headers to ``headers`` (in place) and return it.

        Args:
            method: HTTP method.
            host: the Host header value (``host`` or ``host:port``).
            encoded_path: the path, already encoded with :func:`uri_encode_path`.
            query: the canonical query string (:func:`canonical_query`).
            headers: extra headers to send and sign, lower-case names.
            payload_hash: ``UNSIGNED-PAYLOAD`` or the hex SHA-256 of the body.
            creds: the credentials.
            timestamp: ``amz_date()`` value; now when None.
        """
        ts = timestamp or amz_date()
        date = ts[:8]
        headers["host"] = host
        headers["x-amz-date"] = ts
        headers["x-amz-content-sha256"] = payload_hash
        if creds.session_token:
            headers["x-amz-security-token"] = creds.session_token
        names = sorted(headers)
        canonical_headers = "".join(f"{n}:{' '.join(headers[n].split())}\n" for n in names)
        signed_headers = ";".join(names)
        creq = "\n".join(
            (method, encoded_path, query, canonical_headers, signed_headers, payload_hash)
        )
        scope = f"{date}/{self.region}/{self.service}/aws4_request"
        sts = "\n".join(
            ("AWS4-HMAC-SHA256", ts, scope, hashlib.sha256(creq.encode()).hexdigest())
        )
        sig = hmac.digest(self._signing_key(creds.secret_access_key, date), sts.encode(),
                          "sha256").hex()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={creds.access_key_id}/{scope}, "
            f"SignedHeaders={signed_headers}, Signature={sig}"
        )
        return headers

    def presign(self, method: str, host: str, encoded_path: str, params: list[tuple[str, str]],
                creds: Credentials, expires_s: int, timestamp: str | None = None) -> str:
        """The query string of a presigned URL (SigV4 query authorization: the
        ``X-Amz-Algorithm``, ``X-Amz-Credential``, ``X-Amz-Date``, ``X-Amz-Expires``,
        ``X-Amz-SignedHeaders=host`` parameters, ``X-Amz-Security-Token`` for temporary
        credentials, and ``X-Amz-Signature`` over an ``UNSIGNED-PAYLOAD`` canonical request)."""
        ts = timestamp or amz_date()
        date = ts[:8]
        scope = f"{date}/{self.region}/{self.service}/aws4_request"
        q = list(params) + [
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Credential", f"{creds.access_key_id}/{scope}"),
            ("X-Amz-Date", ts),
            ("X-Amz-Expires", str(expires_s)),
            ("X-Amz-SignedHeaders", "host"),
        ]
        if creds.session_token:
            q.append(("X-Amz-Security-Token", creds.session_token))
        query = canonical_query(q)
        creq = "\n".join((method, encoded_path, query, f"host:{host}\n", "host",
                          UNSIGNED_PAYLOAD))
        sts = "\n".join(
            ("AWS4-HMAC-SHA256", ts, scope, hashlib.sha256(creq.encode()).hexdigest())
        )
        sig = hmac.digest(self._signing_key(creds.secret_access_key, date), sts.encode(),
                          "sha256").hex()
        return f"{query}&X-Amz-Signature={sig}"
