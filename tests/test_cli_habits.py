"""The CLI as aws-cli and s5cmd users expect it: profiles, pipes, wildcards, '-' for
stdin/stdout, ls/rm/mv/sync/rb/presign behaviours, sizes, help text everywhere. Against the
real LocalS3Server."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

import objio
from objio.cli import build_parser, main
from objio.server import LocalS3Server

SRC = str(Path(objio.__file__).resolve().parents[1])


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _subprocess_env(server: LocalS3Server) -> dict[str, str]:
    env = dict(os.environ, **server.environ())
    env["PYTHONPATH"] = os.pathsep.join([SRC, env.get("PYTHONPATH", "")])
    return env


# ------------------------------------------------------------------------------ E1 profiles
def test_missing_profile_is_one_line(cli_env: list[str], tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    code, _, err = run(capsys, "ls", "s3://objio-test/", "--profile", "nope", *cli_env)
    assert code == 1 and err.startswith("objio: error: profile 'nope' not found")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_explicit_profile_beats_environment_keys(s3_server: LocalS3Server, client: objio.Client,
                                                 prefix: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    creds = tmp_path / "credentials"
    creds.write_text(f"[good]\naws_access_key_id = {s3_server.access_key_id}\n"
                     f"aws_secret_access_key = {s3_server.secret_access_key}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "wrong")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    client.put_bytes(prefix + "p", b"x")
    ep = ["--endpoint-url", s3_server.endpoint_url]
    code, out, err = run(capsys, "ls", prefix, "--profile", "good", *ep)
    assert code == 0 and "p" in out
    code, _, err = run(capsys, "ls", prefix, *ep)  # without it the env keys are used
    assert code == 1 and "InvalidAccessKeyId" in err or "SignatureDoesNotMatch" in err


def test_no_credentials_hint_names_no_sign_request(s3_server: LocalS3Server, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code, _, err = run(capsys, "ls", "s3://objio-test/", "--endpoint-url",
                       s3_server.endpoint_url)
    assert code == 1 and "--no-sign-request" in err


# ------------------------------------------------------------------------------ E2 pipes
def test_closed_pipe_is_quiet(s3_server: LocalS3Server, client: objio.Client,
                              prefix: str) -> None:
    client.put_many([(f"{prefix}k{i:05d}", b"") for i in range(3000)], max_in_flight=32)
    env = _subprocess_env(s3_server)
    for argv in (["ls", "--recursive", prefix], ["cat", prefix + "big"]):
        if argv[0] == "cat":
            client.put_bytes(prefix + "big", os.urandom(20 << 20))
        p = subprocess.Popen([sys.executable, "-m", "objio.cli", *argv], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert p.stdout is not None and p.stderr is not None
        p.stdout.read(100)
        p.stdout.close()  # like head: the reader leaves
        err = p.stderr.read().decode()
        assert p.wait(60) == 141 and err == "", (argv, err)


# ------------------------------------------------------------------------------ E3 wildcards
def test_wildcards_in_ls_rm_cp(cli_env: list[str], client: objio.Client, prefix: str,
                               tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("a.npz", "b.npz", "c.txt", "sub/d.npz"):
        client.put_bytes(prefix + name, name.encode())
    code, out, _ = run(capsys, "ls", prefix + "*.npz", *cli_env)
    assert code == 0 and sorted(line.split()[-1] for line in out.splitlines()) == ["a.npz",
                                                                                 "b.npz"]
    code, _, _ = run(capsys, "cp", prefix + "*.npz", str(tmp_path) + "/", "-q", *cli_env)
    assert code == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "b.npz"]
    code, _, _ = run(capsys, "rm", prefix + "*.npz", *cli_env)
    assert code == 0 and sorted(client.list(prefix)) == sorted(
        objio.parse_uri(prefix + n).key for n in ("c.txt", "sub/d.npz"))


# ------------------------------------------------------------------------------ E4 stdin/stdout
def test_cp_dash_streams(s3_server: LocalS3Server, client: objio.Client, prefix: str) -> None:
    env = _subprocess_env(s3_server)
    data = os.urandom(12 << 20)  # above the part size: a multipart upload from a pipe
    up = subprocess.run([sys.executable, "-m", "objio.cli", "cp", "-", prefix + "in", "-q"],
                        input=data, env=env, capture_output=True, timeout=120)
    assert up.returncode == 0, up.stderr
    assert bytes(client.get(prefix + "in")) == data
    down = subprocess.run([sys.executable, "-m", "objio.cli", "cp", prefix + "in", "-", "-q"],
                          env=env, capture_output=True, timeout=120)
    assert down.returncode == 0 and down.stdout == data


# ------------------------------------------------------------------------------ E5 ls/rm/mv/sync/rb/presign
def test_ls_buckets_human_summarize_and_missing(cli_env: list[str], client: objio.Client,
                                                prefix: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "ls", "s3://", *cli_env)
    assert code == 0 and "objio-test" in out
    client.put_bytes(prefix + "f", b"x" * 3000)
    code, out, _ = run(capsys, "ls", prefix, "-H", "--summarize", *cli_env)
    assert code == 0 and "2.9 KiB" in out and "Total Size: 2.9 KiB" in out
    code, out, err = run(capsys, "ls", prefix + "nothing-here/", *cli_env)
    assert code == 1 and out == "" and err == ""


def test_rm_missing_dryrun_quiet(cli_env: list[str], client: objio.Client, prefix: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "rm", prefix + "never-was", *cli_env)
    assert code == 0 and "delete:" in out
    client.put_bytes(prefix + "x/1", b"1")
    code, out, _ = run(capsys, "rm", prefix + "x/", "-r", "--dryrun", *cli_env)
    assert code == 0 and "(dryrun) delete:" in out and client.exists(prefix + "x/1")
    code, out, _ = run(capsys, "rm", prefix + "x/", "-r", "-q", *cli_env)
    assert code == 0 and out == "" and not client.exists(prefix + "x/1")


def test_mv_and_sync(cli_env: list[str], client: objio.Client, prefix: str, tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    for name, body in (("a", b"1"), ("d/b", b"22")):
        (src / name).write_bytes(body)
    code, _, _ = run(capsys, "sync", str(src), prefix + "s/", "--json", *cli_env)
    assert code == 0
    assert sorted(client.list(prefix + "s/")) == [objio.parse_uri(prefix + "s/" + n).key
                                                  for n in ("a", "d/b")]
    code, out, _ = run(capsys, "sync", str(src), prefix + "s/", "--json", *cli_env)
    assert json.loads(out)["objects"] == 0 and json.loads(out)["up_to_date"] == 2
    (src / "a").write_bytes(b"changed")  # another size: copied again
    (src / "d" / "b").unlink()
    code, out, _ = run(capsys, "sync", str(src), prefix + "s/", "--delete", "--json", *cli_env)
    summary = json.loads(out)
    assert (summary["objects"], summary["deleted"]) == (1, 1)
    assert bytes(client.get(prefix + "s/a")) == b"changed" and not client.exists(prefix + "s/d/b")
    back = tmp_path / "back"
    code, _, _ = run(capsys, "sync", prefix + "s/", str(back), "-q", *cli_env)
    assert code == 0 and (back / "a").read_bytes() == b"changed"
    code, out, _ = run(capsys, "sync", prefix + "s/", str(back), "--json", *cli_env)
    assert json.loads(out)["objects"] == 0  # the local copy got the object's mtime
    code, _, _ = run(capsys, "mv", prefix + "s/", prefix + "m/", "-r", "-q", *cli_env)
    assert code == 0 and client.list(prefix + "s/") == [] and client.exists(prefix + "m/a")


def test_cp_skips_keys_that_leave_the_directory(s3_server: LocalS3Server, cli_env: list[str],
                                                client: objio.Client, prefix: str,
                                                tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """S3 accepts keys with '..' (SeaweedFS does not): a proxy adds two to the listing."""
    from faultproxy import FaultProxy, Request, Response, Rewrite

    client.put_bytes(prefix + "ok", b"1")
    base = objio.parse_uri(prefix).key

    def add_keys(req: Request, resp: Response) -> Response:
        extra = "".join(f"<Contents><Key>{base}{k}</Key><Size>1</Size></Contents>"
                        for k in ("..%2F..%2Fescape", "dir%2F"))
        resp.body = resp.body.replace(b"</ListBucketResult>", extra.encode() +
                                      b"</ListBucketResult>")
        # and counts them, as a server listing them would (KeyCount is checked)
        resp.body = re.sub(rb"<KeyCount>(\d+)</KeyCount>",
                           lambda m: b"<KeyCount>%d</KeyCount>" % (int(m.group(1)) + 2),
                           resp.body)
        return resp

    proxy = FaultProxy(s3_server.endpoint_url)
    try:
        proxy.add(lambda r: r.method == "GET" and r.query.get("list-type") == "2",
                  Rewrite(add_keys), times=None)
        dst = tmp_path / "dst"
        code, out, err = run(capsys, "cp", prefix, str(dst), "-r", "--json",
                             "--endpoint-url", proxy.endpoint_url)
    finally:
        proxy.stop()
    assert code == 0 and json.loads(out)["skipped"] == 2, err
    assert "warning: skipping" in err and "outside the destination" in err
    assert sorted(p.name for p in dst.iterdir()) == ["ok"]
    assert not (tmp_path / "escape").exists() and not (tmp_path.parent / "escape").exists()


def test_rb_and_presign(cli_env: list[str], client: objio.Client,
                        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(capsys, "mb", "s3://objio-rb-test", *cli_env)
    client.put_bytes("s3://objio-rb-test/k", b"presigned body")
    code, out, _ = run(capsys, "presign", "s3://objio-rb-test/k", "--expires-in", "60", *cli_env)
    assert code == 0
    with urllib.request.urlopen(out.strip(), timeout=10) as r:  # no credentials needed
        assert r.read() == b"presigned body"
    code, _, err = run(capsys, "rb", "s3://objio-rb-test", *cli_env)
    assert code == 1 and "BucketNotEmpty" in err
    code, out, _ = run(capsys, "rb", "s3://objio-rb-test", "--force", *cli_env)
    assert code == 0 and "remove_bucket: objio-rb-test" in out
    assert "objio-rb-test" not in [n for n, _ in client.list_buckets()]


def test_presign_matches_botocore(s3_server: LocalS3Server) -> None:
    from botocore.auth import S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from objio.s3.sigv4 import Credentials as OurCreds
    from objio.s3.sigv4 import SigV4Signer

    req = AWSRequest(method="GET", url="http://127.0.0.1:9000/b/k%20x")
    S3SigV4QueryAuth(Credentials("AKID", "SECRET"), "s3", "us-east-1", expires=600).add_auth(req)
    theirs = dict(p.split("=", 1) for p in req.url.split("?", 1)[1].split("&"))
    ours = SigV4Signer("us-east-1").presign(
        "GET", "127.0.0.1:9000", "/b/k%20x", [], OurCreds("AKID", "SECRET"), 600,
        theirs["X-Amz-Date"])
    mine = dict(p.split("=", 1) for p in ours.split("&"))
    assert mine["X-Amz-Signature"] == theirs["X-Amz-Signature"]


# ------------------------------------------------------------------------------ E6 server port
def test_server_port_and_stable_ports_with_a_data_dir(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with LocalS3Server(data_dir=tmp_path, port=port) as srv:
        assert srv.endpoint_url == f"http://127.0.0.1:{port}"
        c = objio.Client(srv.config)
        c.create_bucket("s3://keep")
        c.put_bytes("s3://keep/k", b"persisted")
        saved = json.loads((tmp_path / "objio-server-ports.json").read_text())
        keys = (srv.access_key_id, srv.secret_access_key)
    with LocalS3Server(data_dir=tmp_path, access_key_id=keys[0],
                       secret_access_key=keys[1]) as srv:  # no port: the saved ones
        assert json.loads((tmp_path / "objio-server-ports.json").read_text()) == saved
        assert srv.endpoint_url == f"http://127.0.0.1:{port}"
        assert bytes(objio.Client(srv.config).get("s3://keep/k")) == b"persisted"


# ------------------------------------------------------------------------------ E7 help text
def _walk(parser: argparse.ArgumentParser, path: str) -> list[tuple[str, argparse.Action]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += _walk(sub, f"{path} {name}")
            for choice in action._choices_actions:
                out.append((f"{path} {choice.dest}", choice))
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            out.append((path, action))
    return out


def test_every_command_and_argument_has_help() -> None:
    missing = [f"{path}: {a.dest}" for path, a in _walk(build_parser(), "objio")
               if not a.help or a.help == argparse.SUPPRESS]
    assert missing == []
    text = build_parser()._subparsers._group_actions[0].choices["ls"].format_help()  # type: ignore[union-attr]
    for var in ("OBJIO_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        assert var in text


# ------------------------------------------------------------------------------ E9-E11
def test_bench_compare_defaults_and_uri_after_compare() -> None:
    from objio.cli import bench as bench_cli

    p = argparse.ArgumentParser()
    bench_cli.configure_objects_parser(p)
    bench_cli.add_train_arguments(p)
    a = p.parse_args(["s3://b/p", "--throughput", "--compare", "s3torchconnector"])
    assert (a.uri, a.compare) == ("s3://b/p", "s3torchconnector")
    b = p.parse_args(["--compare", "s3://b/p"])
    bench_cli._compare_value(b)
    assert (b.uri, b.compare) == ("s3://b/p", True)


def test_throughput_compares_with_s3torchconnector_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from objio.bench import train
    from objio.cli import bench as bench_cli

    seen: dict[str, object] = {}

    def fake(client: object, prefix: str, **kw: object) -> dict[str, object]:
        seen.update(kw)
        raise KeyboardInterrupt  # stop before any work

    monkeypatch.setattr(train, "run_throughput", fake)
    monkeypatch.setattr(bench_cli, "client_from_args", lambda args: None)
    assert main(["bench", "s3://b/p", "--throughput"]) == 130
    assert seen["compare"] == ["s3torchconnector"]


def test_gen_asks_before_writing_a_lot(cli_env: list[str], prefix: str,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    code, _, err = run(capsys, "gen", prefix, "--workload", "resnet50", "--no-progress", *cli_env)
    assert code == 1 and "136.8 GiB" in err and "nothing written" in err


def test_record_size_override_drops_the_preset_stdev(capsys: pytest.CaptureFixture[str]) -> None:
    from objio.cli import gen as gen_cli

    parser = argparse.ArgumentParser()
    gen_cli.configure_parser(parser)
    spec = gen_cli.spec_from_args(parser.parse_args(
        ["s3://b/p", "--workload", "unet3d", "--record-size", "128KiB"]))
    assert spec.record_size == 128 * 1024 and spec.record_size_stdev == 0
    assert "stdev" in capsys.readouterr().err
    spec = gen_cli.spec_from_args(parser.parse_args(
        ["s3://b/p", "--workload", "unet3d", "--record-size", "128KiB",
         "--record-size-stdev", "1KiB"]))
    assert spec.record_size_stdev == 1024
