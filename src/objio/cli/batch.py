"""``objio run FILE``: s5cmd's batch mode. One ``cp``, ``mv``, ``rm`` or ``sync`` command per
line (with their flags; blank lines and lines starting with ``#`` skipped; a ``#`` inside a
line is part of it), every line checked before
anything runs, the copies of all lines under one ``--max-in-flight``, one summary.

How a run goes:

1. Every line is parsed as the command it names (the same parser as on the command line);
   a line that does not parse is reported with its number, and nothing runs (exit 2).
2. Each line is planned in the order given: its listings are complete before anything is
   copied or deleted (the same plans, same-object refusals and filters as ``cp`` / ``mv`` /
   ``sync`` / ``rm``). A line whose plan fails (nothing matches, no such bucket) fails alone.
3. The copies of every line run together, ``--max-in-flight`` objects at a time
   (:func:`objio.transfer.run_copy_each`): an object that fails fails its line, not the rest.
4. Then the deletions: the sources a ``mv`` line copied, what a ``sync --delete`` line
   removes (only when all of its copies succeeded), what an ``rm`` line lists.

Lines run concurrently: no line waits for another (as in s5cmd), so a line that needs
another's result belongs in a later run. The failed lines are printed verbatim on stderr after
a ``#`` header, so that block can be fed back to ``objio run -``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ..config import format_size
from ..transfer import CopyItem, plan_copy, plan_sync, run_copy_each
from ..uri import has_glob, parse_uri
from ._common import add_global_flags, client_from_args, error_line

COMMANDS = ("cp", "mv", "rm", "sync")
"""The commands a line of ``objio run`` may hold."""

_CONNECTION = ("endpoint_url", "region", "profile")


class _LineError(ValueError):
    """A line of the batch file that does not parse."""


class _RaisingParser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise _LineError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise _LineError((message or "").strip() or f"{self.prog}: exits here (--help?)")


@dataclass
class _Line:
    number: int
    text: str
    args: argparse.Namespace
    items: list[CopyItem] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    keep_mtime: bool = False
    errors: list[str] = field(default_factory=list)
    copied: list[CopyItem] = field(default_factory=list)
    deleted: int = 0

    @property
    def command(self) -> str:
        return str(self.args.command)


def _read(path: str) -> list[tuple[int, str]]:
    """(line number, text) of every line that holds a command."""
    if path == "-":
        text = sys.stdin.read()
    else:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            out.append((n, stripped))
    return out


def parse_lines(lines: list[tuple[int, str]], run_args: argparse.Namespace
                ) -> tuple[list[_Line], list[str]]:
    """Parse every line; returns (the lines, one message per line that does not parse)."""
    from . import build_parser

    parser = build_parser(_RaisingParser)
    parsed: list[_Line] = []
    bad: list[str] = []
    for n, text in lines:
        try:
            # whole-line comments only: a # inside a line is part of it (keys may hold #;
            # cutting "s3://b/dir#1/" to "s3://b/dir" would name another prefix)
            argv = shlex.split(text)
            if not argv or argv[0] not in COMMANDS:
                raise _LineError(f"{argv[0] if argv else text!r} is not one of "
                                 f"{', '.join(COMMANDS)}")
            args = parser.parse_args(argv)
            if "-" in (getattr(args, "src", None), getattr(args, "dst", None)):
                raise _LineError("'-' (standard input or output) cannot be used in a batch")
            if args.command == "rm" and args.incomplete_uploads:
                raise _LineError("rm --incomplete-uploads cannot be used in a batch")
        except (_LineError, ValueError) as e:
            bad.append(f"line {n}: {error_line(e)}: {text}")
            continue
        for name in _CONNECTION:  # the run's connection flags, unless the line gives its own
            if getattr(args, name, None) is None:
                setattr(args, name, getattr(run_args, name, None))
        if run_args.no_sign_request:
            args.no_sign_request = True
        if run_args.dryrun:
            args.dryrun = True
        parsed.append(_Line(n, text, args))
    return parsed, bad


def _plan(line: _Line) -> None:
    """The line's copies and deletions (listings only: nothing is written or deleted)."""
    from .files import rm_targets

    a = line.args
    client = client_from_args(a)
    filters = getattr(a, "filters", None) or ()
    if a.command in ("cp", "mv"):
        plan = plan_copy(client, a.src, a.dst, a.recursive, move=a.command == "mv",
                         manifest=getattr(a, "from_manifest", None), filters=filters)
        line.items = plan.items
    elif a.command == "sync":
        splan = plan_sync(client, a.src, a.dst, delete=a.delete, manifest=a.from_manifest,
                          filters=filters)
        line.items, line.deletes, line.keep_mtime = splan.items, splan.delete, True
    else:
        obj = parse_uri(a.uri)
        if a.recursive or has_glob(obj.key):
            line.deletes = rm_targets(a, client, obj)
        else:
            if obj.key == "" or obj.key.endswith("/"):
                raise ValueError(f"{a.uri} is a prefix: use --recursive to delete everything "
                                 "under it")
            line.deletes = [a.uri]


