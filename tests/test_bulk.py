"""Bulk metadata and server-side copy (issue 17, item 4): ``stat_many``, ``delete_many`` with
several DeleteObjects in flight and per-key failures, ``copy``/``copy_many`` and ``objio
cp``/``mv``/``sync`` between s3:// URIs made by the store (CopyObject, multipart
UploadPartCopy). Against the real LocalS3Server, through tests/faultproxy.py where the server
must misbehave or requests must be counted."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import google_crc32c
import pytest

import objio
from conftest import Store
from faultproxy import (
    AlterRequest,
    FaultProxy,
    Forge,
    Hold,
    LoseResponse,
    Rechunk,
    Request,
    Response,
    Rewrite,
)
from objio import engine, transfer
from objio.cli import main
from objio.config import MiB
from objio.server import LocalS3Server

pytestmark = pytest.mark.backends("s3", "az", "gs")


@pytest.fixture
def client(store: Store) -> objio.Client:
    """The store's client: tests taking ``client`` / ``prefix`` run on s3:// and az://."""
    return store.client



@pytest.fixture
def pclient(proxy: FaultProxy, s3_server: LocalS3Server,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[objio.Client]:
    """A client whose requests go through the fault proxy (rules and log cleared), with a
    millisecond backoff and a small multipart copy threshold (12 MiB objects: 3 parts)."""
    monkeypatch.setattr(engine, "_BACKOFF_BASE_S", 0.001)
    engine.forget_checksum_refusals()
    proxy.clear()
    yield objio.Client(s3_server.config.replace(endpoint_url=proxy.endpoint_url),
                       copy_threshold=6 * MiB, part_size=5 * MiB, max_attempts=3)
    proxy.clear()
    engine.forget_checksum_refusals()


def _error(status: int, code: str, message: str = "injected") -> Callable[[Request], Response]:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error>").encode()
    return lambda r: Response(status, "OK" if status == 200 else "Error",
                              [("Content-Type", "application/xml")], body)


def _copies(proxy: FaultProxy, part: bool | None = None) -> list[Request]:
    """CopyObject (part False), UploadPartCopy (part True) or both (None) requests seen."""
    return [r for r in proxy.log if r.method == "PUT" and "x-amz-copy-source" in r.headers
            and (part is None or ("partNumber" in r.query) == part)]


def _is_copy(part: bool | None = None) -> Callable[[Request], bool]:
    return lambda r: r.method == "PUT" and "x-amz-copy-source" in r.headers and (
        part is None or ("partNumber" in r.query) == part)


def _is_delete_objects(r: Request) -> bool:
    return r.method == "POST" and "delete" in r.query


def _body_moves(proxy: FaultProxy) -> list[Request]:
    """Requests that carried object bytes through the client: GETs of objects, PUTs with a
    body."""
    return [r for r in proxy.log if (r.method == "GET" and "list-type" not in r.query
                                     and "uploads" not in r.query)
            or (r.method == "PUT" and r.body)]


def _uploads_left(client: objio.Client, prefix: str) -> list[tuple[str, str]]:
    return client.list_multipart_uploads(prefix)


def _stored_crc(client: objio.Client, uri: str) -> int | None:
    obj = objio.parse_uri(uri)
    return engine.run(client._backend(obj).head(obj, checksum=True)).crc32c


# ------------------------------------------------------------------------------ stat_many
def test_stat_many_in_input_order(client: objio.Client, prefix: str) -> None:
    sizes = [5, 0, 70_000, 3]
    uris = [prefix + f"s{i}" for i in range(len(sizes))]
    for u, n in zip(uris, sizes, strict=True):
        client.put_bytes(u, os.urandom(n))
    order = [uris[2], uris[0], uris[3], uris[1], uris[2]]
    infos = client.stat_many(order, max_in_flight=3)
    assert [i.size for i in infos] == [70_000, 5, 3, 0, 70_000]
    assert [i.key for i in infos] == [objio.parse_uri(u).key for u in order]
    assert [i.etag for i in infos] == [client.stat(u).etag for u in order]
    assert objio.Client.stat_many is not None and "stat_many" in objio.__all__
    assert client.stat_many([]) == []


def test_stat_many_missing_objects(client: objio.Client, prefix: str) -> None:
    client.put_bytes(prefix + "here", b"abc")
    uris = [prefix + "here", prefix + "gone", prefix + "here"]
    with pytest.raises(FileNotFoundError, match="gone"):
        client.stat_many(uris)
    got = client.stat_many(uris, return_exceptions=True)
    assert got[0].size == 3 and got[2].size == 3
    assert isinstance(got[1], FileNotFoundError) and prefix + "gone" in str(got[1])


def test_stat_many_checks_arguments_before_any_request(pclient: objio.Client,
                                                       proxy: FaultProxy, prefix: str) -> None:
    with pytest.raises(TypeError):
        pclient.stat_many(prefix + "a")
    with pytest.raises(ValueError, match="s3://objio-test"):
        pclient.stat_many([prefix + "a", "s3://objio-test"])
    with pytest.raises(ValueError, match="max_in_flight"):
        pclient.stat_many([prefix + "a"], max_in_flight=0)
    assert proxy.log == []


def test_stat_many_async_and_retries(pclient: objio.Client, proxy: FaultProxy,
                                     client: objio.Client, prefix: str) -> None:
    uris = [prefix + f"a{i}" for i in range(20)]
    client.put_many([(u, b"x" * i) for i, u in enumerate(uris)])
    proxy.add(lambda r: r.method == "HEAD", Forge(_error(503, "SlowDown")), times=3)

    async def main_() -> list[Any]:
        return await pclient.stat_many_async(uris, max_in_flight=8)

    infos = asyncio.run(main_())
    assert [i.size for i in infos] == list(range(20))
    assert sum(r.method == "HEAD" for r in proxy.log) == 23  # three were sent again


# ------------------------------------------------------------------------------ delete_many
def test_delete_many_sends_several_batches_at_once(pclient: objio.Client, proxy: FaultProxy,
                                                   client: objio.Client, prefix: str) -> None:
    uris = [prefix + f"k{i:04d}" for i in range(2500)]  # 3 DeleteObjects of <= 1000 keys
    client.put_many([(u, b"") for u in uris], max_in_flight=64)
    hold = Hold()
    proxy.add(_is_delete_objects, hold)
    done: list[int] = []
    t = threading.Thread(target=lambda: done.append(pclient.delete_many(uris)))
    t.start()
    try:
        assert hold.reached.wait(30)
        # while the first DeleteObjects is held, the others still go out
        deadline = 30.0
        while sum(_is_delete_objects(r) for r in proxy.log) < 2 and deadline > 0:
            threading.Event().wait(0.05)
            deadline -= 0.05
    finally:
        hold.release()
        t.join(60)
    batches = [r for r in proxy.log if _is_delete_objects(r)]
    assert done == [2500] and len(batches) == 3
    assert sorted(r.body.count(b"<Key>") for r in batches) == [500, 1000, 1000]
    assert client.list(prefix) == []


@pytest.mark.parametrize("fault", ["cut", "error-in-200"])
def test_delete_many_answer_cut_or_an_error_in_200_is_sent_again(
        pclient: objio.Client, proxy: FaultProxy, client: objio.Client, prefix: str,
        fault: str) -> None:
    uris = [prefix + f"k{i}" for i in range(30)]
    client.put_many([(u, b"x") for u in uris])
    if fault == "cut":  # a quiet answer cut short would read as "every key deleted"
        proxy.add(_is_delete_objects, Forge(lambda r: Response(
            200, "OK", [("Content-Type", "application/xml")],
            b'<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult xmlns="http://s3.amazonaws'
            b'.com/doc/2006-03-01/"><Error><Key>')))
    else:
        proxy.add(_is_delete_objects, Forge(_error(200, "InternalError", "try again")))
    assert pclient.delete_many(uris) == 30
    assert client.list(prefix) == []
    assert sum(_is_delete_objects(r) for r in proxy.log) == 2


def _per_key_errors(keys: list[str], code: str) -> Callable[[Request], Response]:
    errors = "".join(f"<Error><Key>{k}</Key><Code>{code}</Code><Message>no</Message></Error>"
                     for k in keys)
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult xmlns="http://s3.amazonaws'
            f'.com/doc/2006-03-01/">{errors}</DeleteResult>').encode()
    return lambda r: Response(200, "OK", [("Content-Type", "application/xml")], body)


