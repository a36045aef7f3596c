"""Streamed listings (issue 17): ``objio.list_iter`` / ``list_pages`` (sync and async) yield
what ``list`` returns, page by page, with memory bounded by what the consumer keeps (checked
structurally: how many pages were listed ahead of the consumer); FastList streams its ranges
in the server's order (in-memory servers of both orders, small pages, a small buffer);
``objio ls`` prints as it goes and keeps what it printed when the listing fails part way;
a keys-only listing never decodes sizes, dates or ETags; and the bulk page parser agrees with
ElementTree on keys of every kind."""

from __future__ import annotations

import asyncio
import contextlib
import html
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import objio
from faultproxy import FaultProxy, Request, Response, Rewrite
from objio import engine, fastlist
from objio.backend import ObjectInfo
from objio.cli import main as cli_main
from objio.uri import ObjectURI
from test_fastlist import _MemoryServer

BUCKET = "objio-test"
N_KEYS = 2500  # three ListObjectsV2 pages


@pytest.fixture(scope="module")
def three_pages(client: objio.Client) -> Iterator[str]:
    prefix = f"s3://{BUCKET}/streamed-{uuid.uuid4().hex[:8]}/"
    client.put_many(((f"{prefix}d{i % 3}/k{i:05d}", b"x" * (i % 7)) for i in range(N_KEYS)),
                    max_in_flight=64)
    yield prefix
    client.delete(prefix)



def _lists(r: Request) -> bool:
    return r.method == "GET" and r.query.get("list-type") == "2"


def _drop_entry(req: Request, resp: Response) -> Response:
    """One <Contents> fewer in a whole document: KeyCount no longer matches."""
    body = resp.body
    a = body.find(b"<Contents>")
    b = body.index(b"</Contents>", a) + len(b"</Contents>")
    resp.body = body[:a] + body[b:]
    return resp


# ------------------------------------------------------------------------------ the API
@pytest.mark.parametrize("fast", [False, True], ids=["sequential", "fastlist"])
def test_list_iter_yields_what_list_returns(client: objio.Client, three_pages: str,
                                           fast: bool) -> None:
    keys = client.list(three_pages)
    infos = client.list_objects(three_pages)
    assert len(keys) == N_KEYS
    assert list(client.list_iter(three_pages, fast=fast)) == keys
    assert list(client.list_iter(three_pages, fast=fast, info=True)) == infos
    pages = list(client.list_pages(three_pages, fast=fast))
    assert [k for p in pages for k in p.keys] == keys
    assert [n for p in pages for n in p.sizes] == [i.size for i in infos]
    glob = three_pages + "d1/k000*"
    assert list(client.list_iter(glob, fast=fast)) == client.list(glob) != []

    async def collect() -> tuple[list[str], list[ObjectInfo]]:
        got = [k async for k in client.list_iter_async(three_pages, fast=fast)]
        objs = [o async for o in client.list_iter_async(three_pages, fast=fast, info=True)]
        return got, objs

    assert asyncio.run(collect()) == (keys, infos)


def test_list_pages_one_level_gives_common_prefixes(client: objio.Client,
                                                    three_pages: str) -> None:
    pages = list(client.list_pages(three_pages, recursive=False))
    assert [p for page in pages for p in page.prefixes] == client.list_level(three_pages)[0]
    assert sum(len(p) for p in pages) == 0
    with pytest.raises(ValueError, match="recursive"):
        client.list_pages(three_pages, recursive=False, fast=True)
    with pytest.raises(ValueError, match="ahead"):
        client.list_iter(three_pages, ahead=0)
    with pytest.raises(ValueError):
        client.list_iter("s3://x/")  # a bad bucket name: at the call, not at the first key


def test_list_iter_lists_only_what_the_consumer_takes(pclient: objio.Client,
                                                      proxy: FaultProxy,
                                                      three_pages: str) -> None:
    """ahead=1: holding the first page, at most one page waits and one more is being put;
    stopping early cancels the listing (no request after)."""
    it = pclient.list_iter(three_pages, ahead=1)
    first = next(it)
    assert first.endswith("k00000")
    engine.run(asyncio.sleep(0.5))  # time for the producer to run ahead if it could
    assert len([r for r in proxy.log if _lists(r)]) <= 3
    it.close()
    n = len([r for r in proxy.log if _lists(r)])
    engine.run(asyncio.sleep(0.3))
    assert len([r for r in proxy.log if _lists(r)]) == n


