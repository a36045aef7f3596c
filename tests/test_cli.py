"""The objio command: server, usage errors and exit codes."""

from __future__ import annotations

import pytest

import objio
from conftest import objio_server_process
from objio.cli import main


def test_server_command_prints_endpoint_and_keys_and_stops_cleanly() -> None:
    with objio_server_process() as info:
        c = objio.Client(endpoint_url=info["endpoint_url"], region=info["region"],
                         access_key_id=info["access_key_id"],
                         secret_access_key=info["secret_access_key"])
        c.create_bucket("s3://cli-server")
        c.put_bytes("s3://cli-server/k", b"v")
        assert bytes(c.get("s3://cli-server/k")) == b"v"


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
