"""What the security tests share: a payload whose only effect is a marker file in the test's tmp_path.

Each test builds a hostile file around the payload, hands it to kemotion where a user could, and asserts that a clear
error names the file and that the marker never appeared: the file was read as data, not run as code.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest


class Payload:
    """Unpickled without restriction, this creates `marker` (pickle calls `open(marker, "w")` to rebuild it)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


@pytest.fixture
def marker(tmp_path) -> Path:
    """Where a payload that ran would leave its mark; the test asserts it is absent."""
    return tmp_path / "payload-ran"


def hostile_pickle(marker: Path) -> bytes:
    """A pickle that creates `marker` when loaded by `pickle.load` (or `torch.load(weights_only=False)`)."""
    return pickle.dumps({"model": Payload(marker)}, protocol=2)
