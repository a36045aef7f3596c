"""Every byte downloaded is checked against the CRC32C the store keeps with the object, ranged
and parallel reads included: objio against the fault proxy (tests/faultproxy.py) in front of
the real LocalS3Server, flipping one byte of one response body, once (the second reading must
be the one returned) or every time (objio.IntegrityError naming the object and the range).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

import objio
from faultproxy import FaultProxy, Request, Response, Rewrite
from objio import engine
from objio.config import MiB
from objio.server import LocalS3Server

SIZE = 17 * MiB + 12345
THRESHOLD = 1 * MiB  # the first GET brings 1 MiB; the rest comes in 5 MiB ranged parts
PART = 5 * MiB


@pytest.fixture
def pclient(proxy: FaultProxy, s3_server: LocalS3Server,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[objio.Client]:
    monkeypatch.setattr(engine, "_BACKOFF_BASE_S", 0.001)
    proxy.clear()
    c = objio.Client(s3_server.config.replace(endpoint_url=proxy.endpoint_url, checksums=True),
                     range_threshold=THRESHOLD, part_size=PART, max_attempts=3)
    yield c
    proxy.clear()


@pytest.fixture
def uploader(s3_server: LocalS3Server) -> objio.Client:
    """Uploads with CRC32C (a full-object checksum), straight to the server."""
    return objio.Client(s3_server.config.replace(checksums=True), range_threshold=5 * MiB,
                        part_size=5 * MiB)


def _flip_at(offset: int) -> Rewrite:
    """Flip the body byte at object offset ``offset`` of a response that holds it."""
    def fn(req: Request, resp: Response) -> Response:
        start = req.range[0] if req.range else 0
        body = bytearray(resp.body)
        body[offset - start] ^= 0x40
        resp.body = bytes(body)
        return resp
    return Rewrite(fn)


def _holds(offset: int, *, ranged: bool | None = True):
    def match(r: Request) -> bool:
        if r.method != "GET" or "attributes" in r.query:
            return False
        if r.range is None:
            return ranged is not True
        if ranged is False:
            return False
        start, end = r.range
        return start <= offset and (end is None or offset <= end)
    return match


def _range_of(e: objio.IntegrityError) -> tuple[int, int]:
    m = re.search(r"bytes (\d+)-(\d+)", str(e))
    assert m, str(e)
    return int(m.group(1)), int(m.group(2))


def test_get_of_a_big_object_rereads_a_part_damaged_in_transit(
        pclient: objio.Client, proxy: FaultProxy, uploader: objio.Client, prefix: str) -> None:
    data = os.urandom(SIZE)
    uri = prefix + "big"
    uploader.put_bytes(uri, data)
    off = 7 * MiB + 5
    rule = proxy.add(_holds(off), _flip_at(off), times=1)
    assert bytes(pclient.get(uri)) == data
    assert rule.hits == 1
    proxy.clear()
    proxy.add(_holds(off), _flip_at(off), times=None)
    with pytest.raises(objio.IntegrityError) as e:
        pclient.get(uri)
    assert uri in str(e.value)
    a, b = _range_of(e.value)
    assert a <= off <= b  # a full-object CRC32C cannot tell which part: the whole object


@pytest.fixture
def big(uploader: objio.Client, prefix: str) -> tuple[str, bytes]:
    data = os.urandom(SIZE)
    uri = prefix + "big"
    uploader.put_bytes(uri, data)  # multipart, FULL_OBJECT CRC32C
    return uri, data


OFF = 11 * MiB + 77  # in a ranged part of every read path here


def _reader_kw(kind: str, size: int) -> dict[str, Any]:
    if kind == "sequential+size":  # size known (from a listing): no probe, chunk 0 ranged
        return {"reader": "sequential", "size": size}
    if kind == "coalescing":
        return {"reader": "coalescing", "ranges": [(0, size // 3), (size // 3, size)]}
    return {"reader": kind}


@pytest.mark.parametrize("reader", ["sequential", "sequential+size", "range_based",
                                    "coalescing"])
def test_open_and_read_to_the_end_rereads_a_damaged_range(
        pclient: objio.Client, proxy: FaultProxy, big: tuple[str, bytes], reader: str) -> None:
    uri, data = big
    kw = _reader_kw(reader, len(data))

    def read_all(f: Any) -> bytes:
        if reader == "coalescing":  # reads stay inside one declared range
            return f.read(len(data) // 3) + f.read()
        return bytes(f.read())

    rule = proxy.add(_holds(OFF), _flip_at(OFF), times=1)
    with objio.open(uri, "rb", client=pclient, **kw) as f:
        assert read_all(f) == data
    assert rule.hits == 1
    # the stored CRC32C came with a GET without Range (or a HEAD, when the reader made one)
    assert any(r.range is None and r.method in ("GET", "HEAD") for r in proxy.log)
    proxy.clear()
    proxy.add(_holds(OFF), _flip_at(OFF), times=None)
    with pytest.raises(objio.IntegrityError) as e:
        with objio.open(uri, "rb", client=pclient, **kw) as f:
            read_all(f)
    assert uri in str(e.value)
    a, b = _range_of(e.value)
    assert a <= OFF <= b


def test_bytes_returned_before_the_check_are_reported(
        pclient: objio.Client, proxy: FaultProxy, big: tuple[str, bytes]) -> None:
    """Read in small pieces, the damaged bytes were returned long before the last read
    completes the object: that read raises IntegrityError naming them (a second reading
    matched: they were damaged in transit)."""
    uri, data = big
    proxy.add(_holds(OFF), _flip_at(OFF), times=1)
    got = bytearray()
    with pytest.raises(objio.IntegrityError) as e:
        with objio.open(uri, "rb", client=pclient, chunk_size=5 * MiB) as f:
            while chunk := f.read(256 * 1024):
                got += chunk
    a, b = _range_of(e.value)
    assert a <= OFF <= b and b - a < 5 * MiB
    assert "in transit" in str(e.value)
    assert got[OFF] != data[OFF]  # it was returned, and it was wrong: hence the error


# ------------------------------------------------------------------------------ model loading
def _connector(s3_server: LocalS3Server, proxy: FaultProxy, **kw: Any) -> Any:
    from objio.model import ModelConnector

    cfg = s3_server.config.replace(endpoint_url=proxy.endpoint_url, checksums=True,
                                   max_attempts=3, part_size=5 * MiB)
    return ModelConnector(config=cfg, **kw)


@pytest.mark.parametrize("memory", [64 * MiB, 6 * MiB])  # all prefetched / read on demand
def test_model_connector_rereads_a_damaged_chunk_of_a_shard(
        s3_server: LocalS3Server, proxy: FaultProxy, big: tuple[str, bytes],
        monkeypatch: pytest.MonkeyPatch, memory: int) -> None:
    monkeypatch.setattr(engine, "_BACKOFF_BASE_S", 0.001)
    uri, data = big
    proxy.clear()
    rule = proxy.add(_holds(OFF), _flip_at(OFF), times=1)
    with _connector(s3_server, proxy, prefetch_memory=memory) as conn:
        with conn.open(uri) as f:
            assert f.read() == data
    assert rule.hits == 1
    proxy.clear()
    proxy.add(_holds(OFF), _flip_at(OFF), times=None)
    with _connector(s3_server, proxy, prefetch_memory=memory) as conn:
        with pytest.raises(objio.IntegrityError) as e:
            with conn.open(uri) as f:
                f.read()
    assert uri in str(e.value)
    a, b = _range_of(e.value)
    assert a <= OFF <= b
    proxy.clear()


def test_model_connector_reports_damaged_bytes_it_returned(
        s3_server: LocalS3Server, proxy: FaultProxy, big: tuple[str, bytes],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "_BACKOFF_BASE_S", 0.001)
    uri, data = big
    proxy.clear()
    proxy.add(_holds(OFF), _flip_at(OFF), times=1)
    got = bytearray()
    with _connector(s3_server, proxy, prefetch_memory=6 * MiB) as conn:
        with pytest.raises(objio.IntegrityError) as e:
            with conn.open(uri) as f:
                while chunk := f.read(64 * 1024):
                    got += chunk
    a, b = _range_of(e.value)
    assert a <= OFF <= b and "in transit" in str(e.value)
    assert got[OFF] != data[OFF]
    proxy.clear()


def _safetensors_file(n_floats: int) -> tuple[bytes, Any]:
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    g = torch.Generator().manual_seed(0)
    tensors = {f"w{i}": torch.randn(n_floats // 4, generator=g) for i in range(4)}
    return st_torch.save(tensors), tensors


def test_load_safetensors_rereads_a_damaged_part(
        pclient: objio.Client, proxy: FaultProxy, uploader: objio.Client, prefix: str) -> None:
    from objio.model import iter_safetensors, load_safetensors

    torch = pytest.importorskip("torch")
    blob, tensors = _safetensors_file(4 * MiB)  # 16 MiB of floats
    uri = prefix + "model.safetensors"
    uploader.put_bytes(uri, blob)
    off = 9 * MiB + 3
    rule = proxy.add(_holds(off), _flip_at(off), times=1)
    got = load_safetensors(uri, client=pclient)
    assert rule.hits == 1
    assert set(got) == set(tensors)
    for k, t in tensors.items():
        assert torch.equal(got[k], t), k
    proxy.clear()
    proxy.add(_holds(off), _flip_at(off), times=None)
    with pytest.raises(objio.IntegrityError) as e:
        load_safetensors(uri, client=pclient)
    assert uri in str(e.value)
    a, b = _range_of(e.value)
    assert a <= off <= b
    proxy.clear()
    # A tensor of a part that is not the last one is yielded before the shard can be checked
    # (parts in order: max_in_flight=1): load_safetensors still returns the second reading
    # (the tensors are views of the shard's buffer, replaced in place), iter_safetensors
    # cannot take back what it yielded and raises.
    early = 5 * MiB + 3  # in tensor w1, in the first ranged part
    proxy.add(_holds(early), _flip_at(early), times=1)
    got = load_safetensors(uri, client=pclient, max_in_flight=1)
    assert all(torch.equal(got[k], t) for k, t in tensors.items())
    proxy.clear()
    proxy.add(_holds(early), _flip_at(early), times=1)
    with pytest.raises(objio.IntegrityError) as e:
        for _ in iter_safetensors(uri, client=pclient, max_in_flight=1):
            pass
    assert "'w1' had been yielded" in str(e.value)


def test_dcp_load_without_a_manifest_rereads_a_damaged_range(
        s3_server: LocalS3Server, proxy: FaultProxy, prefix: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A DCP load with verify=False (no manifest check, or a checkpoint written by another
    tool) still checks each data file its coalescing reader reads whole."""
    torch = pytest.importorskip("torch")
    dcp = pytest.importorskip("torch.distributed.checkpoint")
    from torch.distributed.checkpoint.api import CheckpointException

    from objio.torch.dcp import S3StorageReader, S3StorageWriter

    monkeypatch.setattr(engine, "_BACKOFF_BASE_S", 0.001)
    direct = s3_server.config.replace(checksums=True, part_size=5 * MiB)
    via_proxy = direct.replace(endpoint_url=proxy.endpoint_url, max_attempts=3)
    path = prefix + "ckpt"
    g = torch.Generator().manual_seed(1)
    sd = {"w": torch.randn(5 * MiB, generator=g), "b": torch.randn(1000, generator=g)}  # 20 MiB
    dcp.save(sd, storage_writer=S3StorageWriter(None, path, s3client_config=direct))
    data_file = next(k for k in objio.Client(direct).list(path + "/") if k.endswith(".distcp"))
    off = 13 * MiB + 1

    def damaged(r: Request) -> bool:
        return r.path.endswith(data_file) and _holds(off)(r)

    proxy.clear()
    rule = proxy.add(damaged, _flip_at(off), times=1)
    out = {"w": torch.zeros_like(sd["w"]), "b": torch.zeros_like(sd["b"])}
    dcp.load(out, storage_reader=S3StorageReader(None, path, s3client_config=via_proxy,
                                                 verify=False))
    assert rule.hits == 1
    assert torch.equal(out["w"], sd["w"]) and torch.equal(out["b"], sd["b"])
    proxy.clear()
    proxy.add(damaged, _flip_at(off), times=None)
    with pytest.raises(CheckpointException) as ei:
        dcp.load({"w": torch.zeros_like(sd["w"]), "b": torch.zeros_like(sd["b"])},
                 storage_reader=S3StorageReader(None, path, s3client_config=via_proxy,
                                                verify=False))
    failure = next(iter(ei.value.failures.values()))
    err = failure[0] if isinstance(failure, tuple) else failure
    assert isinstance(err, objio.IntegrityError) and data_file in str(err)
    a, b = _range_of(err)
    assert a <= off <= b
    proxy.clear()


