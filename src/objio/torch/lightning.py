"""``S3LightningCheckpoint``: a Lightning ``CheckpointIO`` that saves and loads checkpoints on
object storage (s3torchconnector's ``s3torchconnector.lightning.S3LightningCheckpoint``; change
the import to ``objio.torch.lightning``). Needs the ``lightning`` extra (``pip install
'objio[lightning]'``).

::

    from lightning import Trainer
    from lightning.pytorch.callbacks import ModelCheckpoint
    from objio.torch.lightning import S3LightningCheckpoint

    trainer = Trainer(default_root_dir="s3://bucket/run-1", max_epochs=10,
                      plugins=[S3LightningCheckpoint("us-east-1")],
                      callbacks=[ModelCheckpoint(save_top_k=2, monitor="val_loss")])
    trainer.fit(model)
    trainer.fit(model, ckpt_path="s3://bucket/run-1/checkpoints/epoch=9-step=100.ckpt")

Each checkpoint is one object written with :class:`objio.torch.S3Checkpoint`: streamed as a
multipart upload (bounded memory, no serialized copy), with CRC32C checksums checked by the
store and verified on load (``verify=False`` skips), atomic (a failed save leaves the previous
object, or none, and no multipart upload). It works inside Lightning's
``AsyncCheckpointIO(S3LightningCheckpoint(...))``, which saves in a background thread.

Paths are ``s3://`` URI strings only, as s3torchconnector's: anything else (a ``pathlib.Path``,
a local path, ``file://``) raises TypeError / ValueError before anything is read, written or
deleted; local checkpoints belong to Lightning's own ``TorchCheckpointIO``.

Lightning itself lists checkpoint directories and writes logs through fsspec; when s3fs is
not installed, fsspec finds objio for ``s3://`` by itself (:mod:`objio.torch._fsspec`, which
also makes Lightning's default ``TorchCheckpointIO`` work on ``s3://``), and creating an
``S3LightningCheckpoint`` points that handler at this plugin's client.
"""

from __future__ import annotations

from typing import Any, cast

try:
    import lightning
    from lightning.pytorch.plugins.io import CheckpointIO
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("objio.torch.lightning needs Lightning: pip install 'objio[lightning]'") \
        from e
import torch

from . import _fsspec
from .checkpoint import S3Checkpoint

__all__ = ["S3LightningCheckpoint"]


def _lightning_before(version: str) -> bool:
    def parts(v: str) -> tuple[int, ...]:
        out = []
        for p in v.split(".")[:3]:
            digits = "".join(ch for ch in p if ch.isdigit())
            out.append(int(digits or 0))
        return tuple(out)

    return parts(lightning.__version__) < parts(version)


class S3LightningCheckpoint(CheckpointIO):  # type: ignore[misc]
    """A Lightning ``CheckpointIO`` for ``s3://`` checkpoint paths.

    Args:
        region: the bucket's region (None: the environment / us-east-1).
        s3client_config: an :class:`objio.torch.S3ClientConfig`, an :class:`objio.ClientConfig`
            (endpoint and credentials included) or None.
        endpoint: an S3 endpoint URL (None: the environment / AWS).
        verify: check each checkpoint against its recorded CRC32C when loading (keyword-only,
            default True).

    Raises:
        ValueError: an invalid setting.
    """

    def __init__(self, region: str | None = None, s3client_config: Any = None,
                 endpoint: str | None = None, *, verify: bool = True) -> None:
        super().__init__()
        self.region = region
        self._checkpoint = S3Checkpoint(region, endpoint, s3client_config, verify=verify)
        _fsspec.register(self._checkpoint.client)

    @property
    def checkpoint(self) -> S3Checkpoint:
        """The :class:`S3Checkpoint` that reads and writes the objects."""
        return self._checkpoint

    @staticmethod
    def _path(path: Any) -> str:
        """``path`` if it is an ``s3://`` URI string. Raises TypeError (not a str, e.g. a
        ``pathlib.Path``) or ValueError (not ``s3://``), in s3torchconnector's words."""
        if not isinstance(path, str):
            raise TypeError(f"{type(path).__name__!r} is not a supported type for 'path'. Must "
                            "be a string formatted as an S3 uri (s3://bucket/key.ckpt); local "
                            "paths belong to Lightning's own TorchCheckpointIO")
        if not path.startswith("s3://"):
            raise ValueError(f"Only s3:// URIs are supported, got {path!r} (local paths belong "
                             "to Lightning's own TorchCheckpointIO)")
        return path

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any,
                        storage_options: Any = None) -> None:
        """``torch.save(checkpoint)`` streamed to ``path`` (``s3://bucket/key``).

        Raises:
            FileNotFoundError: no such bucket, before anything is serialized.
            PermissionError: access denied.
            TypeError: ``path`` not a string.
            ValueError: not an ``s3://`` object URI.
        """
        uri = self._path(path)
        with self._checkpoint.writer(uri) as writer:
            torch.save(checkpoint, cast(Any, writer))

    def load_checkpoint(self, path: Any, map_location: Any = None,
                        weights_only: bool | None = None) -> dict[str, Any]:
        """``torch.load`` of the checkpoint at ``path``, verified against its CRC32C.
        ``weights_only=None`` is False before Lightning 2.6 (as Lightning did) and torch's
        default from 2.6 on.

        Raises:
            FileNotFoundError: no such checkpoint, naming the path.
            PermissionError: access denied.
            IntegrityError: the bytes do not match the recorded CRC32C
                (:class:`objio.IntegrityError`).
            TypeError: ``path`` not a string.
            ValueError: not an ``s3://`` object URI.
        """
        uri = self._path(path)
        if weights_only is None and _lightning_before("2.6.0"):
            weights_only = False
        with self._checkpoint.reader(uri) as reader:
            return cast(dict[str, Any], torch.load(cast(Any, reader), map_location=map_location,
                                                   weights_only=weights_only))

    def remove_checkpoint(self, path: Any) -> None:
        """Delete the checkpoint object at ``path`` (a missing object is not an error, as
        S3's DeleteObject).

        Raises:
            TypeError: ``path`` not a string.
            ValueError: not an ``s3://`` object URI (never a local file, never a whole
                prefix).
            PermissionError: access denied.
        """
        obj = self._checkpoint._obj(self._path(path), "remove_checkpoint")
        self._checkpoint.client.delete(str(obj))

    def teardown(self) -> None:
        """Nothing to release (connections belong to objio's engine)."""
