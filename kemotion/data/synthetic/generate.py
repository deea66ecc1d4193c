"""`SyntheticAIHub`: an embedded stand-in for the licence-gated AI-Hub release, in exactly its layout.

Same folders, file names and label-JSON schema as the real download (/work/shared/aihub/FORMAT.md), so one reader
reads both. Deterministic from the seed: every image draws from its own random stream, so the bytes written do not
depend on the number of worker processes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from kemotion.core.emotions import EMOTIONS, NUM_CLASSES, UNKNOWN_ANSWER
from kemotion.core.keys import short_hash
from kemotion.core.parallel import process_map
from kemotion.data.synthetic.face import (
    Appearance,
    Box,
    Expression,
    prototype_distances,
    sample_appearance,
    sample_expression,
)
from kemotion.data.synthetic.scene import BACKGROUNDS, compose_scene
from kemotion.data.synthetic.staging import generate_once

log = logging.getLogger(__name__)

GENERATOR_VERSION = 2  # part of the dataset folder's hash: bump it whenever the output changes
# The set is generated in a staging folder and renamed into place in one step (kemotion.data.synthetic.staging).

# Person metadata, spelled as in the release.
GENDERS = ("남", "여")
AGE_DECADES = (10, 20, 30, 40, 50, 60)
SENIOR_AGE = 60
PROFESSIONAL_STATUS = ("일반인", "전문인")  # ordinary person, professional actor
PROFESSIONAL_FRACTION = 0.2

ASPECT_RATIOS = ((4, 3), (16, 9), (1, 1))  # long : short (FORMAT.md: mixed)
JPEG_QUALITY = 90
IMAGES_PER_PART = 50  # training images are spread over part folders _01, _02, ... like the real download
EXIF_ORIENTATION_TAG = 0x0112
ORIENTATIONS = (3, 6, 8, 2)  # FORMAT.md: 180° is common, also 8 and the mirror family
ORIENTATION_WEIGHTS = (0.45, 0.2, 0.2, 0.15)
# We store the inverse of what PIL's exif_transpose applies, so that it gives back the upright image.
STORED_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                    6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}

SESSION_EPOCH = datetime(2020, 11, 2, 9, 0, 0)  # shooting sessions fall in the following months
SESSION_SPAN_SECONDS = 90 * 24 * 3600
SECONDS_BETWEEN_SHOTS = 3
BACKGROUND_CODES = 10  # the first number after the timestamp: 001-010

ANNOTATORS = ("annot_A", "annot_B", "annot_C")
ANNOTATOR_TEMPERATURE = 3.0  # how far (in per-image variations) an annotator's reading strays from the face
ANNOTATOR_LAPSE_RATE = 0.03  # answers a random class
UNKNOWN_RATE = 0.03  # answers '알수없음'
BOX_EDGE_JITTER = 0.015  # std of each annotator box edge, as a fraction of the box size

# Independent random streams: np.random.default_rng([seed, STREAM, ...]).
PERSON, SESSION, ASSIGNMENT, SPLIT, PLAN, IMAGE, ANNOTATION = range(7)


@dataclass(frozen=True)
class Split:
    folder: str
    tag: str  # in folder names: [라벨]EMOIMG_기쁨_TRAIN
    word: str  # in the label JSON's name: img_emotion_training_data(기쁨).json
    has_parts: bool  # images spread over numbered part folders


TRAINING = Split("1.Training", "TRAIN", "training", True)
VALIDATION = Split("2.Validation", "VALID", "validation", False)


def label_json_path(root: Path, split: Split, emotion: str) -> Path:
    return root / split.folder / "라벨링데이터" / f"[라벨]EMOIMG_{emotion}_{split.tag}" / \
        f"img_emotion_{split.word}_data({emotion}).json"


def image_folder(root: Path, split: Split, emotion: str, part: int) -> Path:
    suffix = f"_{part:02d}" if split.has_parts else ""
    return root / split.folder / "원천데이터" / f"[원천]EMOIMG_{emotion}_{split.tag}{suffix}"


@dataclass(frozen=True)
class Person:
    hash: str  # 64 hex digits, the leading part of every file name of this person
    gender: str
    age: int
    status: str
    appearance: Appearance


def make_person(seed: int, index: int) -> Person:
    rng = np.random.default_rng([seed, PERSON, index])
    gender, age = GENDERS[rng.integers(len(GENDERS))], int(rng.choice(AGE_DECADES))
    status = PROFESSIONAL_STATUS[int(rng.uniform() < PROFESSIONAL_FRACTION)]
    appearance = sample_appearance(rng, feminine=gender == GENDERS[1], senior=age >= SENIOR_AGE)
    person_hash = hashlib.sha256(f"kemotion-synthetic/{seed}/{index}".encode()).hexdigest()
    return Person(person_hash, gender, age, status, appearance)


@dataclass(frozen=True)
class ImageJob:
    """Everything a worker process needs to draw and save one image."""

    seed: int
    emotion: int
    index: int
    appearance: Appearance
    background: int
    width: int  # upright size: the frame of the JSON boxes
    height: int
    orientation: int  # EXIF orientation of the stored file, 1 = upright
    path: str | None  # None: a record without an image (partial download)


def render_image(job: ImageJob) -> tuple[Box, Expression]:
    """Draw the scene, save it (if it has a file) and return the true face box and the acted expression."""
    rng = np.random.default_rng([job.seed, IMAGE, job.emotion, job.index])
    emotion = EMOTIONS[job.emotion]
    expression = sample_expression(emotion, rng)
    image, box = compose_scene(rng, job.width, job.height, job.appearance, expression, emotion,
                               BACKGROUNDS[job.background])
    if job.path is not None:
        picture = Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        if job.orientation == 1:
            picture.save(job.path, "JPEG", quality=JPEG_QUALITY)
        else:
            exif = Image.Exif()
            exif[EXIF_ORIENTATION_TAG] = job.orientation
            picture.transpose(STORED_TRANSPOSE[job.orientation]).save(job.path, "JPEG", quality=JPEG_QUALITY,
                                                                     exif=exif)
    return box, expression


def annotate(expression: Expression, box: Box, width: int, height: int, background: str,
             rng: np.random.Generator) -> dict[str, dict]:
    """Three annotators' answers and boxes: each reads the drawn face, so faint or in-between faces split them."""
    logits = -(prototype_distances(expression) ** 2) / (2 * ANNOTATOR_TEMPERATURE**2)
    reading = np.exp(logits - logits.max())
    reading /= reading.sum()
    size = np.array([box[2] - box[0], box[3] - box[1]] * 2)
    limits = np.array([width, height] * 2)
    answers = {}
    for annotator in ANNOTATORS:
        draw = rng.uniform()
        if draw < UNKNOWN_RATE:
            answer = UNKNOWN_ANSWER
        elif draw < UNKNOWN_RATE + ANNOTATOR_LAPSE_RATE:
            answer = EMOTIONS[rng.integers(NUM_CLASSES)].korean
        else:
            answer = EMOTIONS[rng.choice(NUM_CLASSES, p=reading)].korean
        edges = np.clip(np.array(box) + rng.normal(0, BOX_EDGE_JITTER, 4) * size, 0, limits)
        min_x, min_y, max_x, max_y = (round(float(v), 1) for v in edges)
        answers[annotator] = {"boxes": {"maxX": max_x, "maxY": max_y, "minX": min_x, "minY": min_y},
                              "faceExp": answer, "bg": background}
    return answers


