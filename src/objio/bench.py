"""``objio bench``: a DLIO-style put + get benchmark, optionally against peer libraries.

The benchmark writes ``num`` synthetic objects of ``size`` bytes (``RAW``, ``NPZ``,
``TFRECORD`` or ``HDF5``, see :mod:`objio.datagen`) under a prefix, reads all of them back
``epochs`` times, and reports per phase:

* throughput in MiB/s (MiB = 2**20 bytes) and objects/s, over the phase's wall time (seconds);
* per-request latency percentiles p50/p90/p99 in milliseconds, of the time to first byte
  (GET only) and of the whole transfer;
* client CPU time in seconds (user + system of the whole process, all threads, from
  ``getrusage(RUSAGE_SELF)``), and CPU milliseconds per object and per MiB.

With ``compare`` the same objects are also read, in the same process and with the same
``max_in_flight``, by peer libraries (``obstore``, ``boto3``, ``s3torchconnector``,
``s3dlio``), interleaved epoch by epoch (objio, then each peer, then the next epoch) so that
machine noise hits every tool alike. Each tool's result is the median over epochs, and
``objio_ratio`` is objio's median MiB/s divided by the tool's (above 1: objio is faster).
A peer that is not installed, or fails, is reported as skipped with a one-line reason.

Without a URI the CLI starts an embedded SeaweedFS server (:class:`objio.server.LocalS3Server`)
on loopback, so the numbers then measure the client stack plus a local server, not a network.

Python API: :func:`run_bench` returns the report as a JSON-ready dict; :func:`print_report`
renders it. CLI: :func:`configure_parser` and :func:`run_from_args` (``objio bench``), or
``python -m objio.bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

from . import __version__
from .api import Client
from .config import MiB, format_size, parse_size, temporary_environ
from .engine import RequestRecord
from .errors import ObjectStoreError
from .uri import ObjectURI, parse_uri

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

__all__ = [
    "PEERS", "DEFAULT_BUCKET", "DEFAULT_PREFIX", "TEMPLATE",
    "configure_parser", "run_from_args", "run_bench", "print_report", "main",
]

PEERS: tuple[str, ...] = ("obstore", "boto3", "s3torchconnector", "s3dlio")
"""Peer libraries ``compare`` can run, in the order they run within an epoch."""

DEFAULT_BUCKET = "objio-bench"
"""Bucket created on the embedded server when no URI is given."""

DEFAULT_PREFIX = "bench/"
"""Prefix used on the embedded server when no URI is given."""

TEMPLATE = "object_{}_of_{}.dat"
"""Object names under the prefix: ``TEMPLATE.format(index, num)``."""

_PIP_NAMES = {"obstore": "obstore", "boto3": "boto3", "s3torchconnector": "s3torchconnector",
              "s3dlio": "s3dlio"}
_REASON_MAX_CHARS = 240
_POLL_INTERVAL_S = 0.1

Advance = Callable[[int, int], None]
"""Progress callback of a peer run: ``advance(objects, nbytes)``."""


# ----------------------------------------------------------------------------------- helpers
def _cpu_s() -> float:
    """User + system CPU seconds of this process so far (all threads)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Unix
        return time.process_time()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _one_line(e: BaseException) -> str:
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


def _join(prefix: ObjectURI, name: str) -> ObjectURI:
    """``prefix`` + ``/`` (when it has a key not ending with one) + ``name``, as ``put`` does."""
    k = prefix.key
    if k and not k.endswith("/"):
        k += "/"
    return prefix.with_key(k + name)


def _percentiles_ms(values_s: Sequence[float]) -> dict[str, float] | None:
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


def _run_stats(objects: int, nbytes: int, wall_s: float, cpu_s: float,
               records: Sequence[RequestRecord] | None = None, *,
               ttfb: bool = True) -> dict[str, Any]:
    """Statistics of one run: counts, bytes, seconds, MiB/s, objects/s, CPU, latencies (ms)."""
    mib = nbytes / MiB
    out: dict[str, Any] = {
        "objects": objects,
        "bytes": nbytes,
        "wall_s": wall_s,
        "mib_per_s": mib / wall_s if wall_s > 0 else None,
        "objects_per_s": objects / wall_s if wall_s > 0 else None,
        "cpu_s": cpu_s,
        "cpu_ms_per_object": 1000.0 * cpu_s / objects if objects else None,
        "cpu_ms_per_mib": 1000.0 * cpu_s / mib if mib else None,
    }
    if records is not None:
        out["latency_ms"] = {
            "ttfb": _percentiles_ms([r.ttfb_s for r in records]) if ttfb else None,
            "total": _percentiles_ms([r.total_s for r in records]),
        }
    return out


