"""``objio bench`` under a launcher: ``torchrun --nproc-per-node N --no-python objio bench ...``
(or ``python -m torch.distributed.run ... -m objio bench``), ``mpirun -n N objio bench ...``
(Open MPI, MPICH) or ``srun objio bench ...``: rank and world size from the launcher's
environment (:func:`world`) and the gathering (:func:`gatherer`). Every kind splits its work
through :mod:`objio.bench.split` (rank 0 writes the data, every rank takes its share with its
own op-log, rank 0 gathers and prints one report; the other ranks print nothing);
:func:`run_ranks` is the objects kind's.

Gathering: with torch installed and the launcher's rendezvous in the environment
(``MASTER_ADDR``/``MASTER_PORT``, as torchrun sets them), torch.distributed's gloo backend
(nothing shared between hosts but the network); else under an MPI launcher mpi4py's
``COMM_WORLD`` when mpi4py is installed; else a folder every rank can reach
(``--gather-dir`` or ``OBJIO_GATHER_DIR``; default on one host: a folder under the temp dir
named after the launcher's process, which every rank's parent is). Ranks on several hosts work
the same way; only the rendezvous differs (a shared file system for the folder).

Rank and world size: ``RANK``/``WORLD_SIZE`` (torchrun), ``OMPI_COMM_WORLD_RANK``/``_SIZE``
(Open MPI), ``PMI_RANK``/``PMI_SIZE`` (MPICH), ``SLURM_PROCID``/``SLURM_NTASKS`` (srun).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from typing import Any

from ..api import Client
from ..uri import parse_uri

_VARS = (("RANK", "WORLD_SIZE"), ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
         ("PMI_RANK", "PMI_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS"))
TEMPLATE = "object_{}_of_{}.dat"


def world() -> tuple[int, int]:
    """(rank, world size) from the launcher's environment; (0, 1) without one."""
    for r, n in _VARS:
        rank, size = os.environ.get(r), os.environ.get(n)
        if rank is not None and size is not None and rank.isdigit() and size.isdigit():
            return int(rank), int(size)
    return 0, 1


class _Folder:
    """Barrier and gather through files in a folder every rank can reach."""

    name = "folder"

    def __init__(self, path: str, rank: int, size: int, timeout_s: float = 600.0) -> None:
        self.path, self.rank, self.size, self.timeout_s = path, rank, size, timeout_s
        os.makedirs(path, exist_ok=True)

    def _wait(self, names: list[str]) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not all(os.path.exists(os.path.join(self.path, n)) for n in names):
            if time.monotonic() > deadline:
                missing = [n for n in names if not os.path.exists(os.path.join(self.path, n))]
                raise TimeoutError(f"ranks did not arrive in {self.timeout_s:.0f} s: waiting for "
                                   f"{', '.join(missing)} in {self.path}")
            time.sleep(0.02)

    def _put(self, name: str, data: bytes) -> None:
        tmp = os.path.join(self.path, f".{name}.{os.getpid()}")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, os.path.join(self.path, name))  # whole or absent

    def barrier(self, tag: str) -> None:
        self._put(f"{tag}.{self.rank}", b"")
        self._wait([f"{tag}.{r}" for r in range(self.size)])

    def gather(self, tag: str, obj: Any) -> list[Any] | None:
        self._put(f"{tag}.{self.rank}.json", json.dumps(obj).encode())
        if self.rank != 0:
            return None
        names = [f"{tag}.{r}.json" for r in range(self.size)]
        self._wait(names)
        out = []
        for n in names:
            with open(os.path.join(self.path, n), "rb") as f:
                out.append(json.loads(f.read()))
        return out

    def close(self) -> None:
        if self.rank == 0:
            shutil.rmtree(self.path, ignore_errors=True)


