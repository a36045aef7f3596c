"""The op-log (issue 20 A): one line per HTTP request, retries and failures included, never
dropped (back-pressure, not discarding), across fork, compressed with .zst, from the CLI."""

from __future__ import annotations

import io
import multiprocessing
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import objio
from objio import oplog
from objio.cli import main

BUCKET = "objio-test"


def read_log(path: Path) -> list[dict[str, str]]:
    """The op-log's lines as dicts (header names), plain or zstd (any number of frames)."""
    raw = path.read_bytes()
    if path.suffix == ".zst":
        import zstandard

        raw = zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(raw), read_across_frames=True).read()
    lines = raw.decode().splitlines()
    assert lines[0].split("\t") == list(oplog.COLUMNS)
    rows = [dict(zip(oplog.COLUMNS, line.split("\t"), strict=True)) for line in lines[1:]]
    return rows


def test_every_request_is_a_line_retries_and_failures_included(
        proxy: Any, s3_server: Any, client: objio.Client, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from faultproxy import Forge, Reset, Response
    from objio import engine

    monkeypatch.setattr(engine, "_BACKOFF_BASE_S", 0.001)
    proxy.clear()
    path = tmp_path / "ops.tsv"
    c = objio.Client(s3_server.config.replace(endpoint_url=proxy.endpoint_url,
                                              op_log=str(path)), max_attempts=4)
    prefix = f"s3://{BUCKET}/oplog-{os.getpid()}-{time.monotonic_ns()}/"
    c.put_many([(f"{prefix}o{i}", b"x" * (100 + i)) for i in range(40)], max_in_flight=8)
    # Every 5th GET is answered 503 SlowDown once, two connections are reset: retried.
    n = {"get": 0}

    def fifth_get(r: Any) -> bool:
        if r.method != "GET" or "list-type" in r.target:
            return False
        n["get"] += 1
        return n["get"] % 5 == 0

    proxy.add(fifth_get, Forge(lambda r: Response(503, "Slow Down", [], b"<Error><Code>SlowDown"
                                                  b"</Code><Message>m</Message></Error>")),
              times=6)
    proxy.add(lambda r: r.method == "HEAD", Reset(), times=2)
    got = c.get_many([f"{prefix}o{i}" for i in range(40)], max_in_flight=8)
    assert [len(b) for _, b in got] == [100 + i for i in range(40)]
    infos = c.stat_many([f"{prefix}o{i}" for i in range(5)])
    assert [i.size for i in infos] == [100, 101, 102, 103, 104]
    with pytest.raises(FileNotFoundError):
        c.get(f"{prefix}missing")
    c.delete(prefix)
    oplog.get(str(path)).flush()
    rows = read_log(path)
    assert len(rows) == len(proxy.log)  # one line per request the server side saw
    assert [int(r["idx"]) for r in rows] == list(range(len(rows)))
    slow = [r for r in rows if r["error_code"] == "SlowDown"]
    assert len(slow) == 6 and all(r["status"] == "503" and r["op"] == "GET" for r in slow)
    for r in slow:  # each retried: the same operation has a later, successful attempt
        same = [x for x in rows if x["op_id"] == r["op_id"]]
        assert [x["attempt"] for x in same][-1] != "1" and same[-1]["status"] in ("200", "206")
    reset = [r for r in rows if r["op"] == "STAT" and r["status"] == "0"]
    assert len(reset) == 2 and all(r["error_code"] for r in reset)
    missing = [r for r in rows if r["file"].endswith("/missing")]
    assert missing and missing[-1]["status"] == "404" and missing[-1]["error_code"] == "NoSuchKey"
    ok_get = next(r for r in rows if r["op"] == "GET" and r["status"] == "200")
    assert ok_get["cat"] == "GetObject" and ok_get["n_objects"] == "1"
    assert ok_get["endpoint"] == proxy.endpoint_url
    times = [int(ok_get[k]) for k in ("start", "first_byte", "last_byte", "end")]
    assert times == sorted(times) and abs(times[0] / 1e9 - time.time()) < 600  # ns, UTC
    assert int(ok_get["duration_ns"]) == times[3] - times[0] > 0
    assert ok_get["client_id"].endswith(f":0:{os.getpid()}") and ok_get["pid"] == str(os.getpid())
    puts = [r for r in rows if r["op"] == "PUT"]
    assert sorted(int(r["bytes"]) for r in puts) == [100 + i for i in range(40)]
    oplog.close(str(path))


def test_a_slow_writer_never_loses_a_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 200,000 requests from 4 threads while the writer is slow and its queue tiny: the
    # threads that log wait for room (back-pressure) and every line arrives.
    monkeypatch.setattr(oplog, "_QUEUE_BATCHES", 2)
    monkeypatch.setattr(oplog, "_BATCH", 256)
    path = tmp_path / "many.tsv.zst"
    log = oplog.OpLog(str(path))
    real = log._write

    def slow(data: bytes) -> None:
        time.sleep(0.002)
        real(data)

    monkeypatch.setattr(log, "_write", slow)
    t = time.perf_counter()

    def work(k: int) -> None:
        for i in range(50_000):
            log.record(api="GetObject", bucket="b", key=f"{k}/{i}", nbytes=i, endpoint="http://x",
                       status=200, start=t, first_byte=t, last_byte=t, end=t, op_id=k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    log.close()
    rows = read_log(path)
    assert len(rows) == 200_000
    assert sorted(int(r["idx"]) for r in rows) == list(range(200_000))
    assert {r["file"] for r in rows} == {f"b/{k}/{i}" for k in range(4) for i in range(50_000)}


def _child(c: objio.Client, uri: str, q: Any) -> None:
    q.put(len(c.get(uri)))  # the parent's client, used after fork (as a DataLoader worker)


@pytest.mark.parametrize("suffix", [".tsv", ".tsv.zst"])
def test_forked_workers_append_to_the_same_log(client: objio.Client, prefix: str,
                                               s3_server: Any, tmp_path: Path,
                                               suffix: str) -> None:
    # DataLoader workers are forked after the parent used the client: each writes its own
    # lines (its pid) to the same file, whole batches at a time; nothing is lost at their exit
    # (multiprocessing ends a child with os._exit, which skips atexit).
    path = str(tmp_path / f"fork{suffix}")
    c = objio.Client(s3_server.config.replace(op_log=path))
    uri = f"{prefix}f"
    c.put_bytes(uri, b"y" * 123)
    assert len(c.get(uri)) == 123
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    kids = [ctx.Process(target=_child, args=(c, uri, q)) for _ in range(3)]
    for k in kids:
        k.start()
    for k in kids:
        k.join(60)
        assert k.exitcode == 0
    assert [q.get(timeout=5) for _ in kids] == [123] * 3
    c.get(uri)
    oplog.close(path)
    rows = read_log(Path(path))
    by_pid: dict[str, list[str]] = {}
    for r in rows:
        by_pid.setdefault(r["pid"], []).append(r["op"])
    assert by_pid.pop(str(os.getpid())) == ["PUT", "GET", "GET"]
    assert sorted(by_pid) == sorted(str(k.pid) for k in kids)
    assert all(ops == ["GET"] for ops in by_pid.values())


def test_op_log_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBJIO_OP_LOG", str(tmp_path / "env.tsv"))
    assert objio.ClientConfig().resolved().op_log == str(tmp_path / "env.tsv")
    assert objio.ClientConfig(op_log=tmp_path / "p.tsv").op_log == str(tmp_path / "p.tsv")
    with pytest.raises(ValueError, match="op_log must be a file path"):
        objio.ClientConfig(op_log="")
    with pytest.raises(ValueError, match="op_log must be a file path"):
        objio.ClientConfig(op_log=3)  # type: ignore[arg-type]
    monkeypatch.setenv("RANK", "3")
    log = oplog.OpLog(str(tmp_path / "r{rank}-{pid}.tsv"))
    assert log.path == str(tmp_path / f"r3-{os.getpid()}.tsv")
    log.close()


def test_cli_op_log_flag(cli_env: list[str], prefix: str, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "d"
    src.mkdir()
    for i in range(3):
        (src / f"f{i}").write_bytes(b"z" * (10 + i))
    path = tmp_path / "cli.tsv"
    assert main(["cp", "-r", str(src), prefix, "--op-log", str(path), *cli_env]) == 0
    assert main(["ls", prefix, "--op-log", str(tmp_path / "ls.tsv"), *cli_env]) == 0
    rows = read_log(path)
    assert sorted((r["op"], r["bytes"]) for r in rows if r["op"] == "PUT") == [
        ("PUT", "10"), ("PUT", "11"), ("PUT", "12")]
    assert [r["op"] for r in read_log(tmp_path / "ls.tsv")] == ["LIST"]
    assert "OBJIO_OP_LOG" not in os.environ


def test_file_uris_are_logged_per_operation(tmp_path: Path) -> None:
    path = tmp_path / "file-ops.tsv"
    c = objio.Client(op_log=str(path))
    d = tmp_path / "data"
    c.put_bytes(str(d / "a.bin"), b"q" * 50)
    assert len(c.get(str(d / "a.bin"))) == 50
    assert c.list(str(d) + "/") == [str(d / "a.bin")]
    with pytest.raises(FileNotFoundError):
        c.stat(str(d / "nope"))
    oplog.close(str(path))
    rows = read_log(path)
    assert [(r["op"], r["bytes"], r["status"]) for r in rows] == [
        ("PUT", "50", "200"), ("GET", "50", "200"), ("LIST", "0", "200"), ("STAT", "0", "0")]
    assert rows[0]["endpoint"] == "file://" and rows[0]["file"].endswith("data/a.bin")
    assert rows[-1]["error_code"]


def test_bench_oplog_measures_the_op_logs_cost(cli_env: list[str], prefix: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["bench", "oplog", prefix, "--num", "20", "--size", "4KiB", "--rounds", "3",
                 "--json", "-", *cli_env]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert set(rep["summary"]) == {"off", "tsv", "zst"}
    assert all(len(rep["runs"][c]) == 3 for c in ("off", "tsv", "zst"))
    assert rep["summary"]["off"]["throughput_vs_off"] == 1.0
    assert 100 < rep["log_bytes_per_line"]["tsv"] < 400
    assert rep["log_bytes_per_line"]["zst"] < rep["log_bytes_per_line"]["tsv"]
    assert main(["bench", "oplog", prefix, "--plot", "x.png", *cli_env]) == 1


@pytest.mark.parametrize("kind", ["az", "gs"])
def test_every_request_is_a_line_on_azure_and_gcs(kind: str, request: pytest.FixtureRequest,
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """az:// and gs:// log each HTTP request as S3 does (issue 20 A.3): multipart parts and
    their completion, a server-side copy, retries of refused GETs, a 404, batch deletes."""
    import uuid

    from faultproxy import Forge, Response
    from objio import engine

    monkeypatch.setattr(engine, "_BACKOFF_BASE_S", 0.001)
    server = request.getfixturevalue("azure_server" if kind == "az" else "gcs_server")
    request.getfixturevalue("az_client" if kind == "az" else "gs_client")  # the bucket
    proxy = request.getfixturevalue(f"{kind}_proxy")
    proxy.clear()
    path = tmp_path / f"ops-{kind}.tsv"
    try:
        cfg = (server.config.replace(azure_endpoint_url=f"{proxy.endpoint_url}/{server.account}")
               if kind == "az" else server.config.replace(gcs_endpoint_url=proxy.endpoint_url))
        c = objio.Client(cfg.replace(op_log=str(path), part_size=5 << 20,
                                     range_threshold=5 << 20), max_attempts=4)
        prefix = f"{kind}://{BUCKET}/oplog-{uuid.uuid4().hex[:8]}/"
        c.put_many([(f"{prefix}o{i}", b"y" * (50 + i)) for i in range(12)], max_in_flight=4)
        c.put_bytes(prefix + "big", bytes(11 << 20))                 # 3 parts, completed
        busy = (Response(503, "Server Busy", [("x-ms-error-code", "ServerBusy")],
                         b"<?xml version='1.0'?><Error><Code>ServerBusy</Code></Error>")
                if kind == "az" else
                Response(503, "Busy", [("Content-Type", "application/json")],
                         b'{"error": {"code": 503, "message": "busy", '
                         b'"errors": [{"reason": "backendError"}]}}'))
        n = {"get": 0}

        def third_get(r: Any) -> bool:
            if r.method != "GET" or not (r.path.endswith(("/o3", "/o6", "/o9"))
                                         or "%2Fo3?" in r.target or "%2Fo6?" in r.target
                                         or "%2Fo9?" in r.target):
                return False
            n["get"] += 1
            return True

        proxy.add(third_get, Forge(lambda r: busy), times=3)
        got = c.get_many([f"{prefix}o{i}" for i in range(12)], max_in_flight=4)
        assert [len(b) for _, b in got] == [50 + i for i in range(12)]
        assert c.copy(prefix + "o1", prefix + "copy") == 51
        assert c.stat(prefix + "o2").size == 52
        with pytest.raises(FileNotFoundError):
            c.get(prefix + "missing")
        c.delete(prefix)
        oplog.get(str(path)).flush()
        rows = read_log(path)
        assert len(rows) == len(proxy.log)  # one line per request the server saw
        busy_rows = [r for r in rows if r["status"] == "503"]
        assert len(busy_rows) == 3 and all(r["op"] == "GET" for r in busy_rows)
        assert {r["error_code"] for r in busy_rows} == (
            {"ServerBusy"} if kind == "az" else {"InternalError"})  # objio's code for a 503
        for r in busy_rows:  # each retried: its operation has a later successful attempt
            same = [x for x in rows if x["op_id"] == r["op_id"]]
            assert same[-1]["status"] in ("200", "206") and same[-1]["attempt"] != "1"
        missing = [r for r in rows if r["file"].endswith("/missing")]
        assert missing and missing[-1]["status"] == "404" and missing[-1]["error_code"] == (
            "BlobNotFound" if kind == "az" else "NoSuchKey")
        cats = {r["cat"] for r in rows}
        parts = "PutBlock" if kind == "az" else "UploadPart"
        assert len([r for r in rows if r["cat"] == parts]) == 3
        assert ("PutBlockList" if kind == "az" else "ComposeObject") in cats
        ok_get = next(r for r in rows if r["op"] == "GET" and r["status"] == "200")
        assert ok_get["endpoint"] == proxy.endpoint_url and int(ok_get["bytes"]) >= 50
        times = [int(ok_get[k]) for k in ("start", "first_byte", "last_byte", "end")]
        assert times == sorted(times)
    finally:
        oplog.close(str(path))
        proxy.clear()
