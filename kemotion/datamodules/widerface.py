"""WIDER FACE as the face detector's data: the same letterboxed, ultralytics-format batches as the AI-Hub detector
subset (`DetectionDataModule`), with many faces per image.

Splits: WIDER_train trains; WIDER_val validates and is also the test split (WIDER's test labels are not public, and
the literature reports val AP). Faces flagged `invalid`, and faces whose shorter side is under `min_face_size` pixels
in the letterboxed input, are not training targets; the WIDER evaluation ignores them through its subsets'
`gt_list`s (`kemotion.lit.wider_eval`), read from `ground_truth_dir` when it holds the toolkit's .mat files.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from kemotion.data import widerface
from kemotion.data.widerface import GROUND_TRUTH, WiderTruth
from kemotion.datamodules.base import DatasetSource
from kemotion.datamodules.detection import DetectionDataModule

log = logging.getLogger(__name__)


class WiderDetectionDataModule(DetectionDataModule):
    splits = {"train": "train", "val": "val", "test": "val"}

    def __init__(
        self,
        source: DatasetSource,
        cache_dir: str | Path,
        image_size: int = 640,
        batch_size: int = 16,
        num_workers: int = 2,
        cache_workers: int = 2,
        augment: dict | None = None,
        pin_memory: bool = False,
        min_face_size: float = 2.0,  # pixels of the letterboxed input: smaller faces are not training targets
        ground_truth_dir: str | None = None,  # the toolkit's .mat files; default <root>/eval_tools/ground_truth
    ) -> None:
        super().__init__(source, {}, cache_dir, image_size, batch_size, num_workers, cache_workers, augment,
                         pin_memory)
        self.save_hyperparameters(ignore=["source"])

    def _prepare(self) -> None:
        self.manifest = widerface.load_or_read(self.source.prepare(), self.cache_dir, self.hparams.cache_workers)
        self.table = self._cache(self.manifest)

    def _faces(self, table: pd.DataFrame) -> Mapping[str, np.ndarray]:
        faces = self.manifest.faces
        sizes = table.set_index("filename")[["width", "height"]]
        scale = self.hparams.image_size / sizes.max(axis=1).reindex(faces["filename"]).to_numpy()
        shorter = np.minimum(faces["x2"] - faces["x1"], faces["y2"] - faces["y1"]).to_numpy() * scale
        target = (faces["invalid"].to_numpy() == 0) & (shorter >= self.hparams.min_face_size)
        log.info("WIDER FACE training targets: %d of %d faces (%d invalid, %d under %g px)", target.sum(), len(faces),
                 (faces["invalid"] != 0).sum(), (shorter < self.hparams.min_face_size).sum(),
                 self.hparams.min_face_size)
        kept = faces[target]
        boxes = kept[["x1", "y1", "x2", "y2"]].to_numpy(np.float64)
        return {name: boxes[rows] for name, rows in kept.groupby("filename", sort=False).indices.items()}

    def _truths(self, table: pd.DataFrame) -> Mapping[str, WiderTruth | None] | None:
        directory = Path(self.hparams.ground_truth_dir or self.manifest.root / GROUND_TRUTH)
        try:
            truths = widerface.read_ground_truth(directory)
        except FileNotFoundError as error:
            log.warning("No WIDER val AP (easy / medium / hard) this run: %s", error)
            return None
        val = table[table["split"] == "val"]
        found = {name: truths.get((event, Path(name).stem)) for name, event in zip(val["filename"], val["event"],
                                                                                    strict=True)}
        absent = [name for name, truth in found.items() if truth is None]
        if absent:
            log.warning("%d val images are not in %s (not scored by the WIDER protocol), e.g. %s", len(absent),
                        directory, absent[:3])
        return found
