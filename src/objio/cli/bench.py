"""``objio bench``: parse the arguments, run one benchmark of :mod:`objio.bench`, print its
report (rich tables; ``--json FILE`` for the whole report).

Kinds (``objio bench KIND ...``; without a kind, ``objects``):

* ``objects`` (default): put + get of many objects, ``--compare`` with peer libraries;
  ``--op`` adds head, list, copy, delete and gen (:mod:`objio.bench.ops`); with
  ``--workload`` or ``--throughput`` the DataLoader training emulation instead.
* ``stream``: one large object through the file-like reader and writer vs boto3 and obstore.
* ``train``: the DataLoader training emulation alone (``--workload`` / ``--throughput``, with
  ``--compare [LIB]`` taking a value).
* ``checkpoint``: torch.save/torch.load and DCP checkpoints through objio vs s3torchconnector,
  with a local-disk baseline (:mod:`objio.bench.checkpoint`).
* ``model``: load a sharded safetensors model with objio (``load_safetensors``, the
  ``ModelConnector``), Run:ai Model Streamer, boto3 and s3torchconnector.
* ``list``: FastList against the sequential listing (``--keys``, ``--latency-ms``).

Every kind takes ``--plot FILE.png`` (matplotlib, extra ``plot``) and ``--json FILE``.

Exit codes: 0 success, 1 error (one line on stderr), 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Callable

from ..bench import train
from ..bench._common import (
    DEFAULT_BUCKET,
    EMBEDDED_SERVERS,
    endpoint_report,
    one_line,
    start_embedded,
)
from ..bench.objects import DEFAULT_PREFIX, parse_peers, print_report, run_bench
from ..bench.ops import OPS, parse_ops
from ..bench.peers import PEERS
from ..config import parse_size
from ..errors import ObjectStoreError
from ..uri import parse_uri
from ._common import add_global_flags, broken_pipe, client_from_args, write_json

KINDS = ("objects", "stream", "train", "checkpoint", "model", "list", "oplog")
"""The benchmarks ``objio bench KIND`` runs; ``objects`` when no kind is given."""

DESCRIPTION = (
    "Benchmarks of objio against its peers, side by side in one run. KIND is objects (the "
    "default: put+get of many objects; --workload/--throughput for the DataLoader training "
    "emulation), train (the training emulation alone), stream (one large object through "
    "file-like readers and writers), checkpoint (torch.save/torch.load and DCP checkpoints "
    "vs s3torchconnector), model (loading a sharded safetensors model) or list (FastList vs "
    "sequential listing).")

_PLOT_HELP = "also draw the results as a PNG (throughput per library; latencies where recorded)"


_WIDE_HELP = ("every column in the tables (default: the columns that fit a 100-column "
              "terminal; --json has every value)")


def _add_view_flags(parser: argparse.ArgumentParser) -> None:
    """``--wide`` and ``-q/--quiet`` on a bench kind's parser (each unless it has it already)."""
    existing = set(getattr(parser, "_option_string_actions", {}))
    if "--wide" not in existing:
        parser.add_argument("--wide", action="store_true", help=_WIDE_HELP)
    if "--quiet" not in existing and "-q" not in existing:
        parser.add_argument("-q", "--quiet", action="store_true",
                            help="no progress output and no 'wrote FILE' lines (the report "
                                 "tables and --json still print)")


def _plot(kind: str, report: Any, args: argparse.Namespace) -> None:
    """Draw ``--plot FILE.png`` and say ``wrote FILE.png`` on stderr (unless ``-q``)."""
    path = getattr(args, "plot", None)
    if path and kind == "clients":  # throughput per client over time, latency CDF
        from .. import report as op_report

        op_report.plot(op_report.read_logs(report["logs"]), report["report"], path)
        if not getattr(args, "quiet", False):
            print(f"wrote {path}", file=sys.stderr)
    elif path:
        from ..bench.report import plot_report

        plot_report(kind, report, path)
        if not getattr(args, "quiet", False):
            print(f"wrote {path}", file=sys.stderr)


def _fail(e: BaseException) -> int:
    """Report a benchmark that could not run: one line on stderr; the exit code (130 for
    Ctrl-C, else 1)."""
    if isinstance(e, BrokenPipeError):
        return broken_pipe()
    if isinstance(e, KeyboardInterrupt):
        print("objio bench: interrupted", file=sys.stderr)
        return 130
    kind = ("not found: " if isinstance(e, FileNotFoundError)
            else "access denied: " if isinstance(e, PermissionError) else "")
    print(f"objio bench: error: {kind}{one_line(e)}", file=sys.stderr)
    return 1


class _Target:
    """Where a benchmark runs: the ``uri`` argument, or (without one) an embedded local S3
    server that :meth:`open` starts and :func:`_guarded` stops when the run ends."""

    def __init__(self) -> None:
        self.server: Any = None
        self.endpoint: str | None = None
        self.client: Any = None  # objio's client of the run (its endpoint stats go in the report)
        self.kind = "s3"  # the embedded server's kind (--server), when one runs

    def open(self, args: argparse.Namespace, default_prefix: str) -> tuple[Any, str]:
        """(client, s3://bucket/prefix) of the run."""
        uri = getattr(args, "uri", None)
        kind = getattr(args, "server", None)
        if uri is None:
            self.server, client = start_embedded(kind) if kind else start_embedded()
            self.client = client
            self.kind = kind or "s3"
            scheme = EMBEDDED_SERVERS[self.kind][0]
            return client, f"{scheme}://{DEFAULT_BUCKET}/{default_prefix}"
        if kind is not None:
            raise ValueError(f"--server {kind} starts an embedded server: it does not combine "
                             f"with a URI ({uri!r})")
        client = client_from_args(args)
        self.client = client
        cfg = getattr(client, "config", None)  # for the report and the plot's title
        if cfg is not None:
            urls = getattr(cfg, "endpoint_urls", ()) or ()
            self.endpoint = ", ".join(urls) if urls else f"AWS S3 ({cfg.region})"
        return client, uri

    @property
    def embedded(self) -> bool:
        return self.server is not None


