"""objio.train: DLIO presets, the AU metric, the sample transform, and small end-to-end runs of
the training emulation and the DataLoader throughput benchmark against the LocalS3Server."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest

pytest.importorskip("torch")

import objio  # noqa: E402
from objio.bench import train  # noqa: E402
from objio.cli import bench as bench_cli  # noqa: E402
from objio.cli import main as cli_main  # noqa: E402
from objio.gen import GenSpec, generate_dataset  # noqa: E402
from objio.torch.datasets import PrefetchedS3Reader  # noqa: E402
from objio.torch.transforms import Samples  # noqa: E402


def test_presets_are_dlio_h100() -> None:
    p = train.PRESETS
    assert (p["unet3d"].batch_size, p["unet3d"].read_threads, p["unet3d"].epochs,
            p["unet3d"].computation_time, p["unet3d"].au) == (7, 4, 5, 0.323, 0.90)
    assert (p["resnet50"].batch_size, p["resnet50"].read_threads, p["resnet50"].epochs,
            p["resnet50"].computation_time, p["resnet50"].au) == (400, 8, 5, 0.224, 0.90)
    assert (p["cosmoflow"].batch_size, p["cosmoflow"].read_threads, p["cosmoflow"].epochs,
            p["cosmoflow"].computation_time, p["cosmoflow"].au) == (1, 4, 5, 0.0035, 0.70)
    # DLIO: prefetch_factor = ceil(prefetch_size (2) / read_threads)
    assert all(x.prefetch_factor == 1 for x in p.values())
    assert set(train.EMBEDDED_SCALE) == set(p)


def test_au_metrics_follow_dlio() -> None:
    steps = [(2.0, 0.1, 4, 400), (0.05, 0.1, 4, 400), (0.15, 0.1, 3, 300)]
    m = train.au_metrics(steps, wall_s=2.55)
    assert m["steps"] == 3 and m["metric_steps"] == 2 and m["samples"] == 11
    assert m["metric_time_s"] == pytest.approx(0.45)  # the first step's 2.1 s excluded
    assert m["au_pct"] == pytest.approx(100 * 0.2 / 0.45)
    assert m["samples_per_s"] == pytest.approx(7 / 0.45)
    assert m["mib_per_s"] == pytest.approx(700 / 2**20 / 0.45)
    assert m["epoch_samples_per_s"] == pytest.approx(11 / 2.55)
    one = train.au_metrics([(0.5, 0.5, 2, 10)], wall_s=1.0)  # nothing left to exclude
    assert one["au_pct"] == pytest.approx(50.0) and one["samples_per_s"] == pytest.approx(2.0)
    empty = train.au_metrics([], wall_s=0.1)
    assert empty["au_pct"] == 0.0 and empty["samples"] == 0


def test_sample_transform_decodes_formats(tmp_path: Any) -> None:
    c = objio.Client()
    for fmt, n in (("npz", 1), ("tfrecord", 3), ("hdf5", 2)):
        generate_dataset(c, f"{tmp_path}/{fmt}/",
                         GenSpec(format=fmt, num_files=1, samples_per_file=n, record_size=1024))
        path = next((tmp_path / fmt / "train").iterdir())
        out = train.SampleBytes(fmt)(PrefetchedS3Reader("", str(path), path.read_bytes()))
        if fmt == "npz":
            assert out == path.stat().st_size
        else:
            assert isinstance(out, Samples) and len(list(out)) == n
    assert train.SampleBytes("raw")(PrefetchedS3Reader("", "/x", b"abc")) == 3
    assert train.SampleBytes("npz", decode=False)(PrefetchedS3Reader("", "/x", b"abcd")) == 4


def test_parse_compare_and_arguments() -> None:
    assert train.parse_compare(None) == [] and train.parse_compare("none") == []
    assert train.parse_compare(True) == ["s3torchconnector"]
    assert train.parse_compare("s3torchconnector,s3torchconnector") == ["s3torchconnector"]
    with pytest.raises(ValueError, match="compare"):
        train.parse_compare("boto3")
    # alongside bench's own options: no conflicts, shared options reused
    p = argparse.ArgumentParser()
    bench_cli.configure_objects_parser(p)
    bench_cli.add_train_arguments(p)
    a = p.parse_args(["--workload", "unet3d", "--scale", "0.1", "--compute-time", "0", "--compare"])
    assert a.workload == "unet3d" and a.scale == 0.1 and a.compute_time == 0.0
    assert train.parse_compare(a.compare) == ["s3torchconnector"]
    # bench's --compare takes an optional value: a name, or a URI given after it
    c = p.parse_args(["--workload", "cosmoflow", "--compare", "s3torchconnector", "--epochs", "0"])
    assert c.compare == "s3torchconnector" and c.uri is None
    assert bench_cli.run_train_from_args(c) == 1  # reaches the epochs check: the name was taken
    assert cli_main(["bench", "--workload", "unet3d", "--scale", "2"]) == 1  # before any server
    b = p.parse_args(["s3://b/p", "--throughput", "--size", "16MiB", "--num", "64",
                      "--dataset", "map"])
    assert (b.uri, b.throughput, b.size, b.num, b.compare, b.dataset) == \
        ("s3://b/p", True, "16MiB", 64, None, "map")


def test_bad_arguments(client: objio.Client, prefix: str) -> None:
    with pytest.raises(ValueError, match="workload"):
        train.run_training(client, prefix, "bert")
    with pytest.raises(ValueError, match="batch_size"):
        train.run_training(client, prefix, "cosmoflow", batch_size=0)
    with pytest.raises(ValueError, match="compute_time"):
        train.run_training(client, prefix, "cosmoflow", compute_time=-1.0)
    with pytest.raises(ValueError, match="dataset"):
        train.run_throughput(client, prefix, size=10, num=1, datasets=["table"])
    with pytest.raises(ValueError, match="s3://"):
        train.run_throughput(client, "/tmp/x", size=10, num=1)
    assert cli_main(["bench", "train", "--workload", "cosmoflow", "--throughput", "s3://objio-test/x"]) == 1
    assert cli_main(["bench", "train", "s3://objio-test/x"]) == 1


@pytest.mark.timeout(600)
def test_training_emulation_small(s3_server: Any, client: objio.Client, prefix: str) -> None:
    kw: dict[str, Any] = dict(scale=0.00005, epochs=2, workers=2, compute_time=0.002,
                              compare=["s3torchconnector"], keep=False)
    report = train.run_training(client, prefix, "cosmoflow", **kw)
    files = report["config"]["files"]
    assert files == 26 and report["generation"]["generated"] is True
    runs = report["runs"]
    assert [(r["epoch"], r["library"]) for r in runs] == [
        (0, "objio"), (0, "s3torchconnector"), (1, "s3torchconnector"), (1, "objio")]
    for r in runs:
        assert r["samples"] == files and r["steps"] == files  # batch size 1
        assert 0 < r["au_pct"] <= 100 and r["samples_per_s"] > 0 and r["cpu_s"] > 0
        assert r["bytes"] > files * 2_000_000 and isinstance(r["au_met"], bool)
    summary = report["summary"]["iterable"]
    assert summary["objio_ratio"]["s3torchconnector"]["samples_per_s"] > 0
    assert report["cleanup"] == {"deleted": True}
    assert client.list(prefix) == []
    json.dumps(report)  # JSON-ready

    # map dataset, data kept, then found again without generating
    kw.update(keep=True, compare=[], dataset="map", epochs=1)
    first = train.run_training(client, prefix, "cosmoflow", **kw)
    again = train.run_training(client, prefix, "cosmoflow", **kw)
    assert first["generation"]["generated"] and not again["generation"]["generated"]
    assert again["runs"][0]["samples"] == files and again["config"]["dataset"] == "map"


@pytest.mark.timeout(600)
def test_throughput_and_cli(s3_server: Any, client: objio.Client, prefix: str, tmp_path: Any,
                            monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    report = train.run_throughput(client, prefix, size=64 * 1024, num=48, epochs=1)
    assert [(r["dataset"], r["library"]) for r in report["runs"]] == [
        ("map", "objio"), ("map", "s3torchconnector"),
        ("iterable", "objio"), ("iterable", "s3torchconnector")]
    assert all(r["samples"] == 48 and r["bytes"] == 48 * 65536 for r in report["runs"])
    assert set(report["summary"]) == {"map", "iterable"}
    from rich.console import Console

    train.print_report(report, Console(width=200))
    text = capsys.readouterr().out
    assert "objio ratio" in text and "s3torchconnector" in text

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_access_key)
    out = tmp_path / "r.json"
    code = cli_main(["bench", "train", "--endpoint-url", s3_server.endpoint_url, "--region", s3_server.region,
                       prefix, "--throughput", "--size", "16KiB", "--num", "20", "--epochs", "1",
                       "--dataset", "iterable", "--compare", "none", "--json", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    assert data["mode"] == "throughput" and data["config"]["libraries"] == ["objio"]
    assert [r["samples"] for r in data["runs"]] == [20]
    assert client.list(f"{prefix}throughput-16384-20/") == []  # generated, not kept
