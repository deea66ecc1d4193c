"""WIDER FACE as distributed (Yang et al. 2016): the face detector's pre-training set and the face-detection benchmark.

Reads `WIDER_{train,val}/images/<event>/<name>.jpg` and `wider_face_split/wider_face_{train,val}_bbx_gt.txt`
(/work/shared/wider/FORMAT.md): blocks of an image path, a face count and that many `x y w h blur expression
illumination invalid occlusion pose` rows. An image with no face is followed by one all-zero row that is not a face.
Degenerate boxes (zero width or height) and images that do not decode are skipped and listed in the skip report.
The val split also carries the evaluation toolkit's ground truth (`wider_face_val.mat` and the easy / medium / hard
`gt_list`s), read by `kemotion.lit.wider_eval` when the files are there.

The result is a `WiderFaceSet`: an image table shaped like the AI-Hub manifest's detector subset (so the crop cache
letterboxes it the same way) and a face table, one row per face, both written once under
`<cache>/manifests/<key>/` and reused.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.io import loadmat

from kemotion.core.io import atomic_write, build_once
from kemotion.core.keys import short_hash
from kemotion.data.files import read_bounded
from kemotion.data.images import BadImage, probe_image
from kemotion.data.manifest import DatasetError
from kemotion.data.skips import SkipReport

log = logging.getLogger(__name__)

READER_VERSION = 1  # part of the cache key: bump when the tables change
SPLIT_FOLDERS = {"train": "WIDER_train", "val": "WIDER_val"}
ANNOTATIONS = "wider_face_split/wider_face_{split}_bbx_gt.txt"
ATTRIBUTES = ("blur", "expression", "illumination", "invalid", "occlusion", "pose")  # after x y w h, in file order
FACE_COLUMNS = ["filename", "x1", "y1", "x2", "y2", *ATTRIBUTES]
SUBSETS = ("easy", "medium", "hard")  # the evaluation's difficulty subsets, nested
GROUND_TRUTH = "eval_tools/ground_truth"  # where the evaluation toolkit keeps its .mat files
COMPLETE_MARKER = "widerface.json"  # written last: a folder without it is incomplete
MAX_ANNOTATION_BYTES = 256 * 2**20  # WIDER's largest box file (train) is a few MB


@dataclass(frozen=True)
class WiderImage:
    split: str  # "train" or "val"
    event: str  # "0--Parade"
    name: str  # "0_Parade_marchingband_1_849.jpg"
    faces: np.ndarray  # (n, 10) int64: x y w h and the six attributes

    @property
    def relative_path(self) -> str:
        return f"{self.event}/{self.name}"


def parse_annotations(path: Path, split: str, report: SkipReport) -> list[WiderImage]:
    """The blocks of a `wider_face_*_bbx_gt.txt`; degenerate boxes are left out and reported. A malformed file is a
    DatasetError naming it and the line."""
    try:
        lines = read_bounded(path, MAX_ANNOTATION_BYTES).decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:  # a FIFO, a device, a file far larger than WIDER's, not UTF-8
        raise DatasetError(f"{path}: cannot be read as WIDER FACE annotations ({error})") from None
    images, at = [], 0
    while at < len(lines):
        if not lines[at].strip():
            at += 1
            continue
        relative = lines[at].strip()
        try:
            count = int(lines[at + 1])
            rows = lines[at + 2: at + 2 + max(count, 1)]  # a count of 0 is followed by one all-zero row
            faces = np.array([[int(float(v)) for v in row.split()[:10]] for row in rows], np.int64).reshape(-1, 10)
        except (IndexError, ValueError, OverflowError) as error:  # OverflowError: an `inf` coordinate
            raise DatasetError(f"{path}, line {at + 1}: malformed block for {relative!r} ({error})") from None
        if len(faces) != max(count, 1) or faces.shape[1] != 10:
            raise DatasetError(f"{path}, line {at + 1}: {relative!r} announces {count} faces of 10 values")
        at += 2 + max(count, 1)
        faces = faces[:count]
        degenerate = (faces[:, 2] <= 0) | (faces[:, 3] <= 0)
        for face in faces[degenerate]:
            report.add(relative, "degenerate box", f"x y w h = {face[:4].tolist()}: zero width or height")
        event, _, name = relative.rpartition("/")
        images.append(WiderImage(split, event, name, faces[~degenerate]))
    return images


class WiderTruth(NamedTuple):
    """One image's ground truth as the toolkit holds it: every face `x y w h`, and which count for each subset.
    (A NamedTuple: Lightning moves batches with it inside, and refuses frozen dataclasses.)"""

    boxes: np.ndarray  # (n, 4) x y w h, all faces (invalid and tiny ones too)
    kept: np.ndarray  # (n, 3) bool: the face is in the easy / medium / hard `gt_list`


def read_ground_truth(directory: str | Path) -> dict[tuple[str, str], WiderTruth]:
    """`wider_face_val.mat` and `wider_{easy,medium,hard}_val.mat` of `directory` → {(event, image name without
    .jpg): WiderTruth}. FileNotFoundError names a missing file."""
    directory = Path(directory)
    paths = [directory / "wider_face_val.mat", *(directory / f"wider_{s}_val.mat" for s in SUBSETS)]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"WIDER FACE ground truth not found: {path} (from the evaluation toolkit's "
                                    "eval_tools/ground_truth/)")
    val, *subsets = (loadmat(path) for path in paths)
    truths = {}
    for i, event_cell in enumerate(val["event_list"][:, 0]):
        event = str(event_cell[0])
        for j, name_cell in enumerate(val["file_list"][i, 0][:, 0]):
            boxes = np.asarray(val["face_bbx_list"][i, 0][j, 0], np.float64).reshape(-1, 4)
            kept = np.zeros((len(boxes), len(SUBSETS)), bool)
            for s, subset in enumerate(subsets):
                indices = np.asarray(subset["gt_list"][i, 0][j, 0]).reshape(-1).astype(np.int64)
                kept[indices - 1, s] = True  # gt_list is 1-based
            truths[(event, str(name_cell[0]))] = WiderTruth(boxes, kept)
    return truths


def load_or_read(root: str | Path, cache_dir: str | Path, workers: int = 4) -> WiderFaceSet:
    """WIDER FACE at `root` (the folder holding WIDER_train/, WIDER_val/, wider_face_split/), read once per cache."""
    root = Path(root).resolve()
    directory = Path(cache_dir).resolve() / "manifests" / f"widerface-{_key(root)}"

    def read_and_write() -> WiderFaceSet:
        directory.mkdir(parents=True, exist_ok=True)
        wider = read(root, directory, workers)
        wider.write()
        return wider

    return build_once(directory, read_and_write, done=(directory / COMPLETE_MARKER).exists,
                      reuse=lambda: WiderFaceSet.read(directory, root), what=f"the WIDER FACE tables of {root}")


@dataclass
class WiderFaceSet:
    directory: Path
    root: Path
    detector: pd.DataFrame  # one row per image: filename, path, width, height, split, label, event (+ box columns)
    faces: pd.DataFrame  # one row per face: filename, x1 y1 x2 y2 (source pixels), the six attributes
    report: SkipReport

    @property
    def key(self) -> str:
        return self.directory.name

    def write(self) -> None:
        for name, frame in (("detector.csv", self.detector), ("faces.csv", self.faces)):
            with atomic_write(self.directory / name, "w", newline="", encoding="utf-8") as handle:
                frame.to_csv(handle, index=False)
        self.report.write_csv(self.directory / "skip_report.csv")
        with atomic_write(self.directory / COMPLETE_MARKER, "w", encoding="utf-8") as handle:
            json.dump({"root": str(self.root), "version": READER_VERSION, "images": len(self.detector),
                       "faces": len(self.faces)}, handle)

    @classmethod
    def read(cls, directory: Path, root: Path) -> WiderFaceSet:
        text = {"filename": str, "path": str, "event": str, "split": str, "label": str}
        return cls(directory, root, pd.read_csv(directory / "detector.csv", dtype=text),
                   pd.read_csv(directory / "faces.csv", dtype={"filename": str}),
                   SkipReport.read_csv(directory / "skip_report.csv"))


def read(root: Path, directory: Path, workers: int = 4) -> WiderFaceSet:
    report = SkipReport()
    images = []
    for split, folder in SPLIT_FOLDERS.items():
        annotations = root / ANNOTATIONS.format(split=split)
        if not annotations.is_file():
            raise DatasetError(f"WIDER FACE annotations not found: {annotations} (extract wider_face_split.zip "
                               f"into {root})")
        images += [(image, root / folder / "images" / image.relative_path)
                   for image in parse_annotations(annotations, split, report)]
    with ThreadPoolExecutor(max(1, workers)) as pool:
        probed = list(pool.map(lambda item: _probe(item[1], report), images))
    rows, faces = [], []
    for (image, path), size in zip(images, probed, strict=True):
        if size is None:
            continue
        rows.append({"filename": image.name, "path": str(path), "width": size[0], "height": size[1],
                     "split": image.split, "label": "face", "event": image.event})
        x, y, w, h = image.faces[:, :4].T.astype(np.float64)
        faces.append(pd.DataFrame({"filename": image.name, "x1": x, "y1": y, "x2": x + w, "y2": y + h,
                                   **{a: image.faces[:, 4 + i] for i, a in enumerate(ATTRIBUTES)}}))
    detector = pd.DataFrame(rows, columns=["filename", "path", "width", "height", "split", "label", "event"])
    if detector.empty:
        raise DatasetError(f"no usable WIDER FACE image under {root}:\n{report.format_counts()}")
    duplicated = detector["filename"][detector["filename"].duplicated()]
    if len(duplicated):
        raise DatasetError(f"{root}: image names are not unique across events and splits: {duplicated.tolist()[:5]}")
    for column in ("box_x1", "box_y1", "box_x2", "box_y2"):  # the crop report's columns; WIDER has many boxes
        detector[column] = np.nan
    faces = pd.concat(faces, ignore_index=True) if faces else pd.DataFrame(columns=FACE_COLUMNS)
    log.info("WIDER FACE: %s images, %d faces; %s", detector["split"].value_counts().to_dict(), len(faces),
             report.format_counts())
    return WiderFaceSet(directory, root, detector, faces[FACE_COLUMNS], report)


def _probe(path: Path, report: SkipReport) -> tuple[int, int] | None:
    if not path.is_file():
        report.add(path, "image missing", "listed in the annotations, not on disk")
        return None
    try:
        info = probe_image(path)
    except BadImage as error:
        report.add(path, error.kind, error.reason)
        return None
    return info.width, info.height


def _key(root: Path) -> str:
    """A short hash of the root and its annotation files (their sizes), so a new download gets new tables."""
    listed = sorted((str(p.relative_to(root)), p.stat().st_size) for p in (root / "wider_face_split").glob("*"))
    return short_hash([READER_VERSION, str(root), listed])


class WiderFace:
    """A WIDER FACE download at `root` (WIDER_train/, WIDER_val/, wider_face_split/, and for the val AP the toolkit's
    eval_tools/ground_truth/), as a data source: `prepare()` checks it is there and returns the root."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    def prepare(self) -> Path:
        missing = [self.root / ANNOTATIONS.format(split=split) for split in SPLIT_FOLDERS]
        missing = [path for path in missing if not path.is_file()]
        if missing:
            raise DatasetError(f"not a WIDER FACE folder: {', '.join(map(str, missing))} missing (extract "
                               f"wider_face_split.zip, WIDER_train.zip and WIDER_val.zip into {self.root})")
        return self.root
