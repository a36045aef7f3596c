"""Copying many objects between s3:// and local paths: what ``objio cp``, ``mv`` and ``sync``
do, as library functions.

* :func:`plan_copy`: the (source, destination, size) of every object a copy moves: one
  object, every object under a prefix (``recursive``), or the objects a ``*``/``?`` glob in
  the source's last segment matches (as s5cmd). A destination that is a directory or a prefix
  (ends with ``/``, or an existing local directory) receives each object under its path
  relative to the source prefix. Local destinations never leave their directory: a key with
  ``..`` segments or a leading ``/`` (S3 allows both) is skipped and reported, as aws-cli does;
  so are directory markers (keys ending with ``/``).
* :func:`plan_sync`: what ``sync`` copies (missing at the destination, another size, or newer
  at the source, as ``aws s3 sync`` compares) and, with ``delete``, what it removes.
* :func:`run_copy`: carry a plan out: objects up to :data:`STREAM_THRESHOLD` bytes are copied
  ``max_in_flight`` at a time in memory; larger ones stream through :func:`objio.open` (bounded
  memory, multipart uploads).
* :func:`copy_from_file` / :func:`copy_to_file`: stream between an object and a binary file
  such as standard input or output (``objio cp - s3://b/k``), multipart for large input.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from .backend import ObjectInfo
from .config import MiB
from .io import open as obj_open
from .uri import ObjectURI, has_glob, parse_uri, split_glob

__all__ = [
    "STREAM_THRESHOLD", "CopyItem", "CopyPlan", "SyncPlan", "plan_copy", "plan_sync", "run_copy",
    "copy_from_file", "copy_to_file",
]

STREAM_THRESHOLD = 64 * MiB
"""Objects larger than this (bytes) are streamed instead of copied whole in memory."""

_CHUNK = 8 * MiB


@dataclass(frozen=True)
class CopyItem:
    """One object to copy: ``src`` and ``dst`` URIs, ``size`` in bytes, and the source's
    last-modified time (epoch seconds)."""

    src: str
    dst: str
    size: int
    last_modified: float = 0.0


@dataclass
class CopyPlan:
    """What a copy moves (``items``) and the keys it leaves out with the reason
    (``skipped``: ``[(source URI, reason), ...]``)."""

    items: list[CopyItem] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(i.size for i in self.items)


@dataclass
class SyncPlan(CopyPlan):
    """A copy plan plus the destination objects ``sync --delete`` removes (URIs), and how many
    objects were already up to date."""

    delete: list[str] = field(default_factory=list)
    up_to_date: int = 0


def _is_dir_like(obj: ObjectURI) -> bool:
    if obj.key.endswith(("/", os.sep)) or (obj.scheme == "s3" and obj.key == ""):
        return True
    return obj.scheme == "file" and os.path.isdir(obj.key)


def _target(dst: ObjectURI, rel: str) -> ObjectURI | str:
    """``rel`` (a ``/``-separated relative key) under ``dst``, or the reason it cannot go
    there."""
    if not rel or rel.endswith("/"):
        return "a directory marker (key ending with /), not a file"
    if dst.scheme == "s3":
        return dst.joinpath(rel)
    root = os.path.normpath(dst.key)
    path = os.path.normpath(os.path.join(root, rel.replace("/", os.sep)))
    if os.path.isabs(rel) or os.path.commonpath([root, path]) != root:
        return f"its key leads outside the destination directory {root}"
    return dst.with_key(path)


def _source_listing(client: Any, src: ObjectURI, recursive: bool) -> tuple[str, list[ObjectInfo]]:
    """(the prefix relative paths start after, the objects) of a recursive or glob source."""
    if has_glob(src.key):
        base, _ = split_glob(src)
        return base, client.list_objects(str(src))
    prefix = src.key
    if prefix and not prefix.endswith(("/", os.sep)):
        prefix += "/" if src.scheme == "s3" else os.sep
    # FastList (objio.fastlist): concurrent listing for large prefixes, one request for small
    return prefix, client.list_objects(str(src.with_key(prefix)), fast=True)


def _rel(src: ObjectURI, base: str, key: str) -> str:
    rel = key[len(base):]
    return rel.replace(os.sep, "/") if src.scheme == "file" else rel


def plan_copy(client: Any, src: str, dst: str, recursive: bool = False) -> CopyPlan:
    """Plan a copy (see the module docstring).

    Raises:
        FileNotFoundError: the source object does not exist, or a recursive / glob copy
            matches nothing.
        ValueError: a bad URI.
    """
    s, d = parse_uri(src), parse_uri(dst)
    plan = CopyPlan()
    if not recursive and not has_glob(s.key):
        info = client.stat(src)
        name = posixpath.basename(s.key.replace(os.sep, "/").rstrip("/"))
        target = _target(d, name) if _is_dir_like(d) else d
        if isinstance(target, str):
            raise ValueError(f"cp: cannot copy {src} to {dst}: {target}")
        plan.items.append(CopyItem(str(s), str(target), info.size, info.last_modified))
        return plan
    base, infos = _source_listing(client, s, recursive)
    for info in infos:
        uri = str(s.with_key(info.key))
        target = _target(d, _rel(s, base, info.key))
        if isinstance(target, str):
            plan.skipped.append((uri, target))
        else:
            plan.items.append(CopyItem(uri, str(target), info.size, info.last_modified))
    if not plan.items and not plan.skipped:
        raise FileNotFoundError(f"cp: nothing matches {src}")
    return plan


def plan_sync(client: Any, src: str, dst: str, *, delete: bool = False) -> SyncPlan:
    """Plan ``sync src dst``: every object under the source prefix whose relative path is
    missing at the destination, has another size there, or is newer at the source than at the
    destination (``aws s3 sync``'s rules); with ``delete``, the destination objects that have no
    source any more.

    Raises: FileNotFoundError (no such bucket), ValueError (bad URI)."""
    s, d = parse_uri(src), parse_uri(dst)
    if not _is_dir_like(d):
        d = d.with_key(d.key + ("/" if d.scheme == "s3" else os.sep))
    base, infos = _source_listing(client, s, recursive=True)
    plan = SyncPlan()
    dst_infos: list[ObjectInfo] = []
    dbase = d.key
    if d.scheme == "s3" or os.path.isdir(d.key):
        dbase, dst_infos = _source_listing(client, d, recursive=True)
    existing = {_rel(d, dbase, i.key): i for i in dst_infos}
    wanted: set[str] = set()
    for info in infos:
        rel = _rel(s, base, info.key)
        uri = str(s.with_key(info.key))
        target = _target(d, rel)
        if isinstance(target, str):
            plan.skipped.append((uri, target))
            continue
        wanted.add(rel)
        have = existing.get(rel)
        # Whole seconds: S3's Last-Modified has no fraction, local files do.
        if have is not None and have.size == info.size and \
                int(have.last_modified) >= int(info.last_modified):
            plan.up_to_date += 1
            continue
        plan.items.append(CopyItem(uri, str(target), info.size, info.last_modified))
    if delete:
        plan.delete = [str(d.with_key(i.key)) for rel, i in sorted(existing.items())
                       if rel not in wanted]
    return plan


def run_copy(client: Any, items: Iterable[CopyItem], *, max_in_flight: int = 16,
             advance: Callable[[int], None] | None = None,
             keep_mtime: bool = False) -> tuple[int, int]:
    """Copy every item; returns ``(objects, bytes)``. ``advance(nbytes)`` is called as bytes
    arrive; ``keep_mtime`` gives local files written the source's last-modified time (so a
    later sync sees them up to date).

    Raises: the first error (the object being written is never left half-written)."""
    from .engine import RequestRecord

    items = list(items)
    small = [i for i in items if i.size <= STREAM_THRESHOLD]
    large = [i for i in items if i.size > STREAM_THRESHOLD]
    done = [0, 0]
    tick = advance or (lambda n: None)

    def on_object(r: RequestRecord) -> None:
        done[0] += 1
        done[1] += r.nbytes
        tick(r.nbytes)

    if small:
        client.copy_many([(i.src, i.dst) for i in small], max_in_flight=max_in_flight,
                         observer=on_object)
    buf = memoryview(bytearray(_CHUNK)) if large else None
    for i in large:
        assert buf is not None
        with obj_open(i.src, "rb", client=client) as r, obj_open(i.dst, "wb", client=client) as w:
            while n := r.readinto(buf):
                w.write(buf[:n])
                tick(n)
        done[0] += 1
        done[1] += i.size
    if keep_mtime:
        for i in items:
            d = parse_uri(i.dst)
            if d.scheme == "file" and i.last_modified:
                os.utime(d.key, (i.last_modified, i.last_modified))
    return done[0], done[1]


def copy_from_file(client: Any, f: BinaryIO, dst: str,
                   advance: Callable[[int], None] | None = None) -> int:
    """Stream a binary file (standard input) into the object ``dst``: one PutObject for small
    input, a multipart upload beyond the part size; returns the bytes written. An error (or
    Ctrl-C) aborts the upload: ``dst`` never holds part of the input."""
    total = 0
    buf = bytearray(_CHUNK)
    with obj_open(dst, "wb", client=client) as w:
        while True:
            n = f.readinto(buf)  # type: ignore[attr-defined]
            if not n:
                break
            w.write(memoryview(buf)[:n])
            total += n
            if advance is not None:
                advance(n)
    return total


def copy_to_file(client: Any, src: str, f: BinaryIO,
                 advance: Callable[[int], None] | None = None) -> int:
    """Stream the object ``src`` into a binary file (standard output); returns the bytes."""
    total = 0
    buf = memoryview(bytearray(_CHUNK))
    with obj_open(src, "rb", client=client) as r:
        while n := r.readinto(buf):
            f.write(buf[:n])
            total += n
            if advance is not None:
                advance(n)
    f.flush()
    return total
