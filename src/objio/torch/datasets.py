"""``S3MapDataset`` and ``S3IterableDataset``: s3torchconnector's PyTorch datasets on objio.

A drop-in replacement: ``from s3torchconnector import S3MapDataset, S3IterableDataset,
S3ClientConfig`` becomes ``from objio.torch import ...`` with the same constructors
(``from_prefix``, ``from_objects``), arguments and defaults. ``s3://`` and ``file://`` URIs (and
local paths) work alike. Extensions are keyword-only and optional (``shuffle``, ``seed``,
``prefetch_objects``, ``prefetch_bytes``; ``set_epoch``).

Listing
    ``from_prefix`` lists the prefix once per dataset: lazily, on first use (``len``, indexing,
    iteration, pickling), or just before the process forks (an ``os.register_at_fork`` hook),
    so DataLoader workers, forked or spawned, receive the finished key list (and sizes) and
    never list. The listing runs on objio's engine page by page: an iterable dataset without
    shuffling starts fetching objects from the first page while the rest is still being
    listed. Keys ending with ``/`` (directory markers) are skipped. The list is kept compact
    (one bytes blob per page of keys, plus 16 bytes per key): a million 50-byte keys pickle
    to ~63 MB in under 0.1 s, and forked workers share them without reference-count churn.
    ``from_objects`` parses its URIs at once (a bad URI raises ValueError there) and never
    lists; a missing object raises FileNotFoundError naming it when it is read.
    ``from_manifest`` reads a manifest (``objio ls --manifest``, :mod:`objio.manifest`)
    instead of listing: checked whole at construction, read on first use like a listing; the
    sizes it holds spare every HEAD, so a job lists once, not every epoch or on every node.

Fetching (throughput)
    Both datasets fetch through a bounded, in-order pipeline on objio's engine (no threads or
    event loops of their own):

    * ``S3IterableDataset`` keeps up to ``prefetch_objects`` (default 16) objects in flight per
      DataLoader worker while the transform works on the current one.
    * ``S3MapDataset.__getitems__`` (what DataLoader calls with a batch of indices) fetches the
      batch concurrently, up to ``prefetch_objects`` (default 16) at a time; ``__getitem__``
      alone returns ``transform(reader)`` with a lazy reader, as the seed does.

    Objects of at most :data:`PREFETCH_OBJECT_MAX` bytes (64 MiB, and at most
    ``prefetch_bytes``) are fetched whole into memory (one GET; large ones as concurrent
    ranged GETs) and the transform gets a :class:`PrefetchedS3Reader` over that buffer.
    Larger objects get a streaming reader from ``reader_constructor`` (sequential by default,
    whose read-ahead starts when the object enters the pipeline). With
    ``reader_constructor=S3ReaderConstructor.range_based(...)`` (sparse reads) nothing is
    prefetched: the transform gets a range-based reader that fetches only what it reads.
    Objects of unknown size (``from_objects``) are fetched with one GET of up to 64 MiB; a
    larger object then gets a streaming reader instead.

    Memory per worker: objects fetched or in flight plus streaming read-ahead stay within
    about ``prefetch_bytes`` (default 128 MiB) plus one object, and at most
    ``prefetch_objects`` objects; memory is released as soon as the transform's result no
    longer references the reader.

Sharding and shuffling
    ``S3IterableDataset(enable_sharding=True)`` splits the objects over distributed ranks
    (``torch.distributed`` when it is initialised, else the ``RANK``/``WORLD_SIZE``
    environment variables) and DataLoader workers: object ``i`` (in the epoch's order) goes to
    shard ``i % (world_size * num_workers)``, shard ``rank * num_workers + worker_id``, so every
    object is yielded exactly once per epoch over all ranks and workers and shard sizes differ
    by at most one. Without ``enable_sharding`` every worker yields every object (as the seed).

    ``shuffle=True`` permutes the objects per epoch with ``numpy.random.default_rng([seed,
    epoch])``: deterministic for ``(seed, epoch)``, the same in every rank and worker, different
    from one epoch to the next. Call ``set_epoch(epoch)`` before each epoch (like
    ``DistributedSampler``). A dataset that is iterated again without ``set_epoch`` moves on to
    the next epoch by itself (in the main process, and in ``persistent_workers``, whose dataset
    copies never see the parent's ``set_epoch``). The map dataset applies the permutation to
    its indices (``dataset[i]`` is object ``perm[i]``); it can also rely on samplers
    (``RandomSampler``, ``DistributedSampler``) instead, which is the only way to reshuffle
    ``persistent_workers`` map datasets.

Processes
    DataLoader workers work under ``fork`` (even after objio was used in the parent: the engine
    gives every process its own loop and connections), ``spawn`` and ``forkserver``, with or
    without ``persistent_workers``. Pickling a dataset keeps only its configuration, key list,
    transform and reader constructor: never a client, a connection or credentials resolved
    from the environment. Workers resolve credentials themselves, like the seed: from
    ``AWS_*`` variables they inherit (``fork`` and ``spawn`` copy the parent's environment; a
    ``forkserver`` keeps the environment it was started with), a profile, or botocore's chain;
    or from an explicit :class:`objio.ClientConfig` passed as ``s3client_config``.

Transforms
    ``transform`` receives an :class:`~objio.torch.S3Reader` (``.bucket``, ``.key``, the file
    methods) and returns a sample. An :class:`objio.torch.transforms.Samples` result (e.g. from
    :func:`objio.torch.transforms.tfrecord_samples`) stands for several samples: the iterable
    dataset yields them one by one (a TFRecord file yields its records), the map dataset
    returns them as a list. See :mod:`objio.torch.transforms` for NPZ, TFRecord, HDF5 and
    image decoders.
"""

from __future__ import annotations

import array
import bisect
import collections
import contextlib
import io
import logging
import operator
import os
import threading
import weakref
from concurrent.futures import Future
from functools import partial
from itertools import accumulate
from typing import Any, AsyncIterator, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
import torch.utils.data

from .. import engine
from .._glob import match as glob_match
from .._glob import one_level
from ..api import Client
from ..backend import ListPage
from ..config import ClientConfig, MiB
from ..fastlist import stream_fast
from ..io import SequentialReader
from ..io._common import _byte_view
from ..manifest import Manifest, read_manifest
from ..uri import ObjectURI, parse_uri, split_glob, store_uri
from ._reader import RangedS3Reader, S3Reader, SequentialS3Reader, _where
from .config import LazyClient, S3ClientConfig, client_config_for
from .transforms import Samples

__all__ = [
    "S3MapDataset", "S3IterableDataset", "PrefetchedS3Reader", "FlattenSamples", "identity",
    "PREFETCH_OBJECT_MAX", "DEFAULT_PREFETCH_BYTES",
]

log = logging.getLogger("objio.torch")

_warned_unsharded = False  # the one-time warning of S3IterableDataset.__iter__

PREFETCH_OBJECT_MAX = 64 * MiB
"""Objects up to this size are fetched whole into memory; larger ones are streamed."""
DEFAULT_PREFETCH_BYTES = 128 * MiB
"""Default bytes per worker the datasets keep fetched or in flight ahead of the transform."""
DEFAULT_ITERABLE_PREFETCH_OBJECTS = 16
DEFAULT_MAP_PREFETCH_OBJECTS = 16
_PAGE = 1000