def _guarded(run: Callable[[_Target], int]) -> int:
    """Run one benchmark: its exit code; 1 with one line on stderr for an error (bad input, an
    unreachable or refusing server, a missing extra), 130 for Ctrl-C. An embedded server the
    run started is stopped in every case."""
    target = _Target()
    try:
        return run(target)
    except (KeyboardInterrupt, ObjectStoreError, OSError, ValueError, ImportError) as e:
        return _fail(e)
    finally:
        if target.server is not None:
            target.server.stop()


def _report_console(args: argparse.Namespace) -> Any:
    """The rich console the report tables go to: stderr when ``--json -`` takes stdout. Off a
    terminal (pipes default to 80 columns) it is TABLE_WIDTH (100) columns wide, the width
    the default tables are designed for; on a terminal, the terminal's width but at least
    that. With ``--wide`` it is at least 200 columns. A narrower terminal then wraps the long
    rows itself, but rich never squeezes a column: no number is cut."""
    from rich.console import Console

    from ..bench.report import TABLE_WIDTH

    out = Console(stderr=True) if getattr(args, "json", None) == "-" else Console()
    if getattr(args, "wide", False):
        out.width = max(out.width, 200)
    elif not out.is_terminal:
        out.width = TABLE_WIDTH
    else:
        out.width = max(out.width, TABLE_WIDTH)
    return out


def _wide(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "wide", False))


def _log(args: argparse.Namespace) -> Callable[[str], None]:
    """Progress lines: none with ``-q``; to stderr when ``--json -`` takes stdout."""
    if getattr(args, "quiet", False):
        return lambda line: None
    if getattr(args, "json", None) == "-":
        return lambda line: print(line, file=sys.stderr)
    return print


def _text_out(args: argparse.Namespace) -> Any:
    """Where plain-text reports go: stderr when ``--json -`` takes stdout."""
    return sys.stderr if getattr(args, "json", None) == "-" else sys.stdout


