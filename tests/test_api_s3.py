"""The bulk API against the real LocalS3Server, and against LocalAzureServer (az://) for every
test that takes the store (``client`` / ``prefix`` / ``store``: conftest.py)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable

import h5py
import numpy as np
import pytest

import objio
from conftest import Store
from objio.config import MiB
from objio.server import LocalS3Server
from objio.uri import parse_uri

pytestmark = pytest.mark.backends("s3", "az", "gs")


@pytest.fixture
def client(store: Store) -> objio.Client:
    return store.client


def _base(prefix: str) -> str:
    """The key of a prefix URI (what listings return under it)."""
    return parse_uri(prefix).key

KEYS = ["plain.bin", "with space/a b.txt", "uni/ü日本.npz", "plus+sign", "pct%41", "eq=a=b",
        "tilde~x", "star*(paren)!", "semi;colon:at@comma,", "deep/a/b/c.bin"]


def test_put_get_roundtrip_any_key(client: objio.Client, prefix: str) -> None:
    for i, k in enumerate(KEYS):
        client.put_bytes(prefix + k, f"payload {i}".encode())
    listed = client.list(prefix)
    base = _base(prefix)
    assert listed == sorted(base + k for k in KEYS)
    for i, k in enumerate(KEYS):
        assert bytes(client.get(prefix + k)) == f"payload {i}".encode()


def test_get_returns_zero_copy_buffer(client: objio.Client, prefix: str) -> None:
    payload = np.arange(1000, dtype=np.float32)
    client.put_bytes(prefix + "arr", payload)  # a numpy array is accepted as-is
    data = client.get(prefix + "arr")
    assert len(data) == payload.nbytes
    assert bytes(data[:8]) == payload.tobytes()[:8]
    assert memoryview(data).nbytes == payload.nbytes
    view = np.frombuffer(data, dtype=np.float32)
    assert np.array_equal(view, payload)
    assert view.base is not None and np.shares_memory(view, np.frombuffer(data, dtype=np.uint8))


def test_put_bytes_accepts_memoryview_and_bytearray(client: objio.Client, prefix: str) -> None:
    client.put_bytes(prefix + "mv", memoryview(b"abcdef")[1:4])
    client.put_bytes(prefix + "ba", bytearray(b"xyz"))
    assert bytes(client.get(prefix + "mv")) == b"bcd"
    assert bytes(client.get(prefix + "ba")) == b"xyz"
    with pytest.raises(TypeError, match="bytes-like"):
        client.put_bytes(prefix + "bad", "a str")


def test_large_object_ranged_get_and_multipart_put(store: Store, prefix: str) -> None:
    # Small threshold and part size so a 23 MiB object crosses both paths.
    c = objio.Client(store.config, range_threshold=6 * MiB, part_size=5 * MiB)
    rng = np.random.default_rng(1)
    payload = rng.integers(0, 256, size=23 * MiB + 12345, dtype=np.uint8)
    c.put_bytes(prefix + "big", payload)  # multipart: 5 parts
    assert c.list_multipart_uploads(prefix) == []
    info = c.stat(prefix + "big")
    assert info.size == payload.nbytes
    if store.kind == "s3":
        assert "-" in info.etag  # multipart ETags are "<md5 of md5s>-<parts>"
    records: list[objio.RequestRecord] = []
    data = c.get_many([prefix + "big"], observer=records.append)[0][1]
    assert hashlib.sha256(data).digest() == hashlib.sha256(payload).digest()
    assert len(records) == 1 and records[0].nbytes == payload.nbytes
    assert 0 < records[0].ttfb_s <= records[0].total_s


def test_get_range(client: objio.Client, prefix: str) -> None:
    client.put_bytes(prefix + "r", bytes(range(256)) * 4)
    assert bytes(client.get_range(prefix + "r", 10, 5)) == bytes(range(10, 15))
    assert bytes(client.get_range(prefix + "r", 1020)) == bytes(range(252, 256))
    assert bytes(client.get_range(prefix + "r", 1020, 100)) == bytes(range(252, 256))
    assert bytes(client.get_range(prefix + "r", 5000, 10)) == b""
    assert bytes(client.get_range(prefix + "r", 3, 0)) == b""
    with pytest.raises(ValueError, match="offset"):
        client.get_range(prefix + "r", -1, 5)
    with pytest.raises(ValueError, match="length"):
        client.get_range(prefix + "r", 0, -5)
    with pytest.raises(FileNotFoundError):
        client.get_range(prefix + "missing", 0, 0)


def test_empty_object(client: objio.Client, prefix: str) -> None:
    client.put_bytes(prefix + "empty", b"")
    assert bytes(client.get(prefix + "empty")) == b""
    assert client.stat(prefix + "empty").size == 0


def test_get_many_order_and_errors(client: objio.Client, prefix: str) -> None:
    uris = [f"{prefix}o{i}" for i in range(50)]
    client.put_many([(u, f"v{i}".encode() * (i + 1)) for i, u in enumerate(uris)], max_in_flight=8)
    shuffled = uris[::-1] + uris[:3]
    got = client.get_many(shuffled, max_in_flight=7)
    assert [u for u, _ in got] == shuffled
    for u, d in got:
        i = int(u.rsplit("o", 1)[1])
        assert bytes(d) == f"v{i}".encode() * (i + 1)
    missing = prefix + "not-there"
    with pytest.raises(FileNotFoundError, match="not-there"):
        client.get_many(uris[:5] + [missing] + uris[5:10])
    res = client.get_many([uris[0], missing], return_exceptions=True)
    assert bytes(res[0][1]) == b"v0"
    assert isinstance(res[1][1], FileNotFoundError) and "not-there" in str(res[1][1])
    assert client.get_many([]) == []
    assert client.get_many_stats([]) == (0, 0)


def test_get_many_stats_counts(client: objio.Client, prefix: str) -> None:
    client.put(prefix, num=20, size=10_000, max_in_flight=4)
    uris = [prefix + k.rsplit("/", 1)[1] for k in client.list(prefix)]
    assert client.get_many_stats(uris, max_in_flight=3) == (20, 200_000)


def test_put_writes_distinct_named_objects(client: objio.Client, prefix: str) -> None:
    client.put(prefix, num=4, template="img_{}_of_{}.bin", size=4096)
    names = [k.rsplit("/", 1)[1] for k in client.list(prefix)]
    assert names == [f"img_{i}_of_4.bin" for i in range(4)]
    bodies = [bytes(d) for _, d in client.get_many([prefix + n for n in names])]
    assert all(len(b) == 4096 for b in bodies)
    assert len(set(bodies)) == 4  # never one buffer N times
    # a prefix without trailing slash gets one
    client.put(prefix.rstrip("/") + "/sub", num=1, size=10)
    assert client.exists(prefix + "sub/object_0_of_1.dat")


def test_put_object_types_are_valid_files(client: objio.Client, prefix: str) -> None:
    client.put(prefix + "npz/", num=2, size=64 * 1024, object_type="npz", template="f_{}_of_{}.npz")
    x = client.read_npz(prefix + "npz/f_0_of_2.npz")
    assert x.dtype == np.uint8 and x.ndim == 3
    y = client.read_npz(prefix + "npz/f_1_of_2.npz", "y")
    assert len(y) == x.shape[2]
    with pytest.raises(ValueError, match="arrays: x, y"):
        client.read_npz(prefix + "npz/f_0_of_2.npz", "nope")
    client.put(prefix + "h5/", num=1, size=64 * 1024, object_type="Hdf5")
    with h5py.File(io.BytesIO(bytes(client.get(prefix + "h5/object_0_of_1.dat"))), "r") as f:
        assert set(f.keys()) >= {"records", "labels"}
    client.put(prefix + "tfr/", num=1, size=64 * 1024, object_type="TFRECORD")
    data = bytes(client.get(prefix + "tfr/object_0_of_1.dat"))
    length = int.from_bytes(data[:8], "little")
    assert 0 < length < len(data)


@pytest.mark.parametrize("kwargs,match", [
    ({"num": -1}, "num"),
    ({"size": -5}, "size"),
    ({"object_type": "parquetz"}, "NPZ, TFRECORD, HDF5, RAW"),
    ({"template": "object_{}.dat"}, "template"),
    ({"template": "object_{}_{}_{}.dat"}, "template"),
    ({"template": "object_{name}_{}.dat"}, "template"),
    ({"max_in_flight": 0}, "max_in_flight"),
])
def test_put_rejects_bad_arguments(client: objio.Client, prefix: str, kwargs: dict[str, object],
                                   match: str) -> None:
    with pytest.raises(ValueError, match=match):
        client.put(prefix, **kwargs)  # type: ignore[arg-type]
    assert client.list(prefix) == []


def test_put_num_zero_is_fine(client: objio.Client, prefix: str) -> None:
    client.put(prefix, num=0)
    assert client.list(prefix) == []


def test_bad_uri_and_max_in_flight(client: objio.Client) -> None:
    with pytest.raises(ValueError, match="supported schemes"):
        client.get("http://example.com/x")
    with pytest.raises(ValueError, match="bucket name"):
        client.get("s3://BadBucket/x")
    with pytest.raises(ValueError, match="max_in_flight"):
        client.get_many(["s3://objio-test/x"], max_in_flight=0)
    with pytest.raises(ValueError, match="max_in_flight"):
        client.get_many_stats(["s3://objio-test/x"], max_in_flight=-1)


def test_list_glob_and_prefix_semantics(client: objio.Client, prefix: str) -> None:
    for k in ["train/a.npz", "train/b.npz", "train/c.txt", "train/sub/d.npz", "trainer.npz"]:
        client.put_bytes(prefix + k, b"x")
    base = _base(prefix)
    assert client.list(prefix + "train/*.npz") == [base + "train/a.npz", base + "train/b.npz"]
    assert client.list(prefix + "train/?.txt") == [base + "train/c.txt"]
    assert len(client.list(prefix + "train/")) == 4
    assert len(client.list(prefix + "train")) == 5  # a string prefix, like S3
    infos = client.list_objects(prefix + "train/")
    assert all(i.size == 1 for i in infos)
    client.put_bytes(prefix + "train/*.npz", b"literal")  # get takes keys literally
    assert bytes(client.get(prefix + "train/*.npz")) == b"literal"


def test_list_pagination(client: objio.Client, prefix: str) -> None:
    n = 2100  # three ListObjectsV2 pages
    client.put_many(((f"{prefix}k{i:05d}", b"") for i in range(n)), max_in_flight=64)
    keys = client.list(prefix)
    assert len(keys) == n and keys == sorted(keys)
    assert client.delete(prefix) == n  # three DeleteObjects batches
    assert client.list(prefix) == []


def test_delete_single_and_glob(client: objio.Client, prefix: str) -> None:
    for k in ["a.bin", "b.bin", "c.txt"]:
        client.put_bytes(prefix + k, b"1")
    client.delete(prefix + "a.bin")
    assert not client.exists(prefix + "a.bin")
    client.delete(prefix + "missing.bin")  # like S3: not an error
    assert client.delete(prefix + "*.bin") == 1
    assert [k.rsplit("/", 1)[1] for k in client.list(prefix)] == ["c.txt"]


def test_stat_exists(store: Store, client: objio.Client, prefix: str) -> None:
    client.put_bytes(prefix + "s", b"12345")
    info = client.stat(prefix + "s")
    assert info.size == 5
    if store.kind == "s3":  # S3: the ETag of a single PUT is the body's MD5
        assert info.etag == hashlib.md5(b"12345").hexdigest()
    else:  # Azure, GCS: an opaque ETag (GCS: the generation); the body's MD5 kept as well
        assert info.etag and info.content_md5 == "gnzLDuqKcGxMNKFokfhOew=="
    assert info.key.endswith("/s") and info.last_modified > 1.6e9
    assert client.exists(prefix + "s") and not client.exists(prefix + "nope")


def test_missing_object_and_bucket(store: Store, client: objio.Client, prefix: str) -> None:
    with pytest.raises(FileNotFoundError) as e:
        client.get(prefix + "nope")
    assert isinstance(e.value, objio.NotFoundError)
    code, op = {"s3": ("NoSuchKey", "GetObject"), "az": ("BlobNotFound", "GetBlob"),
                "gs": ("NoSuchKey", "GetObject")}[store.kind]
    assert e.value.code == code and e.value.status == 404 and e.value.operation == op
    assert "nope" in str(e.value)
    with pytest.raises(FileNotFoundError, match="no-such-bucket"):
        client.list(store.uri("no-such-bucket"))
    with pytest.raises(FileNotFoundError):
        client.stat(prefix + "nope")
    with pytest.raises(FileNotFoundError, match="no-such-bucket"):
        client.put(store.uri("no-such-bucket", "x/"), num=1, size=1)


def test_wrong_secret_and_unknown_key(s3_server: LocalS3Server, prefix: str) -> None:
    bad = objio.Client(s3_server.config, secret_access_key="wrong-secret-value")
    with pytest.raises(PermissionError) as e:
        bad.list(prefix)
    assert isinstance(e.value, objio.AccessDeniedError)
    assert "wrong-secret-value" not in str(e.value) and "wrong-secret-value" not in repr(bad)
    unknown = objio.Client(s3_server.config, access_key_id="AKIDUNKNOWN0000",
                           secret_access_key="whatever")
    with pytest.raises(PermissionError):
        unknown.get(prefix + "x")
    with pytest.raises(PermissionError):
        unknown.put_bytes(prefix + "x", b"1")


def test_no_credentials_is_permission_error(s3_server: LocalS3Server, tmp_path: object,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for v in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", f"{tmp_path}/none")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", f"{tmp_path}/none")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    c = objio.Client(endpoint_url=s3_server.endpoint_url)
    with pytest.raises(PermissionError, match="unsigned=True"):
        c.list("s3://objio-test/")


def test_env_credentials_and_endpoint(s3_server: LocalS3Server, client: objio.Client, prefix: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_access_key)
    monkeypatch.setenv("AWS_REGION", s3_server.region)
    client.put_bytes(prefix + "env", b"via env")
    assert bytes(objio.Client().get(prefix + "env")) == b"via env"


def test_sign_payload_and_unsigned(s3_server: LocalS3Server, prefix: str) -> None:
    signed = objio.Client(s3_server.config, sign_payload=True)
    signed.put_bytes(prefix + "sp", b"signed body")
    assert bytes(signed.get(prefix + "sp")) == b"signed body"
    anon = objio.Client(endpoint_url=s3_server.endpoint_url, unsigned=True)
    with pytest.raises(PermissionError):  # auth is on: anonymous requests are refused
        anon.put_bytes(prefix + "anon", b"x")


def test_exist_ok_false(client: objio.Client, prefix: str) -> None:
    client.put_bytes(prefix + "once", b"first", exist_ok=False)
    with pytest.raises(FileExistsError) as e:
        client.put_bytes(prefix + "once", b"second", exist_ok=False)
    assert isinstance(e.value, objio.AlreadyExistsError)
    assert bytes(client.get(prefix + "once")) == b"first"


def test_create_bucket(store: Store, client: objio.Client) -> None:
    client.create_bucket(store.uri("objio-created"))
    with pytest.raises(FileExistsError):
        client.create_bucket(store.uri("objio-created"))
    client.create_bucket(store.uri("objio-created"), exist_ok=True)
    client.put(store.uri("objio-made-by-put", "p/"), num=1, size=8, should_create_bucket=True)
    assert client.list(store.uri("objio-made-by-put")) == ["p/object_0_of_1.dat"]
    with pytest.raises(ValueError, match="bucket name|container name"):
        client.create_bucket(store.uri("no"))


def test_module_level_functions_use_configure(store: Store, prefix: str) -> None:
    old = objio.default_client()
    try:
        objio.configure(store.config)
        objio.put_bytes(prefix + "m", b"module")
        assert bytes(objio.get(prefix + "m")) == b"module"
        assert objio.list(prefix) == [_base(prefix) + "m"]
        assert objio.get_many_stats([prefix + "m"]) == (1, 6)
        assert objio.DEFAULT_OBJECT_SIZE == 20 * MiB
    finally:
        objio.configure(old.config)


def test_put_generated_overlaps_and_counts(client: objio.Client, prefix: str) -> None:
    def factory(i: int) -> Callable[[], list[tuple[str, bytes]]]:
        return lambda: [(f"{prefix}f{i}.bin", bytes([i]) * 100), (f"{prefix}index/f{i}.idx", b"0 100\n")]

    assert client.put_generated((factory(i) for i in range(10)), max_in_flight=3) == 20
    assert len(client.list(prefix)) == 20
    assert bytes(client.get(prefix + "f7.bin")) == b"\x07" * 100

    def boom() -> list[tuple[str, bytes]]:
        raise ValueError("generator failed")

    with pytest.raises(ValueError, match="generator failed"):
        client.put_generated([boom])
