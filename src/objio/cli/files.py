"""File commands of the ``objio`` CLI, with aws-cli names and flags:
``ls``, ``stat``, ``cat``, ``cp``, ``rm``, ``mb``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from ..config import MiB, format_size
from ..uri import ObjectURI, parse_uri
from ._common import add_global_flags, client_from_args

STREAM_THRESHOLD = 64 * MiB  # cp: larger objects are streamed, smaller ones copied in memory


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


def _client(args: argparse.Namespace) -> Any:
    return client_from_args(args)


# ------------------------------------------------------------------------------------ ls
def cmd_ls(args: argparse.Namespace) -> int:
    client = _client(args)
    out = sys.stdout
    if not args.uri:
        buckets = client.list_buckets()
        if args.json:
            json.dump([{"bucket": n, "created": _iso(t)} for n, t in buckets], out)
            out.write("\n")
        else:
            for name, created in buckets:
                out.write(f"{_when(created)} {name}\n")
        return 0
    obj = parse_uri(args.uri)
    if args.fast and not args.recursive:
        raise ValueError("--fast (FastList) applies to --recursive listings")
    if args.recursive:
        prefixes: list[str] = []
        objects = client.list_objects(args.uri, fast=args.fast)
    else:  # one level, like aws s3 ls: "s3://b/dir" lists what starts with "dir" there
        prefixes, objects = client.list_level(args.uri)
    base = obj.key if (obj.key.endswith(("/", os.sep)) and not args.recursive) else ""
    if args.json:
        rows: list[dict[str, Any]] = [{"prefix": p} for p in prefixes]
        rows += [{"key": o.key, "size": o.size, "last_modified": _iso(o.last_modified),
                  "etag": o.etag} for o in objects]
        json.dump(rows, out)
        out.write("\n")
        return 0
    for p in prefixes:
        out.write(f"{'PRE':>30} {p[len(base):]}\n")
    for o in objects:
        size = format_size(o.size) if args.human_readable else str(o.size)
        line = f"{_when(o.last_modified)} {size:>10} {o.key[len(base):]}"
        if args.long:
            line += f"  {o.etag}"
        out.write(line + "\n")
    if args.summarize:
        total = sum(o.size for o in objects)
        out.write(f"\nTotal Objects: {len(objects)}\n   Total Size: {total}\n")
    return 0


# ------------------------------------------------------------------------------------ stat
def cmd_stat(args: argparse.Namespace) -> int:
    info = _client(args).stat(args.uri)
    row = {"uri": args.uri, "key": info.key, "size": info.size,
           "last_modified": _iso(info.last_modified), "etag": info.etag}
    if args.json:
        print(json.dumps(row))
    else:
        for k, v in row.items():
            print(f"{k:>13}: {v}")
    return 0


# ------------------------------------------------------------------------------------ cat
def cmd_cat(args: argparse.Namespace) -> int:
    client = _client(args)
    out = sys.stdout.buffer
    try:
        from ..io import open as obj_open
    except ImportError:  # pragma: no cover - objio.io is part of the package
        out.write(client.get(args.uri))
        out.flush()
        return 0
    buf = bytearray(8 * MiB)
    mv = memoryview(buf)
    try:
        with obj_open(args.uri, "rb", client=client) as f:
            while True:
                n = f.readinto(mv)
                if not n:
                    break
                out.write(mv[:n])
        out.flush()
    except BrokenPipeError:  # `objio cat ... | head`: the reader left, not an error
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the exit-time flush
        except OSError:
            pass
    return 0


# ------------------------------------------------------------------------------------ cp
def _is_dir_like(obj: ObjectURI) -> bool:
    if obj.key.endswith(("/", os.sep)) or (obj.scheme == "s3" and obj.key == ""):
        return True
    return obj.scheme == "file" and os.path.isdir(obj.key)


def _join(obj: ObjectURI, rel: str) -> ObjectURI:
    key = obj.key
    sep = "/" if obj.scheme == "s3" else os.sep
    if key and not key.endswith(sep):
        key += sep
    if obj.scheme == "file":
        rel = rel.replace("/", os.sep)
    return obj.with_key(key + rel)


def _plan_copy(client: Any, src: str, dst: str, recursive: bool) -> list[tuple[str, str, int]]:
    s, d = parse_uri(src), parse_uri(dst)
    if not recursive:
        info = client.stat(src)
        target = _join(d, os.path.basename(s.key.rstrip("/" + os.sep))) if _is_dir_like(d) else d
        return [(str(s), str(target), info.size)]
    prefix = s.key
    if prefix and not prefix.endswith(("/", os.sep)):
        prefix += "/" if s.scheme == "s3" else os.sep
    src_root = s.with_key(prefix)
    plan = []
    for info in client.list_objects(str(src_root)):
        rel = info.key[len(prefix):]
        if s.scheme == "file":
            rel = rel.replace(os.sep, "/")
        plan.append((str(s.with_key(info.key)), str(_join(d, rel)), info.size))
    if not plan:
        raise FileNotFoundError(f"cp --recursive: nothing under {src}")
    return plan


def _stream_copy(client: Any, src: str, dst: str, progress: Callable[[int], None]) -> None:
    from ..io import open as obj_open

    buf = bytearray(8 * MiB)
    mv = memoryview(buf)
    with obj_open(src, "rb", client=client) as r, obj_open(dst, "wb", client=client) as w:
        while True:
            n = r.readinto(mv)
            if not n:
                break
            w.write(mv[:n])
            progress(n)


def cmd_cp(args: argparse.Namespace) -> int:
    from ..engine import RequestRecord

    client = _client(args)
    plan = _plan_copy(client, args.src, args.dst, args.recursive)
    total_bytes = sum(size for _, _, size in plan)
    small = [(s, d) for s, d, size in plan if size <= STREAM_THRESHOLD]
    large = [(s, d, size) for s, d, size in plan if size > STREAM_THRESHOLD]
    show = sys.stderr.isatty() and not args.no_progress and not args.json
    t0 = time.perf_counter()
    done = [0, 0]
    with _progress(show, total_bytes) as advance:
        def on_object(r: RequestRecord) -> None:
            done[0] += 1
            done[1] += r.nbytes
            advance(r.nbytes)

        if small:
            client.copy_many(small, max_in_flight=args.max_in_flight, observer=on_object)
        for s, d, size in large:
            try:
                _stream_copy(client, s, d, advance)
            except ImportError:  # pragma: no cover - objio.io is part of the package
                client.copy(s, d)
                advance(size)
            done[0] += 1
            done[1] += size
    wall = time.perf_counter() - t0
    summary = {"objects": done[0], "bytes": done[1], "seconds": round(wall, 6),
               "mib_per_s": round(done[1] / MiB / wall, 3) if wall > 0 else None}
    if args.json:
        print(json.dumps(summary))
    elif not args.quiet:
        for s, d, _ in plan[:1000]:
            print(f"copy: {s} to {d}")
        if len(plan) > 1000:
            print(f"... and {len(plan) - 1000} more")
        print(f"copied {done[0]} object(s), {format_size(done[1])} in {wall:.2f} s",
              file=sys.stderr)
    return 0


class _progress:
    """A rich progress bar in bytes (with bytes/s) on a TTY; a no-op otherwise."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled
        self.total = total
        self._p: Any = None
        self._task: Any = None

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda n: None
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._p = Progress(BarColumn(), DownloadColumn(binary_units=True),
                           TransferSpeedColumn(), TimeRemainingColumn(),
                           console=None, transient=True)
        self._p.start()
        self._task = self._p.add_task("cp", total=self.total)
        p, task = self._p, self._task
        return lambda n: p.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self._p is not None:
            self._p.stop()


