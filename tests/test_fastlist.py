"""FastList (objio.fastlist, objio.list(..., fast=True), objio ls --fast): every key exactly once,
in the sequential listing's order, against the real server (20,000 keys, uniform and skewed
layouts, keys with unicode and characters that sort before and after '/'), against in-memory
servers with both listing orders (byte order as AWS S3; path order with SeaweedFS's start-after
behaviour), and through a proxy that fails list requests."""

from __future__ import annotations

import asyncio
import bisect
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any, AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import objio
from objio import engine, fastlist
from objio.backend import ListPage, ObjectInfo
from objio.cli import main as cli_main
from objio.uri import ObjectURI

BUCKET = "objio-test"  # the session bucket of tests/conftest.py

# Characters that sort before '/' (0x2F) in byte order, '/', and after it (digits, letters,
# '~', unicode): where AWS S3 (bytes) and SeaweedFS (path components) order keys differently.
# No key is also a "directory" of others ('a' and 'a/x'): SeaweedFS keeps only one of the two
# (the in-memory servers below cover that case).
_SPECIAL = ["a-b", "a/x", "a/y", "a0", "a.b", "a!", "a~", "é-", "é/1", "日本/1", "日本-x",
            "sp ace", "plus+sign", "pct%20", "q?r", "amp&lt", "0!", "0/1", "0.", "z/y/x",
            "big-", "big!"]
N_BIG = 19_800


@pytest.fixture(scope="module")
def big_prefix(client: objio.Client) -> Iterator[str]:
    """One prefix for the module: 19,800 keys under big/ (99%) and 200 elsewhere (skewed
    as a whole; big/ alone is uniform)."""
    prefix = f"s3://{BUCKET}/fastlist-{uuid.uuid4().hex[:8]}/"
    keys = [f"big/{i:05d}" for i in range(N_BIG)]
    keys += _SPECIAL
    keys += [f"{c}{i}" for i, c in zip(range(200 - len(_SPECIAL)), "bcdxyzBCDXYZ-._~" * 40, strict=False)]
    client.put_many(((prefix + k, b"") for k in keys), max_in_flight=64)
    yield prefix
    client.delete(prefix)


def _keys(infos: list[ObjectInfo]) -> list[str]:
    return [i.key for i in infos]


def test_fastlist_skewed_equals_the_sequential_listing(client: objio.Client, big_prefix: str) -> None:
    seq = client.list(big_prefix)
    fast = client.list(big_prefix, fast=True)
    assert len(seq) == N_BIG + 200
    assert fast == seq  # same keys, each once, in the same order
    assert len(set(fast)) == len(fast)
    rel = {k[len(big_prefix) - len(f"s3://{BUCKET}/"):] for k in fast}
    assert set(_SPECIAL) <= rel


def test_fastlist_uniform_equals_the_sequential_listing(client: objio.Client, big_prefix: str) -> None:
    uri = big_prefix + "big/"
    seq = client.list_objects(uri)
    fast = client.list_objects(uri, fast=True)
    assert len(seq) == N_BIG
    assert fast == seq  # keys, sizes, dates and ETags


def _list_fast(client: objio.Client, uri: str, **kw: Any) -> tuple[list[str], dict[str, Any]]:
    obj = objio.parse_uri(uri)
    stats: dict[str, Any] = {}
    out = engine.run(fastlist.list_fast(client._backend(obj), obj.with_key(""), obj.key,
                                        stats=stats, **kw))
    return _keys(out), stats


def test_fastlist_really_lists_concurrently(client: objio.Client, big_prefix: str) -> None:
    keys, stats = _list_fast(client, big_prefix, max_in_flight=16)
    assert keys == client.list(big_prefix)
    # split into ranges (more requests than the 21 sequential pages), not a sequential fallback
    assert stats["order"] in ("bytes", "path") and stats["requests"] > 21


def test_fastlist_with_small_pages_splits_deeply(client: objio.Client, big_prefix: str) -> None:
    keys, stats = _list_fast(client, big_prefix, max_in_flight=32, page_size=97)
    assert keys == client.list(big_prefix) and stats["order"] != "sequential"


