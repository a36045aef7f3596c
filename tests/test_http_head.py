"""The response-head parser of objio's HTTP client (objio.s3.http._Conn._parse_head): repeated
headers and lengths that are not ASCII digits. Pure logic: no server (malformed heads' effect on
real requests is in test_request_path)."""

from __future__ import annotations

import asyncio
from typing import Any

from objio.s3 import http


def _parse(block: bytes) -> tuple[Any, ...]:
    """(ok, status, headers, keep_alive, error) of parsing the response head ``block``."""
    loop = asyncio.new_event_loop()
    try:
        conn = http._Conn(loop)
        conn.fut = loop.create_future()
        ok = conn._parse_head(block)
        err = None
        if conn.fut.done():
            exc = conn.fut.exception()
            err = (type(exc), str(exc))
        return ok, conn.status, dict(conn.headers), conn.keep_alive, err
    finally:
        loop.close()


def test_a_repeated_header_is_joined_and_two_lengths_must_agree() -> None:
    _, _, headers, _, err = _parse(b"HTTP/1.1 200 OK\r\nVary: a\r\nvary: b\r\n"
                                   b"Content-Length: 3\r\ncontent-length: 3")
    assert err is None and headers["vary"] == "a, b" and headers["content-length"] == "3"
    ok, _, _, _, err = _parse(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4")
    assert not ok and err == (http.BadResponse, "conflicting Content-Length headers")


def test_a_length_of_non_ascii_digits_is_malformed() -> None:
    """'²' is a digit to str.isdigit() but not to int(): it once escaped the check and raised
    ValueError inside the protocol callback (the request then hung until its timeout)."""
    ok, _, _, _, err = _parse("HTTP/1.1 200 OK\r\nContent-Length: ²".encode("latin-1"))
    assert not ok and err is not None and err[0] is http.BadResponse
    assert "malformed Content-Length" in err[1]
