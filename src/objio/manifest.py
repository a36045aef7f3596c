"""Manifests: a listing written once to a file, read by every job that would otherwise list.

Listing 10^7-10^8 keys takes minutes to hours; a training job that lists its dataset every
epoch, on every node, pays that every time. ``objio ls --manifest FILE URI`` (or
:func:`write_manifest`) lists once and writes each object's key, size, ETag and last-modified
time, with the URI listed and when; :meth:`objio.torch.S3MapDataset.from_manifest`,
:meth:`objio.torch.S3IterableDataset.from_manifest`, :class:`objio.model.ModelConnector`
(``manifest=``) and ``objio cp/sync --from-manifest`` read it instead of listing (no
ListObjectsV2 request at all).

Formats, chosen by the file name:

``.parquet`` (needs pyarrow: ``pip install 'objio[manifest]'``)
    Columns ``key`` (string), ``size`` (int64, bytes), ``etag`` (string),
    ``last_modified`` (timestamp, microseconds, UTC); the header below as JSON in the file's
    key-value metadata under ``objio.manifest``. ``pandas.read_parquet(FILE)`` or
    ``pyarrow.parquet.read_table(FILE)`` read it.
``.jsonl`` and ``.jsonl.zst`` (zstd needs zstandard: ``pip install 'objio[manifest]'``)
    One JSON object per line (UTF-8): the header first, then one line per object
    ``{"key": ..., "size": ..., "etag": ..., "last_modified": "2025-01-02T03:04:05Z"}``, then
    a trailer ``{"objio_manifest_end": true, "count": N, "total_bytes": B,
    "listing_seconds": S}``. With ``jq``:
    ``zstdcat FILE.jsonl.zst | jq -r 'select(.key) | .key'``.

The header: ``{"objio_manifest": 1, "uri": "s3://bucket/prefix/", "listed_at":
"2025-01-02T03:04:05.123456Z", "objio_version": ...}`` (``uri``: what was listed, a prefix or
a glob; ``listed_at``: when the listing started, UTC; the objects are the listing's, in its
order, each once). Parquet keeps ``count``, ``total_bytes`` and ``listing_seconds`` (how long
the listing took) in the same JSON; JSON lines in the trailer.

A manifest is complete or it is refused: it is written to a temporary file in the same
directory and renamed into place once whole (a reader never sees a partial file under the
name); a reader checks the header, the trailer's count and total size against the entries
(JSON lines; parquet: its footer and row count), and the zstd frame's checksum. Anything else
(not a manifest, a file cut short, a count that does not match) is a ValueError naming the
file.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any, BinaryIO

from .backend import ListPage, ObjectInfo
from .uri import ObjectURI, parse_uri, split_glob

__all__ = ["FORMATS", "Manifest", "read_manifest", "write_manifest", "manifest_format"]

FORMATS = ("parquet", "jsonl", "jsonl.zst")
"""The manifest formats, by file name ending (``.parquet``, ``.jsonl``, ``.jsonl.zst``)."""

VERSION = 1
_HEADER_KEY = "objio_manifest"
_END_KEY = "objio_manifest_end"
_PARQUET_META = b"objio.manifest"
_ROWS_PER_GROUP = 65536  # parquet row group (and JSON write batch) size
_EXTRA_HINT = "pip install 'objio[manifest]'"


def manifest_format(path: str | os.PathLike[str]) -> str:
    """The format of a manifest file name: ``"parquet"``, ``"jsonl"`` or ``"jsonl.zst"``.
    Raises: ValueError for another ending, naming the allowed ones."""
    name = os.fspath(path)
    for fmt in sorted(FORMATS, key=len, reverse=True):
        if name.endswith("." + fmt):
            return fmt
    raise ValueError(f"manifest file {name!r}: the name must end with one of "
                     f"{', '.join('.' + f for f in FORMATS)} (the format)")


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError(f"parquet manifests need pyarrow: {_EXTRA_HINT}") from exc
    return pa, pq


def _zstd() -> Any:
    try:
        import zstandard
    except ImportError as exc:
        raise ImportError(f".jsonl.zst manifests need zstandard: {_EXTRA_HINT}") from exc
    return zstandard


def _iso(ts: float) -> str:
    """Epoch seconds as ISO 8601 UTC with ``Z`` (microseconds when not whole)."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# ------------------------------------------------------------------------------ reading
