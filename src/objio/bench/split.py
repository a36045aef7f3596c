"""One benchmark split over ranks: the machinery every ``objio bench`` kind shares under
``--clients N`` (N local processes, spawned) and under a launcher (torchrun, mpirun/mpiexec,
srun: :mod:`objio.bench.ranks`).

A kind gives a :class:`Task` (:mod:`objio.bench.shares`): what is written once before the
clock (:meth:`Task.prepare`, rank 0 or the parent), what one rank does with its share
(:meth:`Task.run`, timed after the ``start`` barrier every rank waits at), what is removed
after (:meth:`Task.cleanup`). Every rank runs with its own op-log (:mod:`objio.oplog`; also
``OBJIO_OP_LOG`` while the share runs, so DataLoader workers and the clients a library makes
itself log to it), sends its result and op-log to rank 0 (:mod:`objio.bench.ranks`'s
gatherers), and rank 0 prints one report (:func:`print_split`):

* aggregate throughput over the common window (from the moment every client has finished one
  request to the moment the last request starts: :func:`objio.report.window`) of the kind's
  operation (GET; LIST for ``list``; PUT and GET for ``checkpoint``), from the merged op-logs;
* duration = the slowest rank's (MLPerf Storage's rule) and the throughput over it;
* one row per rank; one row per endpoint when the op-logs name several;
* the op-log totals per operation (every line, window or not): the sum of the ranks' op-logs.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import tempfile
import time
from typing import Any

from ..api import Client
from ..config import ClientConfig
from ._common import cpu_seconds, environment

MiB = 1024 * 1024


class Task:
    """One kind's work, split over ranks. Subclasses are picklable (they go to spawned
    clients): plain attributes only.

    Attributes: ``kind`` (the bench kind), ``unit`` (what a rank's ``items`` count:
    objects, keys, shards, samples), ``ops`` (the op-log operations whose throughput is
    reported, the first one the headline), ``barriers`` (the tags :meth:`run` passes to its
    ``barrier`` argument, in order; ``start`` first)."""

    kind = "objects"
    unit = "objects"
    ops: tuple[str, ...] = ("GET",)
    barriers: tuple[str, ...] = ("start",)

    def config(self) -> dict[str, Any]:
        """The run's settings, for the report."""
        return {}

    def check(self, size: int) -> None:
        """Raise ValueError when the work cannot be split over ``size`` ranks."""

    def prepare(self, client: Client) -> None:
        """Write what every rank reads (once, before any rank starts)."""

    def run(self, client: Client, rank: int, size: int, barrier: Any) -> dict[str, Any]:
        """This rank's share; calls ``barrier(tag)`` for each of :attr:`barriers` (the clock
        starts after ``barrier("start")``). Returns at least ``items``, ``bytes`` (what the
        rank moved), ``wall_s`` and ``cpu_s`` (seconds after the start barrier)."""
        raise NotImplementedError

    def cleanup(self, client: Client) -> None:
        """Remove what :meth:`prepare` wrote (unless kept)."""

    def summarize(self, per: list[dict[str, Any]], agg: dict[str, Any]) -> dict[str, Any]:
        """Kind-specific aggregate values (added to ``aggregate``)."""
        return {}

    def columns(self) -> list[tuple[str, str, str]]:
        """Extra per-rank columns of the text report: (key, title, format)."""
        return []

    def summary_lines(self, agg: dict[str, Any]) -> list[str]:
        """Extra aggregate lines of the text report."""
        return []


def timed(fn: Any) -> dict[str, Any]:
    """Run ``fn()`` -> (items, bytes, extra dict); return them with wall and CPU seconds."""
    c0, t0 = cpu_seconds(), time.perf_counter()
    items, nbytes, extra = fn()
    return {"items": items, "bytes": nbytes, "wall_s": time.perf_counter() - t0,
            "cpu_s": cpu_seconds() - c0, **extra}


class _Unlogged:
    """``with _Unlogged(client) as c``: ``c`` logs to no op-log (neither ``op_log`` nor
    ``OBJIO_OP_LOG``, which ``--op-log`` sets) while the block runs."""

    def __init__(self, client: Client) -> None:
        self.config = dataclasses.replace(client.config, op_log=None)  # .replace keeps it

    def __enter__(self) -> Client:
        self.saved = os.environ.pop("OBJIO_OP_LOG", None)
        return Client(self.config)

    def __exit__(self, *exc: Any) -> None:
        if self.saved is not None:
            os.environ["OBJIO_OP_LOG"] = self.saved


