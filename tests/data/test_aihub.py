"""The AI-Hub reader against the sample fixture (NFD names, BOM, edge-case records) and label files and images
written in tmp_path, one test per kind of bad input."""

from __future__ import annotations

import json
import os
import shutil
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kemotion.core.emotions import UNKNOWN_ANSWER, parse_emotion
from kemotion.data import aihub
from kemotion.data.aihub import (
    Annotation,
    BadBox,
    BadImage,
    consensus_box,
    describe_problem,
    find_label_files,
    index_images,
    missing_image_problem,
    notes,
    problem_from,
    read_label_records,
    resolve,
    subject_id_of,
)
from kemotion.data.skips import SkipReport

FIXTURE = Path(__file__).parents[1] / "fixtures" / "aihub_sample"
HASH = "f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a"
FACE = {"minX": 100.0, "minY": 80.0, "maxX": 300.0, "maxY": 360.0}  # fits a 400x400 image
FIXTURE_FACE = (1200.8, 780.5, 2121.3, 1990.2)  # the fixture's usual box: needs an image of >= 2122x1991
# Agreement of each fixture record with the uploader label, counted by hand from the JSONs (key: timestamp).
FIXTURE_AGREEMENT = {
    "20201204105732": 3,  # 기쁨 기쁨 기쁨
    "20201204105733": 2,  # 기쁨 기쁨 당황
    "20201205101010": 1,  # 기쁨 중립 알수없음
    "20201206090909": 0,  # 중립 당황 슬픔: no majority
    "20201207080808": 3,  # 기쁨 x3; degenerate A box, null C box
    "20201208070707": 3,  # 슬픔 x3; age "10"
    "20201209060606": 1,  # 슬픔 상처 상처
    "20201210050505": 2,  # 슬픔 슬픔 상처; A box 9000 px wide
}


def name(timestamp: str = "20201204105732", emotion: str = "기쁨") -> str:
    return f"{HASH}_여_30_{emotion}_공공시설&종교&의료시설_{timestamp}-001-007.jpg"


def entry(filename: str, uploader: str = "기쁨", answers=("기쁨",) * 3, boxes=(FACE,) * 3, **fields) -> dict:
    record = {"filename": filename, "gender": "여", "age": 30, "isProf": "일반인", "faceExp_uploader": uploader,
              "bg_uploader": "공공시설/종교/의료시설"}  # fmt: skip
    for letter, answer, box in zip("ABC", answers, boxes, strict=True):
        record[f"annot_{letter}"] = {"boxes": box, "faceExp": answer, "bg": "공공시설/종교/의료시설"}
    return record | fields


def write_labels(root: Path, records, emotion: str = "기쁨", split: str = "training", encoding="utf-8") -> Path:
    path = root / "라벨링데이터" / f"img_emotion_{split}_data({emotion}).json"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = records if isinstance(records, str) else json.dumps(records, ensure_ascii=False)
    path.write_bytes(text.encode(encoding))
    return path


