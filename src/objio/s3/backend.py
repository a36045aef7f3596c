"""The S3 protocol: requests, SigV4, XML, multipart, over objio's own HTTP/1.1 client
(:mod:`objio.s3.http`). No concurrency policy here (that is :mod:`objio.engine`): each method
is one request (or one paginated listing).

All methods are coroutines that must run on the engine's event loop (the client's connections
are bound to it). Errors are raised already translated (:mod:`objio.errors`); transient ones carry
``retryable=True`` for the engine's retry loop.
"""

from __future__ import annotations

import asyncio
import base64
import calendar
import functools
import hashlib
import html
import logging
import re
import ssl
import time
from typing import Any, AsyncIterator, Awaitable, Callable, Sequence
from urllib.parse import unquote_plus
from xml.etree import ElementTree as ET

import numpy as np

from .. import oplog
from .._buffers import Gather, new_buffer
from .._crc32c import crc32c, from_base64, to_base64
from ..backend import (
    CopyResult,
    GetResult,
    ListPage,
    ObjectInfo,
    PartInfo,
    StoredChecksum,
    UploadInfo,
)
from ..config import ClientConfig
from ..errors import ObjectStoreError, ObjectTimeoutError, error_from_response, unreachable_error
from ..oplog import OpLog
from ..uri import ObjectURI
from .credentials import CredentialProvider
from .endpoints import Endpoint, EndpointPool
from .http import BadResponse, HTTPClient, NotConnected, ProxyError, Response, ShortBody, Unreachable
from .sigv4 import EMPTY_SHA256, UNSIGNED_PAYLOAD, SigV4Signer, canonical_query, uri_encode_path

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
log = logging.getLogger("objio.s3")


@functools.lru_cache(maxsize=1024)
def _parse_http_date(value: str | None) -> float:
    """Epoch seconds of an HTTP date (``Last-Modified``); 0.0 when absent or malformed.
    Cached: the objects of a bulk HEAD share a few seconds, and parsing one costs ~20 us."""
    if not value:
        return 0.0
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return 0.0


def _parse_iso_date(value: str | None) -> float:
    if not value:
        return 0.0
    from datetime import datetime

    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _connection_error(op: str, uri: str, exc: BaseException,
                      connect_attempts: int | None = None) -> ObjectStoreError:
    """A request that got no usable response, as the error the engine sees: timeouts
    (``ObjectTimeoutError``), bodies cut short (``IncompleteBody``), malformed responses
    (``BadResponse``) and connection failures (``ConnectionError``) are retryable; a TLS
    certificate that does not verify, a proxy that refuses credentials and an unusable proxy
    setting are not. A connection refused or a host name that does not resolve
    (``Unreachable``) is an ``EndpointUnreachableError``, retried ``connect_attempts`` times
    in all (``ClientConfig.connect_attempts``)."""
    # (builtin TimeoutError and asyncio.TimeoutError differ before Python 3.11)
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return ObjectTimeoutError(f"{op} {uri} timed out: {exc}", operation=op, uri=uri,
                                  code="Timeout", retryable=True)
    if isinstance(exc, Unreachable):
        return unreachable_error(op, uri, exc.reason, exc.target, exc.proxy, connect_attempts)
    if isinstance(exc, ShortBody):
        return ObjectStoreError(f"{op} {uri} failed: response {exc}", operation=op, uri=uri,
                                code="IncompleteBody", retryable=True)
    if isinstance(exc, BadResponse):
        return ObjectStoreError(f"{op} {uri} failed: malformed response: {exc}", operation=op,
                                uri=uri, code="BadResponse", retryable=True)
    if isinstance(exc, ProxyError):
        return ObjectStoreError(f"{op} {uri} failed: {exc}", operation=op, uri=uri,
                                code="ProxyError", status=exc.status or None,
                                retryable=exc.status not in (403, 407))
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ObjectStoreError(f"{op} {uri} failed: TLS certificate not trusted: {exc}",
                                operation=op, uri=uri, code="ConnectionError")
    return ObjectStoreError(f"{op} {uri} failed: connection error: {exc}", operation=op,
                            uri=uri, code="ConnectionError", retryable=True)


def _body_pieces(body: Any) -> tuple[Any, ...] | None:
    """A request body as the buffers the client sends (byte format, not copied)."""
    if body is None:
        return None
    if isinstance(body, Gather):
        return body.pieces
    if isinstance(body, str):
        return (body.encode(),)
    if isinstance(body, (bytes, bytearray)):
        return (body,)
    mv = memoryview(body)
    return (mv if mv.format == "B" and mv.ndim == 1 else mv.cast("B"),)


