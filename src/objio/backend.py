"""What every backend (``objio.s3``, ``objio.local``) returns, and the operation set it offers."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Protocol, Sequence

from .uri import ObjectURI

CLIENT_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
"""The upload ids objio makes itself, for stores whose multipart uploads have no id of their
own (Azure's staged blocks, Cloud Storage's composite parts): 32 hex digits."""


def new_client_upload_id(checksum: str | None) -> str:
    """A new :data:`CLIENT_UPLOAD_ID` for ``create_multipart`` of such a store (nothing is
    sent).

    Raises:
        ValueError: ``checksum`` is neither ``"crc32c"`` nor None.
    """
    if checksum not in (None, "crc32c"):
        raise ValueError(f"checksum must be 'crc32c' or None, got {checksum!r}")
    return uuid.uuid4().hex


@dataclass(frozen=True)
class ObjectInfo:
    """Metadata of one object.

    Attributes:
        key: the object key (for file:// URIs, the absolute path).
        size: size in bytes.
        last_modified: seconds since the epoch (UTC).
        etag: the entity tag, without quotes ("" when the backend has none).
        crc32c: the whole object's CRC32C recorded by the store (S3 ``x-amz-checksum-crc32c``
            of type FULL_OBJECT; file://: the ``user.objio.crc32c`` extended attribute), when
            asked for (``head(obj, checksum=True)``) and present; else None.
        stored: the store's CRC32C of the object, full-object or composite
            (:class:`StoredChecksum`), when asked for and present; else None.
        content_md5: the MD5 (base64) or, failing that, the CRC64 Azure Blob Storage keeps
            with a blob (``Content-MD5`` / ``x-ms-content-crc64``), when it has one; else None
            (every other store).
    """

    key: str
    size: int
    last_modified: float
    etag: str
    crc32c: int | None = None
    stored: StoredChecksum | None = None
    content_md5: str | None = None


@dataclass(frozen=True)
class StoredChecksum:
    """The CRC32C an object store keeps with an object (S3 ``x-amz-checksum-crc32c``), as
    sent with a whole-object GET or a HEAD in checksum mode.

    Attributes:
        crc32c: the value (unsigned 32-bit int).
        parts: 0 for a full-object checksum (type FULL_OBJECT: the CRC32C of every byte of the
            object, whatever the upload); N for a composite checksum of an N-part multipart
            upload (``<base64>-N``, type COMPOSITE: the CRC32C of the N parts' CRC32Cs, each
            as 4 big-endian bytes, which needs the part boundaries to check).
    """

    crc32c: int
    parts: int = 0

    @property
    def composite(self) -> bool:
        return self.parts > 0


@dataclass(frozen=True)
class PartInfo:
    """One part of a multipart object (GetObjectAttributes ``ObjectParts``): its size in
    bytes and, where the store reports it, its CRC32C."""

    size: int
    crc32c: int | None = None


@dataclass
class GetResult:
    """One GET response: ``data`` (the body: a bytearray, or the memoryview given by the
    caller's ``alloc``; empty when written ``into`` a caller's buffer),
    ``total_size`` of the whole object in bytes, ``etag``, and ``ttfb_s``: seconds from sending
    the request to receiving the response headers (time to first byte). ``stored``: the
    object's stored CRC32C when the response carried one (whole-object GETs with checksums on;
    never a ranged response), else None. ``crcs``: the CRC32C of the bytes received as
    ``(start, stop, crc32c)`` pieces, when the engine was asked to compute them
    (:func:`objio.engine.get_range` with a ``check``), else None. ``received_crc32c``: with
    ``crc=True``, the CRC32C of ``data`` (exactly the bytes returned) computed by the receive
    path as they landed, where it can (objio's own HTTP path; else None: compute it)."""

    data: bytearray | memoryview
    total_size: int
    etag: str
    ttfb_s: float
    stored: StoredChecksum | None = None
    crcs: list[tuple[int, int, int]] | None = None
    received_crc32c: int | None = None


@dataclass(frozen=True)
class CopyResult:
    """What the store answered to one server-side copy (CopyObject, or UploadPartCopy of one
    part): the new object's (or part's) ``etag`` without quotes, its ``crc32c`` when the store
    computed and reported one (``ChecksumCRC32C``; None otherwise), and the server-side
    encryption it was stored with (``x-amz-server-side-encryption``: ``"AES256"``,
    ``"aws:kms"``, ...; None when not said). An ETag is the MD5 of the bytes only for objects
    stored without KMS encryption."""

    etag: str
    crc32c: int | None = None
    sse: str | None = None


@dataclass(frozen=True)
class UploadInfo:
    """A multipart upload in progress: ``key``, ``upload_id``, ``initiated`` (epoch seconds)."""

    key: str
    upload_id: str
    initiated: float


class PageFields(Protocol):
    """The metadata of a listing page's objects, decoded only when asked for (a backend's
    parser keeps what it needs, e.g. the response body). Indices are positions in the page."""

    def sizes(self, start: int, stop: int) -> list[int]: ...
    def infos(self, keys: Sequence[str], start: int, stop: int) -> list[ObjectInfo]: ...


class ListPage:
    """One listing page: its objects' keys, their :class:`ObjectInfo` and, when listing with a
    delimiter, common prefixes; ``next_token``: the continuation token that resumes the
    listing after this page (None on the last page, and for backends without tokens).

    ``ListPage(objects, prefixes, next_token)`` holds ready-made ObjectInfos. A backend's
    parser may instead give ``keys`` and ``fields`` (:class:`PageFields`): then only the keys
    are decoded at once, and sizes or ObjectInfos when first asked for (``sizes``,
    ``objects``), so a listing of keys never pays for metadata it does not use.

    Raises:
        ValueError: neither ``objects`` nor both ``keys`` and ``fields`` given.
    """

    __slots__ = ("_objects", "_keys", "_fields", "_lo", "_hi", "prefixes", "next_token")

    def __init__(self, objects: Sequence[ObjectInfo] | None = None,
                 prefixes: Sequence[str] = (), next_token: str | None = None, *,
                 keys: list[str] | None = None, fields: PageFields | None = None,
                 span: tuple[int, int] | None = None) -> None:
        if objects is None and (keys is None or fields is None):
            raise ValueError("a ListPage needs objects, or keys and fields")
        self._objects: list[ObjectInfo] | None = None if objects is None else list(objects)
        self._keys = keys
        self._fields = fields
        n = len(self._objects) if self._objects is not None else len(keys or ())
        self._lo, self._hi = span if span is not None else (0, n)
        self.prefixes: list[str] = list(prefixes)
        self.next_token = next_token

    @property
    def keys(self) -> list[str]:
        """The objects' keys, in listing order."""
        if self._keys is None:
            assert self._objects is not None
            self._keys = [o.key for o in self._objects]
        return self._keys

    @property
    def objects(self) -> list[ObjectInfo]:
        """The objects' :class:`ObjectInfo`, in listing order (decoded on first use)."""
        if self._objects is None:
            assert self._fields is not None and self._keys is not None
            self._objects = self._fields.infos(self._keys, self._lo, self._hi)
            self._fields = None  # (what the parser kept is released)
        return self._objects

    @property
    def sizes(self) -> list[int]:
        """The objects' sizes in bytes, in listing order (without decoding the rest)."""
        if self._objects is None and self._fields is not None:
            return self._fields.sizes(self._lo, self._hi)
        return [o.size for o in self.objects]

    def __len__(self) -> int:
        return self._hi - self._lo

    def slice(self, start: int, stop: int | None = None) -> ListPage:
        """The objects ``[start:stop]`` of this page (no common prefixes, no token), sharing
        what is not decoded yet."""
        n = len(self)
        stop = n if stop is None else min(stop, n)
        start = min(max(start, 0), stop)
        if self._objects is not None:
            return ListPage(self._objects[start:stop], keys=self.keys[start:stop])
        assert self._keys is not None
        return ListPage(keys=self._keys[start:stop], fields=self._fields,
                        span=(self._lo + start, self._lo + stop))

    def after(self, start_after: str) -> ListPage:
        """This page without what sorts at or before ``start_after``: its objects whose key
        is greater, its common prefixes that are greater or hold ``start_after`` (a listing
        that starts after a key inside a prefix still shows that prefix); the token kept.
        For stores whose listings cannot start after a key themselves (Azure) or start at
        one, inclusive (Cloud Storage's ``startOffset``)."""
        objects = [o for o in self.objects if o.key > start_after]
        prefixes = [p for p in self.prefixes if p > start_after or start_after.startswith(p)]
        return ListPage(objects, prefixes, self.next_token)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ListPage):
            return NotImplemented
        return (self.objects, self.prefixes, self.next_token) == (
            other.objects, other.prefixes, other.next_token)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"ListPage({len(self)} objects, {len(self.prefixes)} prefixes, "
                f"next_token={self.next_token!r})")


