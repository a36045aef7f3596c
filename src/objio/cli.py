"""The ``objio`` command line.

Exit codes: 0 success; 1 for an error the user can fix (missing object or bucket, bad URI,
access denied, invalid value), printed as one line without a traceback; 2 for usage errors
(argparse); 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from . import __version__


def add_global_flags(p: argparse.ArgumentParser) -> None:
    """The connection flags every command takes (aws-cli names)."""
    g = p.add_argument_group("connection (aws-cli names)")
    g.add_argument("--endpoint-url", default=None,
                   help="S3 endpoint, e.g. http://127.0.0.1:9000 (env AWS_ENDPOINT_URL)")
    g.add_argument("--region", default=None, help="region (env AWS_REGION; default us-east-1)")
    g.add_argument("--profile", default=None, help="profile of ~/.aws/config (env AWS_PROFILE)")
    g.add_argument("--no-sign-request", action="store_true", default=False,
                   help="anonymous requests (no credentials)")


def client_from_args(args: argparse.Namespace) -> Any:
    """An :class:`objio.Client` honouring the global flags (explicit > env > defaults)."""
    from .api import Client

    return Client(
        endpoint_url=getattr(args, "endpoint_url", None),
        region=getattr(args, "region", None),
        profile=getattr(args, "profile", None),
        unsigned=True if getattr(args, "no_sign_request", False) else None,
    )


def _cmd_server(args: argparse.Namespace) -> int:
    from .server import LocalS3Server

    server = LocalS3Server(data_dir=args.data_dir, access_key_id=args.access_key_id,
                           secret_access_key=args.secret_access_key)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    with server:
        info = {
            "endpoint_url": server.endpoint_url,
            "region": server.region,
            "access_key_id": server.access_key_id,
            "secret_access_key": server.secret_access_key,
        }
        if args.json:
            print(json.dumps(info), flush=True)
        else:
            print(f"LocalS3Server (SeaweedFS) ready at {server.endpoint_url}", flush=True)
            print("Use it with:")
            print(f"  export AWS_ENDPOINT_URL={server.endpoint_url}")
            print(f"  export AWS_ACCESS_KEY_ID={server.access_key_id}")
            print(f"  export AWS_SECRET_ACCESS_KEY={server.secret_access_key}")
            print(f"  export AWS_REGION={server.region}")
            print("Press Ctrl-C to stop.", flush=True)
        try:
            while not stop.wait(0.5):
                if not server.running:
                    print("objio: error: the server exited; log: " + str(server.log_path),
                          file=sys.stderr)
                    return 1
        except KeyboardInterrupt:
            pass
    return 0


def _run_bench(args: argparse.Namespace) -> int:
    """``objio bench``: put+get (default) or, with --workload/--throughput, the DLIO-style
    training emulation of :mod:`objio.train`."""
    if getattr(args, "workload", None) or getattr(args, "throughput", False):
        from . import train

        return train.run_train_from_args(args)
    from . import bench

    return bench.run_from_args(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="objio", description="Fast object-storage I/O for AI/ML (S3 and file://).")
    parser.add_argument("--version", action="version", version=f"objio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    from . import bench

    p = sub.add_parser(
        "bench", help="DLIO-style put+get benchmark (embedded S3 server when no URI)",
        description="Put then get synthetic objects and report MiB/s, objects/s, latency "
                    "percentiles (time to first byte, total) and client CPU; --compare runs "
                    "the same get phase with peers (obstore, boto3, s3torchconnector, s3dlio).")
    add_global_flags(p)
    bench.configure_parser(p)
    from . import train

    train.add_train_arguments(p)  # --workload / --throughput: the DataLoader training emulation
    p.set_defaults(func=_run_bench)

    from . import _cli_files, gen

    p = sub.add_parser(
        "gen", help="generate a synthetic dataset in DLIO's layouts (npz, tfrecord, hdf5, ...)",
        description="Write a deterministic synthetic dataset in the layouts DLIO / MLPerf "
                    "Storage read (train/, valid/, index/, img_<i>_of_<n>.<ext>), from explicit "
                    "options or a --workload preset (unet3d, resnet50, cosmoflow).")
    add_global_flags(p)
    gen.configure_parser(p)
    p.set_defaults(func=gen.run_from_args)

    _cli_files.register(sub, add_global_flags)

    p = sub.add_parser("server", help="run a local S3 server (SeaweedFS) in the foreground",
                       description="Start LocalS3Server on free loopback ports with "
                                   "authentication on, print the endpoint and keys, and run "
                                   "until Ctrl-C.")
    p.add_argument("--data-dir", default=None, help="keep the data here (default: a temp dir)")
    p.add_argument("--access-key-id", default=None, help="default: generated")
    p.add_argument("--secret-access-key", default=None, help="default: generated")
    p.add_argument("--json", action="store_true", help="print the endpoint and keys as JSON")
    p.set_defaults(func=_cmd_server)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``objio`` command; returns the exit code."""
    from .errors import ObjectStoreError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("objio: interrupted", file=sys.stderr)
        return 130
    except (ObjectStoreError, OSError, ValueError, RuntimeError) as e:
        msg = " ".join(str(e).split()) or type(e).__name__
        print(f"objio: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