@pytest.mark.parametrize("fast", [False, True], ids=["sequential", "fastlist"])
def test_a_listing_error_part_way_comes_after_the_keys_before_it(pclient: objio.Client,
                                                                 client: objio.Client,
                                                                 proxy: FaultProxy,
                                                                 three_pages: str,
                                                                 fast: bool) -> None:
    proxy.add(lambda r: _lists(r) and "continuation-token" in r.query, Rewrite(_drop_entry),
              times=None)
    got: list[str] = []
    with pytest.raises(objio.ObjectStoreError, match="KeyCount") as info:
        for key in pclient.list_iter(three_pages, fast=fast):
            got.append(key)
    assert info.value.code == "IncompleteListing"
    assert got == client.list(three_pages)[:1000]  # the whole first page, nothing more


def test_objio_ls_prints_as_it_goes_and_keeps_it_on_an_error(
        pclient: objio.Client, proxy: FaultProxy, three_pages: str, cli_env: list[str],
        client: objio.Client, capsys: pytest.CaptureFixture[str]) -> None:
    proxy.add(lambda r: _lists(r) and "continuation-token" in r.query, Rewrite(_drop_entry),
              times=None)
    code = cli_main(["ls", "-r", three_pages, "--endpoint-url", proxy.endpoint_url])
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert code == 1
    assert [ln.rsplit(" ", 1)[1] for ln in lines] == client.list(three_pages)[:1000]
    assert err.count("\n") == 1 and err.startswith("objio: error: ") and "KeyCount" in err
    proxy.clear()
    assert cli_main(["ls", "-r", three_pages, "--endpoint-url", proxy.endpoint_url,
                     "--summarize"]) == 0
    out = capsys.readouterr().out
    assert f"Total Objects: {N_KEYS}\n" in out


