"""The classifier's GPU data path: the decoded cache gives the loader the JPEG path's tensors, and with
`device_augment` the data module finishes each batch after its transfer (normalised always, augmented in training)."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from kemotion.data.transforms import eval_transform
from kemotion.datamodules.classification import ClassificationDataModule, CropDataset
from kemotion.preprocess.decoded import DecodedCache


def _table(tmp_path, n: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    paths = []
    for i in range(n):
        paths.append(str(tmp_path / f"{i}.jpg"))
        cv2.imwrite(paths[-1], rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    return pd.DataFrame({"crop_path": paths, "label": [i % 7 for i in range(n)],
                         "split": ["train", "test"] * (n // 2)})


def test_the_decoded_cache_gives_the_same_tensors_as_decoding_each_jpeg(tmp_path):
    table = _table(tmp_path)
    decoded = DecodedCache(tmp_path, 24, workers=1).build(table)
    test = table[table["split"] == "test"]  # rows 1, 3, 5 of the cache: the dataset must pick those
    from_jpeg, from_cache = CropDataset(test, eval_transform(24)), CropDataset(test, eval_transform(24), decoded)
    for index in range(len(test)):
        assert torch.equal(from_jpeg[index][0], from_cache[index][0])
        assert from_jpeg[index][1] == from_cache[index][1]


def _module(tmp_path, device_augment: bool) -> ClassificationDataModule:
    return ClassificationDataModule(source=None, cropper=None, selection={}, cache_dir=tmp_path, image_size=24,
                                    device_augment=device_augment, augment={"random_erasing_p": 1.0, "hflip_p": 0})


def test_device_augment_normalises_every_batch_and_erases_only_in_training(tmp_path):
    module = _module(tmp_path, device_augment=True)
    module.datasets = module._datasets(_table(tmp_path))
    images, labels = next(iter(torch.utils.data.DataLoader(module.datasets["test"], batch_size=3)))
    assert images.dtype == torch.uint8  # the workers stop before normalising
    expected = torch.stack([CropDataset(pd.DataFrame({"crop_path": [p], "label": [0]}), eval_transform(24))[0][0]
                            for p in _table(tmp_path)["crop_path"][1::2]])
    module.trainer = SimpleNamespace(training=False)
    evaluated, same_labels = module.on_after_batch_transfer([images, labels], 0)
    assert torch.allclose(evaluated, expected, atol=1e-5) and torch.equal(same_labels, labels)
    module.trainer = SimpleNamespace(training=True)
    trained, _ = module.on_after_batch_transfer([images, labels], 0)
    changed = ~torch.isclose(trained, evaluated, atol=1e-5)  # no flip (p = 0): only erasing changes pixels
    assert changed.flatten(1).any(1).all()  # every image erased (p = 1)
    assert ((trained[changed] >= 0) & (trained[changed] < 1)).all()  # with uniform [0, 1) values


def test_without_device_augment_batches_pass_untouched(tmp_path):
    module = _module(tmp_path, device_augment=False)
    batch = [torch.zeros(2, 3, 24, 24), torch.zeros(2, dtype=torch.long)]
    assert module.on_after_batch_transfer(batch, 0) is batch


@pytest.mark.slow
def test_a_run_on_the_decoded_cache_is_the_jpeg_runs_and_device_augment_repeats_itself(tmp_path):
    """Through `python -m kemotion.train`'s code: the decoded cache changes where pixels come from, not the run; with
    `device_augment` Lightning hands each batch to the data module after its transfer, and a seed repeats the run."""
    from kemotion.engine.training import train
    from tests.conftest import compose_config

    base = ["+experiment=resize_kemo", "debug=tiny", "logger=none", "trainer.max_epochs=1", "model.net.width=8",
            "seed=0"]
    jpeg, decoded, device, again = (
        train(compose_config(tmp_path / name, base + extra))[0]
        for name, extra in [("jpeg", []), ("decoded", ["data.decoded_cache=true"]),
                            ("device", ["data.decoded_cache=true", "data.device_augment=true"]),
                            ("again", ["data.decoded_cache=true", "data.device_augment=true"])])
    assert decoded == jpeg
    assert list((tmp_path / "decoded" / ".cache").rglob("decoded/32px-v1/classification.u8"))
    assert device == again and 0 <= device["test/acc"] <= 1
    assert device["test/loss"] != jpeg["test/loss"]  # another augmentation stream
