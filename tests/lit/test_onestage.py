"""The one-stage emotion detector answers as a classifier with the most confident face of each image."""

from __future__ import annotations

import json
from functools import partial

import lightning as L
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

import kemotion  # noqa: F401  (before ultralytics: offline settings)
from kemotion.core.emotions import EMOTIONS, NUM_CLASSES
from kemotion.datamodules.onestage import collate
from kemotion.engine.training import train
from kemotion.lit.onestage import NO_FACE, EmotionDetector, most_confident_emotion
from tests.conftest import compose_config

SIZE = 64
# Three test images: (label, the annotated face box, the faces the network "finds": (box xyxy, class, score)).
#  0: a face of the right class (5) is the most confident, a wrong one (2) comes first   → right
#  1: a face of the right class (1) is found, but a wrong one (3) is more confident     → wrong
#  2: faces, all below face_conf                                                        → no face, wrong
SCENES = [
    (5, (36, 36, 60, 60), [((4, 4, 20, 20), 2, 0.6), ((36, 36, 60, 60), 5, 0.9)]),
    (1, (4, 4, 20, 20), [((4, 4, 20, 20), 1, 0.5), ((36, 36, 60, 60), 3, 0.8)]),
    (0, (4, 4, 20, 20), [((4, 4, 20, 20), 0, 0.1), ((36, 36, 60, 60), 4, 0.2)]),
]


class FixedDetections(nn.Module):
    """A stand-in network: per image, the Detect head's eval output (4 + nc, anchors) holding SCENES' faces."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))
        anchors = 8
        self.outputs = torch.zeros(len(SCENES), 4 + NUM_CLASSES, anchors)
        for image, (_, _, faces) in enumerate(SCENES):
            for anchor, ((x1, y1, x2, y2), label, score) in enumerate(faces):
                self.outputs[image, :4, anchor] = torch.tensor([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])
                self.outputs[image, 4 + label, anchor] = score

    def forward(self, images: torch.Tensor):
        return self.outputs[: len(images)] + self.weight, None


def batches() -> DataLoader:
    items = [{"img": torch.zeros(3, SIZE, SIZE, dtype=torch.uint8), "label": label, "filename": f"{i}.jpg",
              "boxes": torch.tensor([box], dtype=torch.float32)}
             for i, (label, box, _) in enumerate(SCENES)]
    return DataLoader(items, batch_size=len(items), collate_fn=collate)


def test_most_confident_emotion_takes_the_highest_score_at_or_above_face_conf():
    detections = [{"scores": torch.tensor([0.3, 0.9, 0.5]), "labels": torch.tensor([1, 4, 6])},
                  {"scores": torch.tensor([0.2, 0.1]), "labels": torch.tensor([2, 3])},
                  {"scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.long)}]
    assert most_confident_emotion(detections, face_conf=0.25).tolist() == [4, NO_FACE, NO_FACE]
    assert most_confident_emotion(detections, face_conf=0.2).tolist() == [4, 2, NO_FACE]


def test_test_accuracy_counts_the_most_confident_face_and_no_face_as_wrong(tmp_path):
    module = EmotionDetector(FixedDetections(), partial(torch.optim.AdamW, lr=0.001), face_conf=0.25)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path)
    (metrics,) = trainer.test(module, batches())
    assert metrics["test/acc"] == pytest.approx(1 / 3)
    assert metrics["test/no_face"] == 1
    assert metrics[f"test/acc_{EMOTIONS[5].english}"] == 1 and metrics[f"test/acc_{EMOTIONS[1].english}"] == 0
    confusion = module.test_results["confusion"]
    assert confusion.shape == (NUM_CLASSES, NUM_CLASSES)
    assert confusion[5, 5] == 1 and confusion[1, 3] == 1 and confusion.sum() == 2  # the faceless image: no column
    written = pd.read_csv(tmp_path / "confusion_matrix_test.csv", index_col=0)
    assert written.to_numpy().sum() == 2
    # mAP per class, from the same detections: class 5's one box found at IoU 1, class 1's found below a wrong class
    assert metrics[f"test/map50_{EMOTIONS[5].english}"] == pytest.approx(1.0)


@pytest.mark.slow
@pytest.mark.parametrize("detector", ["yolo_facev2", "yolov8n"])
def test_onestage_emotion_trains_and_records_a_table5_row(tmp_path, detector):
    cfg = compose_config(tmp_path, ["+experiment=onestage_emotion", f"detector={detector}", "debug=tiny",
                                    "trainer.max_epochs=1", "data.detector.image_size=64"])
    metrics, best = train(cfg)
    assert best and "val_acc" in best
    record = json.loads((tmp_path / "run" / "result.json").read_text())
    assert record["cell"] == {"preprocess": "onestage", "model": detector, "split": "random", "seed": cfg.seed}
    (manifest,) = (tmp_path / ".cache" / "manifests").glob("*/classification.csv")
    n_test = int((pd.read_csv(manifest)["split"] == "test").sum())
    # every test image of the Table 5 cells is answered: with a face (the confusion matrix) or without one
    assert sum(map(sum, record["confusion"])) + metrics["test/no_face"] == n_test
    assert 0 <= metrics["test/acc"] <= 1 and 0 <= metrics["test/map50"] <= 1
    assert {f"test/map50_{e.english}" for e in EMOTIONS} <= metrics.keys()
