"""One store, several S3 gateways (issue 19 B3): LocalS3Server(gateways=3) runs ``weed server``
plus two ``weed s3 -filer=...`` gateways over the one filer. A job that loses a gateway halfway
completes with every byte right, the dead gateway shows in the stats, and after it restarts on
its port it is probed back in and serves requests again."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

import objio
from objio.server import LocalS3Server

BUCKET = "objio-multi"
N = 300
SIZE = 16 * 1024


@pytest.fixture(scope="module")
def gateways() -> Iterator[LocalS3Server]:
    with LocalS3Server(gateways=3) as server:
        objio.Client(server.config.replace(endpoint_url=server.endpoint_urls[0])).create_bucket(
            f"s3://{BUCKET}", exist_ok=True)
        yield server


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    from objio import engine

    monkeypatch.setattr(engine, "_BACKOFF_BASE_S", 0.005)


def _payload(i: int) -> bytes:
    return (b"%06d" % i) * (SIZE // 6) + os.urandom(SIZE % 6 or 1)[:SIZE % 6]


def _wait_backoff(client: objio.Client, index: int) -> None:
    """Until endpoint ``index`` may be probed (its backoff, doubled at each failed probe, is
    over)."""
    while (left := client.endpoint_stats()[index]["out_for_s"]) > 0:
        time.sleep(left + 0.01)


def _ensure_all_up(server: LocalS3Server) -> None:
    for i in range(1, server.gateways):
        if not server.gateway_running(i):
            server.start_gateway(i)


def test_every_gateway_serves_the_same_data(gateways: LocalS3Server) -> None:
    _ensure_all_up(gateways)
    urls = gateways.endpoint_urls
    assert len(urls) == 3 and len(set(urls)) == 3
    assert gateways.config.endpoint_urls == tuple(urls)
    first = objio.Client(gateways.config.replace(endpoint_url=urls[0]))
    first.put_bytes(f"s3://{BUCKET}/same/one", b"written through gateway 0")
    for url in urls[1:]:
        other = objio.Client(gateways.config.replace(endpoint_url=url))
        assert other.get(f"s3://{BUCKET}/same/one") == b"written through gateway 0"
        other.put_bytes(f"s3://{BUCKET}/same/{url[-5:]}", url.encode())
    assert sorted(first.list(f"s3://{BUCKET}/same/")) == sorted(
        ["same/one"] + [f"same/{u[-5:]}" for u in urls[1:]])


@pytest.mark.parametrize("strategy", ["least_connections", "round_robin"])
def test_a_job_that_loses_a_gateway_halfway_completes_and_it_comes_back(
        gateways: LocalS3Server, fast_retries: None, strategy: str) -> None:
    _ensure_all_up(gateways)
    prefix = f"s3://{BUCKET}/job-{strategy}-{os.urandom(4).hex()}/"
    uris = [f"{prefix}obj{i:04d}" for i in range(N)]
    data = {u: _payload(i) for i, u in enumerate(uris)}
    client = objio.Client(gateways.config, endpoint_strategy=strategy,
                          endpoint_backoff_s=0.3)
    victim = 2

    def items(kill_at: int) -> Iterator[tuple[str, bytes]]:
        for i, u in enumerate(uris):  # consumed lazily, on the engine's loop
            if i == kill_at:  # halfway: a crash (SIGKILL), requests in flight on it
                assert client.endpoint_stats()[victim]["bytes_sent"] > 0
                gateways.stop_gateway(victim, kill=True)
            yield u, data[u]

    # put_many loses the gateway halfway
    client.put_many(items(N // 2), max_in_flight=16)
    assert not gateways.gateway_running(victim)
    dead = client.endpoint_stats()[victim]
    assert dead["state"] == "out" and dead["errors"] >= 3 and dead["times_taken_out"] >= 1
    # every object is there, byte for byte, read through a surviving gateway alone
    check = objio.Client(gateways.config.replace(endpoint_url=gateways.endpoint_urls[0]))
    for u, got in check.get_many(uris, max_in_flight=16):
        assert bytes(got) == data[u], u
    assert sorted(check.list(prefix)) == sorted(u[len(f"s3://{BUCKET}/"):] for u in uris)

    # restart it on its port; get_many (kill it again halfway) and a listing
    gateways.start_gateway(victim)
    _wait_backoff(client, victim)  # the next request probes it
    served_before = client.endpoint_stats()[victim]["bytes_received"]

    done = [0]

    def observer(record: object) -> None:  # one call per object, on the engine's loop
        done[0] += 1
        if done[0] == N // 2:
            assert client.endpoint_stats()[victim]["bytes_received"] > served_before, \
                "the restarted gateway was not probed back in"
            gateways.stop_gateway(victim, kill=True)

    got = client.get_many(uris, max_in_flight=16, observer=observer)
    assert done[0] == N
    assert [u for u, _ in got] == uris
    for u, b in got:
        assert bytes(b) == data[u], u
    assert sorted(client.list(prefix)) == sorted(u[len(f"s3://{BUCKET}/"):] for u in uris)
    stats = client.endpoint_stats()
    assert stats[victim]["state"] == "out"
    assert stats[victim]["times_taken_out"] >= 2
    assert all(s["state"] == "up" and s["in_flight"] == 0 for i, s in enumerate(stats)
               if i != victim)

    # and back once more: it serves requests again
    gateways.start_gateway(victim)
    _wait_backoff(client, victim)
    before = client.endpoint_stats()[victim]["bytes_received"]
    client.get_many(uris[:60], max_in_flight=8)
    back = client.endpoint_stats()[victim]
    assert back["state"] == "up" and back["bytes_received"] > before


def test_gateway_index_is_checked(gateways: LocalS3Server) -> None:
    with pytest.raises(ValueError, match="gateway 0"):
        gateways.stop_gateway(0)
    with pytest.raises(ValueError, match="1 to 2"):
        gateways.start_gateway(3)
    with pytest.raises(ValueError, match="gateways"):
        LocalS3Server(gateways=0)


def test_server_cpu_counts_the_extra_gateways(gateways: LocalS3Server) -> None:
    """cpu_seconds() sums weed server and the extra gateways (each its own process group):
    requests through gateway 1 alone show its CPU, not only the filer's and volume's."""
    from objio._local_server import _group_cpu_seconds

    _ensure_all_up(gateways)
    assert gateways._proc is not None
    via_one = objio.Client(gateways.config.replace(endpoint_url=gateways.endpoint_urls[1]))
    uris = [f"s3://{BUCKET}/cpu/{i}" for i in range(200)]
    via_one.put_many([(u, _payload(i)) for i, u in enumerate(uris)])
    total0, main0 = gateways.cpu_seconds(), _group_cpu_seconds(gateways._proc.pid)
    for _ in range(3):
        assert via_one.get_many_stats(uris)[0] == len(uris)
    total1, main1 = gateways.cpu_seconds(), _group_cpu_seconds(gateways._proc.pid)
    assert total0 is not None and total1 is not None and main0 is not None and main1 is not None
    assert total1 - total0 > main1 - main0  # gateway 1's own CPU is in the total


def test_environ_names_every_gateway(gateways: LocalS3Server) -> None:
    """With several gateways ``environ()`` adds S3_ENDPOINT_URIS (all of them, the variable
    DLIO and s3dlio read), which a client made from the environment alone spreads over."""
    env = gateways.environ()
    assert env["S3_ENDPOINT_URIS"] == ",".join(gateways.endpoint_urls)
    assert env["AWS_ENDPOINT_URL"] == gateways.endpoint_urls[0]  # for aws-cli and boto3
    from objio.config import ClientConfig

    resolved = ClientConfig().resolved(env)
    assert resolved.endpoint_urls == tuple(gateways.endpoint_urls)
