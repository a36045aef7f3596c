"""Which endpoint of several a request goes to: the one place that decides (the S3 backend asks
:class:`EndpointPool` for every request, below the engine's retries).

Strategies (``ClientConfig.endpoint_strategy``):

* ``least_connections`` (default): the endpoint with the fewest requests in flight from this
  client; ties go round robin, so idle endpoints share the first requests of a job;
* ``round_robin``: each request the next endpoint in turn.

Health: an endpoint whose requests fail without a usable response (connection refused or
unreachable, a connect or read timeout, the connection reset or cut mid-response)
``endpoint_fail_threshold`` times in a row (default 3) is taken *out*: no request goes to it
for ``endpoint_backoff_s`` seconds (default 1.0). Then the next request is let through as a
probe (one at a time): an answer of any HTTP status brings the endpoint back *up*, a failure
takes it out again for twice as long (at most 30 s). When every endpoint is out, requests go
to the one whose backoff ends first (they fail with the usual error, or bring it back), so
one endpoint behaves exactly as before. Counts and latencies are per client and per process.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Iterable
from urllib.parse import urlsplit

UP, OUT, PROBING = "up", "out", "probing"
_BACKOFF_CAP_S = 30.0
_LATENCY_SAMPLES = 4096  # p50/p99 are over each endpoint's last this many answered requests


class Endpoint:
    """One endpoint URL and what this client saw of it."""

    __slots__ = ("url", "scheme", "netloc", "base_path", "requests", "errors", "in_flight",
                 "bytes_sent", "bytes_received", "latencies", "state", "failures",
                 "out_until", "backoff_s", "taken_out")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.url = url
        self.scheme = parts.scheme
        self.netloc = parts.netloc
        self.base_path = parts.path.rstrip("/")
        self.requests = 0
        self.errors = 0
        self.in_flight = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        self.latencies: deque[float] = deque(maxlen=_LATENCY_SAMPLES)
        self.state = UP
        self.failures = 0  # consecutive failures without a usable response
        self.out_until = 0.0  # time.monotonic() when an endpoint that is out may be probed
        self.backoff_s = 0.0
        self.taken_out = 0  # how many times it was taken out

    def stats(self, now: float) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(q: float) -> float | None:
            if not lat:
                return None
            return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000.0, 3)

        return {
            "url": self.url,
            "state": self.state,
            "requests": self.requests,
            "errors": self.errors,
            "in_flight": self.in_flight,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "latency_p50_ms": pct(0.50),
            "latency_p99_ms": pct(0.99),
            "consecutive_failures": self.failures,
            "times_taken_out": self.taken_out,
            "out_for_s": round(max(0.0, self.out_until - now), 3) if self.state == OUT else 0.0,
        }


class EndpointPool:
    """The endpoints of one backend, the strategy that picks one per request, and their health.

    Runs on the engine's event loop (not thread-safe); :meth:`stats` is read there too.

    Args:
        urls: one or more endpoint URLs (validated by :func:`objio.config.parse_endpoints`).
        strategy: ``least_connections`` or ``round_robin``.
        fail_threshold: consecutive failures that take an endpoint out (>= 1).
        backoff_s: seconds an endpoint stays out the first time (doubling, at most 30 s).
    """

    def __init__(self, urls: Iterable[str], strategy: str = "least_connections",
                 fail_threshold: int = 3, backoff_s: float = 1.0) -> None:
        self.endpoints = [Endpoint(u) for u in urls]
        if not self.endpoints:
            raise ValueError("an EndpointPool needs at least one endpoint URL")
        self.strategy = strategy
        self.fail_threshold = fail_threshold
        self.base_backoff_s = backoff_s
        self._next = 0
        self.single = len(self.endpoints) == 1

    def __len__(self) -> int:
        return len(self.endpoints)

    # ------------------------------------------------------------------------ picking
    def pick(self, exclude: Iterable[Endpoint] = ()) -> Endpoint | None:
        """The endpoint the next request goes to (not one of ``exclude``, the endpoints this
        request already failed to connect to); None when every endpoint is excluded."""
        eps = self.endpoints
        if self.single:
            ep = eps[0]
            if ep in exclude:
                return None
            if ep.state == OUT:
                ep.state = PROBING
            return ep
        skip = set(exclude) if exclude else ()
        now = time.monotonic()
        n = len(eps)
        start = self._next
        self._next = (start + 1) % n
        best: Endpoint | None = None
        for i in range(n):
            ep = eps[(start + i) % n]
            if ep in skip:
                continue
            if ep.state == OUT:
                if ep.out_until <= now:  # its backoff is over: this request probes it
                    ep.state = PROBING
                    return ep
                continue
            if ep.state == PROBING:
                continue  # one probe at a time
            if self.strategy == "round_robin":
                return ep
            if best is None or ep.in_flight < best.in_flight:
                best = ep
                if ep.in_flight == 0:
                    break
        if best is not None:
            return best
        # Every endpoint left is out (or being probed): the one whose backoff ends first.
        left = [ep for ep in eps if ep not in skip]
        if not left:
            return None
        return min(left, key=lambda e: (e.state == PROBING, e.out_until))

    # ------------------------------------------------------------------------ accounting
    def begin(self, ep: Endpoint, sent: int) -> None:
        """A request to ``ep`` with a body of ``sent`` bytes starts."""
        ep.requests += 1
        ep.in_flight += 1
        ep.bytes_sent += sent

    def answered(self, ep: Endpoint, status: int, received: int, seconds: float) -> None:
        """The request got a response (any status): ``received`` body bytes in ``seconds``."""
        ep.in_flight -= 1
        ep.bytes_received += received
        ep.latencies.append(seconds)
        if status >= 500:
            ep.errors += 1
        ep.failures = 0
        if ep.state != UP:
            ep.state = UP
            ep.backoff_s = 0.0

    def failed(self, ep: Endpoint) -> None:
        """The request got no usable response (refused, unreachable, timed out, cut)."""
        ep.in_flight -= 1
        ep.errors += 1
        ep.failures += 1
        if ep.state == PROBING or (ep.state == UP and ep.failures >= self.fail_threshold):
            ep.backoff_s = (min(_BACKOFF_CAP_S, ep.backoff_s * 2) if ep.backoff_s
                            else self.base_backoff_s)
            ep.out_until = time.monotonic() + ep.backoff_s
            if ep.state == UP:
                ep.taken_out += 1
            ep.state = OUT

    def abandoned(self, ep: Endpoint) -> None:
        """The request was cancelled (no verdict on the endpoint)."""
        ep.in_flight -= 1
        if ep.state == PROBING:
            ep.state = OUT  # probe again at once, with the next request

    def stats(self) -> list[dict[str, Any]]:
        """One dict per endpoint, in configuration order (see :meth:`Endpoint.stats`)."""
        now = time.monotonic()
        return [ep.stats(now) for ep in self.endpoints]
