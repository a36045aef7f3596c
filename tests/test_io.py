"""objio.io readers and objio.io.open, against the real LocalS3Server and file://.

The property tests run random sequences of read/readinto/read1/readinto1/readline/seek/tell on
each reader type and compare every result with an io.BytesIO oracle, over object sizes around
the buffer and chunk boundaries (small sizes so every boundary is crossed quickly).
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import objio
from conftest import Store
from objio.config import MiB
from objio.io import (
    CoalescingReader,
    ObjectReader,
    RangeReader,
    SequentialReader,
)
from objio.io import open as oopen

pytestmark = pytest.mark.backends("s3", "az", "gs")


@pytest.fixture
def client(store: Store) -> objio.Client:
    """The store's client: tests taking ``client`` / ``prefix`` run on s3:// and az://."""
    return store.client


CS = 1000          # sequential chunk_size in the property tests
WIN = 3000         # sequential window_size (3 chunks)
BS = 1000          # range_based buffer_size
PIECE = 700        # split size of large direct reads (normally the client's part_size)
SIZES = [0, 1, BS - 1, BS, BS + 1, 2 * CS, 3 * CS + 1, 10 * CS + 7]
BUCKET = "objio-test"


def make_data(n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, size=n, dtype=np.uint8)
    a[rng.random(n) < 0.01] = ord("\n")  # lines of ~100 bytes for readline
    return a.tobytes()


class CountingBackend:
    """Delegates to a real backend and records every GET/HEAD (start, end, into owner)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.gets: list[tuple[int | None, int | None, Any]] = []
        self.heads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def get(self, obj: Any, start: Any = None, end: Any = None, **kw: Any) -> Any:
        into = kw.get("into")
        self.gets.append((start, end, into.obj if into is not None else None))
        return await self.inner.get(obj, start, end, **kw)

    async def head(self, obj: Any) -> Any:
        self.heads += 1
        return await self.inner.head(obj)


class CountingClient(objio.Client):
    def __init__(self, base: objio.Client) -> None:
        super().__init__(base.config)
        self.counters: dict[str, CountingBackend] = {}

    def _backend(self, obj: Any) -> Any:
        b = self.counters.get(obj.scheme)
        if b is None:
            b = self.counters[obj.scheme] = CountingBackend(super()._backend(obj))
        return b

    def backend(self, scheme: str | None = None) -> CountingBackend:
        """The counters of ``scheme``'s backend (None: of the one backend used)."""
        if scheme is None:
            (scheme,) = self.counters
        return self.counters[scheme]


@pytest.fixture(scope="module")
def _objects_made() -> dict[str, dict[int, tuple[str, str, bytes]]]:
    return {}  # backend kind -> objects (made once per module and backend)


@pytest.fixture
def objects(store: Store, tmp_path_factory: pytest.TempPathFactory,
            _objects_made: dict[str, dict[int, tuple[str, str, bytes]]]
            ) -> dict[int, tuple[str, str, bytes]]:
    """size -> (store uri, local path, data) for every size in SIZES."""
    if store.kind in _objects_made:
        return _objects_made[store.kind]
    base = f"{store.root}test_io-{uuid.uuid4().hex[:8]}/"
    local = tmp_path_factory.mktemp("io")
    out = {}
    for i, n in enumerate(SIZES):
        data = make_data(n, i)
        uri = f"{base}obj-{n}"
        store.client.put_bytes(uri, data)
        p = local / f"obj-{n}"
        p.write_bytes(data)
        out[n] = (uri, str(p), data)
    _objects_made[store.kind] = out
    return out


def new_reader(kind: str, uri: str, client: objio.Client, *, sized: bool, data: bytes) -> ObjectReader:
    size = len(data) if sized else None
    r: ObjectReader
    if kind == "sequential":
        r = SequentialReader(uri, client=client, chunk_size=CS, window_size=WIN, size=size)
    elif kind == "range_based":
        r = RangeReader(uri, client=client, buffer_size=BS, size=size)
    elif kind == "range_unbuffered":
        r = RangeReader(uri, client=client, buffer_size=0, size=size)
    else:
        raise AssertionError(kind)
    r._piece = PIECE  # exercise the split of large direct reads into concurrent GETs
    return r


