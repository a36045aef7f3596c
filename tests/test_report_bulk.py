"""``objio report`` at scale (issue 20, the note on paper): objio's op-logs are read in bulk
(pyarrow's CSV reader when installed, else numpy); every reader gives the same requests as the
line-by-line one, on every kind of line (errors, no first byte, UTF-8 keys), and a file the
bulk readers cannot take (a tab in a key, warp's comments) still reads line by line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from objio import report
from objio.oplog import COLUMNS

T0 = 1_796_000_000_000_000_000


def _line(i: int, rank: int, *, key: str = "", error: str = "", code: str = "",
          status: int = 200, first: bool = True) -> str:
    s = T0 + i * 1_000_000 + rank
    fb = str(s + 300_000) if first else ""
    e = s + 900_000
    return "\t".join(str(v) for v in (
        i, i % 3, "GET" if i % 5 else "PUT", f"h{rank}:{rank}:{100 + rank}", 1, 1000 + i,
        f"http://10.0.0.{i % 2}:9000", f"b/{key or f'k{i}'}", error, s, fb, e, e - s,
        "GetObject" if i % 5 else "PutObject", e - 1000, status, code, i, 1, "", f"h{rank}",
        rank, 100 + rank))


def _write(path: Path, lines: list[str]) -> str:
    path.write_text("\t".join(COLUMNS) + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def _logs(tmp_path: Path) -> list[str]:
    a = [_line(i, 0) for i in range(40)]
    a[7] = _line(7, 0, error="connection reset by peer", code="ConnectionReset", status=0,
                 first=False)
    a[9] = _line(9, 0, key="données/日本/ü.npz")
    a[11] = _line(11, 0, error="Slow Down", code="SlowDown", status=503)
    b = [_line(i, 1, first=i % 2 == 0) for i in range(30)]
    return [_write(tmp_path / "r0.tsv", a), _write(tmp_path / "r1.tsv", b)]


def _same(x: report.Requests, y: report.Requests) -> None:
    for name in ("op", "client", "endpoint", "nbytes", "start", "first_byte", "end", "error",
                 "file"):
        assert [str(v) for v in getattr(x, name)] == [str(v) for v in getattr(y, name)], name
    assert report.analyze(x) == report.analyze(y)


def _line_by_line(monkeypatch: pytest.MonkeyPatch, logs: list[str]) -> report.Requests:
    with monkeypatch.context() as m:
        m.setattr(report, "_arrow", lambda *a, **k: None)
        m.setattr(report, "_bulk", lambda *a, **k: None)
        return report.read_logs(logs)


def test_bulk_readers_give_the_line_by_line_requests(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    logs = _logs(tmp_path)
    slow = _line_by_line(monkeypatch, logs)
    assert len(slow.op) == 70 and sorted(set(slow.error)) == ["", "ConnectionReset", "SlowDown"]
    pytest.importorskip("pyarrow")
    _same(report.read_logs(logs), slow)  # pyarrow
    with monkeypatch.context() as m:  # numpy, as without pyarrow
        m.setattr(report, "_arrow", lambda *a, **k: None)
        _same(report.read_logs(logs), slow)
    totals = report.totals(report.read_logs(logs, files=False))
    assert totals == {"GET": {"requests": 56, "bytes": sum(1000 + i for i in range(40) if i % 5)
                              + sum(1000 + i for i in range(30) if i % 5), "errors": 2},
                      "PUT": {"requests": 14, "bytes": sum(1000 + i for i in range(0, 40, 5))
                              + sum(1000 + i for i in range(0, 30, 5)), "errors": 0}}


def test_irregular_logs_still_read_line_by_line(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [_line(i, 0) for i in range(10)]
    lines[3] = _line(3, 0, key="a\tb")  # a tab in a key: more columns on that line
    appended = [_line(i, 1) for i in range(5)] + ["\t".join(COLUMNS)] + [
        _line(i, 1) for i in range(5, 10)]  # a second process appended its header
    logs = [_write(tmp_path / "tab.tsv", lines), _write(tmp_path / "two.tsv", appended)]
    r = report.read_logs(logs)
    assert len(r.op) == 20
    _same(r, _line_by_line(monkeypatch, logs))
    assert isinstance(r.start, np.ndarray) and r.start.dtype == np.int64