def cmd_run(args: argparse.Namespace) -> int:
    quiet = args.quiet or args.json
    say = (lambda s: None) if quiet else print
    t0 = time.perf_counter()
    lines, bad = parse_lines(_read(args.file), args)
    if bad:
        for message in bad:
            print(f"objio: error: {message}", file=sys.stderr)
        print(f"objio run: {len(bad)} line(s) do not parse; nothing was run", file=sys.stderr)
        return 2
    for line in lines:
        try:
            _plan(line)
        except (OSError, ValueError, RuntimeError) as e:
            line.errors.append(error_line(e))

    planned = [ln for ln in lines if not ln.errors]
    if args.dryrun:
        for line in planned:
            verb = {"cp": "copy", "mv": "move", "sync": "copy"}.get(line.command, "")
            for item in line.items:
                say(f"(dryrun) {verb}: {item.src} to {item.dst}")
            for uri in line.deletes:
                say(f"(dryrun) delete: {uri}")
    else:
        _execute(args, planned, say)
    return _report(args, lines, time.perf_counter() - t0)


def _execute(args: argparse.Namespace, lines: list[_Line], say: Any) -> None:
    owner: dict[int, _Line] = {}  # by id(): two lines may copy the same pair
    items: list[CopyItem] = []
    keep: list[CopyItem] = []
    for line in lines:
        for item in line.items:
            owner[id(item)] = line
            items.append(item)
            if line.keep_mtime:
                keep.append(item)

    def on_done(item: CopyItem) -> None:
        owner[id(item)].copied.append(item)
        if owner[id(item)].command != "mv":
            say(f"copy: {item.src} to {item.dst}")

    if items:
        client = client_from_args(lines[0].args)
        results = run_copy_each(client, items, max_in_flight=args.max_in_flight,
                                keep_mtime=keep, on_done=on_done)
        for item, error in zip(items, results, strict=True):
            if error is not None:
                owner[id(item)].errors.append(f"{item.src}: {error_line(error)}")
    for line in lines:
        if line.command == "mv":
            uris = [i.src for i in line.copied]  # only the sources that were copied
        elif line.command == "sync" and line.errors:
            uris = []  # a sync whose copies failed deletes nothing
        else:
            uris = line.deletes
        if not uris:
            continue
        try:
            line.deleted = client_from_args(line.args).delete_many(uris)
        except (OSError, ValueError, RuntimeError) as e:
            line.errors.append(error_line(e))
            continue
        verb = "move" if line.command == "mv" else "delete"
        for item in line.copied if line.command == "mv" else ():
            say(f"{verb}: {item.src} to {item.dst}")
        if line.command != "mv":
            for uri in uris:
                say(f"delete: {uri}")


def _report(args: argparse.Namespace, lines: list[_Line], wall: float) -> int:
    failed = [ln for ln in lines if ln.errors]
    if args.dryrun:
        objects = sum(len(ln.items) for ln in lines if not ln.errors)
        nbytes = sum(i.size for ln in lines if not ln.errors for i in ln.items)
        deleted = sum(len(ln.deletes) for ln in lines if not ln.errors)
    else:
        objects = sum(len(ln.copied) for ln in lines)
        nbytes = sum(i.size for ln in lines for i in ln.copied)
        deleted = sum(ln.deleted for ln in lines)
    for line in failed:
        for e in line.errors[:5]:
            print(f"objio: error: line {line.number}: {e}", file=sys.stderr)
        if len(line.errors) > 5:
            print(f"objio: error: line {line.number}: ... and {len(line.errors) - 5} more",
                  file=sys.stderr)
    summary = {"commands": len(lines), "ok": len(lines) - len(failed), "failed": len(failed),
               "objects": objects, "bytes": nbytes, "deleted": deleted,
               "seconds": round(wall, 6), "dryrun": bool(args.dryrun),
               "failed_lines": [ln.text for ln in failed]}
    if args.json:
        print(json.dumps(summary))
    if not args.quiet or failed:
        would = "would copy" if args.dryrun else "copied"
        gone = "would delete" if args.dryrun else "deleted"
        print(f"run: {summary['ok']} command(s) ok, {len(failed)} failed; {would} {objects} "
              f"object(s), {format_size(nbytes)}, {gone} {deleted}, in {wall:.2f} s",
              file=sys.stderr)
    if failed:
        print("# failed lines (re-run them with: objio run -)", file=sys.stderr)
        for line in failed:
            print(line.text, file=sys.stderr)
        return 1
    return 0


def register(sub: Any) -> None:
    """Add ``run`` to the ``objio`` sub-command parser."""
    p = sub.add_parser("run", help="run cp/mv/rm/sync commands from a file, concurrently "
                                   "(s5cmd's batch mode)",
                       description="Run one cp, mv, rm or sync command per line of FILE ('-': "
                                   "standard input), with their flags; blank lines and lines "
                                   "starting with # are skipped. Every line is checked first: one "
                                   "that does not parse is reported with its number and "
                                   "nothing runs (exit 2). The lines' copies run together, "
                                   "--max-in-flight objects at a time, in no order between "
                                   "lines; then their deletions. One summary at the end; "
                                   "exit 1 if any line failed, the failed lines printed "
                                   "verbatim on stderr after a # header to be run again.")
    add_global_flags(p)
    p.add_argument("file", help="the commands, one per line ('-': standard input)")
    p.add_argument("--max-in-flight", type=_positive_int, default=16, metavar="N",
                   help="objects copied at once over all lines, >= 1 (default 16)")
    p.add_argument("--dryrun", action="store_true",
                   help="print what every line would do (listings only); change nothing")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no per-object lines; the summary only if a line failed")
    p.set_defaults(func=cmd_run)


def _positive_int(text: str) -> int:
    from .files import _positive_int as check

    return check(text)
