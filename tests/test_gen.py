"""Tests for objio.gen (``objio gen``): specs, presets, DLIO layout, generation against a real S3 server."""

from __future__ import annotations

import argparse
import io
import json
import threading
from typing import Any

import numpy as np
import pytest

import objio
from objio import datagen, gen
from objio.cli import gen as gen_cli
from objio.formats import npz as npz_format
from objio.gen import WORKLOADS, GenSpec, generate_dataset, plan, plan_summary, workload_spec
from objio.gen import generate as gen_generate
from test_datagen import _parse_example, _read_tfrecords, _walk_tfrecords

# --------------------------------------------------------------------------
# GenSpec and presets
# --------------------------------------------------------------------------


def test_workload_presets_are_dlios_h100_parameters() -> None:
    # dlio_benchmark/configs/workload/{unet3d,resnet50,cosmoflow}_h100.yaml
    unet3d, resnet50, cosmoflow = WORKLOADS["unet3d"], WORKLOADS["resnet50"], WORKLOADS["cosmoflow"]
    assert (unet3d.format, unet3d.samples_per_file, unet3d.record_size, unet3d.record_size_stdev, unet3d.num_files) == (
        "npz",
        1,
        146_600_628,
        68_341_808,
        168,
    )
    assert (resnet50.format, resnet50.samples_per_file, resnet50.record_size, resnet50.num_files) == (
        "tfrecord",
        1251,
        114_660,
        1024,
    )
    assert resnet50.record_size_stdev == 0
    assert (cosmoflow.format, cosmoflow.samples_per_file, cosmoflow.record_size, cosmoflow.num_files) == (
        "tfrecord",
        1,
        2_828_486,
        524_288,
    )
    assert cosmoflow.record_size_stdev == 71_311
    for spec in WORKLOADS.values():
        assert spec.num_files_eval == 0 and spec.seed == 0
        assert spec.validated() == spec


@pytest.mark.parametrize(
    ("name", "scale", "files"),
    [("unet3d", 1, 168), ("unet3d", 0.05, 8), ("resnet50", 0.05, 51), ("cosmoflow", 0.001, 524), ("unet3d", 1e-9, 1)],
)
def test_workload_scale(name: str, scale: float, files: int) -> None:
    spec = workload_spec(name, scale=scale)
    assert spec.num_files == files
    assert spec.record_size == WORKLOADS[name].record_size


def test_workload_overrides_then_scale() -> None:
    spec = workload_spec("ResNet50", scale=0.5, seed=9, num_files=10, num_files_eval=4)
    assert (spec.format, spec.samples_per_file, spec.seed, spec.num_files, spec.num_files_eval) == (
        "tfrecord",
        1251,
        9,
        5,
        2,
    )


@pytest.mark.parametrize("scale", [0, -0.5, 1.5, float("nan"), "0.5", True])
def test_scale_outside_zero_one_is_rejected(scale: Any) -> None:
    with pytest.raises(ValueError, match="scale"):
        workload_spec("unet3d", scale=scale)
    with pytest.raises(ValueError, match="scale"):
        GenSpec().scaled(scale)