def identity(obj: S3Reader) -> S3Reader:
    """The default transform: the reader itself."""
    return obj


# ------------------------------------------------------------------------------ reader
class PrefetchedS3Reader(SequentialS3Reader):
    """A :class:`~objio.torch.SequentialS3Reader` whose object was already fetched into memory.

    What the datasets hand to the transform for objects fetched whole with the (default)
    sequential reader constructor, so ``isinstance(reader, SequentialS3Reader)`` holds as it
    does with s3torchconnector. It has the reader interface (``bucket``, ``key``, ``read``,
    ``readinto``, ``readline``, ``seek``, ``tell``, iteration, context manager) plus ``size``,
    ``uri`` and two zero-copy accessors: :meth:`getbuffer` (the whole object) and
    :meth:`readview` (like ``read``). Reads never make a request. Picklable (the bytes travel
    with it).
    """

    def __init__(self, bucket: str, key: str, data: Any, *, scheme: str = "s3",
                 account: str = "") -> None:  # noqa: D107
        # No SequentialReader.__init__: nothing here streams; every method below serves the
        # bytes in memory.
        self._obj = ObjectURI(scheme, bucket, key, account) if bucket \
            else ObjectURI("file", "", key)
        self._bucket = bucket
        self._key = key
        self._data = data
        self._view = _byte_view(data, "data", writable=False)
        self._pos = 0

    @property
    def chunk_size(self) -> int:
        return max(1, len(self._view))

    @property
    def window_size(self) -> int:
        return max(1, len(self._view))

    def prefetch(self) -> None:
        """Nothing to fetch: the object is in memory."""

    # identity
    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def key(self) -> str:
        return self._key

    @property
    def uri(self) -> str:
        return str(self._obj)

    @property
    def name(self) -> str:
        return self.uri

    @property
    def mode(self) -> str:
        return "rb"

    @property
    def size(self) -> int:
        """The object's size in bytes."""
        return len(self._view)

    def __repr__(self) -> str:
        return f"<PrefetchedS3Reader {self.uri!r} size={len(self._view)} pos={self._pos}>"

    def __reduce__(self) -> Any:
        return (_restore_prefetched, (self._bucket, self._key, bytes(self._view), self._pos,
                                      self._obj.scheme, self._obj.account))

    # io protocol
    def _check(self) -> None:
        if self.closed:
            raise ValueError(f"I/O operation on closed reader ({self.uri})")

    def readable(self) -> bool:
        self._check()
        return True

    def seekable(self) -> bool:
        self._check()
        return True

    def writable(self) -> bool:
        self._check()
        return False

    def tell(self) -> int:
        self._check()
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        self._check()
        offset = operator.index(offset)
        if whence == io.SEEK_SET:
            new = offset
        elif whence == io.SEEK_CUR:
            new = self._pos + offset
        elif whence == io.SEEK_END:
            new = len(self._view) + offset
        else:
            raise ValueError(f"whence must be 0 (SEEK_SET), 1 (SEEK_CUR) or 2 (SEEK_END), "
                             f"got {whence!r}")
        if new < 0:
            raise ValueError(f"negative seek position {new} in {self.uri}")
        self._pos = new
        return new

    def _span(self, size: int | None) -> tuple[int, int]:
        n = len(self._view)
        lo = min(self._pos, n)
        if size is None or operator.index(size) < 0:
            return lo, n
        return lo, min(n, lo + operator.index(size))

    def read(self, size: int | None = -1, /) -> bytes:
        self._check()
        lo, hi = self._span(size)
        self._pos = max(self._pos, hi)
        return bytes(self._view[lo:hi])

    def read1(self, size: int | None = -1, /) -> bytes:
        return self.read(size)

    def readview(self, size: int | None = -1, /) -> memoryview:
        """Like :meth:`read` (up to ``size`` bytes), as a read-only memoryview of the buffer (no
        copy)."""
        self._check()
        lo, hi = self._span(size)
        self._pos = max(self._pos, hi)
        return self._view[lo:hi].toreadonly()

    def getbuffer(self) -> memoryview:
        """The whole object as a read-only memoryview (no copy; the position is unchanged)."""
        self._check()
        return self._view.toreadonly()

    def readinto(self, b: Any, /) -> int:
        self._check()
        mv = _byte_view(b, "readinto() argument", writable=True)
        lo, hi = self._span(len(mv))
        k = hi - lo
        mv[:k] = self._view[lo:hi]
        self._pos = max(self._pos, hi)
        return k

    def readinto1(self, b: Any, /) -> int:
        return self.readinto(b)

    def readline(self, size: int | None = -1, /) -> bytes:
        self._check()
        lo, hi = self._span(size)
        data = self._data
        if isinstance(data, (bytes, bytearray)) and len(data) == len(self._view):
            i = data.find(b"\n", lo, hi)
        else:
            i = bytes(self._view[lo:hi]).find(b"\n")
            i = -1 if i < 0 else lo + i
        end = hi if i < 0 else i + 1
        self._pos = max(self._pos, end)
        return bytes(self._view[lo:end])

    def close(self) -> None:
        if not self.closed:
            io.BufferedIOBase.close(self)
            self._view = memoryview(b"")
            self._data = b""


def _restore_prefetched(bucket: str, key: str, data: bytes, pos: int, scheme: str = "s3",
                        account: str = "") -> PrefetchedS3Reader:
    r = PrefetchedS3Reader(bucket, key, data, **_where(ObjectURI(scheme, bucket, key, account)))
    r._pos = pos
    return r


# ------------------------------------------------------------------------------ object list
class _ObjectList:
    """The dataset's objects, compactly: pages of (scheme, bucket, key blob, key ends, sizes).

    Append-only; safe to read from other threads while the listing thread appends (indices
    below ``len`` are always complete)."""

    __slots__ = ("_pages", "_starts", "_n")

    def __init__(self) -> None:
        self._pages: list[tuple[str, str, bytes, array.array[int], array.array[int],
                               str]] = []
        self._starts: list[int] = []
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def add(self, scheme: str, bucket: str, keys: Sequence[str], sizes: Sequence[int],
            account: str = "") -> None:
        if not keys:
            return
        enc = [k.encode("utf-8", "surrogatepass") for k in keys]
        page = (scheme, bucket, b"".join(enc), array.array("Q", accumulate(len(e) for e in enc)),
                array.array("q", sizes), account)
        self._pages.append(page)
        self._starts.append(self._n)
        self._n += len(keys)  # last: readers only look below _n

    def get(self, i: int) -> tuple[ObjectURI, int | None]:
        """(location, size or None) of object ``i`` (0 <= i < len)."""
        p = bisect.bisect_right(self._starts, i) - 1
        scheme, bucket, blob, ends, sizes, account = self._pages[p]
        j = i - self._starts[p]
        lo = ends[j - 1] if j else 0
        key = blob[lo: ends[j]].decode("utf-8", "surrogatepass")
        size = sizes[j]
        return ObjectURI(scheme, bucket, key, account), (None if size < 0 else size)

    def uris(self) -> list[str]:
        return [str(self.get(i)[0]) for i in range(self._n)]

    def total_bytes(self) -> int | None:
        """Sum of the known sizes; None if any size is unknown."""
        total = 0
        for page in self._pages:
            for s in page[4]:
                if s < 0:
                    return None
                total += s
        return total


