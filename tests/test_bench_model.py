"""objio bench model / list, the delay proxy and the --plot PNGs, against the real server.
Only the shape and consistency of the reports are checked, never wall times or throughput
(the delay proxy's one check is that a request is not faster than the delay it adds)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import objio
from objio.bench import listing, peers
from objio.bench import model as model_bench
from objio.bench.latency import LatencyProxy
from objio.bench.report import plot_bars, plot_report
from objio.cli import main as cli_main
from objio.server import LocalS3Server

BUCKET = "objio-test"


@pytest.fixture
def cli_env(s3_server: LocalS3Server, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_access_key)
    monkeypatch.setenv("AWS_REGION", s3_server.region)
    return ["--endpoint-url", s3_server.endpoint_url]


def test_latency_proxy_delays_requests_and_keeps_bytes(s3_server: LocalS3Server,
                                                      client: objio.Client, prefix: str) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    client.put_bytes(prefix + "x", data)
    with LatencyProxy(s3_server.endpoint_url, 60) as proxy:
        slow = objio.Client(s3_server.config, endpoint_url=proxy.endpoint_url)
        assert bytes(slow.get(prefix + "x")) == data  # SigV4 still valid through the proxy
        t0 = time.perf_counter()
        slow.stat(prefix + "x")
        assert time.perf_counter() - t0 >= 0.06  # the delay is added (a lower bound only)
        slow.put_bytes(prefix + "y", data)
    assert bytes(client.get(prefix + "y")) == data
    with pytest.raises(ValueError, match="delay_ms"):
        LatencyProxy(s3_server.endpoint_url, -1)
    with pytest.raises(ValueError, match="http://host:port"):
        LatencyProxy("https://s3.amazonaws.com", 5)


def test_model_bench_report(client: objio.Client) -> None:
    prefix = f"s3://{BUCKET}/model-bench-{uuid.uuid4().hex[:8]}/"
    libs = ["objio", "objio-connector", "boto3"]
    if peers.RunaiModelStreamer.installed():
        libs.append("runai-model-streamer")
    logs: list[str] = []
    rep = model_bench.run_model_bench(client, prefix, size=6 << 20, shards=3, rounds=1,
                                      libs=libs, max_in_flight=8, keep=False, log=logs.append)
    assert rep["kind"] == "model" and rep["model"]["shards"] == 3 and rep["model"]["generated"]
    for name in libs:
        row = rep["summary"][name]
        assert row["status"] == "ok", (name, row)
        run = rep["runs"][name][0]
        assert run["tensors"] == rep["model"]["tensors"] and run["bytes"] == rep["model"]["bytes"]
        assert run["gib_per_s"] > 0 and run["ttft_s"] > 0 and run["cpu_s_per_gib"] > 0
        assert row["objio_ratio"] > 0
    assert rep["summary"]["objio"]["objio_ratio"] == 1.0
    assert any("generating the model" in line for line in logs)
    assert client.list(prefix) == []  # keep=False: removed


def test_model_bench_detects_a_wrong_load(client: objio.Client,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = f"s3://{BUCKET}/model-bench-{uuid.uuid4().hex[:8]}/"
    real = peers.Boto3.model_loader

    def lossy(self: Any, *args: Any) -> Any:
        run = real(self, *args)
        return lambda on_tensor: dict(list(run(on_tensor).items())[1:])  # drops a tensor

    monkeypatch.setattr(peers.Boto3, "model_loader", lossy)
    rep = model_bench.run_model_bench(client, prefix, size=2 << 20, shards=2, rounds=1,
                                      libs=["objio", "boto3"], max_in_flight=4, keep=False,
                                      log=lambda _: None)
    assert rep["summary"]["objio"]["status"] == "ok"
    assert rep["summary"]["boto3"]["status"] == "failed"
    assert "tensors" in rep["summary"]["boto3"]["reason"]


def test_model_bench_rejects_bad_arguments(client: objio.Client) -> None:
    with pytest.raises(ValueError, match="libs"):
        model_bench.run_model_bench(client, f"s3://{BUCKET}/x/", libs=["tensorflow"])
    with pytest.raises(ValueError, match="rounds"):
        model_bench.run_model_bench(client, f"s3://{BUCKET}/x/", rounds=0)
    with pytest.raises(ValueError, match="s3://"):
        model_bench.run_model_bench(client, "/tmp/x/", size=1 << 20)


def test_list_bench_report_and_latency(client: objio.Client) -> None:
    prefix = f"s3://{BUCKET}/list-bench-{uuid.uuid4().hex[:8]}/"
    for layout in listing.LAYOUTS:
        rep = listing.run_list_bench(client, prefix, keys=2500, layout=layout, rounds=1,
                                     latency_ms=5, log=lambda _: None)
        s = rep["summary"]
        assert rep["config"]["layout"] == layout and rep["config"]["latency_ms"] == 5
        assert s["sequential"]["keys_per_s"] > 0 and s["fastlist"]["keys_per_s"] > 0
        assert s["speedup"] == pytest.approx(s["sequential"]["wall_s"] / s["fastlist"]["wall_s"])
        assert all(r["keys"] == 2500 for rs in rep["runs"].values() for r in rs)
    assert len(listing.layout_keys("skewed", 1000)) == len(set(listing.layout_keys("skewed", 1000)))
    with pytest.raises(ValueError, match="layout"):
        listing.layout_keys("zipf", 10)
    client.delete(prefix)


def test_list_bench_compares_peers_on_the_same_keys(client: objio.Client, s3_server: Any,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 17: obstore's and boto3's sequential listings (peers.Library.prefix_lister) on the
    same keys, with keys/s and CPU per key relative to obstore's; objio's keys-only case."""
    prefix = f"s3://{BUCKET}/list-peers-{uuid.uuid4().hex[:8]}/"
    rep = listing.run_list_bench(client, prefix, keys=1500, rounds=2, log=lambda _: None)
    s = rep["summary"]
    assert rep["config"]["cases"] == ["sequential", "keys", "fastlist", "obstore", "boto3"]
    assert rep["skipped"] == {}
    for case in rep["config"]["cases"]:
        assert [r["keys"] for r in rep["runs"][case]] == [1500, 1500]
        assert s[case]["cpu_us_per_key"] > 0
        assert s[case]["keys_per_s_vs_obstore"] == pytest.approx(
            s[case]["keys_per_s"] / s["obstore"]["keys_per_s"])
    assert s["obstore"]["cpu_per_key_vs_obstore"] == pytest.approx(1.0)
    listing.print_report(rep)
    out = capsys.readouterr().out
    assert "CPU/key vs obstore" in out and "boto3" in out
    rep = listing.run_list_bench(client, prefix, keys=1500, rounds=1, peers=[],
                                 log=lambda _: None, server_cpu=s3_server.cpu_seconds)
    assert rep["config"]["cases"] == ["sequential", "keys", "fastlist"]
    # with the server on this machine: its CPU per key, the floor of a sequential listing
    assert all(rep["summary"][c]["server_us_per_key"] >= 0 for c in rep["config"]["cases"])
    listing.print_report(rep)
    assert "server CPU us/key" in capsys.readouterr().out
    with pytest.raises(ValueError, match="peers"):
        listing.run_list_bench(client, prefix, keys=1500, peers=["s3dlio"])
    client.delete(prefix)


