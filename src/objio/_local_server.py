"""The process lifecycle the one-process local servers share (:class:`objio.gcs_server.
LocalGCSServer`, :class:`objio.azure_server.LocalAzureServer`): a child
process on a free loopback port, in its own process group, with its log and temporary
directory; ready when an HTTP probe answers; stopped with SIGTERM, :attr:`stop_grace_s`
seconds, then SIGKILL of the group, and reaped; and a watchdog that stops it if the owner dies
without stopping it (:mod:`objio.server`). All durations are in seconds.

:class:`objio.server.LocalS3Server` keeps its own lifecycle (several ports and processes, a
data directory kept across restarts, extra gateways); it shares the pieces underneath
(``_Resources``, the watchdog, ``_free_ports``) with this class.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from typing import TypeVar

from .server import _free_ports, _Resources, _start_watchdog, _tail

_S = TypeVar("_S", bound="LocalProcessServer")


class LocalProcessServer:
    """Base of a local emulator run as one child process. Subclasses set :attr:`name` and
    :attr:`marker` and implement :meth:`_executable`, :meth:`_command` and
    :meth:`_probe_url` (and may override :meth:`_environment`).

    Args:
        port: the server's port on 127.0.0.1 (default: a free one).
        startup_timeout_s: seconds :meth:`start` waits for the server to answer.

    Raises (on :meth:`start`): FileNotFoundError (no executable), RuntimeError (it exited
    early or did not answer within ``startup_timeout_s``: the message holds the command line
    and the end of its log).
    """

    #: Seconds :meth:`stop` waits after SIGTERM before it sends SIGKILL.
    stop_grace_s: float = 2.0
    #: What the server is, in messages (``fake-gcs-server``).
    name = "server"
    #: A word of the run directory's name and of the watchdog's command line.
    marker = "server"

    def __init__(self, *, port: int | None = None, startup_timeout_s: float = 60.0) -> None:
        if port is not None and (isinstance(port, bool) or not isinstance(port, int)
                                 or not 1 <= port <= 65535):
            raise ValueError(f"port must be a TCP port number 1-65535, got {port!r}")
        if not startup_timeout_s > 0:
            raise ValueError(f"startup_timeout_s must be > 0, got {startup_timeout_s!r}")
        self.port = port
        self.startup_timeout_s = float(startup_timeout_s)
        self._lock = threading.RLock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._resources: _Resources | None = None
        self._finalizer: weakref.finalize | None = None  # type: ignore[type-arg]
        self._port: int | None = None
        self._log_path: Path | None = None
        self._cmd: list[str] = []

    # -------------------------------------------------------------------- for subclasses
    def _executable(self) -> str:
        raise NotImplementedError

    def _command(self, exe: str, port: int, run_dir: Path) -> list[str]:
        raise NotImplementedError

    def _probe_url(self) -> str:
        raise NotImplementedError

    def _environment(self) -> dict[str, str]:
        return dict(os.environ)

    # -------------------------------------------------------------------- lifecycle
    @property
    def running(self) -> bool:
        """True while the server process is alive (after a successful start)."""
        proc = self._proc
        return proc is not None and proc.poll() is None

    @property
    def log_path(self) -> Path:
        """The server's combined stdout/stderr (removed by :meth:`stop`). Raises RuntimeError
        before the first start."""
        if self._log_path is None:
            raise RuntimeError(f"{type(self).__name__} has not been started; there is no log "
                               "yet")
        return self._log_path

    def __enter__(self: _S) -> _S:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self: _S) -> _S:
        """Start the server and wait until it answers. Returns ``self``.

        Raises:
            RuntimeError: already running, exited early, or not ready in time.
            FileNotFoundError: the executable was not found.
        """
        with self._lock:
            if self.running:
                raise RuntimeError(f"{self!r} is already running")
            self.stop()
            exe = self._executable()
            run_dir = Path(tempfile.mkdtemp(prefix=f"objio-{self.marker}-"))
            self._log_path = run_dir / f"{self.marker}.log"
            self._resources = _Resources(os.getpid(), self.stop_grace_s, run_dir)
            self._finalizer = weakref.finalize(self, self._resources.cleanup)
            try:
                self._start_in(exe, self._resources)
            except BaseException:
                self.stop()
                raise
            return self

    def _start_in(self, exe: str, resources: _Resources) -> None:
        port = self.port if self.port is not None else _free_ports(1)[0]
        run_dir = resources.run_dir
        cmd = self._command(exe, port, run_dir)
        self._cmd = cmd
        self._port = port
        assert self._log_path is not None
        with self._log_path.open("wb") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, cwd=run_dir,
                                    env=self._environment(), start_new_session=True)
        self._proc = resources.proc = proc
        resources.watchdog = _start_watchdog(proc.pid, self.marker, [run_dir])
        error = self._wait_ready(proc)
        if error is not None:
            tail = _tail(self._log_path)
            raise RuntimeError(f"{error}\ncommand: {shlex.join(cmd)}\n--- end of "
                               f"{self._log_path} ---\n{tail}")

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> str | None:
        """Poll until the server answers HTTP (any status); an error message, or None when
        ready."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        url = self._probe_url()
        deadline = time.monotonic() + self.startup_timeout_s
        last = "no answer yet"
        while True:
            code = proc.poll()
            if code is not None:
                return f"{self.name} exited with code {code} during startup"
            try:
                with opener.open(url, timeout=2.0):
                    return None
            except urllib.error.HTTPError:
                return None
            except OSError as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                return (f"{self.name} was not ready within {self.startup_timeout_s:g} s "
                        f"(last probe of {url}: {last})")
            time.sleep(0.1)

    def cpu_seconds(self) -> float | None:
        """CPU seconds (user + system) used so far by the server's processes: every live
        process of its process group (the server runs in a session of its own), from
        ``/proc/<pid>/stat`` (Linux); None where ``/proc`` is not there. Benchmarks take the
        difference over a run to report the emulator's CPU per MiB beside the client's (both
        share this machine's cores), as :meth:`objio.server.LocalS3Server.cpu_seconds` does.

        Raises:
            RuntimeError: the server is not running.
        """
        proc = self._proc
        if proc is None or not self.running:
            raise RuntimeError(f"{type(self).__name__} is not running; call start() first")
        return _group_cpu_seconds(proc.pid)

    def stop(self) -> None:
        """Stop the server (SIGTERM, :attr:`stop_grace_s` seconds, SIGKILL of its process
        group, reaped) and remove its temporary directory. Safe to call more than once."""
        with self._lock:
            finalizer, self._finalizer = self._finalizer, None
            self._proc = None
            self._resources = None
            if finalizer is not None:
                finalizer()


def _group_cpu_seconds(pgid: int, *more: int) -> float | None:
    """User + system CPU seconds of the live processes of process group ``pgid`` (and of the
    groups ``more``), from ``/proc`` (None where there is no ``/proc``)."""
    if not os.path.isdir("/proc"):
        return None
    groups = {str(g) for g in (pgid, *more)}
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()  # fields after the command
        except (OSError, IndexError):
            continue
        if len(fields) > 12 and fields[2] in groups:  # fields[2]: the process group
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total
