"""Manifests (issue 17): a listing written once (``objio ls --manifest``,
``objio.manifest.write_manifest``) as parquet, JSON lines or zstd JSON lines, read back with
every field, by pyarrow / json / zstandard as a user would, and by every reader without a
single ListObjectsV2 (or HEAD) request, counted in the fault proxy's log: the datasets'
``from_manifest``, ``ModelConnector(manifest=...)``, ``objio cp/sync --from-manifest``. Bad
input is a ValueError naming the file: not a manifest, a file cut short anywhere, a manifest
of another bucket or prefix; a listing that fails leaves no file behind."""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import objio
from faultproxy import FaultProxy, Request, Response, Rewrite
from objio.cli import main as cli_main
from objio.manifest import FORMATS, read_manifest, write_manifest
from objio.server import LocalS3Server

BUCKET = "objio-test"
KEYS = [f"train/img_{i:04d}.bin" for i in range(1200)] + [
    "train/sub/deeper.bin", "train/é 日本 & <x>.bin", "train/plus+pct.bin", "val/v.bin"]


def _size(i: int) -> int:
    return (i * 37) % 500


@pytest.fixture(scope="module")
def dataset(client: objio.Client) -> Iterator[str]:
    """A prefix holding KEYS (two listing pages under train/), sizes from _size."""
    prefix = f"s3://{BUCKET}/manifest-{uuid.uuid4().hex[:8]}/"
    client.put_many(((prefix + k, bytes([i % 251]) * _size(i)) for i, k in enumerate(KEYS)),
                    max_in_flight=64)
    yield prefix
    client.delete(prefix)



def _lists(log: list[Request]) -> list[Request]:
    return [r for r in log if r.method == "GET" and r.query.get("list-type") == "2"]


def _heads(log: list[Request]) -> list[Request]:
    return [r for r in log if r.method == "HEAD"]


@pytest.fixture(scope="module")
def manifests(client: objio.Client, dataset: str,
              tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("manifests")
    out = {}
    for fmt in FORMATS:
        out[fmt] = d / f"train.{fmt}"
        write_manifest(dataset + "train/", out[fmt], client=client)
    return out


# ------------------------------------------------------------------------------ format
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_manifest_holds_the_listing_once(client: objio.Client, dataset: str, fmt: str,
                                           tmp_path: Path) -> None:
    import time

    path = tmp_path / f"m.{fmt}"
    before = time.time()
    written = write_manifest(dataset + "train/", path, client=client, fast=True)
    after = time.time()
    infos = client.list_objects(dataset + "train/")
    m = read_manifest(path)
    assert m == written
    assert m.uri == dataset + "train/" and m.format == fmt
    assert before - 0.001 <= m.listed_at <= after and 0 <= m.listing_seconds <= after - before
    assert m.count == len(infos) == len(KEYS) - 1
    assert m.total_bytes == sum(i.size for i in infos) > 0
    got = list(m)
    assert got == infos  # key, size, ETag, last-modified: as listed, in listing order
    assert os.listdir(tmp_path) == [f"m.{fmt}"]  # no temporary file left


def test_manifests_read_as_users_would(manifests: dict[str, Path], client: objio.Client,
                                       dataset: str) -> None:
    import pyarrow.parquet as pq
    import zstandard

    infos = client.list_objects(dataset + "train/")
    table = pq.read_table(manifests["parquet"])
    assert table.column_names == ["key", "size", "etag", "last_modified"]
    assert table.column("key").to_pylist() == [i.key for i in infos]
    assert table.column("size").to_pylist() == [i.size for i in infos]
    stamps = table.column("last_modified").to_pylist()
    assert [t.timestamp() for t in stamps] == [i.last_modified for i in infos]
    meta = json.loads(pq.ParquetFile(manifests["parquet"]).metadata.metadata[b"objio.manifest"])
    assert meta["uri"] == dataset + "train/" and meta["count"] == len(infos)

    for fmt in ("jsonl", "jsonl.zst"):
        raw = manifests[fmt].read_bytes()
        if fmt == "jsonl.zst":
            raw = zstandard.ZstdDecompressor().decompressobj().decompress(raw)
        lines = [json.loads(x) for x in raw.decode().splitlines()]
        assert lines[0]["objio_manifest"] == 1 and lines[0]["uri"] == dataset + "train/"
        assert lines[-1] == {"objio_manifest_end": True, "count": len(infos),
                             "total_bytes": sum(i.size for i in infos),
                             "listing_seconds": lines[-1]["listing_seconds"]}
        rows = lines[1:-1]
        assert [r["key"] for r in rows] == [i.key for i in infos]
        assert [(r["size"], r["etag"]) for r in rows] == [(i.size, i.etag) for i in infos]
        assert all(r["last_modified"].endswith("Z") for r in rows)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_manifest_cut_short_anywhere_is_refused(manifests: dict[str, Path], fmt: str,
                                                  tmp_path: Path) -> None:
    data = manifests[fmt].read_bytes()
    for cut in (1, len(data) // 3, len(data) // 2 + 7, len(data) - 60, len(data) - 1):
        bad = tmp_path / f"cut-{cut}.{fmt}"
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="not a complete objio manifest|not an objio") \
                as info:
            read_manifest(bad)
        assert str(bad) in str(info.value)


def test_what_is_not_a_manifest_is_refused(tmp_path: Path, manifests: dict[str, Path]) -> None:
    (tmp_path / "x.jsonl").write_text('{"key": "a", "size": 1}\n')
    with pytest.raises(ValueError, match="is not an objio manifest"):
        read_manifest(tmp_path / "x.jsonl")
    (tmp_path / "y.jsonl").write_text("")
    with pytest.raises(ValueError, match="empty"):
        read_manifest(tmp_path / "y.jsonl")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"key": ["a"], "size": [1]}), tmp_path / "z.parquet")
    with pytest.raises(ValueError, match="is not an objio manifest"):
        read_manifest(tmp_path / "z.parquet")
    with pytest.raises(ValueError, match=r"\.parquet, \.jsonl, \.jsonl\.zst"):
        read_manifest(tmp_path / "m.csv")
    with pytest.raises(FileNotFoundError):
        read_manifest(tmp_path / "missing.jsonl")
    lines = manifests["jsonl"].read_text().splitlines(keepends=True)
    (tmp_path / "short.jsonl").write_text("".join(lines[:5] + lines[-1:]))  # entries lost
    with pytest.raises(ValueError, match="the trailer says"):
        read_manifest(tmp_path / "short.jsonl")


