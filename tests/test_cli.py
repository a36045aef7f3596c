"""The objio command: server, usage errors and exit codes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

import objio
from objio.cli import main


def test_server_command_prints_endpoint_and_keys_and_stops_cleanly() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "objio.cli", "server", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        info = json.loads(line)
        c = objio.Client(endpoint_url=info["endpoint_url"], region=info["region"],
                         access_key_id=info["access_key_id"],
                         secret_access_key=info["secret_access_key"])
        c.create_bucket("s3://cli-server")
        c.put_bytes("s3://cli-server/k", b"v")
        assert bytes(c.get("s3://cli-server/k")) == b"v"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["no-such-command"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 2


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert objio.__version__ in capsys.readouterr().out
