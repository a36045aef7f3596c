"""URIs that do no more than they say: a URI without a key is never an object, deleting a
bucket's content needs the explicit prefix, bulk calls refuse a lone string, and templates
cannot write outside their prefix."""

from __future__ import annotations

from pathlib import Path

import pytest

import objio
from conftest import BUCKET


def test_delete_of_a_bare_bucket_uri_is_refused(client: objio.Client, prefix: str) -> None:
    client.put_bytes(prefix + "keep", b"x")
    with pytest.raises(ValueError, match=f"s3://{BUCKET}/"):
        client.delete(f"s3://{BUCKET}")
    assert client.exists(prefix + "keep")
    client.put_bytes(prefix + "a.npz", b"1")
    assert client.delete(prefix + "*.npz") == 1  # a glob is a prefix delete
    assert client.delete(prefix) == 1  # so is a trailing slash
    assert client.list(prefix) == []


@pytest.mark.parametrize("uri", [f"s3://{BUCKET}", f"s3://{BUCKET}/"])
def test_single_object_operations_refuse_a_bucket(client: objio.Client, uri: str) -> None:
    for call in (lambda: client.get(uri), lambda: client.get_range(uri, 0, 10),
                 lambda: client.stat(uri), lambda: client.exists(uri),
                 lambda: objio.open(uri, "rb", client=client),
                 lambda: client.put_bytes(uri, b"x"), lambda: client.get_many([uri]),
                 lambda: client.get_many_stats([uri]), lambda: client.copy(uri, uri + "x")):
        with pytest.raises(ValueError, match="object key") as e:
            call()
        assert BUCKET in str(e.value)


def test_bulk_calls_refuse_a_single_string(client: objio.Client, prefix: str) -> None:
    uri = prefix + "x"
    for call in (lambda: client.get_many(uri), lambda: client.get_many_stats(uri),
                 lambda: client.put_many(uri), lambda: client.copy_many(uri)):
        with pytest.raises(TypeError, match="wrap it in a list"):
            call()


def test_put_template_cannot_leave_a_local_prefix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outside the prefix"):
        objio.put(f"file://{tmp_path}/data/", num=2, template="../escape_{}_of_{}", size=10)
    assert not (tmp_path / "escape_0_of_2").exists()
    objio.put(f"file://{tmp_path}/data/", num=2, template="sub/ok_{}_of_{}", size=10)
    assert sorted(p.name for p in (tmp_path / "data" / "sub").iterdir()) == ["ok_0_of_2",
                                                                           "ok_1_of_2"]
