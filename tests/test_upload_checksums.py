"""Upload checksums, on by default (issue 16 C1): every PutObject and UploadPart carries its
CRC32C and multipart uploads are declared CRC32C FULL_OBJECT; a store that refuses them gets
the upload without (or with per-part CRCs only) after one warning; a body the store finds
damaged is sent once more, then raises IntegrityError. Against the real LocalS3Server through
the fault-injecting proxy (tests/faultproxy.py).
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Callable, Iterator

import google_crc32c
import pytest

import objio
from faultproxy import AlterRequest, FaultProxy, Forge, Request, Response
from objio import engine
from objio.config import MiB
from objio.errors import error_from_response, may_be_checksum_refusal
from objio.server import LocalS3Server

CRC = "x-amz-checksum-crc32c"
REFUSED = "refused the CRC32C checksum"


def _crc(data: bytes) -> str:
    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()


@pytest.fixture
def uclient(proxy: FaultProxy, s3_server: LocalS3Server,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[objio.Client]:
    """A client through the proxy with checksums as configured by default (nothing set), no
    memory of earlier refusals, and near-zero retry backoff."""
    monkeypatch.delenv("OBJIO_CHECKSUMS", raising=False)
    monkeypatch.setattr(engine, "_BACKOFF_BASE_S", 0.001)
    engine.forget_checksum_refusals()
    proxy.clear()
    yield objio.Client(s3_server.config.replace(endpoint_url=proxy.endpoint_url),
                       range_threshold=6 * MiB, part_size=5 * MiB, max_attempts=3)
    proxy.clear()
    engine.forget_checksum_refusals()


def _puts(proxy: FaultProxy) -> list[Request]:
    return [r for r in proxy.log if r.method == "PUT"]


def _parts(proxy: FaultProxy) -> list[Request]:
    return [r for r in proxy.log if r.method == "PUT" and "partNumber" in r.query]


def _creates(proxy: FaultProxy) -> list[Request]:
    return [r for r in proxy.log if r.method == "POST" and "uploads" in r.query]


def _completes(proxy: FaultProxy) -> list[Request]:
    return [r for r in proxy.log if r.method == "POST" and "uploadId" in r.query]


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING and REFUSED in r.message]


def _no_uploads_left(client: objio.Client, uri: str) -> bool:
    obj = objio.parse_uri(uri)
    backend = client._backend(obj)
    uploads = engine.run(backend.list_uploads(obj.with_key(""), obj.key))  # type: ignore[attr-defined]
    return not uploads


def _error(status: int, code: str, message: str, extra: str = "") -> Callable[[Request], Response]:
    body = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
            f"<Message>{message}</Message>{extra}</Error>").encode()
    return lambda r: Response(status, "Error", [("Content-Type", "application/xml")], body)


def _carries_crc(r: Request) -> bool:
    return CRC in r.headers


# ------------------------------------------------------------------------------ on by default
def test_every_upload_path_sends_crc32c_by_default(uclient: objio.Client, proxy: FaultProxy,
                                                   prefix: str) -> None:
    assert objio.ClientConfig().resolved(environ={}).checksums is True
    small, big = os.urandom(3000), os.urandom(13 * MiB + 5)
    uclient.put_bytes(prefix + "small", small)
    uclient.put_bytes(prefix + "big", big)                       # multipart: 3 parts
    uclient.put_many([(prefix + f"m{i}", small) for i in range(3)])
    uclient.put(prefix + "gen/", num=2, size=2000)               # put_generated's path too
    uclient.copy(prefix + "small", prefix + "copy")              # server-side: CopyObject
    with objio.open(prefix + "w", "wb", client=uclient, part_size=5 * MiB) as w:
        w.write(big)
    with objio.open(prefix + "w-small", "wb", client=uclient) as w:
        w.write(small)
    copies = [r for r in _puts(proxy) if "x-amz-copy-source" in r.headers]
    assert len(copies) == 1 and copies[0].headers.get("x-amz-checksum-algorithm") == "CRC32C"
    puts = [r for r in _puts(proxy) if "x-amz-copy-source" not in r.headers]
    assert len(puts) == 1 + 3 + 3 + 2 + 3 + 1
    for r in puts:
        assert r.headers.get(CRC) == _crc(r.body), r.target
    creates = _creates(proxy)
    assert len(creates) == 2 and all(
        r.headers.get("x-amz-checksum-algorithm") == "CRC32C"
        and r.headers.get("x-amz-checksum-type") == "FULL_OBJECT" for r in creates)
    completes = _completes(proxy)
    assert len(completes) == 2 and all(
        r.headers.get(CRC) == _crc(big) and r.headers.get("x-amz-checksum-type") == "FULL_OBJECT"
        and r.body.count(b"<ChecksumCRC32C>") == 3 for r in completes)
    for name, data in (("big", big), ("w", big), ("small", small), ("copy", small)):
        obj = objio.parse_uri(prefix + name)
        info = engine.run(uclient._backend(obj).head(obj, checksum=True))
        assert info.crc32c == google_crc32c.value(data)  # the store keeps the whole CRC32C


def test_checksums_false_and_the_env_var_turn_it_off(s3_server: LocalS3Server, proxy: FaultProxy,
                                                    prefix: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    proxy.clear()
    monkeypatch.delenv("OBJIO_CHECKSUMS", raising=False)
    cfg = s3_server.config.replace(endpoint_url=proxy.endpoint_url)
    objio.Client(cfg).put_bytes(prefix + "on", b"abc")             # on by default
    assert _puts(proxy)[-1].headers.get(CRC) == _crc(b"abc")
    proxy.clear()
    monkeypatch.setenv("OBJIO_CHECKSUMS", "0")
    env_off = objio.Client(cfg, range_threshold=6 * MiB, part_size=5 * MiB)
    arg_off = objio.Client(cfg.replace(checksums=False), range_threshold=6 * MiB,
                           part_size=5 * MiB)
    assert env_off.config.checksums is False and arg_off.config.checksums is False
    for c in (env_off, arg_off):
        c.put_bytes(prefix + "s", b"abc")
        c.put_bytes(prefix + "b", os.urandom(7 * MiB))
        with objio.open(prefix + "w", "wb", client=c, part_size=5 * MiB) as w:
            w.write(os.urandom(7 * MiB))
    assert len(_puts(proxy)) == 2 * (1 + 2 + 2)
    assert not any(CRC in r.headers for r in _puts(proxy))
    assert not any("x-amz-checksum-algorithm" in r.headers for r in _creates(proxy))
    assert not any(CRC in r.headers for r in _completes(proxy))


def test_dcp_and_checkpoint_saves_send_crc32c(s3_server: LocalS3Server, proxy: FaultProxy,
                                              prefix: str, uclient: objio.Client) -> None:
    torch = pytest.importorskip("torch")
    import torch.distributed.checkpoint as dcp

    from objio.torch import S3Checkpoint, S3StorageWriter

    cfg = s3_server.config.replace(endpoint_url=proxy.endpoint_url)
    sd = {f"t{i}": torch.arange(300_000, dtype=torch.float32) + i for i in range(3)}
    dcp.save(sd, storage_writer=S3StorageWriter(None, prefix + "dcp", s3client_config=cfg))
    with S3Checkpoint(s3client_config=cfg).writer(prefix + "ckpt.pt") as f:
        torch.save(sd, f)
    puts = _puts(proxy)
    assert len(puts) >= 4 and all(r.headers.get(CRC) == _crc(r.body) for r in puts)


# ------------------------------------------------------------------------------ refusals
REFUSALS = [
    pytest.param(_error(400, "InvalidRequest", "x-amz-checksum-crc32c is not supported"),
                 id="400-InvalidRequest"),
    pytest.param(_error(501, "NotImplemented", "Header 'x-amz-checksum-crc32c' with value "
                                               "'AAAAAA==' not implemented"), id="501-R2"),
    pytest.param(_error(400, "InvalidArgument", "Invalid argument.",
                        "<ArgumentName>x-amz-checksum-crc32c</ArgumentName>"),
                 id="400-InvalidArgument"),
]


@pytest.mark.parametrize("refusal", REFUSALS)
def test_a_store_that_refuses_the_header_gets_uploads_without_it(
        uclient: objio.Client, proxy: FaultProxy, prefix: str, refusal: Callable[..., Response],
        caplog: pytest.LogCaptureFixture) -> None:
    rule = proxy.add(_carries_crc, Forge(refusal), times=None)
    data = os.urandom(5000)
    with caplog.at_level(logging.WARNING):
        uclient.put_bytes(prefix + "first", data)          # refused, then sent again without
        assert rule.hits == 1
        later = os.urandom(7 * MiB)
        uclient.put_bytes(prefix + "second", data)
        uclient.put_bytes(prefix + "big", later)
        with objio.open(prefix + "w", "wb", client=uclient, part_size=5 * MiB) as w:
            w.write(later)
        uclient.put_many([(prefix + f"m{i}", data) for i in range(8)], max_in_flight=8)
    assert rule.hits == 1                                   # nothing sent it again
    assert len(_warnings(caplog)) == 1
    assert not any(CRC in r.headers for r in proxy.log[1:])
    assert not any("x-amz-checksum-algorithm" in r.headers for r in _creates(proxy))
    for name, want in (("first", data), ("second", data), ("big", later), ("w", later),
                       ("m7", data)):
        assert bytes(uclient.get(prefix + name)) == want


def test_concurrent_refusals_warn_once(uclient: objio.Client, proxy: FaultProxy, prefix: str,
                                       caplog: pytest.LogCaptureFixture) -> None:
    proxy.add(_carries_crc, Forge(_error(400, "InvalidRequest", "checksum not supported")),
              times=None)
    items = [(prefix + f"o{i}", os.urandom(1000 + i)) for i in range(16)]
    with caplog.at_level(logging.WARNING):
        uclient.put_many(items, max_in_flight=16)
    assert len(_warnings(caplog)) == 1
    for uri, data in items:
        assert bytes(uclient.get(uri)) == data


def _full_object_create(r: Request) -> bool:
    return r.method == "POST" and "uploads" in r.query and "x-amz-checksum-type" in r.headers


@pytest.mark.parametrize("how", ["put_bytes", "writer"])
def test_full_object_refused_falls_back_to_composite(uclient: objio.Client, proxy: FaultProxy,
                                                     prefix: str, how: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """R2 takes CRC32C only as COMPOSITE for multipart uploads: the store keeps the per-part
    CRC32Cs, and single PUTs keep theirs."""
    rule = proxy.add(_full_object_create, Forge(_error(
        400, "InvalidRequest", "The x-amz-checksum-type header is not supported")), times=None)
    data = os.urandom(13 * MiB)
    with caplog.at_level(logging.WARNING):
        for name in ("a", "b"):
            if how == "put_bytes":
                uclient.put_bytes(prefix + name, data)
            else:
                with objio.open(prefix + name, "wb", client=uclient, part_size=5 * MiB) as w:
                    w.write(data)
        uclient.put_bytes(prefix + "small", b"x" * 100)
    assert rule.hits == 1 and len(_warnings(caplog)) == 1
    creates = _creates(proxy)
    assert len(creates) == 3 and all(r.headers.get("x-amz-checksum-algorithm") == "CRC32C"
                                     for r in creates)
    assert all("x-amz-checksum-type" not in r.headers for r in creates[1:])
    assert all(r.headers.get(CRC) == _crc(r.body) for r in _puts(proxy))  # parts and the PUT
    completes = _completes(proxy)
    assert all(CRC not in r.headers and r.body.count(b"<ChecksumCRC32C>") == 3
               for r in completes)
    assert bytes(uclient.get(prefix + "a")) == data and bytes(uclient.get(prefix + "b")) == data
    assert _no_uploads_left(uclient, prefix + "a")


@pytest.mark.parametrize("refusal", [
    pytest.param(_error(400, "InvalidRequest", "Checksum type FULL_OBJECT is not supported"),
                 id="InvalidRequest"),
    pytest.param(_error(400, "InvalidPart", "One or more of the specified parts could not be "
                                            "found."), id="InvalidPart-MinIO"),
])
def test_a_completion_refused_for_its_whole_object_crc(uclient: objio.Client, proxy: FaultProxy,
                                                       prefix: str,
                                                       refusal: Callable[..., Response],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """A store that takes the CRC32C declaration but not a FULL_OBJECT completion (MinIO
    before 2025 answered InvalidPart): completed without the whole object's CRC32C."""
    rule = proxy.add(lambda r: r.method == "POST" and "uploadId" in r.query
                     and "x-amz-checksum-type" in r.headers, Forge(refusal), times=None)
    data = os.urandom(13 * MiB)
    with caplog.at_level(logging.WARNING):
        uclient.put_bytes(prefix + "a", data)
        uclient.put_bytes(prefix + "b", data)
    assert rule.hits == 1 and len(_warnings(caplog)) == 1
    assert bytes(uclient.get(prefix + "a")) == data and bytes(uclient.get(prefix + "b")) == data
    assert "x-amz-checksum-type" not in _creates(proxy)[-1].headers  # COMPOSITE from then on
    assert _no_uploads_left(uclient, prefix + "a")


