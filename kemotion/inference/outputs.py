"""A source predicted into an output folder, as `python -m kemotion.predict` does: streamed in batches with a
progress bar, written as it goes (`kemotion.inference.writers`), resumable, and summed up at the end."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from kemotion.emotions import parse_emotion
from kemotion.inference.pipeline import EmotionPipeline, Prediction
from kemotion.inference.sources import Skip, open_source, video_fps
from kemotion.inference.writers import PredictionWriter, done_sources

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

    def add(self, result: Prediction | Skip) -> None:
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


def predict_into(pipe: EmotionPipeline, source: str | int, directory: Path, batch_size: int = 8,
                 vid_stride: int = 1, save: bool = True, resume: bool = False) -> Summary:
    """Predict every image or frame of `source` into `directory`; a resumed run skips the files already done."""
    found = open_source(source)
    done = done_sources(directory) if resume else frozenset()
    summary = Summary(resumed=len(done & {str(path) for path in found.files}))
    root = Path(found.spec) if Path(found.spec).is_dir() else None
    fps = video_fps(found.video) / vid_stride if found.video is not None else None
    total = len(found) - summary.resumed if found.video is None else -(-len(found) // vid_stride) or None
    with PredictionWriter(directory, save=save, root=root, resume=resume, fps=fps) as writer, \
            tqdm(total=total, unit="img", desc="predicting", dynamic_ncols=True) as progress:
        for result in pipe.stream(found.frames(vid_stride, done), batch_size):
            writer.write(result)
            summary.add(result)
            progress.update()
            if progress.n % batch_size == 0:
                writer.flush()
    return summary