ops = st.lists(
    st.one_of(
        st.tuples(st.just("read"), st.integers(-1, 2 * BS + 5)),
        st.tuples(st.just("read_none"), st.just(0)),
        st.tuples(st.just("readinto"), st.integers(0, 2 * BS + 5)),
        st.tuples(st.just("readinto_np"), st.integers(0, 2 * BS + 5)),
        st.tuples(st.just("read1"), st.integers(-1, 2 * BS + 5)),
        st.tuples(st.just("readinto1"), st.integers(0, 2 * BS + 5)),
        st.tuples(st.just("readline"), st.integers(-1, 300)),
        st.tuples(st.just("seek"), st.integers(-3 * CS, 12 * CS), st.sampled_from([0, 1, 2])),
        st.tuples(st.just("tell"), st.just(0)),
    ),
    min_size=1, max_size=25,
)


def check_ops(r: ObjectReader, data: bytes, seq: list[tuple[Any, ...]]) -> None:
    oracle = io.BytesIO(data)
    for op in seq:
        name = op[0]
        if name == "read":
            assert r.read(op[1]) == oracle.read(op[1]), op
        elif name == "read_none":
            assert r.read(None) == oracle.read(None), op
        elif name == "readinto":
            a, b = bytearray(op[1]), bytearray(op[1])
            assert r.readinto(a) == oracle.readinto(b), op
            assert a == b
        elif name == "readinto_np":
            arr = np.zeros(op[1], dtype=np.uint8)
            n = r.readinto(arr)
            expect = oracle.read(op[1])
            assert n == len(expect) and arr[:n].tobytes() == expect, op
        elif name in ("read1", "readinto1"):
            pos = oracle.tell()
            if name == "read1":
                got = r.read1(op[1])
            else:
                buf = bytearray(op[1])
                got = bytes(buf[: r.readinto1(buf)])
            want_max = len(data) - pos if op[1] < 0 else min(op[1], max(0, len(data) - pos))
            assert got == data[pos: pos + len(got)], op
            assert len(got) <= max(0, want_max)
            if want_max > 0:
                assert len(got) > 0, op  # read1 returns something unless at EOF or size 0
            oracle.seek(pos + len(got))
        elif name == "readline":
            assert r.readline(op[1]) == oracle.readline(op[1]), op
        elif name == "seek":
            offset, whence = op[1], op[2]
            base = {0: 0, 1: oracle.tell(), 2: len(data)}[whence]
            if base + offset < 0:
                with pytest.raises(ValueError):
                    r.seek(offset, whence)
            else:
                assert r.seek(offset, whence) == oracle.seek(offset, whence), op
        elif name == "tell":
            pass
        assert r.tell() == oracle.tell(), op


