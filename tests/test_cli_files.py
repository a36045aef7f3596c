"""ls/stat/cat/cp/rm/mb against the real LocalS3Server, including the error exits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import objio
from objio import transfer
from objio.cli import main
from objio.config import MiB
from objio.server import LocalS3Server


def run(capsys: pytest.CaptureFixture[str], cmd: str, *args: str,
        flags: list[str]) -> tuple[int, str, str]:
    code = main([cmd, *flags, *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_mb_ls_stat_cat_rm(cli_env: list[str], client: objio.Client, prefix: str,
                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "mb", "s3://cli-made", flags=cli_env)
    assert code == 0 and "make_bucket: cli-made" in out
    code, out, _ = run(capsys, "ls", flags=cli_env)
    assert code == 0 and "cli-made" in out and "objio-test" in out
    for k in ["a.txt", "dir/b.txt", "dir/sub/c.txt"]:
        client.put_bytes(prefix + k, k.encode())
    code, out, _ = run(capsys, "ls", prefix, flags=cli_env)
    lines = out.splitlines()
    assert code == 0 and any(line.split()[-2:] == ["PRE", "dir/"] for line in lines)
    assert any(line.endswith(" 5 a.txt") for line in lines)
    code, out, _ = run(capsys, "ls", prefix, "--recursive", "--json", flags=cli_env)
    rows = json.loads(out)
    assert sorted(r["key"].rsplit("/", 1)[1] for r in rows) == ["a.txt", "b.txt", "c.txt"]
    assert all(r["size"] > 0 and r["etag"] for r in rows)
    code, out, _ = run(capsys, "stat", prefix + "a.txt", "--json", flags=cli_env)
    assert code == 0 and json.loads(out)["size"] == 5
    code, out, _ = run(capsys, "cat", prefix + "dir/b.txt", flags=cli_env)
    assert code == 0
    code, out, _ = run(capsys, "rm", prefix + "a.txt", flags=cli_env)
    assert code == 0 and not client.exists(prefix + "a.txt")
    code, out, _ = run(capsys, "rm", prefix + "dir", "--recursive", "--json", flags=cli_env)
    assert code == 0 and json.loads(out) == {"deleted": 2}
    assert client.list(prefix) == []


def test_cat_writes_bytes_to_stdout(cli_env: list[str], client: objio.Client, prefix: str,
                                    capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    payload = bytes(range(256)) * 1000
    client.put_bytes(prefix + "bin", payload)
    assert main(["cat", *cli_env, prefix + "bin"]) == 0
    assert capfdbinary.readouterr().out == payload


def test_cp_single_and_recursive_roundtrip(cli_env: list[str], client: objio.Client,
                                           prefix: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    (src / "nested").mkdir(parents=True)
    (src / "one.bin").write_bytes(b"1" * 1000)
    (src / "nested" / "two.bin").write_bytes(b"2" * 2000)
    # local file -> s3 "directory" (trailing slash keeps the basename)
    code, out, _ = run(capsys, "cp", str(src / "one.bin"), prefix + "single/", flags=cli_env)
    assert code == 0 and bytes(client.get(prefix + "single/one.bin")) == b"1" * 1000
    # local dir -> s3 prefix, recursive, JSON summary
    code, out, _ = run(capsys, "cp", str(src), prefix + "tree", "--recursive", "--json",
                       flags=cli_env)
    assert code == 0 and json.loads(out)["objects"] == 2 and json.loads(out)["bytes"] == 3000
    assert sorted(k.split("/tree/")[1] for k in client.list(prefix + "tree/")) == \
        ["nested/two.bin", "one.bin"]
    # s3 -> s3
    code, _, _ = run(capsys, "cp", prefix + "tree/", prefix + "copy/", "--recursive",
                     flags=cli_env)
    assert code == 0 and len(client.list(prefix + "copy/")) == 2
    # s3 prefix -> local dir
    dst = tmp_path / "back"
    code, _, _ = run(capsys, "cp", prefix + "copy", str(dst), "--recursive", "--quiet",
                     flags=cli_env)
    assert code == 0
    assert (dst / "nested" / "two.bin").read_bytes() == b"2" * 2000
    assert (dst / "one.bin").read_bytes() == b"1" * 1000
    # s3 object -> local file path
    code, _, _ = run(capsys, "cp", prefix + "copy/one.bin", str(tmp_path / "x.bin"),
                     flags=cli_env)
    assert code == 0 and (tmp_path / "x.bin").read_bytes() == b"1" * 1000


def test_cp_large_object_is_streamed(cli_env: list[str], client: objio.Client, prefix: str,
                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(transfer, "STREAM_THRESHOLD", 1 * MiB)
    payload = np.random.default_rng(3).integers(0, 256, 3 * MiB + 17, dtype=np.uint8)
    (tmp_path / "big.bin").write_bytes(payload.tobytes())
    code, _, _ = run(capsys, "cp", str(tmp_path / "big.bin"), prefix + "big.bin", flags=cli_env)
    assert code == 0
    code, _, _ = run(capsys, "cp", prefix + "big.bin", str(tmp_path / "back.bin"), flags=cli_env)
    assert code == 0 and (tmp_path / "back.bin").read_bytes() == payload.tobytes()


@pytest.mark.parametrize("argv,needle", [
    (["cat", "s3://objio-test/definitely-missing"], "definitely-missing"),
    (["stat", "s3://objio-test/definitely-missing"], "NotFound: no such object"),
    (["ls", "s3://no-such-bucket-cli/"], "no-such-bucket-cli"),
    (["cp", "s3://objio-test/definitely-missing", "/tmp/x"], "definitely-missing"),
    (["rm", "/tmp/somewhere", "--incomplete-uploads"], "s3://bucket/prefix"),
    (["ls", "hdfs://bucket/x"], "supported schemes"),
    (["mb", "s3://objio-test"], "BucketAlreadyOwnedByYou"),
    (["mb", "s3://Bad_Bucket"], "bucket name"),
    (["rm", "s3://objio-test/some/prefix/"], "--recursive"),
])
def test_user_errors_exit_1_with_one_line(cli_env: list[str], argv: list[str], needle: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code = main([argv[0], *cli_env, *argv[1:]])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("objio: error:") and needle in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_access_denied_exits_1(s3_server: LocalS3Server, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    code = main(["ls", "--endpoint-url", s3_server.endpoint_url, "s3://objio-test/"])
    err = capsys.readouterr().err
    assert code == 1 and "SignatureDoesNotMatch" in err and "not-the-secret" not in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["cp", "only-one-arg"], ["ls", "--bogus-flag"], ["cp", "a", "b", "--max-in-flight", "x"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
