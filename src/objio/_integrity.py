"""Checking downloaded bytes against the CRC32C an object store keeps with the object.

S3 sends an object's stored checksum (``x-amz-checksum-crc32c``) with whole-object responses
only, never with a ranged one, so a read made of ranged parts (a large ``get``, a reader, the
model connector's prefetch, a safetensors shard) cannot check each part on its own. Instead
every piece's CRC32C is computed once, as it lands (:meth:`ReadCheck.crcs`, hot in cache),
and recorded with its byte range (:meth:`ReadCheck.add`); once the pieces cover the whole
object, :meth:`ReadCheck.verdict` combines them with :func:`objio._crc32c.combine` (a few
microseconds per piece, no second pass over the bytes) into the whole object's CRC32C and
compares it with the stored one:

* FULL_OBJECT (a single PUT, or a multipart upload of type FULL_OBJECT): one value for all
  the bytes.
* COMPOSITE (``<base64>-N``, a multipart upload of N parts): the CRC32C of the N parts'
  CRC32Cs. It needs the part boundaries (:meth:`ReadCheck.set_parts`, from
  GetObjectAttributes): pieces are then cut at them as they land, each part's CRC32C is
  combined from its pieces and checked on its own where the store reports it (AWS does), else
  all of them through the composite value. Pieces that land before the boundaries are known
  are cut every :data:`GRAIN` bytes (part sizes are whole MiB in practice); a part that does
  not line up with the pieces cannot be checked (the verdict says so; nothing is raised).

This module is pure bookkeeping (thread-safe); re-fetching after a mismatch is the engine's
(:func:`objio.engine.settle`).
"""

from __future__ import annotations

import bisect
import itertools
import threading
from typing import Any, NamedTuple, Sequence

from . import _crc32c
from .backend import PartInfo, StoredChecksum
from .config import MiB
from .errors import IntegrityError

GRAIN = 1 * MiB
"""Pieces that land before an object's checksum type is known are cut every GRAIN bytes."""

Piece = tuple[int, int, int]  # (start, stop, crc32c) of bytes [start, stop)


class Verdict(NamedTuple):
    """The outcome of :meth:`ReadCheck.verdict`: ``ok`` True (matches), False (does not:
    ``suspects`` are the byte ranges to read again, the whole object when a full-object
    checksum cannot tell where) or None (nothing to check against: ``detail`` says why)."""

    ok: bool | None
    suspects: list[tuple[int, int]]
    detail: str


