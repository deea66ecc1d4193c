"""The WIDER FACE evaluation protocol: hand-made cases with known AP, and a reference implementation's numbers.

The reference: wondervictor/WiderFace-Evaluation (evaluation.py, the Python port of the official toolkit most
face-detection repositories use), run outside this repository on the files `write_case` writes for `fixed_case()`
(its Cython `bbox_overlaps` replaced by the same loop in plain Python, its unused IPython import dropped). It printed
the APs in REFERENCE_AP. The reference does not sort predictions, so the case's are written highest score first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.io import savemat

from kemotion.data.widerface import SUBSETS, WiderTruth
from kemotion.lit.wider_eval import (
    WiderFaceAP,
    evaluate_folder,
    main,
    pixel_iou,
    read_predictions,
    voc_ap,
    wider_ap,
)

EVENTS = ("0--Parade", "1--Handshaking", "2--Demonstration")
# Printed by the reference (evaluation.evaluation(pred, gt) on write_case(fixed_case())), 2026-11-29; it also warned of
# a 0/0 precision at the highest thresholds, where no prediction scores yet, which never reaches the area.
REFERENCE_AP = {"easy": 0.32354562804834947, "medium": 0.34826534502478085, "hard": 0.44892466846488094}


def truth(boxes, kept) -> WiderTruth:
    return WiderTruth(np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(kept, bool).reshape(-1, 3))


ALL = [True, True, True]


def test_one_false_positive_between_two_hits_gives_five_sixths():
    # Faces F1, F2 kept everywhere; P1 (0.9) on F1, P2 (0.5) on nothing, P3 (0.1) on F2. Normalised scores 1, .5, 0:
    # above 0.5 precision 1 at recall 0.5, then 1/2 at 0.5, at t = 0 2/3 at recall 1 → AP = .5·1 + .5·2/3.
    faces = truth([[0, 0, 20, 20], [100, 100, 20, 20]], [ALL, ALL])
    predictions = np.array([[0, 0, 20, 20, 0.9], [300, 300, 20, 20, 0.5], [100, 100, 20, 20, 0.1]])
    assert wider_ap([predictions], [faces]) == pytest.approx({s: 5 / 6 for s in SUBSETS})


def test_a_prediction_on_an_ignored_face_is_neither_tp_nor_fp():
    # F2 is outside the subset: P1 on it leaves the proposals, so only P2 (a hit on F1) counts → AP 1. Were P1 a
    # false positive, precision at full recall would be 1/2 and AP 0.5 — what "hard", which keeps F2, shows.
    faces = truth([[0, 0, 20, 20], [100, 100, 20, 20]], [ALL, [False, False, True]])
    predictions = np.array([[100, 100, 20, 20, 0.9], [0, 0, 20, 20, 0.1]])
    aps = wider_ap([predictions], [faces])
    assert aps == pytest.approx({"easy": 1.0, "medium": 1.0, "hard": 1.0})
    only_one = truth([[0, 0, 20, 20], [500, 500, 20, 20]], [ALL, [False, False, True]])
    assert wider_ap([np.array([[300, 300, 20, 20, 0.9], [0, 0, 20, 20, 0.1]])], [only_one])["easy"] == 0.5


def test_a_second_prediction_on_a_recalled_face_is_a_false_positive():
    faces = truth([[0, 0, 20, 20], [100, 100, 20, 20]], [ALL, ALL])
    predictions = np.array([[0, 0, 20, 20, 0.9], [1, 1, 20, 20, 0.5], [100, 100, 20, 20, 0.1]])
    assert wider_ap([predictions], [faces])["hard"] == pytest.approx(5 / 6)


def test_iou_is_pixel_inclusive():
    # A 10×10-pixel face (x 0..9) and the prediction over its top half: 50 / 100 inclusive (0.5, a match), where
    # the exclusive areas would give 36 / 81.
    assert pixel_iou(np.array([[0.0, 0, 9, 4]]), np.array([[0.0, 0, 9, 9]]))[0, 0] == pytest.approx(0.5)
    faces = truth([[0, 0, 9, 9]], [ALL])
    assert wider_ap([np.array([[0, 0, 9, 4, 0.8], [200, 200, 9, 9, 0.2]])], [faces])["easy"] == 1.0


def test_images_without_faces_or_predictions_do_not_count_their_predictions_but_do_count_faces():
    faces = truth([[0, 0, 20, 20]], [ALL])
    empty = truth(np.zeros((0, 4)), np.zeros((0, 3)))
    hit = np.array([[0, 0, 20, 20, 0.9]])
    stray = np.array([[50, 50, 20, 20, 0.95], [60, 60, 20, 20, 0.1]])  # on an image without faces: skipped
    assert wider_ap([hit, stray], [faces, empty])["easy"] == 1.0
    missed = wider_ap([hit, np.zeros((0, 5))], [faces, faces])  # the second face has no prediction: recall ≤ 1/2
    assert missed["easy"] == pytest.approx(0.5)


def test_voc_ap_takes_the_running_maximum_of_precision():
    assert voc_ap(np.array([0.5, 0.5, 1.0]), np.array([0.5, 1.0, 0.25])) == pytest.approx(0.5 + 0.5 * 0.25)


# --- the reference's numbers on a fixed case --------------------------------------------------------------------
def fixed_case() -> tuple[dict[tuple[str, str], WiderTruth], dict[tuple[str, str], np.ndarray]]:
    """18 images over 3 events: 0-7 faces (some ignored per subset), jittered hits, duplicates, strays, an image
    without faces and one without predictions. Scores span 0.2-3.0, so the min-max normalisation matters."""
    rng = np.random.default_rng(14)
    truths, predictions = {}, {}
    for i in range(18):
        event, name = EVENTS[i % 3], f"{i % 3}_case_{i}"
        n = 0 if i == 4 else int(rng.integers(1, 8))
        xy = rng.uniform(0, 900, (n, 2)).round()
        wh = np.exp(rng.uniform(np.log(6), np.log(200), (n, 2))).round()
        boxes = np.concatenate([xy, wh], axis=1)
        hard = rng.uniform(size=n) < 0.85
        medium = hard & (wh[:, 1] >= 15)
        easy = medium & (wh[:, 1] >= 40)
        truths[(event, name)] = WiderTruth(boxes, np.stack([easy, medium, hard], axis=1))
        rows = []
        if i != 7:
            for box in boxes:
                if rng.uniform() < 0.8:
                    jitter = rng.normal(0, 0.12, 4) * np.r_[box[2:], box[2:]]
                    rows.append([*(box + jitter).round(1), rng.uniform(0.2, 3.0)])
                if rng.uniform() < 0.15:
                    rows.append([*box, rng.uniform(0.2, 3.0)])
            for _ in range(int(rng.integers(0, 4))):
                rows.append([*rng.uniform(0, 900, 2).round(1), *rng.uniform(8, 80, 2).round(1),
                             rng.uniform(0.2, 3.0)])
        rows = np.array(rows, np.float64).reshape(-1, 5).round(4)
        predictions[(event, name)] = rows[np.argsort(-rows[:, 4], kind="stable")]
    return truths, predictions


def write_case(directory: Path, truths: dict, predictions: dict) -> tuple[Path, Path]:
    """The toolkit's files: `gt/wider_face_val.mat`, `gt/wider_{easy,medium,hard}_val.mat`, `pred/<event>/<name>.txt`.
    """
    gt, pred = directory / "gt", directory / "pred"
    gt.mkdir(parents=True)

    def cells(make) -> np.ndarray:
        outer = np.empty((len(EVENTS), 1), dtype=object)
        for e, event in enumerate(EVENTS):
            names = [name for ev, name in truths if ev == event]
            inner = np.empty((len(names), 1), dtype=object)
            for j, name in enumerate(names):
                inner[j, 0] = make(event, name)
            outer[e, 0] = inner
        return outer

    events = np.empty((len(EVENTS), 1), dtype=object)
    events[:, 0] = EVENTS
    base = {"event_list": events, "file_list": cells(lambda e, n: n),
            "face_bbx_list": cells(lambda e, n: truths[(e, n)].boxes.astype(np.int32))}
    savemat(gt / "wider_face_val.mat", base)
    for s, subset in enumerate(SUBSETS):
        kept = cells(lambda e, n, s=s: (np.flatnonzero(truths[(e, n)].kept[:, s]) + 1).astype(np.uint8).reshape(-1, 1))
        savemat(gt / f"wider_{subset}_val.mat", {**base, "gt_list": kept})
    for (event, name), rows in predictions.items():
        (pred / event).mkdir(parents=True, exist_ok=True)
        lines = [name, str(len(rows))] + [" ".join(repr(float(v)) for v in row) for row in rows]
        (pred / event / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return pred, gt


def test_the_fixed_case_matches_the_reference_implementation():
    truths, predictions = fixed_case()
    keys = list(truths)
    aps = wider_ap([predictions[k] for k in keys], [truths[k] for k in keys])
    assert aps == pytest.approx(REFERENCE_AP, abs=1e-12)


def test_the_toolkit_files_give_the_same_numbers(tmp_path):
    truths, predictions = fixed_case()
    pred, gt = write_case(tmp_path, truths, predictions)
    assert read_predictions(pred).keys() == predictions.keys()
    assert evaluate_folder(pred, gt) == pytest.approx(REFERENCE_AP, abs=1e-12)


def test_the_command_line_prints_the_three_aps(tmp_path, capsys):
    pred, gt = write_case(tmp_path, *fixed_case())
    main(["--pred", str(pred), "--gt", str(gt)])
    assert capsys.readouterr().out.splitlines() == ["easy   val AP: 0.3235", "medium val AP: 0.3483",
                                                    "hard   val AP: 0.4489"]


def test_the_metric_accumulates_batches_like_one_call():
    truths, predictions = fixed_case()
    metric = WiderFaceAP()
    keys = list(truths)
    for start in range(0, len(keys), 5):  # boxes arrive as x1 y1 x2 y2 score, a batch at a time
        chunk = keys[start:start + 5]
        metric.update([torch.tensor(np.c_[predictions[k][:, :2], predictions[k][:, :2] + predictions[k][:, 2:4],
                                          predictions[k][:, 4]]) for k in chunk], [truths[k] for k in chunk])
    assert {k: float(v) for k, v in metric.compute().items()} == pytest.approx(REFERENCE_AP, abs=1e-9)
