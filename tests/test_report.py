"""``objio report`` (issue 20 B1): op-logs of several clients (objio's, warp's) merged on one
timeline; the measured window; per operation, endpoint and client; --json, --plot,
--compare."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest

import objio
from objio import oplog, report
from objio.cli import main


def _client_job(c: objio.Client, uris: list[str]) -> None:
    c.get_many(uris, max_in_flight=4)
    c.stat_many(uris[:5])
    oplog.close_all()


@pytest.fixture(scope="module")
def two_client_logs(s3_server: Any, tmp_path_factory: pytest.TempPathFactory
                    ) -> tuple[list[Path], int]:
    """Two processes (fork), each with its own op-log ({pid}), reading the same 30 objects."""
    d = tmp_path_factory.mktemp("logs")
    c = objio.Client(s3_server.config)
    c.create_bucket("s3://objio-test", exist_ok=True)
    uris = [f"s3://objio-test/report/o{i}" for i in range(30)]
    c.put_many([(u, b"r" * 4096) for u in uris])
    logger = objio.Client(s3_server.config.replace(op_log=str(d / "ops-{pid}.tsv")))
    ctx = multiprocessing.get_context("fork")
    kids = [ctx.Process(target=_client_job, args=(logger, uris)) for _ in range(2)]
    for k in kids:
        k.start()
    for k in kids:
        k.join(120)
        assert k.exitcode == 0
    logs = sorted(d.glob("ops-*.tsv"))
    assert len(logs) == 2
    return logs, 35


def test_report_merges_clients_on_one_timeline(two_client_logs: tuple[list[Path], int],
                                               tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    logs, per_client = two_client_logs
    out_json = tmp_path / "r.json"
    plot = tmp_path / "r.png"
    assert main(["report", *map(str, logs), "--json", str(out_json), "--plot", str(plot)]) == 0
    text = capsys.readouterr().out
    rep = json.loads(out_json.read_text())
    assert rep["requests"] == 2 * per_client  # every line of both logs
    assert len(rep["clients"]) == 2 and len(rep["clients_detail"]) == 2
    w = rep["window"]
    # the window starts once both clients finished a request, ends at the last start:
    r = report.read_logs([str(p) for p in logs])
    firsts = [min(e for c, e in zip(r.client, r.end, strict=True) if c == cl)
              for cl in rep["clients"]]
    assert w["start_ns"] == max(firsts) and w["end_ns"] == int(r.start.max())
    assert 0 < w["requests"] < rep["requests"]
    get = rep["ops"]["GET"]
    assert get["bytes"] == 4096 * get["requests"] and get["errors"] == 0
    lat = get["latency_ms"]
    assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99.9"] <= lat["max"]
    assert get["ttfb_ms"]["p50"] <= lat["p50"]
    seg = get["segments"]
    assert seg["slowest"]["mib_per_s"] <= seg["median"]["mib_per_s"] <= seg["fastest"]["mib_per_s"]
    assert "GET:" in text and "p99.9" in text and "warm-up and tail cut off" in text
    assert all(len(line) <= 100 for line in text.splitlines())
    assert f"wrote {plot}" in text and plot.stat().st_size > 0


def test_report_reads_warp_logs_and_compares(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    # warp's --benchdata: 13 columns (+cat), RFC 3339 times with nanoseconds.
    def warp_log(path: Path, ms: int) -> None:
        lines = ["idx\tthread\top\tclient_id\tn_objects\tbytes\tendpoint\tfile\terror\tstart"
                 "\tfirst_byte\tend\tduration_ns\tcat"]
        for i in range(40):
            for client in ("w1", "w2"):
                s = f"2026-12-03T10:00:{i // 10:02d}.{(i % 10) * 100:03d}000000Z"
                e = f"2026-12-03T10:00:{i // 10:02d}.{(i % 10) * 100 + ms:03d}000000Z"
                lines.append(f"{i}\t1\tGET\t{client}\t1\t1048576\thttp://gw{i % 2}:9000\tb/o{i}\t\t{s}"
                             f"\t{s}\t{e}\t{ms * 1_000_000}\t")
        lines.append("# a warp comment")
        path.write_text("\n".join(lines) + "\n")

    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    warp_log(a, 20)
    warp_log(b, 10)
    _, rep = report.run([str(a)])
    assert rep["requests"] == 80 and rep["ops"]["GET"]["latency_ms"]["p50"] == pytest.approx(20)
    assert sorted(rep["endpoints"]) == ["http://gw0:9000", "http://gw1:9000"]  # per endpoint
    assert sum(e["requests"] for e in rep["endpoints"].values()) == rep["window"]["requests"]
    assert main(["report", "--compare", str(a), str(b), "--json", "-"]) == 0
    cmp = json.loads(capsys.readouterr().out)["compare"]["GET"]
    assert cmp["p50_ms"] == pytest.approx(0.5)


def test_report_refuses_what_is_not_an_op_log(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.txt"
    bad.write_text("hello\n")
    assert main(["report", str(bad)]) == 1
    assert "not an op-log" in capsys.readouterr().err
    assert main(["report"]) == 1
    assert "at least one LOG" in capsys.readouterr().err
    assert os.path.exists(bad)


def test_python_dash_m_objio_is_the_command() -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "objio", "report", "--help"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "usage: objio report" in r.stdout


def test_replay_reissues_a_log_elsewhere_and_logs_it(two_client_logs: tuple[list[Path], int],
                                                     cli_env: list[str], prefix: str,
                                                     tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    logs, per_client = two_client_logs
    mine = tmp_path / "replay.tsv"
    to = prefix + "replayed/"
    code = main(["replay", str(logs[0]), "--to", to, "--as-fast-as-possible", "--json", "-",
                 "--op-log", str(mine), *cli_env])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["replayed"] == {"GET": 30, "STAT": 5} and out["failed"] == {}
    assert out["created"] == 30  # the objects the log read did not exist under --to
    rows = report.read_logs([str(mine)])
    replayed = [f for op, f in zip(rows.op, rows.file, strict=True) if op == "GET"]
    assert len(replayed) == 30 and all(f.startswith(to[len("s3://"):]) for f in replayed)
    # the second time the objects exist: nothing created; --speed keeps the timeline
    assert main(["replay", str(logs[0]), "--to", to, "--speed", "50", "--json", "-",
                 *cli_env]) == 0
    assert json.loads(capsys.readouterr().out)["created"] == 0
    with pytest.raises(SystemExit) as e:
        main(["replay", str(logs[0]), "--to", to, "--speed", "0", *cli_env])
    assert e.value.code == 2 and "--speed: must be a number > 0" in capsys.readouterr().err


def test_bench_clients_aggregates_processes_from_their_op_logs(
        cli_env: list[str], prefix: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    plot = tmp_path / "clients.png"
    code = main(["bench", prefix + "clients/", "--clients", "2", "--num", "12", "--size",
                 "32KiB", "--epochs", "2", "--max-in-flight", "4", "--json", "-", "--plot",
                 str(plot), *cli_env])
    assert code == 0
    rep = json.loads(capsys.readouterr().out)
    per = rep["clients"]
    assert [c["rank"] for c in per] == [0, 1] and len({c["pid"] for c in per}) == 2
    assert [c["objects"] for c in per] == [12, 12]  # 6 objects each, 2 epochs
    assert rep["aggregate"]["objects"] == 24 and rep["aggregate"]["bytes"] == 24 * 32768
    logs = report.read_logs(rep["logs"])
    assert int((logs.op == "GET").sum()) == 24  # the op-logs hold every GET of every client
    assert rep["aggregate"]["duration_s"] == max(c["wall_s"] for c in per)
    assert rep["aggregate"]["mib_per_s"] > 0 and plot.stat().st_size > 0
    with pytest.raises(SystemExit):
        main(["bench", prefix, "--clients", "x", *cli_env])
    assert main(["bench", prefix, "--clients", "2", "--compare", *cli_env]) == 1
    assert "does not combine" in capsys.readouterr().err
