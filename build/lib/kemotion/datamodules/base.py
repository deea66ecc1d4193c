"""What kemotion's LightningDataModules share: dataset → manifest → a cached table of images → loaders.

`prepare_data` (one process) makes whatever is missing — the synthetic dataset, the manifest, the cached images —
and `setup` (every process) only reads what it made, so a sweep or a DDP run builds each of them once. The data
modules sit above both `kemotion.data` (dataset, manifest) and `kemotion.preprocess` (croppers, crop cache), which
never import each other's way up.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

import lightning as L
import pandas as pd
import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.fabric.utilities.seed import pl_worker_init_function
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from kemotion.data.manifest import Manifest, Selection, load_or_build

log = logging.getLogger(__name__)


class DatasetSource(Protocol):
    def prepare(self) -> Path:
        """The root of an AI-Hub-layout folder, made first if needed (synthetic) or checked (a download)."""


class ManifestDataModule(L.LightningDataModule):
    """What kemotion's data modules share: dataset → manifest → a cached table of images → train/val/test loaders.

    A subclass says which cached images it reads (`_cache`) and how they become datasets (`_datasets`).
    `prepare_data` (one process) makes whatever is missing; `setup` (every process) then only hits the caches.
    """

    collate_fn: Any = None  # torch's default

    def __init__(self, source: DatasetSource, selection: Selection | dict, cache_dir: str | Path) -> None:
        super().__init__()
        self.source = source
        self.selection = selection if isinstance(selection, Selection) else Selection(**selection)
        self.cache_dir = Path(cache_dir)
        self.manifest: Manifest | None = None
        self.table: pd.DataFrame | None = None  # the manifest rows this module reads, with their cached image
        self.datasets: dict[str, Dataset] = {}

    def prepare_data(self) -> None:
        self._prepare()

    def setup(self, stage: str | None = None) -> None:
        if self.table is None:
            self._prepare()  # in every process: all cache hits after prepare_data
        self.datasets = self._datasets(self.table)

    def _prepare(self) -> None:
        self.manifest = load_or_build(self.source.prepare(), self.selection, self.cache_dir)
        self.table = self._cache(self.manifest)

    def _cache(self, manifest: Manifest) -> pd.DataFrame:
        raise NotImplementedError

    def _datasets(self, table: pd.DataFrame) -> dict[str, Dataset]:
        raise NotImplementedError

    def train_dataloader(self) -> DataLoader:
        per_rank = -(-len(self.datasets["train"]) // self._world_size())  # what each rank's DistributedSampler gives
        return self._loader("train", shuffle=True, drop_last=per_rank > self.hparams.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", sampler=self._unrepeated("test"))

    def _loader(self, split: str, shuffle: bool = False, drop_last: bool = False,
                sampler: Sampler | None = None) -> DataLoader:
        workers = self.hparams.num_workers
        if workers == 0:
            _seed_transform(self.datasets[split], torch.initial_seed() + rank_zero_only.rank)
        return DataLoader(self.datasets[split], batch_size=self.hparams.batch_size, shuffle=shuffle, sampler=sampler,
                          drop_last=drop_last, num_workers=workers, persistent_workers=workers > 0,
                          pin_memory=self.hparams.pin_memory, collate_fn=self.collate_fn,
                          worker_init_fn=seed_worker)

    def _unrepeated(self, split: str) -> Sampler | None:
        """Under DDP, each image of `split` on exactly one rank (None otherwise: Lightning's samplers apply).

        Lightning's DistributedSampler pads the ranks to equal length with repeated images, which the test accuracy
        and confusion matrix would count twice. Unpadded, one rank may run a batch more than another: safe at test
        time, where Lightning runs the model without its DDP wrapper (no collective per batch; the torchmetrics sync
        once, at the epoch's end), but not in validation during fit, which keeps Lightning's padded sampler.
        """
        if self._world_size() < 2:
            return None
        return UnrepeatedDistributedSampler(self.datasets[split], num_replicas=self.trainer.world_size,
                                            rank=self.trainer.global_rank, shuffle=False)

    def _world_size(self) -> int:
        return self.trainer.world_size if self.trainer is not None else 1


def seed_worker(worker_id: int) -> None:
    """Lightning's worker seeding (per worker and rank), extended to the dataset's albumentations pipeline.

    Albumentations keeps its own random state, deaf to torch's and numpy's seeds. Unseeded, every forked worker
    would carry a copy of the same state and replay its siblings' augmentations, and no run would be repeatable.
    """
    pl_worker_init_function(worker_id)  # seeds torch per worker and rank; what Lightning adds when we set none
    _seed_transform(get_worker_info().dataset, torch.initial_seed())


def _seed_transform(dataset: Dataset, seed: int) -> None:
    transform = getattr(dataset, "transform", None)
    if transform is not None:
        transform.set_random_seed(seed % 2**32)


