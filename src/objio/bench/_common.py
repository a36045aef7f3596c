"""What every benchmark measures the same way: CPU seconds, latency percentiles, medians and
ratios, the environment of a run, and the embedded server."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .. import __version__
from .peers import installed_version

DEFAULT_BUCKET = "objio-bench"
"""Bucket created on the embedded server when no URI is given."""

_REASON_MAX_CHARS = 240


def cpu_seconds(children: bool = False) -> float:
    """User + system CPU seconds of this process so far (all threads); with ``children``, plus
    those of its reaped child processes (DataLoader workers)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Unix
        return time.process_time()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    total = ru.ru_utime + ru.ru_stime
    if children:
        rc = resource.getrusage(resource.RUSAGE_CHILDREN)
        total += rc.ru_utime + rc.ru_stime
    return total


def rss_bytes() -> int:
    """Resident memory of this process now, in bytes (``/proc/self/statm``; 0 where there is
    no /proc)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def reset_peak_rss() -> bool:
    """Reset the kernel's resident-memory high-water mark (VmHWM, Linux ``clear_refs`` 5), so
    that :func:`peak_rss_bytes` measures from now; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """Peak resident memory in bytes: VmHWM (since the last :func:`reset_peak_rss`), else the
    process's lifetime peak (``ru_maxrss``)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def one_line(e: BaseException) -> str:
    """First line of an exception's message, prefixed with its type when that helps."""
    text = str(e).strip()
    line = text.splitlines()[0] if text else ""
    if not line:
        return type(e).__name__
    if isinstance(e, (ImportError, RuntimeError, KeyError, TypeError, AttributeError)) or \
            type(e).__module__ not in ("builtins", "objio.errors"):
        line = f"{type(e).__name__}: {line}"
    if len(line) > _REASON_MAX_CHARS:
        line = line[: _REASON_MAX_CHARS - 3] + "..."
    return line


def percentiles_ms(values_s: Sequence[float]) -> dict[str, float] | None:
    """p50/p90/p99 of durations in seconds, as milliseconds (linear interpolation)."""
    if not values_s:
        return None
    xs = sorted(values_s)
    n = len(xs)

    def pct(q: float) -> float:
        pos = (n - 1) * q
        lo = int(pos)
        hi = min(lo + 1, n - 1)
        return (xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)) * 1000.0

    return {"p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99)}


def median(values: Sequence[float | None]) -> float | None:
    """Median of the values that are not None (None if there are none)."""
    xs = [v for v in values if v is not None]
    return statistics.median(xs) if xs else None


def mean(values: Sequence[float | None]) -> float | None:
    """Mean of the values that are not None (None if there are none)."""
    xs = [v for v in values if v is not None]
    return statistics.fmean(xs) if xs else None


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b``, or None when either is missing or ``b`` is 0."""
    return a / b if a is not None and b else None


def environment(libraries: Sequence[str]) -> dict[str, Any]:
    """Python, platform, objio version, CPU count and the installed versions of ``libraries``
    (pip names)."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "objio": __version__,
        "cpu_count": os.cpu_count(),
        "peer_versions": {name: installed_version(name) for name in libraries},
    }


EMBEDDED_SERVERS: dict[str, tuple[str, str]] = {
    "s3": ("s3", "S3 server (SeaweedFS)"),
    "azure": ("az", "Azure emulator (Azurite)"),
    "gcs": ("gs", "GCS emulator (fake-gcs-server)"),
}
"""The embedded servers a benchmark can start (``--server``): kind -> (URI scheme, what it
is, for messages)."""


def start_embedded(kind: str = "s3") -> tuple[Any, Any]:
    """Start an embedded local server and return it with an :class:`objio.Client` for it whose
    bucket (container) :data:`DEFAULT_BUCKET` exists: ``kind`` ``s3`` is
    :class:`objio.server.LocalS3Server`, ``azure`` :class:`objio.azure_server.LocalAzureServer`
    (Azurite), ``gcs`` :class:`objio.gcs_server.LocalGCSServer` (fake-gcs-server). The URI
    scheme of its objects is ``EMBEDDED_SERVERS[kind][0]``.

    Raises:
        ValueError: ``kind`` is not one of :data:`EMBEDDED_SERVERS`.
        OSError: the server cannot start (with its reason; FileNotFoundError when it is not
            installed).
    """
    from ..api import Client

    if kind not in EMBEDDED_SERVERS:
        raise ValueError(f"unknown embedded server {kind!r}; choose from "
                         f"{', '.join(EMBEDDED_SERVERS)}")
    scheme, what = EMBEDDED_SERVERS[kind]
    server: Any
    if kind == "azure":
        from ..azure_server import LocalAzureServer

        server = LocalAzureServer()
    elif kind == "gcs":
        from ..gcs_server import LocalGCSServer

        server = LocalGCSServer()
    else:
        from ..server import LocalS3Server

        server = LocalS3Server()
    try:
        server.start()
    except RuntimeError as e:
        raise OSError(f"could not start the embedded {what}: {one_line(e)}") from None
    try:
        client = Client(server.config)
        client.create_bucket(f"{scheme}://{DEFAULT_BUCKET}", exist_ok=True)
    except BaseException:
        server.stop()
        raise
    return server, client


def endpoint_report(client: Any) -> list[dict[str, Any]]:
    """The ``endpoints`` section of a bench report: :meth:`objio.Client.endpoint_stats` of
    the run's client (counts since its first request in this process)."""
    try:
        return list(client.endpoint_stats())
    except Exception:  # noqa: BLE001 - stats must never fail a finished run
        return []


def endpoint_lines(endpoints: Sequence[Mapping[str, Any]]) -> list[str]:
    """One text line per endpoint (for reports when there are several): state, requests,
    errors, data moved and latency percentiles."""
    lines = []
    total = sum(e["requests"] for e in endpoints) or 1
    for e in endpoints:
        moved = e["bytes_sent"] + e["bytes_received"]
        p50, p99 = e["latency_p50_ms"], e["latency_p99_ms"]
        lat = "-" if p50 is None else f"{p50:.2f}/{p99:.2f} ms"
        lines.append(f"  endpoint {e['url']}: {e['state']}, {e['requests']} requests "
                     f"({100.0 * e['requests'] / total:.0f}%), {e['errors']} errors, "
                     f"{moved / 2**20:.1f} MiB, latency p50/p99 {lat}")
    return lines
