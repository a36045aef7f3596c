"""Generate a planned dataset and upload it (generation in the engine's worker threads
overlapping the uploads), and measure single-core generation speed."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from ..config import GiB, MiB
from ..formats import FORMATS, get_format
from ..uri import parse_uri
from .plan import PlannedFile, iter_plan
from .spec import WORKLOADS, GenSpec


def build_planned(spec: GenSpec, p: PlannedFile) -> list[tuple[str, Any]]:
    """Generate one planned file (in a worker thread): ``[(uri, data)]``, plus its index file
    for formats that have one (TFRecord)."""
    fmt = get_format(spec.format)
    data = fmt.build(p.dims, spec.samples_per_file, spec.seed, p.index, spec.options)
    out: list[tuple[str, Any]] = [(p.uri, data)]
    if p.index_uri is not None and fmt.index is not None:
        out.append((p.index_uri, fmt.index(data)))
    return out


_MEMORY_BUDGET = 1 * GiB  # what the automatic max_in_flight aims to keep in memory


_MAX_IN_FLIGHT = 32


def check_bucket(client: Any, prefix_uri: Any) -> None:
    """Fail fast: raise FileNotFoundError if the bucket of an ``s3://`` prefix does not exist.

    One HeadBucket request (retried as configured); local prefixes are not checked.

    Raises:
        FileNotFoundError: (:class:`objio.NotFoundError`) naming the bucket.
        PermissionError: access denied.
    """
    from .. import engine
    from ..errors import NotFoundError

    obj = parse_uri(prefix_uri)
    if obj.is_local:
        return
    root = obj.with_key("")
    where = str(root).rstrip("/")
    backend = engine.backend_for(obj, client.config)
    try:
        engine.run(engine.with_retries(lambda: backend.head_bucket(root), client.config.max_attempts or 1))
    except NotFoundError as exc:
        raise NotFoundError(
            f"bucket {obj.bucket!r} does not exist ({where}); create it first. Nothing was generated.",
            operation=exc.operation or "HeadBucket",
            uri=where,
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
    rank: int | None = None,
    world_size: int | None = None,
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
        rank, world_size: this process's share of a job of ``world_size``
            processes (mpirun, torchrun, srun): it writes the files whose place
            in the plan is ``rank`` modulo ``world_size``, so every file is
            written exactly once by the job, as DLIO splits generation over MPI
            ranks. Default: :func:`job_rank` (the launcher's environment).

    Returns:
        Summary of what this process wrote: ``{"uri", "format", "files",
        "files_train", "files_eval", "index_files", "objects", "bytes",
        "seconds", "mib_per_s", "files_per_s", "max_in_flight", "rank",
        "world_size", "spec"}``; ``files_train``/``files_eval`` are the whole
        dataset's; ``bytes`` counts every object uploaded (index files
        included), in bytes; ``seconds`` is wall time from the first
        generation to the last upload.

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
    get_format(spec.format).requires()
    if rank is None and world_size is None:
        rank, world_size = job_rank()
    rank, world_size = _check_rank(rank, world_size)
    check_bucket(client, obj)
    if obj.scheme == "file":  # DLIO lists both splits, even an empty one
        for split in ("train", "valid"):
            os.makedirs(obj.joinpath(split).key, exist_ok=True)

    counter = _Counter()

    def observe(record: Any) -> None:
        counter.objects += 1
        counter.bytes += record.nbytes
        if not record.uri.endswith(".idx"):
            counter.files += 1
        if observer is not None:
            observer(record)

    # Generated lazily as put_generated pulls them: the plan is never held whole.
    factories = (lambda p=p: build_planned(spec, p)
                 for i, p in enumerate(iter_plan(spec, obj)) if i % world_size == rank)
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
        "rank": rank,
        "world_size": world_size,
        "spec": spec.to_dict(),
    }


_RANK_VARIABLES = (
    ("RANK", "WORLD_SIZE"),  # torchrun, torch.distributed
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),  # Open MPI's mpirun
    ("PMI_RANK", "PMI_SIZE"),  # MPICH / Intel MPI (Hydra)
    ("SLURM_PROCID", "SLURM_NTASKS"),  # srun
)


def job_rank(environ: Any = None) -> tuple[int, int]:
    """``(rank, world_size)`` of this process in a job started by torchrun (``RANK``,
    ``WORLD_SIZE``), Open MPI (``OMPI_COMM_WORLD_RANK``/``_SIZE``), MPICH or Intel MPI
    (``PMI_RANK``/``PMI_SIZE``) or Slurm's srun (``SLURM_PROCID``/``SLURM_NTASKS``), the first
    pair that is set; ``(0, 1)`` outside such a job.

    Raises: ValueError (a variable that is not a valid rank or size, naming it)."""
    env = os.environ if environ is None else environ
    for rank_var, size_var in _RANK_VARIABLES:
        raw_rank, raw_size = env.get(rank_var), env.get(size_var)
        if raw_rank is None or raw_size is None:
            continue
        try:
            rank, size = int(raw_rank), int(raw_size)
        except ValueError:
            raise ValueError(f"{rank_var}={raw_rank!r} / {size_var}={raw_size!r} must be "
                             "integers") from None
        return _check_rank(rank, size, f"{rank_var}/{size_var}")
    return 0, 1


def _check_rank(rank: Any, world_size: Any, what: str = "rank/world_size") -> tuple[int, int]:
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"{what}: world size must be an integer >= 1, got {world_size!r}")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ValueError(f"{what}: rank must be an integer in [0, {world_size}), got {rank!r}")
    return rank, world_size


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


def default_measure_specs() -> list[tuple[str, GenSpec]]:
    """What :func:`measure_generation` measures by default: every format with one
    16 MiB sample per file (formats whose optional package is missing are left
    out), then the three workload presets at their DLIO sizes."""
    out: list[tuple[str, GenSpec]] = []
    for fmt in FORMATS:
        try:
            get_format(fmt).requires()
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
        get_format(spec.format).requires()
        planned = []
        for p in iter_plan(spec, "file:///objio-measure/"):
            planned.append(p)
            if len(planned) >= files:
                break
        if not planned:
            continue
        build_planned(spec, planned[0])  # warm-up
        nbytes = 0
        t0, c0 = time.perf_counter(), time.process_time()
        for p in planned:
            nbytes += sum(memoryview(data).nbytes for _, data in build_planned(spec, p))
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
