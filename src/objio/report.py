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
from dataclasses import dataclass, field
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
    codes: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict, repr=False)
    """Per column of few distinct values (op, client, endpoint, error): (the values, each
    request's index into them); filled by :func:`read_logs`, else computed on first use."""

    def factor(self, name: str) -> tuple[list[str], np.ndarray]:
        """(distinct values, each request's index into them) of the column ``name``."""
        if name not in self.codes:
            self.codes[name] = _factor(getattr(self, name))
        return self.codes[name]


def _factor(values: np.ndarray) -> tuple[list[str], np.ndarray]:
    index: dict[str, int] = {}
    codes = np.fromiter((index.setdefault(v, len(index)) for v in values.tolist()),
                        dtype=np.int32, count=len(values))
    return list(index), codes


_CATEGORIES = ("op", "client", "endpoint", "error")


def _merge_codes(parts: list[tuple[list[str], np.ndarray]]) -> tuple[list[str], np.ndarray]:
    """Per-chunk (values, codes) as one (values, codes) over the chunks concatenated."""
    index: dict[str, int] = {}
    out = []
    for names, codes in parts:
        remap = np.array([index.setdefault(n, len(index)) for n in names], dtype=np.int32)
        out.append(remap[codes] if len(names) else codes)
    return list(index), np.concatenate(out) if out else np.zeros(0, dtype=np.int32)


def _raw(path: str) -> bytes:
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:4] == b"\x28\xb5\x2f\xfd":  # zstd magic
        try:
            import zstandard
        except ImportError:
            raise ImportError(f"{path} is zstd-compressed: install the zstandard package") from None
        raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw),
                                                         read_across_frames=True).read()
    return raw


def _text(path: str) -> str:
    return _raw(path).decode("utf-8", errors="replace")


def _int_column(buf: np.ndarray, s: np.ndarray, e: np.ndarray) -> np.ndarray | None:
    """The unsigned decimal integers ``buf[s[i]:e[i]]`` (empty: 0); None when a field holds
    anything but digits or more than 18 of them."""
    width = int((e - s).max()) if len(s) else 0
    if width > 19:
        return None
    out = np.zeros(len(s), dtype=np.int64)
    for k in range(width):  # digit k of a right-aligned field of `width` digits
        pos = e - width + k
        inside = pos >= s
        d = buf[np.maximum(pos, 0)].astype(np.int64) - 48
        if ((d < 0) | (d > 9))[inside].any():
            return None
        out = out * 10 + np.where(inside, d, 0)
    return out


def _str_column(buf: np.ndarray, s: np.ndarray, e: np.ndarray, categories: bool) -> np.ndarray:
    """The text fields ``buf[s[i]:e[i]]`` (UTF-8) as an array of str: few distinct values
    (``categories``) as an object array, else a numpy str array."""
    width = max(1, int((e - s).max()) if len(s) else 1)
    pos = s[:, None] + np.arange(width)
    m = buf[np.minimum(pos, len(buf) - 1)]
    m[pos >= e[:, None]] = 0
    fixed = np.ascontiguousarray(m).view(f"S{width}").ravel()
    if categories:
        values, inverse = np.unique(fixed, return_inverse=True)
        names = np.array([v.decode("utf-8", errors="replace") for v in values], dtype=object)
        _str_column.codes = (list(names), inverse.ravel())  # type: ignore[attr-defined]
        return names[inverse.ravel()]  # type: ignore[no-any-return]
    if (m >= 128).any():  # UTF-8 beyond ASCII: decoded one by one
        return np.array([v.decode("utf-8", errors="replace") for v in fixed])
    return fixed.astype(f"U{width}")


_BULK_INT = ("bytes", "start", "first_byte", "end", "duration_ns")
_BULK_STR = (("op", True), ("client_id", True), ("endpoint", True), ("error", True),
             ("error_code", True), ("file", False))


