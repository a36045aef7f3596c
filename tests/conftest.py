"""Shared fixtures: one real LocalS3Server (SeaweedFS, SigV4 on) for the whole session."""

from __future__ import annotations

import os

# Every new receive buffer starts filled with 0xDB (objio._buffers): a slice the receive path
# failed to write shows up in any test that compares data. Set before objio is imported.
os.environ.setdefault("OBJIO_POISON_BUFFERS", "1")

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import objio
from objio.server import LocalS3Server

BUCKET = "objio-test"


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
def client(s3_server: LocalS3Server) -> objio.Client:
    c = objio.Client(s3_server.config)
    c.create_bucket(f"s3://{BUCKET}", exist_ok=True)
    return c


@pytest.fixture
def prefix(client: objio.Client, request: pytest.FixtureRequest) -> str:
    """A fresh ``s3://objio-test/<test>-<random>/`` prefix for one test."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[:60]
    return f"s3://{BUCKET}/{name}-{uuid.uuid4().hex[:8]}/"


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
