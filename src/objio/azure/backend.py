"""The Azure Blob Storage protocol (``az://container/blob``): requests, SharedKey / SAS /
bearer authentication, XML, block uploads, over objio's own HTTP/1.1 client
(:mod:`objio.s3.http`, the one the S3 backend uses). No concurrency policy here (that is
:mod:`objio.engine`): each method is one request (or one paginated listing); bulk deletes
are one Delete Blob per key, scheduled by the engine (:attr:`AzureBackend.batch_deletes`).

Mapping of objio's operation set onto the Blob service REST API (version
:data:`objio.azure.auth.API_VERSION`):

* get / head / put / delete: Get Blob (``x-ms-range``), Get Blob Properties, Put Blob (a block
  blob, with ``Content-MD5``: the service checks the body against it), Delete Blob (a missing
  blob is not an error, as in S3);
* multipart uploads are block uploads: ``create_multipart`` returns a new random id and sends
  nothing; ``upload_part`` is Put Block with a block id made of that upload id and the part
  number (base64 of a fixed-length text, as the service requires); ``complete_multipart`` is
  Put Block List of those ids in part order; ``abort_multipart`` has nothing to do: blocks never
  committed are garbage-collected by the service after 7 days, and a later upload to the same
  name uses another upload id, so it can never commit them;
* listings: List Blobs (prefix, delimiter, marker, maxresults), each page taken only whole;
* buckets are containers: Create Container, Get Container Properties, Delete Container.

Errors are raised already translated (:mod:`objio.errors`: BlobNotFound/ContainerNotFound ->
FileNotFoundError, AuthenticationFailed/AuthorizationFailure -> PermissionError,
BlobAlreadyExists/ConditionNotMet -> FileExistsError, 5xx/ServerBusy -> retryable).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from typing import Any, AsyncIterator, Awaitable, Callable, Sequence
from urllib.parse import quote, unquote, urlsplit
from xml.etree import ElementTree as ET

from .. import oplog
from .._buffers import Gather
from .._crc32c import from_base64, to_base64
from ..backend import (
    CLIENT_UPLOAD_ID,
    GetResult,
    ListPage,
    ObjectInfo,
    StoredChecksum,
    new_client_upload_id,
)
from ..config import ClientConfig
from ..errors import IntegrityError, ObjectStoreError, error_from_response
from ..s3.backend import (
    _bad_range,
    _body_pieces,
    _changed,
    _connection_error,
    _content_range,
    _incomplete,
    _parse_http_date,
    checked_get,
    following_pages,
    range_request,
)
from ..s3.http import HTTPClient, Response
from ..s3.sigv4 import uri_encode_path
from ..uri import ObjectURI
from .auth import API_VERSION, BearerToken, SharedKey, http_date

_END = re.compile(rb"</EnumerationResults>\s*\Z")
_COPY_SAS_S = 3600  # the source SAS of a synchronous copy (the request ends well before)
#: The sequential reader's default chunk (bytes per ranged Get Blob) and read-ahead window on
#: az:// (:class:`objio.io.SequentialReader`; S3 keeps the client's part_size and 64 MiB): 2
#: GETs of 32 MiB in flight. Measured on Azurite (2026-12-03, shared 2-core machine, 1 GiB,
#: median of 3-5 interleaved rounds, 4 runs): with S3's defaults (8 MiB x 8 in flight) Azurite
#: spent 2.18-2.55 ms of CPU per MiB (obstore's single streamed GET: 1.63-1.90) and objio read
#: at 0.62-1.04x obstore; with 32 MiB x 2, 1.74-2.01 ms per MiB and 0.97-1.20x. Azurite (one
#: Node.js process) is the limit there, and each Get Blob has a fixed cost in it.
STREAM_CHUNK_SIZE = 32 * 1024 * 1024
STREAM_WINDOW_SIZE = 64 * 1024 * 1024
#: Copy Blob From URL's limit on the source's size (bytes); larger blobs: Copy Blob.
SYNC_COPY_MAX = 256 * 1024 * 1024
_MD5_THREAD_MIN = 1024 * 1024  # bodies of this many bytes or more are hashed in a thread
# The whole blob's CRC32C as objio wrote it (blob metadata: a C# identifier, no '-'), the
# checksum the engine checks reads against (objio.engine, objio._integrity) as S3's
# x-amz-checksum-crc32c: ~20 times cheaper to check than the MD5 Azure keeps.
META_CRC32C = "x-ms-meta-objio_crc32c"


def block_id(upload_id: str, part_number: int) -> str:
    """The block id of part ``part_number`` of the block upload ``upload_id``: base64 of the
    upload id and the part number as 6 digits (every id of a blob has the same length, as the
    service requires; another upload of the same name has other ids)."""
    return base64.b64encode(f"{upload_id}{part_number:06d}".encode()).decode()


def _md5_digest(data: Any) -> bytes:
    return hashlib.md5(data).digest()  # (releases the GIL for more than 2 KiB)


def _md5_b64(body: Any) -> str:
    h = hashlib.md5()
    for piece in (body.pieces if isinstance(body, Gather) else (body,)):
        h.update(piece)
    return base64.b64encode(h.digest()).decode()


class AzureBackend:
    """Azure Blob Storage operations for one resolved :class:`ClientConfig` (its
    ``azure_*`` fields: account, key or SAS token, endpoint).

    Authentication, first that applies: the account key (SharedKey), a SAS token (its query
    string on every request), azure-identity's ``DefaultAzureCredential`` when the package is
    installed, else anonymous requests (public containers).

    Raises (at construction): ValueError when neither an account nor an endpoint is
    configured (set ``AZURE_STORAGE_ACCOUNT`` or ``AZURE_STORAGE_CONNECTION_STRING``).
    """

    scheme = "az"
    #: No batch delete: :func:`objio.engine.delete_keys` sends one Delete Blob per key.
    batch_deletes = False
    #: The sequential reader's defaults on az:// (see :data:`STREAM_CHUNK_SIZE`).
    stream_chunk_size = STREAM_CHUNK_SIZE
    stream_window_size = STREAM_WINDOW_SIZE

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        account = config.azure_account
        endpoint = config.azure_endpoint_url
        if endpoint is None:
            if not account:
                raise ValueError(
                    "az:// URIs need a storage account: set AZURE_STORAGE_ACCOUNT (and "
                    "AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN), "
                    "AZURE_STORAGE_CONNECTION_STRING, or ClientConfig(azure_account=...), or "
                    "write abfs://container@account.dfs.core.windows.net/path")
            endpoint = f"https://{account}.blob.core.windows.net"
        parts = urlsplit(endpoint)
        self._http_scheme = parts.scheme
        self._netloc = parts.netloc
        self._base_path = parts.path.rstrip("/")
        if not account:  # e.g. a SAS URL's endpoint: the account is its first host label
            account = parts.hostname.split(".", 1)[0] if parts.hostname else ""
        self.account = account
        self._key = SharedKey(account, config.azure_account_key) \
            if config.azure_account_key else None
        sas = (config.azure_sas_token or "").lstrip("?")
        self._sas: list[tuple[str, str]] = [
            (k, unquote(v)) for k, _, v in (p.partition("=") for p in sas.split("&") if p)]
        self._bearer: BearerToken | None = None
        if self._key is None and not self._sas:
            try:
                self._bearer = BearerToken()
            except ImportError:
                self._bearer = None  # anonymous: public containers only
        self._checksums = bool(config.checksums)
        self._http = HTTPClient.for_config(self._http_scheme, config, "REQUESTS_CA_BUNDLE")
        self._oplog: oplog.OpLog | None = oplog.get(config.op_log) if config.op_log else None

    def __repr__(self) -> str:
        auth = "SharedKey" if self._key else "SAS" if self._sas else \
            "bearer" if self._bearer else "anonymous"
        return f"AzureBackend(account={self.account!r}, endpoint={self._netloc!r}, auth={auth})"

    async def close(self) -> None:
        self._http.close()

    # ----------------------------------------------------------------------------- plumbing
    async def _prepare(self, method: str, container: str, blob: str | None,
                       params: Sequence[tuple[str, str]], headers: dict[str, str],
                       body_size: int) -> str:
        """Authenticate a request: adds the headers; returns the request target."""
        path = self._base_path + "/" + container
        if blob is not None:
            path += "/" + blob
        path = uri_encode_path(path)
        query = list(params)
        if self._sas:
            query += self._sas
        headers["host"] = self._netloc
        headers["x-ms-date"] = http_date()
        headers["x-ms-version"] = API_VERSION
        if self._key is not None:
            if body_size or method in ("PUT", "POST"):
                headers["content-length"] = str(body_size)
            self._key.sign(method, path, params, headers)
        elif self._bearer is not None:
            if self._bearer.fresh:
                headers["authorization"] = self._bearer.header()
            else:
                headers["authorization"] = await asyncio.get_running_loop().run_in_executor(
                    None, self._bearer.header)
        if query:
            path += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}"
                                   for k, v in query)
        return path

    def _request(self, op: str, container: str, blob: str | None, method: str,
                 target: str, headers: dict[str, str], body: Any,
                 **kwargs: Any) -> Awaitable[Response]:
        """Send one prepared request through the HTTP client; with an op-log, its lines
        (:func:`objio.oplog.logged_request`: the response, or the failure, and each try
        the client sent again). Returns the request's coroutine (not a coroutine of its
        own: one frame less per request)."""
        if self._oplog is None:
            return self._http.request(method, self._netloc, target, headers, body, **kwargs)
        return oplog.logged_request(
            self._oplog, self._http, api=op, bucket=container, key=blob,
            endpoint=f"{self._http_scheme}://{self._netloc}", error_code=_error_code,
            method=method, host=self._netloc, target=target, headers=headers, body=body,
            **kwargs)

    async def _simple(self, op: str, uri: str, method: str, container: str, blob: str | None,
                      params: Sequence[tuple[str, str]] = (),
                      headers: dict[str, str] | None = None, body: Any = None,
                      ok: tuple[int, ...] = (200,)) -> tuple[int, Any, bytes]:
        """One request whose whole (small) response is read: (status, headers, body). A status
        not in ``ok`` raises the translated error; no usable response a retryable one."""
        hdrs = headers if headers is not None else {}
        pieces = _body_pieces(body)
        size = sum(len(p) for p in pieces) if pieces else 0
        target = await self._prepare(method, container, blob, params, hdrs, size)
        try:
            r = await self._request(op, container, blob, method, target, hdrs, pieces)
        except (OSError, asyncio.TimeoutError) as e:
            raise _connection_error(op, uri, e) from e
        payload = bytes(r.body) if r.body else b""
        if r.status not in ok:
            raise error_from_response(op, uri, r.status, payload,
                                      header_code=r.headers.get("x-ms-error-code"))
        return r.status, r.headers, payload

    # ----------------------------------------------------------------------------- objects
    async def get(self, obj: ObjectURI, start: int | None = None, end: int | None = None, *,
                  if_match: str | None = None, into: memoryview | None = None,
                  alloc: Callable[[int], memoryview] | None = None,
                  unranged: bool = False, crc: bool = False) -> GetResult:
        """Get Blob of the whole blob, or of bytes [start, end] (inclusive; ``end`` None: to
        the end), received straight into ``into`` / ``alloc(n)`` / a new buffer as
        :meth:`objio.s3.S3Backend.get` does, with the same checks: a 206 must carry a
        Content-Range starting at ``start`` and a body of its length, a 200 to a ranged
        request is sliced, a 416 gives empty data (``ObjectChanged`` with ``into``).
        ``unranged``: no range header (bytes [0, end] are kept, the connection closed after
        them). A whole-blob response carrying ``Content-MD5`` (the MD5 stored with the blob)
        is checked against it when checksums are on (``IntegrityError``, retryable)."""
        uri = str(obj)
        hdrs: dict[str, str] = {}
        byte_range, limit = range_request(start, end, unranged)
        if byte_range:
            hdrs["x-ms-range"] = byte_range
        if if_match:
            hdrs["if-match"] = f'"{if_match}"'
        target = await self._prepare("GET", obj.bucket, obj.key, (), hdrs, 0)
        try:
            r = await self._request("GetBlob", obj.bucket, obj.key, "GET", target, hdrs, None,
                                    into=into, alloc=alloc, limit=limit, crc=crc)
        except (OSError, asyncio.TimeoutError) as e:
            raise _connection_error("GetBlob", uri, e) from e
        status = r.status
        if status not in (200, 206, 416):
            raise error_from_response("GetBlob", uri, status, bytes(r.body or b""),
                                      header_code=r.headers.get("x-ms-error-code"))
        h = r.headers
        if status == 416:
            if into is not None:
                raise _changed(uri, f"the server has no bytes {start}- any more (416)")
            total = _content_range(h)[2]
            if total < 0:  # Azure's 416 carries no Content-Range: ask for the size
                total = (await self.head(obj)).size
            return GetResult(bytearray(), total, (h.get("etag") or "").strip('"'), r.ttfb_s)
        if status == 206 and _content_range(h)[2] < 0:  # Azure always sends the total
            raise _bad_range(uri, start, end, h.get("content-range"))
        wrote = r.body is None
        got = len(into) if wrote and into is not None else len(r.body or b"")
        md5 = h.get("content-md5")
        if status == 200 and self._checksums and md5 and _stored(h) is None:
            # a blob written by another tool: its Content-MD5 checks a whole-blob response
            declared = h.get("content-length")
            total = int(declared) if unranged and declared is not None and declared.isdigit() \
                and int(declared) > got else got
            lo, hi = (start or 0), (total if end is None else min(end + 1, total))
            if got == total and (lo, hi) == (0, got):
                data = into if wrote else r.body
                assert data is not None
                await self._check_md5(uri, data, got, md5.strip())
        return checked_get("GetBlob", uri, start, end, into, alloc, status, h, r.body, wrote,
                           r.ttfb_s, unranged=unranged, received_crc=r.crc32c if crc else None,
                           stored_of=_stored if self._checksums else None)

    async def _check_md5(self, uri: str, data: Any, got: int, md5: str) -> None:
        """Raise a retryable IntegrityError unless ``data`` has the MD5 ``md5`` (base64)."""
        if got >= _MD5_THREAD_MIN:  # ~1.5 ms per MiB: off the loop, which goes on receiving
            digest = await asyncio.get_running_loop().run_in_executor(None, _md5_digest, data)
        else:
            digest = hashlib.md5(data).digest()
        if base64.b64encode(digest).decode() != md5:
            raise IntegrityError(
                f"GetBlob {uri} failed: the {got} bytes received do not match the blob's "
                f"stored Content-MD5 {md5}", operation="GetBlob", uri=uri,
                code="Md5Mismatch", retryable=True)

    async def head(self, obj: ObjectURI, *, checksum: bool = False) -> ObjectInfo:
        """Get Blob Properties: size, ETag, Last-Modified, and the blob's stored
        ``Content-MD5`` / ``x-ms-content-crc64`` when it has them (``content_md5``). With
        ``checksum``: the whole blob's CRC32C objio wrote with it (metadata
        ``objio_crc32c``; Azure itself keeps no CRC32C) in ``crc32c`` and ``stored``, when
        present. Raises FileNotFoundError."""
        _, h, _ = await self._simple("GetBlobProperties", str(obj), "HEAD", obj.bucket,
                                     obj.key)
        stored = _stored(h) if checksum else None
        return ObjectInfo(
            key=obj.key,
            size=int(h.get("content-length") or 0),
            last_modified=_parse_http_date(h.get("last-modified")),
            etag=(h.get("etag") or "").strip('"'),
            crc32c=stored.crc32c if stored is not None else None,
            stored=stored,
            content_md5=h.get("content-md5") or h.get("x-ms-content-crc64") or None,
        )

    async def put(self, obj: ObjectURI, data: Any, *, if_none_match: bool = False,
                  checksum_crc32c: int | None = None) -> str:
        """Put Blob (a block blob) of a bytes-like ``data`` (or a Gather); returns the ETag.
        With checksums on, the body's MD5 goes in ``Content-MD5``: the service checks it and
        keeps it with the blob. ``if_none_match``: FileExistsError when the blob exists.
        ``checksum_crc32c`` (the CRC32C of ``data``) is kept with the blob as metadata
        ``objio_crc32c``: reads check against it (the service does not: Content-MD5 is what
        it checks)."""
        hdrs = {"x-ms-blob-type": "BlockBlob"}
        if checksum_crc32c is not None:
            hdrs[META_CRC32C] = to_base64(checksum_crc32c)
        if self._checksums:
            hdrs["content-md5"] = _md5_b64(data)
        if if_none_match:
            hdrs["if-none-match"] = "*"
        _, h, _ = await self._simple("PutBlob", str(obj), "PUT", obj.bucket, obj.key,
                                     headers=hdrs, body=data, ok=(201,))
        return (h.get("etag") or "").strip('"')

    async def delete(self, obj: ObjectURI) -> None:
        """Delete Blob (with its snapshots); a missing blob is not an error (as in S3), a
        missing container is (FileNotFoundError)."""
        try:
            await self._simple("DeleteBlob", str(obj), "DELETE", obj.bucket, obj.key,
                               headers={"x-ms-delete-snapshots": "include"}, ok=(202, 200))
        except FileNotFoundError as e:
            if getattr(e, "code", None) != "BlobNotFound":
                raise

    async def delete_many(self, bucket_uri: ObjectURI,
                          keys: Sequence[str]) -> list[tuple[str, str, str]]:
        """Not a request: Azure has no multi-blob delete objio sends (Blob Batch is not
        used). Bulk deletes are one :meth:`delete` per key, scheduled by the engine
        (:func:`objio.engine.delete_keys` sees :attr:`batch_deletes` False)."""
        raise NotImplementedError("AzureBackend deletes blobs one by one: "
                                  "objio.engine.delete_keys schedules them")

    # ----------------------------------------------------------------------------- copy
    def blob_url(self, obj: ObjectURI) -> str:
        """The blob's URL at this account's endpoint (no query: no authorization)."""
        path = uri_encode_path(f"{self._base_path}/{obj.bucket}/{obj.key}")
        return f"{self._http_scheme}://{self._netloc}{path}"

    def _query(self, params: Sequence[tuple[str, str]]) -> str:
        return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)

    def presign(self, obj: ObjectURI, method: str, expires_s: int) -> str:
        """A service SAS URL for ``obj``: ``GET`` grants read (``sp=r``), ``PUT`` create and
        write (``sp=cw``: a Put Blob, whose request must carry ``x-ms-blob-type:
        BlockBlob``), for ``expires_s`` seconds, signed with the account key (no request
        is sent).

        Raises: ValueError when no account key is configured: a SAS token can only be
        handed on as it is, and a SAS from bearer tokens (a user delegation SAS) needs Get
        User Delegation Key with Microsoft Entra ID, which objio does not do."""
        if self._key is None:
            how = "a SAS token" if self._sas else \
                "Microsoft Entra ID bearer tokens" if self._bearer else "no credentials"
            raise ValueError(
                f"presign {obj} needs the storage account's key (AZURE_STORAGE_KEY, "
                f"azure_account_key=, or AccountKey in the connection string) to sign a "
                f"service SAS; this client has {how}. A SAS token cannot sign another one, "
                "and a user delegation SAS (signed through Microsoft Entra ID) is not "
                "supported")
        perms = "r" if method == "GET" else "cw"
        return self.blob_url(obj) + "?" + self._query(
            self._key.blob_sas(obj.bucket, obj.key, perms, expires_s))

    def _copy_source(self, src: ObjectURI, if_match: str | None,
                     sas: bool) -> dict[str, str]:
        """The headers naming (and, as needed, authorizing) ``src`` for a copy: its URL in
        ``x-ms-copy-source`` with a read SAS of the account key (``sas``), or the configured
        SAS token (bearer tokens: the caller adds ``x-ms-copy-source-authorization``)."""
        url = self.blob_url(src)
        query: list[tuple[str, str]] = []
        if self._key is not None:
            if sas:
                query = self._key.blob_sas(src.bucket, src.key, "r", _COPY_SAS_S)
        elif self._sas:
            query = list(self._sas)
        if query:
            url += "?" + self._query(query)
        hdrs = {"x-ms-copy-source": url}
        if if_match:
            hdrs["x-ms-source-if-match"] = f'"{if_match}"'
        return hdrs

    async def copy_blob_from_url(self, src: ObjectURI, dst: ObjectURI, *,
                                 if_match: str | None = None,
                                 source_md5: str | None = None) -> str:
        """Copy Blob From URL (``x-ms-requires-sync: true``): the service copies ``src`` (a
        blob of up to 256 MiB of this account) to ``dst`` before it answers, with the
        source's metadata (so the ``objio_crc32c`` objio keeps). The source is authorized by
        a read SAS of the account key valid one hour (or the configured SAS token, or the
        bearer token as ``x-ms-copy-source-authorization``). ``if_match``: only from that
        version of the source (else FileExistsError: 412 SourceConditionNotMet).
        ``source_md5``: the source's Content-MD5, which the service checks the bytes it
        read against. Returns the copy's ETag."""
        hdrs = self._copy_source(src, if_match, sas=True)
        hdrs["x-ms-requires-sync"] = "true"
        if source_md5:
            hdrs["x-ms-source-content-md5"] = source_md5
        if self._bearer is not None:
            hdrs["x-ms-copy-source-authorization"] = await asyncio.get_running_loop() \
                .run_in_executor(None, self._bearer.header)
        uri = str(dst)
        _, h, _ = await self._simple("CopyBlobFromURL", uri, "PUT", dst.bucket, dst.key,
                                     headers=hdrs, ok=(202, 201, 200))
        status = h.get("x-ms-copy-status")
        if status is not None and status != "success":
            raise ObjectStoreError(
                f"CopyBlobFromURL {src} to {uri} failed: the service answered "
                f"x-ms-copy-status {status!r} to a synchronous copy",
                operation="CopyBlobFromURL", uri=uri, code="CopyNotSynchronous")
        return (h.get("etag") or "").strip('"')

    async def start_copy(self, src: ObjectURI, dst: ObjectURI, *,
                         if_match: str | None = None) -> tuple[str, str]:
        """Copy Blob: the service copies ``src`` (a blob of this account, any size) to
        ``dst`` with its metadata, maybe after answering. Same-account sources are
        authorized by the request itself (SharedKey or bearer), or by the configured SAS
        token. Returns (copy id, ``x-ms-copy-status``: ``success`` or ``pending``; see
        :meth:`copy_status`). ``if_match`` as in :meth:`copy_blob_from_url`."""
        hdrs = self._copy_source(src, if_match, sas=False)
        _, h, _ = await self._simple("CopyBlob", str(dst), "PUT", dst.bucket, dst.key,
                                     headers=hdrs, ok=(202,))
        return h.get("x-ms-copy-id") or "", h.get("x-ms-copy-status") or "success"

    async def abort_copy(self, dst: ObjectURI, copy_id: str) -> None:
        """Abort Copy Blob: stop the pending copy ``copy_id`` to ``dst`` (the destination is
        left as an empty blob, which the caller deletes). A copy that is no longer pending
        (409 ``NoPendingCopyOperation``: it ended meanwhile) is not an error."""
        try:
            await self._simple("AbortCopyBlob", str(dst), "PUT", dst.bucket, dst.key,
                               params=(("comp", "copy"), ("copyid", copy_id)),
                               headers={"x-ms-copy-action": "abort"}, ok=(204,))
        except ObjectStoreError as e:
            if e.code != "NoPendingCopyOperation":
                raise

    async def copy_status(self, dst: ObjectURI) -> tuple[str, str, str]:
        """Get Blob Properties of a copy's destination: (``x-ms-copy-id``,
        ``x-ms-copy-status``: pending, success, aborted or failed, its description)."""
        _, h, _ = await self._simple("GetBlobProperties", str(dst), "HEAD", dst.bucket,
                                     dst.key)
        return (h.get("x-ms-copy-id") or "", h.get("x-ms-copy-status") or "success",
                h.get("x-ms-copy-status-description") or "")

    # ----------------------------------------------------------------------------- blocks
    async def create_multipart(self, obj: ObjectURI, *, checksum: str | None = None,
                               checksum_type: str | None = None) -> str:
        """A new block upload: returns its id (32 hex digits). Nothing is sent: the blocks
        are staged by :meth:`upload_part` and committed by :meth:`complete_multipart`."""
        return new_client_upload_id(checksum)

    def _block(self, obj: ObjectURI, upload_id: str, part_number: int) -> str:
        if not CLIENT_UPLOAD_ID.match(upload_id):
            raise ValueError(f"not an Azure block upload id of objio: {upload_id!r} (for "
                             f"{obj})")
        if not 1 <= part_number <= 50_000:
            raise ValueError(f"part_number must be 1 to 50000 (blocks per blob), got "
                             f"{part_number}")
        return block_id(upload_id, part_number)

    async def upload_part(self, obj: ObjectURI, upload_id: str, part_number: int, data: Any, *,
                          checksum_crc32c: int | None = None) -> str:
        """Put Block: part ``part_number`` of the upload ``upload_id``, with its
        ``Content-MD5`` when checksums are on (checked by the service); returns the block id
        (the part's "ETag" for :meth:`complete_multipart`)."""
        bid = self._block(obj, upload_id, part_number)
        hdrs = {"content-md5": _md5_b64(data)} if self._checksums else {}
        await self._simple("PutBlock", str(obj), "PUT", obj.bucket, obj.key,
                           params=(("comp", "block"), ("blockid", bid)), headers=hdrs,
                           body=data, ok=(201,))
        return bid

    async def complete_multipart(self, obj: ObjectURI, upload_id: str,
                                 parts: Sequence[tuple[int, str] | tuple[int, str, int]], *,
                                 checksum_crc32c: int | None = None) -> str:
        """Put Block List of the parts' blocks in part order (the ids are made again from
        ``upload_id`` and the part numbers, so they are this upload's and no other's);
        returns the blob's ETag. Sending it again is harmless (the same blocks, committed).
        ``checksum_crc32c`` (the whole blob's) is kept as metadata ``objio_crc32c``, as by
        :meth:`put`."""
        ids = [self._block(obj, upload_id, p[0]) for p in sorted(parts, key=lambda p: p[0])]
        body = ('<?xml version="1.0" encoding="utf-8"?><BlockList>'
                + "".join(f"<Latest>{i}</Latest>" for i in ids) + "</BlockList>").encode()
        hdrs = {"content-type": "application/xml", "content-md5": _md5_b64(body)}
        if checksum_crc32c is not None:
            hdrs[META_CRC32C] = to_base64(checksum_crc32c)
        _, h, _ = await self._simple("PutBlockList", str(obj), "PUT", obj.bucket, obj.key,
                                     params=(("comp", "blocklist"),), headers=hdrs, body=body,
                                     ok=(201,))
        return (h.get("etag") or "").strip('"')

    async def abort_multipart(self, obj: ObjectURI, upload_id: str) -> None:
        """Nothing to send: blocks never committed are not part of any blob, are removed by
        the service after 7 days, and no other upload can commit them (their ids hold this
        upload's id)."""
        return None

    # ----------------------------------------------------------------------------- listing
    async def list_page(self, bucket_uri: ObjectURI, prefix: str = "",
                        delimiter: str | None = None, start_after: str | None = None,
                        page_size: int = 1000,
                        continuation_token: str | None = None) -> ListPage:
        """One List Blobs request (no retries: :func:`objio.engine.list_pages` retries each
        page); ``next_token`` of the page is its NextMarker (None on the last page).

        A page is taken only whole and well-formed, else ObjectStoreError code
        ``IncompleteListing`` (retryable) naming ``az://container/prefix``: the document ends
        with ``</EnumerationResults>``, parses, has a ``NextMarker`` element, and echoes the
        marker sent. ``start_after`` (no such parameter in Azure): names up to it are left
        out of the pages."""
        uri = str(bucket_uri.with_key(prefix))
        params = [("restype", "container"), ("comp", "list"),
                  ("maxresults", str(min(max(page_size, 1), 5000)))]
        if prefix:
            params.append(("prefix", prefix))
        if delimiter:
            params.append(("delimiter", delimiter))
        if continuation_token:
            params.append(("marker", continuation_token))
        _, _, payload = await self._simple("ListBlobs", uri, "GET", bucket_uri.bucket, None,
                                           params=params)
        page = parse_list_blobs(payload, uri, continuation_token or "")
        return page.after(start_after) if start_after else page

    async def list_pages(self, bucket_uri: ObjectURI, prefix: str = "",
                         delimiter: str | None = None, start_after: str | None = None,
                         page_size: int = 1000,
                         continuation_token: str | None = None) -> AsyncIterator[ListPage]:
        """List Blobs, following NextMarker (:meth:`list_page` per page, no retries); a
        marker received twice raises ``IncompleteListing``."""
        async for page in following_pages(
                lambda token: self.list_page(bucket_uri, prefix, delimiter, start_after,
                                             page_size, token),
                "ListBlobs", str(bucket_uri.with_key(prefix)), continuation_token):
            yield page

    # ----------------------------------------------------------------------------- containers
    async def create_bucket(self, bucket_uri: ObjectURI) -> None:
        """Create Container. Raises FileExistsError if it exists (ContainerAlreadyExists)."""
        await self._simple("CreateContainer", str(bucket_uri.with_key("")), "PUT",
                           bucket_uri.bucket, None, params=(("restype", "container"),),
                           ok=(201,))

    async def head_bucket(self, bucket_uri: ObjectURI) -> None:
        """Get Container Properties. Raises FileNotFoundError if the container is absent."""
        await self._simple("GetContainerProperties", str(bucket_uri.with_key("")), "HEAD",
                           bucket_uri.bucket, None, params=(("restype", "container"),))

    async def delete_bucket(self, bucket_uri: ObjectURI) -> None:
        """Delete Container (Azure deletes it with every blob in it: callers check that it
        is empty first, as S3 requires)."""
        await self._simple("DeleteContainer", str(bucket_uri.with_key("")), "DELETE",
                           bucket_uri.bucket, None, params=(("restype", "container"),),
                           ok=(202, 200))


