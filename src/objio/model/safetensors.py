"""safetensors straight from object storage into torch tensors.

:func:`iter_safetensors` yields ``(name, tensor)`` as the bytes arrive; :func:`load_safetensors`
collects them into a dict. What to load: one file, a list of files, a prefix (its
``model.safetensors.index.json`` when there is one, else every ``*.safetensors`` directly
under it, in name order) or an index file itself (Hugging Face's sharded layout: its
``weight_map`` names the shards, relative to the index's directory).

How: for every shard, one GET of its first ``part_size`` bytes tells the file size and holds the
header (a second GET fetches the rest of a header longer than that); the header is parsed and
checked (:func:`objio.formats.safetensors.parse_header`), one buffer of the shard's data size is
allocated (not zero-filled), and the rest of the shard is fetched with concurrent ranged GETs of
``part_size`` bytes, each received straight into its place in that buffer, shards in order and
parts in file order, ``max_in_flight`` at a time. A tensor is yielded as soon as every byte
before its end has arrived, as ``torch.frombuffer`` over the shard's buffer: no copy (the shard
buffer lives as long as any of its tensors). Tensors are therefore writable and share memory
with the other tensors of their shard. A tensor whose offset does not suit its dtype's
alignment is copied (never the case in files written by the safetensors library).

Peak memory: the model's bytes (the shard buffers), plus the first ``part_size`` bytes of
each shard during the header read. ``device`` other than ``"cpu"`` copies each tensor there
as it is yielded (the CPU buffer is freed when its last tensor is).

The result is byte for byte what ``safetensors.torch.load`` gives for the same file.
"""

from __future__ import annotations

import math
import os
import queue
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .. import engine
from .._buffers import new_buffer
from .._integrity import ReadCheck, integrity_error, patch
from ..api import Client, default_client
from ..errors import AlreadyExistsError, ObjectStoreError
from ..formats.safetensors import (
    SafetensorsHeader,
    TensorInfo,
    header_length,
    parse_header,
    parse_index,
)
from ..uri import ObjectURI, has_glob, parse_uri

INDEX_NAME = "model.safetensors.index.json"
"""The index file of a sharded Hugging Face model."""

_SHARD_SUFFIX = ".safetensors"
_MAX_SETTLE_PARALLEL = 16  # ranged GETs at once when a shard is read again after a mismatch


def _torch_dtypes() -> dict[str, Any]:
    import torch

    out = {
        "BOOL": torch.bool, "U8": torch.uint8, "I8": torch.int8, "I16": torch.int16,
        "F16": torch.float16, "BF16": torch.bfloat16, "I32": torch.int32, "F32": torch.float32,
        "I64": torch.int64, "F64": torch.float64, "C64": torch.complex64,
    }
    for name, attr in (("U16", "uint16"), ("U32", "uint32"), ("U64", "uint64"),
                       ("F8_E5M2", "float8_e5m2"), ("F8_E4M3", "float8_e4m3fn"),
                       ("F8_E8M0", "float8_e8m0fnu")):
        if hasattr(torch, attr):
            out[name] = getattr(torch, attr)
    return out


@dataclass
class _Shard:
    obj: ObjectURI
    name: str
    size: int = 0
    etag: str = ""
    header: SafetensorsHeader | None = None
    buf: bytearray | None = None
    expected: set[str] | None = None  # the tensors the index says this shard holds
    check: ReadCheck | None = None  # the shard's CRC32C pieces (checksums on)


# ------------------------------------------------------------------------------ what to load
def _is_index(key: str) -> bool:
    return key.endswith(".json")


async def _resolve(client: Client, what: Any) -> list[_Shard]:
    """The shards to load (with the tensors an index assigns to each)."""
    if isinstance(what, (list, tuple)):
        if not what:
            raise ValueError("uri_or_uris is an empty list: give at least one safetensors file")
        shards = [_Shard(o, str(o)) for o in (_file_uri(u) for u in what)]
        _check_unique(shards)
        return shards
    obj = parse_uri(what, s3_aliases=("oss",))
    if has_glob(obj.key):
        raise ValueError("uri_or_uris takes a file, a prefix or an index, not a glob: "
                         f"{os.fspath(what) if isinstance(what, os.PathLike) else what}")
    if _is_index(obj.key):
        return await _from_index(client, obj)
    if obj.key.endswith(_SHARD_SUFFIX):
        return [_Shard(obj, str(obj))]
    sep = "/" if obj.scheme != "file" else "/"
    prefix = obj if obj.key.endswith(sep) or obj.key == "" else obj.with_key(obj.key + sep)
    infos = await client._list_info(prefix, recursive=False)
    names = {i.key for i in infos}
    index_key = prefix.key + INDEX_NAME
    if index_key in names:
        return await _from_index(client, prefix.with_key(index_key))
    keys = sorted(k for k in names if k.endswith(_SHARD_SUFFIX))
    if not keys:
        raise FileNotFoundError(f"no {INDEX_NAME} and no *{_SHARD_SUFFIX} files under {prefix}")
    return [_Shard(prefix.with_key(k), str(prefix.with_key(k))) for k in keys]


