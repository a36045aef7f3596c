"""safetensors: the file format of Hugging Face model weights (writer and reader).

Layout (https://github.com/huggingface/safetensors, "Format"):

* 8 bytes: ``N``, the length of the header, an unsigned little-endian 64-bit integer;
* ``N`` bytes: the header, UTF-8 JSON: ``{"__metadata__": {str: str}, name: {"dtype": "BF16",
  "shape": [4096, 4096], "data_offsets": [begin, end]}, ...}`` (``__metadata__`` optional);
  writers pad it with spaces to a multiple of 8 bytes;
* the data: every tensor's bytes, little-endian, row-major (C order), at ``[begin, end)``
  relative to the end of the header. ``end - begin`` is the product of the shape times the
  element size; a shape of ``[]`` is a scalar (one element).

The reader checks what the reference implementation checks that matters for not reading the
wrong bytes: the header length fits in the file, the JSON is an object, every dtype is known,
every shape is a list of integers >= 0, every tensor's offsets are integers with
``0 <= begin <= end <= data length`` and ``end - begin`` matching its shape and dtype, and no two
tensors overlap. Any violation is a ValueError naming the file (``name``) and the tensor.

Sharded models (Hugging Face ``save_pretrained``) add ``model.safetensors.index.json``:
``{"metadata": {"total_size": bytes}, "weight_map": {tensor name: shard file name}}``;
:func:`parse_index` reads it.

As a dataset format (``objio gen --format``-style :class:`FileFormat` entry, like ``npz``): a
file of ``samples`` samples holds ``x``, ``uint8`` of shape ``(samples, dim1, dim2)``, and
``y``, ``int64`` labels (zeros, DLIO's), shape ``(samples,)``.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._common import FileFormat, FileOptions, _bit_generator, _byte_view, _fill_random

_STREAM_SAFETENSORS = 8  # the random stream of safetensors payloads (see _common)

MAX_HEADER_SIZE = 100_000_000
"""The largest header the reference implementation accepts (bytes)."""

DTYPES: dict[str, int] = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8, "C64": 8,
}
"""safetensors dtype names -> bytes per element (the byte-sized dtypes of the format)."""

NUMPY_DTYPES: dict[str, str] = {
    "BOOL": "?", "U8": "u1", "I8": "i1", "I16": "<i2", "U16": "<u2", "F16": "<f2",
    "I32": "<i4", "U32": "<u4", "F32": "<f4", "I64": "<i8", "U64": "<u8", "F64": "<f8",
    "C64": "<c8",
    # no numpy type: their raw bits
    "BF16": "<u2", "F8_E5M2": "u1", "F8_E4M3": "u1", "F8_E8M0": "u1",
}
"""The numpy dtype :func:`read_safetensors_bytes` gives each dtype (BF16 and the FP8 types,
which numpy lacks, as unsigned integers holding their bits)."""

_HEADER_ALIGN = 8


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of a safetensors header.

    Attributes:
        name: the tensor's name.
        dtype: the safetensors dtype name (``"BF16"``, ``"F32"``, ...; see :data:`DTYPES`).
        shape: the shape (``()`` for a scalar).
        begin, end: its bytes, relative to the start of the data section.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def nbytes(self) -> int:
        """Size of the tensor's data in bytes."""
        return self.end - self.begin


@dataclass(frozen=True)
class SafetensorsHeader:
    """A parsed header: ``data_start`` (8 + the header length: where the data section begins
    in the file, in bytes), ``metadata`` (``__metadata__``, or ``{}``) and the ``tensors`` in
    the order of their data (by ``begin``)."""

    data_start: int
    metadata: dict[str, str]
    tensors: tuple[TensorInfo, ...]

    @property
    def data_size(self) -> int:
        """Bytes of the data section the tensors use (the largest ``end``)."""
        return max((t.end for t in self.tensors), default=0)

    @property
    def file_size(self) -> int:
        """The smallest file that holds the header and every tensor (bytes)."""
        return self.data_start + self.data_size


