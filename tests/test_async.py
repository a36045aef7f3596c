"""Async twins are real awaitables on the caller's loop and never block it."""

from __future__ import annotations

import asyncio

import pytest

import objio
from conftest import Store, bucket_root

pytestmark = pytest.mark.backends("s3", "az", "gs")


@pytest.fixture
def client(store: Store) -> objio.Client:
    """The store's client: tests taking ``client`` / ``prefix`` run on s3:// and az://."""
    return store.client



async def test_async_twins_roundtrip(client: objio.Client, prefix: str) -> None:
    await client.put_bytes_async(prefix + "a", b"async-bytes")
    await client.put_async(prefix + "gen/", num=3, size=1000)
    assert bytes(await client.get_async(prefix + "a")) == b"async-bytes"
    assert bytes(await client.get_range_async(prefix + "a", 6, 5)) == b"bytes"
    keys = await client.list_async(prefix + "gen/")
    assert len(keys) == 3
    uris = [bucket_root(prefix) + k for k in keys]
    pairs = await client.get_many_async(uris, max_in_flight=2)
    assert [u for u, _ in pairs] == uris and all(len(d) == 1000 for _, d in pairs)
    assert await client.get_many_stats_async(uris) == (3, 3000)
    assert (await client.stat_async(prefix + "a")).size == 11
    assert await client.exists_async(prefix + "a")
    assert await client.delete_async(prefix + "gen/") == 3
    assert await client.list_async(prefix + "gen/") == []
    with pytest.raises(FileNotFoundError):
        await client.get_async(prefix + "missing")


async def test_async_does_not_block_the_callers_loop(client: objio.Client, prefix: str) -> None:
    await client.put_async(prefix, num=40, size=256 * 1024, max_in_flight=8)
    uris = [bucket_root(prefix) + k for k in await client.list_async(prefix)]
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    t = asyncio.create_task(ticker())
    for _ in range(3):
        await client.get_many_stats_async(uris, max_in_flight=4)
    done.set()
    await t
    assert ticks > 3  # the caller's loop kept running while objio worked


async def test_cancelling_the_awaiting_task(client: objio.Client, prefix: str) -> None:
    await client.put_async(prefix, num=20, size=512 * 1024)
    uris = [bucket_root(prefix) + k for k in await client.list_async(prefix)] * 20
    task = asyncio.create_task(client.get_many_stats_async(uris, max_in_flight=2))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # the engine is still healthy afterwards
    assert (await client.get_many_stats_async(uris[:2]))[0] == 2
