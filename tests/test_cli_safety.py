"""The CLI never destroys what it was asked to move or copy (issue 16, B and D3): no move or copy
onto itself or into itself, file modes as open() gives them, a closed pipe is exit 141, lines
printed when their object is done, sync's deletions counted, NoSuchBucket on upload. Against
the real LocalS3Server (through the fault proxy where a request must fail or be counted)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import objio
from objio import transfer
from objio.cli import main
from objio.server import LocalS3Server

SRC = str(Path(objio.__file__).resolve().parents[1])


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def via_proxy(proxy: Any, cli_env: list[str]) -> list[str]:
    """``--endpoint-url`` of the fault proxy (rules and log cleared): what the CLI sent shows
    in ``proxy.log``."""
    proxy.clear()
    return ["--endpoint-url", proxy.endpoint_url]


# ------------------------------------------------------------------------------ B1 onto itself
def test_same_object_and_prefix_overlap(tmp_path: Path) -> None:
    from objio.uri import canonical, prefix_overlap, same_object

    (tmp_path / "d").mkdir()
    f = tmp_path / "d" / "f"
    f.write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "d")
    for other in (f"file://{f}", f"{tmp_path}/d/../d/f", f"{tmp_path}/./d/f/",
                  f"{tmp_path}/link/f"):
        assert same_object(str(f), other), other
        assert canonical(other) == f"file://{f}"
    assert not same_object(str(f), f"{tmp_path}/d/g")
    assert same_object("s3://bkt/a/b", "s3://bkt/a/b")
    assert not same_object("s3://bkt/a/b", "s3://bkt/a/./b")  # S3 keys are plain strings
    assert not same_object("s3://bkt/a", "s3://other/a")
    assert prefix_overlap("s3://bkt/a", "s3://bkt/a/") == "same"
    assert prefix_overlap("s3://bkt/a/", "s3://bkt/a/sub/") == "inside"
    assert prefix_overlap("s3://bkt/a/sub", "s3://bkt/a") == "contains"
    assert prefix_overlap("s3://bkt/", "s3://bkt/x/") == "inside"
    assert prefix_overlap("s3://bkt/a/", "s3://bkt/ab/") is None
    assert prefix_overlap("s3://bkt/a/", "s3://bkt2/a/") is None
    assert prefix_overlap(str(tmp_path / "link"), f"file://{tmp_path}/d/sub") == "inside"


@pytest.mark.parametrize("dst", ["{p}k", "{p}"])
def test_mv_s3_object_onto_itself_is_refused_before_any_request(
        client: objio.Client, prefix: str, proxy: Any, via_proxy: list[str], dst: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    client.put_bytes(prefix + "k", b"keep me")
    target = dst.format(p=prefix)
    code, out, err = run(capsys, "mv", prefix + "k", target, *via_proxy)
    assert code == 1 and out == ""
    assert err.startswith("objio: error: Cannot mv an object onto itself") and \
        prefix + "k" in err and target in err and len(err.splitlines()) == 1
    assert proxy.log == []
    assert bytes(client.get(prefix + "k")) == b"keep me"


def test_mv_local_file_onto_itself_every_spelling(tmp_path: Path, proxy: Any,
                                                  via_proxy: list[str],
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (tmp_path / "link").symlink_to(d)
    f = d / "f.txt"
    f.write_bytes(b"precious")
    monkeypatch.chdir(d)
    for target in ("f.txt", "./f.txt", f"file://{f}", "../d/f.txt", str(d) + "/", ".",
                   str(tmp_path / "link" / "f.txt"), str(tmp_path / "link") + "/"):
        code, out, err = run(capsys, "mv", "f.txt", target, *via_proxy)
        assert code == 1 and "Cannot mv an object onto itself" in err, (target, err)
        assert f.read_bytes() == b"precious", target
    assert proxy.log == []


def test_cp_onto_itself_is_a_no_op(tmp_path: Path, client: objio.Client, prefix: str,
                                   cli_env: list[str],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "f.bin"
    f.write_bytes(b"as it was")
    os.chmod(f, 0o604)
    before = os.stat(f)
    for target in (str(f), f"file://{f}", str(tmp_path) + "/"):
        code, out, err = run(capsys, "cp", str(f), target, *cli_env)
        assert code == 0 and out == "", err
        assert "the same object" in err and "nothing to copy" in err
    after = os.stat(f)
    assert (after.st_ino, after.st_mode, after.st_mtime_ns) == \
        (before.st_ino, before.st_mode, before.st_mtime_ns)
    client.put_bytes(prefix + "k", b"s3 too")
    etag = client.stat(prefix + "k").etag
    code, _, err = run(capsys, "cp", prefix + "k", prefix, *cli_env)
    assert code == 0 and "nothing to copy" in err and client.stat(prefix + "k").etag == etag
    code, _, err = run(capsys, "cp", prefix + "missing", prefix + "missing", *cli_env)
    assert code == 1 and "missing" in err  # a missing source is still an error


def test_library_refuses_copy_and_move_onto_itself(client: objio.Client, prefix: str,
                                                   tmp_path: Path) -> None:
    client.put_bytes(prefix + "k", b"1")
    with pytest.raises(ValueError, match="onto itself.*" + prefix + "k"):
        client.copy(prefix + "k", prefix + "k")
    with pytest.raises(ValueError, match="onto itself"):
        client.copy_many([(prefix + "k", prefix + "k")])
    f = tmp_path / "f"
    f.write_bytes(b"1")
    with pytest.raises(ValueError, match="onto itself"):
        client.copy(str(f), f"file://{tmp_path}/./f")
    with pytest.raises(ValueError, match="Cannot mv an object onto itself"):
        transfer.plan_copy(client, prefix + "k", prefix, move=True)
    plan = transfer.plan_copy(client, prefix + "k", prefix)
    assert plan.items == [] and plan.skipped == [(prefix + "k", transfer.SAME_OBJECT)]


@pytest.mark.parametrize("argv", [
    ["mv", "-r", "{p}a", "{p}a/"],
    ["mv", "-r", "{p}a/", "{p}a/sub/"],
    ["mv", "-r", "{p}a/sub/", "{p}a/"],
    ["cp", "-r", "{p}a/", "{p}a/copy/"],
    ["cp", "-r", "{p}a/", "{p}a"],
    ["mv", "{p}a/*", "{p}a/"],
    ["sync", "{p}a/", "{p}a/sub/", "--delete"],
    ["sync", "{p}a/sub/", "{p}a/", "--delete"],
    ["sync", "{p}a", "{p}a/"],
], ids=lambda a: " ".join(a))
def test_overlapping_prefixes_are_refused_before_any_request(
        client: objio.Client, prefix: str, proxy: Any, via_proxy: list[str], argv: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    keys = ["a/x", "a/sub/y", "a/sub/sub/z", "a/sub/x"]
    for k in keys:
        client.put_bytes(prefix + k, k.encode())
    code, out, err = run(capsys, *[a.format(p=prefix) for a in argv], *via_proxy)
    assert code == 1 and out == "" and len(err.splitlines()) == 1, err
    assert err.startswith(f"objio: error: Cannot {argv[0]} ")
    assert proxy.log == []
    assert sorted(client.list(prefix)) == sorted(objio.parse_uri(prefix + k).key for k in keys)
    for k in keys:
        assert bytes(client.get(prefix + k)) == k.encode()


def test_overlapping_local_directories_are_refused(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a").write_bytes(b"a")
    (src / "sub" / "b").write_bytes(b"b")
    (tmp_path / "link").symlink_to(src)
    for argv in (["mv", "-r", str(src), f"{src}/sub"], ["mv", "-r", f"{src}/sub", str(src)],
                 ["mv", "-r", str(tmp_path / "link"), f"file://{src}/"],
                 ["sync", str(src), f"{tmp_path}/link/sub", "--delete"]):
        code, _, err = run(capsys, *argv)
        assert code == 1 and "Cannot" in err, (argv, err)
    assert (src / "a").read_bytes() == b"a" and (src / "sub" / "b").read_bytes() == b"b"
    assert sorted(p.name for p in src.rglob("*")) == ["a", "b", "sub"]
    # a sibling whose name starts with the source's is not inside it
    code, out, _ = run(capsys, "mv", "-r", str(src), str(tmp_path / "src2"))
    assert code == 0 and sorted(out.splitlines()) == [
        f"move: {src}/{n} to {tmp_path}/src2/{n}" for n in ("a", "sub/b")]  # paths as typed
    assert not (src / "a").exists() and (tmp_path / "src2" / "sub" / "b").read_bytes() == b"b"


def test_mv_through_a_link_into_the_source_is_refused(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The destination directory holds a symbolic link into the source: dst/sub/b is
    src/sub/b. Moving would copy b onto itself, then delete it."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "sub").mkdir(parents=True)
    dst.mkdir()
    (src / "a").write_bytes(b"a")
    (src / "sub" / "b").write_bytes(b"b")
    (dst / "sub").symlink_to(src / "sub")
    code, out, err = run(capsys, "mv", "-r", str(src), str(dst))
    assert code == 1 and out == "" and "Cannot mv an object onto itself" in err
    assert (src / "a").read_bytes() == b"a" and (src / "sub" / "b").read_bytes() == b"b"
    code, out, err = run(capsys, "cp", "-r", str(src), str(dst))  # b is skipped, a copied
    assert code == 0 and out == f"copy: {src}/a to {dst}/a\n"  # paths as typed
    assert "skipping" in err and (src / "sub" / "b").read_bytes() == b"b"


# ------------------------------------------------------------------------------ B3 file modes
@pytest.fixture
def umask() -> Iterator[Any]:
    old = os.umask(0o022)

    def set_to(mask: int) -> None:
        os.umask(mask)

    yield set_to
    os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_local_files_get_the_mode_open_gives(tmp_path: Path, umask: Any, mask: int,
                                             client: objio.Client, prefix: str,
                                             cli_env: list[str],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    umask(mask)
    want = 0o666 & ~mask
    objio.put_bytes(f"file://{tmp_path}/put.bin", b"1")
    assert _mode(tmp_path / "put.bin") == want
    src = tmp_path / "src.bin"
    src.write_bytes(b"2")
    client.put_bytes(prefix + "k", b"3")
    assert run(capsys, "cp", str(src), str(tmp_path / "copy.bin"), *cli_env)[0] == 0
    assert run(capsys, "cp", prefix + "k", str(tmp_path / "down.bin"), *cli_env)[0] == 0
    assert run(capsys, "cp", prefix, str(tmp_path / "tree"), "-r", *cli_env)[0] == 0
    for name in ("copy.bin", "down.bin", "tree/k"):
        assert _mode(tmp_path / name) == want, name
    code, _, err = run(capsys, "gen", str(tmp_path / "gen"), "--format", "npz",
                       "--num-files", "2", "--record-size", "1000", "--no-progress", "--yes")
    assert code == 0, err
    made = [p for p in (tmp_path / "gen").rglob("*") if p.is_file()]
    assert made and all(_mode(p) == want for p in made)


def test_overwrite_keeps_the_mode_and_parts_stay_private(tmp_path: Path, umask: Any,
                                                        client: objio.Client, prefix: str,
                                                        cli_env: list[str],
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    umask(0o022)
    f = tmp_path / "f.bin"
    f.write_bytes(b"old")
    os.chmod(f, 0o640)
    objio.put_bytes(str(f), b"new")
    assert _mode(f) == 0o640 and f.read_bytes() == b"new"
    client.put_bytes(prefix + "k", b"newer")
    assert run(capsys, "cp", prefix + "k", str(f), *cli_env)[0] == 0
    assert _mode(f) == 0o640 and f.read_bytes() == b"newer"
    # a multipart upload's parts are private until the file is put together
    w = objio.open(tmp_path / "big.bin", "wb", part_size=1 << 20, client=objio.Client())
    w.write(os.urandom(5 << 19))  # parts 1 and 2 go out now, the last half on close()
    for _ in range(600):  # (until both have been written)
        parts = [p for p in (tmp_path / ".objio-uploads").rglob("0000*") if p.is_file()]
        if len(parts) == 2:
            break
        time.sleep(0.05)
    assert len(parts) == 2 and all(_mode(p) == 0o600 for p in parts)
    w.close()
    assert _mode(tmp_path / "big.bin") == 0o644


# ------------------------------------------------------------------------------ B4 closed pipe
def _env(server: LocalS3Server) -> dict[str, str]:
    env = dict(os.environ, **server.environ())
    env["PYTHONUNBUFFERED"] = "1"  # standard output's binary layer is then the raw file
    env["PYTHONPATH"] = os.pathsep.join([SRC, env.get("PYTHONPATH", "")])
    return env


@pytest.mark.parametrize("argv", [["cat", "{k}"], ["cp", "{k}", "-"]], ids=["cat", "cp-"])
def test_closed_pipe_exits_141_quietly(s3_server: LocalS3Server, client: objio.Client,
                                       prefix: str, argv: list[str]) -> None:
    """One write of 1 MiB into a pipe whose reader leaves after 10 bytes: the write is short
    (what the pipe held), and that is not success. Under PYTHONUNBUFFERED=1 (common in
    containers) nothing between objio and the pipe notices a short write."""
    client.put_bytes(prefix + "obj", os.urandom(1 << 20))
    p = subprocess.Popen([sys.executable, "-m", "objio.cli",
                          *[a.format(k=prefix + "obj") for a in argv]],
                         env=_env(s3_server), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    assert p.stdout is not None and p.stderr is not None
    assert len(p.stdout.read(10)) == 10
    p.stdout.close()  # like head -c 10
    err = p.stderr.read().decode()
    assert p.wait(60) == 141 and err == ""


def test_copy_to_file_writes_every_byte_of_short_writes(client: objio.Client,
                                                        prefix: str) -> None:
    import io

    data = os.urandom(3 << 20)
    client.put_bytes(prefix + "obj", data)

    class Dribble(io.RawIOBase):
        """A raw file that takes at most 1000 bytes a write (as a pipe may)."""

        def __init__(self, stop_after: int | None = None) -> None:
            self.got = bytearray()
            self.stop_after = stop_after

        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            if self.stop_after is not None and len(self.got) >= self.stop_after:
                return 0
            n = min(1000, len(memoryview(b)))
            self.got += memoryview(b)[:n]
            return n

    f = Dribble()
    assert transfer.copy_to_file(client, prefix + "obj", f) == len(data)  # type: ignore[arg-type]
    assert bytes(f.got) == data
    with pytest.raises(OSError, match="short write"):
        transfer.copy_to_file(client, prefix + "obj", Dribble(5000))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ B5 order
def test_bad_max_in_flight_is_a_usage_error_before_anything(
        tmp_path: Path, proxy: Any, via_proxy: list[str], client: objio.Client, prefix: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    client.put_bytes(prefix + "a", b"a")
    for cmd in (["cp", "-r", prefix, str(tmp_path / "d")], ["mv", "-r", prefix, prefix + "x/"],
                ["sync", prefix, str(tmp_path / "d")]):
        for bad in ("0", "-3", "many"):
            with pytest.raises(SystemExit) as e:
                main([*cmd, "--max-in-flight", bad, *via_proxy])
            out, err = capsys.readouterr()
            assert e.value.code == 2 and out == "" and "--max-in-flight" in err
    assert proxy.log == [] and not (tmp_path / "d").exists()
    with pytest.raises(ValueError, match="max_in_flight"):
        transfer.run_copy(client, [], max_in_flight=0)


def _fail_get_of(proxy: Any, key: str) -> None:
    """Every GET of ``key`` is refused (403 AccessDenied: not retried)."""
    from faultproxy import Forge, Response

    body = (b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code>"
            b"<Message>Access Denied</Message></Error>")
    proxy.add(lambda r: r.method == "GET" and r.path.endswith("/" + key),
              Forge(lambda r: Response(403, "Forbidden", [("Content-Type", "application/xml")],
                                       body)), times=None)


@pytest.mark.parametrize("verb", ["cp", "mv", "sync"])
def test_lines_say_what_was_done_and_a_failure_what_was_not(
        tmp_path: Path, client: objio.Client, prefix: str, proxy: Any, via_proxy: list[str],
        verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    names = [f"k{i}" for i in range(5)]
    for n in names:
        client.put_bytes(prefix + n, n.encode())
    _fail_get_of(proxy, "k3")
    dst = tmp_path / "dst"
    argv = [verb, prefix, str(dst), "--max-in-flight", "1", *via_proxy]
    if verb != "sync":
        argv.append("-r")
    code, out, err = run(capsys, *argv)
    assert code == 1
    copied = sorted(p.name for p in dst.iterdir()) if dst.exists() else []
    assert copied == ["k0", "k1", "k2"]
    word = "move" if verb == "mv" else "copy"
    assert out.splitlines() == [f"{word}: {prefix}{n} to {dst}/{n}" for n in copied]
    past = {"cp": "copied", "mv": "moved", "sync": "synced"}[verb]
    lines = err.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{past} 3 of 5 object(s)")
    assert f"2 not {past}" in lines[0]
    assert lines[1].startswith("objio: error:") and "k3" in lines[1]
    left = sorted(k.rsplit("/", 1)[1] for k in client.list(prefix))
    assert left == (["k3", "k4"] if verb == "mv" else names)  # mv: only what was copied


def test_failure_json_summary(tmp_path: Path, client: objio.Client, prefix: str, proxy: Any,
                              via_proxy: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    for n in ("a", "b"):
        client.put_bytes(prefix + n, n.encode())
    _fail_get_of(proxy, "b")
    code, out, err = run(capsys, "cp", "-r", prefix, str(tmp_path / "d"), "--max-in-flight", "1",
                         "--json", *via_proxy)
    summary = json.loads(out)
    assert code == 1 and summary["objects"] == 1 and summary["not_copied"] == 1
    assert "b" in summary["error"] and err.startswith("objio: error:")


# ------------------------------------------------------------------------------ B6 sync deletes
def test_sync_delete_summary_counts_the_deletions(tmp_path: Path, client: objio.Client,
                                                  prefix: str, cli_env: list[str],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "keep").write_bytes(b"k")
    for k in ("keep", "old1", "old2"):
        client.put_bytes(prefix + k, b"k")
    code, out, err = run(capsys, "sync", str(src), prefix, "--delete", *cli_env)
    assert code == 0 and sorted(out.splitlines()) == [f"delete: {prefix}old1",
                                                      f"delete: {prefix}old2"]
    assert ", deleted 2" in err
    assert client.list(prefix) == [objio.parse_uri(prefix + "keep").key]
    (src / "new").write_bytes(b"n")
    client.put_bytes(prefix + "old3", b"x")
    code, out, _ = run(capsys, "sync", str(src), prefix, "--delete", "--json", *cli_env)
    assert code == 0 and json.loads(out)["deleted"] == 1 and json.loads(out)["objects"] == 1
    code, _, err = run(capsys, "sync", str(src), prefix, "--delete", *cli_env)
    assert code == 0 and ", deleted 0" in err


# ------------------------------------------------------------------------------ D3 NoSuchBucket
def test_upload_to_a_missing_bucket_is_not_found(client: objio.Client, tmp_path: Path,
                                                 cli_env: list[str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """LocalS3Server runs SeaweedFS with -s3.autoCreateBucket=false: as on AWS, no bucket
    appears because something was written to it."""
    with pytest.raises(FileNotFoundError, match="NoSuchBucket"):
        client.put_bytes("s3://no-such-bucket-d3/a", b"x")
    with pytest.raises(FileNotFoundError, match="NoSuchBucket"):
        client.put_bytes("s3://no-such-bucket-d3/big", bytes(40 << 20))  # multipart
    with pytest.raises(FileNotFoundError, match="NoSuchBucket"):
        with objio.open("s3://no-such-bucket-d3/w", "wb", client=client) as w:
            w.write(bytes(20 << 20))
    f = tmp_path / "f"
    f.write_bytes(b"x")
    code, _, err = run(capsys, "cp", str(f), "s3://no-such-bucket-d3/a", *cli_env)
    assert code == 1 and "NoSuchBucket" in err and len(err.splitlines()) == 2  # summary, error
    assert "no-such-bucket-d3" not in [b for b, _ in client.list_buckets()]
    code, out, _ = run(capsys, "mb", "s3://made-by-mb-d3", *cli_env)  # explicit creation works
    assert code == 0 and "made-by-mb-d3" in [b for b, _ in client.list_buckets()]
    client.put_bytes("s3://made-by-mb-d3/a", b"x")
