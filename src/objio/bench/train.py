"""Training emulation (``objio bench --workload unet3d|resnet50|cosmoflow``) and the DataLoader
throughput benchmark (``objio bench --throughput``).

Training emulation, as DLIO / MLPerf Storage run it (``dlio_benchmark``, configs
``workload/{unet3d,resnet50,cosmoflow}_h100.yaml``):

1. The workload's dataset (:data:`objio.gen.WORKLOADS`, scaled by ``--scale``) is generated
   under the prefix unless every planned training file is already there.
2. A real PyTorch ``DataLoader`` loop runs over ``objio.torch`` datasets: batch size, workers
   (DLIO ``read_threads``), prefetch factor (``ceil(prefetch_size / read_threads)``, DLIO's
   ``prefetch_size`` default 2) and epochs from the DLIO config; each step sleeps the
   per-accelerator ``computation_time`` (the emulated compute).
3. Per epoch it reports samples/s, MiB/s, AU and whether the AU target is met (unet3d and
   resnet50 90 %, cosmoflow 70 %), and the client CPU time.

AU (accelerator utilization) follows DLIO's ``StatsCounter.compute_metrics_train``: the first
step is excluded (``metric_exclude_start_steps = 1``), ``AU = sum(compute time of steps 1..n-1)
/ (epoch wall time - load and compute time of step 0)``. samples/s and MiB/s use the samples
and bytes of the same steps over the same time (MiB = 2**20 bytes).

The sample transform is DLIO's reader work on the whole object: ``reader.read()``, then NPZ
``numpy.load(...)["x"]``, TFRecord records (CRC-checked, each ``tf.train.Example`` parsed; each
record is one sample: the iterable dataset yields them one by one) or HDF5 datasets; a sample
is its byte count. unet3d uses the map-style dataset (``shuffle=True`` through a seeded
``RandomSampler``, as DLIO's PyTorch loader), resnet50 and cosmoflow the iterable dataset with
sharding over the workers (``--dataset`` overrides).

``--compare s3torchconnector`` runs the identical loop (same DataLoader settings, same
transform function, same sampler seeds) with s3torchconnector's ``S3MapDataset`` /
``S3IterableDataset`` on the same objects, epoch by epoch interleaved with objio's (so machine
noise hits both alike; who goes first alternates between epochs), and reports objio's ratios
(per library: median over epochs of samples/s, MiB/s and CPU; mean AU, as DLIO averages
epochs). Both libraries get the same settings:
``region``, ``endpoint``, ``S3ClientConfig(force_path_style=...)`` and credentials in the
``AWS_*`` environment variables.

Client CPU is the user + system time of this process and of its reaped children
(``getrusage(RUSAGE_SELF)`` + ``getrusage(RUSAGE_CHILDREN)``) over the epoch. DataLoader
workers are started and joined within each epoch (``persistent_workers=False``, the default
here), so their CPU is counted in the epoch that used them (a child's CPU is accounted when it
is reaped). The embedded server's CPU is not included (it is not reaped during the run).

Throughput mode (``--throughput``): RAW objects of ``--size`` bytes (``--num`` of them) are
read by both dataset types (``--dataset map,iterable``) of objio and s3torchconnector with the
same DataLoader (batch 32, 2 workers, no compute, transform ``len(reader.read())``), interleaved
over ``--epochs`` after one untimed read of every object (a warm server cache for everyone);
reports per library and dataset type the median samples/s and MiB/s over whole epochs (every
sample over the epoch's wall time, worker start-up included: short runs have too few steps for
DLIO's first-step exclusion, shown as "steady"), client CPU, and objio's ratios.

Without a URI an embedded SeaweedFS server (:class:`objio.server.LocalS3Server`) holds the
data (then numbers measure the client stack plus a local server, not a network), and the
workloads are scaled down (:data:`EMBEDDED_SCALE`, 1 to 6 GiB) unless ``--scale`` says
otherwise.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..api import Client
from ..config import MiB, format_size, parse_size, plural, temporary_environ
from ..uri import parse_uri
from ._common import cpu_seconds, environment, mean, median, ratio
from .peers import Access, library
from .report import fmt, times

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "TrainPreset", "PRESETS", "EMBEDDED_SCALE", "LIBRARIES", "au_metrics", "SampleBytes",
    "AU_MIN_STEPS", "au_warning",
    "LoopSettings", "run_epoch", "parse_compare", "run_training", "run_throughput",
    "print_report",
]

LIBRARIES = ("objio", "s3torchconnector")


_DLIO_PREFETCH_SIZE = 2


@dataclass(frozen=True)
class TrainPreset:
    """One DLIO H100 training workload (MLPerf Storage ``workload/<name>_h100.yaml``).

    Attributes:
        name: ``unet3d``, ``resnet50`` or ``cosmoflow``.
        batch_size: samples per step (``reader.batch_size``).
        read_threads: DataLoader workers (``reader.read_threads``).
        prefetch_size: DLIO's ``reader.prefetch_size`` (batches; default 2).
        epochs: ``train.epochs``.
        computation_time: seconds of emulated compute per step (``train.computation_time``).
        au: AU target as a fraction (``metric.au``).
        dataset: objio dataset type used by default: ``map`` or ``iterable``.
    """

    name: str
    batch_size: int
    read_threads: int
    prefetch_size: int
    epochs: int
    computation_time: float
    au: float
    dataset: str

    @property
    def prefetch_factor(self) -> int:
        """DataLoader ``prefetch_factor`` as DLIO computes it: ``ceil(prefetch_size /
        read_threads)`` (at least 1)."""
        return max(1, math.ceil(self.prefetch_size / max(1, self.read_threads)))


PRESETS: dict[str, TrainPreset] = {
    # mlcommons/storage configs/dlio/workload/unet3d_h100.yaml
    "unet3d": TrainPreset("unet3d", batch_size=7, read_threads=4, prefetch_size=_DLIO_PREFETCH_SIZE,
                          epochs=5, computation_time=0.323, au=0.90, dataset="map"),
    # mlcommons/storage configs/dlio/workload/resnet50_h100.yaml
    "resnet50": TrainPreset("resnet50", batch_size=400, read_threads=8,
                            prefetch_size=_DLIO_PREFETCH_SIZE, epochs=5, computation_time=0.224,
                            au=0.90, dataset="iterable"),
    # mlcommons/storage configs/dlio/workload/cosmoflow_h100.yaml
    "cosmoflow": TrainPreset("cosmoflow", batch_size=1, read_threads=4,
                             prefetch_size=_DLIO_PREFETCH_SIZE, epochs=5,
                             computation_time=0.00350, au=0.70, dataset="iterable"),
}
"""DLIO's H100 training settings per workload (the data itself: :data:`objio.gen.WORKLOADS`)."""


