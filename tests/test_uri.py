from __future__ import annotations

import os
from typing import Any

import pytest

from objio.uri import ObjectURI, has_glob, parse_uri


def test_s3_uri_parts() -> None:
    u = parse_uri("s3://my-bucket/a/b c.npz")
    assert (u.scheme, u.bucket, u.key) == ("s3", "my-bucket", "a/b c.npz")
    assert str(u) == "s3://my-bucket/a/b c.npz"
    assert parse_uri("s3://my-bucket").key == ""
    assert parse_uri("S3://my-bucket/x").scheme == "s3"


def test_file_uri_and_bare_paths(tmp_path: os.PathLike[str]) -> None:
    assert parse_uri("file:///tmp/x.bin") == ObjectURI("file", "", "/tmp/x.bin")
    assert parse_uri("file:///tmp/dir/").key == "/tmp/dir/"
    assert parse_uri("/tmp/x").key == "/tmp/x"
    assert parse_uri("rel/x").key == os.path.abspath("rel/x")
    assert parse_uri(tmp_path).key == str(tmp_path)
    assert str(parse_uri("file:///tmp/a%20b")) == "file:///tmp/a b"


@pytest.mark.parametrize("bad", ["http://host/x", "hdfs://bucket/x", "s3:/bucket/x", "s3:bucket/x",
                                 "ftp://x"])
def test_unsupported_scheme_names_uri_and_schemes(bad: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_uri(bad)
    assert bad in str(e.value)
    assert "s3://" in str(e.value)


@pytest.mark.parametrize("bucket", ["ab", "UPPER", "-lead", "trail-", "a..b", "192.168.1.1",
                                    "under_score", "x" * 64])
def test_invalid_bucket_names(bucket: str) -> None:
    with pytest.raises(ValueError, match="bucket name"):
        parse_uri(f"s3://{bucket}/key")


def test_empty_and_wrong_type() -> None:
    with pytest.raises(ValueError):
        parse_uri("")
    with pytest.raises(ValueError):
        parse_uri("s3:///key")
    with pytest.raises(TypeError):
        parse_uri(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="file:///"):
        parse_uri("file://relative/path")


def test_has_glob_in_any_segment() -> None:
    # issue 18 A2: s5cmd's wildcards in middle segments too (was: last segment only)
    assert has_glob("train/*.npz")
    assert has_glob("train/img_?.jpg")
    assert has_glob("tr*in/x.npz")
    assert has_glob("data/**.npz")
    assert has_glob("img_[0-9].jpg")
    assert not has_glob("train/")
    assert not has_glob("odd[name")


def test_store_uris_are_parsed_once_local_paths_each_time(tmp_path: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A store URI's parse is kept (a training job reads the same keys every epoch); a
    relative local path is parsed again each time (it follows the current directory); an
    invalid URI is refused every time."""
    from objio import uri as uri_mod

    first = parse_uri("az://cache-test/k/1")
    assert parse_uri("az://cache-test/k/1") is first
    assert parse_uri("s3://cache-test/k") is parse_uri("s3://cache-test/k")
    monkeypatch.chdir(tmp_path)
    here = parse_uri("rel/file.bin")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert parse_uri("rel/file.bin").key != here.key
    for _ in range(2):
        with pytest.raises(ValueError, match="invalid bucket name"):
            parse_uri("s3://Bad_Bucket/k")
    monkeypatch.setattr(uri_mod, "_PARSED_MAX", 2)
    uri_mod._PARSED.clear()
    for i in range(5):
        parse_uri(f"s3://cache-test/k{i}")
    assert len(uri_mod._PARSED) <= 2  # bounded