def _finish(kind: str, report: dict[str, Any], args: argparse.Namespace, target: _Target,
            show: Callable[[dict[str, Any]], None],
            before_json: Callable[[dict[str, Any]], None] | None = None) -> int:
    """The end of every benchmark: show the report, ``--plot`` it, write ``--json``."""
    if target.embedded:
        report["server"] = ("embedded" if target.kind == "s3"
                            else f"embedded {EMBEDDED_SERVERS[target.kind][1]}")
    elif target.endpoint and "server" not in report:
        report["server"] = target.endpoint
    report.setdefault("date", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    if target.client is not None and "endpoints" not in report:
        report["endpoints"] = endpoint_report(target.client)
    show(report)
    _plot(kind, report, args)
    path = getattr(args, "json", None)
    if path:
        if before_json is not None:
            before_json(report)
        write_json(path, report)
    return 0


def _compare_value(args: argparse.Namespace) -> None:
    """``--compare`` takes an optional value, so ``objio bench --compare s3://b/p`` would read
    the URI as the value: give it back to the URI (``--compare`` alone then)."""
    value = getattr(args, "compare", None)
    if isinstance(value, str) and getattr(args, "uri", None) is None and (
            "://" in value or value.startswith(("/", ".", "~"))):
        args.uri, args.compare = value, True


_CLIENTS_HELP = ("run the benchmark from N client processes on this host (spawned), each "
                 "its own share of the work and its own op-log; one report over their common "
                 "window (without it, under torchrun / mpirun / srun every rank takes its share)")
_GATHER_HELP = ("under mpirun/srun without torch.distributed or mpi4py: a folder every rank "
                "reaches (shared file system across hosts); default on one host: a temp folder "
                "named after the launcher (else OBJIO_GATHER_DIR)")


def _add_split_flags(parser: argparse.ArgumentParser) -> None:
    """``--clients N`` and ``--gather-dir DIR`` on a bench kind's parser (unless present)."""
    existing = set(getattr(parser, "_option_string_actions", {}))
    if "--clients" not in existing:
        parser.add_argument("--clients", type=int, default=None, metavar="N", help=_CLIENTS_HELP)
    if "--gather-dir" not in existing:
        parser.add_argument("--gather-dir", default=None, metavar="DIR", help=_GATHER_HELP)


def _split_mode(args: argparse.Namespace) -> str | None:
    """"clients" (``--clients N``), "launcher" (torchrun/mpirun/srun gave this process a rank
    of several) or None (one process)."""
    from ..bench.ranks import world

    if getattr(args, "clients", None) is not None:
        if args.clients < 1:
            raise ValueError(f"--clients must be >= 1, got {args.clients}")
        return "clients"
    return "launcher" if world()[1] > 1 else None


def _refuse(args: argparse.Namespace, *names: str) -> None:
    """Options a split run does not honour: a ValueError naming the first one given."""
    for name in names:
        v = getattr(args, name, None)
        if v not in (None, False, 0, 0.0):
            raise ValueError(f"--{name.replace('_', '-')} does not combine with --clients or a "
                             "launcher (every rank runs objio's share of the work)")


def _run_split(args: argparse.Namespace, target: _Target, default_prefix: str,
               make_task: Callable[[str], Any], *, keep: bool) -> int:
    """Run one kind split over ranks (:mod:`objio.bench.split`): ``--clients N`` processes or
    this rank of a launcher; rank 0 (or the parent) prints the report, the others nothing."""
    from ..bench.split import print_split, run_launched, run_spawned

    mode = _split_mode(args)
    if mode == "launcher" and getattr(args, "uri", None) is None:
        from ..bench.ranks import world

        rank, n = world()
        raise ValueError(f"rank {rank} of {n}: under a launcher every rank must reach the same "
                         "store: give s3://bucket/prefix (and the endpoint)")
    client, prefix = target.open(args, default_prefix)
    # this process's client only writes the data (without its op-log): its endpoint stats
    # would say nothing, and with --op-log it would open (truncate) rank 0's op-log
    target.client = None
    if parse_uri(prefix).scheme != "s3":
        raise ValueError(f"objio bench needs an s3://bucket/prefix URI, got {prefix!r}")
    task = make_task(prefix)
    if mode == "launcher":
        rep = run_launched(client, task, keep=keep, gather_dir=getattr(args, "gather_dir", None))
        if rep is None:
            return 0
    else:
        rep = run_spawned(client, task, clients=args.clients, keep=keep,
                          server_cpu=None if target.server is None else target.server.cpu_seconds)
    return _finish("clients", rep, args, target, lambda r: print_split(r, task, _text_out(args)))


def configure_objects_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``objio bench`` arguments to ``parser`` (a subcommand parser); returns it."""
    parser.description = (
        "DLIO-style benchmark: write NUM synthetic objects of SIZE bytes, read them back "
        "EPOCHS times, and report MiB/s, objects/s, latency percentiles and client CPU. "
        "Without URI, an embedded SeaweedFS S3 server is started on loopback.")
    parser.add_argument("uri", nargs="?", default=None,
                        help="s3://bucket/prefix to benchmark (the bucket must exist); "
                             "default: an embedded local server, s3://objio-bench/bench/")
    parser.add_argument("--num", type=int, default=None, help="number of objects (default 64)")
    parser.add_argument("--size", default=None,
                        help="bytes per object, e.g. 128KiB, 16MiB (default 1MiB)")
    parser.add_argument("--object-type", default="RAW", metavar="TYPE",
                        help="RAW (default), NPZ, TFRECORD or HDF5 (case-insensitive)")
    parser.add_argument("--max-in-flight", type=int, default=64,
                        help="concurrent requests, for objio and every peer (default 64)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="how many times the objects are read back (default 3)")
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="write the full report as JSON to FILE ('-' = stdout)")
    parser.add_argument("--keep", action="store_true",
                        help="do not delete the objects afterwards")
    parser.add_argument("--compare", nargs="?", const=True, default=None, metavar="PEERS",
                        help="also read the objects with peer libraries, interleaved per epoch: "
                             f"all of {','.join(PEERS)}, or a comma list of them (with "
                             "--workload/--throughput: s3torchconnector, or none)")
    parser.add_argument("--peers", default=None, metavar="LIST",
                        help=f"comma list of peers for --compare (implies it); default all: "
                             f"{','.join(PEERS)}")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data (default 0)")
    parser.add_argument("--op", default=None, metavar="OPS",
                        help=f"comma list of operations to measure: {','.join(OPS)} (default "
                             "put,get, as without --op). head/list/copy/delete/gen (and put "
                             "named here, with --compare) "
                             "run EPOCHS interleaved rounds of objio and every peer that has "
                             "the operation; gen writes NUM files of the cosmoflow preset "
                             "(objio gen) vs s3dlio's typed put")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--plot", metavar="FILE.png", default=None, help=_PLOT_HELP)
    _add_server_flag(parser)
    _add_split_flags(parser)
    return parser


_SERVER_HELP = ("the embedded server started without a URI: s3 (SeaweedFS, the default), azure "
                "(Azurite: az://, make install-azurite) or gcs (fake-gcs-server: gs://); the "
                "report then gives the server's CPU per MiB beside each client's")


def _add_server_flag(parser: argparse.ArgumentParser) -> None:
    """``--server s3|azure|gcs`` on a bench kind's parser."""
    parser.add_argument("--server", default=None, choices=list(EMBEDDED_SERVERS),
                        help=_SERVER_HELP)


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``objio bench`` from parsed arguments; returns the process exit code (0 success,
    1 error with a one-line message on stderr, 130 interrupted)."""
    return _guarded(lambda target: _objects(args, target))


def _objects(args: argparse.Namespace, target: _Target) -> int:
    from rich.console import Console

    # None = not given (the training emulation, sharing this parser, has other defaults)
    args.num = 64 if args.num is None else args.num
    args.epochs = 3 if args.epochs is None else args.epochs
    size = parse_size("1MiB" if args.size is None else args.size, "--size")
    from ..formats import normalize_object_type

    otype = normalize_object_type(args.object_type)
    op_arg = getattr(args, "op", None)
    ops = None if op_arg is None else parse_ops(op_arg)
    _compare_value(args)
    named = args.compare if isinstance(args.compare, str) else None
    peers = parse_peers(args.peers if named is None else named)
    compare = bool(args.compare) or peers is not None
    for flag, v in (("--num", args.num), ("--epochs", args.epochs),
                    ("--max-in-flight", args.max_in_flight)):
        if v < 1:
            raise ValueError(f"{flag} must be >= 1, got {v}")
    err_console = Console(stderr=True)
    progress = not args.no_progress and not getattr(args, "quiet", False) \
        and err_console.is_terminal
    scheme = (parse_uri(args.uri).scheme if args.uri is not None
              else EMBEDDED_SERVERS[args.server or "s3"][0])
    if scheme not in ("s3", "az", "gs"):
        raise ValueError("objio bench needs an s3://, az:// or gs:// bucket/prefix URI, got "
                         f"{args.uri!r}")
    if scheme != "s3" and (ops is not None or _split_mode(args)):
        raise ValueError(f"on {scheme}:// objio bench measures the put and get phases (with "
                         "--compare obstore); --op and --clients need s3://")
    if _split_mode(args):
        if compare or ops is not None:
            raise ValueError("--clients N (or a launcher) runs objio's get phase on every rank; "
                             "it does not combine with --compare or --op")
        from ..bench.shares import Objects

        return _run_split(args, target, DEFAULT_PREFIX, lambda prefix: Objects(
            prefix, num=args.num, size=size, epochs=args.epochs,
            max_in_flight=args.max_in_flight), keep=args.keep)
    client, prefix = target.open(args, DEFAULT_PREFIX)

    report = run_bench(client, prefix, num=args.num, size=size, object_type=otype,
                       max_in_flight=args.max_in_flight, epochs=args.epochs, compare=compare,
                       peers=peers, seed=args.seed, keep=args.keep, progress=progress,
                       console=err_console, latency_samples=bool(args.plot), ops=ops,
                       local_server=target.server)

    def drop_samples(r: dict[str, Any]) -> None:  # for the plot only
        r["phases"].get("get", {}).pop("latency_samples_ms", None)

    return _finish("objects", report, args, target,
                   lambda r: print_report(r, _report_console(args), wide=_wide(args)),
                   drop_samples)


_TRAIN_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--workload",), dict(default=None, choices=sorted(train.PRESETS),
                           help="emulate DLIO training of this workload (H100 settings)")),
    (("--throughput",), dict(action="store_true",
                             help="DataLoader throughput of objio vs s3torchconnector on RAW "
                                  "objects of --size bytes (--num of them)")),
    (("--scale",), dict(type=float, default=None,
                        help="multiply the workload's file count by this (0 < s <= 1); default "
                             "1 with a URI; on the embedded server unet3d 0.25, resnet50 0.008, "
                             "cosmoflow 0.0008")),
    (("--batch-size",), dict(type=int, default=None, help="samples per step (default: DLIO's)")),
    (("--workers",), dict(type=int, default=None,
                          help="DataLoader workers (default: DLIO's read_threads)")),
    (("--prefetch-factor",), dict(type=int, default=None,
                                  help="DataLoader prefetch_factor (default: DLIO's)")),
    (("--epochs",), dict(type=int, default=None, help="epochs (default: DLIO's, 5; throughput 3)")),
    (("--compute-time",), dict(type=float, default=None,
                               help="seconds of emulated compute per step (default: DLIO's "
                                    "per-accelerator value)")),
    (("--dataset",), dict(default=None,
                          help="map or iterable (throughput: comma list, default both)")),
    (("--compare",), dict(nargs="?", const="s3torchconnector", default=None, metavar="LIB",
                          help="also run the same loop with s3torchconnector (the default "
                               "with --throughput; 'none' to skip)")),
    (("--size",), dict(default=None, help="throughput: bytes per object (default 128KiB)")),
    (("--num",), dict(type=int, default=None, help="throughput: number of objects (default 2048)")),
    (("--json",), dict(metavar="FILE", default=None, help="write the report as JSON ('-' = stdout)")),
    (("--keep",), dict(action="store_true",
                       help="keep data this run generated (with a URI; default: delete it)")),
    (("--seed",), dict(type=int, default=0, help="dataset and sampler seed (default 0)")),
    (("--multiprocessing-context",), dict(default=None, choices=["fork", "spawn", "forkserver"],
                                          help="DataLoader worker start method (default fork)")),
    (("--persistent-workers",), dict(action="store_true",
                                     help="keep DataLoader workers across epochs")),
    (("--no-decode",), dict(action="store_true",
                            help="only read each object, skip the format's decoding")),
    (("--no-progress",), dict(action="store_true", help="no progress output")),
    (("--plot",), dict(metavar="FILE.png", default=None, help=_PLOT_HELP)),
]


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the training-emulation options to ``parser`` (e.g. the ``objio bench`` parser).
    Options the parser already has (such as bench's ``--json``, ``--keep``, ``--seed``) are
    left as they are and read from the same attribute. Returns the parser.

    Note: bench's ``--compare`` (optional value) is reused: alone it means s3torchconnector
    here; bench's ``--epochs``/``--size``/``--num`` defaults stay None, so the training
    defaults apply."""
    existing = set(getattr(parser, "_option_string_actions", {}))
    for flags, kw in _TRAIN_OPTIONS:
        if not any(f in existing for f in flags):
            parser.add_argument(*flags, **kw)
    return parser


def configure_train_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """A complete parser for ``objio bench train``: the URI and every training option."""
    parser.description = (
        "DLIO-style training emulation (--workload) and DataLoader throughput (--throughput) "
        "of objio's PyTorch datasets, optionally against s3torchconnector. Without URI an "
        "embedded SeaweedFS S3 server is started on loopback.")
    parser.add_argument("uri", nargs="?", default=None,
                        help="s3://bucket/prefix for the data (the bucket must exist); "
                             "default: an embedded local server")
    _add_split_flags(parser)
    return add_train_arguments(parser)


def _int_opt(args: argparse.Namespace, name: str) -> int | None:
    v = getattr(args, name, None)
    return None if v is None else int(v)


def run_train_from_args(args: argparse.Namespace) -> int:
    """Run ``objio bench --workload ...`` / ``--throughput`` from parsed arguments; returns the
    exit code (0 success, 1 error with a one-line message on stderr, 130 interrupted)."""
    return _guarded(lambda target: _train(args, target))


def _train(args: argparse.Namespace, target: _Target) -> int:
    from rich.console import Console

    workload = getattr(args, "workload", None)
    throughput = bool(getattr(args, "throughput", False))
    if not workload and not throughput:
        raise ValueError("give --workload unet3d|resnet50|cosmoflow or --throughput")
    if workload and throughput:
        raise ValueError("--workload and --throughput are exclusive")
    if getattr(args, "server", None) not in (None, "s3"):
        raise ValueError(f"--server {args.server}: the training emulation runs on the embedded "
                         "s3 server or a URI")
    _compare_value(args)
    compare_arg = getattr(args, "compare", None)
    compare = train.parse_compare(compare_arg) if compare_arg is not None else \
        (["s3torchconnector"] if throughput else [])
    for name, minimum in (("batch_size", 1), ("workers", 0), ("prefetch_factor", 1),
                          ("epochs", 1), ("num", 1)):
        v = _int_opt(args, name)
        if v is not None and v < minimum:
            raise ValueError(f"--{name.replace('_', '-')} must be >= {minimum}, got {v}")
    ct = getattr(args, "compute_time", None)
    if ct is not None and not ct >= 0:
        raise ValueError(f"--compute-time must be >= 0 seconds, got {ct}")
    scale_arg = getattr(args, "scale", None)
    if scale_arg is not None and not 0 < scale_arg <= 1:
        raise ValueError(f"--scale must be in (0, 1], got {scale_arg}")
    err = Console(stderr=True)
    progress = not getattr(args, "no_progress", False) and not getattr(args, "quiet", False) \
        and err.is_terminal
    if _split_mode(args):
        return _train_split(args, target, workload, compare_arg)
    client, prefix = target.open(args, f"{workload or 'throughput'}/")
    keep = bool(getattr(args, "keep", False)) or target.embedded
    context = getattr(args, "multiprocessing_context", None)
    if workload:
        scale = getattr(args, "scale", None)
        if scale is None:
            scale = train.EMBEDDED_SCALE[workload] if target.embedded else 1.0
        report = train.run_training(
            client, prefix, workload, scale=scale, batch_size=_int_opt(args, "batch_size"),
            workers=_int_opt(args, "workers"), prefetch_factor=_int_opt(args, "prefetch_factor"),
            epochs=_int_opt(args, "epochs"), compute_time=getattr(args, "compute_time", None),
            dataset=getattr(args, "dataset", None), compare=compare, keep=keep,
            seed=int(getattr(args, "seed", 0) or 0), context=context,
            persistent_workers=bool(getattr(args, "persistent_workers", False)),
            decode=not getattr(args, "no_decode", False), progress=progress, console=err)
    else:
        kinds = [k.strip() for k in (getattr(args, "dataset", None) or "map,iterable").split(",")
                 if k.strip()]
        size = getattr(args, "size", None) or "128KiB"
        report = train.run_throughput(
            client, prefix, size=parse_size(size, "--size"),
            num=_int_opt(args, "num") or 2048, datasets=kinds,
            batch_size=_int_opt(args, "batch_size") or 32,
            workers=2 if _int_opt(args, "workers") is None else int(args.workers),
            prefetch_factor=_int_opt(args, "prefetch_factor") or 2,
            epochs=_int_opt(args, "epochs") or 3, compare=compare, keep=keep,
            context=context, progress=progress, console=err)
    code = _finish("train", report, args, target,
                   lambda r: train.print_report(r, _report_console(args), wide=_wide(args)))
    if report.get("au_warning"):  # last, so it is seen (one line, stderr; also in --json)
        print(f"objio bench: warning: {report['au_warning']}", file=sys.stderr)
    return code


def _train_split(args: argparse.Namespace, target: _Target, workload: str | None,
                 compare_arg: Any) -> int:
    """``--workload`` under ``--clients N`` or a launcher: every rank trains on its files."""
    from ..bench.shares import Train

    if not workload:
        raise ValueError("--throughput does not split over ranks (it compares libraries in one "
                         "process); use --workload, or objio bench --clients N for objects")
    if compare_arg not in (None, "none"):
        raise ValueError("--compare does not combine with --clients or a launcher (every rank "
                         "runs objio's share of the work)")
    _refuse(args, "persistent_workers")
    preset = train.PRESETS[workload]
    scale = getattr(args, "scale", None)
    settings = train.LoopSettings(
        batch_size=_int_opt(args, "batch_size") or preset.batch_size,
        workers=preset.read_threads if _int_opt(args, "workers") is None else int(args.workers),
        prefetch_factor=_int_opt(args, "prefetch_factor") or preset.prefetch_factor,
        compute_time=preset.computation_time if getattr(args, "compute_time", None) is None
        else float(args.compute_time),
        seed=int(getattr(args, "seed", 0) or 0),
        context=getattr(args, "multiprocessing_context", None))
    epochs = _int_opt(args, "epochs") or preset.epochs

    def make(prefix: str) -> Train:
        s = scale if scale is not None else (
            train.EMBEDDED_SCALE[workload] if target.embedded else 1.0)
        return Train(prefix, workload=workload, scale=s, settings=settings, epochs=epochs,
                     dataset=getattr(args, "dataset", None) or preset.dataset,
                     decode=not getattr(args, "no_decode", False), seed=settings.seed)

    return _run_split(args, target, f"{workload}/", make, keep=True)


# ------------------------------------------------------------------------------ stream
def configure_stream_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``objio bench stream`` arguments to ``parser``; returns it."""
    from ..bench.stream import CASES

    labels = sorted({k for cases in CASES.values() for k in cases})
    parser.description = (
        "One large object written and read through file-like streams by objio "
        "(objio.open), boto3 (upload_fileobj/download_fileobj) and obstore, each run in a "
        "fresh forked process on an embedded LocalS3Server (--server azure|gcs: Azurite or "
        "fake-gcs-server, objio vs obstore), rounds interleaved.")
    parser.add_argument("--size", default="1GiB", help="object size (default 1GiB)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, interleaved (default 3)")
    parser.add_argument("--chunk", default="8MiB", help="bytes per read/write call (default 8MiB)")
    parser.add_argument("--ops", default="write,read", help="comma list of write, read")
    parser.add_argument("--libs", default=None,
                        help=f"comma list of {', '.join(labels)} (default: all)")
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="also write the report as JSON to FILE ('-' = stdout)")
    parser.add_argument("--plot", metavar="FILE.png", default=None, help=_PLOT_HELP)
    _add_server_flag(parser)
    return parser


def run_stream_from_args(args: argparse.Namespace) -> int:
    """Run ``objio bench stream`` from parsed arguments; returns the exit code."""
    return _guarded(lambda target: _stream(args, target))


def _stream(args: argparse.Namespace, target: _Target) -> int:
    from ..bench import stream

    size = parse_size(args.size, "--size")
    chunk = parse_size(args.chunk, "--chunk")
    if args.rounds < 1 or chunk < 1:
        raise ValueError("--rounds and --chunk must be >= 1")
    ops = [o.strip() for o in args.ops.split(",") if o.strip()]
    if not ops or set(ops) - set(stream.CASES):
        raise ValueError(f"--ops must be a comma list of {', '.join(stream.CASES)}")
    libs = None
    if args.libs:
        libs = [x.strip() for x in args.libs.split(",") if x.strip()]
        known = {k for cases in stream.CASES.values() for k in cases}
        if not libs or set(libs) - known:
            raise ValueError(f"--libs must be a comma list of {', '.join(sorted(known))}")
    if args.server in (None, "s3"):
        report = stream.run(size, args.rounds, chunk, ops=ops, libs=libs, log=_log(args))
        report.setdefault("server", "embedded")  # stream.run starts its own LocalS3Server
    else:  # an emulator: started here, stopped by _guarded
        target.server, _ = start_embedded(args.server)
        target.kind = args.server
        report = stream.run(size, args.rounds, chunk, target.server, ops=ops, libs=libs,
                            log=_log(args), scheme=EMBEDDED_SERVERS[args.server][0])
    return _finish("stream", report, args, target, lambda r: stream.print_report(r, _text_out(args)))


# ------------------------------------------------------------------------------ checkpoint
def configure_checkpoint_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``objio bench checkpoint`` arguments to ``parser``; returns it."""
    from ..bench.checkpoint import CASES, PRESETS

    parser.description = (
        "Save and load a transformer-shaped state dict (bf16 weights + fp32 Adam state, many "
        "tensors of mixed sizes) with torch.save/torch.load through objio's S3Checkpoint and "
        "s3torchconnector's, with torch.distributed.checkpoint on --ranks real processes "
        "through both libraries' S3StorageWriter/S3StorageReader, and to a local file as a "
        "baseline; rounds interleaved with the order rotated. Reports GiB/s, client CPU s/GiB, "
        "peak RSS and the ratios to s3torchconnector. Without URI an embedded SeaweedFS S3 "
        "server is started on loopback.")
    parser.add_argument("uri", nargs="?", default=None,
                        help="s3://bucket/prefix to write the checkpoints under (the bucket must "
                             "exist; everything written is deleted afterwards); default: an "
                             "embedded local server")
    parser.add_argument("--size", default=None,
                        help="total bytes of the state dict, e.g. 256MiB, 1GiB (default 1GiB; "
                             "with --workload: the preset's size x --scale)")
    parser.add_argument("--ranks", type=int, default=None,
                        help="processes of the DCP cases (default 2; with --workload: the "
                             "preset's)")
    parser.add_argument("--threads", type=int, default=4,
                        help="files each DCP rank writes (and reads) at once, for both "
                             "libraries (default 4)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds of every case, interleaved (default 2)")
    parser.add_argument("--cases", default=None, metavar="LIST",
                        help=f"comma list of {', '.join(CASES)} (default: all)")
    parser.add_argument("--workload", default=None, choices=sorted(PRESETS),
                        help="an MLPerf Storage v2.0 checkpointing workload (published total "
                             "size and process count, from mlcommons/storage "
                             "mlpstorage/config.py); use with --scale")
    parser.add_argument("--scale", type=float, default=None,
                        help="with --workload: multiply the preset's size by this (0 < s <= 1; "
                             "default 1)")
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="write the full report as JSON to FILE ('-' = stdout)")
    parser.add_argument("--plot", metavar="FILE.png", default=None, help=_PLOT_HELP)
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress output (it is shown on a terminal only)")
    _add_split_flags(parser)
    return parser


