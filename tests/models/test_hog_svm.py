"""The classical baseline's model: HOG + a linear SVM, C chosen on validation, saved as arrays only."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from kemotion.models.hog_svm import HogSvm


def stripes(n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Class 0: horizontal stripes, 1: vertical, 2: a bright disc; random phase, noise and size (48–80 px)."""
    rng = np.random.default_rng(seed)
    crops, labels = [], np.arange(n) % 3
    for label in labels:
        side = int(rng.integers(48, 81))
        y, x = np.mgrid[:side, :side]
        phase = rng.uniform(0, 6)
        pattern = [np.sin(y / 2 + phase), np.sin(x / 2 + phase),
                   ((y - side / 2) ** 2 + (x - side / 2) ** 2 < (side / 3) ** 2) * 2 - 1.0][label]
        grey = np.clip(128 + 80 * pattern + rng.normal(0, 30, (side, side)), 0, 255).astype(np.uint8)
        crops.append(np.repeat(grey[..., None], 3, axis=2))
    return crops, labels


def test_hog_svm_learns_what_hog_sees_and_picks_c_by_validation():
    model = HogSvm(image_size=32, c_grid=[1.0, 0.01, 0.1])
    (train, train_y), (val, val_y), (test, test_y) = stripes(60, 0), stripes(21, 1), stripes(21, 2)
    model.fit(model.features(train), train_y, model.features(val), val_y)
    assert set(model.validation) == {0.01, 0.1, 1.0}
    best = max(model.validation.values())
    assert model.c == min(c for c, accuracy in model.validation.items() if accuracy == best)  # a tie: the simpler
    assert (model.predict(model.features(test)) == test_y).mean() == 1.0


def test_a_saved_hog_svm_predicts_the_same_and_a_pickle_is_refused(tmp_path):
    model = HogSvm(image_size=32, c_grid=[0.1])
    crops, labels = stripes(30, 0)
    features = model.features(crops)
    model.fit(features, labels, features, labels)
    loaded = HogSvm.load(model.save(tmp_path / "model.npz"))
    assert loaded.c == 0.1 and loaded.image_size == 32
    assert np.array_equal(loaded.predict(loaded.features(crops)), model.predict(features))
    (tmp_path / "bad.npz").write_bytes(pickle.dumps({"coef": "anything"}))
    with pytest.raises(ValueError, match="bad.npz is not a saved HOG"):
        HogSvm.load(tmp_path / "bad.npz")
