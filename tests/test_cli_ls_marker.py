"""`objio ls` and the directory-marker objects some servers and tools keep (a 0-byte object
whose key is a prefix ending in `/`, as the S3 console's "Create folder" makes)."""

from __future__ import annotations

import json

import pytest

import objio
from objio.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ls_shows_a_directory_marker_as_its_prefix(cli_env: list[str], client: objio.Client,
                                                   prefix: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    client.put_bytes(prefix + "dir/", b"")            # the marker
    client.put_bytes(prefix + "dir/a.bin", b"abc")
    key = objio.parse_uri(prefix).key
    assert key + "dir/" in client.list(prefix + "dir/")   # the server keeps it as an object
    code, out, err = run(capsys, "ls", prefix + "dir/", *cli_env)
    assert code == 0 and err == ""
    lines = out.splitlines()
    # no nameless 0-byte row: the marker is shown as the prefix it is, then the objects
    assert [ln.split()[-1] for ln in lines] == [key + "dir/", "a.bin"]
    assert lines[0].split() == ["PRE", key + "dir/"]
    code, out, _ = run(capsys, "ls", prefix + "dir/", "--json", *cli_env)
    rows = json.loads(out)
    assert rows[0] == {"prefix": key + "dir/"} and [r.get("key") for r in rows[1:]] == \
        [key + "dir/a.bin"]
    code, out, _ = run(capsys, "ls", prefix + "dir/", "--summarize", *cli_env)
    assert "Total Objects: 1\n" in out          # the marker holds no data: not counted
    # a prefix holding only its marker is listed (exit 0), as an empty folder
    client.put_bytes(prefix + "empty/", b"")
    code, out, _ = run(capsys, "ls", prefix + "empty/", *cli_env)
    assert code == 0 and out.split() == ["PRE", key + "empty/"]
    # the level above shows both as PRE lines, as before; -r lists the markers as objects
    code, out, _ = run(capsys, "ls", prefix, *cli_env)
    assert sorted(out.split()) == sorted(["PRE", "dir/", "PRE", "empty/"])
    code, out, _ = run(capsys, "ls", prefix, "-r", *cli_env)
    assert [ln.split()[-1] for ln in out.splitlines()] == \
        [key + "dir/", key + "dir/a.bin", key + "empty/"]
