"""Runs one markdown section's steps in one process (used by tests/test_readme.py).

``python readme_runner.py STEPS.json``: each step is ``{"kind": "python"|"shell", "line": N,
"code": ..., "file": "docs/guides/cli.md"}`` (``file`` defaults to README.md). Python blocks
are exec'd in one namespace, compiled with the file's name and their line numbers in it, so a
traceback points into the markdown file. Shell commands run through
``bash -o pipefail``; a plain ``objio ARGS`` command (no pipe, redirection, variable or
unquoted wildcard) runs the same entry point, ``objio.cli.main(ARGS)``, in a process forked
from a forkserver that imported ``objio.cli`` once (the console script would import it
again for every command: about a second each on a loaded 2-core machine). On the first
failure it prints where (``FILE:N``) and the output, and exits 1.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shlex
import subprocess
import sys
import traceback
from typing import Any

_SHELL_ONLY = set("|&;<>$`(){}\\\n")


def _plain_objio(cmd: str) -> list[str] | None:
    """The arguments of ``objio ARGS`` when bash would pass them unchanged, else None."""
    quote = ""
    for ch in cmd:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            break
        elif ch in _SHELL_ONLY or ch in "*?[~":
            return None
    try:
        words = shlex.split(cmd, comments=True)
    except ValueError:
        return None
    return words[1:] if words and words[0] == "objio" else None


def _objio_main(argv: list[str], out_path: str) -> None:
    """In the forked child: stdout and stderr to ``out_path``, then ``objio ARGV``."""
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.argv = ["objio", *argv]
    from objio.cli import main

    code = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)


def _run_shell(cmd: str, ctx: Any, out_path: str) -> tuple[int, str]:
    argv = _plain_objio(cmd)
    if argv is None:
        r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        return r.returncode, r.stdout
    p = ctx.Process(target=_objio_main, args=(argv, out_path))
    p.start()
    p.join()
    with open(out_path, encoding="utf-8", errors="replace") as f:
        return p.exitcode or 0, f.read()


def main(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        steps = json.load(f)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["objio.cli"])
    out_path = os.path.abspath(path) + ".out"
    ns: dict[str, Any] = {"__name__": "__main__"}
    for step in steps:
        name = step.get("file", "README.md")
        where = f"{name}:{step['line']}"
        if step["kind"] == "python":
            src = "\n" * (step["line"] - 1) + step["code"] + "\n"
            try:
                exec(compile(src, name, "exec"), ns)  # the markdown file's own code
            except BaseException:  # noqa: BLE001 - SystemExit too: report where, exit 1
                print(f"\n{where}: the python block starting here failed:")
                traceback.print_exc(file=sys.stdout)
                return 1
            continue
        code, output = _run_shell(step["code"], ctx, out_path)
        print(f"{where}: $ {step['code']}\n{output}", end="", flush=True)
        if code != 0:
            print(f"\n{where}: the command failed (exit {code}): $ {step['code']}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
