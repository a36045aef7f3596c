"""``objio gen``: synthetic training datasets in DLIO's folder layout, written to object storage.

A dataset is described by a :class:`GenSpec` (format, file counts, samples
per file, bytes per sample, seed, ...) or taken from a workload preset in
:data:`WORKLOADS` (DLIO's H100 configurations of MLPerf Storage).
:func:`plan` lists the files without writing anything; :func:`generate_dataset`
generates and uploads them, generation (in the engine's worker threads)
overlapping with upload, with at most ``max_in_flight`` files in memory.

Layout and naming follow DLIO (``dlio_benchmark/data_generator/data_generator.py``,
``DataGenerator.generate``), under the given prefix (DLIO's ``data_folder``)::

    train/{file_prefix}_{i}_of_{num_files}.{format}        i = 0 .. num_files - 1
    valid/{file_prefix}_{j}_of_{num_files_eval}.{format}   j = 0 .. num_files_eval - 1
    index/train/{file name}.idx                             TFRecord only (DALI index)
    index/valid/{file name}.idx

``i`` is zero-padded to the number of digits of the file count
(``img_007_of_168.npz``), ``file_prefix`` is ``img`` and the extension is the
format name.  With ``num_subfolders_train = S > 1`` file ``i`` goes to
``train/{i % S}/`` (the folder number zero-padded to the digits of ``S``), the
same for ``valid``.  The TFRecord index files (``tf_generator.py``,
``create_index_file``) hold one ``"offset length"`` line per record and are
what DLIO's DALI reader (``reader/dali_tfrecord_reader.py``) opens.

Each file's content is fixed by ``(seed, file number)``: train file ``i`` is
file number ``i``, valid file ``j`` is ``num_files + j`` (DLIO's order), so no
two files of a dataset are alike and any file can be regenerated alone.
Sample shapes follow DLIO: ``dim = int(sqrt(record_size))``; with a
``record_size_stdev`` each file draws its own ``(dim1, dim2)`` (see
:func:`objio.formats.record_dims`).
"""

from __future__ import annotations

from .generate import (
    auto_max_in_flight,
    build_planned,
    check_bucket,
    default_measure_specs,
    generate_dataset,
    job_rank,
    measure_generation,
)
from .plan import PlannedFile, iter_plan, plan, plan_summary
from .spec import WORKLOADS, GenSpec, check_scale, workload_spec

__all__ = [
    "GenSpec",
    "PlannedFile",
    "WORKLOADS",
    "auto_max_in_flight",
    "build_planned",
    "check_bucket",
    "check_scale",
    "default_measure_specs",
    "generate_dataset",
    "iter_plan",
    "job_rank",
    "measure_generation",
    "plan",
    "plan_summary",
    "workload_spec",
]