def run_checkpoint_from_args(args: argparse.Namespace) -> int:
    """Run ``objio bench checkpoint`` from parsed arguments; returns the exit code (0 success,
    1 error with a one-line message on stderr, 130 interrupted)."""
    return _guarded(lambda target: _checkpoint(args, target))


def _checkpoint(args: argparse.Namespace, target: _Target) -> int:
    from rich.console import Console

    from ..bench import checkpoint as ck

    workload = args.workload
    if args.scale is not None and workload is None:
        raise ValueError("--scale applies to --workload presets only")
    if args.scale is not None and not 0 < args.scale <= 1:
        raise ValueError(f"--scale must be in (0, 1], got {args.scale}")
    if workload is not None:
        preset = ck.PRESETS[workload]
        if args.size is not None:
            raise ValueError("--size and --workload are exclusive (use --scale)")
        scale = 1.0 if args.scale is None else args.scale
        size = int(preset.total_bytes * scale)
        ranks = preset.ranks if args.ranks is None else args.ranks
    else:
        scale = None
        size = parse_size("1GiB" if args.size is None else args.size, "--size")
        ranks = 2 if args.ranks is None else args.ranks
    if _split_mode(args):
        from ..bench.shares import Checkpoint

        _refuse(args, "cases", "ranks")
        return _run_split(args, target, "checkpoint/",
                          lambda prefix: Checkpoint(prefix.rstrip("/") + "/split/", size=size),
                          keep=False)
    cases = list(ck.CASES) if args.cases is None else \
        [c.strip() for c in args.cases.split(",") if c.strip()]
    err = Console(stderr=True)
    show = not args.no_progress and not getattr(args, "quiet", False) and err.is_terminal
    client, prefix = target.open(args, "checkpoint")
    progress: Any = None
    task: Any = None
    if show:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        progress = Progress(TextColumn("{task.description:<36}"), BarColumn(),
                            MofNCompleteColumn(), TimeElapsedColumn(), console=err)
        progress.start()
        task = progress.add_task("checkpoint", total=args.rounds * len(cases))

    started = [0]

    def advance(label: str) -> None:  # a run starts: the previous one is done
        if progress is not None:
            progress.update(task, description=label, advance=1 if started[0] else 0)
        started[0] += 1

    def log(line: str) -> None:
        if progress is not None:
            progress.console.print(line)

    try:
        report = ck.run_checkpoint(client, prefix, size=size, ranks=ranks,
                                   rounds=args.rounds, threads=args.threads, cases=cases,
                                   workload=workload, scale=scale, log=log, advance=advance)
    finally:
        if progress is not None:
            progress.stop()
    return _finish("checkpoint", report, args, target,
                   lambda r: ck.print_report(r, _report_console(args), wide=_wide(args)))


