"""Every library the benchmarks compare, each set up once, here.

A benchmark never builds a peer's client itself: it takes an :class:`Access` (how to reach the
store, derived from an objio :class:`~objio.Client`) and asks the library's adapter for the
operation it measures:

=====================  =======================================================================
operation              adapters that have it
=====================  =======================================================================
``getter``             obstore, boto3, s3torchconnector, s3dlio: read every object of a list
                       fully into memory, ``max_in_flight`` at a time (objects benchmark)
``putter``             obstore, boto3, s3torchconnector, s3dlio: write every object of a list,
                       ``max_in_flight`` at a time (``objio bench --op put``); ``header``: the
                       same four, HEAD of every object (``--op head``)
``deleter``            the same four, each with its own bulk delete of a list of objects
                       (obstore and boto3: DeleteObjects; s3torchconnector: one DELETE per key;
                       s3dlio: its recursive delete of the prefix) (``--op delete``)
``copier``             obstore, boto3, s3torchconnector: server-side copy of each (src, dst)
                       (CopyObject), ``max_in_flight`` at a time (``--op copy``)
``op_lister``          the same four: one full listing of the bench prefix (``objio bench
                       --op list``; not the lister of ``objio bench list``)
``generator``          s3dlio: its ``put`` of typed synthetic objects (``--op gen``)
``stream_reader``      objio (``objio.open(...).readinto``), boto3 (``download_fileobj``),
                       obstore (``get().stream()``); ``file_reader``: obstore ``open_reader``
``stream_writer``      objio (``objio.open(..., "wb")``), boto3 (``upload_fileobj``)
``dataset``            objio and s3torchconnector: ``S3MapDataset`` / ``S3IterableDataset``
``checkpoint_*``       objio and s3torchconnector: ``S3Checkpoint`` writer (``torch.save``) and
                       reader (``torch.load``); ``dcp_storage_writer`` / ``dcp_storage_reader``:
                       their DCP ``S3StorageWriter`` / ``S3StorageReader`` (checkpoint benchmark)
``prefix_lister``      obstore (``obstore.list``), boto3 (``list_objects_v2`` paginator): the
                       keys under a prefix, listed sequentially with each object's metadata
                       (``objio bench list``, which times objio's own listings directly)
``model_loader``       objio (``load_safetensors``; ``connector_loader``: ``ModelConnector``
                       open-all-then-read), Run:ai Model Streamer (``SafetensorsStreamer``),
                       boto3 and s3torchconnector (whole shards + ``safetensors.torch.load``):
                       every tensor of a list of safetensors shards (model benchmark)
=====================  =======================================================================

Setting up (imports, clients, thread pools) is never timed; what an adapter method returns is
the callable a benchmark times. Libraries are imported only inside the adapters: obstore is not
fork-safe (DESIGN.md), so it must never be imported at objio import time. Adding a library is
adding one adapter class here and its entry in :data:`LIBRARIES`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib.metadata
import importlib.util
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..config import ClientConfig, temporary_environ

__all__ = [
    "Access", "Advance", "Getter", "Library", "LIBRARIES", "PEERS", "library",
    "installed_version", "is_installed",
]

Advance = Callable[[int, int], None]
"""Progress callback of a timed run: ``advance(objects, nbytes)``."""

ModelRun = Callable[[Callable[[str], None]], dict[str, Any]]
"""A prepared model load: ``run(on_tensor)`` returns ``{name: torch.Tensor}``, calling
``on_tensor(name)`` as each tensor becomes available (the first call is the time to first
tensor)."""


def installed_version(dist: str) -> str | None:
    """The installed version of distribution ``dist``, or None."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def is_installed(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@dataclass(frozen=True)
