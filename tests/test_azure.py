"""az:// specifics against LocalAzureServer (Azurite): URIs, configuration and credentials,
SharedKey, block uploads, listing completeness and read integrity (through the fault proxy),
error types, delete_many, and the CLI (ls/cp/rm/mb between s3://, az:// and local)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
import sys
import types
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import google_crc32c
import pytest

import objio
from faultproxy import FaultProxy, Forge, Response, Rewrite
from objio import engine
from objio.azure import AzureBackend, SharedKey
from objio.azure_server import LocalAzureServer
from objio.cli import main
from objio.config import ClientConfig, parse_connection_string
from objio.uri import ObjectURI, object_uri, parse_uri

BUCKET = "objio-test"


@pytest.fixture
def prefix(az_client: objio.Client) -> str:
    return f"az://{BUCKET}/t-{uuid.uuid4().hex[:8]}/"


# ----------------------------------------------------------------------------------- URIs
def test_uri_forms() -> None:
    assert parse_uri("az://data/train/x.npz") == ObjectURI("az", "data", "train/x.npz")
    abfs = parse_uri("abfs://data@myacct.dfs.core.windows.net/train/x.npz")
    assert abfs == ObjectURI("az", "data", "train/x.npz", "myacct")
    assert str(abfs) == "abfs://data@myacct.dfs.core.windows.net/train/x.npz"
    assert parse_uri("abfss://data@myacct.dfs.core.windows.net/p/").account == "myacct"
    assert parse_uri("az://data@myacct.blob.core.windows.net/k").account == "myacct"
    assert str(parse_uri("az://data/a").joinpath("b")) == "az://data/a/b"
    assert parse_uri(str(abfs)).with_key("y") == ObjectURI("az", "data", "y", "myacct")


@pytest.mark.parametrize("uri,match", [
    ("az://Data/x", "container name"),
    ("az://a--b/x", "container name"),
    ("az://ab/x", "container name"),
    ("az://-abc/x", "container name"),
    ("abfs://data@My_Acct.dfs.core.windows.net/x", "storage account"),
    ("az:///x", "az://container/blob"),
])
def test_bad_azure_uris(uri: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_uri(uri)


def test_container_uri_is_not_a_blob() -> None:
    with pytest.raises(ValueError, match="az://data/ names a container, not a blob"):
        object_uri("az://data/", "get")


# ----------------------------------------------------------------------------- configuration
def test_connection_string_parsing_and_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    dev = parse_connection_string("UseDevelopmentStorage=true")
    assert dev["azure_account"] == "devstoreaccount1"
    assert dev["azure_endpoint_url"] == "http://127.0.0.1:10000/devstoreaccount1"
    real = parse_connection_string("DefaultEndpointsProtocol=https;AccountName=acct;"
                                   "AccountKey=a2V5;EndpointSuffix=core.windows.net")
    assert real == {"azure_account": "acct", "azure_account_key": "a2V5",
                    "azure_sas_token": None,
                    "azure_endpoint_url": "https://acct.blob.core.windows.net"}
    with pytest.raises(ValueError, match="neither an AccountName"):
        parse_connection_string("AccountKey=secretvalue")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT", "other")
    monkeypatch.setenv("AZURE_STORAGE_KEY", "b3RoZXI=")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                       "AccountName=acct;AccountKey=a2V5;BlobEndpoint=http://h:1/acct/")
    cfg = ClientConfig().resolved()
    # the connection string is one set: the separate variables do not mix into it
    assert (cfg.azure_account, cfg.azure_account_key, cfg.azure_endpoint_url) == (
        "acct", "a2V5", "http://h:1/acct")
    assert "a2V5" not in repr(cfg)
    assert ClientConfig(azure_account="mine").resolved().azure_account == "mine"


def test_no_account_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for v in ("AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_ACCOUNT_NAME",
              "AZURE_STORAGE_CONNECTION_STRING", "OBJIO_AZURE_ENDPOINT_URL"):
        monkeypatch.delenv(v, raising=False)
    with pytest.raises(ValueError, match="AZURE_STORAGE_ACCOUNT"):
        AzureBackend(ClientConfig().resolved())


def test_shared_key_string_to_sign() -> None:
    key = SharedKey("acct", base64.b64encode(b"k" * 32).decode())
    hdrs = {"x-ms-date": "Thu, 03 Dec 2026 20:00:00 GMT", "x-ms-version": "2023-11-03",
            "content-length": "0", "x-ms-range": "bytes=0-9"}
    text = key.string_to_sign("GET", "/c/a%20b", [("comp", "list"), ("restype", "container")],
                              hdrs)
    assert text == ("GET\n\n\n\n\n\n\n\n\n\n\n\n"  # verb, 11 empty standard headers
                    "x-ms-date:Thu, 03 Dec 2026 20:00:00 GMT\nx-ms-range:bytes=0-9\n"
                    "x-ms-version:2023-11-03\n/acct/c/a%20b\ncomp:list\nrestype:container")
    with pytest.raises(ValueError, match="not valid base64") as e:
        SharedKey("acct", "not base64 !")
    assert "not base64 !" not in str(e.value)


@pytest.mark.parametrize("key_bytes", [16, 64, 65, 100])
def test_shared_key_signature_is_hmac_sha256_of_the_string_to_sign(key_bytes: int) -> None:
    """The signature (from SHA-256 states of the key's pads, hashed once) is the standard
    library's HMAC-SHA256, for keys of up to and over SHA-256's 64-byte block (Azure account
    keys are 64 bytes)."""
    raw = bytes(range(key_bytes))
    key = SharedKey("acct", base64.b64encode(raw).decode())
    for _ in range(2):  # the pads' states are copied, never used up
        hdrs = {"x-ms-date": "Thu, 03 Dec 2026 20:00:00 GMT", "x-ms-version": "2023-11-03"}
        text = key.string_to_sign("PUT", "/c/b", [], hdrs)
        key.sign("PUT", "/c/b", [], hdrs)
        want = base64.b64encode(hmac.digest(raw, text.encode(), "sha256")).decode()
        assert hdrs["authorization"] == f"SharedKey acct:{want}"


def test_wrong_key_is_permission_error(azure_server: LocalAzureServer, prefix: str) -> None:
    wrong = base64.b64encode(b"w" * 64).decode()
    bad = objio.Client(azure_server.config, azure_account_key=wrong, max_attempts=1)
    for op in (lambda: bad.get(prefix + "x"), lambda: bad.put_bytes(prefix + "x", b"1"),
               lambda: bad.list(prefix), lambda: bad.stat(prefix + "x")):
        with pytest.raises(PermissionError) as e:
            op()
        assert isinstance(e.value, objio.AccessDeniedError)
        assert wrong not in str(e.value) and wrong not in repr(bad)


def test_environ_points_another_process_at_it(azure_server: LocalAzureServer,
                                              az_client: objio.Client, prefix: str) -> None:
    az_client.put_bytes(prefix + "env", b"via connection string")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    env.update(azure_server.environ())
    code = f"import objio; print(bytes(objio.Client().get({prefix + 'env'!r})).decode())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "via connection string"


def account_sas(account: str, key: str, permissions: str) -> str:
    """An account SAS for the blob service (the documented string to sign of versions
    2020-12-06 and later), valid for an hour: the token a user gets from the portal."""
    expiry = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    version = "2021-08-06"
    fields = [account, permissions, "b", "sco", "", expiry, "", "", version, ""]
    sig = base64.b64encode(hmac.new(base64.b64decode(key), ("\n".join(fields) + "\n").encode(),
                                    hashlib.sha256).digest()).decode()
    return urlencode({"sv": version, "ss": "b", "srt": "sco", "sp": permissions, "se": expiry,
                      "sig": sig})


def test_sas_token(azure_server: LocalAzureServer, prefix: str,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    rw = account_sas(azure_server.account, azure_server.account_key, "rwdlac")
    c = objio.Client(ClientConfig(azure_sas_token=rw, azure_endpoint_url=azure_server.endpoint_url))
    c.put_bytes(prefix + "sas", b"via sas")
    assert bytes(c.get(prefix + "sas")) == b"via sas"
    assert c.list(prefix) == [parse_uri(prefix).key + "sas"]
    assert rw not in repr(c) and "sig=" not in repr(c.config)
    # a read-only SAS in a connection string: reads go, writes are refused
    ro = account_sas(azure_server.account, azure_server.account_key, "rl")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                       f"BlobEndpoint={azure_server.endpoint_url};SharedAccessSignature={ro}")
    reader = objio.Client(max_attempts=1)
    assert bytes(reader.get(prefix + "sas")) == b"via sas"
    with pytest.raises(PermissionError) as e:
        reader.put_bytes(prefix + "no", b"x")
    assert "sig=" not in str(e.value)


def test_anonymous_client_is_refused_a_private_container(azure_server: LocalAzureServer,
                                                         prefix: str) -> None:
    anon = objio.Client(ClientConfig(azure_endpoint_url=azure_server.endpoint_url),
                        max_attempts=1)
    with pytest.raises(PermissionError):
        anon.get(prefix + "x")


def test_default_azure_credential_when_installed(azure_server: LocalAzureServer,
                                                 az_proxy: FaultProxy, az_pclient: objio.Client,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a key or SAS token, azure-identity's DefaultAzureCredential (when installed)
    gives bearer tokens for https://storage.azure.com, fetched once and reused."""
    scopes: list[str] = []

    class FakeCredential:
        def get_token(self, scope: str) -> Any:
            scopes.append(scope)
            return types.SimpleNamespace(token="tok123", expires_on=datetime.now().timestamp()
                                         + 3600)

    fake = types.ModuleType("azure.identity")
    fake.DefaultAzureCredential = FakeCredential  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "azure", types.ModuleType("azure"))
    monkeypatch.setitem(sys.modules, "azure.identity", fake)
    endpoint = f"{az_proxy.endpoint_url}/{azure_server.account}"
    c = objio.Client(ClientConfig(azure_endpoint_url=endpoint), max_attempts=1)
    for _ in range(2):
        with pytest.raises(PermissionError):  # Azurite takes OAuth over https only
            c.get(f"az://{BUCKET}/x")
    assert [r.headers.get("authorization") for r in az_proxy.log] == ["Bearer tok123"] * 2
    assert scopes == ["https://storage.azure.com/.default"]