def header_length(prefix: Any, name: str = "safetensors file") -> int:
    """The total header size ``8 + N`` from the first 8 bytes of a file (any bytes-like).

    Raises: ValueError (fewer than 8 bytes; N above :data:`MAX_HEADER_SIZE`)."""
    view = _byte_view(prefix)
    if len(view) < 8:
        raise ValueError(f"{name}: truncated safetensors file: {len(view)} bytes, the 8-byte "
                         "header length is missing")
    (n,) = struct.unpack_from("<Q", view, 0)
    if n > MAX_HEADER_SIZE:
        raise ValueError(f"{name}: safetensors header length {n} is larger than the "
                         f"{MAX_HEADER_SIZE}-byte limit (not a safetensors file?)")
    return 8 + int(n)


def parse_header(data: Any, name: str = "safetensors file", *,
                 file_size: int | None = None) -> SafetensorsHeader:
    """Parse the header at the start of ``data`` (the whole file, or at least its first
    ``8 + N`` bytes). ``file_size`` (bytes), when ``data`` is only the start of the file,
    bounds the tensors; otherwise ``len(data)`` does.

    Raises:
        ValueError: naming ``name`` (and the tensor) for a truncated file, a header that is not
            a JSON object, an unknown dtype, a bad shape, offsets out of bounds, overlapping or
            not matching the shape.
    """
    view = _byte_view(data)
    start = header_length(view, name)
    size = len(view) if file_size is None else file_size
    if start > size or start > len(view):
        raise ValueError(f"{name}: truncated safetensors file: the header needs {start} bytes, "
                         f"the file has {min(size, len(view))}")
    try:
        header = json.loads(bytes(view[8:start]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{name}: the safetensors header is not UTF-8 JSON: {e}") from None
    except RecursionError:  # [[[...]]] nested deeper than the JSON parser goes
        raise ValueError(f"{name}: the safetensors header is nested too deeply to be a "
                         "safetensors header (JSON arrays or objects within each other)") from None
    if not isinstance(header, dict):
        raise ValueError(f"{name}: the safetensors header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise ValueError(f"{name}: __metadata__ must map strings to strings")
    data_len = size - start
    tensors = []
    for tname, info in header.items():
        where = f"{name}: tensor {tname!r}"
        if not isinstance(info, dict):
            raise ValueError(f"{where}: expected an object with dtype, shape and data_offsets")
        dtype = info.get("dtype")
        if dtype not in DTYPES:
            raise ValueError(f"{where}: unknown dtype {dtype!r}; known: {', '.join(DTYPES)}")
        shape = info.get("shape")
        if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise ValueError(f"{where}: shape must be a list of integers >= 0, got {shape!r}")
        offsets = info.get("data_offsets")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(
                isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            raise ValueError(f"{where}: data_offsets must be [begin, end], got {offsets!r}")
        begin, end = offsets
        if not 0 <= begin <= end <= data_len:
            raise ValueError(f"{where}: data_offsets [{begin}, {end}] out of bounds (the data "
                             f"section has {data_len} bytes)")
        expected = math.prod(shape) * DTYPES[dtype]
        if end - begin != expected:
            raise ValueError(f"{where}: data_offsets [{begin}, {end}] hold {end - begin} bytes, "
                             f"shape {shape} of {dtype} needs {expected}")
        tensors.append(TensorInfo(tname, dtype, tuple(shape), begin, end))
    tensors.sort(key=lambda t: (t.begin, t.end))
    for a, b in zip(tensors, tensors[1:], strict=False):
        if b.begin < a.end:
            raise ValueError(f"{name}: tensors {a.name!r} [{a.begin}, {a.end}) and {b.name!r} "
                             f"[{b.begin}, {b.end}) overlap")
    return SafetensorsHeader(start, dict(metadata), tuple(tensors))


# ------------------------------------------------------------------------------------ writer
def build_header(tensors: Iterable[tuple[str, str, Sequence[int]]],
                 metadata: Mapping[str, str] | None = None) -> tuple[bytes, list[TensorInfo]]:
    """The bytes before the data (8-byte length + JSON header, padded with spaces to a
    multiple of 8 as the reference writer does) for tensors ``(name, dtype, shape)`` laid
    out in the given order, and their :class:`TensorInfo`.

    Raises:
        ValueError: unknown dtype, a negative dimension, a duplicate or reserved name,
            non-string metadata.
    """
    header: dict[str, Any] = {}
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise ValueError("metadata must map strings to strings")
        header["__metadata__"] = dict(metadata)
    infos = []
    offset = 0
    for name, dtype, shape in tensors:
        if name in header or name == "__metadata__":
            raise ValueError(f"duplicate or reserved tensor name {name!r}")
        if dtype not in DTYPES:
            raise ValueError(f"tensor {name!r}: unknown dtype {dtype!r}; known: {', '.join(DTYPES)}")
        dims = [int(d) for d in shape]
        if any(d < 0 for d in dims):
            raise ValueError(f"tensor {name!r}: negative dimension in shape {dims}")
        n = math.prod(dims) * DTYPES[dtype]
        header[name] = {"dtype": dtype, "shape": dims, "data_offsets": [offset, offset + n]}
        infos.append(TensorInfo(name, dtype, tuple(dims), offset, offset + n))
        offset += n
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-(8 + len(text)) % _HEADER_ALIGN)
    return struct.pack("<Q", len(text)) + text, infos


def safetensors_bytes(tensors: Mapping[str, tuple[str, Sequence[int], Any]],
                      metadata: Mapping[str, str] | None = None) -> bytearray:
    """A whole safetensors file from ``{name: (dtype, shape, data)}`` (``data``: any
    bytes-like of exactly the tensor's size, e.g. a C-contiguous numpy array), in the given
    order.

    Raises:
        ValueError: see :func:`build_header`; data of the wrong size.
    """
    head, infos = build_header(((n, d, s) for n, (d, s, _) in tensors.items()), metadata)
    out = bytearray(len(head) + (infos[-1].end if infos else 0))
    out[: len(head)] = head
    base = len(head)
    for info, (_, _, data) in zip(infos, tensors.values(), strict=True):
        view = _byte_view(data)
        if len(view) != info.nbytes:
            raise ValueError(f"tensor {info.name!r}: {len(view)} bytes of data, shape "
                             f"{list(info.shape)} of {info.dtype} needs {info.nbytes}")
        out[base + info.begin: base + info.end] = view
    return out


def fill_tensor_bytes(out: Any, dtype: str, *, seed: int, index: int) -> None:
    """Fill the bytes-like ``out`` with deterministic random data for a tensor of ``dtype``,
    from ``(seed, index)``: raw random bytes, except that floating-point values get an
    exponent that keeps them finite and small (|x| in [2**-9, 2**-1) for BF16/F16, similar
    for F32/F64; FP8 values never NaN), so that tensors compare equal to themselves and look
    like weights. BOOL bytes are 0 or 1."""
    view = np.frombuffer(_byte_view(out), dtype=np.uint8)
    if not len(view):
        return
    _fill_random(view, _bit_generator(seed, index, _STREAM_SAFETENSORS))
    if dtype in ("BF16", "F16", "F32", "F64"):
        # exponent bits of each element set to a small range: sign and mantissa stay random
        bits = {"BF16": (np.uint16, 8, 7), "F16": (np.uint16, 5, 10),
                "F32": (np.uint32, 8, 23), "F64": (np.uint64, 11, 52)}[dtype]
        utype, ebits, mbits = bits
        words = view[: len(view) - len(view) % np.dtype(utype).itemsize].view(utype)
        bias = (1 << (ebits - 1)) - 1
        emask = utype(((1 << ebits) - 1) << mbits)
        low = utype(bias - 9)  # exponent bias-9 .. bias-2: |x| in [2**-9, 2**-1)
        exp = ((words >> utype(mbits)) & utype(7)) + low
        words &= ~emask
        words |= exp << utype(mbits)
    elif dtype in ("F8_E4M3", "F8_E5M2"):
        view &= np.uint8(0xBF)  # the exponent's top bit cleared: never NaN or infinity
    elif dtype == "F8_E8M0":
        view &= np.uint8(0x7F)  # 0xFF is NaN
    elif dtype == "BOOL":
        view &= np.uint8(1)


# ------------------------------------------------------------------------------------ reader
def read_safetensors_bytes(data: Any, name: str = "safetensors file") -> dict[str, np.ndarray]:
    """Every tensor of a whole safetensors file as a numpy array viewing ``data`` (no copy;
    read-only when ``data`` is), in data order. BF16 and the FP8 dtypes, which numpy does not
    have, come as their raw bits (``uint16`` / ``uint8``, see :data:`NUMPY_DTYPES`); for
    torch tensors use :func:`objio.model.load_safetensors`.

    Returns:
        dict name -> ``numpy.ndarray`` with the shape the file's header gives the tensor and
        the numpy dtype :data:`NUMPY_DTYPES` maps its dtype to.

    Raises:
        ValueError: a malformed file (see :func:`parse_header`).
    """
    view = _byte_view(data)
    header = parse_header(view, name)
    base = header.data_start
    out: dict[str, np.ndarray] = {}
    for t in header.tensors:
        arr = np.frombuffer(view, dtype=NUMPY_DTYPES[t.dtype], count=math.prod(t.shape),
                            offset=base + t.begin)
        out[t.name] = arr.reshape(t.shape)
    return out


def parse_index(data: Any, name: str = "model.safetensors.index.json") -> dict[str, str]:
    """The ``weight_map`` (tensor name -> shard file name) of a Hugging Face
    ``model.safetensors.index.json``.

    Raises:
        ValueError: naming ``name`` (not JSON, no ``weight_map`` object of strings).
    """
    try:
        index = json.loads(bytes(_byte_view(data)).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{name}: not a JSON file: {e}") from None
    except RecursionError:  # [[[...]]] nested deeper than the JSON parser goes
        raise ValueError(f"{name}: nested too deeply to be a safetensors index (JSON arrays "
                         "or objects within each other)") from None
    wmap = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(wmap, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in wmap.items()):
        raise ValueError(f"{name}: expected a JSON object with a \"weight_map\" of tensor name "
                         "-> shard file name")
    return dict(wmap)


def index_json(weight_map: Mapping[str, str], total_size: int,
               metadata: Mapping[str, Any] | None = None) -> bytes:
    """A ``model.safetensors.index.json`` as Hugging Face writes it: ``{"metadata":
    {"total_size": total_size, ...}, "weight_map": {name: shard}}`` (names sorted, 2-space
    indent). ``total_size``: bytes of all tensors."""
    meta = {"total_size": int(total_size), **(metadata or {})}
    doc = {"metadata": meta, "weight_map": dict(sorted(weight_map.items()))}
    return (json.dumps(doc, indent=2, sort_keys=False) + "\n").encode("utf-8")


# ------------------------------------------------------------------------------------ dataset
def _build(dims: tuple[int, int], samples: int, seed: int, index: int,
           options: FileOptions) -> bytearray:
    x_shape = (samples, dims[0], dims[1])
    head, infos = build_header([("x", "U8", x_shape), ("y", "I64", (samples,))])
    out = bytearray(len(head) + infos[-1].end)
    out[: len(head)] = head
    x = memoryview(out)[len(head) + infos[0].begin: len(head) + infos[0].end]
    _fill_random(np.frombuffer(x, dtype=np.uint8), _bit_generator(seed, index,
                                                                  _STREAM_SAFETENSORS))
    out[len(head) + infos[1].begin:] = bytes(infos[1].nbytes)  # int64 zeros
    return out


def _expected_size(dims: tuple[int, int], samples: int, options: FileOptions) -> tuple[int, bool]:
    head, infos = build_header([("x", "U8", (samples, dims[0], dims[1])), ("y", "I64", (samples,))])
    return len(head) + infos[-1].end, True


FORMAT = FileFormat("safetensors", build=_build, expected_size=_expected_size,
                    read=read_safetensors_bytes)
