"""The synthetic-file writers, under their first name.

``objio.datagen`` was where the writers lived before each format became one module of
:mod:`objio.formats` (which holds the readers too). The names below are the same objects; new
code imports them from :mod:`objio.formats`.
"""

from __future__ import annotations

from .formats import (  # noqa: F401 - re-exported
    DEFAULT_PARQUET_COLUMNS,
    FORMATS,
    JPEG_QUALITY,
    OBJECT_TYPES,
    PARQUET_DTYPES,
    build_file,
    dataset_file,
    expected_file_size,
    generate,
    generate_hdf5,
    generate_npz,
    generate_tfrecord,
    hdf5_file,
    jpeg_file,
    normalize_format,
    normalize_object_type,
    normalize_parquet_columns,
    npz_file,
    parquet_file,
    parquet_row_size,
    png_file,
    random_bytes,
    record_dims,
    record_dims_many,
    record_sizes_many,
    tfrecord_file,
    tfrecord_index,
)

__all__ = [
    "DEFAULT_PARQUET_COLUMNS",
    "FORMATS",
    "JPEG_QUALITY",
    "OBJECT_TYPES",
    "PARQUET_DTYPES",
    "build_file",
    "dataset_file",
    "expected_file_size",
    "generate",
    "generate_hdf5",
    "generate_npz",
    "generate_tfrecord",
    "hdf5_file",
    "jpeg_file",
    "normalize_format",
    "normalize_object_type",
    "normalize_parquet_columns",
    "npz_file",
    "parquet_file",
    "parquet_row_size",
    "png_file",
    "random_bytes",
    "record_dims",
    "record_dims_many",
    "record_sizes_many",
    "tfrecord_file",
    "tfrecord_index",
]