class Access:
    """How every library reaches the store: the same endpoint, region, addressing and
    credentials (resolved once, by objio's credential chain, when not given explicitly)."""

    endpoint_url: str | None
    region: str
    access_key_id: str | None
    secret_access_key: str | None
    session_token: str | None
    unsigned: bool
    path_style: bool
    profile: str | None = None
    #: The store's URI scheme: ``s3``, or ``az`` / ``gs`` (then :attr:`azure` / :attr:`gcs`
    #: say how to reach it, and only the libraries whose :attr:`Library.schemes` have it run).
    scheme: str = "s3"
    #: ``az://``: ``account``, ``account_key``, ``sas_token``, ``endpoint_url`` (None: unset).
    azure: Mapping[str, str | None] | None = None
    #: ``gs://``: ``endpoint_url`` and ``credentials`` (``anonymous``, a JSON file's path, or
    #: None: application default credentials), as objio's ClientConfig has them.
    gcs: Mapping[str, str | None] | None = None

    _OVERRIDES = ("endpoint_url", "region", "access_key_id", "secret_access_key",
                  "session_token", "unsigned", "path_style")

    @classmethod
    def from_client(cls, client: Any, overrides: Mapping[str, Any] | None = None, *,
                    scheme: str = "s3") -> Access:
        """The settings of ``client`` (an :class:`objio.Client`), with ``overrides`` (any of
        ``endpoint_url``, ``region``, ``access_key_id``, ``secret_access_key``,
        ``session_token``, ``unsigned``, ``path_style``) applied. Credentials given nowhere come
        from objio's resolver (env, profile, SSO, instance metadata). With ``scheme`` ``az`` or
        ``gs`` the client's Azure or GCS settings (account, key, SAS, endpoint; endpoint,
        credentials) are taken instead, as objio resolved them (arguments > environment).

        Raises: ValueError (an unknown override key, or a scheme other than s3, az, gs)."""
        cfg = client.config
        over = dict(overrides or {})
        unknown = set(over) - set(cls._OVERRIDES)
        if unknown:
            raise ValueError(f"peer_credentials has unknown keys: {', '.join(sorted(unknown))}")
        if scheme in ("az", "gs"):
            return cls(endpoint_url=None, region=cfg.region or "us-east-1", access_key_id=None,
                       secret_access_key=None, session_token=None, unsigned=False,
                       path_style=False, scheme=scheme,
                       azure={"account": cfg.azure_account,
                              "account_key": cfg.azure_account_key,
                              "sas_token": cfg.azure_sas_token,
                              "endpoint_url": cfg.azure_endpoint_url} if scheme == "az" else None,
                       gcs={"endpoint_url": cfg.gcs_endpoint_url,
                            # objio's rule: an endpoint of its own (an emulator) and no
                            # credentials given is anonymous (objio.gcs.auth.credentials_for)
                            "credentials": cfg.gcs_credentials or (
                                "anonymous" if cfg.gcs_endpoint_url else None)}
                       if scheme == "gs" else None)
        if scheme != "s3":
            raise ValueError(f"peers reach s3://, az:// or gs:// stores, not {scheme}://")
        unsigned = bool(over.get("unsigned", cfg.unsigned))
        key_id = over.get("access_key_id", cfg.access_key_id)
        secret = over.get("secret_access_key", cfg.secret_access_key)
        token = over.get("session_token", cfg.session_token)
        if not unsigned and not (key_id and secret):
            from ..s3.credentials import CredentialProvider

            creds = CredentialProvider(cfg).get()
            if creds is not None:
                key_id, secret, token = (creds.access_key_id, creds.secret_access_key,
                                         creds.session_token)
        return cls(
            # peers take one endpoint: the first of several
            endpoint_url=over.get("endpoint_url", (cfg.endpoint_urls or (None,))[0]),
            region=over.get("region", cfg.region) or "us-east-1",
            access_key_id=key_id,
            secret_access_key=secret,
            session_token=token,
            unsigned=unsigned,
            path_style=bool(over.get("path_style", cfg.path_style)),
            profile=cfg.profile,
        )

    def aws_env(self) -> dict[str, str | None]:
        """``AWS_*`` environment for libraries that read their settings from it."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }

    def client_config(self) -> ClientConfig:
        """The same settings as an objio :class:`~objio.ClientConfig`."""
        if self.scheme == "az" and self.azure is not None:
            z = self.azure
            return ClientConfig(azure_account=z["account"], azure_account_key=z["account_key"],
                                azure_sas_token=z["sas_token"],
                                azure_endpoint_url=z["endpoint_url"])
        if self.scheme == "gs" and self.gcs is not None:
            return ClientConfig(gcs_endpoint_url=self.gcs["endpoint_url"],
                                gcs_credentials=self.gcs["credentials"])
        return ClientConfig(endpoint_url=self.endpoint_url, region=self.region,
                            access_key_id=self.access_key_id,
                            secret_access_key=self.secret_access_key,
                            session_token=self.session_token, unsigned=self.unsigned,
                            force_path_style=self.path_style)


class Getter:
    """A prepared run of one library over a list of objects (read them all, or another
    operation: see the adapters' methods): :meth:`run` (timed, repeatable) returns
    ``(objects, bytes)``; :meth:`close` frees threads and clients."""

    def __init__(self, run: Callable[[Advance | None], tuple[int, int]],
                 close: Callable[[], None] | None = None) -> None:
        self._run = run
        self._close = close

    def run(self, advance: Advance | None) -> tuple[int, int]:
        return self._run(advance)

    def close(self) -> None:
        if self._close is not None:
            self._close()


class _Sink:
    """A write-only file that discards what it gets (download target)."""

    def __init__(self) -> None:
        self.n = 0

    def write(self, b: Any) -> int:
        n = len(memoryview(b))
        self.n += n
        return n


def _thread_getter(fetch: Callable[[str], int], keys: list[str], max_in_flight: int,
                   name: str, env: Mapping[str, str | None] | None = None,
                   close: Callable[[], None] | None = None) -> Getter:
    """A getter running ``fetch(key) -> bytes read`` on a pool of ``max_in_flight`` threads."""
    pool = concurrent.futures.ThreadPoolExecutor(max_in_flight, thread_name_prefix=f"bench-{name}")

    def run(advance: Advance | None) -> tuple[int, int]:
        def one(key: str) -> int:
            n = fetch(key)
            if advance is not None:
                advance(1, n)
            return n

        with temporary_environ(env) if env is not None else contextlib.nullcontext():
            sizes = list(pool.map(one, keys))
        return len(sizes), sum(sizes)

    def shut() -> None:
        pool.shutdown(wait=False, cancel_futures=True)
        if close is not None:
            close()

    return Getter(run, shut)


class Library:
    """One library's adapter. ``name`` is how reports call it; ``dist`` its pip name; ``module``
    what is imported. Methods the library has no equivalent for raise NotImplementedError."""

    name = ""
    dist = ""
    module = ""
    #: The URI schemes the adapter reaches (see :attr:`Access.scheme`).
    schemes: tuple[str, ...] = ("s3",)

    def __init__(self, access: Access) -> None:
        self.access = access

    @classmethod
    def installed(cls) -> bool:
        return is_installed(cls.module)

    @classmethod
    def version(cls) -> str | None:
        return installed_version(cls.dist)

    def getter(self, bucket: str, keys: list[str], uris: list[str], max_in_flight: int) -> Getter:
        raise NotImplementedError(f"{self.name} has no bulk get in the benchmarks")

    def putter(self, bucket: str, keys: list[str], uris: list[str], payloads: list[bytes],
               max_in_flight: int) -> Getter:
        """Write ``payloads[i]`` to each key, ``max_in_flight`` at a time; returns (objects,
        bytes written)."""
        raise NotImplementedError(f"{self.name} has no bulk put in the benchmarks")

    def header(self, bucket: str, keys: list[str], uris: list[str],
               max_in_flight: int) -> Getter:
        """HEAD every object; returns (objects, the sum of their sizes)."""
        raise NotImplementedError(f"{self.name} has no bulk HEAD in the benchmarks")

    def deleter(self, bucket: str, keys: list[str], uris: list[str], prefix: str,
                max_in_flight: int) -> Getter:
        """Delete every object (all the objects under ``prefix``, a key prefix ending with
        ``/``, are these); returns (objects, 0)."""
        raise NotImplementedError(f"{self.name} has no bulk delete in the benchmarks")

    def copier(self, bucket: str, pairs: list[tuple[str, str]], sizes: list[int],
               max_in_flight: int) -> Getter:
        """Copy each (source key, destination key) of ``bucket`` server-side; returns
        (objects, bytes copied)."""
        raise NotImplementedError(f"{self.name} has no server-side copy in the benchmarks")

    def op_lister(self, bucket: str, prefix: str) -> Getter:
        """List every object under ``prefix`` (a full, recursive listing); returns (keys,
        0)."""
        raise NotImplementedError(f"{self.name} has no listing in the benchmarks")

    def generator(self, prefix_uri: str, num: int, template: str, size: int,
                  object_type: str, max_in_flight: int) -> Getter:
        """Generate and write ``num`` typed synthetic objects of ``size`` bytes named
        ``template.format(i, num)`` under ``prefix_uri``; returns (objects, bytes)."""
        raise NotImplementedError(f"{self.name} has no typed data generation")

    @classmethod
    def has(cls, operation: str) -> bool:
        """Whether this adapter implements ``operation`` (a method name such as
        ``"putter"``)."""
        return getattr(cls, operation) is not getattr(Library, operation)

    def stream_reader(self, bucket: str, key: str, chunk: int) -> Callable[[], int]:
        raise NotImplementedError(f"{self.name} has no streaming read in the benchmarks")

    def stream_writer(self, bucket: str, key: str, data: Any, chunk: int) -> Callable[[], None]:
        raise NotImplementedError(f"{self.name} has no streaming write in the benchmarks")

    def dataset(self, kind: str, uri: str, transform: Callable[[Any], Any]) -> Any:
        raise NotImplementedError(f"{self.name} has no PyTorch dataset")

    def env(self, max_in_flight: int | None = None) -> dict[str, str | None]:
        """Environment variables the library reads its settings from while it runs (set them
        around the timed calls; ``max_in_flight`` for those that take their concurrency from
        there); empty when it takes everything as arguments."""
        return {}

    def checkpoint_writer(self, uri: str) -> Any:
        """A binary writer for ``torch.save`` to the object ``uri`` (a context manager; the
        object exists once it is closed)."""
        raise NotImplementedError(f"{self.name} has no checkpoint writer")

    def checkpoint_reader(self, uri: str) -> Any:
        """A binary reader of the object ``uri`` for ``torch.load``."""
        raise NotImplementedError(f"{self.name} has no checkpoint reader")

    def dcp_storage_writer(self, path: str, thread_count: int) -> Any:
        """A ``torch.distributed.checkpoint`` StorageWriter for the checkpoint at ``path``
        writing ``thread_count`` files per rank at once."""
        raise NotImplementedError(f"{self.name} has no DCP storage writer")

    def dcp_storage_reader(self, path: str, thread_count: int) -> Any:
        """A ``torch.distributed.checkpoint`` StorageReader for the checkpoint at ``path``."""
        raise NotImplementedError(f"{self.name} has no DCP storage reader")

    def model_loader(self, bucket: str, keys: list[str], uris: list[str],
                     max_in_flight: int) -> ModelRun:
        raise NotImplementedError(f"{self.name} has no safetensors model loading")

    def prefix_lister(self, bucket: str, prefix: str) -> Callable[[], list[str]]:
        """A sequential listing of every object under ``prefix`` (a ``/``-terminated key
        prefix) of ``bucket``, each with the metadata the library gives (size, date, ETag):
        ``run()`` returns the keys in listing order."""
        raise NotImplementedError(f"{self.name} has no listing in the benchmarks")


def _shards_with_threads(fetch: Callable[[str], Any], keys: list[str], max_in_flight: int,
                         name: str) -> ModelRun:
    """A model load that fetches each shard whole (``fetch(key) -> bytes``) on up to
    ``max_in_flight`` threads, one shard per thread, and builds its tensors with
    ``safetensors.torch.load`` (a copy), shards in order."""
    from safetensors.torch import load

    def run(on_tensor: Callable[[str], None]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        with concurrent.futures.ThreadPoolExecutor(
                max(1, min(max_in_flight, len(keys))), thread_name_prefix=f"bench-{name}") as pool:
            for data in pool.map(fetch, keys):
                tensors = load(data)
                del data
                for n in tensors:
                    on_tensor(n)
                out.update(tensors)
        return out

    return run


def _torch_dataset(module: Any, kind: str, uri: str, transform: Callable[[Any], Any],
                   access: Access) -> Any:
    """``S3MapDataset`` / ``S3IterableDataset`` (sharded) of a module with s3torchconnector's
    API (objio.torch or s3torchconnector itself), with the same settings for both."""
    cfg = module.S3ClientConfig(force_path_style=access.path_style, unsigned=access.unsigned,
                                profile=access.profile)
    common: dict[str, Any] = dict(region=access.region, endpoint=access.endpoint_url,
                                  transform=transform, s3client_config=cfg)
    if kind == "map":
        return module.S3MapDataset.from_prefix(uri, **common)
    return module.S3IterableDataset.from_prefix(uri, enable_sharding=True, **common)


class Objio(Library):
    """objio itself, where a benchmark runs every library through the same code path."""

    name = dist = module = "objio"
    schemes = ("s3", "az", "gs")

    def client(self) -> Any:
        from ..api import Client

        return Client(self.access.client_config())

    def stream_reader(self, bucket: str, key: str, chunk: int) -> Callable[[], int]:
        from ..io import open as oopen

        client, buf = self.client(), bytearray(chunk)

        def run() -> int:
            n = 0
            with oopen(f"{self.access.scheme}://{bucket}/{key}", "rb", client=client) as f:
                while got := f.readinto(buf):
                    n += got
            return n

        return run

    def stream_writer(self, bucket: str, key: str, data: Any, chunk: int) -> Callable[[], None]:
        from ..io import open as oopen

        client, mv = self.client(), memoryview(data)

        def run() -> None:
            with oopen(f"{self.access.scheme}://{bucket}/{key}", "wb", client=client) as f:
                for off in range(0, len(mv), chunk):
                    f.write(mv[off: off + chunk])

        return run

    def dataset(self, kind: str, uri: str, transform: Callable[[Any], Any]) -> Any:
        from .. import torch as objio_torch

        return _torch_dataset(objio_torch, kind, uri, transform, self.access)

    def _checkpoint(self) -> Any:
        from ..torch.checkpoint import S3Checkpoint

        return S3Checkpoint(self.access.region, self.access.endpoint_url,
                            s3client_config=self.access.client_config())

    def checkpoint_writer(self, uri: str) -> Any:
        return self._checkpoint().writer(uri)

    def checkpoint_reader(self, uri: str) -> Any:
        return self._checkpoint().reader(uri)

    def dcp_storage_writer(self, path: str, thread_count: int) -> Any:
        from ..torch.dcp import S3StorageWriter

        return S3StorageWriter(self.access.region, path,
                               s3client_config=self.access.client_config(),
                               thread_count=thread_count)

    def dcp_storage_reader(self, path: str, thread_count: int) -> Any:
        from ..torch.dcp import S3StorageReader

        return S3StorageReader(self.access.region, path,
                               s3client_config=self.access.client_config(),
                               thread_count=thread_count)

    def model_loader(self, bucket: str, keys: list[str], uris: list[str],
                     max_in_flight: int) -> ModelRun:
        """``objio.model.iter_safetensors`` over the shards (ranged GETs straight into one
        buffer per shard, tensors as ``torch.frombuffer`` views)."""
        from ..model import iter_safetensors

        client = self.client()

        def run(on_tensor: Callable[[str], None]) -> dict[str, Any]:
            out = {}
            for name, t in iter_safetensors(uris, client=client, max_in_flight=max_in_flight):
                on_tensor(name)
                out[name] = t
            return out

        return run

    def connector_loader(self, bucket: str, keys: list[str], uris: list[str],
                         max_in_flight: int, prefetch_memory: int | None = None) -> ModelRun:
        """``objio.ModelConnector`` as the reference's example uses it: open every shard
        (prefetch starts in that order), then read each whole into its own buffer and make
        its tensors (``objio.model.tensors_from_buffer``: views, no copy)."""
        from .._buffers import new_buffer
        from ..model import ModelConnector, tensors_from_buffer

        cfg = self.access.client_config()

        def run(on_tensor: Callable[[str], None]) -> dict[str, Any]:
            mc = ModelConnector(config=cfg, prefetch_memory=prefetch_memory,
                                max_in_flight=max_in_flight)
            files = [mc.open(u) for u in uris]
            out = {}
            for u, f in zip(uris, files, strict=True):
                buf = new_buffer(f.size)  # overwritten whole by the read: not zero-filled
                if f.readinto(buf) != len(buf):
                    raise RuntimeError(f"short read of {u}")
                f.close()
                tensors = tensors_from_buffer(buf, u)
                for n in tensors:
                    on_tensor(n)
                out.update(tensors)
            mc.close()
            return out

        return run


class Obstore(Library):
    """obstore (Rust object_store): asyncio ``get_async`` + ``bytes_async`` under a semaphore;
    streaming with ``get().stream()`` or ``open_reader``."""

    name = dist = module = "obstore"
    schemes = ("s3", "az", "gs")

    def store(self, bucket: str) -> Any:
        """obstore's store of ``bucket``: ``S3Store``, or for ``az://`` / ``gs://``
        ``AzureStore`` / ``GCSStore`` (:meth:`_azure_store`, :meth:`_gcs_store`)."""
        if self.access.scheme == "az":
            return self._azure_store(bucket)
        if self.access.scheme == "gs":
            return self._gcs_store(bucket)
        from obstore.store import S3Store  # not fork-safe: imported only here

        a = self.access
        kwargs: dict[str, Any] = {
            "region": a.region,
            "virtual_hosted_style_request": not a.path_style,
            "client_options": {"allow_http": True},
        }
        if a.endpoint_url:
            kwargs["endpoint"] = a.endpoint_url
        if a.unsigned:
            kwargs["skip_signature"] = True
        else:
            kwargs["access_key_id"] = a.access_key_id
            kwargs["secret_access_key"] = a.secret_access_key
            if a.session_token:
                kwargs["session_token"] = a.session_token
        return S3Store(bucket, **kwargs)

    def _azure_store(self, container: str) -> Any:
        """``AzureStore`` with objio's account, key or SAS and endpoint (Azurite's URL
        includes the account: obstore takes it as the endpoint, path-style, as objio does)."""
        from obstore.store import AzureStore

        z = self.access.azure or {}
        kwargs: dict[str, Any] = {"client_options": {"allow_http": True}}
        if z.get("account"):
            kwargs["account_name"] = z["account"]
        if z.get("account_key"):
            kwargs["account_key"] = z["account_key"]
        elif z.get("sas_token"):
            kwargs["sas_key"] = z["sas_token"]
        if z.get("endpoint_url"):
            kwargs["endpoint"] = z["endpoint_url"]
        return AzureStore(container, **kwargs)

    def _gcs_store(self, bucket: str) -> Any:
        """``GCSStore``: objio's endpoint as ``base_url``; anonymous (an emulator such as
        fake-gcs-server) as ``skip_signature``, a credentials file as ``service_account``,
        else obstore's own application default credentials."""
        from obstore.store import GCSStore

        g = self.access.gcs or {}
        kwargs: dict[str, Any] = {"client_options": {"allow_http": True}}
        if g.get("endpoint_url"):
            kwargs["base_url"] = g["endpoint_url"]
        creds = g.get("credentials")
        if creds == "anonymous":
            kwargs["skip_signature"] = True
        elif creds and creds != "default":
            kwargs["service_account"] = creds
        return GCSStore(bucket, **kwargs)

    def getter(self, bucket: str, keys: list[str], uris: list[str], max_in_flight: int) -> Getter:
        import obstore

        store = self.store(bucket)

        def run(advance: Advance | None) -> tuple[int, int]:
            async def main() -> tuple[int, int]:
                sem = asyncio.Semaphore(max_in_flight)

                async def one(key: str) -> int:
                    async with sem:
                        r = await obstore.get_async(store, key)
                        n = len(await r.bytes_async())
                    if advance is not None:
                        advance(1, n)
                    return n

                sizes = await asyncio.gather(*(one(k) for k in keys))
                return len(sizes), sum(sizes)

            return asyncio.run(main())

        return Getter(run)

    def _each(self, bucket: str, items: list[Any], max_in_flight: int,
              one: Callable[[Any, Any], Any]) -> Getter:
        """A run awaiting ``one(store, item) -> bytes`` for every item under a semaphore of
        ``max_in_flight`` (obstore's asyncio API, as its getter)."""
        store = self.store(bucket)

        def run(advance: Advance | None) -> tuple[int, int]:
            async def main() -> tuple[int, int]:
                sem = asyncio.Semaphore(max_in_flight)

                async def each(item: Any) -> int:
                    async with sem:
                        n = int(await one(store, item))
                    if advance is not None:
                        advance(1, n)
                    return n

                sizes = await asyncio.gather(*(each(x) for x in items))
                return len(sizes), sum(sizes)

            return asyncio.run(main())

        return Getter(run)

    def putter(self, bucket: str, keys: list[str], uris: list[str], payloads: list[bytes],
               max_in_flight: int) -> Getter:
        """``put_async(store, key, data)`` (one PutObject each) under a semaphore."""
        import obstore

        async def one(store: Any, i: int) -> int:
            await obstore.put_async(store, keys[i], payloads[i])
            return len(payloads[i])

        return self._each(bucket, list(range(len(keys))), max_in_flight, one)

    def header(self, bucket: str, keys: list[str], uris: list[str],
               max_in_flight: int) -> Getter:
        """``head_async`` under a semaphore."""
        import obstore

        async def one(store: Any, key: str) -> int:
            return int((await obstore.head_async(store, key))["size"])

        return self._each(bucket, keys, max_in_flight, one)

    def copier(self, bucket: str, pairs: list[tuple[str, str]], sizes: list[int],
               max_in_flight: int) -> Getter:
        """``copy_async(store, src, dst)`` (CopyObject) under a semaphore."""
        import obstore

        size_of = dict(zip((p[1] for p in pairs), sizes, strict=True))

        async def one(store: Any, pair: tuple[str, str]) -> int:
            await obstore.copy_async(store, pair[0], pair[1])
            return size_of[pair[1]]

        return self._each(bucket, pairs, max_in_flight, one)

    def deleter(self, bucket: str, keys: list[str], uris: list[str], prefix: str,
                max_in_flight: int) -> Getter:
        """``delete(store, keys)``: its bulk delete (DeleteObjects, 1000 keys a request)."""
        import obstore

        store = self.store(bucket)

        def run(advance: Advance | None) -> tuple[int, int]:
            obstore.delete(store, keys)
            if advance is not None:
                advance(len(keys), 0)
            return len(keys), 0

        return Getter(run)

    def op_lister(self, bucket: str, prefix: str) -> Getter:
        """``list(store, prefix, chunk_size=1000)``, every chunk."""
        import obstore

        store = self.store(bucket)

        def run(advance: Advance | None) -> tuple[int, int]:
            n = sum(len(chunk) for chunk in obstore.list(store, prefix, chunk_size=1000))
            return n, 0

        return Getter(run)

    def stream_reader(self, bucket: str, key: str, chunk: int) -> Callable[[], int]:
        import obstore

        store = self.store(bucket)

        def run() -> int:
            n = 0
            for part in obstore.get(store, key).stream(min_chunk_size=chunk):
                n += len(memoryview(part))
            return n

        return run

    def prefix_lister(self, bucket: str, prefix: str) -> Callable[[], list[str]]:
        """``obstore.list(store, prefix, chunk_size=1000)``: batches of ObjectMeta dicts
        (path, size, last_modified as datetime, e_tag), one ListObjectsV2 page each."""
        import obstore

        store = self.store(bucket)

        def run() -> list[str]:
            keys: list[str] = []
            for batch in obstore.list(store, prefix, chunk_size=1000):
                keys.extend(m["path"] for m in batch)
            return keys

        return run

    def file_reader(self, bucket: str, key: str, chunk: int) -> Callable[[], int]:
        """``obstore.open_reader(...).read(chunk)`` to the end."""
        import obstore

        store = self.store(bucket)

        def run() -> int:
            n = 0
            f = obstore.open_reader(store, key, buffer_size=chunk)
            while k := len(memoryview(f.read(chunk))):
                n += k
            return n

        return run


