"""The one place where concurrency lives.

* One background event loop per process, in a daemon thread, created on first use and created
  anew in a forked child (the child never touches its parent's loop, sessions or sockets).
* Sync calls submit a coroutine to that loop and wait on a future: the waiting thread holds no
  GIL while the I/O runs. Async calls from the caller's own loop await a wrapped future and never
  block it.
* Retries as the AWS SDKs' standard retry mode: exponential backoff with full jitter
  (``random() * 2**attempt`` seconds, at most 20 s) for transient errors (connection errors,
  timeouts, HTTP 500/502/503/504, 408/429, bodies shorter than declared), within a retry quota
  (500 tokens per process; a retry costs 5, 10 after a timeout; a success gives 1 back, a
  success after retries gives their cost back): a 5 s server restart is ridden out, a dead
  server fails fast once the quota is spent. A connection refused or a host name that does
  not resolve has its own small budget (``ClientConfig.connect_attempts``, 0.25-2 s apart):
  a dead endpoint fails in seconds. Every retry is logged on ``objio.retry`` at INFO.
* The receive path returns a buffer only when every byte of it was written by a response for
  exactly the range asked: the backends check status, Content-Range and lengths; here every
  part of a multi-request GET must come from the same version of the object as the first
  response (same ETag and total size), or the whole GET starts again once, then raises
  ``ObjectStoreError`` with code ``ObjectChanged``.
* Multipart uploads are created through :func:`create_multipart`, which aborts the duplicate
  uploads a retried CreateMultipartUpload may leave, and aborted through
  :func:`abort_multipart`, retried like every request: none is left behind.
* Upload checksums (``ClientConfig.checksums``, on by default): every PutObject and UploadPart
  carries its CRC32C, multipart uploads are declared CRC32C of type FULL_OBJECT and completed
  with the whole object's CRC32C. A store that refuses them is found on its first refusal (the
  request is sent again without, and that succeeds): from then on this backend sends what the
  store takes (COMPOSITE instead of FULL_OBJECT, or no checksums), after one warning
  (:func:`checksum_support`). A body the store finds damaged (BadDigest) is sent once more,
  then ``IntegrityError``.
* With ``checksums`` on, downloads are checked against the CRC32C the store keeps with the
  object: the first GET from byte 0 carries no Range header (so the stored checksum comes
  with it), every ranged part's CRC32C is computed as it lands and combined into the whole
  object's, and a mismatch reads the suspect parts once more before ``IntegrityError``
  (:func:`get_first`, :func:`get_object`, :func:`settle`; :mod:`objio._integrity`).
* Bounded concurrency (``max_in_flight``) with results kept in input order.
* GETs of objects larger than ``range_threshold`` are split into concurrent ranged GETs written
  into one preallocated buffer.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import dataclasses
import functools
import itertools
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Hashable, Iterator
from typing import Any, Awaitable, Callable, Coroutine, Generic, Iterable, NamedTuple, Sequence, TypeVar

from . import _crc32c, oplog
from ._buffers import BufferPool, new_buffer
from ._integrity import Piece, ReadCheck, integrity_error, ranges_text
from .backend import Backend, CopyResult, GetResult, ListPage, ObjectInfo, UploadInfo
from .config import MAX_PARTS, ClientConfig
from .errors import (
    AlreadyExistsError,
    EndpointUnreachableError,
    IntegrityError,
    NotFoundError,
    ObjectStoreError,
    ObjectTimeoutError,
    may_be_checksum_refusal,
    retry_reason,
    retryable_code,
)
from .oplog import ATTEMPT
from .uri import ObjectURI

log = logging.getLogger("objio.engine")
retry_log = logging.getLogger("objio.retry")
"""Every retry, at INFO, as one line saying why and which attempt comes next ("retrying:
connection refused by 127.0.0.1:1 (attempt 2 of 4)"); the record carries ``attempt`` (the
next one, 2-based), ``attempts`` (the most there will be), ``delay_s`` and ``error`` (the
:class:`objio.ObjectStoreError` retried). The CLI shows them on standard error (the first on a
terminal, all with ``-v``); a library user sees them with ``logging`` configured."""
builtins_list = list

T = TypeVar("T")
R = TypeVar("R")

_BACKOFF_BASE_S = 1.0  # AWS standard mode: random() * 2**attempt seconds
_BACKOFF_CAP_S = 20.0  # AWS standard mode's max backoff
_RETRY_QUOTA = 500  # AWS standard mode: initial retry tokens
_RETRY_COST = 5
_TIMEOUT_RETRY_COST = 10
_UNREACHABLE_BACKOFF_S = 0.5  # a refused connection: 0.25-0.5 s, then 0.5-1, 1-2, at most 2
_UNREACHABLE_BACKOFF_CAP_S = 2.0
_MAX_PARTS_PER_OBJECT = 16


class RequestRecord(NamedTuple):
    """What one completed object transfer took (passed to ``observer`` callbacks).

    Attributes:
        uri: the object.
        nbytes: bytes transferred.
        ttfb_s: seconds from the first request to its response headers (time to first byte).
        total_s: seconds from the first request to the last byte.
    """

    uri: str
    nbytes: int
    ttfb_s: float
    total_s: float


Observer = Callable[[RequestRecord], None]


class _Engine:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()
        self.backends: dict[tuple[str, ClientConfig], Backend] = {}
        # the backend found last, by the identity of its config: a lookup in ``backends``
        # hashes and compares every field of the config, on every request
        self.last: tuple[str, ClientConfig, Backend] | None = None

    def get_loop(self) -> asyncio.AbstractEventLoop:
        loop = self.loop
        if loop is not None:
            return loop
        with self.lock:
            if self.loop is None:
                ready = threading.Event()
                holder: list[asyncio.AbstractEventLoop] = []

                def main() -> None:
                    lp = _new_loop()
                    asyncio.set_event_loop(lp)
                    holder.append(lp)
                    ready.set()
                    lp.run_forever()

                t = threading.Thread(target=main, name="objio-engine", daemon=True)
                t.start()
                ready.wait()
                self.thread = t
                self.loop = holder[0]
            return self.loop


def _new_loop() -> asyncio.AbstractEventLoop:
    if os.environ.get("OBJIO_UVLOOP", "1") != "0":
        try:
            import uvloop

            return uvloop.new_event_loop()
        except ImportError:
            pass
    return asyncio.new_event_loop()


_engine = _Engine()
# Objects inherited from the parent across fork: kept referenced (never closed or collected in
# the child) so no destructor touches the parent's sockets.
_inherited: list[Any] = []


def _after_fork_in_child() -> None:
    global _engine
    _inherited.append(_engine)
    _engine = _Engine()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def shutdown(timeout_s: float = 5.0) -> None:
    """Close every backend's connections and stop this process's engine loop (it starts
    again on next use). Registered with atexit."""
    eng = _engine
    lp = eng.loop
    if lp is None or eng.pid != os.getpid() or not lp.is_running():
        return
    backends = builtins_list(eng.backends.values())
    eng.backends.clear()
    eng.last = None

    async def close_all() -> None:
        # Tasks the caller left behind (a reader's cancelled prefetch, a clean-up whose
        # caller stopped waiting) are ended and awaited here, as asyncio.run() does, instead
        # of being destroyed pending with the loop.
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout_s / 2)
        await asyncio.gather(*(b.close() for b in backends), return_exceptions=True)

    try:
        asyncio.run_coroutine_threadsafe(close_all(), lp).result(timeout_s)
    except (concurrent.futures.TimeoutError, RuntimeError) as e:
        log.debug("engine shutdown: %s", e)
    with eng.lock:
        eng.loop = None
        lp.call_soon_threadsafe(lp.stop)
        if eng.thread is not None:
            eng.thread.join(timeout_s)
        eng.thread = None


atexit.register(shutdown)


def loop() -> asyncio.AbstractEventLoop:
    """The engine's event loop (started on first use, per process)."""
    return _engine.get_loop()


def in_engine_thread() -> bool:
    return threading.current_thread() is _engine.thread


_CANCEL_WAIT_S = 30.0  # how long an interrupted call waits for its clean-up (aborts) to finish


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the engine loop and wait for its result (the GIL is released while
    waiting). Raises whatever the coroutine raises.

    Interrupted while waiting (Ctrl-C): the work is cancelled and this call waits (up to 30 s)
    until the coroutine has finished its clean-up, such as aborting multipart uploads, before
    the KeyboardInterrupt goes on; so a process that exits next leaves nothing behind."""
    if in_engine_thread():
        coro.close()
        raise RuntimeError("a synchronous objio call was made from inside the objio engine "
                           "loop (e.g. from an observer callback); use the *_async function")
    try:  # the first call starts the loop: an interrupt meanwhile must not orphan ``coro``
        lp = _engine.get_loop()
    except BaseException:
        coro.close()
        raise
    finished = threading.Event()

    async def tracked() -> T:
        try:
            return await coro
        finally:
            finished.set()

    fut = asyncio.run_coroutine_threadsafe(tracked(), lp)
    try:
        return fut.result()
    except concurrent.futures.CancelledError:
        raise
    except BaseException:
        if not fut.done():  # KeyboardInterrupt while waiting: stop the work too
            fut.cancel()
            finished.wait(_CANCEL_WAIT_S)
        raise


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Start ``coro`` on the engine loop and return at once; ``.result()`` waits for it (with
    the GIL released) and ``.cancel()`` cancels it. For streaming readers and writers that keep
    requests in flight while the caller works."""
    if in_engine_thread():
        coro.close()
        raise RuntimeError("engine.submit() called from the engine loop; await the coroutine")
    return asyncio.run_coroutine_threadsafe(coro, _engine.get_loop())


