"""Every fenced code block of README.md and of every docs page (``docs/**/*.md``) runs as
written, against the session's LocalS3Server.

Conventions (also stated in docs/contributing.md, "Every code block runs"):

- A markdown file is parsed on its own (``parse_readme``); a ``##`` section of it is one unit
  (the text before its first ``##``, a page's title and introduction, is one too): its blocks run in README order in one Python process, all its
  ```` ```python ```` blocks in one namespace (a later block may use what an earlier one of the
  same section defined), with cwd a fresh temporary directory. Sections do not share state: the
  buckets a section names are emptied and removed before it runs, so each section starts as on
  a fresh server and must create what it uses.
- ```` ```bash ```` / ```` ```sh ```` blocks: every line that is not a comment is a command
  (``\\`` continues a line), run by ``bash -o pipefail`` in turn; ```` ```console ```` blocks:
  the lines starting with ``$ `` are commands, the others are their output (not compared).
  ``objio`` and ``python`` are this interpreter's; a plain ``objio ARGS`` line runs
  ``objio.cli.main(ARGS)`` in a forked process (tests/readme_runner.py: no second import).
- The environment is what ``objio server`` prints (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
  ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``), as if its ``export`` lines had been pasted.
- ```` ```text ```` blocks are output samples (tables, logs, layouts): never run.
- A block that cannot run here has ``<!-- not run: REASON -->`` on the line before its fence;
  it is counted and listed, and there may be at most ``MAX_NOT_RUN`` of them in the README and
  ``MAX_NOT_RUN_PER_PAGE`` on each docs page.
- Any other info string (an empty one included) is an error: say what the block is.

A failure names the file and line of the block (or command) that failed (``README.md:42``,
``docs/guides/cli.md:57``) and shows its output.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import objio
from conftest import BUCKET
from objio.server import LocalS3Server

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
# the files whose blocks run: the README, then every docs page (reference pages have none)
FILES = [README, *sorted(DOCS.rglob("*.md"))]
PYTHON_INFO = {"python", "py"}
SHELL_INFO = {"bash", "sh", "shell"}
CONSOLE_INFO = {"console"}
TEXT_INFO = {"text"}
MAX_NOT_RUN = 6              # in the README
MAX_NOT_RUN_PER_PAGE = 3     # on each docs page (an install line, a server in the foreground)
SECTION_TIMEOUT_S = 300
_NOT_RUN = re.compile(r"^<!--\s*not run:\s*(?P<reason>.*?)\s*-->\s*$")
_BUCKET = re.compile(r"s3://([a-z0-9][a-z0-9.-]{2,62})(?=[/'\"\s)`]|$)")


@dataclass
class Block:
    line: int                 # line of the block's first code line in its file (1-based)
    info: str
    code: list[str]
    section: str
    not_run: str | None = None


@dataclass
class Section:
    title: str
    line: int
    blocks: list[Block] = field(default_factory=list)
    file: str = "README.md"   # the markdown file, relative to the repository


def parse_readme(text: str, file: str = "README.md") -> list[Section]:
    """A markdown file's ``##`` sections with their fenced blocks (``###`` belongs to its
    ``##``; the text before the first ``##`` is the section ``(top)``)."""
    sections = [Section("(top)", 1, file=file)]
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            sections.append(Section(line[3:].strip(), i + 1, file=file))
        elif line.startswith("```"):
            info = line[3:].strip().split(" ")[0]
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            k = i - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            m = _NOT_RUN.match(lines[k].strip()) if k >= 0 else None
            sections[-1].blocks.append(Block(i + 2, info, lines[i + 1:j], sections[-1].title,
                                             m.group("reason") if m else None))
            i = j
        i += 1
    return [s for s in sections if s.blocks]


def shell_commands(block: Block) -> list[tuple[int, str]]:
    """(README line, command) of a bash/sh/console block."""
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for n, raw in enumerate(block.code, start=block.line):
        line = raw.rstrip()
        if block.info in CONSOLE_INFO and pending is None:
            if not line.startswith("$ "):
                continue              # output shown in the README, not compared
            line = line[2:]
        if pending is None and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if pending is not None:
            pending = (pending[0], pending[1] + "\n" + line)
        else:
            pending = (n, line)
        if not line.endswith("\\"):
            out.append(pending)
            pending = None
    if pending is not None:
        out.append(pending)
    return out


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


SECTIONS = [s for f in FILES for s in parse_readme(f.read_text(encoding="utf-8"), _rel(f))]
RUNNABLE = [s for s in SECTIONS
            if any(b.not_run is None and b.info not in TEXT_INFO for b in s.blocks)]

RUNNER = Path(__file__).resolve().parent / "readme_runner.py"   # one process per section