@dataclass(frozen=True)
class Manifest:
    """A manifest file, checked whole by :func:`read_manifest`.

    Attributes:
        path: the file.
        format: ``"parquet"``, ``"jsonl"`` or ``"jsonl.zst"``.
        uri: what was listed (``s3://bucket/prefix``, a glob, or ``file:///dir/``).
        listed_at: when the listing started, epoch seconds (UTC).
        listing_seconds: how long the listing took.
        count: objects in it.
        total_bytes: the sum of their sizes.
    """

    path: str
    format: str
    uri: str
    listed_at: float
    listing_seconds: float
    count: int
    total_bytes: int

    @property
    def location(self) -> ObjectURI:
        """The listed URI, parsed."""
        return parse_uri(self.uri)

    def covers(self, uri: Any) -> tuple[ObjectURI, str, str | None]:
        """Check that ``uri`` (a prefix or a glob) lies within what this manifest listed:
        the same scheme and bucket, under its prefix (a glob manifest covers only the same
        glob). Returns (``uri`` parsed, the key prefix of its objects, its glob pattern).

        Raises: ValueError naming both (another bucket, a prefix outside the manifest's)."""
        obj = parse_uri(uri)
        mine = self.location
        key, pattern = split_glob(obj)
        mkey, mpattern = split_glob(mine)
        where = f"the manifest {self.path!r} lists {self.uri}"
        if (obj.scheme, obj.bucket) != (mine.scheme, mine.bucket):
            raise ValueError(f"{where}, not {str(uri)}: another "
                             f"{'bucket' if obj.scheme == mine.scheme else 'scheme'}")
        if mpattern is not None:
            if (key, pattern) != (mkey, mpattern):
                raise ValueError(f"{where} (a glob), which does not hold all of {str(uri)}")
        elif not key.startswith(mkey):
            raise ValueError(f"{where}, which does not hold all of {str(uri)} (a prefix "
                             f"outside {mkey!r})")
        return obj, key, pattern

    def pages(self, uri: Any = None) -> Iterator[ListPage]:
        """The manifest's objects in listing order, as :class:`objio.ListPage` s of up to
        65,536 (``keys``, ``sizes``, ``objects``); with ``uri`` (checked by :meth:`covers`)
        only those under that prefix, or matching that glob (:func:`objio._glob.match`).

        Raises: ValueError when the file no longer reads as it did when opened (changed or
        cut since: the trailer is checked again at the end)."""
        key, pattern = None, None
        if uri is not None:
            _, key, pattern = self.covers(uri)
            mkey, mpattern = split_glob(self.location)
            if pattern is None and key == mkey and mpattern is None:
                key = None  # everything
        source = _parquet_pages(self) if self.format == "parquet" else _json_pages(self)
        for page in source:
            if key is not None:
                page = _select(page, key, pattern)
            if len(page):
                yield page

    def __iter__(self) -> Iterator[ObjectInfo]:
        """Every object, as :class:`objio.ObjectInfo`, in listing order."""
        for page in self.pages():
            yield from page.objects

    def sizes(self, uri: Any = None) -> dict[str, int]:
        """``{key: size in bytes}`` of the objects (under ``uri``: see :meth:`pages`)."""
        out: dict[str, int] = {}
        for page in self.pages(uri):
            out.update(zip(page.keys, page.sizes, strict=True))
        return out


def _select(page: ListPage, key: str, pattern: str | None) -> ListPage:
    from ._glob import match

    keys = page.keys
    if pattern is None:
        picked = [i for i, k in enumerate(keys) if k.startswith(key)]
    else:
        n = len(key)
        picked = [i for i, k in enumerate(keys) if k.startswith(key) and match(pattern, k[n:])]
    if len(picked) == len(keys):
        return page
    if picked and picked[-1] - picked[0] + 1 == len(picked):  # one run: no decoding
        return page.slice(picked[0], picked[-1] + 1)
    objects = page.objects
    return ListPage([objects[i] for i in picked])


