"""A source predicted into an output folder, as `python -m kemotion.predict` does: streamed in batches with a
progress bar, written as it goes (`kemotion.inference.writers`), resumable, and summed up at the end.

An output folder belongs to one prediction. `output_folder` makes `<project>/<name>` anew (`<name>-2`, `-3`, … when
that is taken, even by a process that started in the same second) and records in `predict.json` what decides its
results: the model files' SHA-256, the crop policy and settings, the resolved source. Only `resume=true` enters a
folder again, and only one holding the same record and no symbolic link; another model, source or setting is
refused, never mixed in. A prediction that fails before its first result leaves no folder behind.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout
from tqdm import tqdm

from kemotion.core.emotions import parse_emotion
from kemotion.core.io import atomic_write
from kemotion.inference.pipeline import EmotionPipeline
from kemotion.inference.results import EmotionResult
from kemotion.inference.sources import Skip, Source, open_source
from kemotion.inference.window import LiveWindow
from kemotion.inference.writers import PredictionWriter, done_frames

RECORD, LOCK = "predict.json", ".predict.lock"

log = logging.getLogger(__name__)


@dataclass
class Summary:
    images: int = 0  # images or video frames predicted
    faces: int = 0
    no_face: int = 0  # images without a face
    skipped: int = 0  # files that could not be read (skipped.csv)
    resumed: int = 0  # files a previous run in the folder had done
    labelled: int = 0  # images whose file name names an emotion (AI-Hub and the synthetic set do)
    correct: int = 0  # ... whose first face (the one training would crop) has that label
    lines: list[str] = field(default_factory=list)

    def add(self, result: EmotionResult | Skip) -> None:
        if isinstance(result, Skip):
            self.skipped += 1
            return
        self.images += 1
        self.faces += len(result.faces)
        self.no_face += not result.faces
        truth = label_in_name(result.frame.source)
        if truth is not None:
            self.labelled += 1
            self.correct += bool(result.faces) and result.faces[0].label == truth

    def __str__(self) -> str:
        text = (f"{self.images} images, {self.faces} faces, {self.no_face} without a face, {self.skipped} skipped"
                + (f", {self.resumed} done before (resumed)" if self.resumed else ""))
        if self.labelled:
            text += (f"; accuracy against the labels in the file names {self.correct / self.labelled:.3f} "
                     f"({self.correct}/{self.labelled}, an image without a face counts as wrong)")
        return text


def label_in_name(source: str) -> str | None:
    """The emotion an AI-Hub file name carries (`<subject>_<sex>_<age>_<emotion>_<place>_...`), if it names one."""
    found = set()
    for token in Path(source).stem.split("_"):
        try:
            found.add(parse_emotion(token).english)
        except KeyError:
            continue
    return found.pop() if len(found) == 1 else None


def prediction_identity(pipe: EmotionPipeline, found: Source, vid_stride: int = 1) -> dict:
    """What decides an output folder's results: the pipeline's identity, the resolved source and its frame stride."""
    return {"pipeline": pipe.identity(), "source": found.resolved,
            "vid_stride": vid_stride if found.videos else None}


def check_name(name: str) -> None:
    """An output folder's name is one folder name: `name=../..` would write outside `project`."""
    separators = {os.sep, os.altsep} - {None}
    if not name or name in {".", ".."} or any(separator in name for separator in separators):
        raise ValueError(f"name= must be one folder name (no '/', not '.' or '..'), not {name!r}: the output "
                         "folder is <project>/<name>")