def _steps(section: Section) -> list[dict[str, object]]:
    steps: list[dict[str, object]] = []
    for b in section.blocks:
        if b.not_run is not None or b.info in TEXT_INFO:
            continue
        if b.info in PYTHON_INFO:
            steps.append({"kind": "python", "line": b.line, "code": "\n".join(b.code),
                          "file": section.file})
        elif b.info in SHELL_INFO | CONSOLE_INFO:
            steps += [{"kind": "shell", "line": n, "code": c, "file": section.file}
                      for n, c in shell_commands(b)]
        else:
            raise AssertionError(f"{section.file}:{b.line - 1}: unknown info string {b.info!r}")
    return steps


def _fresh_buckets(client: objio.Client, section: Section) -> None:
    """Empty and remove every bucket the section names: it runs as on a fresh server."""
    names = {m.group(1) for b in section.blocks for line in b.code
             for m in _BUCKET.finditer(line)}
    existing = {name for name, _ in client.list_buckets()} - {BUCKET}   # the suite's own
    for name in sorted(names & existing):
        client.delete(f"s3://{name}/")
        client.delete_bucket(f"s3://{name}")


def test_every_block_has_a_known_info_string_and_few_are_not_run() -> None:
    known = PYTHON_INFO | SHELL_INFO | CONSOLE_INFO | TEXT_INFO
    bad = [f"{s.file}:{b.line - 1}: fenced block with info string {b.info!r} (use one of "
           f"{sorted(known)}; output samples are ```text)"
           for s in SECTIONS for b in s.blocks if b.info not in known]
    assert not bad, "\n".join(bad)
    for f in FILES:
        name = _rel(f)
        not_run = [f"{name}:{b.line - 1} ({s.title}): {b.not_run}"
                   for s in SECTIONS if s.file == name for b in s.blocks if b.not_run is not None]
        assert all(b.not_run for s in SECTIONS if s.file == name for b in s.blocks
                   if b.not_run is not None), \
            "a <!-- not run: --> marker needs its reason:\n" + "\n".join(not_run)
        cap = MAX_NOT_RUN if f == README else MAX_NOT_RUN_PER_PAGE
        assert len(not_run) <= cap, (
            f"{len(not_run)} blocks of {name} are marked not run (at most {cap}):\n"
            + "\n".join(not_run))
    # the parser found the blocks of the README and of the pages
    assert any(s.file == "README.md" for s in RUNNABLE)
    assert any(s.file == "docs/guides/dlio-s3-rust.md" and s.title.startswith("The bulk API")
               for s in RUNNABLE)


def _section_id(s: Section) -> str:
    where = "README" if s.file == "README.md" else s.file.removeprefix("docs/").removesuffix(".md")
    return f"{where}: {s.title.split(':')[0]}"


@pytest.mark.parametrize("section", RUNNABLE, ids=[_section_id(s) for s in RUNNABLE])
def test_readme_section_runs_as_written(section: Section, s3_server: LocalS3Server,
                                        client: objio.Client, tmp_path: Path) -> None:
    _fresh_buckets(client, section)
    work = tmp_path / "cwd"
    work.mkdir()
    spec = tmp_path / "steps.json"
    spec.write_text(json.dumps(_steps(section)), encoding="utf-8")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "OBJIO_ENDPOINT", "OBJIO_REGION", "OBJIO_PROFILE"))}
    env.update(s3_server.environ())  # what `objio server` prints as export lines
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    try:
        r = subprocess.run([sys.executable, str(RUNNER), str(spec)], cwd=work, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=SECTION_TIMEOUT_S)
    finally:
        _fresh_buckets(client, section)   # leave the session's server as it was
    if r.returncode != 0:
        pytest.fail(f"section {section.title!r} ({section.file}:{section.line}) does not "
                    f"run as written:\n{r.stdout[-6000:]}", pytrace=False)


def test_the_parser_reads_sections_markers_console_lines_and_continuations() -> None:
    text = "\n".join([
        "# title", "## One", "<!-- not run: needs 8 nodes -->", "", "```bash", "mpirun x", "```",
        "```console", "$ objio ls s3://my-bucket/ \\", "    --recursive", "2026 out", "```",
        "### sub", "```python", "x = 1", "```", "## Two", "```text", "a table", "```",
    ])
    one, two = parse_readme(text)
    assert (one.title, two.title) == ("One", "Two")
    marked, console, py = one.blocks
    assert marked.not_run == "needs 8 nodes" and marked.line == 6
    assert shell_commands(console) == [(9, "objio ls s3://my-bucket/ \\\n    --recursive")]
    assert py.info == "python" and py.code == ["x = 1"] and py.not_run is None
    assert _steps(one) == [{"kind": "shell", "line": 9,
                            "code": "objio ls s3://my-bucket/ \\\n    --recursive",
                            "file": "README.md"},
                           {"kind": "python", "line": 15, "code": "x = 1", "file": "README.md"}]
    assert _steps(two) == []
    top, = parse_readme("# Page\n```python\ny = 2\n```\n", "docs/page.md")
    assert (top.title, top.file) == ("(top)", "docs/page.md")
    assert _steps(top) == [{"kind": "python", "line": 3, "code": "y = 2", "file": "docs/page.md"}]