def test_server_command_kind_azure() -> None:
    from conftest import objio_server_process

    with objio_server_process("--kind", "azure") as info:
        assert info["account"] == "devstoreaccount1"
        conn = info["AZURE_STORAGE_CONNECTION_STRING"]
        c = objio.Client(ClientConfig(azure_connection_string=conn))
        c.create_bucket("az://cli-server")
        c.put_bytes("az://cli-server/k", b"v")
        assert bytes(c.get("az://cli-server/k")) == b"v"


def test_abfs_uri_of_the_configured_account(az_client: objio.Client, prefix: str) -> None:
    key = parse_uri(prefix).key + "abfs"
    az_client.put_bytes(f"abfs://{BUCKET}@devstoreaccount1.dfs.core.windows.net/{key}", b"ab")
    assert bytes(az_client.get(prefix + "abfs")) == b"ab"


# ----------------------------------------------------------------------------------- blocks
def test_block_upload_commits_only_its_own_blocks(azure_server: LocalAzureServer,
                                                  prefix: str) -> None:
    backend = AzureBackend(azure_server.config.resolved())
    obj = parse_uri(prefix + "blocks")

    async def run() -> bytes:
        mine = await backend.create_multipart(obj)
        other = await backend.create_multipart(obj)
        assert mine != other
        e1 = await backend.upload_part(obj, mine, 2, b"-tail")
        e0 = await backend.upload_part(obj, mine, 1, b"mine")
        # a second writer of the same name stages its part 1 after ours, and never commits
        await backend.upload_part(obj, other, 1, b"OTHER")
        await backend.complete_multipart(obj, mine, [(2, e1), (1, e0)])
        got = await backend.get(obj)
        await backend.abort_multipart(obj, other)  # nothing to send; nothing changes
        await backend.close()
        return bytes(got.data)

    assert engine.run(run()) == b"mine-tail"