@contextlib.contextmanager
def output_folder(project: Path, name: str, identity: dict, resume: bool = False,
                  options: dict | None = None) -> Iterator[tuple[Path, bool]]:
    """(the folder to predict into, whether it is resumed), owned while the block runs: `<project>/<name>` made
    anew, or `<name>-N` when taken; with `resume`, an existing `<project>/<name>` of the same `identity`. A new
    folder is removed again when the block fails before a result is written in it: nothing there to resume."""
    check_name(name)
    wanted = Path(project) / name
    resumed = resume and wanted.exists()
    folder = wanted if resumed else _new_folder(wanted)
    lock = FileLock(folder / LOCK, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise RuntimeError(f"another process is predicting into {folder} (it holds {LOCK}): wait for it, or give "
                           "another name=") from None
    try:
        if resumed:
            _check_no_links(folder)
            _check_identity(folder, identity)
        else:
            with atomic_write(folder / RECORD, "w", encoding="utf-8") as handle:
                json.dump({"identity": identity, "options": options or {}}, handle, indent=1, ensure_ascii=False)
        yield folder, resumed
    except BaseException:
        if not resumed and not done_frames(folder):
            shutil.rmtree(folder)
            log.info("Removed %s: the prediction failed before its first result", folder)
        raise
    finally:
        lock.release()


def _new_folder(wanted: Path) -> Path:
    """`wanted`, or `wanted-2`, `-3`, …: the first that this process creates itself. (ultralytics' increment_path
    tests for a free name and then makes it, which two processes can both pass, and it imports torch.)"""
    wanted.parent.mkdir(parents=True, exist_ok=True)
    for number in itertools.count(1):
        folder = wanted if number == 1 else wanted.with_name(f"{wanted.name}-{number}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise AssertionError("unreachable")


def _check_no_links(folder: Path) -> None:
    """A resumed folder holds only what predict wrote: resume appends to its tables and writes pictures below it, so a
    symbolic link there (the folder itself included) would have it write to a file or folder anywhere."""
    for path in [folder, *folder.rglob("*")]:  # rglob does not descend into linked folders, but lists them
        if path.is_symlink():
            raise ValueError(f"{folder} cannot be resumed: {path} is a symbolic link, and predict writes only into "
                             "its own folder; give another name= (or resume=false: a new folder)")


def _check_identity(folder: Path, identity: dict) -> None:
    path = folder / RECORD
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))["identity"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{folder} cannot be resumed: {path} is missing or unreadable ({error}), so what made its "
                         "results is unknown; give another name= (or resume=false: a new folder)") from None
    here = json.loads(json.dumps(identity))  # as JSON gives it back
    if recorded != here:
        changed = "; ".join(f"{key}: {old!r} there, {new!r} here" for key, (old, new) in _differences(recorded, here))
        raise ValueError(f"{folder} holds predictions made with other settings ({changed}); resuming would mix two "
                         "results in one table: give another name= (or resume=false: a new folder)")


def _differences(there: dict, here: dict, prefix: str = "") -> Iterator[tuple[str, tuple]]:
    for key in sorted(set(there) | set(here)):
        old, new = there.get(key), here.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            yield from _differences(old, new, f"{prefix}{key}.")
        elif old != new:
            yield f"{prefix}{key}", (old, new)


def predict_into(pipe: EmotionPipeline, source: str | int | Source, directory: Path, batch_size: int = 8,
                 vid_stride: int = 1, save: bool = True, resume: bool = False,
                 window: LiveWindow | None = None) -> Summary:
    """Predict every image or frame of `source` into `directory`; a resumed run skips the frames already done (a
    video's are drawn again from their lines, so its annotated video is whole). A `window` shows each result as it
    comes, and its q or Esc ends the prediction there (what is done is kept)."""
    found = source if isinstance(source, Source) else open_source(source)
    done = done_frames(directory) if resume else frozenset()
    if done and found.live:
        raise ValueError(f"{directory} holds frames of {found.resolved}: a live stream cannot resume; predict into a "
                         "new folder (resume=false)")
    summary = Summary(resumed=len(done))
    total = found.count(vid_stride)
    with PredictionWriter(directory, save=save, root=found.root, resume=resume) as writer, \
            tqdm(total=None if total is None else max(total - len(done), 0) or None, unit="img", desc="predicting",
                 dynamic_ncols=True) as progress:
        for result in _predicted(pipe, found, writer, done, batch_size, vid_stride):
            writer.write(result)
            summary.add(result)
            progress.update()
            if progress.n % batch_size == 0:
                writer.flush()
            if window is not None and not window.show(result):
                break
    return summary


def _predicted(pipe: EmotionPipeline, found: Source, writer: PredictionWriter, done: frozenset,
               batch_size: int, vid_stride: int) -> Iterator[EmotionResult | Skip]:
    """The results of the frames not `done`, part by part (the images, then each video), a resumed video's done
    frames drawn from their lines just before its new ones."""
    for part in found.parts():
        if done and writer.save and part.videos:
            writer.replay(part.frames(vid_stride, keep=done.__contains__))
        yield from pipe.stream(part.frames(vid_stride, keep=(lambda key: key not in done) if done else None),
                               batch_size)