def _without_keys(keys: set[str]) -> Callable[[Request], Request]:
    """A DeleteObjects request without the objects ``keys`` (the store keeps them)."""
    def alter(r: Request) -> Request:
        return r.with_body(re.sub(
            rb"<Object><Key>([^<]*)</Key></Object>",
            lambda m: b"" if m.group(1).decode() in keys else m.group(0), r.body))
    return alter


def _refusing(keys: set[str], code: str) -> Callable[[Request, Response], Response]:
    """A DeleteObjects answer refusing those of ``keys`` the request named, with ``code``."""
    def answer(r: Request, resp: Response) -> Response:
        return _per_key_errors(sorted(k for k in keys if f"<Key>{k}</Key>".encode() in r.body),
                               code)(r)
    return answer


def test_delete_many_sends_keys_refused_for_a_moment_again(
        pclient: objio.Client, proxy: FaultProxy, client: objio.Client, prefix: str) -> None:
    uris = [prefix + f"k{i}" for i in range(10)]
    client.put_many([(u, b"x") for u in uris])
    refused = {objio.parse_uri(u).key for u in uris[3:5]}
    # the store deletes all but two, which it refuses with InternalError (once)
    proxy.add(_is_delete_objects, Rewrite(_refusing(refused, "InternalError"),
                                          request=_without_keys(refused)))
    assert pclient.delete_many(uris) == 10
    sent = [r for r in proxy.log if _is_delete_objects(r)]
    assert len(sent) == 2 and sent[1].body.count(b"<Key>") == 2
    assert all(k.encode() in sent[1].body for k in refused)
    assert client.list(prefix) == []