EMBEDDED_SCALE: dict[str, float] = {"unet3d": 0.25, "resnet50": 0.008, "cosmoflow": 0.0008}
"""Default ``--scale`` on the embedded server: a few GiB at most, with enough steps per epoch
for the AU to mean something: unet3d 42 files of ~140 MiB (~5.8 GiB, 6 steps of 7), resnet50
8 files of 1251 samples (~1.1 GiB, 25 steps of 400), cosmoflow 419 files of ~2.7 MiB
(~1.1 GiB, 419 steps of 1)."""


AU_MIN_STEPS = 5
"""Fewest measured steps per epoch (after DLIO's first-step exclusion) for which the AU is
reported without a warning. With fewer, the AU is a handful of load/compute intervals dominated
by the DataLoader's start (its workers fill ``workers x prefetch_factor`` batches while the
first steps run); with none left, :func:`au_metrics` falls back to the whole epoch. 5 is the
smallest that the embedded default of every workload gives (unet3d at scale 0.25: 6 steps, 5
measured); ``--scale 0.03 --epochs 1`` of unet3d gives 1 step, 0 measured, and warns."""


def au_warning(runs: Sequence[Mapping[str, Any]], workload: str,
               minimum: int = AU_MIN_STEPS) -> str | None:
    """One line saying the AU was measured from too few steps (fewer than ``minimum`` measured
    steps in some epoch of ``runs``, each a :func:`au_metrics` dict), and what to do; None
    when every epoch had enough."""
    if not runs:
        return None
    fewest = min(runs, key=lambda r: r.get("metric_steps", 0))
    measured = fewest.get("metric_steps", 0)
    if measured >= minimum:
        return None
    steps = fewest.get("steps", 0)
    how = (f"{plural(measured, 'step')} per epoch ({plural(steps, 'step')}, the first excluded "
           "as DLIO)" if measured < steps else
           f"{plural(steps, 'step')} per epoch, too few to exclude the first as DLIO does")
    return (f"AU of {workload} measured from {how}; at least {minimum} measured steps are "
            "needed for a meaningful AU: raise --scale or lower --batch-size")


