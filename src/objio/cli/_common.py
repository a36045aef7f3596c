"""What every command shares: the connection flags (aws-cli names), the client they build, JSON
output and the one-line error report."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_global_flags(p: argparse.ArgumentParser) -> None:
    """The connection flags every command takes (aws-cli names)."""
    g = p.add_argument_group("connection (aws-cli names)")
    g.add_argument("--endpoint-url", default=None,
                   help="S3 endpoint, e.g. http://127.0.0.1:9000 (env AWS_ENDPOINT_URL)")
    g.add_argument("--region", default=None, help="region (env AWS_REGION; default us-east-1)")
    g.add_argument("--profile", default=None, help="profile of ~/.aws/config (env AWS_PROFILE)")
    g.add_argument("--no-sign-request", action="store_true", default=False,
                   help="anonymous requests (no credentials)")


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
    """An exception as one line: its message with whitespace folded, or its type's name."""
    return " ".join(str(e).split()) or type(e).__name__