def test_delete_many_reports_every_key_refused_for_good(
        pclient: objio.Client, proxy: FaultProxy, client: objio.Client, prefix: str) -> None:
    uris = [prefix + f"k{i:04d}" for i in range(2100)]  # 3 DeleteObjects
    client.put_many([(u, b"") for u in uris], max_in_flight=64)
    locked = {objio.parse_uri(u).key for u in (uris[5], uris[2050])}
    proxy.add(_is_delete_objects, Rewrite(_refusing(locked, "AccessDenied"),
                                          request=_without_keys(locked)), times=None)
    with pytest.raises(objio.DeleteError) as info:
        pclient.delete_many(uris, max_in_flight=3)
    e = info.value
    assert isinstance(e, objio.ObjectStoreError) and e.code == "AccessDenied"
    assert sorted(f[0] for f in e.failed) == sorted(f"s3://objio-test/{k}" for k in locked)
    assert all(f[1] == "AccessDenied" for f in e.failed) and e.deleted == 2098
    assert "2 of 2100" in str(e)
    assert sorted(client.list(prefix)) == sorted(locked)  # every other batch went through
    assert sum(_is_delete_objects(r) for r in proxy.log) == 3  # not sent again


def test_delete_many_argument_errors_before_any_request(pclient: objio.Client,
                                                        proxy: FaultProxy, prefix: str) -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        pclient.delete_many([prefix + "a"], max_in_flight=0)
    with pytest.raises(ValueError):
        pclient.delete_many([prefix + "a", "s3://objio-test"])
    assert proxy.log == []


