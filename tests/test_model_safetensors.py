"""safetensors: objio's writer and reader (objio.formats.safetensors), load_safetensors /
iter_safetensors from the real server compared byte for byte with the safetensors package
(the oracle), malformed files and indexes, and the synthetic models of objio gen."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import objio
from objio.cli import main as cli_main
from objio.formats import safetensors as st_format
from objio.gen import models
from objio.model import iter_safetensors, load_safetensors

torch = pytest.importorskip("torch")
st_torch = pytest.importorskip("safetensors.torch")
st_numpy = pytest.importorskip("safetensors.numpy")

pytestmark = pytest.mark.backends("s3", "az", "gs")


@pytest.fixture
def client(store: Any) -> objio.Client:
    """The store's client: tests taking ``client`` / ``prefix`` run on s3:// and az://."""
    return store.client


def _bytes_of(t: Any) -> bytes:
    """A tensor's raw bytes (any dtype, bfloat16 and float8 included)."""
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert set(a) == set(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert _bytes_of(a[k]) == _bytes_of(b[k]), k


def _all_dtypes() -> dict[str, Any]:
    g = torch.Generator().manual_seed(0)
    out = {
        "f64": torch.randn(3, 5, dtype=torch.float64, generator=g),
        "f32": torch.randn(17, 33, generator=g),
        "f16": torch.randn(4, 1000, generator=g).half(),
        "bf16": torch.randn(300, 700, generator=g).bfloat16(),
        "i64": torch.arange(-50, 50, dtype=torch.int64),
        "i32": torch.arange(10, dtype=torch.int32).reshape(2, 5),
        "i16": torch.arange(7, dtype=torch.int16),
        "i8": torch.arange(-3, 3, dtype=torch.int8),
        "u8": torch.arange(255, dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "f8_e4m3": torch.randn(64, generator=g).to(torch.float8_e4m3fn),
        "f8_e5m2": torch.randn(64, generator=g).to(torch.float8_e5m2),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 4),
    }
    for name in ("uint16", "uint32", "uint64"):
        if hasattr(torch, name):
            out[name] = torch.arange(9).to(getattr(torch, name))
    return out


# ------------------------------------------------------------------ the format module
def test_writer_output_loads_with_the_safetensors_package() -> None:
    arrays = {"b": np.arange(12, dtype=np.float32).reshape(3, 4), "a": np.ones((2,), np.int64),
              "s": np.array(7, dtype=np.uint8)}
    data = st_format.safetensors_bytes({k: (d, v.shape, v) for k, (d, v) in {
        "b": ("F32", arrays["b"]), "a": ("I64", arrays["a"]), "s": ("U8", arrays["s"])}.items()},
        metadata={"format": "np"})
    assert struct.unpack("<Q", data[:8])[0] % 8 == 0  # header padded as the reference writes it
    loaded = st_numpy.load(bytes(data))
    for k, v in arrays.items():
        np.testing.assert_array_equal(loaded[k], v)
    mine = st_format.read_safetensors_bytes(data)
    assert list(mine) == ["b", "a", "s"]  # data order
    for k, v in arrays.items():
        np.testing.assert_array_equal(mine[k], v)
    header = st_format.parse_header(data)
    assert header.metadata == {"format": "np"} and header.file_size == len(data)


def test_reader_reads_the_packages_files() -> None:
    tensors = _all_dtypes()
    data = st_torch.save(tensors, metadata={"k": "v"})
    header = st_format.parse_header(data, "x.safetensors")
    assert header.metadata == {"k": "v"}
    assert {t.name: (t.dtype, t.shape) for t in header.tensors}["bf16"] == ("BF16", (300, 700))
    raw = st_format.read_safetensors_bytes(data)
    assert raw["bf16"].dtype == np.uint16 and raw["bf16"].tobytes() == _bytes_of(tensors["bf16"])
    assert raw["scalar"].shape == () and raw["empty"].shape == (0, 4)


def _file(header: dict[str, Any], data: bytes = b"", pad: bool = True) -> bytes:
    text = json.dumps(header).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


@pytest.mark.parametrize("header, data, message", [
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, "'w'.*out of bounds"),
    ({"w": {"dtype": "F33", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, "'w'.*unknown dtype 'F33'"),
    ({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, "'w'.*needs 12"),
    ({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 8]}}, b"\0" * 8, "'w'.*shape"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, b"\0" * 8, "'w'.*out of bounds"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8, "'a'.*'b'.*overlap"),
    ({"w": {"dtype": "F32", "shape": [2]}}, b"\0" * 8, "'w'.*data_offsets"),
    ({"__metadata__": {"a": 1}}, b"", "__metadata__"),
])
def test_malformed_headers_name_file_and_tensor(header: dict[str, Any], data: bytes,
                                                message: str) -> None:
    with pytest.raises(ValueError, match="shard-7.safetensors: .*" + message):
        st_format.parse_header(_file(header, data), "shard-7.safetensors")


def test_truncated_and_garbage_files() -> None:
    good = _file({"w": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}, b"abcd")
    for cut in (0, 5, 20):
        with pytest.raises(ValueError, match="f.safetensors: truncated"):
            st_format.parse_header(good[:cut], "f.safetensors")
    with pytest.raises(ValueError, match="out of bounds"):
        st_format.parse_header(good[:-1], "f.safetensors")
    with pytest.raises(ValueError, match="not UTF-8 JSON"):
        st_format.parse_header(struct.pack("<Q", 4) + b"{nop", "f.safetensors")
    with pytest.raises(ValueError, match="larger than"):
        st_format.parse_header(struct.pack("<Q", 1 << 40), "f.safetensors")
    with pytest.raises(ValueError, match="JSON object"):
        st_format.parse_header(_file([1, 2]), "f.safetensors")  # type: ignore[arg-type]


def test_dataset_file_format_entry() -> None:
    f = objio.formats.get_format("safetensors")
    data = f.build((8, 9), 3, 5, 1, objio.formats.FileOptions())
    assert len(data) == f.expected_size((8, 9), 3, objio.formats.FileOptions())[0]
    arrays = st_numpy.load(bytes(data))
    assert arrays["x"].shape == (3, 8, 9) and arrays["y"].tolist() == [0, 0, 0]
    assert f.read(data)["x"].tobytes() == arrays["x"].tobytes()


# ------------------------------------------------------------------ loading from the server
def test_load_equals_safetensors_torch_load_every_dtype(client: objio.Client, prefix: str) -> None:
    data = st_torch.save(_all_dtypes(), metadata={"format": "pt"})
    client.put_bytes(prefix + "model.safetensors", data)
    got = load_safetensors(prefix + "model.safetensors", client=client)
    _same(got, st_torch.load(data))
    again = load_safetensors(prefix.replace("s3://", "oss://", 1) + "model.safetensors",
                             client=client)
    _same(again, got)


def test_tensors_are_views_of_one_buffer_per_shard(client: objio.Client, prefix: str) -> None:
    tensors = {f"t{i}": torch.full((1000,), float(i)) for i in range(4)}
    client.put_bytes(prefix + "m.safetensors", st_torch.save(tensors))
    got = load_safetensors(prefix + "m.safetensors", client=client)
    ptrs = sorted((t.data_ptr(), t.data_ptr() + t.numel() * 4) for t in got.values())
    assert all(a[1] == b[0] for a, b in zip(ptrs, ptrs[1:], strict=False))  # contiguous: no copy
    got["t0"][0] = 42.0  # writable


def _sharded(client: objio.Client, prefix: str, n: int = 3) -> dict[str, Any]:
    g = torch.Generator().manual_seed(1)
    tensors = {f"layer.{i}.w": torch.randn(64, 257, generator=g).bfloat16() for i in range(3 * n)}
    names = sorted(tensors)
    wmap = {}
    for s in range(n):
        file = f"model-{s + 1:05d}-of-{n:05d}.safetensors"
        part = {k: tensors[k] for k in names[s::n]}
        client.put_bytes(prefix + file, st_torch.save(part))
        wmap.update({k: file for k in part})
    client.put_bytes(prefix + "model.safetensors.index.json",
                     st_format.index_json(wmap, sum(t.numel() * 2 for t in tensors.values())))
    return tensors


def test_load_an_index_a_prefix_and_a_list(client: objio.Client, prefix: str) -> None:
    tensors = _sharded(client, prefix)
    from_index = load_safetensors(prefix + "model.safetensors.index.json", client=client)
    _same(from_index, tensors)
    _same(load_safetensors(prefix, client=client), tensors)
    _same(load_safetensors(prefix.rstrip("/"), client=client), tensors)
    files = [prefix + f"model-{s + 1:05d}-of-00003.safetensors" for s in range(3)]
    _same(load_safetensors(files, client=client), tensors)
    names = [name for name, _ in iter_safetensors(files, client=client)]
    assert sorted(names) == sorted(tensors) and len(names) == len(set(names))


def test_index_and_shards_that_disagree(client: objio.Client, prefix: str) -> None:
    _sharded(client, prefix)
    index = json.loads(bytes(client.get(prefix + "model.safetensors.index.json")))
    index["weight_map"]["layer.0.w"] = "model-00002-of-00003.safetensors"
    client.put_bytes(prefix + "bad.index.json", json.dumps(index).encode())
    with pytest.raises(ValueError, match=r"model-0000[12]-of-00003.safetensors: tensor 'layer.0.w'"):
        load_safetensors(prefix + "bad.index.json", client=client)
    index["weight_map"]["ghost"] = "model-00003-of-00003.safetensors"
    client.put_bytes(prefix + "ghost.index.json", json.dumps(index).encode())
    with pytest.raises(ValueError, match="'ghost'|'layer.0.w'"):
        load_safetensors(prefix + "ghost.index.json", client=client)
    dup = [prefix + "model-00001-of-00003.safetensors"] * 2
    with pytest.raises(ValueError, match="twice"):
        load_safetensors(dup, client=client)
    client.put_bytes(prefix + "copy.safetensors",
                     bytes(client.get(prefix + "model-00001-of-00003.safetensors")))
    with pytest.raises(ValueError, match="in both"):
        load_safetensors([prefix + "model-00001-of-00003.safetensors",
                          prefix + "copy.safetensors"], client=client)
    client.put_bytes(prefix + "notjson.index.json", b"{weight")
    with pytest.raises(ValueError, match="notjson.index.json: not a JSON"):
        load_safetensors(prefix + "notjson.index.json", client=client)


def test_truncated_shard_on_the_server(client: objio.Client, prefix: str) -> None:
    data = st_torch.save({"a": torch.zeros(1000), "b": torch.ones(1000)})
    client.put_bytes(prefix + "cut.safetensors", data[:-100])
    with pytest.raises(ValueError, match=r"cut.safetensors: tensor 'b': .*out of bounds"):
        load_safetensors(prefix + "cut.safetensors", client=client)
    client.put_bytes(prefix + "tiny.safetensors", b"\x01\x02")
    with pytest.raises(ValueError, match="tiny.safetensors: truncated"):
        load_safetensors(prefix + "tiny.safetensors", client=client)
    with pytest.raises(FileNotFoundError):
        load_safetensors(prefix + "missing.safetensors", client=client)
    with pytest.raises(FileNotFoundError, match="no model.safetensors.index.json"):
        load_safetensors(prefix + "empty-dir/", client=client)


def test_deeply_nested_header_or_index_is_a_value_error(client: objio.Client,
                                                       prefix: str) -> None:
    """[[[...]]] 200,000 levels deep (400 KB, far below the header size limit) made the JSON
    parser raise RecursionError: it is the documented ValueError naming the shard."""
    deep = b"[" * 200_000 + b"]" * 200_000
    client.put_bytes(prefix + "deep.safetensors", struct.pack("<Q", len(deep)) + deep)
    with pytest.raises(ValueError, match=f"{prefix}deep.safetensors: .*nested too deeply"):
        load_safetensors(prefix + "deep.safetensors", client=client)
    client.put_bytes(prefix + "deep.index.json", b'{"weight_map": ' + deep + b"}")
    with pytest.raises(ValueError, match=f"{prefix}deep.index.json: nested too deeply"):
        load_safetensors(prefix + "deep.index.json", client=client)
    with pytest.raises(ValueError, match="f.safetensors: .*nested too deeply"):
        st_format.parse_header(struct.pack("<Q", len(deep)) + deep, "f.safetensors")


def test_large_shard_in_parts_and_devices(client: objio.Client, prefix: str) -> None:
    """A shard larger than part_size (5 MiB): fetched as several ranged GETs."""
    g = torch.Generator().manual_seed(3)
    tensors = {f"w{i}": torch.randn(1024, 1024, generator=g) for i in range(3)}  # 12 MiB
    data = st_torch.save(tensors)
    client.put_bytes(prefix + "big.safetensors", data)
    small = objio.Client(client.config, part_size=5 << 20)
    first = next(iter_safetensors(prefix + "big.safetensors", client=small, max_in_flight=2))
    assert first[0] == "w0" and torch.equal(first[1], tensors["w0"])
    _same(load_safetensors(prefix + "big.safetensors", client=small), tensors)
    meta = load_safetensors(prefix + "big.safetensors", client=small, device="meta")
    assert meta["w1"].device.type == "meta" and meta["w1"].shape == (1024, 1024)
    with pytest.raises(ValueError, match="device"):
        load_safetensors(prefix + "big.safetensors", client=small, device="warp-drive")
    with pytest.raises(ValueError, match="max_in_flight"):
        load_safetensors(prefix + "big.safetensors", client=small, max_in_flight=0)


def test_local_files(tmp_path: Path) -> None:
    tensors = _all_dtypes()
    st_torch.save_file(tensors, str(tmp_path / "model.safetensors"))
    _same(load_safetensors(str(tmp_path / "model.safetensors")), tensors)
    _same(load_safetensors(tmp_path.as_uri() + "/"), tensors)


# ------------------------------------------------------------------ synthetic models
@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_presets_have_the_real_models_tensors(name: str) -> None:
    preset = models.MODELS[name]
    names = [n for n, _ in preset.tensors()]
    assert names[0] == "model.embed_tokens.weight" and "model.norm.weight" in names
    assert f"model.layers.{preset.num_hidden_layers - 1}.mlp.down_proj.weight" in names
    assert ("model.layers.0.self_attn.q_proj.bias" in names) == name.startswith("qwen")
    shards = models.plan_shards(preset)  # Hugging Face's 5 GB shards
    expected = {"llama3-8b": 4, "llama3-70b": 30, "qwen2.5-7b": 4, "qwen2.5-72b": 31}[name]
    assert len(shards) == expected
    small = preset.scaled(0.001)
    assert [n for n, _ in small.tensors()] == names
    assert 0.0005 < small.total_bytes() / preset.total_bytes() < 0.002


def test_llama3_8b_matches_its_published_index() -> None:
    preset = models.MODELS["llama3-8b"]
    assert preset.total_bytes() == 16_060_522_496  # "total_size" of the published index
    shapes = dict(preset.tensors())
    assert shapes["model.layers.0.self_attn.k_proj.weight"] == (1024, 4096)
    assert shapes["model.layers.0.mlp.gate_proj.weight"] == (14336, 4096)
    assert shapes["lm_head.weight"] == (128256, 4096)


def test_generated_model_loads_with_the_package_and_matches_the_index(
        client: objio.Client, prefix: str) -> None:
    preset = models.model_preset("qwen2.5-7b", 0.0002)
    shard = models.max_shard_size_for(preset, 3)
    result = models.generate_model(client, prefix, preset, max_shard_size=shard, seed=4)
    assert result["shards"] == 3 and result["total_size"] == preset.total_bytes()
    index = json.loads(bytes(client.get(prefix + "model.safetensors.index.json")))
    assert index["metadata"]["total_size"] == preset.total_bytes()
    assert set(index["weight_map"]) == {n for n, _ in preset.tensors()}
    oracle: dict[str, Any] = {}
    for file in sorted(set(index["weight_map"].values())):
        part = st_torch.load(bytes(client.get(prefix + file)))
        assert {n for n, f in index["weight_map"].items() if f == file} == set(part)
        oracle.update(part)
    assert all(t.dtype == torch.bfloat16 for t in oracle.values())
    assert all(torch.isfinite(t.float()).all() and t.float().abs().max() < 0.5
               for t in oracle.values())
    assert dict(preset.tensors())["model.layers.0.self_attn.q_proj.bias"] == \
        tuple(oracle["model.layers.0.self_attn.q_proj.bias"].shape)
    _same(load_safetensors(prefix, client=client), oracle)
    # deterministic: the same seed, the same bytes; another seed, others
    again = models.shard_bytes(preset, models.plan_shards(preset, shard)[0], seed=4)
    assert bytes(again) == bytes(client.get(prefix + "model-00001-of-00003.safetensors"))
    other = models.shard_bytes(preset, models.plan_shards(preset, shard)[0], seed=5)
    assert bytes(other) != bytes(again)


def test_objio_gen_format_safetensors(s3_server: Any, client: objio.Client, prefix: str,
                                      monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_access_key)
    monkeypatch.setenv("AWS_REGION", s3_server.region)
    flags = ["--endpoint-url", s3_server.endpoint_url]
    code = cli_main(["gen", *flags, prefix, "--format", "safetensors", "--model", "llama3-8b",
                     "--scale", "0.0001", "--max-shard-size", "1MiB", "--json", "-"])
    out = capsys.readouterr()
    assert code == 0, out.err
    summary = json.loads(out.out)
    assert summary["model"] == "llama3-8b" and summary["shards"] >= 2
    keys = set(client.list(prefix))
    assert objio.parse_uri(prefix).key + "model.safetensors.index.json" in keys
    assert len(keys) == summary["shards"] + 1
    _same(load_safetensors(prefix, client=client),
          {k: v for f in sorted(keys) if f.endswith(".safetensors")
           for k, v in st_torch.load(bytes(client.get(f"s3://objio-test/{f}"))).items()})
    code = cli_main(["gen", *flags, prefix + "dry/", "--format", "safetensors", "--dry-run"])
    assert code == 0 and "model-00001-of-00004.safetensors" in capsys.readouterr().out
    code = cli_main(["gen", *flags, prefix, "--format", "safetensors", "--num-files", "3"])
    assert code == 1 and "--num-files apply to datasets" in capsys.readouterr().err
    code = cli_main(["gen", *flags, "s3://no-such-bucket-st/x/", "--format", "safetensors",
                     "--scale", "0.0001"])
    assert code == 1 and "does not exist" in capsys.readouterr().err


def test_tensors_from_buffer_views_or_copies() -> None:
    from objio.model import tensors_from_buffer

    tensors = _all_dtypes()
    data = st_torch.save(tensors)
    buf = bytearray(data)
    views = tensors_from_buffer(buf, "m.safetensors")
    _same(views, tensors)
    views["f32"][0, 0] = 123.0  # a view of buf: no copy
    assert tensors_from_buffer(buf)["f32"][0, 0].item() == 123.0
    _same(tensors_from_buffer(data), tensors)  # read-only bytes: copied once
    with pytest.raises(ValueError, match="m.safetensors: truncated"):
        tensors_from_buffer(bytearray(data[:5]), "m.safetensors")