def test_unknown_workload_and_field() -> None:
    with pytest.raises(ValueError, match="unet3d, resnet50, cosmoflow"):
        workload_spec("bert")
    with pytest.raises(ValueError, match="nope"):
        workload_spec("unet3d", nope=1)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"format": "csv"}, "npz, tfrecord, hdf5, jpeg, png, parquet, raw"),
        ({"num_files": -1}, "num_files"),
        ({"num_files_eval": -2}, "num_files_eval"),
        ({"samples_per_file": 0}, "samples_per_file"),
        ({"record_size": 0}, "record_size"),
        ({"record_size": -10}, "record_size"),
        ({"record_size_stdev": -1}, "record_size_stdev"),
        ({"seed": -1}, "seed"),
        ({"file_prefix": "a/b"}, "file_prefix"),
        ({"format": "jpeg", "samples_per_file": 2}, "one sample per file"),
        ({"format": "jpeg", "record_size": 70000**2}, "limit is 65500"),
        ({"format": "npz", "compression": "gzip"}, "compression"),
        ({"format": "tfrecord", "chunks": True}, "chunks"),
        ({"format": "npz", "columns": (("a", "int64", 1),)}, "'parquet' only"),
        ({"format": "parquet", "columns": (("a", "text", 1),)}, "dtype"),
        ({"format": "parquet", "compression": "nope"}, "codec"),
        ({"format": "npz", "compression_level": 3}, "compression_level"),
        ({"quality": 0}, "quality"),
    ],
)
def test_genspec_validation(fields: dict[str, Any], match: str) -> None:
    if fields.get("format") == "parquet":
        pytest.importorskip("pyarrow")
    with pytest.raises(ValueError, match=match):
        GenSpec(**fields).validated()


def test_genspec_normalises_format() -> None:
    assert GenSpec(format="TFRecord").validated().format == "tfrecord"
    assert GenSpec(format="HDF5").extension == "hdf5"


# --------------------------------------------------------------------------
# plan: DLIO layout and naming
# --------------------------------------------------------------------------


def test_plan_follows_dlio_naming() -> None:
    spec = GenSpec(format="npz", num_files=12, num_files_eval=3, record_size=100)
    files = plan(spec, "s3://bucket/data/unet3d")
    names = [f.uri for f in files]
    # DLIO data_generator.py: {data_folder}/train/{prefix}_{i padded to len(str(n))}_of_{n}.{format}
    assert names[:3] == [
        "s3://bucket/data/unet3d/train/img_00_of_12.npz",
        "s3://bucket/data/unet3d/train/img_01_of_12.npz",
        "s3://bucket/data/unet3d/train/img_02_of_12.npz",
    ]
    assert names[11] == "s3://bucket/data/unet3d/train/img_11_of_12.npz"
    assert names[12:] == [f"s3://bucket/data/unet3d/valid/img_{j}_of_3.npz" for j in range(3)]
    assert [f.index for f in files] == list(range(15))  # valid after train, as DLIO orders them
    assert [f.split for f in files] == ["train"] * 12 + ["valid"] * 3
    assert all(f.index_uri is None for f in files)
    # a trailing slash (or none) makes no difference
    assert [f.uri for f in plan(spec, "s3://bucket/data/unet3d/")] == names


def test_plan_tfrecord_index_files_under_index() -> None:
    files = plan(GenSpec(format="tfrecord", num_files=2, num_files_eval=1, record_size=100), "s3://bucket/rn")
    assert [(f.uri, f.index_uri) for f in files] == [
        ("s3://bucket/rn/train/img_0_of_2.tfrecord", "s3://bucket/rn/index/train/img_0_of_2.tfrecord.idx"),
        ("s3://bucket/rn/train/img_1_of_2.tfrecord", "s3://bucket/rn/index/train/img_1_of_2.tfrecord.idx"),
        ("s3://bucket/rn/valid/img_0_of_1.tfrecord", "s3://bucket/rn/index/valid/img_0_of_1.tfrecord.idx"),
    ]


def test_plan_subfolders_and_prefix() -> None:
    spec = GenSpec(format="png", num_files=11, record_size=100, num_subfolders_train=3, file_prefix="sample")
    uris = [f.uri for f in plan(spec, "s3://bucket/x")]
    # DLIO: train/{i % n padded}/..., files still numbered across the whole split
    assert uris[0] == "s3://bucket/x/train/0/sample_00_of_11.png"
    assert uris[4] == "s3://bucket/x/train/1/sample_04_of_11.png"
    assert uris[10] == "s3://bucket/x/train/1/sample_10_of_11.png"


