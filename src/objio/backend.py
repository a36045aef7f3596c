"""What every backend (``objio.s3``, ``objio.local``) returns, and the operation set it offers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Protocol, Sequence

from .uri import ObjectURI


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
    """

    key: str
    size: int
    last_modified: float
    etag: str
    crc32c: int | None = None


@dataclass
class GetResult:
    """One GET response: ``data`` (the body: a bytearray, or the memoryview given by the
    caller's ``alloc``; empty when written ``into`` a caller's buffer),
    ``total_size`` of the whole object in bytes, ``etag``, and ``ttfb_s``: seconds from sending
    the request to receiving the response headers (time to first byte)."""

    data: bytearray | memoryview
    total_size: int
    etag: str
    ttfb_s: float


@dataclass(frozen=True)
class UploadInfo:
    """A multipart upload in progress: ``key``, ``upload_id``, ``initiated`` (epoch seconds)."""

    key: str
    upload_id: str
    initiated: float


@dataclass(frozen=True)
class ListPage:
    """One listing page: objects and, when listing with a delimiter, common prefixes;
    ``next_token``: the continuation token that resumes the listing after this page (None
    on the last page, and for backends without tokens)."""

    objects: list[ObjectInfo]
    prefixes: list[str]
    next_token: str | None = None


class Backend(Protocol):
    """One operation set per storage protocol; all coroutines run on the engine's loop."""

    scheme: str

    async def get(self, obj: ObjectURI, start: int | None = None, end: int | None = None, *,
                  if_match: str | None = None, into: memoryview | None = None,
                  alloc: Callable[[int], memoryview] | None = None) -> GetResult: ...
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
