"""The face-detection loss: ultralytics' v8DetectionLoss when the extra terms are off, NWD and repulsion when on."""

from __future__ import annotations

import math

import pytest
import torch

# kemotion first: it sets YOLO_OFFLINE etc., which ultralytics reads once, at its first import
# isort: off
from kemotion.lit.detection_loss import FaceDetectionLoss, nwd, repulsion
import ultralytics.cfg
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.loss import v8DetectionLoss
# isort: on

IMAGE = 64  # pixels; strides 8, 16, 32 → 84 anchors, quick on a CPU


def _model() -> DetectionModel:
    torch.manual_seed(0)
    model = DetectionModel("yolov8n.yaml", nc=1, verbose=False)
    model.args = ultralytics.cfg.get_cfg()  # the box / cls / dfl gains v8DetectionLoss reads
    return model.train()


@pytest.fixture(scope="module")
def model() -> DetectionModel:
    return _model()


def _batch(faces: list[list[list[float]]]) -> dict[str, torch.Tensor]:
    """Per image a list of normalised xywh faces → an ultralytics batch (labels only; the loss never reads "img")."""
    idx = [i for i, image in enumerate(faces) for _ in image]
    boxes = [box for image in faces for box in image]
    return {
        "batch_idx": torch.tensor(idx, dtype=torch.float),
        "cls": torch.zeros(len(boxes), 1),
        "bboxes": torch.tensor(boxes, dtype=torch.float).view(-1, 4),
    }


TWO_CLOSE_FACES = [[0.35, 0.5, 0.3, 0.4], [0.6, 0.5, 0.3, 0.4]]  # overlapping (IoU ≈ 0.09), as in a crowd photo
ONE_FACE = [[0.5, 0.5, 0.4, 0.5]]


def _preds(model: DetectionModel, n_images: int = 2) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return model(torch.rand(n_images, 3, IMAGE, IMAGE))


def test_empty_targets_give_only_a_class_term(model):
    loss = FaceDetectionLoss(model, nwd_ratio=0.5, repulsion_weight=1.0)
    model.zero_grad()
    total, items = loss(_preds(model), _batch([[], []]))
    assert torch.isfinite(total) and items.shape == (4,)
    box, cls, dfl, rep = items.tolist()
    assert (box, dfl, rep) == (0.0, 0.0, 0.0)
    assert cls > 0
    total.backward()
    assert model.model[-1].cv3[0][0].conv.weight.grad.abs().sum() > 0  # the class branch learns "no face here"


def test_targets_give_finite_nonnegative_terms_and_gradients_to_the_head(model):
    loss = FaceDetectionLoss(model, nwd_ratio=0.5, repulsion_weight=1.0)
    model.zero_grad()
    total, items = loss(_preds(model), _batch([TWO_CLOSE_FACES, ONE_FACE]))
    assert torch.isfinite(total) and torch.isfinite(items).all()
    assert (items >= 0).all() and items[:3].gt(0).all()
    assert total.item() == pytest.approx(items.sum().item() * 2, rel=1e-6)  # batch of 2, as ultralytics scales it
    total.backward()
    head = model.model[-1]
    assert head.cv2[0][0].conv.weight.grad.abs().sum() > 0  # box branch
    assert head.cv3[0][0].conv.weight.grad.abs().sum() > 0  # class branch
    assert loss.names == ("box", "cls", "dfl", "repulsion")


def test_without_extra_terms_it_is_ultralytics_loss(model):
    preds, batch = _preds(model), _batch([TWO_CLOSE_FACES, ONE_FACE])
    ours, items = FaceDetectionLoss(model)(preds, batch)
    theirs, their_items = v8DetectionLoss(model)(preds, batch)
    assert torch.equal(ours, theirs.sum())  # what ultralytics' trainer backpropagates: loss.sum()
    assert torch.equal(items[:3], torch.stack(list(their_items.values())))
    assert items[3] == 0