class S3Backend:
    """S3 operations for one resolved :class:`ClientConfig`."""

    scheme = "s3"

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        assert config.region is not None
        self._signer = SigV4Signer(config.region)
        self._creds = CredentialProvider(config)
        urls = config.endpoint_urls or (f"https://s3.{config.region}.amazonaws.com",)
        # Which endpoint each request goes to (one or several: objio.s3.endpoints).
        self._pool = EndpointPool(urls, config.endpoint_strategy or "least_connections",
                                  config.endpoint_fail_threshold or 3,
                                  config.endpoint_backoff_s or 1.0)
        first = self._pool.endpoints[0]
        self._http_scheme = first.scheme
        self._netloc = first.netloc
        self._base_path = first.base_path
        self._path_style = config.path_style
        self._sign_payload = bool(config.sign_payload)
        self._checksums = bool(config.checksums)
        self._oplog: OpLog | None = oplog.get(config.op_log) if config.op_log else None
        # Every request goes through one client: one pool of kept-alive connections for
        # GETs and everything else (HTTP(S)_PROXY / NO_PROXY are read now), one TLS context
        # made now: it honours AWS_CA_BUNDLE (a PEM file of trusted CAs, as botocore does)
        # and SSL_CERT_FILE/SSL_CERT_DIR as set at this point.
        self._http = HTTPClient.for_config(self._http_scheme, config, "AWS_CA_BUNDLE")

    # ----------------------------------------------------------------------------- plumbing
    async def close(self) -> None:
        self._http.close()

    def endpoint_stats(self) -> list[dict[str, Any]]:
        """Per-endpoint counts of this backend (see :meth:`objio.Client.endpoint_stats`)."""
        return self._pool.stats()

    def _target(self, bucket: str, key: str | None,
                ep: Endpoint | None = None) -> tuple[str, str]:
        """(Host header, encoded path) for a bucket (key None) or an object, on endpoint
        ``ep`` (default: the first)."""
        netloc, base = (self._netloc, self._base_path) if ep is None else (ep.netloc,
                                                                            ep.base_path)
        if self._path_style or "." in bucket:
            host = netloc
            path = f"{base}/{bucket}"
            if key is not None:
                path += "/" + key
        else:
            host = f"{bucket}.{netloc}"
            path = base + "/" + (key or "")
        return host, uri_encode_path(path)

    def _prepare(
        self,
        method: str,
        bucket: str,
        key: str | None,
        params: Sequence[tuple[str, str]] = (),
        headers: dict[str, str] | None = None,
        body: Any = None,
        ep: Endpoint | None = None,
    ) -> tuple[str, str, dict[str, str]]:
        """Sign a request for endpoint ``ep`` (default: the first; SigV4 signs the Host
        header of the endpoint the request goes to): returns (Host header, request target
        "/path?query", headers)."""
        if bucket:
            host, path = self._target(bucket, key, ep)
        elif ep is None:
            host, path = self._netloc, uri_encode_path(self._base_path + "/")
        else:
            host, path = ep.netloc, uri_encode_path(ep.base_path + "/")
        query = canonical_query(params) if params else ""
        hdrs = headers if headers is not None else {}
        if body is None:
            payload_hash = EMPTY_SHA256
        elif self._sign_payload:
            h = hashlib.sha256()
            for piece in (body.pieces if isinstance(body, Gather) else (body,)):
                h.update(piece)
            payload_hash = h.hexdigest()
        else:
            payload_hash = UNSIGNED_PAYLOAD
        creds = self._creds.get()
        if creds is not None:
            self._signer.sign(method, host, path, query, hdrs, payload_hash, creds)
        else:
            hdrs["host"] = host
        return host, (path + "?" + query) if query else path, hdrs

    # ---------------------------------------------------------------------------- op-log
    def _log(self, op: str, bucket: str, key: str | None, host: str, r: Response, nbytes: int,
             t0: float, params: Sequence[tuple[str, str]], uri: str) -> None:
        """One op-log line for a request that got a response (:mod:`objio.oplog`): an error
        status's S3 code and message from its body."""
        assert self._oplog is not None
        error = None
        if r.status >= 400:
            error = error_from_response(op, uri, r.status, bytes(r.body or b""))
        oplog.record_response(
            self._oplog, api=op, bucket=bucket, key=key, endpoint=f"{self._http_scheme}://{host}",
            r=r, nbytes=nbytes, t0=t0,
            error_code=(getattr(error, "code", "") or "") if error is not None else "",
            error=str(error) if error is not None else "", part=_part_number(params))

    def _log_resent(self, op: str, bucket: str, key: str | None, host: str,
                    params: Sequence[tuple[str, str]], start: float, error: BaseException) -> None:
        """The line of a try the HTTP client sent again by itself (a kept-alive connection
        the server had closed)."""
        self._log_failed(op, bucket, key, host, start, error, params)

    def _log_failed(self, op: str, bucket: str, key: str | None, host: str, t0: float,
                    error: BaseException, params: Sequence[tuple[str, str]] = ()) -> None:
        """One op-log line for a request that got no response (status 0)."""
        assert self._oplog is not None
        oplog.record_failure(self._oplog, api=op, bucket=bucket, key=key,
                             endpoint=f"{self._http_scheme}://{host}", t0=t0, error=error,
                             part=_part_number(params))

    async def _simple(
        self,
        op: str,
        uri: str,
        method: str,
        bucket: str,
        key: str | None,
        params: Sequence[tuple[str, str]] = (),
        headers: dict[str, str] | None = None,
        body: Any = None,
        ok: tuple[int, ...] = (200,),
        moves: int = 0,
    ) -> tuple[int, Any, bytes]:
        """Send one request and read its whole (small) response: (status, headers, body).

        ``body``: None, a bytes-like object, a ``str`` (sent UTF-8) or a
        :class:`objio._buffers.Gather`; sent from the caller's buffers, not copied (they must
        not change until this returns). ``headers`` of the result take any case
        (``h.get("ETag")``). A status not in ``ok`` raises the translated error
        (:func:`objio.errors.error_from_response`); no usable response raises a retryable
        ``ObjectStoreError`` (``ConnectionError``, ``IncompleteBody``, ``BadResponse``) or
        ``ObjectTimeoutError``: the request may have been applied (this path resends nothing
        but a GET or HEAD whose kept-alive connection the server had closed: see
        :mod:`objio.s3.http`). ``moves``: bytes the request makes the server move besides its
        body (a server-side copy), counted in its deadline
        (:meth:`objio.config.ClientConfig.deadline_s`)."""
        r = await self._send(op, uri, method, bucket, key, params, headers, body, moves=moves)
        payload = bytes(r.body) if r.body else b""
        if r.status not in ok:
            raise error_from_response(op, uri, r.status, payload)
        return r.status, r.headers, payload

    async def _send(self, op: str, uri: str, method: str, bucket: str, key: str | None,
                    params: Sequence[tuple[str, str]], headers: dict[str, str] | None,
                    body: Any, *, into: memoryview | None = None,
                    alloc: Callable[[int], memoryview] | None = None, limit: int | None = None,
                    crc: bool = False, moves: int = 0) -> Response:
        """Sign and send one request to the endpoint the pool picks (:mod:`objio.s3.endpoints`)
        and return the response, counting it in that endpoint's stats. A request that could
        not be sent at all (no connection: refused, unreachable, timed out connecting) goes
        to the next endpoint at once, each endpoint at most once; any other failure is raised
        as the retryable (or not) error :func:`_connection_error` makes of it, naming ``op``
        and ``uri``, for the engine to retry or not (the request may have been applied).
        Signing errors (no credentials: PermissionError) are raised as they are."""
        pool = self._pool
        pieces = _body_pieces(body)
        sent = sum(len(p) for p in pieces) if pieces else 0
        tried: list[Endpoint] = []
        last: NotConnected | None = None
        while True:
            ep = pool.pick(tried)
            if ep is None:  # no endpoint took this request: raise the last refusal
                assert last is not None
                raise _connection_error(op, uri, last, self.config.connect_attempts) from last
            # signing adds to the headers: a copy each time when the request may go elsewhere
            hdrs = (dict(headers) if headers else {}) if not pool.single else (
                headers if headers is not None else {})
            host, target, hdrs = self._prepare(method, bucket, key, params, hdrs, body, ep)
            pool.begin(ep, sent)
            oplog_on = self._oplog is not None
            t0 = time.perf_counter()
            try:
                r = await self._http.request(
                    method, host, target, hdrs, pieces, into=into, alloc=alloc, limit=limit,
                    crc=crc, moves=moves, resent=None if not oplog_on else functools.partial(
                        self._log_resent, op, bucket, key, host, params))
            except NotConnected as e:
                pool.failed(ep)
                tried.append(ep)
                last = e
                if oplog_on:
                    self._log_failed(op, bucket, key, host, t0, e, params)
                if len(tried) < len(pool):
                    log.debug("%s %s: %s; trying another endpoint", method, ep.url, e)
                continue
            except (OSError, asyncio.TimeoutError) as e:
                pool.failed(ep)
                error = _connection_error(op, uri, e, self.config.connect_attempts)
                if oplog_on:
                    self._log_failed(op, bucket, key, host, t0, error, params)
                raise error from e
            except BaseException as e:
                pool.abandoned(ep)
                if oplog_on:
                    self._log_failed(op, bucket, key, host, t0, e, params)
                raise
            got = len(r.body) if r.body is not None else (
                len(into) if into is not None and 200 <= r.status < 300 else 0)
            pool.answered(ep, r.status, got, time.perf_counter() - t0)
            if oplog_on:
                self._log(op, bucket, key, host, r, sent + got, t0, params, uri)
            return r

    # ----------------------------------------------------------------------------- objects
    async def get(
        self,
        obj: ObjectURI,
        start: int | None = None,
        end: int | None = None,
        *,
        if_match: str | None = None,
        into: memoryview | None = None,
        alloc: Callable[[int], memoryview] | None = None,
        unranged: bool = False,
        crc: bool = False,
    ) -> GetResult:
        """GetObject of the whole object, or of the byte range [start, end] (inclusive, like
        HTTP; ``end`` None: to the end of the object).

        ``unranged`` (``start`` 0 or None): the request carries no Range header, so that the
        server answers with the whole object and, with checksums on, its stored checksum
        (S3 sends ``x-amz-checksum-*`` with whole-object responses only, never with a ranged
        one); only bytes [0, end] are received and, when the object is longer, the connection
        is closed after them (the rest is never read).

        The result holds exactly the bytes ``[start, stop)`` of one response, ``stop =
        min(end + 1, total)``: written into ``into`` (a writable byte memoryview that must have
        that length), into ``alloc(n)`` (returned as ``data``), or into a new bytearray.
        Whatever the server does, nothing else is returned:

        * a 206 must carry a Content-Range starting at ``start`` and a body of the length it
          declares (a short body raises ``IncompleteBody``, retryable; chunked bodies too);
        * a 200 to a ranged request (a server or proxy that ignores Range) is sliced to the
          range;
        * a 416 (range past the end) gives empty data and the total from Content-Range; with
          ``into`` (the caller knows the object is longer) it raises ``ObjectChanged``;
        * with ``into``, any other length than ``len(into)`` raises ``ObjectChanged``;
        * with checksums on, the stored CRC32C a response carries is returned in ``stored``
          (the engine checks the bytes against it: :mod:`objio.engine`);
        * with ``crc``, objio's own receive path computes the CRC32C of the body read by read
          as it lands (in cache: no second pass) and returns it in ``received_crc32c`` when
          the result is exactly the body received (None otherwise: the caller computes it).

        ``etag`` and ``total_size`` of the response are returned for the caller to compare
        across parts (the engine does).
        """
        uri = str(obj)
        hdrs: dict[str, str] = {}
        byte_range, limit = range_request(start, end, unranged)
        if byte_range:
            hdrs["range"] = byte_range
        if if_match:
            hdrs["if-match"] = f'"{if_match}"'
        if self._checksums:
            hdrs["x-amz-checksum-mode"] = "ENABLED"
        r = await self._send("GetObject", uri, "GET", obj.bucket, obj.key, (), hdrs, None,
                             into=into, alloc=alloc, limit=limit, crc=crc)
        status = r.status
        if status not in (200, 206, 416):
            raise error_from_response("GetObject", uri, status, bytes(r.body or b""))
        received = r.crc32c
        if not r.framed and status != 416 and limit is not None:
            # A whole-object answer without a length (chunked, or ended by the connection):
            # nothing tells the object's size. It is taken only when its bytes match the
            # object's stored full-object CRC32C (then they are the whole object); else (it is
            # longer than wanted, has no such checksum, or ended early) the range is asked for
            # instead, whose Content-Range tells the size.
            stored = _stored_checksum(r.headers) if self._checksums else None
            if not r.cut and r.body is not None and stored is not None and not stored.composite:
                received = crc32c(r.body)
            if received is None or stored is None or received != stored.crc32c:
                log.debug("GetObject %s: whole-object response without a length; asking for "
                          "bytes 0-%d instead", uri, limit - 1)
                return await self.get(obj, 0, limit - 1, if_match=if_match, into=into,
                                      alloc=alloc, crc=crc)
        wrote = r.body is None and status != 416
        return checked_get("GetObject", uri, start, end, into, alloc, status, r.headers, r.body,
                           wrote, r.ttfb_s, unranged=unranged,
                           received_crc=received if crc else None,
                           stored_of=_stored_checksum if self._checksums else None)

    async def head(self, obj: ObjectURI, *, checksum: bool = False) -> ObjectInfo:
        """HeadObject. Raises FileNotFoundError if absent. With ``checksum`` it asks for the
        object's checksums (``x-amz-checksum-mode: ENABLED``) and reports a whole-object
        CRC32C (type FULL_OBJECT) in ``crc32c``, and the stored CRC32C, full-object or
        composite, in ``stored``."""
        hdrs = {"x-amz-checksum-mode": "ENABLED"} if checksum else None
        _, h, _ = await self._simple("HeadObject", str(obj), "HEAD", obj.bucket, obj.key,
                                     headers=hdrs)
        stored = _stored_checksum(h) if checksum else None
        return ObjectInfo(
            key=obj.key,
            size=int(h.get("Content-Length", 0)),
            last_modified=_parse_http_date(h.get("Last-Modified")),
            etag=h.get("ETag", "").strip('"'),
            crc32c=stored.crc32c if stored is not None and not stored.composite else None,
            stored=stored,
        )

    async def object_parts(self, obj: ObjectURI) -> list[PartInfo] | None:
        """The parts of a multipart object, in order (GetObjectAttributes ``ObjectParts``,
        every page): each part's size in bytes and, where the store reports it, its CRC32C.
        None when the store does not report parts (not a multipart object, or
        GetObjectAttributes not supported: a 400/501 answer). Raises FileNotFoundError."""
        parts: list[PartInfo] = []
        marker = 0
        while True:
            hdrs = {"x-amz-object-attributes": "ObjectParts", "x-amz-max-parts": "1000"}
            if marker:
                hdrs["x-amz-part-number-marker"] = str(marker)
            try:
                _, _, payload = await self._simple("GetObjectAttributes", str(obj), "GET",
                                                   obj.bucket, obj.key,
                                                   params=(("attributes", ""),), headers=hdrs)
            except ObjectStoreError as e:
                if e.status in (400, 405, 501) and not e.retryable:
                    return None  # not supported here
                raise
            root = _xml(payload)
            section = root.find(f"{_NS}ObjectParts")
            if section is None:
                section = root.find("ObjectParts")
            if section is None:
                return None
            got = []
            for p in list(section.iter(f"{_NS}Part")) + list(section.iter("Part")):
                number = int(_text(p, "PartNumber") or 0)
                size = int(_text(p, "Size") or -1)
                crc = from_base64(_text(p, "ChecksumCRC32C")) if _text(p, "ChecksumCRC32C") \
                    else None
                got.append((number, PartInfo(size, crc)))
            got.sort(key=lambda x: x[0])
            for number, part in got:
                if number != len(parts) + 1 or part.size < 0:
                    raise ObjectStoreError(
                        f"GetObjectAttributes {obj}: part {number} out of order or without a "
                        "size", operation="GetObjectAttributes", uri=str(obj),
                        code="MalformedParts")
                parts.append(part)
            if _text(section, "IsTruncated") != "true":
                return parts or None
            nxt = int(_text(section, "NextPartNumberMarker") or 0)
            if nxt <= marker or not got:  # a marker that does not move forward
                raise ObjectStoreError(
                    f"GetObjectAttributes {obj}: the part listing does not move forward "
                    f"(marker {nxt} after {marker})", operation="GetObjectAttributes",
                    uri=str(obj), code="MalformedParts")
            marker = nxt

    async def put(self, obj: ObjectURI, data: Any, *, if_none_match: bool = False,
                  checksum_crc32c: int | None = None) -> str:
        """PutObject of a bytes-like ``data``; returns the ETag. With ``if_none_match`` the
        write fails with FileExistsError when the key exists (conditional write). With
        ``checksum_crc32c`` (the CRC32C of ``data``) the store checks the body against it and
        keeps it with the object (``x-amz-checksum-crc32c``)."""
        hdrs = {"if-none-match": "*"} if if_none_match else {}
        if checksum_crc32c is not None:
            hdrs["x-amz-checksum-crc32c"] = to_base64(checksum_crc32c)
        _, h, _ = await self._simple("PutObject", str(obj), "PUT", obj.bucket, obj.key,
                                     headers=hdrs, body=data)
        return str(h.get("ETag", "")).strip('"')

    async def delete(self, obj: ObjectURI) -> None:
        """DeleteObject (S3 answers 204 whether or not the key existed)."""
        await self._simple("DeleteObject", str(obj), "DELETE", obj.bucket, obj.key,
                           ok=(200, 204))

    async def delete_many(self, bucket_uri: ObjectURI, keys: Sequence[str]) -> list[tuple[str, str, str]]:
        """DeleteObjects (quiet) for up to 1000 keys; returns (key, code, message) per key the
        store did not delete (a missing key is deleted, as in S3). Sending it again is safe
        (deleting what is gone is success): :func:`objio.engine.delete_keys` retries it.

        The response is taken only as a whole document (it ends with ``</DeleteResult>``): in
        quiet mode a response cut short would read as "every key deleted"; it raises
        ``IncompleteResponse`` (retryable) instead. An ``<Error>`` document in a 200 response
        is the error it reports (retryable where its code is: InternalError, SlowDown)."""
        if len(keys) > 1000:
            raise ValueError("delete_many takes at most 1000 keys per request")
        body = _delete_body(keys)
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        uri = str(bucket_uri)
        _, _, payload = await self._simple(
            "DeleteObjects", uri, "POST", bucket_uri.bucket, None,
            params=(("delete", ""),), headers={"content-md5": md5,
                                               "content-type": "application/xml"}, body=body,
        )
        if not _RE_DELETE_END.search(payload[-256:]):
            if _is_error_document(payload):
                raise error_from_response("DeleteObjects", uri, 200, payload)
            raise _incomplete_response("DeleteObjects", uri, "DeleteResult")
        if b"<Error>" not in payload:
            return []
        errors = []
        for err in _iter(_xml(payload), "Error"):
            errors.append((_text(err, "Key"), _text(err, "Code"), _text(err, "Message")))
        return errors

    # ----------------------------------------------------------------------------- copy
    def _copy_source(self, src: ObjectURI, if_match: str | None) -> dict[str, str]:
        hdrs = {"x-amz-copy-source": uri_encode_path(f"/{src.bucket}/{src.key}")}
        if if_match:
            hdrs["x-amz-copy-source-if-match"] = f'"{if_match}"'
        return hdrs

    async def copy_object(self, src: ObjectURI, dst: ObjectURI, *, if_match: str | None = None,
                          checksum: bool = False, size: int = 0) -> CopyResult:
        """CopyObject: ``dst`` becomes a copy of ``src`` made by the store (no byte through
        the client; up to 5 GiB; ``src`` and ``dst`` in buckets of this endpoint). With
        ``if_match`` (the source's ETag) the store copies only that version (else 412:
        FileExistsError). ``checksum``: ask the store to compute the copy's CRC32C
        (``x-amz-checksum-algorithm: CRC32C``), reported in the result where the store does.
        ``size`` (bytes the store moves) extends the request's deadline.

        S3 may answer 200 and report a failure in the body (AWS documents it for CopyObject:
        the copy fails after the response started): that ``<Error>`` is raised as the error it
        is (retryable where its code is: InternalError, SlowDown); a body that is not a whole
        ``<CopyObjectResult>`` raises ``IncompleteResponse`` (retryable: a copy of the same
        version may be made again)."""
        hdrs = self._copy_source(src, if_match)
        if checksum:
            hdrs["x-amz-checksum-algorithm"] = "CRC32C"
        uri = str(dst)
        _, h, payload = await self._simple("CopyObject", uri, "PUT", dst.bucket, dst.key,
                                           headers=hdrs, moves=size)
        return _copy_result("CopyObject", uri, payload, h, "CopyObjectResult")

    async def upload_part_copy(self, src: ObjectURI, dst: ObjectURI, upload_id: str,
                               part_number: int, start: int, end: int, *,
                               if_match: str | None = None) -> CopyResult:
        """UploadPartCopy: part ``part_number`` of the multipart upload ``upload_id`` of
        ``dst`` is bytes [start, end] (inclusive) of ``src``, copied by the store. With
        ``if_match`` only from that version of ``src`` (else 412: FileExistsError). The
        part's CRC32C is reported where the upload was created with CRC32C and the store
        reports it. A 200 with an ``<Error>`` body, or a body that is not a whole
        ``<CopyPartResult>``, raises as in :meth:`copy_object`."""
        hdrs = self._copy_source(src, if_match)
        hdrs["x-amz-copy-source-range"] = f"bytes={start}-{end}"
        uri = str(dst)
        _, h, payload = await self._simple(
            "UploadPartCopy", uri, "PUT", dst.bucket, dst.key,
            params=(("partNumber", str(part_number)), ("uploadId", upload_id)), headers=hdrs,
            moves=end - start + 1)
        return _copy_result("UploadPartCopy", uri, payload, h, "CopyPartResult")

    # ----------------------------------------------------------------------------- multipart
    async def create_multipart(self, obj: ObjectURI, *, checksum: str | None = None,
                               checksum_type: str | None = "FULL_OBJECT") -> str:
        """CreateMultipartUpload; returns the UploadId. ``checksum="crc32c"`` declares CRC32C
        checksums (``x-amz-checksum-algorithm: CRC32C``): each part then carries its CRC32C.
        ``checksum_type`` FULL_OBJECT (``x-amz-checksum-type``) makes the store keep one
        CRC32C of the whole object, which the completion sends; COMPOSITE or None sends no
        type (S3's default for CRC32C: a checksum of the parts' checksums)."""
        hdrs: dict[str, str] = {}
        if checksum is not None:
            if checksum != "crc32c":
                raise ValueError(f"checksum must be 'crc32c' or None, got {checksum!r}")
            if checksum_type not in ("FULL_OBJECT", "COMPOSITE", None):
                raise ValueError("checksum_type must be 'FULL_OBJECT', 'COMPOSITE' or None, "
                                 f"got {checksum_type!r}")
            hdrs = {"x-amz-checksum-algorithm": "CRC32C"}
            if checksum_type == "FULL_OBJECT":
                hdrs["x-amz-checksum-type"] = "FULL_OBJECT"
        _, _, payload = await self._simple("CreateMultipartUpload", str(obj), "POST",
                                           obj.bucket, obj.key, params=(("uploads", ""),),
                                           headers=hdrs)
        upload_id = _text(_xml(payload), "UploadId")
        if not upload_id:
            raise ObjectStoreError(f"CreateMultipartUpload {obj}: no UploadId in response",
                                   operation="CreateMultipartUpload", uri=str(obj))
        return upload_id

    async def upload_part(self, obj: ObjectURI, upload_id: str, part_number: int, data: Any, *,
                          checksum_crc32c: int | None = None) -> str:
        """UploadPart (part_number 1..10000); returns the part's ETag (quoted, as S3 sends).
        ``checksum_crc32c``: the part's CRC32C, checked by the store."""
        hdrs = None if checksum_crc32c is None else {
            "x-amz-checksum-crc32c": to_base64(checksum_crc32c)}
        _, h, _ = await self._simple(
            "UploadPart", str(obj), "PUT", obj.bucket, obj.key,
            params=(("partNumber", str(part_number)), ("uploadId", upload_id)), headers=hdrs,
            body=data,
        )
        return str(h.get("ETag", ""))

    async def complete_multipart(self, obj: ObjectURI, upload_id: str,
                                 parts: Sequence[tuple[int, str] | tuple[int, str, int]], *,
                                 checksum_crc32c: int | None = None) -> str:
        """CompleteMultipartUpload with (part_number, etag) pairs, or (part_number, etag,
        crc32c) for an upload created with ``checksum="crc32c"``; ``checksum_crc32c`` is then
        the whole object's CRC32C (an upload of type FULL_OBJECT), checked by the store.
        Returns the ETag."""
        root = ET.Element("CompleteMultipartUpload")
        for part in parts:
            p = ET.SubElement(root, "Part")
            ET.SubElement(p, "PartNumber").text = str(part[0])
            ET.SubElement(p, "ETag").text = part[1]
            if len(part) > 2:
                ET.SubElement(p, "ChecksumCRC32C").text = to_base64(part[2])  # type: ignore[misc]
        body = ET.tostring(root, encoding="utf-8")
        hdrs = {"content-type": "application/xml"}
        if checksum_crc32c is not None:
            hdrs["x-amz-checksum-crc32c"] = to_base64(checksum_crc32c)
            hdrs["x-amz-checksum-type"] = "FULL_OBJECT"
        _, _, payload = await self._simple(
            "CompleteMultipartUpload", str(obj), "POST", obj.bucket, obj.key,
            params=(("uploadId", upload_id),), headers=hdrs, body=body,
        )
        if b"<Error>" in payload:  # S3 may report a failure inside a 200 response
            raise error_from_response("CompleteMultipartUpload", str(obj), 500, payload)
        return _text(_xml(payload), "ETag").strip('"')

    async def abort_multipart(self, obj: ObjectURI, upload_id: str) -> None:
        """AbortMultipartUpload (a missing upload is not an error)."""
        try:
            await self._simple("AbortMultipartUpload", str(obj), "DELETE", obj.bucket, obj.key,
                               params=(("uploadId", upload_id),), ok=(200, 204))
        except FileNotFoundError:
            pass

    async def list_uploads_page(self, bucket_uri: ObjectURI, prefix: str = "",
                                key_marker: str = "", upload_id_marker: str = "",
                                page_size: int = 1000
                                ) -> tuple[list[UploadInfo], tuple[str, str] | None]:
        """One ListMultipartUploads request (no retries: :func:`objio.engine.list_uploads`
        retries each page): the uploads in progress under ``prefix`` after the markers, with
        their key, upload id and initiation time (epoch seconds), and the markers
        ``(NextKeyMarker, NextUploadIdMarker)`` that resume the listing (None on the last
        page). ``page_size``: max-uploads, 1 to 1000.

        Raises ObjectStoreError code ``IncompleteListing`` (retryable) for a response that is
        not a whole document (no closing ``</ListMultipartUploadsResult>``: cut short or
        malformed) or that says it is truncated without a marker to go on from."""
        uri = _listing_uri(bucket_uri, prefix)
        params = [("uploads", ""), ("max-uploads", str(page_size))]
        if prefix:
            params.append(("prefix", prefix))
        if key_marker:
            params.append(("key-marker", key_marker))
        if upload_id_marker:
            params.append(("upload-id-marker", upload_id_marker))
        _, _, payload = await self._simple("ListMultipartUploads", uri, "GET",
                                           bucket_uri.bucket, None, params=params)
        root = _listing_xml(payload, "ListMultipartUploadsResult", "ListMultipartUploads", uri)
        uploads = [UploadInfo(_text(u, "Key"), _text(u, "UploadId"),
                              _parse_iso_date(_text(u, "Initiated")))
                   for u in _iter(root, "Upload")]
        if _text(root, "IsTruncated") != "true":
            return uploads, None
        markers = (_text(root, "NextKeyMarker"), _text(root, "NextUploadIdMarker"))
        if not any(markers):
            raise _incomplete("ListMultipartUploads", uri, "IsTruncated is true but neither "
                              "NextKeyMarker nor NextUploadIdMarker says where to go on")
        return uploads, markers

    async def list_uploads(self, bucket_uri: ObjectURI, prefix: str = "") -> list[UploadInfo]:
        """ListMultipartUploads under ``prefix``, every page (no retries; see
        :meth:`list_uploads_page`). Raises ``IncompleteListing`` as it does, and when the
        markers do not move forward."""
        out: list[UploadInfo] = []
        markers: tuple[str, str] | None = None
        seen: set[tuple[str, str]] = set()
        while True:
            uploads, nxt = await self.list_uploads_page(bucket_uri, prefix, *(markers or ("", "")))
            out += uploads
            if nxt is None:
                return out
            if nxt in seen:
                raise _repeated("ListMultipartUploads", _listing_uri(bucket_uri, prefix), nxt)
            seen.add(nxt)
            markers = nxt

    async def list_multipart_uploads(self, bucket_uri: ObjectURI, prefix: str = "") -> list[tuple[str, str]]:
        """ListMultipartUploads: (key, upload_id) of uploads in progress under ``prefix``."""
        return [(u.key, u.upload_id) for u in await self.list_uploads(bucket_uri, prefix)]

    # ----------------------------------------------------------------------------- listing
    async def list_page(
        self,
        bucket_uri: ObjectURI,
        prefix: str = "",
        delimiter: str | None = None,
        start_after: str | None = None,
        page_size: int = 1000,
        continuation_token: str | None = None,
    ) -> ListPage:
        """One ListObjectsV2 request (no retries: :func:`objio.engine.list_pages` retries
        each page). ``next_token`` of the page is None on the last page.

        A page is accepted only as a whole document: it must end with
        ``</ListBucketResult>``, its ``KeyCount`` (where sent) must equal the entries parsed
        (Contents + CommonPrefixes), and ``IsTruncated=true`` must come with a
        ``NextContinuationToken``. Otherwise ObjectStoreError code ``IncompleteListing``
        (retryable), naming ``s3://bucket/prefix``."""
        uri = _listing_uri(bucket_uri, prefix)
        params = [("list-type", "2"), ("max-keys", str(page_size)), ("encoding-type", "url")]
        if prefix:
            params.append(("prefix", prefix))
        if delimiter:
            params.append(("delimiter", delimiter))
        if start_after and continuation_token is None:
            params.append(("start-after", start_after))
        if continuation_token:
            params.append(("continuation-token", continuation_token))
        _, _, payload = await self._simple("ListObjectsV2", uri, "GET", bucket_uri.bucket, None,
                                           params=params)
        page, _, _ = parse_list_page(payload, uri)
        return page

    async def list_pages(
        self,
        bucket_uri: ObjectURI,
        prefix: str = "",
        delimiter: str | None = None,
        start_after: str | None = None,
        page_size: int = 1000,
        continuation_token: str | None = None,
    ) -> AsyncIterator[ListPage]:
        """ListObjectsV2, following continuation tokens; yields one page per request
        (:meth:`list_page`, no retries: use :func:`objio.engine.list_pages` for those).
        ``continuation_token`` (a page's ``next_token``) resumes a listing after that page.
        A continuation token received twice raises ``IncompleteListing``."""
        async for page in following_pages(
                lambda token: self.list_page(bucket_uri, prefix, delimiter, start_after,
                                             page_size, token),
                "ListObjectsV2", _listing_uri(bucket_uri, prefix), continuation_token):
            yield page

    # ----------------------------------------------------------------------------- buckets
    async def create_bucket(self, bucket_uri: ObjectURI) -> None:
        """CreateBucket (with a LocationConstraint outside us-east-1).
        Raises FileExistsError if it exists already."""
        body = None
        hdrs: dict[str, str] = {}
        if self.config.region and self.config.region != "us-east-1":
            body = (
                '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"<LocationConstraint>{self.config.region}</LocationConstraint>"
                "</CreateBucketConfiguration>"
            ).encode()
            hdrs["content-type"] = "application/xml"
        await self._simple("CreateBucket", f"s3://{bucket_uri.bucket}", "PUT", bucket_uri.bucket,
                           None, headers=hdrs, body=body)

    async def list_buckets_page(self, continuation_token: str | None = None
                                ) -> tuple[list[tuple[str, float]], str | None]:
        """One ListBuckets request (no retries: :func:`objio.engine.list_buckets` retries
        it): (name, creation time in epoch seconds) of the buckets the caller owns, and the
        ``ContinuationToken`` of the next page (None: the last; servers send one only to a
        paginated request). Raises ``IncompleteListing`` (retryable) for a response that
        does not end with ``</ListAllMyBucketsResult>``."""
        params = [("continuation-token", continuation_token)] if continuation_token else []
        _, _, payload = await self._simple("ListBuckets", "s3://", "GET", "", None, params=params)
        root = _listing_xml(payload, "ListAllMyBucketsResult", "ListBuckets", "s3://")
        buckets = [(_text(b, "Name"), _parse_iso_date(_text(b, "CreationDate")))
                   for b in _iter(root, "Bucket")]
        return buckets, _text(root, "ContinuationToken") or None

    async def list_buckets(self) -> list[tuple[str, float]]:
        """ListBuckets, every page (no retries): (name, creation time in epoch seconds) of
        the buckets the caller owns."""
        out: list[tuple[str, float]] = []
        token: str | None = None
        seen: set[str] = set()
        while True:
            buckets, token = await self.list_buckets_page(token)
            out += buckets
            if token is None:
                return out
            if token in seen:
                raise _repeated("ListBuckets", "s3://", token)
            seen.add(token)

    async def delete_bucket(self, bucket_uri: ObjectURI) -> None:
        """DeleteBucket (it must be empty: BucketNotEmpty otherwise)."""
        await self._simple("DeleteBucket", f"s3://{bucket_uri.bucket}", "DELETE",
                           bucket_uri.bucket, None, ok=(200, 204))

    def presign(self, obj: ObjectURI, method: str, expires_s: int) -> str:
        """A presigned URL for ``method`` (GET or PUT) on ``obj``, valid ``expires_s`` seconds."""
        creds = self._creds.get()
        if creds is None:
            raise ValueError("presigning needs credentials (an unsigned client has none)")
        host, path = self._target(obj.bucket, obj.key)
        query = self._signer.presign(method, host, path, [], creds, expires_s)
        return f"{self._http_scheme}://{host}{path}?{query}"

    async def head_bucket(self, bucket_uri: ObjectURI) -> None:
        """HeadBucket. Raises FileNotFoundError if the bucket does not exist."""
        await self._simple("HeadBucket", f"s3://{bucket_uri.bucket}", "HEAD", bucket_uri.bucket,
                           None)