def test_writer_uses_blocks(azure_server: LocalAzureServer, prefix: str) -> None:
    c = objio.Client(azure_server.config, part_size=5 * 1024 * 1024)
    data = os.urandom(12 * 1024 * 1024 + 7)
    with objio.open(prefix + "w.bin", "wb", client=c) as f:
        f.write(data)
    assert hashlib.sha256(c.get(prefix + "w.bin")).digest() == hashlib.sha256(data).digest()
    assert c.stat(prefix + "w.bin").size == len(data)
    obj = parse_uri(prefix + "w.bin")  # the whole blob's CRC32C, kept for readers to check
    info = engine.run(engine.backend_for(obj, c.config).head(obj, checksum=True))
    assert info.crc32c == google_crc32c.value(data)


# --------------------------------------------------------------- faults: integrity, retries
def _is_list(r: Any) -> bool:
    return r.method == "GET" and r.query.get("comp") == "list"


def test_listing_page_cut_short_is_retried_then_refused(az_pclient: objio.Client,
                                                        az_proxy: FaultProxy,
                                                        az_client: objio.Client,
                                                        prefix: str) -> None:
    az_client.put_many([(f"{prefix}k{i}", b"x") for i in range(5)])

    def cut(req: Any, resp: Response) -> Response:
        resp.body = resp.body[: resp.body.rfind(b"</Blobs>")]  # well framed, not whole
        return resp

    az_proxy.add(_is_list, Rewrite(cut), times=1)
    assert len(az_pclient.list(prefix)) == 5  # the cut page was asked for again
    az_proxy.add(_is_list, Rewrite(cut), times=None)
    with pytest.raises(objio.ObjectStoreError) as e:
        az_pclient.list(prefix)
    assert e.value.code == "IncompleteListing" and prefix.rstrip("/") in str(e.value)


