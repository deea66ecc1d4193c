"""The crop cache: each manifest image cropped once per cropper, reused by every classifier run.

Crops live under `<cache>/crops/<manifest key>/<cropper key>/` (the key hashes the cropper's parameters, the
detector checkpoint's hash included), one JPEG per source image and beside it a small JSON of what the cropper saw
(the faces it found, the fallback it used). Both are written atomically and the JSON last, so a killed build loses
nothing and a rerun only does the images without one. When a subset is complete, its table (`classification.csv` /
`detector.csv`: the manifest rows with their crop paths), the rows dropped for want of a face and the preprocessing
report (`kemotion.preprocess.crop_report`) are written beside them, the table last.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from kemotion.core.io import atomic_write, build_once
from kemotion.core.keys import cropper_key
from kemotion.core.parallel import process_map
from kemotion.data.manifest import Manifest
from kemotion.preprocess import crop_report
from kemotion.preprocess.cropper import Cropped, Cropper, SourceImage
from kemotion.preprocess.stored import encode_crop

log = logging.getLogger(__name__)

CACHE_VERSION = 3  # 2: a JSON of what the cropper saw beside each crop; 3: non-JPEGs reduced, 16-bit grey scaled


class CropCache:
    def __init__(self, cropper: Cropper, cache_dir: str | Path, workers: int = 2) -> None:
        self.cropper = cropper
        self.cache_dir = Path(cache_dir).resolve()
        self.workers = workers

    def directory(self, manifest: Manifest) -> Path:
        return self.cache_dir / "crops" / manifest.key / cropper_key(self.cropper, cache_version=CACHE_VERSION)

    def table_path(self, manifest: Manifest, subset: str = "classification") -> Path:
        return self.directory(manifest) / f"{subset}.csv"

    def build(self, manifest: Manifest, subset: str = "classification") -> pd.DataFrame:
        """The rows of a manifest subset ("classification" or "detector") with their `crop_path`, cropping what is
        missing. The subsets share one folder: an image in both is cropped once."""
        directory = self.directory(manifest)
        directory.mkdir(parents=True, exist_ok=True)
        return build_once(directory, lambda: self._crop_subset(manifest, subset, directory),
                          done=lambda: self._complete(manifest, subset), reuse=lambda: self.read(manifest, subset),
                          what=f"{self.cropper.name} crops of the {subset} subset")

    def _crop_subset(self, manifest: Manifest, subset: str, directory: Path) -> pd.DataFrame:
        """Crop what is missing, then write the subset's reports and, last, its table."""
        frame = getattr(manifest, subset).assign(
            crop_path=[str(directory / f"{Path(name).stem}.jpg") for name in getattr(manifest, subset)["filename"]])
        self._crop_missing(frame)
        seen = crop_report.per_image(frame, [_read_seen(path) for path in frame["crop_path"]])
        summary = crop_report.summarise(seen, self.cropper.name, subset)
        log.info("%s", summary)
        dropped = seen["fallback"] == "drop"
        if dropped.any():
            log.warning("%s: dropped %d of the %s subset's images without a face; see %s_dropped.csv",
                        self.cropper.name, dropped.sum(), subset, subset)
        _write_csv(directory / f"{subset}_report.csv", seen)
        with atomic_write(directory / f"{subset}_report.txt", "w", encoding="utf-8") as handle:
            handle.write(summary + "\n")
        _write_csv(directory / f"{subset}_dropped.csv",
                   frame.loc[dropped, ["filename", "path", "split", "label"]].assign(reason="no face found"))
        table = frame[~dropped].reset_index(drop=True)
        _write_csv(self.table_path(manifest, subset), table)
        return table

    def _complete(self, manifest: Manifest, subset: str) -> bool:
        """The subset's table is there and so is every crop it lists; when some were deleted since, a warning and
        False, so the build makes them again rather than a DataLoader worker failing on one mid-epoch."""
        table_path = self.table_path(manifest, subset)
        if not table_path.exists():
            return False
        listed = pd.read_csv(table_path, usecols=["crop_path"], dtype=str, keep_default_na=False)["crop_path"]
        missing = [path for path in listed if not os.path.exists(path)]
        if missing:
            log.warning("%d of the %d %s crops that %s lists are missing (%s, …): making them again", len(missing),
                        len(listed), self.cropper.name, table_path, missing[0])
        return not missing

    def read(self, manifest: Manifest, subset: str = "classification") -> pd.DataFrame:
        text = {"filename": str, "subject_id": str, "answers": str, "path": str, "crop_path": str}
        return pd.read_csv(self.table_path(manifest, subset), dtype=text, keep_default_na=False)

    def _crop_missing(self, frame: pd.DataFrame) -> None:
        todo = [(SourceImage(path, int(w), int(h)), target)
                for path, w, h, target in zip(frame["path"], frame["width"], frame["height"], frame["crop_path"],
                                              strict=True)
                if not _done(target)]
        log.info("%s crops: %d cached, %d to make in %s", self.cropper.name, len(frame) - len(todo), len(todo),
                 Path(frame["crop_path"].iloc[0]).parent if len(frame) else "-")
        size = self.cropper.batch_size
        batches = [todo[start:start + size] for start in range(0, len(todo), size)]
        process_map(functools.partial(crop_batch, self.cropper), batches, self.workers,
                    desc=f"cropping ({self.cropper.name}, {size} per batch)", unit="batch")


def crop_batch(cropper: Cropper, jobs: list[tuple[SourceImage, str]]) -> None:
    """Crop a batch of sources; write each crop's JPEG, then the JSON of what the cropper saw (the job's marker)."""
    for (source, target), cropped in zip(jobs, cropper.crop_files([source for source, _ in jobs]), strict=True):
        if cropped.image is not None:
            _write_jpeg(target, cropped.image, source.path)
        with atomic_write(_seen_path(target), "w", encoding="utf-8") as handle:
            json.dump(_seen(cropped), handle)


def read_crop(path: str) -> np.ndarray:
    """A cached crop as RGB uint8; a missing or unreadable one is named with how to rebuild it."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"cannot read cached crop {path}: damaged since its cache was built; delete it, and the next "
                      "run (or python -m kemotion.prepare) makes it again")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _write_jpeg(target: str, crop: np.ndarray, source: str) -> None:
    try:
        encoded = encode_crop(crop)
    except RuntimeError as error:
        raise RuntimeError(f"could not encode the crop of {source}: {error}") from error
    with atomic_write(target, "wb") as handle:
        handle.write(encoded)


def _seen(cropped: Cropped) -> dict:
    listed = {key: None if value is None else np.asarray(value).tolist()
              for key, value in (("faces", cropped.faces), ("scores", cropped.scores))}
    return {**listed, "picked": cropped.picked, "square_side": cropped.square_side, "fallback": cropped.fallback}


def _done(target: str) -> bool:
    """Cropped before: its JSON is there, and so is its JPEG unless it was dropped (a deleted crop is redone)."""
    if not _seen_path(target).exists():
        return False
    return Path(target).exists() or _read_seen(target)["fallback"] == "drop"


def _seen_path(target: str | Path) -> Path:
    return Path(target).with_suffix(".json")


def _read_seen(target: str) -> dict:
    path = _seen_path(target)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OSError(f"cannot read {path}: {exc}; delete it and run again to redo its crop") from exc


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    with atomic_write(path, "w", newline="", encoding="utf-8") as handle:
        frame.to_csv(handle, index=False)