async def _list_pages(client: Client, obj: ObjectURI, first_page_only: bool = False
                      ) -> AsyncIterator[tuple[list[str], list[int], bool]]:
    """(keys, sizes, more) per listing page under ``obj`` (a prefix, or a glob in its last
    segment as :meth:`objio.Client.list`), in key order, directory markers (keys ending in
    ``/``) left out; ``more``: pages follow (with ``first_page_only`` the listing stops after
    the first page). Every listing of a dataset comes through here.

    An s3:// prefix is listed with FastList, streamed (:func:`objio.fastlist.stream_fast`):
    its first request is the prefix's first page, yielded at once (the first samples need
    nothing more); later pages come in listing order as each key range is checked. Anything
    else (a glob, file://, ``first_page_only``) is listed sequentially
    (:func:`objio.engine.list_pages`). Each page request is retried on its own as the
    client's ``max_attempts`` allows: a page cut short or a continuation that does not move
    forward is an error, never the end of the listing."""
    key, pattern = split_glob(obj)
    backend = client._backend(obj)
    root = obj if obj.is_local else obj.with_key("")
    attempts = max(client.config.max_attempts or 1, 1)
    pages: AsyncIterator[ListPage]
    if obj.scheme == "s3" and pattern is None and not first_page_only:
        pages = stream_fast(backend, root, key, attempts=attempts)
    else:
        pages = engine.list_pages(backend, root, key,
                                  None if pattern is None or not one_level(pattern) else "/",
                                  attempts=attempts)
    async with contextlib.aclosing(pages):  # type: ignore[type-var]
        async for page in pages:
            keys, sizes = page.keys, page.sizes
            if pattern is not None or any(k.endswith("/") for k in keys):
                kept = [(k, n) for k, n in zip(keys, sizes, strict=True)
                        if not k.endswith("/") and (
                            pattern is None or glob_match(pattern, k[len(key):]))]
                keys, sizes = [k for k, _ in kept], [n for _, n in kept]
            more = page.next_token is not None
            if keys or first_page_only:
                yield keys, sizes, more
            if first_page_only:
                return


_PENDING: weakref.WeakSet[_Listing] = weakref.WeakSet()


class _Listing:
    """The objects of one dataset, filled once: at construction (``from_objects``), or by a
    listing on the engine that starts on first use (``from_prefix``), by reading a manifest
    on first use (``from_manifest``), or by calling a user-supplied ``get_dataset_objects``
    once. Shared by a dataset and its worker copies
    (pickling waits for the listing and carries the finished list)."""

    def __init__(self, source: Any, config: ClientConfig) -> None:
        self.source = source  # ObjectURI (prefix), a callable, or None (objects given)
        self.config = config
        self.objects = _ObjectList()
        self.done = source is None
        self.error: BaseException | None = None
        self.started = False
        self.pid = os.getpid()
        self.cond = threading.Condition()
        self.future: Future[None] | None = None
        if not self.done:
            _PENDING.add(self)

    # -- pickling: only the finished list travels ---------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        self.wait_all()
        return {"objects": self.objects, "config": self.config}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(None, state["config"])  # type: ignore[misc]
        self.objects = state["objects"]

    # -- filling -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the listing if it has not started in this process (never blocks for a
        prefix; a callable source is called here, in the caller's thread)."""
        if self.done:
            return
        with self.cond:
            if self.started and self.pid == os.getpid():
                return
            if self.started:  # forked mid-listing (the before-fork hook did not run): restart
                self.objects = _ObjectList()
                self.error = None
            self.started = True
            self.pid = os.getpid()
        if isinstance(self.source, ObjectURI):
            try:
                self.future = engine.submit(self._run_prefix(self.source))
            except BaseException:
                with self.cond:
                    self.started = False
                raise
        elif isinstance(self.source, _FromManifest):
            self._run_manifest(self.source)
        else:
            self._run_callable(self.source)

    def _add(self, obj: ObjectURI, keys: list[str], sizes: list[int]) -> None:
        if keys:
            with self.cond:
                self.objects.add(obj.scheme, obj.bucket, keys, sizes, obj.account)
                self.cond.notify_all()

    async def _run_prefix(self, obj: ObjectURI) -> None:
        try:
            client = Client(self.config)
            async for keys, sizes, _ in _list_pages(client, obj):
                self._add(obj, keys, sizes)
        except BaseException as e:  # noqa: BLE001 - kept and raised to the reader
            self.error = e
        finally:
            self._finish()

    def _finish(self) -> None:
        """The listing is over (complete, or ``self.error`` set): wake every reader."""
        with self.cond:
            self.done = True
            self.cond.notify_all()
        _PENDING.discard(self)

    def _run_manifest(self, source: _FromManifest) -> None:
        """Fill the list from a manifest, all or nothing (a manifest that turns out cut
        short raises ValueError and leaves no partial list)."""
        try:
            loc = source.manifest.location
            objects = _ObjectList()
            for page in source.manifest.pages(source.uri):
                keys, sizes = page.keys, page.sizes
                if any(k.endswith(("/", os.sep)) for k in keys):
                    kept = [(k, n) for k, n in zip(keys, sizes, strict=True)
                            if not k.endswith(("/", os.sep))]
                    keys, sizes = [k for k, _ in kept], [n for _, n in kept]
                objects.add(loc.scheme, loc.bucket, keys, sizes, loc.account)
            self.objects = objects
        except BaseException as e:  # noqa: BLE001 - kept and raised to the reader
            self.error = e
        self._finish()

    def _run_callable(self, fn: Callable[[Any], Iterable[Any]]) -> None:
        try:
            items = _items_from(fn(Client(self.config)))
            objects = _ObjectList()
            for (scheme, bucket), page in _group(items):
                objects.add(scheme, bucket, [o.key for o in page], [-1] * len(page),
                            page[0].account)
            self.objects = objects
        except BaseException as e:  # noqa: BLE001 - kept and raised to the reader
            self.error = e
        self._finish()

    def wait_for(self, n: int) -> int:
        """Wait until at least ``n`` objects are known or the listing is over; returns how many
        are known. Raises the listing's error once the known objects are used up."""
        self.start()
        with self.cond:
            while len(self.objects) < n and not self.done:
                self.cond.wait(1.0)
                if not self.done and self.pid != os.getpid():
                    break
        if len(self.objects) < n and not self.done:  # a fork happened under us
            self.start()
            return self.wait_for(n)
        if len(self.objects) < n and self.error is not None:
            raise self.error
        return len(self.objects)

    def wait_all(self) -> int:
        """Wait for the whole list; returns its length. Raises the listing's error."""
        self.wait_for(1 << 62)
        if self.error is not None:
            raise self.error
        return len(self.objects)


def _before_fork() -> None:
    """Finish every started or pending listing before the process forks, so that forked
    DataLoader workers inherit the complete key list instead of listing again."""
    if engine.in_engine_thread():
        return
    for listing in list(_PENDING):
        try:
            listing.wait_for(1 << 62)
        except BaseException as e:  # noqa: BLE001 - the error is kept for the dataset's user
            log.debug("listing before fork failed: %s", e)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork)