def _stored(headers: Any) -> StoredChecksum | None:
    """The whole blob's CRC32C objio wrote with it (:data:`META_CRC32C`), or None."""
    sent = headers.get(META_CRC32C)
    crc = from_base64(sent.strip()) if sent else None
    return None if crc is None else StoredChecksum(crc)


def parse_list_blobs(payload: bytes, uri: str, marker: str = "") -> ListPage:
    """A List Blobs response as a page (see :meth:`AzureBackend.list_page` for what makes it
    acceptable). Names sent ``Encoded="true"`` (characters XML cannot hold) are URL-decoded."""
    op = "ListBlobs"
    if not _END.search(payload[-1024:]):
        raise _incomplete(op, uri, "the response does not end with </EnumerationResults> (a "
                          "page cut short, or malformed XML)")
    try:
        root = ET.fromstring(payload)
    except ET.ParseError as e:
        raise _incomplete(op, uri, f"malformed XML from the server: {e}") from e
    nxt = root.find("NextMarker")
    if nxt is None:
        raise _incomplete(op, uri, "no NextMarker element (every List Blobs page has one)")
    sent = root.find("Marker")
    if marker and sent is not None and (sent.text or "") != marker:
        raise _incomplete(op, uri, f"the page answers the marker {sent.text!r}, not the "
                          f"{marker!r} sent")
    blobs = root.find("Blobs")
    objects: list[ObjectInfo] = []
    prefixes: list[str] = []
    if blobs is not None:
        for el in blobs:
            name_el = el.find("Name")
            if name_el is None:
                raise _incomplete(op, uri, f"a <{el.tag}> without a <Name>")
            name = name_el.text or ""
            if name_el.get("Encoded") == "true":
                name = unquote(name)
            if el.tag == "BlobPrefix":
                prefixes.append(name)
            elif el.tag == "Blob":
                props = el.find("Properties")
                size = props.findtext("Content-Length") if props is not None else None
                if size is None or not size.strip().isdigit():
                    raise _incomplete(op, uri, f"the blob {name!r} has no Content-Length")
                assert props is not None
                objects.append(ObjectInfo(
                    key=name, size=int(size),
                    last_modified=_parse_http_date(props.findtext("Last-Modified")),
                    etag=(props.findtext("Etag") or "").strip('"'),
                    content_md5=props.findtext("Content-MD5") or None))
    token = (nxt.text or "").strip() or None
    return ListPage(objects, prefixes, token)


def _error_code(r: Response) -> str:
    """The Blob service's error code of an error response (``x-ms-error-code``; a HEAD's
    has no body), else its status."""
    return r.headers.get("x-ms-error-code") or f"HTTP{r.status}"