# ------------------------------------------------------------------------------ model, list
def _common_uri_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("uri", nargs="?", default=None,
                        help=f"s3://bucket/prefix for {what} (the bucket must exist); default: "
                             "an embedded local server")
    parser.add_argument("--latency-ms", type=float, default=0.0, metavar="N",
                        help="add N ms to every request with a delay proxy between the clients "
                             "and the server, to emulate a store in another region (default 0)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds, cases interleaved, order rotated (default 3)")
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="also write the report as JSON to FILE ('-' = stdout)")
    parser.add_argument("--plot", metavar="FILE.png", default=None, help=_PLOT_HELP)


def configure_model_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``objio bench model`` arguments to ``parser``; returns it."""
    from ..bench.model import CASES, DEFAULT_MODEL, DEFAULT_SHARDS
    from ..gen.models import MODELS

    parser.description = (
        "Load a sharded safetensors model (synthetic, shaped like a real checkpoint, generated "
        "once) into torch tensors with objio (load_safetensors; ModelConnector open-all-then-"
        "read), Run:ai Model Streamer, boto3 and s3torchconnector (get_object/S3Reader + "
        "safetensors.torch.load). Each run in a fresh process, cases interleaved; reports "
        "GiB/s, time to first tensor, client CPU s/GiB and peak RSS growth.")
    _common_uri_options(parser, "the model")
    parser.add_argument("--model", default=DEFAULT_MODEL, type=str.lower, choices=sorted(MODELS),
                        help=f"model preset whose shape is scaled to --size (default {DEFAULT_MODEL})")
    parser.add_argument("--size", default="2GiB", help="model bytes, e.g. 2GiB (default 2GiB)")
    parser.add_argument("--shards", type=int, default=DEFAULT_SHARDS,
                        help=f"number of safetensors shards (default {DEFAULT_SHARDS})")
    parser.add_argument("--libs", default=None, metavar="LIST",
                        help=f"comma list of cases (default all): {','.join(CASES)}")
    parser.add_argument("--max-in-flight", type=int, default=32,
                        help="concurrent requests for objio; threads (one per shard, at most "
                             "this many) for boto3 and s3torchconnector (default 32)")
    parser.add_argument("--prefetch-memory", default=None,
                        help="the ModelConnector's prefetch budget, e.g. 1GiB (default: its own, "
                             "min(4 GiB, RAM/4))")
    parser.add_argument("--keep", action=argparse.BooleanOptionalAction, default=True,
                        help="keep the generated model for the next run (default: keep)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model's bytes (default 0)")
    _add_split_flags(parser)
    return parser


def run_model_from_args(args: argparse.Namespace) -> int:
    """Run ``objio bench model`` from parsed arguments; returns the exit code."""
    return _guarded(lambda target: _model(args, target))


def _model(args: argparse.Namespace, target: _Target) -> int:
    from ..bench import model

    size = parse_size(args.size, "--size")
    libs = None
    if args.libs:
        libs = [x.strip() for x in args.libs.split(",") if x.strip()]
        if not libs or set(libs) - set(model.CASES):
            raise ValueError(f"--libs must be a comma list of {', '.join(model.CASES)}")
    if args.latency_ms < 0:
        raise ValueError(f"--latency-ms must be >= 0, got {args.latency_ms}")
    budget = None if args.prefetch_memory is None else parse_size(args.prefetch_memory,
                                                                  "--prefetch-memory")
    if _split_mode(args):
        from ..bench.shares import Model

        _refuse(args, "libs", "latency_ms", "prefetch_memory")
        return _run_split(args, target, model.DEFAULT_PREFIX, lambda prefix: Model(
            prefix, model=args.model, size=size, shards=args.shards,
            max_in_flight=args.max_in_flight, seed=args.seed), keep=True)
    client, prefix = target.open(args, model.DEFAULT_PREFIX)
    report = model.run_model_bench(
        client, prefix, model=args.model, size=size, shards=args.shards, rounds=args.rounds,
        libs=libs, max_in_flight=args.max_in_flight, prefetch_memory=budget,
        latency_ms=args.latency_ms, keep=args.keep or target.embedded, seed=args.seed,
        log=_log(args))
    return _finish("model", report, args, target,
                   lambda r: model.print_report(r, _report_console(args), wide=_wide(args)))


def configure_list_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``objio bench list`` arguments to ``parser``; returns it."""
    from ..bench.listing import LAYOUTS

    parser.description = (
        "List a prefix of --keys keys sequentially (one ListObjectsV2 after another: ObjectInfo, "
        "and keys only), with FastList (concurrent requests over disjoint key ranges) and with "
        "obstore's and boto3's sequential listings, rounds interleaved; checks all give the "
        "same keys and reports seconds, keys/s, client CPU per key, the ratios to obstore and "
        "FastList's speedup. The keys are created once and kept.")
    _common_uri_options(parser, "the keys")
    parser.add_argument("--keys", type=int, default=100_000, help="number of keys (default 100000)")
    parser.add_argument("--layout", default="uniform", choices=LAYOUTS,
                        help="uniform ({i:06d}.bin) or skewed (99%% under big/) (default uniform)")
    parser.add_argument("--max-in-flight", type=int, default=32,
                        help="FastList's concurrent requests (default 32)")
    parser.add_argument("--peers", default=None, metavar="LIST",
                        help="comma list of peers whose sequential listing is measured too: "
                             "obstore, boto3 (default: both, when installed); 'none' for none")
    _add_split_flags(parser)
    return parser