def _items_from(items: Iterable[Any]) -> list[ObjectURI]:
    """Locations from what a seed-style ``get_dataset_objects`` returns: URIs, ObjectURIs,
    objects with ``bucket``/``key`` (``S3BucketKeyData``), or (bucket, key) pairs."""
    out: list[ObjectURI] = []
    for it in items:
        if isinstance(it, (str, os.PathLike, ObjectURI)):
            o = store_uri(it, "a dataset object")
        elif hasattr(it, "bucket") and hasattr(it, "key"):
            o = (parse_uri(f"s3://{it.bucket}/{it.key}") if it.bucket
                 else store_uri(it.key, "a dataset object"))
        elif isinstance(it, tuple) and len(it) == 2:
            o = (parse_uri(f"s3://{it[0]}/{it[1]}") if it[0]
                 else store_uri(it[1], "a dataset object"))
        else:
            raise TypeError(f"get_dataset_objects must yield URIs or objects with bucket and "
                            f"key, got {it!r}")
        out.append(_check_object(o, it))
    return out


def _check_object(o: ObjectURI, given: Any) -> ObjectURI:
    if not o.key or o.key.endswith(("/", os.sep)):
        raise ValueError(f"object_uris must name objects (s3://bucket/key or a file path), "
                         f"got {str(given)!r}")
    return o


def _group(items: Sequence[ObjectURI]) -> Iterator[tuple[tuple[str, str], list[ObjectURI]]]:
    """Consecutive runs of the same (scheme, bucket), at most a page each."""
    i = 0
    while i < len(items):
        s, b = items[i].scheme, items[i].bucket
        j = i + 1
        a = items[i].account
        while j < len(items) and j - i < _PAGE and items[j].scheme == s \
                and items[j].bucket == b and items[j].account == a:
            j += 1
        yield (s, b), list(items[i:j])
        i = j


# ------------------------------------------------------------------------------ sharding
def _rank_world(saved: tuple[int, int] | None) -> tuple[int, int]:
    """(rank, world_size): torch.distributed when initialised in this process, else what it
    said when the dataset was created (spawned workers), else RANK/WORLD_SIZE, else (0, 1)."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except (ImportError, RuntimeError):  # pragma: no cover - torch builds without distributed
        pass
    if saved is not None:
        return saved
    raw_w, raw_r = os.environ.get("WORLD_SIZE"), os.environ.get("RANK")
    if not raw_w and not raw_r:
        return 0, 1
    try:
        world = int(raw_w) if raw_w else 1
    except ValueError:
        raise ValueError(f"environment variable WORLD_SIZE must be an integer >= 1, "
                         f"got {raw_w!r}") from None
    try:
        rank = int(raw_r) if raw_r else 0
    except ValueError:
        raise ValueError(f"environment variable RANK must be an integer >= 0, got {raw_r!r}") from None
    if world < 1:
        raise ValueError(f"environment variable WORLD_SIZE must be an integer >= 1, got {raw_w!r}")
    if not 0 <= rank < world:
        raise ValueError(f"environment variable RANK must be in [0, WORLD_SIZE={world}), "
                         f"got {raw_r!r}")
    return rank, world


def _dist_at_creation() -> tuple[int, int] | None:
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except (ImportError, RuntimeError):  # pragma: no cover
        pass
    return None


def _permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


# ------------------------------------------------------------------------------ constructors
def _constructor_kind(c: Any) -> str:
    """'sequential' (prefetchable), 'range_based', or 'other' for a reader constructor."""
    if c is None:
        return "sequential"
    if isinstance(c, partial):
        if c.func is SequentialS3Reader:
            return "sequential"
        if c.func is RangedS3Reader:
            return "range_based"
    return "other"


def _normalize_constructor(c: Any) -> Any:
    """Accept s3torchconnector's own sequential/range_based constructors too (an import that was
    not switched): they become objio's equivalents."""
    if c is None or not isinstance(c, partial):
        if c is not None and not callable(c):
            raise TypeError(f"reader_constructor must be made by S3ReaderConstructor "
                            f"(sequential(), range_based(...)), got {c!r}")
        return c
    mod = getattr(c.func, "__module__", "") or ""
    if mod.startswith("s3torchconnector"):
        name = getattr(c.func, "__name__", "")
        if name == "SequentialS3Reader":
            return partial(SequentialS3Reader)
        if name == "RangedS3Reader":
            return partial(RangedS3Reader, buffer_size=c.keywords.get("buffer_size"))
    return c


def _check_count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _parse_object_uris(object_uris: Any) -> list[ObjectURI]:
    if isinstance(object_uris, (str, os.PathLike)):
        object_uris = [object_uris]
    try:
        items = list(object_uris)
    except TypeError:
        raise TypeError(f"object_uris must be a URI string or an iterable of URI strings, "
                        f"got {type(object_uris).__name__}") from None
    return [_check_object(store_uri(u, "object_uris"), u) for u in items]


def _parse_prefix(s3_uri: Any) -> ObjectURI:
    if not isinstance(s3_uri, (str, os.PathLike)):
        raise TypeError(f"s3_uri must be a string such as 's3://bucket/prefix/', got {s3_uri!r}")
    return store_uri(s3_uri, "s3_uri")


# ------------------------------------------------------------------------------ fetching
class _TooLarge:
    __slots__ = ("size", "etag")

    def __init__(self, size: int, etag: str) -> None:
        self.size = size
        self.etag = etag


async def _fetch_whole(backend: Any, obj: ObjectURI, config: ClientConfig, size: int | None,
                       limit: int) -> Any:
    """The object's bytes (a bytearray); for an object of unknown size larger than ``limit``,
    a :class:`_TooLarge` (after one GET of ``limit`` bytes) so that it can be streamed. With
    checksums on, an object read whole is checked against its stored CRC32C (both ways:
    :func:`objio.engine.get_first`, :func:`objio.engine.get_object`)."""
    if size is not None:
        return await engine.get_object(backend, obj, config)
    r = await engine.get_first(backend, obj, config, limit)
    if r.total_size <= len(r.data):
        return r.data if isinstance(r.data, bytearray) else bytearray(r.data)
    return _TooLarge(r.total_size, r.etag)


class _Pending:
    __slots__ = ("obj", "size", "fut", "reader", "cost")

    def __init__(self, obj: ObjectURI, size: int | None, fut: Future[Any] | None,
                 reader: Any, cost: int) -> None:
        self.obj = obj
        self.size = size
        self.fut = fut
        self.reader = reader
        self.cost = cost

    def cancel(self) -> None:
        if self.fut is not None:
            self.fut.cancel()
        if self.reader is not None:
            try:
                self.reader.close()
            except Exception:  # noqa: BLE001 - best effort while abandoning the pipeline
                pass