class _Barriers:
    """``barrier(tag)`` for a task: records the tags passed, so that a rank that fails passes
    the rest (the others are not left waiting)."""

    def __init__(self, group: Any, tags: tuple[str, ...]) -> None:
        self.group, self.tags, self.passed = group, tags, 0

    def __call__(self, tag: str) -> None:
        if self.passed >= len(self.tags) or self.tags[self.passed] != tag:
            raise RuntimeError(f"barrier {tag!r} out of order (expected {self.tags})")
        self.passed += 1
        self.group.barrier(tag)

    def finish(self) -> None:
        while self.passed < len(self.tags):
            self.__call__(self.tags[self.passed])


def rank_share(task: Task, config: ClientConfig, rank: int, size: int, group: Any,
               log_path: str, ship: bool = True) -> list[dict[str, Any]] | None:
    """One rank's part after the data is written: run the share with its op-log at
    ``log_path``, then gather every rank's result on the collecting rank (returned there;
    None elsewhere): with ``ship`` the op-log's text under ``op_log``, else only its path
    (``op_log_path``: a file every rank and the collector reach). A failure is gathered as
    ``error``."""
    from .. import oplog

    c = Client(config.replace(op_log=log_path))
    result: dict[str, Any] = {"rank": rank, "pid": os.getpid(), "host": os.uname().nodename}
    barrier = _Barriers(group, task.barriers)
    saved = os.environ.get("OBJIO_OP_LOG")
    os.environ["OBJIO_OP_LOG"] = log_path  # clients made by datasets, DataLoader workers
    try:
        result.update(task.run(c, rank, size, barrier))
    except Exception as e:  # noqa: BLE001 - gathered, raised by the collector
        result["error"] = f"{type(e).__name__}: {e}"
        barrier.finish()
    finally:
        if saved is None:
            os.environ.pop("OBJIO_OP_LOG", None)
        else:
            os.environ["OBJIO_OP_LOG"] = saved
    oplog.close(log_path)
    if not ship:
        result["op_log_path"] = log_path
        return group.gather("result", result)  # type: ignore[no-any-return]
    try:
        with open(log_path, encoding="utf-8") as f:
            result["op_log"] = f.read()
    except FileNotFoundError:  # no request logged
        result["op_log"] = ""
    return group.gather("result", result)  # type: ignore[no-any-return]


def user_logs(config: ClientConfig) -> str | None:
    """The op-log path the user asked for (``--op-log``, ``OBJIO_OP_LOG``): in a split run
    each rank writes its own, ``{rank}`` replaced (required), and the logs stay where they
    are (only their paths are gathered). Raises ValueError without ``{rank}``."""
    path = config.op_log
    if path is not None and "{rank}" not in path:
        raise ValueError(f"--op-log {path!r}: with --clients or a launcher every rank writes "
                         "its own op-log: put {rank} in the path (e.g. ops-{rank}.tsv.zst)")
    return path


def _rank_log(template: str | None, logdir: str, name: str, rank: int) -> tuple[str, bool]:
    """(this rank's op-log path, whether its text goes through the gather)."""
    if template is None:
        return os.path.join(logdir, name), True
    return template.replace("{rank}", str(rank)).replace("{pid}", str(os.getpid())), False


def _write_logs(got: list[dict[str, Any]], logdir: str, name: str = "rank") -> list[str]:
    """The gathered op-logs as files (their text written under ``logdir``, or the paths the
    ranks wrote), in rank order."""
    logs = []
    for x in sorted(got, key=lambda x: x["rank"]):
        if "op_log_path" in x:
            logs.append(x.pop("op_log_path"))
            continue
        p = os.path.join(logdir, f"{name}{x['rank']}.tsv")
        with open(p, "w", encoding="utf-8") as f:
            f.write(x.pop("op_log", ""))
        logs.append(p)
    return logs


def _raise_failed(got: list[dict[str, Any]], who: str) -> None:
    failed = [x for x in got if "error" in x]
    if failed:
        raise RuntimeError(f"{who} {failed[0]['rank']} failed: {failed[0]['error']}")