class Backend(Protocol):
    """One operation set per storage protocol; all coroutines run on the engine's loop."""

    scheme: str

    async def get(self, obj: ObjectURI, start: int | None = None, end: int | None = None, *,
                  if_match: str | None = None, into: memoryview | None = None,
                  alloc: Callable[[int], memoryview] | None = None,
                  unranged: bool = False, crc: bool = False) -> GetResult: ...
    async def head(self, obj: ObjectURI, *, checksum: bool = False) -> ObjectInfo: ...
    async def put(self, obj: ObjectURI, data: Any, *, if_none_match: bool = False,
                  checksum_crc32c: int | None = None) -> str: ...
    async def delete(self, obj: ObjectURI) -> None: ...
    async def delete_many(self, bucket_uri: ObjectURI, keys: Sequence[str]) -> list[tuple[str, str, str]]: ...
    async def create_multipart(self, obj: ObjectURI, *, checksum: str | None = None) -> str: ...
    # (``data``: a bytes-like object, or an objio._buffers.Gather of them sent in order)
    async def upload_part(self, obj: ObjectURI, upload_id: str, part_number: int, data: Any, *,
                          checksum_crc32c: int | None = None) -> str: ...
    async def complete_multipart(self, obj: ObjectURI, upload_id: str,
                                 parts: Sequence[tuple[int, str] | tuple[int, str, int]], *,
                                 checksum_crc32c: int | None = None) -> str: ...
    async def abort_multipart(self, obj: ObjectURI, upload_id: str) -> None: ...
    def list_pages(self, bucket_uri: ObjectURI, prefix: str = "", delimiter: str | None = None,
                   start_after: str | None = None, page_size: int = 1000,
                   continuation_token: str | None = None) -> AsyncIterator[ListPage]: ...
    async def create_bucket(self, bucket_uri: ObjectURI) -> None: ...
    async def head_bucket(self, bucket_uri: ObjectURI) -> None: ...
    async def close(self) -> None: ...