def au_metrics(steps: Sequence[tuple[float, float, int, int]], wall_s: float,
               exclude_start: int = 1) -> dict[str, Any]:
    """DLIO's per-epoch metrics from ``steps`` = ``[(load_s, compute_s, samples, bytes), ...]``
    and the epoch's wall time.

    The first ``exclude_start`` steps are left out: ``metric_time = wall - sum(load + compute
    of those steps)``; ``au_pct = 100 * sum(compute of the others) / metric_time``;
    ``samples_per_s`` and ``mib_per_s`` count the other steps' samples and bytes over
    ``metric_time``. With no step left, the whole epoch is used. ``epoch_samples_per_s`` and
    ``epoch_mib_per_s`` count every sample over the whole wall time (worker start-up included).
    """
    head = steps[:exclude_start] if len(steps) > exclude_start else []
    rest = steps[len(head):]
    metric_time = wall_s - sum(s[0] + s[1] for s in head)
    compute = sum(s[1] for s in rest)
    samples = sum(s[2] for s in rest)
    nbytes = sum(s[3] for s in rest)
    ok = metric_time > 0
    return {
        "steps": len(steps),
        "metric_steps": len(rest),
        "samples": sum(s[2] for s in steps),
        "bytes": sum(s[3] for s in steps),
        "wall_s": wall_s,
        "metric_time_s": metric_time,
        "compute_s": compute,
        "load_s": sum(s[0] for s in rest),
        "au_pct": 100.0 * compute / metric_time if ok and compute > 0 else 0.0,
        "samples_per_s": samples / metric_time if ok else None,
        "mib_per_s": nbytes / MiB / metric_time if ok else None,
        "epoch_samples_per_s": sum(s[2] for s in steps) / wall_s if wall_s > 0 else None,
        "epoch_mib_per_s": sum(s[3] for s in steps) / MiB / wall_s if wall_s > 0 else None,
    }


class SampleBytes:
    """DLIO's reader work on one object, the same for every library: ``reader.read()``, then
    the format's decoding; each sample is its size in bytes (an ``int``).

    ``npz``: ``numpy.load(...)["x"]`` (one sample per file, as DLIO's unet3d files);
    ``tfrecord``: every record CRC-checked and parsed as a ``tf.train.Example``, one sample per
    record (a :class:`~objio.torch.transforms.Samples`); ``hdf5``: the ``records`` dataset, one
    sample per row; anything else: the object is one sample.
    """

    def __init__(self, fmt: str = "raw", decode: bool = True) -> None:
        self.fmt = fmt
        self.decode = decode

    def __call__(self, reader: Any) -> Any:
        data = reader.read()
        if not self.decode or self.fmt in ("raw", "", None):
            return len(data)
        from .. import formats

        if self.fmt == "npz":
            formats.read_npz_bytes(data, "x")
            return len(data)
        from ..torch.transforms import Samples

        if self.fmt == "tfrecord":
            sizes = []
            for record in formats.iter_tfrecord(data):
                formats.parse_example(record, copy=False)
                sizes.append(len(record))
            return Samples(sizes)
        if self.fmt == "hdf5":
            records = formats.read_hdf5(data, "records")
            per = records[0].nbytes if len(records) else 0
            return Samples([per] * len(records))
        return len(data)


def _len_read(reader: Any) -> int:
    """The throughput transform: read the whole object, return its size."""
    return len(reader.read())


@dataclass
class LoopSettings:
    """DataLoader and step settings of one run."""

    batch_size: int
    workers: int
    prefetch_factor: int
    compute_time: float
    shuffle_map: bool = True
    seed: int = 0
    context: str | None = None
    persistent_workers: bool = False


