"""Every byte returned was written by a response for exactly that range: objio against a
fault-injecting proxy in front of the real LocalS3Server (416 for a shrunk object, short
chunked bodies, 200 with the whole object for a Range request, parts from two versions, short
bodies), with the poison fill of new buffers on (conftest), so an unwritten slice shows.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator

import google_crc32c
import pytest

import objio
from faultproxy import FaultProxy, Forge, Rechunk, Request, Response, Rewrite, Truncate
from objio import _buffers, engine
from objio.config import MiB
from objio.server import LocalS3Server

SIZE = 12 * MiB + 12345
THRESHOLD = 1 * MiB  # the first GET asks for 1 MiB; the rest comes in 5 MiB ranged parts


@pytest.fixture
def pclient(proxy: FaultProxy, s3_server: LocalS3Server,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[objio.Client]:
    monkeypatch.setattr(engine, "_BACKOFF_BASE_S", 0.001)
    proxy.clear()
    c = objio.Client(s3_server.config.replace(endpoint_url=proxy.endpoint_url),
                     range_threshold=THRESHOLD, part_size=5 * MiB, max_attempts=3,
                     checksums=True)
    yield c
    proxy.clear()


@pytest.fixture
def big(client: objio.Client, prefix: str) -> tuple[str, bytes]:
    data = os.urandom(SIZE)
    uri = prefix + "big.bin"
    client.put_bytes(uri, data)
    return uri, data


def _later_part(r: Request) -> bool:
    rng = r.range
    return r.method == "GET" and rng is not None and rng[0] >= THRESHOLD


def _gets(proxy: FaultProxy) -> list[Request]:
    return [r for r in proxy.log if r.method == "GET"]


def test_buffers_are_poisoned_in_tests() -> None:
    assert bytes(_buffers.new_buffer(1 << 20)[:4]) == bytes([_buffers.POISON_BYTE]) * 4


# ------------------------------------------------------------------------------ A1: 416
def test_416_on_a_later_part_restarts_the_get(pclient: objio.Client, proxy: FaultProxy,
                                              big: tuple[str, bytes]) -> None:
    uri, data = big
    proxy.add(_later_part, Forge(lambda r: Response(
        416, "Range Not Satisfiable", [("Content-Range", f"bytes */{7 * MiB}")], b"")))
    assert bytes(pclient.get(uri)) == data
    # the first GET of each try: without Range (checksums on: it brings the stored CRC32C)
    probes = [r for r in _gets(proxy) if r.range is None or r.range[0] == 0]
    assert len(probes) == 2  # restarted from the start once


def test_416_every_time_raises_object_changed(pclient: objio.Client, proxy: FaultProxy,
                                              big: tuple[str, bytes]) -> None:
    uri, _ = big
    proxy.add(_later_part, Forge(lambda r: Response(
        416, "Range Not Satisfiable", [("Content-Range", f"bytes */{7 * MiB}")], b"")),
        times=None)
    with pytest.raises(objio.ObjectStoreError) as e:
        pclient.get(uri)
    assert e.value.code == "ObjectChanged" and uri in str(e.value)


def test_416_in_the_streaming_reader_raises(pclient: objio.Client, proxy: FaultProxy,
                                            big: tuple[str, bytes]) -> None:
    uri, data = big
    proxy.add(lambda r: r.method == "GET" and r.range is not None and r.range[0] >= 5 * MiB,
              Forge(lambda r: Response(416, "Range Not Satisfiable",
                                       [("Content-Range", f"bytes */{5 * MiB}")], b"")),
              times=None)
    got = bytearray()
    with pytest.raises(objio.ObjectStoreError) as e:
        with objio.open(uri, "rb", client=pclient, chunk_size=5 * MiB) as f:
            while chunk := f.read(1 * MiB):
                got += chunk
    assert e.value.code == "ObjectChanged"
    assert bytes(got) == data[: len(got)]  # what was returned before the error is right


# ------------------------------------------------------------------------------ A2: chunked
@pytest.mark.parametrize("keep", [None, 1000])
def test_chunked_bodies_are_length_checked(pclient: objio.Client, proxy: FaultProxy,
                                           big: tuple[str, bytes], keep: int | None) -> None:
    uri, data = big
    # One request per chunked response (objio's one HTTP client decodes it; when there were
    # two clients, the first handed it over to the second, which asked again).
    proxy.add(_later_part, Rechunk(keep), times=1)
    assert bytes(pclient.get(uri)) == data  # a short one is retried
    proxy.clear()
    proxy.add(lambda r: r.method == "GET", Rechunk(keep), times=1)
    assert bytes(pclient.get_range(uri, 100, 5000)) == data[100:5100]
    proxy.clear()
    proxy.add(lambda r: r.method == "GET", Rechunk(keep), times=2)
    got = pclient.get_many([uri, uri], max_in_flight=2)
    assert [bytes(d) for _, d in got] == [data, data]


def test_short_chunked_body_every_time_raises(pclient: objio.Client, proxy: FaultProxy,
                                              big: tuple[str, bytes]) -> None:
    uri, _ = big
    proxy.add(_later_part, Rechunk(1000), times=None)
    with pytest.raises(objio.ObjectStoreError) as e:
        pclient.get(uri)
    assert e.value.code == "IncompleteBody"


def test_chunked_in_readers(pclient: objio.Client, proxy: FaultProxy,
                            big: tuple[str, bytes]) -> None:
    uri, data = big
    proxy.add(lambda r: r.method == "GET", Rechunk(777), times=2)  # 2 of 3 attempts short
    with objio.open(uri, "rb", client=pclient, reader="range_based", buffer_size=0) as f:
        f.seek(4 * MiB)
        assert f.read(2 * MiB) == data[4 * MiB: 6 * MiB]


# ------------------------------------------------------------------------------ A3: 200 for a range
def _whole(data: bytes, etag: str) -> Forge:
    return Forge(lambda r: Response(200, "OK", [("ETag", f'"{etag}"')], data))


def test_range_answered_with_the_whole_object(pclient: objio.Client, proxy: FaultProxy,
                                              big: tuple[str, bytes]) -> None:
    uri, data = big
    etag = pclient.stat(uri).etag
    proxy.add(lambda r: r.method == "GET", _whole(data, etag), times=None)
    assert bytes(pclient.get_range(uri, 1000, 500)) == data[1000:1500]
    assert bytes(pclient.get_range(uri, SIZE - 10)) == data[-10:]
    assert bytes(pclient.get(uri)) == data
    with objio.open(uri, "rb", client=pclient) as f:
        f.seek(7 * MiB)
        assert f.read(100) == data[7 * MiB: 7 * MiB + 100]


# ------------------------------------------------------------------------------ A4: versions
def _etag_rewrite(new: str) -> Rewrite:
    def fn(req: Request, resp: Response) -> Response:
        resp.set("ETag", f'"{new}"')
        return resp
    return Rewrite(fn)


def test_parts_from_another_version_restart_then_raise(pclient: objio.Client, proxy: FaultProxy,
                                                       big: tuple[str, bytes]) -> None:
    uri, data = big
    proxy.add(_later_part, _etag_rewrite("0" * 32), times=1)
    assert bytes(pclient.get(uri)) == data  # restarted once with a consistent version
    proxy.clear()
    proxy.add(_later_part, _etag_rewrite("0" * 32), times=None)
    with pytest.raises(objio.ObjectStoreError) as e:
        pclient.get(uri)
    assert e.value.code == "ObjectChanged" and uri in str(e.value)


def test_total_size_change_between_parts_is_detected(pclient: objio.Client, proxy: FaultProxy,
                                                     big: tuple[str, bytes]) -> None:
    uri, _ = big

    def bigger_total(req: Request, resp: Response) -> Response:
        cr = resp.header("Content-Range") or ""
        head, _, total = cr.rpartition("/")
        resp.set("Content-Range", f"{head}/{int(total) + 1}")
        return resp

    proxy.add(_later_part, Rewrite(bigger_total), times=None)
    with pytest.raises(objio.ObjectStoreError) as e:
        pclient.get(uri)
    assert e.value.code == "ObjectChanged"


def test_reader_detects_another_version(pclient: objio.Client, proxy: FaultProxy,
                                        big: tuple[str, bytes]) -> None:
    uri, _ = big
    proxy.add(lambda r: r.method == "GET" and r.range is not None and r.range[0] >= 5 * MiB,
              _etag_rewrite("1" * 32), times=None)
    with pytest.raises(objio.ObjectStoreError) as e:
        with objio.open(uri, "rb", client=pclient, chunk_size=5 * MiB) as f:
            f.read()
    assert e.value.code == "ObjectChanged"


# ------------------------------------------------------------------------------ A6: short bodies
def test_short_ranged_bodies_are_retried(pclient: objio.Client, proxy: FaultProxy,
                                         big: tuple[str, bytes]) -> None:
    uri, data = big
    rule = proxy.add(_later_part, Truncate(1234), times=2)
    assert bytes(pclient.get(uri)) == data
    assert rule.hits == 2
    proxy.add(lambda r: r.method == "GET", Truncate(10), times=1)
    assert bytes(pclient.get_range(uri, 5 * MiB, 3 * MiB)) == data[5 * MiB: 8 * MiB]
    proxy.add(lambda r: r.method == "GET", Truncate(10), times=1)
    with objio.open(uri, "rb", client=pclient, reader="range_based", buffer_size=0) as f:
        f.seek(9 * MiB)
        assert f.read(MiB) == data[9 * MiB: 10 * MiB]


def test_get_many_stats_counts_only_whole_objects(pclient: objio.Client, proxy: FaultProxy,
                                                  big: tuple[str, bytes]) -> None:
    uri, _ = big
    proxy.add(_later_part, Rechunk(10), times=None)
    with pytest.raises(objio.ObjectStoreError):
        pclient.get_many_stats([uri], max_in_flight=1)


# ------------------------------------------------------------------------------ A7: checksums
def _crc(data: bytes) -> str:
    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()


def test_uploads_send_crc32c(pclient: objio.Client, proxy: FaultProxy, prefix: str) -> None:
    small = os.urandom(1000)
    pclient.put_bytes(prefix + "small", small)
    puts = [r for r in proxy.log if r.method == "PUT"]
    assert puts[-1].headers.get("x-amz-checksum-crc32c") == _crc(small)
    proxy.clear()
    data = os.urandom(11 * MiB)
    pclient.put_bytes(prefix + "multi", data)  # above range_threshold: multipart
    parts = [r for r in proxy.log if r.method == "PUT" and "partNumber" in r.query]
    assert len(parts) == 3
    for r in parts:
        assert r.headers.get("x-amz-checksum-crc32c") == _crc(r.body)
    create = [r for r in proxy.log if r.method == "POST" and "uploads" in r.query]
    assert create[0].headers.get("x-amz-checksum-algorithm") == "CRC32C"
    assert bytes(pclient.get(prefix + "multi")) == data


def test_writer_sends_crc32c_per_part(pclient: objio.Client, proxy: FaultProxy,
                                      prefix: str) -> None:
    data = os.urandom(11 * MiB)
    with objio.open(prefix + "w", "wb", client=pclient, part_size=5 * MiB) as w:
        w.write(data)
    parts = [r for r in proxy.log if r.method == "PUT" and "partNumber" in r.query]
    assert len(parts) == 3 and all(r.headers.get("x-amz-checksum-crc32c") == _crc(r.body)
                                   for r in parts)


def test_checksums_can_be_switched_off(s3_server: LocalS3Server, proxy: FaultProxy,
                                       prefix: str) -> None:
    proxy.clear()
    c = objio.Client(s3_server.config.replace(endpoint_url=proxy.endpoint_url), checksums=False)
    c.put_bytes(prefix + "nock", b"abc")
    assert "x-amz-checksum-crc32c" not in [r for r in proxy.log if r.method == "PUT"][-1].headers
    assert bytes(c.get(prefix + "nock")) == b"abc"
    assert "x-amz-checksum-mode" not in _gets(proxy)[-1].headers
    # on by default (as the AWS SDKs since 2025); the environment turns it off
    assert objio.ClientConfig().resolved(environ={}).checksums is True
    assert objio.ClientConfig().resolved(environ={"OBJIO_CHECKSUMS": "0"}).checksums is False
    assert objio.ClientConfig(checksums=True).resolved(
        environ={"OBJIO_CHECKSUMS": "0"}).checksums is True  # an argument wins


def test_corrupt_download_with_a_checksum_raises_integrity_error(
        pclient: objio.Client, proxy: FaultProxy, prefix: str) -> None:
    data = os.urandom(4000)
    uri = prefix + "ck"
    pclient.put_bytes(uri, data)

    def flip(req: Request, resp: Response) -> Response:
        body = bytearray(resp.body)
        body[100] ^= 1
        resp.body = bytes(body)
        resp.set("x-amz-checksum-crc32c", _crc(data))
        return resp

    proxy.add(lambda r: r.method == "GET", Rewrite(flip), times=None)
    with pytest.raises(objio.IntegrityError) as e:
        pclient.get(uri)
    assert isinstance(e.value, ValueError) and uri in str(e.value)


def test_gets_ask_for_the_checksum(pclient: objio.Client, proxy: FaultProxy,
                                   prefix: str) -> None:
    """Every GET asks for the full-object checksum (servers return it for whole-object
    responses only)."""
    data = os.urandom(4000)
    uri = prefix + "ck2"
    pclient.put_bytes(uri, data)
    proxy.clear()
    assert bytes(pclient.get(uri)) == data
    gets = _gets(proxy)
    assert gets and gets[0].headers.get("x-amz-checksum-mode") == "ENABLED"
