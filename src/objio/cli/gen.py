"""``objio gen``: parse the arguments, call :func:`objio.gen.generate_dataset` (or
:func:`~objio.gen.plan_summary` / :func:`~objio.gen.measure_generation`), print the summary."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

from ..config import GiB, format_size, parse_size
from ..formats import FORMATS, JPEG_QUALITY, normalize_format, normalize_parquet_columns
from ..gen import WORKLOADS, GenSpec, generate_dataset, measure_generation, plan_summary
from ..uri import parse_uri
from ._common import add_global_flags, broken_pipe, client_from_args, error_line, write_json

CONFIRM_ABOVE = 10 * GiB
"""``objio gen`` asks before writing more than this many bytes (on a terminal, without
``--yes``)."""


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
    parser.add_argument("--format", default=None, help=f"file format: {', '.join(FORMATS)}")
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
    parser.add_argument("--quality", type=int, default=None, help=f"jpeg quality 1-100 (default {JPEG_QUALITY})")
    parser.add_argument(
        "--columns", default=None, help="parquet columns name:dtype[:size],... (default data:binary,label:int64)"
    )
    parser.add_argument("--row-group-size", type=int, default=None, help="parquet rows per row group")
    parser.add_argument("--json", metavar="FILE", default=None, help="write the summary as JSON to FILE ('-' = stdout)")
    parser.add_argument("--dry-run", "--dryrun", action="store_true", dest="dry_run",
                        help="print what would be written; write nothing")
    parser.add_argument(
        "--measure",
        action="store_true",
        help="measure single-core generation speed (MiB/s) of this spec, or without --format/--workload of "
        "every format (16 MiB samples) and preset; writes nothing (URI only names the files)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--yes", "-y", action="store_true",
                        help=f"do not ask before writing more than {format_size(CONFIRM_ABOVE)} "
                             "(asked only on a terminal)")
    _add_model_arguments(parser)
    return parser


# --------------------------------------------------------------- --format safetensors (models)
def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    from ..gen.models import MODELS, describe

    g = parser.add_argument_group(
        "models (--format safetensors: a sharded Hugging Face checkpoint; --scale multiplies "
        "its bytes, keeping every tensor name; --seed, --max-in-flight, --json, --dry-run apply)")
    g.add_argument("--model", default=None, type=str.lower, choices=sorted(MODELS),
                   help="model preset (default llama3-8b): " + "; ".join(
                       describe(n, p) for n, p in MODELS.items()))
    g.add_argument("--max-shard-size", default=None,
                   help="largest shard, e.g. 5GB (Hugging Face's default), 256MiB")


def _run_model(args: argparse.Namespace, human: Any) -> int:
    """``objio gen --format safetensors``: a synthetic model (objio.gen.models)."""
    from ..gen.models import DEFAULT_MAX_SHARD_SIZE, generate_model, model_files, model_preset

    dataset_only = {"--num-files": args.num_files, "--num-files-eval": args.num_files_eval,
                    "--samples-per-file": args.samples_per_file, "--record-size": args.record_size,
                    "--workload": args.workload, "--measure": args.measure or None}
    given = [flag for flag, v in dataset_only.items() if v is not None]
    if given:
        raise ValueError(f"{', '.join(given)} apply to datasets; --format safetensors writes a "
                         "model (--model, --scale, --max-shard-size)")
    preset = model_preset(args.model or "llama3-8b", args.scale)
    shard = (DEFAULT_MAX_SHARD_SIZE if args.max_shard_size is None
             else parse_size(args.max_shard_size, "--max-shard-size"))
    prefix = parse_uri(args.uri)
    if args.dry_run:
        files = model_files(preset, shard)
        summary = {"dry_run": True, "uri": str(prefix), "model": args.model or "llama3-8b",
                   "scale": args.scale, "files": files, "total_size": preset.total_bytes(),
                   "tensors": len(preset.tensors())}
        print(f"dry run: would write {len(files)} files ({format_size(preset.total_bytes())} of "
              f"tensors, {len(preset.tensors())} tensors) under {prefix}: {', '.join(files[:3])}"
              f"{' ...' if len(files) > 3 else ''}", file=human)
        if args.json:
            write_json(args.json, summary)
        return 0
    from rich.console import Console

    err_console = Console(stderr=True)
    result = generate_model(client_from_args(args), prefix, preset, max_shard_size=shard,
                            seed=args.seed or 0, max_in_flight=args.max_in_flight,
                            progress=not args.no_progress and err_console.is_terminal,
                            console=err_console)
    result["model"] = args.model or "llama3-8b"
    result["scale"] = args.scale
    print(f"wrote {result['shards']} safetensors shards ({result['tensors']} tensors, "
          f"{format_size(result['bytes'])}) in {result['seconds']:.2f} s, "
          f"{result['mib_per_s']:.1f} MiB/s -> {result['uri']}", file=human)
    if args.json:
        write_json(args.json, result)
    return 0


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
            f"give --format ({', '.join(FORMATS)}) or --workload ({', '.join(WORKLOADS)})"
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
        if args.record_size_stdev is None and base.record_size_stdev:
            # The preset's spread belongs to its own record size: 146 MB +- 68 MB around a
            # 459-byte record would make 1-pixel "images". Drop it, and say so.
            overrides["record_size_stdev"] = 0
            print(f"objio gen: note: --record-size replaces the {args.workload} record size; "
                  f"its stdev ({base.record_size_stdev:,.0f} bytes) is dropped (give "
                  "--record-size-stdev to set one)", file=sys.stderr)
    if args.record_size_stdev is not None:
        overrides["record_size_stdev"] = parse_size(args.record_size_stdev, "--record-size-stdev")
    if args.chunks is not None:
        overrides["chunks"] = _parse_chunks(args.chunks)
    if args.columns is not None:
        overrides["columns"] = _parse_columns(args.columns)
    if "format" in overrides:
        overrides["format"] = normalize_format(overrides["format"])
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
        columns = normalize_parquet_columns(spec["columns"], spec["record_size"])
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


def _print_measured(measured: list[dict[str, Any]], out: Any) -> None:
    """``gen --measure``'s table: one row per spec, every column as wide as its widest cell
    (names and formats left, numbers right), sizes and rates in binary units."""
    header = ("spec", "format", "files", "data", "MiB/s", "files/s")
    rows = [(m["name"], m["format"], f"{m['files']:,}", format_size(m["bytes"]),
             f"{m['mib_per_s']:.1f}", f"{m['files_per_s']:.2f}") for m in measured]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return " ".join(c.ljust(w) if i < 2 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    print(line(header) + "  (one core)", file=out)
    for r in rows:
        print(line(r), file=out)


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``objio gen`` from parsed arguments; returns the exit code.

    0 success; 1 with a one-line ``objio: error: ...`` on stderr for user
    errors (bad value, missing bucket, access denied, missing optional
    package, storage errors); 130 on Ctrl-C.
    """
    from ..errors import ObjectStoreError

    try:
        human = sys.stderr if args.json == "-" else sys.stdout
        if getattr(args, "model", None) or (args.format or "").lower() == "safetensors":
            return _run_model(args, human)
        if getattr(args, "measure", False):
            parse_uri(args.uri)
            if args.format is None and args.workload is None:
                measured = measure_generation()
            else:
                measured = measure_generation([(args.workload or args.format, spec_from_args(args))])
            _print_measured(measured, human)
            if args.json:
                write_json(args.json, {"generation": measured})
            return 0
        spec = spec_from_args(args)
        prefix = parse_uri(args.uri)
        if args.dry_run:
            summary = plan_summary(spec, prefix)
            summary["dry_run"] = True
            _print_dry_run(summary, human)
            if args.json:
                write_json(args.json, summary)
            return 0
        from rich.console import Console

        err_console = Console(stderr=True)
        show = not args.no_progress and err_console.is_terminal
        approx = spec.total_files * spec.samples_per_file * spec.record_size
        if approx > CONFIRM_ABOVE:  # say how much before a long run
            print(f"objio gen: writing {spec.total_files:,} {spec.format} files, about "
                  f"{format_size(approx)}, under {prefix}", file=sys.stderr)
        if approx > CONFIRM_ABOVE and not args.yes and sys.stdin.isatty() and sys.stderr.isatty():
            answer = input(f"That is more than {format_size(CONFIRM_ABOVE)}. Go on? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("objio gen: nothing written", file=sys.stderr)
                return 1
        client = client_from_args(args)
        result = generate_dataset(
            client, prefix, spec, max_in_flight=args.max_in_flight, progress=show, console=err_console
        )
        if result["rank"] != 0:  # one summary per job (mpirun, torchrun, srun): rank 0's
            return 0
        if args.workload is not None:
            result["workload"] = args.workload
            result["scale"] = args.scale
        index = f" + {result['index_files']:,} index files" if result["index_files"] else ""
        share = f"rank 0 of {result['world_size']} " if result["world_size"] > 1 else ""
        print_ = print if not getattr(args, "quiet", False) else (lambda *a, **k: None)
        from ._messages import as_typed

        files = f"{result['files']:,} {result['format']} file{'' if result['files'] == 1 else 's'}"
        print_(as_typed(
            f"{share}wrote {files}{index}, {format_size(result['bytes'])} in "
            f"{result['seconds']:.2f} s: {result['files_per_s']:.1f} files/s, {result['mib_per_s']:.1f} MiB/s "
            f"-> {result['uri']}", args),
            file=human,
        )
        if args.json:
            write_json(args.json, result)
        return 0
    except BrokenPipeError:
        return broken_pipe()
    except KeyboardInterrupt:
        print("objio: interrupted", file=sys.stderr)
        return 130
    except (ObjectStoreError, OSError, ValueError, ImportError) as exc:
        print(f"objio: error: {error_line(exc)}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m objio.gen [options]``: ``objio gen`` on its own, with the connection options."""
    parser = argparse.ArgumentParser(prog="python -m objio.gen")
    add_global_flags(parser)
    configure_parser(parser)
    return run_from_args(parser.parse_args(argv))
