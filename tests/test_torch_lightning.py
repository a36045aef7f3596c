"""objio.torch.lightning.S3LightningCheckpoint with a real Lightning Trainer on LocalS3Server."""

from __future__ import annotations

import inspect
import re
import warnings
from typing import Any

import pytest

torch = pytest.importorskip("torch")
L = pytest.importorskip("lightning")
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from lightning.pytorch.plugins.io import AsyncCheckpointIO  # noqa: E402

import objio  # noqa: E402
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


def test_bad_paths(s3_server: Any, prefix: str) -> None:
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
