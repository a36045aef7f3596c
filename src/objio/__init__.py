"""objio: fast object-storage I/O for AI/ML (S3 and S3-compatible servers, and local files).

The bulk API (``list``, ``get``, ``get_many``, ``get_many_stats``, ``put``, ``put_bytes``,
``delete``, ``stat``, ``read_npz``, ... and their ``_async`` twins) runs on objio's own asyncio
S3 engine: one background event loop per process, fork-safe, with retries and ranged parallel
GETs. See the docs (docs/: guides per user path, docs/configuration.md for the
configuration table, docs/errors.md for the error table) for examples.
"""

from __future__ import annotations

from . import api as _api
from .api import DEFAULT_OBJECT_SIZE, Client, configure, default_client
from .backend import ListPage, ObjectInfo
from .config import ClientConfig, parse_size
from .engine import RequestRecord
from .errors import (
    AccessDeniedError,
    AlreadyExistsError,
    DeleteError,
    EndpointUnreachableError,
    IntegrityError,
    NotFoundError,
    ObjectStoreError,
    ObjectTimeoutError,
)
from .io import open as open  # objio.open; deliberately not in __all__ (would shadow the builtin)
from .model import ModelConnector
from .uri import ObjectURI, parse_uri

__version__ = "0.1.0"

list = _api._make("list")
list_async = _api._make("list_async")
list_iter = _api._make("list_iter")
list_iter_async = _api._make("list_iter_async")
list_pages = _api._make("list_pages")
list_pages_async = _api._make("list_pages_async")
list_objects = _api._make("list_objects")
get = _api._make("get")
get_async = _api._make("get_async")
get_range = _api._make("get_range")
get_range_async = _api._make("get_range_async")
get_many = _api._make("get_many")
get_many_async = _api._make("get_many_async")
get_many_stats = _api._make("get_many_stats")
get_many_stats_async = _api._make("get_many_stats_async")
put = _api._make("put")
put_async = _api._make("put_async")
put_bytes = _api._make("put_bytes")
put_bytes_async = _api._make("put_bytes_async")
put_many = _api._make("put_many")
put_many_async = _api._make("put_many_async")
delete = _api._make("delete")
delete_async = _api._make("delete_async")
stat = _api._make("stat")
stat_async = _api._make("stat_async")
exists = _api._make("exists")
exists_async = _api._make("exists_async")
create_bucket = _api._make("create_bucket")
create_bucket_async = _api._make("create_bucket_async")
read_npz = _api._make("read_npz")
read_npz_async = _api._make("read_npz_async")
put_npz = _api._make("put_npz")
put_npz_async = _api._make("put_npz_async")
list_multipart_uploads = _api._make("list_multipart_uploads")
abort_multipart_uploads = _api._make("abort_multipart_uploads")
delete_bucket = _api._make("delete_bucket")
delete_many = _api._make("delete_many")
presign = _api._make("presign")
list_buckets = _api._make("list_buckets")
list_level = _api._make("list_level")
copy = _api._make("copy")
copy_many = _api._make("copy_many")
put_generated = _api._make("put_generated")
put_generated_async = _api._make("put_generated_async")
stat_many = _api._make("stat_many")
stat_many_async = _api._make("stat_many_async")
copy_many_async = _api._make("copy_many_async")
delete_many_async = _api._make("delete_many_async")

__all__ = [
    "DEFAULT_OBJECT_SIZE", "Client", "ClientConfig", "configure", "default_client", "ObjectInfo",
    "ListPage",
    "ObjectURI", "parse_uri", "parse_size", "RequestRecord",
    "ObjectStoreError", "NotFoundError", "AccessDeniedError", "AlreadyExistsError",
    "ObjectTimeoutError", "IntegrityError", "DeleteError", "EndpointUnreachableError",
    "ModelConnector",
    *_api.API_FUNCTIONS,
]
