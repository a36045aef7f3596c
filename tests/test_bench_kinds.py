"""Every ``objio bench`` kind split over 2 ranks (issue 20 C): under torchrun (gathering through
torch.distributed, gloo), under mpiexec (MPICH's, from the ``mpich`` wheel; gathering through
mpi4py) and with ``--clients 2``. Each rank takes its own share; rank 0 alone prints one
report whose aggregate is the sum of the ranks' op-logs (checked with ``objio report``)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from objio import report
from objio.cli import main

sys.path.insert(0, str(Path(__file__).parent))
from bench_kinds_runner import KINDS, argv  # noqa: E402

RUNNER = str(Path(__file__).with_name("bench_kinds_runner.py"))


def _env(s3_server: Any) -> dict[str, str]:
    env = dict(os.environ)
    env.update(s3_server.environ())
    for k in ("RANK", "WORLD_SIZE", "OBJIO_OP_LOG", "OBJIO_GATHER_DIR", "MASTER_ADDR",
              "MASTER_PORT"):
        env.pop(k, None)
    return env


def _check(kind: str, rep: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """One kind's report: 2 ranks, duration = the slowest, the aggregate = the per-rank
    op-logs summed, and what the kind's shares add up to."""
    per = rep["clients"]
    assert rep["kind"] == kind
    assert [c["rank"] for c in per] == [0, 1] and len({c["pid"] for c in per}) == 2
    assert all(c["items"] > 0 for c in per)  # every rank did its share
    agg = rep["aggregate"]
    assert agg["duration_s"] == max(c["wall_s"] for c in per)
    assert agg["items"] == sum(c["items"] for c in per)
    # objio report over all the ranks' op-logs = the aggregate = the per-rank logs summed
    assert main(["report", *rep["logs"], "--json", "-"]) == 0
    merged = json.loads(capsys.readouterr().out)["totals"]
    assert merged == agg["op_log"]
    summed: dict[str, dict[str, int]] = {}
    for log in rep["logs"]:
        for op, t in report.totals(report.read_logs([log])).items():
            s = summed.setdefault(op, {"requests": 0, "bytes": 0, "errors": 0})
            for k in s:
                s[k] += t[k]
    assert summed == merged
    assert len(set(report.read_logs(rep["logs"]).client)) >= 2
    cfg = rep["config"]
    if kind == "objects":
        assert merged["GET"]["requests"] == cfg["num"] * cfg["epochs"] == agg["objects"]
        assert merged["GET"]["bytes"] == agg["bytes"] == 6 * 2 * 16384
    elif kind == "list":
        assert agg["items"] == cfg["keys"] and agg["complete"]
        assert merged["LIST"]["requests"] >= 2
    elif kind == "model":
        assert agg["items"] == cfg["shards"] == 2
        assert merged["GET"]["bytes"] >= agg["bytes"] > 0.9 * cfg["model_bytes"]
    elif kind == "checkpoint":
        put = sum(merged.get(op, {}).get("bytes", 0) for op in ("PUT", "UploadPart"))
        assert put >= agg["state_bytes"] and merged["GET"]["bytes"] >= agg["state_bytes"]
        assert agg["save_s"] == max(c["save_s"] for c in per)
    elif kind == "train":
        assert [c["files"] for c in per] == [3, 2]  # DLIO's rule: file i to rank i mod 2
        assert merged["GET"]["requests"] == 5 * cfg["epochs"]  # every file once per epoch
        assert len(agg["au_pct_per_rank"]) == 2


def _launch(cmd: list[str], s3_server: Any, tmp_path: Path) -> str:
    r = subprocess.run(cmd, env=_env(s3_server), capture_output=True, text=True, timeout=600,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    for kind in KINDS:  # one report per kind: rank 0's; the other rank prints nothing
        assert r.stdout.count(f"objio bench {kind} on 2 ranks") == 1, r.stdout[-3000:]
    return r.stdout


def _reports(out: Path) -> dict[str, dict[str, Any]]:
    return {kind: json.loads((out / f"{kind}.json").read_text()) for kind in KINDS}


def test_every_kind_under_torchrun(s3_server: Any, client: Any, prefix: str, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    torchrun = Path(sys.executable).with_name("torchrun")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = _launch([str(torchrun), "--nproc-per-node", "2", "--master-port", str(port),
                   "--no-python", sys.executable, RUNNER, str(tmp_path), prefix + "tr/"],
                  s3_server, tmp_path)
    assert "2 ranks (torch)" in out
    for kind, rep in _reports(tmp_path).items():
        assert rep["config"]["gather"] == "torch"
        _check(kind, rep, capsys)


def test_every_kind_under_mpiexec(s3_server: Any, client: Any, prefix: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("mpi4py")
    mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent))
    assert mpiexec, "the dev extra installs the mpich wheel (mpiexec)"
    _launch([mpiexec, "-n", "2", sys.executable, RUNNER, str(tmp_path), prefix + "mpi/"],
            s3_server, tmp_path)
    for kind, rep in _reports(tmp_path).items():
        assert rep["config"]["gather"] == "mpi4py"
        _check(kind, rep, capsys)


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_with_clients(kind: str, cli_env: list[str], prefix: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rep.json"
    assert main([*argv(kind, prefix + "cl/", str(path)), "--clients", "2", *cli_env]) == 0
    text = capsys.readouterr().out
    assert text.count(f"objio bench {kind} on --clients 2") == 1
    rep = json.loads(path.read_text())
    _check(kind, rep, capsys)
    # each client process logs as its rank (client_id host:rank:pid), as under a launcher
    ids = set(report.read_logs(rep["logs"]).client)
    assert {c.split(":")[1] for c in ids} == {"0", "1"}


def test_split_runs_refuse_what_they_do_not_honour(cli_env: list[str], prefix: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "list", prefix, "--clients", "2", "--latency-ms", "5", *cli_env]) == 1
    assert "--latency-ms does not combine with --clients" in capsys.readouterr().err
    assert main(["bench", "model", prefix, "--clients", "3", "--shards", "2", "--size", "4MiB",
                 *cli_env]) == 1
    assert "must be at least the number of ranks (3)" in capsys.readouterr().err
    assert main(["bench", "train", prefix, "--throughput", "--clients", "2", *cli_env]) == 1
    assert "--throughput does not split" in capsys.readouterr().err


def test_split_runs_write_op_logs_where_asked(cli_env: list[str], prefix: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """--op-log with {rank}: each rank's log stays at its path (only the path is gathered:
    what a shared file system at 1024 ranks needs); the data written first is not in it."""
    path = tmp_path / "rep.json"
    logs = str(tmp_path / "ops-{rank}.tsv.zst")
    assert main([*argv("objects", prefix + "ol/", str(path)), "--clients", "2", "--op-log",
                 logs, *cli_env]) == 0
    capsys.readouterr()
    rep = json.loads(path.read_text())
    assert rep["logs"] == [str(tmp_path / "ops-0.tsv.zst"), str(tmp_path / "ops-1.tsv.zst")]
    assert (tmp_path / "ops-0.tsv.zst").read_bytes()[:4] == b"\x28\xb5\x2f\xfd"  # zstd
    assert "PUT" not in rep["aggregate"]["op_log"]  # the put phase is not any rank's share
    _check("objects", rep, capsys)
    assert main([*argv("objects", prefix + "ol/", str(path)), "--clients", "2", "--op-log",
                 str(tmp_path / "ops.tsv"), *cli_env]) == 1
    assert "put {rank} in the path" in capsys.readouterr().err
