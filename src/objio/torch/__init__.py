"""PyTorch-facing classes with s3torchconnector's names, built on :mod:`objio.io`: a drop-in
for ``from s3torchconnector import ...`` (everything its ``__init__`` exports: the datasets,
``S3Reader``, ``S3ReaderConstructor``, ``S3Writer``, ``S3Checkpoint``, ``S3Exception``,
``S3ClientConfig``, ``__version__``), plus ``S3Client`` with its direct-use methods, DCP's
``S3StorageWriter``/``S3StorageReader`` (:mod:`objio.torch.dcp`) and Lightning's
``S3LightningCheckpoint`` (:mod:`objio.torch.lightning`).

The readers, the constructors, the writer and the client import and work without torch
installed; the datasets, the checkpoints and the Lightning plugin load on first use.
"""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..errors import ObjectStoreError as S3Exception
from ._reader import (
    DEFAULT_BUFFER_SIZE,
    DEFAULT_MAX_GAP_SIZE,
    DCPOptimizedConstructor,
    DCPOptimizedS3Reader,
    DCPS3ReaderConstructorProtocol,
    RangedS3Reader,
    S3Reader,
    S3ReaderConstructor,
    S3ReaderConstructorProtocol,
    SequentialS3Reader,
)
from ._writer import S3Writer
from .client import S3Client
from .config import S3ClientConfig

_NEED_TORCH = {"S3MapDataset": "datasets", "S3IterableDataset": "datasets",
               "PrefetchedS3Reader": "datasets", "FlattenSamples": "datasets",
               "S3Checkpoint": "checkpoint", "VerifyingS3Reader": "checkpoint",
               "S3StorageWriter": "dcp", "S3StorageReader": "dcp", "S3FileSystem": "dcp",
               "S3PrefixStrategyBase": "dcp", "DefaultPrefixStrategy": "dcp",
               "NumericPrefixStrategy": "dcp", "BinaryPrefixStrategy": "dcp",
               "HexPrefixStrategy": "dcp", "RoundRobinPrefixStrategy": "dcp",
               "S3LightningCheckpoint": "lightning"}


def __getattr__(name: str) -> Any:
    """The datasets, checkpoints (DCP) and the Lightning plugin load on first use (they import
    torch, Lightning): ``from objio.torch import S3MapDataset, S3Checkpoint, S3StorageWriter``
    works with torch installed, while the readers and the writer never need torch."""
    module = _NEED_TORCH.get(name)
    if module is None:
        raise AttributeError(f"module 'objio.torch' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "S3MapDataset", "S3IterableDataset", "S3ClientConfig", "S3Client", "S3Exception", "__version__",
    "PrefetchedS3Reader",
    "FlattenSamples", "S3Checkpoint", "VerifyingS3Reader", "S3StorageWriter", "S3StorageReader",
    "S3FileSystem", "S3PrefixStrategyBase", "DefaultPrefixStrategy", "NumericPrefixStrategy",
    "BinaryPrefixStrategy", "HexPrefixStrategy", "RoundRobinPrefixStrategy",
    "S3LightningCheckpoint",
    "S3Reader", "S3ReaderConstructor", "S3Writer", "SequentialS3Reader", "RangedS3Reader",
    "DCPOptimizedS3Reader", "DCPOptimizedConstructor", "S3ReaderConstructorProtocol",
    "DCPS3ReaderConstructorProtocol", "DEFAULT_BUFFER_SIZE", "DEFAULT_MAX_GAP_SIZE",
]