_RE_DELETE_END = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?DeleteResult>\s*\Z")
_RE_ERROR_DOC = re.compile(rb"\A\s*(?:<\?xml[^>]*\?>\s*)?<Error>")


def _delete_body(keys: Sequence[str]) -> bytes:
    """The XML of a quiet DeleteObjects request for ``keys`` (escaped for XML)."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?><Delete><Quiet>true</Quiet>']
    for k in keys:
        key = html.escape(k, quote=False)
        if "\r" in key:  # an XML parser would read a raw CR as LF: another key
            key = key.replace("\r", "&#13;")
        parts.append(f"<Object><Key>{key}</Key></Object>")
    parts.append("</Delete>")
    return "".join(parts).encode()


def _is_error_document(payload: bytes) -> bool:
    """Whether a response body is an S3 ``<Error>`` document (sent with HTTP 200 by
    CopyObject, UploadPartCopy and CompleteMultipartUpload when they fail late)."""
    return _RE_ERROR_DOC.match(payload) is not None


def _incomplete_response(op: str, uri: str, root: str) -> ObjectStoreError:
    return ObjectStoreError(f"{op} {uri} failed: the response is not a whole <{root}> document "
                            "(cut short, or malformed)", operation=op, uri=uri,
                            code="IncompleteResponse", retryable=True)


def _copy_result(op: str, uri: str, payload: bytes, headers: Any, root: str) -> CopyResult:
    """The result of a CopyObject / UploadPartCopy 200 response (see
    :meth:`S3Backend.copy_object`)."""
    if _is_error_document(payload):
        raise error_from_response(op, uri, 200, payload)
    body = payload.strip()
    if not body.endswith(f"</{root}>".encode()):
        raise _incomplete_response(op, uri, root)
    try:
        doc = ET.fromstring(body)
    except ET.ParseError:
        raise _incomplete_response(op, uri, root) from None
    etag = _text(doc, "ETag").strip().strip('"')
    if not etag:
        raise ObjectStoreError(f"{op} {uri} failed: no ETag in the response", operation=op,
                               uri=uri, code="MalformedResponse", retryable=True)
    crc_text = _text(doc, "ChecksumCRC32C")
    crc = from_base64(crc_text.strip()) if crc_text and "-" not in crc_text else None
    return CopyResult(etag, crc, headers.get("x-amz-server-side-encryption"))


def _content_range(headers: Any) -> tuple[int, int, int]:
    """(first, last, total) of a ``Content-Range: bytes first-last/total`` header; -1 for what is
    absent or ``*`` (``bytes */total`` of a 416 gives (-1, -1, total))."""
    cr = headers.get("content-range", "") or ""  # header lookups are case-insensitive
    first = last = total = -1
    unit, _, rest = cr.strip().partition(" ")
    if unit.lower() != "bytes":
        return first, last, total
    span, _, tail = rest.partition("/")
    if tail.strip().isdigit():
        total = int(tail)
    a, _, b = span.partition("-")
    if a.strip().isdigit() and b.strip().isdigit():
        first, last = int(a), int(b)
    return first, last, total


def _changed(uri: str, detail: str) -> ObjectStoreError:
    """The object is not what the first response of this read said (size or version): the
    whole read must start again (the engine does, once) or fail."""
    return ObjectStoreError(f"GetObject {uri} failed: the object changed while it was read: "
                            f"{detail}", operation="GetObject", uri=uri, code="ObjectChanged")


def _bad_range(uri: str, start: int | None, end: int | None, cr: str | None) -> ObjectStoreError:
    asked = "the whole object" if start is None else f"bytes={start}-{'' if end is None else end}"
    return ObjectStoreError(f"GetObject {uri} failed: the server answered {asked} with "
                            f"Content-Range {cr!r}", operation="GetObject", uri=uri,
                            code="InvalidRangeResponse", retryable=True)


def _stored_checksum(headers: Any) -> StoredChecksum | None:
    """The stored CRC32C a response (a whole-object GET, or a HEAD in checksum mode) carries:
    ``x-amz-checksum-crc32c`` as ``<base64>`` (FULL_OBJECT) or ``<base64>-N`` (COMPOSITE, of
    an N-part upload); None when absent or malformed."""
    sent = headers.get("x-amz-checksum-crc32c")
    if not sent:
        return None
    value, dash, count = sent.strip().partition("-")
    crc = from_base64(value)
    if crc is None:
        return None
    kind = (headers.get("x-amz-checksum-type") or "").upper()
    if dash:
        if not count.isdigit() or int(count) < 1 or kind == "FULL_OBJECT":
            return None
        return StoredChecksum(crc, int(count))
    if kind == "COMPOSITE":  # a composite value without its part count cannot be checked
        return None
    return StoredChecksum(crc)


def _int_header(headers: Any, name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


_RE_FIELDS = {name: re.compile(rb"<" + name + rb">([^<]*)</" + name + rb">")
              for name in (b"Key", b"Size", b"LastModified", b"ETag", b"Prefix",
                           b"EncodingType", b"IsTruncated", b"NextContinuationToken",
                           b"KeyCount")}
_PAGE_TAGS = (b"<KeyCount>", b"<IsTruncated>", b"<NextContinuationToken>", b"<EncodingType>",
              b"<Prefix>", b"<CommonPrefixes>")
"""A ListObjectsV2 page's own fields: never inside a <Contents> entry."""
_RE_COMMON = re.compile(rb"<CommonPrefixes>\s*<Prefix>([^<]*)</Prefix>\s*</CommonPrefixes>")
_RE_END = {name: re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?" + name.encode() + rb">\s*\Z")
           for name in ("ListBucketResult", "ListMultipartUploadsResult",
                        "ListAllMyBucketsResult")}


