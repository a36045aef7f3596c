"""Read one ``torch.save``'d tensor straight out of a buffer, without ``torch.load``.

DCP's file-system layout stores every tensor item as a small ``torch.save`` archive (a zip
whose members are stored, not compressed): ``<archive>/data.pkl`` (the pickled
``torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, ...)`` call),
``<archive>/byteorder`` and the storage bytes in ``<archive>/data/<key>``. ``torch.load`` of
such an item parses the archive, allocates a new storage, copies the bytes into it, and the
DCP reader then copies that tensor into the state dict: two copies and fresh pages per byte.

:func:`tensor_view` returns a tensor that *views* the storage bytes inside the caller's buffer
(no copy, no allocation), so the reader copies each byte once, into the state dict. It handles
exactly the plain case — one dense tensor of a standard dtype in a little-endian, uncompressed
archive — and returns None for anything else (quantized, sparse or subclass tensors, tensor
metadata, compressed members, other pickles), where the caller uses ``torch.load``. The pickle
is read by a restricted unpickler that resolves no global beyond the rebuild function, the
storage type names and ``collections.OrderedDict`` (``weights_only`` safety).
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import sys
import zipfile
from typing import Any

import torch

__all__ = ["BufferFile", "tensor_view"]

_LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")  # zip local file header, 30 bytes
_LOCAL_MAGIC = 0x04034B50


def _storage_dtypes() -> dict[str, torch.dtype]:
    """Storage type name (as pickled by torch.save) -> dtype, for the non-quantized dtypes."""
    get_map = getattr(getattr(torch, "storage", None), "_dtype_to_storage_type_map", None)
    if get_map is None:
        return {}
    try:
        table = get_map()
    except Exception:  # noqa: BLE001 - an internal that changed: no fast path
        return {}
    return {name: dtype for dtype, name in table.items()
            if isinstance(name, str) and not name.startswith(("QInt", "QUInt"))}


_DTYPES = _storage_dtypes()


class _NotPlain(Exception):
    """The archive is not the plain one-tensor case: use torch.load."""


class _Storage:
    __slots__ = ("dtype", "key", "numel")

    def __init__(self, dtype: torch.dtype, key: str, numel: int) -> None:
        self.dtype, self.key, self.numel = dtype, key, numel


class _Rebuilt:
    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage: Any, offset: Any, size: Any, stride: Any) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any,
                       requires_grad: Any = False, backward_hooks: Any = None,
                       metadata: Any = None) -> _Rebuilt:
    if metadata or backward_hooks:
        raise _NotPlain("tensor metadata or hooks")
    return _Rebuilt(storage, storage_offset, size, stride)


class _StorageType:
    __slots__ = ("dtype",)

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch" and name in _DTYPES:
            return _StorageType(_DTYPES[name])
        raise _NotPlain(f"global {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        if (not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage"
                or not isinstance(pid[1], _StorageType) or not isinstance(pid[2], str)
                or pid[3] != "cpu" or not isinstance(pid[4], int)):
            raise _NotPlain("storage reference")
        return _Storage(pid[1].dtype, pid[2], pid[4])


class _Members:
    """The archive's members as (start, length) of their bytes inside the buffer."""

    def __init__(self, mv: memoryview) -> None:
        self._mv = mv
        try:
            zf = zipfile.ZipFile(BufferFile(mv))
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
            raise _NotPlain(f"not a zip: {e}") from None
        self._infos = {i.filename: i for i in zf.infolist()}
        names = list(self._infos)
        if not names or "/" not in names[0]:
            raise _NotPlain("no archive directory")
        self.root = names[0].split("/", 1)[0] + "/"

    def span(self, name: str) -> tuple[int, int] | None:
        info = self._infos.get(self.root + name)
        if info is None:
            return None
        if info.compress_type != zipfile.ZIP_STORED:
            raise _NotPlain(f"{name} is compressed")
        h = info.header_offset
        if h < 0 or h + _LOCAL_HEADER.size > len(self._mv):
            raise _NotPlain("local header out of range")
        magic, *_, name_len, extra_len = _LOCAL_HEADER.unpack_from(self._mv, h)
        if magic != _LOCAL_MAGIC:
            raise _NotPlain("bad local header")
        start = h + _LOCAL_HEADER.size + name_len + extra_len
        if start + info.file_size > len(self._mv):
            raise _NotPlain(f"{name} runs past the buffer")
        return start, info.file_size

    def read(self, name: str) -> bytes | None:
        s = self.span(name)
        return None if s is None else self._mv[s[0]: s[0] + s[1]].tobytes()


class BufferFile(io.BufferedIOBase):
    """A read-only, seekable file over a buffer, without copying it (what ``zipfile`` and
    ``torch.load`` need to read an archive that is already in memory)."""

    def __init__(self, data: Any) -> None:
        super().__init__()
        mv = memoryview(data)
        self._mv = mv if mv.format == "B" and mv.ndim == 1 else mv.cast("B")
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._mv)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int | None = -1, /) -> bytes:
        end = len(self._mv) if size is None or size < 0 else min(len(self._mv), self._pos + size)
        out = self._mv[self._pos: end].tobytes()
        self._pos = max(self._pos, end)
        return out

    def read1(self, size: int | None = -1, /) -> bytes:
        return self.read(size)

    def readinto(self, b: Any, /) -> int:
        dst = memoryview(b).cast("B")
        k = max(0, min(len(dst), len(self._mv) - self._pos))
        dst[:k] = self._mv[self._pos: self._pos + k]
        self._pos += k
        return k


def tensor_view(buf: Any) -> torch.Tensor | None:
    """The tensor saved by ``torch.save(tensor, f)`` whose bytes are ``buf``, as a view of
    ``buf`` (no copy), or None when the archive is not the plain case (see the module docs;
    then use ``torch.load``).

    Args:
        buf: the whole archive: a writable buffer (bytearray, writable memoryview) of bytes.
            The returned tensor shares its memory: keep ``buf`` alive and unchanged while the
            tensor is used. A read-only buffer gives None (torch tensors are writable).

    Returns:
        A CPU tensor with the saved dtype, shape, strides and storage offset, or None.
    """
    mv = memoryview(buf)
    if mv.readonly or not _DTYPES:
        return None
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    try:
        members = _Members(mv)
        order = members.read("byteorder") or b"little"  # (torch.load's default too)
        if order != sys.byteorder.encode():
            raise _NotPlain(f"{order!r} byte order on a {sys.byteorder}-endian host")
        pkl = members.read("data.pkl")
        if pkl is None:
            raise _NotPlain("no data.pkl")
        rebuilt = _Unpickler(io.BytesIO(pkl)).load()
        if not isinstance(rebuilt, _Rebuilt) or not isinstance(rebuilt.storage, _Storage):
            raise _NotPlain("not a single tensor")
        st = rebuilt.storage
        span = members.span("data/" + st.key)
        if span is None:
            raise _NotPlain("storage record missing")
        start, length = span
        if st.numel < 0 or length != st.numel * st.dtype.itemsize:
            raise _NotPlain("storage record size differs from its element count")
        if st.numel == 0:
            base = torch.empty(0, dtype=st.dtype)
        else:
            base = torch.frombuffer(mv[start: start + length], dtype=st.dtype)
        return base.as_strided(tuple(rebuilt.size), tuple(rebuilt.stride), int(rebuilt.offset))
    except (_NotPlain, pickle.UnpicklingError, EOFError, TypeError, ValueError, RuntimeError,
            AttributeError, IndexError, KeyError, struct.error):
        return None