def test_listing_marker_that_does_not_move_is_an_error(az_pclient: objio.Client,
                                                       az_proxy: FaultProxy,
                                                       prefix: str) -> None:
    def page(req: Any) -> Response:  # a whole page whose NextMarker is always "m1"
        sent = req.query.get("marker", "")
        body = ('<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint='
                f'"x" ContainerName="{BUCKET}"><Prefix /><Marker>{sent}</Marker><Blobs><Blob>'
                f"<Name>k{sent}</Name><Properties><Content-Length>1</Content-Length>"
                "</Properties></Blob></Blobs><NextMarker>m1</NextMarker></EnumerationResults>")
        return Response(200, "OK", [("Content-Type", "application/xml")], body.encode())

    az_proxy.add(_is_list, Forge(page), times=None)
    with pytest.raises(objio.ObjectStoreError, match="does not move forward") as e:
        az_pclient.list(prefix)
    assert e.value.code == "IncompleteListing"


@pytest.mark.parametrize("written", ["objio", "md5-only"])
def test_flipped_byte_fails_the_stored_checksum(az_pclient: objio.Client, az_proxy: FaultProxy,
                                                az_client: objio.Client, prefix: str,
                                                written: str) -> None:
    """A blob objio wrote carries its CRC32C (metadata objio_crc32c), checked by the engine
    as S3's stored CRC32C is; a blob written by another tool has only the Content-MD5 the
    service keeps, checked by the backend."""
    data = os.urandom(100_000)
    obj = parse_uri(prefix + "sum")
    backend = engine.backend_for(obj, az_client.config)
    if written == "objio":
        az_client.put_bytes(str(obj), data)
        assert engine.run(backend.head(obj, checksum=True)).crc32c is not None
    else:  # Put Blob with Content-MD5 and no CRC32C, as other clients write
        engine.run(backend.put(obj, data))
        assert engine.run(backend.head(obj, checksum=True)).crc32c is None

    def flip(req: Any, resp: Response) -> Response:
        body = bytearray(resp.body)
        body[500] ^= 1
        resp.body = bytes(body)
        return resp

    az_proxy.add(lambda r: r.method == "GET" and "sum" in r.path, Rewrite(flip), times=1)
    assert bytes(az_pclient.get(str(obj))) == data  # the damaged response was read again
    az_proxy.add(lambda r: r.method == "GET" and "sum" in r.path, Rewrite(flip), times=None)
    with pytest.raises(objio.IntegrityError,
                       match="CRC32C" if written == "objio" else "Content-MD5"):
        az_pclient.get(str(obj))