# ------------------------------------------------------------------------------ upload kinds
def _put_composite(client: objio.Client, uri: str, data: bytes, part: int) -> None:
    """A multipart upload with a COMPOSITE CRC32C (per-part CRCs, ``<crc>-N``), as other tools
    make them (objio uploads FULL_OBJECT)."""
    from objio._crc32c import crc32c

    obj = objio.parse_uri(uri)
    be = client._backend(obj)

    async def go() -> None:
        _, _, body = await be._simple("CreateMultipartUpload", uri, "POST", obj.bucket, obj.key,
                                      params=(("uploads", ""),),
                                      headers={"x-amz-checksum-algorithm": "CRC32C",
                                               "x-amz-checksum-type": "COMPOSITE"})
        upload_id = re.search(rb"<UploadId>([^<]+)</UploadId>", body).group(1).decode()
        parts = []
        for i, s in enumerate(range(0, len(data), part)):
            piece = data[s: s + part]
            c = crc32c(piece)
            parts.append((i + 1, await be.upload_part(obj, upload_id, i + 1, piece,
                                                      checksum_crc32c=c), c))
        await be.complete_multipart(obj, upload_id, parts)

    engine.run(go())


def test_composite_multipart_checksum_is_checked_part_by_part(
        pclient: objio.Client, proxy: FaultProxy, uploader: objio.Client, prefix: str) -> None:
    data = os.urandom(SIZE)
    uri = prefix + "composite"
    _put_composite(uploader, uri, data, 6 * MiB)  # parts do not line up with 5 MiB GETs
    info = engine.run(pclient._backend(objio.parse_uri(uri)).head(objio.parse_uri(uri),
                                                                  checksum=True))
    assert info.stored is not None and info.stored.parts == 3  # "<crc>-3"
    assert bytes(pclient.get(uri)) == data
    for reader in ("sequential", "range_based"):
        with objio.open(uri, "rb", client=pclient, reader=reader) as f:
            assert f.read() == data
    rule = proxy.add(_holds(OFF), _flip_at(OFF), times=1)
    assert bytes(pclient.get(uri)) == data
    assert rule.hits == 1
    proxy.add(_holds(OFF), _flip_at(OFF), times=1)
    with objio.open(uri, "rb", client=pclient) as f:
        assert f.read() == data
    proxy.clear()
    proxy.add(_holds(OFF), _flip_at(OFF), times=None)
    with pytest.raises(objio.IntegrityError) as e:
        pclient.get(uri)
    a, b = _range_of(e.value)
    assert a <= OFF <= b
    assert any("attributes" in r.query for r in proxy.log)  # GetObjectAttributes: the parts


