"""albumentations pipelines for the classifier: crops (already square) → normalised tensors."""

from __future__ import annotations

import albumentations as A
from albumentations.pytorch import ToTensorV2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def train_transform(image_size: int, random_erasing_p: float = 0.5, hflip_p: float = 0.5,
                    affine_p: float = 0.5, color_p: float = 0.3) -> A.Compose:
    """Light geometric and colour jitter plus Random Erasing (paper §4.1, Zhong et al.) against over-fitting."""
    return A.Compose([
        A.Resize(image_size, image_size, interpolation=3),  # cv2.INTER_AREA: crops are larger than the input
        A.HorizontalFlip(p=hflip_p),
        A.Affine(scale=(0.9, 1.1), translate_percent=(-0.05, 0.05), rotate=(-10, 10), p=affine_p),
        A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02, p=color_p),
        A.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
        A.Erasing(scale=(0.02, 0.2), ratio=(0.3, 3.3), fill="random", p=random_erasing_p),
        ToTensorV2(),
    ])


def eval_transform(image_size: int) -> A.Compose:
    return A.Compose([
        A.Resize(image_size, image_size, interpolation=3),
        A.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
        ToTensorV2(),
    ])
