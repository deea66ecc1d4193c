"""The device-side augmentation draws from the same distributions as the albumentations pipeline it replaces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kemotion.data.transforms import BatchAugment, eval_transform, train_transform

N = 1500  # images per distribution check: a fraction's standard error is ≤ 0.013
SIZE = 16


def _cpu(transform, images: np.ndarray, seed: int = 0) -> torch.Tensor:
    transform.set_random_seed(seed)
    return torch.stack([transform(image=image)["image"] for image in images])


def _device(images: np.ndarray, train: bool, seed: int = 0, **augment) -> torch.Tensor:
    batch = BatchAugment(**augment)
    batch.set_random_seed(seed)
    uint8 = _cpu(train_transform(SIZE, affine_p=0, color_p=0, on_device=True) if train
                 else eval_transform(SIZE, on_device=True), images, seed)
    assert uint8.dtype == torch.uint8
    return batch(uint8, train=train)


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)


def test_normalisation_on_the_device_is_the_eval_transforms():
    images = _images(20)
    expected = _cpu(eval_transform(SIZE), images)
    assert torch.allclose(_device(images, train=False), expected, atol=1e-5)
    assert expected.mean().item() == pytest.approx(_device(images, train=False).mean().item(), abs=1e-5)


def test_without_flip_or_erasing_training_on_the_device_only_normalises():
    images = _images(8)
    assert torch.allclose(_device(images, True, random_erasing_p=0, hflip_p=0), _cpu(eval_transform(SIZE), images),
                          atol=1e-5)


def _flipped_fraction(out: torch.Tensor, images: np.ndarray) -> float:
    plain = _cpu(eval_transform(SIZE), images)
    flipped = torch.isclose(out, plain.flip(-1), atol=1e-5).flatten(1).all(1)
    assert (flipped | torch.isclose(out, plain, atol=1e-5).flatten(1).all(1)).all()  # nothing else happened
    return flipped.float().mean().item()


def test_each_image_is_flipped_with_the_same_probability_as_on_the_cpu():
    images = _images(N)
    cpu = _cpu(train_transform(SIZE, random_erasing_p=0, hflip_p=0.3, affine_p=0, color_p=0), images)
    device = _device(images, True, random_erasing_p=0, hflip_p=0.3)
    assert _flipped_fraction(cpu, images) == pytest.approx(0.3, abs=0.04)
    assert _flipped_fraction(device, images) == pytest.approx(0.3, abs=0.04)


def _erasing_statistics(out: torch.Tensor) -> tuple[float, float, float, float]:
    """On black images (normalised to about -2) an erased value is in [0, 1): the fraction of images erased, the
    mean erased area among them, the mean aspect (width / height) of the erased box, and the mean fill value."""
    erased = (out >= 0).all(1)  # (N, H, W): erased pixels
    hit = erased.flatten(1).any(1)
    area = erased.flatten(1).float().mean(1)[hit]
    widths = erased.any(1).float().sum(1)[hit]
    heights = erased.any(2).float().sum(1)[hit]
    fill = out.permute(1, 0, 2, 3)[:, erased]
    return hit.float().mean().item(), area.mean().item(), (widths / heights).mean().item(), fill.mean().item()


def test_random_erasing_on_the_device_matches_the_cpu_pipeline():
    black = np.zeros((N, SIZE, SIZE, 3), dtype=np.uint8)
    cpu = _erasing_statistics(_cpu(train_transform(SIZE, random_erasing_p=0.6, hflip_p=0, affine_p=0, color_p=0),
                                   black))
    device = _erasing_statistics(_device(black, True, random_erasing_p=0.6, hflip_p=0))
    assert cpu[0] == pytest.approx(0.6, abs=0.04) and device[0] == pytest.approx(0.6, abs=0.04)
    assert 0.02 <= device[1] <= 0.2 and device[1] == pytest.approx(cpu[1], abs=0.01)  # erased area: scale (0.02, 0.2)
    assert device[2] == pytest.approx(cpu[2], rel=0.1)  # aspect ratio (0.3, 3.3), drawn by the same sampler
    assert device[3] == pytest.approx(0.5, abs=0.01) and cpu[3] == pytest.approx(0.5, abs=0.01)  # uniform [0, 1) fill


def test_the_same_seeds_give_the_same_batch_and_others_another():
    """The draws come from the augment's own generators: torch's global state (the same on every DDP rank) is not
    one of them."""
    images = _images(32)
    first = _device(images, True, seed=0)
    torch.rand(100)  # moves torch's global generator on
    again, other = (_device(images, True, seed=s) for s in (0, 1))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_channels_last_changes_the_layout_not_the_values():
    images = _images(4)
    plain, last = (_device(images, False, channels_last=c) for c in (False, True))
    assert last.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(plain, last)
