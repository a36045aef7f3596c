"""Google Cloud Storage credentials through google-auth (the optional extra ``objio[gcs]``).

Which credentials a :class:`objio.gcs.GCSBackend` uses (:func:`credentials_for`):

* ``gcs_credentials="anonymous"``: none (an emulator such as fake-gcs-server, public buckets);
* ``gcs_credentials=<path>``: that JSON file (a service-account key, or any other credentials
  file google-auth reads: ``google.auth.load_credentials_from_file``);
* ``gcs_credentials="default"``: google-auth's application default credentials
  (``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's ADC file, the GCE/GKE metadata server);
* not set: anonymous when an emulator endpoint is configured (``STORAGE_EMULATOR_HOST`` /
  ``gcs_endpoint_url``), as Google's client libraries do, else the application default
  credentials.

Tokens are fetched when first needed and again five minutes before they expire, off the
event loop (google-auth's refresh is blocking): :class:`Token`. The HTTP requests of a refresh
go through :class:`_UrllibRequest`, google-auth's transport interface on the standard library
(no ``requests`` needed).
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from datetime import timezone
from typing import Any, Mapping

#: The OAuth scope objio asks for: read and write objects, create buckets.
SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"

INSTALL_HINT = ("gs:// URIs need google-auth for credentials: pip install 'objio[gcs]' (or, "
                "for an emulator, set STORAGE_EMULATOR_HOST=host:port; for public buckets, "
                "OBJIO_GCS_CREDENTIALS=anonymous)")


class _Response:
    """google.auth.transport.Response over urllib's answer."""

    def __init__(self, status: int, headers: Mapping[str, str], data: bytes) -> None:
        self.status = status
        self.headers = dict(headers)
        self.data = data


class _UrllibRequest:
    """google.auth.transport.Request on urllib (token endpoints and the metadata server);
    proxies from the environment as urllib takes them."""

    def __call__(self, url: str, method: str = "GET", body: bytes | None = None,
                 headers: Mapping[str, str] | None = None, timeout: float | None = None,
                 **kwargs: Any) -> _Response:
        from google.auth import exceptions

        req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(req, timeout=timeout or 30) as r:
                return _Response(r.status, dict(r.headers.items()), r.read())
        except urllib.error.HTTPError as e:
            return _Response(e.code, dict(e.headers.items()), e.read())
        except OSError as e:
            raise exceptions.TransportError(str(e)) from e


class Token:
    """OAuth2 access tokens of google-auth credentials, as an ``Authorization`` header.

    Args:
        credentials: a ``google.auth.credentials.Credentials`` (scoped already).
        kind: what they are, for ``repr()`` (``service account file``, ``application
            default``); never the token or the key.
    """

    def __init__(self, credentials: Any, kind: str) -> None:
        self._credentials = credentials
        self._project: str | None = None
        self.kind = kind
        self._lock = threading.Lock()
        self._request = _UrllibRequest()

    @property
    def credentials(self) -> Any:
        """The google-auth credentials (found on first use when given as a loader: the
        application default credentials may ask the metadata server, which takes seconds
        where there is none). Raises PermissionError when none are found."""
        if callable(self._credentials):
            with self._lock:
                if callable(self._credentials):
                    self._credentials, self._project = self._credentials()
        return self._credentials

    @property
    def project(self) -> str | None:
        """The project the credentials name (a service account's; application default
        credentials: theirs or gcloud's), if any (finds the credentials: blocking)."""
        creds = self.credentials
        return self._project or getattr(creds, "project_id", None) or None

    def __repr__(self) -> str:
        return f"Token({self.kind})"

    @property
    def request(self) -> Any:
        """The google-auth transport (``google.auth.transport.Request``) refreshes go
        through; also IAM signBlob's (:mod:`objio.gcs.sign`)."""
        return self._request

    @property
    def fresh(self) -> bool:
        """Whether the cached token can be used without fetching a new one."""
        if callable(self._credentials):
            return False
        c = self._credentials
        if not getattr(c, "token", None):
            return False
        expiry = getattr(c, "expiry", None)  # naive UTC datetime, or None: never expires
        if expiry is None:
            return True
        return expiry.replace(tzinfo=timezone.utc).timestamp() - time.time() > 300

    def header(self) -> str:
        """``Bearer <token>`` (blocking when a new token is fetched: call from a thread).
        Raises PermissionError when google-auth cannot get a token (the message says why,
        never the secret)."""
        creds = self.credentials
        with self._lock:
            if not self.fresh:
                from google.auth import exceptions

                try:
                    creds.refresh(self._request)
                except exceptions.GoogleAuthError as e:
                    raise PermissionError(f"Google Cloud credentials ({self.kind}) could not "
                                          f"get an access token: {e}") from None
            return f"Bearer {creds.token}"


def credentials_for(credentials: str | None, emulator: bool) -> Token | None:
    """The token source of a ``gcs_credentials`` setting (see the module docstring), or None
    for anonymous requests.

    Raises:
        ImportError: google-auth is not installed and credentials are needed (the message
            says what to install).
        FileNotFoundError: ``credentials`` names a file that does not exist.
        PermissionError: no application default credentials found, or a file google-auth
            cannot read as credentials.
    """
    if credentials == "anonymous" or (credentials is None and emulator):
        return None
    try:
        import google.auth
        from google.auth import exceptions
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    if credentials not in (None, "default"):
        import os

        if not os.path.isfile(credentials):
            raise FileNotFoundError(f"gcs_credentials: no such credentials file: "
                                    f"{credentials!r} (expected a service-account JSON file, "
                                    "'default' or 'anonymous')")
        return Token(_from_file(credentials), f"credentials file {credentials}")

    def find() -> Any:  # (on first use, in a worker thread: see Token.credentials)
        try:
            creds, project = google.auth.default(scopes=[SCOPE])
        except exceptions.GoogleAuthError as e:
            raise PermissionError(f"no Google Cloud credentials for gs:// URIs: {e} (set "
                                  "GOOGLE_APPLICATION_CREDENTIALS or OBJIO_GCS_CREDENTIALS to "
                                  "a service-account JSON file, or "
                                  "OBJIO_GCS_CREDENTIALS=anonymous)") from None
        return creds, project

    return Token(find, "application default credentials")


def _from_file(path: str) -> Any:
    """Credentials from a service-account key file or an authorized-user file (``gcloud auth
    application-default login``), by its ``type``; other kinds (external accounts,
    impersonation) through application default credentials only, where google-auth checks
    them.

    Raises: PermissionError (not such a file, or unreadable as one)."""
    import json

    try:
        with open(path, encoding="utf-8") as f:
            kind = json.load(f).get("type")
    except (OSError, ValueError, AttributeError) as e:
        raise PermissionError(f"gcs_credentials: {path!r} is not a JSON credentials file: "
                              f"{e}") from None
    try:
        if kind == "service_account":
            from google.oauth2 import service_account

            return service_account.Credentials.from_service_account_file(path, scopes=[SCOPE])
        if kind == "authorized_user":
            from google.oauth2 import credentials as user

            return user.Credentials.from_authorized_user_file(path, scopes=[SCOPE])
    except (ValueError, KeyError) as e:
        raise PermissionError(f"gcs_credentials: {path!r} is not a usable {kind} file: "
                              f"{e}") from None
    raise PermissionError(f"gcs_credentials: {path!r} holds credentials of type {kind!r}; a "
                          "file named here must be 'service_account' or 'authorized_user' "
                          "(for other kinds set GOOGLE_APPLICATION_CREDENTIALS to it and "
                          "gcs_credentials='default')")