# ------------------------------------------------------------------------------ base
class _Base(LazyClient):
    """What both datasets share: configuration, the object list, the client, fetching."""

    _kind = ""

    def _setup(self, region: str | None, get_dataset_objects: Any, endpoint: str | None,
               transform: Callable[[S3Reader], Any], s3client_config: Any,
               reader_constructor: Any, shuffle: bool, seed: int, prefetch_objects: int,
               prefetch_bytes: int) -> None:
        if not callable(transform):
            raise TypeError(f"transform must be callable, got {transform!r}")
        if not isinstance(shuffle, bool):
            raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
        _check_count("seed", seed, 0)
        self._region = region
        self._endpoint = endpoint
        self._s3client_config = s3client_config
        self._config = client_config_for(s3client_config, region, endpoint)
        self._transform = transform
        self._reader_constructor = _normalize_constructor(reader_constructor)
        self._shuffle = shuffle
        self._seed = seed
        self._prefetch_objects = _check_count("prefetch_objects", prefetch_objects, 1)
        self._prefetch_bytes = _check_count("prefetch_bytes", prefetch_bytes, 0)
        self._epoch = 0
        self._passes = 0
        self._perm: tuple[int, np.ndarray] | None = None
        self._client: Client | None = None
        if isinstance(get_dataset_objects, _Listing):
            self._listing = get_dataset_objects
            self._listing.config = self._config
        elif callable(get_dataset_objects):
            self._listing = _Listing(get_dataset_objects, self._config)
        else:
            raise TypeError("get_dataset_objects must be callable (use from_prefix or "
                            f"from_objects), got {get_dataset_objects!r}")

    # -- seed properties -----------------------------------------------------------------
    @property
    def region(self) -> str:
        """The region given, else the one the environment resolves to."""
        return self._region or self._config.resolved().region or "us-east-1"

    @property
    def endpoint(self) -> str | None:
        return self._endpoint

    # -- objio extensions ----------------------------------------------------------------
    @property
    def epoch(self) -> int:
        """The epoch the next pass uses (see :meth:`set_epoch`)."""
        return self._epoch + self._passes

    def set_epoch(self, epoch: int) -> None:
        """Use the permutation of ``epoch`` (with ``shuffle=True``) from now on."""
        self._epoch = _check_count("epoch", operator.index(epoch), 0)
        self._passes = 0

    @property
    def client_config(self) -> ClientConfig:
        """The :class:`objio.ClientConfig` the dataset uses (before env/default resolution)."""
        return self._config

    @property
    def object_uris(self) -> list[str]:
        """The URIs of the dataset's objects, in listing order (lists if needed)."""
        self._listing.wait_all()
        return self._listing.objects.uris()

    @property
    def total_bytes(self) -> int | None:
        """Total size of the objects in bytes (known after listing; None for ``from_objects``)."""
        self._listing.wait_all()
        return self._listing.objects.total_bytes()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(region={self._region!r}, endpoint={self._endpoint!r}, "
                f"shuffle={self._shuffle}, seed={self._seed})")

    # -- pickling ------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_perm"] = None
        return state  # _Listing pickles as its finished list

    # -- internals -----------------------------------------------------------------------
    def _order(self, n: int) -> np.ndarray | None:
        """The epoch's permutation of ``n`` objects (None without shuffling)."""
        if not self._shuffle:
            return None
        ep = self.epoch
        if self._perm is None or self._perm[0] != ep or len(self._perm[1]) != n:
            self._perm = (ep, _permutation(n, self._seed, ep))
        return self._perm[1]

    def _make_reader(self, obj: ObjectURI, size: int | None, etag: str | None = None) -> Any:
        c = self._reader_constructor
        client = self._get_client()
        where = _where(obj)
        if c is None:
            return SequentialS3Reader(obj.bucket, obj.key, client, size=size, etag=etag or None,
                                      **where)
        if _constructor_kind(c) != "other" or getattr(c, "__module__", "").startswith("objio"):
            return c(obj.bucket, obj.key, client, size=size, **where)
        return c(obj.bucket, obj.key, client, **where)

    def _start(self, i: int, whole_max: int) -> _Pending:
        obj, size = self._listing.objects.get(i)
        if _constructor_kind(self._reader_constructor) == "sequential" and \
                (size is None or size <= whole_max):
            client = self._get_client()
            fut = engine.submit(_fetch_whole(client._backend(obj), obj, client.config, size,
                                             whole_max))
            return _Pending(obj, size, fut, None, whole_max if size is None else size)
        reader = self._make_reader(obj, size)
        cost = 0
        if isinstance(reader, SequentialReader) and size is not None:
            reader.prefetch()
            cost = min(size, reader.window_size)
        return _Pending(obj, size, None, reader, cost)

    def _finish(self, p: _Pending) -> Any:
        if p.fut is None:
            reader, p.reader = p.reader, None
            return reader
        data = p.fut.result()
        if isinstance(data, _TooLarge):
            reader = self._make_reader(p.obj, data.size, data.etag)
            if isinstance(reader, SequentialReader):
                reader.prefetch()
            return reader
        return PrefetchedS3Reader(p.obj.bucket, p.obj.key, data, **_where(p.obj))

    def _readers(self, indices: Iterable[int], max_objects: int) -> Iterator[Any]:
        """Readers for the objects at ``indices``, in order, with up to ``max_objects`` objects
        (and about ``prefetch_bytes`` bytes) fetched or in flight ahead of the consumer."""
        whole_max = max(1, min(PREFETCH_OBJECT_MAX, self._prefetch_bytes or PREFETCH_OBJECT_MAX))
        budget = self._prefetch_bytes
        window: collections.deque[_Pending] = collections.deque()
        held = 0
        it = iter(indices)
        poll = getattr(it, "poll", None)  # a listing still in progress: don't wait for it
        exhausted = False

        def fill(block: bool) -> None:
            nonlocal held, exhausted
            while not exhausted and len(window) < max_objects and (not window or held < budget):
                try:
                    if poll is not None and (window or not block):
                        j = poll()
                        if j is None:
                            return  # the next key is not listed yet: serve what is in flight
                        i = j
                    else:
                        i = next(it)
                except StopIteration:
                    exhausted = True
                    return
                p = self._start(i, whole_max)
                window.append(p)
                held += p.cost

        try:
            while True:
                if not window:
                    fill(True)
                    if not window:
                        return
                p = window[0]
                reader = self._finish(p)
                window.popleft()
                held -= p.cost
                fill(False)  # before handing the reader out: the transform overlaps the fetches
                yield reader
        finally:
            for p in window:
                p.cancel()