def _loader(dataset: Any, kind: str, s: LoopSettings, epoch: int) -> Any:
    import torch
    from torch.utils.data import DataLoader, RandomSampler

    kw: dict[str, Any] = {"batch_size": s.batch_size, "num_workers": s.workers}
    if s.workers > 0:
        kw["prefetch_factor"] = s.prefetch_factor
        kw["persistent_workers"] = s.persistent_workers
        if s.context:
            kw["multiprocessing_context"] = s.context
    if kind == "map" and s.shuffle_map:
        g = torch.Generator()
        g.manual_seed(s.seed * 1_000_003 + epoch)  # the same order for every library
        kw["sampler"] = RandomSampler(dataset, generator=g)
    return DataLoader(dataset, **kw)


def run_epoch(loader: Any, compute_time: float) -> dict[str, Any]:
    """One pass over ``loader``: each step waits for a batch (load), then sleeps
    ``compute_time`` (compute). Returns :func:`au_metrics` plus ``cpu_s``."""
    cpu0 = cpu_seconds(children=True)
    t_start = time.perf_counter()
    steps: list[tuple[float, float, int, int]] = []
    it = iter(loader)
    while True:
        t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            break
        t1 = time.perf_counter()
        n, b = _count(batch)
        if compute_time > 0:
            time.sleep(compute_time)
        t2 = time.perf_counter()
        steps.append((t1 - t0, t2 - t1, n, b))
    del it
    wall = time.perf_counter() - t_start
    out = au_metrics(steps, wall)
    out["cpu_s"] = cpu_seconds(children=True) - cpu0
    return out


def _count(batch: Any) -> tuple[int, int]:
    """(samples, bytes) of a batch of per-sample byte counts (a tensor or a list)."""
    try:
        import torch

        if isinstance(batch, torch.Tensor):
            return int(batch.numel()), int(batch.sum())
    except ImportError:  # pragma: no cover
        pass
    if isinstance(batch, (list, tuple)):
        return len(batch), sum(int(x) for x in batch)
    return 1, int(batch)


def _check_library(name: str) -> None:
    if name == "s3torchconnector":
        try:
            import s3torchconnector  # noqa: F401
        except ImportError as e:
            raise ValueError("--compare s3torchconnector needs s3torchconnector: pip install "
                             "'objio[bench]'") from e


def parse_compare(value: Any) -> list[str]:
    """Peer libraries from ``--compare``: ``s3torchconnector`` (or True), ``none``/``""``."""
    if value is None or value is False:
        return []
    if value is True:
        return ["s3torchconnector"]
    names: list[str] = []
    for item in str(value).split(","):
        name = item.strip().lower()
        if not name or name == "none":
            continue
        if name != "s3torchconnector":
            raise ValueError(f"--compare must be s3torchconnector or none, got {item.strip()!r}")
        if name not in names:
            names.append(name)
    return names


def _interleaved(libraries: Sequence[str], kinds: Sequence[str], epochs: int, uri: str,
                 transform: Callable[[Any], Any], access: Access, settings: LoopSettings,
                 report_epoch: Callable[[dict[str, Any]], None] | None) -> list[dict[str, Any]]:
    """Run every (kind, library) once per epoch, epoch by epoch (the libraries' order
    alternates between epochs); one dataset per (kind, library), listed before the first timed
    epoch."""
    datasets: dict[tuple[str, str], Any] = {}
    runs: list[dict[str, Any]] = []
    with temporary_environ(access.aws_env()):
        for kind in kinds:
            for lib in libraries:
                ds = library(lib, access).dataset(kind, uri, transform)
                if kind == "map":
                    len(ds)  # list now, not inside the first epoch
                datasets[(kind, lib)] = ds
        for epoch in range(epochs):
            # alternate who goes first, so that warm-up or drift does not favour one library
            order = list(libraries) if epoch % 2 == 0 else list(reversed(libraries))
            for kind in kinds:
                for lib in order:
                    ds = datasets[(kind, lib)]
                    if hasattr(ds, "set_epoch"):
                        ds.set_epoch(epoch)
                    r = run_epoch(_loader(ds, kind, settings, epoch), settings.compute_time)
                    r.update(library=lib, dataset=kind, epoch=epoch)
                    runs.append(r)
                    if report_epoch is not None:
                        report_epoch(r)
    return runs