@pytest.mark.parametrize("how", ["put_bytes", "writer"])
def test_parts_refused_in_an_upload_declared_crc32c_still_complete(
        uclient: objio.Client, proxy: FaultProxy, prefix: str, how: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """The upload was created with CRC32C when its parts are refused: they go again without,
    the upload completes without part checksums, nothing is left behind."""
    rule = proxy.add(lambda r: "partNumber" in r.query and _carries_crc(r),
                     Forge(_error(400, "InvalidArgument", "Unsupported checksum header")),
                     times=None)
    data = os.urandom(13 * MiB)
    with caplog.at_level(logging.WARNING):
        if how == "put_bytes":
            uclient.put_bytes(prefix + "a", data)
        else:
            with objio.open(prefix + "a", "wb", client=uclient, part_size=5 * MiB) as w:
                w.write(data)
    assert rule.hits >= 1 and len(_warnings(caplog)) == 1
    assert bytes(uclient.get(prefix + "a")) == data
    (complete,) = _completes(proxy)
    assert CRC not in complete.headers and b"<ChecksumCRC32C>" not in complete.body
    assert _no_uploads_left(uclient, prefix + "a")
    uclient.put_bytes(prefix + "b", b"later")
    assert CRC not in _puts(proxy)[-1].headers
    # and when the completion then fails too, the upload is aborted, never left behind
    engine.forget_checksum_refusals()
    proxy.add(lambda r: r.method == "POST" and "uploadId" in r.query,
              Forge(_error(400, "InvalidRequest", "something else went wrong")), times=None)
    with pytest.raises(objio.ObjectStoreError):
        if how == "put_bytes":
            uclient.put_bytes(prefix + "c", data)
        else:
            with objio.open(prefix + "c", "wb", client=uclient, part_size=5 * MiB) as w:
                w.write(data)
    proxy.clear()
    assert not uclient.exists(prefix + "c") and _no_uploads_left(uclient, prefix + "c")


@pytest.mark.parametrize("status,code,exc", [
    (403, "AccessDenied", PermissionError),
    (403, "SignatureDoesNotMatch", PermissionError),
    (404, "NoSuchBucket", FileNotFoundError),
])
def test_a_refusal_not_about_checksums_keeps_them_on(uclient: objio.Client, proxy: FaultProxy,
                                                     prefix: str, status: int, code: str,
                                                     exc: type[Exception],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    proxy.add(_carries_crc, Forge(_error(status, code, "no")), times=1)
    with caplog.at_level(logging.WARNING), pytest.raises(exc):
        uclient.put_bytes(prefix + "a", b"data")
    assert len(_puts(proxy)) == 1                  # not sent again without the checksum
    uclient.put_bytes(prefix + "b", b"data")
    assert _puts(proxy)[-1].headers.get(CRC) == _crc(b"data")
    assert not _warnings(caplog)


def test_a_400_that_stays_without_the_checksum_keeps_them_on(
        uclient: objio.Client, proxy: FaultProxy, prefix: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """A 400 InvalidArgument that is about something else comes back when the request goes
    again without the checksum: that error is raised, and checksums stay on."""
    proxy.add(lambda r: r.method == "PUT", Forge(_error(400, "InvalidArgument", "bad key")),
              times=2)
    with caplog.at_level(logging.WARNING), pytest.raises(objio.ObjectStoreError) as e:
        uclient.put_bytes(prefix + "a", b"data")
    assert e.value.code == "InvalidArgument"
    uclient.put_bytes(prefix + "b", b"data")
    assert _puts(proxy)[-1].headers.get(CRC) == _crc(b"data")
    assert not _warnings(caplog)


# ------------------------------------------------------------------------------ damaged bodies
def _flip(r: Request) -> Request:
    body = bytearray(r.body)
    body[len(body) // 2] ^= 0x01
    return r.with_body(bytes(body))


@pytest.mark.parametrize("size", [5000, 13 * MiB], ids=["PutObject", "UploadPart"])
def test_a_body_damaged_once_on_the_way_is_sent_again(uclient: objio.Client, proxy: FaultProxy,
                                                      prefix: str, size: int) -> None:
    rule = proxy.add(lambda r: r.method == "PUT", AlterRequest(_flip), times=1)
    data = os.urandom(size)
    uclient.put_bytes(prefix + "a", data)
    assert rule.hits == 1
    assert bytes(uclient.get(prefix + "a")) == data


@pytest.mark.parametrize("size", [5000, 13 * MiB], ids=["PutObject", "UploadPart"])
def test_a_body_damaged_every_time_raises_integrity_error(uclient: objio.Client,
                                                          proxy: FaultProxy, prefix: str,
                                                          size: int) -> None:
    proxy.add(lambda r: r.method == "PUT" and r.query.get("partNumber") in (None, "2"),
              AlterRequest(_flip), times=None)
    uri = prefix + "a"
    with pytest.raises(objio.IntegrityError) as e:
        uclient.put_bytes(uri, os.urandom(size))
    assert uri in str(e.value) and e.value.code == "BadDigest"
    assert isinstance(e.value, ValueError)
    damaged = [r for r in _puts(proxy) if r.query.get("partNumber") in (None, "2")]
    assert len(damaged) == 2                        # sent once more, not max_attempts times
    proxy.clear()
    assert not uclient.exists(uri) and _no_uploads_left(uclient, uri)


def test_the_writer_sends_a_damaged_part_again(uclient: objio.Client, proxy: FaultProxy,
                                               prefix: str) -> None:
    rule = proxy.add(lambda r: r.query.get("partNumber") == "2", AlterRequest(_flip), times=1)
    data = os.urandom(13 * MiB)
    with objio.open(prefix + "w", "wb", client=uclient, part_size=5 * MiB) as w:
        w.write(data)
    assert rule.hits == 1 and bytes(uclient.get(prefix + "w")) == data
    proxy.add(lambda r: r.query.get("partNumber") == "2", AlterRequest(_flip), times=None)
    with pytest.raises(objio.IntegrityError):
        with objio.open(prefix + "w2", "wb", client=uclient, part_size=5 * MiB) as w:
            w.write(data)
    proxy.clear()
    assert not uclient.exists(prefix + "w2") and _no_uploads_left(uclient, prefix + "w2")


# ------------------------------------------------------------------------------ translation
def test_digest_errors_and_refusals_are_told_apart() -> None:
    uri = "s3://b/k"
    for code in ("BadDigest", "XAmzContentChecksumMismatch", "InvalidDigest",
                 "XAmzContentSHA256Mismatch"):
        e = error_from_response("PutObject", uri, 400, f"<Error><Code>{code}</Code></Error>".encode())
        assert isinstance(e, objio.IntegrityError) and e.retryable and uri in str(e)
        assert not may_be_checksum_refusal(e)
    for status, code in ((400, "InvalidRequest"), (400, "InvalidArgument"),
                         (501, "NotImplemented"), (400, "NotImplemented"), (501, "Whatever")):
        e = error_from_response("PutObject", uri, status,
                                f"<Error><Code>{code}</Code></Error>".encode())
        assert may_be_checksum_refusal(e), (status, code)
    for status, code in ((403, "AccessDenied"), (403, "SignatureDoesNotMatch"),
                         (404, "NoSuchBucket"), (412, "PreconditionFailed"), (503, "SlowDown"),
                         (400, "EntityTooSmall"), (400, "AuthorizationHeaderMalformed")):
        e = error_from_response("PutObject", uri, status,
                                f"<Error><Code>{code}</Code></Error>".encode())
        assert not may_be_checksum_refusal(e), (status, code)
    e = error_from_response("PutObject", uri, 400, b"<Error><Code>InvalidArgument</Code><Message>"
                            b"Invalid</Message><ArgumentName>x-amz-checksum-type</ArgumentName>"
                            b"</Error>")
    assert "x-amz-checksum-type" in str(e)


# ------------------------------------------------------------------------------ one pass
class _CountingCrc:
    """Counts the bytes run through objio._crc32c.crc32c."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from objio import _crc32c

        self.nbytes = 0
        real = _crc32c.crc32c

        def counting(data: object, crc: int = 0) -> int:
            self.nbytes += memoryview(data).nbytes  # type: ignore[arg-type]
            return real(data, crc)

        monkeypatch.setattr(_crc32c, "crc32c", counting)


def test_the_writers_running_crc32c_covers_each_byte_once(client: objio.Client, prefix: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    counter = _CountingCrc(monkeypatch)
    rng = np.random.default_rng(5)
    written = bytearray()
    with objio.open(prefix + "o", "wb", client=client, part_size=5 * MiB) as w:
        for i in range(40):
            n = int(rng.integers(1, 3 * MiB))
            data = rng.integers(0, 256, n, dtype=np.uint8)
            if i % 3 == 0:
                w.write_zero_copy(data)          # borrowed pieces (>= 256 KiB) or copied
            else:
                w.write(data.tobytes())
            written += data.tobytes()
            if i % 2:
                assert w.running_crc32c() == google_crc32c.value(bytes(written))
    assert w.crc32c == google_crc32c.value(bytes(written))
    assert counter.nbytes == len(written)        # parts and running CRC: one pass
    assert bytes(client.get(prefix + "o")) == written


def test_a_dcp_save_runs_crc32c_over_its_bytes_once(tmp_path: object,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The item CRC32Cs of the manifest come from the writer's running CRC32C: with upload
    checksums on, a save computes one CRC32C pass, not one for the items and one for the
    parts."""
    torch = pytest.importorskip("torch")
    import torch.distributed.checkpoint as dcp

    from objio.torch import S3StorageReader, S3StorageWriter

    monkeypatch.delenv("OBJIO_CHECKSUMS", raising=False)
    sd = {f"t{i}": torch.arange(1_500_000, dtype=torch.float32) * (i + 1) for i in range(4)}
    sd["small"] = torch.arange(10)
    counter = _CountingCrc(monkeypatch)
    dcp.save(sd, storage_writer=S3StorageWriter(None, f"file://{tmp_path}/c"))
    total = sum(p.stat().st_size for p in (tmp_path / "c").iterdir())  # type: ignore[operator]
    assert counter.nbytes == total
    out = {k: torch.zeros_like(v) for k, v in sd.items()}
    dcp.load(out, storage_reader=S3StorageReader(None, f"file://{tmp_path}/c"))  # verified
    assert all(torch.equal(out[k], sd[k]) for k in sd)