def draw(path: Path, size=(400, 400), mode="RGB", fmt="JPEG", orientation: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    Image.new("RGB", size, (128, 128, 128)).convert(mode).save(path, fmt, exif=exif)
    return path


def one_record(root: Path, **kwargs):
    report = SkipReport()
    write_labels(root, [entry(name(), **kwargs)])
    records = read_label_records(root, report)
    return (records[0] if records else None), report


def fixture_records() -> dict[str, object]:
    report = SkipReport()
    return {r.filename.split("_")[5][:14]: r for r in read_label_records(FIXTURE, report)}


# --- the fixture: NFD names, BOM, hand-counted agreement ---------------------------------------------------


def test_fixture_keeps_its_nfd_names():
    names = [str(p.relative_to(FIXTURE)) for p in FIXTURE.rglob("*")]
    assert any(not unicodedata.is_normalized("NFC", n) for n in names), "the fixture must keep its NFD names"


def test_find_label_files_matches_nfd_names():
    report = SkipReport()
    found = find_label_files(FIXTURE, report)
    assert [(split, e.korean) for _, split, e in found] == [("training", "기쁨"), ("training", "슬픔")]
    nfd_path = found[1][0]
    assert not unicodedata.is_normalized("NFC", nfd_path.name)
    assert len(report) == 0


def test_fixture_records_are_read_including_the_bom_file():
    report = SkipReport()
    records = read_label_records(FIXTURE, report)
    assert len(records) == 8
    assert [r.emotion.korean for r in records] == ["기쁨"] * 5 + ["슬픔"] * 3
    assert all(unicodedata.is_normalized("NFC", r.filename) for r in records)
    assert {r.source_split for r in records} == {"training"}
    assert len(report) == 0


def test_fixture_agreement_counted_by_hand():
    assert {key: r.agreement for key, r in fixture_records().items()} == FIXTURE_AGREEMENT


def test_unknown_answer_never_agrees():
    record = fixture_records()["20201205101010"]
    assert [a.emotion for a in record.annotations] == ["기쁨", "중립", UNKNOWN_ANSWER]
    assert record.agreement == 1


def test_age_given_as_string_is_an_int():
    record = fixture_records()["20201208070707"]
    assert record.age == 10 and record.gender == "여" and record.background == "행사/사무공간"


def test_subject_id_from_the_file_name():
    record = fixture_records()["20201209060606"]
    assert record.subject_id == "7d087a2e212c110e851c7b6fdc2853a41e7db1690beef7a9c11b3a26ee77e853"
    assert subject_id_of(name().replace(HASH, HASH.upper())) == HASH
    assert subject_id_of("abc_여_30_기쁨_x_1-001-001.jpg") == ""
    assert subject_id_of(HASH + ".jpg") == ""


def test_consensus_with_degenerate_and_null_box_is_the_remaining_box():
    record = fixture_records()["20201207080808"]
    assert record.annotations[2].box is None
    assert consensus_box(record.annotations, 4032, 3024) == (FIXTURE_FACE, "B only")


def test_consensus_ignores_a_box_mostly_outside_the_image():
    record = fixture_records()["20201210050505"]
    assert record.annotations[0].box == (-50.0, 100.0, 9000.0, 900.0)
    assert consensus_box(record.annotations, 4032, 3024) == (FIXTURE_FACE, "median of B,C")


def test_fixture_has_no_images_so_every_record_is_missing():
    report = SkipReport()
    assert index_images(FIXTURE, report) == {}
    assert [(p.kind, p.action, Path(p.file).name) for p in report.problems] == [
        ("not a dataset file", "ignored", "README.md")
    ]
    problem = missing_image_problem(fixture_records()["20201204105732"])
    assert problem.kind == "image missing" and problem.record == name() and "기쁨).json" in problem.detail


def test_fixture_resolves_once_images_are_drawn(tmp_path):
    root = tmp_path / "sample"
    shutil.copytree(FIXTURE, root)
    report = SkipReport()
    for record in read_label_records(root, report):
        draw(root / "1.Training" / "원천데이터" / record.filename, size=(2400, 2100))
    images = index_images(root, report)
    samples = {s.filename.split("_")[5][:14]: s for r in read_label_records(root, report)
               for s in [resolve(r, images[r.filename])]}  # fmt: skip
    assert {k: s.agreement for k, s in samples.items()} == FIXTURE_AGREEMENT
    assert samples["20201207080808"].box_source == "B only"
    assert samples["20201210050505"].box_source == "median of B,C"
    assert samples["20201204105733"].answers == "기쁨|기쁨|당황"
    assert (samples["20201204105732"].box_x1, samples["20201204105732"].box_y2) == (1200.8, 1990.2)


# --- consensus box -----------------------------------------------------------------------------------------


def boxes(*boxes_) -> tuple[Annotation, ...]:
    return tuple(Annotation("기쁨", box) for box in boxes_)


def test_median_is_robust_to_one_outlier_and_the_mean_of_two():
    box, source = consensus_box(boxes((10, 10, 110, 130), (12, 8, 112, 128), (200, 200, 390, 390)), 400, 400)
    assert box == (12.0, 10.0, 112.0, 130.0) and source == "median of A,B,C"
    box, source = consensus_box(boxes((10, 10, 110, 130), None, (20, 30, 120, 150)), 400, 400)
    assert box == (15.0, 20.0, 115.0, 140.0) and source == "median of A,C"


def test_box_poking_out_by_a_few_percent_is_clipped():
    box, source = consensus_box(boxes((-4, 10, 96, 110), None, None), 400, 400)
    assert box == (0.0, 10.0, 96.0, 110.0) and source == "A only"


@pytest.mark.parametrize(
    ("box", "reason"),
    [((500, 500, 700, 700), "outside"), ((10, 10, 10, 200), "zero"), ((50, 50, 20, 80), "zero"), (None, "no box")],
)
def test_no_valid_box_raises_bad_box_with_reasons(box, reason):
    with pytest.raises(BadBox) as caught:
        consensus_box(boxes(box, box, box), 400, 400)
    assert len(caught.value.reasons) == 3 and all(reason in r for r in caught.value.reasons)
    assert describe_problem(caught.value)[0] == "bad box"


# --- resolve: images drawn with the records' file names ----------------------------------------------------


@pytest.mark.parametrize(
    ("bad_box", "reason"),
    [({"minX": 500, "minY": 500, "maxX": 900, "maxY": 900}, "outside"),
     ({"minX": 10, "minY": 10, "maxX": 10, "maxY": 200}, "zero"),
     (None, "no box")],
)  # fmt: skip
def test_bad_boxes_skip_the_record_as_bad_box(tmp_path, bad_box, reason):
    record, _ = one_record(tmp_path, boxes=(bad_box,) * 3)
    image = draw(tmp_path / "원천데이터" / record.filename)
    with pytest.raises(BadBox) as caught:
        resolve(record, image)
    problem = problem_from(caught.value, record, image)
    assert (problem.kind, problem.action, problem.file, problem.record) == ("bad box", "skipped", str(image), name())
    assert reason in problem.detail


def test_record_whose_image_is_missing(tmp_path):
    record, _ = one_record(tmp_path)
    assert index_images(tmp_path, SkipReport()) == {}
    problem = missing_image_problem(record)
    assert (problem.kind, problem.record) == ("image missing", name())
    gone = tmp_path / record.filename
    with pytest.raises(BadImage) as caught:  # deleted between indexing and probing
        resolve(record, gone)
    problem = problem_from(caught.value, record, gone)
    assert (problem.kind, problem.file) == ("image missing", str(gone))


@pytest.mark.parametrize("kind", ["corrupt image", "truncated image"])
def test_corrupt_and_truncated_jpeg_are_skipped(tmp_path, kind):
    record, _ = one_record(tmp_path)
    image = tmp_path / "원천데이터" / record.filename
    image.parent.mkdir()
    if kind == "corrupt image":
        image.write_bytes(np.random.default_rng(0).bytes(4000))
    else:
        whole = Image.fromarray(np.random.default_rng(0).integers(0, 255, (400, 400, 3), np.uint8))
        whole.save(tmp_path / "whole.jpg")
        image.write_bytes((tmp_path / "whole.jpg").read_bytes()[:20000])
    with pytest.raises(BadImage) as caught:
        resolve(record, image)
    assert record.filename in str(caught.value)
    problem = problem_from(caught.value, record, image)
    assert (problem.kind, problem.action, problem.file, problem.record) == (kind, "skipped", str(image), name())


def test_png_named_jpg_is_kept_with_a_note(tmp_path):
    record, _ = one_record(tmp_path)
    sample = resolve(record, draw(tmp_path / record.filename, fmt="PNG"))
    assert (sample.image_format, sample.width, sample.height) == ("PNG", 400, 400)
    assert notes(sample) == [("not a JPEG", "PNG content named .jpg; read by content")]


@pytest.mark.parametrize(("mode", "kind"), [("L", "greyscale image"), ("CMYK", "CMYK image")])
def test_greyscale_and_cmyk_are_kept_with_a_note(tmp_path, mode, kind):
    record, _ = one_record(tmp_path)
    sample = resolve(record, draw(tmp_path / record.filename, mode=mode))
    assert sample.image_mode == mode
    assert notes(sample) == [(kind, f"mode {mode}; converted to RGB")]


@pytest.mark.parametrize("orientation", [6, 3])
def test_box_is_checked_against_the_upright_size(tmp_path, orientation):
    face = {"minX": 100, "minY": 500, "maxX": 250, "maxY": 700}  # inside 300x800, not inside 800x300
    record, _ = one_record(tmp_path, boxes=(face,) * 3)
    stored = (800, 300) if orientation == 6 else (300, 800)
    sample = resolve(record, draw(tmp_path / record.filename, size=stored, orientation=orientation))
    assert (sample.width, sample.height, sample.orientation) == (300, 800, orientation)
    assert (sample.box_x1, sample.box_y1, sample.box_x2, sample.box_y2) == (100, 500, 250, 700)
    if orientation == 6:
        with pytest.raises(BadBox):  # the same box against the stored frame would be outside
            consensus_box(record.annotations, *stored)


def test_sample_fields_and_partial_boxes_note(tmp_path):
    record, _ = one_record(tmp_path, answers=("기쁨", "당황", UNKNOWN_ANSWER), boxes=(FACE, None, FACE))
    sample = resolve(record, draw(tmp_path / record.filename))
    assert (sample.label, sample.label_ko, sample.label_en, sample.agreement) == (0, "기쁨", "happy", 1)
    assert (sample.answers, sample.subject_id, sample.age, sample.source_split) == (
        f"기쁨|당황|{UNKNOWN_ANSWER}",
        HASH,
        30,
        "training",
    )
    assert sample.box_source == "median of A,C"
    assert [kind for kind, _ in notes(sample)] == ["annotator box rejected"]


# --- label files: one test per bad input -------------------------------------------------------------------


def test_unknown_uploader_label_is_skipped(tmp_path):
    record, report = one_record(tmp_path, uploader="행복")
    assert record is None
    [problem] = report.problems
    assert (problem.kind, problem.action, problem.record) == ("unknown label", "skipped", name())
    assert problem.file.endswith("img_emotion_training_data(기쁨).json") and "행복" in problem.detail


def test_uploader_label_other_than_the_file_is_a_mismatch(tmp_path):
    record, report = one_record(tmp_path, uploader="슬픔")
    assert record is None
    assert [(p.kind, p.record) for p in report.problems] == [("label mismatch", name())]


def test_malformed_json_reports_line_and_column(tmp_path):
    path = write_labels(tmp_path, '[\n {"filename": "a.jpg",\n  "age": }\n]')
    report = SkipReport()
    assert read_label_records(tmp_path, report) == []
    [problem] = report.problems
    assert (problem.kind, problem.file) == ("malformed JSON", str(path))
    assert problem.detail.startswith("line 3 column")


def test_json_that_is_not_a_list(tmp_path):
    path = write_labels(tmp_path, json.dumps({"data": [entry(name())]}))
    report = SkipReport()
    assert read_label_records(tmp_path, report) == []
    assert [(p.kind, p.file) for p in report.problems] == [("malformed JSON", str(path))]


def test_cp949_json_is_reported_not_guessed(tmp_path):
    path = write_labels(tmp_path, [entry(name())], encoding="cp949")
    report = SkipReport()
    assert read_label_records(tmp_path, report) == []
    [problem] = report.problems
    assert (problem.kind, problem.file) == ("not UTF-8", str(path))
    assert "cp949/euc-kr" in problem.detail and "re-save it as UTF-8" in problem.detail


def test_deeply_nested_json_is_a_skip_row_not_a_recursion_error(tmp_path):
    path = write_labels(tmp_path, "[" * 100_000 + "]" * 100_000)
    report = SkipReport()
    assert read_label_records(tmp_path, report) == []
    assert [(p.kind, p.file) for p in report.problems] == [("malformed JSON", str(path))]
    assert "nested deeper" in report.problems[0].detail


def test_a_label_file_linked_to_dev_zero_is_a_skip_row_not_read(tmp_path):
    path = tmp_path / "라벨링데이터" / "img_emotion_training_data(기쁨).json"
    path.parent.mkdir()
    path.symlink_to("/dev/zero")
    report = SkipReport()
    assert read_label_records(tmp_path, report) == []
    assert [(p.kind, p.file) for p in report.problems] == [("unreadable label file", str(path))]
    assert report.problems[0].detail == "a character device, not a regular file; not read"


def test_a_label_file_over_the_size_bound_is_a_skip_row(tmp_path, monkeypatch):
    path = write_labels(tmp_path, [entry(name())])
    monkeypatch.setattr(aihub, "MAX_LABEL_BYTES", path.stat().st_size - 1)
    report = SkipReport()
    assert read_label_records(tmp_path, report) == []
    [problem] = report.problems
    assert (problem.kind, problem.file) == ("unreadable label file", str(path))
    assert problem.detail.startswith(f"larger than {path.stat().st_size - 1:,} bytes")


def test_a_fifo_named_like_an_image_or_a_label_file_is_a_skip_row_at_once(tmp_path):
    from tests.data.test_files import feed_fifo, returns_within

    write_labels(tmp_path, [entry(name())])
    label_fifo = tmp_path / "img_emotion_validation_data(기쁨).json"
    image_fifo = tmp_path / "원천데이터" / name()
    image_fifo.parent.mkdir()
    for fifo in (label_fifo, image_fifo):
        os.mkfifo(fifo)

    def read():
        report = SkipReport()
        records = read_label_records(tmp_path, report)
        images = index_images(tmp_path, report)
        try:
            resolve(records[0], images[records[0].filename])
        except BadImage as error:
            report.append(problem_from(error, records[0], images[records[0].filename]))
        return report

    report = returns_within(10, read, unblock=lambda: [feed_fifo(fifo) for fifo in (label_fifo, image_fifo)])
    found = {(p.kind, Path(p.file).name, p.detail) for p in report.problems}
    assert found == {("unreadable label file", label_fifo.name, "a FIFO (named pipe), not a regular file; not read"),
                     ("not a regular file", name(), "a FIFO (named pipe), not a regular file; not read")}


def test_empty_folder_is_a_clear_problem(tmp_path):
    report = SkipReport()
    assert read_label_records(tmp_path, report) == []
    assert [(p.kind, p.file) for p in report.problems] == [("no label files", str(tmp_path))]


def test_missing_root_raises_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        read_label_records(tmp_path / "nowhere", SkipReport())


def test_non_numeric_age_is_kept_as_unknown(tmp_path):
    record, report = one_record(tmp_path, age="삼십대")
    assert record.age is None
    assert [(p.kind, p.action, p.record) for p in report.problems] == [("bad age", "kept", name())]


def test_missing_or_malformed_annotator_is_kept_without_agreeing(tmp_path):
    raw = entry(name())
    del raw["annot_B"]
    raw["annot_C"] = "기쁨"
    write_labels(tmp_path, [raw])
    report = SkipReport()
    [record] = read_label_records(tmp_path, report)
    assert record.annotations[1:] == (Annotation("", None), Annotation("", None))
    assert record.agreement == 1
    assert [(p.kind, p.action, p.record) for p in report.problems] == [("bad annotation", "kept", name())] * 2


def test_bad_records_and_missing_filenames_are_skipped(tmp_path):
    path = write_labels(tmp_path, [entry(name()), "not a record", entry(""), entry(name("20201204105733"))])
    report = SkipReport()
    assert [r.filename for r in read_label_records(tmp_path, report)] == [name(), name("20201204105733")]
    assert [(p.kind, p.record, p.file) for p in report.problems] == [
        ("bad record", "record #1", str(path)),
        ("missing filename", "record #2", str(path)),
    ]


def test_malformed_box_values_become_none(tmp_path):
    bad = [{"minX": "a", "minY": 1, "maxX": 2, "maxY": 3}, {"minX": 1}, [1, 2, 3, 4]]
    record, _ = one_record(tmp_path, boxes=bad)
    assert [a.box for a in record.annotations] == [None, None, None]
    assert record.agreement == 3


def test_sample_release_with_english_abbreviation(tmp_path):
    write_labels(tmp_path, [entry(name(emotion="기쁨"))], emotion="happy", split="sample")
    [record] = read_label_records(tmp_path, SkipReport())
    assert (record.source_split, record.emotion) == ("sample", parse_emotion("기쁨"))


def test_duplicated_label_file_and_record_keep_the_first(tmp_path):
    write_labels(tmp_path / "a", [entry(name())])
    write_labels(tmp_path / "b", [entry(name())])
    write_labels(tmp_path / "a", [entry(name(emotion="슬픔"), uploader="슬픔")], emotion="슬픔", split="validation")
    write_labels(tmp_path / "c", [entry(name(emotion="슬픔"), uploader="슬픔")], emotion="슬픔")
    report = SkipReport()
    records = read_label_records(tmp_path, report)
    assert [(r.source_split, Path(r.label_file).parts[-3]) for r in records] == [("training", "a"), ("validation", "a")]
    assert [p.kind for p in report.problems] == ["duplicate label file", "duplicate record"]


# --- the image index ---------------------------------------------------------------------------------------


def test_index_images_nfc_keys_case_duplicates_and_ignored_files(tmp_path):
    nfd = unicodedata.normalize("NFD", name())
    draw(tmp_path / unicodedata.normalize("NFD", "원천데이터") / "part_01" / nfd)
    draw(tmp_path / "원천데이터_0114_add" / name())
    draw(tmp_path / "part_02" / "OTHER.JPEG")
    for junk in ["download.irx603", "EMOIMG_기쁨_TRAIN_02.zip", "._OTHER.JPEG"]:
        (tmp_path / "part_02" / junk).write_bytes(b"x")
    report = SkipReport()
    images = index_images(tmp_path, report)
    assert sorted(images) == sorted([name(), "OTHER.JPEG"])
    assert images[name()].name == nfd  # sorted path order: the standard folder before the update folder
    ignored = sorted(Path(p.file).name for p in report.problems if p.action == "ignored")
    assert ignored == sorted(["download.irx603", "EMOIMG_기쁨_TRAIN_02.zip", "._OTHER.JPEG"])
    [duplicate] = report.of_kind("duplicate image")
    assert duplicate.record == name() and "원천데이터_0114_add" in duplicate.file


@pytest.mark.parametrize(("places", "majority"), [
    (("자연환경", "자연환경", "도심 환경"), "자연환경"),  # 2 of 3 annotators outvote the uploader
    (("자연환경", "도심 환경", "문화유산"), "공공시설/종교/의료시설"),  # no majority: the uploader's
    (("자연환경", None, None), "공공시설/종교/의료시설"),  # a missing bg is no vote
])
def test_background_majority_is_the_annotators_unless_they_disagree(tmp_path, places, majority):
    raw = entry(name())
    for letter, place in zip("ABC", places, strict=True):
        raw[f"annot_{letter}"]["bg"] = place
    write_labels(tmp_path, [raw])
    (record,) = read_label_records(tmp_path, SkipReport())
    assert record.background == "공공시설/종교/의료시설" and record.background_majority == majority