def _summary(runs: Sequence[dict[str, Any]], au_target: float | None) -> dict[str, Any]:
    """Per (dataset, library): median samples/s, MiB/s and CPU s over epochs, mean AU (as DLIO
    averages epochs); and objio's ratios to each peer."""
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in runs:
        groups.setdefault(r["dataset"], {}).setdefault(r["library"], []).append(r)
    out: dict[str, Any] = {}
    for kind, libs in groups.items():
        k: dict[str, Any] = {}
        for lib, rs in libs.items():
            cpu = median([r["cpu_s"] for r in rs])
            samples = median([float(r["samples"]) for r in rs])
            s: dict[str, Any] = {
                "epochs": len(rs),
                "samples_per_s": median([r["samples_per_s"] for r in rs]),
                "epoch_samples_per_s": median([r["epoch_samples_per_s"] for r in rs]),
                "epoch_mib_per_s": median([r["epoch_mib_per_s"] for r in rs]),
                "mib_per_s": median([r["mib_per_s"] for r in rs]),
                "cpu_s": cpu,
                "cpu_ms_per_sample": 1000.0 * cpu / samples if cpu is not None and samples else None,
                "au_pct": mean([r["au_pct"] for r in rs]),
            }
            if au_target is not None:
                s["au_met"] = s["au_pct"] is not None and s["au_pct"] >= 100 * au_target
            k[lib] = s
        base = k.get("objio")
        ratios: dict[str, Any] = {}
        if base is not None:
            for lib, s in k.items():
                if lib == "objio":
                    continue
                ratios[lib] = {
                    "samples_per_s": ratio(base["samples_per_s"], s["samples_per_s"]),
                    "epoch_samples_per_s": ratio(base["epoch_samples_per_s"],
                                                  s["epoch_samples_per_s"]),
                    "cpu_s": ratio(base["cpu_s"], s["cpu_s"]),
                }
        k["objio_ratio"] = ratios
        out[kind] = k
    return out


def _dataset_present(client: Client, spec: Any, prefix: str) -> bool:
    """Whether every planned training file of ``spec`` exists under ``prefix`` (one listing)."""
    from ..gen import iter_plan

    obj = parse_uri(prefix)
    train = str(obj.joinpath("train/"))
    try:
        have = {i.key for i in client.list_objects(train)}
    except FileNotFoundError:
        return False
    for p in iter_plan(spec, prefix):
        if p.split != "train":
            continue
        if parse_uri(p.uri).key not in have:
            return False
    return True


