"""``S3ClientConfig``: s3torchconnector's client settings, mapped onto :class:`objio.ClientConfig`.

Same fields, order and defaults as ``s3torchconnector.S3ClientConfig`` (1.5)::

    S3ClientConfig(throughput_target_gbps=10.0, part_size=8 * 1024 * 1024, unsigned=False,
                   force_path_style=False, max_attempts=10, profile=None)

Unlike the seed (whose native client rejects bad values later, or crashes), every field is
checked when the object is created: a bad value raises :class:`ValueError` naming the field and
the allowed values.

How each field maps onto objio (:meth:`S3ClientConfig.to_client_config`):

* ``throughput_target_gbps`` -> ``max_in_flight`` (requests objio keeps in flight per process
  for one client): ``ceil(6.4 * gbps)``, between 4 and 1024, i.e. about 160 Mbit/s per
  request in flight, which is what one S3 connection sustains. The default 10 Gbps gives 64,
  objio's own default. It also caps the ranged GETs one object is split into (at most 16).
* ``part_size`` -> ``part_size`` (bytes per ranged GET of a large object and per multipart
  part; 5 MiB to 5 GiB).
* ``unsigned`` -> ``unsigned`` (``False`` leaves objio's default/environment in charge).
* ``force_path_style`` -> ``force_path_style``: ``True`` forces path-style addressing;
  ``False`` (the seed's "don't force") leaves objio's automatic choice: path-style for a custom
  ``endpoint`` (MinIO, SeaweedFS, Ceph, ...), virtual-hosted for AWS.
* ``max_attempts`` -> ``max_attempts`` (requests per operation, retries included).
* ``profile`` -> ``profile`` (AWS shared-config profile used for credentials).

The datasets' ``region`` and ``endpoint`` arguments become ``region`` and ``endpoint_url``.
Credentials come from the environment (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``), the
profile, or botocore's chain, as with the seed.

Importable without torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..config import MAX_PART_SIZE, MIN_PART_SIZE, ClientConfig

__all__ = ["S3ClientConfig", "client_config_for", "max_in_flight_for"]

_GBPS_PER_REQUEST = 1 / 6.4  # ~160 Mbit/s per request in flight
_MIN_IN_FLIGHT = 4
_MAX_IN_FLIGHT = 1024
_FIELDS = ("throughput_target_gbps", "part_size", "unsigned", "force_path_style", "max_attempts",
           "profile")


def max_in_flight_for(throughput_target_gbps: float) -> int:
    """Requests in flight objio uses for a throughput target in Gbit/s (see the module docs)."""
    return max(_MIN_IN_FLIGHT, min(_MAX_IN_FLIGHT,
                                   math.ceil(throughput_target_gbps / _GBPS_PER_REQUEST - 1e-9)))


@dataclass(frozen=True)
class S3ClientConfig:
    """Parameters of the S3 client used by the datasets (s3torchconnector's names and defaults).

    Args:
        throughput_target_gbps: throughput target in Gbit/s (default 10.0); objio turns it into
            the number of requests in flight (see the module docs).
        part_size: bytes per ranged GET / multipart part, 5 MiB to 5 GiB (default 8 MiB).
        unsigned: send anonymous (unsigned) requests.
        force_path_style: force path-style addressing (``endpoint/bucket/key``).
        max_attempts: requests per operation, retries of transient errors included (>= 1).
        profile: AWS profile name for credentials.

    Raises:
        TypeError: a field has the wrong type (the message names the field).
        ValueError: a value out of range (the message names the field and the allowed values).
    """

    throughput_target_gbps: float = 10.0
    part_size: int = 8 * 1024 * 1024
    unsigned: bool = False
    force_path_style: bool = False
    max_attempts: int = 10
    profile: str | None = None

    def __post_init__(self) -> None:
        g = self.throughput_target_gbps
        if isinstance(g, bool) or not isinstance(g, (int, float)):
            raise TypeError(f"throughput_target_gbps must be a number of Gbit/s, got {g!r}")
        if not math.isfinite(g) or g <= 0:
            raise ValueError(f"throughput_target_gbps must be a finite number of Gbit/s > 0, "
                             f"got {g!r}")
        p = self.part_size
        if isinstance(p, bool) or not isinstance(p, int):
            raise TypeError(f"part_size must be an integer number of bytes, got {p!r}")
        if not MIN_PART_SIZE <= p <= MAX_PART_SIZE:
            raise ValueError(f"part_size must be between {MIN_PART_SIZE} (5 MiB) and "
                             f"{MAX_PART_SIZE} (5 GiB) bytes, got {p!r}")
        for name in ("unsigned", "force_path_style"):
            v = getattr(self, name)
            if not isinstance(v, bool):
                raise TypeError(f"{name} must be True or False, got {v!r}")
        m = self.max_attempts
        if isinstance(m, bool) or not isinstance(m, int):
            raise TypeError(f"max_attempts must be an integer, got {m!r}")
        if m < 1:
            raise ValueError(f"max_attempts must be an integer >= 1, got {m!r}")
        if self.profile is not None and not isinstance(self.profile, str):
            raise TypeError(f"profile must be a string or None, got {self.profile!r}")
        if self.profile is not None and not self.profile:
            raise ValueError("profile must be a non-empty string or None, got ''")

    @property
    def max_in_flight(self) -> int:
        """objio's ``max_in_flight`` for :attr:`throughput_target_gbps`."""
        return max_in_flight_for(self.throughput_target_gbps)

    def to_client_config(self, region: str | None = None,
                         endpoint: str | None = None) -> ClientConfig:
        """The :class:`objio.ClientConfig` these settings stand for (see the module docs).

        Raises:
            ValueError: ``region`` or ``endpoint`` is invalid.
        """
        return ClientConfig(
            region=_region(region),
            endpoint_url=_endpoint(endpoint),
            part_size=self.part_size,
            max_in_flight=self.max_in_flight,
            max_attempts=self.max_attempts,
            unsigned=True if self.unsigned else None,
            force_path_style=True if self.force_path_style else None,
            profile=self.profile,
        )


def _region(region: Any) -> str | None:
    if region is None or region == "":
        return None
    if not isinstance(region, str):
        raise TypeError(f"region must be a string such as 'us-east-1', got {region!r}")
    return region


def _endpoint(endpoint: Any) -> str | None:
    if endpoint is None or endpoint == "":
        return None
    if not isinstance(endpoint, str):
        raise TypeError(f"endpoint must be a URL string such as 'http://localhost:9000', "
                        f"got {endpoint!r}")
    if "://" not in endpoint:
        endpoint = "https://" + endpoint  # the seed accepts a bare host name
    if not endpoint.startswith(("http://", "https://")):
        raise ValueError(f"endpoint must be an http:// or https:// URL, got {endpoint!r}")
    return endpoint


def client_config_for(s3client_config: Any, region: str | None = None,
                      endpoint: str | None = None) -> ClientConfig:
    """The :class:`objio.ClientConfig` for a dataset's arguments.

    ``s3client_config`` may be None (objio's defaults and environment), an
    :class:`S3ClientConfig`, an ``s3torchconnector.S3ClientConfig`` (converted field by field,
    and validated), or an :class:`objio.ClientConfig` (used as is; ``region``/``endpoint`` fill
    only the fields it leaves unset).

    Raises:
        ValueError: invalid settings.
        TypeError: any other type of ``s3client_config``, a region or endpoint that is not a
            string.
    """
    if s3client_config is None:
        return ClientConfig(region=_region(region), endpoint_url=_endpoint(endpoint))
    if isinstance(s3client_config, ClientConfig):
        return s3client_config.replace(region=s3client_config.region or _region(region),
                                       endpoint_url=s3client_config.endpoint_url
                                       or _endpoint(endpoint))
    if not isinstance(s3client_config, S3ClientConfig):
        if all(hasattr(s3client_config, f) for f in _FIELDS):  # s3torchconnector's own class
            s3client_config = S3ClientConfig(**{f: getattr(s3client_config, f) for f in _FIELDS})
        else:
            raise TypeError("s3client_config must be an objio.torch.S3ClientConfig, an "
                            "objio.ClientConfig or None, got "
                            f"{type(s3client_config).__name__}")
    return s3client_config.to_client_config(region, endpoint)


class LazyClient:
    """Mixin for objects that make their :class:`objio.Client` from ``self._config`` (a
    ClientConfig) on first use, ``_get_client()``, and keep it in ``self._client`` (None until
    then). Pickling drops the client: each process that unpickles the object (a DataLoader
    worker, a spawned rank) makes its own instead of sharing the parent's connections."""

    _config: ClientConfig
    _client: Any

    def _get_client(self) -> Any:
        if self._client is None:
            from ..api import Client

            self._client = Client(self._config)
        return self._client

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_client"] = None
        return state
