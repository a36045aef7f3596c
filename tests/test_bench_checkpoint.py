"""objio bench checkpoint: the state dict it builds, a small real run, the command line."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

import objio  # noqa: E402
from objio.bench import checkpoint as ck  # noqa: E402
from objio.cli import main  # noqa: E402

MiB = 1 << 20


@pytest.mark.parametrize("size", [4 * MiB, 24 * MiB])
def test_state_dict_is_transformer_shaped_and_of_the_size_asked(size: int) -> None:
    import torch

    sd = ck.make_state_dict(size, seed=1)
    nbytes, tensors = ck.state_bytes(sd)
    assert abs(nbytes - size) / size < 0.02
    assert tensors > 50
    assert {v.dtype for v in sd["model"].values()} == {torch.bfloat16}
    assert {v.dtype for v in sd["optimizer"].values()} == {torch.float32}
    assert len({v.nbytes for v in sd["model"].values()}) >= 4          # mixed sizes
    model = sum(v.nbytes for v in sd["model"].values())
    assert abs(nbytes / model - 7) < 0.01                                # 2 + 12 bytes/param
    other = ck.make_state_dict(size, seed=2)
    k = next(iter(sd["model"]))
    assert not torch.equal(sd["model"][k].view(torch.uint8), other["model"][k].view(torch.uint8))


def test_no_case_always_follows_the_same_one() -> None:
    """Each case runs after the page cache of the previous one is written back, and over two
    rounds every neighbouring pair runs in both orders (a case that always ran right after
    the same other one would always inherit its leftovers)."""
    from objio.bench.checkpoint import CASES, _round_order

    follows: dict[str, set[str]] = {c: set() for c in CASES}
    for r in range(2):
        order = _round_order(CASES, r)
        assert sorted(order) == sorted(CASES)
        for a, b in zip(order, order[1:], strict=False):
            follows[b].add(a)
    for a, b in zip(CASES, CASES[1:], strict=False):
        assert a in follows[b] and b in follows[a]


def test_presets_are_mlperf_storage_s() -> None:
    assert ck.PRESETS["llama3-8b"].total_bytes == 105 * 10**9
    assert ck.PRESETS["llama3-70b"].ranks == 64
    assert ck.PRESETS["llama3-405b"].total_bytes == 5288 * 10**9


def test_small_run_reports_every_number(s3_server: Any, client: objio.Client, prefix: str,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    cfg = s3_server.config
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", cfg.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", cfg.secret_access_key)
    rc = main(["bench", "checkpoint", prefix, "--endpoint-url", s3_server.endpoint_url,
               "--size", "2MiB", "--rounds", "1", "--cases", "disk,objio",
               "--json", str(tmp_path / "r.json"),
               *(["--plot", str(tmp_path / "r.png")] if _has_matplotlib() else [])])
    assert rc == 0
    out = capsys.readouterr().out
    if _has_matplotlib():
        assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    assert "objio" in out and "GiB/s" in out and "disk" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["kind"] == "checkpoint"
    assert [r["case"] for r in report["runs"]] == ["disk", "objio"]
    for r in report["runs"]:
        assert r["ok"], r.get("error")
        for op in ("save", "load"):
            assert r[op]["gib_s"] > 0 and r[op]["cpu_s_per_gib"] >= 0 and r[op]["peak_rss"] > 0
    assert report["summary"]["objio"]["load"]["gib_s"] > 0
    assert client.list(prefix) == []                    # everything written was deleted


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_cli_stops_the_embedded_server_when_the_run_fails(
        s3_server: Any, client: objio.Client, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import objio.cli.bench as cb

    stopped: list[bool] = []

    class Embedded:
        def stop(self) -> None:
            stopped.append(True)

    monkeypatch.setattr(cb, "start_embedded", lambda: (Embedded(), client))
    assert main(["bench", "checkpoint", "--cases", "disk,nope"]) == 1
    assert "--cases must be a comma list" in capsys.readouterr().err
    assert stopped == [True]


@pytest.mark.parametrize("argv,match", [
    (["--scale", "0.5"], "--scale applies to --workload"),
    (["--workload", "llama3-8b", "--scale", "2"], r"--scale must be in \(0, 1\]"),
    (["--workload", "llama3-8b", "--size", "1GiB"], "exclusive"),
    (["--workload", "llama3-405b"], "does not fit in this machine"),
    (["--size", "1KiB"], "at least 1 MiB"),
    (["--cases", "disk,nope"], "--cases must be a comma list"),
    (["--ranks", "0"], "--ranks must be >= 1"),
])
def test_cli_bad_input(argv: list[str], match: str, capsys: pytest.CaptureFixture[str],
                       s3_server: Any) -> None:
    rc = main(["bench", "checkpoint", "s3://objio-test/x", "--endpoint-url",
               s3_server.endpoint_url, *argv])
    err = capsys.readouterr().err
    assert rc == 1 and "objio bench: error:" in err
    assert re.search(match, err), err


def test_cli_help_describes_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "checkpoint", "--help"])
    text = capsys.readouterr().out
    for opt in ("--size", "--ranks", "--threads", "--rounds", "--cases", "--workload", "--scale",
                "--json", "--plot", "--no-progress"):
        assert opt in text
