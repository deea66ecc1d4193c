"""The face detector's loss: ultralytics' v8DetectionLoss plus the two YOLO-FaceV2 terms, each off by default.

ultralytics does the work it already does well — task-aligned assignment (TAL), CIoU + DFL box terms, BCE class
term and their gains (`model.args.box/cls/dfl`). On top, following YOLO-FaceV2 (Yu et al. 2022,
github.com/Krasjet-Yu/YOLO-FaceV2, `utils/loss.py`):

- **NWD** (normalised Gaussian Wasserstein distance, Wang et al. 2021, arXiv:2110.13389) blended into the IoU box term,
  `(1 - r)·(1 - CIoU) + r·(1 - NWD)`, weighted and normalised exactly like ultralytics' `BboxLoss` weighs `1 - CIoU`.
  The original hard-codes r = 0.2 (`lbox += 0.8 * (1.0 - iou).mean() + 0.2 * (1.0 - nwd).mean()`).
- **Repulsion** (Wang et al., CVPR 2018, "Repulsion Loss: Detecting Pedestrians in a Crowd"): RepGT pushes a positive
  prediction away from the most-overlapping *other* face, RepBox pushes apart predictions assigned to different
  faces. The original computes both on `.detach()`ed boxes (`utils/RepulsionLoss.py`), so they add to the logged
  loss but never to the gradient; here they are computed on the live predicted boxes.

Scale: the total is `(gain-weighted terms × batch size).sum()`, the same number ultralytics' trainer calls
`.backward()` on (`self.loss = loss.sum()` of the criterion's `loss * batch_size`), so its hyper-parameters (lr0 0.01
SGD, weight decay scaled by batch / nbs) mean the same thing here. The loss items are the per-term values before
the batch-size factor, as ultralytics logs them.
"""

from __future__ import annotations

from typing import Any

import torch
from ultralytics.utils.loss import BboxLoss, v8DetectionLoss
from ultralytics.utils.metrics import box_iou

NWD_CONSTANT = 1.0  # YOLO-FaceV2 data/hyp.scratch.yaml `c: 1.0`, in grid cells: both code bases regress boxes in
# units of the feature-map stride, so the original's constant carries over unchanged
REPBOX_RATIO = 10.0  # YOLO-FaceV2 hyp: RepGT gain `alpha: 0.01`, RepBox gain `beta: 0.1`
REPULSION_IOU = 0.1  # YOLO-FaceV2 hyp `Rp_nms: 0.1`: RepGT acts on a prediction overlapping another face beyond it
SMOOTH_LN_SIGMA = 0.5  # YOLO-FaceV2 hyp `deta: 0.5`, the σ of the repulsion paper's Smooth_ln


