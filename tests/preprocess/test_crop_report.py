"""The crop report's scale: how much of the crop the annotated face fills, per cropper."""

from __future__ import annotations

import pandas as pd
import pytest

from kemotion.preprocess import crop_report


def frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame({"filename": [f"{i}.jpg" for i in range(rows)], "split": "train", "label": 0,
                         "width": 640, "height": 360, "box_x1": 100.0, "box_y1": 50.0, "box_x2": 180.0,
                         "box_y2": 150.0})  # an 80 × 100 face box


def test_face_share_is_the_box_side_over_the_cut_square_or_over_the_resized_frame():
    found = [{"faces": [[100, 50, 180, 150]], "picked": 0, "square_side": 200.0, "fallback": None},
             {"faces": [[100, 50, 180, 150]], "picked": 0, "square_side": 400.0, "fallback": None},
             {"faces": [], "square_side": None, "fallback": "resize"},
             {"faces": [], "square_side": None, "fallback": "centre"}]
    seen = crop_report.per_image(frame(4), found)
    assert seen["face_share"].tolist() == pytest.approx([0.5, 0.25, 100 / 360, 100 / 360])  # frame, per axis; centre
    summary = crop_report.summarise(seen, "opencv", "classification")
    assert "annotated face box side / crop side: median 0.28 (p5 0.25" in summary


def test_the_whole_frame_cropper_reports_its_scale_too():
    seen = crop_report.per_image(frame(2), [{"faces": None, "square_side": None, "fallback": None}] * 2)
    summary = crop_report.summarise(seen, "resize", "classification")
    assert "every image is the whole frame" in summary and "crop side: median 0.28" in summary
