"""File commands of the ``objio`` CLI, with aws-cli's names and flags (and s5cmd's wildcards):
``ls``, ``stat``, ``cat``, ``cp``, ``mv``, ``sync``, ``rm``, ``mb``, ``rb``, ``presign``.

Each parses its arguments, calls :mod:`objio.api` / :mod:`objio.transfer`, and prints.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from .._glob import included
from ..config import MiB, format_size
from ..transfer import (
    CopyItem,
    CopyPlan,
    copy_from_file,
    copy_to_file,
    plan_copy,
    plan_sync,
    run_copy,
)
from ..uri import has_glob, object_uri, parse_uri, split_glob
from ._common import add_global_flags, client_from_args, error_line
from ._messages import as_typed, check_source, typed_paths


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


def _client(args: argparse.Namespace) -> Any:
    return client_from_args(args)


def _say(args: argparse.Namespace) -> Callable[[str], None]:
    """Print a line on stdout unless --quiet or --json."""
    if getattr(args, "quiet", False) or getattr(args, "json", False):
        return lambda line: None
    show = typed_paths(args)  # local paths as the user typed them, not file:// URIs
    return lambda line: print(show(line))


class _progress:
    """A rich progress bar in bytes (binary units, bytes/s) on a TTY; a no-op otherwise."""

    def __init__(self, enabled: bool, total: int, label: str = "cp") -> None:
        self.enabled = enabled
        self.total = total
        self.label = label
        self._p: Any = None

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda n: None
        from ._transfer import transfer_progress

        self._p = transfer_progress(self.label)  # binary units; rate = bytes done / elapsed
        self._p.start()
        task = self._p.add_task(self.label, total=self.total or None)
        p = self._p
        return lambda n: p.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self._p is not None:
            self._p.stop()


def _show_progress(args: argparse.Namespace) -> bool:
    return sys.stderr.isatty() and not getattr(args, "no_progress", False) \
        and not getattr(args, "json", False) and not getattr(args, "quiet", False)


# ------------------------------------------------------------------------------------ ls
def cmd_ls(args: argparse.Namespace) -> int:
    client = _client(args)
    out = sys.stdout
    bare = (args.uri or "").rstrip("/").lower()
    if not args.uri or bare in ("s3:", "s3:/", "gs:", "gs:/", "gcs:", "gcs:/"):
        buckets = client.list_buckets("gs" if bare.startswith("gs") else "s3")
        if args.json:
            json.dump([{"bucket": n, "created": _iso(t)} for n, t in buckets], out)
            out.write("\n")
        else:
            for name, created in buckets:
                out.write(f"{_when(created)} {name}\n")
        return 0
    obj = parse_uri(args.uri)
    if args.fast and not (args.recursive or args.manifest):
        raise ValueError("--fast (FastList) applies to --recursive listings")
    if args.manifest:
        return _write_manifest(args, client, out)
    # Printed as the pages arrive (one level: each page's common prefixes, then its objects,
    # as aws s3 ls): memory stays bounded, and a listing that fails part way keeps what it
    # printed and exits 1 with the error line.
    recursive = bool(args.recursive or has_glob(obj.key))
    if has_glob(obj.key):
        base = split_glob(obj)[0]
    else:
        base = obj.key if (obj.key.endswith(("/", os.sep)) and not args.recursive) else ""
    found = False
    count = total = 0
    sep = "["
    pages = client.list_pages(args.uri, recursive=recursive, fast=args.fast)
    try:
        for page in pages:
            objects = page.objects
            if page.prefixes or objects:
                found = True
            markers: list[str] = []
            if not recursive and base:
                markers, objects = _directory_markers(objects, base)
            count += len(objects)
            total += sum(o.size for o in objects)
            if args.json:
                rows: list[dict[str, Any]] = [{"prefix": p} for p in markers + page.prefixes]
                rows += [{"key": o.key, "size": o.size, "last_modified": _iso(o.last_modified),
                          "etag": o.etag} for o in objects]
                if rows:
                    out.write(sep + ", ".join(json.dumps(r) for r in rows))
                    sep = ", "
                continue
            lines = [f"{'PRE':>30} {p}\n" for p in markers]  # named in full: its name is base
            lines += [f"{'PRE':>30} {p[len(base):]}\n" for p in page.prefixes]
            for o in objects:
                size = format_size(o.size) if args.human_readable else str(o.size)
                line = f"{_when(o.last_modified)} {size:>10} {o.key[len(base):]}"
                if args.long:
                    line += f"  {o.etag}"
                lines.append(line + "\n")
            out.write("".join(lines))
    finally:
        pages.close()
    if args.json:
        out.write(("[" if sep == "[" else "") + "]\n")
        return 0 if found else _nothing_matches("ls", args.uri, obj.key, obj.scheme)
    if args.summarize:
        size_text = format_size(total) if args.human_readable else str(total)
        out.write(f"\nTotal Objects: {count}\n   Total Size: {size_text}\n")
    # nothing there: exit 1, as aws s3 ls (a wildcard that matches nothing says so)
    return 0 if found else _nothing_matches("ls", args.uri, obj.key, obj.scheme)


def _nothing_matches(command: str, uri: str, key: str, scheme: str = "s3") -> int:
    """Exit status 1 for a listing that found nothing; for a wildcard, with the one line
    naming the pattern; for a local path that does not exist, the line saying so (with the
    ``s3://`` URI it may have meant). An empty S3 prefix stays silent, as aws s3 ls."""
    if has_glob(key):
        print(f"objio: error: {command}: nothing matches {uri}", file=sys.stderr)
    elif scheme == "file" and not os.path.exists(key):
        from ..uri import s3_hint

        hint = s3_hint(uri)
        print(f"objio: error: {command}: {uri}: no such file or directory"
              + (f" (did you mean {hint}?)" if hint else ""), file=sys.stderr)
    return 1


def _directory_markers(objects: list[Any], base: str) -> tuple[list[str], list[Any]]:
    """Split off the directory marker of a one-level listing of ``base`` (a prefix ending in
    ``/``): the 0-byte object whose key is ``base`` itself, which the S3 console's "Create
    folder", Hadoop's s3a and some servers keep. ``ls`` shows it as the prefix it is (a ``PRE``
    line), not as a nameless 0-byte object, and does not count it as an object.
    Returns (marker keys, the other objects)."""
    markers = [o.key for o in objects if o.key == base and o.size == 0]
    if not markers:
        return [], objects
    return markers, [o for o in objects if not (o.key == base and o.size == 0)]


def _write_manifest(args: argparse.Namespace, client: Any, out: Any) -> int:
    """``ls --manifest FILE``: every object under the URI (or matching its glob) into FILE
    (objio.manifest); one summary line (or JSON object) on stdout."""
    from ..manifest import write_manifest

    m = write_manifest(args.uri, args.manifest, fast=args.fast, client=client)
    if args.json:
        json.dump({"manifest": m.path, "format": m.format, "uri": m.uri, "objects": m.count,
                   "bytes": m.total_bytes, "listed_at": _iso(m.listed_at),
                   "listing_seconds": m.listing_seconds}, out)
        out.write("\n")
    else:
        size = format_size(m.total_bytes) if args.human_readable else f"{m.total_bytes} bytes"
        out.write(f"manifest: {m.count} object(s), {size} under {m.uri} listed in "
                  f"{m.listing_seconds:.2f} s -> {m.path}\n")
    return 0 if m.count else 1  # nothing there: exit 1, as ls (the manifest is written)


# ------------------------------------------------------------------------------------ stat
def cmd_stat(args: argparse.Namespace) -> int:
    check_source(args, "stat")
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
    check_source(args, "cat")
    copy_to_file(_client(args), args.uri, sys.stdout.buffer)
    return 0


# ------------------------------------------------------------------------------------ cp / mv
def _warn_skipped(plan: CopyPlan, args: argparse.Namespace) -> None:
    if not getattr(args, "quiet", False):
        for uri, reason in plan.skipped:
            print(as_typed(f"warning: skipping {uri}: {reason}", args), file=sys.stderr)


_PAST = {"copy": "copied", "move": "moved", "sync": "synced"}


def _summary(args: argparse.Namespace, verb: str, objects: int, nbytes: int, wall: float,
             plan: CopyPlan, extra: dict[str, Any] | None = None, tail: str = "",
             of: int | None = None) -> None:
    summary: dict[str, Any] = {"objects": objects, "bytes": nbytes, "seconds": round(wall, 6),
                               "mib_per_s": round(nbytes / MiB / wall, 3) if wall > 0 else None,
                               "skipped": len(plan.skipped), "dryrun": bool(args.dryrun)}
    summary.update(extra or {})
    if args.json:
        print(json.dumps(summary))
    elif not args.quiet:
        skipped = f", skipped {len(plan.skipped)}" if plan.skipped else ""
        count = f"{objects} of {of}" if of is not None else str(objects)
        print(f"{verb} {count} object(s), {format_size(nbytes)} in {wall:.2f} s{skipped}"
              f"{tail}", file=sys.stderr)


def _failed(args: argparse.Namespace, verb: str, done: list[CopyItem], plan: CopyPlan,
            t0: float, error: BaseException, extra: dict[str, Any] | None = None) -> None:
    """The summary of a copy that stopped at an error: what was done and what was not (the
    error line that follows names the object that failed)."""
    past = _PAST[verb]
    missing = len(plan.items) - len(done)
    info: dict[str, Any] = {"not_" + past: missing, "error": error_line(error)}
    info.update(extra or {})
    _summary(args, past, len(done), sum(i.size for i in done), time.perf_counter() - t0, plan,
             info, f"; {missing} not {past} (stopped by the error below)", of=len(plan.items))


def _copy(args: argparse.Namespace, verb: str, move: bool) -> int:
    check_source(args, "mv" if move else "cp")
    client = _client(args)
    say = _say(args)
    t0 = time.perf_counter()
    if args.src == "-" or args.dst == "-":  # standard input / output, streamed
        if move:
            raise ValueError("mv cannot take '-' (standard input or output); use cp")
        if args.src == "-":
            object_uri(args.dst, "cp -")  # an object, not a prefix
            with _progress(_show_progress(args), 0, verb) as advance:
                n = copy_from_file(client, sys.stdin.buffer, args.dst, advance)
        else:
            n = copy_to_file(client, args.src, sys.stdout.buffer)
        _summary(args, "copied", 1, n, time.perf_counter() - t0, CopyPlan())
        return 0
    plan = plan_copy(client, args.src, args.dst, args.recursive, move=move,
                     manifest=getattr(args, "from_manifest", None),
                     filters=getattr(args, "filters", None) or ())
    _warn_skipped(plan, args)
    if args.dryrun:
        for item in plan.items[:1000]:
            say(f"(dryrun) {verb}: {item.src} to {item.dst}")
        if len(plan.items) > 1000:
            say(f"... and {len(plan.items) - 1000} more")
        _summary(args, f"would {verb}", len(plan.items), plan.bytes, 0.0, plan)
        return 0
    done: list[CopyItem] = []

    def on_done(item: CopyItem) -> None:  # aws-cli's order: a line once the object is there
        done.append(item)
        if not move:
            say(f"copy: {item.src} to {item.dst}")

    try:
        with _progress(_show_progress(args), plan.bytes, verb) as advance:
            objects, nbytes = run_copy(client, plan.items, max_in_flight=args.max_in_flight,
                                       advance=advance, on_done=on_done)
    except Exception as e:
        if isinstance(e, BrokenPipeError):
            raise
        if move and done:  # the moves that were copied are finished: their sources go
            _delete_sources(client, done, say)
        _failed(args, verb, done, plan, t0, e)
        raise
    if move:  # only the sources that were copied: whatever appeared since stays
        _delete_sources(client, done, say)
    _summary(args, _PAST[verb], objects, nbytes, time.perf_counter() - t0, plan)
    return 0


def _delete_sources(client: Any, done: list[CopyItem], say: Callable[[str], None]) -> None:
    """Finish the moves whose copy is complete: delete their sources, then say so."""
    client.delete_many([i.src for i in done])
    for item in done:
        say(f"move: {item.src} to {item.dst}")


def cmd_cp(args: argparse.Namespace) -> int:
    return _copy(args, "copy", move=False)


def cmd_mv(args: argparse.Namespace) -> int:
    return _copy(args, "move", move=True)


# ------------------------------------------------------------------------------------ sync
def cmd_sync(args: argparse.Namespace) -> int:
    client = _client(args)
    say = _say(args)
    t0 = time.perf_counter()
    plan = plan_sync(client, args.src, args.dst, delete=args.delete,
                     manifest=args.from_manifest, filters=getattr(args, "filters", None) or ())
    _warn_skipped(plan, args)
    if args.dryrun:
        for item in plan.items[:1000]:
            say(f"(dryrun) copy: {item.src} to {item.dst}")
        for uri in plan.delete[:1000]:
            say(f"(dryrun) delete: {uri}")
        _summary(args, "would sync", len(plan.items), plan.bytes, 0.0, plan,
                 {"deleted": 0, "would_delete": len(plan.delete),
                  "up_to_date": plan.up_to_date},
                 f", would delete {len(plan.delete)}" if args.delete else "")
        return 0
    done: list[CopyItem] = []

    def on_done(item: CopyItem) -> None:  # a line once the object is there
        done.append(item)
        say(f"copy: {item.src} to {item.dst}")

    try:
        with _progress(_show_progress(args), plan.bytes, "sync") as advance:
            objects, nbytes = run_copy(client, plan.items, max_in_flight=args.max_in_flight,
                                       advance=advance, keep_mtime=True, on_done=on_done)
    except Exception as e:
        if not isinstance(e, BrokenPipeError):  # a failed copy: nothing is deleted
            _failed(args, "sync", done, plan, t0, e,
                    {"deleted": 0, "up_to_date": plan.up_to_date})
        raise
    deleted = 0
    if plan.delete:
        deleted = client.delete_many(plan.delete)
        for uri in plan.delete:
            say(f"delete: {uri}")
    _summary(args, "synced", objects, nbytes, time.perf_counter() - t0, plan,
             {"deleted": deleted, "up_to_date": plan.up_to_date},
             f", deleted {deleted}" if args.delete else "")
    return 0


# ------------------------------------------------------------------------------------ rm
def cmd_rm(args: argparse.Namespace) -> int:
    check_source(args, "rm")
    client = _client(args)
    obj = parse_uri(args.uri)
    say = _say(args)
    dry = "(dryrun) " if args.dryrun else ""
    if args.incomplete_uploads:
        if obj.scheme not in ("s3", "gs"):
            raise ValueError(f"--incomplete-uploads takes an s3://bucket/prefix or "
                             f"gs://bucket/prefix, got {args.uri!r}")
        uploads = client.list_multipart_uploads(args.uri)
        for key, upload_id in uploads:
            where = key or "(destination not recorded)"
            say(f"{dry}abort: {obj.scheme}://{obj.bucket}/{where} (upload {upload_id})")
        n = client.abort_multipart_uploads(args.uri, args.older_than, dry_run=args.dryrun)
        if args.json:
            print(json.dumps({"aborted": 0 if args.dryrun else n, "found": len(uploads)}))
        else:
            say(f"{dry}aborted {n} incomplete multipart upload(s) under {args.uri}")
        return 0
    if args.recursive or has_glob(obj.key):
        n = _rm_many(args, client, obj, say, dry)
    else:
        if obj.key == "" or obj.key.endswith(("/", os.sep)):
            raise ValueError(f"{args.uri} is a prefix: use --recursive to delete everything "
                             "under it")
        if getattr(args, "filters", None) or args.older_than:
            flag = "--older-than" if args.older_than else "--exclude/--include"
            raise ValueError(f"{flag} applies to rm --recursive, a wildcard or "
                             f"--incomplete-uploads, not to the single object {args.uri}")
        n = 1
        if not args.dryrun:  # a missing key is fine, as with aws s3 rm
            client.delete(args.uri)
        say(f"{dry}delete: {args.uri}")
    if args.json:
        print(json.dumps({"deleted": 0, "dryrun": True, "would_delete": n} if args.dryrun
                         else {"deleted": n}))
    return 0


def _rm_many(args: argparse.Namespace, client: Any, obj: Any, say: Callable[[str], None],
             dry: str) -> int:
    """``rm -r`` / ``rm WILDCARD``: list everything first (the listing is complete before
    anything is deleted), then delete what :func:`rm_targets` chose (DeleteObjects, 1000
    keys a request). Returns how many (would be) deleted."""
    uris = rm_targets(args, client, obj)
    if args.dryrun:
        for uri in uris:
            say(f"{dry}delete: {uri}")
        return len(uris)
    n = client.delete_many(uris) if uris else 0
    say(f"delete: {n} object(s) under {args.uri}")
    return n


def rm_targets(args: argparse.Namespace, client: Any, obj: Any) -> list[str]:
    """The objects ``rm -r`` / ``rm WILDCARD`` deletes: the whole listing (complete, or an
    error), then those the filters (``--exclude`` / ``--include``, relative to the prefix)
    and ``--older-than`` keep. No request deletes anything.

    Raises: FileNotFoundError for a wildcard that matches nothing."""
    key = obj.key
    if args.recursive and key and not has_glob(key) and not key.endswith(("/", os.sep)):
        key += os.sep if obj.is_local else "/"
    target = obj.with_key(key)
    base, pattern = split_glob(target)
    if pattern is None:
        infos = client.list_objects(str(target), fast=True)  # FastList: large prefixes
    else:
        infos = client.list_objects(str(target))
    if pattern is not None and not infos:
        raise FileNotFoundError(f"rm: nothing matches {args.uri}")
    filters = getattr(args, "filters", None) or ()
    if filters:
        sep = os.sep if obj.is_local else "/"
        infos = [i for i in infos
                 if included(filters, i.key[len(base):].replace(sep, "/"))]
    if args.older_than:
        cutoff = time.time() - args.older_than
        infos = [i for i in infos if i.last_modified <= cutoff]
    return [str(obj.with_key(i.key)) for i in infos]


# ------------------------------------------------------------------------------------ buckets
def _bucket(uri: str, command: str) -> Any:
    obj = parse_uri(uri)
    if obj.is_local or obj.key:
        raise ValueError(f"{command} takes a bucket URI such as s3://my-bucket or "
                         f"az://my-container, got {uri!r}")
    return obj


def cmd_mb(args: argparse.Namespace) -> int:
    obj = _bucket(args.uri, "mb")
    say = _say(args)
    if getattr(args, "dryrun", False):  # no request
        say(f"(dryrun) make_bucket: {obj.bucket}")
        return 0
    _client(args).create_bucket(args.uri)
    say(f"make_bucket: {obj.bucket}")
    return 0


def cmd_rb(args: argparse.Namespace) -> int:
    obj = _bucket(args.uri, "rb")
    root = str(obj.with_key(""))  # s3://bucket/, gs://bucket/, az://container/
    client = _client(args)
    say = _say(args)
    root = str(obj.with_key(""))  # s3://bucket/, az://container/
    if getattr(args, "dryrun", False):  # listings only: nothing is written or deleted
        if args.force:
            for info in client.list_objects(root):
                say(f"(dryrun) delete: {root}{info.key}")
        else:  # a missing bucket is still FileNotFoundError
            client.list_objects(root, recursive=False)
        say(f"(dryrun) remove_bucket: {obj.bucket}")
        return 0
    if args.force:  # aws s3 rb --force: empty it first
        n = client.delete(root)
        client.abort_multipart_uploads(root)
        if n:
            say(f"delete: {n} object(s) in {root}")
    client.delete_bucket(root)
    say(f"remove_bucket: {obj.bucket}")
    return 0


def cmd_presign(args: argparse.Namespace) -> int:
    print(_client(args).presign(args.uri, expires_s=args.expires_in, method=args.method))
    return 0


# ------------------------------------------------------------------------------------ parser
def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return n


class _Filter(argparse.Action):
    """``--exclude P`` / ``--include P``: appended to ``filters`` in the order given."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        if not values:
            parser.error(f"{option_string} takes a non-empty pattern")
        filters = list(getattr(namespace, "filters", None) or [])
        filters.append((self.const, values))
        namespace.filters = filters


def _filter_flags(p: argparse.ArgumentParser) -> None:
    """aws-cli's ``--exclude`` / ``--include`` (repeatable, evaluated in order)."""
    g = p.add_argument_group(
        "filters (aws-cli's: evaluated in the order given, the last that matches wins; "
        "matched against the key relative to the source prefix; * and ? match / too)")
    g.add_argument("--exclude", action=_Filter, const="exclude", dest="filters",
                   metavar="PATTERN", default=[], help="leave out keys matching PATTERN")
    g.add_argument("--include", action=_Filter, const="include", dest="filters",
                   metavar="PATTERN", help="take back keys matching PATTERN (after an "
                                           "--exclude)")


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """``30s``, ``15m``, ``12h``, ``1d``, ``2w`` (a bare number: seconds) -> seconds.

    Raises: argparse.ArgumentTypeError naming the value and the units."""
    t = text.strip().lower()
    scale = _DURATION_UNITS.get(t[-1:], 0) if t else 0
    number = t[:-1] if scale else t
    try:
        value = float(number) * (scale or 1)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 30s, 15m, 12h, 1d, 2w (a bare number: seconds), "
            f"got {text!r}")
    return value


