"""URI parsing: the one place where a string becomes a (scheme, bucket, key).

Supported forms:

* ``s3://bucket/key`` (key may be empty or end with ``/`` for a prefix)
* ``file:///absolute/path`` and bare local paths (``/data/x``, ``./x``, ``x``)
* ``az://container/blob`` (Azure Blob Storage; the account comes from the configuration:
  ``AZURE_STORAGE_ACCOUNT`` or the connection string), and fsspec's (adlfs's) forms with the
  account in the URI: ``abfs://container@account.dfs.core.windows.net/path`` (also ``abfss://``
  and ``az://container@account.blob.core.windows.net/blob``); all parse to scheme ``az``
* ``gs://bucket/object`` and ``gcs://bucket/object`` (Google Cloud Storage); both parse to
  scheme ``gs``

Anything else raises :class:`ValueError` naming the URI and the supported schemes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import unquote

from ._glob import has_wildcard, split_wildcard

SUPPORTED_SCHEMES = ("s3", "az", "gs", "file")
AZURE_SCHEMES = ("az", "abfs", "abfss")
GCS_SCHEMES = ("gs", "gcs")

# S3 bucket naming rules (general purpose buckets): 3-63 characters, lower-case letters, digits,
# dots and hyphens, beginning and ending with a letter or digit, not formatted as an IPv4 address.
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# Azure container names: 3-63 characters, lower-case letters, digits and '-', starting and
# ending with a letter or digit, no '--' (Azure "Naming and referencing containers, blobs, and
# metadata"); $root, $web and $logs are the service's own containers.
_CONTAINER_RE = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]$")
_SPECIAL_CONTAINERS = ("$root", "$web", "$logs")
# Storage account names: 3-24 lower-case letters and digits.
_ACCOUNT_RE = re.compile(r"^[a-z0-9]{3,24}$")
# Google Cloud Storage bucket names ("Bucket naming requirements"): lower-case letters, digits,
# '-', '_' and '.', starting and ending with a letter or digit; 3-63 characters, or up to 222
# when they hold dots (each dot-separated component then at most 63); not an IPv4 address; not
# starting with "goog" and not containing "google" (or close misspellings: not checked here).
_GCS_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")


@dataclass(frozen=True)
class ObjectURI:
    """A parsed object location.

    For ``s3``: ``bucket`` is the bucket name and ``key`` the object key (or prefix), without a
    leading ``/``. For ``file``: ``bucket`` is ``""`` and ``key`` is the absolute local path.
    For ``az``: ``bucket`` is the container, ``key`` the blob name (or prefix), and
    ``account`` the storage account named in the URI (``abfs://container@account...``; ``""``:
    the configured one). For ``gs``: ``bucket`` is the Cloud Storage bucket, ``key`` the
    object name (or prefix).
    """

    scheme: str
    bucket: str
    key: str
    account: str = ""

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    def with_key(self, key: str) -> ObjectURI:
        """Same bucket (or local file system), another key."""
        return ObjectURI(self.scheme, self.bucket, key, self.account)

    def joinpath(self, name: str) -> ObjectURI:
        """``name`` under this prefix: the key, a ``/`` when the key is not empty and does not
        end with one, then ``name`` (``s3://b/p`` + ``x`` -> ``s3://b/p/x``; ``s3://b`` + ``x``
        -> ``s3://b/x``)."""
        key = self.key
        if key and not key.endswith("/"):
            key += "/"
        return ObjectURI(self.scheme, self.bucket, key + name, self.account)

    def __str__(self) -> str:
        if self.scheme == "file":
            return "file://" + self.key
        if self.scheme == "az":
            if self.account:
                return f"abfs://{self.bucket}@{self.account}.dfs.core.windows.net/{self.key}"
            return f"az://{self.bucket}/{self.key}"
        if self.scheme == "gs":
            return f"gs://{self.bucket}/{self.key}"
        return f"s3://{self.bucket}/{self.key}"


def validate_bucket_name(bucket: str, uri: str | None = None) -> str:
    """Return ``bucket`` if it follows the S3 bucket naming rules, else raise ValueError."""
    if not _BUCKET_RE.match(bucket) or ".." in bucket or _IPV4_RE.match(bucket):
        where = f" in {uri!r}" if uri is not None else ""
        raise ValueError(
            f"invalid bucket name {bucket!r}{where}: bucket names are 3-63 characters of "
            "lower-case letters, digits, '.' and '-', starting and ending with a letter or digit"
        )
    return bucket


def validate_container_name(container: str, uri: str | None = None) -> str:
    """Return ``container`` if it follows Azure's container naming rules, else raise
    ValueError naming it and the rules."""
    if container not in _SPECIAL_CONTAINERS and not _CONTAINER_RE.match(container):
        where = f" in {uri!r}" if uri is not None else ""
        raise ValueError(
            f"invalid Azure container name {container!r}{where}: container names are 3-63 "
            "characters of lower-case letters, digits and '-', starting and ending with a "
            "letter or digit, without '--' (or $root, $web, $logs)"
        )
    return container


def validate_gcs_bucket_name(bucket: str, uri: str | None = None) -> str:
    """Return ``bucket`` if it follows Google Cloud Storage's bucket naming rules, else raise
    ValueError naming it, the URI and the rule it breaks."""
    where = f" in {uri!r}" if uri is not None else ""
    rule = None
    parts = bucket.split(".")
    if not _GCS_BUCKET_RE.match(bucket):
        rule = ("bucket names are 3-63 characters (up to 222 with dots) of lower-case letters, "
                "digits, '-', '_' and '.', starting and ending with a letter or digit")
    elif "." not in bucket and len(bucket) > 63:
        rule = "a bucket name without dots is at most 63 characters"
    elif any(not p or len(p) > 63 for p in parts):
        rule = "each dot-separated component of a bucket name is 1-63 characters"
    elif _IPV4_RE.match(bucket):
        rule = "a bucket name cannot be an IP address"
    elif bucket.startswith("goog") or "google" in bucket:
        rule = "a bucket name cannot start with 'goog' or contain 'google'"
    if rule is not None:
        raise ValueError(f"invalid Google Cloud Storage bucket name {bucket!r}{where}: {rule}")
    return bucket


def _parse_azure(uri: str, scheme: str, rest: str) -> ObjectURI:
    """``az://container/blob``, ``az://container@account.blob.core.windows.net/blob``,
    ``abfs[s]://container@account.dfs.core.windows.net/path`` (or ``abfs://container/path``,
    the account configured)."""
    authority, _, key = rest.partition("/")
    container, at, host = authority.partition("@")
    account = ""
    if at:
        account = host.split(".", 1)[0]
        if not _ACCOUNT_RE.match(account):
            raise ValueError(
                f"invalid Azure storage account {account!r} in {uri!r}: account names are "
                "3-24 lower-case letters and digits (expected "
                f"{scheme}://container@account.dfs.core.windows.net/path)")
    if not container:
        raise ValueError(f"invalid Azure URI {uri!r}: expected az://container/blob or "
                         "abfs://container@account.dfs.core.windows.net/path")
    validate_container_name(container, uri)
    return ObjectURI("az", container, key, account)


def parse_uri(uri: str | os.PathLike[str] | ObjectURI, *,
              s3_aliases: tuple[str, ...] = ()) -> ObjectURI:
    """Parse ``uri`` into an :class:`ObjectURI`.

    ``s3_aliases`` names extra schemes read as ``s3://`` (the S3 API on the configured
    endpoint), e.g. ``("oss",)`` for the OSS Model Connector's ``oss://bucket/key`` URIs
    (:class:`objio.model.ModelConnector`).

    Raises:
        ValueError: unsupported scheme, missing or invalid bucket name, or an empty URI.
        TypeError: ``uri`` is not a string, path or ObjectURI.
    """
    if type(uri) is str and not s3_aliases:
        hit = _PARSED.get(uri)
        if hit is not None:
            return hit
        obj = _parse(uri, ())
        if obj.scheme != "file":  # (a relative path's meaning moves with the directory)
            if len(_PARSED) >= _PARSED_MAX:
                _PARSED.clear()
            _PARSED[uri] = obj
        return obj
    return _parse(uri, s3_aliases)


#: Store URIs already parsed (``s3://``, ``az://``, ``gs://`` strings; an ObjectURI is
#: immutable): a training job reads the same keys every epoch, and parsing costs ~6 us a URI,
#: 2% of the client's CPU per small GET on Azurite. Cleared when full.
_PARSED: dict[str, ObjectURI] = {}
_PARSED_MAX = 65536


def _parse(uri: str | os.PathLike[str] | ObjectURI, s3_aliases: tuple[str, ...]) -> ObjectURI:
    if isinstance(uri, ObjectURI):
        return uri
    if isinstance(uri, os.PathLike):
        uri = os.fspath(uri)
    if not isinstance(uri, str):
        raise TypeError(f"uri must be a str or os.PathLike, got {type(uri).__name__}")
    if not uri:
        raise ValueError("uri must not be empty; expected s3://bucket/key, file:///path or a local path")
    m = _SCHEME_RE.match(uri)
    if m is None:
        if ":" in uri.split("/", 1)[0] and not os.path.exists(uri):
            # "s3:bucket/key", "http:/x" and the like: almost certainly a typo, not a local file.
            raise ValueError(
                f"unsupported URI {uri!r}: supported schemes are s3://bucket/key and "
                "file:///path (or a local path)"
            )
        return ObjectURI("file", "", _local_path(uri))
    scheme = m.group(1).lower()
    rest = uri[m.end():]
    if scheme == "file":
        if rest.startswith("localhost/"):
            rest = rest[len("localhost"):]
        if not rest.startswith("/"):
            raise ValueError(f"invalid file URI {uri!r}: expected file:///absolute/path")
        return ObjectURI("file", "", _local_path(unquote(rest)))
    if scheme in s3_aliases:
        scheme = "s3"
    if scheme in AZURE_SCHEMES:
        return _parse_azure(uri, scheme, rest)
    if scheme in GCS_SCHEMES:
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise ValueError(f"invalid Google Cloud Storage URI {uri!r}: expected "
                             "gs://bucket/object")
        validate_gcs_bucket_name(bucket, uri)
        return ObjectURI("gs", bucket, key)
    if scheme != "s3":
        raise ValueError(
            f"unsupported URI scheme {scheme!r} in {uri!r}: supported schemes are "
            + ", ".join(f"{s}://" for s in (*SUPPORTED_SCHEMES, *s3_aliases))
            + " (or a local path)"
        )
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise ValueError(f"invalid S3 URI {uri!r}: expected s3://bucket/key")
    validate_bucket_name(bucket, uri)
    return ObjectURI("s3", bucket, key)


def store_uri(uri: str | os.PathLike[str] | ObjectURI, what: str) -> ObjectURI:
    """:func:`parse_uri` for the S3-named classes of :mod:`objio.torch` (``S3Checkpoint``,
    the datasets, readers, writer, DCP's storage): an ``s3://`` URI, another objio store's
    URI (``file:///path``), or an absolute local path. A relative path (``"bucket/key"``,
    ``Path("bucket", "key")``, ``Path()``) is refused: s3torchconnector reads it as an error
    (only ``s3://``), and read as a local path it would write ``./bucket/key`` on this
    machine's disk or act on the current directory.

    Raises:
        ValueError: a relative path (naming ``what`` and the ``s3://`` URI it may have
            meant), or what :func:`parse_uri` refuses.
        TypeError: not a string, path or ObjectURI.
    """
    if isinstance(uri, ObjectURI):
        return uri
    text = os.fspath(uri) if isinstance(uri, os.PathLike) else uri
    if isinstance(text, str) and text and not _SCHEME_RE.match(text) \
            and not os.path.isabs(os.path.expanduser(text)):
        hint = s3_hint(text)
        raise ValueError(
            f"Only s3:// URIs are supported for {what}, got the relative path {text!r}"
            + (f": did you mean {hint}?" if hint else "")
            + " (objio also takes file:///absolute/path or an absolute path for a local file)")
    return parse_uri(uri)


def s3_hint(uri: object) -> str | None:
    """The ``s3://`` URI a local path may have meant: for a relative path written without a
    scheme whose first segment is a valid bucket name (``my-bucket/train`` ->
    ``s3://my-bucket/train``), else None. Used to word "no such file or directory" errors;
    nothing is ever read as S3 without its scheme."""
    if not isinstance(uri, str) or _SCHEME_RE.match(uri) or uri.startswith(("/", "~", os.sep)):
        return None
    first = uri.split("/", 1)[0]
    if not _BUCKET_RE.match(first) or ".." in first or _IPV4_RE.match(first):
        return None
    return "s3://" + uri


def _local_path(path: str) -> str:
    trailing = path.endswith(("/", os.sep))
    out = os.path.abspath(os.path.expanduser(path))
    if trailing and not out.endswith(os.sep):
        out += os.sep  # keep the "this is a prefix/directory" meaning of a trailing slash
    return out


def has_glob(key: str) -> bool:
    """True if ``key`` holds a wildcard in any segment: ``*``, ``**``, ``?`` or a ``[...]``
    set (:mod:`objio._glob`, s5cmd's wildcards)."""
    return has_wildcard(key)


def split_glob(obj: ObjectURI) -> tuple[str, str | None]:
    """(prefix to list, pattern) for a listing URI: the key up to the last ``/`` before its
    first wildcard is the prefix (``/`` at least for local paths), the rest the pattern,
    matched with :func:`objio._glob.match` against keys relative to the prefix
    (``data/*/f1.bin`` -> ``data/``, ``*/f1.bin``); without a wildcard the key is the prefix
    and the pattern is None. List with a delimiter only when
    :func:`objio._glob.one_level` (the pattern cannot reach below one level)."""
    key, pattern = split_wildcard(obj.key)
    if pattern is None:
        return key, None
    if obj.is_local and not key:
        key = "/"
    return key, pattern


def object_uri(uri: str | os.PathLike[str] | ObjectURI, operation: str) -> ObjectURI:
    """Parse ``uri`` as ONE object: ``s3://bucket/key`` with a key, or a local file path.

    A URI without a key (``s3://bucket``, ``s3://bucket/``) names a bucket, and a path ending
    with ``/`` names a directory: neither is an object, so every single-object operation
    refuses them instead of returning a listing or a directory.

    Raises:
        ValueError: naming ``operation`` and the URI; TypeError: not a str/path/ObjectURI.
    """
    obj = parse_uri(uri)
    shown = os.fspath(uri) if isinstance(uri, (str, os.PathLike)) else str(uri)
    if obj.scheme == "s3" and not obj.key:
        raise ValueError(f"{shown} names a bucket, not an object: {operation} needs an object "
                         f"key, s3://{obj.bucket}/KEY")
    if obj.scheme == "az" and not obj.key:
        raise ValueError(f"{shown} names a container, not a blob: {operation} needs a blob "
                         f"name, {obj.joinpath('BLOB')}")
    if obj.scheme == "gs" and not obj.key:
        raise ValueError(f"{shown} names a bucket, not an object: {operation} needs an object "
                         f"name, gs://{obj.bucket}/OBJECT")
    if obj.scheme == "file" and obj.key.endswith(("/", os.sep)):
        raise ValueError(f"{shown} names a directory, not a file: {operation} needs a file "
                         "path")
    return obj


def is_prefix(uri: str | os.PathLike[str] | ObjectURI) -> bool:
    """Whether ``uri`` is written as a prefix (everything under it), not as one object: it ends
    with ``/`` (``s3://bucket/``, ``s3://bucket/dir/``, a directory path) or has a ``*``/``?``
    glob in its last segment. ``s3://bucket`` without the slash is neither: it names the
    bucket itself (an already parsed ObjectURI with an empty key prints as ``s3://bucket/``,
    a prefix)."""
    if isinstance(uri, ObjectURI):
        return not uri.key or uri.key.endswith(("/", os.sep)) or has_glob(uri.key)
    raw = os.fspath(uri) if isinstance(uri, os.PathLike) else uri
    obj = parse_uri(uri)
    if isinstance(raw, str) and raw.endswith(("/", os.sep)):
        return True
    return bool(obj.key) and (obj.key.endswith(("/", os.sep)) or has_glob(obj.key))


def check_uri_list(value: object, name: str, example: str) -> None:
    """Refuse a single string (or path) where an iterable of URIs (or pairs) is expected:
    iterating a str would give its characters.

    Raises: TypeError naming the argument and how to call it."""
    if isinstance(value, (str, bytes, os.PathLike, ObjectURI)):
        raise TypeError(f"{name} must be an iterable of URIs, got a single {type(value).__name__} "
                        f"{str(value)!r}; wrap it in a list: {example}")


def _real_local(path: str) -> str:
    """A local path with ``.``/``..``, a trailing slash and symbolic links resolved."""
    return os.path.realpath(path.rstrip(os.sep) or os.sep)


def same_object(a: str | os.PathLike[str] | ObjectURI, b: str | os.PathLike[str] | ObjectURI) -> bool:
    """Whether ``a`` and ``b`` name the same object, however each is written.

    ``s3://``: the same bucket and key. Keys are compared as they are: to S3 a key is a plain
    string, so ``a/./b`` and ``a/b`` are two objects. Local paths (plain or ``file://``): the
    same file once ``.`` and ``..`` segments, a trailing slash and symbolic links are resolved
    (``os.path.realpath``). An s3:// URI and a local path are never the same object.

    Raises: ValueError (a malformed URI)."""
    x, y = parse_uri(a), parse_uri(b)
    if x.scheme != y.scheme:
        return False
    if not x.is_local:
        return x.bucket == y.bucket and x.key == y.key and x.account == y.account
    return _real_local(x.key) == _real_local(y.key)


def canonical(uri: str | os.PathLike[str] | ObjectURI) -> str:
    """One spelling per object, for sets and comparisons (see :func:`same_object`):
    ``s3://bucket/key`` as it is, a local path resolved to ``file:///real/path``."""
    obj = parse_uri(uri)
    if not obj.is_local:
        return str(obj)
    return "file://" + _real_local(obj.key)


def prefix_overlap(a: str | os.PathLike[str] | ObjectURI,
                   b: str | os.PathLike[str] | ObjectURI) -> str | None:
    """How the objects under two prefixes (or directories) relate, each taken as everything
    under it (``s3://b/a`` as ``s3://b/a/``, a local path as that directory, resolved as in
    :func:`same_object`):

    * ``"same"``: the same prefix;
    * ``"inside"``: ``b`` is under ``a`` (``s3://b/a/`` and ``s3://b/a/sub/``);
    * ``"contains"``: ``a`` is under ``b``;
    * None: no object can be under both (another bucket, scheme or branch).

    Raises: ValueError (a malformed URI)."""
    x, y = parse_uri(a), parse_uri(b)
    if x.scheme != y.scheme or x.bucket != y.bucket or x.account != y.account:
        return None
    if not x.is_local:
        p = x.key if not x.key or x.key.endswith("/") else x.key + "/"
        q = y.key if not y.key or y.key.endswith("/") else y.key + "/"
    else:
        p = _real_local(x.key).rstrip(os.sep) + os.sep
        q = _real_local(y.key).rstrip(os.sep) + os.sep
    if p == q:
        return "same"
    if q.startswith(p):
        return "inside"
    if p.startswith(q):
        return "contains"
    return None
