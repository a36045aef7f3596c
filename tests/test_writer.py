"""objio.io.ObjectWriter against the real LocalS3Server (and file://): round trips across the
single-PUT/multipart boundary, aborts leave nothing behind, memory bounds, buffer types."""

from __future__ import annotations

import gc
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import objio
from conftest import Store
from objio.config import MAX_PART_SIZE, MAX_PARTS, MiB
from objio.errors import ObjectStoreError
from objio.io import ObjectWriter, part_size_for
from objio.io import open as oopen

pytestmark = pytest.mark.backends("s3", "az", "gs")


@pytest.fixture
def client(store: Store) -> objio.Client:
    """The store's client: tests taking ``client`` / ``prefix`` run on s3:// and az://."""
    return store.client


PS = 5 * MiB  # the S3 minimum part size: multipart objects stay small
BUCKET = "objio-test"


def payload(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size=n, dtype=np.uint8).tobytes()


class SpyBackend:
    """Delegates to the real backend; records multipart calls; can fail part ``fail_part``."""

    def __init__(self, inner: Any, fail_part: int | None = None) -> None:
        self.inner = inner
        self.fail_part = fail_part
        self.calls: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.part_data: dict[int, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def put(self, obj: Any, data: Any, **kw: Any) -> str:
        self.calls.append("put")
        return await self.inner.put(obj, data, **kw)

    async def create_multipart(self, obj: Any, **kw: Any) -> str:
        self.calls.append("create")
        return await self.inner.create_multipart(obj, **kw)

    async def upload_part(self, obj: Any, upload_id: str, n: int, data: Any, **kw: Any) -> str:
        self.calls.append(f"part{n}")
        self.part_data[n] = data
        if n == self.fail_part:
            raise ObjectStoreError("injected failure", operation="UploadPart", uri=str(obj),
                                   code="InjectedFailure")
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self.inner.upload_part(obj, upload_id, n, data, **kw)
        finally:
            self.in_flight -= 1

    async def complete_multipart(self, obj: Any, upload_id: str, parts: Any, **kw: Any) -> str:
        self.calls.append("complete")
        return await self.inner.complete_multipart(obj, upload_id, parts, **kw)

    async def abort_multipart(self, obj: Any, upload_id: str) -> None:
        self.calls.append("abort")
        await self.inner.abort_multipart(obj, upload_id)


class SpyClient(objio.Client):
    def __init__(self, base: objio.Client, fail_part: int | None = None) -> None:
        super().__init__(base.config)
        self.fail_part = fail_part
        self.spies: dict[str, SpyBackend] = {}

    def _backend(self, obj: Any) -> Any:
        if obj.scheme not in self.spies:
            self.spies[obj.scheme] = SpyBackend(super()._backend(obj), self.fail_part)
        return self.spies[obj.scheme]

    @property
    def spy(self) -> SpyBackend:
        return next(iter(self.spies.values()))


def no_uploads_left(client: objio.Client, prefix: str) -> bool:
    return client.list_multipart_uploads(prefix) == []


class SlowFirstPart(SpyBackend):
    """Part 1's upload finishes only once part ``release_at`` has started (or after 10 s)."""

    def __init__(self, inner: Any, release_at: int) -> None:
        super().__init__(inner)
        self.release_at = release_at
        self.started: list[int] = []
        self.released = False
        self._event: Any = None

    async def upload_part(self, obj: Any, upload_id: str, n: int, data: Any, **kw: Any) -> str:
        import asyncio

        if self._event is None:
            self._event = asyncio.Event()
        self.started.append(n)
        if n >= self.release_at:
            self._event.set()
        if n == 1:
            try:
                await asyncio.wait_for(self._event.wait(), 10)
                self.released = True
            except asyncio.TimeoutError:
                pass
        return await self.inner.upload_part(obj, upload_id, n, data, **kw)


def test_a_slow_part_does_not_hold_back_the_others(client: objio.Client, prefix: str) -> None:
    """With 2 parts in flight and part 1 stuck, parts 2, 3, 4... still go: the writer waits
    for whichever part finishes, not for the oldest (that left the server idle behind one
    slow part: S3Checkpoint saves were ~15% slower than s3torchconnector's)."""
    spy = SpyClient(client)
    slow = SlowFirstPart(objio.Client._backend(spy, objio.parse_uri(prefix + "o")), 4)
    spy.spies[objio.parse_uri(prefix).scheme] = slow
    data = payload(6 * PS, 7)
    with oopen(prefix + "o", "wb", client=spy, part_size=PS, max_parts_in_flight=2) as f:
        for off in range(0, len(data), PS // 2):
            f.write(data[off: off + PS // 2])
    assert slow.released, f"part 4 never started while part 1 was in flight: {slow.started}"
    assert bytes(client.get(prefix + "o")) == data
    assert client.list_multipart_uploads(prefix) == []


@pytest.mark.parametrize("size", [0, 1, PS - 1, PS, PS + 1, 2 * PS, 3 * PS + 12345])
def test_round_trip_across_the_multipart_boundary(client: objio.Client, prefix: str,
                                                  size: int) -> None:
    data = payload(size, size)
    spy = SpyClient(client)
    rng = np.random.default_rng(size)
    with oopen(prefix + "o", "wb", client=spy, part_size=PS, max_parts_in_flight=2) as f:
        off = 0
        while off < size:  # uneven write sizes, some larger than a part
            n = int(rng.choice([1, 1000, PS // 3, PS, 2 * PS + 7]))
            assert f.write(data[off: off + n]) == len(data[off: off + n])
            off += n
            assert f.tell() == min(off, size)
    assert bytes(client.get(prefix + "o")) == data
    calls = spy.spy.calls
    if size <= PS:
        assert calls == ["put"]                          # one PutObject on close
    else:
        parts = -(-size // PS)
        assert calls[0] == "create" and calls[-1] == "complete"
        assert sorted(c for c in calls if c.startswith("part")) == \
            sorted(f"part{i}" for i in range(1, parts + 1))
        assert spy.spy.max_in_flight <= 2
    assert no_uploads_left(client, prefix)


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "numpy", "numpy2d",
                                  "memoryview_of_bytes"])
def test_accepts_buffer_types(client: objio.Client, prefix: str, kind: str) -> None:
    raw = payload(2 * PS + 99, 3)
    arr = np.frombuffer(raw, dtype=np.uint8)
    obj: Any = {
        "bytes": raw, "bytearray": bytearray(raw), "memoryview": memoryview(bytearray(raw)),
        "numpy": arr.copy(), "numpy2d": arr[: 2 * PS].reshape(2, PS).copy(),
        "memoryview_of_bytes": memoryview(raw),
    }[kind]
    expect = memoryview(obj).tobytes()
    with oopen(prefix + kind, "wb", client=client, part_size=PS) as f:
        assert f.write(obj) == len(expect)
        assert f.write(np.arange(3, dtype=np.float32)) == 12   # any C-contiguous buffer
    assert bytes(client.get(prefix + kind)) == expect + np.arange(3, dtype=np.float32).tobytes()


def test_rejects_bad_input(store: Store, client: objio.Client, prefix: str) -> None:
    with oopen(prefix + "x", "wb", client=client) as f:
        with pytest.raises(TypeError, match="bytes-like"):
            f.write("a str")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="C-contiguous"):
            f.write(np.arange(10, dtype=np.uint8)[::2])
        f.write(b"ok")  # the writer is still usable after a bad argument
    assert bytes(client.get(prefix + "x")) == b"ok"
    if store.kind == "s3":  # (Azure blocks have no minimum size)
        with pytest.raises(ValueError, match="part_size"):
            ObjectWriter(prefix + "y", client=client, part_size=MiB)  # below S3's 5 MiB minimum
    with pytest.raises(ValueError, match="object key"):
        ObjectWriter(f"s3://{BUCKET}", client=client)


def test_bytes_of_exactly_a_part_are_sent_without_a_copy(client: objio.Client,
                                                          prefix: str) -> None:
    # bytes are immutable: a write of one whole part (the common chunk size) goes out as is
    data = payload(3 * PS + 7, 9)
    w = ObjectWriter(prefix + "o", client=client, part_size=PS, max_parts_in_flight=2)
    for off in range(0, len(data), PS):
        w.write(data[off: off + PS])
    w.close()
    assert w._buffers_allocated == 1          # only the 7-byte tail used a part buffer
    assert bytes(client.get(prefix + "o")) == data


def test_mutable_buffer_may_be_reused_after_write(client: objio.Client, prefix: str) -> None:
    # A mutable buffer covering >= max_parts_in_flight parts is sent without a copy, and
    # write() returns only after those parts are uploaded: changing it afterwards is safe.
    raw = payload(4 * PS + 5, 4)
    buf = bytearray(raw)
    w = ObjectWriter(prefix + "o", client=client, part_size=PS, max_parts_in_flight=2)
    w.write(buf)
    assert w._buffers_allocated == 1          # only the tail went through a part buffer
    buf[:] = b"\0" * len(buf)
    w.close()
    assert bytes(client.get(prefix + "o")) == raw


def test_memory_bound_parts_in_flight(client: objio.Client, prefix: str) -> None:
    spy = SpyClient(client)
    chunk = bytearray(payload(MiB, 5))
    with oopen(prefix + "o", "wb", client=spy, part_size=PS, max_parts_in_flight=3) as f:
        for _ in range(40):                   # 40 MiB in 1 MiB writes: 8 parts
            f.write(chunk)
            assert len(f._inflight) <= 3
        assert f._buffers_allocated <= 3 + 1  # (parts in flight + 1) part buffers, ever
    assert spy.spy.max_in_flight <= 3
    assert client.stat(prefix + "o").size == 40 * MiB


@pytest.mark.parametrize("size", [100, 3 * PS])
def test_exception_in_with_aborts(client: objio.Client, prefix: str, size: int) -> None:
    spy = SpyClient(client)
    with pytest.raises(RuntimeError, match="boom"):
        with oopen(prefix + "new", "wb", client=spy, part_size=PS) as f:
            f.write(payload(size))
            raise RuntimeError("boom")
    assert not client.exists(prefix + "new")
    assert "complete" not in spy.spy.calls and "put" not in spy.spy.calls
    if size > PS:
        assert spy.spy.calls[-1] == "abort"
    # An existing object stays unchanged.
    client.put_bytes(prefix + "old", b"previous")
    with pytest.raises(RuntimeError):
        with oopen(prefix + "old", "wb", client=client, part_size=PS) as f:
            f.write(payload(size))
            raise RuntimeError("boom")
    assert bytes(client.get(prefix + "old")) == b"previous"
    assert no_uploads_left(client, prefix)


def test_explicit_abort_and_closed_state(client: objio.Client, prefix: str) -> None:
    w = ObjectWriter(prefix + "o", client=client, part_size=PS)
    w.write(payload(2 * PS + 1))
    assert w._upload_id is not None           # a multipart upload is open
    w.abort()
    assert w.closed
    w.abort()                                 # idempotent
    w.close()                                 # closed already: no-op, sends nothing
    with pytest.raises(ValueError, match="closed"):
        w.write(b"x")
    assert not client.exists(prefix + "o")
    assert no_uploads_left(client, prefix)


@pytest.mark.parametrize("fail_part", [1, 2, 4])
def test_failed_part_aborts_and_raises(client: objio.Client, prefix: str, fail_part: int) -> None:
    spy = SpyClient(client, fail_part=fail_part)
    client.put_bytes(prefix + "o", b"previous")
    w = ObjectWriter(prefix + "o", client=spy, part_size=PS, max_parts_in_flight=2)
    with pytest.raises(ObjectStoreError, match="injected failure"):
        for _ in range(5):
            w.write(payload(PS))
        w.close()
    assert w.closed
    assert spy.spy.calls[-1] == "abort" and "complete" not in spy.spy.calls
    assert bytes(client.get(prefix + "o")) == b"previous"
    assert no_uploads_left(client, prefix)


def test_exist_ok_false(client: objio.Client, prefix: str) -> None:
    for size in (10, 2 * PS):
        key = prefix + f"o{size}"
        with oopen(key, "wb", client=client, part_size=PS, exist_ok=False) as f:
            f.write(payload(size, 1))
        with pytest.raises(FileExistsError):
            with oopen(key, "xb", client=client, part_size=PS) as f:
                f.write(payload(size, 2))
        assert bytes(client.get(key)) == payload(size, 1)
    assert no_uploads_left(client, prefix)


def test_unclosed_writer_is_aborted_when_collected(client: objio.Client, prefix: str) -> None:
    w = ObjectWriter(prefix + "o", client=client, part_size=PS)
    w.write(payload(2 * PS + 1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del w
        gc.collect()
    assert any(issubclass(x.category, ResourceWarning) for x in caught)

    # The abort runs on the engine loop: let it end (on gs:// a listing made before the
    # parts land would show nothing).
    async def aborts_done() -> None:
        import asyncio

        aborts = [t for t in asyncio.all_tasks()
                  if getattr(t.get_coro(), "__qualname__", "") == "_drain_and_abort"]
        await asyncio.wait_for(asyncio.gather(*aborts, return_exceptions=True), 30)

    objio.engine.run(aborts_done())
    for _ in range(100):
        if no_uploads_left(client, prefix):
            break
        import time

        time.sleep(0.05)
    assert no_uploads_left(client, prefix)
    assert not client.exists(prefix + "o")


def test_text_mode_writer_aborts_on_exception(client: objio.Client, prefix: str) -> None:
    with pytest.raises(KeyError):
        with oopen(prefix + "t", "w", client=client) as f:
            f.write("partial\n")
            raise KeyError("x")
    assert not client.exists(prefix + "t")
    with oopen(prefix + "t", "w", client=client, encoding="utf-16-le", newline="\r\n") as f:
        f.write("a\nb\n")
    assert bytes(client.get(prefix + "t")) == "a\r\nb\r\n".encode("utf-16-le")


def test_file_backend(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "o.bin"
    data = payload(3000, 9)
    with oopen(target, "wb", part_size=1000, max_parts_in_flight=2) as f:
        for i in range(0, len(data), 700):
            f.write(data[i: i + 700])
    assert target.read_bytes() == data
    with pytest.raises(RuntimeError):
        with oopen(tmp_path / "sub" / "aborted.bin", "wb", part_size=1000) as f:
            f.write(data)
            raise RuntimeError
    assert not (tmp_path / "sub" / "aborted.bin").exists()
    assert sorted(os.listdir(tmp_path / "sub")) == ["o.bin"]   # no temporary files left
    with pytest.raises(FileExistsError):
        with oopen(target, "xb") as f:
            f.write(b"x")
    assert target.read_bytes() == data


def test_file_abort_waits_for_the_part_writes_in_flight(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Aborting cancels the part uploads; a part being written by a thread is finished before
    the parts are removed, so no temporary file or upload directory is left behind."""
    import time

    import objio.local as local

    real = local._write_atomic
    started: list[str] = []
    finished: list[str] = []

    def slow(path: str, *args: Any) -> Any:
        if f"{os.sep}.objio-uploads{os.sep}" not in path:
            return real(path, *args)
        started.append(path)
        time.sleep(0.3)
        try:
            return real(path, *args)
        finally:
            finished.append(path)

    monkeypatch.setattr(local, "_write_atomic", slow)
    with pytest.raises(RuntimeError):
        with oopen(tmp_path / "a.bin", "wb", part_size=1000, max_parts_in_flight=2) as f:
            f.write(payload(2500, 1))
            raise RuntimeError
    assert started and sorted(finished) == sorted(started)
    assert os.listdir(tmp_path) == []


def test_part_size_grows_to_fit_10000_parts() -> None:
    base = 5 * MiB
    sizes = [part_size_for(n, base) for n in range(1, MAX_PARTS + 1)]
    assert sizes[0] == base and sizes[799] == base and sizes[800] == 2 * base
    assert all(a <= b for a, b in zip(sizes, sizes[1:], strict=False))
    assert max(sizes) <= MAX_PART_SIZE
    assert sum(sizes) >= 5 * 1024**4          # 10,000 parts hold more than S3's 5 TiB maximum
    assert part_size_for(1, 8 * MiB) == 8 * MiB


def test_seed_interface(client: objio.Client, prefix: str) -> None:
    w = ObjectWriter(prefix + "o", client=client)
    assert w.writable() and not w.readable() and not w.seekable()
    w.flush()
    assert w.write(memoryview(b"abc")) == 3 and w.tell() == 3
    assert not w.closed
    w.close()
    assert w.closed
    assert bytes(client.get(prefix + "o")) == b"abc"


# ----------------------------------------------------------------------- write_zero_copy
def _within(piece: memoryview, source: np.ndarray) -> bool:
    """Whether ``piece`` is memory of ``source`` itself (not a copy)."""
    from objio._buffers import buffer_address

    start = source.__array_interface__["data"][0]
    a = buffer_address(piece)
    return start <= a and a + piece.nbytes <= start + source.nbytes


def test_write_zero_copy_sends_the_callers_memory(client: objio.Client, prefix: str) -> None:
    """Borrowed data goes out as pieces of the parts it falls in (a part may mix copied small
    writes and borrowed views: a scatter-gather body), with the right CRC32C per part (the
    server checks it) and for the whole object."""
    from objio import _crc32c
    from objio._buffers import Gather
    from objio.io import ZERO_COPY_MIN

    spy = SpyClient(objio.Client(client.config.replace(checksums=True)))
    big = np.frombuffer(payload(2 * PS + PS // 2, 1), dtype=np.uint8)
    mid = np.frombuffer(payload(ZERO_COPY_MIN + 3, 2), dtype=np.uint8)
    small = np.frombuffer(payload(ZERO_COPY_MIN - 1, 3), dtype=np.uint8)   # copied
    w = ObjectWriter(prefix + "o", client=spy, part_size=PS, max_parts_in_flight=2)
    expected = bytearray()
    for op, data in [("w", b"head" * 25), ("z", big), ("w", b"x" * 1000), ("z", mid),
                     ("z", small), ("w", payload(PS, 4)), ("z", big), ("w", b"tail")]:
        n = w.write_zero_copy(data) if op == "z" else w.write(data)
        assert n == len(data)
        expected += bytes(data)
    w.close()
    assert bytes(client.get(prefix + "o")) == expected
    assert w.crc32c == _crc32c.crc32c(bytes(expected))
    parts = spy.spy.part_data
    assert len(parts) == -(-len(expected) // PS)
    gathers = [d for d in parts.values() if isinstance(d, Gather)]
    assert gathers, "no part mixed copied and borrowed bytes"
    borrowed = [p for d in parts.values()
                for p in (d.pieces if isinstance(d, Gather) else (d,))
                if _within(p, big) or _within(p, mid)]
    assert sum(p.nbytes for p in borrowed) == 2 * big.nbytes + mid.nbytes  # none copied
    assert not any(_within(p, small) for d in gathers for p in d.pieces)
    assert no_uploads_left(client, prefix)


def test_write_zero_copy_keeps_its_owner_until_close(client: objio.Client, prefix: str) -> None:
    import weakref

    class Owner:
        pass

    owner = Owner()
    alive = weakref.ref(owner)
    data = payload(PS + PS // 2, 5)
    w = ObjectWriter(prefix + "o", client=client, part_size=PS, max_parts_in_flight=2)
    w.write_zero_copy(data, keep=owner)
    del owner
    gc.collect()
    assert alive() is not None          # the tail piece is still to be sent
    w.close()
    gc.collect()
    assert alive() is None
    assert bytes(client.get(prefix + "o")) == data


@pytest.mark.backends("s3")  # SigV4 only
def test_signed_payload_hash_covers_every_piece(client: objio.Client, prefix: str) -> None:
    """sign_payload: the SHA-256 signed for a part made of pieces is that of all its bytes
    (SeaweedFS does not recompute it, so this checks the signed header itself), and the
    upload goes through."""
    import hashlib

    from objio._buffers import Gather

    signed = objio.Client(client.config.replace(sign_payload=True))
    obj = objio.parse_uri(prefix + "sig")
    pieces = [memoryview(b"12345"), memoryview(payload(PS, 10)), memoryview(b"tail")]
    _, _, hdrs = signed._backend(obj)._prepare("PUT", obj.bucket, obj.key, (), {}, Gather(pieces))
    assert hdrs["x-amz-content-sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest()
    data = payload(PS + PS // 2, 10)
    with ObjectWriter(prefix + "sig", client=signed, part_size=PS, max_parts_in_flight=2) as w:
        w.write(b"12345")
        w.write_zero_copy(data)
    assert bytes(client.get(prefix + "sig")) == b"12345" + data


def test_write_zero_copy_failed_part_aborts_and_releases(client: objio.Client,
                                                         prefix: str) -> None:
    import weakref

    class Owner:
        pass

    owner = Owner()
    alive = weakref.ref(owner)
    spy = SpyClient(client, fail_part=2)
    client.put_bytes(prefix + "o", b"previous")
    w = ObjectWriter(prefix + "o", client=spy, part_size=PS, max_parts_in_flight=2)
    with pytest.raises(ObjectStoreError, match="injected failure"):
        w.write(b"head")
        w.write_zero_copy(payload(3 * PS, 9), keep=owner)
        w.close()
    del owner
    spy.spy.part_data.clear()
    gc.collect()
    assert w.closed and alive() is None
    assert spy.spy.calls[-1] == "abort" and "complete" not in spy.spy.calls
    assert bytes(client.get(prefix + "o")) == b"previous"
    assert no_uploads_left(client, prefix)


def test_write_zero_copy_small_object_and_file_backend(client: objio.Client, prefix: str,
                                                        tmp_path: Path) -> None:
    data = payload(PS - 10, 6)         # less than a part: one PutObject of the joined bytes
    with ObjectWriter(prefix + "s", client=client, part_size=PS) as w:
        w.write(b"ab")
        w.write_zero_copy(data)
        w.write(b"cd")
    assert bytes(client.get(prefix + "s")) == b"ab" + data + b"cd"
    target = tmp_path / "f.bin"
    blob = payload(700_000, 7)
    with ObjectWriter(target, part_size=300_000, max_parts_in_flight=2) as w:
        w.write(b"123")
        w.write_zero_copy(blob)
        w.write(b"456")
    assert target.read_bytes() == b"123" + blob + b"456"


def test_write_zero_copy_part_is_retried_after_a_reset(proxy: Any, s3_server: Any,
                                                       client: objio.Client, prefix: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection reset during a part that has borrowed pieces: the part is sent again
    from the same memory (still valid: write_zero_copy's caller keeps it until close)."""
    from faultproxy import Reset
    from objio import engine

    monkeypatch.setattr(engine, "_BACKOFF_BASE_S", 0.001)
    proxy.clear()
    pclient = objio.Client(s3_server.config.replace(endpoint_url=proxy.endpoint_url),
                           part_size=PS, max_attempts=3)

    def part(n: int) -> Any:
        return lambda r: bool(r.method == "PUT" and r.query.get("partNumber") == str(n))

    data = payload(2 * PS + 12345, 8)
    proxy.add(part(1), Reset(), times=1)   # part 1: 10 copied bytes + a borrowed piece
    proxy.add(part(2), Reset(), times=1)   # part 2: a whole part of the borrowed data
    try:
        with ObjectWriter(prefix + "r", client=pclient, part_size=PS, max_parts_in_flight=2) as w:
            w.write(b"0123456789")
            w.write_zero_copy(data)
        assert [sum(1 for r in proxy.log if part(n)(r)) for n in (1, 2, 3)] == [2, 2, 1]
    finally:
        proxy.clear()
    assert bytes(client.get(prefix + "r")) == b"0123456789" + data
    assert no_uploads_left(client, prefix)
