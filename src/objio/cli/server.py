"""``objio server``: run :class:`objio.server.LocalS3Server` in the foreground."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any, Callable


def _run(server: Any, name: str, info: Callable[[Any], dict[str, Any]],
         exports: Callable[[Any], dict[str, str]],
         as_json: bool) -> int:
    """Start ``server``, print ``info`` (``--json``) or its exports, and run until Ctrl-C or
    SIGTERM; exit 1 if the server process exits by itself."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    with server:
        if as_json:
            print(json.dumps(info(server)), flush=True)
        else:
            print(f"{name} ready at {server.endpoint_url}", flush=True)
            print("Use it with:")
            for k, v in exports(server).items():
                print(f"  export {k}={v}")
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


def _serve_azure(args: argparse.Namespace) -> int:
    """``objio server --kind azure``: LocalAzureServer (Azurite) until Ctrl-C / SIGTERM."""
    from ..azure_server import LocalAzureServer

    if args.data_dir is not None or args.access_key_id or args.secret_access_key:
        raise ValueError("--data-dir, --access-key-id and --secret-access-key are for --kind "
                         "s3; --kind azure keeps its data in memory with Azurite's "
                         "development account (devstoreaccount1)")
    return _run(LocalAzureServer(port=args.port), "LocalAzureServer (Azurite)",
                lambda s: {"endpoint_url": s.endpoint_url, "account": s.account,
                           **s.environ()},
                lambda s: {k: f"'{v}'" for k, v in s.environ().items()}, args.json)


def _serve_gcs(args: argparse.Namespace) -> int:
    """``objio server --kind gcs``: LocalGCSServer (fake-gcs-server) until Ctrl-C / SIGTERM."""
    from ..gcs_server import LocalGCSServer

    if args.data_dir is not None or args.access_key_id or args.secret_access_key:
        raise ValueError("--data-dir, --access-key-id and --secret-access-key are for --kind "
                         "s3; --kind gcs keeps its data in memory and takes anonymous requests")
    return _run(LocalGCSServer(port=args.port), "LocalGCSServer (fake-gcs-server)",
                lambda s: {"endpoint_url": s.endpoint_url, **s.environ()},
                lambda s: {k: f"'{v}'" for k, v in s.environ().items()}, args.json)


def cmd_server(args: argparse.Namespace) -> int:
    if getattr(args, "kind", "s3") == "azure":
        return _serve_azure(args)
    if getattr(args, "kind", "s3") == "gcs":
        return _serve_gcs(args)
    from ..server import LocalS3Server

    server = LocalS3Server(data_dir=args.data_dir, access_key_id=args.access_key_id,
                           secret_access_key=args.secret_access_key, port=args.port)
    return _run(server, "LocalS3Server (SeaweedFS)",
                lambda s: {"endpoint_url": s.endpoint_url, "region": s.region,
                           "access_key_id": s.access_key_id,
                           "secret_access_key": s.secret_access_key},
                lambda s: s.environ(), args.json)


def register(sub: Any) -> None:
    """Add ``server`` to the ``objio`` sub-command parser."""
    p = sub.add_parser("server", help="run a local S3 server (SeaweedFS) in the foreground",
                       description="Start LocalS3Server on free loopback ports with "
                                   "authentication on, print the endpoint and keys, and run "
                                   "until Ctrl-C.")
    p.add_argument("--data-dir", default=None,
                   help="keep the data here, and the ports: a restart on the same directory "
                        "serves the same endpoint (default: a temp dir, removed at exit)")
    p.add_argument("--port", type=int, default=None,
                   help="the S3 port on 127.0.0.1 (default: a free one)")
    p.add_argument("--access-key-id", default=None,
                   help="the access key clients use (default: generated)")
    p.add_argument("--secret-access-key", default=None,
                   help="its secret (default: generated)")
    p.add_argument("--json", action="store_true", help="print the endpoint and keys as JSON")
    p.add_argument("--kind", choices=("s3", "azure", "gcs"), default="s3",
                   help="s3: SeaweedFS (default); azure: Azurite's blob service with its "
                        "development account (az:// URIs; prints AZURE_STORAGE_CONNECTION_STRING); "
                        "gcs: fake-gcs-server (gs:// URIs; prints STORAGE_EMULATOR_HOST)")
    p.set_defaults(func=cmd_server)