def _file_uri(u: Any) -> ObjectURI:
    obj = parse_uri(u, s3_aliases=("oss",))
    if obj.key == "" or obj.key.endswith("/"):
        shown = os.fspath(u) if isinstance(u, os.PathLike) else u
        raise ValueError(f"{shown} is a prefix or a directory; a list must name safetensors "
                         "files")
    return obj


def _check_unique(shards: Sequence[_Shard]) -> None:
    seen: set[str] = set()
    for s in shards:
        if s.name in seen:
            raise ValueError(f"shard {s.name} is given twice")
        seen.add(s.name)


async def _from_index(client: Client, index: ObjectURI) -> list[_Shard]:
    data = await client._get(index)
    wmap = parse_index(data, str(index))
    base = index.key.rsplit("/", 1)[0] + "/" if "/" in index.key else ""
    files: dict[str, set[str]] = {}
    for tensor, shard in wmap.items():
        files.setdefault(shard, set()).add(tensor)
    shards = []
    for file in sorted(files):
        if file.startswith("/") or ".." in file.split("/"):
            raise ValueError(f"{index}: shard name {file!r} leaves the model's directory")
        obj = index.with_key(base + file)
        shards.append(_Shard(obj, str(obj), expected=files[file]))
    return shards


# ------------------------------------------------------------------------------ fetching
@dataclass
class _Plan:
    shards: list[_Shard]
    part: int
    max_in_flight: int


async def _read_header(client: Client, shard: _Shard, part: int) -> tuple[int, bytearray]:
    """(bytes of the data section already fetched, first bytes of the file). With checksums
    on, the first GET brings the shard's stored CRC32C (:func:`objio.engine.get_first`, which
    checks a shard it holds whole) and the shard's CRC32C pieces start here."""
    backend = client._backend(shard.obj)
    attempts = client.config.max_attempts or 1
    r = await engine.get_first(backend, shard.obj, client.config, part)
    head = r.data if isinstance(r.data, bytearray) else bytearray(r.data)
    size = r.total_size if r.total_size >= 0 else len(head)
    shard.size = size
    shard.etag = r.etag
    verify = client.config.checksums and shard.obj.scheme != "file" and r.stored is not None
    if verify and size > len(head):  # (a shard held whole was checked by get_first)
        shard.check = ReadCheck(shard.name, size, r.stored, known=True)
        await engine.find_parts(backend, shard.obj, shard.check, attempts)
        shard.check.add(await engine.crc_of(shard.check, 0, memoryview(head)))
    start = header_length(head, shard.name)  # ValueError if fewer than 8 bytes
    if start > size:
        raise ValueError(f"{shard.name}: truncated safetensors file: the header needs {start} "
                         f"bytes, the file has {size}")
    if start > len(head):
        rest = await engine.get_range(backend, shard.obj, len(head), start, attempts,
                                      etag=r.etag, total=size, check=shard.check)
        if shard.check is not None:
            shard.check.add(rest.crcs or ())
        head += rest.data
    shard.header = parse_header(head, shard.name, file_size=size)
    return len(head), head


def _check_expected(shard: _Shard) -> None:
    if shard.expected is None or shard.header is None:
        return
    have = {t.name for t in shard.header.tensors}
    missing = sorted(shard.expected - have)
    extra = sorted(have - shard.expected)
    if missing:
        raise ValueError(f"{shard.name}: tensor {missing[0]!r} named by the index is not in the "
                         f"shard ({len(missing)} missing)")
    if extra:
        raise ValueError(f"{shard.name}: tensor {extra[0]!r} is in the shard but the index puts "
                         f"it elsewhere or nowhere ({len(extra)} such tensors)")


