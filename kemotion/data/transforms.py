"""The classifier's augmentation: crops (already square) → normalised tensors.

`train_transform` / `eval_transform` are the albumentations pipelines a DataLoader worker runs per image. With
`on_device=True` the workers stop at uint8 tensors after the per-image geometry and colour jitter, and `BatchAugment`
does the rest — horizontal flip, normalisation, Random Erasing — on whole batches on the training device (torchvision
v2 kernels on tensors), drawing each image's flip and erasing from the same distributions as the CPU pipeline.
"""

from __future__ import annotations

import albumentations as A
import cv2
import torch
from albumentations.pytorch import ToTensorV2
from torchvision.transforms.v2 import functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ERASING_SCALE = (0.02, 0.2)  # fraction of the image erased (Zhong et al.'s s_l, s_h)
ERASING_RATIO = (0.3, 3.3)  # aspect ratio of the erased box (r_1, 1/r_1)


def resize(image_size: int) -> A.Resize:
    """The one resize from a cached crop to the classifier's input (the decoded cache stores its output)."""
    return A.Resize(image_size, image_size, interpolation=cv2.INTER_AREA)  # crops are larger than the input


def train_transform(image_size: int, random_erasing_p: float = 0.5, hflip_p: float = 0.5,
                    affine_p: float = 0.5, color_p: float = 0.3, on_device: bool = False) -> A.Compose:
    """Light geometric and colour jitter plus Random Erasing (paper §4.1, Zhong et al.) against over-fitting.

    `on_device`: stop at uint8 tensors after the affine and colour jitter; `BatchAugment` flips, normalises and
    erases. Flipping after the affine instead of before gives the same distribution: the affine's rotation and
    translation ranges are symmetric about the image centre, and colour jitter does not see where a pixel is.
    """
    jitter = [
        A.Affine(scale=(0.9, 1.1), translate_percent=(-0.05, 0.05), rotate=(-10, 10), p=affine_p),
        A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02, p=color_p),
    ]
    if on_device:
        return A.Compose([resize(image_size), *jitter, ToTensorV2()])
    return A.Compose([
        resize(image_size),
        A.HorizontalFlip(p=hflip_p),
        *jitter,
        A.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
        erasing(random_erasing_p),
        ToTensorV2(),
    ])


def eval_transform(image_size: int, on_device: bool = False) -> A.Compose:
    """Resize and normalise; with `on_device`, resize only (uint8 tensors), `BatchAugment.normalise` does the rest."""
    if on_device:
        return A.Compose([resize(image_size), ToTensorV2()])
    return A.Compose([resize(image_size), A.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD), ToTensorV2()])


def erasing(p: float) -> A.Erasing:
    # fill="random" on a normalised float image: each erased value uniform in [0, 1) (albumentations' float range)
    return A.Erasing(scale=ERASING_SCALE, ratio=ERASING_RATIO, fill="random", p=p)


class BatchAugment:
    """The train transform's flip, normalisation and Random Erasing, on a whole (B, 3, H, W) uint8 batch where it is.

    Each image draws its own flip (p = `hflip_p`) and its own erasing (p = `random_erasing_p`); the erased box comes
    from albumentations' own `Erasing` sampler and its fill is uniform in [0, 1) after normalisation, as on the CPU
    path. Every draw comes from generators of its own, seeded by `set_random_seed` (the data module gives each DDP
    rank its own seed), so a seeded run repeats itself. `channels_last`: return the batch in that memory format.
    """

    def __init__(self, random_erasing_p: float = 0.5, hflip_p: float = 0.5, channels_last: bool = False) -> None:
        self.random_erasing_p, self.hflip_p, self.channels_last = random_erasing_p, hflip_p, channels_last
        self.boxes = erasing(1.0)  # only its box sampler is used; whether to erase is drawn here
        self.seed = 0
        self._generators: dict[torch.device, torch.Generator] = {}

    def set_random_seed(self, seed: int) -> None:
        self.boxes.set_random_seed(seed)
        self.seed, self._generators = seed, {}

    def _generator(self, device: torch.device) -> torch.Generator:
        if device not in self._generators:
            self._generators[device] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[device]

    def __call__(self, images: torch.Tensor, train: bool) -> torch.Tensor:
        """uint8 (B, 3, H, W) → float32 normalised, augmented when `train`."""
        if train:
            flip = (torch.rand(len(images), generator=self._generator(torch.device("cpu"))) < self.hflip_p).to(
                images.device)
            images = torch.where(flip[:, None, None, None], F.horizontal_flip(images), images)
        images = self.normalise(images)
        if train:
            self._erase(images)
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    @staticmethod
    def normalise(images: torch.Tensor) -> torch.Tensor:
        """uint8 → float32 in [0, 1] → ImageNet-normalised, as `A.Normalize` does."""
        return F.normalize(F.to_dtype(images, torch.float32, scale=True), IMAGENET_MEAN, IMAGENET_STD)

    def _erase(self, images: torch.Tensor) -> None:
        channels, height, width = images.shape[1:]
        draws = torch.rand(len(images), generator=self._generator(torch.device("cpu")))
        for index in (draws < self.random_erasing_p).nonzero().flatten().tolist():
            for x_min, y_min, x_max, y_max in self.boxes.get_params_dependent_on_data({"shape": (height, width)},
                                                                                     {})["holes"]:
                h, w = int(y_max - y_min), int(x_max - x_min)
                fill = torch.rand(channels, h, w, device=images.device, generator=self._generator(images.device))
                F.erase(images[index], int(y_min), int(x_min), h, w, fill, inplace=True)
