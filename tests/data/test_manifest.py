"""The manifest: agreement-first selection, 8:1:1 splits, written once and reused, bad input reported."""

from __future__ import annotations

import json
import os
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


def _copy(tiny_aihub, to):
    return shutil.copytree(tiny_aihub, to, copy_function=shutil.copy)  # modification times are not kept


def test_a_moved_or_copied_dataset_keeps_its_manifest_with_paths_where_it_is_now(tiny_aihub, tmp_path):
    selection = Selection(n_per_class=3, n_detector=7)
    first = load_or_build(tiny_aihub, selection, tmp_path / "cache")
    moved = _copy(tiny_aihub, tmp_path / "elsewhere" / "aihub")
    again = load_or_build(moved, selection, tmp_path / "cache")
    assert again.directory == first.directory
    assert all(path.startswith(str(moved)) for path in again.classification["path"])
    assert again.classification.drop(columns="path").equals(first.classification.drop(columns="path"))


def test_completing_a_download_builds_a_new_manifest_that_has_the_image(tiny_aihub, tmp_path):
    partial = _copy(tiny_aihub, tmp_path / "aihub")
    selection = Selection(n_per_class=16, min_agreement=0, n_detector=7)
    complete = load_or_build(partial, selection, tmp_path / "cache")
    name = complete.classification["filename"].iloc[0]
    image = next(partial.rglob(name))
    kept = image.read_bytes()
    image.unlink()
    without_it = load_or_build(partial, selection, tmp_path / "cache")
    assert name not in set(without_it.classification["filename"])
    image.write_bytes(kept)  # the download completed
    again = load_or_build(partial, selection, tmp_path / "cache")
    assert again.directory == complete.directory != without_it.directory
    assert name in set(again.classification["filename"])
    image.write_bytes(kept[: len(kept) // 2])  # replaced by a truncated copy: another file, another manifest
    assert load_or_build(partial, selection, tmp_path / "cache").directory not in {complete.directory,
                                                                                   without_it.directory}


def test_worker_counts_are_not_part_of_the_manifest_key(tiny_aihub, tmp_path):
    one = load_or_build(tiny_aihub, Selection(n_per_class=3, n_detector=7, workers=1), tmp_path)
    four = load_or_build(tiny_aihub, Selection(n_per_class=3, n_detector=7, workers=4), tmp_path)
    assert one.directory == four.directory


def test_symlinked_image_folders_are_read_and_a_link_loop_is_reported(tiny_aihub, tmp_path):
    shared = _copy(tiny_aihub, tmp_path / "shared_storage")
    root = tmp_path / "aihub"
    root.mkdir()
    for child in shared.iterdir():  # a root of links, as on shared storage
        (root / child.name).symlink_to(child, target_is_directory=child.is_dir())
    first_folder = next(p for p in shared.rglob("*") if p.is_dir())
    (first_folder / "loop").symlink_to(first_folder, target_is_directory=True)  # a link to itself: a loop
    report = SkipReport()
    linked, direct = aihub.index_images(root, report), aihub.index_images(shared, SkipReport())
    assert linked.keys() == direct.keys() and linked
    loops = [p for p in report.problems if p.kind == "folder linked twice"]
    assert [p.file for p in loops] == [str(root / first_folder.relative_to(shared) / "loop")]
    selection = Selection(n_per_class=3, min_agreement=0, n_detector=7)
    assert len(load_or_build(root, selection, tmp_path / "cache").classification) == 21


def test_the_manifest_build_shows_a_progress_bar(tiny_aihub, tmp_path, capsys):
    load_or_build(tiny_aihub, Selection(n_per_class=3, min_agreement=0, n_detector=7), tmp_path)
    err = capsys.readouterr().err
    assert "probing images and face boxes for the manifest" in err and "28/28" in err  # 7 × 3 classified + 7 detector


def test_a_fifo_named_like_an_image_is_a_skip_row_and_the_build_does_not_wait_on_it(tiny_aihub, tmp_path):
    """The build held the manifest's lock while it waited, without end, for someone to write to the FIFO."""
    from tests.data.test_files import feed_fifo, returns_within

    root = _copy(tiny_aihub, tmp_path / "aihub")
    image = next(path for path in sorted(root.rglob("*.jpg")))
    image.unlink()
    os.mkfifo(image)
    selection = Selection(n_per_class=16, min_agreement=0, n_detector=0)  # every record: the FIFO's too
    manifest = returns_within(60, lambda: load_or_build(root, selection, tmp_path / "cache"),
                              unblock=lambda: feed_fifo(image))
    [problem] = manifest.report.of_kind("not a regular file")
    assert problem.file == str(image) and problem.detail == "a FIFO (named pipe), not a regular file; not read"
    assert str(image) not in set(manifest.classification["path"])