async def _produce(client: Client, plan: _Plan, out: queue.Queue[Any]) -> None:
    """Fetch every shard; put ("shard", i) once shard i's header is known and ("upto", i, n)
    whenever the first n data bytes of shard i are all there; ("done",) at the end."""
    shards = plan.shards
    part = plan.part
    firsts: list[tuple[int, bytearray]] = [(0, bytearray())] * len(shards)

    async def header(i: int) -> None:
        firsts[i] = await _read_header(client, shards[i], part)

    # headers: the first one alone (its data is the first tensors), then the rest at once
    await header(0)
    _check_expected(shards[0])
    _start_shard(shards[0], firsts[0], out, 0)
    if len(shards) > 1:
        await engine.bounded_map(header, range(1, len(shards)), plan.max_in_flight,
                                 keep_results=False)
    seen: dict[str, str] = {}
    for i, s in enumerate(shards):
        _check_expected(s)
        assert s.header is not None
        for t in s.header.tensors:
            if t.name in seen:
                raise ValueError(f"tensor {t.name!r} is in both {seen[t.name]} and {s.name}")
            seen[t.name] = s.name
        if i > 0:
            _start_shard(s, firsts[i], out, i)
    # every remaining part, in shard and file order
    parts: list[tuple[int, int, int]] = []
    for i, s in enumerate(shards):
        assert s.header is not None
        have = max(0, firsts[i][0] - s.header.data_start)
        n = s.header.data_size
        parts += [(i, off, min(off + part, n)) for off in range(have, n, part)]
    done: list[dict[int, int]] = [{} for _ in shards]  # shard -> {start: stop} arrived
    upto = [max(0, firsts[i][0] - s.header.data_start)  # type: ignore[union-attr]
            for i, s in enumerate(shards)]
    posted = list(upto)  # data bytes the consumer may have turned into tensors
    for i, s in enumerate(shards):
        if s.header is not None and upto[i] >= s.header.data_size:
            await _settle_shard(client, s, i, posted, out)

    async def fetch(p: tuple[int, int, int]) -> None:
        i, lo, hi = p
        s = shards[i]
        assert s.header is not None and s.buf is not None
        backend = client._backend(s.obj)
        base = s.header.data_start
        view = memoryview(s.buf)[lo:hi]
        check = s.check if s.check is not None and s.check.needed else None
        try:
            await engine.with_retries(
                lambda: backend.get(s.obj, base + lo, base + hi - 1, if_match=s.etag or None,
                                    into=view),
                client.config.max_attempts or 1)
        except AlreadyExistsError as e:  # 412: If-Match failed
            raise ObjectStoreError(
                f"GetObject {s.name} failed: the object changed while it was being loaded "
                f"(ETag is no longer {s.etag!r}); load it again", operation="GetObject",
                uri=s.name, status=e.status, code=e.code) from e
        if check is not None:  # its CRC32C while the bytes are hot
            check.add(await engine.crc_of(check, base + lo, view))
        done[i][lo] = hi
        n = upto[i]
        while n in done[i]:
            n = done[i].pop(n)
        if n != upto[i]:
            upto[i] = n
            if n >= s.header.data_size:  # the end of the shard: checked before it is posted
                await _settle_shard(client, s, i, posted, out)
            posted[i] = n
            out.put(("upto", i, n))

    await engine.bounded_map(fetch, parts, plan.max_in_flight, keep_results=False)
    out.put(("done",))


async def _settle_shard(client: Client, s: _Shard, i: int, posted: list[int],
                        out: queue.Queue[Any]) -> None:
    """Check a shard whose every byte has arrived against its stored CRC32C (see
    :func:`objio.engine.settle`): a second reading that matches replaces damaged bytes in the
    shard buffer; bytes the consumer may already have turned into tensors are reported to it
    (``("fixed", i, ranges)``: the tensors there are views of the buffer, but a copy made of
    them, or by ``device``, is not)."""
    c = s.check
    if c is None or not c.needed or s.header is None or s.buf is None:
        return
    base = s.header.data_start
    buf = memoryview(s.buf)
    fixed: list[tuple[int, int]] = []
    header_hit: list[tuple[int, int]] = []

    def repair(start: int, data: memoryview) -> bool:
        end = start + len(data)
        if start < base:  # the header: parsed already
            header_hit.append((start, end))
            return False
        patch(buf, base, start, data)
        if start - base < posted[i]:
            fixed.append((start - base, end - base))
        return True

    cfg = client.config
    await engine.settle(client._backend(s.obj), s.obj, c, etag=s.etag,
                        attempts=cfg.max_attempts or 1, piece=cfg.part_size or 8 << 20,
                        parallel=_MAX_SETTLE_PARALLEL, repair=repair)
    if fixed:
        out.put(("fixed", i, fixed))