def run_training(client: Client, prefix: str, workload: str, *, scale: float = 1.0,
                 batch_size: int | None = None, workers: int | None = None,
                 prefetch_factor: int | None = None, epochs: int | None = None,
                 compute_time: float | None = None, dataset: str | None = None,
                 compare: Sequence[str] = (), keep: bool = True, seed: int = 0,
                 context: str | None = None, persistent_workers: bool = False,
                 decode: bool = True, progress: bool = False,
                 console: Console | None = None) -> dict[str, Any]:
    """Emulate DLIO training of ``workload`` on the data under ``prefix`` (generated there
    first when absent) and return the report (JSON-ready dict; see :func:`print_report`).

    Args:
        client: the :class:`objio.Client` that generates the data (its settings, endpoint and
            credentials are given to every library).
        prefix: ``s3://bucket/prefix`` (DLIO's ``data_folder``).
        workload: ``unet3d``, ``resnet50`` or ``cosmoflow``.
        scale: multiply the workload's file count by this (0 < scale <= 1).
        batch_size, workers, prefetch_factor, epochs, compute_time: override the DLIO values.
        dataset: ``map`` or ``iterable`` (default: the preset's).
        compare: peer libraries to run the same loop with (``["s3torchconnector"]``).
        keep: keep data this run generated (False deletes ``train/`` and ``index/`` after).
        seed: dataset and sampler seed. context: DataLoader ``multiprocessing_context``.
        persistent_workers: keep workers across epochs (their CPU is then counted only at the
            end of the run, in no epoch).
        decode: decode each object's format (DLIO's reader work); False only reads.

    Raises:
        ValueError: bad arguments, unknown workload or library; FileNotFoundError (no
        bucket), PermissionError.
    """
    from ..gen import generate_dataset, workload_spec

    key = workload.lower() if isinstance(workload, str) else workload
    if key not in PRESETS:
        raise ValueError(f"workload must be one of {', '.join(PRESETS)}, got {workload!r}")
    preset = PRESETS[key]
    spec = workload_spec(key, scale=scale, seed=seed)
    settings = LoopSettings(
        batch_size=_positive("batch_size", batch_size, preset.batch_size),
        workers=_positive("workers", workers, preset.read_threads, minimum=0),
        prefetch_factor=_positive("prefetch_factor", prefetch_factor, preset.prefetch_factor),
        compute_time=_seconds(compute_time, preset.computation_time),
        seed=seed, context=context, persistent_workers=persistent_workers)
    n_epochs = _positive("epochs", epochs, preset.epochs)
    kind = dataset or preset.dataset
    if kind not in ("map", "iterable"):
        raise ValueError(f"dataset must be 'map' or 'iterable', got {dataset!r}")
    peers = list(compare)
    for p in peers:
        _check_library(p)
    obj = parse_uri(prefix)
    if obj.scheme != "s3":
        raise ValueError(f"the training emulation needs an s3://bucket/prefix URI, got {prefix!r}")

    report: dict[str, Any] = {
        "mode": "workload", "workload": key, "uri": str(obj),
        "config": {"batch_size": settings.batch_size, "workers": settings.workers,
                   "prefetch_factor": settings.prefetch_factor, "epochs": n_epochs,
                   "compute_time_s": settings.compute_time, "au_target_pct": 100 * preset.au,
                   "dataset": kind, "scale": scale, "format": spec.format,
                   "files": spec.num_files, "samples_per_file": spec.samples_per_file,
                   "multiprocessing_context": context or "fork",
                   "persistent_workers": persistent_workers, "decode": decode,
                   "libraries": ["objio", *peers]},
        "environment": environment(LIBRARIES),
    }
    generated = False
    if _dataset_present(client, spec, prefix):
        report["generation"] = {"generated": False}
    else:
        report["generation"] = {"generated": True, **generate_dataset(
            client, prefix, spec, progress=progress, console=console)}
        report["generation"].pop("spec", None)
        generated = True
    train_uri = str(obj.joinpath("train/"))
    access = Access.from_client(client)
    transform = SampleBytes(spec.format, decode=decode)

    def show(r: dict[str, Any]) -> None:
        if progress and console is not None:
            console.print(f"epoch {r['epoch']} {r['library']:<16} {r['samples']} samples, "
                          f"{fmt(r['samples_per_s'], '.1f')} samples/s, AU {r['au_pct']:.1f} %",
                          highlight=False)

    try:
        runs = _interleaved(["objio", *peers], [kind], n_epochs, train_uri, transform, access,
                            settings, show)
    finally:
        if generated and not keep:
            client.delete(str(obj.joinpath("train/")))
            client.delete(str(obj.joinpath("index/")))
            report["cleanup"] = {"deleted": True}
    for r in runs:
        r["au_met"] = r["au_pct"] >= 100 * preset.au
    report["runs"] = runs
    report["au_min_steps"] = AU_MIN_STEPS
    report["au_warning"] = au_warning(runs, key)
    report["summary"] = _summary(runs, preset.au)
    return report


def _positive(name: str, value: int | None, default: int, minimum: int = 1) -> int:
    v = default if value is None else value
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {v!r}")
    return v


def _seconds(value: float | None, default: float) -> float:
    v = default if value is None else value
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
        raise ValueError(f"compute_time must be a number of seconds >= 0, got {v!r}")
    return float(v)