def run_list_from_args(args: argparse.Namespace) -> int:
    """Run ``objio bench list`` from parsed arguments; returns the exit code."""
    return _guarded(lambda target: _list(args, target))


def _list(args: argparse.Namespace, target: _Target) -> int:
    from ..bench import listing

    if args.latency_ms < 0:
        raise ValueError(f"--latency-ms must be >= 0, got {args.latency_ms}")
    peers = None
    if args.peers is not None:
        peers = [p.strip() for p in args.peers.split(",") if p.strip() and p.strip() != "none"]
        unknown = [p for p in peers if p not in listing.PEER_CASES]
        if unknown:
            raise ValueError(f"--peers must be a comma list of {', '.join(listing.PEER_CASES)} "
                             f"(or none), got {args.peers!r}")
    if _split_mode(args):
        from ..bench.shares import Listing

        _refuse(args, "latency_ms", "peers")
        return _run_split(args, target, "", lambda prefix: Listing(
            prefix, keys=args.keys, layout=args.layout), keep=True)
    client, prefix = target.open(args, "")
    report = listing.run_list_bench(client, prefix, keys=args.keys, layout=args.layout,
                                    latency_ms=args.latency_ms, rounds=args.rounds,
                                    max_in_flight=args.max_in_flight, peers=peers,
                                    log=_log(args),
                                    server_cpu=None if target.server is None
                                    else target.server.cpu_seconds)
    return _finish("list", report, args, target,
                   lambda r: listing.print_report(r, _text_out(args)))