def test_delete_body_escapes_keys(client: objio.Client, prefix: str) -> None:
    names = ["a&b", "c<d>", "sp ace", "new\nline", "ret\rurn", "ü"]
    uris = [prefix + n for n in names] + [prefix + "keep"]
    client.put_many([(u, b"x") for u in uris])
    assert client.delete_many(uris[:-1]) == len(names)
    assert client.list(prefix) == [objio.parse_uri(prefix + "keep").key]


# ------------------------------------------------------------------------------ copy
def test_copy_between_s3_uris_is_made_by_the_store(pclient: objio.Client, proxy: FaultProxy,
                                                   client: objio.Client, prefix: str) -> None:
    data = os.urandom(300_000)
    src, dst = prefix + "src/a b+c&ü.bin", prefix + "dst/x y.bin"
    client.put_bytes(src, data)
    assert pclient.copy(src, dst) == len(data)
    assert client.get(dst) == data
    assert _body_moves(proxy) == []  # no byte through the client
    [req] = _copies(proxy)
    assert req.headers["x-amz-copy-source-if-match"] == f'"{client.stat(src).etag}"'
    assert req.headers["x-amz-checksum-algorithm"] == "CRC32C"
    assert _stored_crc(client, dst) == google_crc32c.value(data)


def test_copy_many_mixes_server_side_and_through_memory(pclient: objio.Client,
                                                        proxy: FaultProxy, client: objio.Client,
                                                        prefix: str, tmp_path: Path) -> None:
    data = [os.urandom(1000 + i) for i in range(4)]
    for i, d in enumerate(data):
        client.put_bytes(prefix + f"s{i}", d)
    pairs = [(prefix + "s0", prefix + "d0"), (prefix + "s1", prefix + "d1"),
             (prefix + "s2", str(tmp_path / "f2")), (prefix + "s3", prefix + "d3")]
    seen: list[str] = []
    assert pclient.copy_many(pairs, max_in_flight=2,
                             observer=lambda r: seen.append(r.uri)) == (4, sum(map(len, data)))
    assert sorted(seen) == sorted(str(objio.parse_uri(d)) for _, d in pairs)
    assert len(_copies(proxy)) == 3
    assert [r for r in _body_moves(proxy) if r.method == "GET"] != []  # the one to a file
    assert (tmp_path / "f2").read_bytes() == data[2]
    for i in (0, 1, 3):
        assert client.get(prefix + f"d{i}") == data[i]
    proxy.clear()
    assert pclient.copy(prefix + "s0", prefix + "m0", server_side=False) == len(data[0])
    assert _copies(proxy) == [] and client.get(prefix + "m0") == data[0]


def test_copy_many_with_the_sources_listed_sends_no_head(pclient: objio.Client,
                                                         proxy: FaultProxy,
                                                         client: objio.Client,
                                                         prefix: str) -> None:
    for i in range(3):
        client.put_bytes(prefix + f"s/{i}", f"v{i}".encode())
    infos = client.list_objects(prefix + "s/")
    pairs = [(f"s3://objio-test/{i.key}", f"s3://objio-test/{i.key}".replace("/s/", "/d/"))
             for i in infos]
    client.put_bytes(prefix + "s/1", b"changed since the listing")
    assert pclient.copy_many(pairs, sources=infos) == (3, 2 + 25 + 2)
    assert client.get(prefix + "d/1") == b"changed since the listing"
    assert client.get(prefix + "d/2") == b"v2"
    # one CopyObject each; the changed one: 412, a HEAD, and a copy of what it is now
    assert [r.method for r in proxy.log].count("HEAD") == 1
    assert len(_copies(proxy)) == 4
    with pytest.raises(ValueError, match="one entry per pair"):
        pclient.copy_many(pairs, sources=infos[:2])


@pytest.mark.parametrize("code, retried", [("InternalError", True), ("SlowDown", True),
                                           ("AccessDenied", False)])