def run_launched(client: Client, task: Task, *, keep: bool = False,
                 gather_dir: str | None = None, rank: int | None = None,
                 world_size: int | None = None) -> dict[str, Any] | None:
    """This rank's part under a launcher (rank and world size from its environment,
    :func:`objio.bench.ranks.world`): rank 0 prepares, every rank runs its share, rank 0
    gathers and returns the report (:func:`aggregate`); None on the other ranks.

    Raises: ValueError (the work does not split over the ranks), TimeoutError (a rank did not
    arrive), RuntimeError (a rank failed: its error)."""
    from .ranks import gatherer, world

    r, n = world()
    rank = r if rank is None else rank
    n = n if world_size is None else world_size
    task.check(n)
    template = user_logs(client.config)
    quiet = _Unlogged(client)  # the data written: not in the op-logs
    g = gatherer(rank, n, gather_dir)
    logdir = tempfile.mkdtemp(prefix=f"objio-rank{rank}-")
    try:
        prep_error = None
        if rank == 0:
            try:
                with quiet as c:
                    task.prepare(c)
            except Exception as e:  # noqa: BLE001 - after the barrier, or the others hang
                prep_error = e
        g.barrier("written")
        log_path, ship = _rank_log(template, logdir, "ops.tsv", rank)
        got = rank_share(task, client.config, rank, n, g, log_path, ship)
        if rank != 0:
            return None
        if prep_error is not None:
            raise prep_error
        assert got is not None
        _raise_failed(got, "rank")
        logs = _write_logs(got, logdir)
        if not keep:
            with quiet as c:
                task.cleanup(c)
        return aggregate(task, got, logs, {"clients": n, "gather": g.name})
    finally:
        g.close()


class _Spawned:
    """Barrier and gather of ``--clients`` processes: a multiprocessing barrier and queue
    (the parent collects)."""

    name = "spawn"

    def __init__(self, barrier: Any, results: Any) -> None:
        self.b, self.results = barrier, results

    def barrier(self, tag: str) -> None:
        self.b.wait(timeout=600)

    def gather(self, tag: str, obj: Any) -> None:
        self.results.put(obj)


def _client_main(task: Task, config: ClientConfig, rank: int, size: int, barrier: Any,
                 results: Any, log_path: str, ship: bool) -> None:
    # this process's rank, as a launcher would give it: the op-log's rank column and
    # client_id (host:rank:pid), objio.torch's iterable dataset sharding
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(size))
    try:
        rank_share(task, config, rank, size, _Spawned(barrier, results), log_path, ship)
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        results.put({"rank": rank, "error": f"{type(e).__name__}: {e}"})


def run_spawned(client: Client, task: Task, *, clients: int, keep: bool = False,
                log_dir: str | None = None,
                server_cpu: Any = None) -> dict[str, Any]:
    """``--clients N``: prepare here, then N spawned processes (nothing inherited) run their
    shares, all starting together; returns the report (:func:`aggregate`). ``server_cpu``:
    the CPU seconds so far of a server on this machine
    (:meth:`objio.server.LocalS3Server.cpu_seconds`): the report then also has where the CPU
    went per request, the server's and the clients' (``aggregate["cpu"]``).

    Raises: ValueError (bad arguments), RuntimeError (a client process failed: its error)."""
    if isinstance(clients, bool) or not isinstance(clients, int) or clients < 1:
        raise ValueError(f"--clients must be an integer >= 1, got {clients!r}")
    task.check(clients)
    template = user_logs(client.config)
    quiet = _Unlogged(client)  # the data written: not in the op-logs
    with quiet as c:
        task.prepare(c)
    logs_dir = log_dir or tempfile.mkdtemp(prefix="objio-clients-")
    os.makedirs(logs_dir, exist_ok=True)
    ctx = multiprocessing.get_context("spawn")
    s0 = server_cpu() if server_cpu is not None else None
    barrier = ctx.Barrier(clients)
    results = ctx.Queue()
    procs = []
    got: list[dict[str, Any]] = []
    try:
        for rank in range(clients):
            log_path, ship = _rank_log(template, logs_dir, f"client{rank}.part.tsv", rank)
            p = ctx.Process(target=_client_main,
                            args=(task, client.config, rank, clients, barrier, results,
                                  log_path, ship),
                            name=f"objio-bench-client-{rank}")
            p.start()
            procs.append(p)
        got = [results.get(timeout=3600) for _ in procs]
        for p in procs:
            p.join(60)
        s1 = server_cpu() if server_cpu is not None else None
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
        if not keep:
            with quiet as c:
                task.cleanup(c)
    _raise_failed(got, "client")
    logs = _write_logs(got, logs_dir, "client")
    rep = aggregate(task, got, logs, {"clients": clients})
    if s0 is not None and s1 is not None:
        agg = rep["aggregate"]
        n = sum(t["requests"] for t in agg["op_log"].values()) or 1
        client_s = sum(r["cpu_s"] for r in rep["clients"])
        agg["cpu"] = {"server_s": s1 - s0, "clients_s": client_s, "requests": n,
                      "server_us_per_request": (s1 - s0) / n * 1e6,
                      "clients_us_per_request": client_s / n * 1e6}
    return rep


