"""Azure Blob Storage authentication: SharedKey signing (account key), SAS tokens, and bearer
tokens from azure-identity's ``DefaultAzureCredential`` (only when that package is installed).

SharedKey follows "Authorize with Shared Key" of the Azure Storage REST API (the string to sign
of service versions 2015-02-21 and later: an empty Content-Length for a body of 0 bytes).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from email.utils import formatdate
from typing import Any, Sequence
from urllib.parse import unquote

#: The Blob service REST API version objio speaks (sent as ``x-ms-version``).
API_VERSION = "2023-11-03"

_SIGNED = ("content-encoding", "content-language", "content-length", "content-md5",
           "content-type", "date", "if-modified-since", "if-match", "if-none-match",
           "if-unmodified-since", "range")


class SharedKey:
    """Signs requests with a storage account's key (``Authorization: SharedKey account:sig``).

    Args:
        account: the storage account name.
        key: the account key, base64 as the portal gives it (never shown by ``repr()``).

    Raises:
        ValueError: the key is not base64 (the message does not hold it).
    """

    def __init__(self, account: str, key: str) -> None:
        self.account = account
        try:
            self._key = base64.b64decode(key, validate=True)
        except (ValueError, TypeError):
            raise ValueError(f"the account key of the Azure storage account {account!r} is "
                             "not valid base64") from None
        # HMAC-SHA256 (RFC 2104) with the key's inner and outer pads hashed once: each
        # signature copies two SHA-256 states instead of setting up an HMAC from the key
        # (OpenSSL's one-shot HMAC looks the algorithm up on every call: ~3x the time here,
        # in the middle of a busy event loop)
        block = self._key if len(self._key) <= 64 else hashlib.sha256(self._key).digest()
        block = block.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
        self._resource_prefix = f"/{account}"

    def __repr__(self) -> str:
        return f"SharedKey(account={self.account!r})"

    def string_to_sign(self, method: str, path: str, query: Sequence[tuple[str, str]],
                       headers: dict[str, str]) -> str:
        """The string a request's signature is the HMAC-SHA256 of. ``path``: the request
        path as sent (percent-encoded); ``query``: its parameters, not encoded; ``headers``:
        lower-case names (``content-length`` as it will be sent)."""
        get = headers.get
        values = [method, *[get(name, "") for name in _SIGNED]]
        if values[3] == "0":  # content-length
            values[3] = ""
        ms = sorted(k for k in headers if k.startswith("x-ms-"))
        canon_headers = "".join([f"{k}:{' '.join(headers[k].split())}\n" for k in ms])
        resource = self._resource_prefix + path
        if query:
            grouped: dict[str, list[str]] = {}
            for k, v in query:
                grouped.setdefault(k.lower(), []).append(unquote(v))
            resource += "".join(f"\n{k}:{','.join(sorted(vs))}"
                                for k, vs in sorted(grouped.items()))
        return "\n".join(values) + "\n" + canon_headers + resource

    def blob_sas(self, container: str, blob: str, permissions: str, expires_s: int,
                 now: float | None = None) -> list[tuple[str, str]]:
        """A service SAS for one blob, signed with the account key ("Create a service SAS",
        signed version :data:`API_VERSION`, the string to sign of versions 2020-12-06 and
        later): the query parameters (not encoded) that grant ``permissions`` (``"r"`` read,
        ``"cw"`` create and write, ...) on ``container/blob`` until ``expires_s`` seconds
        after ``now`` (epoch seconds; default: the current time). No start time (``st``):
        the grant is valid at once, whatever the clock skew between client and service."""
        expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                               time.gmtime((time.time() if now is None else now) + expires_s))
        resource = f"/blob/{self.account}/{container}/{blob}"
        # sp, st, se, canonical resource, si, sip, spr, sv, sr, snapshot time, encryption
        # scope, rscc, rscd, rsce, rscl, rsct
        text = "\n".join([permissions, "", expiry, resource, "", "", "", API_VERSION, "b",
                          "", "", "", "", "", "", ""])
        sig = self._hmac_b64(text.encode("utf-8"))
        return [("sv", API_VERSION), ("sr", "b"), ("sp", permissions), ("se", expiry),
                ("sig", sig)]

    def sign(self, method: str, path: str, query: Sequence[tuple[str, str]],
             headers: dict[str, str]) -> None:
        """Add ``authorization`` to ``headers`` (which must already hold ``x-ms-date`` and
        ``x-ms-version``)."""
        headers["authorization"] = f"SharedKey {self.account}:" + self._hmac_b64(
            self.string_to_sign(method, path, query, headers).encode("utf-8"))

    def _hmac_b64(self, message: bytes) -> str:
        """Base64 of HMAC-SHA256(account key, ``message``)."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return binascii.b2a_base64(outer.digest(), newline=False).decode("ascii")


class BearerToken:
    """OAuth bearer tokens for ``https://storage.azure.com`` from azure-identity's
    ``DefaultAzureCredential`` (environment, workload identity, managed identity, Azure CLI,
    ...), fetched when first needed and again five minutes before they expire.

    Raises (at construction): ImportError when azure-identity is not installed."""

    SCOPE = "https://storage.azure.com/.default"

    def __init__(self, credential: Any = None) -> None:
        if credential is None:
            from azure.identity import DefaultAzureCredential  # optional extra

            credential = DefaultAzureCredential()
        self._credential = credential
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "BearerToken(DefaultAzureCredential)"

    def header(self) -> str:
        """``Bearer <token>`` (blocking when a new token is fetched: call from a thread)."""
        with self._lock:
            if self._token is None or time.time() > self._expires - 300:
                t = self._credential.get_token(self.SCOPE)
                self._token, self._expires = t.token, float(t.expires_on)
            return f"Bearer {self._token}"

    @property
    def fresh(self) -> bool:
        """Whether the cached token can be used without fetching a new one."""
        return self._token is not None and time.time() <= self._expires - 300


_date_cache: list[Any] = [0, ""]


def http_date() -> str:
    """The current time as an RFC 1123 date (``x-ms-date``), computed once per second."""
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0], _date_cache[1] = now, formatdate(now, usegmt=True)
    return str(_date_cache[1])
