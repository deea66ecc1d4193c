"""The face + scene data: the run's face crops joined by file name with the whole frames of the `resize` cropper's
cache, plus each image's place category (the annotators' majority `bg`, the manifest's `background_majority`).

Both caches are the ones the Table 5 cells read (`CropCache`: the run's cropper, and `ResizeCropper` with `scene`'s
parameters, by default the paper's 500 px resize baseline), so nothing is cropped again and each JPEG is decoded once
per item per epoch. The face is augmented as every classifier's input; the scene only resized and normalised.
Batches: (faces (B, 3, S, S), scenes (B, 3, S, S), labels (B,), backgrounds (B,) with UNKNOWN_BACKGROUND = -1 for an
image without a place category). Place categories are numbered in sorted order of those in the manifest.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from kemotion.data.aihub import UNKNOWN_BACKGROUND
from kemotion.data.manifest import Manifest
from kemotion.data.transforms import eval_transform
from kemotion.datamodules.classification import ClassificationDataModule, CropDataset
from kemotion.preprocess.cache import CropCache, read_crop
from kemotion.preprocess.resize import ResizeCropper

log = logging.getLogger(__name__)



class FaceSceneDataset(Dataset):
    """(face tensor, scene tensor, label, background index): a `CropDataset` of faces with the frames beside it."""

    def __init__(self, faces: CropDataset, frame: pd.DataFrame, scene_transform: Any, backgrounds: np.ndarray) -> None:
        self.faces, self.scene_transform = faces, scene_transform
        self.scene_paths = frame["scene_path"].tolist()
        self.backgrounds = backgrounds

    @property
    def transform(self) -> Any:
        """The random one, which the data module seeds per worker (the scene's is deterministic)."""
        return self.faces.transform

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        face, label = self.faces[index]
        scene = self.scene_transform(image=read_crop(self.scene_paths[index]))["image"]
        return face, scene, label, int(self.backgrounds[index])


class ContextDataModule(ClassificationDataModule):
    def __init__(self, *args: Any, scene: dict | None = None, num_backgrounds: int = 0, **kwargs: Any) -> None:
        """`scene`: the ResizeCropper parameters of the whole frames (default: the `resize` cropper's); the
        classifier's data module's arguments otherwise. `num_backgrounds`: the model's background classes; more
        place categories in the data is an error (0: not checked, no background head)."""
        super().__init__(*args, **kwargs)  # its save_hyperparameters records `scene` and `num_backgrounds` too

    def _cache(self, manifest: Manifest) -> pd.DataFrame:
        faces = super()._cache(manifest)
        cropper = ResizeCropper(**(self.hparams.scene or {}))
        scenes = CropCache(cropper, self.cache_dir, self.hparams.crop_workers).build(manifest)
        scene_paths = scenes[["filename", "crop_path"]].rename(columns={"crop_path": "scene_path"})
        table = faces.merge(scene_paths, on="filename", how="left", validate="one_to_one")
        missing = table["scene_path"].isna()
        if missing.any():  # a resize crop is never dropped: the scene cache is not this manifest's
            raise RuntimeError(f"{missing.sum()} face crops have no whole frame in {cropper.name}'s cache of "
                               f"{manifest.directory}, e.g. {table.loc[missing, 'filename'].iloc[0]}")
        return table

    def _datasets(self, table: pd.DataFrame) -> dict[str, Dataset]:
        codes = background_codes(table["background_majority"], self.hparams.num_backgrounds)
        scene = eval_transform(self.hparams.image_size)
        return {split: FaceSceneDataset(faces, table[table["split"] == split], scene,
                                        codes[(table["split"] == split).to_numpy()])
                for split, faces in super()._datasets(table).items()}


def background_codes(places: pd.Series, num_backgrounds: int = 0) -> np.ndarray:
    """Each image's place category as an index into the sorted categories present; "" → UNKNOWN_BACKGROUND."""
    categories = sorted(set(places) - {""})
    if num_backgrounds and len(categories) > num_backgrounds:
        raise ValueError(f"the manifest has {len(categories)} place categories ({categories}), the model's background "
                         f"head {num_backgrounds}: set model.net.num_backgrounds={len(categories)}")
    log.info("Place categories (background classes): %s", ", ".join(f"{i} {c}" for i, c in enumerate(categories)))
    index = {category: i for i, category in enumerate(categories)}
    return places.map(lambda place: index.get(place, UNKNOWN_BACKGROUND)).to_numpy(dtype=np.int64)
