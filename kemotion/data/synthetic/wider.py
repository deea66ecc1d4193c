"""`SyntheticWider`: a small WIDER FACE stand-in in exactly its layout, for tests and the CPU demo of pre-training.

Scenes of several people (the AI-Hub set's face drawing) on the same cluttered backgrounds, faces from a few pixels
to half the frame, a few flagged `invalid`, some images with no face at all, and one degenerate annotation row, as the
real files have. Written as WIDER FACE is distributed (/work/shared/wider/FORMAT.md):
`WIDER_{train,val}/images/<event>/<name>.jpg`, `wider_face_split/wider_face_{train,val}_bbx_gt.txt`, and the
evaluation toolkit's four val ground-truth files in `eval_tools/ground_truth/` (scipy.io.savemat, in the official
cell structure). Its easy / medium / hard subsets follow a size-and-blur rule (`subset_of`), standing in for the
official ones, which come from a detector's difficulty.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.io import savemat

from kemotion.core.emotions import EMOTIONS
from kemotion.core.keys import short_hash
from kemotion.core.parallel import process_map
from kemotion.data.synthetic.face import Pose, face_box, sample_appearance, sample_expression
from kemotion.data.synthetic.scene import BACKGROUNDS, _apply_camera, _draw_distractor, _footprint, _inside, _overlap
from kemotion.data.synthetic.scene import draw_background as draw_scene_background
from kemotion.data.synthetic.staging import generate_once
from kemotion.data.widerface import ANNOTATIONS, GROUND_TRUTH, SPLIT_FOLDERS, SUBSETS

GENERATOR_VERSION = 1
EVENTS = ("0--Parade", "12--Group", "61--Street_Battle")
FACES_RANGE = (1, 9)  # faces per scene (an image with none is planned separately)
EMPTY_FRACTION = 0.06  # scenes without a face: the `0` + all-zero-row blocks
INVALID_FRACTION = 0.06  # faces flagged invalid (WIDER: ~1 %, more here so every small set has some)
FACE_HEIGHT_RANGE = (0.02, 0.45)  # face box height / image height, log-uniform: many small faces, a few large
PLACEMENT_ATTEMPTS = 30
JPEG_QUALITY = 90
# The synthetic subsets (face box height in pixels; WIDER's easy ⊂ medium ⊂ hard): hard keeps valid faces of at
# least 10 px, medium of 20 px not heavily blurred, easy of 40 px, clear and unoccluded.
HARD_MIN, MEDIUM_MIN, EASY_MIN = 10, 20, 40


@dataclass(frozen=True)
class SceneJob:
    seed: int
    split: int  # index into SPLIT_FOLDERS
    index: int
    width: int
    height: int
    path: str


def render_scene(job: SceneJob) -> np.ndarray:
    """Draw and save one scene; return its faces as (n, 10) int rows `x y w h blur expression illumination invalid
    occlusion pose`."""
    rng = np.random.default_rng([job.seed, job.split, job.index])
    background = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    canvas = draw_scene_background(rng, job.width, job.height, background.palette)
    rows, taken = [], []
    count = 0 if rng.uniform() < EMPTY_FRACTION else int(rng.integers(FACES_RANGE[0], FACES_RANGE[1] + 1))
    for _ in range(count):
        appearance = sample_appearance(rng, feminine=rng.uniform() < 0.5, senior=rng.uniform() < 0.2)
        expression = sample_expression(EMOTIONS[rng.integers(len(EMOTIONS))], rng)
        for _attempt in range(PLACEMENT_ATTEMPTS):
            height = job.height * np.exp(rng.uniform(*np.log(FACE_HEIGHT_RANGE)))
            pose = Pose(float(rng.uniform(0, job.width)), float(rng.uniform(0, job.height)), height / 2.1,
                        float(rng.uniform(-10, 10)))
            footprint = _footprint("passer-by", appearance, pose)
            box = face_box(appearance, pose)
            if _inside(box, job.width, job.height) and not any(_overlap(footprint, t) for t in taken):
                break
        else:
            continue
        taken.append(footprint)
        _draw_distractor(rng, canvas, "passer-by", appearance, expression, pose, footprint, background.palette)
        x1, y1 = int(np.floor(box[0])), int(np.floor(box[1]))
        w, h = int(np.ceil(box[2])) - x1, int(np.ceil(box[3])) - y1
        blur = 2 if h < MEDIUM_MIN else int(h < EASY_MIN)
        rows.append([x1, y1, w, h, blur, 0, 0, int(rng.uniform() < INVALID_FRACTION), int(rng.uniform() < 0.1), 0])
    image = _apply_camera(rng, canvas)
    cv2.imwrite(job.path, image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return np.array(rows, np.int64).reshape(-1, 10)


def subset_of(faces: np.ndarray) -> dict[str, np.ndarray]:
    """The synthetic easy / medium / hard membership of each face (bool masks), nested like WIDER's."""
    height, blur, invalid, occlusion = faces[:, 3], faces[:, 4], faces[:, 7], faces[:, 8]
    valid = invalid == 0
    return {"easy": valid & (height >= EASY_MIN) & (blur == 0) & (occlusion == 0),
            "medium": valid & (height >= MEDIUM_MIN) & (blur < 2),
            "hard": valid & (height >= HARD_MIN)}