class Boto3(Library):
    """boto3: one client; bulk gets on a pool of ``max_in_flight`` threads with
    ``get_object()["Body"].read()``; streaming with the managed transfers ``download_fileobj``
    / ``upload_fileobj`` (default TransferConfig: 10 threads, 8 MiB parts)."""

    name = dist = module = "boto3"

    def client(self, max_pool_connections: int = 10) -> Any:
        import boto3
        import botocore
        from botocore.config import Config

        a = self.access
        cfg = Config(
            max_pool_connections=max_pool_connections,
            s3={"addressing_style": "path" if a.path_style else "auto"},
            signature_version=botocore.UNSIGNED if a.unsigned else None,
        )
        return boto3.session.Session().client(
            "s3", endpoint_url=a.endpoint_url, region_name=a.region,
            aws_access_key_id=None if a.unsigned else a.access_key_id,
            aws_secret_access_key=None if a.unsigned else a.secret_access_key,
            aws_session_token=None if a.unsigned else a.session_token,
            config=cfg,
        )

    def getter(self, bucket: str, keys: list[str], uris: list[str], max_in_flight: int) -> Getter:
        client = self.client(max_in_flight)

        def fetch(key: str) -> int:
            return len(client.get_object(Bucket=bucket, Key=key)["Body"].read())

        def close() -> None:
            with contextlib.suppress(Exception):  # noqa: BLE001 - best-effort cleanup
                client.close()

        return _thread_getter(fetch, keys, max_in_flight, self.name, close=close)

    def _each(self, fn: Callable[[Any, Any], int], items: list[Any],
              max_in_flight: int) -> Getter:
        """``fn(client, item) -> bytes`` for every item on ``max_in_flight`` threads sharing
        one client (a pool of as many connections)."""
        client = self.client(max_in_flight)

        def close() -> None:
            with contextlib.suppress(Exception):  # noqa: BLE001 - best-effort cleanup
                client.close()

        return _thread_getter(lambda item: fn(client, item), items, max_in_flight, self.name,
                              close=close)

    def putter(self, bucket: str, keys: list[str], uris: list[str], payloads: list[bytes],
               max_in_flight: int) -> Getter:
        """``put_object(Body=data)`` on ``max_in_flight`` threads."""
        def one(client: Any, i: int) -> int:
            client.put_object(Bucket=bucket, Key=keys[i], Body=payloads[i])
            return len(payloads[i])

        return self._each(one, list(range(len(keys))), max_in_flight)

    def header(self, bucket: str, keys: list[str], uris: list[str],
               max_in_flight: int) -> Getter:
        """``head_object`` on ``max_in_flight`` threads."""
        return self._each(lambda c, key: int(c.head_object(Bucket=bucket, Key=key)
                                             ["ContentLength"]), keys, max_in_flight)

    def copier(self, bucket: str, pairs: list[tuple[str, str]], sizes: list[int],
               max_in_flight: int) -> Getter:
        """``copy_object`` (CopyObject) on ``max_in_flight`` threads."""
        size_of = dict(zip((p[1] for p in pairs), sizes, strict=True))

        def one(client: Any, pair: tuple[str, str]) -> int:
            client.copy_object(Bucket=bucket, Key=pair[1],
                               CopySource={"Bucket": bucket, "Key": pair[0]})
            return size_of[pair[1]]

        return self._each(one, pairs, max_in_flight)

    def deleter(self, bucket: str, keys: list[str], uris: list[str], prefix: str,
                max_in_flight: int) -> Getter:
        """``delete_objects`` (DeleteObjects, quiet) of batches of 1000 keys, on up to
        ``max_in_flight`` threads; a key the store refuses is a failure."""
        batches = [keys[i:i + 1000] for i in range(0, len(keys), 1000)]

        def one(client: Any, batch: list[str]) -> int:
            r = client.delete_objects(Bucket=bucket, Delete={
                "Objects": [{"Key": k} for k in batch], "Quiet": True})
            if r.get("Errors"):
                raise RuntimeError(f"delete_objects refused {len(r['Errors'])} keys")
            return 0

        getter = self._each(one, batches, max(1, min(max_in_flight, len(batches))))

        def run(advance: Advance | None) -> tuple[int, int]:
            getter.run(None)
            if advance is not None:
                advance(len(keys), 0)
            return len(keys), 0

        return Getter(run, getter.close)

    def op_lister(self, bucket: str, prefix: str) -> Getter:
        """The ``list_objects_v2`` paginator, every page."""
        client = self.client()

        def run(advance: Advance | None) -> tuple[int, int]:
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                      Prefix=prefix)
            return sum(len(p.get("Contents", ())) for p in pages), 0

        return Getter(run, client.close)

    def prefix_lister(self, bucket: str, prefix: str) -> Callable[[], list[str]]:
        """The ``list_objects_v2`` paginator (1000 keys a page; botocore parses every field,
        dates to datetime)."""
        paginator = self.client().get_paginator("list_objects_v2")

        def run() -> list[str]:
            keys: list[str] = []
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                keys.extend(c["Key"] for c in page.get("Contents", ()))
            return keys

        return run

    def stream_reader(self, bucket: str, key: str, chunk: int) -> Callable[[], int]:
        client = self.client()

        def run() -> int:
            sink = _Sink()
            client.download_fileobj(bucket, key, sink)
            return sink.n

        return run

    def stream_writer(self, bucket: str, key: str, data: Any, chunk: int) -> Callable[[], None]:
        client = self.client()
        return lambda: client.upload_fileobj(io.BytesIO(data), bucket, key)

    def model_loader(self, bucket: str, keys: list[str], uris: list[str],
                     max_in_flight: int) -> ModelRun:
        """``get_object()["Body"].read()`` of each shard (one thread per shard) +
        ``safetensors.torch.load``."""
        client = self.client(max_in_flight)
        return _shards_with_threads(
            lambda key: client.get_object(Bucket=bucket, Key=key)["Body"].read(), keys,
            max_in_flight, self.name)