def test_formats_need_their_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                  dataset: str, client: objio.Client) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "zstandard", None)
    for fmt in ("parquet", "jsonl.zst"):
        with pytest.raises(ImportError, match=r"objio\[manifest\]"):
            write_manifest(dataset, tmp_path / f"m.{fmt}", client=client)
    assert os.listdir(tmp_path) == []


def test_a_failed_listing_leaves_no_manifest(pclient: objio.Client, proxy: FaultProxy,
                                             dataset: str, tmp_path: Path) -> None:
    def drop(req: Request, resp: Response) -> Response:
        a = resp.body.find(b"<Contents>")
        b = resp.body.index(b"</Contents>", a) + len(b"</Contents>")
        resp.body = resp.body[:a] + resp.body[b:]
        return resp

    proxy.add(lambda r: "continuation-token" in r.query, Rewrite(drop), times=None)
    for fmt in FORMATS:
        with pytest.raises(objio.ObjectStoreError, match="KeyCount"):
            write_manifest(dataset + "train/", tmp_path / f"m.{fmt}", client=pclient)
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------------ readers
@pytest.mark.parametrize("fmt", FORMATS)
def test_datasets_from_a_manifest_never_list(pclient: objio.Client, proxy: FaultProxy,
                                             manifests: dict[str, Path], dataset: str,
                                             client: objio.Client, fmt: str) -> None:
    from objio.torch import S3IterableDataset, S3MapDataset

    cfg = pclient.config
    keys = client.list(dataset + "train/")
    m = S3MapDataset.from_manifest(manifests[fmt], region=cfg.region, s3client_config=cfg)
    assert len(m) == len(keys)
    assert [m[i].key for i in (0, 5, len(keys) - 1)] == [keys[0], keys[5], keys[-1]]
    assert m[7].read() == client.get(f"s3://{BUCKET}/{keys[7]}")
    assert m.total_bytes == sum(i.size for i in client.list_objects(dataset + "train/"))
    sub = S3IterableDataset.from_manifest(manifests[fmt], dataset + "train/img_001",
                                          region=cfg.region, s3client_config=cfg,
                                          transform=lambda r: (r.key, len(r.read())))
    got = list(sub)
    assert [k for k, _ in got] == [k for k in keys if k.startswith(keys[0][:-8] + "001")]
    assert all(n == _size(int(k[-8:-4])) for k, n in got) and len(got) == 10
    assert _lists(proxy.log) == [] and _heads(proxy.log) == []  # no listing, no HEAD


