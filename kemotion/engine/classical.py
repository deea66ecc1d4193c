"""A classical Table 5 cell (`model=hog_svm`): fitted on the same crop cache and split as the deep cells, with no
Lightning trainer, and recorded the same way, so `python -m kemotion.report` puts it in the same table.

`kemotion.engine.training` hands a run here when its `module` is a classical model rather than a LightningModule. The
run folder gets what a deep cell's does: `run.json` when it starts, `confusion_matrix_test.{csv,png}`, the fitted model
(`checkpoints/hog_svm.npz`, the run's best checkpoint) and `result.json` with `val/acc_best`, `test/acc`,
`test/acc_macro` and `test/acc_<class>`; `validation.csv` lists the C grid's validation accuracies.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_confusion_matrix

from kemotion.core.confusion import confusion_frame, save_confusion
from kemotion.core.emotions import EMOTIONS, NUM_CLASSES
from kemotion.models.hog_svm import HogSvm
from kemotion.preprocess.cache import read_crop

log = logging.getLogger(__name__)

CLASSICAL_MODELS = (HogSvm,)
CHECKPOINT = "checkpoints/hog_svm.npz"


def fit_and_test(model: HogSvm, datamodule, output_dir: Path) -> tuple[dict[str, float], str, torch.Tensor]:
    """Fit `model` on the data module's train crops, choosing C on its val crops, and score it on its test crops:
    (metrics named as a deep cell's, the saved model's path, the (7, 7) test confusion matrix)."""
    datamodule.prepare_data()
    datamodule.setup("fit")
    table = datamodule.table
    features, labels = {}, {}
    for split in ("train", "val", "test"):
        rows = table[table["split"] == split]
        features[split] = model.features([read_crop(path) for path in rows["crop_path"]])
        labels[split] = rows["label"].to_numpy(dtype=np.int64)
        log.info("HOG features of the %s split: %s", split, features[split].shape)
    model.fit(features["train"], labels["train"], features["val"], labels["val"])
    pd.Series(model.validation, name="val_acc").rename_axis("C").to_csv(output_dir / "validation.csv")

    predicted = torch.as_tensor(model.predict(features["test"]))
    truth = torch.as_tensor(labels["test"])
    per_class = multiclass_accuracy(predicted, truth, NUM_CLASSES, average=None)
    metrics = {"val/acc": model.validation[model.c], "val/acc_best": model.validation[model.c], "svm/C": model.c,
               "test/acc": float(multiclass_accuracy(predicted, truth, NUM_CLASSES, average="micro")),
               "test/acc_macro": float(multiclass_accuracy(predicted, truth, NUM_CLASSES, average="macro")),
               **{f"test/acc_{e.english}": float(v) for e, v in zip(EMOTIONS, per_class, strict=True)}}
    confusion = multiclass_confusion_matrix(predicted, truth, NUM_CLASSES)
    log.info("HOG + linear SVM (C=%g): test accuracy %.4f (macro %.4f)\n%s", model.c, metrics["test/acc"],
             metrics["test/acc_macro"], confusion_frame(confusion).to_string())
    save_confusion(confusion, output_dir / "confusion_matrix_test")
    return metrics, str(model.save(output_dir / CHECKPOINT)), confusion
