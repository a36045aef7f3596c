"""``S3Checkpoint``: ``torch.save`` / ``torch.load`` straight to and from object storage, with
s3torchconnector's names (``from s3torchconnector import S3Checkpoint`` becomes ``from
objio.torch import S3Checkpoint``), verified end to end with CRC32C.

::

    from objio.torch import S3Checkpoint

    checkpoint = S3Checkpoint(region="us-east-1")
    with checkpoint.writer("s3://bucket/ckpt/epoch_3.pt") as writer:
        torch.save(model.state_dict(), writer)
    state = torch.load(checkpoint.reader("s3://bucket/ckpt/epoch_3.pt"))

Writing (:meth:`S3Checkpoint.writer`): ``torch.save`` streams into a multipart upload
(:class:`objio.io.ObjectWriter`): objio holds at most ``(max_parts_in_flight + 1) x
part_size`` bytes (9 x 8 MiB by default), never a serialized copy of the checkpoint. The
CRC32C of every part is computed as it is written; the store checks each part against it and
keeps the whole object's CRC32C with the object (S3's ``x-amz-checksum-crc32c``, type
FULL_OBJECT; file:// an extended attribute). An exception inside ``with`` (or a failed part)
aborts the upload: the key keeps its previous object, or none, and no multipart upload is left.
The bucket is checked when the writer is created, so a missing bucket (FileNotFoundError) or
rejected credentials (PermissionError) fail before anything is serialized.

Reading (:meth:`S3Checkpoint.reader`): one HEAD (size, ETag, recorded CRC32C: a missing object
raises FileNotFoundError naming it at once), then the sequential reader (concurrent read-ahead
within 64 MiB; ``torch.load``'s large reads land straight in the tensors' memory). With
``verify=True`` (the default) every byte received is folded into a CRC32C as it arrives, and
when the whole object has been seen (``torch.load`` reads all of it; the few bytes it skips are
fetched once less than one chunk is missing) the result is compared with the recorded CRC32C:
a difference raises :class:`objio.IntegrityError` naming the object and the byte range, from
the read that completed it, i.e. from ``torch.load``. Objects without a recorded CRC32C
(written by other tools, or by stores that do not keep checksums) are read unverified
(``reader.verified`` stays False). Cost: about 0.07 CPU seconds per GiB each way.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
from typing import Any, cast

from .. import _crc32c, engine
from ..api import Client
from ..errors import IntegrityError
from ..io._common import _get
from ..uri import ObjectURI, store_uri
from ._reader import S3Reader, SequentialS3Reader, _where
from ._writer import S3Writer
from .config import LazyClient, client_config_for

__all__ = ["S3Checkpoint", "VerifyingS3Reader"]

log = logging.getLogger("objio.torch.checkpoint")


class _Coverage:
    """Disjoint byte ranges ``[start, end)`` of an object seen so far, each with its CRC32C;
    touching ranges are merged (their CRCs combined), so a complete object is one range."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.ranges: list[list[int]] = []  # [start, end, crc32c], sorted, disjoint
        self.covered = 0

    def add(self, start: int, view: Any) -> None:
        """Fold bytes ``[start, start + len(view))`` in (bytes already seen are skipped)."""
        end = min(start + len(view), self.size)
        if end <= start:
            return
        new: list[tuple[int, int]] = []
        pos = start
        i = max(0, bisect.bisect_right(self.ranges, [start, self.size + 1]) - 1)
        for s, e, _ in self.ranges[i:]:
            if e <= pos:
                continue
            if s >= end:
                break
            if s > pos:
                new.append((pos, s))
            pos = max(pos, e)
            if pos >= end:
                break
        if pos < end:
            new.append((pos, end))
        if not new:
            return
        for s, e in new:
            self.ranges.append([s, e, _crc32c.crc32c(view[s - start: e - start])])
            self.covered += e - s
        self.ranges.sort()
        merged = [self.ranges[0]]
        for r in self.ranges[1:]:
            last = merged[-1]
            if last[1] == r[0]:
                last[2] = _crc32c.combine(last[2], r[2], r[1] - r[0])
                last[1] = r[1]
            else:
                merged.append(r)
        self.ranges = merged

    def gaps(self) -> list[tuple[int, int]]:
        """The ranges not seen yet."""
        out = []
        pos = 0
        for s, e, _ in self.ranges:
            if s > pos:
                out.append((pos, s))
            pos = e
        if pos < self.size:
            out.append((pos, self.size))
        return out

    @property
    def complete(self) -> bool:
        return self.covered >= self.size

    def crc32c(self) -> int:
        """CRC32C of the whole object (only when :attr:`complete`)."""
        return self.ranges[0][2] if self.ranges else 0


