"""A user's mistake said in one line, `kemotion <command>: error: <message>`, instead of a traceback: the decorator
`reports_user_mistakes`, on every Hydra entry point's task function.

A user mistake is a mandatory config value left out (`run: ???`: omegaconf's `MissingMandatoryValue`), or a ValueError
or OSError (FileNotFoundError, FileExistsError, ...) raised by kemotion's own code, whose checks word their messages
for the user: a count that cannot work (`kemotion.core.config.validate`), a run folder or record that is not there or
not kemotion's, a source that matches nothing. Every other exception (a RuntimeError, an exception raised inside a
library or Python itself) is a bug or a failure to look into, and keeps its traceback; `HYDRA_FULL_ERROR=1` shows the
traceback of a mistake as well.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import MissingMandatoryValue

PACKAGE = Path(__file__).resolve().parents[1]


class UserMistake(CompactHydraException):
    """A user's mistake in one job of a sweep, as Hydra reports its own config errors: the message, no traceback."""


def reports_user_mistakes(task: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """Decorate a Hydra task function (below `@hydra.main`) so that a user mistake ends the command with one line on
    stderr, `kemotion <command>: error: <message>`, and exit status 2 (a command-line mistake, as argparse's), instead
    of a traceback. In a sweep (`-m`) it fails only its job, which Hydra reports in the same words when the sweep's
    jobs are done. With `HYDRA_FULL_ERROR=1` the exception passes through as it is, and Hydra prints its traceback."""

    @functools.wraps(task)
    def run(cfg: DictConfig) -> Any:
        try:
            return task(cfg)
        except (MissingMandatoryValue, ValueError, OSError) as error:
            if os.environ.get("HYDRA_FULL_ERROR") == "1" or not is_user_mistake(error):
                raise
            hydra = HydraConfig.get()
            line = f"kemotion {hydra.job.name}: error: {explain(error, f'kemotion {hydra.job.name}')}"
            if hydra.mode == RunMode.MULTIRUN:
                raise UserMistake(line) from None
            print(line, file=sys.stderr)
            sys.exit(2)

    return run


def is_user_mistake(error: BaseException) -> bool:
    """A missing mandatory value, or a ValueError or OSError raised in kemotion's own code: the innermost frame of
    its traceback is in the package (a check's `raise`; also a builtin's error there, such as `int("x")`), not in a
    library or in Python's standard library."""
    if isinstance(error, MissingMandatoryValue):
        return True
    if not isinstance(error, (ValueError, OSError)) or error.__traceback__ is None:
        return False
    raised_in = Path(traceback.extract_tb(error.__traceback__)[-1].filename).resolve()
    return raised_in.is_relative_to(PACKAGE)


def explain(error: BaseException, command: str) -> str:
    """The mistake in one line; a missing value names its key and where its meaning is."""
    if isinstance(error, MissingMandatoryValue):
        return f"{error.full_key} is missing: give {error.full_key}=... (`{command} --help` says what it is)"
    return " ".join(str(error).split())
