"""The classifier LightningModule: its metrics equal what the predictions say, the confusion matrix is saved."""

from __future__ import annotations

from functools import partial

import lightning as L
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from kemotion.lit.classifier import EmotionClassifier


class ReadsItsAnswer(nn.Module):
    """A 'network' that predicts the class written in pixel (0, 0, 0): predictions are known exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(images[:, 0, 0, 0].long(), 7).float() * 10 * self.scale


def _loader(predicted: list[int], true: list[int]) -> DataLoader:
    images = torch.zeros(len(true), 3, 8, 8)
    images[:, 0, 0, 0] = torch.tensor(predicted, dtype=torch.float)
    return DataLoader(TensorDataset(images, torch.tensor(true)), batch_size=4)


def test_test_metrics_and_confusion_matrix(tmp_path):
    true = [0, 0, 1, 1, 2, 3, 4, 5, 6, 6]
    predicted = [0, 1, 1, 1, 2, 3, 4, 6, 6, 6]  # 8 of 10 right; class 0 half right, class 5 wrong
    module = EmotionClassifier(ReadsItsAnswer(), partial(torch.optim.Adam, lr=1e-3), input_size=8)
    trainer = L.Trainer(accelerator="cpu", logger=False, default_root_dir=tmp_path, enable_progress_bar=False)
    (result,) = trainer.test(module, dataloaders=_loader(predicted, true))
    assert result["test/acc"] == pytest.approx(0.8)
    assert result["test/acc_macro"] == pytest.approx((0.5 + 1 + 1 + 1 + 1 + 0 + 1) / 7)
    assert result["test/acc_hurt"] == 0 and result["test/acc_happy"] == pytest.approx(0.5)
    confusion = pd.read_csv(tmp_path / "confusion_matrix_test.csv", index_col=0)
    assert confusion.to_numpy().sum() == 10
    assert confusion.loc["happy 기쁨", "angry"] == 1 and confusion.loc["hurt 상처", "neutral"] == 1
    assert (tmp_path / "confusion_matrix_test.png").stat().st_size > 10_000


def test_training_lowers_the_loss_and_tracks_the_best_validation_accuracy(tmp_path):
    torch.manual_seed(0)
    images = torch.randn(64, 3, 16, 16)
    labels = torch.randint(0, 7, (64,))
    images[torch.arange(64), labels % 3, 0, 0] += 5  # learnable
    data = DataLoader(TensorDataset(images, labels), batch_size=16, shuffle=True)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 7))
    module = EmotionClassifier(net, partial(torch.optim.Adam, lr=1e-2), input_size=16)
    trainer = L.Trainer(accelerator="cpu", max_epochs=8, logger=False, enable_checkpointing=False,
                        default_root_dir=tmp_path, enable_progress_bar=False)
    first_loss = module.criterion(net(images), labels).item()
    trainer.fit(module, data, data)
    assert trainer.callback_metrics["train/loss_epoch"] < first_loss / 2
    assert trainer.callback_metrics["val/acc_best"] >= trainer.callback_metrics["val/acc"]
    assert trainer.callback_metrics["val/acc_best"] > 0.9


def test_the_optimizer_comes_from_the_config_partial():
    module = EmotionClassifier(nn.Linear(2, 7), partial(torch.optim.Adam, lr=0.123, weight_decay=0.01))
    optimizer = module.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam)
    assert optimizer.param_groups[0]["lr"] == 0.123 and optimizer.param_groups[0]["weight_decay"] == 0.01
    assert "optimizer" not in module.hparams  # checkpoints stay loadable with weights_only=True


def test_soft_targets_train_on_the_distribution_and_score_against_its_top_vote():
    module = EmotionClassifier(ReadsItsAnswer(), partial(torch.optim.Adam, lr=1e-3), input_size=8)
    images = torch.zeros(2, 3, 8, 8)
    images[:, 0, 0, 0] = torch.tensor([1.0, 2.0])  # predicts classes 1 and 2
    soft = torch.tensor([[0, 0.75, 0.25, 0, 0, 0, 0], [0, 0, 0.5, 0.5, 0, 0, 0]])
    loss, preds, labels = module.model_step((images, soft))
    logits = module(images)
    expected = -(soft * logits.log_softmax(dim=1)).sum(dim=1).mean()  # cross-entropy against the distribution
    assert loss.item() == pytest.approx(expected.item())
    assert labels.tolist() == [1, 2] and preds.tolist() == [1, 2]
    hard_loss, _, hard = module.model_step((images, torch.tensor([1, 2])))
    assert hard.tolist() == [1, 2] and hard_loss.item() < loss.item()  # one-hot targets the net already hits
