"""Looking at objects without copying them: ``du`` (sizes and counts per prefix or wildcard),
``head`` / ``tail`` (the first / last bytes of an object, by ranged GETs).

Each parses its arguments, calls :class:`objio.Client`, and prints.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..config import format_size, parse_size
from ..transfer import write_all
from ..uri import has_glob, object_uri, parse_uri
from ._common import add_global_flags, client_from_args

DEFAULT_BYTES = 1024
"""Bytes ``head`` / ``tail`` print without ``-c`` (1 KiB)."""


# ------------------------------------------------------------------------------------ du
def _du_target(uri: str) -> str:
    """What ``du`` lists for ``uri``: a wildcard as it is; a prefix as everything under it
    (``s3://b/data`` -> ``s3://b/data/``; ``s3://b`` -> the whole bucket)."""
    obj = parse_uri(uri)
    if has_glob(obj.key) or obj.key == "" or obj.key.endswith(("/", os.sep)):
        return str(obj)
    return str(obj.with_key(obj.key + ("/" if obj.scheme == "s3" else os.sep)))


def cmd_du(args: argparse.Namespace) -> int:
    client = client_from_args(args)
    rows: list[dict[str, Any]] = []
    for uri in args.uri:
        target = _du_target(uri)
        count = total = 0
        pages = client.list_pages(target, recursive=True, fast=not has_glob(target))
        try:
            for page in pages:
                count += len(page)
                total += sum(page.sizes)
        finally:
            pages.close()
        if count == 0 and has_glob(parse_uri(uri).key):
            raise FileNotFoundError(f"du: nothing matches {uri}")
        rows.append({"uri": uri, "objects": count, "bytes": total})
    objects = sum(r["objects"] for r in rows)
    nbytes = sum(r["bytes"] for r in rows)
    if args.json:
        print(json.dumps({"prefixes": rows, "total": {"objects": objects, "bytes": nbytes}}))
        return 0

    def size(n: int) -> str:
        return format_size(n) if args.human_readable else str(n)

    shown = [{"uri": "total", "objects": objects, "bytes": nbytes}] if args.summarize else rows
    if not args.summarize and len(rows) > 1:
        shown = rows + [{"uri": "total", "objects": objects, "bytes": nbytes}]
    width = max(len(size(r["bytes"])) for r in shown)
    cwidth = max(len(str(r["objects"])) for r in shown)
    for r in shown:
        print(f"{size(r['bytes']):>{width}}  {r['objects']:>{cwidth}} object(s)  {r['uri']}")
    return 0


# ------------------------------------------------------------------------------------ head / tail
def _byte_count(text: str) -> int:
    try:
        return parse_size(text, "-c/--bytes")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def cmd_head(args: argparse.Namespace) -> int:
    object_uri(args.uri, "head")
    data = client_from_args(args).get_range(args.uri, 0, args.bytes)  # one ranged GET
    write_all(sys.stdout.buffer, data)
    sys.stdout.buffer.flush()
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    object_uri(args.uri, "tail")
    client = client_from_args(args)
    size = client.stat(args.uri).size  # HEAD, then one ranged GET of the end
    n = min(args.bytes, size)
    data = client.get_range(args.uri, size - n, n) if n else b""
    write_all(sys.stdout.buffer, data)
    sys.stdout.buffer.flush()
    return 0


# ------------------------------------------------------------------------------------ parser
def register(sub: Any) -> None:
    """Add ``du``, ``head`` and ``tail`` to the ``objio`` sub-command parser."""
    p = sub.add_parser("du", help="total size and object count under prefixes or wildcards",
                       description="Total size (bytes) and number of objects under each "
                                   "prefix (everything below it; s3://b/data means "
                                   "s3://b/data/) or matching each wildcard (s5cmd's: * "
                                   "within a segment, ** across /, ?, [...]). Several URIs: "
                                   "one line each and a total. A wildcard that matches "
                                   "nothing is an error (exit 1); an empty prefix is 0.")
    add_global_flags(p)
    p.add_argument("uri", nargs="+", help="s3://bucket/prefix, s3://bucket/dir/**.npz, or a "
                                          "local directory")
    p.add_argument("--human-readable", "-H", action="store_true",
                   help="sizes in binary units: KiB, MiB, GiB (powers of 1024)")
    p.add_argument("--summarize", "-s", action="store_true",
                   help="one line: the total over every URI")
    p.add_argument("--json", action="store_true",
                   help='one JSON object: {"prefixes": [{uri, objects, bytes}], "total": ...}')
    p.set_defaults(func=cmd_du)

    for name, func, what in (("head", cmd_head, "first"), ("tail", cmd_tail, "last")):
        how = ("one ranged GET" if name == "head"
               else "a HEAD for the size, then one ranged GET; an object shorter than N is "
                    "printed whole")
        p = sub.add_parser(name, help=f"write the {what} bytes of an object to standard output",
                           description=f"Write the {what} N bytes of one object to standard "
                                       f"output, as coreutils' {name} -c N, reading only those "
                                       f"bytes ({how}). N defaults to {DEFAULT_BYTES} (1 KiB) "
                                       "and takes units: 4KiB, 1MiB.")
        add_global_flags(p)
        p.add_argument("uri", help="s3://bucket/key or a local file")
        p.add_argument("-c", "--bytes", type=_byte_count, default=DEFAULT_BYTES, metavar="N",
                       help=f"bytes to print (default {DEFAULT_BYTES}; units: 4KiB, 1MiB)")
        p.set_defaults(func=func)