class S3TorchConnector(Library):
    """s3torchconnector: its ``S3Client`` (mountpoint-s3 CRT) for bulk gets, ``get_object().read()``
    on a pool of ``max_in_flight`` threads; its datasets. Credentials come from the ``AWS_*``
    environment, set while it is built and while it runs."""

    name = dist = module = "s3torchconnector"

    def getter(self, bucket: str, keys: list[str], uris: list[str], max_in_flight: int) -> Getter:
        from s3torchconnector._s3client import S3Client, S3ClientConfig

        a = self.access
        env = a.aws_env()
        with temporary_environ(env):
            client = S3Client(a.region, endpoint=a.endpoint_url,
                              s3client_config=S3ClientConfig(force_path_style=a.path_style,
                                                             unsigned=a.unsigned))

        def fetch(key: str) -> int:
            return len(client.get_object(bucket, key).read())

        return _thread_getter(fetch, keys, max_in_flight, "s3torch", env=env)

    def _each(self, fn: Callable[[Any, Any], int], items: list[Any],
              max_in_flight: int) -> Getter:
        """``fn(client, item) -> bytes`` for every item on ``max_in_flight`` threads sharing
        its ``S3Client``."""
        client = self._client()
        return _thread_getter(lambda item: fn(client, item), items, max_in_flight, "s3torch",
                              env=self.env())

    def putter(self, bucket: str, keys: list[str], uris: list[str], payloads: list[bytes],
               max_in_flight: int) -> Getter:
        """``put_object(bucket, key)`` (an ``S3Writer``): ``write(data)``, ``close()``, on
        ``max_in_flight`` threads."""
        def one(client: Any, i: int) -> int:
            w = client.put_object(bucket, keys[i])
            w.write(payloads[i])
            w.close()
            return len(payloads[i])

        return self._each(one, list(range(len(keys))), max_in_flight)

    def header(self, bucket: str, keys: list[str], uris: list[str],
               max_in_flight: int) -> Getter:
        """``head_object`` on ``max_in_flight`` threads."""
        return self._each(lambda c, key: int(c.head_object(bucket, key).size), keys,
                          max_in_flight)

    def copier(self, bucket: str, pairs: list[tuple[str, str]], sizes: list[int],
               max_in_flight: int) -> Getter:
        """``copy_object`` (CopyObject) on ``max_in_flight`` threads."""
        size_of = dict(zip((p[1] for p in pairs), sizes, strict=True))

        def one(client: Any, pair: tuple[str, str]) -> int:
            client.copy_object(bucket, pair[0], bucket, pair[1])
            return size_of[pair[1]]

        return self._each(one, pairs, max_in_flight)

    def deleter(self, bucket: str, keys: list[str], uris: list[str], prefix: str,
                max_in_flight: int) -> Getter:
        """``delete_object`` (no bulk delete in its client: one DELETE per key) on
        ``max_in_flight`` threads."""
        def one(client: Any, key: str) -> int:
            client.delete_object(bucket, key)
            return 0

        return self._each(one, keys, max_in_flight)

    def op_lister(self, bucket: str, prefix: str) -> Getter:
        """``list_objects(bucket, prefix)``, every page."""
        client = self._client()
        env = self.env()

        def run(advance: Advance | None) -> tuple[int, int]:
            with temporary_environ(env):
                return sum(len(page.object_info)
                           for page in client.list_objects(bucket, prefix)), 0

        return Getter(run)

    def model_loader(self, bucket: str, keys: list[str], uris: list[str],
                     max_in_flight: int) -> ModelRun:
        """Its ``S3Client.get_object`` (an ``S3Reader``) ``.read()`` of each shard (one thread
        per shard) + ``safetensors.torch.load``."""
        from s3torchconnector._s3client import S3Client, S3ClientConfig

        a = self.access
        env = a.aws_env()
        with temporary_environ(env):
            client = S3Client(a.region, endpoint=a.endpoint_url,
                              s3client_config=S3ClientConfig(force_path_style=a.path_style,
                                                             unsigned=a.unsigned))
        run = _shards_with_threads(lambda key: client.get_object(bucket, key).read(), keys,
                                   max_in_flight, "s3torch")

        def with_env(on_tensor: Callable[[str], None]) -> dict[str, Any]:
            with temporary_environ(env):
                return run(on_tensor)

        return with_env

    def dataset(self, kind: str, uri: str, transform: Callable[[Any], Any]) -> Any:
        import s3torchconnector

        ds = _torch_dataset(s3torchconnector, kind, uri, transform, self.access)
        if kind == "map":
            return ds
        from ..torch.datasets import FlattenSamples

        return FlattenSamples(ds)  # objio's iterable flattens Samples itself

    def env(self, max_in_flight: int | None = None) -> dict[str, str | None]:
        return self.access.aws_env()

    def _config(self) -> Any:
        from s3torchconnector import S3ClientConfig

        return S3ClientConfig(force_path_style=self.access.path_style,
                              unsigned=self.access.unsigned)

    def _client(self) -> Any:
        from s3torchconnector._s3client import S3Client

        a = self.access
        with temporary_environ(self.env()):
            return S3Client(a.region, endpoint=a.endpoint_url, s3client_config=self._config())

    def checkpoint_writer(self, uri: str) -> Any:
        from s3torchconnector import S3Checkpoint

        a = self.access
        with temporary_environ(self.env()):
            return S3Checkpoint(a.region, endpoint=a.endpoint_url,
                                s3client_config=self._config()).writer(uri)

    def checkpoint_reader(self, uri: str) -> Any:
        from s3torchconnector import S3Checkpoint

        a = self.access
        with temporary_environ(self.env()):
            return S3Checkpoint(a.region, endpoint=a.endpoint_url,
                                s3client_config=self._config()).reader(uri)

    def dcp_storage_writer(self, path: str, thread_count: int) -> Any:
        # Its DCP classes take no endpoint: their file system is rebuilt around a client
        # that has one (the same S3Client they would make, plus the endpoint).
        from s3torchconnector.dcp import S3FileSystem, S3StorageWriter

        a = self.access
        with temporary_environ(self.env()):
            writer = S3StorageWriter(a.region, path, s3client_config=self._config(),
                                     thread_count=thread_count)
            writer.fs = S3FileSystem(a.region, s3_client=self._client())  # type: ignore[assignment]
            writer.path = writer.fs.init_path(path)
        return writer

    def dcp_storage_reader(self, path: str, thread_count: int) -> Any:
        from s3torchconnector.dcp import S3FileSystem, S3StorageReader

        a = self.access
        with temporary_environ(self.env()):
            reader = S3StorageReader(a.region, path, s3client_config=self._config())
            reader.fs = S3FileSystem(a.region, s3_client=self._client(),
                                     reader_constructor=reader._reader_constructor)
            reader.path = reader.fs.init_path(path)
        return reader


