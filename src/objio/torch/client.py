"""``S3Client`` with s3torchconnector's public methods, on objio's engine.

For code that talks to the client directly (``s3torchconnector._s3client.S3Client``): the same
constructor and methods, returning objio's readers and writer. Importable without torch.

    client = S3Client("us-east-1", endpoint="http://127.0.0.1:9000")
    with client.put_object("bucket", "key") as w:
        w.write(b"data")
    reader = client.get_object("bucket", "key")          # a SequentialS3Reader
    for page in client.list_objects("bucket", "prefix/"):
        for info in page.object_info:
            print(info.key, info.size)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..backend import ObjectInfo
from ._reader import S3Reader, S3ReaderConstructor
from ._writer import S3Writer
from .config import LazyClient, S3ClientConfig, client_config_for

__all__ = ["S3Client", "HeadObjectResult", "ListObjectResult"]


@dataclass(frozen=True)
class HeadObjectResult:
    """What :meth:`S3Client.head_object` returns (s3torchconnector's fields): ``size`` in
    bytes, ``last_modified`` in epoch seconds, ``etag``; ``storage_class`` and
    ``restore_status`` are None (objio does not read them)."""

    size: int
    last_modified: float
    etag: str
    storage_class: str | None = None
    restore_status: str | None = None


@dataclass(frozen=True)
class ListObjectResult:
    """One page of :meth:`S3Client.list_objects`: ``object_info`` (objects with ``key``,
    ``size`` in bytes, ``last_modified``, ``etag``) and ``common_prefixes`` (with a delimiter)."""

    object_info: list[ObjectInfo] = field(default_factory=list)
    common_prefixes: list[str] = field(default_factory=list)


class S3Client(LazyClient):
    """An S3 client with s3torchconnector's interface, on objio's engine (fork-safe: every
    process gets its own connections on first use).

    Args:
        region: the region (None: the environment's, else us-east-1).
        endpoint: a custom endpoint URL (``http://127.0.0.1:9000``); None for AWS S3 or the
            environment's ``AWS_ENDPOINT_URL``.
        user_agent: accepted for compatibility and ignored.
        s3client_config: an :class:`S3ClientConfig` (or s3torchconnector's, or an
            :class:`objio.ClientConfig`).

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: a bad value.
    """

    def __init__(self, region: str | None = None, *, endpoint: str | None = None,
                 user_agent: Any = None, s3client_config: Any = None) -> None:
        self._region = region
        self._endpoint = endpoint
        self._s3client_config = s3client_config or S3ClientConfig()
        self._config = client_config_for(s3client_config, region, endpoint)
        self._client: Any = None

    @property
    def region(self) -> str | None:
        return self._region

    @property
    def s3client_config(self) -> Any:
        return self._s3client_config

    @staticmethod
    def _uri(bucket: str, key: str = "") -> str:
        if not isinstance(bucket, str) or not isinstance(key, str):
            raise TypeError(f"bucket and key must be strings, got {bucket!r}, {key!r}")
        return f"s3://{bucket}/{key}"

    def get_object(self, bucket: str, key: str, *, object_info: Any = None,
                   reader_constructor: Any = None) -> S3Reader:
        """A reader of ``s3://bucket/key`` made by ``reader_constructor`` (default: the
        sequential reader). ``object_info`` (with a ``size``) saves the HEAD request. No request
        is made until the first read; a missing object raises FileNotFoundError then.

        Raises:
            TypeError: ``bucket`` or ``key`` not a string.
        """
        self._uri(bucket, key)
        constructor = reader_constructor or S3ReaderConstructor.default()
        size = getattr(object_info, "size", None)
        reader: S3Reader = constructor(bucket, key, self._get_client(), size=size)
        return reader

    def put_object(self, bucket: str, key: str, storage_class: str | None = None) -> S3Writer:
        """A writer of ``s3://bucket/key`` (multipart above the part size; nothing is visible
        until ``close()``). ``storage_class`` must be None or STANDARD (objio sends none).

        Raises:
            ValueError: another storage class.
        """
        if storage_class not in (None, "STANDARD"):
            raise ValueError(f"storage_class {storage_class!r} is not supported; objio writes "
                             "with the bucket's default (STANDARD)")
        return S3Writer(bucket, key, client=self._get_client())

    def list_objects(self, bucket: str, prefix: str = "", delimiter: str = "",
                     max_keys: int = 1000) -> Iterator[ListObjectResult]:
        """Pages of the objects under ``prefix`` (ListObjectsV2; with ``delimiter``, one level:
        the pages also carry ``common_prefixes``), at most ``max_keys`` (1 to 1000) per page.

        Raises:
            TypeError: ``max_keys`` not an integer, ``bucket`` or ``prefix`` not a string.
            ValueError: ``max_keys`` out of range, a ``delimiter`` other than ``""`` or ``"/"``.
            FileNotFoundError: no such bucket (while iterating).
        """
        if isinstance(max_keys, bool) or not isinstance(max_keys, int):
            raise TypeError(f"max_keys must be an integer, got {max_keys!r}")
        if not 1 <= max_keys <= 1000:
            raise ValueError(f"max_keys must be 1 to 1000, got {max_keys}")
        client = self._get_client()
        uri = self._uri(bucket, prefix)
        if delimiter:
            if delimiter != "/":
                raise ValueError(f"delimiter must be '' or '/', got {delimiter!r}")
            prefixes, objects = client.list_level(uri)
        else:
            prefixes, objects = [], client.list_objects(uri)
        for i in range(0, max(len(objects), 1), max_keys):
            yield ListObjectResult(objects[i:i + max_keys], prefixes if i == 0 else [])

    def head_object(self, bucket: str, key: str) -> HeadObjectResult:
        """Size, last-modified time and ETag.

        Raises:
            FileNotFoundError: no such object or bucket.
            PermissionError: access denied.
        """
        info = self._get_client().stat(self._uri(bucket, key))
        return HeadObjectResult(info.size, info.last_modified, info.etag)

    def delete_object(self, bucket: str, key: str) -> None:
        """Delete one object (a missing one is not an error)."""
        self._get_client().delete(self._uri(bucket, key))

    def copy_object(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> None:
        """Copy one object (through this client: GET then PUT)."""
        self._get_client().copy(self._uri(src_bucket, src_key), self._uri(dst_bucket, dst_key))
