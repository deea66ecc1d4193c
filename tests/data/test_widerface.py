"""The WIDER FACE reader, on hand-written annotation files and on the synthetic WIDER-layout set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat

from kemotion.data.manifest import DatasetError
from kemotion.data.skips import SkipReport
from kemotion.data.synthetic.wider import SyntheticWider, subset_of
from kemotion.data.widerface import GROUND_TRUTH, WiderFace, load_or_read, parse_annotations, read_ground_truth

# Two real-style blocks around an image without faces: `0` is followed by one all-zero row that is not a face.
ANNOTATIONS = """0--Parade/0_Parade_marchingband_1_849.jpg
1
449 330 122 149 0 0 0 0 0 0
0--Parade/0_Parade_Parade_0_452.jpg
0
0 0 0 0 0 0 0 0 0 0
1--Handshaking/1_Handshaking_1_2.jpg
3
10 20 30 40 2 0 1 1 2 0
5 5 0 12 0 0 0 0 0 0
78 221 7 8 2 0 0 0 0 0
"""


def test_blocks_are_parsed_with_empty_images_and_degenerate_boxes_reported(tmp_path):
    path = tmp_path / "wider_face_val_bbx_gt.txt"
    path.write_text(ANNOTATIONS)
    report = SkipReport()
    images = parse_annotations(path, "val", report)
    assert [(i.event, i.name, len(i.faces)) for i in images] == [
        ("0--Parade", "0_Parade_marchingband_1_849.jpg", 1), ("0--Parade", "0_Parade_Parade_0_452.jpg", 0),
        ("1--Handshaking", "1_Handshaking_1_2.jpg", 2)]
    assert images[2].faces.tolist() == [[10, 20, 30, 40, 2, 0, 1, 1, 2, 0], [78, 221, 7, 8, 2, 0, 0, 0, 0, 0]]
    [problem] = report.problems
    assert (problem.file, problem.kind) == ("1--Handshaking/1_Handshaking_1_2.jpg", "degenerate box")


def test_a_block_with_too_few_rows_is_an_error_naming_the_file_and_line(tmp_path):
    path = tmp_path / "wider_face_train_bbx_gt.txt"
    path.write_text("0--Parade/a.jpg\n2\n1 2 3 4 0 0 0 0 0 0\n")
    with pytest.raises(DatasetError, match=r"wider_face_train_bbx_gt.txt, line 1: .*a\.jpg"):
        parse_annotations(path, "train", SkipReport())


def test_an_infinite_coordinate_is_an_error_naming_the_file_and_line_not_an_overflow(tmp_path):
    path = tmp_path / "wider_face_train_bbx_gt.txt"
    path.write_text("0--Parade/a.jpg\n1\n1 2 3 4 0 0 0 0 0 0\n0--Parade/b.jpg\n1\n1 2 inf 4 0 0 0 0 0 0\n")
    with pytest.raises(DatasetError, match=r"wider_face_train_bbx_gt.txt, line 4: .*b\.jpg.*infinity"):
        parse_annotations(path, "train", SkipReport())


def test_a_box_file_linked_to_a_device_is_an_error_naming_it_not_read(tmp_path):
    path = tmp_path / "wider_face_train_bbx_gt.txt"
    path.symlink_to("/dev/zero")
    with pytest.raises(DatasetError, match=r"wider_face_train_bbx_gt.txt: cannot be read .*a character device"):
        parse_annotations(path, "train", SkipReport())


def test_a_folder_without_the_annotations_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="not a WIDER FACE folder: .*wider_face_train_bbx_gt.txt"):
        WiderFace(tmp_path).prepare()


@pytest.fixture(scope="module")
def tiny_wider(tmp_path_factory) -> Path:
    return SyntheticWider(tmp_path_factory.mktemp("wider"), seed=1, n_train=16, n_val=8, long_side=256,
                          workers=1).prepare()


def test_the_synthetic_set_reads_back_through_the_reader(tiny_wider, tmp_path):
    wider = load_or_read(tiny_wider, tmp_path)
    assert wider.detector["split"].value_counts().to_dict() == {"train": 16, "val": 8}
    assert all(Path(p).is_file() for p in wider.detector["path"])
    per_image = wider.faces.groupby("filename").size().reindex(wider.detector["filename"], fill_value=0)
    assert per_image.max() > 2 and (per_image == 0).any()  # crowds and empty scenes
    heights = wider.faces["y2"] - wider.faces["y1"]
    assert heights.min() < 12 and heights.max() > 60  # small faces and large ones
    assert wider.faces["invalid"].sum() > 0
    assert [p.kind for p in wider.report.problems] == ["degenerate box"]  # the one planted in train
    assert (wider.faces["x2"] > wider.faces["x1"]).all()
    again = load_or_read(tiny_wider, tmp_path)  # reused, the same tables
    assert again.faces.equals(wider.faces) and again.detector.equals(wider.detector)


def test_the_ground_truth_files_have_the_official_structure(tiny_wider):
    val = loadmat(tiny_wider / GROUND_TRUTH / "wider_face_val.mat")
    hard = loadmat(tiny_wider / GROUND_TRUTH / "wider_hard_val.mat")
    assert val["event_list"].shape[1] == 1 and str(val["event_list"][0][0][0]) == "0--Parade"
    first = str(val["file_list"][0][0][0][0][0])
    assert first == "0_Parade_kemotion_val_0"
    assert (tiny_wider / "WIDER_val" / "images" / "0--Parade" / f"{first}.jpg").is_file()
    boxes = val["face_bbx_list"][0][0][0][0]
    assert boxes.dtype == np.int32 and boxes.shape[1:] == (4,)
    assert "gt_list" in hard and "gt_list" not in val


def test_the_subsets_are_nested_and_leave_out_invalid_and_tiny_faces(tiny_wider):
    truths = read_ground_truth(tiny_wider / GROUND_TRUTH)
    assert len(truths) == 8
    kept = np.concatenate([t.kept for t in truths.values()])
    boxes = np.concatenate([t.boxes for t in truths.values()])
    easy, medium, hard = kept.T
    assert (easy <= medium).all() and (medium <= hard).all() and easy.sum() < hard.sum() < len(kept)
    assert (boxes[hard, 3] >= 10).all()


def test_subset_rule():
    faces = np.array([[0, 0, 40, 50, 0, 0, 0, 0, 0, 0], [0, 0, 40, 50, 0, 0, 0, 1, 0, 0],
                      [0, 0, 8, 12, 2, 0, 0, 0, 0, 0], [0, 0, 8, 25, 1, 0, 0, 0, 0, 0]])
    subsets = subset_of(faces)
    assert [subsets[s].tolist() for s in ("easy", "medium", "hard")] == [
        [True, False, False, False], [True, False, False, True], [True, False, True, True]]
