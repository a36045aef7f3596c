from __future__ import annotations

import pytest

from objio.config import ClientConfig, MiB, parse_size


def test_explicit_beats_env_beats_default() -> None:
    env = {"AWS_ENDPOINT_URL": "http://env:1", "AWS_REGION": "eu-west-1",
           "OBJIO_MAX_IN_FLIGHT": "7", "OBJIO_PART_SIZE": "16MiB"}
    c = ClientConfig(region="us-west-2").resolved(env)
    assert c.region == "us-west-2"
    assert c.endpoint_url == "http://env:1"
    assert c.max_in_flight == 7
    assert c.part_size == 16 * MiB
    assert c.max_attempts == 5 and c.range_threshold == 32 * MiB
    assert ClientConfig().resolved({}).region == "us-east-1"


def test_endpoint_env_precedence() -> None:
    env = {"AWS_ENDPOINT_URL": "http://generic:1", "AWS_ENDPOINT_URL_S3": "http://s3:2"}
    assert ClientConfig().resolved(env).endpoint_url == "http://s3:2"
    env["AWS_DEFAULT_REGION"] = "ap-south-1"
    assert ClientConfig().resolved(env).region == "ap-south-1"
    env["AWS_REGION"] = "eu-north-1"
    assert ClientConfig().resolved(env).region == "eu-north-1"


def test_credentials_come_as_a_set() -> None:
    env = {"AWS_ACCESS_KEY_ID": "envkey", "AWS_SECRET_ACCESS_KEY": "envsecret",
           "AWS_SESSION_TOKEN": "envtoken"}
    c = ClientConfig().resolved(env)
    assert (c.access_key_id, c.secret_access_key, c.session_token) == ("envkey", "envsecret", "envtoken")
    c = ClientConfig(access_key_id="k", secret_access_key="s").resolved(env)
    assert (c.access_key_id, c.secret_access_key, c.session_token) == ("k", "s", None)


def test_secrets_never_in_repr() -> None:
    c = ClientConfig(access_key_id="AKIDVISIBLE", secret_access_key="topsecret",
                     session_token="tokensecret")
    r = repr(c) + str(c) + repr(c.resolved({}))
    assert "topsecret" not in r and "tokensecret" not in r
    assert "AKIDVISIBLE" in r


@pytest.mark.parametrize("kw,name", [
    ({"max_attempts": 0}, "max_attempts"),
    ({"max_in_flight": 0}, "max_in_flight"),
    ({"part_size": 1024}, "part_size"),
    ({"connect_timeout_s": 0}, "connect_timeout_s"),
    ({"read_timeout_s": -1}, "read_timeout_s"),
    ({"endpoint_url": "localhost:9000"}, "endpoint_url"),
    ({"unsigned": "yes"}, "unsigned"),
])
def test_invalid_fields_name_the_field(kw: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        ClientConfig(**kw)  # type: ignore[arg-type]


def test_bad_env_value_names_the_variable() -> None:
    with pytest.raises(ValueError, match="OBJIO_MAX_ATTEMPTS"):
        ClientConfig().resolved({"OBJIO_MAX_ATTEMPTS": "many"})
    with pytest.raises(ValueError, match="OBJIO_UNSIGNED"):
        ClientConfig().resolved({"OBJIO_UNSIGNED": "maybe"})


def test_path_style_auto() -> None:
    assert ClientConfig(endpoint_url="http://127.0.0.1:9000").path_style
    assert not ClientConfig().path_style
    assert not ClientConfig(endpoint_url="https://x", force_path_style=False).path_style


@pytest.mark.parametrize("text,n", [("128KiB", 128 * 1024), ("16MiB", 16 * MiB), ("1GiB", 1 << 30),
                                    ("10MB", 10_000_000), ("512", 512), ("1.5KiB", 1536), (7, 7),
                                    ("4K", 4096), ("4k", 4096), ("16M", 16 * MiB), ("2Gi", 2 << 30),
                                    ("10kB", 10_000), ("10KB", 10_000), ("3GB", 3 * 10**9),
                                    ("512B", 512), ("1T", 1 << 40)])
def test_parse_size(text: str | int, n: int) -> None:
    assert parse_size(text) == n


@pytest.mark.parametrize("bad", ["-1", "12XB", "", "MiB", -5, True, "4Kb", "4kb", "10Mb", "3b",
                                 "5 KIB", "1KBB"])
def test_parse_size_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(bad)  # type: ignore[arg-type]
