"""python -m kemotion.predict run=RUN source=SOURCE: a trained run on new photos, folders, video or a webcam.

Writes `predictions.jsonl`, `predictions.csv`, `skipped.csv` and annotated images (or video) into
`outputs/predict/<time>/` (`project=`, `name=`); every option is in `kemotion/conf/predict.yaml`. The work is
`kemotion.inference` (the `EmotionPipeline` API): this only reads the options.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from kemotion.config import CONFIG_PATH
from kemotion.inference.outputs import Summary, predict_into
from kemotion.inference.pipeline import EmotionPipeline

log = logging.getLogger(__name__)


def predict(cfg: DictConfig, directory: Path) -> Summary:
    if cfg.backend == "onnx":
        pipe = EmotionPipeline.from_export(cfg.run, conf=cfg.conf, max_faces=cfg.max_faces)
    else:
        pipe = EmotionPipeline.from_run(cfg.run, device=cfg.device, conf=cfg.conf, max_faces=cfg.max_faces,
                                        half=cfg.half, batch_size=cfg.batch_size,
                                        trust_checkpoint=cfg.trust_checkpoint)
    log.info("Output directory: %s", directory.resolve())
    summary = predict_into(pipe, cfg.source, directory, batch_size=cfg.batch_size, vid_stride=cfg.vid_stride,
                           save=cfg.save, resume=cfg.resume)
    log.info("Done: %s. Results in %s", summary, directory.resolve())
    return summary


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="predict")
def main(cfg: DictConfig) -> None:
    predict(cfg, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
