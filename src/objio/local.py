"""file:// backend: the same operation set as S3 on a local file system.

Keys are absolute paths. Writes are atomic (a temporary file in the same directory, then
``os.replace``), so a reader never sees a half-written file. Blocking file calls run in the
engine loop's default executor.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import logging
import os
import shutil
import stat
import tempfile
import threading
import time
import uuid
from typing import Any, AsyncIterator, Callable, Sequence, TypeVar

from ._buffers import Gather, new_buffer
from ._crc32c import from_base64, to_base64
from .backend import GetResult, ListPage, ObjectInfo
from .errors import (
    AccessDeniedError,
    AlreadyExistsError,
    NotFoundError,
    ObjectStoreError,
)
from .uri import ObjectURI

T = TypeVar("T")
_UPLOAD_DIR = ".objio-uploads"
_CRC_XATTR = "user.objio.crc32c"
log = logging.getLogger("objio.local")


def _translate(op: str, path: str, e: OSError) -> ObjectStoreError:
    msg = f"{op} file://{path} failed: {e.strerror or e}"
    kw: dict[str, Any] = dict(operation=op, uri="file://" + path, code=errno.errorcode.get(e.errno or 0))
    if isinstance(e, (FileNotFoundError, NotADirectoryError)):
        return NotFoundError(msg, **kw)
    if isinstance(e, PermissionError):
        return AccessDeniedError(msg, **kw)
    if isinstance(e, FileExistsError):
        return AlreadyExistsError(msg, **kw)
    if isinstance(e, IsADirectoryError):
        return NotFoundError(f"{op} file://{path} failed: is a directory, not a file", **kw)
    return ObjectStoreError(msg, **kw)


async def _run(op: str, path: str, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a worker thread, OSError translated. A cancelled caller still waits for
    the thread (it cannot be stopped): an aborted upload's part writes are over before the
    abort removes the parts, and nothing writes on after its caller gave up."""
    fut = asyncio.get_running_loop().run_in_executor(None, fn, *args)
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        await asyncio.wait({fut})
        raise
    except ObjectStoreError:
        raise
    except OSError as e:
        raise _translate(op, path, e) from e


def _info(path: str, st: os.stat_result) -> ObjectInfo:
    return ObjectInfo(key=path, size=st.st_size, last_modified=st.st_mtime,
                      etag=f"{st.st_mtime_ns:x}-{st.st_size:x}")


def _read(path: str, start: int | None, end: int | None, into: memoryview | None,
          alloc: Callable[[int], memoryview] | None) -> GetResult:
    t0 = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        st = os.fstat(f.fileno())
        size = st.st_size
        lo = 0 if start is None else start
        hi = size - 1 if end is None else min(end, size - 1)
        n = max(0, hi - lo + 1)
        ttfb = time.perf_counter() - t0
        if into is not None and len(into) != n:
            raise ObjectStoreError(f"GetObject file://{path}: expected {len(into)} bytes, file has {n}",
                                   operation="GetObject", uri="file://" + path, code="UnexpectedLength")
        buf: bytearray | memoryview
        if into is not None:
            buf, mv = bytearray(), into
        elif alloc is not None:
            buf = mv = alloc(n)
        else:
            buf = new_buffer(n)
            mv = memoryview(buf)
        if n:
            f.seek(lo)
            got = 0
            while got < n:
                r = f.readinto(mv[got:])
                if not r:
                    raise ObjectStoreError(f"GetObject file://{path}: file shrank while reading",
                                           operation="GetObject", uri="file://" + path,
                                           code="IncompleteBody", retryable=True)
                got += r
        return GetResult(buf, size, _info(path, st).etag, ttfb)


def _set_crc32c(path: str, crc: int | None) -> None:
    """Record a CRC32C in the file's ``user.objio.crc32c`` extended attribute (skipped where
    the file system has no user xattrs)."""
    if crc is None or not hasattr(os, "setxattr"):
        return
    try:
        os.setxattr(path, _CRC_XATTR, to_base64(crc).encode("ascii"))
    except OSError as e:
        if e.errno not in (errno.ENOTSUP, errno.EPERM, errno.EOPNOTSUPP):
            raise
        log.debug("%s: no extended attributes here, CRC32C not recorded (%s)", path, e)


