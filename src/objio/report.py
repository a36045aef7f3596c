"""``objio report LOG...``: what warp's analysis prints, from op-logs of any number of clients.

Reads objio's op-logs (:mod:`objio.oplog`), warp's ``--benchdata`` files and s3dlio's op-logs
(told apart by their header line; plain or zstd-compressed), merges them on one timeline
(every log's times are UTC nanoseconds: objio maps its monotonic clock to UTC when the log
opens) and reports, per operation (warp's names: GET, PUT, STAT, DELETE, LIST, or the S3 API
name):

* the measured window: from the moment every client has finished one request (warm-up cut
  off) to the moment the last request starts (the tail, when clients stop one by one, cut
  off); only requests that start and end inside it count;
* throughput over the window (operations/s, MiB/s) and per time segment (fastest, median,
  slowest segment of ``segment_s`` seconds: requests counted in the segment their end falls
  in);
* latency (start to end) and time to first byte percentiles: p50, p90, p99, p99.9, min, max
  (milliseconds);
* per endpoint and per client: requests, MiB/s, p50 / p99 latency, errors;
* errors by code (all requests, window or not).

Raises: ValueError (a file that is none of the three formats, or no request in the logs),
OSError (unreadable file), ImportError (a ``.zst`` log without the ``zstandard`` package).
"""

from __future__ import annotations

import io
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

MiB = 1024 * 1024
PERCENTILES = (50.0, 90.0, 99.0, 99.9)

_WARP = ("idx", "thread", "op", "client_id", "n_objects", "bytes", "endpoint", "file", "error",
         "start", "first_byte", "end", "duration_ns")


@dataclass
class Requests:
    """Every request of the logs read, as parallel arrays (times in ns since the epoch, UTC;
    ``first_byte`` 0 where none was recorded)."""

    op: np.ndarray
    client: np.ndarray
    endpoint: np.ndarray
    nbytes: np.ndarray
    start: np.ndarray
    first_byte: np.ndarray
    end: np.ndarray
    error: np.ndarray  # the error code (objio) or text (warp, s3dlio); "" on success
    sources: list[str]
    file: np.ndarray  # bucket/key (warp: the object name)


def _text(path: str) -> str:
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:4] == b"\x28\xb5\x2f\xfd":  # zstd magic
        try:
            import zstandard
        except ImportError:
            raise ImportError(f"{path} is zstd-compressed: install the zstandard package") from None
        raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw),
                                                         read_across_frames=True).read()
    return raw.decode("utf-8", errors="replace")


_FRACTION = re.compile(r"\.(\d+)")


def _ns(value: str) -> int:
    """A time as ns since the epoch: an integer (objio, s3dlio) or RFC 3339 text with up to
    nanoseconds and a ``Z`` or ``+hh:mm`` zone (warp)."""
    if not value:
        return 0
    if value.isdigit():
        return int(value)
    frac = 0
    m = _FRACTION.search(value)
    if m:
        frac = int((m.group(1) + "000000000")[:9])
        value = value[:m.start()] + value[m.end():]
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp()) * 1_000_000_000 + frac


