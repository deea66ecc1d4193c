"""What `kemotion.predict` writes, as it goes: `predictions.jsonl` (a line per image or video frame),
`predictions.csv` (a row per face), `skipped.csv` (a file that could not be read, and why), and annotated images
(and videos): each face's box and `기쁨 happy 0.93`, drawn by ultralytics' `Annotator` in NanumGothic (bundled
with koreanize-matplotlib, so Hangul draws without a font download).

Lines and rows are appended and flushed batch by batch, so a killed run keeps every finished image; `done_frames`
reads them back to resume (a torn last line is dropped, atomically, and its image done again). A JSON line is an
image's done-marker: on resume the CSV is written again from the finished lines, so a kill between an image's rows
and its line (or a line flushed before its rows) leaves no duplicate and no missing row. An annotated image keeps
its file's name, extension and format, and an annotated video its file's name with `.mp4` added (unless it ends so), in
the folders below the source's root: two files never share one.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from kemotion.core.emotions import ENGLISH_NAMES
from kemotion.core.io import atomic_write
from kemotion.inference.results import EmotionResult, Face
from kemotion.inference.sources import Frame, FrameKey, Skip, frame_key

PREDICTIONS, ROWS, SKIPPED = "predictions.jsonl", "predictions.csv", "skipped.csv"
BOX_FIELDS = ["x1", "y1", "x2", "y2"]
ROW_FIELDS = ["source", "frame", "face", *BOX_FIELDS, "detector_confidence", "label", "label_ko",
              *(f"p_{name}" for name in ENGLISH_NAMES)]
BOX_COLOUR = (255, 64, 64)
JPEG_QUALITY = 90  # of an annotated JPEG


def prediction_line(prediction: EmotionResult) -> dict:
    frame = prediction.frame
    return {"source": frame.source, "frame": frame.index, "width": frame.width, "height": frame.height,
            "faces": [face.as_dict() for face in prediction.faces]}


def face_rows(line: dict) -> list[dict]:
    """The CSV rows of a JSON line (`prediction_line`): one per face."""
    return [{"source": line["source"], "frame": line["frame"], "face": number,
             **dict(zip(BOX_FIELDS, face["box"], strict=True)), "detector_confidence": face["detector_confidence"],
             "label": face["label"], "label_ko": face["label_ko"],
             **{f"p_{name}": p for name, p in face["probabilities"].items()}}
            for number, face in enumerate(line["faces"])]


def finished_lines(directory: Path) -> list[dict]:
    """The JSON lines a previous run in `directory` wrote, up to a torn last line."""
    lines = []
    if (directory / PREDICTIONS).exists():
        for text in (directory / PREDICTIONS).read_text(encoding="utf-8").splitlines():
            try:
                lines.append(json.loads(text))
            except ValueError:
                break  # the torn last line of a killed run
    return lines


def done_frames(directory: Path) -> frozenset[FrameKey]:
    """The images and video frames a previous run in `directory` finished (predicted or skipped)."""
    done = {frame_key(line["source"], line["frame"]) for line in finished_lines(directory)}
    if (directory / SKIPPED).exists():
        with open(directory / SKIPPED, encoding="utf-8", newline="") as handle:
            done.update(frame_key(row["source"]) for row in csv.DictReader(handle))
    return frozenset(done)


class PredictionWriter(contextlib.ExitStack):
    """Appends each prediction to the tables (and draws it, when `save`) as it comes; a context manager."""

    def __init__(self, directory: Path, save: bool = True, root: Path | None = None, resume: bool = False) -> None:
        """`root`: the folder annotated images and videos are named relative to (others: by their file name)."""
        super().__init__()
        self.directory, self.save, self.root = directory, save, root
        directory.mkdir(parents=True, exist_ok=True)
        if resume:
            _drop_torn_line(directory / PREDICTIONS)
            _rows_again(directory)
        mode = "a" if resume else "w"
        self._lines = self.enter_context(open(directory / PREDICTIONS, mode, encoding="utf-8"))  # noqa: SIM115 (the stack closes it)
        self._rows = self._csv(directory / ROWS, ROW_FIELDS, mode)
        self._skips = self._csv(directory / SKIPPED, ["source", "reason"], mode)
        self._video: tuple[str, cv2.VideoWriter] | None = None  # the video being drawn: its source, its writer
        self.callback(self._release_video)

    def write(self, result: EmotionResult | Skip) -> None:
        if isinstance(result, Skip):
            self._skips.writerow({"source": result.source, "reason": result.reason})
            return
        line = prediction_line(result)
        self._rows.writerows(face_rows(line))
        self._lines.write(json.dumps(line, ensure_ascii=False) + "\n")  # last: the done-marker
        if self.save:
            self._draw(result)

    def replay(self, frames: Iterable[Frame]) -> None:
        """Draw a resumed video's frames done before from their lines, so the annotated video is whole again."""
        lines = {frame_key(line["source"], line["frame"]): line for line in finished_lines(self.directory)}
        for frame in frames:
            line = lines.get(frame_key(frame.source, frame.index))
            if line is not None:  # a frame done as a skip row has no picture
                self._draw(EmotionResult(frame, [Face.from_dict(face) for face in line["faces"]]))

    def flush(self) -> None:
        for handle in self._handles:
            handle.flush()

    def _csv(self, path: Path, fields: list[str], mode: str) -> csv.DictWriter:
        fresh = mode == "w" or not path.exists()
        handle = self.enter_context(open(path, mode, encoding="utf-8", newline=""))  # noqa: SIM115
        self._handles = [*getattr(self, "_handles", [self._lines]), handle]
        writer = csv.DictWriter(handle, fields)
        if fresh:
            writer.writeheader()
        return writer

    def _release_video(self) -> None:
        if self._video is not None:
            self._video[1].release()
            self._video = None

    def _draw(self, prediction: EmotionResult) -> None:
        frame = prediction.frame
        picture = annotate(frame.decode(None), prediction.faces)
        if frame.fps is not None:  # a video frame: into its video's annotated copy
            self._video_of(frame).write(cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
            return
        relative = self._relative(frame.source)
        kind = Image.registered_extensions().get(relative.suffix.lower(), "PNG")  # the file's own format
        with atomic_write(self.directory / "annotated" / relative, "wb") as handle:
            Image.fromarray(picture).save(handle, kind, **({"quality": JPEG_QUALITY} if kind == "JPEG" else {}))

    def _relative(self, source: str) -> Path:
        path = Path(source)
        return path.relative_to(self.root) if self.root and path.is_relative_to(self.root) else Path(path.name)

    def _video_of(self, frame: Frame) -> cv2.VideoWriter:
        """The writer of the annotated copy of `frame`'s video; the one before it is finished (a source's videos come
        one after the other)."""
        if self._video is None or self._video[0] != frame.source:
            self._release_video()
            relative = self._relative(frame.source)
            if relative.suffix.lower() != ".mp4":
                relative = relative.with_name(f"{relative.name}.mp4")
            path = self.directory / "annotated" / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            self._video = frame.source, cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), frame.fps,
                                                        (frame.width, frame.height))
        return self._video[1]


