"""Benchmarks of objio against its peers, measured side by side in one run.

* :mod:`objio.bench.objects`: DLIO-style put + get of many objects (``objio bench``),
  optionally against obstore, boto3, s3torchconnector and s3dlio (:func:`run_bench`).
* :mod:`objio.bench.stream`: one large object through file-like readers and writers
  (``objio bench stream``).
* :mod:`objio.bench.train`: DLIO training emulation and DataLoader throughput with
  objio's and s3torchconnector's datasets (``objio bench --workload`` / ``--throughput``).
* :mod:`objio.bench.peers`: every peer library's adapter, written once and used by all of them.
* :mod:`objio.bench.report`: formatting and progress bars shared by the reports.

Each run function returns a JSON-ready dict; the command line is :mod:`objio.cli.bench`.
"""

from __future__ import annotations

from ._common import DEFAULT_BUCKET, start_embedded
from .objects import DEFAULT_PREFIX, TEMPLATE, parse_peers, print_report, run_bench
from .peers import PEERS

__all__ = [
    "PEERS", "DEFAULT_BUCKET", "DEFAULT_PREFIX", "TEMPLATE", "parse_peers", "print_report",
    "run_bench", "start_embedded",
]
