"""Issue 18 A5: ``rm --older-than`` with units, ``-q/--quiet`` on every command, ``--dryrun``
on every command that writes or deletes (no request that writes or deletes, seen through the
fault proxy), against the real LocalS3Server."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

import objio
from objio.cli import build_parser, main


def test_older_than_takes_units() -> None:
    from objio.cli.files import parse_duration

    assert parse_duration("30s") == 30
    assert parse_duration("15m") == 900
    assert parse_duration("12h") == 12 * 3600
    assert parse_duration("1d") == 86400
    assert parse_duration("7d") == 7 * 86400
    assert parse_duration("2w") == 14 * 86400
    assert parse_duration("90") == 90  # a bare number: seconds, as before
    for bad in ("", "1y", "-1d", "d", "abc"):
        with pytest.raises(argparse.ArgumentTypeError, match="30s, 15m, 12h, 1d, 2w"):
            parse_duration(bad)


def test_rm_recursive_older_than_keeps_newer_objects(
        cli_env: list[str], client: objio.Client, prefix: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    for k in ("a", "b/c"):
        client.put_bytes(prefix + k, b"x")
    assert main(["rm", *cli_env, "-r", prefix, "--older-than", "1d"]) == 0
    assert len(client.list(prefix)) == 2  # written just now: not a day old
    assert main(["rm", *cli_env, "-r", prefix, "--older-than", "0s"]) == 0
    assert client.list(prefix) == []
    assert main(["rm", *cli_env, prefix + "a", "--older-than", "7d"]) == 1
    assert "--older-than applies to rm --recursive" in capsys.readouterr().err


def _commands() -> list[tuple[str, argparse.ArgumentParser]]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = []
    for name, p in sub.choices.items():
        out.append((name, p))
        kinds = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        for k in kinds:
            out += [(f"{name} {kn}", kp) for kn, kp in k.choices.items()]
    return out


def test_quiet_is_accepted_by_every_command() -> None:
    names = [n for n, _ in _commands()]
    assert {"ls", "cp", "gen", "bench", "du", "head", "run", "mb"} <= set(names)
    for name, p in _commands():
        help_text = p.format_help()
        assert "-q, --quiet" in help_text or "--quiet, -q" in help_text, name


def test_gen_and_mb_quiet_print_nothing(cli_env: list[str], client: objio.Client,
                                       prefix: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gen", *cli_env, prefix, "--format", "npz", "--num-files", "2",
                 "--record-size", "1024", "-q"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and err == ""
    assert len(client.list(prefix)) >= 2
    assert main(["mb", *cli_env, "s3://quiet-bucket", "-q"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["rb", *cli_env, "s3://quiet-bucket", "--quiet"]) == 0
    assert capsys.readouterr().out == ""


def _writes(proxy: Any) -> list[str]:
    return [f"{r.method} {r.target}" for r in proxy.log
            if r.method in ("PUT", "POST", "DELETE")]


def test_dryrun_on_every_command_that_writes_or_deletes(
        cli_env: list[str], client: objio.Client, prefix: str, proxy: Any, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    client.put_bytes(prefix + "src/a.bin", b"a")
    (tmp_path / "l.bin").write_bytes(b"l")
    batch = tmp_path / "cmds"
    batch.write_text(f"cp {prefix}src/a.bin {prefix}b.bin\nrm -r {prefix}src/\n")
    via = ["--endpoint-url", proxy.endpoint_url]
    runs = {
        "cp": ["cp", *via, "-r", prefix + "src/", prefix + "dst/", "--dryrun"],
        "cp up": ["cp", *via, str(tmp_path / "l.bin"), prefix + "l.bin", "--dryrun"],
        "mv": ["mv", *via, prefix + "src/a.bin", prefix + "m.bin", "--dryrun"],
        "sync": ["sync", *via, str(tmp_path), prefix + "sync/", "--delete", "--dryrun"],
        "rm": ["rm", *via, "-r", prefix, "--dryrun"],
        "mb": ["mb", *via, "s3://dry-bucket", "--dryrun"],
        "rb": ["rb", *via, "s3://objio-test", "--force", "--dryrun"],
        "gen": ["gen", *via, prefix + "gen/", "--format", "npz", "--num-files", "2",
                "--dryrun"],
        "run": ["run", *via, str(batch), "--dryrun"],
    }
    for name, argv in runs.items():
        proxy.clear()
        assert main(argv) == 0, (name, capsys.readouterr().err)
        out = capsys.readouterr().out
        assert _writes(proxy) == [], name
        if name != "gen":
            assert "(dryrun)" in out, (name, out)
    assert client.list(prefix) == [prefix.split("/", 3)[3] + "src/a.bin"]
    assert not client.exists("s3://dry-bucket/x")
