"""The S3-named classes of objio.torch never read a relative path as a local one (issue 22,
item 5): ``Path("bucket", "key")``, ``"bucket/key"`` (the ``s3://`` forgotten) or ``Path()``
raise ValueError before anything is read, written or deleted, as s3torchconnector's do
("Only s3:// URIs are supported"); ``s3://`` URIs, ``file://`` URIs and absolute local
paths keep working. And the errors users match on for a missing object (item 6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import objio  # noqa: E402
from objio.torch import S3Checkpoint, S3MapDataset, S3Writer  # noqa: E402
from objio.torch import dcp as odcp  # noqa: E402
from objio.torch.datasets import S3IterableDataset  # noqa: E402


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current directory is an empty tmp dir: a relative path read as local would land
    here."""
    (tmp_path / "bucket").mkdir()
    (tmp_path / "bucket" / "key").write_bytes(b"a local file that must stay")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _untouched(root: Path) -> None:
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == ["bucket",
                                                                                "bucket/key"]
    assert (root / "bucket" / "key").read_bytes() == b"a local file that must stay"


RELATIVE = [Path("bucket", "key"), "bucket/key", Path()]


@pytest.mark.parametrize("where", RELATIVE, ids=["Path(bucket,key)", "bucket/key", "Path()"])
def test_relative_paths_are_refused_before_any_io(in_tmp: Path, where: Any) -> None:
    ckpt = S3Checkpoint(region="us-east-1")
    calls = [
        lambda: ckpt.writer(where),
        lambda: ckpt.reader(where),
        lambda: S3Writer.from_uri(where),
        lambda: S3MapDataset.from_prefix(where, region="x"),
        lambda: S3MapDataset.from_objects([where], region="x"),
        lambda: S3IterableDataset.from_prefix(where, region="x"),
        lambda: odcp.S3StorageWriter(None, where),
        lambda: odcp.S3StorageReader(None, where),
        lambda: odcp.S3FileSystem(None).rm_file(where),
        lambda: odcp.S3FileSystem(None).init_path(where),
    ]
    for i, call in enumerate(calls):
        with pytest.raises(ValueError, match="Only s3:// URIs are supported") as e:
            call()
        assert str(where) in str(e.value) or repr(str(where)) in str(e.value), i
    with pytest.raises(ValueError, match="did you mean s3://bucket/key"):
        S3Writer("", "bucket/key")
    assert not odcp.S3FileSystem.validate_checkpoint_id(Path("bucket", "key"))
    _untouched(in_tmp)


def test_absolute_paths_and_file_uris_still_work(tmp_path: Path) -> None:
    ckpt = S3Checkpoint(region="us-east-1")
    for where in (str(tmp_path / "a.pt"), (tmp_path / "b.pt").as_uri()):
        with ckpt.writer(where) as w:
            torch.save({"x": torch.arange(3)}, w)
        with ckpt.reader(where) as r:
            assert torch.equal(torch.load(r)["x"], torch.arange(3))
    assert odcp.S3FileSystem.validate_checkpoint_id(tmp_path)


def test_rename_of_a_missing_object_names_it(s3_server: Any, client: objio.Client,
                                             prefix: str) -> None:
    fs = odcp.S3FileSystem(None, s3client_config=s3_server.config)
    src, dst = f"{prefix}ckpt/missing", f"{prefix}ckpt/new"
    with pytest.raises(FileNotFoundError) as e:
        fs.rename(src, dst)
    assert src in str(e.value)
    assert not client.exists(dst)
