"""Synthetic models: safetensors shards shaped like real Hugging Face checkpoints.

A :class:`ModelPreset` is a decoder-only transformer's ``config.json`` (hidden size,
intermediate size, layers, attention and key/value heads, vocabulary, attention biases). Its
tensors are the ones ``transformers`` saves for that architecture, named and shaped the same
way (``model.embed_tokens.weight`` ``[vocab, hidden]``, ``model.layers.{i}.self_attn.q_proj.weight``
``[heads * head_dim, hidden]``, ..., ``lm_head.weight``), all BF16, in the state-dict order
``save_pretrained`` walks. They are split into shards as Hugging Face does
(``huggingface_hub.split_torch_state_dict_into_shards``: tensors in state-dict order, a new
shard whenever the next tensor would push the current one past ``max_shard_size``, default
5 GB), written as ``model-00001-of-0000N.safetensors`` (each file's tensors sorted by name, as
the safetensors library writes them) plus ``model.safetensors.index.json`` (``metadata.total_size``:
bytes of all tensors; ``weight_map``: tensor -> shard), or ``model.safetensors`` alone when one
shard is enough.

``scale`` (0 < scale <= 1) shrinks a model to about ``scale`` times its bytes while keeping
every tensor name (all layers): the head dimension, intermediate size and vocabulary are
multiplied by ``sqrt(scale)`` (rounded; the hidden size stays heads x head_dim).

Tensor bytes are deterministic in ``(seed, tensor number)`` (:func:`objio.formats.safetensors.fill_tensor_bytes`:
random, finite BF16 values of magnitude below 0.5), so no two tensors are alike and a
shard can be regenerated alone.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..config import GiB, MiB
from ..formats.safetensors import DTYPES, build_header, fill_tensor_bytes, index_json
from ..uri import ObjectURI, parse_uri

INDEX_NAME = "model.safetensors.index.json"
DEFAULT_MAX_SHARD_SIZE = 5_000_000_000
"""Hugging Face's default ``max_shard_size`` ("5GB")."""


