"""The decoded cache: the crops' pixels at the input size, written once, validated on every read, rebuilt when stale."""

from __future__ import annotations

import json
import os
import pickle

import cv2
import numpy as np
import pandas as pd
import pytest

from kemotion.data.transforms import resize
from kemotion.preprocess.cache import read_crop
from kemotion.preprocess.decoded import DecodedCache, DecodedCrops


@pytest.fixture()
def table(tmp_path) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(5):
        path = tmp_path / "crops" / f"img{i}.jpg"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))
        paths.append(str(path))
    return pd.DataFrame({"crop_path": paths, "label": [0, 1, 2, 3, 4]})


def expected_rows(table: pd.DataFrame, size: int) -> np.ndarray:
    return np.stack([resize(size)(image=read_crop(path))["image"] for path in table["crop_path"]])


def test_rows_are_the_resized_crops_and_the_record_says_what_they_are(table, tmp_path):
    cache = DecodedCache(tmp_path / "crops", 16, workers=2)
    crops = cache.build(table)
    assert np.array_equal(np.stack([crops[i] for i in range(len(crops))]), expected_rows(table, 16))
    data, record = cache.paths()
    assert data.parent == tmp_path / "crops" / "decoded" / "16px-v1"
    written = json.loads(record.read_text())
    assert written["shape"] == [5, 16, 16, 3] and written["dtype"] == "uint8"
    assert data.stat().st_size == 5 * 16 * 16 * 3


def test_a_second_build_reads_what_the_first_wrote(table, tmp_path):
    cache = DecodedCache(tmp_path / "crops", 16, workers=1)
    cache.build(table)
    stamp = os.stat(cache.paths()[0]).st_mtime_ns
    cache.build(table)
    assert os.stat(cache.paths()[0]).st_mtime_ns == stamp


def test_another_size_is_another_cache(table, tmp_path):
    small = DecodedCache(tmp_path / "crops", 16, workers=1).build(table)
    large = DecodedCache(tmp_path / "crops", 24, workers=1).build(table)
    assert small[0].shape == (16, 16, 3) and large[0].shape == (24, 24, 3)
    assert np.array_equal(large[4], expected_rows(table, 24)[4])


@pytest.mark.parametrize("damage", ["other crops", "truncated data", "garbled record", "other shape"])
def test_a_cache_that_does_not_match_the_table_is_rebuilt_never_read(table, tmp_path, damage, caplog):
    cache = DecodedCache(tmp_path / "crops", 16, workers=1)
    cache.build(table)
    data, record = cache.paths()
    if damage == "other crops":
        table = table.iloc[::-1].reset_index(drop=True)  # the same crops in another order: rows would be mislabelled
    elif damage == "truncated data":
        os.truncate(data, 100)
    elif damage == "garbled record":
        record.write_text("{not json")
    else:
        record.write_text(json.dumps(json.loads(record.read_text()) | {"shape": [5, 8, 8, 3]}))
    crops = cache.build(table)
    assert np.array_equal(np.stack([crops[i] for i in range(len(crops))]), expected_rows(table, 16))
    assert "cannot be reused" in caplog.text and "decoding them again" in caplog.text


def test_decoded_crops_travel_to_workers_without_their_mapping(table, tmp_path):
    crops = DecodedCache(tmp_path / "crops", 16, workers=1).build(table)
    crops[0]  # maps the file in this process
    copied = pickle.loads(pickle.dumps(crops))
    assert copied._rows is None
    assert np.array_equal(copied[3], crops[3])
    assert isinstance(copied, DecodedCrops) and len(copied) == 5
