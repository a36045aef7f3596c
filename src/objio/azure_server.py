"""A real, local Azure Blob Storage server (Azurite) for tests and benchmarks.

:class:`LocalAzureServer` runs Azurite's blob service (``azurite-blob``, Microsoft's emulator,
the npm package ``azurite``) as a child process bound to ``127.0.0.1`` on a free port, with the
emulator's well-known development account (``devstoreaccount1`` and its documented key) and
SharedKey authentication checked by the emulator. Data is kept in memory
(``--inMemoryPersistence``); ``--skipApiVersionCheck`` lets any REST API version in.

Where ``azurite-blob`` comes from, first found wins: the ``azurite_path`` argument, the
``OBJIO_AZURITE`` environment variable, ``azurite-blob`` on ``PATH``, then the project's cache
folder ``.cache/azurite`` (``make install-azurite``, which ``make install-dev`` and ``make test``
run: ``npm install --prefix .cache/azurite azurite``). It needs Node.js (``node``).

Example::

    from objio.azure_server import LocalAzureServer

    with LocalAzureServer() as server:
        cfg = server.config          # objio.config.ClientConfig for this server
        env = server.environ()       # AZURE_STORAGE_CONNECTION_STRING for another process

The server runs in its own process group; :meth:`LocalAzureServer.stop` sends SIGTERM, waits
:attr:`LocalAzureServer.stop_grace_s` seconds, then SIGKILLs the group and reaps it, as
:class:`objio.server.LocalS3Server` does (and the same watchdog stops it if the owner dies).
All durations are in seconds.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from .config import AZURITE_ACCOUNT, AZURITE_KEY
from .server import _free_ports, _Resources, _start_watchdog, _tail

if TYPE_CHECKING:
    from objio.config import ClientConfig

__all__ = ["LocalAzureServer", "find_azurite"]

_INSTALL_HINT = ("make install-azurite (npm install --prefix .cache/azurite azurite), or set "
                 "OBJIO_AZURITE to the azurite-blob executable")
_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "azurite" / "node_modules" / ".bin"


def find_azurite(path: str | None = None) -> str:
    """The ``azurite-blob`` executable (see the module docstring for the search order).

    Raises:
        FileNotFoundError: none found, or Node.js (``node``) is not on PATH.
    """
    candidates = [path, os.environ.get("OBJIO_AZURITE"), shutil.which("azurite-blob"),
                  str(_CACHE / "azurite-blob")]
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            if shutil.which("node") is None:
                raise FileNotFoundError(f"Azurite ({c}) needs Node.js: 'node' is not on PATH")
            return c
        if c and c == path:
            raise FileNotFoundError(f"Azurite not found or not executable: {path!r}; "
                                    f"{_INSTALL_HINT}")
    raise FileNotFoundError(f"Azurite ('azurite-blob') not found; {_INSTALL_HINT}")


class LocalAzureServer:
    """A local Azurite blob service with its development account, for tests and benchmarks.

    Args:
        port: the blob service's port (default: a free one).
        startup_timeout_s: seconds :meth:`start` waits for the server to answer.
        azurite_path: the ``azurite-blob`` executable (default: see :func:`find_azurite`).

    Attributes:
        account: the storage account (``devstoreaccount1``); ``account_key``: its key, the
            emulator's documented one (not a secret; never shown by ``repr()`` all the same).

    Raises:
        ValueError: ``port`` not a TCP port number, ``startup_timeout_s`` not > 0.
        FileNotFoundError: on :meth:`start`, no Azurite or no Node.js.
        RuntimeError: on :meth:`start`, Azurite exited early or did not answer within
            ``startup_timeout_s`` seconds (the message holds the command line and the end of
            its log).
    """

    #: Seconds :meth:`stop` waits after SIGTERM before it sends SIGKILL.
    stop_grace_s: float = 2.0

    def __init__(self, *, port: int | None = None, startup_timeout_s: float = 60.0,
                 azurite_path: str | None = None) -> None:
        if port is not None and (isinstance(port, bool) or not isinstance(port, int)
                                 or not 1 <= port <= 65535):
            raise ValueError(f"port must be a TCP port number 1-65535, got {port!r}")
        if not startup_timeout_s > 0:
            raise ValueError(f"startup_timeout_s must be > 0, got {startup_timeout_s!r}")
        self.port = port
        self.startup_timeout_s = float(startup_timeout_s)
        self.azurite_path = azurite_path
        self.account = AZURITE_ACCOUNT
        self.account_key = AZURITE_KEY
        self._lock = threading.RLock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._resources: _Resources | None = None
        self._finalizer: weakref.finalize | None = None  # type: ignore[type-arg]
        self._port: int | None = None
        self._log_path: Path | None = None
        self._cmd: list[str] = []

    @property
    def running(self) -> bool:
        """True while the Azurite process is alive (after a successful start)."""
        proc = self._proc
        return proc is not None and proc.poll() is None

    @property
    def endpoint_url(self) -> str:
        """The blob service URL of the account: ``http://127.0.0.1:<port>/devstoreaccount1``.

        Raises: RuntimeError (not running)."""
        if self._port is None or not self.running:
            raise RuntimeError("LocalAzureServer is not running; call start() first")
        return f"http://127.0.0.1:{self._port}/{self.account}"

    @property
    def connection_string(self) -> str:
        """The Azure Storage connection string of this server (account, key, endpoint)."""
        return (f"DefaultEndpointsProtocol=http;AccountName={self.account};"
                f"AccountKey={self.account_key};BlobEndpoint={self.endpoint_url};")

    @property
    def config(self) -> ClientConfig:
        """An :class:`objio.config.ClientConfig` for ``az://`` URIs on this server (account,
        key and endpoint). Raises RuntimeError when not running."""
        from .config import ClientConfig

        return ClientConfig(azure_account=self.account, azure_account_key=self.account_key,
                            azure_endpoint_url=self.endpoint_url)

    def environ(self) -> dict[str, str]:
        """The environment variables that point another process (the CLI, a spawned
        DataLoader worker) at this server: ``AZURE_STORAGE_CONNECTION_STRING``. Raises
        RuntimeError when not running."""
        return {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string}

    @property
    def log_path(self) -> Path:
        """Azurite's combined stdout/stderr (removed by :meth:`stop`). Raises RuntimeError
        before the first start."""
        if self._log_path is None:
            raise RuntimeError("LocalAzureServer has not been started; there is no log yet")
        return self._log_path

    def __repr__(self) -> str:
        endpoint = self.endpoint_url if self.running else None
        return f"LocalAzureServer(endpoint_url={endpoint!r}, account={self.account!r})"

    def __enter__(self) -> LocalAzureServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalAzureServer:
        """Start Azurite and wait until its blob service answers. Returns ``self``.

        Raises:
            RuntimeError: already running, exited early, or not ready in time.
            FileNotFoundError: Azurite or Node.js not found.
        """
        with self._lock:
            if self.running:
                raise RuntimeError(f"{self!r} is already running")
            self.stop()
            exe = find_azurite(self.azurite_path)
            run_dir = Path(tempfile.mkdtemp(prefix="objio-azurite-"))
            self._log_path = run_dir / "azurite.log"
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
        cmd = [exe, "--blobHost", "127.0.0.1", "--blobPort", str(port),
               "--inMemoryPersistence", "--skipApiVersionCheck",
               "--loose", "--disableTelemetry", "--silent",
               # longer than objio's own idle limit (15 s): the client, not the server, ends
               # an idle kept-alive connection, so no request is sent on a closing one
               "--blobKeepAliveTimeout", "60"]
        self._cmd = cmd
        self._port = port
        env = {k: v for k, v in os.environ.items() if not k.startswith("AZURITE_")}
        assert self._log_path is not None
        with self._log_path.open("wb") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, cwd=run_dir, env=env,
                                    start_new_session=True)
        self._proc = resources.proc = proc
        resources.watchdog = _start_watchdog(proc.pid, "azurite", [run_dir])
        error = self._wait_ready(proc)
        if error is not None:
            tail = _tail(self._log_path)
            raise RuntimeError(f"{error}\ncommand: {shlex.join(cmd)}\n--- end of "
                               f"{self._log_path} ---\n{tail}")

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> str | None:
        """Poll until the blob service answers HTTP (any status: an unsigned request is
        refused with 403 once it is up); an error message, or None when ready."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        url = f"http://127.0.0.1:{self._port}/{self.account}?comp=list"
        deadline = time.monotonic() + self.startup_timeout_s
        last = "no answer yet"
        while True:
            code = proc.poll()
            if code is not None:
                return f"Azurite exited with code {code} during startup"
            try:
                with opener.open(url, timeout=2.0):
                    return None
            except urllib.error.HTTPError:
                return None
            except OSError as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                return (f"Azurite was not ready within {self.startup_timeout_s:g} s "
                        f"(last probe of {url}: {last})")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop Azurite (SIGTERM, :attr:`stop_grace_s` seconds, SIGKILL of its process
        group, reaped) and remove its temporary directory. Safe to call more than once."""
        with self._lock:
            finalizer, self._finalizer = self._finalizer, None
            self._proc = None
            self._resources = None
            if finalizer is not None:
                finalizer()