class VerifyingS3Reader(SequentialS3Reader):
    """The sequential reader (:class:`SequentialS3Reader`) that checks the object against its
    recorded CRC32C (see the module docs): :class:`objio.IntegrityError` from the read that
    completes the object when they differ. ``verified`` is True once the check passed.

    Args:
        bucket: the bucket; it, ``key``, ``client``, ``size`` (bytes), ``etag``,
            ``chunk_size`` and ``window_size`` (bytes) as :class:`SequentialS3Reader` takes them.
        crc32c: the CRC32C the object must have (unsigned 32-bit int).
    """

    def __init__(self, bucket: str, key: str, client: Any = None, *, crc32c: int,
                 size: int, etag: str | None = None, chunk_size: int | None = None,
                 window_size: int | None = None, scheme: str = "s3",
                 account: str = "") -> None:
        super().__init__(bucket, key, client, size=size, etag=etag, chunk_size=chunk_size,
                         window_size=window_size, scheme=scheme, account=account)
        self.verify = False  # this reader's own check (below) replaces the readers' one
        self._expected = crc32c
        self._coverage = _Coverage(size)
        self._verified = False
        self._failed = False

    @property
    def verified(self) -> bool:
        """Whether every byte of the object was seen and matched its recorded CRC32C."""
        return self._verified

    def _on_data(self, start: int, view: memoryview) -> None:
        if not self._verified and not self._failed:
            self._coverage.add(start, view)

    def _check(self) -> None:
        if self._verified or self._failed:
            return
        cov = self._coverage
        if not cov.complete:
            missing = cov.size - cov.covered
            if missing > self.chunk_size:
                return
            for s, e in cov.gaps():  # the last few bytes the caller skips: fetch them once
                r = engine.run(_get(self._backend, self._obj, s, e, self._attempts,
                                    etag=self._etag))
                cov.add(s, memoryview(r.data))
        got = cov.crc32c()
        if got != self._expected:
            self._failed = True
            raise IntegrityError(
                f"GetObject {self.uri}: bytes [0, {cov.size}) do not match the object's "
                f"recorded CRC32C ({self._expected:08x}; the bytes received give {got:08x}): "
                "the data was corrupted in storage or in transit, or the object was rewritten "
                "without its checksum. Read with verify=False to skip the check.",
                operation="GetObject", uri=self.uri, code="ChecksumMismatch")
        self._verified = True

    # Every public read ends with the check, so torch.load sees the error itself.
    def read(self, size: int | None = -1, /) -> bytes:
        out = super().read(size)
        self._check()
        return out

    def read1(self, size: int | None = -1, /) -> bytes:
        out = super().read1(size)
        self._check()
        return out

    def readinto(self, b: Any, /) -> int:
        n = super().readinto(b)
        self._check()
        return n

    def readinto1(self, b: Any, /) -> int:
        n = super().readinto1(b)
        self._check()
        return n

    def readline(self, size: int | None = -1, /) -> bytes:
        out = super().readline(size)
        self._check()
        return out


