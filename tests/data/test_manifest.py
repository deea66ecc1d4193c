"""The manifest: agreement-first selection, 8:1:1 splits, written once and reused, bad input reported."""

from __future__ import annotations

import json
import shutil

import pytest

from kemotion.data import aihub
from kemotion.data.manifest import COMPLETE_MARKER, DatasetError, Selection, load_or_build
from kemotion.data.skips import SkipReport


@pytest.fixture(scope="module")
def manifest(tiny_aihub, tmp_path_factory):
    selection = Selection(n_per_class=10, min_agreement=2, n_detector=28, seed=0, workers=2)
    return load_or_build(tiny_aihub, selection, tmp_path_factory.mktemp("cache"))


def _records_with_images(root):
    report = SkipReport()
    images = aihub.index_images(root, SkipReport())
    return [r for r in aihub.read_label_records(root, report) if r.filename in images]


def test_each_class_gets_n_per_class_split_8_1_1(manifest):
    counts = manifest.classification.groupby(["label", "split"]).size().unstack()
    assert counts.shape == (7, 3)
    assert (counts["train"] == 8).all() and (counts["val"] == 1).all() and (counts["test"] == 1).all()


def test_unanimous_images_are_taken_before_2_of_3(manifest, tiny_aihub):
    records = _records_with_images(tiny_aihub)
    for label, taken in manifest.classification.groupby("label"):
        available = sorted((r.agreement for r in records if r.emotion.index == label), reverse=True)
        # the selection's agreements are the best ones available (ties broken at random)
        assert sorted(taken["agreement"], reverse=True) == available[: len(taken)]
        assert taken["agreement"].min() >= 2


def test_min_agreement_3_takes_only_unanimous_images(tiny_aihub, tmp_path):
    manifest = load_or_build(tiny_aihub, Selection(n_per_class=10, min_agreement=3, n_detector=7), tmp_path)
    assert (manifest.classification["agreement"] == 3).all()


def test_labels_and_boxes_are_what_the_label_files_say(manifest, tiny_aihub):
    records = {r.filename: r for r in _records_with_images(tiny_aihub)}
    for row in manifest.classification.itertuples():
        record = records[row.filename]
        assert row.label == record.emotion.index and row.label_ko == record.emotion.korean
        assert 0 <= row.box_x1 < row.box_x2 <= row.width and 0 <= row.box_y1 < row.box_y2 <= row.height


def test_detector_subset_has_its_size_and_split(manifest):
    detector = manifest.detector
    assert len(detector) == 28
    assert detector["split"].value_counts().to_dict() == {"train": 22, "val": 3, "test": 3}
    assert detector["filename"].is_unique


def test_missing_images_are_reported_not_selected(manifest):
    missing = manifest.report.of_kind("image missing")
    assert missing, "the tiny dataset drops 5 % of its images"
    assert not set(p.record for p in missing) & set(manifest.classification["filename"])
    assert all(p.file == p.record and "img_emotion_" in p.detail for p in missing)  # names image and label file


def test_written_once_and_reused(manifest, tiny_aihub):
    selection = Selection(n_per_class=10, min_agreement=2, n_detector=28, seed=0, workers=2)
    marker = manifest.directory / COMPLETE_MARKER
    before = marker.stat().st_mtime_ns
    again = load_or_build(tiny_aihub, selection, manifest.directory.parent.parent)
    assert again.directory == manifest.directory and marker.stat().st_mtime_ns == before
    assert again.classification.equals(manifest.classification)
    assert json.loads(marker.read_text())["n_per_class"] == 10
    for name in ("classification.csv", "detector.csv", "skip_report.csv", "summary.txt"):
        assert (manifest.directory / name).exists()


def test_a_different_seed_or_size_is_a_different_manifest(manifest, tiny_aihub):
    cache = manifest.directory.parent.parent
    other = load_or_build(tiny_aihub, Selection(n_per_class=10, min_agreement=2, n_detector=28, seed=1), cache)
    assert other.directory != manifest.directory
    assert not other.classification["split"].equals(manifest.classification["split"]) or not (
        other.classification["filename"].equals(manifest.classification["filename"]))


def test_an_interrupted_build_is_redone(tiny_aihub, tmp_path):
    selection = Selection(n_per_class=3, n_detector=7)
    first = load_or_build(tiny_aihub, selection, tmp_path)
    (first.directory / COMPLETE_MARKER).unlink()  # as if killed before the end
    (first.directory / "classification.csv").write_text("half a file")
    again = load_or_build(tiny_aihub, selection, tmp_path)
    assert again.classification.equals(first.classification)


def test_subject_disjoint_split_keeps_each_person_in_one_split(tiny_aihub, tmp_path):
    manifest = load_or_build(tiny_aihub, Selection(n_per_class=10, subject_disjoint=True, n_detector=7), tmp_path)
    splits_per_subject = manifest.classification.groupby("subject_id")["split"].nunique()
    assert (splits_per_subject == 1).all()
    assert set(manifest.classification["split"]) == {"train", "val", "test"}


def test_summary_counts_classes_splits_and_agreement(manifest):
    summary = manifest.summary()
    assert "happy 기쁨" in summary and "neutral 중립" in summary
    assert "classification subset: 70 images" in summary
    assert "image missing" in summary


def test_an_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no usable AI-Hub label records under .*empty"):
        load_or_build(tmp_path / "empty", Selection(), tmp_path / "cache")


def test_the_sample_release_fixture_reports_every_record_missing(tmp_path):
    fixture = tmp_path / "sample"
    shutil.copytree("tests/fixtures/aihub_sample", fixture)
    with pytest.raises(DatasetError, match="no image .* could be used") as error:
        load_or_build(fixture, Selection(n_per_class=5), tmp_path / "cache")
    assert "image missing" in str(error.value)


@pytest.mark.parametrize("split", [(0.8, 0.1), (0.5, 0.6, 0.1), (-0.1, 0.6, 0.5)])
def test_bad_split_fractions_are_refused(split):
    with pytest.raises(ValueError, match="split"):
        Selection(split=split)
