"""Stratified train/val/test splits, optionally keeping every subject (person) inside one split."""

from __future__ import annotations

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")


def assign_splits(labels: pd.Series, fractions: tuple[float, float, float], seed: int,
                  groups: pd.Series | None = None) -> np.ndarray:
    """A split name per row: per class in the given fractions (deterministic by seed).

    With `groups` (subject ids) no group is cut: whole subjects go, largest first, to the split whose per-class
    shortfall they fill best, so the fractions hold per class as closely as the subjects allow.
    """
    labels = pd.Series(np.asarray(labels))
    if groups is None:
        return _stratified(labels, fractions, np.random.default_rng(seed))
    return _grouped(labels, pd.Series(np.asarray(groups)), fractions, np.random.default_rng(seed))


def _stratified(labels: pd.Series, fractions, rng: np.random.Generator) -> np.ndarray:
    out = np.empty(len(labels), dtype=object)
    for label in sorted(labels.unique()):
        rows = rng.permutation(np.flatnonzero(labels.to_numpy() == label))
        n_train = round(fractions[0] * len(rows))
        n_val = round(fractions[1] * len(rows))
        out[rows[:n_train]] = "train"
        out[rows[n_train: n_train + n_val]] = "val"
        out[rows[n_train + n_val:]] = "test"
    return out


def _grouped(labels: pd.Series, groups: pd.Series, fractions, rng: np.random.Generator) -> np.ndarray:
    counts = pd.crosstab(groups, labels)  # subjects × classes
    counts = counts.iloc[rng.permutation(len(counts))]  # random order among equally large subjects
    counts = counts.iloc[np.argsort(-counts.sum(axis=1).to_numpy(), kind="stable")]
    target = np.outer(fractions, counts.sum(axis=0).to_numpy())  # splits × classes
    filled = np.zeros_like(target)
    split_of = {}
    for subject, row in zip(counts.index, counts.to_numpy(), strict=True):
        shortfall = ((target - filled) * row).sum(axis=1)  # how much of what each split lacks this subject has
        best = int(np.argmax(shortfall))
        filled[best] += row
        split_of[subject] = SPLITS[best]
    return groups.map(split_of).to_numpy(dtype=object)