def run_throughput(client: Client, prefix: str, *, size: int, num: int,
                   datasets: Sequence[str] = ("map", "iterable"), batch_size: int = 32,
                   workers: int = 2, prefetch_factor: int = 2, epochs: int = 3,
                   compare: Sequence[str] = ("s3torchconnector",), keep: bool = True,
                   context: str | None = None, progress: bool = False,
                   console: Console | None = None) -> dict[str, Any]:
    """DataLoader throughput of objio's datasets (and ``compare`` peers) on ``num`` RAW objects
    of ``size`` bytes under ``prefix`` (written first unless already there), no compute.

    Returns the report (see :func:`print_report`): per (dataset type, library) the median
    samples/s, MiB/s and client CPU seconds per epoch, and objio's ratios.
    """
    kinds = list(datasets)
    for k in kinds:
        if k not in ("map", "iterable"):
            raise ValueError(f"dataset must be 'map' or 'iterable', got {k!r}")
    if not kinds:
        raise ValueError("datasets must name at least one of 'map', 'iterable'")
    size = parse_size(size, "size")
    num = _positive("num", num, 1)
    settings = LoopSettings(batch_size=_positive("batch_size", batch_size, 32),
                            workers=_positive("workers", workers, 2, minimum=0),
                            prefetch_factor=_positive("prefetch_factor", prefetch_factor, 2),
                            compute_time=0.0, shuffle_map=False, context=context)
    epochs = _positive("epochs", epochs, 3)
    peers = list(compare)
    for p in peers:
        _check_library(p)
    obj = parse_uri(prefix)
    if obj.scheme != "s3":
        raise ValueError(f"the throughput benchmark needs an s3://bucket/prefix URI, got {prefix!r}")
    data_uri = str(obj.joinpath(f"throughput-{size}-{num}/"))
    template = "object_{}_of_{}.dat"
    have = {i.key: i.size for i in client.list_objects(data_uri)}
    want = [parse_uri(data_uri).joinpath(template.format(i, num)).key for i in range(num)]
    generated = not all(have.get(k) == size for k in want) or len(have) != num
    if generated:
        if have:
            client.delete(data_uri)
        client.put(data_uri, num=num, template=template, size=size, max_in_flight=16)
    # read everything once, untimed: no library pays for a cold server cache
    client.get_many_stats([str(obj.with_key(k)) for k in want], max_in_flight=16)
    report: dict[str, Any] = {
        "mode": "throughput", "uri": data_uri,
        "config": {"size": size, "num": num, "batch_size": settings.batch_size,
                   "workers": settings.workers, "prefetch_factor": settings.prefetch_factor,
                   "epochs": epochs, "datasets": kinds, "libraries": ["objio", *peers],
                   "multiprocessing_context": context or "fork", "transform": "len(reader.read())",
                   "warm_up": "every object read once before the first epoch (untimed)"},
        "generation": {"generated": generated},
        "environment": environment(LIBRARIES),
    }

    def show(r: dict[str, Any]) -> None:
        if progress and console is not None:
            console.print(f"epoch {r['epoch']} {r['dataset']:<8} {r['library']:<16} "
                          f"{fmt(r['samples_per_s'], '.1f')} samples/s, cpu {r['cpu_s']:.2f} s",
                          highlight=False)

    access = Access.from_client(client)
    try:
        runs = _interleaved(["objio", *peers], kinds, epochs, data_uri, _len_read, access,
                            settings, show)
    finally:
        if generated and not keep:
            client.delete(data_uri)
    report["runs"] = runs
    report["summary"] = _summary(runs, None)
    return report


