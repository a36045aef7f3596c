"""The ``objio`` command line: the only place that parses arguments.

One module per command group, each parsing its arguments and calling library functions:
:mod:`~objio.cli.files` (``ls stat cat cp mv sync rm mb rb presign``),
:mod:`~objio.cli.peek` (``du head tail``), :mod:`~objio.cli.batch` (``run``),
:mod:`~objio.cli.gen` (``gen``),
:mod:`~objio.cli.bench` (``bench``), :mod:`~objio.cli.server` (``server``); the connection
flags every command takes are in :mod:`~objio.cli._common`.

Exit codes: 0 success; 1 for an error the user can fix (missing object or bucket, bad URI,
access denied, invalid value), printed as one line without a traceback; 2 for usage errors
(argparse); 130 on Ctrl-C; 141 (silently) when the reader of the output went away
(``objio ls | head``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from .. import __version__
from . import batch, bench, files, gen, peek, report, server
from ._common import add_global_flags, broken_pipe, checked_stdout, client_from_args, error_line
from ._messages import advice, as_typed, retry_messages

__all__ = ["main", "build_parser", "add_global_flags", "client_from_args"]


def build_parser(parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser
                 ) -> argparse.ArgumentParser:
    """The ``objio`` parser with every command (``parser_class``: the class of it and of
    every command's parser; ``objio run`` parses its lines with one that raises)."""
    parser = parser_class(
        prog="objio", description="Fast object-storage I/O for AI/ML (S3 and file://).")
    parser.add_argument("--version", action="version", version=f"objio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "bench", help="benchmarks against peer libraries (embedded S3 server when no URI)",
        description=bench.DESCRIPTION)
    bench.configure_parser(p)

    p = sub.add_parser(
        "gen", help="generate a synthetic dataset in DLIO's layouts (npz, tfrecord, hdf5, ...)",
        description="Write a deterministic synthetic dataset in the layouts DLIO / MLPerf "
                    "Storage read (train/, valid/, index/, img_<i>_of_<n>.<ext>), from explicit "
                    "options or a --workload preset (unet3d, resnet50, cosmoflow).")
    add_global_flags(p)
    gen.configure_parser(p)
    p.set_defaults(func=gen.run_from_args)

    files.register(sub)
    peek.register(sub)
    batch.register(sub)
    server.register(sub)
    report.register(sub)
    _quiet_everywhere(sub)
    return parser


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The command parsers under ``parser`` (name -> parser), if it has sub-commands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _quiet_everywhere(sub: Any) -> None:
    """``-q/--quiet`` on every command (and every ``bench`` kind): commands that do not
    handle it themselves read it as ``--no-progress``; errors still go to stderr."""
    for p in dict(sub.choices).values():
        nested = _subparsers(p)
        if nested:
            for q in nested.values():
                _add_quiet(q)
        _add_quiet(p)


def _add_quiet(p: argparse.ArgumentParser) -> None:
    if "--quiet" in p._option_string_actions:
        return
    flags = ["--quiet"] + (["-q"] if "-q" not in p._option_string_actions else [])
    p.add_argument(*flags, action="store_true", dest="quiet",
                   help="no progress and no per-object lines (errors still on stderr)")


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; an unknown flag is reported by the command's own parser (its usage,
    not the top-level one)."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        p = parser
        for name in (getattr(args, "command", None), getattr(args, "bench_kind", None)):
            p = _subparsers(p).get(name or "", p)
        p.error("unrecognized arguments: " + " ".join(extra))
    if getattr(args, "quiet", False) and hasattr(args, "no_progress"):
        args.no_progress = True
    return args


def _normalize(argv: Sequence[str]) -> list[str]:
    """``objio bench ...`` without a kind means ``objio bench objects ...``."""
    args = list(argv)
    if "bench" in args:
        i = args.index("bench")
        if all(a.startswith("-") for a in args[:i]):  # "bench" is the command, not a value
            args[i + 1:] = bench.normalize_argv(args[i + 1:])
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``objio`` command; returns the exit code."""
    from ..errors import ObjectStoreError

    restore = checked_stdout()
    op_log: str | None = None
    saved = os.environ.get("OBJIO_OP_LOG")
    args = None
    try:
        parser = build_parser()
        args = _parse(parser, _normalize(sys.argv[1:] if argv is None else argv))
        op_log = getattr(args, "op_log", None)
        if op_log:  # every client of the command (and its worker processes) logs there
            os.environ["OBJIO_OP_LOG"] = op_log
        with retry_messages(args):
            code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, while we can still handle it
        return code
    except BrokenPipeError:
        return broken_pipe()
    except KeyboardInterrupt:
        print("objio: interrupted", file=sys.stderr)
        return 130
    except (ObjectStoreError, OSError, ValueError, TypeError, RuntimeError) as e:
        print(f"objio: error: {as_typed(error_line(e), args)}{advice(e, args)}",
              file=sys.stderr)
        return 1
    finally:
        if op_log:
            from .. import oplog

            oplog.close(op_log)
            if saved is None:
                os.environ.pop("OBJIO_OP_LOG", None)
            else:
                os.environ["OBJIO_OP_LOG"] = saved
        restore()
