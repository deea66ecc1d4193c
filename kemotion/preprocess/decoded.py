"""The decoded cache: a crop cache's crops at the classifier's input size, decoded once into one uint8 memmap.

Every epoch of a classifier otherwise decodes every 500 px JPEG again and resizes it on the CPU; on a GPU that, not
the model, sets the pace. The decoded cache lies beside the crops it was made from, so it is keyed like them (the
manifest's and the cropper's keys are in its folder's path) plus the input size and `DECODED_VERSION`:
`<crop cache>/decoded/<size>px-v<version>/<subset>.u8`, rows in the order of the subset's table, with a JSON beside it
recording its shape, dtype and which crops its rows are. The pixels are `kemotion.data.transforms.resize`'s output, so
a run reading them sees what decoding and resizing each crop would give. The memmap is written under a temporary name
and renamed, the JSON last and also atomically, under the folder's lock (`kemotion.core.io.build_once`); a reader checks
the JSON against the table and the file's size and rebuilds on any mismatch, never reading rows that are not the
table's.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from kemotion.core.io import atomic_write, build_once
from kemotion.core.keys import short_hash
from kemotion.core.parallel import process_map
from kemotion.data.transforms import resize
from kemotion.preprocess.cache import read_crop

log = logging.getLogger(__name__)

DECODED_VERSION = 1
DTYPE = "uint8"
ROWS_PER_JOB = 64
NOT_BUILT = "not built yet"


class DecodedCache:
    """The decoded rows of one crop-cache table (`CropCache.build`'s) at `image_size`, built once and validated."""

    def __init__(self, crop_directory: str | Path, image_size: int, workers: int = 2) -> None:
        self.directory = Path(crop_directory) / "decoded" / f"{image_size}px-v{DECODED_VERSION}"
        self.image_size = image_size
        self.workers = workers

    def build(self, table: pd.DataFrame, subset: str = "classification") -> DecodedCrops:
        """The decoded crops of `table` (row i = table row i), decoding them first when missing or stale."""
        data, record = self.paths(subset)
        expected = self._record(table)
        self.directory.mkdir(parents=True, exist_ok=True)
        return build_once(self.directory, lambda: self._write(table, data, record, expected),
                          done=lambda: _matches(data, record, expected),
                          reuse=lambda: DecodedCrops(data, tuple(expected["shape"])),
                          what=f"{len(table)} decoded {subset} crops at {self.image_size} px",
                          leftovers=[_partial(data)])

    def paths(self, subset: str = "classification") -> tuple[Path, Path]:
        return self.directory / f"{subset}.u8", self.directory / f"{subset}.json"

    def _record(self, table: pd.DataFrame) -> dict:
        return {"version": DECODED_VERSION, "dtype": DTYPE,
                "shape": [len(table), self.image_size, self.image_size, 3],
                "crops": short_hash([Path(path).name for path in table["crop_path"]])}

    def _write(self, table: pd.DataFrame, data: Path, record: Path, expected: dict) -> DecodedCrops:
        record.unlink(missing_ok=True)  # the JSON is the marker: none while the data is rewritten
        partial = _partial(data)
        shape = tuple(expected["shape"])
        np.memmap(partial, dtype=DTYPE, mode="w+", shape=shape).flush()  # sized on disk; rows filled by the jobs
        try:
            paths = table["crop_path"].tolist()
            jobs = [(start, paths[start:start + ROWS_PER_JOB]) for start in range(0, len(paths), ROWS_PER_JOB)]
            process_map(functools.partial(_decode_rows, str(partial), shape), jobs, self.workers,
                        desc=f"decoding crops to {self.image_size} px", unit="batch")
            with open(partial, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(partial, data)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        with atomic_write(record, "w", encoding="utf-8") as handle:
            json.dump(expected, handle)
        return DecodedCrops(data, shape)


class DecodedCrops:
    """Row access to a decoded cache: `crops[i]` is an (H, W, 3) uint8 RGB array. Picklable for DataLoader workers:
    each process maps the file itself, on first use."""

    def __init__(self, path: str | Path, shape: tuple[int, ...]) -> None:
        self.path, self.shape = str(path), shape
        self._rows: np.memmap | None = None

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, row: int) -> np.ndarray:
        if self._rows is None:
            self._rows = np.memmap(self.path, dtype=DTYPE, mode="r", shape=self.shape)
        return np.array(self._rows[row])  # a copy: the transforms write into their input

    def __getstate__(self) -> dict:
        return {"path": self.path, "shape": self.shape, "_rows": None}


def _partial(data: Path) -> Path:
    """Where the memmap is written before its rename (one name: only the lock's holder writes it)."""
    return data.with_name(f".{data.name}.part")


def _matches(data: Path, record: Path, expected: dict) -> bool:
    """The cache on disk can be read as `expected`; when it was built but cannot, a warning says why."""
    problem = _mismatch(data, record, expected)
    if problem not in (None, NOT_BUILT):
        log.warning("The decoded crops in %s cannot be reused (%s): decoding them again", data, problem)
    return problem is None


def _mismatch(data: Path, record: Path, expected: dict) -> str | None:
    """Why the cache on disk cannot be read as `expected` (None: it can)."""
    if not record.exists():
        return NOT_BUILT
    try:
        found = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return f"unreadable {record.name}: {error}"
    for key, value in expected.items():
        if found.get(key) != value:
            name = "the crops its rows are" if key == "crops" else key
            return f"{name} differ: {found.get(key)} on disk, {value} wanted"
    size = int(np.prod(expected["shape"])) * np.dtype(DTYPE).itemsize
    actual = data.stat().st_size if data.exists() else None
    if actual != size:
        return f"{data.name} holds {actual} bytes, its shape needs {size}"
    return None


def _decode_rows(partial: str, shape: tuple[int, ...], job: tuple[int, list[str]]) -> None:
    start, paths = job
    rows = np.memmap(partial, dtype=DTYPE, mode="r+", shape=shape)
    to_size = resize(shape[1])
    for offset, path in enumerate(paths):
        rows[start + offset] = to_size(image=read_crop(path))["image"]
    rows.flush()