class _Columns:
    """:class:`objio.backend.PageFields` over the columns of JSON lines (dates as written,
    converted when ObjectInfos are asked for)."""

    __slots__ = ("sizes_", "etags", "dates")

    def __init__(self, sizes: list[int], etags: Sequence[str], dates: Sequence[str]) -> None:
        self.sizes_ = sizes
        self.etags = etags
        self.dates = dates

    def sizes(self, start: int, stop: int) -> list[int]:
        return self.sizes_[start:stop]

    def infos(self, keys: Sequence[str], start: int, stop: int) -> list[ObjectInfo]:
        times: list[float] = []
        last, value = None, 0.0
        for d in self.dates[start:stop]:
            if d != last:
                last, value = d, (_epoch(d) if d else 0.0)
            times.append(value)
        return [ObjectInfo(k, s, t, e) for k, s, t, e in zip(
            keys, self.sizes_[start:stop], times, self.etags[start:stop], strict=True)]


class _ArrowColumns:
    """:class:`objio.backend.PageFields` over a parquet record batch: ETags and dates are
    converted only when ObjectInfos are asked for."""

    __slots__ = ("batch", "sizes_")

    def __init__(self, batch: Any, sizes: list[int]) -> None:
        self.batch = batch
        self.sizes_ = sizes

    def sizes(self, start: int, stop: int) -> list[int]:
        return self.sizes_[start:stop]

    def infos(self, keys: Sequence[str], start: int, stop: int) -> list[ObjectInfo]:
        b = self.batch.slice(start, stop - start)
        etags = b.column("etag").to_pylist()
        micros = b.column("last_modified").cast("int64").to_pylist()
        return [ObjectInfo(k, s, (t or 0) / 1e6, e or "") for k, s, t, e in zip(
            keys, self.sizes_[start:stop], micros, etags, strict=True)]


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Open a manifest (its format from its name: :func:`manifest_format`) and check it is
    whole: the header, and the count and total size of its trailer (parquet: its footer,
    metadata and row count; ``.jsonl.zst``: every frame, with its checksum) against its
    entries. Reading it (:meth:`Manifest.pages`) then makes no request to any store.

    Raises:
        FileNotFoundError: no such file.
        ValueError: another file name ending; not an objio manifest; a manifest cut short
            or damaged (naming the file and what is wrong).
        ImportError: pyarrow (parquet) or zstandard (``.zst``) is missing, naming the extra.
    """
    p = os.fspath(path)
    fmt = manifest_format(p)
    if not os.path.exists(p):
        raise FileNotFoundError(f"manifest {p!r} does not exist")
    if fmt == "parquet":
        return _open_parquet(p)
    header: dict[str, Any] | None = None
    trailer: dict[str, Any] | None = None
    for kind, value in _json_records(p, fmt):
        if kind == "header":
            header = value
        elif kind == "trailer":
            trailer = value
    assert header is not None and trailer is not None
    return _manifest(p, fmt, {**header, "listing_seconds": trailer.get("listing_seconds", 0.0)},
                     trailer["count"], trailer["total_bytes"])


def _why(e: BaseException) -> str:
    """What is wrong with a manifest line, in words (not an exception's class name)."""
    if isinstance(e, json.JSONDecodeError):
        return f"not valid JSON ({e.msg} at column {e.colno})"
    if isinstance(e, KeyError):
        return f"the field {e.args[0]!r} is missing" if e.args else "a field is missing"
    if isinstance(e, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(e, RecursionError):
        return "nested too deeply"
    return str(e)


def _bad(path: str, why: str) -> ValueError:
    return ValueError(f"manifest {path!r} is not a complete objio manifest: {why}")


def _manifest(path: str, fmt: str, header: dict[str, Any], count: int, total: int) -> Manifest:
    try:
        uri = header["uri"]
        parse_uri(uri)
        return Manifest(path, fmt, uri, _epoch(header["listed_at"]),
                        float(header.get("listing_seconds", 0.0)), count, total)
    except (KeyError, TypeError, ValueError) as e:
        raise _bad(path, f"its header is malformed ({e})") from None


def _check_header(path: str, header: Any) -> dict[str, Any]:
    if not isinstance(header, dict) or _HEADER_KEY not in header:
        raise ValueError(f"{path!r} is not an objio manifest (its first record is not the "
                         f"manifest header {{\"{_HEADER_KEY}\": {VERSION}, ...}})")
    if header[_HEADER_KEY] != VERSION:
        raise ValueError(f"manifest {path!r} has version {header[_HEADER_KEY]!r}; this objio "
                         f"reads version {VERSION}")
    return header


def _text_lines(path: str, fmt: str) -> Iterator[str]:
    """The lines of a JSON-lines manifest (decompressed), each with its newline."""
    with open(path, "rb") as raw:
        if fmt == "jsonl.zst":
            zstd = _zstd()
            try:
                with io.TextIOWrapper(io.BufferedReader(_Unzstd(raw, path, zstd)),
                                      encoding="utf-8") as text:
                    yield from text
            except zstd.ZstdError as e:
                raise _bad(path, f"zstd: {e}") from None
        else:
            with io.TextIOWrapper(raw, encoding="utf-8") as text:
                yield from text


class _Unzstd(io.RawIOBase):
    """The decompressed bytes of one zstd frame (what the writer makes), as a raw file; the
    frame must end (its checksum checked by zstandard) where the file ends: a file cut
    short, or with data after its frame, raises ValueError."""

    def __init__(self, raw: BinaryIO, path: str, zstd: Any) -> None:
        self.raw = raw
        self.path = path
        self.dobj = zstd.ZstdDecompressor().decompressobj()
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self.pending:
            chunk = self.raw.read(1 << 20)
            if not chunk:
                if not self.dobj.eof:
                    raise _bad(self.path, "its zstd frame is cut short")
                return 0
            if self.dobj.eof:
                raise _bad(self.path, "data after the end of its zstd frame")
            self.pending = self.dobj.decompress(chunk)
            if self.dobj.eof and self.dobj.unused_data:
                raise _bad(self.path, "data after the end of its zstd frame")
        n = min(len(b), len(self.pending))
        b[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n


_SIZE = re.compile(r', "size": (\d+), ')  # (what this module writes; else JSON decoding)


def _json_records(path: str, fmt: str) -> Iterator[tuple[str, Any]]:
    """The records of a JSON-lines manifest: ("header", dict), ("entry", size) per object,
    then ("trailer", dict) once its count and total size are checked against the entries;
    ValueError (naming the file and the line) for anything else."""
    n = total = 0
    header: dict[str, Any] | None = None
    ended: dict[str, Any] | None = None
    lineno = 0
    search = _SIZE.search
    try:
        for lineno, line in enumerate(_text_lines(path, fmt), 1):  # noqa: B007
            if ended is not None:
                raise _bad(path, f"line {lineno} follows the trailer")
            if not line.endswith("\n"):
                raise _bad(path, f"line {lineno} is cut short (no newline)")
            if header is not None and line.startswith('{"key": '):
                m = search(line)
                if m is not None:
                    n += 1
                    total += int(m.group(1))
                    continue
            rec = json.loads(line)
            if header is None:
                header = _check_header(path, rec)
                yield "header", header
                continue
            if not isinstance(rec, dict):
                raise _bad(path, f"line {lineno} is not a JSON object")
            if _END_KEY in rec:
                if rec.get("count") != n or rec.get("total_bytes") != total:
                    raise _bad(path, f"the trailer says {rec.get('count')} objects of "
                               f"{rec.get('total_bytes')} bytes; the file holds {n} of {total}")
                ended = rec
                continue
            size = rec["size"]
            if isinstance(size, bool) or not isinstance(size, int) or \
                    not isinstance(rec["key"], str):
                raise _bad(path, f"line {lineno}: key must be a string and size an integer")
            n += 1
            total += size
    except (json.JSONDecodeError, KeyError, UnicodeDecodeError, RecursionError) as e:
        raise _bad(path, f"line {lineno}: {_why(e)}") from None
    if header is None:
        raise _bad(path, "it is empty")
    if ended is None:
        raise _bad(path, f"no trailer after {n} objects (the file was cut short)")
    yield "trailer", ended


def _json_pages(m: Manifest, size: int = _ROWS_PER_GROUP) -> Iterator[ListPage]:
    keys: list[str] = []
    sizes: list[int] = []
    etags: list[str] = []
    dates: list[str] = []
    n = total = 0
    header_seen = ended = False
    loads = json.loads
    for lineno, line in enumerate(_text_lines(m.path, m.format), 1):
        if not header_seen:
            _check_header(m.path, loads(line))
            header_seen = True
            continue
        if ended or not line.endswith("\n"):
            raise _bad(m.path, f"line {lineno} is not where it was when the manifest was read")
        try:
            rec = loads(line)
            if _END_KEY in rec:
                if rec.get("count") != n or rec.get("total_bytes") != total or n != m.count:
                    raise _bad(m.path, "the entries changed since it was read")
                ended = True
                continue
            keys.append(rec["key"])
            sizes.append(rec["size"])
            etags.append(rec.get("etag") or "")
            dates.append(rec.get("last_modified") or "")
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            if isinstance(e, ValueError) and str(e).startswith("manifest "):
                raise
            raise _bad(m.path, f"line {lineno}: {_why(e)}") from None
        n += 1
        total += sizes[-1]
        if len(keys) >= size:
            yield ListPage(keys=keys, fields=_Columns(sizes, etags, dates))
            keys, sizes, etags, dates = [], [], [], []
    if not ended:
        raise _bad(m.path, "its trailer is gone (changed or cut since it was read)")
    if keys:
        yield ListPage(keys=keys, fields=_Columns(sizes, etags, dates))


def _open_parquet(path: str) -> Manifest:
    pa, pq = _pyarrow()
    try:
        f = pq.ParquetFile(path)
        meta = f.metadata
    except (pa.ArrowException, OSError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise _bad(path, f"not a readable parquet file ({e}; a file cut short has no "
                   "footer)") from None
    kv = meta.metadata or {}
    if _PARQUET_META not in kv:
        raise ValueError(f"{path!r} is not an objio manifest (a parquet file without "
                         f"{_PARQUET_META.decode()!r} metadata)")
    try:
        header = json.loads(kv[_PARQUET_META])
    except json.JSONDecodeError as e:
        raise _bad(path, f"its metadata is not JSON ({e})") from None
    _check_header(path, header)
    names = set(f.schema_arrow.names)
    if not {"key", "size", "etag", "last_modified"} <= names:
        raise _bad(path, f"its columns are {sorted(names)}, not key, size, etag, last_modified")
    count = header.get("count")
    if count != meta.num_rows:
        raise _bad(path, f"its metadata says {count} objects, the file holds {meta.num_rows}")
    return _manifest(path, "parquet", header, meta.num_rows, int(header.get("total_bytes", 0)))


def _parquet_pages(m: Manifest) -> Iterator[ListPage]:
    pa, pq = _pyarrow()
    try:
        f = pq.ParquetFile(m.path)
        if f.metadata.num_rows != m.count:
            raise _bad(m.path, "it changed since it was read")
        for batch in f.iter_batches(batch_size=_ROWS_PER_GROUP,
                                    columns=["key", "size", "etag", "last_modified"]):
            keys = batch.column("key").to_pylist()
            sizes = batch.column("size").to_pylist()
            if None in keys or None in sizes:
                raise _bad(m.path, "an entry without a key or a size")
            yield ListPage(keys=keys, fields=_ArrowColumns(batch, sizes))
    except (pa.ArrowException, OSError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise _bad(m.path, f"parquet: {e}") from None


# ------------------------------------------------------------------------------ writing
def write_manifest(uri: Any, path: str | os.PathLike[str], *, fast: bool = False,
                   client: Any = None) -> Manifest:
    """List ``uri`` (every object under an ``s3://bucket/prefix`` or local directory, or
    those a glob in the last segment matches, as :meth:`objio.Client.list_objects`) and
    write the manifest ``path`` (format from its name: :func:`manifest_format`), streamed:
    memory stays bounded whatever the number of objects. ``fast``: FastList. ``client``: an
    :class:`objio.Client` (default: the process default).

    The file appears under its name only once whole (written to a temporary file in the same
    directory, then renamed); on any error nothing is left behind.

    Returns: the :class:`Manifest` written.
    Raises: ValueError (a bad URI or file name), ImportError (pyarrow or zstandard missing,
    before any request), the listing's errors (FileNotFoundError, PermissionError,
    ObjectStoreError ``IncompleteListing``), OSError writing the file.
    """
    from .api import default_client

    p = os.fspath(path)
    fmt = manifest_format(p)
    if fmt == "parquet":
        _pyarrow()
    elif fmt == "jsonl.zst":
        _zstd()
    obj = parse_uri(uri)
    client = client if client is not None else default_client()
    started = time.time()
    header: dict[str, Any] = {_HEADER_KEY: VERSION, "uri": str(obj), "listed_at": _iso(started),
                              "objio_version": _version()}
    directory, name = os.path.split(os.path.abspath(p))
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # (mode as umask says)
    try:
        pages = client.list_pages(obj, fast=fast)
        try:
            if fmt == "parquet":
                count, total = _write_parquet(tmp, pages, header, started)
            else:
                with open(tmp, "wb") as fh:
                    count, total = _write_json(fh, fmt, pages, header, started)
        finally:
            pages.close()
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # on disk before it takes the name
        finally:
            os.close(fd)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return Manifest(p, fmt, header["uri"], _epoch(header["listed_at"]),
                    header["listing_seconds"], count, total)


def _version() -> str:
    from . import __version__

    return __version__


def _write_json(fh: BinaryIO, fmt: str, pages: Iterator[ListPage], header: dict[str, Any],
                started: float) -> tuple[int, int]:
    out: Any = fh
    if fmt == "jsonl.zst":
        out = _zstd().ZstdCompressor(level=3, write_checksum=True).stream_writer(
            fh, closefd=False)
    out.write((json.dumps(header) + "\n").encode())
    count = total = 0
    enc = encode_basestring
    last_ts, last_iso = None, ""
    for page in pages:
        lines = []
        for o in page.objects:
            if o.last_modified != last_ts:
                last_ts, last_iso = o.last_modified, _iso(o.last_modified)
            lines.append(f'{{"key": {enc(o.key)}, "size": {o.size}, "etag": {enc(o.etag)}, '
                         f'"last_modified": "{last_iso}"}}\n')
            total += o.size
        count += len(lines)
        out.write("".join(lines).encode())
    header["listing_seconds"] = round(time.time() - started, 6)
    trailer = {_END_KEY: True, "count": count, "total_bytes": total,
               "listing_seconds": header["listing_seconds"]}
    out.write((json.dumps(trailer) + "\n").encode())
    if out is not fh:
        out.close()  # the end of the zstd frame (and its checksum)
    return count, total


def _write_parquet(path: str, pages: Iterator[ListPage], header: dict[str, Any],
                   started: float) -> tuple[int, int]:
    pa, pq = _pyarrow()
    schema = pa.schema([("key", pa.string()), ("size", pa.int64()), ("etag", pa.string()),
                        ("last_modified", pa.timestamp("us", tz="UTC"))])
    count = total = 0
    cols: tuple[list[str], list[int], list[str], list[int]] = ([], [], [], [])
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        def flush() -> None:
            keys, sizes, etags, micros = cols
            if keys:
                writer.write_batch(pa.record_batch(
                    [pa.array(keys, pa.string()), pa.array(sizes, pa.int64()),
                     pa.array(etags, pa.string()),
                     pa.array(micros, pa.int64()).cast(pa.timestamp("us", tz="UTC"))],
                    schema=schema))
            for c in cols:
                c.clear()

        for page in pages:
            objects = page.objects
            cols[0].extend(o.key for o in objects)
            sizes = [o.size for o in objects]
            cols[1].extend(sizes)
            cols[2].extend(o.etag for o in objects)
            cols[3].extend(round(o.last_modified * 1e6) for o in objects)
            count += len(objects)
            total += sum(sizes)
            if len(cols[0]) >= _ROWS_PER_GROUP:
                flush()
        flush()
        header["listing_seconds"] = round(time.time() - started, 6)
        header.update(count=count, total_bytes=total)
        writer.add_key_value_metadata({_PARQUET_META: json.dumps(header).encode()})
    return count, total
