"""``objio du`` (sizes and counts per prefix or wildcard) and ``objio head`` / ``tail -c N``
(ranged reads, never the whole object), issue 18 A4, against the real LocalS3Server; the
requests are seen through the fault proxy."""

from __future__ import annotations

import json
from typing import Any

import pytest

import objio
from objio.cli import main
from objio.server import LocalS3Server

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


def _gets(proxy: Any) -> list[Any]:
    return [r for r in proxy.log if r.method == "GET" and "list-type" not in r.query]


def test_head_and_tail_read_only_the_bytes_asked(
        cli_env: list[str], client: objio.Client, prefix: str, proxy: Any,
        s3_server: LocalS3Server, capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    client.put_bytes(prefix + "big.bin", PAYLOAD)
    via = ["--endpoint-url", proxy.endpoint_url]
    proxy.clear()
    assert main(["head", *via, prefix + "big.bin", "-c", "100"]) == 0
    assert capfdbinary.readouterr().out == PAYLOAD[:100]
    gets = _gets(proxy)
    assert len(gets) == 1 and gets[0].headers.get("range") == "bytes=0-99"
    proxy.clear()
    assert main(["tail", *via, prefix + "big.bin", "-c", "1KiB"]) == 0
    assert capfdbinary.readouterr().out == PAYLOAD[-1024:]
    gets = _gets(proxy)
    n = len(PAYLOAD)
    assert len(gets) == 1 and gets[0].headers.get("range") == f"bytes={n - 1024}-{n - 1}"
    proxy.clear()
    assert main(["head", *via, prefix + "big.bin"]) == 0  # default: 1 KiB
    assert capfdbinary.readouterr().out == PAYLOAD[:1024]
    assert [r.headers.get("range") for r in _gets(proxy)] == ["bytes=0-1023"]


def test_tail_of_a_short_object_is_the_whole_object(
        cli_env: list[str], client: objio.Client, prefix: str,
        capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    client.put_bytes(prefix + "short", b"0123456789")
    assert main(["tail", *cli_env, prefix + "short", "-c", "100"]) == 0
    assert capfdbinary.readouterr().out == b"0123456789"
    assert main(["tail", *cli_env, prefix + "short", "-c", "3"]) == 0
    assert capfdbinary.readouterr().out == b"789"
    assert main(["head", *cli_env, prefix + "short", "-c", "100"]) == 0
    assert capfdbinary.readouterr().out == b"0123456789"


def test_head_of_a_bucket_or_missing_object_is_one_line(
        cli_env: list[str], prefix: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["head", *cli_env, "s3://objio-test"]) == 1
    assert "not an object" in capsys.readouterr().err
    assert main(["tail", *cli_env, prefix + "missing"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing" in err[0]


def test_du_per_prefix_wildcard_total_human_json(
        cli_env: list[str], client: objio.Client, prefix: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    sizes = {"train/a.npz": 1000, "train/s/b.npz": 2048, "train/c.txt": 10,
             "valid/d.npz": 3 * 1024 * 1024}
    for k, n in sizes.items():
        client.put_bytes(prefix + k, b"x" * n)
    assert main(["du", *cli_env, prefix + "train", prefix + "valid/"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["3058", "3", "object(s)", prefix + "train"]
    assert lines[1].split() == [str(3 * 1024 * 1024), "1", "object(s)", prefix + "valid/"]
    assert lines[2].split() == [str(3058 + 3 * 1024 * 1024), "4", "object(s)", "total"]
    assert main(["du", *cli_env, prefix + "**.npz", "-H"]) == 0  # ** across /
    assert capsys.readouterr().out.split() == ["3.0", "MiB", "3", "object(s)",
                                               prefix + "**.npz"]
    assert main(["du", *cli_env, prefix + "train/*", "--summarize"]) == 0  # * in one level
    assert capsys.readouterr().out.split() == ["1010", "2", "object(s)", "total"]
    assert main(["du", *cli_env, prefix + "train/", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "prefixes": [{"uri": prefix + "train/", "objects": 3, "bytes": 3058}],
        "total": {"objects": 3, "bytes": 3058}}
