"""``ModelConnector``: the OSS Model Connector's API (``shared/reference``) on objio's engine.

The reference (``OssModelConnector``) offers ``list`` (with FastList), ``open`` with prefetch in
open order, and ``read`` / ``readinto`` / ``seek`` on the opened objects, for loading sharded
model weights. objio keeps the names and the signatures, serves ``s3://``, ``oss://`` (the
S3 API of the connector's endpoint, e.g. OSS's S3-compatible endpoint) and ``file://`` URIs,
and makes the behaviour precise: see :mod:`objio.model.prefetch` for the prefetch order and
the memory bound.
"""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Mapping
from typing import Any

from .. import engine
from ..api import Client
from ..backend import ObjectInfo
from ..config import ClientConfig, GiB, KiB, MiB, parse_size
from ..manifest import Manifest, read_manifest
from ..uri import ObjectURI, parse_uri
from .prefetch import PrefetchedObject, Prefetcher

URI_SCHEMES = ("s3", "oss", "gs", "file")
"""What :meth:`ModelConnector.open` and :meth:`ModelConnector.list` accept (``oss://`` is the
S3 API of the connector's endpoint; ``gs://`` is Google Cloud Storage, configured by the
``gcs_*`` fields of the connector's ClientConfig or ``STORAGE_EMULATOR_HOST``)."""

DEFAULT_MAX_IN_FLIGHT = 32
"""Prefetch requests in flight at once by default."""

DEFAULT_DEMAND_WINDOW = 4
"""Chunks fetched at once by a read of bytes not prefetched yet, by default."""

_MAX_DEFAULT_MEMORY = 4 * GiB

# config_path keys: name -> (description, parser)
CONFIG_KEYS: dict[str, str] = {
    "endpoint": "S3 endpoint URL (https:// is added when the scheme is missing), as the "
                "endpoint argument",
    "region": "region of the endpoint (default: the environment's, else us-east-1)",
    "force_path_style": "true for path-style requests (endpoint/bucket/key)",
    "profile": "profile of ~/.aws/config for the credentials",
    "unsigned": "true for anonymous requests",
    "max_attempts": "requests per operation, retries included (integer >= 1)",
    "connect_timeout_s": "seconds to connect (> 0)",
    "read_timeout_s": "seconds without receiving a byte (> 0)",
    "prefetch_memory": "bytes of prefetched, unconsumed data at most (an integer or a size "
                       "such as \"4GiB\"; default min(4 GiB, RAM / 4))",
    "max_in_flight": f"prefetch and FastList requests in flight (default {DEFAULT_MAX_IN_FLIGHT})",
    "chunk_size": "bytes per ranged GET of the prefetcher (default: the client's part_size, "
                  "8 MiB, at most prefetch_memory / 8, at least 256 KiB)",
    "demand_window": "chunks fetched at once when a read needs bytes not prefetched yet "
                     f"(default {DEFAULT_DEMAND_WINDOW})",
    "manifest": "a manifest file (objio ls --manifest) that list() answers from and open() "
                "takes sizes from, instead of listing and HEAD requests",
}
"""Every key a ``config_path`` JSON file may hold, with what it means. Any other key is a
ValueError naming it."""


def default_prefetch_memory() -> int:
    """The smaller of 4 GiB and a quarter of the machine's RAM (bytes)."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return _MAX_DEFAULT_MEMORY
    return max(64 * MiB, min(_MAX_DEFAULT_MEMORY, ram // 4))


_KEY_NAMES = (("access_key_id", "access_key", "AccessKeyId", "aws_access_key_id"),
              ("access_key_secret", "secret_access_key", "secret_key", "SecretAccessKey",
               "aws_secret_access_key"),
              ("security_token", "session_token", "token", "SessionToken", "aws_session_token"))


def credentials_from_provider(provider: Any) -> tuple[str, str, str | None]:
    """``(access key id, secret, security token or None)`` from ``provider.get_credentials()``:
    an object or mapping with oss2's names (``access_key_id``, ``access_key_secret``,
    ``security_token``), botocore's (``access_key``, ``secret_key``, ``token``) or the AWS
    ones (``AccessKeyId``/``SecretAccessKey``/``SessionToken``, ``aws_access_key_id``...).

    Raises: TypeError (no ``get_credentials``, or neither set of names found)."""
    get = getattr(provider, "get_credentials", None)
    if not callable(get):
        raise TypeError(f"cred_provider must have a get_credentials() method (oss2 or botocore "
                        f"style), got {type(provider).__name__}")
    creds = get()
    if hasattr(creds, "get_frozen_credentials"):  # botocore refreshable credentials
        creds = creds.get_frozen_credentials()

    def field(names: tuple[str, ...]) -> Any:
        for n in names:
            v = creds.get(n) if isinstance(creds, Mapping) else getattr(creds, n, None)
            if v:
                return v
        return None

    key_id, secret, token = (field(n) for n in _KEY_NAMES)
    if not (isinstance(key_id, str) and isinstance(secret, str)):
        raise TypeError("cred_provider.get_credentials() must return an access key id and "
                        "secret as access_key_id/access_key_secret (oss2) or "
                        "access_key/secret_key (botocore)")
    return key_id, secret, token if isinstance(token, str) else None


def _endpoint_url(endpoint: str) -> str:
    if not isinstance(endpoint, str) or not endpoint:
        raise ValueError(f"endpoint must be a URL or a host name, got {endpoint!r}")
    return endpoint if endpoint.startswith(("http://", "https://")) else "https://" + endpoint


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings of a connector JSON file (keys in :data:`CONFIG_KEYS`).

    Raises: FileNotFoundError, ValueError (not a JSON object; an unknown key, named with the
    allowed ones)."""
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except (json.JSONDecodeError, RecursionError) as e:  # (RecursionError: nested too deeply)
            raise ValueError(f"config_path {os.fspath(path)!r} is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"config_path {os.fspath(path)!r} must hold a JSON object")
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"config_path {os.fspath(path)!r}: unknown key(s) "
                         f"{', '.join(map(repr, unknown))}; allowed: {', '.join(CONFIG_KEYS)}")
    return data


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


