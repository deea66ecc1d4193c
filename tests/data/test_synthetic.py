"""The synthetic AI-Hub set: deterministic, read by the AI-Hub reader, and doing its job (face crop beats resize)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from kemotion.core.emotions import EMOTIONS, parse_emotion
from kemotion.data import aihub
from kemotion.data.images import load_rgb, probe_image
from kemotion.data.skips import SkipReport
from kemotion.data.synthetic import SyntheticAIHub
from kemotion.data.synthetic.face import PROTOTYPES, prototype_distances
from kemotion.data.synthetic.generate import IMAGES_PER_PART

KOREAN = {e.korean for e in EMOTIONS}
SMALL = {"n_subjects": 4, "images_per_class": 6, "long_side": 240}


def read(root: Path) -> tuple[list[aihub.Sample], SkipReport]:
    """Every record of the set through the AI-Hub reader, resolved against its image."""
    report = SkipReport()
    records = aihub.read_label_records(root, report)
    images = aihub.index_images(root, report)
    samples = [aihub.resolve(r, images[r.filename]) for r in records if r.filename in images]
    return samples, report


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_layout_and_schema_are_the_real_downloads(tiny_aihub):
    samples, report = read(tiny_aihub)
    assert len(report) == 0, report.format_counts()  # not one stray file, bad box or unknown label
    labels = sorted(tiny_aihub.rglob("*.json"))
    assert len(labels) == 14  # 7 emotions × training/validation
    for path in labels:
        split, emotion = path.parent.name.removeprefix("[라벨]EMOIMG_").split("_")[::-1]
        assert path.name == f"img_emotion_{'training' if split == 'TRAIN' else 'validation'}_data({emotion}).json"
        record = json.loads(path.read_text(encoding="utf-8"))[0]
        assert set(record) == {"filename", "gender", "age", "isProf", "faceExp_uploader", "bg_uploader",
                               "annot_A", "annot_B", "annot_C"}
        assert set(record["annot_B"]["boxes"]) == {"minX", "minY", "maxX", "maxY"}
        assert parse_emotion(record["faceExp_uploader"]).korean == emotion
    assert {s.label for s in samples} == set(range(7))
    assert all(len(s.subject_id) == 64 for s in samples)


def test_records_without_images_are_reported_by_the_reader(tiny_aihub):
    report = SkipReport()
    records = aihub.read_label_records(tiny_aihub, report)
    images = aihub.index_images(tiny_aihub, report)
    missing = [r for r in records if r.filename not in images]
    assert len(records) == 7 * 16
    assert 1 <= len(missing) <= 15  # missing_image_fraction=0.05 of 112


def test_the_same_seed_gives_the_same_bytes_whatever_the_worker_count(tmp_path):
    one = SyntheticAIHub(tmp_path / "a", seed=11, workers=1, **SMALL).prepare()
    two = SyntheticAIHub(tmp_path / "b", seed=11, workers=2, **SMALL).prepare()
    other = SyntheticAIHub(tmp_path / "c", seed=12, workers=1, **SMALL).prepare()
    assert digest(one) == digest(two)
    assert digest(one) != digest(other)


def test_prepare_reuses_a_finished_set_and_replaces_an_interrupted_one(tmp_path):
    source = SyntheticAIHub(tmp_path, seed=1, workers=1, **SMALL)
    staging = tmp_path / f".{source.dataset_root.name}.partial-killed"
    staging.mkdir(parents=True)  # what a killed generation leaves behind
    root = source.prepare()
    assert not staging.exists()
    assert json.loads((tmp_path / f"{root.name}.json").read_text())["records"] == 7 * SMALL["images_per_class"]
    stamp = (root / "1.Training").stat().st_mtime_ns
    assert SyntheticAIHub(tmp_path, seed=1, workers=1, **SMALL).prepare() == root
    assert (root / "1.Training").stat().st_mtime_ns == stamp


def test_faces_cover_ten_to_forty_percent_and_images_are_large(tmp_path):
    root = SyntheticAIHub(tmp_path, seed=2, n_subjects=3, images_per_class=3, long_side=1600, workers=2).prepare()
    samples, _ = read(root)
    areas = [(s.box_x2 - s.box_x1) * (s.box_y2 - s.box_y1) / (s.width * s.height) for s in samples]
    assert min(areas) >= 0.09 and max(areas) <= 0.41
    assert all(max(s.width, s.height) == 1600 for s in samples)


def smoothed_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two same-size images at 1/8 scale, where sensor noise and JPEG blocks average out."""
    size = (a.shape[1] // 8, a.shape[0] // 8)
    small = [cv2.resize(x, size, interpolation=cv2.INTER_AREA).astype(float) for x in (a, b)]
    return float(np.abs(small[0] - small[1]).mean())


def test_exif_rotated_images_load_upright_with_their_boxes(tmp_path):
    """Stored rotated or not, the upright pixels (and so the face under the box) are the same picture."""
    upright = SyntheticAIHub(tmp_path, seed=4, exif_rotated_fraction=0.0, workers=1, **SMALL).prepare()
    rotated = SyntheticAIHub(tmp_path, seed=4, exif_rotated_fraction=1.0, workers=1, **SMALL).prepare()
    by_name = {s.filename: s for s in read(upright)[0]}
    for sample in read(rotated)[0]:
        twin = by_name[sample.filename]
        assert sample.orientation != 1 and twin.orientation == 1
        assert (sample.width, sample.height) == (twin.width, twin.height)
        assert (sample.box_x1, sample.box_y2) == pytest.approx((twin.box_x1, twin.box_y2), abs=0.11)
        assert smoothed_difference(load_rgb(sample.path), load_rgb(twin.path)) < 2  # JPEG re-encoding only
        assert smoothed_difference(load_rgb(sample.path), load_rgb(twin.path)[::-1, ::-1]) > 10  # can fail
    stored = probe_image(next(iter(rotated.rglob("*.jpg"))))
    assert stored.orientation in (2, 3, 6, 8)


def test_annotators_disagree_sometimes_and_mostly_on_the_confusable_pairs(tmp_path):
    root = SyntheticAIHub(tmp_path, seed=6, n_subjects=6, images_per_class=40, long_side=64, workers=2).prepare()
    records = aihub.read_label_records(root, SkipReport())
    agreement = np.bincount([r.agreement for r in records], minlength=4)
    assert agreement[3] > 0.2 * len(records) and agreement[2] > agreement[1] > agreement[0] > 0
    confusions = np.zeros((7, 7), int)  # acted class × a dissenting annotator's answer
    for r in records:
        for a in r.annotations:
            if a.emotion in KOREAN and a.emotion != r.emotion.korean:
                confusions[r.emotion.index, parse_emotion(a.emotion).index] += 1
    for one, other in [("sad", "hurt"), ("anxious", "embarrassed")]:
        one, other = parse_emotion(one).index, parse_emotion(other).index
        assert confusions[one].argmax() == other and confusions[other].argmax() == one


def test_confusable_prototypes_are_each_others_nearest():
    distances = np.stack([prototype_distances(PROTOTYPES[e.english]) for e in EMOTIONS])
    np.fill_diagonal(distances, np.inf)
    for one, other in [("sad", "hurt"), ("anxious", "embarrassed")]:
        one, other = parse_emotion(one).index, parse_emotion(other).index
        assert distances[one].argmin() == other and distances[other].argmin() == one
        assert distances[one, other] < 0.6 * np.median(distances[one][np.isfinite(distances[one])])


def test_training_images_are_spread_over_numbered_part_folders(tmp_path):
    root = SyntheticAIHub(tmp_path, seed=7, n_subjects=2, images_per_class=IMAGES_PER_PART + 10, long_side=64,
                          validation_fraction=0.0, workers=2).prepare()
    folders = {p.parent.name for p in root.rglob("*.jpg") if "기쁨" in p.parent.name}
    assert folders == {"[원천]EMOIMG_기쁨_TRAIN_01", "[원천]EMOIMG_기쁨_TRAIN_02"}


@pytest.mark.slow
def test_the_face_carries_the_emotion_and_the_whole_image_hides_it(tmp_path):
    """Nearest class mean on 32×32 grey pixels: clearly above chance on the face box, near chance on the image."""
    root = SyntheticAIHub(tmp_path, seed=5, n_subjects=8, images_per_class=24, long_side=480, workers=2).prepare()
    samples, _ = read(root)
    labels = np.array([s.label for s in samples])
    whole, face = [], []
    for s in samples:
        grey = cv2.cvtColor(load_rgb(s.path), cv2.COLOR_RGB2GRAY)
        crop = grey[int(s.box_y1):int(s.box_y2), int(s.box_x1):int(s.box_x2)]
        whole.append(cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).ravel())
        face.append(cv2.resize(crop, (32, 32), interpolation=cv2.INTER_AREA).ravel())
    order = np.random.default_rng(0).permutation(len(labels))
    train, test = order[: len(order) * 2 // 3], order[len(order) * 2 // 3:]

    def accuracy(pixels: list[np.ndarray]) -> float:
        x = np.array(pixels, float)
        x = (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)
        means = np.stack([x[train][labels[train] == c].mean(0) for c in range(7)])
        predicted = ((x[test][:, None] - means[None]) ** 2).sum(-1).argmin(1)
        return float((predicted == labels[test]).mean())

    chance = 1 / 7
    assert accuracy(face) > 2.5 * chance
    assert accuracy(whole) < 1.5 * chance
