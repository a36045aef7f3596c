"""What every command shares: the connection flags (aws-cli names), the client they build, JSON
output and the one-line error report."""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Callable
from typing import Any


def add_global_flags(p: argparse.ArgumentParser) -> None:
    """The connection flags every command takes (aws-cli names)."""
    g = p.add_argument_group("connection (aws-cli names; explicit flags beat the environment)")
    g.add_argument("--endpoint-url", default=None, metavar="URL",
                   help="S3 endpoint, e.g. http://127.0.0.1:9000; several: comma-separated or "
                        "http://gw{1...3}:9000 (else the environment: OBJIO_ENDPOINT_URL, "
                        "S3_ENDPOINT_URIS, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL; else AWS S3)")
    g.add_argument("--region", default=None,
                   help="region (else OBJIO_REGION, AWS_REGION, AWS_DEFAULT_REGION; "
                        "default us-east-1)")
    g.add_argument("--profile", default=None,
                   help="profile of ~/.aws/config and ~/.aws/credentials (else OBJIO_PROFILE, "
                        "AWS_PROFILE); an explicit --profile wins over AWS_ACCESS_KEY_ID")
    g.add_argument("--no-sign-request", action="store_true", default=False,
                   help="anonymous requests, no credentials (public buckets)")
    g.add_argument("--op-log", default=None, metavar="PATH",
                   help="write one line per HTTP request to PATH (TSV, warp's columns first; "
                        ".zst: zstd-compressed; {pid}/{rank} replaced); else OBJIO_OP_LOG")
    g.add_argument("-v", "--verbose", action="store_true", default=False,
                   help="show every retry on standard error, with its reason (on a terminal "
                        "the first one shows anyway)")


def client_from_args(args: argparse.Namespace) -> Any:
    """An :class:`objio.Client` honouring the global flags (explicit > env > defaults)."""
    from ..api import Client

    return Client(
        endpoint_url=getattr(args, "endpoint_url", None),
        region=getattr(args, "region", None),
        profile=getattr(args, "profile", None),
        unsigned=True if getattr(args, "no_sign_request", False) else None,
    )


def write_json(path: str, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` (``-``: standard output)."""
    text = json.dumps(data, indent=2, default=str)
    if path == "-":
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    else:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")


def error_line(e: BaseException) -> str:
    """An exception as one line: its message with whitespace folded (or its type's name), plus
    the command-line hint where the message speaks of library arguments."""
    line = " ".join(str(e).split()) or type(e).__name__
    if getattr(e, "operation", "") == "ResolveCredentials":
        line += " (on the command line: --profile, or --no-sign-request for public data)"
    from ._messages import cli_hint

    return line + cli_hint(e)


def checked_stdout() -> Callable[[], None]:
    """Make every write to standard output all-or-error; returns the function that puts the
    previous ``sys.stdout`` back.

    With ``PYTHONUNBUFFERED=1`` (or ``python -u``) the binary layer under ``sys.stdout`` is the
    raw file, whose ``write`` may take fewer bytes than offered: to a pipe whose reader left
    it returns a short count, which ``print`` and ``TextIOWrapper`` ignore, so the output's
    end is lost and the command exits 0. A ``BufferedWriter`` writes everything or raises
    (BrokenPipeError: exit 141). Output stays line buffered, as it was unbuffered."""
    out = sys.stdout
    raw = getattr(out, "buffer", None)
    if not isinstance(out, io.TextIOWrapper) or not isinstance(raw, io.RawIOBase):
        return lambda: None
    try:
        fd = raw.fileno()
    except (OSError, ValueError):
        return lambda: None
    # its own FileIO on the same descriptor (never closing it): the original stays usable
    new = io.TextIOWrapper(io.BufferedWriter(io.FileIO(fd, "wb", closefd=False)),
                           encoding=out.encoding, errors=out.errors, line_buffering=True)
    sys.stdout = new

    def restore() -> None:
        try:
            new.flush()
        except (OSError, ValueError):
            pass
        if sys.stdout is new:
            sys.stdout = out

    return restore


BROKEN_PIPE_EXIT = 141
"""Exit status when the reader of our output went away (``objio ls | head``): 128 + SIGPIPE,
what ls or cat report in the same pipe; nothing is printed."""


def broken_pipe() -> int:
    """After a BrokenPipeError on stdout: silence the interpreter's exit-time flush of stdout
    (which would raise again) and return :data:`BROKEN_PIPE_EXIT`."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return BROKEN_PIPE_EXIT
