"""objio.torch._tensorzip.tensor_view: a torch.save'd tensor read as a view of its buffer,
checked against torch.load (the oracle); anything but the plain case gives None."""

from __future__ import annotations

import io
import pickle
import zipfile
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from objio.torch._tensorzip import tensor_view  # noqa: E402
from objio.torch.dcp import _save_item  # noqa: E402


def saved(obj: Any, save: Any = torch.save) -> bytearray:
    b = io.BytesIO()
    save(obj, b)
    return bytearray(b.getvalue())


def same(a: Any, b: Any) -> bool:
    return (a.dtype == b.dtype and a.shape == b.shape and a.stride() == b.stride()
            and a.storage_offset() == b.storage_offset()
            and torch.equal(a.reshape(-1).view(torch.uint8) if a.numel() else a,
                            b.reshape(-1).view(torch.uint8) if b.numel() else b))


CASES = {
    "fp32 matrix": lambda: torch.randn(33, 17),
    "bf16 slice of a larger storage": lambda: torch.arange(40, dtype=torch.bfloat16)[5:29],
    "transposed (strided)": lambda: torch.randn(6, 9).t(),
    "fp16 3-d": lambda: torch.randn(2, 3, 4).half(),
    "int64": lambda: torch.arange(-5, 100),
    "uint8": lambda: torch.arange(256, dtype=torch.uint8),
    "bool": lambda: torch.tensor([True, False, True]),
    "complex64": lambda: torch.randn(5, dtype=torch.complex64),
    "float64 scalar": lambda: torch.tensor(2.5, dtype=torch.float64),
    "empty": lambda: torch.zeros(0, 7),
    "NaN payloads kept bit for bit": lambda: torch.tensor([float("nan"), -0.0, float("inf")]),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("writer", ["torch.save", "objio's writer (no zip CRC32)"])
def test_plain_tensors_match_torch_load(case: str, writer: str) -> None:
    t = CASES[case]()
    data = saved(t, torch.save if writer == "torch.save" else _save_item)
    view = tensor_view(data)
    assert view is not None
    expected = torch.load(io.BytesIO(bytes(data)), weights_only=True)
    assert same(view, expected)


def test_the_view_shares_the_buffer_no_copy() -> None:
    data = saved(torch.zeros(1024))
    view = tensor_view(data)
    assert view is not None
    start = data.find(b"\x00" * 4096)
    data[start: start + 4096] = bytes([0x3F, 0x80, 0, 0][::-1]) * 1024  # 1.0f little-endian
    assert torch.equal(view, torch.ones(1024))


def test_a_view_of_part_of_a_larger_buffer() -> None:
    t = torch.randn(100)
    data = bytearray(b"x" * 123) + saved(t) + bytearray(b"y" * 77)
    view = tensor_view(memoryview(data)[123: len(data) - 77])
    assert view is not None and torch.equal(view, t)


@pytest.mark.parametrize("make", [
    lambda: {"a": torch.randn(3)},                                   # not a single tensor
    lambda: [torch.randn(2), torch.randn(2)],
    lambda: torch.randn(4).to_sparse(),                              # sparse
    lambda: torch.quantize_per_tensor(torch.randn(4), 0.1, 0, torch.qint8),  # quantized
    lambda: torch.nn.Parameter(torch.randn(3)),                      # another rebuild function
    lambda: 3,
], ids=["dict", "list", "sparse", "quantized", "parameter", "int"])
@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor")
def test_anything_else_gives_none(make: Any) -> None:
    assert tensor_view(saved(make())) is None


def test_read_only_or_garbage_buffers_give_none() -> None:
    data = saved(torch.randn(8))
    assert tensor_view(bytes(data)) is None                      # read-only: no writable tensor
    assert tensor_view(memoryview(data).toreadonly()) is None
    assert tensor_view(bytearray(b"not a zip at all")) is None
    assert tensor_view(data[: len(data) // 2]) is None           # cut short
    assert tensor_view(bytearray()) is None


def test_compressed_or_big_endian_archives_fall_back() -> None:
    t = torch.randn(16)
    src = zipfile.ZipFile(io.BytesIO(bytes(saved(t))))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            z.writestr(info.filename, src.read(info.filename))
    assert tensor_view(bytearray(out.getvalue())) is None
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for info in src.infolist():
            body = b"big" if info.filename.endswith("byteorder") else src.read(info.filename)
            z.writestr(info.filename, body)
    assert tensor_view(bytearray(out.getvalue())) is None


def test_the_pickle_never_runs_other_globals(tmp_path: Any) -> None:
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self) -> Any:
            return (open, (str(marker), "w"))

    t = torch.randn(4)
    src = zipfile.ZipFile(io.BytesIO(bytes(saved(t))))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for info in src.infolist():
            body = pickle.dumps(Evil(), protocol=2) if info.filename.endswith("data.pkl") \
                else src.read(info.filename)
            z.writestr(info.filename, body)
    assert tensor_view(bytearray(out.getvalue())) is None
    assert not marker.exists()
