"""What `EmotionPipeline` returns: an `EmotionResult` per image or video frame, holding its `Face`s.

    result = pipe("photo.jpg")
    for face in result.faces:             # box, detector_confidence, label, label_ko, probabilities
        print(face.label_ko, face.label, face.confidence)
    result.plot()                          # the annotated image (RGB; bgr=True for OpenCV)
    result.save("annotated.jpg")
    result.to_json()                       # the line `kemotion.predict` writes in predictions.jsonl
    result.to_pandas()                     # its rows of predictions.csv: one per face, a column per class
    result.summary()                       # one dict per face, shaped like deepface's `DeepFace.analyze`

One representation from the pipeline to the files: `kemotion.predict` writes these objects, so a result's JSON and
rows are what predict writes for its image and its picture what predict draws, by the same functions
(`kemotion.inference.writers` owns the file formats and the drawing; imported here on first use, as it consumes these
objects). Shaped like ultralytics' `Results`
but not one: that class imports torch, and an exported pipeline (`from_export`) runs without it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kemotion.inference.sources import Frame
from kemotion.preprocess.cropper import Box

if TYPE_CHECKING:
    import pandas as pd

PERCENT = 100  # deepface gives emotion scores in percent


@dataclass(frozen=True)
class Face:
    box: Box  # x1, y1, x2, y2 in the upright (EXIF-applied) full-resolution frame; the whole frame for resize runs
    detector_confidence: float | None  # None when the run's cropper detects no faces (preprocess=resize)
    label: str  # English class name, e.g. "happy"
    label_ko: str  # Korean class name, e.g. "기쁨"
    probabilities: dict[str, float]  # English class name → probability, the 7 classes in kemotion's order

    @property
    def confidence(self) -> float:
        return self.probabilities[self.label]

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, face: dict) -> Face:
        """A face as `as_dict` wrote it (a line of predictions.jsonl)."""
        return cls(**{**face, "box": tuple(face["box"])})


@dataclass(frozen=True)
class EmotionResult:
    """One image or video frame and the faces found in it, in the order the run's cropper ranks them (the first is
    the one training would crop)."""

    frame: Frame  # where it came from (`source`, `index`) and its image, decoded again only to draw
    faces: list[Face]

    @property
    def source(self) -> str:
        """The file (or `<array>`, `<PIL image>`, `webcam:N`)."""
        return self.frame.source

    @property
    def index(self) -> int:
        """The frame's number in its video (0 for an image)."""
        return self.frame.index

    @property
    def orig_shape(self) -> tuple[int, int]:
        """(height, width) of the upright full-resolution image, as ultralytics names it."""
        return self.frame.height, self.frame.width

    def __len__(self) -> int:
        return len(self.faces)

    def __repr__(self) -> str:
        return (f"EmotionResult(source={self.source!r}, index={self.index}, orig_shape={self.orig_shape}, "
                f"faces={self.faces!r})")

    def to_dict(self) -> dict:
        """The result as `kemotion.predict` writes it, a line of predictions.jsonl."""
        from kemotion.inference.writers import prediction_line

        return prediction_line(self)

    def to_json(self) -> str:
        """`to_dict` as JSON, byte for byte predict's line (Korean names as they are, not escaped)."""
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str, frame: Frame) -> EmotionResult:
        """A result read back from `to_json`, with the frame it was made from (its image is not in the JSON)."""
        line = json.loads(text)
        if (line["source"], line["frame"]) != (frame.source, frame.index):
            raise ValueError(f"the JSON is the result of {line['source']} frame {line['frame']}, not of "
                             f"{frame.source} frame {frame.index}")
        return cls(frame, [Face.from_dict(face) for face in line["faces"]])

    def rows(self) -> list[dict]:
        """The result's rows of predictions.csv: one per face (source, frame, face, box, detector confidence, labels,
        a `p_<class>` column per class)."""
        from kemotion.inference.writers import face_rows

        return face_rows(self.to_dict())

    def to_pandas(self) -> pd.DataFrame:
        """`rows` as a pandas DataFrame (the columns of predictions.csv; none for an image without a face)."""
        import pandas as pd  # only here: the pipeline itself never needs it

        from kemotion.inference.writers import ROW_FIELDS

        return pd.DataFrame(self.rows(), columns=ROW_FIELDS)

    def summary(self) -> list[dict]:
        """One dict per face in the shape of deepface's `DeepFace.analyze` (what `kemotion.analyze` returns):
        `dominant_emotion`, `emotion` (each class's score in percent, summing to 100), `region` (x, y, w, h in pixels
        of the upright image) and `face_confidence` (the face detector's; None for a run without one, which classifies
        the whole image as one face)."""
        return [{"dominant_emotion": face.label,
                 "emotion": {name: PERCENT * p for name, p in face.probabilities.items()},
                 "region": _region(face.box),
                 "face_confidence": face.detector_confidence} for face in self.faces]

    def plot(self, bgr: bool = False) -> np.ndarray:
        """A copy of the full-resolution image with each face's box and `기쁨 happy 0.93`, as predict draws it: RGB, or
        BGR with `bgr` (for cv2.imshow, cv2.imwrite)."""
        from kemotion.inference.writers import annotate

        picture = annotate(self.frame.decode(None), self.faces)
        return np.ascontiguousarray(picture[..., ::-1]) if bgr else picture

    def save(self, path: str | Path) -> Path:
        """`plot` written to `path` (its folders made), in the format its extension names; the path."""
        from PIL import Image

        from kemotion.inference.writers import JPEG_QUALITY

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(self.plot()).save(path, quality=JPEG_QUALITY)  # formats other than JPEG and WebP ignore it
        return path


def _region(box: Box) -> dict[str, int]:
    """deepface's region of an x1, y1, x2, y2 box: whole pixels, its corner and size."""
    x1, y1, x2, y2 = (round(value) for value in box)
    return {"x": x1, "y": y1, "w": x2 - x1, "h": y2 - y1}
