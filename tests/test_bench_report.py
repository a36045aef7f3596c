"""Tables that fit 100 columns, one unit convention, plots read at a glance (issue 18 C, D).

Tables: every bench table is rendered at 100 columns; no line is longer, and every number is
printed whole (the render at 100 columns is the render at 1000: nothing was squeezed, wrapped
or ellipsised). Plots: the figures' artists are checked (a tool's colour in every panel and
every plot, value axes from zero, titles that stand alone). No wall time is asserted."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from objio.bench import checkpoint as ck
from objio.bench import listing, stream, train
from objio.bench import model as model_bench
from objio.bench.objects import print_report as print_objects
from objio.bench.palette import ROLES, TOOLS, color_of
from objio.cli import main as cli_main
from objio.config import format_rate, format_size, plural

BUCKET = "objio-test"
WIDTH = 100
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?x?")


def _rich(render: Any, width: int) -> str:
    from rich.console import Console

    buf = io.StringIO()
    render(Console(file=buf, width=width, force_terminal=False, color_system=None))
    return buf.getvalue()


def _check_fits(render: Any, wide_too: bool = True) -> str:
    """Render at WIDTH: no line longer than WIDTH, and the same text as at 1000 columns (so no
    cell was cut, wrapped or ellipsised); returns the text."""
    text = _rich(render, WIDTH)
    lines = text.splitlines()
    assert lines and max(len(line) for line in lines) <= WIDTH, \
        "\n".join(line for line in lines if len(line) > WIDTH)
    roomy = _rich(render, 1000)
    assert [line.rstrip() for line in lines] == [line.rstrip() for line in roomy.splitlines()]
    assert "…" not in text
    return text


def _has(text: str, *values: str) -> None:
    """Each value appears whole (not as part of a longer number)."""
    found = set(NUMBER.findall(text))
    for v in values:
        assert v in found, f"{v!r} not printed whole"


# ----------------------------------------------------------------------------- synthetic reports
_LAT = {"p50": 1234.56, "p90": 5432.1, "p99": 9876.54}


def _phase(epoch: int | None = None) -> dict[str, Any]:
    s = {"objects": 100000, "bytes": 100000 * 131072, "wall_s": 1234.567, "mib_per_s": 12345.6,
         "objects_per_s": 123456.0, "latency_ms": {"ttfb": _LAT, "total": _LAT}, "cpu_s": 987.654,
         "cpu_ms_per_object": 12.345, "cpu_ms_per_mib": 123.45}
    if epoch is not None:
        s["epoch"] = epoch
    return s


def objects_report() -> dict[str, Any]:
    tool = {"status": "ok", "mib_per_s": 12345.6, "objects_per_s": 123456.0,
            "cpu_ms_per_object": 12.345, "cpu_ms_per_mib": 123.45, "objio_ratio": 12.34}
    ops_tool = {"status": "ok", "ops_per_s": 123456.0, "mib_per_s": 12345.6,
                "cpu_ms_per_op": 12.345, "objio_ratio": 1.23}
    return {
        "config": {"num": 100000, "size": 131072, "object_type": "RAW",
                   "uri": "s3://objio-bench/bench/", "max_in_flight": 64, "epochs": 12},
        "server": "embedded",
        "phases": {"put": _phase(), "get": {"epochs": [_phase(e) for e in range(1, 13)],
                                            "summary": _phase()}},
        "compare": {name: dict(tool) for name in ("objio", "obstore", "boto3", "s3torchconnector",
                                                  "s3dlio")},
        "ops": {"head": {"unit": "objects", "what": "HeadObject of every object",
                         "tools": {n: dict(ops_tool) for n in ("objio", "boto3", "obstore")}}},
        "cleanup": {"deleted": 100000},
    }


def train_report(mode: str) -> dict[str, Any]:
    lib = {"samples_per_s": 12345.6, "mib_per_s": 12345.6, "au_pct": 99.87, "au_met": True,
           "epoch_samples_per_s": 12345.6, "epoch_mib_per_s": 12345.6, "cpu_s": 1234.56,
           "cpu_ms_per_sample": 123.456}
    runs = [{"epoch": e, "library": lb, "steps": 12345, "samples": 1234567,
             "samples_per_s": 12345.6, "mib_per_s": 12345.6, "au_pct": 99.87, "au_met": True,
             "cpu_s": 1234.56} for e in range(3) for lb in ("objio", "s3torchconnector")]
    ratio = {"s3torchconnector": {"samples_per_s": 12.34, "epoch_samples_per_s": 12.34}}
    return {"mode": mode, "workload": "cosmoflow", "uri": "s3://objio-bench/cosmoflow/",
            "config": {"files": 524288, "format": "tfrecord", "samples_per_file": 1,
                       "batch_size": 1, "workers": 4, "prefetch_factor": 2,
                       "compute_time_s": 0.0035, "dataset": "iterable", "au_target_pct": 70,
                       "num": 2048, "size": 131072, "epochs": 3},
            "runs": runs,
            "summary": {kind: {"objio": dict(lib), "s3torchconnector": dict(lib),
                               "objio_ratio": ratio} for kind in ("map", "iterable")},
            "server": "embedded"}


def checkpoint_report() -> dict[str, Any]:
    op = {"gib_s": 12.345, "cpu_s_per_gib": 12.34, "peak_rss_mib": 123456.0,
          "peak_extra_mib": 123456.0, "vs_peer": 12.34, "cpu_vs_peer": 12.34}
    return {"state_dict_bytes": 1 << 30, "tensors": 1234, "layers": 32, "hidden_size": 4096,
            "ranks": 2, "threads": 4, "rounds": 1, "prefix": "s3://objio-bench/checkpoint/",
            "summary": {c: {"save": dict(op), "load": dict(op)} for c in ck.CASES}}


def model_report() -> dict[str, Any]:
    row = {"status": "ok", "gib_per_s": 12.34, "ttft_s": 123.456, "cpu_s_per_gib": 12.34,
           "peak_rss_growth_mib": 123456.0, "objio_ratio": 12.34}
    return {"config": {"model": "llama3-8b", "latency_ms": 20, "rounds": 1, "max_in_flight": 32},
            "model": {"tensors": 291, "bytes": 2 << 30, "shards": 8,
                      "uri": "s3://objio-bench/model/"},
            "summary": {name: dict(row) for name in model_bench.CASES}}


def list_report() -> dict[str, Any]:
    row = {"wall_s": 123.456, "keys_per_s": 1234567.0, "cpu_us_per_key": 123.45,
           "keys_per_s_vs_obstore": 12.34, "cpu_per_key_vs_obstore": 12.34}
    cases = [*listing.CASES, *listing.PEER_CASES]
    return {"config": {"keys": 1_000_000, "layout": "uniform", "uri": "s3://objio-bench/list/",
                       "latency_ms": 20, "rounds": 1, "cases": cases},
            "summary": {**{c: dict(row) for c in cases}, "speedup": 12.34}}


def stream_report() -> dict[str, Any]:
    row = {"mib_s": 12345.6, "cpu_s": 123.45, "server_cpu_s": 123.45,
           "peak_rss_delta_mib": 12345.0, "objio_ratio": 12.34}
    return {"size": 1 << 30, "chunk": 8 << 20, "rounds": 1,
            "summary": {"write": {"objio": dict(row), "boto3": dict(row)},
                        "read": {"objio": dict(row), "boto3": dict(row), "obstore-get": dict(row),
                                 "obstore-reader": dict(row)}}}


# ----------------------------------------------------------------------------- C1 tables
def test_objects_tables_fit_100_columns_with_every_number_whole() -> None:
    report = objects_report()
    text = _check_fits(lambda c: print_objects(report, c))
    assert "get epoch 12" in text and "compare" in text and "head:" in text
    _has(text, "100000", "12345.6", "123456", "1234.56", "9876.54", "123.45", "12.34x", "1.23x")
    assert not re.search(r"CPU ms/obj\b", text) and "5432.10" not in text  # --wide, --json
    wide = _rich(lambda c: print_objects(report, c, wide=True), 1000)
    assert re.search(r"CPU ms/obj\b", wide) and "5432.10" in wide and "1234.567" in wide


@pytest.mark.parametrize("mode", ["workload", "throughput"])
def test_train_tables_fit_100_columns(mode: str) -> None:
    report = train_report(mode)
    text = _check_fits(lambda c: train.print_report(report, c))
    _has(text, "12345.6", "123.456", "12.34x")
    if mode == "workload":
        _has(text, "12345", "1234567", "99.87", "1234.56")
    wide = _rich(lambda c: train.print_report(report, c, wide=True), 1000)
    assert "CPU s/epoch" in wide and "CPU s/epoch" not in text


def test_checkpoint_model_list_stream_reports_fit_100_columns() -> None:
    text = _check_fits(lambda c: ck.print_report(checkpoint_report(), c))
    _has(text, "12.345", "12.34", "123456", "12.34x")
    assert "s3torchconnector-dcp" in text and "1 round," in text
    text = _check_fits(lambda c: model_bench.print_report(model_report(), c))
    _has(text, "12.34", "123.456", "123456", "12.34x")
    assert "runai-model-streamer" in text and "1 round," in text

    for render, report, values in (
            (listing.print_report, list_report(), ("123.456", "1,234,567", "123.45", "12.34x")),
            (stream.print_report, stream_report(), ("12345.6", "123.45", "12345", "12.34x"))):
        buf = io.StringIO()
        render(report, buf)
        text = buf.getvalue()
        assert max(len(line) for line in text.splitlines()) <= WIDTH, text
        _has(text, *values)
        assert "1 rounds" not in text and "1 round" in text
    assert "8.0 MiB chunks" in text


def test_cli_bench_objects_at_100_columns(cli_env: list[str], prefix: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A real run off a terminal (as `make demo | tee`): 100 columns, every number whole."""
    out_json = tmp_path / "r.json"
    code = cli_main(["bench", *cli_env, prefix, "--num", "3", "--size", "1KiB", "--epochs", "1",
                     "--compare", "boto3", "--no-progress", "--json", str(out_json)])
    text = capsys.readouterr().out
    assert code == 0
    assert max(len(line) for line in text.splitlines()) <= WIDTH, text
    report = json.loads(out_json.read_text())
    get = report["phases"]["get"]["summary"]
    lat = get["latency_ms"]["total"]
    _has(text, f"{get['mib_per_s']:.1f}", f"{get['objects_per_s']:.0f}",
         f"{lat['p50']:.2f}", f"{lat['p99']:.2f}", f"{get['cpu_ms_per_mib']:.2f}")
    boto3 = report["compare"]["boto3"]
    _has(text, f"{boto3['mib_per_s']:.1f}", f"{boto3['objio_ratio']:.2f}x")
    flat = " ".join(text.split())
    assert "3 objects of 1.0 KiB" in flat and "1 get epoch" in flat and "1 get epochs" not in flat
    # --wide: every column (the console is then 200 columns wide off a terminal)
    code = cli_main(["bench", *cli_env, prefix, "--num", "2", "--size", "1KiB", "--epochs", "1",
                     "--no-progress", "--wide"])
    text = capsys.readouterr().out
    assert code == 0 and "CPU ms/obj" in text and "p50/p90/p99" in text