def test_a_store_reporting_part_checksums_narrows_the_range_to_the_part(
        pclient: objio.Client, proxy: FaultProxy, uploader: objio.Client, prefix: str) -> None:
    """Where GetObjectAttributes reports each part's CRC32C (AWS does; SeaweedFS does not:
    added here by the proxy), a damaged part is named on its own."""
    from objio._crc32c import crc32c, to_base64

    data = os.urandom(SIZE)
    uri = prefix + "composite"
    part = 6 * MiB
    _put_composite(uploader, uri, data, part)
    crcs = [to_base64(crc32c(data[s: s + part])) for s in range(0, len(data), part)]

    def with_part_crcs(req: Request, resp: Response) -> Response:
        body = resp.body.decode()
        for i, c in enumerate(crcs):
            body = body.replace(f"<PartNumber>{i + 1}</PartNumber>",
                                f"<PartNumber>{i + 1}</PartNumber>"
                                f"<ChecksumCRC32C>{c}</ChecksumCRC32C>")
        resp.body = body.encode()
        return resp

    proxy.add(lambda r: "attributes" in r.query, Rewrite(with_part_crcs), times=None)
    proxy.add(_holds(OFF), _flip_at(OFF), times=None)
    with pytest.raises(objio.IntegrityError) as e:
        pclient.get(uri)
    assert _range_of(e.value) == (part, 2 * part - 1)  # exactly the second part


