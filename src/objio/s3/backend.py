"""The S3 protocol over aiohttp: requests, SigV4, XML, multipart. No concurrency policy here
(that is :mod:`objio.engine`): each method is one request (or one paginated listing).

All methods are coroutines that must run on the engine's event loop (the aiohttp session is
bound to it). Errors are raised already translated (:mod:`objio.errors`); transient ones carry
``retryable=True`` for the engine's retry loop.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import html
import os
import re
import ssl
import time
from typing import Any, AsyncIterator, Callable, Sequence
from urllib.parse import unquote_plus, urlsplit
from xml.etree import ElementTree as ET

import aiohttp
from yarl import URL

from .._buffers import new_buffer
from ..backend import GetResult, ListPage, ObjectInfo
from ..config import ClientConfig, MiB
from ..errors import ObjectStoreError, ObjectTimeoutError, error_from_response
from ..uri import ObjectURI
from .credentials import CredentialProvider
from .fastget import FastGetClient, ShortBody, Unsupported, WrongLength
from .sigv4 import EMPTY_SHA256, UNSIGNED_PAYLOAD, SigV4Signer, canonical_query, uri_encode_path

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def _parse_http_date(value: str | None) -> float:
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


_SPLIT_BODY_MIN = 1024 * 1024


class _SplitBodyPayload(aiohttp.BytesPayload):
    """A request body sent as a small first piece, then the rest as one memoryview.

    aiohttp joins the request headers with the first body write (``b"".join``: on Python
    < 3.12.9 it avoids ``writelines``), which copies the whole body once more per request;
    with a 64 KiB first piece only that piece is copied and the rest goes straight to the
    transport.
    """

    async def write(self, writer: Any) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(self, writer: Any, content_length: int | None) -> None:
        mv = memoryview(self._value)
        if content_length is not None:
            mv = mv[:content_length]
        head = 64 * 1024
        await writer.write(mv[:head])
        if len(mv) > head:
            await writer.write(mv[head:])


def _connection_error(op: str, uri: str, exc: BaseException) -> ObjectStoreError:
    # (builtin TimeoutError and asyncio.TimeoutError differ before Python 3.11)
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return ObjectTimeoutError(f"{op} {uri} timed out", operation=op, uri=uri,
                                  code="Timeout", retryable=True)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return ObjectStoreError(f"{op} {uri} failed: response body cut short ({exc})",
                                operation=op, uri=uri, code="IncompleteBody", retryable=True)
    return ObjectStoreError(f"{op} {uri} failed: connection error: {exc}", operation=op,
                            uri=uri, code="ConnectionError", retryable=True)


class S3Backend:
    """S3 operations for one resolved :class:`ClientConfig`."""

    scheme = "s3"

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        assert config.region is not None
        self._signer = SigV4Signer(config.region)
        self._creds = CredentialProvider(config)
        endpoint = config.endpoint_url or f"https://s3.{config.region}.amazonaws.com"
        parts = urlsplit(endpoint)
        self._http_scheme = parts.scheme
        self._netloc = parts.netloc
        self._base_path = parts.path.rstrip("/")
        self._path_style = config.path_style
        self._sign_payload = bool(config.sign_payload)
        self._session: aiohttp.ClientSession | None = None
        # One TLS context per backend, made now: it honours AWS_CA_BUNDLE (a PEM file of
        # trusted CAs, as botocore does) and SSL_CERT_FILE/SSL_CERT_DIR as set at this point.
        self._ssl: ssl.SSLContext | None = None
        if self._http_scheme == "https":
            self._ssl = ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE") or None)
        self._fast: FastGetClient | None = None
        if os.environ.get("OBJIO_FAST_GET", "1") != "0":
            self._fast = FastGetClient(self._http_scheme, config.connect_timeout_s or 10.0,
                                       config.read_timeout_s or 30.0, ssl_context=self._ssl)

    # ----------------------------------------------------------------------------- plumbing
    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            cfg = self.config
            connector = aiohttp.TCPConnector(
                limit=max(64, 2 * (cfg.max_in_flight or 64)),
                limit_per_host=0,
                ttl_dns_cache=300,
                keepalive_timeout=30,
                ssl=self._ssl if self._ssl is not None else True,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=cfg.connect_timeout_s, sock_read=cfg.read_timeout_s
                ),
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
                read_bufsize=4 * MiB,
            )
        return self._session

    async def close(self) -> None:
        if self._fast is not None:
            self._fast.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _target(self, bucket: str, key: str | None) -> tuple[str, str]:
        """(Host header, encoded path) for a bucket (key None) or an object."""
        if self._path_style or "." in bucket:
            host = self._netloc
            path = f"{self._base_path}/{bucket}"
            if key is not None:
                path += "/" + key
        else:
            host = f"{bucket}.{self._netloc}"
            path = self._base_path + "/" + (key or "")
        return host, uri_encode_path(path)

    def _prepare(
        self,
        method: str,
        bucket: str,
        key: str | None,
        params: Sequence[tuple[str, str]] = (),
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> tuple[str, str, dict[str, str]]:
        """Sign a request: returns (Host header, request target "/path?query", headers)."""
        host, path = self._target(bucket, key) if bucket else (
            self._netloc, uri_encode_path(self._base_path + "/"))
        query = canonical_query(params) if params else ""
        hdrs = headers if headers is not None else {}
        if body is None:
            payload_hash = EMPTY_SHA256
        elif self._sign_payload:
            payload_hash = hashlib.sha256(body).hexdigest()
        else:
            payload_hash = UNSIGNED_PAYLOAD
        creds = self._creds.get()
        if creds is not None:
            self._signer.sign(method, host, path, query, hdrs, payload_hash, creds)
        else:
            hdrs["host"] = host
        return host, (path + "?" + query) if query else path, hdrs

    def _url(self, host: str, target: str) -> URL:
        return URL(f"{self._http_scheme}://{host}{target}", encoded=True)

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
    ) -> tuple[int, Any, bytes]:
        """Send one request, read the whole (small) response; raise translated errors."""
        host, target, hdrs = self._prepare(method, bucket, key, params, headers, body)
        if body is not None and not isinstance(body, str) and len(body) >= _SPLIT_BODY_MIN:
            body = _SplitBodyPayload(body)
        try:
            async with self._get_session().request(method, self._url(host, target), headers=hdrs,
                                                   data=body) as r:
                payload = await r.read()
                status, rh = r.status, r.headers
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            raise _connection_error(op, uri, e) from e
        if status not in ok:
            raise error_from_response(op, uri, status, payload)
        return status, rh, payload

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
    ) -> GetResult:
        """GetObject, optionally of the byte range [start, end] (inclusive, like HTTP).

        With ``into`` (a writable byte memoryview of exactly the expected length) the body is
        written there and ``data`` is empty; with ``alloc`` the body goes into ``alloc(n)``
        (returned as ``data``); else into a new bytearray. A range starting past the end gives
        empty data.
        """
        uri = str(obj)
        hdrs: dict[str, str] = {}
        if start is not None:
            hdrs["range"] = f"bytes={start}-{'' if end is None else end}"
        if if_match:
            hdrs["if-match"] = f'"{if_match}"'
        host, target, hdrs = self._prepare("GET", obj.bucket, obj.key, (), hdrs)
        if self._fast is not None:
            try:
                return await self._fast_get(uri, host, target, hdrs, into, alloc)
            except Unsupported:
                pass  # e.g. a chunked response: the general client handles it
        t0 = time.perf_counter()
        try:
            async with self._get_session().get(self._url(host, target), headers=hdrs) as r:
                ttfb = time.perf_counter() - t0
                status = r.status
                if status not in (200, 206):
                    body = await r.read()
                    if status == 416:  # range starts at/after the end of the object
                        return GetResult(bytearray(), _total_from_range(r.headers, -1), "", ttfb)
                    raise error_from_response("GetObject", uri, status, body)
                n = r.content_length
                etag = r.headers.get("ETag", "").strip('"')
                total = _total_from_range(r.headers, n) if status == 206 else (n or 0)
                if n is None:  # chunked transfer: no preallocation possible
                    data = bytearray(await r.read())
                    if into is not None:
                        into[: len(data)] = data
                        data = bytearray()
                    return GetResult(data, total if total >= 0 else len(data), etag, ttfb)
                if into is not None:
                    if len(into) != n:
                        raise ObjectStoreError(
                            f"GetObject {uri}: expected {len(into)} bytes, server sends {n}",
                            operation="GetObject", uri=uri, code="UnexpectedLength",
                        )
                    await _read_body_into(r.content, into, n, uri)
                    return GetResult(bytearray(), total, etag, ttfb)
                if alloc is not None:
                    mv = alloc(n)
                    await _read_body_into(r.content, mv, n, uri)
                    return GetResult(mv, total, etag, ttfb)
                buf = new_buffer(n)
                await _read_body_into(r.content, memoryview(buf), n, uri)
                return GetResult(buf, total, etag, ttfb)
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            raise _connection_error("GetObject", uri, e) from e

    async def _fast_get(self, uri: str, host: str, target: str, hdrs: dict[str, str],
                        into: memoryview | None,
                        alloc: Callable[[int], memoryview] | None) -> GetResult:
        assert self._fast is not None
        try:
            r = await self._fast.get(host, target, hdrs, into, alloc)
        except ShortBody as e:
            raise ObjectStoreError(f"GetObject {uri} failed: {e}", operation="GetObject", uri=uri,
                                   code="IncompleteBody", retryable=True) from e
        except WrongLength as e:
            raise ObjectStoreError(f"GetObject {uri}: {e}", operation="GetObject", uri=uri,
                                   code="UnexpectedLength") from e
        except (OSError, asyncio.TimeoutError) as e:  # ConnectionError, TimeoutError, socket errors
            raise _connection_error("GetObject", uri, e) from e
        status = r.status
        if status not in (200, 206):
            if status == 416:  # range starts at/after the end of the object
                return GetResult(bytearray(), _total_from_range(r.headers, -1), "", r.ttfb_s)
            raise error_from_response("GetObject", uri, status, bytes(r.body or b""))
        n = int(r.headers["content-length"])
        total = _total_from_range(r.headers, n) if status == 206 else n
        etag = r.headers.get("etag", "").strip('"')
        return GetResult(r.body if r.body is not None else bytearray(), total, etag, r.ttfb_s)

    async def head(self, obj: ObjectURI) -> ObjectInfo:
        """HeadObject. Raises FileNotFoundError if absent."""
        _, h, _ = await self._simple("HeadObject", str(obj), "HEAD", obj.bucket, obj.key)
        return ObjectInfo(
            key=obj.key,
            size=int(h.get("Content-Length", 0)),
            last_modified=_parse_http_date(h.get("Last-Modified")),
            etag=h.get("ETag", "").strip('"'),
        )

    async def put(self, obj: ObjectURI, data: Any, *, if_none_match: bool = False) -> str:
        """PutObject of a bytes-like ``data``; returns the ETag. With ``if_none_match`` the
        write fails with FileExistsError when the key exists (conditional write)."""
        hdrs = {"if-none-match": "*"} if if_none_match else {}
        _, h, _ = await self._simple("PutObject", str(obj), "PUT", obj.bucket, obj.key,
                                     headers=hdrs, body=data)
        return str(h.get("ETag", "")).strip('"')

    async def delete(self, obj: ObjectURI) -> None:
        """DeleteObject (S3 answers 204 whether or not the key existed)."""
        await self._simple("DeleteObject", str(obj), "DELETE", obj.bucket, obj.key,
                           ok=(200, 204))

    async def delete_many(self, bucket_uri: ObjectURI, keys: Sequence[str]) -> list[tuple[str, str, str]]:
        """DeleteObjects for up to 1000 keys; returns (key, code, message) per failed key."""
        if len(keys) > 1000:
            raise ValueError("delete_many takes at most 1000 keys per request")
        root = ET.Element("Delete")
        ET.SubElement(root, "Quiet").text = "true"
        for k in keys:
            ET.SubElement(ET.SubElement(root, "Object"), "Key").text = k
        body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        _, _, payload = await self._simple(
            "DeleteObjects", str(bucket_uri), "POST", bucket_uri.bucket, None,
            params=(("delete", ""),), headers={"content-md5": md5,
                                               "content-type": "application/xml"}, body=body,
        )
        errors = []
        for err in _xml(payload).iter(f"{_NS}Error"):
            errors.append((_text(err, "Key"), _text(err, "Code"), _text(err, "Message")))
        return errors

    # ----------------------------------------------------------------------------- multipart
    async def create_multipart(self, obj: ObjectURI) -> str:
        """CreateMultipartUpload; returns the UploadId."""
        _, _, payload = await self._simple("CreateMultipartUpload", str(obj), "POST",
                                           obj.bucket, obj.key, params=(("uploads", ""),))
        upload_id = _text(_xml(payload), "UploadId")
        if not upload_id:
            raise ObjectStoreError(f"CreateMultipartUpload {obj}: no UploadId in response",
                                   operation="CreateMultipartUpload", uri=str(obj))
        return upload_id

    async def upload_part(self, obj: ObjectURI, upload_id: str, part_number: int, data: Any) -> str:
        """UploadPart (part_number 1..10000); returns the part's ETag (quoted, as S3 sends)."""
        _, h, _ = await self._simple(
            "UploadPart", str(obj), "PUT", obj.bucket, obj.key,
            params=(("partNumber", str(part_number)), ("uploadId", upload_id)), body=data,
        )
        return str(h.get("ETag", ""))

    async def complete_multipart(self, obj: ObjectURI, upload_id: str,
                                 parts: Sequence[tuple[int, str]]) -> str:
        """CompleteMultipartUpload with (part_number, etag) pairs; returns the ETag."""
        root = ET.Element("CompleteMultipartUpload")
        for num, etag in parts:
            p = ET.SubElement(root, "Part")
            ET.SubElement(p, "PartNumber").text = str(num)
            ET.SubElement(p, "ETag").text = etag
        body = ET.tostring(root, encoding="utf-8")
        _, _, payload = await self._simple(
            "CompleteMultipartUpload", str(obj), "POST", obj.bucket, obj.key,
            params=(("uploadId", upload_id),), headers={"content-type": "application/xml"},
            body=body,
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

    async def list_multipart_uploads(self, bucket_uri: ObjectURI, prefix: str = "") -> list[tuple[str, str]]:
        """ListMultipartUploads: (key, upload_id) of uploads in progress under ``prefix``."""
        params = [("uploads", "")]
        if prefix:
            params.append(("prefix", prefix))
        _, _, payload = await self._simple("ListMultipartUploads", str(bucket_uri), "GET",
                                           bucket_uri.bucket, None, params=params)
        return [(_text(u, "Key"), _text(u, "UploadId"))
                for u in _xml(payload).iter(f"{_NS}Upload")]

    # ----------------------------------------------------------------------------- listing
    async def list_pages(
        self,
        bucket_uri: ObjectURI,
        prefix: str = "",
        delimiter: str | None = None,
        start_after: str | None = None,
        page_size: int = 1000,
        continuation_token: str | None = None,
    ) -> AsyncIterator[ListPage]:
        """ListObjectsV2, following continuation tokens; yields one page per request.
        ``continuation_token`` (a page's ``next_token``) resumes a listing after that page."""
        token: str | None = continuation_token
        while True:
            params = [("list-type", "2"), ("max-keys", str(page_size)), ("encoding-type", "url")]
            if prefix:
                params.append(("prefix", prefix))
            if delimiter:
                params.append(("delimiter", delimiter))
            if start_after and token is None:
                params.append(("start-after", start_after))
            if token:
                params.append(("continuation-token", token))
            _, _, payload = await self._simple("ListObjectsV2", str(bucket_uri), "GET",
                                               bucket_uri.bucket, None, params=params)
            objects, prefixes, truncated, token = _parse_list_page(payload)
            if not truncated:
                token = None
            yield ListPage(objects, prefixes, token)
            if not token:
                return

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

    async def list_buckets(self) -> list[tuple[str, float]]:
        """ListBuckets: (name, creation time in epoch seconds) of the buckets the caller owns."""
        _, _, payload = await self._simple("ListBuckets", "s3://", "GET", "", None)
        return [(_text(b, "Name"), _parse_iso_date(_text(b, "CreationDate")))
                for b in _xml(payload).iter(f"{_NS}Bucket")]

    async def head_bucket(self, bucket_uri: ObjectURI) -> None:
        """HeadBucket. Raises FileNotFoundError if the bucket does not exist."""
        await self._simple("HeadBucket", f"s3://{bucket_uri.bucket}", "HEAD", bucket_uri.bucket,
                           None)


async def _read_body_into(content: aiohttp.StreamReader, mv: memoryview, n: int, uri: str) -> None:
    pos = 0
    readany = content.readany
    while pos < n:
        chunk = await readany()
        if not chunk:
            break
        end = pos + len(chunk)
        if end > n:
            raise ObjectStoreError(f"GetObject {uri}: body longer than Content-Length",
                                   operation="GetObject", uri=uri, code="UnexpectedLength")
        mv[pos:end] = chunk
        pos = end
    if pos != n:
        raise ObjectStoreError(
            f"GetObject {uri} failed: body cut short ({pos} of {n} bytes)",
            operation="GetObject", uri=uri, code="IncompleteBody", retryable=True,
        )


def _total_from_range(headers: Any, default: int | None) -> int:
    cr = headers.get("content-range", "")  # aiohttp headers are case-insensitive
    if "/" in cr:
        tail = cr.rsplit("/", 1)[1]
        if tail.isdigit():
            return int(tail)
    return -1 if default is None else default


_RE_FIELDS = {name: re.compile(rb"<" + name + rb">([^<]*)</" + name + rb">")
              for name in (b"Key", b"Size", b"LastModified", b"ETag", b"Prefix",
                           b"EncodingType", b"IsTruncated", b"NextContinuationToken")}
_RE_COMMON = re.compile(rb"<CommonPrefixes>\s*<Prefix>([^<]*)</Prefix>\s*</CommonPrefixes>")


def _parse_list_page(payload: bytes) -> tuple[list[ObjectInfo], list[str], bool, str | None]:
    """A ListObjectsV2 response: (objects, common prefixes, IsTruncated, NextContinuationToken).

    A listing page holds up to 1000 entries and parsing it is most of a listing's client CPU,
    so the usual shape (each ``<Contents>`` with one ``Key``, ``LastModified``, ``ETag`` and
    ``Size``, no attributes or namespace prefixes, as every S3 server sends it) is read with
    regular expressions, without building an element tree (2x faster); anything else (the
    counts do not match) goes through ElementTree.
    """
    f = _RE_FIELDS
    n = payload.count(b"<Contents>")
    keys = f[b"Key"].findall(payload)
    sizes = f[b"Size"].findall(payload)
    dates = f[b"LastModified"].findall(payload)
    etags = f[b"ETag"].findall(payload)
    commons = _RE_COMMON.findall(payload)
    if (len(keys) == len(sizes) == len(dates) == len(etags) == n
            and len(commons) == payload.count(b"<CommonPrefixes>")
            and payload.count(b"<Prefix>") == len(f[b"Prefix"].findall(payload))
            and b"<ListBucketResult" in payload):
        def one(name: bytes) -> str:
            m = f[name].search(payload)
            return _unescape(m.group(1)) if m else ""

        url = one(b"EncodingType") == "url"
        objects = []
        for k, size, date, etag in zip(keys, sizes, dates, etags, strict=True):
            key = _unescape(k)
            if url and ("%" in key or "+" in key):
                key = unquote_plus(key)
            objects.append(ObjectInfo(key=key, size=int(size or 0),
                                      last_modified=_parse_iso_date_cached(date.decode()),
                                      etag=_unescape(etag).strip('"')))
        prefixes = [_unescape(p) for p in commons]
        if url:
            prefixes = [unquote_plus(p) for p in prefixes]
        return objects, prefixes, one(b"IsTruncated") == "true", one(b"NextContinuationToken") or None
    root = _xml(payload)
    url_encoded = _text(root, "EncodingType") == "url"
    dec: Callable[[str], str] = unquote_plus if url_encoded else (lambda s: s)
    objects = [
        ObjectInfo(
            key=dec(_text(c, "Key")),
            size=int(_text(c, "Size") or 0),
            last_modified=_parse_iso_date(_text(c, "LastModified")),
            etag=_text(c, "ETag").strip('"'),
        )
        for c in root.iter(f"{_NS}Contents")
    ]
    prefixes = [dec(_text(p, "Prefix")) for p in root.iter(f"{_NS}CommonPrefixes")]
    return (objects, prefixes, _text(root, "IsTruncated") == "true",
            _text(root, "NextContinuationToken") or None)


def _unescape(raw: bytes) -> str:
    text = raw.decode()
    return html.unescape(text) if "&" in text else text


@functools.lru_cache(maxsize=4096)
def _parse_iso_date_cached(value: str) -> float:
    return _parse_iso_date(value)


def _xml(payload: bytes) -> ET.Element:
    try:
        return ET.fromstring(payload)
    except ET.ParseError as e:
        raise ObjectStoreError(f"malformed XML from the server: {e}", code="MalformedXML") from e


def _text(el: ET.Element, tag: str) -> str:
    found = el.find(f"{_NS}{tag}")
    if found is None:
        found = el.find(tag)  # servers that omit the namespace
    return (found.text or "") if found is not None else ""
