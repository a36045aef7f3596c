"""Rendering shared by the benchmarks: number formatting for tables, rich progress bars, and
the ``--plot`` PNGs (:func:`plot_bars`, :func:`plot_report`; matplotlib, extra ``plot``)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..config import MiB

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID


def fmt(v: float | None, spec: str) -> str:
    """``format(v, spec)``, or ``-`` for None."""
    return "-" if v is None else format(v, spec)


def times(v: float | None) -> str:
    """A ratio as ``1.23x``, or ``-``."""
    return "-" if v is None else f"{v:.2f}x"


def latencies(p: Mapping[str, float] | None,
              keys: Sequence[str] = ("p50", "p90", "p99")) -> str:
    """The percentiles ``keys`` of ``p`` in ms, ``p50 / p90 / p99`` by default, or ``-``."""
    if not p:
        return "-"
    return " / ".join(f"{p[k]:.2f}" for k in keys)


TABLE_WIDTH = 100
"""The terminal width every ``objio bench`` / ``objio gen --measure`` table is designed for
(a laptop terminal; ``make demo``): the default columns fit it without wrapping or cutting a
number; ``--wide`` shows every column, ``--json`` has every value."""

Column = tuple[str, str, bool]
"""One table column: (header, ``left``/``right``, shown by default; else ``--wide`` only)."""


def table(title: str | None, columns: Sequence[Column], rows: Sequence[Sequence[str]], *,
          wide: bool = False, sections: Sequence[int] = (), **options: Any) -> Any:
    """A rich Table of ``rows`` (strings, one per column) with the default columns, or every
    column when ``wide``. Cells never wrap (``no_wrap``): a row is one line and a number is
    never cut, so the columns shown must fit :data:`TABLE_WIDTH` (the tests check every bench
    table at that width). ``sections``: indexes of the rows after which a rule is drawn;
    ``options`` go to :class:`rich.table.Table` (default ``box.SIMPLE_HEAD``, title on the
    left)."""
    from rich import box
    from rich.table import Table

    keep = [i for i, (_, _, default) in enumerate(columns) if wide or default]
    options.setdefault("box", box.SIMPLE_HEAD)
    options.setdefault("title_justify", "left")
    options.setdefault("collapse_padding", True)  # one space between columns, not two
    t = Table(title=title, **options)
    for i in keep:
        header, justify, _ = columns[i]
        t.add_column(header, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for n, row in enumerate(rows):
        t.add_row(*(row[i] for i in keep), end_section=n in sections)
    return t


def wrap(text: str, width: int = TABLE_WIDTH) -> str:
    """``text`` wrapped at ``width`` columns (continuation lines indented by two spaces), words
    (numbers, URIs) never split: for the plain-text report lines."""
    import textwrap

    return "\n".join(textwrap.wrap(text, width, subsequent_indent="  ", break_long_words=False,
                                   break_on_hyphens=False)) or text


_POLL_INTERVAL_S = 0.1


class Progress:
    """Rich progress bars (objects done, MiB/s of the current run), or nothing when disabled.

    Counts come from lists that the engine thread or worker threads append to (cheap and
    atomic in CPython); a poller thread turns them into bar updates every 0.1 s.
    """

    def __init__(self, enabled: bool, console: Console | None) -> None:
        self.enabled = enabled
        self._console = console
        self._progress: RichProgress | None = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("objects"), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                console=self._console,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def add_task(self, description: str, total: int) -> TaskID | None:
        if self._progress is None:
            return None
        return self._progress.add_task(description, total=total, rate="")

    def finish(self, task: TaskID | None) -> None:
        if self._progress is not None and task is not None:
            total = next(t.total for t in self._progress.tasks if t.id == task)
            self._progress.update(task, completed=total, description="get", rate="")

    @contextlib.contextmanager
    def track(self, task: TaskID | None, description: str, items: list[Any],
              weight: Callable[[Any], tuple[int, int]]) -> Iterator[None]:
        """Advance ``task`` by the (objects, bytes) of the items appended to ``items`` while
        the block runs; the rate shown is this run's MiB/s."""
        progress = self._progress
        if progress is None or task is None:
            yield
            return
        base = next(t.completed for t in progress.tasks if t.id == task)
        progress.update(task, description=description)
        stop = threading.Event()
        t0 = time.perf_counter()
        state = [0, 0, 0]  # items seen, objects, bytes

        def poll() -> None:
            n = len(items)
            for item in items[state[0]:n]:
                c, b = weight(item)
                state[1] += c
                state[2] += b
            state[0] = n
            dt = time.perf_counter() - t0
            rate = f"{state[2] / MiB / dt:8.1f} MiB/s" if dt > 0 else ""
            progress.update(task, completed=base + state[1], rate=rate)

        def loop() -> None:
            while not stop.wait(_POLL_INTERVAL_S):
                poll()

        thread = threading.Thread(target=loop, name="objio-bench-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            poll()


# ------------------------------------------------------------------------------ plots
PlotRow = tuple[str, float, str]
"""One bar of a plot: (library or case label, throughput value, unit)."""


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("--plot needs matplotlib: pip install 'objio[plot]'") from None
    return plt


_LINESTYLES = ("-", "--", ":", "-.")


def bars_figure(title: str, rows: Sequence[PlotRow], *,
                samples: Mapping[str, Sequence[float]] | None = None,
                samples_label: str = "latency (ms)", note: str = "") -> Any:
    """The matplotlib Figure of :func:`plot_bars` (same arguments), not yet written: callers
    (and tests) can look at its artists; close it with ``matplotlib.pyplot.close(fig)``.

    Every bar, dot and line takes its colour from :func:`objio.bench.palette.color_of` of its
    label, so a tool has the same colour in every panel; every value axis starts at zero.
    Raises: ImportError naming the extra when matplotlib is missing; ValueError (no rows)."""
    from .palette import color_of

    if not rows:
        raise ValueError("nothing to plot: no results")
    plt = _pyplot()
    units = list(dict.fromkeys(u for _, _, u in rows))
    dist = {k: [float(x) for x in v if x is not None] for k, v in (samples or {}).items()}
    dist = {k: v for k, v in dist.items() if v}
    panels = len(units) + (1 if dist else 0)
    height = max(2.2, 0.42 * max(sum(1 for r in rows if r[2] == u) for u in units) + 1.4)
    fig, axes = plt.subplots(1, panels, figsize=(6.2 * panels, height), squeeze=False)
    for ax, unit in zip(axes[0], units, strict=False):
        mine = [(label, value) for label, value, u in rows if u == unit]
        labels = [lbl for lbl, _ in mine][::-1]
        values = [v for _, v in mine][::-1]
        bars = ax.barh(labels, values, color=[color_of(lbl) for lbl in labels])
        top = max(values) if values else 1.0
        for b, v in zip(bars, values, strict=True):
            text = f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"
            ax.text(b.get_width() + top * 0.01, b.get_y() + b.get_height() / 2, text,
                    va="center", fontsize=8)
        ax.set_xlabel(unit)
        ax.set_xlim(0, top * 1.18 if top > 0 else 1)
        ax.grid(axis="x", alpha=0.3)
    if dist:
        ax = axes[0][-1]
        many = max(len(v) for v in dist.values()) > 20
        if not many:  # the same order top to bottom as the bars
            order = [lbl for lbl, _, _ in rows if lbl in dist]
            dist = {lbl: dist[lbl] for lbl in order + [k for k in dist if k not in order]}
            ax.invert_yaxis()
        styles: dict[str, int] = {}  # variants of one tool: same colour, another line style
        top = 0.0
        for label, values in dist.items():
            xs = sorted(values)
            top = max(top, xs[-1])
            color = color_of(label)
            if many:
                style = _LINESTYLES[styles.get(color, 0) % len(_LINESTYLES)]
                styles[color] = styles.get(color, 0) + 1
                ys = [(k + 1) / len(xs) for k in range(len(xs))]
                ax.step(xs, ys, where="post", label=label, color=color, linestyle=style)
            else:
                ax.plot(xs, [label] * len(xs), "o", alpha=0.7, color=color)
        ax.set_xlabel(samples_label)
        ax.set_xlim(0, top * 1.08 if top > 0 else 1)  # times and rates start at zero
        if many:
            ax.set_ylim(0, 1.02)
            ax.set_ylabel("fraction of requests")
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    if note:
        fig.text(0.01, 0.01, note, fontsize=7, alpha=0.8)
    lines = title.count("\n") + 1
    fig.tight_layout(rect=(0, 0.04 if note else 0, 1, 1 - 0.05 * lines * 2.6 / height))
    return fig


def plot_bars(path: str, title: str, rows: Sequence[PlotRow], *,
              samples: Mapping[str, Sequence[float]] | None = None,
              samples_label: str = "latency (ms)", note: str = "") -> None:
    """Write a PNG to ``path``: ``rows`` as horizontal bars side by side (throughput per
    library; one panel per unit), and, when ``samples`` is given (label -> values, e.g.
    per-request latencies or per-run times), their distribution in a second panel: the
    empirical CDF when there are many values per label, each value as a dot when few.
    Colours come from :mod:`objio.bench.palette` (one per tool, the same in every plot); value
    axes start at zero.

    This is the plot every benchmark uses (``--plot FILE.png``); a new benchmark gives its
    rows and samples. Raises: ImportError naming the extra when matplotlib is missing;
    ValueError (no rows)."""
    fig = bars_figure(title, rows, samples=samples, samples_label=samples_label, note=note)
    _save(fig, path)


def _save(fig: Any, path: str) -> None:
    plt = _pyplot()
    try:
        fig.savefig(path, dpi=90)
    finally:
        plt.close(fig)


def _where(report: Mapping[str, Any]) -> str:
    """The plot's second title line: the server, the date and objio's version."""
    server = report.get("server") or "server not recorded"
    if server == "embedded":
        server = "embedded SeaweedFS server on loopback"
    parts = [f"server: {server}"]
    if report.get("date"):
        parts.append(str(report["date"]))
    from .. import __version__

    parts.append(f"objio {(report.get('environment') or {}).get('objio') or __version__}")
    return "; ".join(parts)


def report_figure(kind: str, report: Mapping[str, Any]) -> Any:
    """The matplotlib Figure of :func:`plot_report` (not written; close it when done). The
    title says what was measured, on what (sizes, counts), where (server) and when (date).
    Raises: ValueError (unknown kind, nothing to plot), ImportError (no matplotlib)."""
    from ..config import format_size, plural

    rows: list[PlotRow] = []
    samples: dict[str, list[float]] = {}
    label = "latency (ms)"
    note = ""
    if kind == "objects":
        cfg = report["config"]
        epochs = cfg.get("epochs")
        over = f"median over {plural(epochs, 'epoch')}" if epochs else "median over epochs"
        title = (f"objio bench: GET of {plural(cfg['num'], 'object')} of "
                 f"{format_size(cfg['size'])}, max_in_flight {cfg['max_in_flight']} ({over})")
        for name, r in (report.get("compare") or {}).items():
            if r.get("status") == "ok" and r.get("mib_per_s"):
                rows.append((name, r["mib_per_s"], "MiB/s"))
        get = (report.get("phases") or {}).get("get") or {}
        if not rows and get:
            rows.append(("objio", get["summary"]["mib_per_s"], "MiB/s"))
        lat = get.get("latency_samples_ms") or {}
        if lat.get("total"):
            samples["objio GET (whole object)"] = lat["total"]
        if lat.get("ttfb"):
            samples["objio GET (first byte)"] = lat["ttfb"]
    elif kind == "train":
        cfg = report.get("config") or {}
        if report.get("mode") == "workload":
            what = (f"{report.get('workload')} training emulation, {plural(cfg.get('files', 0), 'file')} "
                    f"of {cfg.get('format')}, batch {cfg.get('batch_size')}")
        else:
            what = (f"DataLoader throughput, {plural(cfg.get('num', 0), 'object')} of "
                    f"{format_size(cfg.get('size', 0))}, batch {cfg.get('batch_size')}")
        epochs = cfg.get("epochs")
        over = f"median over {plural(epochs, 'epoch')}" if epochs else "median over epochs"
        title = f"objio bench {report.get('mode', 'train')}: {what}: samples/s ({over})"
        for dataset, libs in report["summary"].items():
            for lib, v in libs.items():
                if lib != "objio_ratio" and v.get("epoch_samples_per_s"):
                    rows.append((f"{lib} {dataset}", v["epoch_samples_per_s"], "samples/s"))
        for r in report.get("runs", []):
            samples.setdefault(f"{r['library']} {r['dataset']}", []).append(r["samples_per_s"])
        label = "samples/s of each epoch"
    elif kind == "stream":
        rounds = report.get("rounds")
        over = f"median of {plural(rounds, 'round')}" if rounds else "median of rounds"
        chunk = f", {format_size(report['chunk'])} per call" if report.get("chunk") else ""
        title = (f"objio bench stream: write and read one {format_size(report['size'])} object"
                 f"{chunk} ({over})")
        for op, libs in report["summary"].items():
            for lib, row in libs.items():
                if row:
                    rows.append((f"{lib} {op}", row["mib_s"], "MiB/s"))
        for op, libs in report.get("results", {}).items():
            for lib, runs in libs.items():
                samples[f"{lib} {op}"] = [r["wall_s"] for r in runs if r.get("ok")]
        label = "seconds per transfer"
    elif kind == "model":
        cfg, m = report["config"], report["model"]
        lat_txt = f", +{cfg['latency_ms']:g} ms per request" if cfg["latency_ms"] else ""
        title = (f"objio bench model: load a {format_size(m['bytes'])} {cfg['model']}-shaped "
                 f"model, {plural(m['shards'], 'shard')}{lat_txt} "
                 f"(median of {plural(cfg['rounds'], 'round')})")
        for name, row in report["summary"].items():
            if not name.startswith("_") and row.get("status") == "ok":
                rows.append((name, row["gib_per_s"], "GiB/s"))
                samples[name] = [1000.0 * x for x in row.get("ttft_samples_s", []) if x is not None]
        label = "time to first tensor (ms), each round"
        note = "each run in a fresh process; GiB = 2^30 bytes"
    elif kind == "checkpoint":
        title = (f"objio bench checkpoint: save and load a {format_size(report['state_dict_bytes'])} "
                 f"state dict, DCP on {plural(report['ranks'], 'rank')} "
                 f"(median of {plural(report['rounds'], 'round')})")
        for case, ops in report["summary"].items():
            for op in ("save", "load"):
                row = ops.get(op)
                if row and row.get("gib_s"):
                    rows.append((f"{case} {op}", row["gib_s"], "GiB/s"))
                    rows.append((f"{case} {op}", row["cpu_s_per_gib"], "client CPU s/GiB"))
        for r in report.get("runs", []):
            if r.get("ok"):
                for op in ("save", "load"):
                    samples.setdefault(f"{r['case']} {op}", []).append(r[op]["gib_s"])
        label = "GiB/s of each round"
        note = "GiB = 2^30 bytes; client CPU: user + system seconds of the client process(es)"
    elif kind == "list":
        cfg = report["config"]
        title = (f"objio bench list: list {cfg['keys']:,} keys ({cfg['layout']}), "
                 f"+{cfg['latency_ms']:g} ms per request "
                 f"(median of {plural(cfg['rounds'], 'round')})")
        for name, row in report["summary"].items():
            if isinstance(row, dict) and row.get("keys_per_s"):
                rows.append((name, row["keys_per_s"], "keys/s"))
                if row.get("cpu_us_per_key"):
                    rows.append((name, row["cpu_us_per_key"], "client CPU us/key"))
                samples[name] = [1000.0 * x for x in row.get("wall_s_samples", [])]
        label = "listing time (ms), each round"
    else:
        raise ValueError("plot kind must be objects, train, stream, checkpoint, model or list, "
                         f"got {kind!r}")
    return bars_figure(f"{title}\n{_where(report)}", rows, samples=samples or None,
                       samples_label=label, note=note)


def plot_report(kind: str, report: Mapping[str, Any], path: str) -> None:
    """The ``--plot`` of a benchmark: ``kind`` is ``objects``, ``train``, ``stream``,
    ``checkpoint``, ``model`` or ``list``, ``report`` what that benchmark returned. Writes a PNG
    to ``path`` (see :func:`report_figure`, :func:`plot_bars`). Raises: ValueError (unknown
    kind, nothing to plot), ImportError (no matplotlib)."""
    _save(report_figure(kind, report), path)
