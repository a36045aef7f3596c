"""s5cmd's wildcards in S3 sources (issue 18 A2): ``*`` within a segment, ``**`` across ``/``,
``?``, ``[...]``, in any segment, one matcher (objio._glob) for ls, cp, mv, rm and du; a
pattern that matches nothing is one error line naming it, exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import objio
from objio.cli import main

KEYS = ["a/f1.bin", "a/f2.bin", "a/deep/f1.bin", "b/f1.bin", "top.bin",
        "data/x.npz", "data/s/y.npz", "data/s/t/z.npz", "data/s/no.txt",
        "img_0.jpg", "img_1.jpg", "img_7.jpg", "img_10.jpg"]


@pytest.fixture
def tree(client: objio.Client, prefix: str) -> str:
    for k in KEYS:
        client.put_bytes(prefix + k, k.encode())
    return prefix


def _ls(capsys: pytest.CaptureFixture[str], flags: list[str], uri: str) -> tuple[int, list[str], str]:
    code = main(["ls", *flags, uri, "--json"])
    out, err = capsys.readouterr()
    return code, sorted(r["key"] for r in json.loads(out)) if out.strip() else [], err


def test_matcher_segments_double_star_sets() -> None:
    from objio._glob import filter_match, match, split_wildcard

    assert split_wildcard("p/*/f1.bin") == ("p/", "*/f1.bin")
    assert split_wildcard("p/data/**.npz") == ("p/data/", "**.npz")
    assert split_wildcard("plain/key") == ("plain/key", None)
    assert match("*/f1.bin", "a/f1.bin") and not match("*/f1.bin", "a/deep/f1.bin")
    assert match("**.npz", "s/t/z.npz") and match("**.npz", "x.npz")
    assert match("img_[0-2].jpg", "img_1.jpg") and not match("img_[0-2].jpg", "img_7.jpg")
    assert match("img_[!0-2].jpg", "img_7.jpg") and not match("img_[!0-2].jpg", "img_1.jpg")
    assert match("img_?.jpg", "img_7.jpg") and not match("img_?.jpg", "img_10.jpg")
    assert not match("a?b", "a/b")  # ? is one character within a segment
    assert filter_match("*.tmp", "deep/er/x.tmp")  # filters: * across / (aws-cli)


def test_ls_wildcard_in_a_middle_segment(cli_env: list[str], tree: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    base = tree.split("/", 3)[3]
    code, keys, _ = _ls(capsys, cli_env, tree + "*/f1.bin")
    assert code == 0 and keys == [base + "a/f1.bin", base + "b/f1.bin"]
    code, keys, _ = _ls(capsys, cli_env, tree + "**/f1.bin")
    assert keys == [base + "a/deep/f1.bin", base + "a/f1.bin", base + "b/f1.bin"]
    code, keys, _ = _ls(capsys, cli_env, tree + "img_[0-2].jpg")
    assert keys == [base + "img_0.jpg", base + "img_1.jpg"]
    code, keys, _ = _ls(capsys, cli_env, tree + "img_?.jpg")
    assert keys == [base + f"img_{i}.jpg" for i in (0, 1, 7)]
    # the plain listing shows keys relative to the prefix before the first wildcard
    assert main(["ls", *cli_env, tree + "*/f1.bin"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[-1] for line in out.splitlines()] == ["a/f1.bin", "b/f1.bin"]


def test_cp_double_star_keeps_relative_paths(cli_env: list[str], tree: str,
                                             tmp_path: Path) -> None:
    assert main(["cp", *cli_env, tree + "data/**.npz", str(tmp_path) + "/", "-q"]) == 0
    got = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert got == ["s/t/z.npz", "s/y.npz", "x.npz"]
    assert (tmp_path / "s/t/z.npz").read_bytes() == b"data/s/t/z.npz"


def test_mv_and_rm_with_wildcards(cli_env: list[str], client: objio.Client, tree: str,
                                  prefix: str) -> None:
    moved = prefix.rstrip("/") + "-moved/"  # (a destination under a deep glob is refused)
    assert main(["mv", *cli_env, tree + "*/f1.bin", moved, "-q"]) == 0
    left = client.list(tree)
    assert not any(k.endswith(("/a/f1.bin", "/b/f1.bin")) for k in left)
    assert any(k.endswith("/a/deep/f1.bin") for k in left)  # * stays within its segment
    assert sorted(k.rsplit("/", 2)[-2] + "/" + k.rsplit("/", 1)[1]
                  for k in client.list(moved)) == ["a/f1.bin", "b/f1.bin"]
    assert main(["rm", *cli_env, tree + "data/**", "--exclude", "*.txt", "-q"]) == 0
    data = [k for k in client.list(tree + "data/")]
    assert len(data) == 1 and data[0].endswith("data/s/no.txt")


@pytest.mark.parametrize("cmd", ["ls", "cp", "mv", "rm", "du"])
def test_a_wildcard_matching_nothing_is_one_line_exit_1(
        cmd: str, cli_env: list[str], tree: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    pattern = tree + "*/nothing.bin"  # a wildcard in a middle segment only
    argv = [cmd, *cli_env, pattern] + ([str(tmp_path) + "/"] if cmd in ("cp", "mv") else [])
    assert main(argv) == 1
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("objio: error:") and pattern in lines[0]
    assert "nothing matches" in lines[0]
