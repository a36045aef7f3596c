"""Fork-safety: objio used in the parent, then in children under fork, spawn and forkserver;
and sync calls release the GIL."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from typing import Any

import pytest

import objio
from objio.config import ClientConfig


def _child(config: ClientConfig, uris: list[str], q: Any) -> None:
    c = objio.Client(config)
    pairs = c.get_many(uris, max_in_flight=4)
    q.put([bytes(d) for _, d in pairs])


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_children_after_parent_use(method: str, client: objio.Client, prefix: str) -> None:
    uris = [f"{prefix}k{i}" for i in range(8)]
    client.put_many([(u, f"value-{i}".encode() * 100) for i, u in enumerate(uris)])
    # the parent uses objio (engine loop, session, pooled connections) before forking
    assert client.get_many_stats(uris) == (8, sum(len(f"value-{i}") * 100 for i in range(8)))
    ctx = mp.get_context(method)
    q = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(client.config, uris, q)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    for r in results:
        assert r == [f"value-{i}".encode() * 100 for i in range(8)]
    # and the parent still works afterwards
    assert client.get_many_stats(uris)[0] == 8


def _pool_task(args: tuple[ClientConfig, str]) -> int:
    return len(objio.Client(args[0]).get(args[1]))


def test_fork_pool_many_tasks(client: objio.Client, prefix: str) -> None:
    client.put_bytes(prefix + "x", b"z" * 1000)
    client.get(prefix + "x")
    with mp.get_context("fork").Pool(2) as pool:
        assert pool.map(_pool_task, [(client.config, prefix + "x")] * 16) == [1000] * 16


def test_sync_call_releases_the_gil(client: objio.Client, prefix: str) -> None:
    """Another Python thread makes progress while a sync GET waits on the network."""
    client.put(prefix, num=16, size=2 * 1024 * 1024, max_in_flight=4)
    uris = [f"s3://objio-test/{k}" for k in client.list(prefix)] * 4
    counter = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal counter
        while not stop.is_set():
            counter += 1

    t = threading.Thread(target=spin)
    t.start()
    time.sleep(0.05)
    before = counter
    client.get_many_stats(uris, max_in_flight=2)
    during = counter - before
    stop.set()
    t.join()
    assert during > 1000
