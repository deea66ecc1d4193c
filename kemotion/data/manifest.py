"""The manifest: the paper's classification and detector subsets, split once and reused by every run.

Built from the AI-Hub reader's records: per class, images are taken by annotator agreement (3/3 first, then 2/3,
… down to `min_agreement`, as the paper prefers unanimous images), each resolved (image decodes, face box valid)
before it counts. Written once under the cache as CSVs beside a skip report and a summary, keyed by the dataset
and the selection, so all runs of a sweep see the same split.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from kemotion.core.emotions import EMOTIONS
from kemotion.core.io import atomic_write, build_once
from kemotion.core.keys import short_hash, without
from kemotion.data import aihub
from kemotion.data.skips import SkipReport
from kemotion.data.split import assign_splits

log = logging.getLogger(__name__)

MANIFEST_VERSION = 3  # bump when the selection logic or the columns change (2: background_majority, 3: relative paths)
COMPLETE_MARKER = "selection.json"  # written last: a manifest folder without it is incomplete


class DatasetError(RuntimeError):
    """The dataset cannot give a manifest at all (no label files, no usable images)."""


@dataclass(frozen=True)
class Selection:
    """Which images the manifest takes and how it splits them (defaults: the paper's)."""

    n_per_class: int = 7000  # paper Table 1
    min_agreement: int = 3  # annotators agreeing with the uploader; lower tiers fill up a class when allowed
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train/val/test, paper Table 2
    subject_disjoint: bool = False  # no person in two splits (the paper split at random)
    n_detector: int = 3500  # paper §3.2: images for the face detector, split the same way
    seed: int = 0
    workers: int = 4  # threads resolving images (PIL decodes outside the GIL); not part of the manifest's key

    def __post_init__(self) -> None:
        object.__setattr__(self, "split", tuple(float(x) for x in self.split))
        if len(self.split) != 3 or abs(sum(self.split) - 1) > 1e-6 or min(self.split) < 0:
            raise ValueError(f"split must be three non-negative fractions summing to 1, got {self.split}")
        if not 0 <= self.min_agreement <= 3:
            raise ValueError(f"min_agreement must be 0..3, got {self.min_agreement}")


@dataclass
class Manifest:
    directory: Path
    classification: pd.DataFrame  # one row per image: Sample fields + "split"
    detector: pd.DataFrame  # the same columns, the detector subset
    report: SkipReport

    @property
    def key(self) -> str:
        return self.directory.name

    def summary(self) -> str:
        return summarise(self.classification, self.detector, self.report)


def load_or_build(dataset_root: str | Path, selection: Selection, cache_dir: str | Path) -> Manifest:
    """The manifest of this dataset and selection: read from the cache, or built once and written there."""
    dataset_root = Path(dataset_root).resolve()
    directory = Path(cache_dir).resolve() / "manifests" / manifest_key(dataset_root, selection)

    def build_and_write() -> Manifest:
        directory.mkdir(parents=True, exist_ok=True)
        manifest = build(dataset_root, selection, directory)
        write(manifest, dataset_root, selection)
        return manifest

    return build_once(directory, build_and_write, done=(directory / COMPLETE_MARKER).exists,
                      reuse=lambda: read(directory, dataset_root), what=f"manifest of {dataset_root}")


def manifest_key(dataset_root: Path, selection: Selection) -> str:
    """A short hash of the dataset's relative file index (`aihub.dataset_index`: its label files and images, by name
    and size — not where the folder is) and the selection, less its runtime settings (worker counts)."""
    return short_hash([MANIFEST_VERSION, aihub.dataset_index(dataset_root), without(asdict(selection))])


def build(dataset_root: Path, selection: Selection, directory: Path) -> Manifest:
    report = SkipReport()
    records = aihub.read_label_records(dataset_root, report)
    if not records:
        raise DatasetError(f"no usable AI-Hub label records under {dataset_root}:\n{report.format_counts()}")
    images = aihub.index_images(dataset_root, report)
    by_class = _candidates_by_class(records, images, report)
    wanted = selection.n_per_class * len(EMOTIONS) + selection.n_detector
    with tqdm(total=wanted, desc="probing images and face boxes for the manifest", unit="img") as progress:
        resolver = _Resolver(images, report, selection.workers, progress)
        classification = []
        for emotion in EMOTIONS:
            ranked = _rank_by_agreement(by_class[emotion.index], selection.min_agreement, selection.seed)
            taken = resolver.first_valid(ranked, selection.n_per_class)
            if len(taken) < selection.n_per_class:
                log.warning("class %s: only %d of %d requested images usable (agreement >= %d)",
                            emotion.english, len(taken), selection.n_per_class, selection.min_agreement)
            classification += taken
        if not classification:
            raise DatasetError(f"no image of {dataset_root} could be used:\n{report.format_counts()}")

        per_class = -(-selection.n_detector // len(EMOTIONS))  # ceil: balanced over classes, trimmed below
        detector = []
        for emotion in EMOTIONS:
            shuffled = _shuffled(by_class[emotion.index], selection.seed + 1)  # any agreement: only the box matters
            detector += resolver.first_valid(shuffled, per_class)
    detector = _shuffled(detector, selection.seed + 2)[: selection.n_detector]

    return Manifest(
        directory,
        _with_splits(_frame(classification), selection, selection.seed, stratify=True),
        _with_splits(_frame(detector), selection, selection.seed + 3, stratify=False),  # one class: face
        report,
    )


def _candidates_by_class(records, images, report: SkipReport) -> dict[int, list[aihub.LabelRecord]]:
    """Records that have an image; the others go to the report (records are unique by file name already)."""
    by_class: dict[int, list[aihub.LabelRecord]] = {e.index: [] for e in EMOTIONS}
    for record in records:
        if record.filename in images:
            by_class[record.emotion.index].append(record)
        else:
            report.append(aihub.missing_image_problem(record))
    return by_class


def _rank_by_agreement(records, min_agreement: int, seed: int) -> list:
    """Unanimous records first, then 2/3, … down to min_agreement; random (by seed) within a tier."""
    ranked = []
    for agreement in range(3, min_agreement - 1, -1):
        ranked += _shuffled([r for r in records if r.agreement == agreement], seed)
    return ranked


def _shuffled(items: list, seed: int) -> list:
    order = np.random.default_rng(seed).permutation(len(items))
    return [items[i] for i in order]


class _Resolver:
    """Resolves records to samples (image probed, face box checked) once each, in parallel, in rank order."""

    def __init__(self, images: dict[str, Path], report: SkipReport, workers: int, progress: tqdm) -> None:
        self.images, self.report, self.workers, self.progress = images, report, max(1, workers), progress
        self.done: dict[str, aihub.Sample | None] = {}

    def first_valid(self, ranked: list, n: int) -> list[aihub.Sample]:
        taken: list[aihub.Sample] = []
        position = 0
        while len(taken) < n and position < len(ranked):
            batch = ranked[position: position + max(2 * (n - len(taken)), 8 * self.workers)]
            position += len(batch)
            with ThreadPoolExecutor(self.workers) as pool:
                samples = list(pool.map(self._resolve_once, batch))
            new = [s for s in samples if s is not None][: n - len(taken)]
            taken += new
            self.progress.update(len(new))
            self.progress.set_postfix(skipped=sum(sample is None for sample in self.done.values()), refresh=False)
        return taken

    def _resolve_once(self, record: aihub.LabelRecord) -> aihub.Sample | None:
        if record.filename not in self.done:
            self.done[record.filename] = self._resolve(record)
        return self.done[record.filename]

    def _resolve(self, record: aihub.LabelRecord) -> aihub.Sample | None:
        path = self.images[record.filename]
        try:
            sample = aihub.resolve(record, path)
        except (aihub.BadImage, aihub.BadBox) as error:
            self.report.append(aihub.problem_from(error, record, path))
            return None
        for kind, detail in aihub.notes(sample):
            self.report.add(path, kind, detail, action="kept", record=record.filename)
        return sample


def _frame(samples: list[aihub.Sample]) -> pd.DataFrame:
    columns = [f.name for f in fields(aihub.Sample)]
    return pd.DataFrame([asdict(s) for s in samples], columns=columns)


def _with_splits(frame: pd.DataFrame, selection: Selection, seed: int, stratify: bool) -> pd.DataFrame:
    groups = frame["subject_id"] if selection.subject_disjoint else None
    if groups is not None and (groups == "").any():
        raise DatasetError("subject_disjoint=true needs a subject id for every image; "
                           f"{int((groups == '').sum())} file names carry none")
    strata = frame["label"] if stratify else pd.Series(0, index=frame.index)
    frame = frame.assign(split=assign_splits(strata, selection.split, seed, groups))
    return frame.sort_values(["split", "label", "filename"], kind="stable").reset_index(drop=True)


def write(manifest: Manifest, dataset_root: Path, selection: Selection) -> None:
    """The manifest's files; image paths relative to the dataset root, so a moved dataset keeps its manifest."""
    directory = manifest.directory
    for name, frame in (("classification", manifest.classification), ("detector", manifest.detector)):
        relative = frame.assign(path=[str(Path(path).relative_to(dataset_root)) for path in frame["path"]])
        with atomic_write(directory / f"{name}.csv", "w", newline="", encoding="utf-8") as handle:
            relative.to_csv(handle, index=False)
    manifest.report.write_csv(directory / "skip_report.csv")
    with atomic_write(directory / "summary.txt", "w", encoding="utf-8") as handle:
        handle.write(manifest.summary() + "\n")
    with atomic_write(directory / COMPLETE_MARKER, "w", encoding="utf-8") as handle:
        json.dump({"version": MANIFEST_VERSION, "dataset_root": str(dataset_root), **asdict(selection)},
                  handle, ensure_ascii=False, indent=2)


def read(directory: str | Path, dataset_root: str | Path) -> Manifest:
    """A written manifest, its image paths under `dataset_root` (wherever the dataset is now)."""
    directory, dataset_root = Path(directory), Path(dataset_root)
    text = {"filename": str, "subject_id": str, "answers": str, "path": str}
    frames = [pd.read_csv(directory / f"{name}.csv", dtype=text, keep_default_na=False)
              for name in ("classification", "detector")]
    frames = [frame.assign(path=[str(dataset_root / path) for path in frame["path"]]) for frame in frames]
    return Manifest(directory, *frames, SkipReport.read_csv(directory / "skip_report.csv"))


def summarise(classification: pd.DataFrame, detector: pd.DataFrame, report: SkipReport) -> str:
    """Counts per class × split, per class × agreement, the detector split, and the skip report's counts."""
    names = {e.index: f"{e.english} {e.korean}" for e in EMOTIONS}
    labels = classification["label"].map(names)
    by_split = pd.crosstab(labels, classification["split"], margins=True, margins_name="all")
    by_agreement = pd.crosstab(labels, classification["agreement"], margins=True, margins_name="all")
    return "\n".join([
        f"classification subset: {len(classification)} images",
        by_split.to_string(),
        "\nannotators agreeing with the uploader (columns: 3 = unanimous):",
        by_agreement.to_string(),
        f"\ndetector subset: {len(detector)} images, "
        + ", ".join(f"{k} {v}" for k, v in detector["split"].value_counts().sort_index().items()),
        f"\nskip report ({len(report)} entries):",
        report.format_counts(),
    ])