def test_gen_measure_table_aligned_with_safetensors_row(capsys: pytest.CaptureFixture[str]) -> None:
    from objio.cli.gen import _print_measured

    rows = [{"name": n, "format": f, "files": 3, "bytes": 48 << 20, "mib_per_s": v,
             "files_per_s": v / 16} for n, f, v in (("npz 16MiB", "npz", 294.8),
                                                    ("safetensors 16MiB", "safetensors", 1746.6),
                                                    ("cosmoflow", "tfrecord", 637.4))]
    buf = io.StringIO()
    _print_measured(rows, buf)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 4 and all(len(line) <= WIDTH for line in lines)
    # every row's columns end where the header's do
    ends = [m.end() for m in re.finditer(r"\S+", lines[1])]
    for line in lines[2:]:
        assert [m.end() for m in re.finditer(r"\S+", line)][-4:] == ends[-4:], lines
    assert "1746.6" in lines[2] and "48.0 MiB" in lines[2]


# ----------------------------------------------------------------------------- C2 units
def test_one_size_formatter_and_plural() -> None:
    assert format_size(128 * 1024) == "128.0 KiB" and format_rate(1.5 * (1 << 30)) == "1.5 GiB/s"
    assert plural(1, "round") == "1 round" and plural(3, "round") == "3 rounds"
    assert plural(1, "process", "processes") == "1 process" and plural(1000, "key") == "1,000 keys"


