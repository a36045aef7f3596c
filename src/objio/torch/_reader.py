"""``S3Reader`` and ``S3ReaderConstructor`` with s3torchconnector's names and semantics, built
on objio's readers (:mod:`objio.io`). Importable without torch.

Differences from the seed, by design:

* A constructor (what ``S3ReaderConstructor.*()`` returns) is called as
  ``constructor(bucket, key, client=None, *, size=None, etag=None)`` instead of receiving the
  seed's ``get_object_info`` / ``get_stream`` callables: objio's readers fetch through an
  :class:`objio.Client`. ``size``/``etag`` (e.g. from a listing) save a HEAD request.
  ``bucket=""`` means ``key`` is a local file: an absolute path or a ``file://`` URI.
* The object is on ``s3://`` unless the keyword-only ``scheme`` says otherwise (``"gs"``: the
  object ``key`` of the Cloud Storage bucket ``bucket``; ``"az"``: the blob ``key`` of the
  Azure container ``bucket``, in the configured storage account or in ``account``): the
  datasets pass it for objects of other stores; s3torchconnector's
  positional ``(bucket, key, client)`` is unchanged.
* A ``None`` or empty bucket (other than that) or key raises ValueError, as the seed's
  readers do ("Bucket should be specified", "Key should be specified").
* Errors have their Python types (FileNotFoundError, PermissionError, ValueError, ...).
"""

from __future__ import annotations

import abc
import io
import os
from functools import partial
from typing import Any, Iterable, Protocol

from ..io import (
    DEFAULT_BUFFER_SIZE,
    DEFAULT_MAX_GAP_SIZE,
    CoalescingReader,
    RangeReader,
    SequentialReader,
)
from ..io._common import _int_arg
from ..io.readers import GroupBuffers, _check_max_gap
from ..uri import ObjectURI, parse_uri

__all__ = [
    "S3Reader", "S3ReaderConstructor", "S3ReaderConstructorProtocol",
    "DCPS3ReaderConstructorProtocol", "DCPOptimizedConstructor", "SequentialS3Reader",
    "RangedS3Reader", "DCPOptimizedS3Reader", "DEFAULT_BUFFER_SIZE", "DEFAULT_MAX_GAP_SIZE",
]


def _uri(bucket: str, key: str, scheme: str = "s3", account: str = "") -> ObjectURI:
    """The object a reader is for: ``key`` in ``bucket`` of the store ``scheme`` (``s3``,
    ``gs`` or ``az``; ``account``: the Azure storage account, "" for the configured one). Raises
    ValueError for a None/empty bucket or key (the seed's words) or another scheme,
    TypeError for other non-strings."""
    if bucket is None or key is None or (isinstance(key, str) and not key):
        which = "Bucket" if bucket is None else "Key"
        raise ValueError(f"{which} should be specified: a reader needs a bucket name and an "
                         f"object key, got bucket={bucket!r}, key={key!r}")
    if not isinstance(bucket, str) or not isinstance(key, str):
        raise TypeError(f"bucket and key must be strings, got {bucket!r}, {key!r}")
    if not bucket:
        if not (key.startswith("file://") or os.path.isabs(key)):
            raise ValueError(f"Bucket should be specified: got bucket='' with key {key!r} (an "
                             "empty bucket is only for local files: an absolute path or a "
                             "file:// URI in key)")
        return parse_uri(key)  # a local file
    if scheme == "az":
        host = f"@{account}.blob.core.windows.net" if account else ""
        return parse_uri(f"az://{bucket}{host}/{key}")
    if scheme not in ("s3", "gs"):
        raise ValueError(f"scheme must be 's3', 'gs' or 'az' (the store of bucket {bucket!r}), "
                         f"got {scheme!r}")
    return parse_uri(f"{scheme}://{bucket}/{key}")


def _where(obj: ObjectURI) -> dict[str, Any]:
    """The keywords that tell a reader constructor which store ``obj`` is on: none for
    ``s3://`` and local files (s3torchconnector's ``(bucket, key, client)`` call, so its
    own and users' constructors work as before), ``scheme`` (and ``account`` when the URI
    names one) for ``gs://`` and ``az://``."""
    if obj.scheme in ("s3", "file"):
        return {}
    return {"scheme": obj.scheme, "account": obj.account} if obj.account \
        else {"scheme": obj.scheme}