def _median(values: Sequence[float | None]) -> float | None:
    xs = [v for v in values if v is not None]
    return statistics.median(xs) if xs else None


def _installed_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _is_installed(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "objio": __version__,
        "cpu_count": os.cpu_count(),
        "peer_versions": {p: _installed_version(_PIP_NAMES[p]) for p in PEERS},
    }


def parse_peers(value: str | Sequence[str] | None) -> list[str] | None:
    """Peer names from a comma list (``"obstore,boto3"``) or a sequence; None stays None
    (meaning all of :data:`PEERS`). Raises: ValueError naming an unknown peer."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    names: list[str] = []
    for item in items:
        name = item.strip().lower()
        if not name:
            continue
        if name not in PEERS:
            raise ValueError(f"unknown peer {item.strip()!r}; choose from {', '.join(PEERS)}")
        if name not in names:
            names.append(name)
    if not names:
        raise ValueError(f"--peers is empty; choose from {', '.join(PEERS)}")
    return names


# ----------------------------------------------------------------------------------- progress
class _Progress:
    """Rich progress bars (objects done, MiB/s of the current run), or nothing when disabled.

    Counts come from lists that the engine thread or worker threads append to (cheap and
    atomic in CPython); a poller thread turns them into bar updates every 0.1 s.
    """

    def __init__(self, enabled: bool, console: Console | None) -> None:
        self.enabled = enabled
        self._console = console
        self._progress: Progress | None = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("objects"), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                console=self._console,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def add_task(self, description: str, total: int) -> TaskID | None:
        if self._progress is None:
            return None
        return self._progress.add_task(description, total=total, rate="")

    def finish(self, task: TaskID | None) -> None:
        if self._progress is not None and task is not None:
            total = next(t.total for t in self._progress.tasks if t.id == task)
            self._progress.update(task, completed=total, description="get", rate="")

    @contextlib.contextmanager
    def track(self, task: TaskID | None, description: str, items: list[Any],
              weight: Callable[[Any], tuple[int, int]]) -> Iterator[None]:
        """Advance ``task`` by the (objects, bytes) of the items appended to ``items`` while
        the block runs; the rate shown is this run's MiB/s."""
        progress = self._progress
        if progress is None or task is None:
            yield
            return
        base = next(t.completed for t in progress.tasks if t.id == task)
        progress.update(task, description=description)
        stop = threading.Event()
        t0 = time.perf_counter()
        state = [0, 0, 0]  # items seen, objects, bytes

        def poll() -> None:
            n = len(items)
            for item in items[state[0]:n]:
                c, b = weight(item)
                state[1] += c
                state[2] += b
            state[0] = n
            dt = time.perf_counter() - t0
            rate = f"{state[2] / MiB / dt:8.1f} MiB/s" if dt > 0 else ""
            progress.update(task, completed=base + state[1], rate=rate)

        def loop() -> None:
            while not stop.wait(_POLL_INTERVAL_S):
                poll()

        thread = threading.Thread(target=loop, name="objio-bench-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            poll()


def _record_weight(r: RequestRecord) -> tuple[int, int]:
    return 1, r.nbytes


def _pair_weight(p: tuple[int, int]) -> tuple[int, int]:
    return p


# ----------------------------------------------------------------------------------- peers
@dataclass(frozen=True)
class _Target:
    """What a peer reads and how it reaches the store."""

    bucket: str
    keys: list[str]
    uris: list[str]
    endpoint_url: str | None
    region: str
    access_key_id: str | None
    secret_access_key: str | None
    session_token: str | None
    unsigned: bool
    path_style: bool

    def aws_env(self) -> dict[str, str | None]:
        """AWS_* environment for peers that read their settings from it."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }


class _Peer:
    """A peer library reading every object of a target fully into memory.

    ``setup`` (not timed) imports the library and builds its client; ``run`` (timed) reads
    all objects once and returns ``(objects, bytes)``; ``close`` frees threads and clients.
    """

    name = ""

    def setup(self, target: _Target, max_in_flight: int) -> None:
        self.target = target
        self.max_in_flight = max_in_flight

    def run(self, advance: Advance | None) -> tuple[int, int]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _ObstorePeer(_Peer):
    """obstore: raw asyncio, ``get_async`` + ``bytes_async`` under a Semaphore."""

    name = "obstore"

    def setup(self, target: _Target, max_in_flight: int) -> None:
        super().setup(target, max_in_flight)
        import obstore  # not fork-safe: imported only here, never at objio import time
        from obstore.store import S3Store

        kwargs: dict[str, Any] = {
            "region": target.region,
            "virtual_hosted_style_request": not target.path_style,
            "client_options": {"allow_http": True},
        }
        if target.endpoint_url:
            kwargs["endpoint"] = target.endpoint_url
        if target.unsigned:
            kwargs["skip_signature"] = True
        else:
            kwargs["access_key_id"] = target.access_key_id
            kwargs["secret_access_key"] = target.secret_access_key
            if target.session_token:
                kwargs["session_token"] = target.session_token
        self._obstore = obstore
        self._store = S3Store(target.bucket, **kwargs)

    def run(self, advance: Advance | None) -> tuple[int, int]:
        obstore, store, keys = self._obstore, self._store, self.target.keys

        async def main() -> tuple[int, int]:
            sem = asyncio.Semaphore(self.max_in_flight)

            async def one(key: str) -> int:
                async with sem:
                    r = await obstore.get_async(store, key)
                    n = len(await r.bytes_async())
                if advance is not None:
                    advance(1, n)
                return n

            sizes = await asyncio.gather(*(one(k) for k in keys))
            return len(sizes), sum(sizes)

        return asyncio.run(main())


class _Boto3Peer(_Peer):
    """boto3: one client, a ThreadPoolExecutor of max_in_flight threads, ``Body.read()``."""

    name = "boto3"

    def setup(self, target: _Target, max_in_flight: int) -> None:
        super().setup(target, max_in_flight)
        import boto3
        import botocore
        from botocore.config import Config

        cfg = Config(
            max_pool_connections=max_in_flight,
            s3={"addressing_style": "path" if target.path_style else "auto"},
            signature_version=botocore.UNSIGNED if target.unsigned else None,
        )
        session = boto3.session.Session()
        self._client = session.client(
            "s3", endpoint_url=target.endpoint_url, region_name=target.region,
            aws_access_key_id=None if target.unsigned else target.access_key_id,
            aws_secret_access_key=None if target.unsigned else target.secret_access_key,
            aws_session_token=None if target.unsigned else target.session_token,
            config=cfg,
        )
        self._pool = concurrent.futures.ThreadPoolExecutor(max_in_flight,
                                                           thread_name_prefix="bench-boto3")

    def run(self, advance: Advance | None) -> tuple[int, int]:
        client, bucket = self._client, self.target.bucket

        def one(key: str) -> int:
            n = len(client.get_object(Bucket=bucket, Key=key)["Body"].read())
            if advance is not None:
                advance(1, n)
            return n

        sizes = list(self._pool.map(one, self.target.keys))
        return len(sizes), sum(sizes)

    def close(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        client = getattr(self, "_client", None)
        if client is not None:
            with contextlib.suppress(Exception):  # noqa: BLE001 - best-effort cleanup
                client.close()


class _S3TorchPeer(_Peer):
    """s3torchconnector: its S3Client (mountpoint-s3 CRT), ``get_object().read()`` on a pool
    of max_in_flight threads; credentials come from AWS_* env vars, set during each call."""

    name = "s3torchconnector"

    def setup(self, target: _Target, max_in_flight: int) -> None:
        super().setup(target, max_in_flight)
        from s3torchconnector._s3client import S3Client, S3ClientConfig

        self._env = target.aws_env()
        with temporary_environ(self._env):
            self._client = S3Client(
                target.region, endpoint=target.endpoint_url,
                s3client_config=S3ClientConfig(force_path_style=target.path_style,
                                               unsigned=target.unsigned),
            )
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_in_flight, thread_name_prefix="bench-s3torch")

    def run(self, advance: Advance | None) -> tuple[int, int]:
        client, bucket = self._client, self.target.bucket

        def one(key: str) -> int:
            n = len(client.get_object(bucket, key).read())
            if advance is not None:
                advance(1, n)
            return n

        with temporary_environ(self._env):
            sizes = list(self._pool.map(one, self.target.keys))
        return len(sizes), sum(sizes)

    def close(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


# s3dlio builds one process-wide S3 client on first use and cannot be re-pointed afterwards.
_s3dlio_bound: tuple[str | None, str | None] | None = None


class _S3dlioPeer(_Peer):
    """s3dlio: its bulk ``get_many_stats(uris, max_in_flight)`` (Rust, tokio), configured
    through AWS_* env vars and ``configure_s3``."""

    name = "s3dlio"

    def setup(self, target: _Target, max_in_flight: int) -> None:
        global _s3dlio_bound
        super().setup(target, max_in_flight)
        if target.unsigned:
            raise RuntimeError("unsigned (anonymous) requests are not supported with s3dlio here")
        binding = (target.endpoint_url, target.access_key_id)
        if _s3dlio_bound is not None and _s3dlio_bound != binding:
            raise RuntimeError(
                "s3dlio keeps one S3 client per process, already bound to "
                f"{_s3dlio_bound[0] or 'AWS'}; run the benchmark in a fresh process")
        self._env = {**target.aws_env(), "AWS_ENDPOINT_URL": target.endpoint_url}
        with temporary_environ(self._env):
            import s3dlio

            s3dlio.configure_s3(endpoint_url=target.endpoint_url, region=target.region)
        self._s3dlio = s3dlio
        _s3dlio_bound = binding

    def run(self, advance: Advance | None) -> tuple[int, int]:
        with temporary_environ(self._env):
            count, nbytes = self._s3dlio.get_many_stats(self.target.uris, self.max_in_flight)
        if advance is not None:
            advance(int(count), int(nbytes))
        return int(count), int(nbytes)


_PEER_CLASSES: dict[str, type[_Peer]] = {
    "obstore": _ObstorePeer, "boto3": _Boto3Peer, "s3torchconnector": _S3TorchPeer,
    "s3dlio": _S3dlioPeer,
}


def _target(client: Client, prefix: ObjectURI, uris: list[str],
            peer_credentials: Mapping[str, Any] | None) -> _Target:
    """How the peers reach the objects: the client's settings, overridden by
    ``peer_credentials``; credentials not given anywhere come from objio's resolver (env,
    profile, SSO, instance metadata). Raises: PermissionError (no credentials)."""
    cfg = client.config
    over = dict(peer_credentials or {})
    unknown = set(over) - {"endpoint_url", "region", "access_key_id", "secret_access_key",
                           "session_token", "unsigned", "path_style"}
    if unknown:
        raise ValueError(f"peer_credentials has unknown keys: {', '.join(sorted(unknown))}")
    unsigned = bool(over.get("unsigned", cfg.unsigned))
    key_id = over.get("access_key_id", cfg.access_key_id)
    secret = over.get("secret_access_key", cfg.secret_access_key)
    token = over.get("session_token", cfg.session_token)
    if not unsigned and not (key_id and secret):
        from .s3.credentials import CredentialProvider

        creds = CredentialProvider(cfg).get()
        if creds is not None:
            key_id, secret, token = creds.access_key_id, creds.secret_access_key, creds.session_token
    return _Target(
        bucket=prefix.bucket,
        keys=[parse_uri(u).key for u in uris],
        uris=uris,
        endpoint_url=over.get("endpoint_url", cfg.endpoint_url),
        region=over.get("region", cfg.region) or "us-east-1",
        access_key_id=key_id,
        secret_access_key=secret,
        session_token=token,
        unsigned=unsigned,
        path_style=bool(over.get("path_style", cfg.path_style)),
    )


# ----------------------------------------------------------------------------------- benchmark
def run_bench(
    client: Client,
    prefix_uri: str | ObjectURI,
    *,
    num: int,
    size: int | str,
    object_type: str = "RAW",
    max_in_flight: int = 64,
    epochs: int = 3,
    compare: bool = False,
    peers: str | Sequence[str] | None = None,
    seed: int = 0,
    keep: bool = False,
    progress: bool = False,
    peer_credentials: Mapping[str, Any] | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run the put + get benchmark (and the peer comparison) and return the report.

    Args:
        client: the objio client to benchmark (its config also tells peers where to go).
        prefix_uri: ``s3://bucket/prefix`` (the bucket must exist); objects are written as
            ``prefix/object_{i}_of_{num}.dat``, overwriting same-named objects.
        num: number of objects (>= 1).
        size: bytes per object (an int or a string such as ``"128KiB"``; NPZ/TFRECORD/HDF5
            objects are at most this size, see :mod:`objio.datagen`).
        object_type: ``RAW``, ``NPZ``, ``TFRECORD`` or ``HDF5`` (case-insensitive).
        max_in_flight: concurrent requests, for objio and every peer.
        epochs: how many times the objects are read back (>= 1).
        compare: also read the objects with the peer libraries, interleaved per epoch.
        peers: peer names (comma string or sequence), default all of :data:`PEERS` (those
            not installed are reported as skipped); used only with ``compare``.
        seed: seed of the synthetic data.
        keep: leave the objects in place (otherwise the ``object_*_of_{num}.dat`` objects under
            the prefix are deleted, also when the benchmark fails).
        progress: show rich progress bars on ``console`` (default: a stderr console).
        peer_credentials: overrides for the peers: any of ``endpoint_url``, ``region``,
            ``access_key_id``, ``secret_access_key``, ``session_token``, ``unsigned``,
            ``path_style``; by default the client's configuration and credentials are used.
        console: where progress bars go.

    Returns:
        ``{"config", "server", "phases": {"put", "get": {"epochs", "summary"}}, "compare",
        "cleanup", "environment"}``; times in seconds, sizes in bytes, latencies in ms,
        throughput in MiB/s (2**20 bytes) and objects/s; ``compare`` maps each tool (objio
        first) to its per-epoch results, medians and ``objio_ratio``, or to
        ``{"status": "skipped", "reason": ...}``.

    Raises:
        ValueError: invalid arguments. FileNotFoundError (bucket missing), PermissionError,
        objio.ObjectStoreError: from objio's own put/get (peer failures are reported instead).
    """
    size_b = parse_size(size, "size")
    for name, v in (("num", num), ("epochs", epochs), ("max_in_flight", max_in_flight)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    from .datagen import normalize_object_type

    otype = normalize_object_type(object_type)
    prefix = parse_uri(prefix_uri)
    peer_names = (parse_peers(peers) or list(PEERS)) if compare else []
    uris = [str(_join(prefix, TEMPLATE.format(i, num))) for i in range(num)]
    cfg = client.config

    report: dict[str, Any] = {
        "config": {
            "uri": str(prefix), "num": num, "size": size_b, "object_type": otype,
            "max_in_flight": max_in_flight, "epochs": epochs, "compare": compare,
            "peers": peer_names, "seed": seed, "keep": keep,
        },
        "server": (cfg.endpoint_url or f"AWS S3 ({cfg.region})") if prefix.scheme == "s3"
        else "local files",
        "phases": {},
        "compare": {},
        "cleanup": {},
        "environment": _environment(),
    }
    if progress and console is None:
        from rich.console import Console

        console = Console(stderr=True)
    ok = False
    try:
        with _Progress(progress, console) as prog:
            _put_phase(client, prefix, report, prog, num=num, size=size_b, otype=otype,
                       max_in_flight=max_in_flight, seed=seed)
            _get_phases(client, prefix, uris, report, prog, epochs=epochs,
                        max_in_flight=max_in_flight, peer_names=peer_names,
                        peer_credentials=peer_credentials)
        ok = True
    finally:
        if keep:
            report["cleanup"] = {"kept": True, "deleted": 0}
        else:
            pattern = str(_join(prefix, TEMPLATE.format("*", num)))
            try:
                report["cleanup"] = {"kept": False, "deleted": client.delete(pattern)}
            except Exception:  # noqa: BLE001 - the benchmark's own error matters more
                if ok:
                    raise
    return report


def _put_phase(client: Client, prefix: ObjectURI, report: dict[str, Any], prog: _Progress, *,
               num: int, size: int, otype: str, max_in_flight: int, seed: int) -> None:
    records: list[RequestRecord] = []
    task = prog.add_task("put", num)
    with prog.track(task, "put", records, _record_weight):
        c0, t0 = _cpu_s(), time.perf_counter()
        client.put(prefix, num=num, template=TEMPLATE, size=size, object_type=otype,
                   max_in_flight=max_in_flight, should_create_bucket=False, seed=seed,
                   observer=records.append)
        wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
    report["phases"]["put"] = _run_stats(len(records), sum(r.nbytes for r in records), wall,
                                         cpu, records, ttfb=False)


def _get_phases(client: Client, prefix: ObjectURI, uris: list[str], report: dict[str, Any],
                prog: _Progress, *, epochs: int, max_in_flight: int, peer_names: list[str],
                peer_credentials: Mapping[str, Any] | None) -> None:
    num = len(uris)
    expected_bytes = report["phases"]["put"]["bytes"]
    compare: dict[str, Any] = report["compare"]
    active: dict[str, _Peer] = {}
    peer_runs: dict[str, list[dict[str, Any]]] = {}
    try:
        if peer_names:
            compare["objio"] = {"status": "ok", "version": __version__}
            target: _Target | None = None
            try:
                if prefix.scheme != "s3":
                    raise ValueError("peers need an s3:// URI")
                target = _target(client, prefix, uris, peer_credentials)
            except Exception as e:  # noqa: BLE001 - reported per peer, never a traceback
                for name in peer_names:
                    compare[name] = {"status": "skipped", "reason": _one_line(e)}
            for name in peer_names if target is not None else []:
                version = _installed_version(_PIP_NAMES[name])
                if not _is_installed(name):
                    compare[name] = {"status": "skipped",
                                     "reason": f"not installed (pip install {_PIP_NAMES[name]})"}
                    continue
                peer = _PEER_CLASSES[name]()
                try:
                    peer.setup(target, max_in_flight)  # type: ignore[arg-type]
                except Exception as e:  # noqa: BLE001 - reported, never a traceback
                    peer.close()
                    compare[name] = {"status": "skipped", "version": version,
                                     "reason": f"setup failed: {_one_line(e)}"}
                    continue
                active[name] = peer
                peer_runs[name] = []
                compare[name] = {"status": "ok", "version": version}

        task = prog.add_task("get", num * epochs * (1 + len(active)))
        epoch_stats: list[dict[str, Any]] = []
        all_records: list[RequestRecord] = []
        def run_objio(epoch: int) -> None:
            records: list[RequestRecord] = []
            with prog.track(task, f"get {epoch}/{epochs} objio", records, _record_weight):
                c0, t0 = _cpu_s(), time.perf_counter()
                count, nbytes = client.get_many_stats(uris, max_in_flight=max_in_flight,
                                                      observer=records.append)
                wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
            stats = _run_stats(count, nbytes, wall, cpu, records)
            stats["epoch"] = epoch
            epoch_stats.append(stats)
            all_records.extend(records)

        def run_peer(name: str, epoch: int) -> None:
            try:
                pcount, pbytes, wall, cpu = _timed_peer_run(
                    active[name], prog, task, f"get {epoch}/{epochs} {name}")
                if (pcount, pbytes) != (num, expected_bytes):
                    raise RuntimeError(f"read {pcount} objects / {pbytes} bytes, expected "
                                       f"{num} / {expected_bytes}")
            except Exception as e:  # noqa: BLE001 - reported, never a traceback
                active.pop(name).close()
                compare[name] = {"status": "skipped", "version": compare[name].get("version"),
                                 "reason": f"failed in epoch {epoch}: {_one_line(e)}"}
                return
            ps = _run_stats(pcount, pbytes, wall, cpu)
            ps["epoch"] = epoch
            peer_runs[name].append(ps)

        for epoch in range(1, epochs + 1):
            # Rotate who goes first each epoch: no tool always runs right after the put phase
            # (server still busy) or always right after a given peer.
            order = ["objio", *active]
            shift = (epoch - 1) % len(order)
            for name in order[shift:] + order[:shift]:
                if name == "objio":
                    run_objio(epoch)
                elif name in active:
                    run_peer(name, epoch)
        prog.finish(task)
    finally:
        for peer in active.values():
            peer.close()

    summary = _summary(epoch_stats)
    summary["latency_ms"] = {
        "ttfb": _percentiles_ms([r.ttfb_s for r in all_records]),
        "total": _percentiles_ms([r.total_s for r in all_records]),
    }
    report["phases"]["get"] = {"epochs": epoch_stats, "summary": summary}
    if peer_names:
        compare["objio"].update(_summary(epoch_stats), epochs=_strip_latency(epoch_stats))
        compare["objio"]["objio_ratio"] = 1.0
        objio_mibs = compare["objio"]["mib_per_s"]
        for name, runs in peer_runs.items():
            if compare[name]["status"] != "ok":
                continue
            compare[name].update(_summary(runs), epochs=runs)
            peer_mibs = compare[name]["mib_per_s"]
            compare[name]["objio_ratio"] = (objio_mibs / peer_mibs
                                            if objio_mibs and peer_mibs else None)


def _timed_peer_run(peer: _Peer, prog: _Progress, task: TaskID | None,
                    description: str) -> tuple[int, int, float, float]:
    """One timed run of a peer: (objects, bytes, wall seconds, CPU seconds)."""
    done: list[tuple[int, int]] = []
    advance: Advance | None = (lambda c, b: done.append((c, b))) if prog.enabled else None
    with prog.track(task, description, done, _pair_weight):
        c0, t0 = _cpu_s(), time.perf_counter()
        count, nbytes = peer.run(advance)
        wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
    return count, nbytes, wall, cpu


def _strip_latency(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "latency_ms"} for r in runs]


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over runs, and medians over runs of the rates and of the CPU per object/MiB."""
    objects = sum(r["objects"] for r in runs)
    nbytes = sum(r["bytes"] for r in runs)
    wall = sum(r["wall_s"] for r in runs)
    cpu = sum(r["cpu_s"] for r in runs)
    return {
        "runs": len(runs),
        "objects": objects,
        "bytes": nbytes,
        "wall_s": wall,
        "cpu_s": cpu,
        "mib_per_s": _median([r["mib_per_s"] for r in runs]),
        "objects_per_s": _median([r["objects_per_s"] for r in runs]),
        "cpu_ms_per_object": _median([r["cpu_ms_per_object"] for r in runs]),
        "cpu_ms_per_mib": _median([r["cpu_ms_per_mib"] for r in runs]),
    }


# ----------------------------------------------------------------------------------- output
def _f(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _lat(p: Mapping[str, float] | None) -> str:
    if not p:
        return "-"
    return f"{p['p50']:.2f} / {p['p90']:.2f} / {p['p99']:.2f}"


def print_report(report: Mapping[str, Any], console: Console | None = None) -> None:
    """Render a :func:`run_bench` report as rich tables (plain text when not a terminal)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
    cfg = report["config"]
    console.print(
        f"objio bench: {cfg['num']} x {format_size(cfg['size'])} {cfg['object_type']} objects "
        f"under {cfg['uri']} ({report['server']}), max_in_flight {cfg['max_in_flight']}, "
        f"{cfg['epochs']} get epoch(s)", highlight=False)

    table = Table(title="phases", box=box.SIMPLE_HEAD, title_justify="left")
    for col, just in (("phase", "left"), ("objects", "right"), ("data", "right"),
                      ("wall s", "right"), ("MiB/s", "right"), ("obj/s", "right"),
                      ("TTFB ms p50/p90/p99", "right"), ("total ms p50/p90/p99", "right"),
                      ("CPU s", "right"), ("CPU ms/obj", "right"), ("CPU ms/MiB", "right")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]

    def row(label: str, s: Mapping[str, Any], *, end_section: bool = False) -> None:
        lat = s.get("latency_ms") or {}
        table.add_row(label, str(s["objects"]), format_size(s["bytes"]), _f(s["wall_s"], ".3f"),
                      _f(s["mib_per_s"], ".1f"), _f(s["objects_per_s"], ".0f"),
                      _lat(lat.get("ttfb")), _lat(lat.get("total")), _f(s["cpu_s"], ".3f"),
                      _f(s["cpu_ms_per_object"], ".3f"), _f(s["cpu_ms_per_mib"], ".2f"),
                      end_section=end_section)

    phases = report["phases"]
    if "put" in phases:
        row("put", phases["put"], end_section=True)
    get = phases.get("get")
    if get:
        for s in get["epochs"]:
            row(f"get epoch {s['epoch']}", s)
        row("get (all epochs)", get["summary"])
    console.print(table)
    if get:
        console.print("  get (all epochs): objects, data, wall s and CPU s are totals; MiB/s, obj/s "
                      "and CPU per obj/MiB are medians over epochs; latencies are pooled.",
                      highlight=False)

    compare = report.get("compare") or {}
    if compare:
        ct = Table(title="compare (median over epochs, same objects, interleaved)",
                   box=box.SIMPLE_HEAD, title_justify="left")
        for col in ("tool", "MiB/s", "obj/s", "CPU ms/GET", "CPU ms/MiB", "objio/tool"):
            ct.add_column(col, justify="left" if col == "tool" else "right")
        skipped: list[tuple[str, str]] = []
        for name, r in compare.items():
            if r.get("status") != "ok":
                skipped.append((name, r.get("reason", "")))
                continue
            ratio = r.get("objio_ratio")
            ct.add_row(name, _f(r.get("mib_per_s"), ".1f"), _f(r.get("objects_per_s"), ".0f"),
                       _f(r.get("cpu_ms_per_object"), ".3f"), _f(r.get("cpu_ms_per_mib"), ".2f"),
                       "-" if ratio is None else f"{ratio:.2f}x")
        console.print(ct)
        for name, reason in skipped:
            console.print(f"  {name}: skipped: {reason}", highlight=False, markup=False)
    cleanup = report.get("cleanup") or {}
    if cleanup.get("kept"):
        note = " (until the embedded server stops)" if report["server"] == "embedded" else ""
        console.print(f"objects kept under {cfg['uri']}{note}", highlight=False)
    elif "deleted" in cleanup:
        console.print(f"deleted {cleanup['deleted']} objects", highlight=False)