# s3dlio builds one process-wide S3 client on first use and cannot be re-pointed afterwards.
_s3dlio_bound: tuple[str | None, str | None] | None = None


class S3dlio(Library):
    """s3dlio: its bulk ``get_many_stats(uris, max_in_flight)`` (Rust, tokio), configured through
    ``AWS_*`` variables and ``configure_s3``."""

    name = dist = module = "s3dlio"

    def _bind(self) -> tuple[Any, dict[str, str | None]]:
        """(the s3dlio module configured for this store, the environment it runs with)."""
        global _s3dlio_bound
        a = self.access
        if a.unsigned:
            raise RuntimeError("unsigned (anonymous) requests are not supported with s3dlio here")
        binding = (a.endpoint_url, a.access_key_id)
        if _s3dlio_bound is not None and _s3dlio_bound != binding:
            raise RuntimeError(
                "s3dlio keeps one S3 client per process, already bound to "
                f"{_s3dlio_bound[0] or 'AWS'}; run the benchmark in a fresh process")
        env = {**a.aws_env(), "AWS_ENDPOINT_URL": a.endpoint_url}
        with temporary_environ(env):
            import s3dlio

            s3dlio.configure_s3(endpoint_url=a.endpoint_url, region=a.region)
        _s3dlio_bound = binding
        return s3dlio, env

    def _call(self, fn: Callable[[Any], tuple[int, int]]) -> Getter:
        """A run of ``fn(s3dlio) -> (objects, bytes)`` with its environment set."""
        s3dlio, env = self._bind()

        def run(advance: Advance | None) -> tuple[int, int]:
            with temporary_environ(env):
                count, nbytes = fn(s3dlio)
            if advance is not None:
                advance(int(count), int(nbytes))
            return int(count), int(nbytes)

        return Getter(run)

    def getter(self, bucket: str, keys: list[str], uris: list[str], max_in_flight: int) -> Getter:
        return self._call(lambda m: m.get_many_stats(uris, max_in_flight))

    def putter(self, bucket: str, keys: list[str], uris: list[str], payloads: list[bytes],
               max_in_flight: int) -> Getter:
        """``put_many([(uri, data), ...], max_in_flight)`` (Rust, zero-copy)."""
        total = sum(len(p) for p in payloads)

        def put(m: Any) -> tuple[int, int]:
            m.put_many(list(zip(uris, payloads, strict=True)), max_in_flight)
            return len(uris), total

        return self._call(put)

    def header(self, bucket: str, keys: list[str], uris: list[str],
               max_in_flight: int) -> Getter:
        """``stat_many_async(uris)`` (its bulk stat; it takes no in-flight limit)."""
        def stat(m: Any) -> tuple[int, int]:
            async def main() -> list[Any]:
                return list(await m.stat_many_async(uris))

            metas = asyncio.run(main())
            return len(metas), sum(int(_field(x, "size")) for x in metas)

        return self._call(stat)

    def deleter(self, bucket: str, keys: list[str], uris: list[str], prefix: str,
                max_in_flight: int) -> Getter:
        """``delete(s3://bucket/prefix/, recursive=True)``: its bulk delete (a listing, then
        one DELETE per object, several in flight)."""
        def delete(m: Any) -> tuple[int, int]:
            m.delete(f"s3://{bucket}/{prefix}", recursive=True)
            return len(keys), 0

        return self._call(delete)

    def op_lister(self, bucket: str, prefix: str) -> Getter:
        """``list(s3://bucket/prefix, recursive=True)``."""
        return self._call(lambda m: (len(m.list(f"s3://{bucket}/{prefix}", recursive=True)), 0))

    def generator(self, prefix_uri: str, num: int, template: str, size: int,
                  object_type: str, max_in_flight: int) -> Getter:
        """``put(prefix, num, template, max_in_flight, size, False, object_type)``: its
        generation of typed objects (``npz``, ``tfrecord``: one record; ``raw``), uploaded
        as they are made."""
        def put(m: Any) -> tuple[int, int]:
            m.put(prefix_uri, num, template, max_in_flight, size, False, object_type.lower())
            return num, num * size

        return self._call(put)


