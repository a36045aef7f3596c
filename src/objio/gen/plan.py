"""Where each file of a dataset goes and how big it is, without generating anything (DLIO's
folder layout and file names, see :mod:`objio.gen`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..formats import expected_file_size, get_format, record_dims_many, record_sizes_many
from ..uri import parse_uri
from .spec import GenSpec

_DIMS_BLOCK = 4096  # files whose shapes are drawn together


@dataclass(frozen=True, slots=True)
class PlannedFile:
    """One file of a dataset.

    Attributes:
        uri: where it goes (``s3://bucket/prefix/train/img_0_of_8.npz``).
        size: its size in bytes (exact if ``exact``, else an estimate).
        index: its file number, which with the seed fixes its content.
        split: ``"train"`` or ``"valid"``.
        dims: sample shape ``(dim1, dim2)`` (raw / parquet: ``(1, sample bytes)``).
        sample_bytes: bytes per sample (``dim1 * dim2``; raw / parquet: the
            file's drawn sample size).
        index_uri: the TFRecord index object written beside it, else ``None``.
        exact: whether ``size`` is exact.
    """

    uri: str
    size: int
    index: int
    split: str
    dims: tuple[int, int]
    sample_bytes: int
    index_uri: str | None
    exact: bool


def _pad(n: int, total: int) -> str:
    return str(n).rjust(len(str(total)), "0")


def iter_plan(spec: GenSpec, prefix_uri: Any) -> Iterator[PlannedFile]:
    """Yield the files of the dataset, train then valid, lazily (see :func:`plan`)."""
    spec = spec.validated()
    obj = parse_uri(prefix_uri)
    fmt = spec.format
    shaped = get_format(fmt).shaped
    splits = (
        ("train", spec.num_files, spec.num_subfolders_train, 0),
        ("valid", spec.num_files_eval, spec.num_subfolders_eval, spec.num_files),
    )
    for split, count, subfolders, first in splits:
        for block in range(0, count, _DIMS_BLOCK):
            n = min(_DIMS_BLOCK, count - block)
            if shaped:
                shapes = record_dims_many(
                    spec.record_size, spec.record_size_stdev, seed=spec.seed, start=first + block, count=n
                )
            else:
                sizes = record_sizes_many(
                    spec.record_size, spec.record_size_stdev, seed=spec.seed, start=first + block, count=n
                )
                shapes = [(1, s) for s in sizes]
            for k in range(n):
                i = block + k
                name = f"{spec.file_prefix}_{_pad(i, count)}_of_{count}.{fmt}"
                folder = f"{split}/{_pad(i % subfolders, subfolders)}/" if subfolders > 1 else f"{split}/"
                dims = shapes[k]
                sample_bytes = dims[0] * dims[1]
                size, exact = expected_file_size(
                    fmt,
                    dims,
                    spec.samples_per_file,
                    record_size=sample_bytes,
                    compression=spec.compression,
                    columns=spec.columns,
                )
                index_uri = str(obj.joinpath(f"index/{split}/{name}.idx")) if get_format(fmt).index else None
                yield PlannedFile(
                    uri=str(obj.joinpath(folder + name)),
                    size=size,
                    index=first + i,
                    split=split,
                    dims=dims,
                    sample_bytes=sample_bytes,
                    index_uri=index_uri,
                    exact=exact,
                )


def plan(spec: GenSpec, prefix_uri: Any) -> list[PlannedFile]:
    """Every file :func:`generate_dataset` would write for ``spec`` under ``prefix_uri``.

    Nothing is generated or contacted.  For large datasets prefer
    :func:`iter_plan` or :func:`plan_summary` (a cosmoflow preset is 524,288 files).

    Raises:
        ValueError: invalid spec or URI.
    """
    return list(iter_plan(spec, prefix_uri))


def plan_summary(spec: GenSpec, prefix_uri: Any, *, first: int = 5) -> dict[str, Any]:
    """Counts and sizes of a planned dataset without listing it: for ``--dry-run``.

    Returns:
        ``{"uri", "format", "files", "files_train", "files_eval",
        "index_files", "bytes", "bytes_exact", "min_file_bytes",
        "max_file_bytes", "first_files": [{"uri", "size", "dims"}, ...],
        "spec"}``; ``bytes`` is the data files' total (an estimate unless
        ``bytes_exact``).
    """
    spec = spec.validated()
    total = 0
    exact = True
    smallest: int | None = None
    largest = 0
    head: list[dict[str, Any]] = []
    for p in iter_plan(spec, prefix_uri):
        total += p.size
        exact = exact and p.exact
        smallest = p.size if smallest is None else min(smallest, p.size)
        largest = max(largest, p.size)
        if len(head) < first:
            head.append({"uri": p.uri, "size": p.size, "dims": list(p.dims)})
    return {
        "uri": str(parse_uri(prefix_uri)),
        "format": spec.format,
        "files": spec.total_files,
        "files_train": spec.num_files,
        "files_eval": spec.num_files_eval,
        "index_files": spec.total_files if get_format(spec.format).index else 0,
        "bytes": total,
        "bytes_exact": exact,
        "min_file_bytes": smallest or 0,
        "max_file_bytes": largest,
        "first_files": head,
        "spec": spec.to_dict(),
    }
