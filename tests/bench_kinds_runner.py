"""Run every ``objio bench`` kind, small, in this process: started by tests/test_bench_kinds.py
under torchrun and mpiexec (every rank runs it). ``python bench_kinds_runner.py OUT PREFIX``:
each kind's report goes to ``OUT/<kind>.json`` (rank 0 writes it; the others write nothing)."""

from __future__ import annotations

import sys

KINDS = {
    "objects": ["objects/", "--num", "6", "--size", "16KiB", "--epochs", "2",
                "--max-in-flight", "4"],
    "list": ["list", "", "--keys", "40"],
    "model": ["model", "model/", "--size", "4MiB", "--shards", "2", "--max-in-flight", "4"],
    "checkpoint": ["checkpoint", "ckpt/", "--size", "2MiB"],
    "train": ["train", "train/", "--workload", "cosmoflow", "--scale", "0.00001", "--epochs",
              "2", "--workers", "0", "--compute-time", "0"],
}
"""Kind -> its arguments after ``bench``; the second (or first, for objects) is appended to
the prefix."""


def argv(kind: str, prefix: str, json_path: str) -> list[str]:
    args = list(KINDS[kind])
    where = 0 if kind == "objects" else 1
    args[where] = prefix + args[where]
    return ["bench", *args, "--json", json_path]


def main(out: str, prefix: str) -> int:
    from objio.cli import main as objio_main

    for kind in KINDS:
        code = objio_main(argv(kind, prefix, f"{out}/{kind}.json"))
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
