"""objio.torch.lightning.S3LightningCheckpoint with a real Lightning Trainer on LocalS3Server."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
L = pytest.importorskip("lightning")
import fsspec  # noqa: E402
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from lightning.pytorch.plugins.io import AsyncCheckpointIO, TorchCheckpointIO  # noqa: E402

import objio  # noqa: E402
from objio.torch import _fsspec  # noqa: E402
from objio.torch.lightning import S3LightningCheckpoint  # noqa: E402


class Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(8, 1)
        self.start_weights: torch.Tensor | None = None

    def on_train_start(self) -> None:
        self.start_weights = self.layer.weight.detach().clone()

    def training_step(self, batch: Any, i: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def validation_step(self, batch: Any, i: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.05)


def loader() -> Any:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 8, generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)),
                                       batch_size=16)


def trainer(root: str, plugin: Any, epochs: int, **kw: Any) -> Any:
    return L.Trainer(default_root_dir=root, max_epochs=epochs, plugins=[plugin],
                     accelerator="cpu", devices=1, enable_progress_bar=False,
                     enable_model_summary=False, **kw)


def test_signature_matches_the_seed() -> None:
    seed = pytest.importorskip("s3torchconnector.lightning")
    mine = inspect.signature(S3LightningCheckpoint).parameters
    for p in inspect.signature(seed.S3LightningCheckpoint).parameters.values():
        assert p.name in mine and mine[p.name].kind == p.kind
    for method in ("save_checkpoint", "load_checkpoint", "remove_checkpoint", "teardown"):
        assert list(inspect.signature(getattr(S3LightningCheckpoint, method)).parameters) == \
            list(inspect.signature(getattr(seed.S3LightningCheckpoint, method)).parameters)


def test_trainer_saves_prunes_and_resumes_from_s3(s3_server: Any, client: objio.Client,
                                                  prefix: str) -> None:
    warnings.filterwarnings("ignore", module="lightning")
    root = prefix + "run"
    plugin = S3LightningCheckpoint(s3client_config=s3_server.config)
    every_epoch = ModelCheckpoint(save_top_k=1, monitor="val_loss", mode="min")
    t = trainer(root, AsyncCheckpointIO(plugin), 2, callbacks=[every_epoch])
    t.fit(Tiny(), loader(), loader())

    ckpts = [k for k in client.list(root + "/") if k.endswith(".ckpt")]
    assert len(ckpts) == 1                          # epoch 0's was removed by save_top_k=1
    assert re.search(r"epoch=1-step=8\.ckpt$", ckpts[0])
    assert every_epoch.best_model_path == f"s3://{objio.parse_uri(root).bucket}/{ckpts[0]}"
    assert client.list_multipart_uploads(root + "/") == []

    saved = plugin.load_checkpoint(every_epoch.best_model_path)
    assert saved["epoch"] == 1 and "state_dict" in saved

    resumed = Tiny()
    t2 = trainer(root, S3LightningCheckpoint(s3client_config=s3_server.config), 3, logger=False)
    t2.fit(resumed, loader(), loader(), ckpt_path=every_epoch.best_model_path)
    assert t2.current_epoch == 3 and t2.global_step == 12
    assert resumed.start_weights is not None
    assert torch.equal(resumed.start_weights, saved["state_dict"]["layer.weight"])


def test_bad_paths(s3_server: Any, prefix: str, tmp_path: Path) -> None:
    plugin = S3LightningCheckpoint(s3client_config=s3_server.config)
    with pytest.raises(TypeError, match="path"):
        plugin.save_checkpoint({}, 42)
    with pytest.raises(FileNotFoundError, match="no-such.ckpt"):
        plugin.load_checkpoint(prefix + "no-such.ckpt")
    with pytest.raises(FileNotFoundError):
        plugin.save_checkpoint({"a": torch.zeros(2)}, "s3://no-such-bucket-z/a.ckpt")
    plugin.remove_checkpoint(prefix + "never-written.ckpt")   # like S3: not an error
    with pytest.raises(ValueError, match="object URI"):
        plugin.remove_checkpoint(prefix)                      # never a whole prefix
    plugin.teardown()


def test_non_s3_paths_are_refused_as_the_seed(s3_server: Any, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """s3torchconnector's plugin: TypeError for anything but a str, ValueError for a string
    that is not s3://. Nothing local is read, written or deleted."""
    monkeypatch.chdir(tmp_path)
    plugin = S3LightningCheckpoint(s3client_config=s3_server.config)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "a.ckpt").write_bytes(b"local")
    for path in (Path("bucket", "key.ckpt"), Path(), tmp_path / "run" / "a.ckpt"):
        with pytest.raises(TypeError, match="is not a supported type for 'path'"):
            plugin.save_checkpoint({"a": 1}, path)
        with pytest.raises(TypeError, match="is not a supported type for 'path'"):
            plugin.load_checkpoint(path)
        with pytest.raises(TypeError, match="is not a supported type for 'path'"):
            plugin.remove_checkpoint(path)
    for path in ("bucket/key.ckpt", str(tmp_path / "run"), str(tmp_path / "run" / "a.ckpt"),
                 f"file://{tmp_path}/run/a.ckpt", ""):
        with pytest.raises(ValueError, match="Only s3:// URIs are supported"):
            plugin.save_checkpoint({"a": 1}, path)
        with pytest.raises(ValueError, match="Only s3:// URIs are supported"):
            plugin.load_checkpoint(path)
        with pytest.raises(ValueError, match="Only s3:// URIs are supported"):
            plugin.remove_checkpoint(path)
    assert (tmp_path / "run" / "a.ckpt").read_bytes() == b"local"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.ckpt", "run"]


