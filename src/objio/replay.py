"""``objio replay LOG --to s3://bucket/prefix/``: the requests of an op-log sent again, to
another store or prefix, on the recorded timeline.

Each recorded request's object (``file`` column: ``bucket/key``) becomes ``--to`` + ``key``
(the recorded bucket is dropped). Replayed: ``GET`` (the object read and discarded), ``PUT``
(the recorded number of bytes, random), ``STAT`` (HeadObject), ``DELETE``, ``LIST`` (the
destination prefix). Requests of other kinds (multipart parts, bucket calls) and failed
requests are counted as skipped: a multipart upload is replayed through its parts' bytes only
when it was logged as ``PUT``. Objects the log reads (GET, STAT) before any PUT of its own
are created first when missing, with the size the log read (1 byte when only STAT saw them).

Timeline: request *i* starts at (its recorded start - the first start) / ``speed`` after the
replay starts, or at once with ``as_fast_as_possible``; ``max_in_flight`` bounds the requests
at once. With ``--op-log`` (or ``OBJIO_OP_LOG``) the replay writes its own op-log.

Raises: ValueError (bad arguments, a log with nothing to replay), what the logs' reading raises
(:func:`objio.report.read_logs`); a replayed request's failure is counted, not raised.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from typing import Any

from . import engine
from .report import read_logs
from .uri import parse_uri

REPLAYED = ("GET", "PUT", "STAT", "DELETE", "LIST")


def replay(client: Any, log_paths: list[str], to: str, *, speed: float = 1.0,
           as_fast_as_possible: bool = False, max_in_flight: int = 64) -> dict[str, Any]:
    """Replay the logs (see the module docs) with ``client``; returns ``{"replayed": {op:
    n}, "failed": {op: n}, "skipped": {op: n}, "created": n, "seconds", "late_ms": {"p50",
    "p99", "max"}}`` (how late requests started against the schedule)."""
    if not (speed > 0):
        raise ValueError(f"speed must be > 0, got {speed!r}")
    if max_in_flight < 1:
        raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight!r}")
    dest = parse_uri(to)
    if dest.scheme == "s3" and dest.key and not dest.key.endswith("/"):
        raise ValueError(f"--to must name a prefix (ending in /) or a bucket, got {to!r}")
    r = read_logs(log_paths)
    order = sorted(range(len(r.op)), key=lambda i: int(r.start[i]))
    plan: list[tuple[float, str, str, int]] = []
    skipped: Counter[str] = Counter()
    t0 = int(r.start[order[0]]) if order else 0
    for i in order:
        op = str(r.op[i])
        if op not in REPLAYED or r.error[i]:
            skipped[op] += 1
            continue
        key = str(r.file[i]).split("/", 1)[1] if "/" in str(r.file[i]) else ""
        at = 0.0 if as_fast_as_possible else (int(r.start[i]) - t0) / 1e9 / speed
        plan.append((at, op, str(dest.joinpath(key)) if key else str(dest), int(r.nbytes[i])))
    if not plan:
        raise ValueError("nothing to replay in " + ", ".join(log_paths)
                         + f" (replayed kinds: {', '.join(REPLAYED)})")
    # objects read before the log writes them: created first, when missing
    written: set[str] = set()
    need: dict[str, int] = {}
    for _, op, uri, n in plan:
        if op == "PUT":
            written.add(uri)
        elif op in ("GET", "STAT") and uri not in written:
            need[uri] = max(need.get(uri, 1), n if op == "GET" else 1)
    created = 0
    if need:
        have = client.stat_many(list(need), return_exceptions=True)
        missing = [(u, os.urandom(need[u])) for u, info in zip(need, have, strict=True)
                   if isinstance(info, FileNotFoundError)]
        if missing:
            client.put_many(missing, max_in_flight=min(max_in_flight, 32))
        created = len(missing)
    return engine.run(_run(client, plan, max_in_flight, dict(skipped), created))


async def _run(client: Any, plan: list[tuple[float, str, str, int]], max_in_flight: int,
               skipped: dict[str, int], created: int) -> dict[str, Any]:
    sem = asyncio.Semaphore(max_in_flight)
    done: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    late: list[float] = []
    start = time.perf_counter()

    async def one(op: str, uri: str, n: int) -> None:
        try:
            if op == "GET":
                await client.get_async(uri)
            elif op == "PUT":
                await client.put_bytes_async(uri, os.urandom(n))
            elif op == "STAT":
                await client.stat_async(uri)
            elif op == "DELETE":
                await client.delete_async(uri)
            else:
                await client.list_async(uri)
        except Exception:  # noqa: BLE001 - counted: the replay goes on
            failed[op] += 1
        else:
            done[op] += 1
        finally:
            sem.release()

    # Requests start in schedule order, each when its time comes and a slot is free (at
    # most max_in_flight tasks exist at once, whatever the log's length).
    tasks: set[asyncio.Task[None]] = set()
    for at, op, uri, n in plan:
        await sem.acquire()
        now = time.perf_counter() - start
        if at > now:
            await asyncio.sleep(at - now)
        late.append(max(0.0, time.perf_counter() - start - at) * 1e3)
        task = asyncio.ensure_future(one(op, uri, n))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    late.sort()

    def pct(p: float) -> float:
        return late[min(len(late) - 1, int(p / 100 * len(late)))] if late else 0.0

    return {"replayed": dict(done), "failed": dict(failed), "skipped": skipped,
            "created": created, "seconds": time.perf_counter() - start,
            "late_ms": {"p50": pct(50), "p99": pct(99), "max": late[-1] if late else 0.0}}