def _listing_uri(bucket_uri: ObjectURI, prefix: str) -> str:
    """``s3://bucket/prefix``: what a listing's errors name."""
    return str(bucket_uri.with_key(prefix))


def _incomplete(op: str, uri: str, why: str) -> ObjectStoreError:
    """A listing page that cannot be taken whole (retryable: the engine asks for the same page
    again, then raises this)."""
    where = f"{op} {uri}" if uri else op
    return ObjectStoreError(f"{where} failed: incomplete listing page: {why}", operation=op,
                            uri=uri, code="IncompleteListing", retryable=True)


def _repeated(op: str, uri: str, token: object) -> ObjectStoreError:
    """The continuation of a listing does not move forward (the same token or markers again:
    the listing would repeat keys, or never end)."""
    return ObjectStoreError(
        f"{op} {uri} failed: incomplete listing: the server sent the continuation {token!r} "
        "again (the listing does not move forward)", operation=op, uri=uri,
        code="IncompleteListing")


def _whole(payload: bytes, root: str, op: str, uri: str) -> None:
    """Raise ``IncompleteListing`` unless ``payload`` ends with the closing tag of ``root``
    (then whitespace): a body cut short in a well-framed response reads as a page that
    simply has fewer entries."""
    if not _RE_END[root].search(payload[-1024:]):
        raise _incomplete(op, uri, f"the response does not end with </{root}> (a page cut "
                          "short, or malformed XML)")