class S3Reader(abc.ABC, io.BufferedIOBase):
    """A read-only, file-like representation of one object (the seed's abstract base class).

    Concrete readers: :class:`SequentialS3Reader`, :class:`RangedS3Reader`,
    :class:`DCPOptimizedS3Reader`, created by :class:`S3ReaderConstructor`.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> S3Reader:
        # io.BufferedIOBase has its own __new__, which skips ABC's abstract-method check.
        abstract = getattr(cls, "__abstractmethods__", None)
        if abstract:
            raise TypeError(f"Can't instantiate abstract class {cls.__name__} with abstract "
                            f"methods {', '.join(sorted(abstract))}")
        return super().__new__(cls)

    @property
    @abc.abstractmethod
    def bucket(self) -> str: ...

    @property
    @abc.abstractmethod
    def key(self) -> str: ...

    @abc.abstractmethod
    def read(self, size: int | None = None, /) -> bytes:
        """Up to ``size`` bytes from the current position (all the rest when None)."""

    @abc.abstractmethod
    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        """Move to ``offset`` bytes relative to ``whence`` (0 start, 1 current, 2 end);
        returns the new position."""

    @abc.abstractmethod
    def tell(self) -> int:
        """The current position, in bytes from the start."""

    @abc.abstractmethod
    def readinto(self, buf: Any, /) -> int:
        """Read into the writable buffer ``buf``; returns the number of bytes read."""

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False


class SequentialS3Reader(SequentialReader, S3Reader):
    """The generic reader: streams the object with concurrent read-ahead and serves any access
    pattern (:class:`objio.io.SequentialReader`: ``size``, ``chunk_size`` and ``window_size``
    in bytes, as it takes them)."""

    def __init__(self, bucket: str, key: str, client: Any = None, *, size: int | None = None,
                 etag: str | None = None, chunk_size: int | None = None,
                 window_size: int | None = None, scheme: str = "s3",
                 account: str = "") -> None:
        super().__init__(_uri(bucket, key, scheme, account), client=client, size=size, etag=etag,
                         chunk_size=chunk_size, window_size=window_size)


class RangedS3Reader(RangeReader, S3Reader):
    """Byte-range reads with an optional buffer (:class:`objio.io.RangeReader`: ``buffer_size``
    and ``size`` in bytes, as it takes them)."""

    def __init__(self, bucket: str, key: str, client: Any = None, *,
                 buffer_size: int | None = None, size: int | None = None,
                 etag: str | None = None, scheme: str = "s3", account: str = "") -> None:
        super().__init__(_uri(bucket, key, scheme, account), client=client, buffer_size=buffer_size, size=size,
                         etag=etag)


class DCPOptimizedS3Reader(CoalescingReader, S3Reader):
    """Coalesced ranged GETs for known, ordered item ranges (:class:`objio.io.CoalescingReader`:
    ``item_ranges`` as its ``ranges``; ``max_gap_size`` and ``size`` in bytes)."""

    def __init__(self, bucket: str, key: str, item_ranges: Iterable[Any], client: Any = None, *,
                 max_gap_size: int | float = DEFAULT_MAX_GAP_SIZE,
                 size: int | None = None, etag: str | None = None,
                 buffers: GroupBuffers | None = None, scheme: str = "s3",
                 account: str = "") -> None:
        super().__init__(_uri(bucket, key, scheme, account), item_ranges, max_gap_size=max_gap_size,
                         client=client, size=size, etag=etag, buffers=buffers)


class S3ReaderConstructorProtocol(Protocol):
    """What ``S3ReaderConstructor.*()`` returns: ``constructor(bucket, key, client=None,
    *, size=None, etag=None, scheme="s3", account="") -> S3Reader``."""

    def __call__(self, bucket: str, key: str, client: Any = None, **kwargs: Any) -> S3Reader: ...


class DCPS3ReaderConstructorProtocol(S3ReaderConstructorProtocol, Protocol):
    """A reader constructor that DCP's :class:`objio.torch.dcp.S3StorageReader` feeds the load
    plan's item ranges (as :class:`DCPOptimizedConstructor` takes them)."""

    def set_item_ranges_by_file(self, plan_items: list[Any], storage_data: dict[Any, Any],
                                base_path: str | os.PathLike[str]) -> None:
        """Take the byte ranges each file's items occupy, from a DCP load plan."""