def test_plots_for_every_bench_kind(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    reports: dict[str, Any] = {
        "objects": {"config": {"num": 8, "size": 1 << 20, "max_in_flight": 4},
                    "compare": {"objio": {"status": "ok", "mib_per_s": 900.0},
                                "boto3": {"status": "ok", "mib_per_s": 300.0},
                                "s3dlio": {"status": "skipped"}},
                    "phases": {"get": {"summary": {"mib_per_s": 900.0},
                                       "latency_samples_ms": {"total": [1.0, 2.0] * 20,
                                                              "ttfb": [0.5] * 40}}}},
        "train": {"mode": "throughput", "summary": {"map": {
            "objio": {"epoch_samples_per_s": 2000.0}, "s3torchconnector":
                {"epoch_samples_per_s": 900.0}, "objio_ratio": {}}},
                  "runs": [{"library": "objio", "dataset": "map", "samples_per_s": 1990.0}]},
        "stream": {"size": 1 << 30, "summary": {"read": {"objio": {"mib_s": 1400.0},
                                                         "boto3": None}},
                   "results": {"read": {"objio": [{"ok": True, "wall_s": 0.7}]}}},
        "model": {"config": {"latency_ms": 0, "model": "llama3-8b", "rounds": 1},
                  "model": {"bytes": 2 << 30, "shards": 8},
                  "summary": {"objio": {"status": "ok", "gib_per_s": 1.1, "ttft_samples_s": [0.1]},
                              "runai-model-streamer": {"status": "ok", "gib_per_s": 0.4,
                                                       "ttft_samples_s": [0.5]},
                              "_model_mib": 2048.0}},
        "checkpoint": {"state_dict_bytes": 1 << 30, "ranks": 2, "rounds": 2,
                       "summary": {"objio": {"save": {"gib_s": 0.9, "cpu_s_per_gib": 1.2},
                                             "load": {"gib_s": 1.8, "cpu_s_per_gib": 0.6}},
                                   "s3torchconnector": {"save": {"gib_s": 0.8,
                                                                 "cpu_s_per_gib": 1.6},
                                                        "load": None}},
                       "runs": [{"ok": True, "case": "objio", "save": {"gib_s": 0.9},
                                 "load": {"gib_s": 1.8}}, {"ok": False, "case": "objio"}]},
        "list": {"config": {"keys": 100_000, "layout": "uniform", "latency_ms": 20, "rounds": 2},
                 "summary": {"sequential": {"keys_per_s": 30_000.0, "wall_s_samples": [3.3]},
                             "fastlist": {"keys_per_s": 110_000.0, "wall_s_samples": [0.9]},
                             "speedup": 3.6}},
    }
    for kind, rep in reports.items():
        path = tmp_path / f"{kind}.png"
        plot_report(kind, rep, str(path))
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    with pytest.raises(ValueError, match="kind"):
        plot_report("checkpoint-ish", {}, str(tmp_path / "x.png"))
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_bars(str(tmp_path / "y.png"), "t", [])
    # the generic function other benchmarks (checkpoints) call directly
    plot_bars(str(tmp_path / "z.png"), "save", [("objio", 2.0, "GiB/s"), ("torch.save", 1.0, "GiB/s")],
              samples={"objio": [10.0, 12.0]}, samples_label="save time (ms)")
    assert (tmp_path / "z.png").stat().st_size > 5000


def test_cli_bench_model_and_list(cli_env: list[str], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    prefix = f"s3://{BUCKET}/cli-model-{uuid.uuid4().hex[:8]}/"
    png = tmp_path / "model.png"
    code = cli_main(["bench", "model", *cli_env, prefix, "--size", "3MiB", "--shards", "2",
                     "--rounds", "1", "--libs", "objio,objio-connector", "--no-keep",
                     "--json", "-", "--plot", str(png)])
    out = capsys.readouterr()
    assert code == 0, out.err
    rep = json.loads(out.out)
    assert rep["summary"]["objio-connector"]["status"] == "ok" and png.stat().st_size > 5000
    code = cli_main(["bench", "list", *cli_env, f"s3://{BUCKET}/cli-list/", "--keys", "1200",
                     "--rounds", "1", "--json", str(tmp_path / "l.json")])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "FastList speedup" in out.out
    assert json.loads((tmp_path / "l.json").read_text())["config"]["keys"] == 1200
    code = cli_main(["bench", "model", *cli_env, prefix, "--libs", "objio,pytorch"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("objio bench: error: --libs must be") and "\n" == err[-1]
    code = cli_main(["bench", "list", *cli_env, "s3://no-such-bucket-lb/", "--keys", "10"])
    assert code == 1 and "not found" in capsys.readouterr().err