def _get_crc32c(path: str) -> int | None:
    if not hasattr(os, "getxattr"):
        return None
    try:
        return from_base64(os.getxattr(path, _CRC_XATTR).decode("ascii", "replace"))
    except OSError:
        return None


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells it (``Umask:`` in
    /proc/self/status); elsewhere set and restored at once (under a lock: the umask is
    process-wide)."""
    try:
        fd = os.open("/proc/self/status", os.O_RDONLY)
        try:
            status = os.read(fd, 1 << 16)
        finally:
            os.close(fd)
        i = status.find(b"\nUmask:")
        if i >= 0:
            return int(status[i + 7:].split(None, 1)[0], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


_umask_lock = threading.Lock()


def _final_mode(path: str) -> int:
    """The permission bits a file written at ``path`` gets: those of the file it replaces,
    else what ``open()`` would create (0666 less the umask)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _write_atomic(path: str, chunks: Sequence[Any], exclusive: bool,
                  crc32c: int | None = None, private: bool = False) -> str:
    """Write ``chunks`` to ``path`` through a temporary file in the same directory (mode
    0600 while it is written), renamed into place. The file gets the mode of the one it
    replaces, or 0666 less the umask as ``open()`` gives (``private``: stays 0600, for
    multipart parts)."""
    d = os.path.dirname(path)
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".objio-", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            for c in chunks:
                f.write(c)
            if not private:  # just before the rename: private while it is written
                if hasattr(os, "fchmod"):
                    os.fchmod(f.fileno(), _final_mode(path))
                else:  # pragma: no cover - Windows before Python 3.13
                    os.chmod(tmp, _final_mode(path))
        _set_crc32c(tmp, crc32c)
        if exclusive:
            os.link(tmp, path)  # fails with FileExistsError if the key exists
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return _info(path, os.stat(path)).etag


def _walk(prefix: str, delimiter: str | None, start_after: str | None) -> list[ObjectInfo | str]:
    """Files whose path starts with ``prefix`` (sorted); with a delimiter, one level only.
    Raises FileNotFoundError when the directory to list (``prefix`` ending with ``/``, else
    its parent) does not exist and ``prefix`` is no file: a mistyped path (or an s3:// URI
    without its scheme) is an error, not an empty listing."""
    if prefix.endswith(os.sep):
        base = prefix.rstrip(os.sep) or os.sep
    else:
        base = os.path.dirname(prefix)
    out: list[ObjectInfo | str] = []
    if not os.path.isdir(base):
        if os.path.isfile(prefix) and not delimiter:
            out.append(_info(prefix, os.stat(prefix)))
            return out
        raise FileNotFoundError(errno.ENOENT, "no such file or directory", base)
    if delimiter:
        for entry in sorted(os.scandir(base), key=lambda e: e.path):
            p = entry.path
            if not p.startswith(prefix) or entry.name == _UPLOAD_DIR or entry.name.startswith(".objio-"):
                continue
            if entry.is_dir():
                out.append(p + os.sep)
            elif entry.is_file():
                out.append(_info(p, entry.stat()))
    else:
        for root, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if d != _UPLOAD_DIR]
            for name in files:
                p = os.path.join(root, name)
                if p.startswith(prefix) and not name.startswith(".objio-"):
                    out.append(_info(p, os.stat(p)))
        out.sort(key=lambda i: i.key if isinstance(i, ObjectInfo) else i)
    if start_after:
        out = [i for i in out if (i.key if isinstance(i, ObjectInfo) else i) > start_after]
    return out


def _remove_upload_dir(d: str) -> None:
    shutil.rmtree(d, ignore_errors=True)
    try:
        os.rmdir(os.path.dirname(d))  # the .objio-uploads directory, once no upload uses it
    except OSError:
        pass