def _field(meta: Any, name: str) -> Any:
    """``meta[name]`` or ``meta.name`` (s3dlio returns dicts or objects by version)."""
    return meta[name] if isinstance(meta, dict) else getattr(meta, name)


class RunaiModelStreamer(Library):
    """Run:ai Model Streamer (``runai-model-streamer`` + ``runai-model-streamer-s3``): its
    ``SafetensorsStreamer`` on the shards' s3:// URIs. It reads its settings from the
    environment, set while it is built and while it runs: the credentials, ``AWS_ENDPOINT_URL``,
    ``RUNAI_STREAMER_S3_USE_VIRTUAL_ADDRESSING=0`` (path-style, for S3-compatible servers),
    ``AWS_EC2_METADATA_DISABLED=true``, ``RUNAI_STREAMER_CONCURRENCY`` (reader threads) and
    ``RUNAI_STREAMER_CHUNK_BYTESIZE`` (bytes per read). Both are left at its own defaults for
    object storage, 8 threads and 8 MiB (:attr:`concurrency`, :attr:`chunk_bytes`): on the
    2-core benchmark machine 4, 16 and 32 threads and 32 MiB reads were all slower (0.18-0.38
    GiB/s against 0.45 for 8 x 8 MiB, 2 GiB model, embedded server). ``concurrency = None``
    gives it the benchmark's ``max_in_flight``."""

    name = dist = "runai-model-streamer"
    module = "runai_model_streamer"
    concurrency: int | None = 8
    chunk_bytes = 8 * 1024 * 1024

    @classmethod
    def installed(cls) -> bool:
        return is_installed(cls.module) and installed_version("runai-model-streamer-s3") is not None

    def env(self, max_in_flight: int | None = None) -> dict[str, str | None]:
        a = self.access
        return {**a.aws_env(), "AWS_ENDPOINT_URL": a.endpoint_url,
                "RUNAI_STREAMER_S3_USE_VIRTUAL_ADDRESSING": "0" if a.path_style else "1",
                "AWS_EC2_METADATA_DISABLED": "true",
                "RUNAI_STREAMER_CONCURRENCY": str(self.concurrency or max_in_flight or 8),
                "RUNAI_STREAMER_CHUNK_BYTESIZE": str(self.chunk_bytes),
                "RUNAI_STREAMER_LOG_LEVEL": "WARNING"}

    def model_loader(self, bucket: str, keys: list[str], uris: list[str],
                     max_in_flight: int) -> ModelRun:
        env = self.env(max_in_flight)
        with temporary_environ(env):
            from runai_model_streamer import SafetensorsStreamer

        def run(on_tensor: Callable[[str], None]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            with temporary_environ(env), SafetensorsStreamer() as streamer:
                streamer.stream_files(uris)
                for name, tensor in streamer.get_tensors():
                    on_tensor(name)
                    out[name] = tensor
            return out

        return run


LIBRARIES: dict[str, type[Library]] = {
    cls.name: cls for cls in (Objio, Obstore, Boto3, S3TorchConnector, S3dlio, RunaiModelStreamer)
}
"""Every library the benchmarks know, by report name."""

PEERS: tuple[str, ...] = ("obstore", "boto3", "s3torchconnector", "s3dlio")
"""Peer libraries the objects benchmark (``compare``) can run, in the order they run within an
epoch."""


def library(name: str, access: Access) -> Library:
    """The adapter of library ``name`` for ``access``. Raises: ValueError (unknown name)."""
    try:
        return LIBRARIES[name](access)
    except KeyError:
        raise ValueError(f"unknown library {name!r}; choose from {', '.join(LIBRARIES)}") from None
