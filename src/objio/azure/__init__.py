"""Azure Blob Storage backend (``az://``): SharedKey/SAS/bearer auth, requests, XML, block
uploads (see :mod:`objio.azure.backend`)."""

from .auth import API_VERSION, SharedKey
from .backend import AzureBackend

__all__ = ["API_VERSION", "AzureBackend", "SharedKey"]
