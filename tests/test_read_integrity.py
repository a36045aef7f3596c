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


@pytest.mark.parametrize("reader", ["sequential", "range_based"])
def test_open_and_read_to_the_end_rereads_a_damaged_range(
        pclient: objio.Client, proxy: FaultProxy, big: tuple[str, bytes], reader: str) -> None:
    uri, data = big
    rule = proxy.add(_holds(OFF), _flip_at(OFF), times=1)
    with objio.open(uri, "rb", client=pclient, reader=reader) as f:
        assert f.read() == data
    assert rule.hits == 1
    proxy.clear()
    proxy.add(_holds(OFF), _flip_at(OFF), times=None)
    with pytest.raises(objio.IntegrityError) as e:
        with objio.open(uri, "rb", client=pclient, reader=reader) as f:
            f.read()
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
