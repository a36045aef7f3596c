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
* Both take aws-cli's ``--exclude`` / ``--include`` filters (``filters=``: in the order given,
  the last that matches a key relative to the source prefix wins; :mod:`objio._glob`); a
  ``sync`` with ``delete`` never deletes a destination object the filters leave out.
* Both take the source's objects from a manifest (``manifest=``, ``--from-manifest``:
  :mod:`objio.manifest`) instead of listing it, when given.
* :func:`run_copy`: carry a plan out: between two s3:// URIs the store copies every object
  itself (CopyObject, or a multipart UploadPartCopy above ``copy_threshold``: no byte through
  the client), ``max_in_flight`` at a time; otherwise objects up to :data:`STREAM_THRESHOLD`
  bytes are copied ``max_in_flight`` at a time in memory, and larger ones stream through
  :func:`objio.open` (bounded memory, multipart uploads).
* :func:`copy_from_file` / :func:`copy_to_file`: stream between an object and a binary file
  such as standard input or output (``objio cp - s3://b/k``), multipart for large input.
"""

from __future__ import annotations

import errno
import os
import posixpath
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from ._glob import Filters, check_filters, included, one_level
from .backend import ObjectInfo
from .config import MiB
from .io import open as obj_open
from .uri import (
    ObjectURI,
    canonical,
    has_glob,
    parse_uri,
    prefix_overlap,
    same_object,
    split_glob,
)

__all__ = [
    "STREAM_THRESHOLD", "CopyItem", "CopyPlan", "SyncPlan", "plan_copy", "plan_sync", "run_copy",
    "run_copy_each",
    "copy_from_file", "copy_to_file", "write_all", "SAME_OBJECT",
]

STREAM_THRESHOLD = 64 * MiB
"""Objects larger than this (bytes) are streamed instead of copied whole in memory."""

_CHUNK = 8 * MiB


@dataclass(frozen=True)
class CopyItem:
    """One object to copy: ``src`` and ``dst`` URIs, ``size`` in bytes, the source's
    last-modified time (epoch seconds) and ETag (as listed; "" when unknown)."""

    src: str
    dst: str
    size: int
    last_modified: float = 0.0
    etag: str = ""


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
    if obj.key.endswith(("/", os.sep)) or (not obj.is_local and obj.key == ""):
        return True
    return obj.scheme == "file" and os.path.isdir(obj.key)


def _target(dst: ObjectURI, rel: str) -> ObjectURI | str:
    """``rel`` (a ``/``-separated relative key) under ``dst``, or the reason it cannot go
    there."""
    if not rel or rel.endswith("/"):
        return "a directory marker (key ending with /), not a file"
    if not dst.is_local:
        return dst.joinpath(rel)
    root = os.path.normpath(dst.key)
    path = os.path.normpath(os.path.join(root, rel.replace("/", os.sep)))
    if os.path.isabs(rel) or os.path.commonpath([root, path]) != root:
        return f"its key leads outside the destination directory {root}"
    return dst.with_key(path)


def _source_base(src: ObjectURI) -> str:
    """The prefix the relative paths of a recursive or glob source start after (no
    request)."""
    if has_glob(src.key):
        return split_glob(src)[0]
    prefix = src.key
    if prefix and not prefix.endswith(("/", os.sep)):
        prefix += os.sep if src.is_local else "/"
    return prefix


def _source_listing(client: Any, src: ObjectURI, recursive: bool,
                    manifest: Any = None) -> tuple[str, list[ObjectInfo]]:
    """(the prefix relative paths start after, the objects) of a recursive or glob source:
    listed, or read from ``manifest`` (a :class:`objio.manifest.Manifest`; no request)."""
    base = _source_base(src)
    what = src if has_glob(src.key) else src.with_key(base)
    if manifest is not None:
        return base, [o for page in manifest.pages(what) for o in page.objects]
    if has_glob(src.key):
        return base, client.list_objects(str(src))
    # FastList (objio.fastlist): concurrent listing for large prefixes, one request for small
    return base, client.list_objects(str(what), fast=True)


def _open_manifest(path: Any) -> Any:
    if path is None:
        return None
    from .manifest import read_manifest

    return read_manifest(path)


_VERBS = {"cp": "copy", "mv": "move"}


def _check_prefixes(op: str, src: str, dst: str, s: ObjectURI, d: ObjectURI,
                    glob: bool = False) -> None:
    """Refuse (before any request) a recursive ``op`` whose destination prefix is the source
    prefix, lies under it, or holds it: it would write over its own sources or copy its own
    output. A glob within one segment (``glob``) lists one level only, so only its own
    directory is refused; a ``**`` or multi-segment pattern is checked as a recursive copy.

    Raises: ValueError naming both URIs."""
    rel = prefix_overlap(s.with_key(_source_base(s)), d)
    if rel is None or (glob and rel != "same"):
        return
    if rel == "same":
        raise ValueError(f"Cannot {op} a prefix onto itself: {src} and {dst} are the same "
                         "prefix")
    if rel == "inside":
        why = (f"the destination is inside the source ({op} would "
               f"{'move' if op == 'mv' else 'copy'} its own output)")
    else:
        why = f"the source is inside the destination ({op} would write over its own sources)"
    raise ValueError(f"Cannot {op} {src} to {dst}: {why}; choose a destination outside the "
                     "source")


def onto_itself(op: str, src: str, dst: str, target: str | None = None) -> ValueError:
    """The error for a copy or move of one object onto itself (as aws-cli: "Cannot mv a file
    onto itself"); ``target``: what ``dst`` (a directory or prefix) resolved to."""
    where = f" ({target})" if target is not None and target != dst else ""
    return ValueError(f"Cannot {op} an object onto itself: {src} and {dst}{where} name the "
                      "same object")


def _rel(src: ObjectURI, base: str, key: str) -> str:
    rel = key[len(base):]
    return rel.replace(os.sep, "/") if src.scheme == "file" else rel


SAME_OBJECT = "it is the destination itself (the same object): nothing to copy"
"""The reason :func:`plan_copy` gives in ``skipped`` for a copy of an object onto itself."""


def plan_copy(client: Any, src: str, dst: str, recursive: bool = False, *,
              move: bool = False, manifest: Any = None, filters: Filters = ()) -> CopyPlan:
    """Plan a copy, or with ``move`` a move (see the module docstring).

    Nothing is ever copied onto itself, however the two URIs are written (a trailing slash,
    ``file://`` or a plain path, ``./``, ``..``, symbolic links: :func:`objio.uri.same_object`):
    a move onto itself raises before any request (as aws-cli: "Cannot mv a file onto
    itself"); a copy of one object onto itself is a no-op, reported in ``skipped`` with the
    reason :data:`SAME_OBJECT` (the file is left as it is). A recursive copy or move whose
    destination prefix is its source prefix, lies under it or holds it is refused before any
    request (it would write over its sources or copy its own output); so is a glob copied into
    its own directory.

    ``manifest`` (a manifest file: ``objio ls --manifest``, :mod:`objio.manifest`): the
    objects under ``src`` (a prefix within it, or its glob) are taken from it instead of
    listing ``src``, with their sizes and times (implies ``recursive``).

    ``filters``: aws-cli's ``--exclude`` / ``--include``, ``[("exclude" | "include",
    pattern), ...]`` in the order given, matched against each key relative to the source
    prefix (a single object: its name) with :func:`objio._glob.filter_match` (``*`` matches
    ``/`` too); the last filter that matches decides. Objects left out are not in the plan.

    Raises:
        FileNotFoundError: the source object does not exist, or a recursive / glob copy
            matches nothing; no such manifest file.
        ValueError: a bad URI; a move onto itself; overlapping source and destination
            prefixes; a manifest that is not whole or does not hold ``src`` (another bucket
            or prefix); a malformed filter.
    """
    filters = check_filters(filters)
    s, d = parse_uri(src), parse_uri(dst)
    op = "mv" if move else "cp"
    plan = CopyPlan()
    m = _open_manifest(manifest)
    if m is not None:
        recursive = True
        m.covers(s if has_glob(s.key) else s.with_key(_source_base(s)))
    if not recursive and not has_glob(s.key):
        name = posixpath.basename(s.key.replace(os.sep, "/").rstrip("/"))
        if filters and not included(filters, name):
            return plan  # left out by the filters, as aws-cli does
        target = _target(d, name) if _is_dir_like(d) else d
        if isinstance(target, str):
            raise ValueError(f"{op}: cannot {_VERBS[op]} {src} to {dst}: {target}")
        if same_object(s, target):
            if move:
                raise onto_itself(op, src, dst, str(target))
            client.stat(src)  # a missing source is still FileNotFoundError
            plan.skipped.append((str(s), SAME_OBJECT))
            return plan
        info = client.stat(src)
        plan.items.append(CopyItem(str(s), str(target), info.size, info.last_modified,
                                   info.etag))
        return plan
    pattern = split_glob(s)[1]
    _check_prefixes(op, src, dst, s, d, glob=pattern is not None and one_level(pattern))
    base, infos = _source_listing(client, s, recursive, m)
    for info in infos:
        uri = str(s.with_key(info.key))
        rel = _rel(s, base, info.key)
        if filters and not included(filters, rel):
            continue
        target = _target(d, rel)
        if isinstance(target, str):
            plan.skipped.append((uri, target))
        else:
            plan.items.append(CopyItem(uri, str(target), info.size, info.last_modified,
                                       info.etag))
    _drop_onto_sources(plan, op, move)
    if not infos:
        raise FileNotFoundError(f"{op}: nothing matches {src}")
    return plan


def _drop_onto_sources(plan: CopyPlan, op: str, move: bool) -> None:
    """What the prefix check cannot see: a local destination item that is one of the source
    files (a symbolic link to a directory of the source, inside the destination directory).
    A move refuses them all; a copy skips them (onto itself: a no-op). Directories are
    resolved once each (os.path.realpath); a file that is itself a symbolic link is taken as
    it is (writing over the link replaces the link, not its target)."""
    if not plan.items or not parse_uri(plan.items[0].src).is_local \
            or not parse_uri(plan.items[0].dst).is_local:
        return  # s3:// keys have one spelling: the prefix check saw every overlap
    real: dict[str, str] = {}

    def key(uri: str) -> str:
        d, name = os.path.split(parse_uri(uri).key)
        r = real.get(d)
        if r is None:
            r = real[d] = canonical(d)
        return r + os.sep + name

    sources = {key(i.src) for i in plan.items}
    keep: list[CopyItem] = []
    for item in plan.items:
        if key(item.dst) not in sources:
            keep.append(item)
        elif move:
            raise onto_itself(op, item.src, item.dst)
        else:
            plan.skipped.append((item.src, SAME_OBJECT if same_object(item.src, item.dst)
                                 else "its destination is another of the sources"))
    plan.items = keep


def plan_sync(client: Any, src: str, dst: str, *, delete: bool = False,
              manifest: Any = None, filters: Filters = ()) -> SyncPlan:
    """Plan ``sync src dst``: every object under the source prefix whose relative path is
    missing at the destination, has another size there, or is newer at the source than at the
    destination (``aws s3 sync``'s rules); with ``delete``, the destination objects that have no
    source any more.

    Source and destination prefixes that are the same, or one inside the other, are refused
    before any request: the copies would land on sources and ``delete`` would remove them.

    ``manifest``: the source objects are taken from that manifest file instead of listing
    ``src`` (see :func:`plan_copy`); the destination is listed as always.

    ``filters`` (see :func:`plan_copy`) apply to both sides, as aws-cli's: a source object
    left out is not copied, and a destination object left out is never deleted.

    Raises: FileNotFoundError (no such bucket or manifest file), ValueError (bad URI,
    overlapping prefixes, a manifest that is not whole or does not hold ``src``)."""
    filters = check_filters(filters)
    s, d = parse_uri(src), parse_uri(dst)
    if not _is_dir_like(d):
        d = d.with_key(d.key + (os.sep if d.is_local else "/"))
    _check_prefixes("sync", src, dst, s, d)
    m = _open_manifest(manifest)
    if m is not None:
        m.covers(s.with_key(_source_base(s)))
    base, infos = _source_listing(client, s, True, m)
    plan = SyncPlan()
    dst_infos: list[ObjectInfo] = []
    dbase = d.key
    if not d.is_local or os.path.isdir(d.key):
        dbase, dst_infos = _source_listing(client, d, recursive=True)
    existing = {_rel(d, dbase, i.key): i for i in dst_infos}
    wanted: set[str] = set()
    for info in infos:
        rel = _rel(s, base, info.key)
        if filters and not included(filters, rel):
            continue
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
        plan.items.append(CopyItem(uri, str(target), info.size, info.last_modified,
                                   info.etag))
    if delete:
        plan.delete = [str(d.with_key(i.key)) for rel, i in sorted(existing.items())
                       if rel not in wanted and included(filters, rel)]
    return plan


def run_copy(client: Any, items: Iterable[CopyItem], *, max_in_flight: int = 16,
             advance: Callable[[int], None] | None = None,
             keep_mtime: bool = False,
             on_done: Callable[[CopyItem], None] | None = None) -> tuple[int, int]:
    """Copy every item; returns ``(objects, bytes)``. Items between two s3:// URIs are copied
    by the store (server-side, :meth:`objio.Client.copy_many`), others through the client.
    ``advance(nbytes)`` is called as bytes arrive (for a server-side copy: its size, once it
    is done); ``on_done(item)`` once each object is completely written at its destination (in
    completion order; for objects copied through memory, from the engine's thread);
    ``keep_mtime`` gives local files written the source's last-modified time (so a later sync
    sees them up to date). ``max_in_flight`` is the number of objects copied at once (>= 1).

    Raises: ValueError (``max_in_flight < 1``, before any request); the first error of a copy
    (the object being written is never left half-written; the items ``on_done`` was not
    called for were not copied)."""
    from .engine import RequestRecord

    if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int) \
            or max_in_flight < 1:
        raise ValueError(f"max_in_flight must be an integer >= 1, got {max_in_flight!r}")
    items = list(items)
    # Between two s3:// URIs the store copies, whatever the size (copy_many: server-side).
    small = [i for i in items if i.size <= STREAM_THRESHOLD or _server_side(i)]
    large = [i for i in items if i.size > STREAM_THRESHOLD and not _server_side(i)]
    done = [0, 0]
    tick = advance or (lambda n: None)
    by_dst: dict[str, list[CopyItem]] = {}
    for i in small:
        by_dst.setdefault(str(parse_uri(i.dst)), []).append(i)

    def finished(item: CopyItem) -> None:
        if keep_mtime and item.last_modified:
            d = parse_uri(item.dst)
            if d.scheme == "file":
                os.utime(d.key, (item.last_modified, item.last_modified))
        if on_done is not None:
            on_done(item)

    def on_object(r: RequestRecord) -> None:
        done[0] += 1
        done[1] += r.nbytes
        tick(r.nbytes)
        waiting = by_dst.get(r.uri)
        if waiting:
            finished(waiting.pop())

    if small:
        # What the plan's listing said of each source (size, ETag) spares the HEAD of a
        # server-side copy.
        sources = [ObjectInfo(parse_uri(i.src).key, i.size, i.last_modified, i.etag)
                   if i.etag else None for i in small]
        client.copy_many([(i.src, i.dst) for i in small], max_in_flight=max_in_flight,
                         observer=on_object, sources=sources)
    buf = memoryview(bytearray(_CHUNK)) if large else None
    for i in large:
        assert buf is not None
        with obj_open(i.src, "rb", client=client) as r, obj_open(i.dst, "wb", client=client) as w:
            while n := r.readinto(buf):
                w.write(buf[:n])
                tick(n)
        done[0] += 1
        done[1] += i.size
        finished(i)
    return done[0], done[1]


def run_copy_each(client: Any, items: Iterable[CopyItem], *, max_in_flight: int = 16,
                  advance: Callable[[int], None] | None = None,
                  keep_mtime: Collection[CopyItem] = (),
                  on_done: Callable[[CopyItem], None] | None = None
                  ) -> list[BaseException | None]:
    """Copy every item as :func:`run_copy` does, but an item that fails does not stop the
    others: returns, in the order of ``items``, None for each item copied and the exception
    of each that was not (``objio run``: many commands under one ``max_in_flight``).

    Items copied through memory (up to :data:`STREAM_THRESHOLD` bytes, or between two s3://
    URIs: by the store) run ``max_in_flight`` at a time (:func:`objio.engine.bounded_map`);
    larger ones are streamed one after the other. ``keep_mtime``: the items whose local
    destination gets the source's last-modified time (sync). ``advance`` / ``on_done``: as
    :func:`run_copy` (``on_done`` from the engine's thread for the items copied in memory).

    Raises: ValueError (``max_in_flight < 1``, before any request); KeyboardInterrupt."""
    from . import engine

    if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int) \
            or max_in_flight < 1:
        raise ValueError(f"max_in_flight must be an integer >= 1, got {max_in_flight!r}")
    items = list(items)
    keep = set(keep_mtime)
    results: list[BaseException | None] = [None] * len(items)
    tick = advance or (lambda n: None)

    def finished(item: CopyItem) -> None:
        if item in keep and item.last_modified:
            d = parse_uri(item.dst)
            if d.scheme == "file":
                os.utime(d.key, (item.last_modified, item.last_modified))
        if on_done is not None:
            on_done(item)

    async def one(pair: tuple[int, CopyItem]) -> None:
        i, item = pair
        info = (ObjectInfo(parse_uri(item.src).key, item.size, item.last_modified, item.etag)
                if item.etag else None)
        try:
            await client.copy_many_async([(item.src, item.dst)], 1, sources=[info])
            tick(item.size)
            finished(item)
        except Exception as e:  # noqa: BLE001 - this item's failure, kept for its command
            results[i] = e

    small = [(i, it) for i, it in enumerate(items)
             if it.size <= STREAM_THRESHOLD or _server_side(it)]
    large = [(i, it) for i, it in enumerate(items)
             if it.size > STREAM_THRESHOLD and not _server_side(it)]
    if small:
        engine.run(engine.bounded_map(one, small, max_in_flight, keep_results=False))
    for i, item in large:
        try:
            run_copy(client, [item], advance=advance, keep_mtime=item in keep,
                     on_done=on_done)
        except Exception as e:  # noqa: BLE001 - as above
            results[i] = e
    return results