# ------------------------------------------------------------------------------ map
class S3MapDataset(_Base, torch.utils.data.Dataset):  # type: ignore[type-arg]
    """A map-style dataset over S3 (or local) objects (s3torchconnector's ``S3MapDataset``).

    Create it with :meth:`from_prefix` or :meth:`from_objects`. ``dataset[i]`` is
    ``transform(reader)`` for object ``i`` (in listing order, or the epoch's permutation with
    ``shuffle=True``); ``len(dataset)`` is the number of objects (0 for an empty prefix).
    DataLoader batches go through :meth:`__getitems__`, which fetches a batch concurrently.
    See the module documentation for listing, prefetching, memory and processes.

    Items: with the default ``transform`` (identity) an item is the object's
    :class:`~objio.torch.S3Reader` (``.bucket``, ``.key``; ``.read()`` gives its bytes);
    otherwise whatever ``transform`` returns, e.g. with
    :func:`objio.torch.transforms.decode_npz` a tuple ``(x, y)`` of ``torch.Tensor`` (for
    objio/DLIO files ``x`` uint8 ``(dim1, dim2, samples)``, ``y`` int64 ``(samples,)``) and
    with :func:`objio.torch.transforms.to_tensor` a 1-D uint8 tensor of the object's bytes.

    Args:
        region: the bucket's region (None: ``AWS_REGION`` & co., else us-east-1; the
            ``from_*`` constructors default to None).
        get_dataset_objects: ``fn(client) -> iterable`` of URIs, ``(bucket, key)`` pairs or
            objects with ``bucket``/``key`` (what ``from_prefix``/``from_objects`` build).
        endpoint: custom S3 endpoint URL, or None.
        transform: ``fn(reader) -> sample``, applied to an :class:`~objio.torch.S3Reader` per
            object (module-level functions or picklable objects for spawn/forkserver workers;
            return :class:`~objio.torch.transforms.Samples` for several samples per object).
        s3client_config: :class:`~objio.torch.S3ClientConfig` (or s3torchconnector's, or an
            :class:`objio.ClientConfig`), None for defaults and the environment.
        reader_constructor: from :class:`~objio.torch.S3ReaderConstructor` (default
            sequential: objects up to 64 MiB come fetched whole, larger ones stream).
        shuffle: a new deterministic permutation per ``(seed, epoch)`` (objio extension).
        seed: the permutation's seed, an int >= 0.
        prefetch_objects: objects fetched ahead of the consumer, >= 1.
        prefetch_bytes: bytes those may hold in memory, >= 0 (default 128 MiB).

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: a value out of range or a malformed URI.
        FileNotFoundError: when read: no such bucket or object.
        PermissionError: when read: access denied.
        ObjectStoreError: when read: anything else from the store.
    """

    _kind = "map"

    def __init__(self, region: str | None, get_dataset_objects: Callable[[Any], Iterable[Any]] | Any,
                 endpoint: str | None = None,
                 transform: Callable[[S3Reader], Any] = identity,
                 s3client_config: S3ClientConfig | None = None,
                 reader_constructor: Any = None, *, shuffle: bool = False, seed: int = 0,
                 prefetch_objects: int = DEFAULT_MAP_PREFETCH_OBJECTS,
                 prefetch_bytes: int = DEFAULT_PREFETCH_BYTES) -> None:
        self._setup(region, get_dataset_objects, endpoint, transform, s3client_config,
                    reader_constructor, shuffle, seed, prefetch_objects, prefetch_bytes)

    @classmethod
    def from_objects(cls, object_uris: str | Iterable[str], *, region: str | None = None,
                     endpoint: str | None = None,
                     transform: Callable[[S3Reader], Any] = identity,
                     s3client_config: S3ClientConfig | None = None,
                     reader_constructor: Any = None, shuffle: bool = False, seed: int = 0,
                     prefetch_objects: int = DEFAULT_MAP_PREFETCH_OBJECTS,
                     prefetch_bytes: int = DEFAULT_PREFETCH_BYTES) -> S3MapDataset:
        """A dataset of the given objects (``s3://bucket/key``, ``file:///path`` or paths).

        A missing object raises FileNotFoundError naming it when it is read (not here). Logs
        ``Building S3MapDataset from_objects`` at INFO (logger ``objio.torch``), as the seed
        does.

        ``prefetch_objects`` (objects) and ``prefetch_bytes`` (bytes): as the class takes them.

        Raises:
            TypeError: an argument of the wrong type.
            ValueError: a malformed URI, a value out of range.
        """
        log.info("Building %s from_objects", cls.__name__)
        return cls(region, _objects_listing(object_uris), endpoint, transform=transform,
                   s3client_config=s3client_config, reader_constructor=reader_constructor,
                   shuffle=shuffle, seed=seed, prefetch_objects=prefetch_objects,
                   prefetch_bytes=prefetch_bytes)

    @classmethod
    def from_prefix(cls, s3_uri: str, *, region: str | None = None, endpoint: str | None = None,
                    transform: Callable[[S3Reader], Any] = identity,
                    s3client_config: S3ClientConfig | None = None,
                    reader_constructor: Any = None, shuffle: bool = False, seed: int = 0,
                    prefetch_objects: int = DEFAULT_MAP_PREFETCH_OBJECTS,
                    prefetch_bytes: int = DEFAULT_PREFETCH_BYTES) -> S3MapDataset:
        """A dataset of every object under ``s3_uri`` (``s3://bucket/prefix``: a string prefix;
        ``file:///dir/`` or a local path), listed once, lazily, an S3 prefix with FastList
        streamed (:mod:`objio.fastlist`): the first page at once, the rest in listing order
        as it comes.

        Logs ``Building <class> from_prefix s3_uri='...'`` at INFO (logger ``objio.torch``), as
        the seed does.

        ``prefetch_objects`` (objects) and ``prefetch_bytes`` (bytes): as the class takes them.

        Raises:
            TypeError: an argument of the wrong type.
            ValueError: a malformed URI, a value out of range.
            FileNotFoundError: on first use: no such bucket, or a local directory that does
                not exist.
            PermissionError: on first use: access denied.
            ObjectStoreError: on first use: code ``IncompleteListing``, the server's listing
                stayed incomplete.
        """
        log.info("Building %s from_prefix s3_uri=%r", cls.__name__, s3_uri)
        obj = _parse_prefix(s3_uri)
        return cls(region, _Listing(obj, ClientConfig()), endpoint, transform=transform,
                   s3client_config=s3client_config, reader_constructor=reader_constructor,
                   shuffle=shuffle, seed=seed, prefetch_objects=prefetch_objects,
                   prefetch_bytes=prefetch_bytes)

    @classmethod
    def from_manifest(cls, manifest: str | os.PathLike[str], s3_uri: str | None = None, *,
                      region: str | None = None, endpoint: str | None = None,
                      transform: Callable[[S3Reader], Any] = identity,
                      s3client_config: S3ClientConfig | None = None,
                      reader_constructor: Any = None, shuffle: bool = False, seed: int = 0,
                      prefetch_objects: int = DEFAULT_MAP_PREFETCH_OBJECTS,
                      prefetch_bytes: int = DEFAULT_PREFETCH_BYTES) -> S3MapDataset:
        """A dataset of the objects a manifest lists (``objio ls --manifest FILE URI``,
        :func:`objio.manifest.write_manifest`): all of them, or with ``s3_uri`` those under
        that prefix (or matching that glob), in the manifest's order, without listing (no
        ListObjectsV2 request) and, their sizes being known, without a HEAD. The manifest is
        checked whole now (:func:`objio.manifest.read_manifest`) and read on first use, as
        ``from_prefix`` lists; the arguments after it are ``from_prefix``'s.

        ``prefetch_objects`` (objects) and ``prefetch_bytes`` (bytes): as the class takes them.

        Raises:
            TypeError: an argument of the wrong type.
            ValueError: not a manifest, a manifest cut short, ``s3_uri`` outside what it
                lists (another bucket or prefix).
            FileNotFoundError: no such file.
            ImportError: pyarrow or zstandard missing for its format, naming the extra.
        """
        return cls(region, _manifest_listing(manifest, s3_uri), endpoint, transform=transform,
                   s3client_config=s3client_config, reader_constructor=reader_constructor,
                   shuffle=shuffle, seed=seed, prefetch_objects=prefetch_objects,
                   prefetch_bytes=prefetch_bytes)

    def __len__(self) -> int:
        return self._listing.wait_all()

    def _index(self, i: Any, n: int) -> int:
        try:
            j = operator.index(i)
        except TypeError:
            raise TypeError(f"{type(self).__name__} indices must be integers, got "
                            f"{type(i).__name__}") from None
        if j < 0:
            j += n
        if not 0 <= j < n:
            raise IndexError(f"{type(self).__name__} index {i} out of range (len {n})")
        order = self._order(n)
        return j if order is None else int(order[j])

    def __getitem__(self, i: int) -> Any:
        n = self._listing.wait_all()
        obj, size = self._listing.objects.get(self._index(i, n))
        return _finish_sample(self._transform(self._make_reader(obj, size)))

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        """``[self[i] for i in indices]``, with the objects fetched concurrently."""
        n = self._listing.wait_all()
        idx = [self._index(i, n) for i in indices]
        return [_finish_sample(self._transform(r))
                for r in self._readers(idx, self._prefetch_objects)]


