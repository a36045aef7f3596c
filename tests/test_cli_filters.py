"""aws-cli's --exclude / --include on cp -r, mv -r, sync and rm -r (issue 18 A1), against the
real LocalS3Server: evaluated in the order given, the last match wins, matched against the key
relative to the source prefix, ``*`` across ``/``; filters protect from deletion too."""

from __future__ import annotations

from pathlib import Path

import pytest

import objio
from objio.cli import main

KEYS = ["a.bin", "b.tmp", "sub/c.tmp", "sub/keep.tmp", "sub/d.bin"]


def _fill(client: objio.Client, prefix: str, keys: list[str] = KEYS) -> None:
    for k in keys:
        client.put_bytes(prefix + k, k.encode())


def _rel(client: objio.Client, prefix: str) -> list[str]:
    return sorted(k[len(prefix.split("/", 3)[3]):] for k in client.list(prefix))


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_cp_recursive_filters_in_order_last_match_wins(
        cli_env: list[str], client: objio.Client, prefix: str, tmp_path: Path) -> None:
    _fill(client, prefix + "src/")
    # *.tmp leaves out sub/c.tmp too (* crosses /); the later --include takes keep.tmp back
    assert main(["cp", *cli_env, "-r", prefix + "src/", str(tmp_path / "one"), "-q",
                 "--exclude", "*.tmp", "--include", "*keep.tmp"]) == 0
    assert _files(tmp_path / "one") == ["a.bin", "sub/d.bin", "sub/keep.tmp"]
    # the other order: the --exclude comes last and wins for keep.tmp
    assert main(["cp", *cli_env, "-r", prefix + "src/", str(tmp_path / "two"), "-q",
                 "--include", "*keep.tmp", "--exclude", "*.tmp"]) == 0
    assert _files(tmp_path / "two") == ["a.bin", "sub/d.bin"]
    # relative to the source prefix: "sub/*" names the sub-directory of src/, s3 -> s3 too
    assert main(["cp", *cli_env, "--recursive", prefix + "src", prefix + "dst/", "-q",
                 "--exclude", "sub/*"]) == 0
    assert _rel(client, prefix + "dst/") == ["a.bin", "b.tmp"]


def test_cp_exclude_everything_then_include(cli_env: list[str], client: objio.Client,
                                            prefix: str, tmp_path: Path) -> None:
    for i, name in enumerate(["x.png", "y.jpg", "deep/z.png"]):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"%d" % i)
    assert main(["cp", *cli_env, "-r", str(tmp_path), prefix, "-q",
                 "--exclude", "*", "--include", "*.png"]) == 0
    assert _rel(client, prefix) == ["deep/z.png", "x.png"]


def test_mv_recursive_exclude_leaves_the_excluded_sources(
        cli_env: list[str], client: objio.Client, prefix: str) -> None:
    _fill(client, prefix + "src/")
    assert main(["mv", *cli_env, "-r", prefix + "src/", prefix + "dst/", "-q",
                 "--exclude", "*.tmp"]) == 0
    assert _rel(client, prefix + "dst/") == ["a.bin", "sub/d.bin"]
    assert _rel(client, prefix + "src/") == ["b.tmp", "sub/c.tmp", "sub/keep.tmp"]


def test_rm_recursive_exclude_keeps_what_is_excluded(
        cli_env: list[str], client: objio.Client, prefix: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    _fill(client, prefix)
    assert main(["rm", *cli_env, "-r", prefix, "--exclude", "sub/*",
                 "--include", "*.tmp", "--dryrun"]) == 0
    out = capsys.readouterr().out
    assert "(dryrun) delete:" in out and "d.bin" not in out and "keep.tmp" in out
    assert len(client.list(prefix)) == 5  # a dry run deletes nothing
    assert main(["rm", *cli_env, "-r", prefix, "--exclude", "sub/*",
                 "--include", "*.tmp"]) == 0
    assert _rel(client, prefix) == ["sub/d.bin"]


def test_sync_delete_never_deletes_what_the_filters_exclude(
        cli_env: list[str], client: objio.Client, prefix: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "model.bin").write_bytes(b"m")
    (src / "scratch.tmp").write_bytes(b"s")
    # at the destination: an old file the source lacks, and excluded files the source lacks
    _fill(client, prefix, ["old.bin", "cache/x.tmp", "notes.tmp"])
    assert main(["sync", *cli_env, str(src), prefix, "--delete", "-q",
                 "--exclude", "*.tmp"]) == 0
    # copied: model.bin (not scratch.tmp); deleted: old.bin only (aws-cli: excluded files
    # are not deleted by sync --delete)
    assert _rel(client, prefix) == ["cache/x.tmp", "model.bin", "notes.tmp"]


def test_a_mistaken_flag_shows_the_subcommand_usage(
        cli_env: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["cp", "--exlude", "*.tmp", "s3://objio-test/a", "b"])
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert "usage: objio cp " in err and "--exclude PATTERN" in err
    assert "unrecognized arguments: --exlude" in err
    assert "usage: objio [-h]" not in err
