"""``objio run FILE`` (s5cmd's batch mode), issue 18 A3, against the real LocalS3Server: every
line checked before anything runs, the lines' copies together under one --max-in-flight, one
summary, exit 1 with the failed lines printed verbatim when one failed."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

import objio
from objio.cli import main


def _batch(tmp_path: Path, text: str) -> str:
    path = tmp_path / "cmds.txt"
    path.write_text(text)
    return str(path)


def test_run_cp_mv_rm_sync_lines_one_summary(
        cli_env: list[str], client: objio.Client, prefix: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(6):
        client.put_bytes(prefix + f"src/f{i}.bin", b"%d" % i * 100)
    client.put_bytes(prefix + "old/x.tmp", b"x")
    client.put_bytes(prefix + "one.bin", b"1")
    local = tmp_path / "local"
    text = f"""# a comment, then a blank line

cp -r {prefix}src/ {local}/
mv {prefix}one.bin {prefix}moved/one.bin
rm -r {prefix}old/
sync {prefix}src/ {prefix}mirror/ --exclude 'f5*'
"""
    code = main(["run", *cli_env, _batch(tmp_path, text), "--json", "--max-in-flight", "3"])
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(out)
    assert summary["commands"] == 4 and summary["ok"] == 4 and summary["failed"] == 0
    assert summary["objects"] == 6 + 1 + 5 and summary["deleted"] == 2
    assert summary["failed_lines"] == []
    assert sorted(p.name for p in local.iterdir()) == [f"f{i}.bin" for i in range(6)]
    assert (local / "f3.bin").read_bytes() == b"3" * 100
    assert client.get(prefix + "moved/one.bin") == b"1" and not client.exists(prefix + "one.bin")
    assert client.list(prefix + "old/") == []
    assert len(client.list(prefix + "mirror/")) == 5


def test_run_a_failed_line_fails_alone_and_is_printed_verbatim(
        cli_env: list[str], client: objio.Client, prefix: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    client.put_bytes(prefix + "a.bin", b"a")
    bad = f"cp   {prefix}no-such-*.bin {tmp_path}/out/"
    text = f"cp {prefix}a.bin {tmp_path}/a.bin\n{bad}\nrm {prefix}a.bin\n"
    assert main(["run", *cli_env, _batch(tmp_path, text)]) == 1
    err = capsys.readouterr().err
    assert (tmp_path / "a.bin").read_bytes() == b"a" and not client.exists(prefix + "a.bin")
    assert "line 2:" in err and "nothing matches" in err
    assert "2 command(s) ok, 1 failed" in err
    after = err.split("# failed lines", 1)[1].splitlines()[1:]
    assert after == [bad]  # verbatim, to be run again with objio run -


def test_run_checks_every_line_before_running_any(
        cli_env: list[str], client: objio.Client, prefix: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    client.put_bytes(prefix + "keep.bin", b"k")
    text = (f"rm {prefix}keep.bin\n"
            f"cp --no-such-flag {prefix}keep.bin {tmp_path}/\n"
            f"ls {prefix}\n"
            f"rm -r {prefix}dir#1/ # a # in a line is part of it: not a comment\n")
    assert main(["run", *cli_env, _batch(tmp_path, text)]) == 2
    err = capsys.readouterr().err
    assert "line 2:" in err and "--no-such-flag" in err
    assert "line 3:" in err and "'ls' is not one of cp, mv, rm, sync" in err
    assert "line 4:" in err and "unrecognized arguments: # a #" in err
    assert "nothing was run" in err
    assert client.exists(prefix + "keep.bin")  # line 1 did not run


def test_run_from_stdin_dryrun_changes_nothing(
        cli_env: list[str], client: objio.Client, prefix: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    client.put_bytes(prefix + "a.bin", b"a")
    text = f"mv {prefix}a.bin {prefix}b.bin\nrm -r {prefix}\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    assert main(["run", *cli_env, "-", "--dryrun"]) == 0
    out, err = capsys.readouterr()
    assert f"(dryrun) move: {prefix}a.bin to {prefix}b.bin" in out
    assert f"(dryrun) delete: {prefix}a.bin" in out
    assert client.list(prefix) == [prefix.split("/", 3)[3] + "a.bin"]


def test_run_shares_one_max_in_flight(
        cli_env: list[str], client: objio.Client, prefix: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Two lines of 8 objects each with --max-in-flight 4: never more than 4 copies at
    once over both lines (counted around the client's copy)."""
    for i in range(8):
        client.put_bytes(prefix + f"a/{i}", b"a")
        client.put_bytes(prefix + f"b/{i}", b"b")
    active = [0, 0]
    real = objio.Client.copy_many_async

    async def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        import asyncio

        active[0] += 1
        active[1] = max(active[1], active[0])
        try:
            await asyncio.sleep(0.01)
            return await real(self, *args, **kwargs)
        finally:
            active[0] -= 1

    monkeypatch.setattr(objio.Client, "copy_many_async", counting)
    text = f"cp -r {prefix}a/ {prefix}x/\ncp -r {prefix}b/ {prefix}y/\n"
    assert main(["run", *cli_env, _batch(tmp_path, text), "-q", "--max-in-flight", "4"]) == 0
    assert len(client.list(prefix + "x/")) == len(client.list(prefix + "y/")) == 8
    assert 1 < active[1] <= 4
