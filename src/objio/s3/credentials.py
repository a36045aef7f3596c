"""Credential resolution: explicit > AWS_* environment > botocore's chain > anonymous.

botocore is used only for its credential chain (shared config/credentials profiles, SSO,
web identity, container and instance metadata). Anonymous access happens only when the
configuration says ``unsigned=True``.
"""

from __future__ import annotations

import threading
from typing import Any

from ..config import ClientConfig
from ..errors import AccessDeniedError
from .sigv4 import Credentials


class CredentialProvider:
    """Gives the credentials to sign a request with; refreshes temporary ones via botocore."""

    def __init__(self, config: ClientConfig) -> None:
        self._config = config
        self._static: Credentials | None = None
        self._botocore: Any = None
        self._lock = threading.Lock()
        if config.access_key_id or config.secret_access_key:
            if not (config.access_key_id and config.secret_access_key):
                raise ValueError(
                    "access_key_id and secret_access_key must be given together "
                    "(only one of them is set)"
                )
            self._static = Credentials(
                config.access_key_id, config.secret_access_key, config.session_token or None
            )

    def get(self) -> Credentials | None:
        """Current credentials, or None for unsigned (anonymous) requests.

        Raises:
            PermissionError (AccessDeniedError): no credentials anywhere and not unsigned.
            ValueError: the configured profile does not exist.
        """
        if self._config.unsigned:
            return None
        if self._static is not None:
            return self._static
        with self._lock:
            if self._botocore is None:
                self._botocore = self._load_botocore()
        frozen = self._botocore.get_frozen_credentials()
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token or None)

    def _load_botocore(self) -> Any:
        import botocore.exceptions
        import botocore.session

        profile = self._config.profile
        try:
            session = botocore.session.Session(profile=profile)
            creds = session.get_credentials()
        except botocore.exceptions.ProfileNotFound:
            raise ValueError(f"profile {profile!r} not found in the AWS config files "
                             "(~/.aws/config, ~/.aws/credentials, or AWS_CONFIG_FILE / "
                             "AWS_SHARED_CREDENTIALS_FILE)") from None
        if creds is None:
            raise AccessDeniedError(
                "no AWS credentials found (looked at explicit config, AWS_ACCESS_KEY_ID/"
                "AWS_SECRET_ACCESS_KEY, profiles, SSO, web identity and instance metadata); "
                "configure credentials or pass unsigned=True for anonymous access",
                operation="ResolveCredentials",
            )
        return creds