def _listing_xml(payload: bytes, root: str, op: str, uri: str) -> ET.Element:
    """The element tree of a whole listing document (see :func:`_whole`)."""
    _whole(payload, root, op, uri)
    try:
        return ET.fromstring(payload)
    except ET.ParseError as e:
        raise _incomplete(op, uri, f"malformed XML from the server: {e}") from e



async def following_pages(fetch: Callable[[str | None], Awaitable[ListPage]], op: str, uri: str,
                          token: str | None = None) -> AsyncIterator[ListPage]:
    """The pages of a listing, ``fetch(token)`` after ``fetch(token)`` following each page's
    ``next_token`` (from ``token``; None: the first page) until a page has none. A token
    received twice raises ``IncompleteListing`` naming ``op`` and ``uri`` (a server going
    round in circles would list forever)."""
    seen: set[str] = {token} if token else set()
    while True:
        page = await fetch(token)
        yield page
        token = page.next_token
        if not token:
            return
        if token in seen:
            raise _repeated(op, uri, token)
        seen.add(token)


def range_request(start: int | None, end: int | None,
                  unranged: bool) -> tuple[str | None, int | None]:
    """A GET's range: (the Range header's value, or None for none; the bytes to receive at
    most, or None for all). ``unranged`` (from byte 0): no header, at most ``end + 1`` bytes.
    Raises ValueError for an unranged GET that does not start at byte 0."""
    if unranged:
        if start:
            raise ValueError(f"an unranged GET starts at byte 0, not {start}")
        return None, None if end is None else end + 1
    if start is not None:
        return f"bytes={start}-{'' if end is None else end}", None
    return None, None