def test_a_manifest_of_another_bucket_or_prefix_is_refused(manifests: dict[str, Path],
                                                           dataset: str) -> None:
    from objio.torch import S3MapDataset

    other = dataset.replace(f"s3://{BUCKET}/", "s3://another-bucket/")
    with pytest.raises(ValueError, match="another bucket"):
        S3MapDataset.from_manifest(manifests["parquet"], other + "train/")
    with pytest.raises(ValueError, match="does not hold all of"):
        S3MapDataset.from_manifest(manifests["parquet"], dataset)  # wider than train/
    with pytest.raises(ValueError, match="does not hold all of"):
        S3MapDataset.from_manifest(manifests["jsonl"], dataset + "val/")


def test_model_connector_lists_and_opens_from_a_manifest(s3_server: LocalS3Server,
                                                         proxy: FaultProxy,
                                                         manifests: dict[str, Path],
                                                         dataset: str,
                                                         client: objio.Client) -> None:
    from objio.model import ModelConnector

    proxy.clear()
    cfg = s3_server.config.replace(endpoint_url=proxy.endpoint_url)
    infos = client.list_objects(dataset + "train/img_000")
    with ModelConnector(config=cfg, manifest=manifests["jsonl.zst"]) as conn:
        bucket, prefix = BUCKET, objio.parse_uri(dataset).key + "train/img_000"
        assert conn.list(bucket, prefix) == infos
        assert conn.list(f"s3://{bucket}/{prefix}", fast=True) == infos
        files = [conn.open(f"oss://{bucket}/{o.key}") for o in infos[:4]]
        for f, o in zip(files, infos, strict=False):
            assert f.size == o.size
            assert f.read() == client.get(f"s3://{bucket}/{o.key}")
        with pytest.raises(ValueError, match="does not hold all of"):
            conn.list(bucket, objio.parse_uri(dataset).key + "val/")
    assert _lists(proxy.log) == [] and _heads(proxy.log) == []


@pytest.mark.parametrize("fmt", ["parquet", "jsonl.zst"])
def test_objio_ls_writes_a_manifest_cp_and_sync_read_it(
        s3_server: LocalS3Server, proxy: FaultProxy, dataset: str, client: objio.Client,
        cli_env: list[str], tmp_path: Path, fmt: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / f"m.{fmt}"
    src = dataset + "train/"
    assert cli_main(["ls", "--manifest", str(path), src, *cli_env, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["objects"] == len(KEYS) - 1 and summary["manifest"] == str(path)
    assert read_manifest(path).count == len(KEYS) - 1
    proxy.clear()
    via = ["--endpoint-url", proxy.endpoint_url]
    out = tmp_path / "copy"
    assert cli_main(["cp", "-q", "--from-manifest", str(path), src + "sub/", str(out), *via]) == 0
    assert [p.name for p in out.iterdir()] == ["deeper.bin"]
    assert cli_main(["sync", "-q", "--from-manifest", str(path), src, str(tmp_path / "s"),
                     *via]) == 0
    files = sorted(str(p.relative_to(tmp_path / "s")) for p in (tmp_path / "s").rglob("*")
                   if p.is_file())
    assert files == sorted(k[len("train/"):] for k in KEYS if k.startswith("train/"))
    assert (tmp_path / "s" / "img_0003.bin").read_bytes() == bytes([3]) * _size(3)
    assert [r for r in _lists(proxy.log) if r.query.get("prefix", "").endswith("train/")] == []
    # the manifest must hold the source
    code = cli_main(["cp", "--from-manifest", str(path), dataset + "val/", str(out), *via])
    assert code == 1 and "does not hold all of" in capsys.readouterr().err


def test_objio_ls_manifest_of_nothing_exits_1(dataset: str, cli_env: list[str],
                                              tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "none.jsonl"
    assert cli_main(["ls", "--manifest", str(path), dataset + "nothing/", *cli_env]) == 1
    assert "manifest: 0 object(s)" in capsys.readouterr().out
    assert read_manifest(path).count == 0


def test_manifest_of_local_files(tmp_path: Path) -> None:
    from objio.torch import S3MapDataset

    root = tmp_path / "data"
    for i in range(5):
        (root / f"d{i % 2}").mkdir(parents=True, exist_ok=True)
        (root / f"d{i % 2}" / f"f{i}").write_bytes(b"x" * i)
    path = tmp_path / "m.jsonl"
    m = write_manifest(str(root) + "/", path)
    assert m.count == 5 and m.total_bytes == 10 and m.uri == f"file://{root}/"
    ds = S3MapDataset.from_manifest(path, transform=lambda r: r.read())
    assert sorted(ds[i] for i in range(len(ds))) == [b"x" * i for i in range(5)]
    ds0 = S3MapDataset.from_manifest(path, str(root / "d0") + "/", transform=lambda r: r.read())
    assert len(ds0) == 3


