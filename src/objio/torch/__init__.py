"""PyTorch-facing classes with s3torchconnector's names (``S3Reader``, ``S3ReaderConstructor``,
``S3Writer``), built on :mod:`objio.io`.

The readers, the constructors and the writer import and work without torch installed; only
the datasets and checkpoint helpers need torch.
"""

from __future__ import annotations

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

__all__ = [
    "S3Reader", "S3ReaderConstructor", "S3Writer", "SequentialS3Reader", "RangedS3Reader",
    "DCPOptimizedS3Reader", "DCPOptimizedConstructor", "S3ReaderConstructorProtocol",
    "DCPS3ReaderConstructorProtocol", "DEFAULT_BUFFER_SIZE", "DEFAULT_MAX_GAP_SIZE",
]