def test_cp_progress_bar_binary_units_and_rate_over_elapsed() -> None:
    """The cp bar: 300 KiB then 700 KiB, 0.40 s and 0.44 s after the start: the rate is
    1000 KiB / 0.44 s (rich's windowed estimate said 700 KiB / 0.04 s), in binary units."""
    from rich.console import Console

    from objio.cli._transfer import transfer_progress

    clock = [100.0]
    progress = transfer_progress("cp", console=Console(file=io.StringIO()),
                                 get_time=lambda: clock[0])
    task = progress.add_task("cp", total=1024 * 1024)
    clock[0] = 100.40
    progress.advance(task, 300 * 1024)
    clock[0] = 100.44
    progress.advance(task, 700 * 1024)
    t = progress.tasks[0]
    cells = [str(col.render(t)) for col in progress.columns[2:]]
    assert cells[0] == "1000.0 KiB / 1.0 MiB"
    assert cells[1] == format_rate(1000 * 1024 / 0.44) == "2.2 MiB/s"
    assert not any(re.search(r"\d (kB|MB|GB)", c) for c in cells)


def test_cp_uses_the_binary_progress_bar() -> None:
    from objio.cli import files

    bar = files._progress(True, 2048, "cp")
    advance = bar.__enter__()
    try:
        advance(1024)
        p = bar._p
        cells = " ".join(str(col.render(p.tasks[0])) for col in p.columns[2:])
    finally:
        bar.__exit__(None, None, None)
    assert "1.0 KiB / 2.0 KiB" in cells and "iB/s" in cells


