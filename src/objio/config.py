"""Client configuration: explicit arguments > environment variables > defaults.

| field | env (first one set wins) | default |
|---|---|---|
| endpoint_url | OBJIO_ENDPOINT_URL, S3_ENDPOINT_URIS, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL | AWS S3 of the region. Several endpoints of one store: a list, a comma-separated string or a ``{1...N}`` template (``http://gw{1...3}:9000``); see :func:`parse_endpoints` |
| endpoint_strategy | OBJIO_ENDPOINT_STRATEGY | ``least_connections`` (or ``round_robin``): which of several endpoints a request goes to |
| endpoint_fail_threshold | OBJIO_ENDPOINT_FAIL_THRESHOLD | 3: consecutive failed connections or timeouts that take an endpoint out (of several) |
| endpoint_backoff_s | OBJIO_ENDPOINT_BACKOFF_S | 1.0 seconds: how long an endpoint stays out before one request probes it (doubling at each failed probe, at most 30 s) |
| region | OBJIO_REGION, AWS_REGION, AWS_DEFAULT_REGION | ``us-east-1`` |
| access_key_id | AWS_ACCESS_KEY_ID | botocore credential chain |
| secret_access_key | AWS_SECRET_ACCESS_KEY | botocore credential chain |
| session_token | AWS_SESSION_TOKEN | botocore credential chain |
| profile | OBJIO_PROFILE, AWS_PROFILE | None |
| unsigned | OBJIO_UNSIGNED | False |
| force_path_style | OBJIO_FORCE_PATH_STYLE | None: path-style for custom endpoints, virtual-hosted for AWS |
| sign_payload | OBJIO_SIGN_PAYLOAD | False (``UNSIGNED-PAYLOAD``) |
| max_attempts | OBJIO_MAX_ATTEMPTS | 5 |
| connect_attempts | OBJIO_CONNECT_ATTEMPTS | 4: attempts in all (at most ``max_attempts``) for a request whose connection is refused or whose host name does not resolve, 0.25-0.5 s apart, doubling: a dead endpoint fails in 2-4 s, while timeouts and 5xx answers keep ``max_attempts`` |
| connect_timeout_s | OBJIO_CONNECT_TIMEOUT_S | 10.0 seconds |
| read_timeout_s | OBJIO_READ_TIMEOUT_S | 30.0 seconds without receiving a byte |
| request_timeout_s | OBJIO_REQUEST_TIMEOUT_S | 60.0 seconds: a request's deadline, or more for large bodies (below) |
| min_transfer_rate | OBJIO_MIN_TRANSFER_RATE | 1 MiB (bytes per second): a request moving N bytes may take max(request_timeout_s, N / rate) |
| checksums | OBJIO_CHECKSUMS | True: every upload sends its CRC32C (each PutObject and UploadPart; multipart uploads declared CRC32C FULL_OBJECT), which the store checks, and every whole-object read (ranged parts included) is checked against the stored CRC32C; a store that refuses the headers gets uploads without them after one warning. False or ``OBJIO_CHECKSUMS=0`` turns it off. Cost: one CRC32C pass, ~0.07 CPU s per GiB (docs/integrity.md) |
| part_size | OBJIO_PART_SIZE | 8 MiB (bytes; also the ranged-GET chunk) |
| range_threshold | OBJIO_RANGE_THRESHOLD | 32 MiB (bytes; larger GETs split into ranged GETs) |
| copy_threshold | OBJIO_COPY_THRESHOLD | 5 GiB (bytes, at most S3's 5 GiB): a server-side copy of a larger object is a multipart copy (UploadPartCopy of ``part_size`` parts) instead of one CopyObject |
| max_in_flight | OBJIO_MAX_IN_FLIGHT | 64 requests per client |
| azure_account | AZURE_STORAGE_ACCOUNT (or the connection string's AccountName) | None: the account of ``az://`` URIs |
| azure_account_key | AZURE_STORAGE_KEY (or AccountKey) | None: SharedKey signing with it when set |
| azure_sas_token | AZURE_STORAGE_SAS_TOKEN (or SharedAccessSignature) | None: a SAS appended to every request when set |
| azure_endpoint_url | OBJIO_AZURE_ENDPOINT_URL (or BlobEndpoint) | ``https://<account>.blob.core.windows.net`` |
| azure_connection_string | AZURE_STORAGE_CONNECTION_STRING | None: read into the four fields above (the fields given explicitly win; the separate variables are then not read) |
| gcs_endpoint_url | OBJIO_GCS_ENDPOINT_URL, STORAGE_EMULATOR_HOST (``host:port`` taken as ``http://host:port``) | ``https://storage.googleapis.com`` |
| gcs_credentials | OBJIO_GCS_CREDENTIALS | None: google-auth's application default credentials (``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's ADC file, the metadata server); a path: that service-account (or other credentials) JSON file; ``anonymous``: no credentials (emulators, public buckets). With an emulator endpoint set (STORAGE_EMULATOR_HOST) and no credentials given: anonymous |
| gcs_project | OBJIO_GCS_PROJECT, GOOGLE_CLOUD_PROJECT, CLOUDSDK_CORE_PROJECT | the credentials' project: the project a new ``gs://`` bucket is created in |
| op_log | OBJIO_OP_LOG | None: a file path to log every HTTP request to (one TSV line each, warp's columns first; ``.zst``: zstd; ``{pid}``/``{rank}`` replaced; :mod:`objio.oplog`) |

Sizes in env vars and CLI flags accept suffixes: ``128KiB``, ``16MiB``, ``1GiB``, ``10MB``, ``512``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Mapping

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

MIN_PART_SIZE = 5 * MiB  # S3 multipart minimum (except the last part)
MAX_PART_SIZE = 5 * GiB
MAX_PARTS = 10_000
MAX_COPY_OBJECT = 5 * GiB  # the largest object one CopyObject copies

ENDPOINT_STRATEGIES = ("least_connections", "round_robin")

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
_PREFIX = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def parse_size(value: str | int, name: str = "size") -> int:
    """Parse a byte count: an int, or a string such as ``"128KiB"``, ``"16M"``, ``"10MB"``.

    One rule, stated once (s5cmd's and the IEC's): a bare prefix or an ``i`` prefix is binary
    (``4K`` = ``4Ki`` = ``4KiB`` = 4096; ``16M``, ``16MiB``; ``G``, ``T``, ``P``), and only a
    prefix followed by ``B`` is decimal (``10kB`` = ``10KB`` = 10,000; ``MB``, ``GB``, ``TB``).
    ``B`` alone is bytes. A lower-case ``b`` after a prefix (``4Kb``) would mean bits and is
    refused. Fractions are allowed (``1.5GiB``) and rounded down to whole bytes.

    Raises:
        ValueError: not a non-negative size; the message names ``name`` and the rule.
    """
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a byte count, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{name} must be >= 0 bytes, got {value}")
        return value
    m = _SIZE_RE.match(str(value))
    factor = None
    if m is not None:
        unit = m.group(2)
        prefix, rest = (unit[:1], unit[1:]) if unit[:1].lower() in _PREFIX and unit[:1] else ("", unit)
        power = _PREFIX.get(prefix.lower())
        if power is not None:
            if rest in ("", "i", "iB"):
                factor = 1024 ** power
            elif rest == "B":
                factor = 1000 ** power
            elif rest == "" and not prefix:
                factor = 1
        if unit == "B":
            factor = 1
    if m is None or factor is None:
        raise ValueError(
            f"{name} must be a byte count such as 4096, 128K, 128KiB, 16M or 1GiB (binary), or "
            f"10kB, 10MB (decimal), got {value!r}"
        )
    return int(float(m.group(1)) * factor)


def format_size(n: float) -> str:
    """Human-readable binary size: ``16.0 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def format_rate(bytes_per_s: float) -> str:
    """Human-readable binary rate, the unit convention of every table, bar and plot:
    ``format_size(bytes_per_s) + "/s"`` (``1.5 GiB/s``; KiB = 2**10 bytes)."""
    return f"{format_size(bytes_per_s)}/s"


