"""One network that finds the face and reads its emotion (the paper's §5, first direction): the face detector
(`kemotion.lit.detector.FaceDetector`, any `detector=`) with one class per emotion.

It is scored twice:
- as a detector: mAP@0.5:0.95 and mAP@0.5 over the emotion classes (`test/map`, `test/map50`) and per class
  (`test/map_<class>`, `test/map50_<class>`), torchmetrics as for the face detector;
- as a Table 5 classifier, one answer per image: the class of its most confident face at or above `face_conf`
  against the image's label (`val/acc`, `test/acc`, `test/acc_macro`, `test/acc_<class>`, the confusion matrix). An
  image with no face that confident is wrong, and counted (`test/no_face`). The accuracies come from torchmetrics
  over 8 classes, the 8th being "no face": it is never a label, so the micro accuracy is correct / images and a
  class's accuracy its correct / its images; the macro accuracy is the mean of the 7 classes'.
"""

from __future__ import annotations

import logging

import torch
from torchmetrics import MaxMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from kemotion.core.emotions import EMOTIONS, NUM_CLASSES
from kemotion.lit.classifier import log_test_scores
from kemotion.lit.detection_metrics import face_map, targets_from_batch
from kemotion.lit.detector import FaceDetector

log = logging.getLogger(__name__)

NO_FACE = NUM_CLASSES  # the prediction for an image without a face at or above face_conf


def most_confident_emotion(detections: list[dict[str, torch.Tensor]], face_conf: float) -> torch.Tensor:
    """One prediction per image: the class of its highest-scoring detection if that score is ≥ face_conf, else
    NO_FACE. `detections` as `postprocess` gives them (per image "scores" (n,), "labels" (n,))."""
    predictions = [int(d["labels"][d["scores"].argmax()]) if len(d["scores"]) and d["scores"].max() >= face_conf
                   else NO_FACE for d in detections]
    device = detections[0]["scores"].device if detections else None
    return torch.tensor(predictions, dtype=torch.long, device=device)


class EmotionDetector(FaceDetector):
    def __init__(self, net: torch.nn.Module, optimizer, face_conf: float = 0.25, **detector_options) -> None:
        """`face_conf`: the lowest score that counts as a face when the model answers as a classifier (the yolo
        cropper's `conf`); `detector_options`: FaceDetector's."""
        super().__init__(net, optimizer, **detector_options)  # its save_hyperparameters records face_conf too
        with_no_face = NUM_CLASSES + 1
        self.val_acc = MulticlassAccuracy(num_classes=with_no_face, average="micro")
        self.val_acc_best = MaxMetric()
        self.test_acc = MulticlassAccuracy(num_classes=with_no_face, average="micro")
        self.test_acc_per_class = MulticlassAccuracy(num_classes=with_no_face, average=None)
        self.test_confusion = MulticlassConfusionMatrix(num_classes=with_no_face)
        self.test_map = face_map(class_metrics=True)
        self.test_map50 = face_map(iou_thresholds=[0.5], class_metrics=True)
        self.test_results: dict[str, object] = {}

    def on_train_start(self) -> None:
        self.val_acc_best.reset()  # the sanity-check validation must not count as a best

    def _update_map(self, metric, decoded: torch.Tensor, batch: dict, wider) -> list[dict[str, torch.Tensor]]:
        """The detector's mAP, then the same detections scored as a classifier's answers."""
        predictions = super()._update_map(metric, decoded, batch, wider)
        emotions = most_confident_emotion(predictions, self.hparams.face_conf)
        if self.trainer.testing:
            self.test_map50.update(predictions, targets_from_batch(batch, batch["img"].shape[-1]))
            for score in (self.test_acc, self.test_acc_per_class, self.test_confusion):
                score.update(emotions, batch["label"])
        else:
            self.val_acc.update(emotions, batch["label"])
        return predictions

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        accuracy = self.val_acc.compute()
        self.val_acc_best(accuracy)
        self.log("val/acc", accuracy, prog_bar=True)
        self.log("val/acc_best", self.val_acc_best.compute())
        self.val_acc.reset()

    def on_test_epoch_end(self) -> None:
        per_class_map = _per_class(self.test_map.compute())  # before the FaceDetector logs and resets it
        per_class_map50 = _per_class(self.test_map50.compute())
        super().on_test_epoch_end()
        for emotion, value, value50 in zip(EMOTIONS, per_class_map, per_class_map50, strict=True):
            self.log(f"test/map_{emotion.english}", value)
            self.log(f"test/map50_{emotion.english}", value50)
        confusion = self.test_confusion.compute()
        per_class = self.test_acc_per_class.compute()[:NUM_CLASSES]
        no_face = int(confusion[:, NO_FACE].sum())
        self.log("test/no_face", float(no_face))
        log.info("One-stage test: %d of %d images without a face at confidence %.2f (counted wrong)",
                 no_face, int(confusion.sum()), self.hparams.face_conf)
        self.test_results = log_test_scores(self, self.test_acc.compute(), per_class.mean(), per_class,
                                            confusion[:NUM_CLASSES, :NUM_CLASSES])
        for score in (self.test_acc, self.test_acc_per_class, self.test_confusion, self.test_map50):
            score.reset()


def _per_class(results: dict[str, torch.Tensor]) -> torch.Tensor:
    """torchmetrics' `map_per_class`, listed for the classes it saw (`classes`) → one value per emotion; -1 for a
    class without test boxes (torchmetrics' value), NaN for one neither in the boxes nor the detections."""
    values = torch.full((NUM_CLASSES,), float("nan"))
    classes = results["classes"].reshape(-1).long().cpu()
    values[classes] = results["map_per_class"].reshape(-1).float().cpu()
    return values