# ------------------------------------------------------------------------------------ rm / mb
def cmd_rm(args: argparse.Namespace) -> int:
    client = _client(args)
    obj = parse_uri(args.uri)
    if args.recursive:
        key = obj.key
        if key and not key.endswith(("/", os.sep)):
            key += "/" if obj.scheme == "s3" else os.sep
        n = client.delete(str(obj.with_key(key)))
    else:
        if obj.key == "" or obj.key.endswith(("/", os.sep)):
            raise ValueError(f"{args.uri} is a prefix: use --recursive to delete everything "
                             "under it")
        if not client.exists(args.uri):
            raise FileNotFoundError(f"rm: {args.uri} does not exist")
        n = client.delete(args.uri)
    if args.json:
        print(json.dumps({"deleted": n}))
    else:
        print(f"delete: {n} object(s) under {args.uri}" if args.recursive
              else f"delete: {args.uri}")
    return 0


def cmd_mb(args: argparse.Namespace) -> int:
    obj = parse_uri(args.uri)
    if obj.scheme != "s3" or obj.key:
        raise ValueError(f"mb takes a bucket URI such as s3://my-bucket, got {args.uri!r}")
    _client(args).create_bucket(args.uri)
    print(f"make_bucket: {obj.bucket}")
    return 0


def register(sub: Any) -> None:
    """Add ls/stat/cat/cp/rm/mb to the ``objio`` sub-command parser."""
    p = sub.add_parser("ls", help="list buckets, or objects under a prefix",
                       description="List buckets (no URI), or objects and common prefixes "
                                   "under s3://bucket/prefix or a local directory.")
    add_global_flags(p)
    p.add_argument("uri", nargs="?", help="s3://bucket/prefix, file:///dir/ or a local path")
    p.add_argument("--recursive", "-r", action="store_true", help="every object under the prefix")
    p.add_argument("--long", "-l", action="store_true", help="also show the ETag")
    p.add_argument("--human-readable", action="store_true", help="sizes in KiB/MiB/GiB")
    p.add_argument("--summarize", action="store_true", help="print object count and total size")
    p.add_argument("--json", action="store_true", help="one JSON array on stdout")
    p.add_argument("--fast", action="store_true",
                   help="with --recursive: FastList, concurrent requests over disjoint key "
                        "ranges (same result; much faster for large prefixes on a remote store)")
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("stat", help="size, last modified and ETag of one object")
    add_global_flags(p)
    p.add_argument("uri")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_stat)

    p = sub.add_parser("cat", help="write an object to stdout")
    add_global_flags(p)
    p.add_argument("uri")
    p.set_defaults(func=cmd_cat)

    p = sub.add_parser("cp", help="copy objects: local->s3, s3->local, s3->s3",
                       description="Copy one object, or with --recursive every object under a "
                                   "prefix or directory. Objects up to 64 MiB are copied "
                                   "--max-in-flight at a time; larger ones are streamed.")
    add_global_flags(p)
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--recursive", "-r", action="store_true")
    p.add_argument("--max-in-flight", type=int, default=16, help="objects copied at once")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_cp)

    p = sub.add_parser("rm", help="delete an object, or a prefix with --recursive")
    add_global_flags(p)
    p.add_argument("uri")
    p.add_argument("--recursive", "-r", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_rm)

    p = sub.add_parser("mb", help="make a bucket")
    add_global_flags(p)
    p.add_argument("uri", help="s3://bucket")
    p.set_defaults(func=cmd_mb)
