"""python -m kemotion.export run=RUN format=onnx: a trained run as `classifier.onnx`, `face_detector.onnx` (YOLO-crop
runs) and `pipeline.json` in `outputs/export/<time>/` (`project=`, `name=`), for `EmotionPipeline.from_export`.
The work is `kemotion.inference.exporter`; options are in `kemotion/conf/export.yaml`."""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from kemotion.core.config import CONFIG_PATH
from kemotion.core.mistakes import reports_user_mistakes

FORMATS = ("onnx",)


def export(cfg: DictConfig, directory: Path) -> Path:
    from kemotion.inference.exporter import export_run

    if cfg.format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {cfg.format!r}")
    return export_run(cfg.run, directory, opset=cfg.opset, trust_checkpoint=cfg.trust_checkpoint)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="export")
@reports_user_mistakes
def main(cfg: DictConfig) -> None:
    export(cfg, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
