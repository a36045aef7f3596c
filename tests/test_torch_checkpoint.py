"""objio.torch.S3Checkpoint (torch.save / torch.load on S3 and file://), the writer's CRC32C
checksums, and objio._crc32c."""

from __future__ import annotations

import inspect
import logging
import os
from pathlib import Path
from typing import Any

import google_crc32c
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import objio  # noqa: E402
from conftest import Store  # noqa: E402
from objio import _crc32c  # noqa: E402
from objio.io import ObjectWriter  # noqa: E402
from objio.torch import S3Checkpoint, SequentialS3Reader, VerifyingS3Reader  # noqa: E402

pytestmark = pytest.mark.backends("s3", "az", "gs")


@pytest.fixture
def client(store: Store) -> objio.Client:
    """The store's client: tests taking ``client`` / ``prefix`` run on s3:// and az://."""
    return store.client


MiB = 1 << 20


def state_dict(seed: int = 0, mib: float = 3) -> dict[str, Any]:
    """Mixed fp32/bf16 tensors of mixed sizes (about ``mib`` MiB)."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, Any] = {}
    n, i = 0, 0
    while n < mib * MiB:
        numel = (4096, 65536, 300_000, 17)[i % 4]
        t = torch.randn(numel, generator=g)
        t = t.to(torch.bfloat16) if i % 2 else t
        sd[f"layer{i}.weight"] = t
        n += t.nbytes
        i += 1
    sd["epoch"] = 3
    return sd


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(
        torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a)


# ------------------------------------------------------------------------------ CRC32C
@pytest.mark.parametrize("n", [0, 1, 4095, 4096, 100_003])
def test_crc32c_of_any_buffer_without_copy(n: int) -> None:
    data = os.urandom(n)
    want = google_crc32c.value(data)
    for buf in (data, bytearray(data), memoryview(data), np.frombuffer(data, np.uint8)):
        assert _crc32c.crc32c(buf) == want
    if n >= 8:
        f32 = np.frombuffer(data[: n // 4 * 4], np.float32)
        assert _crc32c.crc32c(f32) == google_crc32c.value(data[: n // 4 * 4])
        assert _crc32c.crc32c(memoryview(data)[3:], _crc32c.crc32c(data[:3])) == want
    assert _crc32c.zero_copy  # google-crc32c's C library is reachable here


def test_crc32c_combine_and_base64() -> None:
    a, b = os.urandom(12345), os.urandom(8 * MiB + 3)
    ca, cb = google_crc32c.value(a), google_crc32c.value(b)
    assert _crc32c.combine(ca, cb, len(b)) == google_crc32c.value(a + b)
    assert _crc32c.combine(ca, google_crc32c.value(b""), 0) == ca
    assert _crc32c.from_base64(_crc32c.to_base64(ca)) == ca
    assert _crc32c.from_base64("not base64!") is None and _crc32c.from_base64("AAAA") is None


# ------------------------------------------------------------------------------ the writer's checksum
@pytest.mark.backends("s3", "gs")  # Azure keeps no CRC32C (Content-MD5 instead: test_azure.py)
@pytest.mark.parametrize("size", [1000, 13 * MiB + 7])
def test_writer_records_the_crc32c_the_store_checked(client: objio.Client, prefix: str,
                                                     size: int) -> None:
    data = os.urandom(size)
    with ObjectWriter(prefix + "o", client=client, part_size=5 * MiB, checksum="crc32c") as w:
        for i in range(0, size, 1 << 20):
            w.write(data[i: i + (1 << 20)])
    assert w.crc32c == google_crc32c.value(data)
    obj = objio.parse_uri(prefix + "o")
    info = objio.engine.run(client._backend(obj).head(obj, checksum=True))
    assert info.crc32c == w.crc32c and info.size == size
    assert bytes(client.get(prefix + "o")) == data


def test_writer_crc32c_on_file_uris(tmp_path: Path) -> None:
    data = os.urandom(3 * MiB)
    with ObjectWriter(tmp_path / "f", part_size=MiB, checksum="crc32c") as w:
        w.write(data)
    obj = objio.parse_uri(str(tmp_path / "f"))
    info = objio.engine.run(objio.Client()._backend(obj).head(obj, checksum=True))
    assert info.crc32c == google_crc32c.value(data)


def test_a_store_that_refuses_checksums_gets_the_object_without(
        client: objio.Client, prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    class Refusing:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        async def create_multipart(self, obj: Any, **kw: Any) -> str:
            if kw.get("checksum"):
                raise objio.ObjectStoreError("not implemented", status=501, code="NotImplemented")
            return str(await self.inner.create_multipart(obj))

        async def put(self, obj: Any, data: Any, **kw: Any) -> str:
            if kw.get("checksum_crc32c") is not None:
                raise objio.ObjectStoreError("bad header", status=400, code="InvalidArgument")
            return str(await self.inner.put(obj, data, **kw))

    class RefusingClient(objio.Client):
        def _backend(self, obj: Any) -> Any:
            return Refusing(super()._backend(obj))

    rc = RefusingClient(client.config)
    for name, size in (("small", 100), ("big", 6 * MiB)):
        data = os.urandom(size)
        with caplog.at_level(logging.WARNING, logger="objio.io"):
            with ObjectWriter(prefix + name, client=rc, part_size=5 * MiB, checksum="crc32c") as w:
                w.write(data)
        assert bytes(client.get(prefix + name)) == data
        assert w.crc32c == google_crc32c.value(data)
        assert "refused the CRC32C checksum" in caplog.text
    with pytest.raises(ValueError, match="checksum"):
        ObjectWriter(prefix + "x", client=client, checksum="md5")


# ------------------------------------------------------------------------------ S3Checkpoint
def test_signature_matches_the_seed() -> None:
    seed = pytest.importorskip("s3torchconnector")
    mine = inspect.signature(S3Checkpoint).parameters
    for p in inspect.signature(seed.S3Checkpoint).parameters.values():
        assert p.name in mine and mine[p.name].kind == p.kind
    assert list(inspect.signature(S3Checkpoint.reader).parameters) == ["self", "s3_uri"]
    assert list(inspect.signature(S3Checkpoint.writer).parameters) == ["self", "s3_uri"]


def test_save_and_load_verified_on_s3(store: Any, client: objio.Client, prefix: str) -> None:
    ck = S3Checkpoint(s3client_config=store.config.replace(part_size=5 * MiB))
    sd = state_dict(mib=12)                           # several parts
    with ck.writer(prefix + "model.pt") as w:
        torch.save(sd, w)
        assert w._buffers_allocated <= w.max_parts_in_flight + 1   # bounded memory
    reader = ck.reader(prefix + "model.pt")
    assert isinstance(reader, VerifyingS3Reader)
    assert same(torch.load(reader), sd)
    assert reader.verified
    assert client.list_multipart_uploads(prefix) == []


def test_save_and_load_verified_on_file_uris(tmp_path: Path) -> None:
    ck = S3Checkpoint()
    sd = state_dict(1)
    with ck.writer(f"file://{tmp_path}/ck.pt") as w:
        torch.save(sd, w)
    assert same(torch.load(str(tmp_path / "ck.pt")), sd)   # a plain torch.save file
    reader = ck.reader(f"file://{tmp_path}/ck.pt")
    assert same(torch.load(reader), sd) and reader.verified

    # a flipped byte in storage is an IntegrityError naming the object and the byte range
    raw = bytearray((tmp_path / "ck.pt").read_bytes())
    pos = len(raw) * 2 // 3
    with open(tmp_path / "ck.pt", "r+b") as f:         # in place: the recorded CRC stays
        f.seek(pos)
        f.write(bytes([raw[pos] ^ 0x01]))
    with pytest.raises(objio.IntegrityError, match=rf"ck\.pt: bytes \[0, {len(raw)}\)"):
        torch.load(ck.reader(f"file://{tmp_path}/ck.pt"))
    torch.load(S3Checkpoint(verify=False).reader(f"file://{tmp_path}/ck.pt"))


def test_a_byte_flipped_in_transit_is_detected(s3_server: Any, prefix: str, proxy: Any) -> None:
    """The fault proxy flips one byte in the middle of every GET body of the checkpoint."""
    import dataclasses

    from faultproxy import Rewrite

    flipped = [0]

    def flip(req: Any, resp: Any) -> Any:
        if not resp.body:
            return resp
        body = bytearray(resp.body)
        body[len(body) // 2] ^= 0x01
        flipped[0] += 1
        return dataclasses.replace(resp, body=bytes(body))

    cfg = s3_server.config.replace(endpoint_url=proxy.endpoint_url)
    ck = S3Checkpoint(s3client_config=cfg)
    sd = state_dict(2, mib=2)
    with ck.writer(prefix + "t.pt") as w:
        torch.save(sd, w)
    assert same(torch.load(ck.reader(prefix + "t.pt")), sd)     # the proxy alone is harmless
    proxy.add(lambda r: r.method == "GET" and r.path.endswith("t.pt"), Rewrite(flip), times=None)
    try:
        with pytest.raises(objio.IntegrityError) as ei:
            torch.load(ck.reader(prefix + "t.pt"))
    finally:
        proxy.clear()
    assert flipped[0] and f"{prefix}t.pt" in str(ei.value)
    assert ei.value.uri == f"{prefix}t.pt" and "bytes [0, " in str(ei.value)


def test_objects_without_a_checksum_load_unverified(store: Any, client: objio.Client,
                                                    prefix: str) -> None:
    import io

    buf = io.BytesIO()
    sd = state_dict(3, mib=0.5)
    torch.save(sd, buf)
    other_tool = objio.Client(client.config.replace(checksums=False))
    other_tool.put_bytes(prefix + "other-tool.pt", buf.getvalue())   # no checksum recorded
    reader = S3Checkpoint(s3client_config=store.config).reader(prefix + "other-tool.pt")
    # Cloud Storage itself keeps a CRC32C of every object: whoever wrote it, it is verified
    assert type(reader) is (VerifyingS3Reader if store.kind == "gs" else SequentialS3Reader)
    assert same(torch.load(reader), sd)


def test_exception_while_saving_leaves_nothing(store: Any, client: objio.Client,
                                               prefix: str) -> None:
    ck = S3Checkpoint(s3client_config=store.config.replace(part_size=5 * MiB))
    with pytest.raises(RuntimeError, match="boom"):
        with ck.writer(prefix + "half.pt") as w:
            torch.save(state_dict(mib=12), w)
            raise RuntimeError("boom")
    assert not client.exists(prefix + "half.pt")
    assert client.list_multipart_uploads(prefix) == []


def test_bad_input_fails_early(s3_server: Any, prefix: str) -> None:
    cfg = s3_server.config
    ck = S3Checkpoint(s3client_config=cfg)
    with pytest.raises(FileNotFoundError, match="no-such-bucket-y"):
        ck.writer("s3://no-such-bucket-y/ck.pt")        # before torch.save gets the stream
    with pytest.raises(PermissionError):
        S3Checkpoint(s3client_config=cfg.replace(secret_access_key="nope")).writer(prefix + "a")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        ck.reader(prefix + "missing.pt")
    with pytest.raises(ValueError, match="object URI"):
        ck.writer(prefix)
    with pytest.raises(TypeError, match="URI string"):
        ck.reader(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="verify"):
        S3Checkpoint(verify="yes")  # type: ignore[arg-type]
