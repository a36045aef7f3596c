"""Messages that say what happened and what to do (issue 18 B): a dead endpoint gives up in
a few attempts and says so, retries show on standard error (-v: every one; a terminal: the
first), a directory or a bucket given where one object is expected is named as typed with
what to do, and no message shows an internal class name or a file:// URI made from the user's
plain path."""

from __future__ import annotations

import logging
import re
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

import objio
from conftest import BUCKET
from faultproxy import FaultProxy, Forge, Response
from objio import engine
from objio.cli import main
from objio.server import LocalS3Server


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff of milliseconds (the attempts are counted, not timed); a full retry quota."""
    monkeypatch.setattr(engine, "_BACKOFF_BASE_S", 0.001)
    monkeypatch.setattr(engine, "_UNREACHABLE_BACKOFF_S", 0.001, raising=False)
    engine.reset_retry_quota()


def _dead_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _retry_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("objio: retrying: ")]


# ------------------------------------------------------------------------- B3 dead endpoint
@pytest.mark.parametrize("argv", [["stat", "s3://bkt/x"], ["cat", "s3://bkt/x"],
                                  ["rm", "s3://bkt/x"], ["mb", "s3://bkt"],
                                  ["cp", "FILE", "s3://bkt/x"]])
def test_a_refused_connection_gives_up_after_a_few_attempts_and_says_what_to_do(
        argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setenv("OBJIO_MAX_ATTEMPTS", "10")  # the standard budget: not used here
    f = tmp_path / "f"
    f.write_bytes(b"x")
    argv = [str(f) if a == "FILE" else a for a in argv]
    port = _dead_port()
    code, _, err = _run(capsys, *argv, "-v", "--endpoint-url", f"http://127.0.0.1:{port}")
    assert code == 1
    assert _retry_lines(err) == [
        f"objio: retrying: connection refused by 127.0.0.1:{port} (attempt {n} of 4)"
        for n in (2, 3, 4)]
    last = err.strip().splitlines()[-1]
    assert last.startswith("objio: error: ") and f"connection refused by 127.0.0.1:{port} " \
        "(4 attempts): is the server running?" in last
    assert "AWS_ENDPOINT_URL" in last and "--endpoint-url" in last


def test_refused_attempts_are_a_setting_and_library_errors_keep_their_type(
        caplog: pytest.LogCaptureFixture) -> None:
    port = _dead_port()
    c = objio.Client(endpoint_url=f"http://127.0.0.1:{port}", access_key_id="k",
                     secret_access_key="s", connect_attempts=2)
    with caplog.at_level(logging.INFO, logger="objio.retry"):
        with pytest.raises(objio.EndpointUnreachableError) as e:
            c.get("s3://bkt/x")
    assert isinstance(e.value, objio.ObjectStoreError) and isinstance(e.value, OSError)
    assert e.value.code == "ConnectionError" and e.value.reason == "refused"
    assert e.value.target == f"127.0.0.1:{port}" and e.value.operation == "GetObject"
    assert [r.getMessage() for r in caplog.records if r.name == "objio.retry"] == [
        f"retrying: connection refused by 127.0.0.1:{port} (attempt 2 of 2)"]
    assert "(2 attempts): is the server running?" in str(e.value)
    with pytest.raises(ValueError, match="connect_attempts"):
        objio.ClientConfig(connect_attempts=0)


def test_a_host_name_that_does_not_resolve_gives_up_as_fast(
        caplog: pytest.LogCaptureFixture) -> None:
    c = objio.Client(endpoint_url="http://no-such-host.invalid:9000", access_key_id="k",
                     secret_access_key="s", max_attempts=10)
    with caplog.at_level(logging.INFO, logger="objio.retry"):
        with pytest.raises(objio.EndpointUnreachableError) as e:
            c.stat("s3://bkt/x")
    assert e.value.reason == "unresolved"
    assert "the host name no-such-host.invalid does not resolve (4 attempts)" in str(e.value)
    assert len([r for r in caplog.records if r.name == "objio.retry"]) == 3


def test_5xx_keeps_the_standard_budget_and_v_shows_every_retry(
        s3_server: LocalS3Server, proxy: FaultProxy, client: objio.Client, prefix: str,
        cli_env: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    client.put_bytes(prefix + "k", b"payload")
    proxy.clear()
    proxy.add(lambda r: r.method == "GET", Forge(lambda r: Response(
        503, "Slow Down", [], b"<Error><Code>SlowDown</Code><Message>x</Message></Error>")),
        times=4)
    try:
        code, out, err = _run(capsys, "cat", prefix + "k", "-v",
                              "--endpoint-url", proxy.endpoint_url)
    finally:
        proxy.clear()
    assert code == 0 and out == "payload"
    lines = _retry_lines(err)
    assert len(lines) == 4 and lines[-1].endswith("(attempt 5 of 5)")
    assert all(f"GetObject {prefix}k: SlowDown (HTTP 503)" in line for line in lines)


def test_retries_are_silent_in_a_pipe_and_the_first_shows_on_a_terminal(
        proxy: FaultProxy, client: objio.Client, prefix: str, cli_env: list[str],
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    client.put_bytes(prefix + "k", b"payload")

    def two_503() -> None:
        proxy.clear()
        proxy.add(lambda r: r.method == "GET", Forge(lambda r: Response(
            503, "Slow Down", [], b"<Error><Code>SlowDown</Code></Error>")), times=2)

    try:
        two_503()
        code, out, err = _run(capsys, "cat", prefix + "k", "--endpoint-url",
                              proxy.endpoint_url)
        assert code == 0 and out == "payload" and err == ""  # not a terminal, no -v
        two_503()
        monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
        code, out, err = _run(capsys, "cat", prefix + "k", "--endpoint-url",
                              proxy.endpoint_url)
    finally:
        proxy.clear()
    assert code == 0 and out == "payload"
    assert _retry_lines(err) == [f"objio: retrying: GetObject {prefix}k: SlowDown (HTTP 503) "
                                 "(attempt 2 of 5) (-v shows every retry)"]


# ------------------------------------------------------------------------- B1 directories
@pytest.mark.parametrize("cmd", ["cp", "mv"])
def test_a_directory_without_recursive_says_use_recursive(
        cmd: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_env: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(capsys, cmd, "./data", f"s3://{BUCKET}/d", *cli_env)
    assert code == 1
    assert err == (f"objio: error: ./data is a directory: use --recursive (-r) to {cmd} "
                   "every file under it\n")
    assert (tmp_path / "data" / "f").exists()


def test_rm_of_a_directory_without_recursive_says_use_recursive(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(capsys, "rm", "data")
    assert code == 1 and err == ("objio: error: data is a directory: use --recursive (-r) to "
                                 "rm every file under it\n")
    assert (tmp_path / "data" / "f").exists()


@pytest.mark.parametrize("cmd", ["stat", "cat"])
def test_stat_and_cat_of_a_directory_say_it_is_one(
        cmd: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(capsys, cmd, "data")
    assert code == 1 and out == ""
    assert err.startswith(f"objio: error: data is a directory, not a file: {cmd} takes one "
                          "file (objio ls")


# ------------------------------------------------------------------------- B2 buckets
@pytest.mark.parametrize("cmd,uri", [("cat", f"s3://{BUCKET}"), ("stat", f"s3://{BUCKET}/")])
def test_a_bucket_given_as_an_object_is_named_so(
        cmd: str, uri: str, cli_env: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, cmd, uri, *cli_env)
    assert code == 1 and out == ""
    assert err == (f"objio: error: {uri} names a bucket, not an object: {cmd} needs an object "
                   f"key, s3://{BUCKET}/KEY\n")


def test_cp_of_a_bucket_without_recursive_says_use_recursive(
        cli_env: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "cp", f"s3://{BUCKET}", str(tmp_path), *cli_env)
    assert code == 1
    assert err == (f"objio: error: s3://{BUCKET} names a bucket, not an object: use "
                   "--recursive (-r) to cp every object in it\n")


def test_library_open_of_a_bucket_names_no_internal_class(client: objio.Client) -> None:
    for mode, reader in (("rb", None), ("rb", "range_based"), ("wb", None)):
        kw: dict[str, Any] = {"reader": reader} if reader else {}
        with pytest.raises(ValueError) as e:
            objio.open(f"s3://{BUCKET}", mode, client=client, **kw)
        text = str(e.value)
        assert text.startswith(f"s3://{BUCKET} names a bucket, not an object: open")
        assert not re.search(r"Reader|Writer|'", text)


# ------------------------------------------------------------------------- B4 paths as typed
def test_errors_show_local_paths_as_typed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          cli_env: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    code, _, err = _run(capsys, "stat", "./nothere")
    assert code == 1 and err == ("objio: error: HeadObject ./nothere failed: No such file or "
                                 "directory\n")
    code, _, err = _run(capsys, "cat", "data/missing.bin")
    assert code == 1 and "data/missing.bin" in err and "file://" not in err
    code, _, err = _run(capsys, "cp", "-r", "./nothere", f"s3://{BUCKET}/x/", *cli_env)
    assert code == 1 and "./nothere" in err and "file://" not in err
    uri = (tmp_path / "nothere").as_uri()  # a file:// URI typed as such stays as typed
    code, _, err = _run(capsys, "stat", uri)
    assert code == 1 and uri in err


def test_copy_lines_and_warnings_show_local_paths_as_typed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_env: list[str], prefix: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f").write_bytes(b"x")
    code, out, _ = _run(capsys, "cp", "-r", "./data", prefix, *cli_env)
    assert code == 0 and out == f"copy: ./data/f to {prefix}f\n"
    code, out, _ = _run(capsys, "rm", "-r", "--dryrun", "data/", *cli_env)
    assert code == 0 and out == "(dryrun) delete: data/f\n"
    code, _, err = _run(capsys, "cp", "data/f", "data/f", *cli_env)
    assert code == 0 and err.startswith("warning: skipping data/f: it is the destination")


# ------------------------------------------------------------------------- B4 what to do
def test_a_missing_bucket_says_how_to_list_and_make_one(
        tmp_path: Path, cli_env: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x")
    code, _, err = _run(capsys, "cp", str(f), "s3://objio-no-such-bucket/f", *cli_env)
    assert code == 1
    assert err.splitlines()[-1].endswith(
        "(objio ls lists your buckets; objio mb s3://objio-no-such-bucket makes it)")


def test_access_denied_says_which_credentials_to_check(
        client: objio.Client, prefix: str, cli_env: list[str],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    client.put_bytes(prefix + "k", b"x")
    code, _, err = _run(capsys, "cat", prefix + "k", "--no-sign-request", *cli_env)
    assert code == 1 and err.rstrip().endswith(
        "(anonymous requests are refused here: drop --no-sign-request to sign them with your "
        "credentials)")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    code, _, err = _run(capsys, "stat", prefix + "k", *cli_env)
    assert code == 1 and "(check the credentials: --profile, or AWS_ACCESS_KEY_ID / " \
        "AWS_SECRET_ACCESS_KEY" in err


def test_a_broken_manifest_line_is_described_in_words(
        tmp_path: Path, client: objio.Client, prefix: str, cli_env: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    client.put_bytes(prefix + "a", b"x")
    m = tmp_path / "m.jsonl"
    assert _run(capsys, "ls", prefix, "--manifest", str(m), *cli_env)[0] == 0
    lines = m.read_text().splitlines(keepends=True)
    for bad, why in (("{not json\n", "line 2: not valid JSON (Expecting property name "
                                     "enclosed in double quotes at column 2)"),
                     ('{"size": 1}\n', "line 2: the field 'key' is missing")):
        m.write_text(lines[0] + bad + "".join(lines[2:]))
        code, _, err = _run(capsys, "cp", "--from-manifest", str(m), prefix, str(tmp_path / "o"),
                            *cli_env)
        assert code == 1 and err.rstrip().endswith(why)
        assert "Error" not in err


def test_an_unclosed_writer_warning_names_no_class(client: objio.Client, prefix: str) -> None:
    import gc

    w = objio.open(prefix + "never", "wb", client=client)
    w.write(b"x")
    with pytest.warns(ResourceWarning) as rec:
        del w
        gc.collect()
    text = str(rec[0].message)
    assert text.startswith(f"the writer of {prefix}never was never closed: the upload is aborted")
    assert "Writer" not in text


def test_safetensors_errors_show_paths_not_reprs(tmp_path: Path) -> None:
    from objio.model import load_safetensors

    glob = tmp_path / "*.safetensors"
    with pytest.raises(ValueError) as e:
        load_safetensors(glob)
    assert str(e.value) == ("uri_or_uris takes a file, a prefix or an index, not a glob: "
                            f"{glob}")


def test_ls_of_a_missing_local_path_says_so(tmp_path: Any, monkeypatch: Any,
                                            capsys: Any) -> None:
    from objio.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["ls", "./nothere"]) == 1
    err = capsys.readouterr().err
    assert "./nothere: no such file or directory" in err


def test_gen_says_where_it_wrote_as_typed(tmp_path: Any, monkeypatch: Any, capsys: Any) -> None:
    from objio.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["gen", "./g", "--format", "npz", "--num-files", "1", "--samples-per-file", "1",
                 "--record-size", "1KiB"]) == 0
    out = capsys.readouterr().out
    assert "wrote 1 npz file," in out and out.rstrip().endswith("-> ./g")
    assert "file://" not in out