@dataclass(frozen=True)
class ModelPreset:
    """The ``config.json`` fields that decide a decoder-only model's tensors.

    Attributes: ``hidden_size``, ``intermediate_size``, ``num_hidden_layers``,
    ``num_attention_heads``, ``num_key_value_heads``, ``vocab_size``, ``head_dim`` (default
    hidden / heads), ``attention_bias`` (q/k/v projections have biases, as Qwen2),
    ``tie_word_embeddings`` (no separate ``lm_head``), ``dtype`` (safetensors dtype name),
    ``source`` (where the numbers come from)."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    head_dim: int = 0
    attention_bias: bool = False
    tie_word_embeddings: bool = False
    dtype: str = "BF16"
    source: str = ""

    def scaled(self, scale: float) -> ModelPreset:
        """The same architecture (every tensor name) at about ``scale`` times the bytes.
        Raises: ValueError (scale not in (0, 1])."""
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale <= 1:
            raise ValueError(f"scale must be a number with 0 < scale <= 1, got {scale!r}")
        if scale == 1:
            return self
        f = math.sqrt(scale)
        hd = max(1, round(self.dims_head * f))

        def r8(n: int) -> int:
            return max(8, int(round(n * f / 8)) * 8)

        return dataclasses.replace(self, head_dim=hd,
                                   hidden_size=self.num_attention_heads * hd,
                                   intermediate_size=r8(self.intermediate_size),
                                   vocab_size=r8(self.vocab_size))

    @property
    def dims_head(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads

    def tensors(self) -> list[tuple[str, tuple[int, ...]]]:
        """``(name, shape)`` of every tensor, in state-dict order."""
        h, hd = self.hidden_size, self.dims_head
        q, kv = self.num_attention_heads * hd, self.num_key_value_heads * hd
        out: list[tuple[str, tuple[int, ...]]] = [("model.embed_tokens.weight",
                                                   (self.vocab_size, h))]
        for i in range(self.num_hidden_layers):
            p = f"model.layers.{i}."
            out += [(p + "self_attn.q_proj.weight", (q, h))]
            if self.attention_bias:
                out += [(p + "self_attn.q_proj.bias", (q,))]
            out += [(p + "self_attn.k_proj.weight", (kv, h))]
            if self.attention_bias:
                out += [(p + "self_attn.k_proj.bias", (kv,))]
            out += [(p + "self_attn.v_proj.weight", (kv, h))]
            if self.attention_bias:
                out += [(p + "self_attn.v_proj.bias", (kv,))]
            out += [(p + "self_attn.o_proj.weight", (h, q)),
                    (p + "mlp.gate_proj.weight", (self.intermediate_size, h)),
                    (p + "mlp.up_proj.weight", (self.intermediate_size, h)),
                    (p + "mlp.down_proj.weight", (h, self.intermediate_size)),
                    (p + "input_layernorm.weight", (h,)),
                    (p + "post_attention_layernorm.weight", (h,))]
        out.append(("model.norm.weight", (h,)))
        if not self.tie_word_embeddings:
            out.append(("lm_head.weight", (self.vocab_size, h)))
        return out

    def total_bytes(self) -> int:
        """Bytes of all tensors."""
        item = DTYPES[self.dtype]
        return sum(math.prod(s) * item for _, s in self.tensors())


MODELS: dict[str, ModelPreset] = {
    "llama3-8b": ModelPreset(4096, 14336, 32, 32, 8, 128256, 128,
                             source="meta-llama/Meta-Llama-3-8B config.json"),
    "llama3-70b": ModelPreset(8192, 28672, 80, 64, 8, 128256, 128,
                              source="meta-llama/Meta-Llama-3-70B config.json"),
    "qwen2.5-7b": ModelPreset(3584, 18944, 28, 28, 4, 152064, 128, attention_bias=True,
                              source="Qwen/Qwen2.5-7B config.json"),
    "qwen2.5-72b": ModelPreset(8192, 29568, 80, 64, 8, 152064, 128, attention_bias=True,
                               source="Qwen/Qwen2.5-72B config.json"),
}
"""Model presets by name (their ``config.json`` numbers)."""


def model_preset(name: str, scale: float = 1.0) -> ModelPreset:
    """The preset ``name`` (any case) at ``scale``. Raises: ValueError listing the presets."""
    key = name.lower() if isinstance(name, str) else name
    if key not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {name!r}")
    return MODELS[key].scaled(scale)


@dataclass(frozen=True)
class ShardPlan:
    """One shard: its file ``name`` and its tensors ``(name, shape)`` in file order."""

    name: str
    tensors: tuple[tuple[str, tuple[int, ...]], ...]


def plan_shards(preset: ModelPreset, max_shard_size: int = DEFAULT_MAX_SHARD_SIZE) -> list[ShardPlan]:
    """The shards Hugging Face would write (see the module docs). Raises: ValueError
    (``max_shard_size < 1``)."""
    if isinstance(max_shard_size, bool) or not isinstance(max_shard_size, int) or max_shard_size < 1:
        raise ValueError(f"max_shard_size must be a number of bytes >= 1, got {max_shard_size!r}")
    item = DTYPES[preset.dtype]
    groups: list[list[tuple[str, tuple[int, ...]]]] = [[]]
    current = 0
    for name, shape in preset.tensors():
        n = math.prod(shape) * item
        if groups[-1] and current + n > max_shard_size:
            groups.append([])
            current = 0
        groups[-1].append((name, shape))
        current += n
    count = len(groups)
    names = (["model.safetensors"] if count == 1 else
             [f"model-{i + 1:05d}-of-{count:05d}.safetensors" for i in range(count)])
    return [ShardPlan(n, tuple(sorted(g))) for n, g in zip(names, groups, strict=True)]


def max_shard_size_for(preset: ModelPreset, shards: int) -> int:
    """The smallest ``max_shard_size`` (bytes) that splits ``preset`` into at most ``shards``
    shards. Raises: ValueError (shards < 1)."""
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise ValueError(f"shards must be an integer >= 1, got {shards!r}")
    total = preset.total_bytes()
    lo, hi = max(1, total // shards), total
    while lo < hi:
        mid = (lo + hi) // 2
        if len(plan_shards(preset, mid)) <= shards:
            hi = mid
        else:
            lo = mid + 1
    return lo


def shard_bytes(preset: ModelPreset, shard: ShardPlan, *, seed: int = 0,
                numbers: dict[str, int] | None = None) -> bytearray:
    """The bytes of one shard file. ``numbers``: tensor name -> its number in the model (the
    random stream of its bytes; default: the state-dict order)."""
    if numbers is None:
        numbers = {n: i for i, (n, _) in enumerate(preset.tensors())}
    head, infos = build_header(((n, preset.dtype, s) for n, s in shard.tensors),
                               {"format": "pt"})
    out = bytearray(len(head) + (infos[-1].end if infos else 0))
    out[: len(head)] = head
    view = memoryview(out)
    base = len(head)
    for info in infos:
        fill_tensor_bytes(view[base + info.begin: base + info.end], preset.dtype, seed=seed,
                          index=numbers[info.name])
    return out


def model_files(preset: ModelPreset, max_shard_size: int = DEFAULT_MAX_SHARD_SIZE) -> list[str]:
    """The file names of a generated model (shards, then the index if any)."""
    shards = plan_shards(preset, max_shard_size)
    return [s.name for s in shards] + ([INDEX_NAME] if len(shards) > 1 else [])


def generate_model(client: Any, prefix_uri: Any, preset: ModelPreset, *,
                   max_shard_size: int = DEFAULT_MAX_SHARD_SIZE, seed: int = 0,
                   max_in_flight: int | None = None, progress: bool = False,
                   console: Any = None) -> dict[str, Any]:
    """Generate the model's shards (in the engine's worker threads) and upload them under
    ``prefix_uri`` with the index (see the module docs); at most ``max_in_flight`` shards in
    memory (default: about 1 GiB worth, 1 to 8).

    Returns: ``{"uri", "files", "shards", "tensors", "bytes" (all files), "total_size"
    (tensor bytes, as the index says), "seconds", "mib_per_s", "preset"}``.
    Raises: ValueError (bad arguments), FileNotFoundError (no bucket), PermissionError.
    """
    from .generate import check_bucket

    prefix = parse_uri(prefix_uri)
    if prefix.key and not prefix.key.endswith("/"):
        prefix = prefix.with_key(prefix.key + "/")
    shards = plan_shards(preset, max_shard_size)
    if max_in_flight is None:
        biggest = max(sum(math.prod(s) for _, s in sh.tensors) for sh in shards) * DTYPES[preset.dtype]
        max_in_flight = max(1, min(8, GiB // max(1, biggest)))
    check_bucket(client, prefix)
    numbers = {n: i for i, (n, _) in enumerate(preset.tensors())}
    done: list[int] = []

    def factory(sh: ShardPlan) -> Any:
        def build() -> list[tuple[ObjectURI, Any]]:
            return [(prefix.joinpath(sh.name), shard_bytes(preset, sh, seed=seed, numbers=numbers))]
        return build

    bar = _Bar(progress, console, len(shards))
    t0 = time.perf_counter()
    with bar:
        def observe(r: Any) -> None:
            done.append(r.nbytes)
            bar.advance(r.nbytes)

        client.put_generated((factory(sh) for sh in shards), max_in_flight=max_in_flight,
                             observer=observe)
        nbytes = sum(done)
        total = preset.total_bytes()
        if len(shards) > 1:
            wmap = {n: sh.name for sh in shards for n, _ in sh.tensors}
            index = index_json(wmap, total)
            client.put_bytes(prefix.joinpath(INDEX_NAME), index)
            nbytes += len(index)
    seconds = time.perf_counter() - t0
    return {"uri": str(prefix), "files": model_files(preset, max_shard_size),
            "shards": len(shards), "tensors": sum(len(s.tensors) for s in shards),
            "bytes": nbytes, "total_size": total, "seconds": seconds,
            "mib_per_s": nbytes / MiB / seconds if seconds > 0 else None,
            "preset": dataclasses.asdict(preset), "max_shard_size": max_shard_size,
            "seed": seed}


class _Bar:
    """A rich progress bar of shards written (nothing when disabled)."""

    def __init__(self, enabled: bool, console: Any, total: int) -> None:
        self.enabled = enabled
        self.console = console
        self.total = total
        self._p: Any = None
        self._task: Any = None

    def __enter__(self) -> _Bar:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            self._p = Progress("shards", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                               console=self.console)
            self._p.start()
            self._task = self._p.add_task("write", total=self.total)
        return self

    def advance(self, nbytes: int) -> None:
        if self._p is not None:
            self._p.advance(self._task, 1)

    def __exit__(self, *exc: object) -> None:
        if self._p is not None:
            self._p.stop()


def describe(name: str, preset: ModelPreset) -> str:
    """One line: ``name``: layers, hidden, intermediate, vocab, GB."""
    return (f"{name} = {preset.num_hidden_layers} layers, hidden {preset.hidden_size}, "
            f"intermediate {preset.intermediate_size}, vocab {preset.vocab_size}, "
            f"{preset.total_bytes() / 1e9:.1f} GB {preset.dtype}")


__all__: Sequence[str] = (
    "DEFAULT_MAX_SHARD_SIZE", "INDEX_NAME", "MODELS", "ModelPreset", "ShardPlan", "describe",
    "generate_model", "max_shard_size_for", "model_files", "model_preset", "plan_shards",
    "shard_bytes",
)