class _Torch:
    """Barrier and gather through torch.distributed (gloo)."""

    name = "torch"

    def __init__(self) -> None:
        import torch.distributed as dist

        self.dist = dist
        self.owned = not dist.is_initialized()
        if self.owned:  # kept for the next run in this process (gloo does not re-initialise
            # on the same rendezvous once destroyed); destroyed at exit
            dist.init_process_group("gloo")
            import atexit

            atexit.register(_destroy, dist)
        self.rank, self.size = dist.get_rank(), dist.get_world_size()

    def barrier(self, tag: str) -> None:
        self.dist.barrier()

    def gather(self, tag: str, obj: Any) -> list[Any] | None:
        out: list[Any] | None = [None] * self.size if self.rank == 0 else None
        self.dist.gather_object(obj, out, dst=0)
        return out

    def close(self) -> None:
        pass


def _destroy(dist: Any) -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class _Mpi:
    """Barrier and gather through mpi4py's COMM_WORLD (under mpirun/mpiexec/srun with an MPI
    library mpi4py loads)."""

    name = "mpi4py"

    def __init__(self, comm: Any) -> None:
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()

    def barrier(self, tag: str) -> None:
        self.comm.Barrier()

    def gather(self, tag: str, obj: Any) -> list[Any] | None:
        return self.comm.gather(obj, root=0)  # type: ignore[no-any-return]

    def close(self) -> None:
        pass


_MPI_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MPI_LOCALRANKID")


def _mpi(size: int) -> _Mpi | None:
    """mpi4py's COMM_WORLD when this process runs under an MPI launcher with ``size`` ranks
    and mpi4py imports; else None (the folder then)."""
    if not any(v in os.environ for v in _MPI_VARS):
        return None
    try:
        from mpi4py import MPI
    except Exception:  # noqa: BLE001 - not installed, or no MPI library it can load
        return None
    comm = MPI.COMM_WORLD
    return _Mpi(comm) if comm.Get_size() == size else None


def gatherer(rank: int, size: int, gather_dir: str | None) -> Any:
    """The barrier and gather of a launched run: torch.distributed (gloo) when torch is
    installed and the launcher gave a rendezvous (``MASTER_ADDR``/``MASTER_PORT``); mpi4py
    under an MPI launcher when it is installed; else a folder (``gather_dir``,
    ``OBJIO_GATHER_DIR``, or one named after the launcher's process). An explicit
    ``gather_dir`` always means the folder. Each has ``name``, ``barrier(tag)``,
    ``gather(tag, obj)`` (the list on rank 0, None elsewhere) and ``close()``."""
    if gather_dir is None and not os.environ.get("OBJIO_GATHER_DIR"):
        m = None if os.environ.get("MASTER_ADDR") else _mpi(size)
        if m is not None:
            return m
    return _gatherer(rank, size, gather_dir)


def _gatherer(rank: int, size: int, gather_dir: str | None) -> Any:
    if gather_dir is None and os.environ.get("MASTER_ADDR") and os.environ.get("MASTER_PORT"):
        try:
            import torch.distributed  # noqa: F401
        except ImportError:
            pass
        else:
            return _Torch()
    path = gather_dir or os.environ.get("OBJIO_GATHER_DIR") or os.path.join(
        tempfile.gettempdir(), f"objio-gather-{os.getppid()}-{size}")
    return _Folder(path, rank, size)


def run_ranks(client: Client, prefix_uri: str, *, num: int, size: int, epochs: int = 3,
              max_in_flight: int = 64, keep: bool = False, gather_dir: str | None = None,
              rank: int | None = None, world_size: int | None = None) -> dict[str, Any] | None:
    """This rank's part of the objects benchmark (see the module docs;
    :func:`objio.bench.split.run_launched` with :class:`objio.bench.shares.Objects`).
    Returns the report on rank 0, None on the other ranks.

    Raises: ValueError (bad arguments), TimeoutError (a rank did not arrive), RuntimeError
    (a rank failed: its error)."""
    from .shares import Objects
    from .split import run_launched

    task = Objects(str(parse_uri(prefix_uri)), num=num, size=size, epochs=epochs,
                   max_in_flight=max_in_flight)
    return run_launched(client, task, keep=keep, gather_dir=gather_dir, rank=rank,
                        world_size=world_size)
