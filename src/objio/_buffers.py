"""Receive buffers for GET bodies.

``new_buffer(n)`` returns a ``bytearray`` of ``n`` bytes WITHOUT zero-filling it (CPython's
``PyByteArray_FromStringAndSize(NULL, n)``): zero-filling a 16 MiB buffer costs as much as
receiving it, and every byte is overwritten by the body before the buffer is handed out (a GET
that ends early raises and drops its buffer).

Debug switch: with ``OBJIO_POISON_BUFFERS=1`` in the environment (read at import; the test
suite sets it) every new or recycled buffer is filled with the byte ``0xDB`` first, so a slice
that the receive path failed to write shows up as a run of ``0xDB`` instead of stale memory. ``BufferPool`` recycles buffers for callers that
discard the data (``get_many_stats``), so steady-state reads cause no page faults.
"""

from __future__ import annotations

import bisect
import ctypes
import os
import platform
from typing import Any, Sequence

_UNINIT_MIN = 64 * 1024
POISON_BYTE = 0xDB
_poison = os.environ.get("OBJIO_POISON_BUFFERS", "") == "1"


def set_poison(enabled: bool) -> None:
    """Turn the poison fill of new buffers on or off (see the module docstring)."""
    global _poison
    _poison = bool(enabled)

_from_string_and_size: Any = None
if platform.python_implementation() == "CPython":
    _from_string_and_size = ctypes.pythonapi.PyByteArray_FromStringAndSize
    _from_string_and_size.restype = ctypes.py_object
    _from_string_and_size.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]


def new_buffer(n: int) -> bytearray:
    """A ``bytearray`` of ``n`` bytes whose content is unspecified (to be overwritten)."""
    if n >= _UNINIT_MIN and _from_string_and_size is not None:
        buf: bytearray = _from_string_and_size(None, n)
    else:
        buf = bytearray(n)
    if _poison:
        buf[:] = bytes([POISON_BYTE]) * n
    return buf


class BufferPool:
    """Free buffers for reuse; ``take(n)`` gives a memoryview of exactly ``n`` bytes.

    Reusing buffers saves the page faults (and the kernel's zeroing of fresh pages) that a new
    large allocation costs on its first write: about a tenth of the CPU of receiving the data.
    At most ``max_bytes`` of free buffers are kept (the largest are dropped first); the pool is
    used from the engine's loop thread only. Free buffers are kept by size (a sorted list of
    the sizes held): finding the smallest one that fits is a bisection, not a scan (a pool of
    256 MiB of 128 KiB buffers holds 2048 of them; scanning them cost ~50 us per GET).
    """

    def __init__(self, max_bytes: int | None = None) -> None:
        self.max_bytes = max_bytes
        self._held = 0
        self._sizes: list[int] = []  # sorted, the sizes with at least one free buffer
        self._by_size: dict[int, list[bytearray]] = {}

    @property
    def free(self) -> list[bytearray]:
        """The free buffers (a new list, smallest first)."""
        return [b for size in self._sizes for b in self._by_size[size]]

    def clear(self) -> None:
        """Drop every free buffer."""
        self._sizes.clear()
        self._by_size.clear()
        self._held = 0

    def _pop(self, i: int) -> bytearray:
        size = self._sizes[i]
        bufs = self._by_size[size]
        buf = bufs.pop()
        if not bufs:
            del self._by_size[size]
            del self._sizes[i]
        self._held -= size
        return buf

    def take(self, n: int) -> memoryview:
        i = bisect.bisect_left(self._sizes, n)  # the smallest buffer that fits
        if i < len(self._sizes):
            buf = self._pop(i)
            if _poison:
                buf[:n] = bytes([POISON_BYTE]) * n
        else:
            buf = new_buffer(max(n, 1))
        return memoryview(buf)[:n]

    def give(self, data: object) -> None:
        """Return the buffer behind ``data`` (a memoryview from :meth:`take`) to the pool."""
        if isinstance(data, memoryview):
            owner = data.obj
            data.release()
            self._keep(owner)

    def _keep(self, owner: object) -> None:
        if isinstance(owner, bytearray):
            size = len(owner)
            bufs = self._by_size.get(size)
            if bufs is None:
                bufs = self._by_size[size] = []
                bisect.insort(self._sizes, size)
            bufs.append(owner)
            self._held += size
            if self.max_bytes is not None:
                while self._held > self.max_bytes and self._sizes:
                    self._pop(len(self._sizes) - 1)  # the largest first


def read_into_new(reader: Any, n: int) -> Any:
    """The next ``n`` bytes of ``reader`` read with ``readinto`` into a new buffer (writable;
    shorter at the end of the object: a memoryview of what was read)."""
    buf = new_buffer(n)
    mv = memoryview(buf)
    got = 0
    while got < n:
        k = reader.readinto(mv[got:])
        if not k:
            break
        got += k
    return buf if got == n else mv[:got]


class Gather:
    """Bytes held as an ordered list of buffers and sent as they are, one after another
    (scatter-gather), instead of being joined into one buffer first: a part of a multipart
    upload whose large pieces are borrowed from the caller (see
    :meth:`objio.io.ObjectWriter.write_zero_copy`). ``len()`` is the total in bytes."""

    __slots__ = ("pieces", "nbytes")

    def __init__(self, pieces: Sequence[memoryview]) -> None:
        self.pieces: tuple[memoryview, ...] = tuple(pieces)
        self.nbytes: int = sum(p.nbytes for p in self.pieces)

    def __len__(self) -> int:
        return self.nbytes

    def tobytes(self) -> bytes:
        """The bytes joined (a copy)."""
        return b"".join(self.pieces)


def buffer_address(mv: memoryview) -> int:
    """The address of the first byte of ``mv`` (a C-contiguous, possibly read-only buffer)."""
    flat = mv if mv.format == "B" and mv.ndim == 1 else mv.cast("B")
    if not flat.readonly and flat.nbytes:
        # ~1 us (numpy's way below costs ~15 us: it matters per small object); the ctypes
        # object, and with it the buffer export, is gone when this expression is done
        return ctypes.addressof(ctypes.c_char.from_buffer(flat))
    import numpy as np

    return int(np.frombuffer(flat, dtype=np.uint8).__array_interface__["data"][0])
