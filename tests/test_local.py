"""The same API on file:// URIs and bare local paths."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import objio
from objio.config import MiB


def test_roundtrip_list_delete(tmp_path: Path) -> None:
    base = f"file://{tmp_path}/data/"
    objio.put_bytes(base + "a/x.bin", b"xx")
    objio.put_bytes(str(tmp_path / "data" / "a" / "y.npz"), b"yy")  # a bare path
    objio.put_bytes(base + "b.bin", b"b")
    assert objio.list(base) == [f"{tmp_path}/data/a/x.bin", f"{tmp_path}/data/a/y.npz",
                                f"{tmp_path}/data/b.bin"]
    assert objio.list(base + "a/*.npz") == [f"{tmp_path}/data/a/y.npz"]
    assert bytes(objio.get(base + "a/x.bin")) == b"xx"
    assert bytes(objio.get_range(base + "a/x.bin", 1, 10)) == b"x"
    assert objio.stat(base + "b.bin").size == 1
    assert objio.get_many_stats(objio.list(base)) == (3, 5)
    assert objio.delete(base + "a/") == 2
    assert objio.list(base) == [f"{tmp_path}/data/b.bin"]


def test_missing_file_and_exist_ok(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        objio.get(f"file://{tmp_path}/nope")
    assert not objio.exists(tmp_path / "nope")
    objio.put_bytes(tmp_path / "once", b"1", exist_ok=False)
    with pytest.raises(FileExistsError):
        objio.put_bytes(tmp_path / "once", b"2", exist_ok=False)
    assert (tmp_path / "once").read_bytes() == b"1"
    # a directory that does not exist is an error, not an empty listing (issue 16, D2)
    with pytest.raises(FileNotFoundError, match="missing-dir"):
        objio.list(f"file://{tmp_path}/missing-dir/")


def test_put_generates_files_and_multipart(tmp_path: Path) -> None:
    objio.put(f"file://{tmp_path}/gen", num=3, size=1000, object_type="npz")
    names = sorted(os.listdir(tmp_path / "gen"))
    assert names == [f"object_{i}_of_3.dat" for i in range(3)]
    assert objio.read_npz(f"file://{tmp_path}/gen/object_0_of_3.dat").dtype == np.uint8
    c = objio.Client(range_threshold=5 * MiB, part_size=5 * MiB)
    payload = np.random.default_rng(0).integers(0, 256, 12 * MiB, dtype=np.uint8)
    c.put_bytes(tmp_path / "big.bin", payload)
    assert (tmp_path / "big.bin").read_bytes() == payload.tobytes()
    assert bytes(c.get(tmp_path / "big.bin")) == payload.tobytes()
    # no temporary files or upload directories left behind
    assert sorted(os.listdir(tmp_path)) == ["big.bin", "gen"]