def nwd(box1: torch.Tensor, box2: torch.Tensor, constant: float = NWD_CONSTANT) -> torch.Tensor:
    """Paired xyxy boxes (..., 4) → NWD (...): exp(-W₂ / C), boxes read as Gaussians N(centre, diag(w²/4, h²/4)).

    W₂² = ‖centre₁ - centre₂‖² + ((w₁ - w₂)/2)² + ((h₁ - h₂)/2)², the original's `Wasserstein()`. Equal boxes → 1
    (to 1e-6).
    """
    (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = box1.unbind(-1), box2.unbind(-1)
    centre = ((ax1 + ax2 - bx1 - bx2) / 2).pow(2) + ((ay1 + ay2 - by1 - by2) / 2).pow(2)
    shape = ((ax2 - ax1 - bx2 + bx1) / 2).pow(2) + ((ay2 - ay1 - by2 + by1) / 2).pow(2)
    # the clamp keeps the square root's gradient finite when the boxes coincide
    return torch.exp(-(centre + shape).clamp(min=1e-12).sqrt() / constant)


def smooth_ln(x: torch.Tensor, sigma: float = SMOOTH_LN_SIGMA) -> torch.Tensor:
    """The repulsion paper's Smooth_ln of an overlap x in [0, 1]: -ln(1 - x) up to σ, then linear."""
    # clamping the log branch keeps its (unused) gradient finite at x = 1, where where() would multiply 0 by inf
    linear = (x - sigma) / (1 - sigma) - torch.log1p(-x.new_tensor(sigma))
    return torch.where(x <= sigma, -torch.log1p(-x.clamp(max=sigma)), linear)


def intersection_over_gt(gt: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """Paired xyxy boxes (n, 4) → IoG (n,): the share of the face covered by the prediction (RepGT's overlap)."""
    wh = (torch.minimum(gt[:, 2:], pred[:, 2:]) - torch.maximum(gt[:, :2], pred[:, :2])).clamp(min=0)
    return wh[:, 0] * wh[:, 1] / ((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])).clamp(min=1e-6)


def repulsion(
    boxes: torch.Tensor,
    own: torch.Tensor,
    faces: torch.Tensor,
    repbox_ratio: float = REPBOX_RATIO,
    iou_threshold: float = REPULSION_IOU,
    sigma: float = SMOOTH_LN_SIGMA,
) -> torch.Tensor:
    """RepGT + repbox_ratio·RepBox of one image, differentiable in `boxes`.

    boxes (n, 4): positive predictions, xyxy; own (n,): index of each one's assigned face in faces (m, 4), xyxy.
    Faces with the same coordinates count as one face, as in the original. RepGT: for each prediction whose largest
    IoU with another face exceeds iou_threshold, Smooth_ln(IoG) with that face, averaged over those predictions.
    RepBox: Smooth_ln(IoU) over pairs of predictions assigned to different faces, divided by the number of pairs
    that overlap (the paper's normaliser; the original averages over all n² pairs, zeros included).
    """
    own_faces = faces[own]
    with torch.no_grad():  # choosing who repels whom is not differentiable; the overlaps below are
        other = ~(own_faces[:, None] == faces[None]).all(-1)  # (n, m)
        iou = box_iou(boxes, faces).masked_fill(~other, 0)
        best_iou, best = iou.max(1)
        near = best_iou > iou_threshold
        different = ~(own_faces[:, None] == own_faces[None]).all(-1)  # (n, n)
        pairs = torch.triu(different, diagonal=1)
    rep_gt = smooth_ln(intersection_over_gt(faces[best[near]], boxes[near]), sigma).mean() if near.any() else 0.0
    overlaps = box_iou(boxes, boxes)[pairs]
    rep_box = smooth_ln(overlaps, sigma).sum() / (overlaps.detach() > 0).sum().clamp(min=1)
    return rep_gt + repbox_ratio * rep_box


class NWDBboxLoss(BboxLoss):
    """ultralytics' BboxLoss with NWD blended into its IoU term: (1 - r)·(1 - CIoU) + r·(1 - NWD), same weights."""

    def __init__(self, reg_max: int = 16, nwd_ratio: float = 0.0, nwd_constant: float = NWD_CONSTANT) -> None:
        super().__init__(reg_max)
        self.nwd_ratio, self.nwd_constant = nwd_ratio, nwd_constant

    def forward(
        self,
        pred_dist: torch.Tensor,
        pred_bboxes: torch.Tensor,
        anchor_points: torch.Tensor,
        target_bboxes: torch.Tensor,
        target_scores: torch.Tensor,
        target_scores_sum: torch.Tensor,
        fg_mask: torch.Tensor,
        *args: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        loss_iou, loss_dfl = super().forward(
            pred_dist, pred_bboxes, anchor_points, target_bboxes, target_scores, target_scores_sum, fg_mask, *args
        )
        if not self.nwd_ratio:
            return loss_iou, loss_dfl
        fg = fg_mask.nonzero(as_tuple=True)
        weight = target_scores[fg].sum(-1)
        # boxes arrive in grid cells of their level (pixels / stride), the unit the original's C is given in
        loss_nwd = ((1.0 - nwd(pred_bboxes[fg], target_bboxes[fg], self.nwd_constant)) * weight).sum()
        return (1 - self.nwd_ratio) * loss_iou + self.nwd_ratio * loss_nwd / target_scores_sum, loss_dfl


class FaceDetectionLoss(v8DetectionLoss):
    """v8DetectionLoss (TAL, CIoU + DFL, BCE) with optional NWD in the box term and a differentiable repulsion term.

    Call with the model's output (training dict, or the eval `(y, dict)` tuple) and an ultralytics batch: "batch_idx"
    (N,), "cls" (N, 1), "bboxes" (N, 4) normalised xywh; the image size is read from the feature maps, so "img" is
    not needed. Returns `(total, items)`: total the scalar to `.backward()`, scaled like ultralytics' trainer
    (terms × batch size, summed); items the detached (4,) gain-weighted terms in the order of `names`.
    The model needs `model.args` with the gains `box`, `cls`, `dfl` (e.g. `ultralytics.cfg.get_cfg()`).
    """

    names = ("box", "cls", "dfl", "repulsion")

    def __init__(
        self,
        model: torch.nn.Module,
        nwd_ratio: float = 0.0,
        nwd_constant: float = NWD_CONSTANT,
        repulsion_weight: float = 0.0,
        repbox_ratio: float = REPBOX_RATIO,
        repulsion_iou: float = REPULSION_IOU,
        smooth_ln_sigma: float = SMOOTH_LN_SIGMA,
        tal_topk: int = 10,
    ) -> None:
        super().__init__(model, tal_topk=tal_topk)
        self.bbox_loss = NWDBboxLoss(self.reg_max, nwd_ratio, nwd_constant).to(self.device)
        self.repulsion_weight, self.repbox_ratio = repulsion_weight, repbox_ratio
        self.repulsion_iou, self.smooth_ln_sigma = repulsion_iou, smooth_ln_sigma

    def loss(self, preds: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        batch_size = preds["boxes"].shape[0]
        assigned, loss, _ = self.get_assigned_targets_and_loss(preds, batch)
        rep = self.repulsion_term(preds, batch, *assigned) * self.repulsion_weight if self.repulsion_weight else 0.0
        loss = torch.cat((loss, loss.new_tensor([0.0]) + rep))
        return (loss * batch_size).sum(), loss.detach()

    def repulsion_term(
        self,
        preds: dict[str, torch.Tensor],
        batch: dict[str, torch.Tensor],
        fg_mask: torch.Tensor,
        target_gt_idx: torch.Tensor,
        target_bboxes: torch.Tensor,
        anchor_points: torch.Tensor,
        stride_tensor: torch.Tensor,
    ) -> torch.Tensor:
        """Repulsion averaged over the images with a positive anchor (as the original does), 0 when there are none."""
        if not fg_mask.any():
            return preds["boxes"].new_zeros(())
        # decoded again (get_assigned_targets_and_loss keeps its decoded boxes to itself), in pixels like the faces
        boxes = self.bbox_decode(anchor_points, preds["boxes"].permute(0, 2, 1)) * stride_tensor
        imgsz = torch.tensor(preds["feats"][0].shape[2:], device=self.device, dtype=boxes.dtype) * self.stride[0]
        targets = torch.cat((batch["batch_idx"].view(-1, 1), batch["cls"].view(-1, 1), batch["bboxes"]), 1)
        targets = self.preprocess(targets.to(self.device), batch_size=len(boxes), scale_tensor=imgsz[[1, 0, 1, 0]])
        faces = targets[..., 1:]  # (b, max faces, 4) xyxy pixels, zero-padded
        per_image = [
            repulsion(
                boxes[i, fg],
                target_gt_idx[i, fg].long(),
                faces[i],
                self.repbox_ratio,
                self.repulsion_iou,
                self.smooth_ln_sigma,
            )
            for i, fg in enumerate(fg_mask)
            if fg.any()
        ]
        return torch.stack(per_image).mean()
