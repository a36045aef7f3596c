"""``objio bench`` under launchers (issue 20 C): torchrun (gathering through torch.distributed,
gloo) and mpiexec (MPICH's, from the ``mpich`` wheel; gathering through a folder): every rank
reads its slice, rank 0 prints one report whose aggregate is the sum of the ranks' op-logs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from objio import report


def _env(s3_server: Any) -> dict[str, str]:
    env = dict(os.environ)
    env.update(s3_server.environ())
    for k in ("RANK", "WORLD_SIZE", "OBJIO_OP_LOG", "OBJIO_GATHER_DIR"):
        env.pop(k, None)
    return env


def _check(out: str, ranks: int, num: int, epochs: int, tmp: Path) -> dict[str, Any]:
    rep = json.loads(out)
    assert [c["rank"] for c in rep["clients"]] == list(range(ranks))
    assert len({c["pid"] for c in rep["clients"]}) == ranks
    assert sum(c["objects"] for c in rep["clients"]) == num * epochs
    assert rep["aggregate"]["objects"] == num * epochs
    assert rep["aggregate"]["duration_s"] == max(c["wall_s"] for c in rep["clients"])
    logs = report.read_logs(rep["logs"])
    assert int((logs.op == "GET").sum()) == num * epochs  # = the ranks' op-logs, summed
    assert len(set(logs.client)) == ranks
    return rep


def test_bench_under_torchrun(s3_server: Any, client: Any, prefix: str, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    torchrun = Path(sys.executable).with_name("torchrun")
    # the form, --no-python objio; "--" keeps torchrun's parser from reading --num as
    # an abbreviation of its own --numa-binding (Python's argparse does that before REMAINDER)
    objio_cmd = str(Path(sys.executable).with_name("objio"))
    import socket

    with socket.socket() as s:  # a free port for the rendezvous (0 is not one torchrun takes)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [str(torchrun), "--nproc-per-node", "2", "--master-port", str(port), "--no-python",
           objio_cmd, "--", "bench", prefix + "ranks/", "--num", "10",
           "--size", "16KiB", "--epochs", "2", "--max-in-flight", "4", "--json", "-"]
    r = subprocess.run(cmd, env=_env(s3_server), capture_output=True, text=True, timeout=300,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = _check(r.stdout, 2, 10, 2, tmp_path)
    assert rep["config"]["gather"] == "torch"


def test_bench_under_mpiexec(s3_server: Any, client: Any, prefix: str, tmp_path: Path) -> None:
    mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent))
    assert mpiexec, "the dev extra installs the mpich wheel (mpiexec)"
    cmd = [mpiexec, "-n", "3", sys.executable, "-m", "objio", "bench", prefix + "mpi/",
           "--num", "9", "--size", "16KiB", "--epochs", "1", "--max-in-flight", "4",
           "--json", "-", "--gather-dir", str(tmp_path / "gather")]  # the folder, not mpi4py
    r = subprocess.run(cmd, env=_env(s3_server), capture_output=True, text=True, timeout=300,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = _check(r.stdout, 3, 9, 1, tmp_path)
    assert rep["config"]["gather"] == "folder"


def test_bench_under_a_launcher_needs_a_uri(capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from objio.cli import main

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["bench", "--num", "4"]) == 1
    assert "every rank must reach the same store" in capsys.readouterr().err
