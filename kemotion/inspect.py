"""python -m kemotion.inspect [data=aihub data.source.root=PATH]: the manifest's summary and skip report.

Builds (or reuses) the same manifest a training run would, prints its counts per class × split × agreement and
what was skipped, with a few examples of each reason.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from kemotion.core.config import CONFIG_NAME, CONFIG_PATH
from kemotion.core.mistakes import reports_user_mistakes
from kemotion.data.manifest import Manifest, load_or_build

log = logging.getLogger(__name__)

EXAMPLES_PER_KIND = 3


def inspect(cfg: DictConfig) -> Manifest:
    root = instantiate(cfg.data.source).prepare()
    manifest = load_or_build(root, instantiate(cfg.data.selection), cfg.data.cache_dir)
    print(f"dataset: {root}\nmanifest: {manifest.directory}\n")
    print(manifest.summary())
    print(examples(manifest))
    print(f"\nfull skip report: {manifest.directory / 'skip_report.csv'}")
    return manifest


def examples(manifest: Manifest) -> str:
    by_kind = defaultdict(list)
    for problem in manifest.report.problems:
        by_kind[(problem.action, problem.kind)].append(problem)
    lines = ["\nexamples:"] if by_kind else []
    for (action, kind), problems in sorted(by_kind.items()):
        lines.append(f"  {action} — {kind} ({len(problems)}):")
        lines += [f"    {p.file}: {p.detail}" for p in problems[:EXAMPLES_PER_KIND]]
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=CONFIG_NAME)
@reports_user_mistakes
def main(cfg: DictConfig) -> None:
    inspect(cfg)


if __name__ == "__main__":
    main()