def test_nwd_is_blended_into_the_box_term_only(model):
    preds, batch = _preds(model), _batch([TWO_CLOSE_FACES, ONE_FACE])
    plain, half, full = (FaceDetectionLoss(model, nwd_ratio=r)(preds, batch)[1] for r in (0.0, 0.5, 1.0))
    assert full[0] != plain[0]
    assert half[0].item() == pytest.approx((plain[0] + full[0]).item() / 2, rel=1e-5)  # (1-r)·CIoU term + r·NWD term
    assert torch.equal(full[1:], plain[1:])  # class and DFL terms untouched


def test_nwd_of_boxes():
    box = torch.tensor([10.0, 10.0, 14.0, 18.0])
    assert nwd(box, box).item() == pytest.approx(1.0, abs=1e-5)
    assert nwd(torch.tensor([0.0, 0, 2, 2]), torch.tensor([1.0, 0, 3, 2])).item() == pytest.approx(math.exp(-1))
    # centre 1 apart, widths 2 and 4: W₂² = 1 + ((4 - 2) / 2)² = 2
    assert nwd(torch.tensor([0.0, 0, 2, 2]), torch.tensor([0.0, 0, 4, 2])).item() == pytest.approx(math.exp(-(2**0.5)))
    shifts = torch.tensor([0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 30.0])
    moved = box + torch.stack([shifts, shifts * 0, shifts, shifts * 0], 1)
    values = nwd(box.expand_as(moved), moved, constant=1.0)
    assert (values.diff() < 0).all()  # monotone in distance
    assert values[-1] < 1e-6  # far apart → ~0
    assert nwd(box, box + 4, constant=8.0) > nwd(box, box + 4, constant=1.0)  # C sets the distance scale


def test_repulsion_pushes_a_prediction_away_from_the_neighbouring_face():
    faces = torch.tensor([[10.0, 10.0, 30.0, 30.0], [24.0, 10.0, 44.0, 30.0]])  # two faces side by side
    boxes = torch.tensor([[14.0, 10.0, 34.0, 30.0], [23.0, 10.0, 43.0, 30.0]], requires_grad=True)  # face 0's drifts
    value = repulsion(boxes, torch.tensor([0, 1]), faces)
    assert value > 0
    (grad,) = torch.autograd.grad(value, boxes)
    assert grad[0, 2] > 0  # lowering the loss moves face 0's right edge left, away from face 1
    assert grad.abs().sum() > 0
    one_face = repulsion(boxes[:1], torch.tensor([0]), faces[:1])
    assert one_face == 0


def test_repulsion_term_has_a_gradient_with_close_faces_and_is_zero_with_one(model):
    loss = FaceDetectionLoss(model, repulsion_weight=1.0)
    raw = _preds(model, n_images=1)
    preds = {"boxes": raw["boxes"].detach().requires_grad_(), "scores": raw["scores"].detach(), "feats": raw["feats"]}
    close = _batch([TWO_CLOSE_FACES])
    assigned, _, _ = loss.get_assigned_targets_and_loss(preds, close)
    value = loss.repulsion_term(preds, close, *assigned)
    assert value > 0
    (grad,) = torch.autograd.grad(value, preds["boxes"])
    assert grad.abs().sum() > 0  # the original's detached tensors would give no gradient at all
    single = _batch([ONE_FACE])
    assigned, _, _ = loss.get_assigned_targets_and_loss(preds, single)
    assert loss.repulsion_term(preds, single, *assigned) == 0
    assert loss(preds, single)[1][3] == 0


def test_a_few_steps_lower_the_loss():
    model = _model()
    loss = FaceDetectionLoss(model, nwd_ratio=0.2, repulsion_weight=0.1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.937)  # ultralytics lr0, momentum
    torch.manual_seed(2)
    image, batch = torch.rand(1, 3, IMAGE, IMAGE), _batch([TWO_CLOSE_FACES])
    totals = []
    for _ in range(8):
        optimizer.zero_grad()
        total, _ = loss(model(image), batch)
        total.backward()
        optimizer.step()
        totals.append(total.item())
    assert totals[-1] < 0.8 * totals[0]