def _copy_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-in-flight", type=_positive_int, default=16, metavar="N",
                   help="objects copied at once, >= 1 (default 16)")
    p.add_argument("--dryrun", action="store_true", help="print what would happen; change nothing")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on a terminal")


def _dry_quiet_flags(p: argparse.ArgumentParser, dry_help: str) -> None:
    p.add_argument("--dryrun", action="store_true", help=dry_help)
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")


def _from_manifest_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from-manifest", metavar="FILE", default=None,
                   help="take the source's objects (under SRC, which the manifest must hold) "
                        "from FILE, written by objio ls --manifest, instead of listing SRC "
                        "(implies --recursive)")


def register(sub: Any) -> None:
    """Add the file commands to the ``objio`` sub-command parser."""
    p = sub.add_parser("ls", help="list buckets, or objects under a prefix or matching a glob",
                       description="List buckets (no URI, or s3://), or the objects and common "
                                   "prefixes one level under s3://bucket/prefix or a local "
                                   "directory; --recursive for every object; wildcards as "
                                   "s5cmd's (* within a segment, ** across /, ?, [...], in any "
                                   "segment). Exit 1 when nothing matches, as aws s3 ls.")
    add_global_flags(p)
    p.add_argument("uri", nargs="?",
                   help="s3://bucket/prefix, s3://bucket/dir/*.npz, file:///dir/ or a local path")
    p.add_argument("--recursive", "-r", action="store_true", help="every object under the prefix")
    p.add_argument("--long", "-l", action="store_true", help="also show the ETag")
    p.add_argument("--human-readable", "-H", action="store_true",
                   help="sizes in KiB/MiB/GiB (powers of 1024)")
    p.add_argument("--summarize", action="store_true", help="print object count and total size")
    p.add_argument("--json", action="store_true", help="one JSON array on stdout")
    p.add_argument("--fast", action="store_true",
                   help="with --recursive: FastList, concurrent requests over disjoint key "
                        "ranges (same result; much faster for large prefixes on a remote store)")
    p.add_argument("--manifest", metavar="FILE", default=None,
                   help="write every object under the URI (recursively; or those its glob "
                        "matches) with size, ETag and last-modified time to FILE (.parquet, "
                        ".jsonl or .jsonl.zst) instead of printing them; datasets, the model "
                        "connector and cp/sync --from-manifest read it without listing")
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("stat", help="size, last modified and ETag of one object")
    add_global_flags(p)
    p.add_argument("uri", help="s3://bucket/key or a local file")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=cmd_stat)

    p = sub.add_parser("cat", help="write an object to standard output")
    add_global_flags(p)
    p.add_argument("uri", help="s3://bucket/key or a local file")
    p.set_defaults(func=cmd_cat)

    for name, func, help_text in (
            ("cp", cmd_cp, "copy objects: local->s3, s3->local, s3->s3, '-' for stdin/stdout"),
            ("mv", cmd_mv, "move objects (copy, then delete the sources that were copied)")):
        p = sub.add_parser(name, help=help_text,
                           description="Copy one object, every object under a prefix "
                                       "(--recursive), or the objects a glob in the source's "
                                       "last segment matches (s3://b/train/*.npz). Objects up "
                                       "to 64 MiB are copied --max-in-flight at a time; larger "
                                       "ones are streamed. With cp, '-' as source or "
                                       "destination is standard input or output (streamed; "
                                       "multipart for large input). Local destinations never "
                                       "receive files outside their directory: keys with '..' "
                                       "are skipped with a warning, as aws-cli does.")
        add_global_flags(p)
        p.add_argument("src", help="s3://bucket/key, a prefix with -r, a glob, a local path"
                                   + (", or -" if name == "cp" else ""))
        p.add_argument("dst", help="s3://bucket/key or prefix/, a local path or directory"
                                   + (", or -" if name == "cp" else ""))
        p.add_argument("--recursive", "-r", action="store_true",
                       help="every object under the source prefix")
        if name == "cp":
            _from_manifest_flag(p)
        _copy_flags(p)
        _filter_flags(p)
        p.set_defaults(func=func)

    p = sub.add_parser("sync", help="copy what is new or changed from SRC to DST (aws s3 sync)",
                       description="Copy every object under SRC that is missing at DST, has "
                                   "another size there, or is newer at SRC (the rules of aws "
                                   "s3 sync); local files written get the source's "
                                   "modification time. --delete removes what DST has that SRC "
                                   "does not.")
    add_global_flags(p)
    p.add_argument("src", help="s3://bucket/prefix/ or a local directory")
    p.add_argument("dst", help="s3://bucket/prefix/ or a local directory")
    p.add_argument("--delete", action="store_true",
                   help="delete objects at DST that SRC does not have")
    _from_manifest_flag(p)
    _copy_flags(p)
    _filter_flags(p)
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("rm", help="delete an object, a prefix (--recursive) or a glob",
                       description="Delete one object (a missing one is not an error, as with "
                                   "aws s3 rm), every object under a prefix with --recursive, "
                                   "or the objects a wildcard matches (s3://b/train/*.npz). "
                                   "--incomplete-uploads aborts the multipart uploads in "
                                   "progress under a prefix instead.")
    add_global_flags(p)
    p.add_argument("uri", help="s3://bucket/key, s3://bucket/prefix/ with -r, a glob, or a "
                               "local path")
    p.add_argument("--recursive", "-r", action="store_true",
                   help="delete every object under the prefix")
    p.add_argument("--dryrun", action="store_true",
                   help="print what would be deleted; delete nothing")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")
    p.add_argument("--incomplete-uploads", action="store_true",
                   help="abort the incomplete multipart uploads under the s3:// prefix "
                        "(gs://: objio's composite uploads, parts under .objio-uploads/)")
    p.add_argument("--older-than", type=parse_duration, default=0.0, metavar="AGE",
                   help="only objects last modified (with --incomplete-uploads: uploads "
                        "started) at least AGE ago: 30s, 15m, 12h, 1d, 2w; a bare number is "
                        "seconds (default 0: all)")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    _filter_flags(p)
    p.set_defaults(func=cmd_rm)

    p = sub.add_parser("mb", help="make a bucket")
    add_global_flags(p)
    p.add_argument("uri", help="s3://bucket")
    _dry_quiet_flags(p, "print the bucket that would be made; send no request")
    p.set_defaults(func=cmd_mb)

    p = sub.add_parser("rb", help="remove a bucket (--force: empty it first)")
    add_global_flags(p)
    p.add_argument("uri", help="s3://bucket")
    p.add_argument("--force", action="store_true",
                   help="delete every object (and incomplete upload) in it first")
    _dry_quiet_flags(p, "print what would be deleted and removed (listing only); change "
                        "nothing")
    p.set_defaults(func=cmd_rb)

    p = sub.add_parser("presign", help="a URL that gives access to one object for a while",
                       description="Print a presigned URL (SigV4 query authorization; on "
                                   "az://, a service SAS signed with the account key; on "
                                   "gs://, a V4 signed URL signed with a service account's "
                                   "key) with "
                                   "which anyone can GET (or PUT) the object until it "
                                   "expires, as aws s3 presign. No request is sent.")
    add_global_flags(p)
    p.add_argument("uri", help="s3://bucket/key, az://container/blob or gs://bucket/object")
    p.add_argument("--expires-in", type=int, default=3600, metavar="SECONDS",
                   help="seconds the URL stays valid, 1 to 604800 (default 3600)")
    p.add_argument("--method", default="GET", choices=["GET", "PUT"],
                   help="what the URL allows (default GET)")
    p.set_defaults(func=cmd_presign)