def test_copy_answered_200_with_an_error_body(pclient: objio.Client, proxy: FaultProxy,
                                              client: objio.Client, prefix: str, code: str,
                                              retried: bool) -> None:
    client.put_bytes(prefix + "src", b"payload")
    proxy.add(_is_copy(False), Forge(_error(200, code)))
    if retried:
        assert pclient.copy(prefix + "src", prefix + "dst") == 7
        assert client.get(prefix + "dst") == b"payload"
        assert len(_copies(proxy)) == 2
    else:
        with pytest.raises(PermissionError, match="CopyObject"):
            pclient.copy(prefix + "src", prefix + "dst")
        assert len(_copies(proxy)) == 1
        assert not client.exists(prefix + "dst")


@pytest.mark.parametrize("fault", ["lost", "cut"])
def test_copy_with_its_answer_lost_or_cut_is_made_again(pclient: objio.Client,
                                                        proxy: FaultProxy, client: objio.Client,
                                                        prefix: str, fault: str) -> None:
    client.put_bytes(prefix + "src", b"payload")
    proxy.add(_is_copy(False), LoseResponse() if fault == "lost" else Rechunk(keep=60))
    assert pclient.copy(prefix + "src", prefix + "dst") == 7
    assert client.get(prefix + "dst") == b"payload"
    assert len(_copies(proxy)) == 2


