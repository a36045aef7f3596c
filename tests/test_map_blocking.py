"""objio.engine.map_blocking: blocking work in threads, results in order, failures surfaced
only once nothing is left running."""

from __future__ import annotations

import threading
import time

import pytest

import objio
from objio import engine


def test_results_in_input_order_and_concurrent() -> None:
    running, peak, lock = [0], [0], threading.Lock()

    def work(i: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05 * (5 - i))               # later items finish first
        with lock:
            running[0] -= 1
        return i * i

    assert engine.map_blocking(work, range(5), 3) == [0, 1, 4, 9, 16]
    assert peak[0] == 3
    assert engine.map_blocking(work, [], 3) == []
    assert engine.map_blocking(work, [2], 1) == [4]


def test_first_failure_raised_after_the_running_calls_return() -> None:
    finished: list[int] = []

    def work(i: int) -> int:
        if i == 1:
            raise OSError("item 1 failed")
        time.sleep(0.2)
        finished.append(i)
        return i

    with pytest.raises(OSError, match="item 1 failed"):
        engine.map_blocking(work, range(20), 2)
    assert 0 in finished                          # started before the failure: completed
    assert len(finished) < 19                      # the rest was never started


def test_sync_objio_calls_inside_do_not_starve_file_io(tmp_path: object) -> None:
    # more workers than the event loop's executor has threads, each doing file:// I/O
    def work(i: int) -> bytes:
        uri = f"file://{tmp_path}/f{i}"
        objio.put_bytes(uri, bytes([i]) * 10)
        return bytes(objio.get(uri))

    assert engine.map_blocking(work, range(16), 16) == [bytes([i]) * 10 for i in range(16)]