def print_report(report: Mapping[str, Any], console: Console | None = None, *,
                 wide: bool = False) -> None:
    """Render a :func:`run_training` / :func:`run_throughput` report as rich tables: the default
    columns fit :data:`~objio.bench.report.TABLE_WIDTH`; ``wide``: every column."""
    from rich.console import Console

    from .report import table, wrap

    console = console or Console()
    cfg = report["config"]
    if report["mode"] == "workload":
        console.print(wrap(
            f"{report['workload']} training emulation on {report['uri']}: "
            f"{plural(cfg['files'], 'file')} of {cfg['format']} x "
            f"{plural(cfg['samples_per_file'], 'sample')}, batch {cfg['batch_size']}, "
            f"{plural(cfg['workers'], 'worker')}, prefetch factor "
            f"{cfg['prefetch_factor']}, compute {cfg['compute_time_s'] * 1000:.1f} ms/step, "
            f"{cfg['dataset']} dataset, AU target {cfg['au_target_pct']:.0f} %"), highlight=False)
        gen = report.get("generation") or {}
        if gen.get("generated"):
            console.print(f"generated {plural(gen.get('files', 0), 'file')}, "
                          f"{format_size(gen.get('bytes', 0))} in {gen.get('seconds', 0):.1f} s",
                          highlight=False)
        ecols = [("epoch", "right", True), ("library", "left", True), ("steps", "right", True),
                 ("samples", "right", True), ("samples/s", "right", True),
                 ("MiB/s", "right", True), ("AU %", "right", True), ("AU met", "right", True),
                 ("CPU s", "right", True)]
        erows = [[str(r["epoch"]), r["library"], str(r["steps"]), str(r["samples"]),
                  fmt(r["samples_per_s"], ".1f"), fmt(r["mib_per_s"], ".1f"),
                  f"{r['au_pct']:.2f}", "yes" if r.get("au_met") else "no", f"{r['cpu_s']:.2f}"]
                 for r in report["runs"]]
        console.print(table("per epoch (first step excluded, as DLIO)", ecols, erows,
                            wide=wide, title_justify="center"))
    else:
        console.print(wrap(
            f"DataLoader throughput on {report['uri']}: {plural(cfg['num'], 'object')} of "
            f"{format_size(cfg['size'])}, batch {cfg['batch_size']}, "
            f"{plural(cfg['workers'], 'worker')}, no compute, "
            f"{plural(cfg['epochs'], 'epoch')} interleaved"), highlight=False)
    workload = report["mode"] == "workload"
    title = "summary (median over epochs" + ("; AU: mean over epochs)" if workload else ")")
    cols: list[tuple[str, str, bool]]
    if workload:  # DLIO's metrics first
        cols = [("dataset", "left", True), ("library", "left", True),
                ("samples/s", "right", True), ("MiB/s", "right", True), ("AU %", "right", True),
                ("epoch samples/s", "right", False), ("CPU s/epoch", "right", False),
                ("CPU ms/sample", "right", True), ("objio ratio", "right", True)]
    else:  # whole epochs first: short runs have too few steps for DLIO's first-step exclusion
        cols = [("dataset", "left", True), ("library", "left", True),
                ("samples/s", "right", True), ("MiB/s", "right", True),
                ("steady samples/s", "right", False), ("CPU s/epoch", "right", False),
                ("CPU ms/sample", "right", True), ("objio ratio", "right", True),
                ("ratio (steady)", "right", False)]
    rows: list[list[str]] = []
    for kind, libs in report["summary"].items():
        ratios = libs.get("objio_ratio", {})
        for lib, v in libs.items():
            if lib == "objio_ratio":
                continue
            r = ratios.get(lib, {}) if lib != "objio" else {}
            cpu = [fmt(v["cpu_s"], ".2f"), fmt(v["cpu_ms_per_sample"], ".3f")]
            if workload:
                au = v.get("au_pct")
                au_text = "-" if au is None else f"{au:.2f}" + (" met" if v.get("au_met") else " low")
                row = [kind, lib, fmt(v["samples_per_s"], ".1f"), fmt(v["mib_per_s"], ".1f"), au_text,
                       fmt(v["epoch_samples_per_s"], ".1f"), *cpu, times(r.get("samples_per_s"))]
            else:
                row = [kind, lib, fmt(v["epoch_samples_per_s"], ".1f"),
                       fmt(v["epoch_mib_per_s"], ".1f"), fmt(v["samples_per_s"], ".1f"), *cpu,
                       times(r.get("epoch_samples_per_s")), times(r.get("samples_per_s"))]
            rows.append(row)
    s = table(title, cols, rows, wide=wide, title_justify="center")
    console.print(s)
    if workload:
        console.print(wrap("samples/s, MiB/s, AU: first step excluded (DLIO); epoch samples/s: "
                           "all samples over the whole epoch, worker start-up included"),
                      highlight=False)
    else:
        console.print(wrap("samples/s, MiB/s: all samples over the whole epoch (worker start-up "
                           "included); steady: first step excluded, as DLIO"), highlight=False)
    if report.get("server") == "embedded":
        console.print(wrap("server: embedded SeaweedFS on loopback (client stack + local server, "
                           "no network); CPU: this process and its DataLoader workers"),
                      highlight=False)