# ------------------------------------------------------------------------------ fsspec s3://
@pytest.fixture
def objio_fsspec(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> objio.Client:
    """fsspec's s3:// through objio's default client (no plugin, no register() call)."""
    client = objio.Client(s3_server.config)
    monkeypatch.setattr(objio.api, "_default", client)
    monkeypatch.setattr(_fsspec.ObjioS3FileSystem, "client", None)
    _fsspec.ObjioS3FileSystem.clear_instance_cache()
    assert fsspec.get_filesystem_class("s3") is _fsspec.ObjioS3FileSystem
    return client


def _which_s3(env: dict[str, str]) -> str:
    code = ("import fsspec; c = fsspec.get_filesystem_class('s3'); "
            "print(c.__module__ + '.' + c.__name__)")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_fsspec_finds_objio_for_s3_and_an_installed_s3fs_stays_in_charge(
        tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # a fresh interpreter that never imports objio: fsspec's entry points find it
    assert _which_s3(env) == "objio.torch._fsspec.ObjioS3FileSystem"
    fake = tmp_path / "site" / "s3fs"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "import fsspec\n__version__ = '2099.1.0'\n"
        "class S3FileSystem(fsspec.AbstractFileSystem):\n    protocol = ('s3', 's3a')\n")
    assert _which_s3({**env, "PYTHONPATH": str(tmp_path / "site")}) == "s3fs.S3FileSystem"


def test_fsspec_transactions_commit_or_discard(objio_fsspec: objio.Client, prefix: str) -> None:
    """fsspec's transaction contract: written inside ``with fs.transaction:``, an object
    appears at commit (multipart upload completed) and is discarded on an exception (upload
    aborted, the previous object unchanged)."""
    client = objio_fsspec
    fs = fsspec.filesystem("s3")
    uri = prefix + "t.bin"
    big = bytes(range(256)) * (6 * 4096 + 7)              # > 5 MiB: a multipart upload
    with fs.transaction:
        with fs.open(uri, "wb") as f:
            f.write(big)
        assert not client.exists(uri)                      # written, not yet committed
    assert bytes(client.get(uri)) == big

    with pytest.raises(RuntimeError, match="boom"):
        with fs.transaction:
            with fs.open(uri, "wb") as f:
                f.write(b"new" * 3_000_000)
            raise RuntimeError("boom")
    assert bytes(client.get(uri)) == big                   # discarded: the old object stays
    assert client.list_multipart_uploads(prefix) == []
    with fs.open(prefix + "plain.txt", "w") as t:          # outside a transaction: autocommit
        t.write("hello")
    assert bytes(client.get(prefix + "plain.txt")) == b"hello"


@pytest.mark.parametrize("asynchronous", [False, True])
def test_lightnings_default_checkpoint_io_saves_and_resumes_on_s3(
        objio_fsspec: objio.Client, prefix: str, asynchronous: bool) -> None:
    """trainer.save_checkpoint / ModelCheckpoint with Lightning's own TorchCheckpointIO (its
    _atomic_save writes inside ``with fs.transaction:``), no S3LightningCheckpoint."""
    warnings.filterwarnings("ignore", module="lightning")
    client, root = objio_fsspec, prefix + "plain"
    io_plugin = AsyncCheckpointIO(TorchCheckpointIO()) if asynchronous else TorchCheckpointIO()
    every_epoch = ModelCheckpoint(save_top_k=1, monitor="val_loss", mode="min")
    t = trainer(root, io_plugin, 2, callbacks=[every_epoch])
    t.fit(Tiny(), loader(), loader())
    t.save_checkpoint(root + "/manual.ckpt")
    if asynchronous:
        io_plugin.teardown()                                # waits for the background saves
    ckpts = sorted(k for k in client.list(root + "/") if k.endswith(".ckpt"))
    assert len(ckpts) == 2 and re.search(r"epoch=1-step=8\.ckpt$", ckpts[0])
    assert ckpts[1].endswith("/manual.ckpt")
    assert client.list_multipart_uploads(root + "/") == []

    resumed = Tiny()
    t2 = trainer(root, TorchCheckpointIO(), 3, logger=False)
    t2.fit(resumed, loader(), loader(), ckpt_path=every_epoch.best_model_path)
    assert t2.current_epoch == 3 and t2.global_step == 12
    saved = TorchCheckpointIO().load_checkpoint(every_epoch.best_model_path, weights_only=False)
    assert resumed.start_weights is not None
    assert torch.equal(resumed.start_weights, saved["state_dict"]["layer.weight"])
