"""RAW: random bytes, nothing else (DLIO's ``indexed_binary`` payloads without the index;
``objio.put``'s default ``object_type``). A RAW file of ``samples`` samples of ``n`` bytes is
``samples * n`` bytes of the deterministic random stream of ``(seed, index)``; reading it is
taking the bytes as they are."""

from __future__ import annotations

from typing import Any

from ._common import FileFormat, FileOptions, _byte_view, random_bytes


def read_raw(data: Any) -> memoryview:
    """The bytes of a RAW file, as a 1-D ``uint8`` memoryview of ``data`` (no copy)."""
    return _byte_view(data)


def _build(dims: tuple[int, int], samples: int, seed: int, index: int,
           options: FileOptions) -> bytearray:
    return random_bytes(dims[1] * samples, seed=seed, index=index)


def _expected_size(dims: tuple[int, int], samples: int, options: FileOptions) -> tuple[int, bool]:
    return dims[1] * samples, True


def _sized(size: int, *, seed: int = 0, index: int = 0, samples: int = 1) -> bytearray:
    return random_bytes(size, seed=seed, index=index)


FORMAT = FileFormat("raw", build=_build, expected_size=_expected_size, read=read_raw,
                    shaped=False, sized=_sized)
