"""Ctrl-C during a multipart `objio cp`: nothing is left behind (no multipart upload, no partial
object), one line on stderr, exit 130. The CLI runs in a subprocess against LocalS3Server
through the fault proxy, which holds one request so that the SIGINT lands at a known point."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import objio
from faultproxy import Hold, Request
from objio.server import LocalS3Server

SRC = str(Path(objio.__file__).resolve().parents[1])
MiB = 1 << 20


def _env(server: LocalS3Server, endpoint: str) -> dict[str, str]:
    env = dict(os.environ, AWS_ACCESS_KEY_ID=server.access_key_id,
               AWS_SECRET_ACCESS_KEY=server.secret_access_key, AWS_REGION=server.region,
               AWS_ENDPOINT_URL=endpoint, OBJIO_PART_SIZE="5MiB")
    env["PYTHONPATH"] = os.pathsep.join([SRC, env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """A 40 MiB file (copied through memory: a multipart PUT of 8 parts) and a 70 MiB one
    (streamed through objio.open: 14 parts uploading while the file is read)."""
    d = tmp_path_factory.mktemp("interrupt")
    out = {}
    for size in (40 * MiB, 70 * MiB):
        p = d / f"big-{size >> 20}.bin"
        p.write_bytes(os.urandom(size))
        out[size] = p
    return out


def _is_create(r: Request) -> bool:
    return r.method == "POST" and "uploads" in r.query


def _is_part3(r: Request) -> bool:
    return r.method == "PUT" and r.query.get("partNumber") == "3"


def _is_complete(r: Request) -> bool:
    return r.method == "POST" and "uploadId" in r.query


POINTS: dict[str, Callable[[Request], bool]] = {
    "before CreateMultipartUpload returns": _is_create,
    "during the parts": _is_part3,
    "during CompleteMultipartUpload": _is_complete,
}


@pytest.mark.parametrize("size", [40 * MiB, 70 * MiB], ids=["in-memory", "streamed"])
@pytest.mark.parametrize("point", list(POINTS))
def test_ctrl_c_leaves_nothing_behind(s3_server: LocalS3Server, client: objio.Client,
                                      proxy: object, prefix: str, sources: dict[int, Path],
                                      size: int, point: str) -> None:
    proxy.clear()  # type: ignore[attr-defined]
    # held before the server sees it: a request still on the wire when the interrupt comes
    hold = Hold()
    proxy.add(POINTS[point], hold)  # type: ignore[attr-defined]
    dst = prefix + "big.bin"
    p = subprocess.Popen([sys.executable, "-m", "objio.cli", "cp", str(sources[size]), dst],
                         env=_env(s3_server, proxy.endpoint_url),  # type: ignore[attr-defined]
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        if not hold.reached.wait(120):
            p.kill()
            out, err = p.communicate()
            pytest.fail(f"the upload never reached {point}: {err.decode()}")
        p.send_signal(signal.SIGINT)
        time.sleep(1.0)  # let the interrupt be handled while the request is held
        hold.release()
        out, err = p.communicate(timeout=120)
    finally:
        hold.release()
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert hold.answered.wait(60)  # the held request has reached the server too
    assert err.decode() == "objio: interrupted\n"
    assert p.returncode == 130
    assert client.list_multipart_uploads(prefix) == []
    # no partial object: nothing, or (the interrupt came too late to stop it) the whole file
    if client.exists(dst):
        assert bytes(client.get(dst)) == sources[size].read_bytes()


def test_interrupt_while_the_engine_loop_starts_leaves_no_coroutine_behind(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while the first objio call starts the engine's loop: the call's coroutine is
    closed, not left to be reported "never awaited" at exit."""
    import inspect

    from objio import engine

    async def work() -> int:
        return 1

    def interrupted() -> None:
        raise KeyboardInterrupt

    coro = work()
    monkeypatch.setattr(engine._engine, "get_loop", interrupted)
    with pytest.raises(KeyboardInterrupt):
        engine.run(coro)
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
