"""Rendering shared by the benchmarks: number formatting for tables and rich progress bars."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
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


def latencies(p: Mapping[str, float] | None) -> str:
    """``p50 / p90 / p99`` in ms, or ``-``."""
    if not p:
        return "-"
    return f"{p['p50']:.2f} / {p['p90']:.2f} / {p['p99']:.2f}"


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