def plural(n: float, word: str, many: str | None = None) -> str:
    """``n`` and ``word``, in the plural unless ``n`` is 1: ``1 round``, ``3 rounds``
    (``many`` when the plural is not ``word + "s"``)."""
    shown = f"{n:,}" if isinstance(n, int) else f"{n:g}"
    return f"{shown} {word if n == 1 else (many or word + 's')}"


@contextlib.contextmanager
def temporary_environ(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (str) or unset (None) environment variables for the ``with`` block, restoring the
    old values after (e.g. credentials for a peer library that reads only the environment)."""
    old = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _env_bool(name: str, raw: str) -> bool:
    v = raw.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"environment variable {name} must be true/false/1/0, got {raw!r}")


_ENV: dict[str, tuple[str, ...]] = {
    "endpoint_url": ("OBJIO_ENDPOINT_URL", "S3_ENDPOINT_URIS", "AWS_ENDPOINT_URL_S3",
                     "AWS_ENDPOINT_URL"),
    "endpoint_strategy": ("OBJIO_ENDPOINT_STRATEGY",),
    "endpoint_fail_threshold": ("OBJIO_ENDPOINT_FAIL_THRESHOLD",),
    "endpoint_backoff_s": ("OBJIO_ENDPOINT_BACKOFF_S",),
    "region": ("OBJIO_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
    "access_key_id": ("AWS_ACCESS_KEY_ID",),
    "secret_access_key": ("AWS_SECRET_ACCESS_KEY",),
    "session_token": ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"),
    "profile": ("OBJIO_PROFILE", "AWS_PROFILE"),
    "unsigned": ("OBJIO_UNSIGNED",),
    "force_path_style": ("OBJIO_FORCE_PATH_STYLE",),
    "sign_payload": ("OBJIO_SIGN_PAYLOAD",),
    "max_attempts": ("OBJIO_MAX_ATTEMPTS",),
    "connect_attempts": ("OBJIO_CONNECT_ATTEMPTS",),
    "connect_timeout_s": ("OBJIO_CONNECT_TIMEOUT_S",),
    "read_timeout_s": ("OBJIO_READ_TIMEOUT_S",),
    "request_timeout_s": ("OBJIO_REQUEST_TIMEOUT_S",),
    "min_transfer_rate": ("OBJIO_MIN_TRANSFER_RATE",),
    "checksums": ("OBJIO_CHECKSUMS",),
    "part_size": ("OBJIO_PART_SIZE",),
    "range_threshold": ("OBJIO_RANGE_THRESHOLD",),
    "copy_threshold": ("OBJIO_COPY_THRESHOLD",),
    "max_in_flight": ("OBJIO_MAX_IN_FLIGHT",),
    "azure_account": ("AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_ACCOUNT_NAME"),
    "azure_account_key": ("AZURE_STORAGE_KEY", "AZURE_STORAGE_ACCOUNT_KEY"),
    "azure_sas_token": ("AZURE_STORAGE_SAS_TOKEN",),
    "azure_endpoint_url": ("OBJIO_AZURE_ENDPOINT_URL",),
    "azure_connection_string": ("AZURE_STORAGE_CONNECTION_STRING",),
    "gcs_endpoint_url": ("OBJIO_GCS_ENDPOINT_URL", "STORAGE_EMULATOR_HOST"),
    "gcs_credentials": ("OBJIO_GCS_CREDENTIALS",),
    "gcs_project": ("OBJIO_GCS_PROJECT", "GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT"),
    "op_log": ("OBJIO_OP_LOG",),
}

_AZURE_FIELDS = ("azure_account", "azure_account_key", "azure_sas_token", "azure_endpoint_url")
# Azurite's well-known development account (documented by Microsoft; not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr"
               "/KBHBeksoGMGw==")


def parse_connection_string(text: str) -> dict[str, str | None]:
    """The Azure Storage connection string ``text`` (``Key=value;...``, as the Azure portal and
    ``AZURE_STORAGE_CONNECTION_STRING`` give it) as the ClientConfig fields it sets:
    ``azure_account`` (AccountName), ``azure_account_key`` (AccountKey), ``azure_sas_token``
    (SharedAccessSignature) and ``azure_endpoint_url`` (BlobEndpoint, else
    ``DefaultEndpointsProtocol://AccountName.blob.EndpointSuffix``).
    ``UseDevelopmentStorage=true`` is Azurite on its default port (127.0.0.1:10000).

    Raises:
        ValueError: a part without ``=``, or neither an account nor a blob endpoint (the
            message never holds the key).
    """
    parts: dict[str, str] = {}
    for piece in text.strip().split(";"):
        if not piece.strip():
            continue
        name, eq, value = piece.partition("=")
        if not eq:
            raise ValueError("invalid Azure connection string: every part must be Key=value "
                             f"(got a part {name.strip()[:20]!r} without '=')")
        parts[name.strip().lower()] = value.strip()
    if parts.get("usedevelopmentstorage", "").lower() == "true":
        return {"azure_account": AZURITE_ACCOUNT, "azure_account_key": AZURITE_KEY,
                "azure_sas_token": None,
                "azure_endpoint_url": f"http://127.0.0.1:10000/{AZURITE_ACCOUNT}"}
    account = parts.get("accountname") or None
    endpoint = parts.get("blobendpoint") or None
    if endpoint is None and account is not None:
        protocol = parts.get("defaultendpointsprotocol", "https") or "https"
        suffix = parts.get("endpointsuffix", "core.windows.net") or "core.windows.net"
        endpoint = f"{protocol}://{account}.blob.{suffix}"
    if account is None and endpoint is None:
        raise ValueError("invalid Azure connection string: it names neither an AccountName "
                         "nor a BlobEndpoint")
    return {"azure_account": account, "azure_account_key": parts.get("accountkey") or None,
            "azure_sas_token": parts.get("sharedaccesssignature") or None,
            "azure_endpoint_url": endpoint.rstrip("/") if endpoint else None}

_DEFAULTS: dict[str, Any] = {
    "endpoint_strategy": "least_connections",
    "endpoint_fail_threshold": 3,
    "endpoint_backoff_s": 1.0,
    "region": "us-east-1",
    "unsigned": False,
    "sign_payload": False,
    "max_attempts": 5,
    "connect_attempts": 4,
    "connect_timeout_s": 10.0,
    "read_timeout_s": 30.0,
    "request_timeout_s": 60.0,
    "min_transfer_rate": 1 * MiB,
    "checksums": True,
    "part_size": 8 * MiB,
    "range_threshold": 32 * MiB,
    "copy_threshold": MAX_COPY_OBJECT,
    "max_in_flight": 64,
}


@dataclass(frozen=True)
class ClientConfig:
    """How to reach the object store. Fields left as None are filled by :meth:`resolved`
    from the environment, then the defaults (see the module table).

    Secrets (``secret_access_key``, ``session_token``) never appear in ``repr()``.

    Units: fields ending in ``_s`` are seconds (``connect_timeout_s``, ``read_timeout_s``,
    ``request_timeout_s``, ``endpoint_backoff_s``); ``part_size``, ``range_threshold`` and
    ``copy_threshold`` are bytes (an int, or a size string such as ``"8MiB"``: binary for a
    bare or ``i`` prefix, decimal for ``kB``/``MB``/``GB``); ``min_transfer_rate`` is bytes per
    second; ``endpoint_fail_threshold`` is a count of consecutive failures. Defaults and
    environment variables: the docs' Configuration page (the table of this module).

    Raises:
        ValueError: a field is out of range (the message names the field and the allowed values).
    """

    endpoint_url: str | tuple[str, ...] | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    profile: str | None = None
    unsigned: bool | None = None
    force_path_style: bool | None = None
    sign_payload: bool | None = None
    max_attempts: int | None = None
    connect_attempts: int | None = None
    connect_timeout_s: float | None = None
    read_timeout_s: float | None = None
    request_timeout_s: float | None = None
    min_transfer_rate: int | None = None
    checksums: bool | None = None
    part_size: int | None = None
    range_threshold: int | None = None
    copy_threshold: int | None = None
    max_in_flight: int | None = None
    endpoint_strategy: str | None = None
    endpoint_fail_threshold: int | None = None
    endpoint_backoff_s: float | None = None
    op_log: str | None = None
    azure_account: str | None = None
    azure_account_key: str | None = field(default=None, repr=False)
    azure_sas_token: str | None = field(default=None, repr=False)
    azure_endpoint_url: str | None = None
    azure_connection_string: str | None = field(default=None, repr=False)
    gcs_endpoint_url: str | None = None
    gcs_credentials: str | None = None
    gcs_project: str | None = None

    def __post_init__(self) -> None:
        def check(name: str, ok: bool, allowed: str) -> None:
            if not ok:
                raise ValueError(f"{name} must be {allowed}, got {getattr(self, name)!r}")

        # Size fields may be given as "16MiB" strings.
        for name in ("part_size", "range_threshold", "min_transfer_rate", "copy_threshold"):
            v = getattr(self, name)
            if isinstance(v, str):
                object.__setattr__(self, name, parse_size(v, name))
        if self.endpoint_url is not None:
            urls = parse_endpoints(self.endpoint_url)
            object.__setattr__(self, "endpoint_url", urls[0] if len(urls) == 1 else urls)
        if self.azure_endpoint_url is not None:
            check("azure_endpoint_url", isinstance(self.azure_endpoint_url, str)
                  and self.azure_endpoint_url.startswith(("http://", "https://")),
                  "an http:// or https:// URL")
            object.__setattr__(self, "azure_endpoint_url", self.azure_endpoint_url.rstrip("/"))
        if self.gcs_endpoint_url is not None:
            url = self.gcs_endpoint_url
            if isinstance(url, str) and url and "://" not in url:  # STORAGE_EMULATOR_HOST
                url = "http://" + url
            check("gcs_endpoint_url", isinstance(url, str)
                  and url.startswith(("http://", "https://")),
                  "an http:// or https:// URL (or host:port, read as http://host:port)")
            object.__setattr__(self, "gcs_endpoint_url", url.rstrip("/"))
        if self.endpoint_strategy is not None:
            check("endpoint_strategy", self.endpoint_strategy in ENDPOINT_STRATEGIES,
                  " or ".join(repr(s) for s in ENDPOINT_STRATEGIES))
        if self.endpoint_fail_threshold is not None:
            check("endpoint_fail_threshold", _is_int(self.endpoint_fail_threshold)
                  and self.endpoint_fail_threshold >= 1, "an integer >= 1")
        if self.endpoint_backoff_s is not None:
            v = self.endpoint_backoff_s
            check("endpoint_backoff_s", isinstance(v, (int, float)) and not isinstance(v, bool)
                  and v > 0, "a number of seconds > 0")
        for name in ("max_attempts", "connect_attempts"):
            v = getattr(self, name)
            if v is not None:
                check(name, _is_int(v) and v >= 1, "an integer >= 1")
        for name in ("connect_timeout_s", "read_timeout_s", "request_timeout_s"):
            v = getattr(self, name)
            if v is not None:
                check(name, isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0,
                      "a number of seconds > 0")
        if self.part_size is not None:
            check("part_size", _is_int(self.part_size)
                  and MIN_PART_SIZE <= self.part_size <= MAX_PART_SIZE,
                  f"between {MIN_PART_SIZE} (5 MiB) and {MAX_PART_SIZE} (5 GiB) bytes")
        if self.range_threshold is not None:
            check("range_threshold", _is_int(self.range_threshold) and self.range_threshold >= 1,
                  "a number of bytes >= 1")
        if self.copy_threshold is not None:
            check("copy_threshold", _is_int(self.copy_threshold)
                  and 1 <= self.copy_threshold <= MAX_COPY_OBJECT,
                  f"a number of bytes from 1 to {MAX_COPY_OBJECT} (5 GiB, the largest object "
                  "one CopyObject copies)")
        if self.min_transfer_rate is not None:
            check("min_transfer_rate", _is_int(self.min_transfer_rate) and self.min_transfer_rate >= 1,
                  "a number of bytes per second >= 1")
        if self.max_in_flight is not None:
            check("max_in_flight", _is_int(self.max_in_flight) and self.max_in_flight >= 1,
                  "an integer >= 1")
        for name in ("unsigned", "force_path_style", "sign_payload", "checksums"):
            v = getattr(self, name)
            if v is not None:
                check(name, isinstance(v, bool), "True, False or None")
        if self.op_log is not None:
            if isinstance(self.op_log, os.PathLike):
                object.__setattr__(self, "op_log", os.fspath(self.op_log))
            check("op_log", isinstance(self.op_log, str) and bool(self.op_log),
                  "a file path (str or os.PathLike) or None")

    def __repr__(self) -> str:
        shown = []
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is None:
                continue
            if f.name in ("secret_access_key", "session_token", "azure_account_key",
                          "azure_sas_token", "azure_connection_string"):
                v = "***"
            shown.append(f"{f.name}={v!r}")
        return f"ClientConfig({', '.join(shown)})"

    def replace(self, **changes: Any) -> ClientConfig:
        """A copy with ``changes`` applied (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def resolved(self, environ: Mapping[str, str] | None = None) -> ClientConfig:
        """Fill every unset field from the environment, then the defaults.

        Credentials are not looked up here beyond the AWS_* variables: the botocore chain
        (profiles, SSO, web identity, IMDS) runs lazily when the first S3 request is signed.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is None:
                for var in _ENV.get(f.name, ()):
                    raw = env.get(var)
                    if raw:
                        v = _from_env(f.name, var, raw)
                        break
            if v is None:
                v = _DEFAULTS.get(f.name)
            values[f.name] = v
        # Credentials come as a set: take env keys only when neither was given explicitly.
        if self.access_key_id is not None or self.secret_access_key is not None:
            values["access_key_id"] = self.access_key_id
            values["secret_access_key"] = self.secret_access_key
            values["session_token"] = self.session_token
        elif self.profile is not None:
            # An explicit profile wins over AWS_ACCESS_KEY_ID & co. in the environment, as in
            # aws-cli and botocore (AWS_PROFILE from the environment does not).
            values["access_key_id"] = values["secret_access_key"] = None
            values["session_token"] = None
        conn = values.get("azure_connection_string")
        if conn:
            # A connection string is one set of settings: the Azure fields given explicitly
            # win, the rest comes from it (not from the separate AZURE_STORAGE_* variables).
            from_conn = parse_connection_string(conn)
            for name in _AZURE_FIELDS:
                explicit = getattr(self, name)
                values[name] = explicit if explicit is not None else from_conn.get(name)
            values["azure_connection_string"] = None
        if values.get("azure_endpoint_url"):
            values["azure_endpoint_url"] = values["azure_endpoint_url"].rstrip("/")
        return ClientConfig(**values)

    def deadline_s(self, nbytes: int | None) -> float:
        """How long one request moving ``nbytes`` bytes may take in all, in seconds:
        ``max(request_timeout_s, nbytes / min_transfer_rate)`` (a resolved config)."""
        base = self.request_timeout_s or 60.0
        if not nbytes:
            return base
        return max(base, nbytes / (self.min_transfer_rate or MiB))

    @property
    def endpoint_urls(self) -> tuple[str, ...]:
        """Every endpoint URL of the store (one or more; empty for AWS's default endpoint)."""
        if self.endpoint_url is None:
            return ()
        if isinstance(self.endpoint_url, str):
            return (self.endpoint_url,)
        return tuple(self.endpoint_url)

    @property
    def path_style(self) -> bool:
        """Whether requests use path-style addressing (``endpoint/bucket/key``)."""
        if self.force_path_style is not None:
            return self.force_path_style
        return self.endpoint_url is not None


_TEMPLATE_RE = re.compile(r"\{(\d+)\.\.\.(\d+)\}")


def _expand(url: str, name: str) -> list[str]:
    """``url`` with its first ``{A...B}`` range expanded (recursively: several ranges give
    every combination). ``{01...10}``: numbers padded to the width of ``A``."""
    m = _TEMPLATE_RE.search(url)
    if m is None:
        if "{" in url or "}" in url:
            raise ValueError(f"{name}: {url!r} has a brace that is not a {{A...B}} range "
                             "(e.g. http://gw{1...3}:9000)")
        return [url]
    a, b = int(m.group(1)), int(m.group(2))
    if b < a:
        raise ValueError(f"{name}: the range {m.group(0)} in {url!r} counts down; write "
                         f"{{{b}...{a}}}")
    if b - a >= 1024:
        raise ValueError(f"{name}: the range {m.group(0)} in {url!r} makes more than 1024 "
                         "endpoints")
    width = len(m.group(1)) if m.group(1).startswith("0") else 0
    out: list[str] = []
    for i in range(a, b + 1):
        out.extend(_expand(url[:m.start()] + str(i).zfill(width) + url[m.end():], name))
    return out


def parse_endpoints(value: str | Sequence[str], name: str = "endpoint_url") -> tuple[str, ...]:
    """Every endpoint URL in ``value``: one URL, a list of URLs, a comma-separated string
    (as ``S3_ENDPOINT_URIS``, which DLIO's object-storage backend and s3dlio read), each
    possibly a template with ``{A...B}`` ranges, as warp's ``--host`` takes
    (``http://10.0.0.{1...4}:9000``, ``http://gw{01...12}:9000``; several ranges give every
    combination). Each URL must be ``http://`` or ``https://``; trailing slashes are dropped,
    duplicates removed (first kept).

    Raises:
        ValueError: naming ``name``: not a URL or list of URLs, a URL without http(s)://, an
            empty list, mixed http and https, or a malformed range.
    """
    if isinstance(value, str):
        pieces = [p.strip() for p in value.split(",")]
    elif isinstance(value, (list, tuple)) and all(isinstance(p, str) for p in value):
        pieces = [p.strip() for p in value]
    else:
        raise ValueError(f"{name} must be an http:// or https:// URL or a list of them, "
                         f"got {value!r}")
    urls: list[str] = []
    for piece in pieces:
        if not piece:
            continue
        for url in _expand(piece, name):
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{name} must be an http:// or https:// URL (or a list of "
                                 f"them), got {url!r}")
            url = url.rstrip("/")
            if url not in urls:
                urls.append(url)
    if not urls:
        raise ValueError(f"{name} must be an http:// or https:// URL or a list of them, "
                         f"got {value!r}")
    if len({u.split(":", 1)[0] for u in urls}) > 1:
        raise ValueError(f"{name}: the endpoints of one client must all be http:// or all "
                         f"https://, got {list(urls)!r}")
    return tuple(urls)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _from_env(name: str, var: str, raw: str) -> Any:
    try:
        if name in ("unsigned", "force_path_style", "sign_payload", "checksums"):
            return _env_bool(var, raw)
        if name in ("max_attempts", "connect_attempts", "max_in_flight", "endpoint_fail_threshold"):
            return int(raw)
        if name in ("connect_timeout_s", "read_timeout_s", "request_timeout_s",
                    "endpoint_backoff_s"):
            return float(raw)
        if name in ("part_size", "range_threshold", "min_transfer_rate", "copy_threshold"):
            return parse_size(raw, var)
        if name == "endpoint_url":
            urls = parse_endpoints(raw, var)
            return urls[0] if len(urls) == 1 else urls
    except ValueError as e:
        raise ValueError(f"environment variable {var}={raw!r} is invalid: {e}") from None
    return raw


_default_config: ClientConfig | None = None
_default_lock = threading.Lock()


def set_default_config(config: ClientConfig | None) -> None:
    """Make ``config`` (resolved) the process default; None forgets it (the environment is read
    again at the next use). :func:`objio.configure` calls this."""
    global _default_config
    with _default_lock:
        _default_config = None if config is None else config.resolved()


def default_config() -> ClientConfig:
    """The process default configuration: what :func:`objio.configure` set, else the
    environment and the defaults, resolved at the first call."""
    global _default_config
    with _default_lock:
        if _default_config is None:
            _default_config = ClientConfig().resolved()
        return _default_config