@pytest.mark.parametrize("size", [100_000, THRESHOLD])
def test_single_put_objects_read_whole_are_checked(
        pclient: objio.Client, proxy: FaultProxy, uploader: objio.Client, prefix: str,
        size: int) -> None:
    """Objects that come in one response (up to range_threshold): that response is a GET
    without Range, so it carries the stored CRC32C; one request per object, no more."""
    items = {f"{prefix}small-{i}": os.urandom(size) for i in range(4)}
    uploader.put_many(list(items.items()))
    off = size // 2
    uris = list(items)
    victim = uris[2]
    only = _holds(off, ranged=None)

    def match(r: Request) -> bool:
        return r.path.endswith(objio.parse_uri(victim).key) and only(r)

    proxy.clear()
    rule = proxy.add(match, _flip_at(off), times=1)
    got = pclient.get_many(uris, max_in_flight=4)
    assert [bytes(d) for _, d in got] == list(items.values())
    assert rule.hits == 1
    assert len(_gets(proxy)) == len(uris) + 1  # + the one re-read
    assert all(r.range is None for r in _gets(proxy)[: len(uris)])
    proxy.clear()
    proxy.add(match, _flip_at(off), times=None)
    with pytest.raises(objio.IntegrityError) as e:
        pclient.get(victim)
    assert victim in str(e.value) and _range_of(e.value) == (0, size - 1)
    assert pclient.get_many_stats([u for u in uris if u != victim]) == (3, 3 * size)
    with pytest.raises(objio.IntegrityError):
        pclient.get_many_stats(uris)
    with pytest.raises(objio.IntegrityError):
        with objio.open(victim, "rb", client=pclient) as f:
            f.read()
    proxy.clear()


