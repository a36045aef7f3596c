"""Google Cloud Storage backend (``gs://``): the JSON API over objio's HTTP client, OAuth2
tokens from google-auth, composite uploads (see :mod:`objio.gcs.backend`)."""

from .backend import GCSBackend

__all__ = ["GCSBackend"]
