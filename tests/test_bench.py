"""Tests for objio.bench (``objio bench``) against a real local S3 server (SeaweedFS).

Only the shape and consistency of the report are checked, never wall times or throughput.
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import objio
from objio import bench
from objio.bench import _common as bench_common
from objio.bench import peers
from objio.cli import bench as bench_cli
from objio.server import LocalS3Server, _find_weed

try:
    _find_weed(None)
except FileNotFoundError as exc:  # pragma: no cover - depends on the environment
    _NO_WEED: str | None = str(exc)
else:
    _NO_WEED = None

BUCKET = "objio-bench-test"
NUM = 8
SIZE = 64 * 1024


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest) -> Iterator[LocalS3Server]:
    """The session's shared server (tests/conftest.py ``s3_server``) if there is one, else one
    server for this module."""
    if _NO_WEED is not None:
        pytest.skip(f"no SeaweedFS: {_NO_WEED}")
    try:
        shared = request.getfixturevalue("s3_server")
    except pytest.FixtureLookupError:
        shared = None
    if isinstance(shared, LocalS3Server):
        yield shared
        return
    with LocalS3Server() as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: LocalS3Server) -> objio.Client:
    c = objio.Client(server.config)
    c.create_bucket(f"s3://{BUCKET}", exist_ok=True)
    return c


@pytest.fixture
def prefix() -> str:
    return f"s3://{BUCKET}/bench-{uuid.uuid4().hex[:8]}/"


@pytest.fixture
def aws_env(server: LocalS3Server, monkeypatch: pytest.MonkeyPatch) -> LocalS3Server:
    """Credentials in the environment, as a CLI user would have them."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret_access_key)
    for var in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "OBJIO_PROFILE", "OBJIO_ENDPOINT_URL",
                "OBJIO_UNSIGNED"):
        monkeypatch.delenv(var, raising=False)
    return server