# ------------------------------------------------------------------------------ iterable
class S3IterableDataset(_Base, torch.utils.data.IterableDataset):  # type: ignore[type-arg]
    """An iterable-style dataset over S3 (or local) objects (s3torchconnector's
    ``S3IterableDataset``).

    Create it with :meth:`from_prefix` or :meth:`from_objects`. Iterating yields
    ``transform(reader)`` for each object (each sample of a :class:`~objio.torch.transforms.Samples`
    result), keeping ``prefetch_objects`` objects in flight. With ``enable_sharding=True`` the
    objects are split over ranks and DataLoader workers (exactly once per epoch). See the module
    documentation for listing, sharding, shuffling, memory and processes.

    Items: as :class:`S3MapDataset`'s: the object's :class:`~objio.torch.S3Reader` with the
    default ``transform`` (identity), else what ``transform`` returns (e.g. a tuple ``(x, y)``
    of ``torch.Tensor`` with :func:`objio.torch.transforms.decode_npz`).

    Args:
        region: the bucket's region (None: ``AWS_REGION`` & co., else us-east-1; the
            ``from_*`` constructors default to None).
        get_dataset_objects: ``fn(client) -> iterable`` of URIs, ``(bucket, key)`` pairs or
            objects with ``bucket``/``key`` (what ``from_prefix``/``from_objects`` build).
        endpoint: custom S3 endpoint URL, or None.
        transform: ``fn(reader) -> sample``, applied to an :class:`~objio.torch.S3Reader` per
            object (module-level functions or picklable objects for spawn/forkserver workers;
            return :class:`~objio.torch.transforms.Samples` for several samples per object).
        s3client_config: :class:`~objio.torch.S3ClientConfig` (or s3torchconnector's, or an
            :class:`objio.ClientConfig`), None for defaults and the environment.
        reader_constructor: from :class:`~objio.torch.S3ReaderConstructor` (default
            sequential: objects up to 64 MiB come fetched whole, larger ones stream).
        shuffle: a new deterministic permutation per ``(seed, epoch)`` (objio extension).
        seed: the permutation's seed, an int >= 0.
        enable_sharding: split the objects over ranks (torch.distributed, else RANK and
            WORLD_SIZE), then over each rank's DataLoader workers. Without it every worker
            yields every object (s3torchconnector's behaviour; objio warns once with 2+
            workers).
        prefetch_objects: objects fetched ahead of the consumer, >= 1.
        prefetch_bytes: bytes those may hold in memory, >= 0 (default 128 MiB).

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: a value out of range or a malformed URI.
        FileNotFoundError: when iterated: no such bucket or object.
        PermissionError: when iterated: access denied.
        ObjectStoreError: when iterated: anything else from the store.
    """

    _kind = "iterable"

    def __init__(self, region: str | None, get_dataset_objects: Callable[[Any], Iterable[Any]] | Any,
                 endpoint: str | None = None,
                 transform: Callable[[S3Reader], Any] = identity,
                 s3client_config: S3ClientConfig | None = None, enable_sharding: bool = False,
                 reader_constructor: Any = None, *, shuffle: bool = False, seed: int = 0,
                 prefetch_objects: int = DEFAULT_ITERABLE_PREFETCH_OBJECTS,
                 prefetch_bytes: int = DEFAULT_PREFETCH_BYTES) -> None:
        if not isinstance(enable_sharding, bool):
            raise TypeError(f"enable_sharding must be True or False, got {enable_sharding!r}")
        self._setup(region, get_dataset_objects, endpoint, transform, s3client_config,
                    reader_constructor, shuffle, seed, prefetch_objects, prefetch_bytes)
        self._enable_sharding = enable_sharding
        self._dist = _dist_at_creation()

    @classmethod
    def from_objects(cls, object_uris: str | Iterable[str], *, region: str | None = None,
                     endpoint: str | None = None,
                     transform: Callable[[S3Reader], Any] = identity,
                     s3client_config: S3ClientConfig | None = None,
                     enable_sharding: bool = False, reader_constructor: Any = None,
                     shuffle: bool = False, seed: int = 0,
                     prefetch_objects: int = DEFAULT_ITERABLE_PREFETCH_OBJECTS,
                     prefetch_bytes: int = DEFAULT_PREFETCH_BYTES) -> S3IterableDataset:
        """A dataset of the given objects (``s3://bucket/key``, ``file:///path`` or paths).

        A missing object raises FileNotFoundError naming it when it is reached (not here).
        Logs ``Building S3IterableDataset from_objects`` at INFO (logger ``objio.torch``), as
        the seed does.

        ``prefetch_objects`` (objects) and ``prefetch_bytes`` (bytes): as the class takes them.

        Raises:
            TypeError: an argument of the wrong type.
            ValueError: a malformed URI, a value out of range.
        """
        log.info("Building %s from_objects", cls.__name__)
        return cls(region, _objects_listing(object_uris), endpoint, transform=transform,
                   s3client_config=s3client_config, enable_sharding=enable_sharding,
                   reader_constructor=reader_constructor, shuffle=shuffle, seed=seed,
                   prefetch_objects=prefetch_objects, prefetch_bytes=prefetch_bytes)

    @classmethod
    def from_prefix(cls, s3_uri: str, *, region: str | None = None, endpoint: str | None = None,
                    transform: Callable[[S3Reader], Any] = identity,
                    s3client_config: S3ClientConfig | None = None,
                    enable_sharding: bool = False, reader_constructor: Any = None,
                    shuffle: bool = False, seed: int = 0,
                    prefetch_objects: int = DEFAULT_ITERABLE_PREFETCH_OBJECTS,
                    prefetch_bytes: int = DEFAULT_PREFETCH_BYTES) -> S3IterableDataset:
        """A dataset of every object under ``s3_uri`` (``s3://bucket/prefix``: a string prefix;
        ``file:///dir/`` or a local path), listed once, lazily, an S3 prefix with FastList
        streamed (:mod:`objio.fastlist`): the first page at once, the rest in listing order
        as it comes.

        Logs ``Building <class> from_prefix s3_uri='...'`` at INFO (logger ``objio.torch``), as
        the seed does.

        ``prefetch_objects`` (objects) and ``prefetch_bytes`` (bytes): as the class takes them.

        Raises:
            TypeError: an argument of the wrong type.
            ValueError: a malformed URI, a value out of range.
            FileNotFoundError: on first use: no such bucket, or a local directory that does
                not exist.
            PermissionError: on first use: access denied.
            ObjectStoreError: on first use: code ``IncompleteListing``, the server's listing
                stayed incomplete.
        """
        log.info("Building %s from_prefix s3_uri=%r", cls.__name__, s3_uri)
        obj = _parse_prefix(s3_uri)
        return cls(region, _Listing(obj, ClientConfig()), endpoint, transform=transform,
                   s3client_config=s3client_config, enable_sharding=enable_sharding,
                   reader_constructor=reader_constructor, shuffle=shuffle, seed=seed,
                   prefetch_objects=prefetch_objects, prefetch_bytes=prefetch_bytes)

    @classmethod
    def from_manifest(cls, manifest: str | os.PathLike[str], s3_uri: str | None = None, *,
                      region: str | None = None, endpoint: str | None = None,
                      transform: Callable[[S3Reader], Any] = identity,
                      s3client_config: S3ClientConfig | None = None,
                      enable_sharding: bool = False, reader_constructor: Any = None,
                      shuffle: bool = False, seed: int = 0,
                      prefetch_objects: int = DEFAULT_ITERABLE_PREFETCH_OBJECTS,
                      prefetch_bytes: int = DEFAULT_PREFETCH_BYTES) -> S3IterableDataset:
        """A dataset of the objects a manifest lists, without listing or HEAD requests (see
        :meth:`S3MapDataset.from_manifest`); the arguments after it are ``from_prefix``'s.

        ``prefetch_objects`` (objects) and ``prefetch_bytes`` (bytes): as the class takes them.

        Raises:
            TypeError: an argument of the wrong type (as :meth:`S3MapDataset.from_manifest`).
            ValueError: not a manifest, a manifest cut short, ``s3_uri`` outside what it
                lists (another bucket or prefix).
            FileNotFoundError: no such file.
            ImportError: pyarrow or zstandard missing for its format, naming the extra.
        """
        return cls(region, _manifest_listing(manifest, s3_uri), endpoint, transform=transform,
                   s3client_config=s3client_config, enable_sharding=enable_sharding,
                   reader_constructor=reader_constructor, shuffle=shuffle, seed=seed,
                   prefetch_objects=prefetch_objects, prefetch_bytes=prefetch_bytes)

    @property
    def enable_sharding(self) -> bool:
        return self._enable_sharding

    def shard(self) -> tuple[int, int]:
        """(first index, stride) of the objects the calling process and DataLoader worker read:
        indices ``first, first + stride, ...`` of the epoch's order.

        Sharded by rank first (rank ``r`` of ``world`` takes every ``world``-th object from
        ``r``), then by worker within the rank (worker ``w`` of that rank's ``nw`` takes every
        ``nw``-th of those): every object is read exactly once per epoch even when ranks run
        different numbers of DataLoader workers."""
        if not self._enable_sharding:
            return 0, 1
        rank, world = _rank_world(self._dist)
        info = torch.utils.data.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        return rank + world * wid, world * nw

    def _indices(self, shard: int, total: int, order: np.ndarray | None) -> Iterator[int]:
        if order is not None:
            return (int(order[j]) for j in range(shard, len(order), total))
        return _ListingIndices(self._listing, shard, total)

    def __iter__(self) -> Iterator[Any]:
        global _warned_unsharded
        info = torch.utils.data.get_worker_info()
        if not self._enable_sharding and info is not None and info.num_workers > 1 \
                and info.id == 0 and not _warned_unsharded:
            _warned_unsharded = True
            log.warning("S3IterableDataset without enable_sharding in %d DataLoader workers: "
                        "every worker yields every object (each sample %d times); pass "
                        "enable_sharding=True to split them", info.num_workers, info.num_workers)
        shard, total = self.shard()
        ep = self.epoch
        self._passes += 1
        return self._iterate(shard, total, ep)

    def _iterate(self, shard: int, total: int, epoch: int) -> Iterator[Any]:
        order = None
        if self._shuffle:
            n = self._listing.wait_all()
            order = _permutation(n, self._seed, epoch)
        for reader in self._readers(self._indices(shard, total, order), self._prefetch_objects):
            out = self._transform(reader)
            if isinstance(out, Samples):
                yield from out
            else:
                yield out