def _gets(proxy: FaultProxy) -> list[Request]:
    return [r for r in proxy.log if r.method == "GET"]


def test_objects_without_a_stored_checksum_read_fine_unchecked(
        pclient: objio.Client, proxy: FaultProxy, client: objio.Client, prefix: str) -> None:
    """Nothing to check against (uploaded without a checksum): read as before, no error, no
    extra request; a flipped byte cannot be seen (documented)."""
    plain = objio.Client(client.config.replace(checksums=False), range_threshold=5 * MiB,
                         part_size=5 * MiB)
    data = os.urandom(SIZE)
    small = os.urandom(5000)
    plain.put_bytes(prefix + "big", data)
    plain.put_bytes(prefix + "small", small)
    proxy.clear()
    assert bytes(pclient.get(prefix + "big")) == data
    assert bytes(pclient.get(prefix + "small")) == small
    with objio.open(prefix + "big", "rb", client=pclient) as f:
        assert f.read() == data
    assert not [r for r in proxy.log if r.method == "HEAD" or "attributes" in r.query]
    proxy.add(_holds(OFF), _flip_at(OFF), times=1)
    got = bytes(pclient.get(prefix + "big"))
    assert got != data and got[OFF] != data[OFF]  # nothing stored to check it against


# ------------------------------------------------------------------ CRC32C as the bytes land
def test_the_receive_path_computes_the_crc32c_as_bytes_land(
        client: objio.Client, uploader: objio.Client, prefix: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """objio's own HTTP path gives the CRC32C of exactly the bytes it returns (a 206, a whole
    200, and an unranged GET cut after its first bytes), and a whole-object check uses it: no
    second pass over the bytes."""
    from objio import _crc32c

    data = os.urandom(3 * MiB + 7)
    uri = prefix + "landed"
    uploader.put_bytes(uri, data)
    obj = objio.parse_uri(uri)
    backend = engine.backend_for(obj, objio.Client(client.config.replace(checksums=True)).config)

    async def fetch(**kw: Any) -> Any:
        return await backend.get(obj, crc=True, **kw)

    for kw, want in (({"start": 1000, "end": 2 * MiB}, data[1000:2 * MiB + 1]),
                     ({}, data),
                     ({"start": 0, "end": MiB - 1, "unranged": True}, data[:MiB])):
        r = engine.run(fetch(**kw))
        assert bytes(r.data) == want
        assert r.received_crc32c == _crc32c.crc32c(want), kw
    assert engine.run(backend.get(obj, 0, 99)).received_crc32c is None  # not asked: not done

    calls: list[int] = []
    real = engine.crc32c_of

    async def counted(view: Any) -> int:
        calls.append(len(view))
        return await real(view)

    monkeypatch.setattr(engine, "crc32c_of", counted)
    c = objio.Client(client.config.replace(checksums=True), range_threshold=8 * MiB)
    assert bytes(c.get(uri)) == data  # one whole-object GET, checked
    assert calls == []