def _parse(argv: list[str], server: LocalS3Server | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench_cli.configure_objects_parser(parser)
    args = parser.parse_args(argv)
    # Global CLI options, set by objio.cli in real use.
    args.endpoint_url = server.endpoint_url if server is not None else None
    args.region = server.region if server is not None else None
    args.profile = None
    args.no_sign_request = False
    return args


def _check_run(s: dict[str, Any], objects: int, nbytes: int, *, ttfb: bool) -> None:
    assert s["objects"] == objects
    assert s["bytes"] == nbytes
    assert s["wall_s"] > 0
    assert s["mib_per_s"] > 0 and s["objects_per_s"] > 0
    assert s["cpu_s"] >= 0
    assert s["cpu_ms_per_object"] >= 0 and s["cpu_ms_per_mib"] >= 0
    lat = s["latency_ms"]
    total = lat["total"]
    assert 0 <= total["p50"] <= total["p90"] <= total["p99"]
    if ttfb:
        t = lat["ttfb"]
        assert 0 <= t["p50"] <= t["p90"] <= t["p99"]
        assert t["p50"] <= total["p99"]
    else:
        assert lat["ttfb"] is None


# ----------------------------------------------------------------------------- pure helpers
def test_percentiles_are_ordered_and_in_ms() -> None:
    p = bench_common.percentiles_ms([0.001 * i for i in range(1, 101)])
    assert p is not None
    assert p["p50"] <= p["p90"] <= p["p99"] <= 100.0
    assert p["p50"] == pytest.approx(50.5)
    assert bench_common.percentiles_ms([]) is None
    one = bench_common.percentiles_ms([0.002])
    assert one == {"p50": pytest.approx(2.0), "p90": pytest.approx(2.0), "p99": pytest.approx(2.0)}


def test_parse_peers() -> None:
    assert bench.parse_peers(None) is None
    assert bench.parse_peers("boto3, OBSTORE,boto3") == ["boto3", "obstore"]
    assert bench.parse_peers(["s3dlio"]) == ["s3dlio"]
    with pytest.raises(ValueError, match="unknown peer 'minio'"):
        bench.parse_peers("obstore,minio")
    with pytest.raises(ValueError):
        bench.parse_peers(",")


def test_configure_parser_defaults() -> None:
    args = _parse([])
    assert args.uri is None
    # --num/--size/--epochs stay None in the parser (the training emulation shares it and has
    # its own defaults); run_from_args applies 64 objects, 1 MiB and 3 epochs.
    assert (args.num, args.size, args.object_type, args.max_in_flight, args.epochs) == (
        None, None, "RAW", 64, None)
    assert (args.json, args.keep, args.compare, args.peers, args.seed, args.no_progress) == (
        None, False, None, None, 0, False)


def test_importing_bench_does_not_import_peers() -> None:
    import subprocess
    import sys

    code = ("import sys, objio.bench; "
            "print(sorted(m for m in ('obstore', 'boto3', 's3dlio', 's3torchconnector') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- run_bench
def test_run_bench_report(client: objio.Client, prefix: str) -> None:
    report = bench.run_bench(client, prefix, num=NUM, size="64KiB", max_in_flight=4, epochs=2,
                             seed=3)
    assert set(report) >= {"config", "server", "phases", "compare", "environment", "cleanup"}
    cfg = report["config"]
    assert cfg["num"] == NUM and cfg["size"] == SIZE and cfg["object_type"] == "RAW"
    assert cfg["epochs"] == 2 and cfg["max_in_flight"] == 4 and cfg["seed"] == 3
    assert cfg["compare"] is False and cfg["peers"] == []
    assert report["server"] == client.config.endpoint_url

    _check_run(report["phases"]["put"], NUM, NUM * SIZE, ttfb=False)
    get = report["phases"]["get"]
    assert [e["epoch"] for e in get["epochs"]] == [1, 2]
    for e in get["epochs"]:
        _check_run(e, NUM, NUM * SIZE, ttfb=True)
    summary = get["summary"]
    _check_run(summary, 2 * NUM, 2 * NUM * SIZE, ttfb=True)
    assert summary["runs"] == 2
    assert report["compare"] == {}

    env = report["environment"]
    assert env["objio"] == objio.__version__ and env["cpu_count"] and env["python"]
    json.dumps(report)  # JSON-ready

    assert report["cleanup"] == {"kept": False, "deleted": NUM}
    assert client.list(prefix) == []


def test_run_bench_keep(client: objio.Client, prefix: str) -> None:
    report = bench.run_bench(client, prefix, num=NUM, size=SIZE, epochs=1, keep=True)
    assert report["cleanup"]["kept"] is True
    names = {k.rsplit("/", 1)[-1] for k in client.list(prefix)}
    assert names == {bench.TEMPLATE.format(i, NUM) for i in range(NUM)}
    client.delete(prefix)


def test_cleanup_deletes_only_benchmark_objects(client: objio.Client, prefix: str) -> None:
    client.put_bytes(prefix + "keep-me.txt", b"not a benchmark object")
    client.put_bytes(prefix + "sub/object_0_of_4.dat", b"deeper")
    bench.run_bench(client, prefix, num=4, size=1024, epochs=1)
    assert sorted(client.list(prefix)) == sorted(
        [prefix[len(f"s3://{BUCKET}/"):] + "keep-me.txt",
         prefix[len(f"s3://{BUCKET}/"):] + "sub/object_0_of_4.dat"])
    client.delete(prefix)


def test_run_bench_npz_objects(client: objio.Client, prefix: str) -> None:
    report = bench.run_bench(client, prefix, num=4, size="64KiB", object_type="npz", epochs=1)
    put = report["phases"]["put"]
    assert report["config"]["object_type"] == "NPZ"
    assert 0 < put["bytes"] <= 4 * SIZE  # NPZ files are at most `size` bytes
    assert report["phases"]["get"]["summary"]["bytes"] == put["bytes"]
    assert client.list(prefix) == []


@pytest.mark.parametrize("kwargs, match", [
    ({"num": 0}, "num"),
    ({"epochs": 0}, "epochs"),
    ({"max_in_flight": 0}, "max_in_flight"),
    ({"size": "12 parsecs"}, "size"),
    ({"object_type": "parquet"}, "object_type"),
    ({"compare": True, "peers": "nope"}, "unknown peer"),
])
def test_run_bench_rejects_bad_input(client: objio.Client, prefix: str, kwargs: dict[str, Any],
                                     match: str) -> None:
    args: dict[str, Any] = {"num": NUM, "size": SIZE, **kwargs}
    with pytest.raises(ValueError, match=match):
        bench.run_bench(client, prefix, **args)
    assert client.list(prefix) == []


def test_run_bench_missing_bucket(client: objio.Client) -> None:
    with pytest.raises(FileNotFoundError):
        bench.run_bench(client, "s3://objio-no-such-bucket/x/", num=2, size=1024, epochs=1)


# ----------------------------------------------------------------------------- compare
def test_compare_with_obstore_and_boto3(client: objio.Client, prefix: str) -> None:
    pytest.importorskip("obstore")
    pytest.importorskip("boto3")
    report = bench.run_bench(client, prefix, num=NUM, size=SIZE, max_in_flight=4, epochs=2,
                             compare=True, peers="obstore,boto3")
    compare = report["compare"]
    assert list(compare) == ["objio", "obstore", "boto3"]
    assert report["config"]["peers"] == ["obstore", "boto3"]
    for name, r in compare.items():
        assert r["status"] == "ok", (name, r)
        assert r["runs"] == 2 and len(r["epochs"]) == 2
        assert r["objects"] == 2 * NUM and r["bytes"] == 2 * NUM * SIZE
        assert r["mib_per_s"] > 0 and r["objects_per_s"] > 0
        assert r["cpu_ms_per_object"] >= 0
        assert r["objio_ratio"] > 0
        assert r["objio_ratio"] == pytest.approx(compare["objio"]["mib_per_s"] / r["mib_per_s"])
    assert compare["objio"]["objio_ratio"] == 1.0
    # objio's compare entry is the get phase itself (same runs)
    assert compare["objio"]["mib_per_s"] == report["phases"]["get"]["summary"]["mib_per_s"]
    assert report["ops"] == {}  # without --op: put + get as before (put not compared)
    assert client.list(prefix) == []


def test_compare_reports_missing_and_failing_peers(client: objio.Client, prefix: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("boto3")
    monkeypatch.setattr(peers.Obstore, "installed", classmethod(lambda cls: False))

    def broken_run(advance: Any) -> tuple[int, int]:
        raise ConnectionError("boom\nsecond line")

    monkeypatch.setattr(peers.Boto3, "getter", lambda self, *args: peers.Getter(broken_run))
    report = bench.run_bench(client, prefix, num=4, size=1024, epochs=2, compare=True,
                             peers=["obstore", "boto3"])
    compare = report["compare"]
    assert compare["objio"]["status"] == "ok"
    assert compare["obstore"] == {"status": "skipped",
                                  "reason": "not installed (pip install obstore)"}
    assert compare["boto3"]["status"] == "skipped"
    assert compare["boto3"]["reason"] == "failed in epoch 1: boom"
    assert len(report["phases"]["get"]["epochs"]) == 2
    assert client.list(prefix) == []


def test_compare_detects_short_reads(client: objio.Client, prefix: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("boto3")
    monkeypatch.setattr(peers.Boto3, "getter",
                        lambda self, *args: peers.Getter(lambda advance: (4, 10)))
    report = bench.run_bench(client, prefix, num=4, size=1024, epochs=1, compare=True,
                             peers="boto3")
    assert report["compare"]["boto3"]["status"] == "skipped"
    assert "expected 4 / 4096" in report["compare"]["boto3"]["reason"]


def test_print_report_plain(client: objio.Client, prefix: str) -> None:
    import io

    from rich.console import Console

    report = bench.run_bench(client, prefix, num=4, size=1024, epochs=1, compare=True,
                             peers="boto3")
    buf = io.StringIO()
    bench.print_report(report, Console(file=buf, width=200))
    text = buf.getvalue()
    assert "\x1b[" not in text  # plain text, no escape codes, when not a terminal
    for word in ("put", "get epoch 1", "MiB/s", "CPU ms/GET", "objio", "boto3"):
        assert word in text


# ----------------------------------------------------------------------------- CLI
def test_cli_json_file(aws_env: LocalS3Server, client: objio.Client, prefix: str,
                       tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    args = _parse([prefix, "--num", "4", "--size", "64KiB", "--epochs", "1", "--max-in-flight",
                   "2", "--object-type", "tfrecord", "--seed", "7", "--json", str(out)], aws_env)
    assert bench_cli.run_from_args(args) == 0
    report = json.loads(out.read_text())
    assert report["config"]["num"] == 4 and report["config"]["object_type"] == "TFRECORD"
    assert report["config"]["seed"] == 7 and report["config"]["max_in_flight"] == 2
    assert report["server"] == aws_env.endpoint_url
    assert report["phases"]["get"]["summary"]["objects"] == 4
    captured = capsys.readouterr()
    assert "get epoch 1" in captured.out and "\x1b[" not in captured.out
    assert client.list(prefix) == []


def test_cli_json_stdout_keeps_stdout_pure_json(aws_env: LocalS3Server, client: objio.Client,
                                                prefix: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse([prefix, "--num", "2", "--size", "1KiB", "--epochs", "1", "--keep",
                   "--json", "-"], aws_env)
    assert bench_cli.run_from_args(args) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["cleanup"]["kept"] is True
    assert "get epoch 1" in captured.err  # the tables went to stderr
    assert len(client.list(prefix)) == 2
    client.delete(prefix)


def test_cli_missing_bucket(aws_env: LocalS3Server, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse(["s3://objio-no-such-bucket/bench/", "--num", "2", "--size", "1KiB",
                   "--no-progress"], aws_env)
    assert bench_cli.run_from_args(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("objio bench: error: ")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "objio-no-such-bucket" in err


def test_cli_bad_credentials(aws_env: LocalS3Server, prefix: str,
                             monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    args = _parse([prefix, "--num", "2", "--size", "1KiB", "--epochs", "1"], aws_env)
    assert bench_cli.run_from_args(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("objio bench: error: ") and err.count("\n") == 1


@pytest.mark.parametrize("argv, match", [
    (["--size", "12XB"], "--size"),
    (["--object-type", "parquet"], "object_type"),
    (["--peers", "obstore,nope"], "unknown peer"),
    (["--num", "0"], "--num"),
    (["file:///tmp/x/"], "s3://"),
])
def test_cli_bad_input(argv: list[str], match: str, capsys: pytest.CaptureFixture[str]) -> None:
    if not argv[0].startswith("file:"):
        argv = ["s3://objio-bench-test/x/", *argv]
    assert bench_cli.run_from_args(_parse(argv)) == 1
    err = capsys.readouterr().err
    assert err.startswith("objio bench: error: ") and err.count("\n") == 1
    assert match in err


def test_cli_ctrl_c_exits_130(monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(*a: Any, **k: Any) -> dict[str, Any]:
        raise KeyboardInterrupt

    monkeypatch.setattr(bench_cli, "run_bench", interrupted)
    assert bench_cli.run_from_args(_parse(["s3://objio-bench-test/x/"])) == 130
    assert "interrupted" in capsys.readouterr().err


def test_cli_embedded_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if _NO_WEED is not None:
        pytest.skip(f"no SeaweedFS: {_NO_WEED}")
    out = tmp_path / "r.json"
    args = _parse(["--num", "3", "--size", "4KiB", "--epochs", "1", "--json", str(out)])
    assert bench_cli.run_from_args(args) == 0
    report = json.loads(out.read_text())
    assert report["server"] == "embedded"
    assert report["config"]["uri"] == f"s3://{bench.DEFAULT_BUCKET}/{bench.DEFAULT_PREFIX}"
    assert report["cleanup"] == {"kept": False, "deleted": 3}


# ----------------------------------------------------------------------------- --op
def test_parse_ops() -> None:
    from objio.bench.ops import DEFAULT_OPS, parse_ops

    assert parse_ops(None) == list(DEFAULT_OPS) == ["put", "get"]
    assert parse_ops("delete, HEAD,head") == ["head", "delete"]  # in the order they run
    assert parse_ops(["gen", "copy", "list"]) == ["list", "copy", "gen"]
    with pytest.raises(ValueError, match="unknown operation 'rename'"):
        parse_ops("head,rename")
    with pytest.raises(ValueError, match="--op is empty"):
        parse_ops(" , ")


def _check_op(res: dict[str, Any], unit: str, tools: list[str], *, moves: bool) -> None:
    assert res["unit"] == unit and res["what"]
    assert list(res["tools"])[: len(tools)] == tools
    for name in tools:
        r = res["tools"][name]
        assert r["status"] == "ok", (name, r)
        assert len(r["runs"]) == 2 and [x["round"] for x in r["runs"]] == [1, 2]
        assert r["ops_per_s"] > 0 and r["cpu_ms_per_op"] >= 0
        assert (r["mib_per_s"] is not None and r["mib_per_s"] > 0) == moves
        assert r["objio_ratio"] == pytest.approx(
            res["tools"]["objio"]["ops_per_s"] / r["ops_per_s"])


def test_run_bench_every_op_with_peers(client: objio.Client, prefix: str) -> None:
    pytest.importorskip("obstore")
    pytest.importorskip("boto3")
    report = bench.run_bench(client, prefix, num=6, size="16KiB", max_in_flight=4, epochs=2,
                             compare=True, peers="obstore,boto3",
                             ops="put,head,list,copy,delete")
    assert report["config"]["ops"] == ["put", "head", "list", "copy", "delete"]
    assert "get" not in report["phases"] and report["compare"] == {}
    ops = report["ops"]
    assert list(ops) == ["put", "head", "list", "copy", "delete"]
    _check_op(ops["put"], "objects", ["objio", "obstore", "boto3"], moves=True)
    assert ops["put"]["tools"]["obstore"]["runs"][0]["bytes"] == 6 * 16 * 1024
    _check_op(ops["head"], "objects", ["objio", "obstore", "boto3"], moves=False)
    _check_op(ops["list"], "keys", ["objio", "obstore", "boto3"], moves=False)
    assert ops["list"]["keys"] == 6
    _check_op(ops["copy"], "objects", ["objio", "objio (HEAD first)", "objio (through client)",
                                       "obstore", "boto3"], moves=True)
    _check_op(ops["delete"], "objects", ["objio", "obstore", "boto3"], moves=False)
    json.dumps(report)
    assert client.list(prefix) == []  # the operations' objects and the put phase's: gone


def test_run_bench_ops_without_peers_and_gen(client: objio.Client, prefix: str) -> None:
    report = bench.run_bench(client, prefix, num=2, size=1024, epochs=2, ops="get,head,gen")
    assert set(report["ops"]) == {"head", "gen"}  # no put op without peers: the put phase is it
    _check_op(report["ops"]["head"], "objects", ["objio"], moves=False)
    _check_op(report["ops"]["gen"], "files", ["objio"], moves=True)
    assert report["ops"]["gen"]["tools"]["objio"]["runs"][0]["ops"] == 2
    assert report["phases"]["get"]["summary"]["objects"] == 4
    assert client.list(prefix) == []


def test_gen_op_against_s3dlio(client: objio.Client, prefix: str) -> None:
    pytest.importorskip("s3dlio")
    report = bench.run_bench(client, prefix, num=2, size=1024, epochs=2, ops="gen",
                             compare=True, peers="s3dlio,boto3")
    tools = report["ops"]["gen"]["tools"]
    assert tools["boto3"] == {"status": "skipped", "version": tools["boto3"]["version"],
                              "reason": "has no gen operation"}
    s3dlio = tools["s3dlio"]
    if s3dlio["status"] == "skipped":  # s3dlio binds one endpoint per process
        assert "one S3 client per process" in s3dlio["reason"]
    else:
        assert s3dlio["ops_per_s"] > 0 and len(s3dlio["runs"]) == 2
    assert client.list(prefix) == []


def test_op_peer_failures_are_reported(client: objio.Client, prefix: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("boto3")
    pytest.importorskip("obstore")

    def broken(self: Any, *args: Any) -> peers.Getter:
        def run(advance: Any) -> tuple[int, int]:
            raise ConnectionError("refused\nmore")
        return peers.Getter(run)

    monkeypatch.setattr(peers.Boto3, "header", broken)
    monkeypatch.setattr(peers.Obstore, "header",
                        lambda self, *a: peers.Getter(lambda advance: (1, 0)))
    report = bench.run_bench(client, prefix, num=3, size=1024, epochs=1, ops="head",
                             compare=True, peers="boto3,obstore")
    tools = report["ops"]["head"]["tools"]
    assert tools["objio"]["status"] == "ok"
    assert tools["boto3"]["status"] == "skipped"
    assert tools["boto3"]["reason"] == "failed in round 1: refused"
    assert tools["obstore"]["reason"].endswith("did 1 operations, expected 3")


def test_print_report_with_ops(client: objio.Client, prefix: str) -> None:
    import io

    from rich.console import Console

    report = bench.run_bench(client, prefix, num=2, size=1024, epochs=1, ops="head,delete")
    buf = io.StringIO()
    bench.print_report(report, Console(file=buf, width=200))
    text = buf.getvalue()
    for word in ("head: HEAD of the 2 objects", "delete: delete of 2 objects", "objects/s",
                 "CPU ms/object", "objio/tool"):
        assert word in text, word


def test_cli_op(aws_env: LocalS3Server, client: objio.Client, prefix: str, tmp_path: Path,
                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    args = _parse([prefix, "--num", "2", "--size", "1KiB", "--epochs", "1", "--op", "head,list",
                   "--json", str(out)], aws_env)
    assert bench_cli.run_from_args(args) == 0
    report = json.loads(out.read_text())
    assert list(report["ops"]) == ["head", "list"] and "get" not in report["phases"]
    assert "head: HEAD of the 2 objects" in capsys.readouterr().out
    args = _parse([prefix, "--op", "head,rename"], aws_env)
    assert bench_cli.run_from_args(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("objio bench: error: ") and "rename" in err


def test_ops_on_a_local_server_start_each_timed_run_with_no_dirty_pages(
        client: objio.Client, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Linux throttles writers past vm.dirty_ratio, which hit whichever tool ran late in a
    # long bench (PUT/s fell 2.5x for every client after ~4 GiB written): with the server on
    # this machine, each timed run starts after the dirty pages were written back.
    from objio.bench import ops as bench_ops
    from objio.uri import parse_uri

    syncs: list[int] = []
    monkeypatch.setattr(bench_ops.os, "sync", lambda: syncs.append(1))
    uris = [f"{prefix}o{i}" for i in range(2)]
    client.put_many([(u, b"x" * 10) for u in uris])
    kw: dict[str, Any] = dict(num=2, size=10, max_in_flight=2, rounds=3, peer_names=[],
                              peer_credentials=None, uris=uris, sizes=[10, 10])
    out = bench_ops.run_ops(client, parse_uri(prefix), ["head"], settle=True, **kw)
    assert len(out["head"]["tools"]["objio"]["runs"]) == 3
    assert len(syncs) == 3  # one per timed run, none inside it
    bench_ops.run_ops(client, parse_uri(prefix), ["head"], **kw)  # a remote server: no sync
    assert len(syncs) == 3
    client.delete(prefix)


def test_bench_ops_on_the_embedded_server_settle_and_report_the_servers_cpu(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # The CLI's embedded server is on this machine: every timed run starts with no dirty
    # pages, and each tool's server CPU per operation is reported beside its client CPU.
    from objio.bench import ops as bench_ops
    from objio.cli import main

    syncs: list[int] = []
    monkeypatch.setattr(bench_ops.os, "sync", lambda: syncs.append(1))
    code = main(["bench", "--op", "head", "--num", "200", "--size", "1KiB", "--epochs", "2",
                 "--max-in-flight", "16", "--json", "-"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    objio_head = report["ops"]["head"]["tools"]["objio"]
    assert len(syncs) == 2
    assert all(r["server_cpu_ms_per_op"] >= 0 for r in objio_head["runs"])
    assert objio_head["server_cpu_ms_per_op"] > 0  # 400 HEADs take the server some CPU


def test_local_server_cpu_seconds_grow_with_its_work(s3_server: Any,
                                                     client: objio.Client, prefix: str) -> None:
    before = s3_server.cpu_seconds()
    client.put_many([(f"{prefix}c{i}", b"x" * 1024) for i in range(300)], max_in_flight=16)
    after = s3_server.cpu_seconds()
    assert before is not None and after is not None and after > before
    client.delete(prefix)
