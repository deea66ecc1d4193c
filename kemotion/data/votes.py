"""Annotator soft labels: per image, the distribution of its four votes instead of the uploader's label alone.

AI-Hub gives each image the uploader's (acted) label and three annotators' answers (the manifest's `label` and
`answers`); the paper keeps the label. `data.labels=soft` trains on the votes' distribution instead: the uploader's
label weighs `uploader_weight`, each annotator's answer 1, and an answer naming no class ('알수없음', or none) casts
no vote. A unanimous image is one-hot as before; one the annotators read otherwise spreads its mass.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kemotion.core.emotions import NUM_CLASSES, parse_emotion

ANSWER_SEPARATOR = "|"  # how the manifest joins the three answers (kemotion.data.aihub.Sample.answers)


def vote_distribution(labels: Sequence[int], answers: Sequence[str], uploader_weight: float = 1.0) -> np.ndarray:
    """(N, 7) float32 rows summing to 1: the uploader's vote (`labels`, weight `uploader_weight` > 0) and the
    annotators' (`answers`, "a|b|c" as the manifest writes them, weight 1 each)."""
    if uploader_weight <= 0:
        raise ValueError(f"uploader_weight must be > 0 (the uploader's label always votes), got {uploader_weight}")
    votes = np.zeros((len(labels), NUM_CLASSES), dtype=np.float64)
    for row, (label, joined) in enumerate(zip(labels, answers, strict=True)):
        votes[row, int(label)] += uploader_weight
        for answer in str(joined).split(ANSWER_SEPARATOR):
            try:
                votes[row, parse_emotion(answer).index] += 1.0
            except KeyError:  # '알수없음' or missing: no vote
                continue
    return (votes / votes.sum(axis=1, keepdims=True)).astype(np.float32)
