"""``objio bench`` (objects, ``--compare obstore``) and ``objio bench stream`` on the Azure and
GCS emulators (Azurite, fake-gcs-server): embedded with ``--server azure|gcs`` or reached
through an ``az://`` / ``gs://`` URI, with obstore's AzureStore / GCSStore as the peer and the
emulator's CPU per MiB beside each client's. Small runs: the fields, never the speed."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

import objio
from objio.azure_server import LocalAzureServer
from objio.bench import _common as bench_common
from objio.cli import bench as bench_cli
from objio.gcs_server import LocalGCSServer

EMULATORS = {"azure": ("az", "Azurite"), "gcs": ("gs", "fake-gcs-server")}


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench_cli.configure_objects_parser(parser)
    args = parser.parse_args(argv)
    args.endpoint_url = args.region = args.profile = None  # global flags, set by objio.cli
    args.no_sign_request = False
    return args


def _check_tool(r: dict[str, Any], objects: int, nbytes: int, *, server: bool) -> None:
    assert r["status"] == "ok", r
    assert r["objects"] == objects and r["bytes"] == nbytes
    assert r["mib_per_s"] > 0 and r["objio_ratio"] > 0
    assert r["cpu_ms_per_mib"] >= 0 and r["cpu_ms_per_object"] >= 0
    if server:  # the emulator runs here: its CPU over each tool's runs
        assert r["server_cpu_s"] >= 0 and r["server_cpu_ms_per_mib"] >= 0
        for run in r["epochs"]:
            assert run["server_cpu_ms_per_mib"] >= 0
    else:
        assert "server_cpu_ms_per_mib" not in r


@pytest.mark.parametrize("kind", sorted(EMULATORS))
def test_bench_objects_on_embedded_emulator_against_obstore(
        kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("obstore")
    scheme, name = EMULATORS[kind]
    out = tmp_path / "r.json"
    args = _parse(["--server", kind, "--compare", "obstore,boto3", "--num", "3", "--size",
                   "4KiB", "--epochs", "2", "--no-progress", "--json", str(out)])
    code = bench_cli.run_from_args(args)
    text = capsys.readouterr()
    assert code == 0, text.err
    report = json.loads(out.read_text())
    assert name in report["server"]
    assert report["config"]["uri"] == f"{scheme}://{bench_common.DEFAULT_BUCKET}/bench/"
    compare = report["compare"]
    for tool in ("objio", "obstore"):
        _check_tool(compare[tool], 6, 6 * 4096, server=True)
    assert compare["boto3"]["status"] == "skipped"
    assert f"not {scheme}://" in compare["boto3"]["reason"]
    assert report["phases"]["get"]["summary"]["server_cpu_ms_per_mib"] >= 0
    assert report["cleanup"] == {"kept": False, "deleted": 3}
    assert "server CPU ms/MiB" in text.out and "obstore" in text.out


@pytest.mark.parametrize("kind", sorted(EMULATORS))
def test_bench_stream_on_embedded_emulator(kind: str, tmp_path: Path) -> None:
    pytest.importorskip("obstore")
    out = tmp_path / "s.json"
    # a process of its own: the stream benchmark forks a child per run, and obstore hangs in
    # a forked child once its parent used it (this test process may have, in another test)
    proc = subprocess.run([sys.executable, "-m", "objio", "bench", "stream", "--server", kind,
                           "--size", "2MiB", "--chunk", "1MiB", "--rounds", "1", "--json",
                           str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["scheme"] == EMULATORS[kind][0]
    assert EMULATORS[kind][1] in report["server"]
    read = report["summary"]["read"]
    assert set(read) == {"objio", "obstore-get", "obstore-reader"}  # boto3 speaks S3 only
    for lib, row in read.items():
        assert row["mib_s"] > 0 and row["cpu_ms_per_mib"] >= 0, lib
        assert row["server_cpu_ms_per_mib"] >= 0, lib
        if lib != "objio":
            assert row["objio_ratio"] > 0
    assert set(report["summary"]["write"]) == {"objio"}
    assert "objio-written object verified: True" in proc.stdout


@pytest.mark.parametrize("kind", sorted(EMULATORS))
def test_bench_objects_on_a_given_uri_with_the_emulator_in_the_environment(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A URI of the user's store (here the session's emulator, reached through the
    environment as the CLI user would): obstore gets the same account/endpoint."""
    pytest.importorskip("obstore")
    scheme = EMULATORS[kind][0]
    server = request.getfixturevalue("azure_server" if kind == "azure" else "gcs_server")
    client = request.getfixturevalue("az_client" if kind == "azure" else "gs_client")
    for var, value in server.environ().items():
        monkeypatch.setenv(var, value)
    prefix = f"{scheme}://objio-test/bench-{uuid.uuid4().hex[:8]}/"
    out = tmp_path / "r.json"
    args = _parse([prefix, "--compare", "obstore", "--num", "2", "--size", "3KiB", "--epochs",
                   "1", "--no-progress", "--json", str(out)])
    assert bench_cli.run_from_args(args) == 0
    report = json.loads(out.read_text())
    assert server.endpoint_url in report["server"]
    for tool in ("objio", "obstore"):
        _check_tool(report["compare"][tool], 2, 2 * 3072, server=False)
    assert client.list(prefix) == []


def test_emulator_cpu_seconds_grow_with_work(azure_server: LocalAzureServer,
                                             az_client: objio.Client) -> None:
    before = azure_server.cpu_seconds()
    assert before is not None and before > 0  # Node.js starting Azurite
    uri = f"az://objio-test/cpu-{uuid.uuid4().hex[:8]}"
    for _ in range(20):
        az_client.put_bytes(uri, b"x" * 65536)
        az_client.get(uri)
    after = azure_server.cpu_seconds()
    assert after is not None and after > before
    az_client.delete(uri)
    stopped = LocalGCSServer()
    with pytest.raises(RuntimeError, match="not running"):
        stopped.cpu_seconds()


@pytest.mark.parametrize("argv, match", [
    (["s3://some-bucket/p/", "--server", "azure"], "does not combine with a URI"),
    (["--server", "gcs", "--op", "head"], "--op and --clients need s3://"),
    (["--server", "azure", "--clients", "2"], "--op and --clients need s3://"),
])
def test_bench_emulator_bad_input(argv: list[str], match: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_cli.run_from_args(_parse(argv)) == 1
    assert match in capsys.readouterr().err
