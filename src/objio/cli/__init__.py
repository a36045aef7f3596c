"""The ``objio`` command line: the only place that parses arguments.

One module per command group, each parsing its arguments and calling library functions:
:mod:`~objio.cli.files` (``ls stat cat cp rm mb``), :mod:`~objio.cli.gen` (``gen``),
:mod:`~objio.cli.bench` (``bench``), :mod:`~objio.cli.server` (``server``); the connection
flags every command takes are in :mod:`~objio.cli._common`.

Exit codes: 0 success; 1 for an error the user can fix (missing object or bucket, bad URI,
access denied, invalid value), printed as one line without a traceback; 2 for usage errors
(argparse); 130 on Ctrl-C; 141 (silently) when the reader of the output went away
(``objio ls | head``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from . import bench, files, gen, server
from ._common import add_global_flags, broken_pipe, checked_stdout, client_from_args, error_line
from ._messages import advice, as_typed, retry_messages

__all__ = ["main", "build_parser", "add_global_flags", "client_from_args"]


def build_parser() -> argparse.ArgumentParser:
    """The ``objio`` parser with every command."""
    parser = argparse.ArgumentParser(
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
    server.register(sub)
    return parser


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
    args = None
    try:
        parser = build_parser()
        args = parser.parse_args(_normalize(sys.argv[1:] if argv is None else argv))
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
        restore()