def test_plan_at_bucket_root_and_local(tmp_path: Any) -> None:
    assert plan(GenSpec(num_files=1), "s3://bucket")[0].uri == "s3://bucket/train/img_0_of_1.npz"
    local = plan(GenSpec(num_files=1), tmp_path)[0].uri
    assert local == f"file://{tmp_path}/train/img_0_of_1.npz"


def test_plan_sizes_and_shapes() -> None:
    spec = GenSpec(format="npz", num_files=20, record_size=146_600_628, record_size_stdev=68_341_808, seed=4)
    files = plan(spec, "s3://bucket/u")
    assert [f.dims for f in files] == datagen.record_dims_many(146_600_628, 68_341_808, seed=4, count=20)
    assert all(f.exact and f.size == npz_format._npz_file_size(f.dims[0], 1, f.dims[1]) for f in files)
    assert plan(spec, "s3://bucket/u") == files  # deterministic


def test_plan_summary_of_cosmoflow_is_a_summary() -> None:
    summary = plan_summary(workload_spec("cosmoflow", scale=0.01), "s3://bucket/cosmo", first=3)
    assert summary["files"] == 5243 and summary["index_files"] == 5243
    assert len(summary["first_files"]) == 3
    assert summary["first_files"][0]["uri"] == "s3://bucket/cosmo/train/img_0000_of_5243.tfrecord"
    assert summary["bytes_exact"]
    mean = summary["bytes"] / summary["files"]
    assert abs(mean - 2_828_486) < 0.02 * 2_828_486
    assert summary["min_file_bytes"] < summary["max_file_bytes"]


# --------------------------------------------------------------------------
# generate_dataset against the real S3 server
# --------------------------------------------------------------------------


def _key(uri: str) -> str:
    return uri.split("/", 3)[3]


def _check_file(fmt: str, data: bytes, dims: tuple[int, int], samples: int, sample_bytes: int) -> None:
    """Read one generated file with an independent reader."""
    if fmt == "npz":
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            assert npz["x"].shape == (*dims, samples) and npz["x"].dtype == np.uint8
            assert npz["y"].shape == (samples,)
    elif fmt == "tfrecord":
        records = _read_tfrecords(data)
        assert len(records) == samples
        for record in records:
            features = _parse_example(record)
            assert features["size"] == [dims[0]] and len(features["image"]) == dims[0] * dims[1]
    elif fmt == "hdf5":
        import h5py

        with h5py.File(io.BytesIO(data), "r") as f:
            assert f["records"].shape == (samples, *dims) and f["labels"].shape == (samples,)
    elif fmt in ("jpeg", "png"):
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            assert image.format == fmt.upper() and image.mode == "L"
            assert np.asarray(image).shape == dims
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(data))
        assert table.num_rows == samples
        assert {len(v) for v in table.column("data").to_pylist()} == {sample_bytes}
    elif fmt == "safetensors":
        safetensors_numpy = pytest.importorskip("safetensors.numpy")
        arrays = safetensors_numpy.load(bytes(data))
        assert arrays["x"].shape == (samples, *dims) and arrays["x"].dtype == np.uint8
        assert arrays["y"].shape == (samples,) and arrays["y"].dtype == np.int64
    else:
        assert len(data) == sample_bytes * samples