def _start_shard(s: _Shard, first: tuple[int, bytearray], out: queue.Queue[Any], i: int) -> None:
    assert s.header is not None
    n = s.header.data_size
    have, head = first
    if s.header.data_start + n > s.size:
        raise ValueError(f"{s.name}: truncated safetensors file: the tensors need "
                         f"{s.header.data_start + n} bytes, the file has {s.size}")
    s.buf = new_buffer(n) if n else bytearray()
    got = max(0, min(have, s.header.data_start + n) - s.header.data_start)
    if got:
        s.buf[:got] = memoryview(head)[s.header.data_start: s.header.data_start + got]
    out.put(("shard", i))
    out.put(("upto", i, got))


# ------------------------------------------------------------------------------ public API
def iter_safetensors(uri_or_uris: Any, *, device: Any = "cpu", client: Client | None = None,
                     max_in_flight: int | None = None) -> Iterator[tuple[str, Any]]:
    """Yield ``(name, tensor)`` for every tensor of the safetensors file(s), each as soon as
    its bytes have arrived (shards in order, tensors in file order within a shard).

    Each tensor is a ``torch.Tensor`` with the dtype and shape the file's header gives it
    (``F32`` -> ``torch.float32``, ...), on ``device``.

    Args:
        uri_or_uris: a ``.safetensors`` file, a list of them, a prefix (``s3://b/model/``:
            its ``model.safetensors.index.json``, else its ``*.safetensors``) or an index
            ``.json``; ``s3://``, ``oss://`` (S3 API), ``file://`` or local paths.
        device: where the tensors go (``"cpu"``: no copy, see the module docs; anything else
            ``torch.device`` accepts: one copy per tensor).
        client: the :class:`objio.Client` (default: the process default).
        max_in_flight: ranged GETs at once (default: the client's ``max_in_flight``).

    Raises:
        ValueError: naming the shard (and tensor), a malformed file or index (truncated,
            offsets out of bounds or overlapping, unknown dtype, tensors not where the index
            says, a tensor in two shards); or a bad argument.
        FileNotFoundError: from the store: no such object or bucket.
        PermissionError: from the store: access denied.
        TimeoutError: from the store: no progress within the client's timeouts.
        ObjectStoreError: from the store: anything else.
        ImportError: without torch.
        IntegrityError: with the client's ``checksums`` on (see the module docs), a shard
            does not match its stored CRC32C, or bytes of tensors already yielded were
            damaged in transit (:class:`objio.IntegrityError`).
    """
    return _iter(uri_or_uris, device, client, max_in_flight, reyield=False)