# ----------------------------------------------------------------------------- D plots
def _figure(kind: str, report: dict[str, Any]) -> Any:
    pytest.importorskip("matplotlib")
    from objio.bench.report import report_figure

    return report_figure(kind, report)


def _close(fig: Any) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def _colors(fig: Any) -> dict[str, set[str]]:
    """Label -> the colours it is drawn in, over every panel of ``fig`` (bars by their y tick
    label, dots by their y value, CDF lines by their legend label)."""
    from matplotlib.colors import to_hex
    from matplotlib.container import BarContainer

    seen: dict[str, set[str]] = {}
    for ax in fig.axes:
        ticks = {t.get_position()[1]: t.get_text() for t in ax.get_yticklabels()}
        for cont in ax.containers:
            if isinstance(cont, BarContainer):
                for bar in cont:
                    y = bar.get_y() + bar.get_height() / 2
                    label = min(ticks.items(), key=lambda kv: abs(kv[0] - y))[1]
                    seen.setdefault(label, set()).add(to_hex(bar.get_facecolor()))
        for line in ax.get_lines():
            label = line.get_label()
            if label.startswith("_"):  # dots: their y value (categorical) is the label
                ys = line.get_ydata()
                label = str(ys[0]) if len(ys) else label
            seen.setdefault(str(label), set()).add(to_hex(line.get_color()))
    return seen