def test_keys_only_listings_never_decode_metadata(client: objio.Client, three_pages: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from objio.s3 import backend as s3

    def refuse(*args: Any) -> Any:
        raise AssertionError("metadata decoded for a keys-only listing")

    keys = client.list(three_pages)
    monkeypatch.setattr(s3._PageFields, "infos", refuse)
    monkeypatch.setattr(s3._PageFields, "sizes", refuse)
    assert client.list(three_pages) == keys
    assert client.list(three_pages, fast=True) == keys
    assert list(client.list_iter(three_pages)) == keys
    with pytest.raises(AssertionError, match="metadata decoded"):
        client.list_objects(three_pages)


# ------------------------------------------------------------------ FastList, streamed, in memory
_LIVE = [0]  # _Info objects alive: the keys a listing holds


class _Info(ObjectInfo):
    """An ObjectInfo that counts itself while alive."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        _LIVE[0] += 1

    def __del__(self) -> None:
        _LIVE[0] -= 1


class _Server(_MemoryServer):
    """test_fastlist's in-memory ListObjectsV2 (byte or SeaweedFS path order), its entries
    counted while alive (``_LIVE``)."""

    def __init__(self, keys: set[str], order: str, delay_s: float = 0.0) -> None:
        super().__init__(keys, order, delay_s, info=lambda k: _Info(k, len(k), 0.0, ""))


def _consume(server: _Server, *, page_size: int, max_in_flight: int, buffer_pages: int,
             ahead: int = 1) -> tuple[list[str], int, dict[str, Any]]:
    """Iterate stream_fast through engine.iterate, keeping only the keys; returns (keys, the
    most listed entries alive at once while the consumer held one page, stats)."""
    stats: dict[str, Any] = {}
    got: list[str] = []
    worst = consumed = 0
    _LIVE[0] = 0
    pages = engine.iterate(fastlist.stream_fast(server, ObjectURI("s3", "b", ""), "p/",
                                                max_in_flight=max_in_flight,
                                                page_size=page_size, stats=stats,
                                                buffer_pages=buffer_pages), ahead)
    for page in pages:
        consumed += 1
        got += page.keys
        if consumed % 7 == 0:
            engine.run(asyncio.sleep(0.01))  # a slow consumer now and then
        worst = max(worst, _LIVE[0])
        del page
    return got, worst, stats


@pytest.mark.parametrize("order", ["bytes", "path"])
def test_streamed_fastlist_keeps_a_bounded_number_of_pages(order: str) -> None:
    keys = {f"p/big/{i:05d}" for i in range(6_000)} | {f"p/{c}{i}" for i, c in
                                                       zip(range(300), "abxyz!-._~é" * 30, strict=False)}
    keys |= {"p/big!x", "p/big-1", "p/big.2"}  # where the two orders differ
    server = _Server(keys, order, delay_s=0.001)
    got, worst, stats = _consume(server, page_size=20, max_in_flight=6, buffer_pages=10)
    assert got == server.sequential("p/")  # every key once, in the server's order
    assert stats["order"] == order and server.peak > 1  # (concurrent requests: it split)
    # Entries alive, whatever the size of the listing: pages waiting in ranges (10), in
    # flight (6), the frontier's two, the queue's one, one being handed over, the consumer's
    assert worst <= (10 + 6 + 2 + 1 + 1 + 1) * 20 < len(keys) // 10


@settings(max_examples=40, deadline=None)
@given(keys=st.sets(st.text("/!-.09aAz~é", min_size=1, max_size=6), max_size=300),
       order=st.sampled_from(["bytes", "path"]), page_size=st.integers(2, 9),
       max_in_flight=st.integers(1, 6), buffer_pages=st.integers(1, 5))
def test_streamed_fastlist_every_key_once_in_order(keys: set[str], order: str, page_size: int,
                                                   max_in_flight: int,
                                                   buffer_pages: int) -> None:
    server = _Server({"p/" + k for k in keys} | {"q/x"}, order)
    got, _, _ = _consume(server, page_size=page_size, max_in_flight=max_in_flight,
                         buffer_pages=buffer_pages, ahead=2)
    assert got == server.sequential("p/")


def test_streamed_fastlist_yields_its_first_page_before_the_listing_ends() -> None:
    server = _Server({f"p/{i:05d}" for i in range(3000)}, "bytes", delay_s=0.02)
    pages = engine.iterate(fastlist.stream_fast(server, ObjectURI("s3", "b", ""), "p/",
                                                page_size=100, max_in_flight=8), 1)
    first = next(pages)
    assert first.keys[0] == "p/00000" and server.requests < 30
    with contextlib.closing(pages):
        pass


# ------------------------------------------------------------------ the page parser
_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def _aws_page(keys: list[str], url: bool) -> bytes:
    """A ListObjectsV2 document as AWS S3 writes it: keys URL-encoded when asked, XML-escaped
    text, ETags in &quot;, dates with milliseconds."""
    def enc(k: str) -> str:
        return html.escape(quote(k, safe="/~") if url else k, quote=True)

    contents = "".join(
        f"<Contents><Key>{enc(k)}</Key><LastModified>2025-01-02T03:04:{i % 60:02d}."
        f"{i % 1000:03d}Z</LastModified><ETag>&quot;e{i}&quot;</ETag><Size>{i}</Size>"
        "<StorageClass>STANDARD</StorageClass></Contents>" for i, k in enumerate(keys))
    return (f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="{_NS}">'
            f"<Name>b</Name><Prefix></Prefix><KeyCount>{len(keys)}</KeyCount>"
            f"<MaxKeys>1000</MaxKeys>{'<EncodingType>url</EncodingType>' if url else ''}"
            f"<IsTruncated>false</IsTruncated>{contents}</ListBucketResult>").encode()


_KEY_CHARS = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff")


@settings(max_examples=60, deadline=None)
@given(keys=st.lists(st.text(_KEY_CHARS, min_size=1, max_size=12), max_size=40),
       url=st.booleans())
def test_the_bulk_parser_reads_every_key_as_element_tree_does(keys: list[str],
                                                              url: bool) -> None:
    from xml.etree import ElementTree as ET

    from objio.s3.backend import _tree_entries, parse_list_page

    payload = _aws_page(keys, url)
    page, truncated, token = parse_list_page(payload)
    assert page.keys == keys and not truncated and token is None
    assert page.sizes == list(range(len(keys)))
    tree_objects, _ = _tree_entries(ET.fromstring(payload))
    assert page.objects == tree_objects
    assert page.slice(1, 3).objects == tree_objects[1:3]
    assert [o.etag for o in page.objects] == [f"e{i}" for i in range(len(keys))]


@settings(max_examples=80, deadline=None)
@given(stamps=st.lists(st.integers(-2_000_000_000, 8_000_000_000), min_size=1, max_size=40),
       fraction=st.sampled_from([None, 1, 3, 6, 9]), mixed=st.booleans())
def test_a_pages_dates_decode_as_one_at_a_time(stamps: list[int], fraction: int | None,
                                               mixed: bool) -> None:
    """LastModified decoded for a whole page at once (same shape) or one at a time (mixed
    shapes) gives exactly the floats of the date-by-date parser, for every date 1906-2223
    (and datetime's parser's, which keeps microseconds, within a microsecond)."""
    import time as _time

    from objio.s3.backend import _parse_iso_date, _parse_iso_dates, _parse_iso_dates_each

    raw = []
    for i, t in enumerate(stamps):
        text = _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(t))
        digits = fraction if not (mixed and i % 2) else 2
        if digits:
            text += "." + str(t % 10**digits).zfill(digits)
        raw.append((text + "Z").encode())
    got = _parse_iso_dates(raw)
    assert got == _parse_iso_dates_each(raw)
    assert got == pytest.approx([_parse_iso_date(r.decode()) for r in raw], rel=0, abs=1e-6)
