"""``objio gen``: synthetic training datasets in DLIO's folder layout, written to object storage.

A dataset is described by a :class:`GenSpec` (format, file counts, samples
per file, bytes per sample, seed, ...) or taken from a workload preset in
:data:`WORKLOADS` (DLIO's H100 configurations of MLPerf Storage).
:func:`plan` lists the files without writing anything; :func:`generate_dataset`
generates and uploads them, generation (in the engine's worker threads)
overlapping with upload, with at most ``max_in_flight`` files in memory.

Layout and naming follow DLIO (``dlio_benchmark/data_generator/data_generator.py``,
``DataGenerator.generate``), under the given prefix (DLIO's ``data_folder``)::

    train/{file_prefix}_{i}_of_{num_files}.{format}        i = 0 .. num_files - 1
    valid/{file_prefix}_{j}_of_{num_files_eval}.{format}   j = 0 .. num_files_eval - 1
    index/train/{file name}.idx                             TFRecord only (DALI index)
    index/valid/{file name}.idx

``i`` is zero-padded to the number of digits of the file count
(``img_007_of_168.npz``), ``file_prefix`` is ``img`` and the extension is the
format name.  With ``num_subfolders_train = S > 1`` file ``i`` goes to
``train/{i % S}/`` (the folder number zero-padded to the digits of ``S``), the
same for ``valid``.  The TFRecord index files (``tf_generator.py``,
``create_index_file``) hold one ``"offset length"`` line per record and are
what DLIO's DALI reader (``reader/dali_tfrecord_reader.py``) opens.

Each file's content is fixed by ``(seed, file number)``: train file ``i`` is
file number ``i``, valid file ``j`` is ``num_files + j`` (DLIO's order), so no
two files of a dataset are alike and any file can be regenerated alone.
Sample shapes follow DLIO: ``dim = int(sqrt(record_size))``; with a
``record_size_stdev`` each file draws its own ``(dim1, dim2)`` (see
:func:`objio.datagen.record_dims`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from . import datagen
from .config import GiB, MiB, format_size, parse_size
from .uri import ObjectURI, parse_uri

__all__ = [
    "GenSpec",
    "PlannedFile",
    "WORKLOADS",
    "configure_parser",
    "generate_dataset",
    "iter_plan",
    "measure_generation",
    "plan",
    "plan_summary",
    "run_from_args",
    "workload_spec",
]

_MEMORY_BUDGET = 1 * GiB  # what the automatic max_in_flight aims to keep in memory
_MAX_IN_FLIGHT = 32
_DIMS_BLOCK = 4096  # files whose shapes are drawn together


@dataclass(frozen=True)
class GenSpec:
    """What to generate: a DLIO-style dataset.

    Attributes:
        format: one of :data:`objio.datagen.FORMATS` (``npz``, ``tfrecord``,
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
            sample shape (see :func:`objio.datagen.record_dims`).
        seed: dataset seed, ``0 <= seed < 2**64``.
        num_files_eval: validation files under ``valid/`` (``num_files_eval``), ``>= 0``.
        file_prefix: file name prefix (DLIO ``file_prefix``, ``img``).
        num_subfolders_train: spread train files over this many subfolders
            when ``> 1`` (DLIO ``num_subfolders_train``).
        num_subfolders_eval: the same for ``valid/``.
        compression: npz ``"zip"`` (savez_compressed); hdf5 ``"gzip"`` or
            ``"lzf"``; parquet any pyarrow codec; ``None`` for none.
        compression_level: gzip level for hdf5 (DLIO's default 4), zlib level
            for png (default 0, see :func:`objio.datagen.png_file`).
        chunks: hdf5 chunking: ``True`` (h5py automatic) or a chunk shape.
        quality: JPEG quality, 1-100.
        columns: Parquet columns ``[(name, dtype, size), ...]`` (see
            :func:`objio.datagen.parquet_file`); ``None`` for ``data`` +
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
    quality: int = datagen.JPEG_QUALITY
    columns: tuple[tuple[str, str, int | None], ...] | None = None
    row_group_size: int | None = None

    def validated(self) -> GenSpec:
        """This spec with the format name normalised, after checking every field.

        Raises:
            ValueError: unknown format (the message lists them), a negative
                count, ``record_size < 1``, a bad option for the format.
        """
        fmt = datagen.normalize_format(self.format)

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
        datagen._check_stdev(self.record_size_stdev)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 1 << 64:
            raise ValueError(f"seed must be an int, 0 <= seed < 2**64, got {self.seed!r}")
        if not isinstance(self.file_prefix, str) or not self.file_prefix or "/" in self.file_prefix:
            raise ValueError(f"file_prefix must be a non-empty name without '/', got {self.file_prefix!r}")
        datagen._check_options(fmt, samples, self.compression if fmt != "parquet" else None, self.chunks)
        if fmt != "png" and fmt != "hdf5" and self.compression_level is not None:
            raise ValueError(f"compression_level applies to hdf5 (gzip) and png only, not {fmt!r}")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"quality must be 1..100, got {self.quality!r}")
        if fmt == "parquet":
            columns = datagen.normalize_parquet_columns(self.columns, self.record_size)
            if self.row_group_size is not None:
                count("row_group_size", self.row_group_size, 1)
            if self.compression is not None:
                pa, _ = datagen._pyarrow()
                try:
                    available = isinstance(self.compression, str) and pa.Codec.is_available(self.compression)
                except ValueError:  # pyarrow: not a codec name at all
                    available = False
                if not available:
                    raise ValueError(
                        f"compression for format 'parquet' must be a pyarrow codec such as snappy, "
                        f"zstd, gzip, lz4 or brotli, got {self.compression!r}"
                    )
        elif self.columns is not None or self.row_group_size is not None:
            raise ValueError(f"columns and row_group_size apply to format 'parquet' only, not {fmt!r}")
        else:
            columns = None
        if fmt in ("jpeg", "png"):
            side = max(datagen.record_dims(self.record_size))
            limit = datagen._JPEG_MAX_SIDE if fmt == "jpeg" else datagen._PNG_MAX_SIDE
            if side > limit:
                raise ValueError(f"record_size {self.record_size} gives {side}-pixel {fmt} images; the limit is {limit}")
        return dataclasses.replace(
            self,
            format=fmt,
            columns=None if self.columns is None else tuple(columns or ()),
            chunks=tuple(self.chunks) if isinstance(self.chunks, (list, tuple)) else self.chunks,
        )

    @property
    def extension(self) -> str:
        """File extension (without the dot): the format name, as DLIO names files."""
        return datagen.normalize_format(self.format)

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


# --------------------------------------------------------------------------
# plan
# --------------------------------------------------------------------------


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


def _base_key(obj: ObjectURI) -> str:
    key = obj.key
    if key and not key.endswith("/"):
        key += "/"
    return key


def _pad(n: int, total: int) -> str:
    return str(n).rjust(len(str(total)), "0")


def iter_plan(spec: GenSpec, prefix_uri: Any) -> Iterator[PlannedFile]:
    """Yield the files of the dataset, train then valid, lazily (see :func:`plan`)."""
    spec = spec.validated()
    obj = parse_uri(prefix_uri)
    base = _base_key(obj)
    fmt = spec.format
    shaped = fmt not in ("raw", "parquet")
    splits = (
        ("train", spec.num_files, spec.num_subfolders_train, 0),
        ("valid", spec.num_files_eval, spec.num_subfolders_eval, spec.num_files),
    )
    for split, count, subfolders, first in splits:
        for block in range(0, count, _DIMS_BLOCK):
            n = min(_DIMS_BLOCK, count - block)
            if shaped:
                shapes = datagen.record_dims_many(
                    spec.record_size, spec.record_size_stdev, seed=spec.seed, start=first + block, count=n
                )
            else:
                sizes = datagen.record_sizes_many(
                    spec.record_size, spec.record_size_stdev, seed=spec.seed, start=first + block, count=n
                )
                shapes = [(1, s) for s in sizes]
            for k in range(n):
                i = block + k
                name = f"{spec.file_prefix}_{_pad(i, count)}_of_{count}.{fmt}"
                folder = f"{split}/{_pad(i % subfolders, subfolders)}/" if subfolders > 1 else f"{split}/"
                dims = shapes[k]
                sample_bytes = dims[0] * dims[1]
                size, exact = datagen.expected_file_size(
                    fmt,
                    dims,
                    spec.samples_per_file,
                    record_size=sample_bytes,
                    compression=spec.compression,
                    columns=spec.columns,
                )
                index_uri = str(obj.with_key(f"{base}index/{split}/{name}.idx")) if fmt == "tfrecord" else None
                yield PlannedFile(
                    uri=str(obj.with_key(base + folder + name)),
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
        "index_files": spec.total_files if spec.format == "tfrecord" else 0,
        "bytes": total,
        "bytes_exact": exact,
        "min_file_bytes": smallest or 0,
        "max_file_bytes": largest,
        "first_files": head,
        "spec": spec.to_dict(),
    }


# --------------------------------------------------------------------------
# generation
# --------------------------------------------------------------------------


def _check_dependencies(fmt: str) -> None:
    if fmt == "hdf5":
        try:
            import h5py  # noqa: F401
        except ImportError as exc:
            raise ImportError("format 'hdf5' needs h5py: pip install 'objio[hdf5]'") from exc
    elif fmt == "parquet":
        datagen._pyarrow()
    elif fmt == "jpeg":
        datagen._pil_image()


def _build(spec: GenSpec, p: PlannedFile) -> list[tuple[str, Any]]:
    """Generate one planned file (in a worker thread): ``[(uri, data)]`` plus its index."""
    fmt = spec.format
    data: Any
    if fmt == "raw":
        data = datagen.random_bytes(p.sample_bytes * spec.samples_per_file, seed=spec.seed, index=p.index)
    elif fmt == "parquet":
        data = datagen.parquet_file(
            spec.samples_per_file,
            record_size=p.sample_bytes,
            columns=spec.columns,
            row_group_size=spec.row_group_size,
            seed=spec.seed,
            index=p.index,
            compression=spec.compression,
        )
    else:
        data = datagen.build_file(
            fmt,
            p.dims,
            spec.samples_per_file,
            seed=spec.seed,
            index=p.index,
            compression=spec.compression,
            compression_level=spec.compression_level,
            chunks=spec.chunks,
            quality=spec.quality,
        )
    out: list[tuple[str, Any]] = [(p.uri, data)]
    if p.index_uri is not None:
        out.append((p.index_uri, datagen.tfrecord_index(data)))
    return out


def check_bucket(client: Any, prefix_uri: Any) -> None:
    """Fail fast: raise FileNotFoundError if the bucket of an ``s3://`` prefix does not exist.

    One HeadBucket request (retried as configured); local prefixes are not checked.

    Raises:
        FileNotFoundError: (:class:`objio.NotFoundError`) naming the bucket.
        PermissionError: access denied.
    """
    from . import engine
    from .errors import NotFoundError

    obj = parse_uri(prefix_uri)
    if obj.scheme != "s3":
        return
    root = obj.with_key("")
    backend = engine.backend_for(obj, client.config)
    try:
        engine.run(engine.with_retries(lambda: backend.head_bucket(root), client.config.max_attempts or 1))
    except NotFoundError as exc:
        raise NotFoundError(
            f"bucket {obj.bucket!r} does not exist (s3://{obj.bucket}); create it first. Nothing was generated.",
            operation=exc.operation or "HeadBucket",
            uri=f"s3://{obj.bucket}",
            status=exc.status,
            code=exc.code,
        ) from None


def auto_max_in_flight(spec: GenSpec) -> int:
    """How many files to keep in flight by default: about 1 GiB of files, between 2 and 32."""
    spec = spec.validated()
    mean = spec.record_size * spec.samples_per_file + 4096
    return max(2, min(_MAX_IN_FLIGHT, _MEMORY_BUDGET // mean))


class _Counter:
    """Objects, data files and bytes uploaded (updated on the engine thread, read anywhere)."""

    __slots__ = ("objects", "files", "bytes")

    def __init__(self) -> None:
        self.objects = 0
        self.files = 0
        self.bytes = 0


def generate_dataset(
    client: Any,
    prefix_uri: Any,
    spec: GenSpec,
    *,
    max_in_flight: int | None = None,
    progress: bool = False,
    console: Any = None,
    observer: Any = None,
) -> dict[str, Any]:
    """Generate the dataset ``spec`` and upload it under ``prefix_uri``.

    Checks the spec, the optional packages of its format and that the
    bucket exists before any generation starts (fail fast).  Files are built
    in the engine's worker threads and uploaded as soon as each is ready
    (:meth:`objio.Client.put_generated`); at most ``max_in_flight`` files
    (with their index) are in memory at once.

    Args:
        client: an :class:`objio.Client`.
        prefix_uri: ``s3://bucket/prefix`` (DLIO's ``data_folder``) or a local path.
        spec: the dataset (see :class:`GenSpec`, :func:`workload_spec`).
        max_in_flight: files generated or uploading at once, ``>= 1``;
            ``None`` picks about 1 GiB worth, 2 to 32.
        progress: show a rich progress bar (files, files/s, MiB/s) on ``console``.
        console: a :class:`rich.console.Console` (default: stderr).
        observer: also called with each object's :class:`objio.RequestRecord`
            (on the engine thread: keep it cheap).

    Returns:
        Summary: ``{"uri", "format", "files", "files_train", "files_eval",
        "index_files", "objects", "bytes", "seconds", "mib_per_s",
        "files_per_s", "max_in_flight", "spec"}``; ``bytes`` counts every
        object uploaded (index files included), in bytes; ``seconds`` is wall
        time from the first generation to the last upload.

    Raises:
        ValueError: invalid spec or URI, ``max_in_flight < 1``.
        ImportError: h5py / pyarrow / Pillow missing for the format.
        FileNotFoundError: the bucket does not exist (nothing generated).
        PermissionError: access denied.
        KeyboardInterrupt: interrupted (work in flight is cancelled).
    """
    spec = spec.validated()
    if max_in_flight is None:
        max_in_flight = auto_max_in_flight(spec)
    if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int) or max_in_flight < 1:
        raise ValueError(f"max_in_flight must be an int >= 1, got {max_in_flight!r}")
    obj = parse_uri(prefix_uri)
    _check_dependencies(spec.format)
    check_bucket(client, obj)

    counter = _Counter()

    def observe(record: Any) -> None:
        counter.objects += 1
        counter.bytes += record.nbytes
        if not record.uri.endswith(".idx"):
            counter.files += 1
        if observer is not None:
            observer(record)

    # Generated lazily as put_generated pulls them: the plan is never held whole.
    factories = (lambda p=p: _build(spec, p) for p in iter_plan(spec, obj))
    t0 = time.perf_counter()
    with _ProgressBar(progress, console, spec, counter, t0):
        client.put_generated(factories, max_in_flight, observer=observe)
    seconds = time.perf_counter() - t0
    return {
        "uri": str(obj),
        "format": spec.format,
        "files": counter.files,
        "files_train": spec.num_files,
        "files_eval": spec.num_files_eval,
        "index_files": counter.objects - counter.files,
        "objects": counter.objects,
        "bytes": counter.bytes,
        "seconds": seconds,
        "mib_per_s": counter.bytes / MiB / seconds if seconds > 0 else 0.0,
        "files_per_s": counter.files / seconds if seconds > 0 else 0.0,
        "max_in_flight": max_in_flight,
        "spec": spec.to_dict(),
    }


class _ProgressBar:
    """A rich progress bar fed from a :class:`_Counter` by a poller thread (0.2 s)."""

    def __init__(self, enabled: bool, console: Any, spec: GenSpec, counter: _Counter, t0: float) -> None:
        self.enabled = enabled
        self.console = console
        self.spec = spec
        self.counter = counter
        self.t0 = t0
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.progress: Any = None

    def __enter__(self) -> _ProgressBar:
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn(f"gen {self.spec.format}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=self.console if self.console is not None else Console(stderr=True),
        )
        task = self.progress.add_task("gen", total=self.spec.total_files, rate="")
        self.progress.start()

        def poll() -> None:
            while True:
                stopped = self.stop.wait(0.2)
                dt = time.perf_counter() - self.t0
                c = self.counter
                rate = f"{c.files / dt:8.1f} files/s {c.bytes / MiB / dt:9.1f} MiB/s" if dt > 0 else ""
                self.progress.update(task, completed=c.files, rate=rate)
                if stopped:
                    return

        self.thread = threading.Thread(target=poll, name="objio-gen-progress", daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.thread is not None:
            self.stop.set()
            self.thread.join()
        if self.progress is not None:
            self.progress.stop()


# --------------------------------------------------------------------------
# generation speed (for make bench)
# --------------------------------------------------------------------------


def default_measure_specs() -> list[tuple[str, GenSpec]]:
    """What :func:`measure_generation` measures by default: every format with one
    16 MiB sample per file (formats whose optional package is missing are left
    out), then the three workload presets at their DLIO sizes."""
    out: list[tuple[str, GenSpec]] = []
    for fmt in datagen.FORMATS:
        try:
            _check_dependencies(fmt)
        except ImportError:
            continue
        out.append((f"{fmt} 16MiB", GenSpec(format=fmt, record_size=16 * MiB)))
    out += [(name, spec) for name, spec in WORKLOADS.items()]
    return out


def measure_generation(specs: Sequence[tuple[str, GenSpec]] | None = None, *, files: int = 3) -> list[dict[str, Any]]:
    """Single-core generation speed: build ``files`` files of each spec in this thread, write nothing.

    The first file of each spec is built once untimed (imports, caches),
    then files ``0 .. files-1`` are timed (TFRecord index included).

    Args:
        specs: ``[(name, spec), ...]``; default :func:`default_measure_specs`.
        files: files timed per spec, ``>= 1`` (fewer if the spec has fewer).

    Returns:
        One dict per spec: ``{"name", "format", "record_size",
        "record_size_stdev", "samples_per_file", "files", "bytes",
        "seconds", "cpu_seconds", "mib_per_s", "files_per_s"}`` (bytes in
        bytes, times in seconds, ``mib_per_s`` = bytes / 2**20 / seconds).

    Raises:
        ValueError: an invalid spec or ``files < 1``.
    """
    if isinstance(files, bool) or not isinstance(files, int) or files < 1:
        raise ValueError(f"files must be an int >= 1, got {files!r}")
    results = []
    for name, spec in specs if specs is not None else default_measure_specs():
        spec = spec.validated()
        _check_dependencies(spec.format)
        planned = []
        for p in iter_plan(spec, "file:///objio-measure/"):
            planned.append(p)
            if len(planned) >= files:
                break
        if not planned:
            continue
        _build(spec, planned[0])  # warm-up
        nbytes = 0
        t0, c0 = time.perf_counter(), time.process_time()
        for p in planned:
            nbytes += sum(memoryview(data).nbytes for _, data in _build(spec, p))
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        results.append(
            {
                "name": name,
                "format": spec.format,
                "record_size": spec.record_size,
                "record_size_stdev": spec.record_size_stdev,
                "samples_per_file": spec.samples_per_file,
                "files": len(planned),
                "bytes": nbytes,
                "seconds": seconds,
                "cpu_seconds": cpu,
                "mib_per_s": nbytes / MiB / seconds if seconds > 0 else 0.0,
                "files_per_s": len(planned) / seconds if seconds > 0 else 0.0,
            }
        )
    return results


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------


def _parse_columns(text: str) -> tuple[tuple[str, str, int | None], ...]:
    """``name:dtype[:size],...`` -> column spec."""
    out: list[tuple[str, str, int | None]] = []
    for item in text.split(","):
        parts = item.strip().split(":")
        if len(parts) not in (2, 3) or not parts[0]:
            raise ValueError(f"--columns takes name:dtype[:size],... (e.g. data:binary,label:int64), got {text!r}")
        size = int(parse_size(parts[2], "--columns size")) if len(parts) == 3 else None
        out.append((parts[0], parts[1], size))
    return tuple(out)


def _parse_chunks(text: str) -> bool | tuple[int, ...]:
    if text.lower() == "auto":
        return True
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"--chunks takes 'auto' or a chunk shape such as 1,512,512, got {text!r}") from None


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``objio gen`` arguments to ``parser`` (a subcommand parser); returns it."""
    parser.description = (
        "Generate a synthetic training dataset in DLIO's layout (train/, valid/, index/; "
        "img_<i>_of_<n>.<format>) and upload it, generation overlapping upload. "
        "--workload fills in DLIO's MLPerf Storage H100 parameters; explicit options override them."
    )
    parser.add_argument("uri", help="where to write: s3://bucket/prefix (the bucket must exist) or a local path")
    parser.add_argument("--format", default=None, help=f"file format: {', '.join(datagen.FORMATS)}")
    parser.add_argument(
        "--workload",
        default=None,
        type=str.lower,
        choices=sorted(WORKLOADS),
        help="preset: " + "; ".join(_describe(name, spec) for name, spec in WORKLOADS.items()),
    )
    parser.add_argument("--num-files", type=int, default=None, help="training files (default 8)")
    parser.add_argument("--num-files-eval", type=int, default=None, help="validation files under valid/ (default 0)")
    parser.add_argument("--samples-per-file", type=int, default=None, help="samples per file (default 1)")
    parser.add_argument(
        "--record-size", default=None, help="bytes per sample, e.g. 114660, 128KiB, 146MiB (default 64KiB)"
    )
    parser.add_argument("--record-size-stdev", default=None, help="standard deviation of the sample size (bytes)")
    parser.add_argument("--seed", type=int, default=None, help="dataset seed (default 0)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the file counts by F, 0 < F <= 1")
    parser.add_argument(
        "--max-in-flight", type=int, default=None, help="files in memory at once (default: ~1 GiB worth, 2-32)"
    )
    parser.add_argument("--file-prefix", default=None, help="file name prefix (default img)")
    parser.add_argument("--num-subfolders-train", type=int, default=None, help="spread train files over N folders")
    parser.add_argument("--num-subfolders-eval", type=int, default=None, help="spread valid files over N folders")
    parser.add_argument(
        "--compression", default=None, help="npz: zip; hdf5: gzip or lzf; parquet: snappy, zstd, ... (default none)"
    )
    parser.add_argument("--compression-level", type=int, default=None, help="hdf5 gzip level (4) or png zlib level (0)")
    parser.add_argument("--chunks", default=None, help="hdf5 chunking: 'auto' or a shape such as 1,512,512")
    parser.add_argument("--quality", type=int, default=None, help=f"jpeg quality 1-100 (default {datagen.JPEG_QUALITY})")
    parser.add_argument(
        "--columns", default=None, help="parquet columns name:dtype[:size],... (default data:binary,label:int64)"
    )
    parser.add_argument("--row-group-size", type=int, default=None, help="parquet rows per row group")
    parser.add_argument("--json", metavar="FILE", default=None, help="write the summary as JSON to FILE ('-' = stdout)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be written; write nothing")
    parser.add_argument(
        "--measure",
        action="store_true",
        help="measure single-core generation speed (MiB/s) of this spec, or without --format/--workload of "
        "every format (16 MiB samples) and preset; writes nothing (URI only names the files)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _describe(name: str, spec: GenSpec) -> str:
    stdev = f" +- {spec.record_size_stdev:,.0f}" if spec.record_size_stdev else ""
    return (
        f"{name} = {spec.format}, {spec.samples_per_file:,} sample(s)/file, "
        f"{spec.record_size:,}{stdev} B/sample, {spec.num_files:,} files"
    )


def spec_from_args(args: argparse.Namespace) -> GenSpec:
    """The :class:`GenSpec` of parsed ``objio gen`` arguments: preset, then explicit options, then ``--scale``.

    Raises:
        ValueError: no --format and no --workload, or an invalid value.
    """
    if args.workload is None and args.format is None:
        raise ValueError(
            f"give --format ({', '.join(datagen.FORMATS)}) or --workload ({', '.join(WORKLOADS)})"
        )
    base = WORKLOADS[args.workload] if args.workload is not None else GenSpec()
    overrides: dict[str, Any] = {}
    simple = {
        "format": args.format,
        "num_files": args.num_files,
        "num_files_eval": args.num_files_eval,
        "samples_per_file": args.samples_per_file,
        "seed": args.seed,
        "file_prefix": args.file_prefix,
        "num_subfolders_train": args.num_subfolders_train,
        "num_subfolders_eval": args.num_subfolders_eval,
        "compression": args.compression,
        "compression_level": args.compression_level,
        "quality": args.quality,
        "row_group_size": args.row_group_size,
    }
    overrides.update({k: v for k, v in simple.items() if v is not None})
    if args.record_size is not None:
        overrides["record_size"] = parse_size(args.record_size, "--record-size")
    if args.record_size_stdev is not None:
        overrides["record_size_stdev"] = parse_size(args.record_size_stdev, "--record-size-stdev")
    if args.chunks is not None:
        overrides["chunks"] = _parse_chunks(args.chunks)
    if args.columns is not None:
        overrides["columns"] = _parse_columns(args.columns)
    if "format" in overrides:
        overrides["format"] = datagen.normalize_format(overrides["format"])
    return dataclasses.replace(base, **overrides).scaled(args.scale).validated()


def _print_dry_run(summary: dict[str, Any], out: Any) -> None:
    spec = summary["spec"]
    approx = "" if summary["bytes_exact"] else "~"
    stdev = f" +- {spec['record_size_stdev']:,.0f}" if spec["record_size_stdev"] else ""
    index = f" + {summary['index_files']:,} index files" if summary["index_files"] else ""
    print(
        f"dry run: would write {summary['files']:,} {summary['format']} files "
        f"({summary['files_train']:,} train, {summary['files_eval']:,} valid){index} under {summary['uri']}",
        file=out,
    )
    print(
        f"  {spec['samples_per_file']:,} sample(s) per file, {spec['record_size']:,}{stdev} bytes per sample, "
        f"seed {spec['seed']}",
        file=out,
    )
    if summary["format"] == "parquet":
        columns = datagen.normalize_parquet_columns(spec["columns"], spec["record_size"])
        text = ", ".join(f"{name}:{dtype}:{size}" for name, dtype, size in columns)
        print(f"  parquet columns {text} (name:dtype:size)", file=out)
    print(
        f"  total {approx}{format_size(summary['bytes'])} ({approx}{summary['bytes']:,} bytes); files "
        f"{format_size(summary['min_file_bytes'])} .. {format_size(summary['max_file_bytes'])}",
        file=out,
    )
    for f in summary["first_files"]:
        dims = "x".join(str(d) for d in f["dims"])
        print(f"  {f['uri']}  {approx}{f['size']:,} bytes  ({dims})", file=out)
    more = summary["files"] - len(summary["first_files"])
    if more > 0:
        print(f"  ... and {more:,} more", file=out)


def _write_json(path: str, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2)
    if path == "-":
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    else:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``objio gen`` from parsed arguments; returns the exit code.

    0 success; 1 with a one-line ``objio: error: ...`` on stderr for user
    errors (bad value, missing bucket, access denied, missing optional
    package, storage errors); 130 on Ctrl-C.
    """
    from .errors import ObjectStoreError

    try:
        human = sys.stderr if args.json == "-" else sys.stdout
        if getattr(args, "measure", False):
            parse_uri(args.uri)
            if args.format is None and args.workload is None:
                measured = measure_generation()
            else:
                measured = measure_generation([(args.workload or args.format, spec_from_args(args))])
            for m in measured:
                print(
                    f"{m['name']:<14} {m['format']:<9} {m['files']} files {format_size(m['bytes']):>10} "
                    f"{m['mib_per_s']:9.1f} MiB/s {m['files_per_s']:8.2f} files/s (one core)",
                    file=human,
                )
            if args.json:
                _write_json(args.json, {"generation": measured})
            return 0
        spec = spec_from_args(args)
        prefix = parse_uri(args.uri)
        if args.dry_run:
            summary = plan_summary(spec, prefix)
            summary["dry_run"] = True
            _print_dry_run(summary, human)
            if args.json:
                _write_json(args.json, summary)
            return 0
        from rich.console import Console

        from .cli import client_from_args

        err_console = Console(stderr=True)
        show = not args.no_progress and err_console.is_terminal
        client = client_from_args(args)
        result = generate_dataset(
            client, prefix, spec, max_in_flight=args.max_in_flight, progress=show, console=err_console
        )
        if args.workload is not None:
            result["workload"] = args.workload
            result["scale"] = args.scale
        index = f" + {result['index_files']:,} index files" if result["index_files"] else ""
        print(
            f"wrote {result['files']:,} {result['format']} files{index}, {format_size(result['bytes'])} in "
            f"{result['seconds']:.2f} s: {result['files_per_s']:.1f} files/s, {result['mib_per_s']:.1f} MiB/s "
            f"-> {result['uri']}",
            file=human,
        )
        if args.json:
            _write_json(args.json, result)
        return 0
    except KeyboardInterrupt:
        print("objio: interrupted", file=sys.stderr)
        return 130
    except (ObjectStoreError, OSError, ValueError, ImportError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"objio: error: {message}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m objio.gen [options]``: ``objio gen`` on its own, with the connection options."""
    from .cli import add_global_flags

    parser = argparse.ArgumentParser(prog="python -m objio.gen")
    add_global_flags(parser)
    configure_parser(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

