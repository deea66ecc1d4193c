"""The crop cache: each manifest image cropped once per cropper, reused by every classifier run.

Crops live under `<cache>/crops/<manifest key>/<cropper key>/` (the key hashes the cropper's parameters), one
JPEG per source image, each written atomically, so a killed build loses nothing and a rerun only does what is
missing. Beside them, `classification.csv` / `detector.csv` list a manifest subset's rows with their crop paths
(written last).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from filelock import FileLock

from kemotion.data import images
from kemotion.data.manifest import Manifest
from kemotion.io import atomic_write
from kemotion.parallel import process_map
from kemotion.preprocess.cropper import Cropper, cropper_key
from kemotion.preprocess.face_crop import NoFaceFound

log = logging.getLogger(__name__)

JPEG_QUALITY = 95


@dataclass(frozen=True)
class _Job:
    source: str
    target: str
    width: int
    height: int


class CropCache:
    def __init__(self, cropper: Cropper, cache_dir: str | Path, workers: int = 2) -> None:
        self.cropper = cropper
        self.cache_dir = Path(cache_dir).resolve()
        self.workers = workers

    def directory(self, manifest: Manifest) -> Path:
        return self.cache_dir / "crops" / manifest.key / cropper_key(self.cropper)

    def table_path(self, manifest: Manifest, subset: str = "classification") -> Path:
        return self.directory(manifest) / f"{subset}.csv"

    def build(self, manifest: Manifest, subset: str = "classification") -> pd.DataFrame:
        """The rows of a manifest subset ("classification" or "detector") with their `crop_path`, cropping what is
        missing. The subsets share one folder: an image in both is cropped once."""
        directory = self.directory(manifest)
        directory.mkdir(parents=True, exist_ok=True)
        table_path = self.table_path(manifest, subset)
        with FileLock(str(directory) + ".lock"):
            if table_path.exists():
                log.info("Reusing %s crops of the %s subset in %s", self.cropper.name, subset, directory)
                return self.read(manifest, subset)
            table, dropped = self._crop_missing(getattr(manifest, subset), directory)
            if len(dropped):
                log.warning("%s: dropped %d of the %s subset's images without a face; see %s_dropped.csv",
                            self.cropper.name, len(dropped), subset, subset)
            with atomic_write(directory / f"{subset}_dropped.csv", "w", newline="", encoding="utf-8") as handle:
                dropped.to_csv(handle, index=False)
            with atomic_write(table_path, "w", newline="", encoding="utf-8") as handle:
                table.to_csv(handle, index=False)
        return table

    def read(self, manifest: Manifest, subset: str = "classification") -> pd.DataFrame:
        text = {"filename": str, "subject_id": str, "answers": str, "path": str, "crop_path": str}
        return pd.read_csv(self.table_path(manifest, subset), dtype=text, keep_default_na=False)

    def _crop_missing(self, frame: pd.DataFrame, directory: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(the rows with their crop, the rows dropped for want of a face with the reason: fallback "drop")."""
        targets = [str(directory / f"{Path(name).stem}.jpg") for name in frame["filename"]]
        jobs = [_Job(src, dst, w, h) for src, dst, w, h in zip(frame["path"], targets, frame["width"],
                                                                frame["height"], strict=True)
                if not Path(dst).exists()]
        log.info("%s crops: %d cached, %d to make in %s", self.cropper.name, len(frame) - len(jobs), len(jobs),
                 directory)
        crop = functools.partial(crop_one, self.cropper)
        reasons = process_map(crop, jobs, self.workers, desc=f"cropping ({self.cropper.name})")
        why = {job.target: reason for job, reason in zip(jobs, reasons, strict=True) if reason is not None}
        table = frame.assign(crop_path=targets)
        kept = ~table["crop_path"].isin(why)
        dropped = table.loc[~kept, ["filename", "path", "split", "label"]].assign(
            reason=[why[t] for t in table.loc[~kept, "crop_path"]])
        return table[kept].reset_index(drop=True), dropped


def crop_one(cropper: Cropper, job: _Job) -> str | None:
    """Decode the source once (no larger than the cropper needs), crop, write the JPEG atomically. Returns why
    the image was dropped (a face cropper with fallback "drop" found no face), or None."""
    image = images.load_rgb(job.source, max_side=cropper.decode_side(job.width, job.height))
    try:
        crop = cropper(image)
    except NoFaceFound as reason:
        return str(reason)
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"could not encode the crop of {job.source}")
    with atomic_write(job.target, "wb") as handle:
        handle.write(np.asarray(encoded).tobytes())
    return None


def read_crop(path: str) -> np.ndarray:
    """A cached crop as RGB uint8; a missing or unreadable one is named with how to rebuild it."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"cannot read cached crop {path}; delete it and run again to rebuild it")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