def split(start: int, stop: int, cuts: Sequence[int] | int | None) -> list[tuple[int, int]]:
    """[start, stop) cut at the offsets in ``cuts`` (sorted), or every ``cuts`` bytes (an int),
    or not at all (None)."""
    if stop <= start:
        return []
    if cuts is None:
        return [(start, stop)]
    if isinstance(cuts, int):
        first = (start // cuts + 1) * cuts
        points = range(first, stop, cuts)
    else:
        lo = bisect.bisect_right(cuts, start)
        hi = bisect.bisect_left(cuts, stop)
        points = cuts[lo:hi]  # type: ignore[assignment]
    out = []
    pos = start
    for p in points:
        out.append((pos, p))
        pos = p
    out.append((pos, stop))
    return out


def crc_pieces(start: int, view: Any, cuts: Sequence[int] | int | None) -> list[Piece]:
    """CRC32C of bytes ``view`` (object offset ``start``), one per piece of :func:`split`."""
    mv = view if isinstance(view, memoryview) else memoryview(view)
    return [(s, e, _crc32c.crc32c(mv[s - start: e - start]))
            for s, e in split(start, start + len(mv), cuts)]


class ReadCheck:
    """The CRC32C pieces of one read of one object (see the module docs).

    Args:
        uri: the object (for messages).
        size: its size in bytes.
        stored: its stored CRC32C, if known; ``known``: whether the store was asked (True with
            ``stored`` None means the object has none: nothing to check, :attr:`needed` is
            False and callers skip the CRCs).
    """

    def __init__(self, uri: str, size: int, stored: StoredChecksum | None = None, *,
                 known: bool = False) -> None:
        self.uri = uri
        self.size = size
        self.stored = stored
        self.known = known or stored is not None
        self.part_crcs: list[int | None] | None = None
        self._bounds: list[int] | None = None  # part boundaries (composite), without 0/size
        self._parts_ok = True  # the part list fits the object
        self._starts: list[int] = []
        self._pieces: dict[int, tuple[int, int]] = {}  # start -> (stop, crc32c)
        self.covered = 0
        self.done = False  # a verdict was reached (True or False after re-fetch)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ what is known
    def learn(self, stored: StoredChecksum | None) -> None:
        """The stored checksum, once a whole-object response or a HEAD told it (None: the
        object has none)."""
        with self._lock:
            if not self.known:
                self.stored = stored
                self.known = True

    def set_parts(self, parts: Sequence[PartInfo] | None) -> None:
        """The parts of a composite object (None: unknown, the composite cannot be checked)."""
        with self._lock:
            if self.stored is None or not self.stored.composite:
                return
            if parts is None:
                self._parts_ok = False
                return
            bounds, pos = [], 0
            for p in parts:
                pos += p.size
                bounds.append(pos)
            if len(parts) != self.stored.parts or pos != self.size:
                self._parts_ok = False
                return
            self._bounds = bounds[:-1]
            self.part_crcs = [p.crc32c for p in parts]

    @property
    def needed(self) -> bool:
        """False when there is nothing to check against (the store has no CRC32C for it)."""
        return not (self.known and self.stored is None)

    @property
    def wants_parts(self) -> bool:
        """True for a composite checksum whose part boundaries are not set yet."""
        s = self.stored
        return s is not None and s.composite and self._bounds is None and self._parts_ok

    def cuts(self) -> Sequence[int] | int | None:
        """Where to cut a piece that lands now: nowhere (full-object checksum), at the part
        boundaries (composite, parts known), else every :data:`GRAIN` bytes."""
        s = self.stored
        if self.known and (s is None or not s.composite):
            return None
        if self._bounds is not None:
            return self._bounds
        return GRAIN

    def crcs(self, start: int, view: Any) -> list[Piece]:
        """The CRC32C pieces of bytes ``view`` at offset ``start`` (not recorded: see
        :meth:`add`). Releases the GIL while it runs (safe in a worker thread)."""
        return crc_pieces(start, view, self.cuts())

    # ------------------------------------------------------------------ pieces
    def add(self, pieces: Sequence[Piece]) -> bool:
        """Record pieces (a range recorded already is skipped: the first fetch counts).
        Returns whether the whole object is now covered."""
        with self._lock:
            for s, e, c in pieces:
                if e <= s or self._overlaps(s, e):
                    continue
                bisect.insort(self._starts, s)
                self._pieces[s] = (e, c)
                self.covered += e - s
            return self.covered >= self.size

    def _overlaps(self, s: int, e: int) -> bool:
        i = bisect.bisect_right(self._starts, s) - 1
        if i >= 0 and self._pieces[self._starts[i]][0] > s:
            return True
        return i + 1 < len(self._starts) and self._starts[i + 1] < e

    @property
    def complete(self) -> bool:
        return self.covered >= self.size

    def pieces_in(self, ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        """The recorded pieces inside ``ranges`` (each range is a union of pieces)."""
        with self._lock:
            out = []
            for a, b in ranges:
                i = bisect.bisect_left(self._starts, a)
                while i < len(self._starts) and self._starts[i] < b:
                    s = self._starts[i]
                    out.append((s, self._pieces[s][0]))
                    i += 1
            return out

    def replace(self, pieces: Sequence[Piece]) -> list[tuple[int, int]]:
        """Second-read CRCs of recorded pieces (same ranges); returns the ranges whose CRC
        changed (their first read differs from the second)."""
        changed = []
        with self._lock:
            for s, e, c in pieces:
                old = self._pieces.get(s)
                if old is None or old[0] != e:
                    continue
                if old[1] != c:
                    changed.append((s, e))
                    self._pieces[s] = (e, c)
        return changed

    # ------------------------------------------------------------------ the check
    def _combine(self, a: int, b: int) -> int | None:
        """CRC32C of bytes [a, b) from the pieces, None if a piece crosses a or b."""
        i = bisect.bisect_left(self._starts, a)
        if a < b and (i >= len(self._starts) or self._starts[i] != a):
            return None
        crc = 0
        pos = a
        while pos < b:
            if i >= len(self._starts) or self._starts[i] != pos:
                return None
            e, c = self._pieces[pos]
            if e > b:
                return None
            crc = _crc32c.combine(crc, c, e - pos)
            pos = e
            i += 1
        return crc

    def verdict(self) -> Verdict:
        """Compare the pieces (covering the whole object) with the stored CRC32C."""
        with self._lock:
            s = self.stored
            if s is None:
                return Verdict(None, [], "the store keeps no CRC32C for this object")
            if self.covered < self.size:
                return Verdict(None, [], "not every byte was read")
            whole = [(0, self.size)]
            if not s.composite:
                got = self._combine(0, self.size)
                assert got is not None
                if got == s.crc32c:
                    return Verdict(True, [], "")
                return Verdict(False, whole, f"the bytes give CRC32C "
                                             f"{_crc32c.to_base64(got)}, the object's is "
                                             f"{_crc32c.to_base64(s.crc32c)}")
            if self._bounds is None:
                why = ("the store did not report its parts" if not self._parts_ok
                       else "its part boundaries are not known")
                return Verdict(None, [], f"a composite checksum of {s.parts} parts: {why}")
            edges = [0, *self._bounds, self.size]
            crcs = []
            for a, b in itertools.pairwise(edges):
                c = self._combine(a, b)
                if c is None:
                    return Verdict(None, [], f"the pieces read do not line up with the parts "
                                             f"(part [{a}, {b}))")
                crcs.append(c)
            assert self.part_crcs is not None
            bad = [(a, b) for (a, b), c, want in zip(itertools.pairwise(edges), crcs,
                                                      self.part_crcs, strict=True)
                   if want is not None and c != want]
            if bad:
                return Verdict(False, bad, "the part's CRC32C differs from the stored one")
            joined = b"".join(c.to_bytes(4, "big") for c in crcs)
            got = _crc32c.crc32c(joined)
            if got == s.crc32c:
                return Verdict(True, [], "")
            return Verdict(False, whole, f"the parts give the composite CRC32C "
                                         f"{_crc32c.to_base64(got)}-{s.parts}, the object's is "
                                         f"{_crc32c.to_base64(s.crc32c)}-{s.parts}")


def patch(buf: Any, offset: int, start: int, data: Any) -> None:
    """Copy the part of ``data`` (object bytes from ``start``) that falls inside ``buf``
    (object bytes from ``offset``) into ``buf``: where a second reading replaces bytes."""
    mv = memoryview(buf)
    lo = max(start, offset)
    hi = min(start + len(data), offset + len(mv))
    if lo < hi:
        mv[lo - offset: hi - offset] = memoryview(data)[lo - start: hi - start]


def ranges_text(ranges: Sequence[tuple[int, int]]) -> str:
    """``bytes a-b`` (inclusive, like HTTP) for each range, at most 5 named."""
    named = ", ".join(f"{a}-{b - 1}" for a, b in ranges[:5])
    more = f" and {len(ranges) - 5} more ranges" if len(ranges) > 5 else ""
    return f"bytes {named}{more}"


def integrity_error(uri: str, ranges: Sequence[tuple[int, int]], why: str) -> IntegrityError:
    """The :class:`objio.IntegrityError` of a read whose bytes ``ranges`` are wrong."""
    return IntegrityError(f"GetObject {uri} failed: {ranges_text(ranges)} do not match the "
                          f"object's stored CRC32C: {why}", operation="GetObject", uri=uri,
                          code="ChecksumMismatch")
