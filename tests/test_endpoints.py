"""Several endpoints of one store (issue 19 B): the forms of ``endpoint_url``, the strategies,
health (an endpoint taken out and probed back in) and the per-endpoint stats, through fault
proxies in front of the session's LocalS3Server (each proxy is one "gateway")."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

import objio
from objio.config import ClientConfig
from objio.s3.endpoints import EndpointPool
from objio.server import LocalS3Server

# ------------------------------------------------------------------------------- config


def test_endpoint_url_takes_a_list_a_comma_string_and_a_warp_template() -> None:
    assert ClientConfig(endpoint_url=["http://a:1", "http://b:2/"]).endpoint_urls == (
        "http://a:1", "http://b:2")
    assert ClientConfig(endpoint_url="http://a:1, http://b:2").endpoint_urls == (
        "http://a:1", "http://b:2")
    assert ClientConfig(endpoint_url="http://gw{1...3}:9000").endpoint_urls == (
        "http://gw1:9000", "http://gw2:9000", "http://gw3:9000")
    # warp: any part of the host and the port; zero-padded; several ranges combine
    assert ClientConfig(endpoint_url="http://10.0.0.{8...10}:9000").endpoint_urls == (
        "http://10.0.0.8:9000", "http://10.0.0.9:9000", "http://10.0.0.10:9000")
    assert ClientConfig(endpoint_url="http://n{01...02}:{9000...9001}").endpoint_urls == (
        "http://n01:9000", "http://n01:9001", "http://n02:9000", "http://n02:9001")
    # one URL stays a str, as before
    single = ClientConfig(endpoint_url=["http://a:1"])
    assert single.endpoint_url == "http://a:1" and single.endpoint_urls == ("http://a:1",)
    assert ClientConfig(endpoint_url="http://a:1/").endpoint_url == "http://a:1"


def test_s3_endpoint_uris_env_as_dlio_and_s3dlio_read_it() -> None:
    env = {"S3_ENDPOINT_URIS": "http://gw1:9000,http://gw2:9000",
           "AWS_ENDPOINT_URL": "http://other:1"}
    c = ClientConfig().resolved(env)
    assert c.endpoint_urls == ("http://gw1:9000", "http://gw2:9000")
    assert c.endpoint_strategy == "least_connections"
    assert c.endpoint_fail_threshold == 3 and c.endpoint_backoff_s == 1.0
    env["OBJIO_ENDPOINT_URL"] = "http://gw{1...3}:9000"  # objio's own variable wins
    assert len(ClientConfig().resolved(env).endpoint_urls) == 3
    env["OBJIO_ENDPOINT_STRATEGY"] = "round_robin"
    assert ClientConfig().resolved(env).endpoint_strategy == "round_robin"
    with pytest.raises(ValueError, match="S3_ENDPOINT_URIS"):
        ClientConfig().resolved({"S3_ENDPOINT_URIS": "http://a:1,gw2:9000"})


@pytest.mark.parametrize("kw,words", [
    ({"endpoint_strategy": "fastest"}, ["endpoint_strategy", "least_connections",
                                        "round_robin"]),
    ({"endpoint_url": ["http://a:1", "gw2:9000"]}, ["endpoint_url", "gw2:9000"]),
    ({"endpoint_url": ["http://a:1", "https://b:2"]}, ["endpoint_url", "https"]),
    ({"endpoint_url": "http://gw{3...1}:9000"}, ["endpoint_url", "{1...3}"]),
    ({"endpoint_url": "http://gw{1..3}:9000"}, ["endpoint_url", "{A...B}"]),
    ({"endpoint_url": []}, ["endpoint_url"]),
    ({"endpoint_url": [1, 2]}, ["endpoint_url"]),
    ({"endpoint_fail_threshold": 0}, ["endpoint_fail_threshold", ">= 1"]),
    ({"endpoint_backoff_s": 0}, ["endpoint_backoff_s", "> 0"]),
])
def test_invalid_endpoint_settings_name_the_field_and_the_allowed_values(
        kw: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(ValueError) as e:
        ClientConfig(**kw)
    for w in words:
        assert w in str(e.value)


# ------------------------------------------------------------------------------- the pool


def test_round_robin_takes_each_endpoint_in_turn() -> None:
    pool = EndpointPool(["http://a", "http://b", "http://c"], "round_robin")
    picks = []
    for _ in range(9):
        ep = pool.pick()
        assert ep is not None
        pool.begin(ep, 0)  # still in flight: round robin does not care
        picks.append(ep.netloc)
    assert picks == ["a", "b", "c"] * 3


def test_least_connections_prefers_the_idle_endpoint() -> None:
    pool = EndpointPool(["http://a", "http://b", "http://c"], "least_connections")
    a, b, c = pool.endpoints
    for _ in range(3):
        pool.begin(a, 0)
    pool.begin(b, 0)
    assert pool.pick() is c
    pool.begin(c, 0)
    pool.begin(c, 0)
    assert pool.pick() is b  # 1 in flight against 2 and 3
    for _ in range(3):
        pool.answered(a, 200, 0, 0.001)
    assert pool.pick() is a


def test_an_endpoint_failing_n_times_is_out_until_its_backoff_then_probed_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from objio.s3 import endpoints

    now = [1000.0]
    monkeypatch.setattr(endpoints.time, "monotonic", lambda: now[0])
    pool = EndpointPool(["http://a", "http://b"], "round_robin", fail_threshold=2, backoff_s=5)
    a, b = pool.endpoints
    for _ in range(2):
        pool.begin(a, 0)
        pool.failed(a)
    assert a.state == "out"
    assert [pool.pick() for _ in range(4)] == [b, b, b, b]
    now[0] += 5.0  # backoff over: the next request probes it, one at a time
    probe = pool.pick(exclude=[b])
    assert probe is a and a.state == "probing"
    assert pool.pick() is b
    pool.begin(a, 0)
    pool.failed(a)  # the probe failed: out for twice as long
    assert a.state == "out" and a.out_until == now[0] + 10.0
    now[0] += 10.0
    assert pool.pick(exclude=[b]) is a
    pool.begin(a, 0)
    pool.answered(a, 200, 10, 0.002)  # any answer brings it back
    assert a.state == "up" and a.failures == 0
    st = pool.stats()[0]
    assert st["times_taken_out"] == 1 and st["errors"] == 3 and st["requests"] == 4


def test_when_every_endpoint_is_out_requests_still_go_to_one() -> None:
    pool = EndpointPool(["http://a", "http://b"], fail_threshold=1, backoff_s=60)
    a, b = pool.endpoints
    for ep in (a, b):
        pool.begin(ep, 0)
        pool.failed(ep)
    assert pool.pick() in (a, b)  # not None: the request fails with the usual error
    assert pool.pick(exclude=[a, b]) is None


# ------------------------------------------------------------------------------- real requests


def _closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def proxies(s3_server: LocalS3Server) -> Iterator[list[Any]]:
    from faultproxy import FaultProxy

    ps = [FaultProxy(s3_server.endpoint_url) for _ in range(3)]
    yield ps
    for p in ps:
        p.stop()


@pytest.fixture
def three(proxies: list[Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    from objio import engine

    monkeypatch.setattr(engine, "_BACKOFF_BASE_S", 0.001)
    for p in proxies:
        p.clear()
    yield proxies
    for p in proxies:
        p.clear()


def _objects(p: Any) -> list[Any]:
    return [r for r in p.log if r.method == "GET" and r.path.rsplit("/", 1)[-1].startswith("obj")]


def test_round_robin_spreads_requests_evenly_and_signs_for_each_host(
        client: objio.Client, prefix: str, s3_server: LocalS3Server, three: list[Any]) -> None:
    uris = [f"{prefix}obj{i}" for i in range(30)]
    client.put_many([(u, b"x%d" % i) for i, u in enumerate(uris)])
    c = objio.Client(s3_server.config, endpoint_url=[p.endpoint_url for p in three],
                     endpoint_strategy="round_robin")
    for i, u in enumerate(uris):  # one at a time: the turn decides alone
        assert c.get(u) == b"x%d" % i
    assert [len(_objects(p)) for p in three] == [10, 10, 10]
    for p in three:  # SigV4 signed the Host of the endpoint each request went to
        assert {r.headers["host"] for r in _objects(p)} == {f"127.0.0.1:{p.port}"}
    stats = c.endpoint_stats()
    assert [s["url"] for s in stats] == [p.endpoint_url for p in three]
    assert [s["requests"] for s in stats] == [10, 10, 10]
    assert all(s["errors"] == 0 and s["in_flight"] == 0 and s["state"] == "up" for s in stats)
    assert sum(s["bytes_received"] for s in stats) == sum(len(b"x%d" % i) for i in range(30))
    assert all(s["latency_p50_ms"] > 0 and s["latency_p99_ms"] >= s["latency_p50_ms"]
               for s in stats)


def test_least_connections_sends_nothing_to_a_busy_endpoint(
        client: objio.Client, prefix: str, s3_server: LocalS3Server, three: list[Any]) -> None:
    from faultproxy import Hold

    uris = [f"{prefix}obj{i}" for i in range(12)]
    client.put_many([(u, b"y" * 100) for u in uris])
    client.put_bytes(f"{prefix}held", b"h")
    c = objio.Client(s3_server.config, endpoint_url=[p.endpoint_url for p in three],
                     endpoint_fail_threshold=7)  # a config (and so a backend) of its own
    holds = [Hold() for _ in three]
    for p, h in zip(three, holds, strict=True):
        p.add(lambda r: r.path.endswith("/held"), h, times=None)
    slow = objio.engine.submit(c.get_async(f"{prefix}held"))
    try:
        for _ in range(600):  # the first request may go to any idle endpoint: find it
            busy = [i for i, h in enumerate(holds) if h.reached.is_set()]
            if busy:
                break
            holds[0].reached.wait(0.05)
        assert len(busy) == 1
        b = busy[0]
        for u in uris:
            assert c.get(u) == b"y" * 100
        assert len(_objects(three[b])) == 0  # busy: one request in flight there
        assert sum(len(_objects(p)) for p in three) == 12
        assert c.endpoint_stats()[b]["in_flight"] == 1
    finally:
        for h in holds:
            h.release()
    assert slow.result(30) == b"h"


def test_a_refused_endpoint_is_taken_out_and_no_request_fails(
        client: objio.Client, prefix: str, s3_server: LocalS3Server, three: list[Any]) -> None:
    uris = [f"{prefix}obj{i}" for i in range(40)]
    client.put_many([(u, b"%d" % i * 50) for i, u in enumerate(uris)])
    dead = f"http://127.0.0.1:{_closed_port()}"
    c = objio.Client(s3_server.config, endpoint_url=[dead, three[0].endpoint_url],
                     endpoint_backoff_s=60, max_attempts=1)  # no engine retry to lean on
    got = c.get_many(uris, max_in_flight=8)
    assert [(u, bytes(g)) for u, g in got] == [(u, b"%d" % i * 50) for i, u in enumerate(uris)]
    assert sorted("s3://objio-test/" + k for k in c.list(prefix)) == sorted(uris)
    d, live = c.endpoint_stats()
    assert d["state"] == "out" and d["errors"] >= 3 and d["bytes_received"] == 0
    assert d["times_taken_out"] == 1 and d["requests"] == d["errors"]
    assert live["state"] == "up" and live["errors"] == 0
    assert live["requests"] >= 41  # every GET and the listing


def test_every_endpoint_refusing_gives_the_usual_connection_error(s3_server: LocalS3Server,
                                                                  prefix: str) -> None:
    c = objio.Client(s3_server.config, max_attempts=2,
                     endpoint_url=[f"http://127.0.0.1:{_closed_port()}",
                                   f"http://127.0.0.1:{_closed_port()}"])
    with pytest.raises(objio.ObjectStoreError) as e:
        c.get(f"{prefix}obj")
    assert e.value.code == "ConnectionError" and e.value.retryable
    assert f"{prefix}obj" in str(e.value)
    assert sum(s["errors"] for s in c.endpoint_stats()) == 4  # 2 attempts x 2 endpoints


def test_a_gateway_that_comes_back_is_probed_back_in(
        client: objio.Client, prefix: str, s3_server: LocalS3Server, three: list[Any]) -> None:
    import time

    client.put_bytes(f"{prefix}obj", b"z" * 10)
    c = objio.Client(s3_server.config, endpoint_url=[p.endpoint_url for p in three[:2]],
                     endpoint_strategy="round_robin", endpoint_fail_threshold=2,
                     endpoint_backoff_s=0.1)
    three[1].down_for(3.0)  # resets every request: a gateway restarting
    for _ in range(6):
        assert c.get(f"{prefix}obj") == b"z" * 10
    assert c.endpoint_stats()[1]["state"] == "out"
    assert c.endpoint_stats()[1]["times_taken_out"] == 1
    time.sleep(3.0)  # up again; the backoff (doubled at each failed probe) ends soon after
    before = c.endpoint_stats()[1]["bytes_received"]
    for _ in range(400):
        assert c.get(f"{prefix}obj") == b"z" * 10
        if c.endpoint_stats()[1]["bytes_received"] >= before + 30:
            break
        time.sleep(0.02)
    back = c.endpoint_stats()[1]
    assert back["state"] == "up" and back["bytes_received"] >= before + 30


def test_the_bench_report_has_the_endpoints(client: objio.Client, s3_server: LocalS3Server,
                                            three: list[Any], capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    from objio.bench.objects import print_report, run_bench

    c = objio.Client(s3_server.config, endpoint_url=[p.endpoint_url for p in three])
    report = run_bench(c, "s3://objio-test/bench-endpoints/", num=12, size=1024, epochs=1)
    eps = report["endpoints"]
    assert [e["url"] for e in eps] == [p.endpoint_url for p in three]
    assert all(e["requests"] > 0 for e in eps)
    print_report(report)
    out = capsys.readouterr().out
    for p in three:
        assert f"endpoint {p.endpoint_url}: up" in out


def test_the_cli_takes_several_endpoints(cli_env: list[str], client: objio.Client, prefix: str,
                                         three: list[Any],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from objio.cli import main

    client.put_bytes(f"{prefix}obj-cli", b"cli")
    flags = ["--endpoint-url", ",".join(p.endpoint_url for p in three)]
    for _ in range(3):
        assert main(["cat", *flags, f"{prefix}obj-cli"]) == 0
        assert capsys.readouterr().out == "cli"
    assert sum(len(_objects(p)) for p in three) == 3
    assert main(["ls", "--endpoint-url", f"{three[0].endpoint_url},gw2:9000", prefix]) != 0
    assert "gw2:9000" in capsys.readouterr().err


def test_every_bench_report_has_the_endpoints(cli_env: list[str], client: objio.Client,
                                              three: list[Any],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from objio.cli import main

    urls = [p.endpoint_url for p in three[:2]]
    code = main(["bench", "list", "--endpoint-url", ",".join(urls),
                 "s3://objio-test/bench-list-endpoints/", "--keys", "300", "--rounds", "1",
                 "--json", "-"])
    out = capsys.readouterr()
    assert code == 0, out.err
    eps = json.loads(out.out)["endpoints"]
    assert [e["url"] for e in eps] == urls
    assert all(e["requests"] > 0 and e["state"] == "up" for e in eps)


def test_an_endpoint_that_times_out_is_taken_out(client: objio.Client, prefix: str,
                                                 s3_server: LocalS3Server,
                                                 three: list[Any]) -> None:
    from faultproxy import Stall

    uris = [f"{prefix}obj{i}" for i in range(8)]
    client.put_many([(u, b"t%d" % i) for i, u in enumerate(uris)])
    three[1].add(lambda r: r.method == "GET", Stall(30.0), times=None)  # a hung gateway
    c = objio.Client(s3_server.config, endpoint_url=[p.endpoint_url for p in three[:2]],
                     endpoint_strategy="round_robin", endpoint_fail_threshold=2,
                     endpoint_backoff_s=60, read_timeout_s=0.3)
    for i, u in enumerate(uris):  # each timeout is retried (on the other endpoint)
        assert c.get(u) == b"t%d" % i
    live, hung = c.endpoint_stats()
    assert hung["state"] == "out" and hung["errors"] == 2 and hung["requests"] == 2
    assert live["requests"] == 8 and live["errors"] == 0