def checked_get(op: str, uri: str, start: int | None, end: int | None,
                into: memoryview | None, alloc: Callable[[int], memoryview] | None,
                status: int, headers: Any, body: bytearray | memoryview | None,
                wrote_into: bool, ttfb: float, *, unranged: bool = False,
                received_crc: int | None = None,
                stored_of: Callable[[Any], StoredChecksum | None] | None = None) -> GetResult:
    """The checks and slicing of a ranged (or unranged) GET's response, whatever the store
    (:meth:`S3Backend.get`, and the Azure backend's Get Blob): a 206 must carry a Content-Range
    starting at ``start`` and a body of its length, a 200 to a ranged request is sliced, a
    416 gives empty data (``ObjectChanged`` with ``into``), ``into`` must get exactly its
    length. ``op`` names the operation in errors; ``stored_of(headers)``: the store's
    checksum of a whole-object response (None: checksums off)."""
    etag = headers.get("etag", "").strip('"')
    if status == 416:
        if into is not None:
            raise _changed(uri, f"the server has no bytes {start}- any more (416; the "
                                f"object is now {_content_range(headers)[2]} bytes)")
        return GetResult(bytearray(), _content_range(headers)[2], etag, ttfb)
    got = len(into) if wrote_into else len(body)  # type: ignore[arg-type]
    whole = False
    if status == 206:
        first, last, total = _content_range(headers)
        if first < 0 or last < first:
            raise _bad_range(uri, start, end, headers.get("content-range"))
        if got < last - first + 1:  # e.g. a cleanly terminated short chunked body
            raise ObjectStoreError(
                f"{op} {uri} failed: body cut short ({got} of {last - first + 1} "
                f"bytes)", operation=op, uri=uri, code="IncompleteBody",
                retryable=True)
        want_first = 0 if start is None else start
        want_last = (total - 1) if end is None or total < 0 else min(end, total - 1)
        if got != last - first + 1 or first != want_first or (
                total >= 0 and last != want_last):
            raise _bad_range(uri, start, end, headers.get("content-range"))
        if total < 0:
            total = first + got if end is None else -1
        whole = first == 0 and last == total - 1
    else:  # 200: the whole object (unranged: its first bytes), whatever was asked
        total = got
        if unranged:  # received up to ``end + 1`` bytes of Content-Length
            declared = _int_header(headers, "content-length")
            if declared is not None and declared > got:
                total = declared
        whole = got == total
        lo = 0 if start is None else start
        hi = total if end is None else min(end + 1, total)
        if (lo, hi) != (0, got):  # a Range the server ignored: take the slice asked
            received = into if wrote_into else body
            assert received is not None
            piece = memoryview(received)[lo:max(lo, hi)]
            if into is not None:
                if len(into) != len(piece):
                    raise _changed(uri, f"expected {len(into)} bytes at {lo}, the object "
                                        f"has {len(piece)} there ({total} bytes in all)")
                into[:] = piece
                return GetResult(bytearray(), total, etag, ttfb)
            sliced = alloc(len(piece)) if alloc is not None else new_buffer(len(piece))
            sliced[:] = piece
            return GetResult(sliced, total, etag, ttfb)
    # a whole-object response (200, also when cut short on purpose: unranged) carries it
    stored = stored_of(headers) if (whole or status == 200) and stored_of is not None \
        else None
    if into is not None and not wrote_into:
        assert body is not None
        if len(body) != len(into):
            raise _changed(uri, f"expected {len(into)} bytes at {start}, the server sent "
                                f"{len(body)} ({headers.get('content-range') or 'no range'})")
        into[:] = body
        body = None
    return GetResult(bytearray() if body is None else body, total, etag, ttfb, stored,
                     received_crc32c=received_crc)


