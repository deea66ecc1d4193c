"""The classical baseline: HOG features (scikit-image) and a linear SVM (scikit-learn), as a Table 5 cell.

What a deep cell must beat to be worth its training: on 213 real faces (issue 14), HOG + a linear SVM scored 0.91
where K-EmotionNet from scratch scored 0.70. A crop (any size, RGB uint8) is resized to `image_size` (the deep
cells' input, `data.image_size`), turned grey, and described by Dalal & Triggs' HOG; the SVM's C is the one of
`c_grid` with the best validation accuracy. Fitted in seconds on CPU, with no trainer (`kemotion.engine.classical` runs
it as `kemotion.engine.training` runs a deep cell). Saved as plain arrays (`.npz`), never as a pickle: loading runs no
code.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

C_GRID = (0.001, 0.01, 0.1, 1.0)  # the SVM's C, chosen by validation accuracy
MAX_ITER = 5000  # liblinear's iterations per fit; enough for a few thousand HOG vectors


class HogSvm:
    """(N, H, W, 3) uint8 crops → (N,) class indices, through HOG features and a linear SVM."""

    def __init__(self, image_size: int = 64, orientations: int = 9, pixels_per_cell: int = 8,
                 cells_per_block: int = 2, c_grid: tuple[float, ...] | list[float] = C_GRID, seed: int = 0) -> None:
        self.image_size, self.orientations = int(image_size), int(orientations)
        self.pixels_per_cell, self.cells_per_block = int(pixels_per_cell), int(cells_per_block)
        self.c_grid, self.seed = tuple(float(c) for c in c_grid), int(seed)
        self.coef: np.ndarray | None = None  # (classes, features)
        self.intercept: np.ndarray | None = None  # (classes,)
        self.classes: np.ndarray | None = None
        self.c: float | None = None
        self.validation: dict[float, float] = {}  # C → validation accuracy

    def features(self, crops: list[np.ndarray]) -> np.ndarray:
        """(N, features) float32 HOG vectors (Dalal & Triggs' L2-Hys blocks) of the grey, resized crops."""
        from skimage.feature import hog

        size = (self.image_size, self.image_size)
        return np.stack([hog(cv2.cvtColor(cv2.resize(crop, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY),
                             orientations=self.orientations, block_norm="L2-Hys",
                             pixels_per_cell=(self.pixels_per_cell,) * 2, cells_per_block=(self.cells_per_block,) * 2)
                         for crop in crops]).astype(np.float32)

    def fit(self, train: np.ndarray, train_labels: np.ndarray, val: np.ndarray, val_labels: np.ndarray) -> HogSvm:
        """Fit one SVM per C of the grid on the `train` features; keep the one with the best `val` accuracy (the
        smaller C on a tie: the simpler model)."""
        from sklearn.svm import LinearSVC

        best = None
        for c in sorted(self.c_grid):  # ascending: on a tie the first, smaller C stays
            svm = LinearSVC(C=c, max_iter=MAX_ITER, random_state=self.seed).fit(train, train_labels)
            self.validation[c] = float((svm.predict(val) == val_labels).mean())
            log.info("HOG + linear SVM, C=%g: validation accuracy %.4f", c, self.validation[c])
            if best is None or self.validation[c] > self.validation[best[0]]:
                best = (c, svm)
        self.c = best[0]
        self.coef, self.intercept, self.classes = best[1].coef_, best[1].intercept_, best[1].classes_
        return self

    def decision(self, features: np.ndarray) -> np.ndarray:
        """(N, classes) SVM scores of HOG vectors; their argmax is the prediction."""
        if self.coef is None:
            raise RuntimeError("HogSvm is not fitted: call fit, or load a saved one")
        scores = features @ self.coef.T + self.intercept
        return scores if scores.ndim == 2 and scores.shape[1] > 1 else np.stack([-scores.ravel(), scores.ravel()], 1)

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.classes[self.decision(features).argmax(axis=1)]

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, coef=self.coef, intercept=self.intercept, classes=self.classes, c=self.c,
                 settings=np.array([self.image_size, self.orientations, self.pixels_per_cell, self.cells_per_block]))
        return path

    @classmethod
    def load(cls, path: str | Path) -> HogSvm:
        """A saved model (arrays only: `allow_pickle=False`); a file that is not one is an error naming it."""
        try:
            with np.load(path, allow_pickle=False) as saved:
                model = cls(*(int(x) for x in saved["settings"]))
                model.coef, model.intercept, model.classes = saved["coef"], saved["intercept"], saved["classes"]
                model.c = float(saved["c"])
        except (OSError, ValueError, KeyError) as error:
            raise ValueError(f"{path} is not a saved HOG + linear SVM ({error})") from error
        return model