def read_logs(paths: Sequence[str]) -> Requests:
    """Every request of the op-logs ``paths`` (objio, warp or s3dlio; plain or zstd)."""
    ops: list[str] = []
    clients: list[str] = []
    endpoints: list[str] = []
    nbytes: list[int] = []
    starts: list[int] = []
    firsts: list[int] = []
    ends: list[int] = []
    errors: list[str] = []
    files: list[str] = []
    for path in paths:
        lines = _text(path).splitlines()
        if not lines:
            raise ValueError(f"{path} is empty: not an op-log")
        header = lines[0].rstrip("\n").split("\t")
        if tuple(header[:13]) != _WARP:
            raise ValueError(f"{path} is not an op-log of objio, warp or s3dlio (its first line "
                             f"should start with {' '.join(_WARP[:4])} ...)")
        col = {name: i for i, name in enumerate(header)}
        code_col = col.get("error_code")
        pid_col = col.get("pid")
        for line in lines[1:]:
            if not line or line.startswith("#") or line.startswith("idx\t"):
                continue  # warp's trailing comments; a repeated header (appended logs)
            f = line.split("\t")
            if len(f) < 13:
                raise ValueError(f"{path}: a line with {len(f)} columns, not 13 or more: "
                                 f"{line[:80]!r}")
            ops.append(f[2])
            files.append(f[7])
            clients.append(f[3] if pid_col is None else f[3])
            endpoints.append(f[6])
            nbytes.append(int(f[5] or 0))
            s = _ns(f[9])
            starts.append(s)
            firsts.append(_ns(f[10]))
            ends.append(_ns(f[11]) or s + int(f[12] or 0))
            err = f[code_col] if code_col is not None and f[code_col] else f[8]
            errors.append(err)
    if not ops:
        raise ValueError("no request in " + ", ".join(paths))
    return Requests(np.array(ops, dtype=object), np.array(clients, dtype=object),
                    np.array(endpoints, dtype=object), np.array(nbytes, dtype=np.int64),
                    np.array(starts, dtype=np.int64), np.array(firsts, dtype=np.int64),
                    np.array(ends, dtype=np.int64), np.array(errors, dtype=object), list(paths),
                    np.array(files, dtype=object))


def _percentiles(ms: np.ndarray) -> dict[str, float | None]:
    if not len(ms):
        return {"min": None, **{f"p{p:g}": None for p in PERCENTILES}, "max": None}
    out: dict[str, float | None] = {"min": float(ms.min())}
    for p in PERCENTILES:
        out[f"p{p:g}"] = float(np.percentile(ms, p))
    out["max"] = float(ms.max())
    return out


def window(r: Requests) -> tuple[int, int]:
    """The measured window (ns): from when every client has finished one request to when the
    last request starts. Raises ValueError when that leaves nothing (one request per client)."""
    first_end: dict[str, int] = {}
    for c, e in zip(r.client, r.end, strict=True):
        if c not in first_end or e < first_end[c]:
            first_end[c] = int(e)
    lo, hi = max(first_end.values()), int(r.start.max())
    if hi <= lo:
        raise ValueError("the logs hold too few requests for a measured window (it starts when "
                         "every client has finished one request and ends when the last request "
                         "starts)")
    return lo, hi


def totals(r: Requests) -> dict[str, dict[str, int]]:
    """Per operation, every request of the logs (window or not): ``requests``, ``bytes``,
    ``errors`` (the sum of the logs' own totals, whoever wrote them)."""
    out = {}
    for op in sorted(set(r.op)):
        m = r.op == op
        out[str(op)] = {"requests": int(m.sum()), "bytes": int(r.nbytes[m].sum()),
                        "errors": int((m & (r.error != "")).sum())}
    return out


