"""S3 backend: SigV4 signing, requests, XML parsing, multipart (see :mod:`objio.s3.backend`)."""

from .backend import S3Backend
from .sigv4 import Credentials, SigV4Signer

__all__ = ["S3Backend", "Credentials", "SigV4Signer"]