def _plot_reports() -> dict[str, dict[str, Any]]:
    return {
        "objects": {"config": {"num": 8, "size": 128 * 1024, "max_in_flight": 4, "epochs": 1},
                    "server": "embedded", "date": "2026-12-03 20:00 UTC",
                    "environment": {"objio": "0.1.0"},
                    "compare": {"objio": {"status": "ok", "mib_per_s": 900.0},
                                "obstore": {"status": "ok", "mib_per_s": 500.0},
                                "boto3": {"status": "ok", "mib_per_s": 300.0}},
                    "phases": {"get": {"summary": {"mib_per_s": 900.0},
                                       "latency_samples_ms": {"total": [300.0, 320.0] * 20,
                                                              "ttfb": [250.0] * 40}}}},
        "model": {"config": {"latency_ms": 0, "model": "llama3-8b", "rounds": 1},
                  "model": {"bytes": 2 << 30, "shards": 8}, "server": "http://10.0.0.5:9000",
                  "date": "2026-12-03 20:00 UTC",
                  "summary": {"objio": {"status": "ok", "gib_per_s": 1.1, "ttft_samples_s": [0.1]},
                              "boto3": {"status": "ok", "gib_per_s": 0.4, "ttft_samples_s": [0.5]},
                              "s3torchconnector": {"status": "ok", "gib_per_s": 0.5,
                                                   "ttft_samples_s": [0.4]}}},
        "checkpoint": {"state_dict_bytes": 1 << 30, "ranks": 2, "rounds": 2, "server": "embedded",
                       "summary": {"objio": {"save": {"gib_s": 0.9, "cpu_s_per_gib": 1.2}},
                                   "s3torchconnector": {"save": {"gib_s": 0.8,
                                                                 "cpu_s_per_gib": 1.6}}},
                       "runs": [{"ok": True, "case": "objio", "save": {"gib_s": 0.9},
                                 "load": {"gib_s": 1.8}}]},
        "list": {"config": {"keys": 100_000, "layout": "uniform", "latency_ms": 20, "rounds": 1},
                 "server": "embedded", "date": "2026-12-03 20:00 UTC",
                 "summary": {"sequential": {"keys_per_s": 30_000.0, "cpu_us_per_key": 9.0,
                                            "wall_s_samples": [3.37]},
                             "keys": {"keys_per_s": 35_000.0, "cpu_us_per_key": 8.0,
                                      "wall_s_samples": [2.9]},
                             "fastlist": {"keys_per_s": 110_000.0, "cpu_us_per_key": 7.0,
                                          "wall_s_samples": [0.9]},
                             "obstore": {"keys_per_s": 31_000.0, "cpu_us_per_key": 5.0,
                                         "wall_s_samples": [3.2]},
                             "speedup": 3.6}},
    }


def test_plot_colour_is_one_tool_in_every_panel_and_every_plot() -> None:
    per_kind = {}
    for kind, report in _plot_reports().items():
        fig = _figure(kind, report)
        try:
            per_kind[kind] = _colors(fig)
        finally:
            _close(fig)
    for kind, seen in per_kind.items():
        for label, colors in seen.items():
            assert len(colors) == 1, (kind, label, colors)  # one colour across the panels
        tools = {c for label, cs in seen.items() for c in cs if "first byte" not in label}
        for label, cs in seen.items():  # no colour means two things within one figure
            owners = {lb for lb, other in seen.items() if other == cs}
            assert len({color_of(o) for o in owners}) == 1, (kind, label, owners)
        assert tools  # something was drawn
    objects, model, ck_fig, lst = (per_kind[k] for k in ("objects", "model", "checkpoint", "list"))
    assert objects["objio"] == model["objio"] == {TOOLS["objio"]}  # objio: the same everywhere
    assert ck_fig["objio save"] == {TOOLS["objio"]}
    assert objects["boto3"] == model["boto3"] == {TOOLS["boto3"]}
    assert objects["objio GET (whole object)"] == {TOOLS["objio"]}
    first = objects["objio GET (first byte)"]
    assert first == {ROLES["first byte"]} and not first & set(TOOLS.values())
    assert lst["sequential"] == {ROLES["sequential"]} and lst["fastlist"] == {ROLES["fastlist"]}
    assert lst["obstore"] == objects["obstore"] == {TOOLS["obstore"]}
    assert not set(ROLES.values()) & set(TOOLS.values())