@pytest.mark.parametrize("fmt", datagen.FORMATS)
def test_generate_dataset_writes_the_plan(client: objio.Client, prefix: str, fmt: str) -> None:
    if fmt == "hdf5":
        pytest.importorskip("h5py")
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    samples = 1 if fmt in ("jpeg", "png") else 3
    spec = GenSpec(
        format=fmt, num_files=5, num_files_eval=2, samples_per_file=samples, record_size=3000, record_size_stdev=500, seed=11
    )
    records: list[Any] = []
    summary = generate_dataset(client, prefix, spec, max_in_flight=3, observer=records.append)
    planned = plan(spec, prefix)
    expected = sorted([_key(p.uri) for p in planned] + [_key(p.index_uri) for p in planned if p.index_uri])
    assert sorted(client.list(prefix)) == expected
    assert summary["files"] == 7 and summary["files_train"] == 5 and summary["files_eval"] == 2
    assert summary["index_files"] == (7 if fmt == "tfrecord" else 0)
    assert summary["objects"] == len(expected) == len(records)
    infos = {i.key: i.size for i in client.list_objects(prefix)}
    assert summary["bytes"] == sum(infos.values())
    assert summary["seconds"] > 0 and summary["mib_per_s"] > 0 and summary["files_per_s"] > 0
    assert summary["spec"]["format"] == fmt and summary["max_in_flight"] == 3
    contents = set()
    for p in planned:
        data = bytes(client.get(p.uri))
        if p.exact:
            assert len(data) == p.size
        _check_file(fmt, data, p.dims, samples, p.sample_bytes)
        # each object is exactly what the generator makes for (seed, index)
        assert data == bytes(
            datagen.dataset_file(fmt, 3000, samples=samples, seed=11, index=p.index, record_size_stdev=500)
        )
        contents.add(data)
        if p.index_uri:
            index = bytes(client.get(p.index_uri)).decode()
            assert [tuple(map(int, line.split())) for line in index.splitlines()] == [
                (o, n) for o, n, _ in _walk_tfrecords(data)
            ]
    assert len(contents) == 7  # no two files alike


def test_generate_dataset_is_deterministic(client: objio.Client, prefix: str) -> None:
    spec = GenSpec(format="tfrecord", num_files=3, samples_per_file=2, record_size=500, seed=5)
    generate_dataset(client, prefix + "a/", spec)
    generate_dataset(client, prefix + "b/", spec)
    for p in plan(spec, prefix + "a/"):
        other = p.uri.replace("/a/", "/b/")
        assert client.get(p.uri) == client.get(other)


def test_generate_dataset_keeps_at_most_max_in_flight_files(
    client: objio.Client, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = threading.Lock()
    state = {"alive": 0, "peak": 0}
    real_build = gen_generate.build_planned

    def build(spec: GenSpec, p: Any) -> Any:
        with lock:
            state["alive"] += 1
            state["peak"] = max(state["peak"], state["alive"])
        return real_build(spec, p)

    def uploaded(record: Any) -> None:
        if not record.uri.endswith(".idx"):
            with lock:
                state["alive"] -= 1

    monkeypatch.setattr(gen_generate, "build_planned", build)
    spec = GenSpec(format="raw", num_files=40, record_size=64 * 1024)
    summary = generate_dataset(client, prefix, spec, max_in_flight=4, observer=uploaded)
    assert summary["files"] == 40
    assert 1 <= state["peak"] <= 4 and state["alive"] == 0


def test_missing_bucket_fails_before_any_generation(client: objio.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("generated data for a missing bucket")

    monkeypatch.setattr(gen_generate, "build_planned", boom)
    with pytest.raises(FileNotFoundError, match="objio-no-such-bucket") as info:
        generate_dataset(client, "s3://objio-no-such-bucket/data", GenSpec(num_files=3))
    assert isinstance(info.value, objio.NotFoundError)


def test_generate_dataset_rejects_bad_arguments(client: objio.Client, prefix: str) -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        generate_dataset(client, prefix, GenSpec(num_files=1), max_in_flight=0)
    with pytest.raises(ValueError, match="num_files"):
        generate_dataset(client, prefix, GenSpec(num_files=-1))
    assert client.list(prefix) == []


def test_generate_dataset_to_local_files(client: objio.Client, tmp_path: Any) -> None:
    spec = GenSpec(format="npz", num_files=2, num_files_eval=1, record_size=400)
    summary = generate_dataset(client, tmp_path / "ds", spec)
    assert summary["files"] == 3
    found = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "ds").rglob("*.npz"))
    assert found == ["ds/train/img_0_of_2.npz", "ds/train/img_1_of_2.npz", "ds/valid/img_0_of_1.npz"]