def test_datasets_from_a_large_prefix_use_fastlist(client: objio.Client, big_prefix: str,
                                                   s3_server: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """from_prefix lists with FastList, streamed (its first request is the prefix's first
    page, added at once; issue 17: before, the first page was listed sequentially and then
    again by FastList); every key once, in the sequential listing's order, in both
    datasets."""
    pytest.importorskip("torch")
    from objio.torch import S3IterableDataset, S3MapDataset
    from objio.torch import datasets as ds

    calls: list[str] = []
    real = fastlist.stream_fast

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(ds, "stream_fast", counting)

    def keys_of(d: Any) -> list[str]:
        n = d._listing.wait_all()
        return [d._listing.objects.get(i)[0].key for i in range(n)]

    seq = client.list(big_prefix)
    cfg = s3_server.config
    m = S3MapDataset.from_prefix(big_prefix, region="us-east-1", s3client_config=cfg)
    assert keys_of(m) == seq and len(m) == len(seq)
    assert m[len(seq) - 1].key == seq[-1]
    it = S3IterableDataset.from_prefix(big_prefix + "big/", region="us-east-1",
                                       s3client_config=cfg)
    base = big_prefix.split("/", 3)[3]
    assert keys_of(it) == [k for k in seq if k.startswith(base + "big/")]
    assert len(calls) == 2
    small = S3MapDataset.from_prefix(big_prefix + "big/0000", region="us-east-1",
                                     s3client_config=cfg)
    assert keys_of(small) == [k for k in seq if k.startswith(base + "big/0000")]
    assert len(keys_of(small)) == 10 and len(calls) == 3  # (one page: one request)


def test_cp_recursive_lists_with_fastlist(client: objio.Client, prefix: str, tmp_path: Any,
                                          s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = fastlist.list_fast

    async def counting(*args: Any, **kwargs: Any) -> list[ObjectInfo]:
        calls.append(args[2])
        return await real(*args, **kwargs)

    monkeypatch.setattr(fastlist, "list_fast", counting)
    client.put_many((f"{prefix}d/{i}", b"x" * i) for i in range(5))
    for k, v in (("AWS_ACCESS_KEY_ID", s3_server.access_key_id),
                 ("AWS_SECRET_ACCESS_KEY", s3_server.secret_access_key),
                 ("AWS_REGION", s3_server.region)):
        monkeypatch.setenv(k, v)
    assert cli_main(["cp", "-r", "-q", "--endpoint-url", s3_server.endpoint_url,
                     f"{prefix}d", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [str(i) for i in range(5)]
    assert (tmp_path / "out" / "3").read_bytes() == b"xxx"
    assert len(calls) == 1 and calls[0].endswith("d/")


def test_fastlist_glob_small_and_missing(client: objio.Client, prefix: str) -> None:
    client.put_many([(prefix + k, b"x") for k in ("a.npz", "b.npz", "c.txt", "d/e.npz")])
    assert client.list(prefix, fast=True) == client.list(prefix)
    assert client.list(prefix + "*.npz", fast=True) == client.list(prefix + "*.npz") \
        == [objio.parse_uri(prefix).key + n for n in ("a.npz", "b.npz")]
    assert client.list(prefix + "nothing/", fast=True) == []
    with pytest.raises(FileNotFoundError):
        client.list("s3://no-such-bucket-fastlist/x/", fast=True)


def test_fastlist_on_local_files(tmp_path: Any) -> None:
    for name in ("a", "b/c", "b/d", "e!"):
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"1")
    assert objio.list(str(tmp_path) + "/", fast=True) == objio.list(str(tmp_path) + "/")


def test_objio_ls_fast(client: objio.Client, big_prefix: str, s3_server: Any,
                       capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_access_key)
    monkeypatch.setenv("AWS_REGION", s3_server.region)
    args = ["ls", "--endpoint-url", s3_server.endpoint_url, big_prefix, "-r", "--json"]
    assert cli_main(args) == 0
    seq = json.loads(capsys.readouterr().out)
    assert cli_main([*args, "--fast"]) == 0
    assert json.loads(capsys.readouterr().out) == seq
    assert len(seq) == N_BIG + 200
    assert cli_main(["ls", "--endpoint-url", s3_server.endpoint_url, big_prefix, "--fast"]) == 1
    assert "--fast (FastList) applies to --recursive" in capsys.readouterr().err


# ------------------------------------------------------------------ a server that fails lists
def test_fastlist_retries_failed_list_requests(client: objio.Client, big_prefix: str,
                                               s3_server: Any, proxy: Any) -> None:
    """Every 7th ListObjectsV2 request (of those continuing a listing or starting after a
    key) answered 503 SlowDown by the fault proxy: the listing is still every key once."""
    from faultproxy import Forge, Response

    lists = [0]

    def every_7th(r: Any) -> bool:
        if r.query.get("list-type") != "2" or not ({"continuation-token", "start-after"}
                                                   & r.query.keys()):
            return False
        lists[0] += 1
        return lists[0] % 7 == 0

    body = (b'<?xml version="1.0"?><Error><Code>SlowDown</Code>'
            b"<Message>injected</Message></Error>")
    rule = proxy.add(every_7th, Forge(lambda r: Response(503, "Slow Down", [], body)),
                     times=None)
    try:
        flaky = objio.Client(s3_server.config, endpoint_url=proxy.endpoint_url, max_attempts=5)
        assert flaky.list(big_prefix, fast=True) == client.list(big_prefix)
        assert rule.hits >= 2
    finally:
        proxy.clear()


# ------------------------------------------------------------------ in-memory servers, both orders
class _MemoryServer:
    """ListObjectsV2 over an in-memory key set, ordered by UTF-8 bytes (AWS S3) or by path
    components with SeaweedFS's start-after (a start-after naming a directory skips it).
    Counts the pages it served (``requests``) and the most requests at once (``peak``);
    ``delay_s`` per page; ``info(key)`` makes each page's entries."""

    scheme = "s3"

    def __init__(self, keys: set[str], order: str, delay_s: float = 0.0,
                 info: Callable[[str], ObjectInfo] = lambda k: ObjectInfo(k, 0, 0.0, "")
                 ) -> None:
        self.order = order
        self.sort_key = ((lambda k: k.encode()) if order == "bytes"
                         else (lambda k: tuple(k.split("/"))))
        self.keys = sorted(keys, key=self.sort_key)
        self.index = [self.sort_key(k) for k in self.keys]
        self.requests = 0
        self.delay_s = delay_s
        self.info = info
        self.inflight = self.peak = 0

    def _after(self, start_after: str) -> int:
        i = bisect.bisect_right(self.index, self.sort_key(start_after))
        if self.order == "path":  # SeaweedFS: after the entry, and after its whole subtree
            while i < len(self.keys) and self.keys[i].startswith(start_after + "/"):
                i += 1
        return i

    async def list_pages(self, bucket_uri: ObjectURI, prefix: str = "", delimiter: Any = None,
                         start_after: str | None = None, page_size: int = 1000,
                         continuation_token: str | None = None) -> AsyncIterator[ListPage]:
        if continuation_token is not None:
            i = int(continuation_token)
        else:
            i = self._after(start_after) if start_after else 0
        while True:
            self.requests += 1
            self.inflight += 1
            self.peak = max(self.peak, self.inflight)
            await asyncio.sleep(self.delay_s)
            self.inflight -= 1
            page: list[str] = []
            while i < len(self.keys) and len(page) < page_size:
                if self.keys[i].startswith(prefix):
                    page.append(self.keys[i])
                i += 1
            more = len(page) == page_size
            yield ListPage([self.info(k) for k in page], [], str(i) if more else None)
            if not more:
                return

    def sequential(self, prefix: str) -> list[str]:
        return [k for k in self.keys if k.startswith(prefix)]


_ALPHABET = "/!-.09aAz~é日"


@settings(max_examples=60, deadline=None)
@given(keys=st.sets(st.text(_ALPHABET, min_size=1, max_size=7), min_size=0, max_size=400),
       order=st.sampled_from(["bytes", "path"]), page_size=st.integers(2, 12),
       max_in_flight=st.integers(1, 8))
def test_fastlist_every_key_once_in_both_server_orders(keys: set[str], order: str, page_size: int,
                                                       max_in_flight: int) -> None:
    keys = {"p/" + k for k in keys} | {"q/not-listed"}
    server = _MemoryServer(keys, order)
    stats: dict[str, Any] = {}
    got = asyncio.run(fastlist.list_fast(server, ObjectURI("s3", "b", ""), "p/",
                                         max_in_flight=max_in_flight, page_size=page_size,
                                         stats=stats))
    assert _keys(got) == server.sequential("p/")
    if order == "bytes":  # the order assumed first: never a second pass
        assert stats["order"] == "bytes"
    else:
        assert stats["order"] in ("bytes", "path")  # bytes when no key tells them apart


@pytest.mark.parametrize("order", ["bytes", "path"])
def test_fastlist_splits_skewed_layouts_in_memory(order: str) -> None:
    keys = {f"p/big/{i:06d}" for i in range(9_900)} | {f"p/{c}{i}" for i, c in
                                                         zip(range(100), "abcxyz!-._~é" * 10, strict=False)}
    keys |= {"p/big!x", "p/big-1", "p/big.2"}  # byte order: before big/...; path order: after
    server = _MemoryServer(keys, order)
    stats: dict[str, Any] = {}
    got = asyncio.run(fastlist.list_fast(server, ObjectURI("s3", "b", ""), "p/",
                                         max_in_flight=16, page_size=100, stats=stats))
    assert _keys(got) == server.sequential("p/")
    assert stats["order"] == order  # a path-order server is recognised (and listed right)
    assert stats["requests"] > 100  # split (the 100-key sequential pages alone would be 100)


def test_split_points_are_safe_and_between() -> None:
    sample = [f"p/data/{i:06d}.bin" for i in range(1000)]
    lo = sample[-1]
    points = fastlist.split_points(sample, lo, None, 2)
    assert points, "a full page of a dense layout is split"
    ps = [p for p, _ in points]
    assert ps == sorted(ps) and len(set(ps)) == len(ps) and all(p > lo for p in ps)
    for p in ps:
        assert p.endswith(fastlist.MAX_CHAR) and p[-2] >= "0"
    hi = ps[len(ps) // 2]
    assert all(p < hi for p, _ in fastlist.split_points(sample, lo, hi, 2))
    assert fastlist.split_points([], "p/x", None, 2) == []


def test_fastlist_rejects_bad_max_in_flight() -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        asyncio.run(fastlist.list_fast(None, ObjectURI("s3", "b", ""), "p/", max_in_flight=0))


# ------------------------------------------------------------------ the ListObjectsV2 parser
_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def _page_xml(contents: str, extra: str = "", root: str = "ListBucketResult") -> bytes:
    count = contents.count("<Contents>") + extra.count("<CommonPrefixes>")  # as servers count
    return (f'<?xml version="1.0" encoding="UTF-8"?><{root} xmlns="{_NS}"><Name>b</Name>'
            f"<Prefix>p/</Prefix><KeyCount>{count}</KeyCount><MaxKeys>2</MaxKeys>"
            f"<EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>{contents}{extra}"
            f"<NextContinuationToken>tok&amp;1</NextContinuationToken></{root}>").encode()


_CONTENTS = ("<Contents><Key>p/a%20b+c%26</Key><LastModified>2025-01-02T03:04:05.000Z"
             "</LastModified><ETag>&quot;e1&quot;</ETag><Size>7</Size>"
             "<StorageClass>STANDARD</StorageClass></Contents>"
             "<Contents><Key>p/%C3%A9</Key><LastModified>2025-01-02T03:04:06.000Z</LastModified>"
             "<ETag>&quot;e2&quot;</ETag><Size>0</Size><Owner><ID>x</ID></Owner></Contents>")


def test_list_page_parser_fast_path_and_element_tree_agree() -> None:
    from objio.s3.backend import _parse_list_page

    fast = _parse_list_page(_page_xml(_CONTENTS, "<CommonPrefixes><Prefix>p/d%2F/</Prefix>"
                                                 "</CommonPrefixes>"))
    objects, prefixes, truncated, token = fast
    assert [o.key for o in objects] == ["p/a b c&", "p/é"]
    assert [o.size for o in objects] == [7, 0] and [o.etag for o in objects] == ["e1", "e2"]
    assert objects[1].last_modified - objects[0].last_modified == 1.0
    assert prefixes == ["p/d//"] and truncated and token == "tok&1"
    # an unusual shape (an attribute on a Key) goes through ElementTree, with the same result
    odd = _CONTENTS.replace("<Key>p/a%20b", '<Key xml:space="default">p/a%20b')
    slow = _parse_list_page(_page_xml(odd, "<CommonPrefixes><Prefix>p/d%2F/</Prefix>"
                                           "</CommonPrefixes>"))
    assert slow == fast
    with pytest.raises(objio.ObjectStoreError, match="malformed XML"):
        _parse_list_page(b"<ListBucketResult><Contents><Key>x</Key></Contents")


def test_list_page_fields_between_entries_are_seen() -> None:
    """A page field (KeyCount, EncodingType) between two runs of entries is read, as an XML
    parser reads it: the keys are URL-decoded and a KeyCount that does not match is refused."""
    from objio.s3.backend import _parse_list_page

    more = ("<Contents><Key>p/z%2F</Key><Size>1</Size></Contents>")
    xml = _page_xml(_CONTENTS).replace(b"</ListBucketResult>", more.encode() +
                                       b"</ListBucketResult>")
    with pytest.raises(objio.ObjectStoreError, match="KeyCount is 2 but the page holds 3"):
        _parse_list_page(xml)
    objects = _parse_list_page(xml.replace(b"<KeyCount>2<", b"<KeyCount>3<"))[0]
    assert [o.key for o in objects] == ["p/a b c&", "p/é", "p/z/"]
