"""Transforms for the datasets: turn an :class:`~objio.torch.S3Reader` into tensors.

Built on :mod:`objio.formats` (the readers of the files ``objio gen`` and DLIO write). Every
transform is a module-level function or a small class instance, so datasets using them pickle
for ``spawn``/``forkserver`` DataLoader workers.

* :func:`read_bytes`: the whole object as a bytes-like object (no copy when the dataset
  prefetched it); :func:`to_tensor`: the bytes as a ``uint8`` tensor.
* NPZ: :func:`decode_npz` -> ``(x, y)`` tensors (DLIO/objio files hold ``x`` and ``y``);
  :class:`DecodeNPZ` for other array names.
* TFRecord: :func:`decode_tfrecord` -> a list of samples (one per record);
  :func:`tfrecord_samples` -> the same as :class:`Samples`, which :class:`S3IterableDataset`
  yields one by one (a file yields its records). A sample is
  ``{"image": uint8 tensor (size, len // size), "size": int}`` for DLIO/objio records;
  other features are returned as tensors (numbers) or bytes (:func:`example_to_sample`).
* HDF5: :func:`decode_hdf5` -> ``(records, labels)`` tensors; :class:`DecodeHDF5` for other
  dataset names; :func:`hdf5_samples` yields ``(record, label)`` per sample.
* Images: :func:`decode_image` -> a ``uint8`` tensor (JPEG / PNG via Pillow).

:class:`Samples` is the marker for "several samples from one object": return
``Samples(iterable)`` from any transform to have the iterable dataset flatten it (the map
dataset returns it as a list).
"""

from __future__ import annotations

import io
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from .. import formats
from .._buffers import read_into_new

__all__ = [
    "Samples", "read_bytes", "to_tensor", "decode_npz", "DecodeNPZ", "decode_tfrecord",
    "tfrecord_samples", "TFRecordSamples", "example_to_sample", "decode_hdf5", "DecodeHDF5",
    "hdf5_samples", "decode_image", "nbytes",
]