def test_copy_whose_answer_does_not_match_the_source(pclient: objio.Client, proxy: FaultProxy,
                                                     client: objio.Client, prefix: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    client.put_bytes(prefix + "src", b"payload")

    def wrong_etag(r: Request, resp: Response) -> Response:
        resp.body = re.sub(rb"<ETag>[^<]*</ETag>", b"<ETag>0123456789abcdef0123456789abcdef</ETag>",
                           resp.body)
        return resp

    proxy.add(_is_copy(False), Rewrite(wrong_etag), times=1)  # once: made again, then right
    with caplog.at_level(logging.WARNING, "objio.engine"):
        assert pclient.copy(prefix + "src", prefix + "dst") == 7
    assert any("copying it again" in r.message for r in caplog.records)
    assert len(_copies(proxy)) == 2
    proxy.clear()
    proxy.add(_is_copy(False), Rewrite(wrong_etag), times=2)
    with pytest.raises(objio.IntegrityError, match="the copy was deleted"):
        pclient.copy(prefix + "src", prefix + "dst2")
    assert not client.exists(prefix + "dst2")


def test_copy_crc32c_reported_by_the_store_is_checked(pclient: objio.Client,
                                                      proxy: FaultProxy, client: objio.Client,
                                                      prefix: str) -> None:
    client.put_bytes(prefix + "src", b"payload")
    wrong = base64.b64encode((google_crc32c.value(b"payload") ^ 1).to_bytes(4, "big"))

    def wrong_crc(r: Request, resp: Response) -> Response:  # the ETag alone would match
        resp.body = resp.body.replace(b"</CopyObjectResult>",
                                      b"<ChecksumCRC32C>" + wrong + b"</ChecksumCRC32C>"
                                      b"</CopyObjectResult>")
        return resp

    proxy.add(_is_copy(False), Rewrite(wrong_crc), times=2)
    with pytest.raises(objio.IntegrityError, match="CRC32C"):
        pclient.copy(prefix + "src", prefix + "dst")
    assert not client.exists(prefix + "dst")


def test_copy_checksum_refused_goes_on_without(pclient: objio.Client, proxy: FaultProxy,
                                               client: objio.Client, prefix: str,
                                               caplog: pytest.LogCaptureFixture) -> None:
    client.put_bytes(prefix + "src", b"payload")
    proxy.add(lambda r: _is_copy(False)(r) and "x-amz-checksum-algorithm" in r.headers,
              Forge(_error(400, "InvalidArgument", "x-amz-checksum-algorithm")), times=None)
    with caplog.at_level(logging.WARNING, "objio.engine"):
        pclient.copy(prefix + "src", prefix + "d1")
        pclient.copy(prefix + "src", prefix + "d2")
    assert [("x-amz-checksum-algorithm" in r.headers) for r in _copies(proxy)] == [
        True, False, False]
    assert len([r for r in caplog.records if "refused the CRC32C" in r.message]) == 1
    assert client.get(prefix + "d2") == b"payload"


# ------------------------------------------------------------------------------ multipart copy
BIG = 12 * MiB + 12345  # above pclient's 6 MiB copy threshold: 3 parts of 5 MiB


def test_multipart_copy(pclient: objio.Client, proxy: FaultProxy, client: objio.Client,
                        prefix: str) -> None:
    data = os.urandom(BIG)
    client.put_bytes(prefix + "src", data)
    etag = client.stat(prefix + "src").etag
    assert pclient.copy(prefix + "src", prefix + "dst") == BIG
    assert client.get(prefix + "dst") == data
    assert _body_moves(proxy) == [] and _copies(proxy, part=False) == []
    parts = _copies(proxy, part=True)
    ranges = sorted(r.headers["x-amz-copy-source-range"] for r in parts)
    assert ranges == sorted([f"bytes=0-{5 * MiB - 1}", f"bytes={5 * MiB}-{10 * MiB - 1}",
                             f"bytes={10 * MiB}-{BIG - 1}"])
    assert all(r.headers["x-amz-copy-source-if-match"] == f'"{etag}"' for r in parts)
    assert _stored_crc(client, prefix + "dst") == google_crc32c.value(data)  # FULL_OBJECT
    assert _uploads_left(client, prefix) == []


@pytest.mark.parametrize("status, code", [(403, "AccessDenied"), (200, "AccessDenied"),
                                          (400, "InvalidRequest")])
def test_a_part_copy_failing_aborts_the_upload(pclient: objio.Client, proxy: FaultProxy,
                                               client: objio.Client, prefix: str, status: int,
                                               code: str) -> None:
    client.put_bytes(prefix + "src", os.urandom(BIG))
    proxy.add(lambda r: _is_copy(True)(r) and r.query.get("partNumber") == "2",
              Forge(_error(status, code)))
    with pytest.raises(objio.ObjectStoreError, match="UploadPartCopy"):
        pclient.copy(prefix + "src", prefix + "dst")
    assert _uploads_left(client, prefix) == []
    assert not client.exists(prefix + "dst")
    assert any(r.method == "DELETE" and "uploadId" in r.query for r in proxy.log)


def test_a_part_copy_answered_200_internal_error_is_sent_again(
        pclient: objio.Client, proxy: FaultProxy, client: objio.Client, prefix: str) -> None:
    data = os.urandom(BIG)
    client.put_bytes(prefix + "src", data)
    proxy.add(_is_copy(True), Forge(_error(200, "InternalError")))
    proxy.add(_is_copy(True), LoseResponse())
    assert pclient.copy(prefix + "src", prefix + "dst") == BIG
    assert client.get(prefix + "dst") == data
    assert len(_copies(proxy, part=True)) == 5
    assert _uploads_left(client, prefix) == []


def test_source_changed_during_a_multipart_copy(pclient: objio.Client, proxy: FaultProxy,
                                                client: objio.Client, prefix: str) -> None:
    old, new = os.urandom(BIG), os.urandom(BIG)
    client.put_bytes(prefix + "src", old)

    def overwrite(r: Request) -> Request:  # the source changes under the first part's copy
        client.put_bytes(prefix + "src", new)
        return r

    proxy.add(_is_copy(True), AlterRequest(overwrite))
    assert pclient.copy(prefix + "src", prefix + "dst") == BIG
    assert client.get(prefix + "dst") == new  # every part from one version: the new one
    assert _uploads_left(client, prefix) == []
    etags = {r.headers["x-amz-copy-source-if-match"] for r in _copies(proxy, part=True)}
    assert len(etags) == 2
    # a source that keeps changing: ObjectChanged, nothing left behind
    proxy.clear()
    proxy.add(_is_copy(True), Forge(_error(412, "PreconditionFailed")), times=None)
    with pytest.raises(objio.ObjectStoreError) as info:
        pclient.copy(prefix + "src", prefix + "dst2")
    assert info.value.code == "ObjectChanged"
    assert _uploads_left(client, prefix) == [] and not client.exists(prefix + "dst2")


def test_multipart_copy_parts_not_matching_the_source_crc_are_not_completed(
        pclient: objio.Client, proxy: FaultProxy, client: objio.Client, prefix: str) -> None:
    client.put_bytes(prefix + "src", os.urandom(BIG))

    def wrong_crc(r: Request, resp: Response) -> Response:
        resp.body = re.sub(rb"<ChecksumCRC32C>[^<]*</ChecksumCRC32C>",
                           b"<ChecksumCRC32C>AAAAAA==</ChecksumCRC32C>", resp.body)
        return resp

    proxy.add(lambda r: _is_copy(True)(r) and r.query.get("partNumber") == "3",
              Rewrite(wrong_crc), times=None)
    with pytest.raises(objio.IntegrityError, match="nothing was written"):
        pclient.copy(prefix + "src", prefix + "dst")
    assert not client.exists(prefix + "dst")
    assert _uploads_left(client, prefix) == []
    assert not any(r.method == "POST" and "uploadId" in r.query for r in proxy.log)


# ------------------------------------------------------------------------------ CLI
def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def via_proxy(proxy: FaultProxy, cli_env: list[str], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setattr(engine, "_BACKOFF_BASE_S", 0.001)
    proxy.clear()
    return ["--endpoint-url", proxy.endpoint_url]


@pytest.mark.parametrize("verb", ["cp", "mv", "sync"])
def test_cli_between_s3_prefixes_copies_server_side(client: objio.Client, prefix: str,
                                                    proxy: FaultProxy, via_proxy: list[str],
                                                    verb: str,
                                                    capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer, "STREAM_THRESHOLD", 64 * 1024)  # "big" would be streamed
    data = {"a": b"A" * 10, "sub/b": os.urandom(100_000), "big": os.urandom(300_000)}
    for k, v in data.items():
        client.put_bytes(prefix + "src/" + k, v)
    argv = [verb, prefix + "src/", prefix + "dst/", *via_proxy]
    if verb != "sync":
        argv.append("--recursive")
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    for k, v in data.items():
        assert client.get(prefix + "dst/" + k) == v
    assert len(_copies(proxy)) == 3 and _body_moves(proxy) == []
    # the listing told each source's size and ETag: no HEAD per object
    assert [r.method for r in proxy.log].count("HEAD") == 0
    left = sorted(client.list(prefix + "src/"))
    assert left == ([] if verb == "mv" else sorted(
        objio.parse_uri(prefix + "src/" + k).key for k in data))


def test_cli_mv_deletes_only_sources_copied(client: objio.Client, prefix: str,
                                            proxy: FaultProxy, via_proxy: list[str],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    for k in ("k0", "k1", "k2"):
        client.put_bytes(prefix + "src/" + k, k.encode())
    proxy.add(lambda r: _is_copy()(r) and r.headers["x-amz-copy-source"].endswith("/k1"),
              Forge(_error(403, "AccessDenied")))
    code, out, err = run(capsys, "mv", "-r", prefix + "src/", prefix + "dst/",
                         "--max-in-flight", "1", *via_proxy)
    assert code == 1 and "k1" in err.splitlines()[-1]
    src_left = [k.rsplit("/", 1)[1] for k in client.list(prefix + "src/")]
    dst_made = [k.rsplit("/", 1)[1] for k in client.list(prefix + "dst/")]
    assert src_left == ["k1", "k2"] and dst_made == ["k0"]
    assert out.splitlines() == [f"move: {prefix}src/k0 to {prefix}dst/k0"]
