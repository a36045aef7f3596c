"""Loading model weights from object storage: :class:`ModelConnector` (the OSS Model
Connector's API: ``list`` with FastList, ``open`` with prefetch in open order) and
:func:`load_safetensors` / :func:`iter_safetensors` (safetensors files straight into torch
tensors, without a copy).

* :mod:`objio.model.connector`: :class:`ModelConnector` (also ``OssModelConnector``), its
  settings (:data:`~objio.model.connector.CONFIG_KEYS`) and credential providers.
* :mod:`objio.model.prefetch`: the prefetch scheduler (order, memory budget, on-demand reads).
* :mod:`objio.model.safetensors`: :func:`load_safetensors`, :func:`iter_safetensors`.

The synthetic models of ``objio gen --format safetensors`` are :mod:`objio.gen.models`; the
model-load benchmark is :mod:`objio.bench.model`.
"""

from __future__ import annotations

from .connector import CONFIG_KEYS, ModelConnector, OssModelConnector, default_prefetch_memory
from .prefetch import PrefetchedObject
from .safetensors import INDEX_NAME, iter_safetensors, load_safetensors, tensors_from_buffer

__all__ = [
    "CONFIG_KEYS", "INDEX_NAME", "ModelConnector", "OssModelConnector", "PrefetchedObject",
    "default_prefetch_memory", "iter_safetensors", "load_safetensors", "tensors_from_buffer",
]