class Samples:
    """Several samples produced from one object, to be yielded one by one by
    :class:`~objio.torch.S3IterableDataset` (the map dataset returns them as a list).

    Wraps any iterable (a list, or a generator for lazy decoding)."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[Any]) -> None:
        self._items = items

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"Samples({self._items!r})"


def _torch() -> Any:
    import torch

    return torch


def read_bytes(reader: Any) -> Any:
    """The rest of the object from the reader's position, as a bytes-like object.

    A reader the dataset prefetched (:class:`~objio.torch.PrefetchedS3Reader`) gives a
    read-only memoryview of its buffer (no copy); objio's streaming readers read into one
    preallocated buffer (large reads land straight in it); anything else is ``reader.read()``.
    """
    view = getattr(reader, "readview", None)
    if view is not None and hasattr(reader, "getbuffer"):
        return view()
    size = getattr(reader, "size", None)
    if isinstance(size, int) and not isinstance(size, bool) and hasattr(reader, "readinto"):
        return read_into_new(reader, max(0, size - reader.tell()))
    return reader.read()


def nbytes(reader: Any) -> int:
    """Read the whole object and return its size in bytes (a cheap transform for benchmarks)."""
    return len(read_bytes(reader))


def to_tensor(reader: Any) -> Any:
    """The object's bytes as a 1-D ``torch.uint8`` tensor (sharing the fetched buffer when
    possible; a read-only buffer is copied once)."""
    torch = _torch()
    data = read_bytes(reader)
    if isinstance(data, memoryview) and data.readonly:
        data = bytearray(data)
    if len(data) == 0:
        return torch.empty(0, dtype=torch.uint8)
    return torch.frombuffer(data, dtype=torch.uint8)


def _file(data: Any) -> io.BytesIO:
    return io.BytesIO(data if isinstance(data, bytes) else bytes(data))


# ------------------------------------------------------------------------------ NPZ
class DecodeNPZ:
    """NPZ object -> tuple of tensors, one per name in ``keys`` (default ``("x", "y")``);
    ``keys=None`` returns a dict of every array."""

    def __init__(self, keys: tuple[str, ...] | None = ("x", "y")) -> None:
        self.keys = keys

    def __call__(self, reader: Any) -> Any:
        torch = _torch()
        data = read_bytes(reader)
        try:
            arrays = formats.read_npz_bytes(data)
        except ValueError as e:
            raise ValueError(f"{_name(reader)}: {e}") from None
        if self.keys is None:
            return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
        missing = [k for k in self.keys if k not in arrays]
        if missing:
            raise ValueError(f"{_name(reader)}: no array {missing[0]!r} in the NPZ file; arrays: "
                             + ", ".join(arrays))
        return tuple(torch.from_numpy(np.ascontiguousarray(arrays[k])) for k in self.keys)


def decode_npz(reader: Any = None, *, keys: tuple[str, ...] | None = ("x", "y")) -> Any:
    """NPZ object -> a tuple of tensors, one per array name in ``keys`` (default ``("x", "y")``:
    ``x`` uint8 ``(dim1, dim2, samples)`` and ``y`` int64 ``(samples,)`` for objio/DLIO files;
    ``keys=None``: a dict of every array).

    Use it as ``transform=decode_npz`` for x and y, or ``transform=decode_npz(keys=("a", "b"))``
    (called without a reader it returns the transform, a picklable :class:`DecodeNPZ`).

    Raises:
        ValueError: not an NPZ file, or a missing array (the message lists the arrays).
    """
    if reader is None:
        return DecodeNPZ(keys)
    return DecodeNPZ(keys)(reader)


# ------------------------------------------------------------------------------ TFRecord
def example_to_sample(features: dict[str, Any]) -> dict[str, Any]:
    """A parsed ``tf.train.Example`` (see :func:`objio.formats.parse_example`) as tensors:
    an ``image`` bytes feature with an int ``size`` becomes a ``uint8`` tensor of shape
    ``(size, len // size)``; other single-valued number features become Python numbers, lists
    of numbers become tensors, bytes stay bytes."""
    torch = _torch()
    out: dict[str, Any] = {}
    size = features.get("size")
    side = int(size[0]) if size and isinstance(size[0], int) and size[0] > 0 else None
    for name, values in features.items():
        if not values:
            out[name] = []
        elif isinstance(values[0], (bytes, bytearray, memoryview)):
            if name == "image" and len(values) == 1:
                raw = bytearray(values[0])
                t = torch.frombuffer(raw, dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)
                if side and len(raw) % side == 0:
                    t = t.view(side, len(raw) // side)
                out[name] = t
            else:
                out[name] = [bytes(v) for v in values] if len(values) > 1 else bytes(values[0])
        elif len(values) == 1:
            out[name] = values[0]
        else:
            out[name] = torch.tensor(values)
    return out


class TFRecordSamples:
    """TFRecord object -> :class:`Samples`, one per record, decoded lazily with ``decode``
    (default :func:`example_to_sample`; ``None`` yields the raw record bytes).

    ``verify`` checks the records' CRCs (see :func:`objio.formats.iter_tfrecord`)."""

    def __init__(self, decode: Callable[[dict[str, Any]], Any] | None = example_to_sample, *,
                 verify: bool = True) -> None:
        self.decode = decode
        self.verify = verify

    def _records(self, reader: Any) -> Iterator[Any]:
        data = read_bytes(reader)
        name = _name(reader)
        try:
            for record in formats.iter_tfrecord(data, verify=self.verify):
                if self.decode is None:
                    yield bytes(record)
                else:
                    yield self.decode(formats.parse_example(record, copy=False))
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None

    def __call__(self, reader: Any) -> Samples:
        return Samples(self._records(reader))


def tfrecord_samples(reader: Any) -> Samples:
    """TFRecord object -> :class:`Samples` of :func:`example_to_sample` dicts, one per record:
    with :class:`~objio.torch.S3IterableDataset` a file yields its records one by one."""
    return TFRecordSamples()(reader)


def decode_tfrecord(reader: Any) -> list[Any]:
    """TFRecord object -> list of :func:`example_to_sample` dicts, one per record."""
    return list(TFRecordSamples()(reader))


# ------------------------------------------------------------------------------ HDF5
class DecodeHDF5:
    """HDF5 object -> tuple of tensors, one per dataset path in ``datasets`` (default
    ``("records", "labels")``); ``datasets=None`` returns a dict of every dataset."""

    def __init__(self, datasets: tuple[str, ...] | None = ("records", "labels")) -> None:
        self.datasets = datasets

    def __call__(self, reader: Any) -> Any:
        torch = _torch()
        data = read_bytes(reader)
        try:
            arrays = formats.read_hdf5(data)
        except ValueError as e:
            raise ValueError(f"{_name(reader)}: {e}") from None
        if self.datasets is None:
            return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
        missing = [d for d in self.datasets if d.lstrip("/") not in arrays]
        if missing:
            raise ValueError(f"{_name(reader)}: no dataset {missing[0]!r} in the HDF5 file; "
                             "datasets: " + ", ".join(arrays))
        return tuple(torch.from_numpy(np.ascontiguousarray(arrays[d.lstrip("/")]))
                     for d in self.datasets)


def decode_hdf5(reader: Any) -> Any:
    """HDF5 object -> ``(records, labels)`` tensors (uint8 ``(samples, dim1, dim2)`` and int64
    ``(samples,)`` for objio/DLIO files)."""
    return DecodeHDF5()(reader)


def hdf5_samples(reader: Any) -> Samples:
    """HDF5 object -> :class:`Samples` of ``(record, label)`` per sample."""
    records, labels = decode_hdf5(reader)
    return Samples(zip(records, labels, strict=True))


# ------------------------------------------------------------------------------ images
def decode_image(reader: Any) -> Any:
    """JPEG / PNG object -> ``uint8`` tensor (``(H, W)`` grayscale or ``(H, W, C)``)."""
    torch = _torch()
    try:
        array = formats.decode_image(read_bytes(reader))
    except ValueError as e:
        raise ValueError(f"{_name(reader)}: {e}") from None
    if not array.flags.writeable or not array.flags.c_contiguous:
        array = np.array(array)  # PIL's buffer is read-only: one copy
    return torch.from_numpy(array)


def _name(reader: Any) -> str:
    uri = getattr(reader, "uri", None)
    if isinstance(uri, str):
        return uri
    bucket, key = getattr(reader, "bucket", ""), getattr(reader, "key", "?")
    return f"s3://{bucket}/{key}" if bucket else str(key)