def _part_number(params: Sequence[tuple[str, str]]) -> int | None:
    for name, value in params:
        if name == "partNumber":
            return int(value)
    return None


def _parse_list_page(payload: bytes, uri: str = ""
                     ) -> tuple[list[ObjectInfo], list[str], bool, str | None]:
    """A ListObjectsV2 response: (objects, common prefixes, IsTruncated,
    NextContinuationToken), every ObjectInfo decoded (see :func:`parse_list_page`, which
    decodes only the keys at once)."""
    page, truncated, token = parse_list_page(payload, uri)
    return page.objects, page.prefixes, truncated, token


def parse_list_page(payload: bytes, uri: str = "") -> tuple[ListPage, bool, str | None]:
    """A ListObjectsV2 response: (the page, IsTruncated, NextContinuationToken); the page's
    ``next_token`` is the token when the page is truncated, else None.

    Only a whole page is accepted (else ObjectStoreError code ``IncompleteListing``,
    retryable, naming ``uri``): the document ends with ``</ListBucketResult>``; ``KeyCount``,
    where sent, equals the objects plus common prefixes parsed (what AWS S3, MinIO and
    SeaweedFS count); ``IsTruncated=true`` comes with a ``NextContinuationToken``.

    Parsing is most of a listing's client CPU (a page holds up to 1000 entries), so the usual
    shape (each ``<Contents>`` with one ``Key``, no attributes or namespace prefixes, as
    every S3 server sends it) is read with regular expressions, without an element tree, and
    in bulk: the page's keys are joined, decoded (UTF-8, XML entities, the URL encoding asked
    for) and split in one pass each. Sizes, dates and ETags stay in the response until a
    caller asks for them (:class:`objio.backend.ListPage` ``sizes`` / ``objects``), so a
    listing of keys does not pay for them. Anything else (the counts do not match) goes
    through ElementTree, eagerly.
    """
    op = "ListObjectsV2"
    _whole(payload, "ListBucketResult", op, uri)
    f = _RE_FIELDS
    n = payload.count(b"<Contents>")
    raw_keys = f[b"Key"].findall(payload)
    # The page's own fields (IsTruncated, KeyCount, the token, common prefixes...) are outside
    # the run of <Contents> entries (no key holds a "<": it is sent as "&lt;"): only that part
    # is searched for them. A field inside the run (entries before and after it) goes through
    # ElementTree, which sees every field wherever it is.
    first, last = payload.find(b"<Contents>"), payload.rfind(b"</Contents>")
    run = first >= 0 and last > first
    meta = payload[:first] + payload[last:] if run else payload
    interleaved = run and any(payload.find(t, first, last) >= 0 for t in _PAGE_TAGS)
    has_common = b"<CommonPrefixes>" in meta
    commons = _RE_COMMON.findall(meta) if has_common else []
    page: ListPage
    if (not interleaved and len(raw_keys) == n and b"<ListBucketResult" in meta
            and len(commons) == (meta.count(b"<CommonPrefixes>") if has_common else 0)
            and meta.count(b"<Prefix>") == len(f[b"Prefix"].findall(meta))):
        def one(name: bytes) -> str:
            m = f[name].search(meta)
            return _unescape(m.group(1)) if m else ""

        url = one(b"EncodingType") == "url"
        keys = _decode_texts(raw_keys, url)
        prefixes = _decode_texts(commons, url)
        truncated, token = one(b"IsTruncated") == "true", one(b"NextContinuationToken") or None
        key_count = one(b"KeyCount")
        page = ListPage(keys=keys, fields=_PageFields(payload, n, uri), prefixes=prefixes,
                        next_token=token if truncated else None)
    else:
        root = _listing_xml(payload, "ListBucketResult", op, uri)
        objects, prefixes = _tree_entries(root)
        truncated = _text(root, "IsTruncated") == "true"
        token = _text(root, "NextContinuationToken") or None
        key_count = _text(root, "KeyCount")
        page = ListPage(objects, prefixes, token if truncated else None)
    if key_count and key_count.strip() != str(len(page) + len(page.prefixes)):
        raise _incomplete(op, uri, f"KeyCount is {key_count.strip()} but the page holds "
                          f"{len(page)} objects and {len(page.prefixes)} common prefixes")
    if truncated and not token:
        raise _incomplete(op, uri, "IsTruncated is true but there is no NextContinuationToken")
    return page, truncated, token


def _tree_entries(root: ET.Element) -> tuple[list[ObjectInfo], list[str]]:
    """The objects and common prefixes of a ListBucketResult element tree."""
    url_encoded = _text(root, "EncodingType") == "url"
    dec: Callable[[str], str] = unquote_plus if url_encoded else (lambda s: s)
    objects = [
        ObjectInfo(
            key=dec(_text(c, "Key")),
            size=int(_text(c, "Size") or 0),
            last_modified=_parse_iso_date(_text(c, "LastModified")),
            etag=_text(c, "ETag").strip('"'),
        )
        for c in _iter(root, "Contents")
    ]
    return objects, [dec(_text(p, "Prefix")) for p in _iter(root, "CommonPrefixes")]


class _PageFields:
    """The sizes, dates and ETags of a page parsed by :func:`parse_list_page`, decoded from
    the response body when first asked for (:class:`objio.backend.PageFields`)."""

    __slots__ = ("payload", "n", "uri", "_sizes", "_rest")

    def __init__(self, payload: bytes, n: int, uri: str) -> None:
        self.payload = payload
        self.n = n
        self.uri = uri
        self._sizes: list[bytes] | None = None
        self._rest: tuple[list[bytes], list[bytes]] | None = None

    def _tree(self) -> list[ObjectInfo]:
        """Every entry through ElementTree (an entry without one of the fields, or another
        shape): the page was whole and its keys were read, so this cannot fail but by a
        server sending two different documents in one."""
        root = _listing_xml(self.payload, "ListBucketResult", "ListObjectsV2", self.uri)
        objects, _ = _tree_entries(root)
        if len(objects) != self.n:
            raise _incomplete("ListObjectsV2", self.uri, "the entries do not all have a key")
        return objects

    def _raw_sizes(self) -> list[bytes] | None:
        if self._sizes is None:
            self._sizes = _RE_FIELDS[b"Size"].findall(self.payload)
        return self._sizes if len(self._sizes) == self.n else None

    def sizes(self, start: int, stop: int) -> list[int]:
        raw = self._raw_sizes()
        if raw is None:
            return [o.size for o in self._tree()[start:stop]]
        part = raw[start:stop]
        try:
            return list(map(int, part))
        except ValueError:  # an empty <Size/> is 0, as ElementTree's path reads it
            return [int(s or 0) for s in part]

    def infos(self, keys: Sequence[str], start: int, stop: int) -> list[ObjectInfo]:
        f = _RE_FIELDS
        if self._rest is None:
            self._rest = (f[b"LastModified"].findall(self.payload),
                          f[b"ETag"].findall(self.payload))
        dates, etags = self._rest
        if len(dates) != self.n or len(etags) != self.n or self._raw_sizes() is None:
            tree = self._tree()[start:stop]
            return [_info(k, o.size, o.last_modified, o.etag)
                    for k, o in zip(keys, tree, strict=True)]
        sizes = self.sizes(start, stop)
        times = _parse_iso_dates(dates[start:stop])
        tags = _decode_etags(etags[start:stop])
        out: list[ObjectInfo] = []
        append = out.append
        new, cls = _new, ObjectInfo
        for k, s, t, e in zip(keys, sizes, times, tags, strict=True):  # = _info(k, s, t, e)
            o = new(cls)
            d = o.__dict__
            d["key"] = k
            d["size"] = s
            d["last_modified"] = t
            d["etag"] = e
            d["crc32c"] = None
            d["stored"] = None
            append(o)
        return out