def test_auto_max_in_flight() -> None:
    assert gen.auto_max_in_flight(WORKLOADS["unet3d"]) == 7  # ~146 MB files: about 1 GiB in memory
    assert gen.auto_max_in_flight(WORKLOADS["cosmoflow"]) == 32
    assert gen.auto_max_in_flight(GenSpec(record_size=4 << 30)) == 2


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------


def _args(server: Any, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint-url", default=None)
    parser.add_argument("--region", default=None)
    parser.add_argument("--profile", default=None)
    parser.add_argument("--no-sign-request", action="store_true")
    gen_cli.configure_parser(parser)
    extra = ["--endpoint-url", server.endpoint_url] if server is not None else []
    return parser.parse_args([*extra, *argv])


@pytest.fixture
def s3_env(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_access_key)
    monkeypatch.setenv("AWS_REGION", s3_server.region)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return s3_server


def test_cli_generates_with_json_summary(
    s3_env: Any, client: objio.Client, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _args(
        s3_env, prefix, "--format", "TFRecord", "--num-files", "3", "--num-files-eval", "1",
        "--samples-per-file", "4", "--record-size", "1KiB", "--seed", "2", "--json", "-", "--no-progress",
    )  # fmt: skip
    assert gen_cli.run_from_args(args) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["files"] == 4 and summary["index_files"] == 4 and summary["objects"] == 8
    assert summary["spec"]["record_size"] == 1024 and summary["spec"]["samples_per_file"] == 4
    assert "wrote 4 tfrecord files" in captured.err  # the human line goes to stderr with --json -
    assert len(client.list(prefix)) == 8


def test_cli_workload_scale_and_overrides(
    s3_env: Any, client: objio.Client, prefix: str, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "summary.json"
    args = _args(
        s3_env, prefix, "--workload", "unet3d", "--scale", "0.02", "--record-size", "4KiB",
        "--record-size-stdev", "1000", "--json", str(out), "--no-progress",
    )  # fmt: skip
    assert gen_cli.run_from_args(args) == 0
    summary = json.loads(out.read_text())
    assert summary["workload"] == "unet3d" and summary["scale"] == 0.02
    assert summary["spec"]["format"] == "npz" and summary["files"] == 3  # round(168 * 0.02)
    assert summary["spec"]["record_size"] == 4096 and summary["spec"]["record_size_stdev"] == 1000
    assert sorted(client.list(prefix)) == [_key(prefix) + f"train/img_{i}_of_3.npz" for i in range(3)]
    assert "wrote 3 npz files" in capsys.readouterr().out


def test_cli_dry_run_prints_a_summary_and_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    args = _args(None, "s3://objio-no-such-bucket/cosmo", "--workload", "cosmoflow", "--scale", "0.01", "--dry-run")
    assert gen_cli.run_from_args(args) == 0  # no server contacted: the bucket is not checked
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) < 15
    assert "5,243 tfrecord files" in lines[0] and "5,243 index files" in lines[0]
    assert "s3://objio-no-such-bucket/cosmo/train/img_0000_of_5243.tfrecord" in out
    assert "and 5,238 more" in out


def test_cli_dry_run_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = _args(None, "s3://bucket/p", "--format", "jpeg", "--num-files", "2", "--record-size", "100", "--dry-run",
                 "--json", "-")  # fmt: skip
    assert gen_cli.run_from_args(args) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["dry_run"] is True and summary["files"] == 2 and not summary["bytes_exact"]
    assert [f["uri"] for f in summary["first_files"]] == [
        "s3://bucket/p/train/img_0_of_2.jpeg",
        "s3://bucket/p/train/img_1_of_2.jpeg",
    ]
    assert "dry run" in captured.err


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--format", "csv"], "npz, tfrecord, hdf5, jpeg, png, parquet, raw"),
        ([], "--format"),
        (["--format", "npz", "--num-files", "-1"], "num_files"),
        (["--format", "npz", "--record-size", "0"], "record_size"),
        (["--format", "npz", "--record-size", "lots"], "--record-size"),
        (["--workload", "unet3d", "--scale", "0"], "scale"),
        (["--workload", "unet3d", "--scale", "2"], "scale"),
        (["--format", "npz", "--samples-per-file", "0"], "samples_per_file"),
        (["--format", "png", "--samples-per-file", "2"], "one sample per file"),
        (["--format", "parquet", "--columns", "data"], "--columns"),
        (["--format", "hdf5", "--chunks", "a,b"], "--chunks"),
    ],
)
def test_cli_user_errors_exit_1_with_one_line(
    argv: list[str], match: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gen_cli.run_from_args(_args(None, "s3://bucket/p", "--dry-run", *argv)) == 1
    err = capsys.readouterr().err
    assert err.startswith("objio: error: ") and err.count("\n") == 1
    assert match in err
    assert "Traceback" not in err


def test_cli_missing_bucket_exits_1(s3_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    args = _args(s3_env, "s3://objio-no-such-bucket/x", "--format", "raw", "--num-files", "2", "--no-progress")
    assert gen_cli.run_from_args(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("objio: error: bucket 'objio-no-such-bucket' does not exist")
    assert err.count("\n") == 1


def test_cli_ctrl_c_exits_130(s3_env: Any, prefix: str, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(gen_cli, "generate_dataset", interrupted)
    assert gen_cli.run_from_args(_args(s3_env, prefix, "--format", "raw", "--no-progress")) == 130
    assert "interrupted" in capsys.readouterr().err


def test_cli_progress_bar_renders(client: objio.Client, prefix: str) -> None:
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    spec = GenSpec(format="raw", num_files=5, record_size=10_000)
    generate_dataset(client, prefix, spec, progress=True, console=console)
    text = buffer.getvalue()
    assert "gen raw" in text and "5/5" in text and "files/s" in text and "MiB/s" in text


def test_cli_parser_lists_the_workloads() -> None:
    parser = argparse.ArgumentParser()
    gen_cli.configure_parser(parser)
    text = parser.format_help()
    for name in ("unet3d", "resnet50", "cosmoflow", "--dry-run", "--scale", "--json"):
        assert name in text


def test_measure_generation() -> None:
    spec = GenSpec(format="tfrecord", num_files=5, samples_per_file=2, record_size=1000)
    (result,) = gen.measure_generation([("tiny", spec)], files=2)
    planned = plan(spec, "s3://bucket/p")[:2]
    index_bytes = sum(len(datagen.tfrecord_index(datagen.tfrecord_file(p.dims, 2, index=p.index))) for p in planned)
    assert result["name"] == "tiny" and result["files"] == 2
    assert result["bytes"] == sum(p.size for p in planned) + index_bytes
    assert result["seconds"] > 0 and result["mib_per_s"] > 0
    with pytest.raises(ValueError, match="files"):
        gen.measure_generation([("tiny", spec)], files=0)
    names = [name for name, _ in gen.default_measure_specs()]
    assert "npz 16MiB" in names and names[-3:] == ["unet3d", "resnet50", "cosmoflow"]


def test_cli_measure_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    args = _args(None, "s3://objio-no-such-bucket/p", "--format", "raw", "--record-size", "1KiB", "--num-files", "2",
                 "--measure", "--json", "-")  # fmt: skip
    assert gen_cli.run_from_args(args) == 0
    captured = capsys.readouterr()
    (result,) = json.loads(captured.out)["generation"]
    assert result["format"] == "raw" and result["files"] == 2 and result["bytes"] == 2048
    assert "MiB/s" in captured.err