# IO_EXAMPLES=600 runs the property tests harder (default 30 examples each).
SETTINGS = settings(max_examples=int(os.environ.get("IO_EXAMPLES", "30")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           # objects: made once per module and backend
                                           HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("kind", ["sequential", "range_based", "range_unbuffered"])
@pytest.mark.parametrize("scheme", ["s3", "file"])
@SETTINGS
@given(size=st.sampled_from(SIZES), sized=st.booleans(), seq=ops)
def test_reader_matches_bytesio(objects: dict[int, tuple[str, str, bytes]], client: objio.Client,
                                kind: str, scheme: str, size: int, sized: bool,
                                seq: list[tuple[Any, ...]]) -> None:
    uri, path, data = objects[size]
    with new_reader(kind, uri if scheme == "s3" else path, client, sized=sized, data=data) as r:
        check_ops(r, data, seq)
        if isinstance(r, SequentialReader):
            assert len(r._chunks) + len(r._free) <= WIN // CS  # never more than the window


@pytest.mark.parametrize("kind", ["sequential", "range_based", "range_unbuffered"])
def test_iteration_and_readlines(objects: dict[int, tuple[str, str, bytes]],
                                 client: objio.Client, kind: str) -> None:
    for size in SIZES:
        uri, _, data = objects[size]
        with new_reader(kind, uri, client, sized=False, data=data) as r:
            assert list(r) == io.BytesIO(data).readlines()
        with new_reader(kind, uri, client, sized=False, data=data) as r:
            assert r.readlines() == io.BytesIO(data).readlines()


# ----------------------------------------------------------------------------- coalescing
@st.composite
def range_plans(draw: Any) -> tuple[int, list[tuple[int, int]], list[tuple[str, int]]]:
    size = draw(st.sampled_from(SIZES[1:]))
    cuts = sorted(draw(st.lists(st.integers(0, size + 50), min_size=2, max_size=12)))
    ranges = [(cuts[i], cuts[i + 1]) for i in range(0, len(cuts) - 1, 2)]
    steps = draw(st.lists(st.tuples(st.sampled_from(["read", "readinto", "readview", "read1",
                                                     "back"]),
                                    st.integers(1, 400)), min_size=1, max_size=6))
    return size, ranges, steps


@pytest.mark.parametrize("scheme", ["s3", "file"])
@SETTINGS
@given(plan=range_plans(), gap=st.sampled_from([0, 1, 100, float("inf")]), sized=st.booleans())
def test_coalescing_reader_serves_declared_ranges(
        objects: dict[int, tuple[str, str, bytes]], client: objio.Client, scheme: str,
        plan: tuple[int, list[tuple[int, int]], list[tuple[str, int]]], gap: float,
        sized: bool) -> None:
    size, ranges, steps = plan
    uri, path, data = objects[size]
    cc = CountingClient(client)
    r = CoalescingReader(uri if scheme == "s3" else path, ranges, max_gap_size=gap, client=cc,
                         size=len(data) if sized else None)
    r._piece = 10 * CS  # groups here are one GET each
    groups = r.groups
    for (_, ge), (gs2, _) in zip(groups, groups[1:], strict=False):
        assert gs2 - ge > gap  # groups are split only at gaps larger than max_gap_size
        # (objects here are far below MAX_GROUP_SIZE, the other place groups split)
    for s, e in ranges:
        if s == e:
            continue
        r.seek(s)
        pos = s
        end = min(e, len(data))
        for kind, n in steps:
            if pos >= end:
                break
            n = min(n, end - pos)
            if kind == "read":
                got = r.read(n)
            elif kind == "read1":
                got = r.read1(n)
            elif kind == "readview":
                v = r.readview(n)
                assert isinstance(v, memoryview) and v.readonly
                got = bytes(v)
            elif kind == "readinto":
                b = bytearray(n)
                got = bytes(b[: r.readinto(b)])
            else:  # seek back inside the current range: allowed
                r.seek(max(s, pos - n))
                pos = r.tell()
                continue
            assert got == data[pos: pos + len(got)]
            assert len(got) > 0
            pos += len(got)
            assert r.tell() == pos
        rest = r.read(end - pos) if end > pos else b""
        assert rest == data[pos:end]
    if scheme == "s3":
        touched = {g for g, (gs, ge) in enumerate(groups)
                   if any(s < e and gs <= s < ge and s < len(data) for s, e in ranges)}
        gets = cc.backend().gets
        # one ranged GET per group read, plus at most one prefetched group
        assert len(touched) <= len(gets) <= len(touched) + 1
    r.close()


def test_coalesced_groups_stop_at_max_group_size_between_ranges() -> None:
    from objio.io.readers import MAX_GROUP_SIZE, _coalesce

    four = 4 * MiB
    touching = [(i * four, (i + 1) * four) for i in range(10)]          # 40 MiB, no gaps
    groups = _coalesce(touching, float("inf"), MAX_GROUP_SIZE)
    assert groups == [(0, 16 * MiB), (16 * MiB, 32 * MiB), (32 * MiB, 40 * MiB)]
    assert _coalesce(touching, float("inf")) == [(0, 40 * MiB)]        # no cap: one group
    assert _coalesce([(0, 40 * MiB)], 0, MAX_GROUP_SIZE) == [(0, 40 * MiB)]  # one range: whole
    overlapping = [(0, 10 * MiB), (9 * MiB, 20 * MiB), (19 * MiB, 30 * MiB)]
    assert _coalesce(overlapping, 0, MAX_GROUP_SIZE) == [(0, 30 * MiB)]  # never split a range
    # every range lies inside exactly one group
    for ranges in (touching, overlapping, [(0, 5), (7, 9 * MiB), (9 * MiB, 30 * MiB)]):
        groups = _coalesce(ranges, 1, MAX_GROUP_SIZE)
        assert all(sum(gs <= s and e <= ge for gs, ge in groups) == 1 for s, e in ranges)


@pytest.mark.parametrize("scheme", ["s3", "file"])
def test_coalescing_reader_reuses_group_buffers(objects: dict[int, tuple[str, str, bytes]],
                                                client: objio.Client, scheme: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """With GroupBuffers, a group's buffer is reused once the reader has moved past it, and
    every byte read is still the object's."""
    from objio.io import readers

    uri, path, data = objects[10 * CS + 7]
    allocated = []
    real_new = readers.new_buffer
    monkeypatch.setattr(readers, "new_buffer", lambda n: allocated.append(n) or real_new(n))
    monkeypatch.setattr(readers, "GROUP_WINDOW_SIZE", 1)   # one group ahead
    ranges = [(i * 1000, i * 1000 + 900) for i in range(10)]   # 10 groups (gaps of 100)
    pool = readers.GroupBuffers()
    r = CoalescingReader(uri if scheme == "s3" else path, ranges, max_gap_size=0, client=client,
                         size=len(data), buffers=pool)
    assert len(r.groups) == 10
    for s, e in ranges:
        r.seek(s)
        assert bytes(r.readview(e - s, writable=True)) == data[s:e]
    r.close()
    assert len(allocated) <= 3, allocated   # 10 groups in at most 3 buffers
    # without it, every group takes fresh memory
    allocated.clear()
    r = CoalescingReader(uri if scheme == "s3" else path, ranges, max_gap_size=0, client=client,
                         size=len(data))
    for s, e in ranges:
        r.seek(s)
        assert r.read(e - s) == data[s:e]
    r.close()
    assert len(allocated) == 10
    with pytest.raises(ValueError, match="buffers must be a GroupBuffers"):
        CoalescingReader(uri, ranges, client=client, buffers=bytearray(10))  # type: ignore[arg-type]


def test_coalescing_rejects_backward_and_outside_access(objects: dict[int, tuple[str, str, bytes]],
                                                        client: objio.Client) -> None:
    uri, _, data = objects[10 * CS + 7]
    r = CoalescingReader(uri, [(0, 100), (5000, 5100), (9000, 9100)], max_gap_size=10,
                         client=client)
    assert r.groups == [(0, 100), (5000, 5100), (9000, 9100)]
    assert r.read(100) == data[:100]
    with pytest.raises(ValueError, match="outside the declared byte ranges.*sequential"):
        r.read(1)  # offset 100: in a gap
    r.seek(5050)
    assert r.read(50) == data[5050:5100]
    r.seek(5000)
    assert r.read(10) == data[5000:5010]  # back within the current group: fine
    r.seek(50)
    with pytest.raises(ValueError, match="backward.*sequential"):
        r.read(10)
    r.seek(9050)
    with pytest.raises(ValueError, match="past the end of the declared ranges"):
        r.read(100)
    assert r.read(50) == data[9050:9100]
    r.seek(len(data))
    assert r.read() == b""
    with pytest.raises(ValueError, match="sorted"):
        CoalescingReader(uri, [(10, 20), (0, 5)], client=client)
    with pytest.raises(ValueError, match="start <= end"):
        CoalescingReader(uri, [(10, 5)], client=client)
    with pytest.raises(ValueError, match="max_gap_size"):
        CoalescingReader(uri, [(0, 5)], max_gap_size=-1, client=client)


def test_coalescing_groups_by_gap(objects: dict[int, tuple[str, str, bytes]],
                                  client: objio.Client) -> None:
    uri, _, _ = objects[10 * CS + 7]
    ranges = [(0, 10), (10, 20), (30, 40), (100, 110)]
    assert CoalescingReader(uri, ranges, max_gap_size=0, client=client).groups == \
        [(0, 20), (30, 40), (100, 110)]
    assert CoalescingReader(uri, ranges, max_gap_size=10, client=client).groups == \
        [(0, 40), (100, 110)]
    assert CoalescingReader(uri, ranges, max_gap_size=float("inf"), client=client).groups == \
        [(0, 110)]
    assert CoalescingReader(uri, ranges, client=client).max_gap_size == 32 * MiB


# ----------------------------------------------------------------------------- sequential
def test_sequential_small_object_is_one_request(objects: dict[int, tuple[str, str, bytes]],
                                                client: objio.Client) -> None:
    uri, _, data = objects[BS - 1]
    cc = CountingClient(client)
    with oopen(uri, client=cc) as f:
        assert f.read() == data
    assert len(cc.backend().gets) == 1 and cc.backend().heads == 0


def test_sequential_read_ahead_window_and_zero_copy(client: objio.Client, prefix: str) -> None:
    data = make_data(40 * CS + 3, 7)
    client.put_bytes(prefix + "o", data)
    cc = CountingClient(client)
    # Streaming in chunk-sized readinto calls: read-ahead keeps the window full.
    r = SequentialReader(prefix + "o", client=cc, chunk_size=CS, window_size=4 * CS)
    buf = bytearray(CS)
    out = bytearray()
    held = []
    while n := r.readinto(buf):
        out += buf[:n]
        held.append(len(r._chunks))
        assert len(r._chunks) + len(r._free) <= 4
    assert out == data
    assert max(held) == 4  # read-ahead reached the window
    starts = sorted(s for s, _, _ in cc.backend().gets)
    assert starts == [i * CS for i in range(41)]  # every byte fetched once
    r.close()
    # A large readinto on a reader whose size is known goes straight into the caller's buffer.
    cc2 = CountingClient(client)
    r = SequentialReader(prefix + "o", client=cc2, chunk_size=CS, window_size=4 * CS,
                         size=len(data))
    big = bytearray(len(data))
    assert r.readinto(big) == len(data) and big == data
    gets = cc2.backend().gets
    assert all(owner is big for _, _, owner in gets) and len(gets) == 41
    assert r.read() == b""
    r.close()


def test_sequential_random_access_policy(client: objio.Client, prefix: str) -> None:
    data = make_data(20 * CS, 8)
    client.put_bytes(prefix + "o", data)
    cc = CountingClient(client)
    r = SequentialReader(prefix + "o", client=cc, chunk_size=CS, window_size=4 * CS)

    def gets() -> list[int | None]:
        for c in list(r._chunks.values()):    # let the requests in flight reach the server
            if c.fut is not None:
                c.fut.exception()
        return [s for s, _, _ in cc.backend().gets]

    assert r.read(10) == data[:10]
    assert gets() == [0, CS, 2 * CS, 3 * CS]  # chunk 0, then read-ahead fills the window
    r.seek(15 * CS + 5)                       # jump: one chunk, no read-ahead
    assert r.read(10) == data[15 * CS + 5: 15 * CS + 15]
    assert gets()[4:] == [15 * CS]            # the farthest unread read-ahead chunk made room
    assert sorted(r._chunks) == [0, 2, 3, 15]
    r.seek(5)                                 # back to chunk 0: read before, still held
    assert r.read(10) == data[5:15]
    assert len(gets()) == 5
    assert r.read(CS) == data[15: CS + 15]    # chunk 1 again, read-ahead grows to 1 (chunk 2)
    assert gets()[5:] == [CS]
    r.seek(15 * CS)
    assert r.read(3) == data[15 * CS: 15 * CS + 3]
    assert gets()[6:] == [16 * CS]            # chunk 15 still held; read-ahead of 16 only
    r.close()
    assert r.closed
    with pytest.raises(ValueError, match="closed"):
        r.read(1)


def test_close_cancels_read_ahead(client: objio.Client, prefix: str) -> None:
    data = make_data(10 * MiB, 9)
    client.put_bytes(prefix + "o", data)
    r = SequentialReader(prefix + "o", client=client, chunk_size=MiB, window_size=8 * MiB)
    assert r.read(10) == data[:10]
    futs = [c.fut for c in r._chunks.values() if c.fut is not None]
    r.close()
    assert not r._chunks and all(f.done() for f in futs)


# ----------------------------------------------------------------------------- range_based
def test_range_based_buffer_semantics(objects: dict[int, tuple[str, str, bytes]],
                                      client: objio.Client) -> None:
    uri, _, data = objects[10 * CS + 7]
    cc = CountingClient(client)
    r = RangeReader(uri, client=cc, buffer_size=BS)
    for i in range(10):                       # small sequential reads: one buffer fill
        assert r.read(100) == data[i * 100: (i + 1) * 100]
    gets = cc.backend().gets
    assert [(s, e) for s, e, _ in gets] == [(0, BS - 1)] and cc.backend().heads == 0
    r.seek(900)
    assert r.read(500) == data[900:1400]      # forward overlap: 100 buffered + refill at 1000
    assert [(s, e) for s, e, _ in gets][1:] == [(1000, 1999)]
    big = bytearray(3 * BS)
    r.seek(4000)
    assert r.readinto(big) == 3 * BS and big == data[4000:7000]   # >= buffer_size: bypass
    assert gets[-1][2] is big                 # straight into the caller's buffer
    r.seek(len(data) - 5)
    assert r.read(100) == data[-5:]
    assert r.read(100) == b""
    r.close()


# ----------------------------------------------------------------------------- open()
def test_open_modes_and_text(client: objio.Client, prefix: str, tmp_path: Path) -> None:
    for target in (prefix + "t.txt", str(tmp_path / "t.txt"), "file://" + str(tmp_path / "u.txt")):
        with oopen(target, "w", client=client, newline="\n") as f:
            f.write("héllo\nwörld\n")
        with oopen(target, "r", client=client) as f:
            assert f.read() == "héllo\nwörld\n"
        with oopen(target, "rb", client=client, reader="range_based") as f:
            assert f.read() == "héllo\nwörld\n".encode()
        with oopen(target, client=client) as f:
            assert isinstance(f, SequentialReader) and f.readline() == "héllo\n".encode()
        with oopen(target, "r", client=client, encoding="latin-1") as f:
            assert f.readline() == "héllo\n".encode().decode("latin-1")
        with oopen(target, "rt", client=client) as f:
            assert list(f) == ["héllo\n", "wörld\n"]
    with oopen(prefix + "t.txt", client=client, ranges=[(0, 3)]) as f:
        assert isinstance(f, CoalescingReader) and f.read(3) == b"h\xc3\xa9"
    with pytest.raises(FileExistsError):
        with oopen(prefix + "t.txt", "x", client=client) as f:
            f.write("again")
    with oopen(prefix + "t.txt", client=client) as f:
        assert f.read() == "héllo\nwörld\n".encode()


@pytest.mark.parametrize("kwargs,match", [
    (dict(mode="a"), "mode must be one of"),
    (dict(mode="rb+"), "mode must be one of"),
    (dict(mode="rbt"), "mode must be one of"),
    (dict(mode="rb", encoding="utf-8"), "binary mode"),
    (dict(reader="fancy"), "reader must be one of"),
    (dict(reader="sequential", buffer_size=10), "buffer_size applies to reader='range_based'"),
    (dict(reader="range_based", window_size=10), "window_size applies to reader='sequential'"),
    (dict(reader="coalescing"), "needs ranges"),
    (dict(reader="range_based", buffer_size=-1), "buffer_size must be"),
    (dict(chunk_size=0), "chunk_size must be"),
    (dict(chunk_size=10, window_size=5), "window_size"),
    (dict(mode="wb", buffer_size=1), "applies to the read modes"),
    (dict(mode="rb", part_size=5 * MiB), "applies to the write modes"),
    (dict(mode="wb", part_size=MiB), "part_size must be"),
    (dict(mode="wb", part_size=0), "part_size must be"),
    (dict(mode="wb", max_parts_in_flight=0), "max_parts_in_flight"),
])
def test_open_rejects_bad_arguments(store: Store, client: objio.Client, prefix: str,
                                    kwargs: dict[str, Any], match: str) -> None:
    if store.kind in ("az", "gs") and kwargs.get("part_size") == MiB:
        # Azure blocks, GCS composed parts: no minimum size
        oopen(prefix + "x", client=client, **kwargs).close()
        assert client.stat(prefix + "x").size == 0
        return
    with pytest.raises(ValueError, match=match):
        oopen(prefix + "x", client=client, **kwargs)


def test_open_errors(client: objio.Client, prefix: str) -> None:
    for reader in ("sequential", "range_based"):
        with oopen(prefix + "missing", client=client, reader=reader) as f:
            with pytest.raises(FileNotFoundError):
                f.read(1)
    with oopen(prefix + "missing", client=client, ranges=[(0, 5)]) as f:
        with pytest.raises(FileNotFoundError):
            f.read(1)
    with pytest.raises(ValueError, match="object key"):
        oopen(f"s3://{BUCKET}", client=client)
    with pytest.raises(ValueError, match="negative seek"):
        oopen(prefix + "missing", client=client).seek(-1)
    with pytest.raises(ValueError, match="whence"):
        oopen(prefix + "missing", client=client).seek(0, 3)
    client.put_bytes(prefix + "ro", b"abc")
    with oopen(prefix + "ro", client=client) as f:
        with pytest.raises(TypeError, match="writable"):
            f.readinto(b"xyz")
        with pytest.raises(io.UnsupportedOperation):
            f.write(b"x")
        assert f.readable() and f.seekable() and not f.writable()
        assert f.size == 3 and f.name == prefix + "ro" and f.bucket == BUCKET


def test_object_changed_while_reading(client: objio.Client, prefix: str) -> None:
    client.put_bytes(prefix + "o", make_data(4000, 1))
    r = RangeReader(prefix + "o", client=client, buffer_size=0)
    assert len(r.read(10)) == 10              # learns size and ETag
    client.put_bytes(prefix + "o", make_data(4000, 2))
    with pytest.raises(objio.ObjectStoreError, match="changed while it was read") as e:
        r.read(10)
    assert e.value.code == "ObjectChanged"


def test_reader_in_forked_child(client: objio.Client, prefix: str) -> None:
    import multiprocessing as mp

    data = make_data(3 * CS, 3)
    client.put_bytes(prefix + "o", data)
    with oopen(prefix + "o", client=client, chunk_size=CS, window_size=2 * CS) as f:
        assert f.read(10) == data[:10]
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_read, args=(client.config, prefix + "o", q))
    p.start()
    got = q.get(timeout=60)
    p.join(60)
    assert got == data


def _child_read(config: objio.ClientConfig, uri: str, q: Any) -> None:
    with oopen(uri, client=objio.Client(config), chunk_size=CS, window_size=2 * CS) as f:
        q.put(f.read())


@pytest.fixture
def big_object(client: objio.Client, prefix: str) -> Iterator[tuple[str, bytes]]:
    data = make_data(21 * MiB + 17, 11)
    client.put_bytes(prefix + "big", data)
    yield prefix + "big", data


@pytest.mark.parametrize("reader", ["sequential", "range_based"])
def test_large_object_default_settings(client: objio.Client, big_object: tuple[str, bytes],
                                       reader: str) -> None:
    uri, data = big_object
    with oopen(uri, client=client, reader=reader) as f:
        out = bytearray()
        buf = bytearray(8 * MiB)
        while n := f.readinto(buf):
            out += buf[:n]
        assert out == data
        f.seek(5 * MiB + 3)
        assert f.read(3 * MiB) == data[5 * MiB + 3: 8 * MiB + 3]
        f.seek(-100, 2)
        assert f.read() == data[-100:]


def test_bench_io_smoke(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from objio.bench import stream as bench_io

    syncs: list[int] = []  # a server on this machine: dirty pages written back before each run
    monkeypatch.setattr(bench_io.os, "sync", lambda: syncs.append(1))
    lines: list[str] = []
    report = bench_io.run(3 * MiB + 5, 1, MiB, server=s3_server, libs=["objio"],
                          log=lines.append)
    for op in ("write", "read"):
        row = report["summary"][op]["objio"]
        assert row["runs"] == 1 and row["mib_s"] > 0 and row["cpu_s"] >= 0
    assert len(syncs) == 2  # one write run, one read run
    out = io.StringIO()
    bench_io.print_report(report, out)
    assert "objio" in out.getvalue() and any("verified: True" in x for x in lines)