def test_plot_value_axes_start_at_zero_and_titles_stand_alone() -> None:
    reports = _plot_reports()
    for kind, report in reports.items():
        fig = _figure(kind, report)
        try:
            for ax in fig.axes:
                assert ax.get_xlim()[0] == 0, (kind, ax.get_xlabel())  # throughput and times
                if ax.get_ylabel() == "fraction of requests":
                    assert ax.get_ylim()[0] == 0
            title = fig._suptitle.get_text()
        finally:
            _close(fig)
        assert "server:" in title and "1 rounds" not in title and "1 epochs" not in title, title
        if kind == "objects":
            assert "8 objects of 128.0 KiB" in title and "embedded SeaweedFS" in title
            assert "2026-12-03 20:00 UTC" in title and "objio 0.1.0" in title
            assert "MiB objects" not in title  # the CLI's size formatter, not 0.125 MiB
        if kind == "model":
            assert "2.0 GiB" in title and "8 shards" in title and "http://10.0.0.5:9000" in title
        if kind == "list":
            assert "100,000 keys" in title and "+20 ms per request" in title
            assert "1 round)" in title


def test_cli_plot_says_wrote_file_and_q_silences_it(cli_env: list[str], prefix: str,
                                                    tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "list.png"
    args = ["bench", "list", *cli_env, prefix, "--keys", "300",
            "--rounds", "1", "--peers", "none", "--plot", str(png)]
    assert cli_main(args) == 0
    out = capsys.readouterr()
    assert f"wrote {png}\n" in out.err and f"wrote {png}" not in out.out
    assert png.read_bytes()[:4] == b"\x89PNG"
    png.unlink()
    assert cli_main([*args, "-q", "--json", str(tmp_path / "l.json")]) == 0
    out = capsys.readouterr()
    assert f"wrote {png}" not in out.err + out.out and png.exists()
    report = json.loads((tmp_path / "l.json").read_text())
    assert report["server"] == cli_env[1] and report["date"].endswith("UTC")


# ----------------------------------------------------------------------------- D4 AU warning
def test_au_warning_when_too_few_steps_remain() -> None:
    def run(steps: int) -> dict[str, Any]:
        return train.au_metrics([(0.1, 0.3, 7, 7 << 20)] * steps, wall_s=0.5 * steps)

    warn = train.au_warning([run(1)], "unet3d")
    assert warn is not None and "1 step per epoch" in warn and "--scale" in warn
    assert "\n" not in warn
    few = train.au_warning([run(20), run(3)], "unet3d")  # the epoch with the fewest counts
    assert few is not None and "2 steps per epoch (3 steps" in few
    enough = train.AU_MIN_STEPS + 1  # the first step is excluded
    assert train.au_warning([run(enough)], "unet3d") is None


def test_cli_workload_warns_once_on_stderr_and_in_json(cli_env: list[str], prefix: str,
                                                       tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """cosmoflow scaled to a few files, batch 1: 3 steps per epoch, 2 measured: warn."""
    out_json = tmp_path / "t.json"
    code = cli_main(["bench", "train", *cli_env, prefix, "--workload", "cosmoflow",
                     "--scale", str(3 / 524288), "--epochs", "1", "--workers", "0",
                     "--compute-time", "0", "--no-progress", "--json", str(out_json)])
    out = capsys.readouterr()
    assert code == 0, out.err
    warnings = [line for line in out.err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and warnings[0].startswith("objio bench: warning: AU of cosmoflow")
    report = json.loads(out_json.read_text())
    assert report["au_warning"] == warnings[0].removeprefix("objio bench: warning: ")
    assert report["au_min_steps"] == train.AU_MIN_STEPS
