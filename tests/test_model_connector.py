"""objio.ModelConnector (the OSS Model Connector's API) against the real server: every byte
read equals the object, prefetch follows the open order within its memory budget (also
measured as peak RSS in a subprocess), early close and garbage collection free memory, and a
read of the last object while earlier unread ones hold the budget does not deadlock."""

from __future__ import annotations

import gc
import io
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import objio
from objio.model import ModelConnector, OssModelConnector
from objio.server import LocalS3Server

KiB = 1024
MiB = 1024 * KiB
CHUNK = 64 * KiB

pytestmark = pytest.mark.backends("s3", "az", "gs")


@pytest.fixture
def client(store: Any) -> objio.Client:
    """The store's client: tests taking ``client`` / ``prefix`` run on s3:// and az://."""
    return store.client


def _data(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).bytes(n)


def _connector(server: Any, tmp_path: Path, **settings: Any) -> ModelConnector:
    path = tmp_path / f"connector-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps({"chunk_size": CHUNK, **settings}))
    return ModelConnector(config=server.config, config_path=path)


def _wait(cond: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


SIZES = [0, 1, 1000, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 777]


@pytest.fixture
def objects(client: objio.Client, prefix: str) -> dict[str, bytes]:
    items = {f"{prefix}obj-{i}": _data(n, i) for i, n in enumerate(SIZES)}
    client.put_many(list(items.items()))
    return items


def test_every_byte_equals_the_object(store: Any, tmp_path: Path,
                                      objects: dict[str, bytes]) -> None:
    mc = _connector(store, tmp_path, prefetch_memory=2 * CHUNK)
    files = [mc.open(u) for u in objects]  # open all, then read (the reference's example)
    for f, data in zip(files, objects.values(), strict=True):
        assert f.read() == data
        assert f.read() == b"" and f.tell() == len(data) == f.size
    buf = bytearray(10_000)
    for u, data in objects.items():  # readinto in pieces, read(n), seek back, whence 2
        with mc.open(u) as f:
            got = bytearray()
            while n := f.readinto(buf):
                got += buf[:n]
            assert got == data
            f.seek(0)
            assert f.read(7) + f.read(CHUNK) + f.read() == data
            if data:
                f.seek(-min(len(data), 5), 2)
                assert f.read() == data[-5:]
                f.seek(len(data) // 2)
                assert f.read1(100) == data[len(data) // 2: len(data) // 2 + 100]
            f.seek(len(data) + 10)
            assert f.read() == b""
    assert mc.stats()["peak_prefetched_bytes"] <= 2 * CHUNK


def test_seek_back_to_released_bytes_fetches_them_again(store: Any,
                                                        tmp_path: Path,
                                                        objects: dict[str, bytes]) -> None:
    mc = _connector(store, tmp_path, prefetch_memory=4 * CHUNK)
    uri = list(objects)[-1]
    data = objects[uri]
    with mc.open(uri) as f:
        assert f.read() == data
        before = mc.stats()["demand_requests"]
        f.seek(10)
        assert f.read(CHUNK) == data[10: 10 + CHUNK]
        assert mc.stats()["demand_requests"] > before  # released: fetched again


def test_text_mode_lines_and_oss_and_file_uris(s3_server: LocalS3Server, tmp_path: Path,
                                               client: objio.Client, prefix: str) -> None:
    text = "".join(f"line {i} é\n" for i in range(20_000)) + "last"
    client.put_bytes(prefix + "t.txt", text.encode())
    mc = _connector(s3_server, tmp_path)
    oss = prefix.replace("s3://", "oss://", 1) + "t.txt"
    with mc.open(oss, False) as t:
        assert t.readline() == "line 0 é\n"
        rest = list(t)
    assert "line 0 é\n" + "".join(rest) == text and rest[-1] == "last"
    with mc.open(prefix + "t.txt", binary=False) as t:
        assert t.read() == text
    local = tmp_path / "weights.bin"
    local.write_bytes(_data(5 * CHUNK + 3, 9))
    with mc.open(local.as_uri()) as f:
        assert f.read() == local.read_bytes()
    with pytest.raises(ValueError, match="oss://"):
        mc.open("hdfs://bucket/key")
    with pytest.raises(ValueError, match="object key"):
        mc.open(prefix.split("/")[0] + "//objio-test")


def test_missing_object_raises_on_read(store: Any, tmp_path: Path,
                                       prefix: str) -> None:
    mc = _connector(store, tmp_path)
    f = mc.open(prefix + "missing")
    with pytest.raises(FileNotFoundError):
        f.read()


def test_list_and_fast_list(s3_server: LocalS3Server, tmp_path: Path,
                            objects: dict[str, bytes], prefix: str) -> None:
    mc = _connector(s3_server, tmp_path)
    key = objio.parse_uri(prefix).key
    listed = mc.list("objio-test", key)
    assert [(o.key, o.size) for o in listed] == [(k[len("s3://objio-test/"):], len(v))
                                                for k, v in objects.items()]
    assert mc.list(prefix) == listed == mc.list("objio-test", key, True)
    assert mc.list(prefix.replace("s3://", "oss://", 1), fast=True) == listed


class _Oss2Creds:
    def __init__(self, key_id: str, secret: str) -> None:
        self.access_key_id, self.access_key_secret, self.security_token = key_id, secret, None


class _Oss2Provider:  # the shape of oss2.credentials.EnvironmentVariableCredentialsProvider
    def __init__(self, key_id: str, secret: str) -> None:
        self.creds = _Oss2Creds(key_id, secret)

    def get_credentials(self) -> _Oss2Creds:
        return self.creds


class _BotocoreProvider:  # a botocore Session: get_credentials() -> Credentials
    def __init__(self, key_id: str, secret: str) -> None:
        import botocore.credentials

        self.creds = botocore.credentials.Credentials(key_id, secret)

    def get_credentials(self) -> Any:
        return self.creds


def test_credential_providers_and_endpoint(s3_server: LocalS3Server, objects: dict[str, bytes],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    uri, data = list(objects.items())[-1]
    for provider in (_Oss2Provider, _BotocoreProvider):
        mc = OssModelConnector(endpoint=s3_server.endpoint_url,
                               cred_provider=provider(s3_server.access_key_id,
                                                      s3_server.secret_access_key),
                               config=objio.ClientConfig(region=s3_server.region))
        assert mc.open(uri).read() == data
    bad = ModelConnector(endpoint=s3_server.endpoint_url,
                         cred_provider=_Oss2Provider(s3_server.access_key_id, "wrong"))
    with pytest.raises(PermissionError):
        bad.open(uri).read()
    with pytest.raises(TypeError, match="get_credentials"):
        ModelConnector(cred_provider=object())
    assert ModelConnector(endpoint="oss-cn-hangzhou.aliyuncs.com").config.endpoint_url == \
        "https://oss-cn-hangzhou.aliyuncs.com"


def test_config_file_keys(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"prefetch_memory": "64MiB", "max_in_flight": 3,
                                "chunk_size": "1MiB", "demand_window": 2,
                                "region": "eu-west-1", "max_attempts": 2}))
    mc = ModelConnector(config_path=path)
    assert (mc.prefetch_memory, mc.max_in_flight, mc.chunk_size, mc.demand_window) == \
        (64 * MiB, 3, MiB, 2)
    assert mc.config.region == "eu-west-1" and mc.config.max_attempts == 2
    # explicit arguments win over the file
    assert ModelConnector(config_path=path, prefetch_memory="8MiB").prefetch_memory == 8 * MiB
    path.write_text(json.dumps({"prefetch_memory": "1GiB", "prefetchMemory": 1}))
    with pytest.raises(ValueError, match="'prefetchMemory'.*allowed: endpoint"):
        ModelConnector(config_path=path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        ModelConnector(config_path=path)
    path.write_text("[" * 200_000 + "]" * 200_000)  # nested past the JSON parser's recursion
    with pytest.raises(ValueError, match="is not JSON"):
        ModelConnector(config_path=path)
    with pytest.raises(ValueError, match="max_in_flight"):
        ModelConnector(max_in_flight=0)
    with pytest.raises(ValueError, match="prefetch_memory"):
        ModelConnector(prefetch_memory="lots")
    with pytest.raises(FileNotFoundError):
        ModelConnector(config_path=tmp_path / "nope.json")
    from objio.model import default_prefetch_memory

    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert ModelConnector().prefetch_memory == default_prefetch_memory() == \
        min(4 << 30, ram // 4)


# ------------------------------------------------------------------ order, budget, release
@pytest.fixture
def shards(client: objio.Client, prefix: str) -> dict[str, bytes]:
    """Six 'shards' of 8 chunks each."""
    items = {f"{prefix}model-{i + 1:05d}-of-00006.safetensors": _data(8 * CHUNK, 100 + i)
             for i in range(6)}
    client.put_many(list(items.items()))
    return items


def test_completion_follows_open_order(store: Any, tmp_path: Path,
                                       shards: dict[str, bytes]) -> None:
    mc = _connector(store, tmp_path, prefetch_memory=64 * MiB, max_in_flight=1)
    files = [mc.open(u) for u in shards]
    _wait(lambda: len(mc.stats()["completed"]) == len(shards))
    assert mc.stats()["completed"] == list(shards)
    assert [f.read() for f in files] == list(shards.values())
    # with many requests at once, each object's chunks are still all asked for before any
    # chunk but the first of a later object
    mc = _connector(store, tmp_path, prefetch_memory=64 * MiB, max_in_flight=8)
    mc._prefetcher.trace = []
    files = [mc.open(u) for u in shards]
    _wait(lambda: len(mc.stats()["completed"]) == len(shards))
    order = [seq for seq, _, _ in mc._prefetcher.trace]
    assert order == sorted(order) and len(order) == 6 * 8
    assert sorted(mc.stats()["completed"]) == sorted(shards)


def test_prefetch_stays_within_the_budget(store: Any, tmp_path: Path,
                                          shards: dict[str, bytes]) -> None:
    budget = 5 * CHUNK
    mc = _connector(store, tmp_path, prefetch_memory=budget)
    files = [mc.open(u) for u in shards]
    _wait(lambda: mc.stats()["prefetched_bytes"] == budget)  # full: prefetch waits
    time.sleep(0.2)
    assert mc.stats()["prefetched_bytes"] == budget
    assert all(f.read() == d for f, d in zip(files, shards.values(), strict=True))
    st = mc.stats()
    assert st["peak_prefetched_bytes"] == budget and st["demand_requests"] == 0
    assert st["requests"] == 6 * 8  # every chunk fetched once, none on demand


def test_close_and_garbage_collection_free_the_budget(store: Any, tmp_path: Path,
                                                      shards: dict[str, bytes]) -> None:
    budget = 16 * CHUNK  # two shards' worth
    mc = _connector(store, tmp_path, prefetch_memory=budget)
    uris = list(shards)
    files: list[Any] = [mc.open(u) for u in uris]
    _wait(lambda: mc.stats()["prefetched_bytes"] == budget)
    before = mc.stats()["requests"]
    files[0].close()  # never read: its 8 chunks go, the third shard gets them
    _wait(lambda: mc.stats()["requests"] >= before + 8)
    _wait(lambda: mc.stats()["prefetched_bytes"] == budget)
    files[1] = None  # dropped without close: garbage collection releases it too
    gc.collect()
    _wait(lambda: mc.stats()["requests"] >= before + 16)
    assert files[2].read() == shards[uris[2]] and files[3].read() == shards[uris[3]]
    with pytest.raises(ValueError, match="closed"):
        files[0].read()
    mc.close()
    _wait(lambda: mc.stats()["prefetched_bytes"] == 0)


def test_reading_the_last_object_first_does_not_deadlock(store: Any,
                                                         tmp_path: Path,
                                                         shards: dict[str, bytes]) -> None:
    budget = 16 * CHUNK  # held by the first two shards, which nobody reads yet
    mc = _connector(store, tmp_path, prefetch_memory=budget)
    files = [mc.open(u) for u in shards]
    _wait(lambda: mc.stats()["prefetched_bytes"] == budget)
    result: list[bytes] = []
    t = threading.Thread(target=lambda: result.append(files[-1].read()), daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "reading the last object waited for the budget"
    assert result == [list(shards.values())[-1]]
    st = mc.stats()
    assert st["demand_requests"] >= 8 and st["prefetched_bytes"] <= budget
    assert [f.read() for f in files[:-1]] == list(shards.values())[:-1]


def test_peak_rss_stays_near_the_budget(s3_server: LocalS3Server, client: objio.Client,
                                        prefix: str) -> None:
    """Peak RSS of a fresh process reading 48 MiB through a 4 MiB budget."""
    uris = [f"{prefix}big-{i}" for i in range(8)]
    client.put_many([(u, _data(6 * MiB, 200 + i)) for i, u in enumerate(uris)])
    script = textwrap.dedent(f"""
        import json
        import objio
        from objio.model import ModelConnector

        def status(field):  # kB lines of /proc/self/status
            with open("/proc/self/status") as f:
                return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field))

        uris = {uris!r}
        buf = bytearray(1 << 20)
        objio.get_range(uris[0], 0, 1024)  # warm up: imports, connections
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak RSS (VmHWM) to the current RSS
        base = status("VmRSS:")
        mc = ModelConnector(prefetch_memory=4 << 20)
        files = [mc.open(u) for u in uris]
        total = 0
        for f in files:
            while n := f.readinto(buf):
                total += n
        print(json.dumps({{"total": total, "growth": status("VmHWM:") - base,
                          "peak_prefetched": mc.stats()["peak_prefetched_bytes"]}}))
    """)
    env = dict(os.environ, AWS_ACCESS_KEY_ID=s3_server.access_key_id,
               AWS_SECRET_ACCESS_KEY=s3_server.secret_access_key,
               AWS_REGION=s3_server.region, OBJIO_ENDPOINT_URL=s3_server.endpoint_url)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=120, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["total"] == 48 * MiB
    assert res["peak_prefetched"] <= 4 * MiB
    # 48 MiB went through; the process grew by about the budget, not by the data
    assert res["growth"] < 4 * MiB + 12 * MiB, res


def test_prefetched_object_is_a_buffered_reader(store: Any, tmp_path: Path,
                                                objects: dict[str, bytes]) -> None:
    mc = _connector(store, tmp_path)
    uri, data = list(objects.items())[-1]
    with mc.open(uri) as f:
        assert isinstance(f, io.BufferedIOBase) and f.readable() and f.seekable()
        assert not f.writable() and f.uri == uri
        assert f.seek(5) == 5 and f.tell() == 5
        with pytest.raises(ValueError, match="negative"):
            f.seek(-1)
    assert f.closed