def analyze(r: Requests, *, segment_s: float | None = None) -> dict[str, Any]:
    """The report of :mod:`objio.report` as a dict (seconds, ms, MiB/s, operations/s).

    ``segment_s``: length of the throughput segments in seconds (default: the window / 20,
    at least 0.1 s)."""
    lo, hi = window(r)
    span_s = (hi - lo) / 1e9
    seg_s = segment_s if segment_s else max(0.1, span_s / 20)
    inside = (r.start >= lo) & (r.end <= hi)
    ok = r.error == ""
    report: dict[str, Any] = {
        "logs": r.sources, "requests": int(len(r.op)), "clients": sorted(set(r.client)),
        "window": {"start_ns": lo, "end_ns": hi, "seconds": span_s,
                   "requests": int(inside.sum())},
        "segment_s": seg_s, "ops": {}, "endpoints": {}, "clients_detail": {}, "errors": {},
    }
    for op in sorted(set(r.op[inside])):
        m = inside & (r.op == op)
        lat = (r.end[m] - r.start[m]) / 1e6
        fb = r.first_byte[m]
        ttfb = (fb[fb > 0] - r.start[m][fb > 0]) / 1e6
        nb = int(r.nbytes[m].sum())
        n_seg = max(1, int(math.floor(span_s / seg_s)))
        idx = ((r.end[m] - lo) / 1e9 // seg_s).astype(np.int64)
        keep = idx < n_seg  # a last, partial segment is left out
        counts = np.bincount(idx[keep], minlength=n_seg)
        seg_bytes = np.bincount(idx[keep], weights=r.nbytes[m][keep], minlength=n_seg)
        order = np.argsort(seg_bytes if nb else counts)
        segs = [{"ops_per_s": float(counts[i] / seg_s),
                 "mib_per_s": float(seg_bytes[i] / MiB / seg_s)} for i in order]
        report["ops"][op] = {
            "requests": int(m.sum()), "errors": int((m & ~ok).sum()), "bytes": nb,
            "ops_per_s": float(m.sum() / span_s), "mib_per_s": float(nb / MiB / span_s),
            "segments": {"count": n_seg, "slowest": segs[0], "median": segs[len(segs) // 2],
                         "fastest": segs[-1]},
            "latency_ms": _percentiles(lat), "ttfb_ms": _percentiles(ttfb),
        }
    for key, values in (("endpoints", r.endpoint), ("clients_detail", r.client)):
        for name in sorted(set(values)):
            m = inside & (values == name)
            lat = (r.end[m] - r.start[m]) / 1e6
            report[key][name] = {
                "requests": int(m.sum()), "errors": int((m & ~ok).sum()),
                "mib_per_s": float(r.nbytes[m].sum() / MiB / span_s),
                "p50_ms": float(np.percentile(lat, 50)) if len(lat) else None,
                "p99_ms": float(np.percentile(lat, 99)) if len(lat) else None}
    report["totals"] = totals(r)
    errs: dict[str, int] = defaultdict(int)
    for e in r.error[~ok]:
        errs[str(e)] += 1
    report["errors"] = dict(sorted(errs.items(), key=lambda kv: -kv[1]))
    return report


def _f(v: float | None, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def print_report(rep: dict[str, Any], out: Any = None) -> None:
    """The report as text (fits 100 columns)."""
    import sys

    out = out or sys.stdout
    w = rep["window"]
    print(f"objio report: {rep['requests']:,} requests from {len(rep['clients'])} client(s) in "
          f"{len(rep['logs'])} log(s)", file=out)
    print(f"measured window {w['seconds']:.2f} s, {w['requests']:,} requests (warm-up and "
          "tail cut off)", file=out)
    for op, o in rep["ops"].items():
        s = o["segments"]
        print(f"\n{op}: {o['requests']:,} requests, {o['errors']} errors, "
              f"{o['ops_per_s']:,.1f} ops/s, {o['mib_per_s']:,.2f} MiB/s", file=out)
        print(f"  segments of {rep['segment_s']:.2f} s ({s['count']}): slowest "
              f"{s['slowest']['mib_per_s']:.2f} MiB/s {s['slowest']['ops_per_s']:.1f} ops/s, "
              f"median {s['median']['mib_per_s']:.2f} / {s['median']['ops_per_s']:.1f}, "
              f"fastest {s['fastest']['mib_per_s']:.2f} / {s['fastest']['ops_per_s']:.1f}",
              file=out)
        for name in ("latency_ms", "ttfb_ms"):
            p = o[name]
            label = "latency" if name == "latency_ms" else "TTFB"
            print(f"  {label:8s} ms: min {_f(p['min'], '.2f')}  p50 {_f(p['p50'], '.2f')}  "
                  f"p90 {_f(p['p90'], '.2f')}  p99 {_f(p['p99'], '.2f')}  "
                  f"p99.9 {_f(p['p99.9'], '.2f')}  max {_f(p['max'], '.2f')}", file=out)
    for key, title in (("endpoints", "endpoint"), ("clients_detail", "client")):
        rows = rep[key]
        if len(rows) < 2 and key == "endpoints":
            continue
        print(f"\n  {title:40s} {'requests':>9s} {'errors':>7s} {'MiB/s':>9s} "
              f"{'p50 ms':>8s} {'p99 ms':>8s}", file=out)
        for name, v in rows.items():
            print(f"  {name[:40]:40s} {v['requests']:9,d} {v['errors']:7d} "
                  f"{v['mib_per_s']:9.2f} {_f(v['p50_ms'], '8.2f')} {_f(v['p99_ms'], '8.2f')}",
                  file=out)
    if rep["errors"]:
        print("\n  errors: " + ", ".join(f"{k[:60]} x{n}" for k, n in rep["errors"].items()),
              file=out)


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Before/after: per operation in both, B's throughput and p50/p99 latency over A's."""
    out: dict[str, Any] = {}
    for op in sorted(set(a["ops"]) & set(b["ops"])):
        x, y = a["ops"][op], b["ops"][op]

        def ratio(p: float | None, q: float | None) -> float | None:
            return q / p if p and q is not None else None

        out[op] = {"ops_per_s": ratio(x["ops_per_s"], y["ops_per_s"]),
                   "mib_per_s": ratio(x["mib_per_s"], y["mib_per_s"]),
                   "p50_ms": ratio(x["latency_ms"]["p50"], y["latency_ms"]["p50"]),
                   "p99_ms": ratio(x["latency_ms"]["p99"], y["latency_ms"]["p99"])}
    return out


def print_compare(cmp: dict[str, Any], out: Any = None) -> None:
    import sys

    out = out or sys.stdout
    print(f"  {'op':12s} {'ops/s B/A':>10s} {'MiB/s B/A':>10s} {'p50 B/A':>9s} {'p99 B/A':>9s}",
          file=out)
    for op, v in cmp.items():
        print(f"  {op:12s} {_f(v['ops_per_s'], '9.2f')}x {_f(v['mib_per_s'], '9.2f')}x "
              f"{_f(v['p50_ms'], '8.2f')}x {_f(v['p99_ms'], '8.2f')}x", file=out)


def plot(r: Requests, rep: dict[str, Any], path: str) -> None:
    """Throughput over time per client (MiB/s, or operations/s when nothing moved) and the
    latency CDF per operation, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo, hi = rep["window"]["start_ns"], rep["window"]["end_ns"]
    seg = rep["segment_s"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    moved = int(r.nbytes.sum()) > 0
    for client in rep["clients"]:
        m = r.client == client
        t = (r.end[m] - lo) / 1e9
        n = max(1, int(math.ceil((r.end.max() - lo) / 1e9 / seg)))
        idx = np.clip((t // seg).astype(np.int64), -1, n)
        keep = (idx >= 0) & (idx < n)
        w = r.nbytes[m][keep] / MiB if moved else np.ones(int(keep.sum()))
        y = np.bincount(idx[keep], weights=w, minlength=n) / seg
        a.plot(np.arange(n) * seg, y, label=client)
    a.axvline((hi - lo) / 1e9, color="grey", linestyle=":", label="window end")
    a.set_xlabel("seconds from the window's start")
    a.set_ylabel("MiB/s" if moved else "operations/s")
    a.set_ylim(bottom=0)
    a.set_xlim(left=0)
    a.set_title("throughput per client")
    a.legend(fontsize="small")
    for op in rep["ops"]:
        m = (r.op == op) & (r.start >= lo) & (r.end <= hi)
        lat = np.sort((r.end[m] - r.start[m]) / 1e6)
        b.plot(lat, np.arange(1, len(lat) + 1) / len(lat), label=op)
    b.set_xscale("log")
    b.set_xlabel("latency, ms (log)")
    b.set_ylabel("fraction of requests")
    b.set_ylim(0, 1)
    b.set_title("latency CDF per operation")
    b.legend(fontsize="small")
    fig.suptitle(f"objio report: {rep['requests']:,} requests, {len(rep['clients'])} client(s), "
                 f"window {rep['window']['seconds']:.1f} s")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(paths: Iterable[str], *, segment_s: float | None = None) -> tuple[Requests, dict[str, Any]]:
    """Read ``paths`` and analyze them: (the requests, the report)."""
    r = read_logs(list(paths))
    return r, analyze(r, segment_s=segment_s)