# ------------------------------------------------------------------------------ the command
def _run_objects(args: argparse.Namespace) -> int:
    """``objio bench [objects]``: put+get, or with --workload/--throughput the training
    emulation of :mod:`objio.bench.train`."""
    if getattr(args, "workload", None) or getattr(args, "throughput", False):
        return run_train_from_args(args)
    return run_from_args(args)


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add every ``objio bench`` kind to ``parser`` (the ``bench`` subcommand, or the parser of
    ``python -m objio.bench``) as sub-parsers; returns it. Use :func:`normalize_argv` on the
    arguments so that a missing kind means ``objects``."""
    kinds = parser.add_subparsers(dest="bench_kind", metavar="KIND")
    kinds.required = True
    p = kinds.add_parser(
        "objects", help="put+get of many objects, --compare with peers (the default kind)",
        description="Put then get synthetic objects and report MiB/s, objects/s, latency "
                    "percentiles (time to first byte, total) and client CPU; --compare runs "
                    "the same get phase with peers (obstore, boto3, s3torchconnector, s3dlio); "
                    "--op head,list,copy,delete,gen (and put) measures the other operations, "
                    "objio and each peer that has them, interleaved. "
                    "--workload / --throughput run the DataLoader training emulation instead.")
    add_global_flags(p)
    configure_objects_parser(p)
    add_train_arguments(p)  # --workload / --throughput: the DataLoader training emulation
    _add_view_flags(p)
    p.set_defaults(func=_run_objects)
    p = kinds.add_parser("train", help="DataLoader training emulation / throughput "
                                       "(--workload, --throughput)")
    add_global_flags(p)
    configure_train_parser(p)
    _add_view_flags(p)
    p.set_defaults(func=run_train_from_args)
    p = kinds.add_parser("stream", help="one large object: file-like read and write vs boto3, "
                                        "obstore")
    configure_stream_parser(p)
    _add_view_flags(p)
    p.set_defaults(func=run_stream_from_args)
    p = kinds.add_parser("checkpoint", help="torch.save/load and DCP checkpoints vs "
                                            "s3torchconnector, with a local-disk baseline")
    add_global_flags(p)
    configure_checkpoint_parser(p)
    _add_view_flags(p)
    p.set_defaults(func=run_checkpoint_from_args)
    p = kinds.add_parser("model", help="load a sharded safetensors model: objio vs Run:ai Model "
                                       "Streamer, boto3, s3torchconnector")
    add_global_flags(p)
    configure_model_parser(p)
    _add_view_flags(p)
    p.set_defaults(func=run_model_from_args)
    p = kinds.add_parser("list", help="FastList vs sequential listing (--keys, --latency-ms)")
    add_global_flags(p)
    configure_list_parser(p)
    _add_view_flags(p)
    p.set_defaults(func=run_list_from_args)
    p = kinds.add_parser("oplog", help="what the op-log costs on small GETs (off, .tsv, .zst)")
    add_global_flags(p)
    _common_uri_options(p, "the objects")
    p.description = ("Read --num objects of --size bytes with the op-log off, to a .tsv and to "
                     "a .tsv.zst, rounds interleaved; report objects/s, client CPU per object "
                     "and the ratios to the unlogged run.")
    p.add_argument("--num", type=int, default=1000, help="objects (default 1000)")
    p.add_argument("--size", default="128KiB", help="bytes per object (default 128KiB)")
    p.add_argument("--max-in-flight", type=int, default=64, help="default 64")
    _add_view_flags(p)
    p.set_defaults(func=lambda args: _guarded(lambda target: _oplog_cost(args, target)))
    return parser


def _oplog_cost(args: argparse.Namespace, target: _Target) -> int:
    from ..bench import oplog_cost

    if args.latency_ms or args.plot:
        raise ValueError("objio bench oplog takes neither --latency-ms nor --plot (its report "
                         "is a table; --json has every round)")
    client, prefix = target.open(args, "bench/")
    rep = oplog_cost.run_oplog_cost(client, prefix, num=args.num,
                                    size=parse_size(args.size, "--size"), rounds=args.rounds,
                                    max_in_flight=args.max_in_flight)
    return _finish("oplog", rep, args, target,
                   lambda r: oplog_cost.print_report(r, _text_out(args)))


def normalize_argv(argv: Sequence[str]) -> list[str]:
    """The arguments after ``bench`` with the default kind made explicit: ``--compare`` ->
    ``objects --compare``; ``stream --size 1GiB`` unchanged; ``-h`` unchanged."""
    args = list(argv)
    if not args or (args[0] not in KINDS and args[0] not in ("-h", "--help")):
        args.insert(0, "objects")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m objio.bench [KIND] [options]``: the ``objio bench`` command on its own."""
    parser = argparse.ArgumentParser(prog="python -m objio.bench", description=DESCRIPTION)
    configure_parser(parser)
    args = parser.parse_args(normalize_argv(sys.argv[1:] if argv is None else argv))
    return int(args.func(args))
