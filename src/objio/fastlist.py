"""FastList: list a large prefix with many concurrent ListObjectsV2 requests.

A sequential listing is one request per 1000 keys, each waiting for the previous one's
continuation token: 100,000 keys at 20 ms per round trip take two seconds of pure latency.
FastList (the OSS Model Connector's name for it, ``shared/reference``) splits the key space
under the prefix into disjoint ranges and lists them concurrently:

* A range is ``(start, end)``: ListObjectsV2 with ``start-after=start`` (or the continuation
  token of the range it was split from), keeping keys ``< end`` and stopping at the first key
  ``>= end`` (S3 has no end parameter; this is the "range end").
* It starts as one range (one request: a small prefix costs exactly what a sequential
  listing costs). A range whose page comes back full and whose keys are all still below its
  end is split: its remaining key space is cut at split points chosen from the keys it has
  seen (the characters in use at each position: digits, letters, ...), the first piece
  continuing with the range's own continuation token, the others listed concurrently. The
  pieces that come back full are split again, so a skewed layout (99% of the keys under one
  sub-prefix) still spreads over many requests.
* The result is the concatenation of the ranges in key order: the same list, in the same
  order, as the sequential listing (so ``sorted()`` is not even needed).

Server orders, and why the result is verified: servers do not all order keys the same way.
AWS S3, MinIO and Ceph compare UTF-8 bytes; SeaweedFS walks its directory tree, so ``a/x`` and
the rest of ``a/`` come before ``a!`` although ``!`` (0x21) sorts before ``/`` (0x2F) ("path
order"). A range must stop where the server's order puts its end, so FastList compares keys in
the order the server uses: byte order first. Split points are ``<prefix><chars>\U0010FFFF``:
their own characters are ``>= '0'`` (both orders agree on those), and ending in U+10FFFF (the
largest code point, which no real key contains) puts a whole sub-tree ``<c>/...`` on one side,
so no server can skip it by reading the split point as a directory name. Keys containing
U+10FFFF are not supported by FastList.

The result is checked before it is returned: the first key each range's server listing gave
must be the key at which the range before it stopped (every range's listing starts right where
the previous one ends, so together they are exactly the server's sequential listing). A page
whose keys are out of byte order, or a check that fails, means the server uses the other order:
the listing is done again in path order, and if that fails too, sequentially.

Concurrency is the engine's (this module only runs coroutines on the engine loop); at most
``max_in_flight`` list requests are in flight. Each request is one page (a range resumes with
the continuation token of its previous page), so a failed request is retried on its own with
the engine's retry policy.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import itertools
import logging
import operator
import weakref
from collections.abc import AsyncGenerator
from typing import Any, Callable

from . import engine
from .backend import ListPage, ObjectInfo
from .uri import ObjectURI

log = logging.getLogger("objio.fastlist")

MAX_CHAR = "\U0010ffff"
"""The suffix of every split point (the largest Unicode code point)."""

DEFAULT_MAX_IN_FLIGHT = 32
"""List requests in flight at once by default."""

PAGE_SIZE = 1000
"""Keys per ListObjectsV2 request (the S3 maximum)."""

_LOWEST_SPLIT_CHAR = "0"  # split characters must sort after '/' in every server's order
_DIGITS = "0123456789"
_MAX_POINTS = 64  # split points per split
_TARGET_PAGES = 8  # aim for ranges of about this many pages (fewer ranges: less overshoot)
_MIN_PAGE = 100
_PROBE = 100  # keys asked for by the first request of a range made by a split


def _common_prefix_len(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def split_points(sample: list[str], lo: str, hi: str | None, base: int, *,
                 target: float = _TARGET_PAGES * PAGE_SIZE, slots: int = 0,
                 min_target: float = PAGE_SIZE, max_points: int = _MAX_POINTS,
                 order: Callable[[str], str] | None = None) -> list[tuple[str, float]]:
    """Where to cut the key range after ``lo`` (a key) and before ``hi`` (a split point, or
    None for the end of the prefix): ``[(point, expected keys before it), ...]`` ascending,
    each point ``lo[:d] + c + MAX_CHAR`` with ``c > lo[d]``, ``c >= '0'`` and ``d >= base``
    (the length of the listing prefix).

    ``sample``: the keys just listed (ascending, ending with ``lo``). The characters seen at
    each position are that position's alphabet (all ten digits as soon as one digit is seen);
    the sample's density at the position where its keys differ, scaled up by the alphabet
    sizes of the deeper positions, estimates how many keys each candidate range holds, and
    candidates are merged until a range is expected to hold about ``target`` keys (at most
    ``max_points`` points). With ``slots`` (requests that could run at once), the target
    shrinks to spread the expected keys over them, but not below ``min_target``. ``order``:
    the sort key of the server's order (default: the string itself, byte order). The estimate
    only decides efficiency (how many requests), never which keys are listed.
    """
    if not sample or len(lo) <= base:
        return []
    first = sample[0]
    deepest = max(base, min(_common_prefix_len(first, lo), len(lo) - 1))
    n_sample = len(sample)
    if n_sample > 128:  # the alphabets from every 8th key: as good, 8 times cheaper
        sample = [*sample[::8], lo]
    # The position after the deepest varying one shows the alphabet the keys draw from (hex
    # digits, say) better than the sample shows it at the positions above: it is added to
    # theirs where they vary or share a character with it (not to a fixed '/' or 'img_').
    after = {k[deepest + 1] for k in sample if len(k) > deepest + 1}
    alphabets: dict[int, list[str]] = {}
    for d in range(base, deepest + 1):
        chars = {k[d] for k in sample if len(k) > d}
        chars.add(lo[d])
        if len(chars) > 1 or chars & after:
            chars |= after
        if any(c in _DIGITS for c in chars):
            chars.update(_DIGITS)
        alphabets[d] = sorted(chars)
    # keys per alphabet step at each depth, from the sample's spread at the deepest one
    a = alphabets[deepest]
    lo_rank = a.index(lo[deepest])
    first_rank = a.index(first[deepest]) if len(first) > deepest else -1
    per_step = {deepest: n_sample / max(1, lo_rank - first_rank)}
    for d in range(deepest - 1, base - 1, -1):
        per_step[d] = per_step[d + 1] * max(1, len(alphabets[d + 1]))
    candidates: list[tuple[str, float]] = []
    for d in range(deepest, base - 1, -1):
        a = alphabets[d]
        prev = a.index(lo[d])
        head = lo[:d]
        for r in range(prev + 1, len(a)):
            c = a[r]
            if c < _LOWEST_SPLIT_CHAR or c == MAX_CHAR:
                continue
            p = head + c + MAX_CHAR
            if hi is not None and (p >= hi if order is None else order(p) >= order(hi)):
                break
            candidates.append((p, (r - prev) * per_step[d]))
            prev = r
    total = sum(n for _, n in candidates)
    if slots > 0:
        target = max(min_target, min(target, total / slots))
    # a range expected to hold fewer than two targets goes on as it is (each cut costs a
    # request that reads past its end)
    if total < 2 * target:
        return []
    while True:
        points: list[tuple[str, float]] = []
        acc = 0.0
        for p, n in candidates:
            acc += n
            if acc >= target:
                points.append((p, acc))
                acc = 0.0
        if len(points) <= max_points:
            return points
        target *= 2


class _Range:
    """Keys after ``origin`` (a split point; None: the start of the prefix), or after the page
    whose continuation ``token`` it holds, and before ``end``. The ranges of a listing form a
    linked list in key order (``next``); a range's pages wait in ``pages`` until the ranges
    before it have been emitted."""

    __slots__ = ("end", "origin", "token", "tokens", "started", "page_size", "probe",
                 "expected", "floor", "count", "first_seen", "stopped_at", "next", "pages",
                 "done", "continued", "halted", "rest", "rest_token")

    def __init__(self, end: str | None, origin: str | None, page_size: int, *,
                 token: str | None = None, tokens: set[Any] | None = None, probe: int = 0,
                 expected: float | None = None) -> None:
        self.end = end
        self.origin = origin
        self.token = token      # resume after the last page read (continuation token)
        # the continuation tokens received along this range's chain of pages (shared with the
        # piece that continues it after a split): a token must never come back
        self.tokens: set[Any] = tokens if tokens is not None else set()
        self.started = token is not None
        self.page_size = page_size
        self.probe = probe      # > 0: the first request asks for only this many keys
        self.expected = expected  # keys the split expected here (None: unknown)
        self.floor = _MIN_PAGE  # the smallest request once past the expected keys (doubles)
        self.count = 0          # keys taken
        self.first_seen: str | None = None  # the first key its own first request returned
        self.stopped_at: str | None = None  # the first key it did not take (None: the end)
        self.next: _Range | None = None
        self.pages: collections.deque[ListPage] = collections.deque()
        self.done = False       # no more pages will come (stopped, at the end, or split)
        self.continued = False  # split: its listing goes on in the range after it
        self.halted = False     # stopped early (the pass is over): it goes on from ``token``
        # Where the server's sequential listing goes on from this range's last page: the
        # keys of that page it did not take (or the whole page, out of the order assumed) and
        # the page's continuation token. Used when the next range turns out not to follow.
        self.rest: ListPage | None = None
        self.rest_token: str | None = None

    def request_size(self) -> int:
        """max-keys of the next request: the probe, else about the keys still expected (a
        request reading past the range's end is wasted), else a full page."""
        if self.probe:
            size, self.probe = min(self.probe, self.page_size), 0
            return size
        if self.expected is None:
            return self.page_size
        rest = self.expected - self.count
        if rest * 1.25 + 20 >= self.page_size:
            return self.page_size
        size = max(self.floor, int(rest * 1.25) + 20)
        if rest <= 0:
            self.floor = min(self.page_size, 2 * self.floor)
        return min(self.page_size, size)


def path_order(key: str) -> str:
    """The sort key of path order (SeaweedFS): ``/`` below every other character."""
    return key.replace("/", "\x00")


def byte_order(key: str) -> str:
    """The sort key of UTF-8 byte order (AWS S3): code point order, the string itself."""
    return key


# The order each backend (one per endpoint and configuration) was found to list in, when a
# listing told byte and path order apart: the next listing assumes it first.
_learned: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


class _OrderMismatch(Exception):
    """The server does not list in the order FastList assumed."""


class _FastList:
    """One FastList pass in one assumed key order, from the start of the prefix or from a
    continuation token (``token``: after a pass in the other order stopped there).

    :meth:`stream` yields the pages in the server's listing order, each as soon as every key
    before it is known (key-order emission): the first range's pages at once, a later
    range's once the ranges before it are complete and it is checked to start exactly where
    the one before it stopped. Pages of later ranges wait (``buffer_pages`` of them at most,
    then those ranges pause); the first range stays at most :data:`_AHEAD` pages ahead of
    the consumer. When a check fails or a page is out of the order assumed, everything
    yielded so far is still exactly the start of the server's listing (each range resumed
    from a continuation token or was checked against the one before it): ``resume`` then
    says where the server's listing goes on (the rest of the last range's page and its
    token) and the caller continues from there in the other order.
    """

    def __init__(self, backend: Any, bucket_uri: ObjectURI, prefix: str, max_in_flight: int,
                 attempts: int, page_size: int, order: Callable[[str], str] = byte_order, *,
                 token: str | None = None, tokens: set[Any] | None = None,
                 buffer_pages: int | None = None) -> None:
        self.order = order
        self.backend = backend
        self.bucket_uri = bucket_uri
        self.prefix = prefix
        self.sem = asyncio.Semaphore(max_in_flight)
        self.max_in_flight = max_in_flight
        self.attempts = attempts
        self.page_size = page_size
        self.buffer_pages = buffer_pages
        self.tasks: set[asyncio.Task[None]] = set()
        self.active = 0
        self.requests = 0
        self.buffered = 0  # pages waiting in ranges after the frontier
        self.failure: BaseException | None = None
        self.changed = asyncio.Event()
        # the range whose pages are emitted now; ranges before it are dropped (nothing refers
        # to them), so what is held is the frontier and what follows it
        self.frontier = _Range(None, None, page_size, token=token, tokens=tokens)
        self.resume: tuple[ListPage | None, str | None] | None = None
        self.mismatch = False

    # -- requests ------------------------------------------------------------------------
    async def _page(self, r: _Range, size: int) -> ListPage | None:
        """One ListObjectsV2 request of ``r`` (None when ``r`` has no more pages), retried
        with the engine's policy (:func:`objio.engine.next_page`: the same continuation token
        is sent again; a page cut short or truncated without a token is an error, never the
        end of the range; a token that comes back again raises after one retry)."""
        if r.started and r.token is None:
            return None
        start_after, token = (None, r.token) if r.started else (r.origin, None)

        async def one() -> ListPage | None:
            async with self.sem:
                self.requests += 1
                return await engine.list_one_page(self.backend, self.bucket_uri, self.prefix,
                                                  None, start_after, size, token)

        page = await engine.next_page(one, _next_token, self.attempts, sent=token,
                                      seen=r.tokens, operation="ListObjectsV2",
                                      uri=str(self.bucket_uri.with_key(self.prefix)))
        if not r.started:
            r.first_seen = page.keys[0] if page is not None and len(page) else None
        r.started = True
        r.token = page.next_token if page is not None else None
        return page

    def _signal(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def _may_fetch(self, r: _Range) -> bool:
        if r is self.frontier:
            return len(r.pages) < _AHEAD
        return self.buffer_pages is None or self.buffered < self.buffer_pages

    def _add(self, r: _Range, page: ListPage) -> None:
        if len(page):
            r.pages.append(page)
            self.buffered += 1
            self._signal()

    def _keep_rest(self, r: _Range, rest: ListPage, token: str | None) -> None:
        """Keep where the server's listing goes on after ``r``: the keys of its last page it
        did not take and that page's token (counted as a page held, until ``r`` is
        passed)."""
        r.rest, r.rest_token = rest, token
        self.buffered += 1

    def _passed(self, r: _Range) -> None:
        """The emission went past ``r``: what it kept is no longer needed."""
        if r.rest is not None:
            r.rest = None
            self.buffered -= 1
            self._signal()

    def _finish(self, r: _Range) -> None:
        r.done = True
        self._signal()

    def _spawn(self, r: _Range) -> None:
        t = asyncio.ensure_future(self._run(r))
        self.tasks.add(t)
        t.add_done_callback(self._ended)

    def _ended(self, t: asyncio.Task[None]) -> None:
        self.tasks.discard(t)
        if not t.cancelled() and t.exception() is not None and self.failure is None:
            self.failure = t.exception()
            self._signal()

    async def _run(self, r: _Range) -> None:
        self.active += 1
        try:
            while True:
                while not self._may_fetch(r) and not self.mismatch:
                    await self.changed.wait()
                if self.mismatch:  # this pass is over; its frontier tells where to go on
                    r.halted = True
                    self._signal()
                    return
                page = await self._page(r, r.request_size())
                if page is None:
                    self._finish(r)
                    return
                keys = page.keys
                order = self.order
                ordered = keys if order is byte_order else [order(k) for k in keys]
                if not all(map(operator.lt, ordered, itertools.islice(ordered, 1, None))):
                    # not the order assumed: the page is the server's own sequence, kept to
                    # go on from if this range's start checks out
                    self._keep_rest(r, page, page.next_token)
                    self.mismatch = True
                    self._finish(r)
                    return
                end = r.end
                if end is not None and keys and ordered[-1] >= order(end):
                    i = bisect.bisect_left(ordered, order(end))
                    self._add(r, page.slice(0, i))
                    r.count += i
                    r.stopped_at = keys[i]
                    self._keep_rest(r, page.slice(i), page.next_token)
                    self._finish(r)
                    return
                self._add(r, page)
                r.count += len(keys)
                if r.token is None:
                    self._finish(r)
                    return
                idle = self.max_in_flight - self.active
                if len(keys) < self.page_size or idle <= 0:
                    continue  # a probe, or every request slot is busy
                points = split_points(keys, keys[-1], end, len(self.prefix),
                                      target=_TARGET_PAGES * self.page_size, slots=idle + 1,
                                      min_target=self.page_size,
                                      max_points=min(_MAX_POINTS, idle), order=order)
                if not points:
                    continue
                first = _Range(points[0][0], None, self.page_size, token=r.token,
                               tokens=r.tokens, expected=points[0][1])
                pieces = [first]
                for i, (p, _) in enumerate(points):
                    nxt = points[i + 1] if i + 1 < len(points) else None
                    # Every new range starts with a small probe: a split point is often followed
                    # by no keys of its own, and such a range's first request would return a
                    # page of the next range's keys. Then each request asks for about the keys
                    # still expected (_Range.request_size).
                    pieces.append(_Range(nxt[0] if nxt is not None else end, p, self.page_size,
                                         probe=_PROBE,
                                         expected=nxt[1] if nxt is not None else None))
                for a, b in zip(pieces, pieces[1:], strict=False):
                    a.next = b
                pieces[-1].next = r.next
                r.next = first
                r.token = None
                r.continued = True
                self._finish(r)
                for piece in pieces[1:]:
                    self._spawn(piece)
                r = first  # this task goes on with the first piece (the same continuation)
        finally:
            self.active -= 1

    # -- emission ------------------------------------------------------------------------
    async def stream(self) -> AsyncGenerator[ListPage, None]:
        """The pages of this pass in the server's listing order (see the class docs); when
        it ends early, ``resume`` is set."""
        r = self.frontier
        self._spawn(r)
        try:
            while True:
                if self.failure is not None:
                    raise self.failure
                if r.pages:
                    page = r.pages.popleft()
                    self.buffered -= 1
                    self._signal()  # room for the frontier's next request
                    yield page
                    continue
                if not r.done:
                    if r.halted:  # its pages so far are emitted: go on after the last one
                        self.resume = (None, r.token)
                        return
                    await self.changed.wait()
                    continue
                nxt = r.next
                if r.continued:  # split: the next range continues its listing (same token)
                    assert nxt is not None
                    self._passed(r)
                    r = self.frontier = nxt
                    self._signal()
                    continue
                if r.rest is not None and r.stopped_at is None:  # a page out of order
                    self.resume = (r.rest, r.rest_token)
                    return
                if nxt is None:
                    if r.stopped_at is not None:  # the last range must end the listing
                        self.resume = (r.rest, r.rest_token)
                    return
                # The next range may fetch now whatever waits after it (its first page tells
                # where it starts; its pages are the next to go out).
                self.frontier = nxt
                self._signal()
                while not nxt.started and self.failure is None and not self.mismatch:
                    await self.changed.wait()
                if self.failure is not None:
                    raise self.failure
                if not nxt.started or nxt.first_seen != r.stopped_at:
                    # it does not start where this one stopped: the server's order is not
                    # the one assumed (or, after a mismatch, it never started)
                    self.resume = (r.rest, r.rest_token)
                    return
                self._passed(r)
                r = nxt
        finally:
            self.mismatch = True  # (paused ranges end)
            self._signal()
            tasks = list(self.tasks)
            for t in tasks:
                t.cancel()
            await engine.finish(asyncio.gather(*tasks, return_exceptions=True))
            log.debug("FastList %s%s: %d requests", self.bucket_uri, self.prefix,
                      self.requests)


def _next_token(page: ListPage | None) -> str | None:
    return None if page is None else page.next_token


DEFAULT_BUFFER_PAGES = 128
"""Pages of later ranges a streamed FastList keeps at most while an earlier range is still
being listed (then those ranges pause): with ``max_in_flight`` pages in flight and the
consumer's few, what a streamed listing holds (about 0.3 MB per page of 1000 keys)."""

_AHEAD = 2  # pages the frontier range lists ahead of the consumer


async def stream_fast(backend: Any, bucket_uri: ObjectURI, prefix: str, *,
                      max_in_flight: int = DEFAULT_MAX_IN_FLIGHT, attempts: int = 5,
                      page_size: int = PAGE_SIZE, stats: dict[str, Any] | None = None,
                      buffer_pages: int | None = DEFAULT_BUFFER_PAGES
                      ) -> AsyncGenerator[ListPage, None]:
    """Every object under ``prefix`` of the bucket ``bucket_uri``, listed with concurrent
    ListObjectsV2 requests over disjoint key ranges (see the module docs), yielded page by
    page as soon as every key before the page is known: in the server's listing order (the
    order of a sequential listing), each key once. Memory is bounded, whatever the size of
    the listing: ``max_in_flight`` requests, at most ``buffer_pages`` pages of later ranges
    waiting for an earlier one (None: no limit) and two pages ahead of the consumer.

    The order the server lists in is found as the listing goes (byte order assumed first,
    or the order this backend was seen to use): when a page or a range boundary shows the
    other order, the listing goes on from the last key yielded in the other order, then
    sequentially; nothing yielded is taken back or repeated.

    Runs on the engine loop. ``s3://`` and ``gs://`` (Cloud Storage's objects.list: a
    range starts with ``startOffset``, see :meth:`objio.gcs.GCSBackend.list_page`); for
    ``file://`` (no request latency to hide) and ``az://`` it is the plain listing.
    ``stats``, if given, receives ``requests`` (ListObjectsV2 requests in all) and
    ``order`` (``"bytes"``, ``"path"`` or ``"sequential"``: how the listing ended).
    Raises: as a sequential listing (FileNotFoundError for a missing bucket, PermissionError,
    ObjectStoreError); ValueError for ``max_in_flight < 1``.
    """
    if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int) or max_in_flight < 1:
        raise ValueError(f"max_in_flight must be an integer >= 1, got {max_in_flight!r}")
    if bucket_uri.scheme not in ("s3", "gs"):
        async with contextlib.aclosing(engine.list_pages(
                backend, bucket_uri, prefix, page_size=page_size, attempts=attempts)) as pages:
            async for page in pages:
                yield page
        return
    stats = stats if stats is not None else {}
    stats["requests"] = 0
    orders = [("bytes", byte_order), ("path", path_order)]
    if _learned.get(backend) == "path":  # this server was seen to list in path order
        orders.reverse()
    token: str | None = None
    tokens: set[Any] = set()
    for i, (name, order) in enumerate(orders):
        stats["order"] = name
        fl = _FastList(backend, bucket_uri, prefix, max_in_flight, attempts, page_size, order,
                       token=token, tokens=tokens, buffer_pages=buffer_pages)
        try:
            async with contextlib.aclosing(fl.stream()) as pages:
                async for page in pages:
                    yield page
        finally:
            stats["requests"] += fl.requests
        if fl.resume is None:
            return
        rest, token = fl.resume
        log.debug("FastList %s%s: the server does not list in %s order; going on from "
                  "where it stopped", bucket_uri, prefix, name)
        later = orders[i + 1][0] if i + 1 < len(orders) else "sequential"
        stats["order"] = later
        if later != "sequential":
            _learned[backend] = later
        if rest is not None and len(rest):
            yield rest
        if token is None:  # the server's listing ended right there
            return
        tokens = set(tokens) | {token}
    async with contextlib.aclosing(engine.list_pages(
            backend, bucket_uri, prefix, page_size=page_size, continuation_token=token,
            attempts=attempts)) as pages:
        async for page in pages:
            stats["requests"] += 1
            yield page


async def list_fast(backend: Any, bucket_uri: ObjectURI, prefix: str, *,
                    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT, attempts: int = 5,
                    page_size: int = PAGE_SIZE,
                    stats: dict[str, Any] | None = None) -> list[ObjectInfo]:
    """Every object under ``prefix`` of the bucket ``bucket_uri`` as a list, in the server's
    listing order: :func:`stream_fast` collected (no limit on the pages waiting, since all
    are kept anyway). Raises: as :func:`stream_fast`."""
    out: list[ObjectInfo] = []
    async with contextlib.aclosing(stream_fast(
            backend, bucket_uri, prefix, max_in_flight=max_in_flight, attempts=attempts,
            page_size=page_size, stats=stats, buffer_pages=None)) as pages:
        async for page in pages:
            out.extend(page.objects)
    return out
