"""A listing is complete, or it is an error (issue 16, A; DESIGN.md: "A listing is returned only
when every page was complete and the continuation moved forward").

Against the real LocalS3Server behind tests/faultproxy.py, for every way objio lists: a page
cut short but well framed (matching Content-Length), a page that lost an entry (KeyCount no
longer matches), a truncated page without its NextContinuationToken, a continuation token sent
back unchanged, and 503 SlowDown. Once (transient), the page is asked for again and the listing
holds every key exactly once; always (persistent), ObjectStoreError (an OSError) naming the
prefix asked for. Nothing that deletes acts on an incomplete listing (``delete`` of a prefix,
``objio sync --delete``). Plus D2: a local path that does not exist is FileNotFoundError.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any, AsyncIterator

import pytest

import objio
from faultproxy import FaultProxy, Forge, Request, Response, Rewrite
from objio import engine
from objio.backend import ListPage, ObjectInfo, UploadInfo
from objio.cli import main as cli_main
from objio.uri import ObjectURI

BUCKET = "objio-test"  # the session bucket of tests/conftest.py
N_KEYS = 1200  # two ListObjectsV2 pages of at most 1000 keys


@pytest.fixture(scope="module")
def many(client: objio.Client) -> Iterator[str]:
    """A prefix holding N_KEYS empty objects (listed in two pages), for the module."""
    prefix = f"s3://{BUCKET}/listing-{uuid.uuid4().hex[:8]}/"
    client.put_many(((f"{prefix}k{i:05d}", b"") for i in range(N_KEYS)), max_in_flight=64)
    yield prefix
    client.delete(prefix)



def _key(uri: str) -> str:
    return objio.parse_uri(uri).key


def _lists(prefix: str, *, token: bool | None = None) -> Callable[[Request], bool]:
    """ListObjectsV2 requests under ``prefix``; with ``token``, only those that continue a
    listing (True) or that do not (False)."""
    def match(r: Request) -> bool:
        q = r.query
        if r.method != "GET" or q.get("list-type") != "2" or q.get("prefix") != _key(prefix):
            return False
        return token is None or ("continuation-token" in q) == token

    return match


# ------------------------------------------------------------------------------ faults
def _cut(req: Request, resp: Response) -> Response:
    """The body ends after the entry at its middle: a well-formed start, no closing tag, half
    the entries lost (sent with a Content-Length that matches what is sent)."""
    body = resp.body
    end = body.find(b"</Contents>", len(body) // 2)
    resp.body = body[:end + len(b"</Contents>")] if end > 0 else body[:len(body) // 2]
    return resp


def _drop_entry(req: Request, resp: Response) -> Response:
    """One <Contents> entry fewer in a document that is still whole: only KeyCount tells."""
    body = resp.body
    a = body.find(b"<Contents>")
    if a >= 0:
        b = body.index(b"</Contents>", a) + len(b"</Contents>")
        resp.body = body[:a] + body[b:]
    return resp


def _no_token(req: Request, resp: Response) -> Response:
    """IsTruncated=true without the NextContinuationToken."""
    resp.body = re.sub(rb"<NextContinuationToken>[^<]*</NextContinuationToken>", b"", resp.body)
    return resp


def _repeat_token(req: Request, resp: Response) -> Response:
    """The page says "more after the token you sent" (the same token back): a listing that
    would repeat this page forever."""
    sent = req.query["continuation-token"].replace("&", "&amp;").replace("<", "&lt;").encode()
    body = re.sub(rb"<NextContinuationToken>[^<]*</NextContinuationToken>", b"", resp.body)
    body = body.replace(b"<IsTruncated>false</IsTruncated>", b"<IsTruncated>true</IsTruncated>")
    resp.body = body.replace(b"</ListBucketResult>", b"<NextContinuationToken>" + sent +
                             b"</NextContinuationToken></ListBucketResult>")
    return resp


_SLOW_DOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
              b"<Message>Please reduce your request rate.</Message></Error>")


def _slow_down(req: Request) -> Response:
    return Response(503, "Slow Down", [("Content-Type", "application/xml")], _SLOW_DOWN)


# name -> (which list requests it hits: those with a continuation token or not, the action)
FAULTS: dict[str, tuple[bool, Any]] = {
    "cut": (True, Rewrite(_cut)),
    "dropped-entry": (True, Rewrite(_drop_entry)),
    "no-token": (False, Rewrite(_no_token)),
    "repeated-token": (True, Rewrite(_repeat_token)),
    "slowdown": (True, Forge(_slow_down)),
}

def _manifest_keys(c: objio.Client, p: str) -> list[str]:
    import os
    import tempfile

    from objio.manifest import read_manifest, write_manifest

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.jsonl")
        try:
            write_manifest(p, path, client=c)
        finally:
            assert os.listdir(d) in ([], ["m.jsonl"])  # no partial file left behind
        return [i.key for i in read_manifest(path)]


LISTERS: dict[str, Callable[[objio.Client, str], list[str]]] = {
    "list": lambda c, p: c.list(p),
    "list_objects": lambda c, p: [i.key for i in c.list_objects(p)],
    "list_level": lambda c, p: [i.key for i in c.list_level(p)[1]],
    "fastlist": lambda c, p: c.list(p, fast=True),
    # issue 17: streamed listings and manifests
    "list_iter": lambda c, p: list(c.list_iter(p)),
    "list_iter_fast": lambda c, p: [i.key for i in c.list_iter(p, fast=True, info=True)],
    "manifest": _manifest_keys,
}


# (FastList retried a 503 before: tests/test_fastlist.py)
_ONCE = [(lister, fault) for lister in LISTERS for fault in FAULTS
         if (lister, fault) not in (("fastlist", "slowdown"), ("list_iter_fast", "slowdown"))]


@pytest.mark.parametrize(("lister", "fault"), _ONCE)
def test_a_bad_page_once_is_asked_for_again(pclient: objio.Client, proxy: FaultProxy,
                                            client: objio.Client, many: str, lister: str,
                                            fault: str) -> None:
    token, action = FAULTS[fault]
    rule = proxy.add(_lists(many, token=token), action, times=1)
    got = LISTERS[lister](pclient, many)
    assert rule.hits == 1
    assert got == client.list(many)  # every key, once, in order
    assert len(got) == len(set(got)) == N_KEYS


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("lister", LISTERS)
def test_a_bad_page_every_time_raises_naming_the_prefix(pclient: objio.Client,
                                                        proxy: FaultProxy, many: str,
                                                        lister: str, fault: str) -> None:
    token, action = FAULTS[fault]
    proxy.add(_lists(many, token=token), action, times=None)
    with pytest.raises(objio.ObjectStoreError) as info:
        LISTERS[lister](pclient, many)
    e = info.value
    assert isinstance(e, OSError)
    assert many in str(e) and e.uri == many  # s3://bucket/prefix/, not s3://bucket/
    assert e.code == ("SlowDown" if fault == "slowdown" else "IncompleteListing")


def test_listing_a_glob_checks_its_pages_too(pclient: objio.Client, proxy: FaultProxy,
                                             client: objio.Client, many: str) -> None:
    proxy.add(_lists(many, token=True), Rewrite(_cut), times=1)
    assert pclient.list(many + "k0*") == client.list(many + "k0*")
    proxy.add(_lists(many, token=True), Rewrite(_cut), times=None)
    with pytest.raises(objio.ObjectStoreError, match="incomplete listing page"):
        pclient.list(many + "k0*")


def test_slowdown_on_a_plain_listing_is_retried(pclient: objio.Client, proxy: FaultProxy,
                                                client: objio.Client, many: str) -> None:
    """503 SlowDown on the first page (today: one request, then the error)."""
    rule = proxy.add(_lists(many, token=False), Forge(_slow_down), times=2)
    assert pclient.list(many) == client.list(many)
    assert rule.hits == 2


def test_datasets_from_prefix_get_the_whole_listing_or_an_error(
        pclient: objio.Client, proxy: FaultProxy, many: str) -> None:
    from objio.torch import S3MapDataset

    cfg = pclient.config
    proxy.add(_lists(many, token=True), Rewrite(_cut), times=1)
    assert len(S3MapDataset.from_prefix(many, region=cfg.region, s3client_config=cfg)) == N_KEYS
    proxy.add(_lists(many, token=True), Rewrite(_cut), times=None)
    with pytest.raises(objio.ObjectStoreError, match="incomplete listing page"):
        len(S3MapDataset.from_prefix(many, region=cfg.region, s3client_config=cfg))


# ------------------------------------------------------------------------------ deleting
def _copy_of(client: objio.Client, n: int = N_KEYS) -> str:
    prefix = f"s3://{BUCKET}/listing-dst-{uuid.uuid4().hex[:8]}/"
    client.put_many(((f"{prefix}k{i:05d}", b"") for i in range(n)), max_in_flight=64)
    return prefix


def test_delete_of_a_prefix_deletes_nothing_on_an_incomplete_listing(
        pclient: objio.Client, proxy: FaultProxy, client: objio.Client) -> None:
    target = _copy_of(client)
    try:
        proxy.add(_lists(target), Rewrite(_cut), times=None)
        with pytest.raises(objio.ObjectStoreError, match="incomplete listing page"):
            pclient.delete(target)
        assert not [r for r in proxy.log if r.method == "POST" and "delete" in r.query]
        assert len(client.list(target)) == N_KEYS
        proxy.clear()
        proxy.add(_lists(target, token=True), Rewrite(_cut), times=1)
        assert pclient.delete(target) == N_KEYS
        assert client.list(target) == []
    finally:
        client.delete(target)


def test_sync_delete_deletes_nothing_when_the_source_listing_is_incomplete(
        pclient: objio.Client, proxy: FaultProxy, client: objio.Client, many: str,
        cli_env: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Before: the source listing ended with a cut page, and sync --delete removed the
    destination objects of the keys it never saw (exit 0)."""
    dst = _copy_of(client)
    flags = ["--endpoint-url", pclient.config.endpoint_url or ""]
    try:
        proxy.add(_lists(many, token=True), Rewrite(_cut), times=None)
        code = cli_main(["sync", many, dst, "--delete", *flags])
        out, err = capsys.readouterr()
        assert code == 1
        assert len(client.list(dst)) == N_KEYS  # nothing deleted
        assert not [r for r in proxy.log if r.method in ("POST", "DELETE")]
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("objio: error: ") and many in lines[0]
        assert "Traceback" not in err and "delete:" not in out
        # the same fault once: the page is asked for again, nothing to copy or delete
        proxy.clear()
        proxy.add(_lists(many, token=True), Rewrite(_cut), times=1)
        code = cli_main(["sync", many, dst, "--delete", "--json", *flags])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert '"deleted": 0' in out and '"objects": 0' in out
        assert len(client.list(dst)) == N_KEYS
    finally:
        client.delete(dst)