def _iter(uri_or_uris: Any, device: Any, client: Client | None, max_in_flight: int | None, *,
          reyield: bool) -> Iterator[tuple[str, Any]]:
    """:func:`iter_safetensors`; with ``reyield``, a tensor already yielded whose bytes a
    second reading replaced is yielded again (for a caller that keeps the last one) instead of
    raising IntegrityError."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda:0', got "
                         f"{device!r}: {e}") from None
    client = client if client is not None else default_client()
    cfg = client.config
    if max_in_flight is not None and (isinstance(max_in_flight, bool)
                                      or not isinstance(max_in_flight, int) or max_in_flight < 1):
        raise ValueError(f"max_in_flight must be an integer >= 1, got {max_in_flight!r}")
    shards = engine.run(_resolve(client, uri_or_uris))
    plan = _Plan(shards, cfg.part_size or 8 << 20, max_in_flight or cfg.max_in_flight or 64)
    dtypes = _torch_dtypes()
    events: queue.Queue[Any] = queue.Queue()

    async def produce() -> None:
        try:
            await _produce(client, plan, events)
        except BaseException as e:  # handed to the consumer, which raises it
            events.put(("error", e))
            raise

    fut = engine.submit(produce())
    next_tensor = [0] * len(shards)
    try:
        while True:
            ev = events.get()
            kind = ev[0]
            if kind == "error":
                raise ev[1]
            if kind == "done":
                break
            if kind == "shard":
                continue
            if kind == "fixed":  # bytes of yielded tensors were replaced by a second reading
                _, i, ranges = ev
                s = shards[i]
                assert s.header is not None
                hit = [t for t in s.header.tensors[: next_tensor[i]]
                       if any(t.begin < b and a < t.end for a, b in ranges)]
                if hit and not reyield:
                    raise integrity_error(
                        s.name, [(s.header.data_start + a, s.header.data_start + b)
                                 for a, b in ranges],
                        f"they were damaged in transit after tensor {hit[0].name!r} had been "
                        "yielded (a second reading matches): load it again")
                for t in hit:
                    if dev.type != "cpu":  # the yielded copy is stale; the CPU view is fixed
                        yield t.name, _tensor(torch, s, t, dtypes, dev)
                continue
            _, i, upto = ev
            s = shards[i]
            assert s.header is not None and s.buf is not None
            tensors = s.header.tensors
            k = next_tensor[i]
            while k < len(tensors) and tensors[k].end <= upto:
                t = tensors[k]
                yield t.name, _tensor(torch, s, t, dtypes, dev)
                k += 1
            next_tensor[i] = k
        fut.result()
    finally:
        if not fut.done():
            fut.cancel()


def _tensor(torch: Any, s: _Shard, t: TensorInfo, dtypes: dict[str, Any], dev: Any) -> Any:
    dtype = dtypes.get(t.dtype)
    if dtype is None:
        raise ValueError(f"{s.name}: tensor {t.name!r}: dtype {t.dtype} is not available in "
                         f"this torch ({torch.__version__})")
    count = math.prod(t.shape)
    if count == 0:
        x = torch.empty(t.shape, dtype=dtype)
    else:
        x = torch.frombuffer(s.buf, dtype=dtype, count=count, offset=t.begin).reshape(t.shape)
        if x.data_ptr() % x.element_size():
            x = x.clone()  # misaligned for its dtype (never in files the safetensors library writes)
    return x if dev.type == "cpu" else x.to(dev)


def tensors_from_buffer(data: Any, name: str = "safetensors file", *,
                        device: Any = "cpu") -> dict[str, Any]:
    """Every tensor of a whole safetensors file held in memory (a writable buffer such as a
    ``bytearray``: the tensors are views of it, no copy; a read-only one such as ``bytes`` is
    copied once), in file order.

    Returns:
        dict name -> ``torch.Tensor`` with the file's dtype and shape, on ``device``.

    Raises:
        ValueError: a malformed file, naming ``name``.
    """
    import torch

    view = memoryview(data)
    buf = data if not view.readonly else bytearray(view)
    header = parse_header(buf, name)
    base = header.data_start
    shard = _Shard(ObjectURI("file", "", name), name, len(view), header=header,
                   buf=memoryview(buf)[base:] if base else buf)  # type: ignore[arg-type]
    dtypes = _torch_dtypes()
    dev = torch.device(device)
    return {t.name: _tensor(torch, shard, t, dtypes, dev) for t in header.tensors}


def load_safetensors(uri_or_uris: Any, *, device: Any = "cpu", client: Client | None = None,
                     max_in_flight: int | None = None) -> dict[str, Any]:
    """Every tensor of the safetensors file(s) as ``{name: torch.Tensor}`` (see
    :func:`iter_safetensors` for the arguments, what is fetched how, and the exceptions).
    Equal, byte for byte, to ``safetensors.torch.load`` of each file.

    Returns:
        dict name -> ``torch.Tensor`` with the file's dtype and shape (from its header), on
        ``device``, in file order (shards in order).

    Raises:
        ValueError: a malformed file or index, naming the shard (and tensor); or a bad
            argument (as :func:`iter_safetensors`).
        FileNotFoundError: from the store: no such object or bucket.
        PermissionError: from the store: access denied.
        TimeoutError: from the store: no progress within the client's timeouts.
        ObjectStoreError: from the store: anything else.
        ImportError: without torch.
        IntegrityError: with the client's ``checksums`` on, a shard does not match its
            stored CRC32C (:class:`objio.IntegrityError`).
    """
    return dict(_iter(uri_or_uris, device, client, max_in_flight, reyield=True))
