"""Annotator soft labels: the distribution of the uploader's and the three annotators' votes."""

from __future__ import annotations

import numpy as np
import pytest

from kemotion.data.votes import vote_distribution


def test_votes_spread_the_mass_and_unknown_answers_cast_none():
    labels = [0, 1, 2]
    answers = ["기쁨|기쁨|기쁨", "분노|슬픔|알수없음", "||"]  # unanimous; split with a "cannot tell"; no answers at all
    soft = vote_distribution(labels, answers)
    assert soft.dtype == np.float32 and soft.shape == (3, 7)
    assert soft[0].tolist() == [1, 0, 0, 0, 0, 0, 0]
    assert soft[1] == pytest.approx([0, 2 / 3, 1 / 3, 0, 0, 0, 0])  # uploader + annotator A on angry, B on sad
    assert soft[2].tolist() == [0, 0, 1, 0, 0, 0, 0]  # only the uploader voted


def test_the_uploaders_weight_counts_against_each_annotator():
    soft = vote_distribution([3], ["sad|sad|sad"], uploader_weight=3.0)  # English aliases name classes too
    assert soft[0] == pytest.approx([0, 0, 0.5, 0.5, 0, 0, 0])
    with pytest.raises(ValueError, match="uploader_weight must be > 0"):
        vote_distribution([3], ["sad|sad|sad"], uploader_weight=0)
