"""What to generate: :class:`GenSpec` (a DLIO-style dataset) and the MLPerf Storage workload
presets :data:`WORKLOADS`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..formats import JPEG_QUALITY, FileOptions, check_options, normalize_format
from ..formats._common import _check_stdev


@dataclass(frozen=True)
class GenSpec:
    """What to generate: a DLIO-style dataset.

    Attributes:
        format: one of :data:`objio.formats.FORMATS` (``npz``, ``tfrecord``,
            ``hdf5``, ``jpeg``, ``png``, ``parquet``, ``raw``).
        num_files: training files (DLIO ``num_files_train``), ``>= 0``.
        samples_per_file: samples per file (``num_samples_per_file``), ``>= 1``;
            must be 1 for jpeg / png.
        record_size: bytes per sample (``record_length_bytes``), ``>= 1``.
            Each sample is a ``dim x dim`` ``uint8`` image with ``dim =
            int(sqrt(record_size))`` (raw and parquet: exactly
            ``record_size`` bytes).
        record_size_stdev: standard deviation of the sample size in bytes
            (``record_length_bytes_stdev``), ``>= 0``: each file draws its own
            sample shape (see :func:`objio.formats.record_dims`).
        seed: dataset seed, ``0 <= seed < 2**64``.
        num_files_eval: validation files under ``valid/`` (``num_files_eval``), ``>= 0``.
        file_prefix: file name prefix (DLIO ``file_prefix``, ``img``).
        num_subfolders_train: spread train files over this many subfolders
            when ``> 1`` (DLIO ``num_subfolders_train``).
        num_subfolders_eval: the same for ``valid/``.
        compression: npz ``"zip"`` (savez_compressed); hdf5 ``"gzip"`` or
            ``"lzf"``; parquet any pyarrow codec; ``None`` for none.
        compression_level: gzip level for hdf5 (DLIO's default 4), zlib level
            for png (default 0, see :func:`objio.formats.png_file`).
        chunks: hdf5 chunking: ``True`` (h5py automatic) or a chunk shape.
        quality: JPEG quality, 1-100.
        columns: Parquet columns ``[(name, dtype, size), ...]`` (see
            :func:`objio.formats.parquet_file`); ``None`` for ``data`` +
            ``label``.
        row_group_size: Parquet rows per row group, or ``None``.
    """

    format: str = "npz"
    num_files: int = 8
    samples_per_file: int = 1
    record_size: int = 64 * 1024
    record_size_stdev: float = 0
    seed: int = 0
    num_files_eval: int = 0
    file_prefix: str = "img"
    num_subfolders_train: int = 0
    num_subfolders_eval: int = 0
    compression: str | None = None
    compression_level: int | None = None
    chunks: bool | tuple[int, ...] | None = None
    quality: int = JPEG_QUALITY
    columns: tuple[tuple[str, str, int | None], ...] | None = None
    row_group_size: int | None = None

    def validated(self) -> GenSpec:
        """This spec with the format name normalised, after checking every field.

        Raises:
            ValueError: unknown format (the message lists them), a negative
                count, ``record_size < 1``, a bad option for the format.
        """
        fmt = normalize_format(self.format)

        def count(name: str, value: object, minimum: int) -> int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
            if value < minimum:
                raise ValueError(f"{name} must be >= {minimum}, got {value}")
            return value

        count("num_files", self.num_files, 0)
        count("num_files_eval", self.num_files_eval, 0)
        count("num_subfolders_train", self.num_subfolders_train, 0)
        count("num_subfolders_eval", self.num_subfolders_eval, 0)
        samples = count("samples_per_file", self.samples_per_file, 1)
        if isinstance(self.record_size, bool) or not isinstance(self.record_size, int) or self.record_size < 1:
            raise ValueError(
                f"record_size must be an int >= 1 (bytes per sample; each sample is a dim x dim uint8 "
                f"image with dim = int(sqrt(record_size))), got {self.record_size!r}"
            )
        _check_stdev(self.record_size_stdev)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 1 << 64:
            raise ValueError(f"seed must be an int, 0 <= seed < 2**64, got {self.seed!r}")
        if not isinstance(self.file_prefix, str) or not self.file_prefix or "/" in self.file_prefix:
            raise ValueError(f"file_prefix must be a non-empty name without '/', got {self.file_prefix!r}")
        options = check_options(fmt, samples, self.record_size, self.options)
        return dataclasses.replace(
            self,
            format=fmt,
            columns=None if options.columns is None else tuple(options.columns),
            chunks=tuple(self.chunks) if isinstance(self.chunks, (list, tuple)) else self.chunks,
        )

    @property
    def options(self) -> FileOptions:
        """The per-format options of the files (see :class:`objio.formats.FileOptions`)."""
        return FileOptions(compression=self.compression, compression_level=self.compression_level,
                           chunks=self.chunks, quality=self.quality, columns=self.columns,
                           row_group_size=self.row_group_size)

    @property
    def extension(self) -> str:
        """File extension (without the dot): the format name, as DLIO names files."""
        return normalize_format(self.format)

    @property
    def total_files(self) -> int:
        """Data files in both splits (index files not counted)."""
        return self.num_files + self.num_files_eval

    def scaled(self, scale: float) -> GenSpec:
        """This spec with ``num_files`` and ``num_files_eval`` multiplied by ``scale``.

        Counts are rounded to the nearest int, and a non-zero count stays at
        least 1.

        Raises:
            ValueError: ``scale`` not in ``(0, 1]``.
        """
        scale = check_scale(scale)

        def apply(n: int) -> int:
            return n if n <= 0 else max(1, int(n * scale + 0.5))  # negative: left to validated()

        return dataclasses.replace(self, num_files=apply(self.num_files), num_files_eval=apply(self.num_files_eval))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly fields."""
        out = dataclasses.asdict(self)
        if out["columns"] is not None:
            out["columns"] = [list(c) for c in out["columns"]]
        if isinstance(out["chunks"], tuple):
            out["chunks"] = list(out["chunks"])
        return out


def check_scale(scale: object) -> float:
    """``scale`` as a float if ``0 < scale <= 1``, else ValueError."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale <= 1:
        raise ValueError(f"scale must be a number with 0 < scale <= 1, got {scale!r}")
    return float(scale)


WORKLOADS: dict[str, GenSpec] = {
    # dlio_benchmark/configs/workload/unet3d_h100.yaml (record_length_bytes_resize
    # 2097152 only affects DLIO's reader, not the data).
    "unet3d": GenSpec(
        format="npz", num_files=168, samples_per_file=1, record_size=146_600_628, record_size_stdev=68_341_808
    ),
    # dlio_benchmark/configs/workload/resnet50_h100.yaml (record_length_bytes 114660.07).
    "resnet50": GenSpec(format="tfrecord", num_files=1024, samples_per_file=1251, record_size=114_660),
    # dlio_benchmark/configs/workload/cosmoflow_h100.yaml.
    "cosmoflow": GenSpec(
        format="tfrecord", num_files=524_288, samples_per_file=1, record_size=2_828_486, record_size_stdev=71_311
    ),
}
"""DLIO's MLPerf Storage H100 workloads (``dlio_benchmark/configs/workload/*_h100.yaml``)."""


def workload_spec(name: str, *, scale: float = 1.0, **overrides: Any) -> GenSpec:
    """The :class:`GenSpec` of a preset, with ``overrides`` applied, then ``scale``.

    Args:
        name: a key of :data:`WORKLOADS` (``unet3d``, ``resnet50``, ``cosmoflow``), any case.
        scale: multiply the file counts by this, ``0 < scale <= 1``.
        overrides: :class:`GenSpec` fields to replace (``seed=3``, ...).

    Raises:
        ValueError: unknown workload (the message lists them), scale out of
            range, unknown field, or an invalid resulting spec.
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in WORKLOADS:
        raise ValueError(f"workload must be one of {', '.join(WORKLOADS)}, got {name!r}")
    fields = {f.name for f in dataclasses.fields(GenSpec)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown GenSpec field(s): {', '.join(unknown)}")
    return dataclasses.replace(WORKLOADS[key], **overrides).scaled(scale).validated()