def _server_side(item: CopyItem) -> bool:
    """Whether the store copies ``item`` itself (both ends s3://, both gs://, or both az://
    of one account: see :meth:`objio.Client.copy_many`)."""
    if item.src.startswith("s3://") and item.dst.startswith("s3://"):
        return True
    a, b = parse_uri(item.src), parse_uri(item.dst)
    if a.scheme == b.scheme == "gs":
        return True
    return a.scheme == b.scheme == "az" and a.account == b.account


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
    """Stream the object ``src`` into a binary file (standard output); returns the bytes.

    Every byte is written or an error raised: a raw (unbuffered) file may take fewer bytes
    than offered (a pipe whose reader left), so the rest is offered again, and the next write
    raises (BrokenPipeError for a pipe). Raises: OSError (BrokenPipeError) from ``f``, the
    read's errors (FileNotFoundError, ...)."""
    total = 0
    buf = memoryview(bytearray(_CHUNK))
    with obj_open(src, "rb", client=client) as r:
        while n := r.readinto(buf):
            write_all(f, buf[:n])
            total += n
            if advance is not None:
                advance(n)
    f.flush()
    return total


def write_all(f: BinaryIO, data: Any) -> None:
    """Write every byte of ``data`` to the binary file ``f``, whose ``write`` may take fewer
    (a raw file: ``python -u``'s standard output, ``open(..., buffering=0)``).

    Raises: OSError from ``f`` (BrokenPipeError when the reader of a pipe left; BlockingIOError
    for a non-blocking file that is full); OSError (EIO) if ``f`` takes no byte at all."""
    view = memoryview(data).cast("B")
    while len(view):
        n = f.write(view)
        if n is None:
            raise BlockingIOError(errno.EAGAIN, "the output is non-blocking and full")
        if n <= 0:
            raise OSError(errno.EIO, f"short write: {len(view)} bytes were not written")
        view = view[n:]
