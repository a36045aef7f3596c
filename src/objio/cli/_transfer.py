"""The progress bar of the transfer commands (``cp``, ``mv``, ``sync``): bytes done of the total,
the rate and the time left, all in binary units (KiB = 2**10 bytes, as every objio table and
plot; :func:`objio.config.format_size`).

The rate is the bytes done over the time since the transfer started. rich's own
``TransferSpeedColumn`` shows a windowed estimate that leaves out the first update's bytes and
the time before it, so a short copy (a few updates) showed many times its real rate, and in
decimal units (``1.6 GB/s`` beside ``293.0 KiB``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..config import format_rate, format_size


def _rate(task: Any) -> float | None:
    """Bytes per second of ``task`` since it started (None before any time has passed)."""
    elapsed = task.elapsed
    if not elapsed or elapsed <= 0:
        return None
    return float(task.completed) / elapsed


def transfer_progress(label: str, *, console: Any = None, transient: bool = True,
                      get_time: Callable[[], float] | None = None) -> Any:
    """A rich ``Progress`` (not started) with the columns: ``label``, the bar, bytes done / total,
    the rate (bytes done / seconds elapsed) and the time left at that rate. ``get_time``: the
    clock (seconds; default rich's, ``time.monotonic``)."""
    from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn
    from rich.text import Text

    class BytesColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            done = format_size(task.completed)
            if task.total is None:
                return Text(done, style="progress.download")
            return Text(f"{done} / {format_size(task.total)}", style="progress.download")

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            rate = _rate(task)
            return Text("?" if rate is None else format_rate(rate), style="progress.data.speed")

    class LeftColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            rate = _rate(task)
            if task.total is None or not rate:
                return Text("-:--:--", style="progress.remaining")
            left = max(0, int((task.total - task.completed) / rate + 0.5))
            h, rest = divmod(left, 3600)
            return Text(f"{h}:{rest // 60:02d}:{rest % 60:02d}", style="progress.remaining")

    kwargs: dict[str, Any] = {"console": console, "transient": transient}
    if get_time is not None:
        kwargs["get_time"] = get_time
    return Progress(TextColumn(label), BarColumn(), BytesColumn(), RateColumn(), LeftColumn(),
                    **kwargs)