class SyntheticAIHub:
    """Generates (once) a synthetic dataset in the AI-Hub layout under `root/<hash of the parameters>`."""

    def __init__(self, root: str | Path, seed: int = 0, n_subjects: int = 24, images_per_class: int = 80,
                 long_side: int = 1600, validation_fraction: float = 0.1, exif_rotated_fraction: float = 0.3,
                 missing_image_fraction: float = 0.0, workers: int = 2) -> None:
        if n_subjects < 1 or images_per_class < 1 or long_side < 64:
            raise ValueError("need n_subjects >= 1, images_per_class >= 1 and long_side >= 64")
        for name, fraction in [("validation_fraction", validation_fraction),
                               ("exif_rotated_fraction", exif_rotated_fraction),
                               ("missing_image_fraction", missing_image_fraction)]:
            if not 0.0 <= fraction <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {fraction}")
        self.root, self.workers = Path(root), workers
        self.params = {"seed": seed, "n_subjects": n_subjects, "images_per_class": images_per_class,
                       "long_side": long_side, "validation_fraction": validation_fraction,
                       "exif_rotated_fraction": exif_rotated_fraction,
                       "missing_image_fraction": missing_image_fraction}
        self.dataset_root = self.root / short_hash({"version": GENERATOR_VERSION, **self.params})

    def prepare(self) -> Path:
        """Generate the dataset if it is not there yet; return the dataset root (the folder holding 1.Training/)."""
        return generate_once(self.dataset_root, self._generate, f"synthetic AI-Hub set {self.params}")

    def _generate(self, staging: Path) -> dict:
        planned = self._plan(staging)
        rendered = _render_all([job for job, _, _ in planned], self.workers)
        labels: dict[Path, list[dict]] = {}
        for (job, split, record), (box, expression) in zip(planned, rendered, strict=True):
            rng = np.random.default_rng([self.params["seed"], ANNOTATION, job.emotion, job.index])
            answers = annotate(expression, box, job.width, job.height, record["bg_uploader"], rng)
            label_path = label_json_path(staging, split, EMOTIONS[job.emotion].korean)
            labels.setdefault(label_path, []).append({**record, **answers})
        for path, records in labels.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(records, ensure_ascii=True, indent=1), encoding="utf-8")
        images = sum(job.path is not None for job, _, _ in planned)
        return {"generator": __name__, "version": GENERATOR_VERSION, "params": self.params,
                "records": len(planned), "images": images}

    def _plan(self, staging: Path) -> list[tuple[ImageJob, Split, dict]]:
        """Who acts which image where, its size, orientation, file name and split: cheap, done up front."""
        p = self.params
        seed, n_subjects, per_class = p["seed"], p["n_subjects"], p["images_per_class"]
        people = [make_person(seed, i) for i in range(n_subjects)]
        n_validation = round(p["validation_fraction"] * per_class)
        planned = []
        for c, emotion in enumerate(EMOTIONS):
            # Each subject acts in every class: one session per (subject, class), shots taken seconds apart.
            order = np.random.default_rng([seed, ASSIGNMENT, c]).permutation(n_subjects)
            validation = set(np.random.default_rng([seed, SPLIT, c]).permutation(per_class)[:n_validation].tolist())
            training_position = 0
            for i in range(per_class):
                subject, shot = int(order[i % n_subjects]), i // n_subjects
                person = people[subject]
                session = np.random.default_rng([seed, SESSION, c, subject])
                background = int(session.integers(len(BACKGROUNDS)))
                code = int(session.integers(1, BACKGROUND_CODES + 1))
                taken = SESSION_EPOCH + timedelta(seconds=int(session.integers(SESSION_SPAN_SECONDS))
                                                  + shot * SECONDS_BETWEEN_SHOTS)
                category = BACKGROUNDS[background].category
                filename = (f"{person.hash}_{person.gender}_{person.age}_{emotion.korean}_{category.replace('/', '&')}"
                            f"_{taken:%Y%m%d%H%M%S}-{code:03d}-{(shot + 1) % 1000:03d}.jpg")
                rng = np.random.default_rng([seed, PLAN, c, i])
                width, height = _image_size(rng, p["long_side"])
                rotated = rng.uniform() < p["exif_rotated_fraction"]
                orientation = int(rng.choice(ORIENTATIONS, p=ORIENTATION_WEIGHTS)) if rotated else 1
                missing = rng.uniform() < p["missing_image_fraction"]
                split = VALIDATION if i in validation else TRAINING
                part = training_position // IMAGES_PER_PART + 1
                training_position += split is TRAINING
                folder = image_folder(staging, split, emotion.korean, part)
                folder.mkdir(parents=True, exist_ok=True)
                job = ImageJob(seed, c, i, person.appearance, background, width, height, orientation,
                               None if missing else str(folder / filename))
                record = {"filename": filename, "gender": person.gender, "age": person.age, "isProf": person.status,
                          "faceExp_uploader": emotion.korean, "bg_uploader": category}
                planned.append((job, split, record))
        return planned


def _image_size(rng: np.random.Generator, long_side: int) -> tuple[int, int]:
    """(width, height) of a 4:3, 16:9 or square image, portrait or landscape."""
    long, short = ASPECT_RATIOS[rng.integers(len(ASPECT_RATIOS))]
    short_side = round(long_side * short / long)
    return (long_side, short_side) if rng.uniform() < 0.5 else (short_side, long_side)


def _render_all(jobs: list[ImageJob], workers: int) -> list[tuple[Box, Expression]]:
    return process_map(render_image, jobs, workers, desc="drawing synthetic AI-Hub images")