_new = object.__new__


def _info(key: str, size: int, last_modified: float, etag: str) -> ObjectInfo:
    """``ObjectInfo(key, size, last_modified, etag)``, made without the frozen dataclass's
    ``__init__`` (one ``object.__setattr__`` per field: 2.5 times slower), the same object."""
    o = _new(ObjectInfo)
    d = o.__dict__
    d["key"] = key
    d["size"] = size
    d["last_modified"] = last_modified
    d["etag"] = etag
    d["crc32c"] = None
    d["stored"] = None
    return o


def _decode_texts(raw: list[bytes], url: bool) -> list[str]:
    """XML text contents (UTF-8, XML entities, and with ``url`` the URL encoding) decoded in
    one pass over all of them: joined with NUL, which XML text cannot hold, then split."""
    if not raw:
        return []
    text = b"\x00".join(raw).decode()
    if "&" in text:
        text = _xml_unescape(text)
    if url and ("%" in text or "+" in text):
        decoded = unquote_plus(text)
        if decoded.count("\x00") != len(raw) - 1:  # a key holding %00: one at a time
            return [unquote_plus(_xml_unescape(r.decode())) for r in raw]
        text = decoded
    return text.split("\x00")


def _decode_etags(raw: list[bytes]) -> list[str]:
    """ETag texts decoded (:func:`_decode_texts`) without their quotes: an entity tag is
    ``"..."`` and holds no other ``"`` (RFC 9110 section 8.8.3), so every quote goes at once."""
    if not raw:
        return []
    text = b"\x00".join(raw).decode()
    if "&" in text:
        text = _xml_unescape(text)
    return text.replace('"', "").split("\x00")


def _xml_unescape(text: str) -> str:
    """XML entities replaced: ``&quot;``/``&#34;`` (in every ETag) by plain replacement, the
    rest by :func:`html.unescape` (every ``&`` in XML text starts an entity, so the order
    does not matter)."""
    if "&" not in text:
        return text
    text = text.replace("&quot;", '"').replace("&#34;", '"')
    return html.unescape(text) if "&" in text else text


def _unescape(raw: bytes) -> str:
    return _xml_unescape(raw.decode())


_DIGITS = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])
"""Positions of the digits of ``YYYY-MM-DDTHH:MM:SS`` (the separators are at 4, 7, 10, 13, 16)."""


def _parse_iso_dates(raw: list[bytes]) -> list[float]:
    """Epoch seconds of ``LastModified`` values (UTC), the same floats as
    :func:`_parse_iso_date` gives one at a time.

    A page's dates all in the same shape (``2025-01-02T03:04:05Z``, or with a fraction of a
    second of the same length, as every S3 server sends them) are decoded at once as an array
    of digits (civil date to days: H. Hinnant's ``days_from_civil``); a page with dates of
    mixed shapes, one at a time (:func:`_parse_iso_dates_each`)."""
    n = len(raw)
    width = len(raw[0]) if n else 0
    if n < 8 or width < 20 or width == 21:
        return _parse_iso_dates_each(raw)
    blob = b"".join(raw)
    if len(blob) != n * width:
        return _parse_iso_dates_each(raw)
    c = np.frombuffer(blob, dtype=np.uint8).reshape(n, width)
    frac = width - 21 if width > 20 else -1  # digits after the "." (-1: none, "...SSZ")
    if not ((c[:, 4] == 45).all() and (c[:, 7] == 45).all() and (c[:, 10] == 84).all()
            and (c[:, 13] == 58).all() and (c[:, 16] == 58).all() and (c[:, -1] == 90).all()
            and (frac < 0 or (c[:, 19] == 46).all())):  # - - T : : Z (.)
        return _parse_iso_dates_each(raw)
    cols = _DIGITS if frac < 0 else np.concatenate([_DIGITS, np.arange(20, 20 + frac)])
    d = c[:, cols].astype(np.int64) - 48
    if ((d < 0) | (d > 9)).any():
        return _parse_iso_dates_each(raw)
    year = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    month, day = d[:, 4] * 10 + d[:, 5], d[:, 6] * 10 + d[:, 7]
    hour, minute = d[:, 8] * 10 + d[:, 9], d[:, 10] * 10 + d[:, 11]
    if ((month < 1) | (month > 12) | (day < 1) | (day > 31) | (hour > 23) | (minute > 59)).any():
        return _parse_iso_dates_each(raw)
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    minutes = (days * 86400 + hour * 3600 + minute * 60).astype(np.float64)
    seconds = d[:, 12] * 10 + d[:, 13]
    if frac > 0:  # float("05.123") is 5123 / 1000, correctly rounded either way
        scale = 10 ** frac
        whole = seconds * scale
        for i in range(frac):
            whole += d[:, 14 + i] * 10 ** (frac - 1 - i)
        seconds_f = whole / scale
    else:
        seconds_f = seconds.astype(np.float64)
    values = minutes + seconds_f
    if (values < 0).any():  # before 1970: as the date-by-date parser reads them
        return _parse_iso_dates_each(raw)
    out: list[float] = values.tolist()
    return out


def _parse_iso_dates_each(raw: list[bytes]) -> list[float]:
    """Epoch seconds of ``LastModified`` values: the form every S3 server sends
    (``2025-01-02T03:04:05Z``, with or without a fraction of a second) from the epoch of its
    minute (cached) plus its seconds; anything else through :func:`_parse_iso_date`."""
    out: list[float] = []
    append = out.append
    minute = _minute_epoch
    last, value = b"", 0.0
    for d in raw:
        if d != last:  # (objects written together often share their second)
            last = d
            value = -1.0
            if len(d) >= 20 and d[-1] == 90 and d[16] == 58 and d[19] in (90, 46):  # Z : Z .
                try:
                    value = minute(d[:16]) + float(d[17:-1])
                except ValueError:
                    pass
            if value < 0:
                value = _parse_iso_date(d.decode())
        append(value)
    return out


@functools.lru_cache(maxsize=4096)
def _minute_epoch(stamp: bytes) -> float:
    """Epoch seconds of ``YYYY-MM-DDTHH:MM`` (UTC). Raises ValueError for another form."""
    if stamp[4] != 45 or stamp[7] != 45 or stamp[10] != 84 or stamp[13] != 58:  # - - T :
        raise ValueError(stamp)
    fields = (stamp[0:4], stamp[5:7], stamp[8:10], stamp[11:13], stamp[14:16])
    if not all(x.isdigit() for x in fields):
        raise ValueError(stamp)
    y, mo, d, h, mi = map(int, fields)
    return float(calendar.timegm((y, mo, d, h, mi, 0, 0, 0, 0)))


def _xml(payload: bytes) -> ET.Element:
    try:
        return ET.fromstring(payload)
    except ET.ParseError as e:
        raise ObjectStoreError(f"malformed XML from the server: {e}", code="MalformedXML") from e


def _iter(el: ET.Element, tag: str) -> list[ET.Element]:
    """Every ``tag`` element under ``el`` (in the S3 namespace, or in none)."""
    return list(el.iter(f"{_NS}{tag}")) or list(el.iter(tag))


def _text(el: ET.Element, tag: str) -> str:
    found = el.find(f"{_NS}{tag}")
    if found is None:
        found = el.find(tag)  # servers that omit the namespace
    return (found.text or "") if found is not None else ""