class ModelConnector:
    """Read-only access to model weights in object storage with prefetch in open order (the
    OSS Model Connector's API; also importable as ``objio.model.OssModelConnector``).

    Args:
        endpoint: the S3 endpoint (``http(s)://host[:port]``; a bare host name gets
            ``https://``). Default: the configuration's (env ``AWS_ENDPOINT_URL`` ...).
        cred_provider: any object whose ``get_credentials()`` returns an access key id, a
            secret and optionally a security token, with oss2's names (``access_key_id``,
            ``access_key_secret``, ``security_token``, e.g. oss2's
            ``EnvironmentVariableCredentialsProvider``) or AWS's (``access_key``,
            ``secret_key``, ``token``, e.g. a botocore session); called once, now. Default:
            objio's credential chain.
        config_path: a JSON file of connector settings (every key in :data:`CONFIG_KEYS`;
            another key is a ValueError naming it).
        config: an :class:`objio.ClientConfig` to start from (the process default when None).
        prefetch_memory: bytes of prefetched data not yet read, at most (an int or a size
            string such as ``"2GiB"``); default the smaller of 4 GiB and a quarter of RAM.
        max_in_flight: prefetch (and FastList) requests at once, default 32.
        manifest: a manifest file (``objio ls --manifest FILE URI``, :mod:`objio.manifest`),
            checked whole now: :meth:`list` of a prefix it holds answers from it (no
            request), and :meth:`open` of an object in it knows its size (no HEAD request
            before its first chunk). A :meth:`list` outside it is a ValueError.

    Precedence: these arguments > ``config_path`` > ``config`` > environment > defaults.

    A connector and the objects it opened belong to the process that made them (their
    prefetch state lives on that process's engine loop): make one per process, e.g. in each
    DataLoader worker. Opening and reading from several threads is safe; one opened object
    is not thread-safe (like a file).

    Raises:
        ValueError: a bad setting (named), a manifest that is not whole.
        TypeError: a ``cred_provider`` without usable credentials.
        FileNotFoundError: ``config_path`` or the manifest missing.
        ImportError: the manifest's format needs pyarrow or zstandard.
    """

    def __init__(self, endpoint: str | None = None, cred_provider: Any = None,
                 config_path: str | os.PathLike[str] | None = None, *,
                 config: ClientConfig | None = None, prefetch_memory: int | str | None = None,
                 max_in_flight: int | None = None,
                 manifest: str | os.PathLike[str] | None = None) -> None:
        settings = load_config_file(config_path) if config_path is not None else {}
        if manifest is not None:
            settings["manifest"] = manifest
        if endpoint is not None:
            settings["endpoint"] = endpoint
        if prefetch_memory is not None:
            settings["prefetch_memory"] = prefetch_memory
        if max_in_flight is not None:
            settings["max_in_flight"] = max_in_flight
        overrides: dict[str, Any] = {}
        if "endpoint" in settings:
            overrides["endpoint_url"] = _endpoint_url(settings["endpoint"])
        for name in ("region", "force_path_style", "profile", "unsigned", "max_attempts",
                     "connect_timeout_s", "read_timeout_s"):
            if name in settings:
                overrides[name] = settings[name]
        if cred_provider is not None:
            key_id, secret, token = credentials_from_provider(cred_provider)
            overrides.update(access_key_id=key_id, secret_access_key=secret,
                             session_token=token)
        base = config if config is not None else ClientConfig()
        self._client = Client(base, **overrides)
        mem = settings.get("prefetch_memory")
        self.prefetch_memory = (default_prefetch_memory() if mem is None
                                else parse_size(mem, "prefetch_memory"))
        if self.prefetch_memory < 1:
            raise ValueError(f"prefetch_memory must be at least 1 byte, got {mem!r}")
        self.max_in_flight = _positive_int("max_in_flight",
                                           settings.get("max_in_flight", DEFAULT_MAX_IN_FLIGHT))
        cfg = self._client.config
        if "chunk_size" in settings:
            chunk = parse_size(settings["chunk_size"], "chunk_size")
            if chunk < 1:
                raise ValueError("chunk_size must be at least 1 byte")
        else:
            chunk = max(256 * KiB, min(cfg.part_size or 8 * MiB, self.prefetch_memory // 8))
        self.chunk_size = chunk
        self.demand_window = _positive_int("demand_window",
                                           settings.get("demand_window", DEFAULT_DEMAND_WINDOW))
        self._prefetcher = Prefetcher(self.prefetch_memory, chunk, self.max_in_flight,
                                      self.demand_window, cfg.max_attempts or 1, cfg)
        self._lock = threading.Lock()
        self._manifest: Manifest | None = None
        self._sizes: dict[str, int] | None = None  # key -> size of the manifest's objects
        if settings.get("manifest") is not None:
            path = settings["manifest"]
            if not isinstance(path, (str, os.PathLike)):
                raise ValueError(f"manifest must be a file path, got {path!r}")
            self._manifest = read_manifest(path)

    def __repr__(self) -> str:
        return (f"ModelConnector(endpoint={self._client.config.endpoint_url!r}, "
                f"prefetch_memory={self.prefetch_memory}, max_in_flight={self.max_in_flight})")

    @property
    def client(self) -> Client:
        """The :class:`objio.Client` the connector reads with."""
        return self._client

    @property
    def config(self) -> ClientConfig:
        return self._client.config

    # ------------------------------------------------------------------------ list
    def list(self, bucket: str, prefix: str = "", fast: bool = False) -> list[ObjectInfo]:
        """Objects under ``prefix`` of ``bucket`` (or under a URI given as ``bucket``:
        ``list("s3://bucket/prefix")``), as :class:`objio.ObjectInfo` (``.key``, ``.size`` in
        bytes, ``.last_modified``, ``.etag``). ``fast=True`` is FastList (concurrent requests
        over disjoint key ranges; the reference leaves its order open, objio returns the same
        order as the sequential listing). With the connector's ``manifest``, the objects come
        from it (no request).

        Raises:
            ValueError: a bad bucket name or URI; with a manifest, a prefix it does not hold.
            FileNotFoundError: no such bucket.
            PermissionError: access denied.
        """
        if "://" in bucket:
            obj = self._parse(bucket)
            if prefix:
                obj = obj.with_key(obj.key + prefix)
        else:
            obj = self._parse(f"s3://{bucket}/{prefix}")
        if self._manifest is not None:
            return [o for page in self._manifest.pages(obj) for o in page.objects]
        return engine.run(self._client._list_info(obj, fast=bool(fast)))

    # ------------------------------------------------------------------------ open
    def open(self, uri: str, binary: bool = True) -> Any:
        """Open an object for reading and queue it for prefetch (in the order of the
        ``open`` calls; see :mod:`objio.model.prefetch`).

        Args:
            uri: ``oss://bucket/key`` or ``s3://bucket/key`` (the S3 API of the connector's
                endpoint), or ``file:///path``.
            binary: True (default) for a binary file (:class:`PrefetchedObject`: ``read``,
                ``readinto``, ``seek``, ``tell``, ``readline``, ``close``), False for text
                (:class:`io.TextIOWrapper`, UTF-8: ``read``, ``readline``, line iteration).

        No request is made before the prefetcher reaches the object; a missing object raises
        FileNotFoundError on the first read (not here).

        Raises:
            ValueError: a bad URI, a bucket without a key.
        """
        obj = self._parse(uri)
        f = PrefetchedObject(obj, self._prefetcher, client=self._client,
                             size=self._manifest_size(obj))
        if binary:
            return f
        return io.TextIOWrapper(f, encoding="utf-8")

    def stats(self) -> dict[str, Any]:
        """Prefetch counters: ``prefetch_memory``, ``chunk_size``, ``prefetched_bytes`` (held
        or in flight, not consumed), ``peak_prefetched_bytes``, ``demand_bytes``, ``requests``,
        ``demand_requests``, ``queued_objects``, ``completed`` (URIs in completion order)."""
        return self._prefetcher.stats()

    def close(self) -> None:
        """Stop prefetching: every object opened through this connector is closed (its
        prefetched bytes released, its requests cancelled). Idempotent."""
        self._prefetcher.close_all()

    def __enter__(self) -> ModelConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _manifest_size(self, obj: ObjectURI) -> int | None:
        """The size the manifest gives ``obj`` (None: no manifest, or not in it)."""
        m = self._manifest
        if m is None:
            return None
        loc = m.location
        if (obj.scheme, obj.bucket) != (loc.scheme, loc.bucket):
            return None
        with self._lock:
            if self._sizes is None:
                self._sizes = m.sizes()
            return self._sizes.get(obj.key)

    def _parse(self, uri: Any) -> ObjectURI:
        obj = parse_uri(uri, s3_aliases=("oss",))
        return obj


OssModelConnector = ModelConnector
"""The reference's name, for drop-in use."""
