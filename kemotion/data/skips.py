"""The skip report: every input that was skipped, ignored or kept with a note, with the file and the reason.

Bad input never crashes a run and never passes silently: readers add a `Problem` here and carry on; the report
is written beside the manifest and summarised in the log.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Literal

from kemotion.core.io import atomic_write

log = logging.getLogger(__name__)

Action = Literal["skipped", "kept", "ignored"]


@dataclass(frozen=True)
class Problem:
    file: str  # the file at fault: an image, a label JSON, or the folder
    kind: str  # short category used for counting, e.g. "image missing", "truncated image", "bad box"
    detail: str  # what exactly is wrong, for a person
    action: Action = "skipped"  # skipped: left out; kept: used with a note; ignored: not a dataset file
    record: str = ""  # the record's image file name when the problem is one record of a label JSON


class SkipReport:
    """Collects problems; `write_csv` puts them beside the manifest, `counts` summarises them."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, file: str | Path, kind: str, detail: str, action: Action = "skipped", record: str = "") -> None:
        self.append(Problem(str(file), kind, detail, action, record))

    def append(self, problem: Problem) -> None:
        self.problems.append(problem)
        log.debug("%s %s: %s (%s)", problem.action, problem.file, problem.detail, problem.kind)

    def extend(self, other: SkipReport) -> None:
        self.problems.extend(other.problems)

    def __len__(self) -> int:
        return len(self.problems)

    def counts(self) -> Counter[tuple[str, str]]:
        """How many problems of each (action, kind)."""
        return Counter((p.action, p.kind) for p in self.problems)

    def of_kind(self, kind: str) -> list[Problem]:
        return [p for p in self.problems if p.kind == kind]

    def format_counts(self) -> str:
        if not self.problems:
            return "no problems"
        return "\n".join(f"  {n:7d}  {action:8s} {kind}" for (action, kind), n in sorted(self.counts().items()))

    def write_csv(self, path: str | Path) -> None:
        names = [f.name for f in fields(Problem)]
        with atomic_write(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=names)
            writer.writeheader()
            writer.writerows(asdict(p) for p in self.problems)

    @classmethod
    def read_csv(cls, path: str | Path) -> SkipReport:
        report = cls()
        with open(path, newline="", encoding="utf-8") as handle:
            report.problems = [Problem(**row) for row in csv.DictReader(handle)]
        return report