class DCPOptimizedConstructor:
    """Creates :class:`DCPOptimizedS3Reader` for files whose item ranges are known (injected
    from a DCP load plan by ``set_item_ranges_by_file``, or by :meth:`set_ranges`), and
    :class:`SequentialS3Reader` for any other file (e.g. ``.metadata``). ``max_gap_size``:
    bytes, as :class:`DCPOptimizedS3Reader` takes it.

    Raises:
        ValueError: ``max_gap_size`` negative or not a number.
    """

    def __init__(self, max_gap_size: int | float = DEFAULT_MAX_GAP_SIZE) -> None:
        self._max_gap_size = _check_max_gap(max_gap_size)
        self._item_ranges_by_file: dict[str, list[tuple[int, int]]] = {}

    @property
    def max_gap_size(self) -> int | float:
        return self._max_gap_size

    def set_item_ranges_by_file(self, plan_items: list[Any], storage_data: dict[Any, Any],
                                base_path: str | os.PathLike[str]) -> None:
        """Extract and store item ranges from a DCP load plan: for each ``ReadItem``,
        ``storage_data[item.storage_index]`` gives ``relative_path``, ``offset`` and
        ``length``. Replaces any previously stored ranges. Ranges are sorted per file."""
        base = os.fspath(base_path).rstrip("/")
        by_file: dict[str, list[tuple[int, int]]] = {}
        for item in plan_items:
            info = storage_data[item.storage_index]
            uri = str(parse_uri(f"{base}/{info.relative_path}"))
            by_file.setdefault(uri, []).append((int(info.offset), int(info.offset) + int(info.length)))
        self._item_ranges_by_file = {u: sorted(r) for u, r in by_file.items()}

    def set_ranges(self, uri: Any, ranges: Iterable[Any]) -> None:
        """objio extension: declare the (start, end) ranges that will be read from ``uri``."""
        self._item_ranges_by_file[str(parse_uri(uri))] = sorted(
            (int(r[0]), int(r[1])) for r in ranges)

    def __call__(self, bucket: str, key: str, client: Any = None, **kwargs: Any) -> S3Reader:
        ranges = self._item_ranges_by_file.get(str(_uri(bucket, key,
                                                        kwargs.get("scheme", "s3"),
                                                        kwargs.get("account", ""))))
        if ranges:
            return DCPOptimizedS3Reader(bucket, key, ranges, client,
                                        max_gap_size=self._max_gap_size, **kwargs)
        kwargs.pop("buffers", None)  # group buffers: for the coalescing reader only
        return SequentialS3Reader(bucket, key, client, **kwargs)


class S3ReaderConstructor:
    """Factories for reader constructors (the seed's ``S3ReaderConstructor``).

    - ``sequential()``: the generic reader (all access patterns; streams with read-ahead).
    - ``range_based(buffer_size=None)``: fetches only the byte ranges read; for sparse reads.
    - ``dcp_optimized(max_gap_size=32 MiB)``: coalesced ranged GETs for DCP checkpoint loads.
    """

    @staticmethod
    def sequential() -> S3ReaderConstructorProtocol:
        """Constructor for :class:`SequentialS3Reader` (the generic reader)."""
        return partial(SequentialS3Reader)

    @staticmethod
    def range_based(buffer_size: int | None = None) -> S3ReaderConstructorProtocol:
        """Constructor for :class:`RangedS3Reader`.

        :param buffer_size: internal buffer size in bytes; None uses the default 8 MiB, 0
            disables buffering. Reads smaller than it are served from a buffer filled
            ``buffer_size`` bytes at a time; larger reads go straight to the caller; forward
            overlapping reads reuse the buffered bytes.
        """
        if buffer_size is not None:
            _int_arg("buffer_size", buffer_size, 0,
                     "an integer >= 0 (bytes; 0 disables buffering) or None")
        return partial(RangedS3Reader, buffer_size=buffer_size)

    @staticmethod
    def dcp_optimized(max_gap_size: int | float = DEFAULT_MAX_GAP_SIZE
                      ) -> DCPS3ReaderConstructorProtocol:
        """Constructor for DCP-optimized readers: :class:`DCPOptimizedS3Reader` when item
        ranges are known for the file, :class:`SequentialS3Reader` otherwise.

        :param max_gap_size: largest gap in bytes between ranges fetched in one request
            (default 32 MiB; ``float("inf")`` coalesces everything; 0 disables coalescing of
            ranges that do not touch).
        """
        return DCPOptimizedConstructor(max_gap_size)

    @staticmethod
    def default() -> S3ReaderConstructorProtocol:
        """The default constructor: sequential."""
        return S3ReaderConstructor.sequential()

    @staticmethod
    def get_reader_type_string(constructor: S3ReaderConstructorProtocol | None) -> str:
        """``"sequential"``, ``"range_based"`` or ``"dcp_optimized"`` for a constructor made
        here (None is the default, sequential); ``"unknown"`` for anything else."""
        if constructor is None:
            return "sequential"
        if isinstance(constructor, DCPOptimizedConstructor):
            return "dcp_optimized"
        if not isinstance(constructor, partial):
            return "unknown"
        if constructor.func is RangedS3Reader:
            return "range_based"
        if constructor.func is SequentialS3Reader:
            return "sequential"
        return "unknown"
