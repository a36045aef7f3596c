"""What the command line says while a command runs and when it fails: the retry lines on
standard error, and error messages in the user's own words (their paths as typed, what to do
next)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator

from ..uri import object_uri, parse_uri

_RETRY_LOGGER = "objio.retry"  # objio.engine.retry_log


class _RetryLines(logging.Handler):
    """Prints the engine's retry records (``objio.retry``) on standard error: every one
    (``-v``), or the first one only (a terminal without ``-v``)."""

    def __init__(self, every: bool) -> None:
        super().__init__(logging.INFO)
        self.every = every
        self.shown = 0

    def emit(self, record: logging.LogRecord) -> None:
        if not self.every and self.shown:
            return
        self.shown += 1
        try:
            line = f"objio: {record.getMessage()}"
            if not self.every:
                line += " (-v shows every retry)"
            print(line, file=sys.stderr, flush=True)
        except Exception:  # noqa: BLE001 - a message must never break the command
            self.handleError(record)


@contextlib.contextmanager
def retry_messages(args: argparse.Namespace) -> Iterator[None]:
    """While a command runs: with ``-v`` every retry is printed on standard error with its
    reason ("objio: retrying: connection refused by 127.0.0.1:1 (attempt 2 of 4)"); without
    it, the first retry only, and only when standard error is a terminal (a pipe or a log
    file sees nothing until the final error)."""
    verbose = bool(getattr(args, "verbose", False))
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not verbose and not tty:
        yield
        return
    logger = logging.getLogger(_RETRY_LOGGER)
    handler = _RetryLines(every=verbose)
    level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def cli_hint(e: BaseException) -> str:
    """What to do, in command-line terms, for errors whose message speaks of library settings
    ("" when there is nothing to add)."""
    from ..errors import EndpointUnreachableError

    if isinstance(e, EndpointUnreachableError) and not e.proxy:
        return " (on the command line: --endpoint-url)"
    return ""


def advice(e: BaseException, args: argparse.Namespace | None) -> str:
    """What to do next for store errors whose fix is on the command line: a bucket that does
    not exist (list or make one), access denied (the credentials, or --no-sign-request).
    "" when there is nothing to add."""
    from ..errors import AccessDeniedError, ObjectStoreError

    if not isinstance(e, ObjectStoreError) or e.operation == "ResolveCredentials":
        return ""
    if e.uri.startswith("gs://"):  # Google Cloud Storage: its own names
        if e.code == "NoSuchBucket":
            return f" (objio mb gs://{e.uri[5:].split('/', 1)[0]} makes it)"
        if isinstance(e, AccessDeniedError) and e.status in (401, 403):
            return (" (check the credentials: OBJIO_GCS_CREDENTIALS or "
                    "GOOGLE_APPLICATION_CREDENTIALS, and that they may access this bucket)")
        return ""
    if e.code == "NoSuchBucket":
        bucket = e.uri[5:].split("/", 1)[0] if e.uri.startswith("s3://") else ""
        make = f"objio mb s3://{bucket}" if bucket else "objio mb s3://BUCKET"
        return f" (objio ls lists your buckets; {make} makes it)"
    if isinstance(e, AccessDeniedError) and e.status in (401, 403):
        if getattr(args, "no_sign_request", False):
            return (" (anonymous requests are refused here: drop --no-sign-request to sign "
                    "them with your credentials)")
        return (" (check the credentials: --profile, or AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY, and that they may access this bucket)")
    return ""


def _typed_paths(args: argparse.Namespace | None) -> list[str]:
    """The local paths among the command's URI arguments, as the user typed them."""
    if args is None:
        return []
    out = []
    for name in ("uri", "src", "dst", "path"):
        v = getattr(args, name, None)
        if isinstance(v, str) and v and v != "-":
            out.append(v)
    return out


def as_typed(line: str, args: argparse.Namespace | None) -> str:
    """``line`` with the ``file://`` URIs objio made from the user's plain local paths
    written back as the user typed them (``file:///home/me/data/x`` -> ``./data/x`` for
    ``./data``); paths given as ``file://`` URIs stay as they are."""
    return typed_paths(args)(line)


def typed_paths(args: argparse.Namespace | None) -> Callable[[str], str]:
    """:func:`as_typed` for many lines of one command (the paths are resolved once)."""
    pairs: list[tuple[str, str]] = []
    for typed in _typed_paths(args):
        if typed.startswith("file://"):
            continue
        try:
            obj = parse_uri(typed)
        except (ValueError, TypeError):
            continue
        full = "file://" + obj.key.rstrip("/" + os.sep)
        if obj.scheme != "file" or full == "file://":
            continue
        pairs.append((full, typed.rstrip("/" + os.sep) or typed))
    pairs.sort(key=lambda p: -len(p[0]))  # the longest first: ./data/sub before ./data

    def show(line: str) -> str:
        for full, shown in pairs:
            if full in line:
                line = _replace_path(line, full, shown)
        return line

    return show


def _replace_path(line: str, full: str, shown: str) -> str:
    """Replace ``full`` where it is a whole path or the start of a longer one."""
    out: list[str] = []
    i = 0
    while True:
        j = line.find(full, i)
        if j < 0:
            out.append(line[i:])
            return "".join(out)
        end = j + len(full)
        nxt = line[end:end + 1]
        out.append(line[i:j])
        if nxt in ("", "/", os.sep) or not (nxt.isalnum() or nxt in "._-~"):
            out.append(shown)
        else:
            out.append(full)
        i = end


def check_source(args: argparse.Namespace, command: str) -> None:
    """Refuse, before any request, a source that is not what the command takes, naming it as
    typed and saying what to do: a local directory or a bare bucket (``s3://b``, ``s3://b/``)
    given to ``cp``/``mv`` without ``--recursive``, or to ``stat``/``cat``; a local directory
    given to ``rm`` without ``--recursive``.

    Raises:
        ValueError: "./data is a directory: use --recursive (-r) to cp every file under it",
            "s3://my-bucket names a bucket, not an object: ...".
    """
    copy = command in ("cp", "mv")
    src = getattr(args, "src", None) if copy else getattr(args, "uri", None)
    if not isinstance(src, str) or src == "-" or getattr(args, "recursive", False) \
            or getattr(args, "from_manifest", None) \
            or getattr(args, "incomplete_uploads", False):
        return
    try:
        obj = parse_uri(src)
    except (ValueError, TypeError):
        return  # the command's own parsing says what is wrong
    if obj.scheme == "s3":
        if obj.key or command == "rm":  # (rm says it of a bucket itself)
            return
        if copy:
            raise ValueError(f"{src} names a bucket, not an object: use --recursive (-r) to "
                             f"{command} every object in it")
        object_uri(src, command)  # raises: names a bucket, not an object
    if not os.path.isdir(obj.key):
        return
    if copy or command == "rm":
        raise ValueError(f"{src} is a directory: use --recursive (-r) to {command} every "
                         "file under it")
    todo = "objio ls" if command == "stat" else "objio ls, or objio cp -r"
    raise ValueError(f"{src} is a directory, not a file: {command} takes one file "
                     f"({todo} for a directory)")