def test_objio_ls_of_an_incomplete_listing_fails(pclient: objio.Client, proxy: FaultProxy,
                                                many: str, cli_env: list[str],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    proxy.add(_lists(many, token=True), Rewrite(_drop_entry), times=None)
    code = cli_main(["ls", many, "--endpoint-url", pclient.config.endpoint_url or ""])
    _, err = capsys.readouterr()
    assert code == 1 and "KeyCount" in err and many in err and "Traceback" not in err


# ------------------------------------------------------------------------------ uploads, buckets
@pytest.fixture
def uploads(client: objio.Client, prefix: str) -> Iterator[list[tuple[str, str]]]:
    """Three multipart uploads in progress under ``prefix``."""
    obj = objio.parse_uri(prefix)
    backend = client._backend(obj)
    made = [(obj.key + f"u{i}", engine.run(engine.create_multipart(
        backend, obj.with_key(obj.key + f"u{i}"), 3))) for i in range(3)]
    yield made
    client.abort_multipart_uploads(prefix)


def _lists_uploads(prefix: str) -> Callable[[Request], bool]:
    return lambda r: (r.method == "GET" and "uploads" in r.query
                      and r.query.get("prefix") == _key(prefix))


def _cut_uploads(req: Request, resp: Response) -> Response:
    body = resp.body
    resp.body = body[:body.index(b"</Upload>") + len(b"</Upload>")]
    return resp


def _truncated_without_markers(req: Request, resp: Response) -> Response:
    body = re.sub(rb"<Next(KeyMarker|UploadIdMarker)>[^<]*</Next\1>", b"", resp.body)
    resp.body = body.replace(b"<IsTruncated>false</IsTruncated>",
                             b"<IsTruncated>true</IsTruncated>")
    return resp


@pytest.mark.parametrize("action", [Rewrite(_cut_uploads), Rewrite(_truncated_without_markers),
                                    Forge(_slow_down)], ids=["cut", "no-markers", "slowdown"])
def test_list_multipart_uploads_complete_or_an_error(pclient: objio.Client, proxy: FaultProxy,
                                                     prefix: str, action: Any,
                                                     uploads: list[tuple[str, str]]) -> None:
    proxy.add(_lists_uploads(prefix), action, times=1)
    assert sorted(pclient.list_multipart_uploads(prefix)) == sorted(uploads)
    proxy.add(_lists_uploads(prefix), action, times=None)
    with pytest.raises(objio.ObjectStoreError) as info:
        pclient.list_multipart_uploads(prefix)
    assert prefix in str(info.value)
    with pytest.raises(objio.ObjectStoreError):  # and nothing is aborted on such a listing
        pclient.abort_multipart_uploads(prefix)
    proxy.clear()
    assert sorted(pclient.list_multipart_uploads(prefix)) == sorted(uploads)


def _is_list_buckets(r: Request) -> bool:
    return r.method == "GET" and r.path.rstrip("/") == "" and not r.query


def _cut_buckets(req: Request, resp: Response) -> Response:
    resp.body = resp.body[:resp.body.index(b"</Bucket>") + len(b"</Bucket>")]
    return resp


@pytest.mark.parametrize("action", [Rewrite(_cut_buckets), Forge(_slow_down)],
                         ids=["cut", "slowdown"])
def test_list_buckets_complete_or_an_error(pclient: objio.Client, proxy: FaultProxy,
                                           client: objio.Client, action: Any) -> None:
    client.create_bucket("s3://objio-listing-extra", exist_ok=True)
    try:
        proxy.add(_is_list_buckets, action, times=1)
        assert pclient.list_buckets() == client.list_buckets()
        proxy.add(_is_list_buckets, action, times=None)
        with pytest.raises(objio.ObjectStoreError, match="ListBuckets"):
            pclient.list_buckets()
    finally:
        proxy.clear()
        client.delete_bucket("s3://objio-listing-extra")


# ------------------------------------------------------------------------------ the engine's rule
class _TokenServer:
    """ListObjectsV2 pages of one key each (``k0``, ``k1``, ...), whose continuation tokens
    come from ``tokens`` (None: the last page), and that counts its requests."""

    scheme = "s3"

    def __init__(self, tokens: list[str | None]) -> None:
        self.tokens = tokens
        self.requests: list[str | None] = []

    async def list_page(self, bucket_uri: ObjectURI, prefix: str = "", delimiter: Any = None,
                        start_after: str | None = None, page_size: int = 1000,
                        continuation_token: str | None = None) -> ListPage:
        self.requests.append(continuation_token)
        i = len(self.requests) - 1
        await asyncio.sleep(0)
        return ListPage([ObjectInfo(f"{prefix}k{i}", 0, 0.0, "")], [],
                        self.tokens[min(i, len(self.tokens) - 1)])

    def list_pages(self, *a: Any, **kw: Any) -> AsyncIterator[ListPage]:
        raise AssertionError("the engine asks for one page at a time")


def _all(server: Any) -> list[str]:
    async def go() -> list[str]:
        out: list[str] = []
        async for page in engine.list_pages(server, ObjectURI("s3", "b", ""), "p/", attempts=3):
            out += [o.key for o in page.objects]
        return out

    return asyncio.run(go())


def test_a_token_seen_before_in_the_listing_raises_after_one_retry() -> None:
    server = _TokenServer(["t1", "t2", "t1"])  # the third page points back to the second
    with pytest.raises(objio.ObjectStoreError, match="'t1' again") as info:
        _all(server)
    assert info.value.code == "IncompleteListing" and info.value.uri == "s3://b/p/"
    assert server.requests == [None, "t1", "t2", "t2"]  # the third page asked for twice
    server = _TokenServer(["t1", "t2", "t2"])  # the token just sent, back
    with pytest.raises(objio.ObjectStoreError, match="'t2' again"):
        _all(server)
    assert _all(_TokenServer(["t1", "t2", None])) == ["p/k0", "p/k1", "p/k2"]


def test_upload_markers_that_do_not_move_forward_raise() -> None:
    class Uploads:
        scheme = "s3"
        calls = 0

        async def list_uploads_page(self, bucket_uri: ObjectURI, prefix: str, key_marker: str,
                                    upload_id_marker: str
                                    ) -> tuple[list[UploadInfo], tuple[str, str] | None]:
            self.calls += 1
            return [UploadInfo("k", f"u{self.calls}", 0.0)], ("k", "m")  # always the same

    server = Uploads()
    with pytest.raises(objio.ObjectStoreError, match="again") as info:
        asyncio.run(engine.list_uploads(server, ObjectURI("s3", "b", ""), "p/", 3))  # type: ignore[arg-type]
    assert info.value.code == "IncompleteListing" and server.calls == 3


# ------------------------------------------------------------------------------ D2: no scheme
def test_a_missing_local_path_is_an_error_with_a_hint(tmp_path: Any, monkeypatch: Any,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """``my-bucket/train`` (s3:// forgotten) is a local path that does not exist: an error,
    not an empty listing."""
    monkeypatch.chdir(tmp_path)
    for call in (lambda: objio.list("my-bucket/train"),
                 lambda: objio.list_objects("my-bucket/train/", fast=True),
                 lambda: objio.list_level("my-bucket/train/")):
        with pytest.raises(FileNotFoundError, match=r"my-bucket/train.*did you mean "
                                                    r"s3://my-bucket/train/?\?"):
            call()
    code = cli_main(["ls", "my-bucket/train/"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "did you mean s3://my-bucket/train/?" in lines[0]
    assert lines[0].startswith("objio: error: ")
    # no hint where the path does not read as bucket/key; still an error
    with pytest.raises(FileNotFoundError) as info:
        objio.list(str(tmp_path / "nope" / "x"))
    assert "nope" in str(info.value) and "did you mean" not in str(info.value)
    # what exists is listed as before: an empty directory is an empty listing (ls: exit 1)
    (tmp_path / "empty").mkdir()
    assert objio.list("empty/") == [] and cli_main(["ls", "empty/"]) == 1
    (tmp_path / "empty" / "f").write_bytes(b"x")
    assert objio.list("empty/") == [str(tmp_path / "empty" / "f")]