class _ListingIndices:
    """Indices ``shard, shard + total, ...`` of a listing that may still be growing: ``next``
    waits for the listing, ``poll`` does not (None: not listed yet)."""

    def __init__(self, listing: _Listing, shard: int, total: int) -> None:
        self.listing = listing
        self.i = shard
        self.total = total

    def __iter__(self) -> _ListingIndices:
        return self

    def _take(self) -> int:
        i = self.i
        self.i += self.total
        return i

    def __next__(self) -> int:
        if self.listing.wait_for(self.i + 1) <= self.i:
            raise StopIteration
        return self._take()

    def poll(self) -> int | None:
        lst = self.listing
        if len(lst.objects) > self.i:
            return self._take()
        if not lst.done:
            return None
        return next(self)  # finished: the last pages, the listing's error, or the end


class FlattenSamples(torch.utils.data.IterableDataset):  # type: ignore[type-arg]
    """Wrap another iterable dataset (e.g. s3torchconnector's) so that its
    :class:`~objio.torch.transforms.Samples` results are yielded one by one, as
    :class:`S3IterableDataset` does itself."""

    def __init__(self, dataset: Iterable[Any]) -> None:
        self.dataset = dataset

    def __iter__(self) -> Iterator[Any]:
        for out in self.dataset:
            if isinstance(out, Samples):
                yield from out
            else:
                yield out


def _finish_sample(out: Any) -> Any:
    if isinstance(out, Samples):
        return list(out)
    return out


class _FromManifest:
    """A dataset's objects from a manifest: all of it, or those under ``uri``."""

    __slots__ = ("manifest", "uri")

    def __init__(self, manifest: Manifest, uri: Any) -> None:
        self.manifest = manifest
        self.uri = uri


def _manifest_listing(manifest: Any, s3_uri: Any) -> _Listing:
    """The listing of ``from_manifest``: the manifest checked now (whole, and holding
    ``s3_uri``), its entries read on first use."""
    if not isinstance(manifest, (str, os.PathLike)):
        raise TypeError(f"manifest must be a path (objio ls --manifest FILE), got {manifest!r}")
    m = read_manifest(manifest)
    if s3_uri is not None:
        m.covers(_parse_prefix(s3_uri))
    return _Listing(_FromManifest(m, s3_uri), ClientConfig())


def _objects_listing(object_uris: Any) -> _Listing:
    items = _parse_object_uris(object_uris)
    listing = _Listing(None, ClientConfig())
    for (scheme, bucket), page in _group(items):
        listing.objects.add(scheme, bucket, [o.key for o in page], [-1] * len(page))
    return listing
