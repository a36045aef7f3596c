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
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from ._local_server import LocalProcessServer
from .config import AZURITE_ACCOUNT, AZURITE_KEY

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


class LocalAzureServer(LocalProcessServer):
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

    The process lifecycle (start, readiness, stop, watchdog) is
    :class:`objio._local_server.LocalProcessServer`'s.
    """

    name = "Azurite"
    marker = "azurite"

    def __init__(self, *, port: int | None = None, startup_timeout_s: float = 60.0,
                 azurite_path: str | None = None) -> None:
        super().__init__(port=port, startup_timeout_s=startup_timeout_s)
        self.azurite_path = azurite_path
        self.account = AZURITE_ACCOUNT
        self.account_key = AZURITE_KEY

    def _executable(self) -> str:
        return find_azurite(self.azurite_path)

    def _command(self, exe: str, port: int, run_dir: Path) -> list[str]:
        return [exe, "--blobHost", "127.0.0.1", "--blobPort", str(port),
                "--inMemoryPersistence", "--skipApiVersionCheck",
                "--loose", "--disableTelemetry", "--silent",
                # longer than objio's own idle limit (15 s): the client, not the server, ends
                # an idle kept-alive connection, so no request is sent on a closing one
                "--blobKeepAliveTimeout", "60"]

    def _environment(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith("AZURITE_")}

    def _probe_url(self) -> str:
        # an unsigned request is refused with 403 once it is up: any HTTP answer is ready
        return f"http://127.0.0.1:{self._port}/{self.account}?comp=list"

    @property
    def endpoint_url(self) -> str:
        """The blob service URL of the account: ``http://127.0.0.1:<port>/devstoreaccount1``.

        Raises:
            RuntimeError: the server is not running.
        """
        if self._port is None or not self.running:
            raise RuntimeError("LocalAzureServer is not running; call start() first")
        return f"http://127.0.0.1:{self._port}/{self.account}"

    @property
    def connection_string(self) -> str:
        """The Azure Storage connection string of this server (account, key, endpoint).

        Raises:
            RuntimeError: the server is not running (as :attr:`endpoint_url`).
        """
        return (f"DefaultEndpointsProtocol=http;AccountName={self.account};"
                f"AccountKey={self.account_key};BlobEndpoint={self.endpoint_url};")

    @property
    def config(self) -> ClientConfig:
        """An :class:`objio.config.ClientConfig` for ``az://`` URIs on this server (account,
        key and endpoint).

        Raises:
            RuntimeError: the server is not running.
        """
        from .config import ClientConfig

        return ClientConfig(azure_account=self.account, azure_account_key=self.account_key,
                            azure_endpoint_url=self.endpoint_url)

    def environ(self) -> dict[str, str]:
        """The environment variables that point another process (the CLI, a spawned
        DataLoader worker) at this server: ``AZURE_STORAGE_CONNECTION_STRING``.

        Raises:
            RuntimeError: the server is not running.
        """
        return {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string}

    def __repr__(self) -> str:
        endpoint = self.endpoint_url if self.running else None
        return f"LocalAzureServer(endpoint_url={endpoint!r}, account={self.account!r})"