class LocalBackend:
    """The operation set of :class:`objio.backend.Backend` on local files."""

    scheme = "file"

    async def get(self, obj: ObjectURI, start: int | None = None, end: int | None = None, *,
                  if_match: str | None = None, into: memoryview | None = None,
                  alloc: Callable[[int], memoryview] | None = None,
                  unranged: bool = False, crc: bool = False) -> GetResult:
        """Bytes [start, end] of the file (``unranged``: the same; a file read carries no
        stored checksum, so ``stored`` is always None; ``crc`` is ignored: no
        ``received_crc32c``)."""
        return await _run("GetObject", obj.key, _read, obj.key, start, end, into, alloc)

    async def head(self, obj: ObjectURI, *, checksum: bool = False) -> ObjectInfo:
        st = await _run("HeadObject", obj.key, os.stat, obj.key)
        if not os.path.isfile(obj.key):
            what = "is a directory" if os.path.isdir(obj.key) else "is not a regular file"
            raise NotFoundError(f"HeadObject file://{obj.key} failed: {what}, not a file",
                                operation="HeadObject", uri=str(obj))
        info = _info(obj.key, st)
        if checksum:
            crc = await _run("HeadObject", obj.key, _get_crc32c, obj.key)
            info = dataclasses.replace(info, crc32c=crc)
        return info

    async def put(self, obj: ObjectURI, data: Any, *, if_none_match: bool = False,
                  checksum_crc32c: int | None = None) -> str:
        return await _run("PutObject", obj.key, _write_atomic, obj.key, [data], if_none_match,
                          checksum_crc32c)

    async def delete(self, obj: ObjectURI) -> None:
        def rm(path: str) -> None:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass  # like S3: deleting a missing key is not an error

        await _run("DeleteObject", obj.key, rm, obj.key)

    async def delete_many(self, bucket_uri: ObjectURI, keys: Sequence[str]) -> list[tuple[str, str, str]]:
        errors: list[tuple[str, str, str]] = []
        for k in keys:
            try:
                await self.delete(bucket_uri.with_key(k))
            except ObjectStoreError as e:
                errors.append((k, e.code or "Error", e.message))
        return errors

    # Multipart: parts are files in a hidden directory beside the target, joined on completion.
    def _upload_dir(self, obj: ObjectURI, upload_id: str) -> str:
        return os.path.join(os.path.dirname(obj.key), _UPLOAD_DIR, upload_id)

    async def create_multipart(self, obj: ObjectURI, *, checksum: str | None = None) -> str:
        upload_id = uuid.uuid4().hex
        await _run("CreateMultipartUpload", obj.key, lambda: os.makedirs(self._upload_dir(obj, upload_id)))
        return upload_id

    async def upload_part(self, obj: ObjectURI, upload_id: str, part_number: int, data: Any, *,
                          checksum_crc32c: int | None = None) -> str:
        part = os.path.join(self._upload_dir(obj, upload_id), f"{part_number:05d}")
        chunks = list(data.pieces) if isinstance(data, Gather) else [data]
        return await _run("UploadPart", obj.key, _write_atomic, part, chunks, False, None, True)

    async def complete_multipart(self, obj: ObjectURI, upload_id: str,
                                 parts: Sequence[tuple[int, str] | tuple[int, str, int]], *,
                                 checksum_crc32c: int | None = None) -> str:
        d = self._upload_dir(obj, upload_id)

        def join() -> str:
            chunks = []
            for num in sorted(p[0] for p in parts):
                with open(os.path.join(d, f"{num:05d}"), "rb") as f:
                    chunks.append(f.read())
            etag = _write_atomic(obj.key, chunks, False, checksum_crc32c)
            _remove_upload_dir(d)
            return etag

        return await _run("CompleteMultipartUpload", obj.key, join)

    async def abort_multipart(self, obj: ObjectURI, upload_id: str) -> None:
        await _run("AbortMultipartUpload", obj.key, _remove_upload_dir, self._upload_dir(obj, upload_id))

    async def list_pages(self, bucket_uri: ObjectURI, prefix: str = "", delimiter: str | None = None,
                         start_after: str | None = None, page_size: int = 1000,
                         continuation_token: str | None = None) -> AsyncIterator[ListPage]:
        items = await _run("ListObjects", prefix, _walk, prefix, delimiter, start_after)
        for i in range(0, max(len(items), 1), page_size):
            chunk = items[i:i + page_size]
            yield ListPage([x for x in chunk if isinstance(x, ObjectInfo)],
                           [x for x in chunk if isinstance(x, str)])

    async def create_bucket(self, bucket_uri: ObjectURI) -> None:
        await _run("CreateBucket", bucket_uri.key, os.makedirs, bucket_uri.key)

    async def head_bucket(self, bucket_uri: ObjectURI) -> None:
        path = bucket_uri.key if bucket_uri.key.endswith(os.sep) else os.path.dirname(bucket_uri.key)
        if not os.path.isdir(path):
            raise NotFoundError(f"directory {path!r} does not exist", operation="HeadBucket",
                                uri="file://" + path)

    async def close(self) -> None:
        return None