def test_server_busy_is_retried(az_pclient: objio.Client, az_proxy: FaultProxy,
                                az_client: objio.Client, prefix: str) -> None:
    az_client.put_bytes(prefix + "busy", b"ok")
    busy = Response(503, "Service Unavailable", [("x-ms-error-code", "ServerBusy")],
                    b'<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code>'
                    b"<Message>busy</Message></Error>")
    az_proxy.add(lambda r: r.method == "GET", Forge(lambda r: busy), times=2)
    assert bytes(az_pclient.get(prefix + "busy")) == b"ok"
    az_proxy.add(lambda r: r.method == "GET", Forge(lambda r: busy), times=None)
    with pytest.raises(objio.ObjectStoreError) as e:
        az_pclient.get(prefix + "busy")
    assert e.value.code == "ServerBusy" and e.value.retryable


# ------------------------------------------------------------------------- errors, deletes
def test_errors_and_deletes(az_client: objio.Client, prefix: str) -> None:
    with pytest.raises(FileNotFoundError, match="ContainerNotFound"):
        az_client.get("az://no-such-container/x")
    az_client.put_bytes(prefix + "once", b"1", exist_ok=False)
    with pytest.raises(FileExistsError):
        az_client.put_bytes(prefix + "once", b"2", exist_ok=False)
    az_client.put_many([(f"{prefix}d{i}", b"x") for i in range(30)])
    uris = [f"{prefix}d{i}" for i in range(30)] + [prefix + "never-there"]
    az_client.delete_many(uris)
    assert az_client.list(prefix) == [parse_uri(prefix).key + "once"]
    az_client.delete(prefix + "never-there")  # as S3: deleting what is gone is fine
    with pytest.raises(FileNotFoundError):
        az_client.delete("az://no-such-container/x")


def test_gen_writes_to_a_container_and_names_a_missing_one(az_client: objio.Client,
                                                           prefix: str) -> None:
    from objio.gen.generate import check_bucket

    check_bucket(az_client, prefix)  # the container exists: nothing raised
    with pytest.raises(FileNotFoundError, match="az://no-such-container"):
        check_bucket(az_client, "az://no-such-container/train/")


# --------------------------------------------------------------------------------------- CLI
def test_cli_ls_cp_rm_mb_between_schemes(azure_server: LocalAzureServer, cli_env: list[str],
                                         client: objio.Client, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    for k, v in azure_server.environ().items():
        monkeypatch.setenv(k, v)
    container = f"az://cli-{uuid.uuid4().hex[:8]}"
    assert main(["mb", container]) == 0
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"alpha")
    (src / "sub" / "b.txt").write_bytes(b"beta")
    assert main(["cp", "--recursive", str(src) + "/", container + "/up/"]) == 0
    capsys.readouterr()
    assert main(["ls", "--recursive", container + "/up/"]) == 0
    out = capsys.readouterr().out
    assert "up/a.txt" in out and "up/sub/b.txt" in out
    s3 = f"s3://{BUCKET}/cli-az-{uuid.uuid4().hex[:8]}/"
    assert main(["cp", "--recursive", container + "/up/", s3, *cli_env]) == 0
    assert bytes(client.get(s3 + "sub/b.txt")) == b"beta"
    assert main(["cp", s3 + "a.txt", container + "/back/a.txt", *cli_env]) == 0
    assert main(["cp", container + "/back/a.txt", str(tmp_path / "a.copy")]) == 0
    assert (tmp_path / "a.copy").read_bytes() == b"alpha"
    assert main(["sync", container + "/up/", str(tmp_path / "synced")]) == 0
    assert (tmp_path / "synced" / "sub" / "b.txt").read_bytes() == b"beta"
    assert main(["rm", "--recursive", container + "/up/"]) == 0
    capsys.readouterr()
    assert main(["ls", "--recursive", container + "/"]) == 0
    assert capsys.readouterr().out.split()[-1].endswith("back/a.txt")