class S3Checkpoint(LazyClient):
    """Readers and writers for ``torch.save`` / ``torch.load`` checkpoints (the seed's
    ``S3Checkpoint``; see the module docs for what objio adds: bounded memory, CRC32C end to
    end, atomic objects, early errors).

    Args:
        region: the bucket's region (None: ``AWS_REGION`` / objio's default, us-east-1).
        endpoint: an S3 endpoint URL (None: the environment / AWS).
        s3client_config: an :class:`objio.torch.S3ClientConfig` (part size, retries, ...),
            an :class:`objio.ClientConfig` (any objio setting, credentials included), or None.
        verify: check every object read against its recorded CRC32C (keyword-only, default
            True; False reads without checking).

    URIs: ``s3://bucket/key``, ``file:///path`` or a local path.

    Raises:
        ValueError: an invalid setting or URI.
    """

    def __init__(self, region: str | None = None, endpoint: str | None = None,
                 s3client_config: Any = None, *, verify: bool = True) -> None:
        if not isinstance(verify, bool):
            raise ValueError(f"verify must be True or False, got {verify!r}")
        self.region = region
        self.endpoint = endpoint
        self._config = client_config_for(s3client_config, region, endpoint)
        self._client: Client | None = None
        self._verify = verify
        self._buckets_ok: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    @property
    def verify(self) -> bool:
        return self._verify

    @property
    def client(self) -> Client:
        """The :class:`objio.Client` used for every reader and writer."""
        return cast(Client, self._get_client())

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _obj(self, uri: Any, what: str) -> ObjectURI:
        if isinstance(uri, os.PathLike):
            uri = os.fspath(uri)
        if not isinstance(uri, str):
            raise TypeError(f"{what} needs a URI string (s3://bucket/key or file:///path), got "
                            f"{type(uri).__name__}")
        obj = store_uri(uri, what)
        if not obj.key or obj.key.endswith("/"):
            raise ValueError(f"{what} needs an object URI (s3://bucket/key), got {uri!r}")
        return obj

    def check_bucket(self, uri: Any) -> None:
        """Raise FileNotFoundError (no such bucket) or PermissionError (credentials rejected)
        for the bucket of ``uri`` now (one HEAD per bucket per S3Checkpoint; file:// needs
        nothing).

        Raises:
            FileNotFoundError: no such bucket.
            PermissionError: credentials rejected.
            ValueError: not an object URI.
            TypeError: ``uri`` not a string (or path).
        """
        obj = self._obj(uri, "check_bucket")
        if obj.is_local or (obj.scheme, obj.bucket) in self._buckets_ok:
            return
        client = self.client
        backend = client._backend(obj)
        root = obj.with_key("")
        engine.run(engine.with_retries(lambda: backend.head_bucket(root), client._attempts))
        with self._lock:
            self._buckets_ok.add((obj.scheme, obj.bucket))

    def reader(self, s3_uri: str) -> S3Reader:
        """A read-only binary stream of the object at ``s3_uri``, for ``torch.load``.

        Returns: a :class:`VerifyingS3Reader` when ``verify`` is on and the object has a
        recorded CRC32C, else a :class:`SequentialS3Reader`.

        Raises:
            FileNotFoundError: no such object or bucket, naming it.
            PermissionError: access denied.
            ValueError: not an object URI.
            TypeError: ``s3_uri`` not a string (or path).
            IntegrityError: from a read, when the bytes do not match the recorded CRC32C
                (:class:`objio.IntegrityError`).
        """
        obj = self._obj(s3_uri, "S3Checkpoint.reader")
        client = self.client
        backend = client._backend(obj)
        info = engine.run(engine.with_retries(lambda: backend.head(obj, checksum=self._verify),
                                              client._attempts))
        if self._verify and info.crc32c is not None:
            return VerifyingS3Reader(obj.bucket, obj.key, client, crc32c=info.crc32c,
                                     size=info.size, etag=info.etag or None, **_where(obj))
        if self._verify:
            log.debug("%s has no recorded CRC32C: read without verification", obj)
        return SequentialS3Reader(obj.bucket, obj.key, client, size=info.size,
                                  etag=info.etag or None, **_where(obj))

    def writer(self, s3_uri: str) -> S3Writer:
        """A write-only binary stream to the object at ``s3_uri``, for ``torch.save``: a
        multipart upload sent while it is written, with CRC32C checksums; ``close()`` (the end
        of ``with``) makes the object visible, an exception inside ``with`` or
        :meth:`S3Writer.abort` leaves no trace.

        Raises:
            FileNotFoundError: no such bucket.
            PermissionError: credentials rejected.
            ValueError: not an object URI.
            TypeError: ``s3_uri`` not a string (or path).
        """
        obj = self._obj(s3_uri, "S3Checkpoint.writer")
        self.check_bucket(str(obj))
        return S3Writer(obj.bucket, obj.key if obj.bucket else str(obj), self.client,
                        checksum="crc32c", **_where(obj))
