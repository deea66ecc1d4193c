"""python -m kemotion.predict run=RUN source=SOURCE: a trained run on new photos, folders, videos, a list of paths, a
URL or a webcam (`show=true`: in a window as it goes).

Writes `predictions.jsonl`, `predictions.csv`, `skipped.csv`, annotated images and videos, `predict.json` (what
decided the results) and `predict.log` into a new folder, `outputs/predict/<time>/` (`project=`, `name=`; `-2`, `-3`,
… when that name is taken); `resume=true` continues the folder `name=` names instead. Every option is in
`kemotion/conf/predict.yaml`. The work is `kemotion.inference` (the `EmotionPipeline` API): this only reads the options,
and checks the source (and the display, for `show=true`) before the models load, so that a typo costs seconds.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from kemotion.core.config import CONFIG_PATH
from kemotion.core.mistakes import reports_user_mistakes
from kemotion.inference.outputs import Summary, output_folder, predict_into, prediction_identity
from kemotion.inference.pipeline import EmotionPipeline
from kemotion.inference.sources import open_source
from kemotion.inference.window import LiveWindow

log = logging.getLogger(__name__)

LOG_FILE = "predict.log"
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # Hydra's, as the console shows it


def predict(cfg: DictConfig) -> tuple[Path, Summary]:
    """Predict `cfg.source` into a folder of its own under `cfg.project`; return the folder and the summary."""
    found = open_source(cfg.source)  # a typo in source= fails here, before the models load
    window = LiveWindow(f"kemotion predict {cfg.source}") if cfg.show else None  # as does show=true without a display
    if cfg.backend == "onnx":
        pipe = EmotionPipeline.from_export(cfg.run, conf=cfg.conf, max_faces=cfg.max_faces)
    else:
        pipe = EmotionPipeline.from_run(cfg.run, device=cfg.device, conf=cfg.conf, max_faces=cfg.max_faces,
                                        half=cfg.half, batch_size=cfg.batch_size,
                                        trust_checkpoint=cfg.trust_checkpoint)
    identity = prediction_identity(pipe, found, cfg.vid_stride)
    options = OmegaConf.to_container(cfg, resolve=True)
    with output_folder(Path(cfg.project), cfg.name, identity, cfg.resume, options) as (directory, resumed), \
            _log_file(directory / LOG_FILE), window or contextlib.nullcontext():
        log.info("Output directory: %s%s", directory.resolve(), " (resumed)" if resumed else "")
        summary = predict_into(pipe, found, directory, batch_size=cfg.batch_size, vid_stride=cfg.vid_stride,
                               save=cfg.save, resume=resumed, window=window)
        log.info("Done: %s. Results in %s", summary, directory.resolve())
    return directory, summary


@contextlib.contextmanager
def _log_file(path: Path) -> Iterator[None]:
    """The log also in `path` (appended to on resume) while the block runs: the folder is made here, after Hydra."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.getLogger().addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="predict")
@reports_user_mistakes
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()