def _arrow(raw: bytes | str, header: list[str],
           files: bool = True) -> dict[str, np.ndarray] | None:
    """objio's own op-log through pyarrow's CSV reader (C++, several threads), when pyarrow is
    installed (the ``parquet``/``manifest`` extras); None when it is not, or the file is not
    one regular table (then :func:`_bulk` or the line-by-line reader takes it)."""
    col = {name: i for i, name in enumerate(header)}
    if any(n not in col for n in _BULK_INT + tuple(n for n, _ in _BULK_STR)):
        return None
    try:
        import pyarrow as pa
        import pyarrow.csv as pcsv
    except ImportError:
        return None
    names = [n for n, _ in _BULK_STR if files or n != "file"]
    try:
        table = pcsv.read_csv(
            raw if isinstance(raw, str) else pa.py_buffer(raw),  # a path: read by arrow itself
            parse_options=pcsv.ParseOptions(delimiter="\t", quote_char=False,
                                            escape_char=False, newlines_in_values=False),
            convert_options=pcsv.ConvertOptions(
                include_columns=list(_BULK_INT) + names,
                column_types={**{n: pa.int64() for n in _BULK_INT},
                              **{n: pa.string() for n in names}},
                strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # comments, a repeated header, a tab in a key
        return None
    out: dict[str, np.ndarray] = {}
    for n in _BULK_INT:
        out[n] = table.column(n).fill_null(0).to_numpy().astype(np.int64, copy=False)
    for n, categories in _BULK_STR:
        if n not in names:
            continue
        c = table.column(n)
        if categories:
            d = c.dictionary_encode().combine_chunks()
            names_ = d.dictionary.to_pylist()
            codes = d.indices.to_numpy()  # int32, no copy
            out[n] = np.array(names_, dtype=object)[codes]
            out[n + ".codes"] = (names_, codes)  # type: ignore[assignment]
        else:
            out[n] = c.to_numpy()
    import pyarrow.compute as pc

    code, text = table.column("error_code"), table.column("error")
    d = pc.if_else(pc.not_equal(code, ""), code, text).dictionary_encode().combine_chunks()
    names_ = d.dictionary.to_pylist()
    codes = d.indices.to_numpy()  # int32, no copy
    out["error.merged"] = np.array(names_, dtype=object)[codes]
    out["error.merged.codes"] = (names_, codes)  # type: ignore[assignment]
    return out


def _bulk(raw: bytes, header: list[str], files: bool = True) -> dict[str, np.ndarray] | None:
    """objio's own op-log parsed in bulk with numpy (about 10x the line-by-line reader);
    None when it is not one regular table of ``len(header)`` columns (comments, a repeated
    header, a field holding a tab), or holds a time that is not integer ns: the line-by-line
    reader then takes it."""
    col = {name: i for i, name in enumerate(header)}
    if any(n not in col for n in _BULK_INT + tuple(n for n, _ in _BULK_STR)):
        return None
    k = len(header)
    body = raw[raw.index(b"\n") + 1:]
    if body and not body.endswith(b"\n"):
        body += b"\n"
    buf = np.frombuffer(body, dtype=np.uint8)
    seps = np.flatnonzero((buf == 9) | (buf == 10))
    if len(seps) % k:
        return None
    ends = seps.reshape(-1, k)
    if not (buf[ends[:, -1]] == 10).all() or (buf[ends[:, :-1]] == 10).any():
        return None
    starts = np.empty_like(ends)
    starts.ravel()[0:1] = 0
    starts.ravel()[1:] = seps[:-1] + 1
    out: dict[str, np.ndarray] = {}
    for name in _BULK_INT:
        v = _int_column(buf, starts[:, col[name]], ends[:, col[name]])
        if v is None:
            return None
        out[name] = v
    for name, categories in _BULK_STR:
        if name == "file" and not files:
            continue
        out[name] = _str_column(buf, starts[:, col[name]], ends[:, col[name]], categories)
        if categories:  # (values, codes): the analysis needs no Python loop per request
            out[name + ".codes"] = _str_column.codes  # type: ignore[attr-defined]
    return out


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


def read_logs(paths: Sequence[str], *, files: bool = True) -> Requests:
    """Every request of the op-logs ``paths`` (objio, warp or s3dlio; plain or zstd).

    objio's own logs are read in bulk: by pyarrow's CSV reader when pyarrow is installed
    (extras ``parquet``, ``manifest``), else with numpy; others (and irregular files) line
    by line. ``files=False`` leaves ``Requests.file`` empty where that saves time (the
    report does not need the keys; :mod:`objio.replay` does)."""
    ops: list[str] = []
    clients: list[str] = []
    endpoints: list[str] = []
    nbytes: list[int] = []
    starts: list[int] = []
    firsts: list[int] = []
    ends: list[int] = []
    errors: list[str] = []
    keys_: list[str] = []
    chunks: list[tuple[np.ndarray, ...]] = []
    chunk_codes: list[dict[str, Any]] = []  # per chunk: column -> (values, codes) when known

    def flush() -> None:  # the line-by-line reader's requests so far, as one chunk
        if ops:
            chunks.append((np.array(ops, dtype=object), np.array(clients, dtype=object),
                           np.array(endpoints, dtype=object), np.array(nbytes, dtype=np.int64),
                           np.array(starts, dtype=np.int64), np.array(firsts, dtype=np.int64),
                           np.array(ends, dtype=np.int64), np.array(errors, dtype=object),
                           np.array(keys_, dtype=object)))
            chunk_codes.append({})
            for values in (ops, clients, endpoints, nbytes, starts, firsts, ends, errors, keys_):
                values.clear()

    def add(bulk: dict[str, Any]) -> None:  # a file read in bulk, as one chunk
        if not len(bulk["op"]):
            return
        flush()
        err = bulk.get("error.merged")
        if err is None:
            err = np.where(bulk["error_code"] != "", bulk["error_code"], bulk["error"]).astype(
                object)
        end = np.where(bulk["end"] > 0, bulk["end"], bulk["start"] + bulk["duration_ns"])
        keys = bulk["file"] if "file" in bulk else np.full(len(end), "", dtype=object)
        chunks.append((bulk["op"], bulk["client_id"], bulk["endpoint"], bulk["bytes"],
                       bulk["start"], bulk["first_byte"], end, err, keys))
        codes = {"op": bulk.get("op.codes"), "client": bulk.get("client_id.codes"),
                 "endpoint": bulk.get("endpoint.codes")}
        chunk_codes.append({k: v for k, v in codes.items() if v is not None})
        err_codes = bulk.get("error.merged.codes")  # pyarrow's
        if err_codes is None and bulk.get("error_code.codes", (None,))[0] == [""]:
            err_codes = bulk.get("error.codes")  # no error code anywhere: the text is the error
        chunk_codes[-1]["error"] = err_codes or _factor(err)

    for path in paths:
        with open(path, "rb") as fh:
            head = fh.readline()
        if head[:4] != b"\x28\xb5\x2f\xfd" and head.startswith(b"idx\t"):  # plain text
            bulk = _arrow(path, head.decode("utf-8", errors="replace").rstrip("\r\n").split("\t"),
                          files)
            if bulk is not None:
                add(bulk)
                continue
        raw = _raw(path)
        cut = raw.find(b"\n")
        first = raw[:cut if cut >= 0 else len(raw)].decode("utf-8", errors="replace")
        if not raw or raw.isspace():
            raise ValueError(f"{path} is empty: not an op-log")
        header = first.rstrip("\r").split("\t")
        if tuple(header[:13]) != _WARP:
            raise ValueError(f"{path} is not an op-log of objio, warp or s3dlio (its first line "
                             f"should start with {' '.join(_WARP[:4])} ...)")
        bulk = _arrow(raw, header)
        if bulk is None:
            bulk = _bulk(raw, header, files)
        if bulk is not None:
            add(bulk)
            continue
        lines = raw.decode("utf-8", errors="replace").splitlines()
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
            keys_.append(f[7])
            clients.append(f[3] if pid_col is None else f[3])
            endpoints.append(f[6])
            nbytes.append(int(f[5] or 0))
            s = _ns(f[9])
            starts.append(s)
            firsts.append(_ns(f[10]))
            ends.append(_ns(f[11]) or s + int(f[12] or 0))
            err = f[code_col] if code_col is not None and f[code_col] else f[8]
            errors.append(err)
    flush()
    if not chunks:
        raise ValueError("no request in " + ", ".join(paths))
    cols = [np.concatenate([c[i] for c in chunks]) for i in range(9)]
    merged = {}
    for i, name in ((0, "op"), (1, "client"), (2, "endpoint"), (7, "error")):
        merged[name] = _merge_codes([cc[name] if name in cc else _factor(c[i])
                                     for c, cc in zip(chunks, chunk_codes, strict=True)])
    return Requests(cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7],
                    list(paths), cols[8], merged)


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
    names, codes = r.factor("client")
    first_end = np.full(len(names), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_end, codes, r.end)
    lo, hi = int(first_end.max()), int(r.start.max())
    if hi <= lo:
        raise ValueError("the logs hold too few requests for a measured window (it starts when "
                         "every client has finished one request and ends when the last request "
                         "starts)")
    return lo, hi


def totals(r: Requests) -> dict[str, dict[str, int]]:
    """Per operation, every request of the logs (window or not): ``requests``, ``bytes``,
    ``errors`` (the sum of the logs' own totals, whoever wrote them)."""
    names, codes = r.factor("op")
    err_names, err_codes = r.factor("error")
    failed = ~np.isin(err_codes, [i for i, e in enumerate(err_names) if e == ""])
    requests = np.bincount(codes, minlength=len(names))
    nbytes = np.bincount(codes, weights=r.nbytes, minlength=len(names))
    errors = np.bincount(codes[failed], minlength=len(names))
    return {str(op): {"requests": int(requests[i]), "bytes": int(nbytes[i]),
                      "errors": int(errors[i])}
            for i, op in sorted(enumerate(names), key=lambda x: x[1])}


def analyze(r: Requests, *, segment_s: float | None = None) -> dict[str, Any]:
    """The report of :mod:`objio.report` as a dict (seconds, ms, MiB/s, operations/s).

    ``segment_s``: length of the throughput segments in seconds (default: the window / 20,
    at least 0.1 s)."""
    lo, hi = window(r)
    span_s = (hi - lo) / 1e9
    seg_s = segment_s if segment_s else max(0.1, span_s / 20)
    inside = (r.start >= lo) & (r.end <= hi)
    err_names, err_codes = r.factor("error")
    ok = np.isin(err_codes, [i for i, e in enumerate(err_names) if e == ""])
    op_names, op_codes = r.factor("op")
    report: dict[str, Any] = {
        "logs": r.sources, "requests": int(len(r.op)),
        "clients": sorted(r.factor("client")[0]),
        "window": {"start_ns": lo, "end_ns": hi, "seconds": span_s,
                   "requests": int(inside.sum())},
        "segment_s": seg_s, "ops": {}, "endpoints": {}, "clients_detail": {}, "errors": {},
    }
    present = np.bincount(op_codes[inside], minlength=len(op_names))
    for op in sorted(n for i, n in enumerate(op_names) if present[i]):
        m = inside & (op_codes == op_names.index(op))
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
    for key, column in (("endpoints", "endpoint"), ("clients_detail", "client")):
        names, codes = r.factor(column)
        for i, name in sorted(enumerate(names), key=lambda x: x[1]):
            m = inside & (codes == i)
            lat = (r.end[m] - r.start[m]) / 1e6
            report[key][name] = {
                "requests": int(m.sum()), "errors": int((m & ~ok).sum()),
                "mib_per_s": float(r.nbytes[m].sum() / MiB / span_s),
                "p50_ms": float(np.percentile(lat, 50)) if len(lat) else None,
                "p99_ms": float(np.percentile(lat, 99)) if len(lat) else None}
    report["totals"] = totals(r)
    errs: dict[str, int] = defaultdict(int)
    counts = np.bincount(err_codes, minlength=len(err_names))
    for i, e in enumerate(err_names):
        if e != "" and counts[i]:
            errs[str(e)] += int(counts[i])
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
    from matplotlib.ticker import NullFormatter

    b.xaxis.set_minor_formatter(NullFormatter())  # decades only: minor labels overlap
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
    r = read_logs(list(paths), files=False)
    return r, analyze(r, segment_s=segment_s)