def annotate(image: np.ndarray, faces: list[Face]) -> np.ndarray:
    """A copy of an RGB image with each face's box and `기쁨 happy 0.93` drawn on it (line and text sized to the image
    by Annotator)."""
    from ultralytics.utils.plotting import Annotator  # imports torch: only once something is drawn

    annotator = Annotator(image, font=korean_font(), pil=True)  # the label's Hangul is drawn by PIL
    for face in faces:
        annotator.box_label(face.box, f"{face.label_ko} {face.label} {face.confidence:.2f}", BOX_COLOUR)
    return annotator.result()  # in the order it was given (Annotator's colours are ours, so RGB stays RGB)


@functools.cache
def korean_font() -> str:
    """NanumGothic's file, from koreanize-matplotlib, whose import registers it with matplotlib. Annotator looks its
    font up (ultralytics' `check_font`) in its settings folder, then among matplotlib's fonts, then downloads it: the
    registered file is found at the second step, so nothing is ever downloaded."""
    import koreanize_matplotlib

    return koreanize_matplotlib.get_font_ttf_path()


def _rows_again(directory: Path) -> None:
    """predictions.csv from the finished JSON lines alone, whatever a killed run left in it."""
    with atomic_write(directory / ROWS, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, ROW_FIELDS)
        writer.writeheader()
        for line in finished_lines(directory):
            writer.writerows(face_rows(line))


def _drop_torn_line(path: Path) -> None:
    """A killed run may leave half a line at the end of the JSON lines; cut it off before appending, in a new file
    renamed over the old one (a kill now leaves one or the other, whole)."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with atomic_write(path, "wb") as handle:
            handle.write(data[: data.rfind(b"\n") + 1])
