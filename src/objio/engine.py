"""The one place where concurrency lives.

* One background event loop per process, in a daemon thread, created on first use and created
  anew in a forked child (the child never touches its parent's loop, sessions or sockets).
* Sync calls submit a coroutine to that loop and wait on a future: the waiting thread holds no
  GIL while the I/O runs. Async calls from the caller's own loop await a wrapped future and never
  block it.
* Retries with exponential backoff and full jitter for transient errors (connection errors,
  timeouts, HTTP 500/502/503/504, 408/429, bodies shorter than Content-Length).
* Bounded concurrency (``max_in_flight``) with results kept in input order.
* GETs of objects larger than ``range_threshold`` are split into concurrent ranged GETs written
  into one preallocated buffer.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import functools
import logging
import os
import random
import threading
import time
from typing import Any, Awaitable, Callable, Coroutine, Iterable, NamedTuple, TypeVar

from ._buffers import BufferPool, new_buffer
from .backend import Backend, GetResult
from .config import ClientConfig
from .errors import ObjectStoreError
from .uri import ObjectURI

log = logging.getLogger("objio.engine")
builtins_list = list

T = TypeVar("T")
R = TypeVar("R")

_BACKOFF_BASE_S = 0.05
_BACKOFF_CAP_S = 10.0
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

    async def close_all() -> None:
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


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the engine loop and wait for its result (the GIL is released while
    waiting). Raises whatever the coroutine raises."""
    if in_engine_thread():
        coro.close()
        raise RuntimeError("a synchronous objio call was made from inside the objio engine "
                           "loop (e.g. from an observer callback); use the *_async function")
    fut = asyncio.run_coroutine_threadsafe(coro, _engine.get_loop())
    try:
        return fut.result()
    except concurrent.futures.CancelledError:
        raise
    except BaseException:
        if not fut.done():  # KeyboardInterrupt while waiting: stop the work too
            fut.cancel()
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
    """The backend serving ``obj`` under ``config`` (one per process, scheme and config)."""
    key = (obj.scheme, config)
    b = _engine.backends.get(key)
    if b is None:
        with _engine.lock:
            b = _engine.backends.get(key)
            if b is None:
                if obj.scheme == "file":
                    from .local import LocalBackend

                    b = LocalBackend()
                else:
                    from .s3 import S3Backend

                    b = S3Backend(config)
                _engine.backends[key] = b
    return b


async def to_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking or CPU-bound ``fn`` in the engine loop's worker threads."""
    return await asyncio.get_running_loop().run_in_executor(
        None, functools.partial(fn, *args, **kwargs))


# ----------------------------------------------------------------------------------- retries
def backoff_s(attempt: int) -> float:
    """Full-jitter exponential backoff for retry number ``attempt`` (1-based), in seconds."""
    return random.uniform(0, min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * (2 ** attempt)))


async def with_retries(fn: Callable[[], Awaitable[T]], max_attempts: int) -> T:
    """Call ``fn`` until it succeeds, retrying ``retryable`` errors up to ``max_attempts``
    requests in all; the last error is raised."""
    attempt = 1
    while True:
        try:
            return await fn()
        except ObjectStoreError as e:
            if not e.retryable or attempt >= max_attempts:
                raise
            delay = backoff_s(attempt)
            log.debug("retrying %s %s after %s (attempt %d/%d, %.3fs)", e.operation, e.uri,
                      e.code, attempt, max_attempts, delay)
            attempt += 1
            await asyncio.sleep(delay)


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
        for w in workers:
            w.cancel()
        raise
    if not keep_results:
        return []
    return [results[i] for i in range(len(results))]


# ----------------------------------------------------------------------------------- GET
async def get_object(
    backend: Backend,
    obj: ObjectURI,
    config: ClientConfig,
    observer: Observer | None = None,
    pool: BufferPool | None = None,
) -> bytearray | memoryview:
    """Whole object into memory. The first request asks for ``range_threshold`` bytes; when
    the object is larger, the rest is fetched with concurrent ranged GETs of ``part_size``
    bytes into one preallocated buffer (checked with If-Match against the first ETag).

    Returns a bytearray, or with ``pool`` a memoryview of a pooled buffer (give it back with
    ``pool.give``)."""
    assert config.range_threshold and config.part_size and config.max_attempts
    t0 = time.perf_counter()
    attempts = config.max_attempts
    threshold = config.range_threshold
    alloc = pool.take if pool is not None else None
    first: GetResult = await with_retries(
        lambda: backend.get(obj, 0, threshold - 1, alloc=alloc), attempts)
    total = first.total_size
    if total < 0:  # 416 without a size: the object is empty on servers that refuse the range
        first = await with_retries(lambda: backend.get(obj, alloc=alloc), attempts)
        total = len(first.data)
    data = first.data
    if total > len(data):
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

        async def fetch(r: tuple[int, int]) -> None:
            s, e = r
            await with_retries(
                lambda: backend.get(obj, s, e - 1, if_match=first.etag or None, into=mv[s:e]),
                attempts,
            )

        try:
            await bounded_map(fetch, ranges, min(_MAX_PARTS_PER_OBJECT, config.max_in_flight or 8),
                              keep_results=False)
        except BaseException:
            if pool is not None:
                pool.give(result)
            raise
        data = result
    if observer is not None:
        observer(RequestRecord(str(obj), len(data), first.ttfb_s, time.perf_counter() - t0))
    return data


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
    key never holds a partial object)."""
    assert config.range_threshold and config.part_size and config.max_attempts
    t0 = time.perf_counter()
    mv = memoryview(data).cast("B") if not isinstance(data, (bytes, bytearray)) else memoryview(data)
    n = len(mv)
    attempts = config.max_attempts
    if n <= config.range_threshold or if_none_match:
        await with_retries(lambda: backend.put(obj, mv, if_none_match=if_none_match), attempts)
    else:
        part = max(config.part_size, -(-n // 10_000))
        upload_id = await with_retries(lambda: backend.create_multipart(obj), attempts)
        try:
            starts = list(range(0, n, part))

            async def send(i: int) -> tuple[int, str]:
                s = starts[i]
                etag = await with_retries(
                    lambda: backend.upload_part(obj, upload_id, i + 1, mv[s: s + part]), attempts
                )
                return i + 1, etag

            parts = await bounded_map(send, range(len(starts)),
                                      min(_MAX_PARTS_PER_OBJECT, config.max_in_flight or 8))
            await with_retries(
                lambda: backend.complete_multipart(obj, upload_id, parts),  # type: ignore[arg-type]
                attempts,
            )
        except BaseException:
            await asyncio.shield(_abort_quietly(backend, obj, upload_id))
            raise
    if observer is not None:
        observer(RequestRecord(str(obj), n, 0.0, time.perf_counter() - t0))


async def _abort_quietly(backend: Backend, obj: ObjectURI, upload_id: str) -> None:
    try:
        await backend.abort_multipart(obj, upload_id)
    except ObjectStoreError as e:  # the original error matters more; this one is logged
        log.warning("could not abort multipart upload %s of %s: %s", upload_id, obj, e)


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
