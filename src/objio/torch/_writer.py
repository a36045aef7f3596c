"""``S3Writer`` with s3torchconnector's interface, built on :class:`objio.io.ObjectWriter`.
Importable without torch."""

from __future__ import annotations

from typing import Any

from ..io import ObjectWriter
from ..uri import ObjectURI, store_uri
from ._reader import _uri, _where

__all__ = ["S3Writer"]


class S3Writer(ObjectWriter):
    """A write-only, file-like representation of one object (the seed's ``S3Writer``).

    ``write(data)`` returns the number of bytes written; ``close()`` ensures all bytes are
    written and raises if the upload failed; ``flush()`` is a no-op; ``tell()`` is the
    number of bytes written; ``closed``, ``readable()`` (False), ``writable()`` (True while
    open, False once closed, as the seed's; other file methods raise ValueError on a closed
    writer).
    Objects up to ``part_size`` are one PutObject, larger ones a multipart upload with
    concurrent parts; an exception inside ``with`` or :meth:`abort` leaves no object and no
    multipart upload (see :class:`objio.io.ObjectWriter`).

    Unlike the seed (which wraps a client stream), it is created from a location:
    ``S3Writer(bucket, key, client=None, ...)`` or ``S3Writer.from_uri(uri, ...)``;
    ``bucket=""`` means ``key`` is a local path; keyword-only ``scheme="gs"`` names the object
    ``key`` of the Cloud Storage bucket ``bucket``, ``scheme="az"`` (and ``account``) the blob
    ``key`` of the Azure container ``bucket``, as the readers take them.
    ``part_size`` is in bytes (see :class:`objio.io.ObjectWriter` for it and the other
    arguments).

    Raises:
        TypeError: ``bucket`` or ``key`` not a string.
        ValueError: a relative local path, a bad URI or option (as :class:`objio.io.ObjectWriter`).
    """

    def __init__(self, bucket: str, key: str, client: Any = None, *,
                 part_size: int | None = None, max_parts_in_flight: int | None = None,
                 exist_ok: bool = True, checksum: str | None = None, scheme: str = "s3",
                 account: str = "") -> None:
        if not isinstance(bucket, str) or not isinstance(key, str):
            raise TypeError(f"bucket and key must be strings, got {bucket!r}, {key!r}")
        obj: ObjectURI = (_uri(bucket, key, scheme, account) if bucket
                          else store_uri(key, "S3Writer's key (bucket='': a local file)"))
        super().__init__(obj, client=client, part_size=part_size,
                         max_parts_in_flight=max_parts_in_flight, exist_ok=exist_ok,
                         checksum=checksum)

    def writable(self) -> bool:
        """Whether the writer is open for writing (False after ``close()``/``abort()``)."""
        return not self.closed

    def readable(self) -> bool:
        """False: a writer is never readable (open or closed, as the seed's)."""
        return False

    @classmethod
    def from_uri(cls, uri: Any, client: Any = None, **options: Any) -> S3Writer:
        """An S3Writer for ``s3://bucket/key``, ``file:///path`` or an absolute local path.

        Raises:
            ValueError: a relative path (:func:`objio.uri.store_uri`).
        """
        obj = store_uri(uri, "S3Writer.from_uri")
        return cls(obj.bucket, obj.key, client, **_where(obj), **options)
