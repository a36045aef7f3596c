"""Receive buffers for GET bodies.

``new_buffer(n)`` returns a ``bytearray`` of ``n`` bytes WITHOUT zero-filling it (CPython's
``PyByteArray_FromStringAndSize(NULL, n)``): zero-filling a 16 MiB buffer costs as much as
receiving it, and every byte is overwritten by the body before the buffer is handed out (a GET
that ends early raises and drops its buffer). ``BufferPool`` recycles buffers for callers that
discard the data (``get_many_stats``), so steady-state reads cause no page faults.
"""

from __future__ import annotations

import ctypes
import platform
from typing import Any

_UNINIT_MIN = 64 * 1024

_from_string_and_size: Any = None
if platform.python_implementation() == "CPython":
    _from_string_and_size = ctypes.pythonapi.PyByteArray_FromStringAndSize
    _from_string_and_size.restype = ctypes.py_object
    _from_string_and_size.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]


def new_buffer(n: int) -> bytearray:
    """A ``bytearray`` of ``n`` bytes whose content is unspecified (to be overwritten)."""
    if n >= _UNINIT_MIN and _from_string_and_size is not None:
        buf: bytearray = _from_string_and_size(None, n)
        return buf
    return bytearray(n)


class BufferPool:
    """Free buffers for reuse; ``take(n)`` gives a memoryview of exactly ``n`` bytes."""

    def __init__(self) -> None:
        self.free: list[bytearray] = []

    def take(self, n: int) -> memoryview:
        buf = None
        while self.free:
            cand = self.free.pop()
            if len(cand) >= n:
                buf = cand
                break
        if buf is None:
            buf = new_buffer(max(n, 1))
        return memoryview(buf)[:n]

    def give(self, data: object) -> None:
        """Return the buffer behind ``data`` (a memoryview from :meth:`take`) to the pool."""
        if isinstance(data, memoryview):
            owner = data.obj
            data.release()
            if isinstance(owner, bytearray):
                self.free.append(owner)
