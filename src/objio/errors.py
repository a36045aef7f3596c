"""Exceptions, and the one place where protocol errors become Python exceptions.

| situation                                   | exception                                              |
|---------------------------------------------|--------------------------------------------------------|
| object or bucket does not exist             | ``FileNotFoundError`` (``objio.NotFoundError``)        |
| credentials rejected, access denied         | ``PermissionError`` (``objio.AccessDeniedError``)      |
| object exists where it must not / precondition | ``FileExistsError`` (``objio.AlreadyExistsError``)  |
| timeout after retries                       | ``TimeoutError`` (``objio.ObjectTimeoutError``)        |
| bytes that do not match their checksum      | ``objio.IntegrityError`` (an ``ObjectStoreError`` and a ``ValueError``) |
| anything else from the store                | ``objio.ObjectStoreError`` (an ``OSError``)            |

Every error carries ``operation``, ``uri``, ``status`` (HTTP status or None) and ``code`` (the S3
error code such as ``NoSuchKey``, or None). Messages never contain credentials.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "ObjectStoreError",
    "NotFoundError",
    "AccessDeniedError",
    "AlreadyExistsError",
    "ObjectTimeoutError",
    "IntegrityError",
    "error_from_response",
    "gcs_error_from_response",
    "may_be_checksum_refusal",
    "retryable_code",
    "DeleteError",
    "EndpointUnreachableError",
    "retry_reason",
]


class ObjectStoreError(OSError):
    """An error reported by (or while talking to) an object store.

    Attributes:
        operation: the S3 operation (``GetObject``, ``PutObject``, ...).
        uri: the object or bucket URI the operation was about.
        status: HTTP status code, or None when no response was received.
        code: S3 error code (``NoSuchKey``, ``SlowDown``, ...), or None.
        retryable: whether the engine may retry the request.
    """

    def __init__(
        self,
        message: str,
        *,
        operation: str = "",
        uri: str = "",
        status: int | None = None,
        code: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.operation = operation
        self.uri = uri
        self.status = status
        self.code = code
        self.retryable = retryable

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable across processes (DataLoader workers, multiprocessing) with all attributes.
        return (
            _rebuild,
            (type(self), self.message, self.operation, self.uri, self.status, self.code,
             self.retryable),
        )


def _rebuild(cls: type[ObjectStoreError], message: str, operation: str, uri: str,
             status: int | None, code: str | None, retryable: bool) -> ObjectStoreError:
    return cls(message, operation=operation, uri=uri, status=status, code=code,
               retryable=retryable)


class NotFoundError(ObjectStoreError, FileNotFoundError):
    """The object or bucket does not exist (a ``FileNotFoundError``)."""


class AccessDeniedError(ObjectStoreError, PermissionError):
    """Credentials were rejected or access was denied (a ``PermissionError``)."""


class AlreadyExistsError(ObjectStoreError, FileExistsError):
    """The object or bucket already exists, or a precondition failed (a ``FileExistsError``)."""


class ObjectTimeoutError(ObjectStoreError, TimeoutError):
    """No progress within the configured timeout, after all retries (a ``TimeoutError``)."""


class EndpointUnreachableError(ObjectStoreError):
    """No connection could be opened to the endpoint (or the proxy): nothing listens on its
    port (connection refused) or its host name does not resolve. An ``ObjectStoreError`` with
    ``code`` ``"ConnectionError"``, ``retryable``, but within its own small budget
    (``ClientConfig.connect_attempts`` attempts with short backoff, see
    :func:`objio.engine.with_retries`): a dead endpoint fails in seconds, where timeouts and
    5xx answers keep the standard budget.

    Attributes:
        reason: ``"refused"`` or ``"unresolved"``.
        target: ``host:port`` that was dialled (the proxy's when ``proxy``).
        proxy: whether the connection that failed was the one to the proxy.
        attempts: how many attempts in all the engine makes for this error (None: the
            standard ``max_attempts``).
    """

    def __init__(self, message: str, *, reason: str = "refused", target: str = "",
                 proxy: bool = False, attempts: int | None = None, **kw: Any) -> None:
        kw.setdefault("code", "ConnectionError")
        kw.setdefault("retryable", True)
        super().__init__(message, **kw)
        self.reason = reason
        self.target = target
        self.proxy = proxy
        self.attempts = attempts

    @property
    def short(self) -> str:
        """What happened, in a few words: ``connection refused by 127.0.0.1:1``."""
        return _unreachable_short(self.reason, self.target, self.proxy)

    def tried(self, n: int) -> None:
        """Say in the message that ``n`` attempts were made (the engine, when it gives up)."""
        head = f"{self.short}: "
        if head in self.message and f"{self.short} (" not in self.message:
            self.message = self.message.replace(head, f"{self.short} ({n} attempts): ", 1)
            self.args = (self.message,)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_unreachable, (self.message, self.operation, self.uri, self.status,
                                       self.code, self.retryable, self.reason, self.target,
                                       self.proxy, self.attempts))


def _rebuild_unreachable(message: str, operation: str, uri: str, status: int | None,
                         code: str | None, retryable: bool, reason: str, target: str,
                         proxy: bool, attempts: int | None) -> EndpointUnreachableError:
    return EndpointUnreachableError(message, operation=operation, uri=uri, status=status,
                                    code=code, retryable=retryable, reason=reason,
                                    target=target, proxy=proxy, attempts=attempts)


def _unreachable_short(reason: str, target: str, proxy: bool) -> str:
    who = f"the proxy {target}" if proxy else target
    if reason == "refused":
        return f"connection refused by {who}"
    name = target.rsplit(":", 1)[0].strip("[]")
    return f"the host name {name}{' of the proxy' if proxy else ''} does not resolve"


def unreachable_error(op: str, uri: str, reason: str, target: str, proxy: bool,
                      attempts: int | None) -> EndpointUnreachableError:
    """The error of a request whose connection could not be opened (``reason`` ``"refused"``
    or ``"unresolved"``, ``target`` ``host:port``), with what to do about it."""
    if proxy:
        todo = "is the proxy running? check HTTPS_PROXY / HTTP_PROXY (and NO_PROXY)"
    elif reason == "refused":
        todo = "is the server running? check the endpoint URL (endpoint_url, AWS_ENDPOINT_URL)"
    else:
        todo = "check the endpoint URL's host name (endpoint_url, AWS_ENDPOINT_URL)"
    message = f"{op} {uri} failed: {_unreachable_short(reason, target, proxy)}: {todo}"
    return EndpointUnreachableError(message, operation=op, uri=uri, reason=reason,
                                    target=target, proxy=proxy, attempts=attempts)


def retry_reason(e: ObjectStoreError) -> str:
    """Why a request is sent again, in a few words, for the retry messages
    (:func:`objio.engine.with_retries`): ``connection refused by 127.0.0.1:1``,
    ``GetObject s3://b/k: SlowDown (HTTP 503)``, ``PutObject s3://b/k timed out``."""
    if isinstance(e, EndpointUnreachableError):
        return e.short
    if isinstance(e, ObjectTimeoutError):
        return f"{e.operation} {e.uri} timed out"
    what = {"ConnectionError": "connection lost", "IncompleteBody": "response cut short",
            "BadResponse": "malformed response"}.get(e.code or "", e.code or "error")
    status = f" (HTTP {e.status})" if e.status else ""
    return f"{e.operation} {e.uri}: {what}{status}"


class DeleteError(ObjectStoreError):
    """Some keys of a bulk delete (:func:`objio.delete_many`, ``delete`` of a prefix) were not
    deleted: the store refused them one by one in its DeleteObjects answers (AccessDenied, a
    retention lock, ...) after the transient ones (InternalError, SlowDown) were sent again.

    Attributes:
        failed: ``[(uri, code, message), ...]`` of every key not deleted, in the order given.
        deleted: how many of the URIs asked for were deleted.

    The ``code`` of the exception itself is the first failure's.
    """

    def __init__(self, message: str, *, failed: list[tuple[str, str, str]] | None = None,
                 deleted: int = 0, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.failed = list(failed or [])
        self.deleted = deleted

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_delete, (self.message, self.operation, self.uri, self.status,
                                  self.code, self.failed, self.deleted))


def _rebuild_delete(message: str, operation: str, uri: str, status: int | None,
                    code: str | None, failed: list[tuple[str, str, str]],
                    deleted: int) -> DeleteError:
    return DeleteError(message, operation=operation, uri=uri, status=status, code=code,
                       failed=failed, deleted=deleted)


class IntegrityError(ObjectStoreError, ValueError):
    """Data that does not match its recorded checksum (CRC32C) or length: a flipped byte in
    storage or in transit, or an object rewritten underneath its checkpoint. Both an
    :class:`ObjectStoreError` (an ``OSError``: ``uri``, ``operation``, ``code``) and a
    ``ValueError`` (the data is wrong, not the request). Raised after one more reading of the
    suspect bytes did not match either (a download's check against the stored CRC32C, see
    :mod:`objio._integrity`; that re-read is logged), or when bytes already returned were
    wrong; the message names the object and the byte range that failed. A body that the store
    found damaged on upload, not matching the checksum sent with it (BadDigest,
    XAmzContentChecksumMismatch, InvalidDigest, XAmzContentSHA256Mismatch), is ``retryable``:
    the engine sends it once more before raising this."""


_NOT_FOUND_CODES = {"NoSuchKey", "NoSuchBucket", "NotFound", "NoSuchUpload",
                    # Azure Blob Storage (x-ms-error-code / <Code>)
                    "BlobNotFound", "ContainerNotFound", "ResourceNotFound"}
_DENIED_CODES = {
    "AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken",
    "ExpiredToken", "TokenRefreshRequired", "AllAccessDisabled", "InvalidSecurity",
    "MissingSecurityHeader", "AuthorizationHeaderMalformed",
    # Azure Blob Storage
    "AuthenticationFailed", "AuthorizationFailure", "AuthorizationPermissionMismatch",
    "AuthorizationSourceIPMismatch", "AuthorizationProtocolMismatch",
    "AuthorizationResourceTypeMismatch", "AuthorizationServiceMismatch",
    "InsufficientAccountPermissions", "AccountIsDisabled", "NoAuthenticationInformation",
}
_EXISTS_CODES = {"PreconditionFailed", "BucketAlreadyExists", "BucketAlreadyOwnedByYou",
                 # Azure Blob Storage
                 "BlobAlreadyExists", "ContainerAlreadyExists", "ConditionNotMet"}
_RETRYABLE_STATUS = {500, 502, 503, 504, 408, 429}
_RETRYABLE_CODES = {
    "SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "Throttling",
    "ThrottlingException",
    # Azure Blob Storage
    "ServerBusy", "OperationTimedOut",
}
# The body the store received does not match the checksum or digest sent with it (CRC32C,
# Content-MD5, the signed SHA-256): it was damaged on the way. IntegrityError, retryable: the
# engine sends it again once (objio.engine.with_retries), then raises.
_DIGEST_CODES = {"BadDigest", "XAmzContentChecksumMismatch", "InvalidDigest",
                 "XAmzContentSHA256Mismatch",
                 # Azure Blob Storage: the Content-MD5 / x-ms-content-crc64 sent
                 "Md5Mismatch", "Crc64Mismatch"}
# What stores answer to x-amz-checksum-* headers (or a checksum type) they do not implement.
_REFUSAL_CODES = {"InvalidArgument", "InvalidRequest", "NotImplemented", "BadRequest",
                  "NotSupported", "UnsupportedHeader"}

_CODE_RE = re.compile(rb"<Code>([^<]*)</Code>")
_MSG_RE = re.compile(rb"<Message>([^<]*)</Message>")
_ARG_RE = re.compile(rb"<ArgumentName>([^<]*)</ArgumentName>")


def parse_error_body(body: bytes) -> tuple[str | None, str | None]:
    """Extract (Code, Message) from an S3 XML error body; (None, None) if absent. The
    ``ArgumentName`` of an InvalidArgument error (the header refused) is added to the
    message."""
    code_m = _CODE_RE.search(body)
    msg_m = _MSG_RE.search(body)
    arg_m = _ARG_RE.search(body)
    code = code_m.group(1).decode("utf-8", "replace") if code_m else None
    msg = msg_m.group(1).decode("utf-8", "replace") if msg_m else None
    if arg_m and arg_m.group(1):
        arg = arg_m.group(1).decode("utf-8", "replace")
        msg = f"{msg} (argument {arg})" if msg else f"argument {arg}"
    return code, msg


def error_from_response(operation: str, uri: str, status: int, body: bytes = b"", *,
                        header_code: str | None = None) -> ObjectStoreError:
    """Translate an HTTP error response into the right exception type (see module table).
    ``header_code``: the error code a response carries in a header (Azure's
    ``x-ms-error-code``, the only one a HEAD response has), used when the body has none."""
    code, msg = parse_error_body(body)
    if code is None and header_code:
        code = header_code
    if code is None and not body:  # HEAD responses carry no body: name the status instead
        code, msg = {404: ("NotFound", "no such object or bucket"),
                     403: ("Forbidden", "access denied (credentials rejected or no permission)"),
                     412: ("PreconditionFailed", "precondition failed")}.get(status, (None, None))
    detail = f"{code}: {msg}" if code and msg else (code or msg or "no details from the server")
    message = f"{operation} {uri} failed: {detail} (HTTP {status})"
    kw: dict[str, Any] = dict(operation=operation, uri=uri, status=status, code=code)
    if code in _NOT_FOUND_CODES or (status == 404 and code is None):
        return NotFoundError(message, **kw)
    if code in _DENIED_CODES or code == "Forbidden" or (status in (401, 403) and code is None):
        return AccessDeniedError(message, **kw)
    if code in _EXISTS_CODES or status == 412:
        return AlreadyExistsError(message, **kw)
    if code in _DIGEST_CODES:
        return IntegrityError(f"{operation} {uri} failed: the bytes the store received do not "
                              f"match the checksum sent with them (damaged on the way): "
                              f"{detail} (HTTP {status})", retryable=True, **kw)
    retryable = status in _RETRYABLE_STATUS or code in _RETRYABLE_CODES
    return ObjectStoreError(message, retryable=retryable, **kw)


def retryable_code(code: str | None) -> bool:
    """Whether an S3 error code names a transient failure worth sending the request again
    (InternalError, SlowDown, ServiceUnavailable, RequestTimeout, Throttling): for errors
    reported inside a 200 response, such as the per-key errors of DeleteObjects."""
    return code in _RETRYABLE_CODES


def may_be_checksum_refusal(e: BaseException) -> bool:
    """Whether ``e``, the answer to a request that carried ``x-amz-checksum-*`` headers, may
    be a store refusing those headers (it does not implement them, or not that checksum
    type): HTTP 501, or HTTP 400 with code InvalidArgument, InvalidRequest, NotImplemented,
    BadRequest, NotSupported, UnsupportedHeader or none. Never for a missing bucket or object,
    rejected credentials, a failed precondition or a checksum mismatch. Only a guess: the
    engine sends the request again without the checksum, and takes the store as one that
    refuses checksums only when that succeeds (:func:`objio.engine.put_single`)."""
    if not isinstance(e, ObjectStoreError) or isinstance(
            e, (NotFoundError, AccessDeniedError, AlreadyExistsError, IntegrityError,
                ObjectTimeoutError)):
        return False
    if e.status == 501:
        return True
    return e.status == 400 and (e.code is None or e.code in _REFUSAL_CODES)


# Google Cloud Storage (JSON API): an error's ``reason`` (``error.errors[0].reason``) as the
# S3-style code objio's callers see; what is not here keeps its reason as the code.
_GCS_REASONS = {"notFound": "NotFound", "forbidden": "AccessDenied",
                "unauthorized": "AccessDenied", "authError": "AccessDenied",
                "required": "AccessDenied", "conditionNotMet": "PreconditionFailed",
                "conflict": "Conflict", "rateLimitExceeded": "SlowDown",
                "userRateLimitExceeded": "SlowDown", "backendError": "InternalError",
                "internalError": "InternalError"}
_GCS_DIGEST_RE = re.compile(r"(?i)(crc32c|md5)[^.]*(does ?n[o']t match|mismatch)")


def gcs_error_from_response(operation: str, uri: str, status: int, body: bytes = b"", *,
                            not_found: str = "NotFound") -> ObjectStoreError:
    """Translate a Google Cloud Storage JSON API error response (``{"error": {"code",
    "message", "errors": [{"reason", ...}]}}``, or a plain-text body) into the right exception
    type (see module table): 404 -> NotFoundError with code ``not_found`` (``NoSuchKey`` for
    object requests, ``NoSuchBucket`` for bucket requests); 401/403 -> AccessDeniedError;
    412 (conditionNotMet) and 409 (a bucket that exists) -> AlreadyExistsError; a body whose
    CRC32C or MD5 does not match the one sent with it -> IntegrityError (``BadDigest``,
    retryable); 429 and 5xx -> retryable."""
    import json

    reason = msg = None
    try:
        doc = json.loads(body) if body[:1] in (b"{", b" ", b"\n") else None
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        err = doc["error"]
        msg = str(err.get("message") or "") or None
        errs = err.get("errors")
        if isinstance(errs, list) and errs and isinstance(errs[0], dict):
            reason = errs[0].get("reason") or None
    elif body:
        msg = body[:200].decode("utf-8", "replace").strip() or None
    if status == 404:
        code: str | None = not_found
    elif status in (401, 403):
        code = "AccessDenied"
    elif status == 412:
        code = "PreconditionFailed"
    elif status == 409:
        code = "BucketAlreadyExists" if operation == "CreateBucket" else "Conflict"
    elif status == 429:
        code = "SlowDown"
    elif status == 400 and msg and _GCS_DIGEST_RE.search(msg):
        code = "BadDigest"
    else:
        code = _GCS_REASONS.get(reason or "", reason)
    detail = f"{code}: {msg}" if code and msg else (code or msg or "no details from the server")
    message = f"{operation} {uri} failed: {detail} (HTTP {status})"
    kw: dict[str, Any] = dict(operation=operation, uri=uri, status=status, code=code)
    if status == 404:
        return NotFoundError(message, **kw)
    if code == "AccessDenied":
        return AccessDeniedError(message, **kw)
    if code in _EXISTS_CODES:
        return AlreadyExistsError(message, **kw)
    if code == "BadDigest":
        return IntegrityError(f"{operation} {uri} failed: the bytes the store received do not "
                              f"match the checksum sent with them (damaged on the way): "
                              f"{detail} (HTTP {status})", retryable=True, **kw)
    retryable = status in _RETRYABLE_STATUS or code in _RETRYABLE_CODES
    return ObjectStoreError(message, retryable=retryable, **kw)
