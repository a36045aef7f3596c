"""A small fsspec file system for ``s3://`` on objio, for Lightning.

Lightning reaches ``Trainer(default_root_dir="s3://...")`` through fsspec: ``ModelCheckpoint``
lists and tests its checkpoint directory, loggers create directories and write small files,
and its default checkpoint plugin (``TorchCheckpointIO``) saves inside ``with
fs.transaction:``. fsspec serves ``s3://`` with s3fs, which is not installed with objio (its
aiobotocore pins botocore to an older release than objio's peers use). objio declares itself
in fsspec's ``fsspec.specs`` entry points for ``s3`` and ``s3a``: with objio installed and s3fs
absent, fsspec finds :class:`ObjioS3FileSystem` by itself (no import, no registration); with
s3fs installed the entry point resolves to s3fs's class, so s3fs stays in charge unless
:func:`register` is called with ``force=True``. :func:`register` also sets the client.

Transactions follow fsspec's contract: a file opened for writing inside ``with
fs.transaction:`` (``autocommit=False``) sends its parts as it is written, but the object
appears only at the transaction's commit (``CompleteMultipartUpload`` / ``PutObject`` then); an
exception in the block discards it (the multipart upload is aborted, a previous object at
the key stays unchanged).

What it offers: ``info``/``exists``/``isdir``/``isfile``, ``ls`` (one level), ``open`` (``rb``:
the sequential reader; ``wb``: the multipart writer; text modes; ``a``/``ab`` rewrite the
object with the new bytes appended, fine for the small log files they are used for),
``rm_file``, ``makedirs``/``mkdir`` (nothing to do), ``modified``. All calls go through the
:class:`objio.Client` given to :func:`register` (the last one registered), else objio's
default client.
"""

from __future__ import annotations

import datetime
import importlib.util
import io
from typing import Any

import fsspec

from ..api import Client, default_client
from ..io import open as objio_open

__all__ = ["ObjioS3FileSystem", "register"]


class _DeferredCommitWriter(io.BufferedIOBase):
    """A file written inside an fsspec transaction (``autocommit=False``): writes go to an
    :class:`objio.io.ObjectWriter` (parts upload as they fill); ``close()`` ends the writing;
    the transaction then calls :meth:`commit` (the object appears) or :meth:`discard` (the
    upload is aborted: nothing appears). Dropped without either, the upload is aborted."""

    def __init__(self, writer: Any) -> None:
        super().__init__()
        self._w = writer
        self.path = writer.uri

    def writable(self) -> bool:
        return not self.closed

    def readable(self) -> bool:
        return False

    def write(self, data: Any, /) -> int:
        if self.closed:
            raise ValueError(f"I/O operation on closed file ({self.path})")
        return int(self._w.write(data))

    def tell(self) -> int:
        return int(self._w.tell())

    def commit(self) -> None:
        """Make the object visible (complete the upload). Raises the upload's error (then the
        upload is aborted)."""
        self.close()
        self._w.close()

    def discard(self) -> None:
        """Abandon the object: abort the upload (nothing appears)."""
        self.close()
        self._w.abort()


class ObjioS3FileSystem(fsspec.AbstractFileSystem):  # type: ignore[misc]
    """fsspec's file-system interface for ``s3://`` paths on objio (see the module docs)."""

    protocol = ("s3", "s3a")
    root_marker = ""
    client: Client | None = None

    def _client(self) -> Client:
        return type(self).client or default_client()

    @staticmethod
    def _uri(path: str) -> str:
        path = str(path)
        for p in ("s3://", "s3a://"):
            if path.startswith(p):
                path = path[len(p):]
        return "s3://" + path.lstrip("/")

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        path = str(path)
        for p in ("s3://", "s3a://"):
            if path.startswith(p):
                path = path[len(p):]
        return path.rstrip("/")

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        base = self._strip_protocol(path)
        if "/" not in base:
            prefixes, objects = self._client().list_level(f"s3://{base}/")
        else:
            prefixes, objects = self._client().list_level(self._uri(base) + "/")
        bucket = base.split("/", 1)[0]
        out = [{"name": f"{bucket}/{p.rstrip('/')}", "size": 0, "type": "directory"}
               for p in prefixes]
        out += [{"name": f"{bucket}/{o.key}", "size": o.size, "type": "file",
                 "mtime": o.last_modified} for o in objects]
        if not out:
            info = self.info(path)  # a single object, or FileNotFoundError
            out = [info]
        return out if detail else [o["name"] for o in out]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        name = self._strip_protocol(path)
        client = self._client()
        if "/" in name:
            try:
                st = client.stat(self._uri(name))
                return {"name": name, "size": st.size, "type": "file", "mtime": st.last_modified}
            except FileNotFoundError:
                pass
        prefixes, objects = client.list_level(self._uri(name) + "/")
        if prefixes or objects:
            return {"name": name, "size": 0, "type": "directory"}
        raise FileNotFoundError(f"no such object or prefix: s3://{name}")

    def modified(self, path: str) -> datetime.datetime:
        info = self.info(path)
        if "mtime" not in info:
            raise IsADirectoryError(f"s3://{info['name']} is a prefix, not an object")
        return datetime.datetime.fromtimestamp(info["mtime"], tz=datetime.timezone.utc)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Nothing to do: prefixes exist once an object is written under them."""

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Nothing to do (see :meth:`makedirs`)."""

    def rm_file(self, path: str) -> None:
        self._client().delete(self._uri(self._strip_protocol(path)))

    def _rm(self, path: str) -> None:
        self.rm_file(path)

    def _open(self, path: str, mode: str = "rb", block_size: Any = None,
              autocommit: bool = True, cache_options: Any = None, **kwargs: Any) -> Any:
        """``rb``: objio's sequential reader. ``wb`` (``ab``: the old bytes, then the new):
        objio's multipart writer; with ``autocommit=False`` (inside ``fs.transaction``) a
        writer whose object appears at ``commit()`` and is aborted by ``discard()``."""
        uri = self._uri(self._strip_protocol(path))
        client = self._client()
        if "r" in mode:
            return objio_open(uri, "rb", client=client)
        old = bytearray()
        if "a" in mode:
            try:
                old = client.get(uri)
            except FileNotFoundError:
                pass
        w = objio_open(uri, "wb", client=client)
        if old:
            w.write(old)
        return w if autocommit else _DeferredCommitWriter(w)


def register(client: Client | None = None, *, force: bool = False) -> bool:
    """Serve fsspec's ``s3://`` (and ``s3a://``) with :class:`ObjioS3FileSystem` through
    ``client`` (None: objio's default client) unless s3fs is installed (``force=True``: even
    then). Returns whether objio's implementation is the one in use."""
    if not force and importlib.util.find_spec("s3fs") is not None:
        return False
    if client is not None:
        ObjioS3FileSystem.client = client
    for protocol in ("s3", "s3a"):
        fsspec.register_implementation(protocol, ObjioS3FileSystem, clobber=True)
    ObjioS3FileSystem.clear_instance_cache()
    return True


def __getattr__(name: str) -> Any:
    """``FsspecS3FileSystem``: the class objio's ``fsspec.specs`` entry points name for
    ``s3``/``s3a``: s3fs's ``S3FileSystem`` when s3fs is installed (it stays in charge), else
    :class:`ObjioS3FileSystem`."""
    if name == "FsspecS3FileSystem":
        if importlib.util.find_spec("s3fs") is not None:
            import s3fs

            return s3fs.S3FileSystem
        return ObjioS3FileSystem
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