def aggregate(task: Task, per: list[dict[str, Any]], logs: list[str],
              extra: dict[str, Any]) -> dict[str, Any]:
    """The report from every rank's result and op-log: ``{"kind", "config", "clients": [per
    rank: items, bytes, wall_s, cpu_s, mib_per_s, ...], "aggregate": {"unit", "items",
    "bytes", "duration_s", "items_per_s_over_duration", "mib_per_s_over_duration",
    "window_s", "ops": {op: {"mib_per_s", "ops_per_s"}}, "op_log": totals per op, ...},
    "report": objio.report's analysis, "logs", "environment"}`` (MiB = 2**20 bytes,
    seconds)."""
    from .. import report as op_report

    per = sorted(per, key=lambda r: r["rank"])
    for r in per:
        r["mib_per_s"] = r["bytes"] / MiB / r["wall_s"] if r["wall_s"] else None
    reqs, rep = op_report.run(logs)
    duration = max(r["wall_s"] for r in per)
    items = sum(r["items"] for r in per)
    nbytes = sum(r["bytes"] for r in per)
    ops = {op: {"mib_per_s": rep["ops"][op]["mib_per_s"], "ops_per_s": rep["ops"][op]["ops_per_s"]}
           for op in task.ops if op in rep["ops"]}
    agg: dict[str, Any] = {
        "unit": task.unit, "items": items, "bytes": nbytes, "duration_s": duration,
        "items_per_s_over_duration": items / duration if duration else None,
        "mib_per_s_over_duration": nbytes / MiB / duration if duration else None,
        "window_s": rep["window"]["seconds"], "ops": ops, "op_log": op_report.totals(reqs)}
    head = ops.get(task.ops[0], {})
    agg["mib_per_s"], agg["ops_per_s"] = head.get("mib_per_s"), head.get("ops_per_s")
    agg.update(task.summarize(per, agg))
    return {"kind": task.kind, "config": {**task.config(), **extra}, "clients": per,
            "aggregate": agg, "report": rep, "logs": logs, "environment": environment([])}


def print_split(rep: dict[str, Any], task: Task, out: Any = None) -> None:
    """The report as text (fits 100 columns): a header, one row per rank, the aggregate, then
    :func:`objio.report.print_report` of the merged op-logs (per-endpoint rows when several)."""
    import sys

    from ..report import print_report

    out = out or sys.stdout
    cfg, agg = rep["config"], rep["aggregate"]
    who = (f"{cfg['clients']} ranks ({cfg['gather']})" if cfg.get("gather")
           else f"--clients {cfg['clients']}")
    settings = ", ".join(f"{k} {v}" for k, v in cfg.items()
                         if k not in ("clients", "gather", "uri") and v is not None)
    print(f"objio bench {task.kind} on {who}: {cfg.get('uri', '')} ({settings})", file=out)
    cols = task.columns()
    head = "".join(f" {t:>9s}" for _, t, _ in cols)
    print(f"  {'rank':6s} {'host:pid':24s} {task.unit:>9s} {'MiB/s':>9s} {'seconds':>8s} "
          f"{'CPU s':>7s}{head}", file=out)
    for r in rep["clients"]:
        extra = "".join(f" {format(r[k], f) if r.get(k) is not None else '-':>9s}"
                        for k, _, f in cols)
        mib = "-" if r["mib_per_s"] is None else f"{r['mib_per_s']:.1f}"
        print(f"  {r['rank']:<6d} {(r.get('host', '') + ':' + str(r.get('pid', '')))[:24]:24s} "
              f"{r['items']:9,d} {mib:>9s} {r['wall_s']:8.2f} {r['cpu_s']:7.2f}{extra}",
              file=out)
    ops = "; ".join(f"{op} {v['mib_per_s']:.1f} MiB/s, {v['ops_per_s']:.0f} requests/s"
                    for op, v in agg["ops"].items())
    print(f"  aggregate over the common window ({agg['window_s']:.2f} s): {ops or '-'}",
          file=out)
    over = agg["mib_per_s_over_duration"]
    print(f"  over the slowest rank's {agg['duration_s']:.2f} s: {agg['items']:,} {task.unit}, "
          f"{agg['items_per_s_over_duration']:,.1f} {task.unit}/s"
          + ("" if over is None else f", {over:.1f} MiB/s"), file=out)
    cpu = agg.get("cpu")
    if cpu:
        print(f"  CPU per request: server {cpu['server_us_per_request']:.0f} us, clients "
              f"{cpu['clients_us_per_request']:.0f} us ({cpu['server_s']:.2f} s and "
              f"{cpu['clients_s']:.2f} s for {cpu['requests']:,} requests)", file=out)
    for line in task.summary_lines(agg):
        print(f"  {line}", file=out)
    print(f"  op-logs: {', '.join(rep['logs'])}", file=out)
    print_report(rep["report"], out)