# ----------------------------------------------------------------------------------- CLI
def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``objio bench`` arguments to ``parser`` (a subcommand parser); returns it."""
    parser.description = (
        "DLIO-style benchmark: write NUM synthetic objects of SIZE bytes, read them back "
        "EPOCHS times, and report MiB/s, objects/s, latency percentiles and client CPU. "
        "Without URI, an embedded SeaweedFS S3 server is started on loopback.")
    parser.add_argument("uri", nargs="?", default=None,
                        help="s3://bucket/prefix to benchmark (the bucket must exist); "
                             "default: an embedded local server, s3://objio-bench/bench/")
    parser.add_argument("--num", type=int, default=None, help="number of objects (default 64)")
    parser.add_argument("--size", default=None,
                        help="bytes per object, e.g. 128KiB, 16MiB (default 1MiB)")
    parser.add_argument("--object-type", default="RAW", metavar="TYPE",
                        help="RAW (default), NPZ, TFRECORD or HDF5 (case-insensitive)")
    parser.add_argument("--max-in-flight", type=int, default=64,
                        help="concurrent requests, for objio and every peer (default 64)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="how many times the objects are read back (default 3)")
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="write the full report as JSON to FILE ('-' = stdout)")
    parser.add_argument("--keep", action="store_true",
                        help="do not delete the objects afterwards")
    parser.add_argument("--compare", action="store_true",
                        help="also read the objects with peer libraries, interleaved per epoch")
    parser.add_argument("--peers", default=None, metavar="LIST",
                        help=f"comma list of peers for --compare (implies it); default all: "
                             f"{','.join(PEERS)}")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def start_embedded() -> tuple[Any, Client]:
    """Start the embedded LocalS3Server and return it with a Client whose bucket
    ``objio-bench`` exists. Raises OSError (with the server's reason) if it cannot start."""
    from .server import LocalS3Server

    server = LocalS3Server()
    try:
        server.start()
    except RuntimeError as e:
        raise OSError(f"could not start the embedded S3 server: {_one_line(e)}") from None
    client = Client(server.config)
    client.create_bucket(f"s3://{DEFAULT_BUCKET}", exist_ok=True)
    return server, client


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``objio bench`` from parsed arguments; returns the process exit code (0 success,
    1 error with a one-line message on stderr, 130 interrupted)."""
    from rich.console import Console

    server: Any = None
    try:
        # None = not given (the training emulation, sharing this parser, has other defaults)
        args.num = 64 if args.num is None else args.num
        args.epochs = 3 if args.epochs is None else args.epochs
        size = parse_size("1MiB" if args.size is None else args.size, "--size")
        from .datagen import normalize_object_type

        otype = normalize_object_type(args.object_type)
        peers = parse_peers(args.peers)
        compare = bool(args.compare) or peers is not None
        for flag, v in (("--num", args.num), ("--epochs", args.epochs),
                        ("--max-in-flight", args.max_in_flight)):
            if v < 1:
                raise ValueError(f"{flag} must be >= 1, got {v}")
        json_to_stdout = args.json == "-"
        err_console = Console(stderr=True)
        progress = not args.no_progress and err_console.is_terminal

        if args.uri is None:
            server, client = start_embedded()
            prefix = f"s3://{DEFAULT_BUCKET}/{DEFAULT_PREFIX}"
        else:
            from .cli import client_from_args

            client = client_from_args(args)
            prefix = args.uri
            if parse_uri(prefix).scheme != "s3":
                raise ValueError(f"objio bench needs an s3://bucket/prefix URI, got {prefix!r}")

        report = run_bench(client, prefix, num=args.num, size=size, object_type=otype,
                           max_in_flight=args.max_in_flight, epochs=args.epochs, compare=compare,
                           peers=peers, seed=args.seed, keep=args.keep, progress=progress,
                           console=err_console)
        if server is not None:
            report["server"] = "embedded"

        out = err_console if json_to_stdout else Console()
        if not out.is_terminal:
            out.width = max(out.width, 200)  # pipes default to 80 columns: keep rows whole
        print_report(report, out)
        if args.json:
            text = json.dumps(report, indent=2)
            if json_to_stdout:
                sys.stdout.write(text + "\n")
                sys.stdout.flush()
            else:
                with open(args.json, "w", encoding="utf-8") as fh:
                    fh.write(text + "\n")
        return 0
    except KeyboardInterrupt:
        print("objio bench: interrupted", file=sys.stderr)
        return 130
    except (ObjectStoreError, OSError, ValueError) as e:
        kind = ("not found: " if isinstance(e, FileNotFoundError)
                else "access denied: " if isinstance(e, PermissionError) else "")
        print(f"objio bench: error: {kind}{_one_line(e)}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m objio.bench [options]``: the ``objio bench`` command on its own, with the
    global ``--endpoint-url``, ``--region``, ``--profile`` and ``--no-sign-request`` options."""
    from .cli import add_global_flags

    parser = argparse.ArgumentParser(prog="python -m objio.bench")
    add_global_flags(parser)
    configure_parser(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