async def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` running on the engine loop from any other running loop without blocking
    it; cancelling the awaiting task cancels the work."""
    eng_loop = _engine.get_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is eng_loop:
        return await coro
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, eng_loop))


def backend_for(obj: ObjectURI, config: ClientConfig) -> Backend:
    """The backend serving ``obj`` under ``config`` (one per process, scheme and config).
    An ``abfs://container@account...`` URI naming another account than the configured one is
    served at that account's endpoint without the configured key or SAS token (they belong
    to the other account): bearer token or anonymous."""
    if obj.account and obj.account != config.azure_account:
        config = dataclasses.replace(config, azure_account=obj.account, azure_account_key=None,
                                     azure_sas_token=None, azure_endpoint_url=None)
    eng = _engine
    last = eng.last
    if last is not None and last[1] is config and last[0] == obj.scheme:
        return last[2]
    key = (obj.scheme, config)
    b = _engine.backends.get(key)
    if b is not None:
        eng.last = (obj.scheme, config, b)
    else:
        with _engine.lock:
            b = _engine.backends.get(key)
            if b is None:
                if obj.scheme == "file":
                    from .local import LocalBackend

                    b = LocalBackend()
                elif obj.scheme == "az":
                    from .azure import AzureBackend

                    b = AzureBackend(config)
                elif obj.scheme == "gs":
                    from .gcs import GCSBackend

                    b = GCSBackend(config)
                else:
                    from .s3 import S3Backend

                    b = S3Backend(config)
                # the S3, Azure and GCS backends log their own HTTP requests in the op-log;
                # file:// has no requests: one line per operation
                if config.op_log and obj.scheme == "file":
                    from . import oplog

                    b = oplog.LoggedBackend(b, oplog.get(config.op_log))
                _engine.backends[key] = b
            eng.last = (obj.scheme, config, b)
    return b


async def to_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking or CPU-bound ``fn`` in the engine loop's worker threads."""
    return await asyncio.get_running_loop().run_in_executor(
        None, functools.partial(fn, *args, **kwargs))


async def finish(aw: Awaitable[T]) -> T:
    """Await ``aw`` (clean-up such as an abort) to its end, even if the calling task is
    cancelled meanwhile, once or more. For an ``except``/``finally`` block that re-raises:
    ``await asyncio.shield(aw)`` stops waiting at the next cancellation and leaves ``aw``
    running with nobody waiting for it, so the caller reports "done" while the abort is still
    under way (and the loop may be stopped under it at exit: an upload left behind, "Task was
    destroyed but it is pending"). Returns ``aw``'s result or raises its exception; the
    caller's own cancellation is not raised here (the caller re-raises the one it handles)."""
    task = asyncio.ensure_future(aw)
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            continue
    return task.result()


# ----------------------------------------------------------------------------------- streams
_END = object()


class _Feed(Generic[T]):
    """An async iterator run on the engine loop by a task of its own, its items handed to a
    consumer in another thread or event loop through a queue of at most ``ahead`` items:
    the producer works ahead of the consumer by that much and no more (it waits while the
    queue is full), so what is in memory is bounded by what the consumer keeps."""

    def __init__(self, source: AsyncIterator[T], ahead: int) -> None:
        self.source = source
        self.queue: asyncio.Queue[tuple[Any, BaseException | None]] = asyncio.Queue(ahead)
        self.task: asyncio.Task[None] | None = None
        self.ended = False

    async def start(self) -> None:
        self.task = asyncio.ensure_future(self._produce())

    async def _produce(self) -> None:
        error: BaseException | None = None
        try:
            async for item in self.source:
                await self.queue.put((item, None))
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, in order
            error = e
        finally:
            aclose = getattr(self.source, "aclose", None)
            if aclose is not None:  # its clean-up (e.g. FastList's requests) runs here
                await finish(aclose())
        await self.queue.put((_END, error))

    async def next(self) -> Any:
        """The next item, or ``_END``; raises the source's error after its last item."""
        if self.ended:
            return _END
        item, error = await self.queue.get()
        if item is _END:
            self.ended = True
            if error is not None:
                raise error
        return item

    async def close(self) -> None:
        task = self.task
        if task is not None and not task.done():
            task.cancel()
            await finish(asyncio.gather(task, return_exceptions=True))


def iterate(source: AsyncIterator[T], ahead: int = 2) -> Iterator[T]:
    """The items of ``source`` (an async iterator, started on the engine loop) for a
    synchronous consumer, as they come: at most ``ahead`` items (>= 1) are produced ahead of
    the consumer. Raises what ``source`` raises, after the items before it. Closing the
    iterator (``break``, ``close()``, garbage collection) cancels ``source`` and waits for
    its clean-up. Not from the engine's own thread (RuntimeError)."""
    if in_engine_thread():
        raise RuntimeError("engine.iterate() called from the engine loop; iterate the async "
                           "iterator itself")
    feed: _Feed[T] = _Feed(source, ahead)
    run(feed.start())
    try:
        while True:
            item = run(feed.next())
            if item is _END:
                return
            yield item
    finally:
        _close_feed(feed)


def _close_feed(feed: _Feed[Any]) -> None:
    """Stop ``feed``'s producer (from any thread; at exit or from the engine's thread without
    waiting)."""
    task = feed.task
    if task is None or task.done():
        return
    if in_engine_thread():
        task.cancel()
        return
    try:
        run(feed.close())
    except RuntimeError:  # the engine is shutting down: nothing left to stop
        pass


async def iterate_async(source: AsyncIterator[T], ahead: int = 2) -> AsyncIterator[T]:
    """:func:`iterate` for an asynchronous consumer on any event loop (the engine's own
    included): the items of ``source``, run on the engine loop, at most ``ahead`` ahead.
    Closing the iterator (``aclose()``, leaving ``async for`` by an error or ``break`` in an
    ``aclosing`` block) cancels ``source`` and waits for its clean-up."""
    feed: _Feed[T] = _Feed(source, ahead)
    await run_async(feed.start())
    try:
        while True:
            item = await run_async(feed.next())
            if item is _END:
                return
            yield item
    finally:
        task = feed.task
        if task is not None and not task.done():
            await run_async(feed.close())


# ----------------------------------------------------------------------------------- retries
def backoff_s(attempt: int) -> float:
    """Full-jitter exponential backoff before retry number ``attempt`` (1-based), in seconds:
    ``random() * 2**attempt``, at most 20 s (AWS standard retry mode)."""
    return min(_BACKOFF_CAP_S, random.random() * _BACKOFF_BASE_S * (2 ** attempt))


def unreachable_backoff_s(attempt: int) -> float:
    """Backoff before retry number ``attempt`` (1-based) of a request whose connection was
    refused or whose host name does not resolve, in seconds: half to all of
    ``0.5 * 2**(attempt-1)``, at most 2 s. Short, and never near zero: a server restarting
    gets a second or two, a dead one is given up on in a few seconds
    (``ClientConfig.connect_attempts``)."""
    full = min(_UNREACHABLE_BACKOFF_CAP_S, _UNREACHABLE_BACKOFF_S * 2 ** (attempt - 1))
    return full * (0.5 + 0.5 * random.random())


class _RetryQuota:
    """The AWS SDKs' retry quota (token bucket), one per process: retries stop when a server
    keeps failing, so an outage fails fast instead of multiplying the load."""

    def __init__(self) -> None:
        self.available = _RETRY_QUOTA

    def take(self, cost: int) -> bool:
        if self.available < cost:
            return False
        self.available -= cost
        return True

    def give(self, amount: int) -> None:
        self.available = min(_RETRY_QUOTA, self.available + amount)


_quota = _RetryQuota()


def reset_retry_quota() -> None:
    """Refill the retry quota (tests start each case with a full one)."""
    _quota.available = _RETRY_QUOTA


_op_ids = itertools.count(1)


async def with_retries(fn: Callable[[], Awaitable[T]], max_attempts: int) -> T:
    """Call ``fn`` until it succeeds, retrying ``retryable`` errors up to ``max_attempts``
    requests in all while the retry quota lasts; the last error is raised. A retryable
    :class:`objio.IntegrityError` (a body the store found damaged) is retried once only:
    twice in a row is not chance. A connection refused or a host name that does not resolve
    (:class:`objio.EndpointUnreachableError`) is tried its own ``attempts`` times in all
    (``ClientConfig.connect_attempts``, at most ``max_attempts``) with a short backoff
    (:func:`unreachable_backoff_s`); its final message says how many attempts were made.
    Each retry is logged on :data:`retry_log` (``objio.retry``) at INFO."""
    attempt = 1
    spent = 0
    op_id = next(_op_ids)
    while True:
        # the op-log's op_id / attempt columns (a context variable's set makes three objects
        # to collect: only once this process has an op-log)
        token = ATTEMPT.set((op_id, attempt)) if oplog.opened else None
        try:
            result = await fn()
        except ObjectStoreError as e:
            cost = _TIMEOUT_RETRY_COST if isinstance(e, TimeoutError) else _RETRY_COST
            limit = min(max_attempts, 2) if isinstance(e, IntegrityError) else max_attempts
            unreachable = e if isinstance(e, EndpointUnreachableError) else None
            if unreachable is not None and unreachable.attempts:
                limit = min(limit, unreachable.attempts)
            if not e.retryable or attempt >= limit or not _quota.take(cost):
                if unreachable is not None and attempt > 1:
                    unreachable.tried(attempt)
                raise
            spent += cost
            delay = unreachable_backoff_s(attempt) if unreachable is not None \
                else backoff_s(attempt)
            attempt += 1
            retry_log.info("retrying: %s (attempt %d of %d)", retry_reason(e), attempt, limit,
                           extra={"attempt": attempt, "attempts": limit, "delay_s": delay,
                                  "error": e})
            await asyncio.sleep(delay)
        else:
            _quota.give(spent if spent else 1)
            return result
        finally:
            if token is not None:
                ATTEMPT.reset(token)


# ----------------------------------------------------------------------------------- bounded map
async def bounded_map(
    fn: Callable[[T], Awaitable[R]],
    items: Iterable[T],
    max_in_flight: int,
    *,
    return_exceptions: bool = False,
    keep_results: bool = True,
) -> list[R | BaseException]:
    """Apply ``fn`` to every item with at most ``max_in_flight`` calls running, results in input
    order. ``items`` is consumed lazily, so a generator is never materialised ahead of the work.

    The first exception cancels the rest and is raised, unless ``return_exceptions`` puts each
    exception in its item's place. With ``keep_results=False`` nothing is kept (returns []).
    """
    it = iter(enumerate(items))
    results: dict[int, R | BaseException] = {}
    failure: list[BaseException] = []

    async def worker() -> None:
        for i, item in it:
            if failure:
                return
            try:
                r: R | BaseException = await fn(item)
            except Exception as e:  # noqa: BLE001 - collected or re-raised below
                if not return_exceptions:
                    failure.append(e)
                    return
                r = e
            if keep_results:
                results[i] = r

    workers = [asyncio.ensure_future(worker()) for _ in range(max_in_flight)]
    pending: set[asyncio.Future[None]] = set(workers)
    try:
        while pending:
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if failure:  # stop everything still in flight, then report the first error
                for w in pending:
                    w.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                raise failure[0]
        for w in workers:
            w.result()  # re-raise anything a worker let through (e.g. cancellation)
    except BaseException:
        # Cancelled (or a worker let something through): stop every worker and wait until
        # each has finished its own clean-up (a multipart upload's abort) before going on,
        # so the caller's "done" means nothing of this call is still running.
        for w in workers:
            w.cancel()
        await finish(asyncio.gather(*workers, return_exceptions=True))
        raise
    if not keep_results:
        return []
    return [results[i] for i in range(len(results))]


# ----------------------------------------------------------------------------------- listing
P = TypeVar("P")


async def next_page(fetch: Callable[[], Awaitable[P]], next_of: Callable[[P], Hashable | None],
                    attempts: int, *, sent: Hashable | None, seen: set[Any], operation: str,
                    uri: str) -> P:
    """One page of a listing: ``fetch()`` (one request) with the retry policy of
    :func:`with_retries` (a page cut short, a 503: the same page is asked for again, with the
    same continuation; the listing is not restarted), then a check that the continuation moves
    forward. ``next_of(page)`` is the page's continuation (token or markers; None on the last
    page); ``sent`` the continuation this request sent; ``seen`` every continuation this
    listing received so far (updated). A continuation equal to ``sent`` or already in ``seen``
    would repeat pages or never end: that page is asked for once more, and if it comes back
    the same, ObjectStoreError code ``IncompleteListing`` is raised (botocore's paginator
    raises at once: "The same next token was received twice")."""
    for retry in (False, True):
        page = await with_retries(fetch, attempts)
        nxt = next_of(page)
        if nxt is None or (nxt != sent and nxt not in seen):
            if nxt is not None:
                seen.add(nxt)
            return page
        if not retry:
            log.info("%s %s: the continuation %r came back again; asking for the page once "
                     "more", operation, uri, nxt)
    raise ObjectStoreError(
        f"{operation} {uri} failed: incomplete listing: the server sent the continuation "
        f"{nxt!r} again, twice (the listing does not move forward)", operation=operation,
        uri=uri, code="IncompleteListing")


async def list_one_page(backend: Backend, bucket_uri: ObjectURI, prefix: str = "",
                        delimiter: str | None = None, start_after: str | None = None,
                        page_size: int = 1000,
                        continuation_token: str | None = None) -> ListPage | None:
    """One listing request, no retries: ``backend.list_page`` where the backend has it (S3:
    one ListObjectsV2 request, checked to be a whole page), else the first page of
    ``backend.list_pages`` (None when there is none)."""
    one = getattr(backend, "list_page", None)
    if one is not None:
        page: ListPage = await one(bucket_uri, prefix, delimiter, start_after, page_size,
                                   continuation_token)
        return page
    gen = backend.list_pages(bucket_uri, prefix, delimiter, start_after, page_size,
                             continuation_token=continuation_token)
    try:
        return await gen.__anext__()
    except StopAsyncIteration:
        return None
    finally:
        await gen.aclose()  # type: ignore[attr-defined]


async def list_pages(backend: Backend, bucket_uri: ObjectURI, prefix: str = "",
                     delimiter: str | None = None, *, start_after: str | None = None,
                     page_size: int = 1000, continuation_token: str | None = None,
                     attempts: int = 1) -> AsyncGenerator[ListPage, None]:
    """Every page of a listing, each request retried on its own (:func:`next_page`: a failed
    or incomplete page is asked for again with its continuation token, never restarting the
    listing, so no key is yielded twice; a token that does not move forward raises after one
    retry). Errors name ``s3://bucket/prefix``. A backend without ``list_page`` (file://: one
    directory walk, no requests) yields its pages as they come."""
    if getattr(backend, "list_page", None) is None:
        async for whole in backend.list_pages(bucket_uri, prefix, delimiter, start_after,
                                              page_size, continuation_token):
            yield whole
        return
    uri = str(bucket_uri.with_key(prefix))
    token = continuation_token
    seen: set[Any] = {token} if token else set()
    while True:
        fetch = functools.partial(list_one_page, backend, bucket_uri, prefix, delimiter,
                                  start_after, page_size, token)
        page: ListPage | None = await next_page(fetch, _page_token, attempts, sent=token,
                                                seen=seen, operation="ListObjectsV2", uri=uri)
        if page is None:
            return
        yield page
        token = page.next_token
        if token is None:
            return


def _page_token(page: ListPage | None) -> str | None:
    return None if page is None else page.next_token


async def list_uploads(backend: Backend, bucket_uri: ObjectURI, prefix: str,
                       attempts: int) -> list[UploadInfo]:
    """Every multipart upload in progress under ``prefix`` (ListMultipartUploads, each page
    retried on its own as in :func:`list_pages`; markers that do not move forward raise
    ``IncompleteListing`` after one retry). A backend without uploads to list (file://): []."""
    page_fn = getattr(backend, "list_uploads_page", None)
    if page_fn is None:
        whole = getattr(backend, "list_uploads", None)
        if whole is None:
            return []
        uploads: list[UploadInfo] = await with_retries(lambda: whole(bucket_uri, prefix),
                                                       attempts)
        return uploads
    uri = str(bucket_uri.with_key(prefix))
    out: list[UploadInfo] = []
    markers: tuple[str, str] | None = None
    seen: set[Any] = set()
    while True:
        fetch = functools.partial(page_fn, bucket_uri, prefix, *(markers or ("", "")))
        ups, markers = await next_page(fetch, lambda p: p[1], attempts, sent=markers, seen=seen,
                                       operation="ListMultipartUploads", uri=uri)
        out += ups
        if markers is None:
            return out


async def list_buckets(backend: Backend, attempts: int) -> list[tuple[str, float]]:
    """(name, creation time in epoch seconds) of every bucket (ListBuckets, each page retried
    on its own as in :func:`list_pages`)."""
    s3: Any = backend  # (ListBuckets is S3's alone)
    page_fn = s3.list_buckets_page
    out: list[tuple[str, float]] = []
    token: str | None = None
    seen: set[Any] = set()
    while True:
        fetch = functools.partial(page_fn, token)
        buckets, token = await next_page(fetch, lambda p: p[1], attempts, sent=token, seen=seen,
                                         operation="ListBuckets",
                                         uri=f"{getattr(backend, 'scheme', 's3')}://")
        out += buckets
        if token is None:
            return out


# ----------------------------------------------------------------------------------- GET
def _changed(obj: ObjectURI, detail: str) -> ObjectStoreError:
    return ObjectStoreError(f"GetObject {obj} failed: the object changed while it was read: "
                            f"{detail}; read it again", operation="GetObject", uri=str(obj),
                            code="ObjectChanged")


async def get_range(backend: Backend, obj: ObjectURI, start: int, stop: int, attempts: int, *,
                    etag: str = "", total: int = -1,
                    into: memoryview | None = None,
                    check: ReadCheck | None = None, crc: bool = False) -> GetResult:
    """Bytes [start, stop) of ``obj`` with retries, from the same version as an earlier
    response: with ``etag`` the request carries If-Match and the response must have that ETag;
    with ``total`` its total size must be that. Anything else (a 412, another ETag or size)
    raises ``ObjectStoreError`` with code ``ObjectChanged``; the backend has already checked
    status, Content-Range and length (:meth:`objio.s3.S3Backend.get`).

    With a ``check`` (:class:`objio._integrity.ReadCheck`, the caller then records the pieces):
    the CRC32C of the bytes is computed as soon as they are here (``result.crcs``), and a GET
    that starts at byte 0 is sent without a Range header so that it brings the object's stored
    CRC32C (told to ``check``; at no extra request, see :func:`get_first`). ``crc`` (implied
    by ``check``): the receive path computes the CRC32C of the bytes as they land, where it
    can (``result.received_crc32c``)."""
    unranged = check is not None and start == 0 and not check.known
    crc = crc or check is not None
    try:
        r = await with_retries(
            lambda: backend.get(obj, start, stop - 1, if_match=etag or None, into=into,
                                unranged=unranged, crc=crc), attempts)
    except AlreadyExistsError as e:  # 412: If-Match failed
        if not etag:
            raise
        raise _changed(obj, f"its ETag is no longer {etag!r}") from e
    if etag and r.etag and r.etag != etag:  # a server that ignores If-Match
        raise _changed(obj, f"bytes {start}-{stop - 1} came from ETag {r.etag!r}, not {etag!r}")
    if total >= 0 and r.total_size >= 0 and r.total_size != total:
        raise _changed(obj, f"it is now {r.total_size} bytes, not {total}")
    if check is not None:
        if unranged:
            check.learn(r.stored)  # None: the object has no stored checksum
        if check.needed:
            r.crcs = await crc_of(check, start, into if into is not None else r.data,
                                  r.received_crc32c)
    return r


async def get_first(backend: Backend, obj: ObjectURI, config: ClientConfig, limit: int, *,
                    alloc: Callable[[int], memoryview] | None = None) -> GetResult:
    """The first ``limit`` bytes of ``obj`` (all of a smaller object) in one GET, with retries;
    ``total_size`` of the result is the object's size.

    With ``config.checksums`` the request carries no Range header, so the response brings the
    object's stored CRC32C (``result.stored``: S3 sends it with whole-object responses only)
    at no extra request; for a longer object the connection is closed after ``limit`` bytes.
    An object that fits is checked here against its stored CRC32C: a mismatch reads it once
    more (it may have been damaged in transit), then raises :class:`objio.IntegrityError`
    naming the object and the byte range. Without checksums: a GET of the range [0, limit).
    """
    # (functools.partial, not lambdas: a GET of a small object is the hot path, and closures
    # make cell objects of every name they capture, on each call: garbage to collect)
    attempts = config.max_attempts or 1
    get = backend.get
    if not config.checksums:
        r = await with_retries(functools.partial(get, obj, 0, limit - 1, alloc=alloc),
                               attempts)
        if r.total_size < 0:  # 416 without a size: empty, on servers that refuse the range
            r = await with_retries(functools.partial(get, obj, alloc=alloc), attempts)
            r.total_size = len(r.data)
        return r
    r = await with_retries(functools.partial(get, obj, 0, limit - 1, alloc=alloc,
                                             unranged=True, crc=True), attempts)
    if r.stored is not None and r.total_size <= len(r.data):
        await _check_whole(backend, obj, r, config)
    return r


async def _check_whole(backend: Backend, obj: ObjectURI, r: GetResult,
                       config: ClientConfig) -> None:
    """Check one response that holds the whole object against its stored CRC32C."""
    assert r.stored is not None
    data = memoryview(r.data)
    if not r.stored.composite:
        crc = r.received_crc32c
        if crc is None:
            crc = await crc32c_of(data)
        if crc == r.stored.crc32c:
            return
    check = ReadCheck(str(obj), len(data), r.stored, known=True)
    await find_parts(backend, obj, check, config.max_attempts or 1)
    check.add(await crc_of(check, 0, data, r.received_crc32c))
    await settle(backend, obj, check, etag=r.etag, attempts=config.max_attempts or 1,
                 piece=config.part_size or 8 << 20, parallel=_MAX_PARTS_PER_OBJECT,
                 repair=_patcher(data, 0))


async def get_object(
    backend: Backend,
    obj: ObjectURI,
    config: ClientConfig,
    observer: Observer | None = None,
    pool: BufferPool | None = None,
) -> bytearray | memoryview:
    """Whole object into memory. The first request asks for ``range_threshold`` bytes
    (:func:`get_first`); when the object is larger, the rest is fetched with concurrent ranged
    GETs of ``part_size`` bytes into one preallocated buffer, every part checked to come from
    the same version as the first response (If-Match, ETag and total size). If the object
    changed meanwhile, the whole GET starts again once; then ``ObjectStoreError`` (code
    ``ObjectChanged``).

    With ``config.checksums``, when the store keeps a CRC32C of the object (it came with the
    first response), the CRC32C of every part is computed as it lands and the parts' CRCs are
    combined into the whole object's (no second pass over the bytes) and compared with it; a
    composite (multipart) checksum is checked part by part (the part sizes from
    GetObjectAttributes, one more request, for such objects only). A mismatch reads the
    suspect parts once more and keeps the second reading if it matches; otherwise
    :class:`objio.IntegrityError` names the object and the byte range.

    Returns a bytearray, or with ``pool`` a memoryview of a pooled buffer (give it back with
    ``pool.give``)."""
    try:
        return await _get_object_once(backend, obj, config, observer, pool)
    except ObjectStoreError as e:
        if e.code != "ObjectChanged":
            raise
        log.info("%s changed while it was read; reading it again", obj)
    return await _get_object_once(backend, obj, config, observer, pool)


async def _get_object_once(backend: Backend, obj: ObjectURI, config: ClientConfig,
                           observer: Observer | None,
                           pool: BufferPool | None) -> bytearray | memoryview:
    assert config.range_threshold and config.part_size and config.max_attempts
    t0 = time.perf_counter()
    alloc = pool.take if pool is not None else None
    first = await get_first(backend, obj, config, config.range_threshold, alloc=alloc)
    data: bytearray | memoryview
    if first.total_size > len(first.data):  # no reference here to the first bytes meanwhile
        data = await _get_rest(backend, obj, config, pool, first)
    else:
        data = first.data
    if observer is not None:
        observer(RequestRecord(str(obj), len(data), first.ttfb_s, time.perf_counter() - t0))
    return data


async def _get_rest(backend: Backend, obj: ObjectURI, config: ClientConfig,
                    pool: BufferPool | None, first: GetResult) -> bytearray | memoryview:
    """The whole of an object larger than its ``first`` response: that response's bytes and
    the rest in concurrent ranged GETs, into one buffer (see :func:`get_object`). A function
    of its own so that the common small GET does not make the cells of ``fetch``'s
    closure."""
    assert config.part_size and config.max_attempts
    attempts = config.max_attempts
    total = first.total_size
    data = first.data
    result: bytearray | memoryview
    if pool is not None:
        result = mv = pool.take(total)
    else:
        result = new_buffer(total)
        mv = memoryview(result)
    head = len(data)
    mv[:head] = data
    if pool is not None:
        pool.give(data)
    del data
    first.data = bytearray()
    part = config.part_size
    ranges = [(s, min(s + part, total)) for s in range(head, total, part)]
    parallel = min(_MAX_PARTS_PER_OBJECT, config.max_in_flight or 8)
    check: ReadCheck | None = None
    sums: list[asyncio.Future[list[Piece]]] = []
    if first.stored is not None:
        check = ReadCheck(str(obj), total, first.stored, known=True)
        # composite: the part boundaries first, so that parts are cut at them as they land
        await find_parts(backend, obj, check, attempts)
        sums.append(asyncio.ensure_future(crc_of(check, 0, mv[:head],
                                                 first.received_crc32c)))

    async def fetch(r: tuple[int, int]) -> None:
        s, e = r
        got = await get_range(backend, obj, s, e, attempts, etag=first.etag, total=total,
                              into=mv[s:e], crc=check is not None)
        if check is not None:  # computed as it landed, or now (hot in cache), off the loop
            sums.append(asyncio.ensure_future(crc_of(check, s, mv[s:e],
                                                     got.received_crc32c)))

    try:
        await bounded_map(fetch, ranges, parallel, keep_results=False)
        if check is not None:
            for pieces in await asyncio.gather(*sums):
                check.add(pieces)
            await settle(backend, obj, check, etag=first.etag, attempts=attempts,
                         piece=part, parallel=parallel, repair=_patcher(mv, 0))
    except BaseException:
        await asyncio.gather(*sums, return_exceptions=True)  # no thread reads it after
        if pool is not None:
            pool.give(result)
        raise
    return result


# ----------------------------------------------------------------------------------- integrity
_CRC_INLINE = 256 * 1024  # smaller pieces: CRC32C on the loop (~20 us; a thread hop costs more)


async def crc32c_of(data: Any) -> int:
    """The CRC32C of a bytes-like ``data``: on the loop for small data, in a worker thread for
    more than 256 KiB (one pass, ~14 GB/s; the GIL is released)."""
    if memoryview(data).nbytes <= _CRC_INLINE:
        return _crc32c.crc32c(data)
    return await to_thread(_crc32c.crc32c, data)


async def crc_of(check: ReadCheck, start: int, view: Any,
                 received: int | None = None) -> list[Piece]:
    """The CRC32C pieces of bytes ``view`` (object offset ``start``) for ``check`` (see
    :meth:`objio._integrity.ReadCheck.crcs`): ``received`` (the CRC32C of all of ``view``,
    computed by the receive path as the bytes landed) where one piece is wanted, else computed
    in a worker thread (the GIL is released) unless small."""
    if received is not None and check.cuts() is None:
        return [(start, start + len(view), received)]
    if len(view) <= _CRC_INLINE:
        return check.crcs(start, view)
    return await to_thread(check.crcs, start, view)


async def find_parts(backend: Backend, obj: ObjectURI, check: ReadCheck, attempts: int) -> None:
    """For a composite checksum: the part boundaries (GetObjectAttributes, with retries);
    nothing for a full-object one. A store that does not report parts leaves the composite
    unchecked (logged)."""
    if not check.wants_parts:
        return
    parts_of = getattr(backend, "object_parts", None)
    parts = None
    if parts_of is not None:
        parts = await with_retries(lambda: parts_of(obj), attempts)
    if parts is None:
        log.info("%s has a composite CRC32C but the store does not report its parts: it "
                 "cannot be checked", obj)
    check.set_parts(parts)


def _patcher(mv: memoryview, offset: int) -> Callable[[int, memoryview], bool]:
    """A ``repair`` for :func:`settle` that writes bytes at object offset ``s`` into ``mv``
    (which holds the object from ``offset``)."""
    def patch(s: int, data: memoryview) -> bool:
        mv[s - offset: s - offset + len(data)] = data
        return True
    return patch


async def settle(backend: Backend, obj: ObjectURI, check: ReadCheck, *, etag: str,
                 attempts: int, piece: int, parallel: int,
                 repair: Callable[[int, memoryview], bool]) -> bool | None:
    """Compare a complete ``check`` with the stored CRC32C; on a mismatch read the suspect
    pieces once more (ranged GETs of at most ``piece`` bytes, If-Match ``etag``) and compare
    again.

    Every piece whose second reading differs from the first goes to ``repair(start, bytes)``,
    which puts it where the caller holds those bytes and returns True, or returns False when
    the first reading was already handed out. Returns the verdict (None: nothing to check).
    Raises :class:`objio.IntegrityError` naming the object and the byte ranges when the
    second reading does not match either, or when bytes already handed out were wrong.
    """
    v = check.verdict()
    if v.ok is not False:
        check.done = True
        if v.ok is None and check.stored is not None:
            log.info("%s: not checked: %s", obj, v.detail)
        return v.ok
    log.warning("%s: %s do not match the stored CRC32C (%s): reading them again", obj,
                ranges_text(v.suspects), v.detail)
    spans = check.pieces_in(v.suspects)
    groups: list[list[tuple[int, int]]] = []
    for s, e in spans:
        if groups and groups[-1][-1][1] == s and e - groups[-1][0][0] <= piece:
            groups[-1].append((s, e))
        else:
            groups.append([(s, e)])
    changed: list[tuple[int, int]] = []
    lost: list[tuple[int, int]] = []

    async def again(group: list[tuple[int, int]]) -> None:
        a, b = group[0][0], group[-1][1]
        r = await get_range(backend, obj, a, b, attempts, etag=etag, total=check.size)
        data = memoryview(r.data)

        def crcs() -> list[Piece]:
            return [(s, e, _crc32c.crc32c(data[s - a: e - a])) for s, e in group]

        pieces = crcs() if b - a <= _CRC_INLINE else await to_thread(crcs)
        for s, e in check.replace(pieces):
            changed.append((s, e))
            if not repair(s, data[s - a: e - a]):
                lost.append((s, e))

    await bounded_map(again, groups, parallel, keep_results=False)
    v2 = check.verdict()
    check.done = True
    uri = str(obj)
    if v2.ok is False:
        if changed:
            raise integrity_error(uri, sorted(changed), "two readings of them differ and "
                                  f"neither gives the object's CRC32C ({v2.detail})")
        raise integrity_error(uri, v2.suspects, "read twice with the same result: the "
                              "bytes as stored, or as every reading delivers them, are not "
                              f"the ones the checksum was made from ({v2.detail})")
    if lost:
        raise integrity_error(uri, sorted(lost), "they were damaged in transit and had been "
                              "returned before the whole object could be checked (a second "
                              "reading matches): read the object again")
    log.warning("%s: %s were damaged in transit; the second reading matches the stored "
                "CRC32C", obj, ranges_text(sorted(changed)))
    return True


# ----------------------------------------------------------------------------------- PUT
FULL_OBJECT = "FULL_OBJECT"
COMPOSITE = "COMPOSITE"


class ChecksumSupport:
    """What one backend's store takes of the CRC32C upload checksums, as learnt from its
    refusals (see :func:`checksum_support`).

    Attributes:
        puts: whether PutObject and UploadPart carry ``x-amz-checksum-crc32c``.
        multipart: how multipart uploads are declared: ``"FULL_OBJECT"`` (CRC32C of the whole
            object, sent with the completion), ``"COMPOSITE"`` (CRC32C of each part only), or
            None (no checksum).
        copies: whether a CopyObject asks the store for the copy's CRC32C
            (``x-amz-checksum-algorithm: CRC32C``).
    """

    def __init__(self) -> None:
        self.puts = True
        self.multipart: str | None = FULL_OBJECT
        self.copies = True

    def refuse_copies(self, backend: Backend, refusal: ObjectStoreError) -> None:
        """The store refused ``x-amz-checksum-algorithm`` on a CopyObject that it then took
        without: server-side copies go on without asking for a CRC32C (one warning)."""
        if not self.copies:
            return
        self.copies = False
        cfg = getattr(backend, "config", None)
        where = ", ".join(getattr(cfg, "endpoint_urls", ())) or "AWS S3"
        log.warning("%s refused the CRC32C checksum of %s %s (%s): server-side copies to it go "
                    "on without asking for one", where, refusal.operation, refusal.uri,
                    refusal.code or refusal.status)

    def lower(self, backend: Backend, multipart: str | None, refusal: ObjectStoreError) -> None:
        """The store refused more than it was sent until now: multipart uploads are declared
        ``multipart`` from now on (None: and no checksum on any upload). One warning per
        step down (at most two per backend: FULL_OBJECT to COMPOSITE, and to none)."""
        rank = {FULL_OBJECT: 2, COMPOSITE: 1, None: 0}
        old = rank[self.multipart] if self.puts else 0
        if rank[multipart] >= old:
            return  # another upload got here first (or this is no step down)
        self.multipart = multipart
        if multipart is None:
            self.puts = False
        cfg = getattr(backend, "config", None)
        where = ", ".join(getattr(cfg, "endpoint_urls", ())) or "AWS S3"
        goes_on = ("with a CRC32C per part (COMPOSITE) instead of one for the whole object"
                   if multipart == COMPOSITE else "without checksums")
        log.warning("%s refused the CRC32C checksum of %s %s (%s): uploads to it go on %s "
                    "(ClientConfig.checksums=False or OBJIO_CHECKSUMS=0 stops sending them)",
                    where, refusal.operation, refusal.uri, refusal.code or refusal.status,
                    goes_on)


_checksum_support: weakref.WeakKeyDictionary[Any, ChecksumSupport] = weakref.WeakKeyDictionary()
_checksum_support_lock = threading.Lock()


def _checksum_support_after_fork() -> None:
    global _checksum_support_lock
    _checksum_support_lock = threading.Lock()  # another thread may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_checksum_support_after_fork)


def checksum_support(backend: Backend) -> ChecksumSupport:
    """What ``backend``'s store takes of the upload checksums (one record per backend, i.e.
    per process, scheme and configuration): everything at first. Some S3-compatible stores
    refuse ``x-amz-checksum-*`` headers, or the FULL_OBJECT type, with HTTP 400 or 501; the
    first refusal whose request then succeeds without the checksum lowers it for good (one
    warning), so later uploads do not send what the store refuses."""
    with _checksum_support_lock:
        s = _checksum_support.get(backend)
        if s is None:
            s = _checksum_support[backend] = ChecksumSupport()
        return s


def forget_checksum_refusals() -> None:
    """Forget what every backend's store refused (the next uploads try every checksum
    again). For tests."""
    with _checksum_support_lock:
        _checksum_support.clear()



async def put_object(
    backend: Backend,
    obj: ObjectURI,
    data: Any,
    config: ClientConfig,
    *,
    if_none_match: bool = False,
    observer: Observer | None = None,
) -> None:
    """Upload a bytes-like object: one PutObject, or for data larger than ``range_threshold`` a
    multipart upload of ``part_size`` parts sent concurrently (aborted on any failure, so the
    key never holds a partial object). With ``config.checksums`` (the default) the body, each
    part and the whole object go with their CRC32C (as far as the store takes them: see
    :func:`checksum_support`), which the store checks."""
    assert config.range_threshold and config.part_size and config.max_attempts
    t0 = time.perf_counter()
    mv = memoryview(data).cast("B") if not isinstance(data, (bytes, bytearray)) else memoryview(data)
    n = len(mv)
    attempts = config.max_attempts
    sums = bool(config.checksums)
    if n <= config.range_threshold or if_none_match:
        crc = await crc32c_of(mv) if sums and checksum_support(backend).puts else None
        await put_single(backend, obj, mv, attempts, if_none_match=if_none_match,
                         checksum_crc32c=crc)
    else:
        part = max(config.part_size, -(-n // 10_000))
        upload_id, kind = await start_multipart(backend, obj, attempts, checksum=sums)
        try:
            starts = list(range(0, n, part))

            async def send(i: int) -> tuple[int, str, int | None]:
                view = mv[starts[i]: starts[i] + part]
                c = await crc32c_of(view) if kind is not None else None
                etag, sent = await upload_part(backend, obj, upload_id, i + 1, view, attempts,
                                               checksum_crc32c=c)
                return i + 1, etag, sent

            parts = await bounded_map(send, range(len(starts)),
                                      min(_MAX_PARTS_PER_OBJECT, config.max_in_flight or 8))
            done, whole = completion(kind, parts,  # type: ignore[arg-type]
                                     [min(part, n - s) for s in starts])
            await complete_multipart(backend, obj, upload_id, done, attempts,
                                     checksum_crc32c=whole)
        except BaseException:
            await finish(abort_multipart(backend, obj, upload_id, attempts))
            raise
    if observer is not None:
        observer(RequestRecord(str(obj), n, 0.0, time.perf_counter() - t0))


def completion(kind: str | None, parts: Sequence[tuple[int, str, int | None]],
               sizes: Sequence[int]) -> tuple[list[Any], int | None]:
    """What CompleteMultipartUpload sends for an upload declared ``kind`` (see
    :func:`start_multipart`), from ``(part number, ETag, CRC32C sent or None)`` of each part
    and the parts' sizes in bytes, both in part order: the part list (with each part's CRC32C
    when every part went with one) and the whole object's CRC32C, combined from the parts'
    (FULL_OBJECT only; else None)."""
    if kind is None or any(p[2] is None for p in parts):
        return [(p[0], p[1]) for p in parts], None
    done = [(p[0], p[1], p[2]) for p in parts]
    if kind != FULL_OBJECT:
        return done, None
    whole = 0
    for p, size in zip(parts, sizes, strict=True):
        assert p[2] is not None
        whole = _crc32c.combine(whole, p[2], size)
    return done, whole


class _Counted(Generic[T]):
    """Calls ``fn`` and counts the calls, so a caller knows whether a request was retried (a
    retried request may have succeeded before: its response was lost)."""

    def __init__(self, fn: Callable[[], Awaitable[T]]) -> None:
        self.fn = fn
        self.calls = 0

    def __call__(self) -> Awaitable[T]:
        self.calls += 1
        return self.fn()


def _same_md5(info: ObjectInfo, data: Any) -> bool:
    """Whether the object ``info`` describes holds ``data``, by MD5: its ETag (S3: the MD5 of a
    single PUT) or the MD5 the store keeps (``content_md5``, base64: GCS's md5Hash, Azure's
    Content-MD5; a gs:// etag is the generation)."""
    import base64
    import hashlib

    digest = hashlib.md5(data).digest()
    return info.etag == digest.hex() or info.content_md5 == base64.b64encode(digest).decode()


async def put_single(backend: Backend, obj: ObjectURI, data: Any, attempts: int, *,
                     if_none_match: bool = False, checksum_crc32c: int | None = None) -> str:
    """One PutObject with retries; returns the ETag. With ``if_none_match`` (fail if the key
    exists): when a retry finds the key existing, the object is checked to be the one this
    call sent (its ETag is the MD5 of ``data``: the first response was lost), and then that is
    success, not FileExistsError.

    ``checksum_crc32c`` (the CRC32C of ``data``) goes with the request unless the store
    refused checksums before; a refusal (:func:`objio.errors.may_be_checksum_refusal`) is
    answered by sending the object again without it, and when that succeeds the store is
    taken as one that refuses checksums (:func:`checksum_support`, one warning). A body the
    store finds damaged (BadDigest) is sent once more, then raises
    :class:`objio.IntegrityError`."""
    if checksum_crc32c is not None and not checksum_support(backend).puts:
        checksum_crc32c = None
    if checksum_crc32c is None:
        return await _put_single(backend, obj, data, attempts, if_none_match, None)
    try:
        return await _put_single(backend, obj, data, attempts, if_none_match, checksum_crc32c)
    except ObjectStoreError as e:
        if not may_be_checksum_refusal(e):
            raise
        refusal = e
    etag = await _put_single(backend, obj, data, attempts, if_none_match, None)
    checksum_support(backend).lower(backend, None, refusal)
    return etag


async def _put_single(backend: Backend, obj: ObjectURI, data: Any, attempts: int,
                      if_none_match: bool, checksum_crc32c: int | None) -> str:
    kw: dict[str, Any] = {} if checksum_crc32c is None else {"checksum_crc32c": checksum_crc32c}
    call = _Counted(lambda: backend.put(obj, data, if_none_match=if_none_match, **kw))
    try:
        return await with_retries(call, attempts)
    except AlreadyExistsError:
        if not (if_none_match and call.calls > 1):
            raise
        info = await with_retries(lambda: backend.head(obj), attempts)
        if not _same_md5(info, data) or info.size != len(memoryview(data)):
            raise
        log.info("PutObject %s: the first response was lost; the object is ours", obj)
        return info.etag


_STRAY_WINDOW_S = 60.0  # clock skew tolerated when matching a lost upload's initiation time


async def start_multipart(backend: Backend, obj: ObjectURI, attempts: int, *,
                          checksum: bool) -> tuple[str, str | None]:
    """CreateMultipartUpload (:func:`create_multipart`) for an upload whose parts go with
    their CRC32C when ``checksum``: declared CRC32C of type FULL_OBJECT, or of the type this
    store takes (:func:`checksum_support`). A refusal of the type is answered by asking for
    COMPOSITE, then for no checksum; the first that succeeds lowers what this backend sends
    from then on (one warning). Returns ``(upload id, "FULL_OBJECT" | "COMPOSITE" | None)``:
    with None the parts must go without checksums (S3 refuses a part checksum that its
    upload did not declare)."""
    kind = checksum_support(backend).multipart if checksum else None
    refusal: ObjectStoreError | None = None
    while True:
        try:
            upload_id = await create_multipart(backend, obj, attempts,
                                               checksum="crc32c" if kind else None,
                                               checksum_type=kind)
        except ObjectStoreError as e:
            if kind is None or not may_be_checksum_refusal(e):
                raise
            refusal = refusal or e
            kind = COMPOSITE if kind == FULL_OBJECT else None
            continue
        if refusal is not None:
            checksum_support(backend).lower(backend, kind, refusal)
        return upload_id, kind


async def create_multipart(backend: Backend, obj: ObjectURI, attempts: int, *,
                           checksum: str | None = None,
                           checksum_type: str | None = FULL_OBJECT) -> str:
    """CreateMultipartUpload with retries; returns the upload id. ``checksum="crc32c"``
    declares CRC32C checksums of ``checksum_type`` (FULL_OBJECT or COMPOSITE). If the request
    had to be retried (or finally failed), an earlier attempt may have created an upload whose
    response was lost: the key's uploads in progress initiated since the first attempt (within
    a minute of clock skew), other than the one returned, are aborted. (Another writer
    uploading the same key in that same minute would lose its upload: writing one key from two
    places at once has no defined result on S3 anyway.)"""
    t0 = time.time()
    kw: dict[str, Any] = {} if checksum is None else {"checksum": checksum}
    if checksum is not None and checksum_type != FULL_OBJECT:
        kw["checksum_type"] = checksum_type
    call = _Counted(lambda: _create_once(backend, obj, attempts, kw))
    try:
        upload_id: str = await with_retries(call, attempts)
    except BaseException as e:
        # An answer lost on the way (an error that was retried, or is retryable: a timeout, a
        # reset) may hide an upload the server made. A plain refusal (NoSuchBucket, Access
        # Denied) on the only attempt made none, and an attempt cancelled in flight aborted
        # its own (_create_once).
        if call.calls > 1 or (isinstance(e, ObjectStoreError) and e.retryable):
            await finish(_abort_strays(backend, obj, t0, None, attempts))
        raise
    if call.calls > 1:
        await _abort_strays(backend, obj, t0, upload_id, attempts)
    return upload_id


async def _create_once(backend: Backend, obj: ObjectURI, attempts: int,
                       kw: dict[str, Any]) -> str:
    """One CreateMultipartUpload request. Cancelled while the request is in flight (Ctrl-C),
    it may still reach the server and create an upload after any listing of strays: so its
    answer is awaited (bounded by the request's deadline) and the upload it names is aborted
    before the cancellation goes on."""
    req = asyncio.ensure_future(backend.create_multipart(obj, **kw))
    try:
        return await asyncio.shield(req)
    except asyncio.CancelledError:
        try:
            upload_id: str = await finish(req)
        except BaseException:  # noqa: BLE001 - it failed: no upload we could name
            raise asyncio.CancelledError from None
        await finish(abort_multipart(backend, obj, upload_id, attempts))
        raise


async def _abort_strays(backend: Backend, obj: ObjectURI, since: float, keep: str | None,
                        attempts: int) -> None:
    if getattr(backend, "list_uploads", None) is None:  # file://: no lost responses
        return
    root = obj.with_key("")
    try:
        uploads = await list_uploads(backend, root, obj.key, attempts)
    except ObjectStoreError as e:
        log.warning("could not list the multipart uploads of %s to abort lost ones: %s", obj, e)
        return
    now = time.time()
    for u in uploads:
        if u.key == obj.key and u.upload_id != keep and \
                since - _STRAY_WINDOW_S <= u.initiated <= now + _STRAY_WINDOW_S:
            log.info("aborting multipart upload %s of %s (its creation response was lost)",
                     u.upload_id, obj)
            await abort_multipart(backend, obj, u.upload_id, attempts)


async def upload_part(backend: Backend, obj: ObjectURI, upload_id: str, part_number: int,
                      data: Any, attempts: int, *,
                      checksum_crc32c: int | None = None) -> tuple[str, int | None]:
    """UploadPart with retries; returns ``(ETag, the CRC32C it went with, or None)``.
    ``checksum_crc32c`` (the part's CRC32C, for an upload declared with a checksum) goes with
    it unless the store refused checksums before; a refusal is answered by sending the part
    again without, and when that succeeds the store is taken as one that refuses checksums
    (one warning; the upload is then completed without part checksums). A part the store
    finds damaged (BadDigest) is sent once more, then raises :class:`objio.IntegrityError`."""
    if checksum_crc32c is not None and not checksum_support(backend).puts:
        checksum_crc32c = None
    if checksum_crc32c is not None:
        c = checksum_crc32c
        try:
            etag: str = await with_retries(
                lambda: backend.upload_part(obj, upload_id, part_number, data,
                                            checksum_crc32c=c), attempts)
            return etag, c
        except ObjectStoreError as e:
            if not may_be_checksum_refusal(e):
                raise
            refusal = e
    etag = await with_retries(
        lambda: backend.upload_part(obj, upload_id, part_number, data), attempts)
    if checksum_crc32c is not None:
        checksum_support(backend).lower(backend, None, refusal)
    return etag, None


async def complete_multipart(backend: Backend, obj: ObjectURI, upload_id: str,
                             parts: Sequence[tuple[int, str] | tuple[int, str, int]],
                             attempts: int, *, checksum_crc32c: int | None = None) -> str:
    """CompleteMultipartUpload with retries; returns the ETag. If a retry finds the upload gone
    (NoSuchUpload: the first response was lost after the server completed it), the object's
    ETag is compared with the one these parts make (MD5 of the parts' MD5s, ``-N``): equal means
    success.

    ``parts`` carry each part's CRC32C (``(number, etag, crc32c)``) for an upload declared
    with a checksum, and ``checksum_crc32c`` is the whole object's (FULL_OBJECT). A store that
    refuses them (HTTP 400/501, or InvalidPart from a store that does not take FULL_OBJECT and
    compares the whole object's CRC32C with its composite) gets the completion again without
    the whole object's CRC32C, then without the parts'; the first that succeeds lowers what
    this backend sends from then on (:func:`checksum_support`, one warning)."""
    try:
        return await _complete_multipart(backend, obj, upload_id, parts, attempts,
                                         checksum_crc32c)
    except ObjectStoreError as e:
        with_sums = checksum_crc32c is not None or any(len(p) > 2 for p in parts)
        if not with_sums or not (may_be_checksum_refusal(e) or e.code == "InvalidPart"):
            raise
        refusal = e
    if checksum_crc32c is not None and any(len(p) > 2 for p in parts):
        try:
            etag = await _complete_multipart(backend, obj, upload_id, parts, attempts, None)
        except ObjectStoreError as e:
            if not (may_be_checksum_refusal(e) or e.code == "InvalidPart"):
                raise
        else:
            checksum_support(backend).lower(backend, COMPOSITE, refusal)
            return etag
    etag = await _complete_multipart(backend, obj, upload_id, [(p[0], p[1]) for p in parts],
                                     attempts, None)
    checksum_support(backend).lower(backend, None, refusal)
    return etag


async def _complete_multipart(backend: Backend, obj: ObjectURI, upload_id: str,
                              parts: Sequence[tuple[int, str] | tuple[int, str, int]],
                              attempts: int, checksum_crc32c: int | None) -> str:
    kw: dict[str, Any] = {} if checksum_crc32c is None else {"checksum_crc32c": checksum_crc32c}
    call = _Counted(lambda: backend.complete_multipart(obj, upload_id, parts, **kw))
    try:
        etag: str = await with_retries(call, attempts)
        return etag
    except FileNotFoundError:
        if call.calls < 2:
            raise
        import hashlib

        digest = hashlib.md5(b"".join(bytes.fromhex(p[1].strip('"')) for p in sorted(parts)))
        expected = f"{digest.hexdigest()}-{len(parts)}"
        info = await with_retries(lambda: backend.head(obj), attempts)
        if info.etag != expected:
            raise
        log.info("CompleteMultipartUpload %s: the first response was lost; completed", obj)
        return info.etag


async def abort_multipart(backend: Backend, obj: ObjectURI, upload_id: str, attempts: int) -> None:
    """AbortMultipartUpload with retries, like every request; a failure is logged, not raised
    (the error that made the caller abort matters more)."""
    try:
        await with_retries(lambda: backend.abort_multipart(obj, upload_id), attempts)
    except NotFoundError:  # NoSuchUpload: already completed or aborted; nothing is left
        log.debug("multipart upload %s of %s was already gone", upload_id, obj)
    except ObjectStoreError as e:
        log.warning("could not abort multipart upload %s of %s: %s", upload_id, obj, e)


# ----------------------------------------------------------------------------------- DELETE
async def delete_keys(backend: Backend, bucket_uri: ObjectURI, keys: Sequence[str],
                      attempts: int) -> list[tuple[str, str, str]]:
    """One DeleteObjects request for up to 1000 ``keys`` of ``bucket_uri``'s bucket, with
    retries; returns ``(key, code, message)`` of every key the store did not delete, in the
    order of ``keys``.

    Sending a DeleteObjects again is safe (a key already gone is deleted, in S3 as on every
    store objio knows), so a lost or cut response is retried like any request. Keys the
    store refused one by one with a transient code (InternalError, SlowDown, ...) are sent
    again, alone, after the engine's backoff and within its retry quota, up to ``attempts``
    requests in all; the others (AccessDenied, a retention lock) are returned at once."""
    if not getattr(backend, "batch_deletes", True):
        return await _delete_each(backend, bucket_uri, keys, attempts)
    final: dict[str, tuple[str, str, str]] = {}
    todo: Sequence[str] = keys
    for attempt in range(1, max(1, attempts) + 1):
        failed = await with_retries(functools.partial(backend.delete_many, bucket_uri, todo),
                                    attempts)
        again = [f for f in failed if retryable_code(f[1])]
        final.update((f[0], f) for f in failed if not retryable_code(f[1]))
        if not again:
            break
        if attempt >= attempts or not _quota.take(_RETRY_COST):
            final.update((f[0], f) for f in again)
            break
        log.debug("DeleteObjects %s: %d keys refused for now (%s); sending them again",
                  bucket_uri, len(again), again[0][1])
        todo = [f[0] for f in again]
        await asyncio.sleep(backoff_s(attempt))
    if not final:
        return []
    return [final[k] for k in keys if k in final]


DELETE_EACH_IN_FLIGHT = 64
"""Per-object deletes in flight for one batch of :func:`delete_keys` on a backend without a
batch delete (Azure's Delete Blob)."""


async def _delete_each(backend: Backend, bucket_uri: ObjectURI, keys: Sequence[str],
                       attempts: int) -> list[tuple[str, str, str]]:
    """Delete every key of ``bucket_uri``'s bucket with its own request (``backend.delete``,
    retried as every request), :data:`DELETE_EACH_IN_FLIGHT` at once; returns ``(key, code,
    message)`` of each key not deleted, in the order of ``keys`` (a missing object counts as
    deleted). A missing bucket raises (FileNotFoundError), once every delete started has
    ended."""
    async def one(key: str) -> tuple[str, str, str] | None:
        try:
            await with_retries(lambda: backend.delete(bucket_uri.with_key(key)), attempts)
        except FileNotFoundError:
            raise
        except ObjectStoreError as e:
            return key, e.code or "Error", e.message
        return None

    results = await bounded_map(one, keys, DELETE_EACH_IN_FLIGHT)
    return [r for r in results if r is not None]  # type: ignore[misc]


# ----------------------------------------------------------------------------------- COPY
def _source_changed(src: ObjectURI, dst: ObjectURI, op: str, etag: str) -> ObjectStoreError:
    return ObjectStoreError(f"{op} {src} to {dst} failed: the source changed while it was "
                            f"copied (its ETag is no longer {etag!r}); copy it again",
                            operation=op, uri=str(src), code="ObjectChanged")


def _plain_md5(etag: str) -> bool:
    """Whether an ETag can be the MD5 of an object's bytes (32 hex digits: not a multipart
    upload's ``<md5>-N``)."""
    return len(etag) == 32 and all(c in "0123456789abcdefABCDEF" for c in etag)


async def copy_object(backend: Backend, src: ObjectURI, dst: ObjectURI, config: ClientConfig,
                      observer: Observer | None = None, *,
                      source: ObjectInfo | None = None) -> int:
    """Copy ``src`` to ``dst`` inside the store (both on ``backend``: S3, one endpoint): no
    byte goes through the client. Returns the size in bytes.

    The source is looked at first (HeadObject, with its stored CRC32C when ``checksums``),
    unless ``source`` says what it is (a listing's entry: size and ETag; then the copy is of
    that version, and a source changed since starts the copy over from a HeadObject).
    Objects up to ``config.copy_threshold`` bytes (5 GiB, S3's limit, by default) are copied
    with one CopyObject; larger ones with a multipart upload whose ``part_size`` parts are
    UploadPartCopy requests sent concurrently (at most 16), completed, or aborted on any
    failure (:func:`abort_multipart`: nothing is left behind). Every request names the
    source's ETag (``x-amz-copy-source-if-match``), so every byte comes from the version
    looked at; if the source changed meanwhile the copy starts over once, then raises
    ``ObjectStoreError`` code ``ObjectChanged``.

    Checked before returning: with ``checksums`` the store is asked for the copy's CRC32C
    (CopyObject ``x-amz-checksum-algorithm``; a multipart copy's upload is declared CRC32C and
    its parts' CRC32Cs are combined) and, where the source has a full-object CRC32C, the two
    must be equal; a CopyObject answer's ETag must equal a single-PUT source's (the MD5 of
    the bytes, unless the store encrypts: then it is not compared); where neither tells,
    the copy's size is checked against the source's (HeadObject). A copy that fails its
    check is made once more; failing again, it is deleted and :class:`objio.IntegrityError`
    is raised. A store that refuses ``x-amz-checksum-algorithm`` is asked without it from
    then on (one warning; :func:`checksum_support`). S3's 200 answers with an ``<Error>``
    body are errors (retried where their code says so: InternalError, SlowDown).

    On Azure (``az://``, both ends in one account) the service copies too: Copy Blob From URL
    (synchronous: done when it answers) for sources up to ``copy_threshold`` bytes and at
    most 256 MiB (its limit), else Copy Blob, whose status is polled until the copy ends
    (:func:`_copy_blob_once`); the copy keeps the source's metadata, so its
    ``objio_crc32c``, and is checked as above (size, stored CRC32C).

    On Cloud Storage (``gs://``) the service copies with ``objects.rewrite``, sent again with
    its ``rewriteToken`` until done (:func:`_rewrite_once`), naming the source's generation
    (``ifSourceGenerationMatch``); the copy is checked against the source by the size and
    CRC32C the final answer gives.

    Raises: FileNotFoundError (no source or no bucket), PermissionError, IntegrityError,
    ObjectStoreError."""
    t0 = time.perf_counter()
    scheme = getattr(backend, "scheme", "")
    once = _copy_blob_once if scheme == "az" else _rewrite_once if scheme == "gs" \
        else _copy_once
    try:
        size = await once(backend, src, dst, config, source)
    except ObjectStoreError as e:
        if e.code != "ObjectChanged":
            raise
        log.info("%s changed while it was copied to %s: copying it again", src, dst)
        size = await once(backend, src, dst, config, None)
    if observer is not None:
        observer(RequestRecord(str(dst), size, 0.0, time.perf_counter() - t0))
    return size


async def _copy_once(backend: Backend, src: ObjectURI, dst: ObjectURI,
                     config: ClientConfig, source: ObjectInfo | None) -> int:
    assert config.max_attempts and config.part_size and config.copy_threshold
    attempts = config.max_attempts
    sums = bool(config.checksums)
    s3: Any = backend
    info = await _copy_source(s3, src, source, sums, attempts)
    single = info.size <= config.copy_threshold
    for tries in (1, 2):
        if single:
            problem, written = await _copy_single(s3, src, dst, info, attempts, sums)
        else:
            problem, written = await _copy_multipart(s3, src, dst, info, config, sums)
        if problem is None:
            return info.size
        if tries == 1:
            log.warning("the copy of %s to %s does not match its source (%s): copying it "
                        "again", src, dst, problem)
    raise await _copy_mismatch(s3, src, dst, problem, "CopyObject", attempts, written)


async def _copy_blob_once(backend: Backend, src: ObjectURI, dst: ObjectURI,
                          config: ClientConfig, source: ObjectInfo | None) -> int:
    """One server-side copy on Azure, checked (:func:`copy_object`): Copy Blob From URL
    (synchronous) up to ``min(copy_threshold, 256 MiB)`` bytes, else Copy Blob, its
    ``x-ms-copy-status`` polled (Get Blob Properties, backing off up to 2 s between polls)
    until it is ``success``; ``failed`` / ``aborted`` raise ObjectStoreError code
    ``CopyFailed`` naming the service's description. Both name the source's ETag
    (``x-ms-source-if-match``): a source changed meanwhile raises code ``ObjectChanged``. A
    copy still pending after ``config.deadline_s(size)`` seconds is aborted, its destination
    deleted, and ObjectTimeoutError code ``CopyTimeout`` raised. A copy that fails its check
    is made once more, then deleted (IntegrityError)."""
    from .azure.backend import SYNC_COPY_MAX

    assert config.max_attempts and config.copy_threshold
    attempts = config.max_attempts
    az: Any = backend
    info = await _copy_source(az, src, source, bool(config.checksums), attempts)
    md5 = info.content_md5 if info.content_md5 and len(info.content_md5) == 24 else None
    sync = info.size <= min(config.copy_threshold, SYNC_COPY_MAX)
    op = "CopyBlobFromURL" if sync else "CopyBlob"
    problem = None
    for tries in (1, 2):
        try:
            if sync:
                await with_retries(lambda: az.copy_blob_from_url(
                    src, dst, if_match=info.etag or None, source_md5=md5), attempts)
            else:
                copy_id, status = await with_retries(
                    lambda: az.start_copy(src, dst, if_match=info.etag or None), attempts)
                delay = 0.05
                deadline = time.monotonic() + config.deadline_s(info.size)
                while status == "pending":
                    if time.monotonic() >= deadline:
                        await _abandon_copy(az, dst, copy_id, attempts)
                        raise ObjectTimeoutError(
                            f"CopyBlob {src} to {dst} failed: still pending after "
                            f"{config.deadline_s(info.size):.0f} s (request_timeout_s, or "
                            f"{info.size} bytes at min_transfer_rate); the copy was aborted "
                            "and the destination deleted", operation=op, uri=str(dst),
                            code="CopyTimeout")
                    await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                    delay = min(delay * 2, 2.0)
                    got_id, status, why = await with_retries(lambda: az.copy_status(dst),
                                                             attempts)
                    if copy_id and got_id and got_id != copy_id:
                        raise ObjectStoreError(
                            f"CopyBlob {src} to {dst} failed: another copy (id {got_id}) "
                            "replaced this one at the destination", operation=op,
                            uri=str(dst), code="CopyFailed")
                if status != "success":
                    raise ObjectStoreError(
                        f"CopyBlob {src} to {dst} failed: the copy is {status} ({why})",
                        operation=op, uri=str(dst), code="CopyFailed")
        except AlreadyExistsError as e:  # 412 SourceConditionNotMet: the source changed
            if not info.etag:
                raise
            raise _source_changed(src, dst, op, info.etag) from e
        problem = await _check_copy(az, dst, info, attempts, None, None)
        if problem is None:
            return info.size
        if tries == 1:
            log.warning("the copy of %s to %s does not match its source (%s): copying it "
                        "again", src, dst, problem)
    raise await _copy_mismatch(az, src, dst, problem, op, attempts)


async def _copy_source(backend: Any, src: ObjectURI, source: ObjectInfo | None,
                       checksum: bool, attempts: int) -> ObjectInfo:
    """What a server-side copy names as its source: ``source`` (its listing entry) when it
    has an ETag (generation on gs://), else the source's metadata (HEAD, with the stored
    checksum when ``checksum``)."""
    if source is not None and source.etag:
        return source
    return await with_retries(lambda: backend.head(src, checksum=checksum), attempts)


async def _copy_mismatch(backend: Any, src: ObjectURI, dst: ObjectURI, problem: str | None,
                         op: str, attempts: int, written: bool = True) -> IntegrityError:
    """The error of a copy made twice that still does not match its source (``problem``),
    after deleting the wrong copy at ``dst`` (when one was ``written``): it must not stay."""
    gone = "nothing was written"
    if written:
        try:
            await with_retries(lambda: backend.delete(dst), attempts)
            gone = "the copy was deleted"
        except ObjectStoreError as e:
            gone = f"the copy could not be deleted ({e.code or e}): delete it"
    return IntegrityError(f"copy of {src} to {dst} failed: made twice, the copy does not match "
                          f"the source ({problem}); {gone}", operation=op, uri=str(dst),
                          code="CopyMismatch")


async def _abandon_copy(az: Any, dst: ObjectURI, copy_id: str, attempts: int) -> None:
    """Abort the pending Azure copy ``copy_id`` and delete its destination, each as far as
    the service lets (a failure is logged: the timeout raised after this is what matters)."""
    try:
        if copy_id:
            await with_retries(lambda: az.abort_copy(dst, copy_id), attempts)
        await with_retries(lambda: az.delete(dst), attempts)
    except ObjectStoreError as e:
        log.warning("could not abort the copy to %s and delete it (%s): delete it", dst, e)


async def _rewrite_once(backend: Backend, src: ObjectURI, dst: ObjectURI,
                        config: ClientConfig, source: ObjectInfo | None) -> int:
    """One server-side copy on Cloud Storage, checked (:func:`copy_object`):
    :meth:`objio.gcs.GCSBackend.rewrite` from the source's generation (the source's
    metadata is read first unless ``source`` gives its generation): a source replaced
    meanwhile raises code ``ObjectChanged``. The copy the final answer describes must have
    the source's size and, where the source's CRC32C is known (its metadata was read), its
    CRC32C; a copy that does not is made once more, then deleted (IntegrityError)."""
    assert config.max_attempts
    attempts = config.max_attempts
    gs: Any = backend
    info = await _copy_source(gs, src, source, True, attempts)
    problem = None
    for tries in (1, 2):
        try:
            got: ObjectInfo = await with_retries(
                lambda: gs.rewrite(src, dst, if_source_generation=info.etag or None), attempts)
        except AlreadyExistsError as e:  # 412: the source's generation is not the one named
            if not info.etag:
                raise
            raise _source_changed(src, dst, "RewriteObject", info.etag) from e
        full = info.crc32c
        if got.size != info.size:
            problem = f"it has {got.size} bytes, the source {info.size}"
        elif full is not None and got.crc32c is not None and got.crc32c != full:
            problem = f"its CRC32C is {got.crc32c:#010x}, the source's {full:#010x}"
        else:
            return info.size
        if tries == 1:
            log.warning("the copy of %s to %s does not match its source (%s): copying it "
                        "again", src, dst, problem)
    raise await _copy_mismatch(gs, src, dst, problem, "RewriteObject", attempts)


async def _check_copy(s3: Any, dst: ObjectURI, info: ObjectInfo, attempts: int,
                      crc: int | None, etag: str | None) -> str | None:
    """What is wrong with the copy at ``dst`` of the object ``info`` describes (None:
    nothing), from the CRC32C and ETag the copy's answers gave (each None when they tell
    nothing); when neither tells, from the copy's HeadObject (size, stored CRC32C)."""
    full = info.stored.crc32c if info.stored is not None and not info.stored.composite \
        else None
    if crc is not None and full is not None:
        return None if crc == full else \
            f"its CRC32C is {crc:#010x}, the source's {full:#010x}"
    if etag is not None:
        return None if etag == info.etag else f"its ETag is {etag!r}, the source's {info.etag!r}"
    got: ObjectInfo = await with_retries(lambda: s3.head(dst, checksum=full is not None),
                                         attempts)
    if got.size != info.size:
        return f"it has {got.size} bytes, the source {info.size}"
    if full is not None and got.crc32c is not None and got.crc32c != full:
        return f"its stored CRC32C is {got.crc32c:#010x}, the source's {full:#010x}"
    return None


async def _copy_single(s3: Any, src: ObjectURI, dst: ObjectURI, info: ObjectInfo,
                       attempts: int, sums: bool) -> tuple[str | None, bool]:
    """One CopyObject (with retries, and the checksum fallback): (what is wrong with the
    copy or None, True: the destination was written)."""
    support = checksum_support(s3)
    ask = sums and support.copies

    def send(checksum: bool) -> Awaitable[CopyResult]:
        return with_retries(lambda: s3.copy_object(src, dst, if_match=info.etag or None,
                                                   checksum=checksum, size=info.size),
                            attempts)

    try:
        try:
            r: CopyResult = await send(ask)
        except ObjectStoreError as e:
            if not ask or not may_be_checksum_refusal(e):
                raise
            r = await send(False)
            support.refuse_copies(s3, e)
    except AlreadyExistsError as e:  # 412: the source's ETag is not the one asked for
        if not info.etag:
            raise
        raise _source_changed(src, dst, "CopyObject", info.etag) from e
    same_md5 = r.sse is None and _plain_md5(info.etag)
    return await _check_copy(s3, dst, info, attempts, r.crc32c,
                             r.etag if same_md5 else None), True


async def _copy_multipart(s3: Any, src: ObjectURI, dst: ObjectURI, info: ObjectInfo,
                          config: ClientConfig, sums: bool) -> tuple[str | None, bool]:
    """A multipart copy of ``src`` (UploadPartCopy, parts concurrent), completed or aborted:
    (what is wrong with the copy or None, True: the destination was written). Parts whose
    combined CRC32C is not the source's are not completed (the upload is aborted)."""
    assert config.part_size and config.max_attempts
    attempts = config.max_attempts
    size = info.size
    part = max(config.part_size, -(-size // MAX_PARTS))
    starts = list(range(0, size, part))
    full = info.stored.crc32c if info.stored is not None and not info.stored.composite \
        else None
    upload_id, kind = await start_multipart(s3, dst, attempts, checksum=sums)
    try:
        async def one(i: int) -> tuple[int, str, int | None]:
            s = starts[i]
            e = min(s + part, size) - 1
            try:
                r: CopyResult = await with_retries(
                    lambda: s3.upload_part_copy(src, dst, upload_id, i + 1, s, e,
                                                if_match=info.etag or None), attempts)
            except AlreadyExistsError as err:
                if not info.etag:
                    raise
                raise _source_changed(src, dst, "UploadPartCopy", info.etag) from err
            return i + 1, f'"{r.etag}"', r.crc32c if kind is not None else None

        parts = await bounded_map(one, range(len(starts)),
                                  min(_MAX_PARTS_PER_OBJECT, config.max_in_flight or 8))
        sizes = [min(part, size - s) for s in starts]
        crcs = [p[2] for p in parts]  # type: ignore[index]
        combined: int | None = None
        if starts and all(c is not None for c in crcs):
            combined = 0
            for c, n in zip(crcs, sizes, strict=True):
                combined = _crc32c.combine(combined, c, n)  # type: ignore[arg-type]
        if combined is not None and full is not None and combined != full:
            await finish(abort_multipart(s3, dst, upload_id, attempts))
            return (f"the CRC32C of its parts is {combined:#010x}, the source's "
                    f"{full:#010x} (the upload was aborted)"), False
        done, whole = completion(kind, parts, sizes)  # type: ignore[arg-type]
        await complete_multipart(s3, dst, upload_id, done, attempts, checksum_crc32c=whole)
    except BaseException:
        await finish(abort_multipart(s3, dst, upload_id, attempts))
        raise
    return await _check_copy(s3, dst, info, attempts, None, None), True


# ----------------------------------------------------------------------------------- blocking work
def map_blocking(fn: Callable[[T], R], items: Iterable[T], max_workers: int) -> builtins_list[R]:
    """Call the blocking ``fn(item)`` for every item in up to ``max_workers`` threads; the
    results come back in input order.

    For work that is itself a sequence of synchronous objio calls, such as serializing several
    files at once, each through its own streaming writer (DCP checkpoints). The threads are
    made for this call and are not the event loop's executor (which file:// I/O runs in), so
    ``fn`` may use objio's sync API freely. The first exception (the first call to fail) is
    raised once every call already started has returned (nothing is left running behind the
    caller); items not started by then are skipped. ``max_workers <= 1`` runs the items one by
    one in the calling thread.
    """
    work = builtins_list(items)
    if max_workers <= 1 or len(work) <= 1:
        return [fn(x) for x in work]
    first: BaseException | None = None
    with concurrent.futures.ThreadPoolExecutor(min(max_workers, len(work)),
                                               thread_name_prefix="objio-blocking") as pool:
        futs = [pool.submit(fn, x) for x in work]
        try:
            for f in concurrent.futures.as_completed(futs):
                first = f.exception()
                if first is not None:
                    break
        finally:
            for f in futs:
                f.cancel()  # those not started yet; the pool's exit waits for the others
    if first is not None:
        raise first
    return [f.result() for f in futs]
