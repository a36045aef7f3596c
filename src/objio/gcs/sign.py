"""V4 signed URLs for Cloud Storage (``objio presign gs://...``): Google's documented V4
signing process for the XML API with an RSA key (``GOOG4-RSA-SHA256``), the gs:// twin of
SigV4 query authorization on S3.

The URL is path-style, ``https://<host>/<bucket>/<object>``, the object name percent-encoded
(every byte but ``A-Z a-z 0-9 - _ . ~`` and ``/``). Its query carries ``X-Goog-Algorithm``,
``X-Goog-Credential`` (``<signer email>/<YYYYMMDD>/auto/storage/goog4_request``),
``X-Goog-Date`` (``YYYYMMDDTHHMMSSZ``, UTC), ``X-Goog-Expires`` (seconds, at most 604800),
``X-Goog-SignedHeaders=host`` and ``X-Goog-Signature``: the hex RSA-SHA256 signature of the
string to sign

.. code-block:: text

    GOOG4-RSA-SHA256
    <X-Goog-Date>
    <YYYYMMDD>/auto/storage/goog4_request
    <hex SHA-256 of the canonical request>

where the canonical request is the method, the path, the query (every parameter but the
signature, sorted, names and values percent-encoded), ``host:<host>``, an empty line,
``host`` and ``UNSIGNED-PAYLOAD``, joined by newlines. The signature is made by the
credentials' own signer (google-auth's ``Signing`` interface: a service account's private
key; no request is sent), or, for credentials that hold no key but name a service account (the
GCE/GKE metadata server's), by the IAM Credentials API's ``signBlob`` for that service account
(google-auth's ``google.auth.iam.Signer``: one request; the account needs
``iam.serviceAccounts.signBlob`` on itself, e.g. the role Service Account Token Creator), as
google-cloud-storage's ``generate_signed_url`` does with ``service_account_email``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from typing import Any
from urllib.parse import quote

ALGORITHM = "GOOG4-RSA-SHA256"
#: The longest validity of a V4 signed URL (Google's limit: 7 days), in seconds.
MAX_EXPIRES_S = 604800


def _enc(text: str, safe: str = "~") -> str:
    return quote(text, safe=safe)


def canonical_query(params: dict[str, str]) -> str:
    """The query string of the canonical request (and of the URL): sorted by name, names
    and values percent-encoded (``~`` kept)."""
    return "&".join(f"{_enc(k)}={_enc(v)}" for k, v in sorted(params.items()))


def string_to_sign(method: str, host: str, path: str, params: dict[str, str],
                   stamp: str) -> str:
    """The string to sign of a V4 signed URL (see the module docstring): ``path`` encoded
    already, ``params`` without ``X-Goog-Signature``, ``stamp`` the ``X-Goog-Date``."""
    request = "\n".join([method, path, canonical_query(params), f"host:{host}\n", "host",
                         "UNSIGNED-PAYLOAD"])
    scope = f"{stamp[:8]}/auto/storage/goog4_request"
    return "\n".join([ALGORITHM, stamp, scope,
                      hashlib.sha256(request.encode()).hexdigest()])


def signer_of(credentials: Any, what: str, token: Any = None) -> tuple[str, Any]:
    """(signer email, ``sign(bytes) -> bytes``) of google-auth ``credentials``: their own key
    (``sign_bytes``), else, given their :class:`objio.gcs.auth.Token`, the IAM Credentials
    API's signBlob for the service account they name (``service_account_email``; the token
    is brought up to date first: IAM is called with it, and on GCE its refresh is what
    resolves ``default`` to the account's address).

    Raises:
        ValueError: they cannot sign (anonymous, user credentials from ``gcloud auth
            application-default login``, no service account named): the message says what
            can.
        PermissionError: no token could be had for IAM.
    """
    email = getattr(credentials, "signer_email", None)
    sign = getattr(credentials, "sign_bytes", None)
    if email and sign is not None:
        return str(email), sign
    if token is not None and getattr(credentials, "service_account_email", None):
        token.header()
        account = credentials.service_account_email
        if account and account != "default":
            return str(account), _iam_signer(token.request, credentials, str(account), what)
    kind = "no credentials (anonymous)" if credentials is None else \
        f"credentials of type {type(credentials).__name__}, which hold no private key " \
        "and name no service account"
    raise ValueError(
        f"{what} needs credentials that can sign: a service account's key file "
        "(gcs_credentials=<path>, OBJIO_GCS_CREDENTIALS or GOOGLE_APPLICATION_CREDENTIALS), "
        "or a service account's credentials from the metadata server (signed through IAM "
        f"signBlob); this client has {kind}")


def _iam_signer(request: Any, credentials: Any, account: str, what: str) -> Any:
    """``sign(bytes) -> bytes`` through IAM signBlob as ``account`` (blocking: one request).
    A refusal raises PermissionError naming the permission needed."""
    from google.auth import exceptions, iam

    signer = iam.Signer(request, credentials, account)

    def sign(message: bytes) -> bytes:
        try:
            return bytes(signer.sign(message))
        except exceptions.GoogleAuthError as e:
            raise PermissionError(
                f"{what}: the IAM signBlob API refused to sign as {account}: {e} (the service "
                "account needs iam.serviceAccounts.signBlob on itself, e.g. the role "
                "roles/iam.serviceAccountTokenCreator)") from None

    return sign


def signed_url(credentials: Any, method: str, scheme: str, host: str, bucket: str,
               key: str, expires_s: int, *, base_path: str = "",
               now: _dt.datetime | None = None, token: Any = None) -> str:
    """A V4 signed URL for ``method`` on ``bucket``/``key`` at ``scheme://host``, valid
    ``expires_s`` seconds from ``now`` (default: the current UTC time). ``token``: the
    credentials' :class:`objio.gcs.auth.Token`, for IAM signBlob when they hold no key.

    Raises:
        ValueError: credentials that cannot sign (:func:`signer_of`), ``expires_s`` out of
            1..604800.
        PermissionError: no token for IAM, or IAM signBlob refused.
    """
    if not 1 <= expires_s <= MAX_EXPIRES_S:
        raise ValueError(f"expires_s must be 1 to {MAX_EXPIRES_S} seconds, got {expires_s!r}")
    email, sign = signer_of(credentials, f"presign gs://{bucket}/{key}", token)
    when = (now or _dt.datetime.now(_dt.timezone.utc)).astimezone(_dt.timezone.utc)
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    path = f"{base_path}/{_enc(bucket)}/{_enc(key, safe='/~')}"
    params = {"X-Goog-Algorithm": ALGORITHM,
              "X-Goog-Credential": f"{email}/{stamp[:8]}/auto/storage/goog4_request",
              "X-Goog-Date": stamp, "X-Goog-Expires": str(expires_s),
              "X-Goog-SignedHeaders": "host"}
    signature = sign(string_to_sign(method, host, path, params, stamp).encode()).hex()
    return f"{scheme}://{host}{path}?{canonical_query(params)}&X-Goog-Signature={signature}"
