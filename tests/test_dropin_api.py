"""Drop-in and API details users rely on: objio.torch exports and S3Client, region from the
environment, put_npz, decode_npz(keys=), the unsharded-workers warning, local DLIO folders,
and generation split over the processes of a job."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import objio
from objio.gen import GenSpec, job_rank, plan
from objio.server import LocalS3Server

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

import objio.torch as ot  # noqa: E402
from objio.torch import transforms as T  # noqa: E402

SRC = str(Path(objio.__file__).resolve().parents[1])


def cfg(server: LocalS3Server) -> ot.S3ClientConfig:
    return ot.S3ClientConfig(force_path_style=True)


@pytest.fixture
def aws_env(s3_server: LocalS3Server, monkeypatch: pytest.MonkeyPatch) -> LocalS3Server:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_access_key)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_REGION", s3_server.region)
    return s3_server


# ------------------------------------------------------------------------------ G4, F4
def test_torch_exports_what_s3torchconnector_exports() -> None:
    s3t = pytest.importorskip("s3torchconnector")
    missing = [n for n in s3t.__all__ if not hasattr(ot, n) and n != "S3Checkpoint"]
    assert missing == []
    assert ot.S3Exception is objio.ObjectStoreError and ot.__version__ == objio.__version__
    for name in ("S3MapDataset", "S3IterableDataset", "S3Client", "S3ClientConfig", "S3Writer",
                 "S3ReaderConstructor"):
        doc = getattr(ot, name).__doc__ or ""
        assert len(doc) > 80, name
    assert "bytes" in (ot.S3IterableDataset.__doc__ or "")


def test_s3client_methods(aws_env: LocalS3Server, client: objio.Client, prefix: str) -> None:
    c = ot.S3Client(aws_env.region, endpoint=aws_env.endpoint_url,
                    s3client_config=cfg(aws_env))
    bucket, base = objio.parse_uri(prefix).bucket, objio.parse_uri(prefix).key
    with c.put_object(bucket, base + "a") as w:
        w.write(b"hello")
    assert c.get_object(bucket, base + "a").read() == b"hello"
    assert isinstance(c.get_object(bucket, base + "a"), ot.SequentialS3Reader)
    head = c.head_object(bucket, base + "a")
    assert head.size == 5 and head.etag
    c.copy_object(bucket, base + "a", bucket, base + "d/b")
    pages = list(c.list_objects(bucket, base))
    assert sorted(i.key for p in pages for i in p.object_info) == [base + "a", base + "d/b"]
    level = list(c.list_objects(bucket, base, delimiter="/"))
    assert level[0].common_prefixes == [base + "d/"]
    c.delete_object(bucket, base + "a")
    with pytest.raises(FileNotFoundError):
        c.head_object(bucket, base + "a")
    with pytest.raises(TypeError):
        c.get_object(bucket, 5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_keys"):
        list(c.list_objects(bucket, base, max_keys=0))


# ------------------------------------------------------------------------------ G3
def test_from_prefix_without_region(aws_env: LocalS3Server, client: objio.Client,
                                    prefix: str) -> None:
    client.put_bytes(prefix + "x", b"1")
    ds = ot.S3MapDataset.from_prefix(prefix, s3client_config=cfg(aws_env), transform=T.nbytes)
    assert ds.region == aws_env.region and ds[0] == 1
    it = ot.S3IterableDataset.from_objects([prefix + "x"], s3client_config=cfg(aws_env),
                                           transform=T.nbytes)
    assert list(it) == [1]


# ------------------------------------------------------------------------------ G1, G2
def test_put_npz_and_decode_npz_keys(aws_env: LocalS3Server, client: objio.Client,
                                     prefix: str) -> None:
    a, b = np.arange(12, dtype=np.float32).reshape(3, 4), np.array([1, 2, 3])
    client.put_npz(prefix + "m.npz", weights=a, labels=b)
    assert np.array_equal(client.read_npz(prefix + "m.npz", "weights"), a)
    with np.load(__import__("io").BytesIO(bytes(client.get(prefix + "m.npz")))) as z:
        assert np.array_equal(z["labels"], b)  # numpy's own format
    ds = ot.S3MapDataset.from_objects([prefix + "m.npz"], s3client_config=cfg(aws_env),
                                      transform=T.decode_npz(keys=("labels", "weights")))
    labels, weights = ds[0]
    assert torch.equal(labels, torch.from_numpy(b)) and torch.equal(weights, torch.from_numpy(a))
    with pytest.raises(ValueError, match="at least one array"):
        client.put_npz(prefix + "empty.npz")
    with pytest.raises(TypeError, match="numeric"):
        client.put_npz(prefix + "obj.npz", x=np.array([object()]))


# ------------------------------------------------------------------------------ G5
def key_of(reader: Any) -> str:
    return str(reader.key)


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
def test_unsharded_iterable_in_workers_warns_once(aws_env: LocalS3Server, client: objio.Client,
                                                  prefix: str, capfd: pytest.CaptureFixture[str]
                                                  ) -> None:
    client.put_many([(f"{prefix}{i}", b"x") for i in range(4)])
    ds = ot.S3IterableDataset.from_prefix(prefix, s3client_config=cfg(aws_env), transform=key_of)
    handler = logging.StreamHandler(sys.stderr)  # the workers inherit it (pytest captures root)
    log = logging.getLogger("objio.torch")
    log.addHandler(handler)
    try:
        got = list(DataLoader(ds, batch_size=None, num_workers=2, timeout=120))
    finally:
        log.removeHandler(handler)
    assert len(got) == 8  # every worker yields everything, as s3torchconnector does
    err = capfd.readouterr().err
    assert err.count("without enable_sharding") == 1 and "enable_sharding=True" in err


# ------------------------------------------------------------------------------ F5
def test_local_generation_creates_both_split_folders(client: objio.Client, tmp_path: Path) -> None:
    from objio.gen import generate_dataset

    generate_dataset(client, tmp_path, GenSpec(format="npz", num_files=2, record_size=1000))
    assert (tmp_path / "train").is_dir() and (tmp_path / "valid").is_dir()
    assert list((tmp_path / "valid").iterdir()) == []


# ------------------------------------------------------------------------------ G2
def test_job_rank_from_launchers() -> None:
    assert job_rank({}) == (0, 1)
    assert job_rank({"RANK": "2", "WORLD_SIZE": "4"}) == (2, 4)
    assert job_rank({"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "3"}) == (1, 3)
    assert job_rank({"PMI_RANK": "0", "PMI_SIZE": "2"}) == (0, 2)
    assert job_rank({"SLURM_PROCID": "5", "SLURM_NTASKS": "8"}) == (5, 8)
    with pytest.raises(ValueError, match="PMI_RANK"):
        job_rank({"PMI_RANK": "3", "PMI_SIZE": "2"})
    with pytest.raises(ValueError, match="RANK"):
        job_rank({"RANK": "x", "WORLD_SIZE": "2"})


def test_generation_split_over_three_processes(s3_server: LocalS3Server, client: objio.Client,
                                               prefix: str) -> None:
    spec = dict(format="tfrecord", num_files=7, num_files_eval=3, samples_per_file=2,
                record_size=4000)
    code = (
        "import json, sys, objio\n"
        "from objio.gen import GenSpec, generate_dataset\n"
        f"c = objio.Client(endpoint_url={s3_server.endpoint_url!r}, region={s3_server.region!r})\n"
        f"r = generate_dataset(c, {prefix!r}, GenSpec(**{spec!r}))\n"
        "print(json.dumps({k: r[k] for k in ('files', 'objects', 'rank', 'world_size')}))\n"
    )
    procs = []
    for rank, (rv, sv) in enumerate([("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE")] * 3):
        env = dict(os.environ, AWS_ACCESS_KEY_ID=s3_server.access_key_id,
                   AWS_SECRET_ACCESS_KEY=s3_server.secret_access_key, **{rv: str(rank), sv: "3"})
        for v in ("RANK", "WORLD_SIZE"):
            env.pop(v, None)
        env["PYTHONPATH"] = os.pathsep.join([SRC, env.get("PYTHONPATH", "")])
        procs.append(subprocess.Popen([sys.executable, "-c", code], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    results = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err.decode()
        results.append(json.loads(out))
    assert sorted(r["rank"] for r in results) == [0, 1, 2]
    assert sum(r["files"] for r in results) == 10  # every file exactly once
    assert [r["files"] for r in sorted(results, key=lambda r: r["rank"])] == [4, 3, 3]
    planned = plan(GenSpec(**spec), prefix)  # type: ignore[arg-type]
    listed = set(client.list(prefix))
    assert {objio.parse_uri(p.uri).key for p in planned} | \
        {objio.parse_uri(p.index_uri).key for p in planned if p.index_uri} == listed