class SyntheticWider:
    """Generates (once) a small WIDER-FACE-layout set under `root/<hash of the parameters>`."""

    def __init__(self, root: str | Path, seed: int = 0, n_train: int = 120, n_val: int = 40, long_side: int = 512,
                 workers: int = 2) -> None:
        if n_train < 1 or n_val < 1 or long_side < 64:
            raise ValueError("need n_train >= 1, n_val >= 1 and long_side >= 64")
        self.root, self.workers = Path(root), workers
        self.params = {"seed": seed, "n_train": n_train, "n_val": n_val, "long_side": long_side}
        self.dataset_root = self.root / short_hash({"version": GENERATOR_VERSION, **self.params})

    def prepare(self) -> Path:
        """Generate the set if it is not there yet; return its root (the folder holding WIDER_train/)."""
        return generate_once(self.dataset_root, self._generate, f"synthetic WIDER FACE set {self.params}")

    def _generate(self, staging: Path) -> dict:
        jobs = self._plan(staging)
        faces = process_map(render_scene, jobs, self.workers, desc="drawing synthetic WIDER FACE scenes")
        split_names = list(SPLIT_FOLDERS)
        for s, split in enumerate(split_names):
            blocks = [(job, rows) for job, rows in zip(jobs, faces, strict=True) if job.split == s]
            _write_annotations(staging / ANNOTATIONS.format(split=split), blocks, degenerate_first=split == "train")
        _write_ground_truth(staging / GROUND_TRUTH,
                            [(job, rows) for job, rows in zip(jobs, faces, strict=True) if job.split == 1])
        return {"generator": __name__, "version": GENERATOR_VERSION, "params": self.params, "images": len(jobs),
                "faces": int(sum(len(rows) for rows in faces))}

    def _plan(self, staging: Path) -> list[SceneJob]:
        p, jobs = self.params, []
        for s, (split, count) in enumerate((("train", p["n_train"]), ("val", p["n_val"]))):
            for i in range(count):
                event = EVENTS[i % len(EVENTS)]
                number, _, title = event.partition("--")
                folder = staging / SPLIT_FOLDERS[split] / "images" / event
                folder.mkdir(parents=True, exist_ok=True)
                long, short = p["long_side"], round(p["long_side"] * 3 / 4)
                width, height = (long, short) if (i % 4) else (short, long)
                name = f"{number}_{title}_kemotion_{split}_{i}.jpg"
                jobs.append(SceneJob(p["seed"], s, i, width, height, str(folder / name)))
        return jobs


def _write_annotations(path: Path, blocks: list[tuple[SceneJob, np.ndarray]], degenerate_first: bool) -> None:
    """The bbx_gt text: path, count, rows; `0` then one all-zero row for an image without faces. With
    `degenerate_first`, the first image with faces gets one extra zero-width row, as some real rows are."""
    lines = []
    for n, (job, rows) in enumerate(blocks):
        if degenerate_first and n == next(i for i, (_, r) in enumerate(blocks) if len(r)):
            rows = np.vstack([rows, [[rows[0, 0], rows[0, 1], 0, rows[0, 3], 0, 0, 0, 0, 0, 0]]])
        lines += [_relative(job), str(len(rows))]
        lines += [" ".join(map(str, row)) for row in (rows if len(rows) else np.zeros((1, 10), np.int64))]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_ground_truth(folder: Path, blocks: list[tuple[SceneJob, np.ndarray]]) -> None:
    """wider_face_val.mat and wider_{easy,medium,hard}_val.mat: (events, 1) cells of per-image cells."""
    folder.mkdir(parents=True, exist_ok=True)
    by_event = {event: [(job, rows) for job, rows in blocks if _relative(job).startswith(event + "/")]
                for event in EVENTS}
    events = [e for e in EVENTS if by_event[e]]

    def cells(make) -> np.ndarray:
        outer = np.empty((len(events), 1), dtype=object)
        for i, event in enumerate(events):
            inner = np.empty((len(by_event[event]), 1), dtype=object)
            for j, (job, rows) in enumerate(by_event[event]):
                inner[j, 0] = make(job, rows)
            outer[i, 0] = inner
        return outer

    event_list = np.empty((len(events), 1), dtype=object)
    for i, event in enumerate(events):
        event_list[i, 0] = event
    base = {"event_list": event_list, "file_list": cells(lambda job, rows: Path(job.path).stem),
            "face_bbx_list": cells(lambda job, rows: rows[:, :4].astype(np.int32).reshape(-1, 4))}
    for a, attribute in enumerate(("blur", "expression", "illumination", "invalid", "occlusion", "pose")):
        base[f"{attribute}_label_list"] = cells(lambda job, rows, a=a: rows[:, 4 + a].astype(np.uint8).reshape(-1, 1))
    savemat(folder / "wider_face_val.mat", base)
    for subset in SUBSETS:
        kept = cells(lambda job, rows, subset=subset: (np.flatnonzero(subset_of(rows)[subset]) + 1)
                     .astype(np.uint16).reshape(-1, 1))
        savemat(folder / f"wider_{subset}_val.mat", {**base, "gt_list": kept})


def _relative(job: SceneJob) -> str:
    path = Path(job.path)
    return f"{path.parent.name}/{path.name}"
