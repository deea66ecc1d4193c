"""A run: from a composed config, build data, model and trainer, fit, test the best checkpoint, and record it.

`train(cfg)` is what `python -m kemotion.train` runs for each job (after the face-detector stage,
`kemotion.engine.detector_stage`, which hands it the detector a YOLO crop needs), and what that stage runs to train the
detector. Everything it builds
comes from the config through Hydra's `instantiate`: `datamodule` and `module` name what the run fits (the
classifier by default, the face detector with +experiment=face_detector); the logic lives in the modules it calls, and
each LightningModule prints its own test summary. A run first fixes torch's CPU thread count (`threads`,
`fix_threads`), so the same config gives the same numbers on a machine of any core count. A classical cell
(`model=hog_svm`) is fitted without a trainer or logger (`kemotion.engine.classical`) and recorded in its run folder
the same way.
"""

from __future__ import annotations

import logging
import os
import shutil
import traceback
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig, OmegaConf

from kemotion.core.config import validate
from kemotion.engine import artifacts, classical
from kemotion.engine.runs import LOCK, RunFolder, pipeline_record

log = logging.getLogger(__name__)


def train(cfg: DictConfig, face_detector: Path | None = None) -> tuple[dict[str, float], str | None]:
    """Fit and/or test as `cfg` says; return the logged metrics (`val/acc_best`, `test/acc`, …) and the best
    checkpoint (with `train=false`, the `ckpt_path` it tested). `face_detector`: the checkpoint the detector stage
    made for a cropper that leaves it to kemotion (`kemotion.engine.detector_stage.run`); the config is not changed. A
    run whose folder says it finished is not run again, one that was killed resumes from its last checkpoint, and one
    whose folder another process is running is skipped (`kemotion.engine.runs`).
    A count or size that cannot work is a ValueError naming its key, before anything runs (`config.validate`)."""
    validate(cfg)
    tested = _checkpoint_to_test(cfg)
    folder = RunFolder.of(cfg)
    with folder.claim() as owned:
        if not owned:
            log.warning("Skipping %s: another process is running it (it holds %s)", folder.directory, LOCK)
            return {}, None
        if (done := folder.finished()) is not None:
            log.info("Skipping %s: it finished there already (test/acc %s)", folder.directory,
                     done["metrics"].get("test/acc", "not tested"))
            return done["metrics"], done["best_checkpoint"]
        return _run(cfg, folder, tested, face_detector)


def _checkpoint_to_test(cfg: DictConfig) -> str | None:
    """With `train=false`, the checkpoint `ckpt_path` names, which must exist: testing fresh weights is no test."""
    if cfg.get("train"):
        return None
    checkpoint = cfg.get("ckpt_path")
    if not checkpoint:
        raise ValueError("train=false tests a trained model: give its checkpoint, ckpt_path=PATH "
                         "(a run's checkpoints/*.ckpt, or the best_checkpoint in its result.json)")
    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f"ckpt_path={checkpoint}: no such checkpoint file")
    return str(checkpoint)


def _run(cfg: DictConfig, folder: RunFolder, tested: str | None,
         face_detector: Path | None) -> tuple[dict[str, float], str | None]:
    fix_threads(cfg.get("threads"))
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    datamodule: L.LightningDataModule = instantiate(data_config(cfg, face_detector))
    model: L.LightningModule = instantiate(cfg.module)
    if isinstance(model, classical.CLASSICAL_MODELS):  # model=hog_svm: fitted without a trainer, recorded alike
        return _run_classical(cfg, folder, datamodule, model)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    loggers = [instantiate(c, **_run_id(c, folder)) for c in (cfg.get("logger") or {}).values()]
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    log.info("Output directory: %s", Path(trainer.default_root_dir).resolve())
    cell = OmegaConf.to_container(cfg.cell, resolve=True) if "cell" in cfg else {}
    resume = (cfg.get("ckpt_path") or folder.last_checkpoint()) if cfg.get("train") else None
    if trainer.is_global_zero:
        folder.start(cell, pipeline_record(cfg, folder.directory, face_detector))

    also = {name: instantiate(config) for name, config in (cfg.get("also_test") or {}).items()}
    try:
        before = _tests(trainer, model, datamodule, None, also) if cfg.get("test_before_fit") else None
        if cfg.get("train"):
            if resume:
                log.info("Resuming training from %s", resume)
            trainer.fit(model, datamodule=datamodule, ckpt_path=resume)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        best = tested or (trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else "") or None
        if cfg.get("test"):
            metrics.update(_tests(trainer, model, datamodule, best, also))
        if before is not None:
            log.info("Before and after training:\n%s", before_after_table(before, metrics, cfg.get("compare") or []))
    except BaseException as error:
        _finish(loggers, exit_code=1)  # marked failed in W&B; the next job of a sweep still gets a run of its own
        # Hydra keeps a failed job's exception until the sweep ends, and its traceback would keep this run's model,
        # optimizer and data alive with it (23 GB after nine failed jobs): keep the lines, drop the locals.
        del datamodule, model, trainer, callbacks, loggers, also
        traceback.clear_frames(error.__traceback__)
        raise
    record = None
    if trainer.is_global_zero:
        confusion = getattr(model, "test_results", {}).get("confusion")
        record = folder.finish({"cell": cell, "metrics": metrics, "best_checkpoint": best,
                                "confusion": confusion.tolist() if confusion is not None else None})
    _finish(loggers, record=record, datamodule=datamodule)
    return metrics, best


def fix_threads(threads: int | None) -> None:
    """torch's CPU threads for this run: a float sum's order, so the run's numbers, depends on how many threads share
    it, so the config fixes the count (`threads`) instead of taking one per core of whichever machine runs it. Also
    OMP_NUM_THREADS, which Lightning's DDP launcher keeps (it sets its own where that is unset) and the processes it
    starts inherit. None: torch's default, one thread per core."""
    if threads is None:
        return
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


def data_config(cfg: DictConfig, face_detector: Path | None) -> DictConfig:
    """The DataModule config the run builds: `cfg.datamodule`, or a resolved copy of it whose cropper has
    `face_detector` as its checkpoint."""
    if face_detector is None:
        return cfg.datamodule
    data = OmegaConf.create(OmegaConf.to_container(cfg.datamodule, resolve=True))
    data.cropper.checkpoint = str(face_detector)
    return data


def _run_classical(cfg: DictConfig, folder: RunFolder, datamodule: L.LightningDataModule,
                   model: classical.HogSvm) -> tuple[dict[str, float], str | None]:
    output = Path(cfg.paths.output_dir)
    log.info("Output directory: %s", output.resolve())
    cell = OmegaConf.to_container(cfg.cell, resolve=True) if "cell" in cfg else {}
    folder.start(cell)
    metrics, best, confusion = classical.fit_and_test(model, datamodule, output)
    folder.finish({"cell": cell, "metrics": metrics, "best_checkpoint": best, "confusion": confusion.tolist()})
    return metrics, best


def _run_id(logger: DictConfig, folder: RunFolder) -> dict[str, str]:
    """A logger that names its run by id (W&B) and leaves it null gets the run folder's: a resumed run continues its
    own W&B run (with `resume: allow`, conf/logger/wandb.yaml) instead of starting a second one."""
    return {"id": folder.run_id()} if "id" in logger and logger.id is None else {}


def _tests(trainer: L.Trainer, model: L.LightningModule, datamodule: L.LightningDataModule, checkpoint: str | None,
           also: dict[str, L.LightningDataModule]) -> dict[str, float]:
    """Test `checkpoint` (None: the current weights) on the run's data, then on each `also_test` data, whose metrics
    are named `<name>/test/...` (Table 4's WIDER val beside the Korean faces). The loggers get those under their
    names too, never as a second `test/map` that would overwrite the run's own."""
    metrics = _test(trainer, model, datamodule, checkpoint)
    loggers, trainer.loggers = trainer.loggers, []
    try:
        for name, data in also.items():
            found = _test(trainer, model, data, checkpoint)
            metrics |= {f"{name}/{key}": value for key, value in found.items() if key.startswith("test/")}
    finally:
        trainer.loggers = loggers
    named = {key: value for key, value in metrics.items() if key.split("/")[0] in also}
    for logger in loggers if named else []:
        logger.log_metrics(named, step=trainer.global_step)
        logger.save()  # the trainer flushed its own at the end of its test; these come after
    return metrics


def _test(trainer: L.Trainer, model: L.LightningModule, datamodule: L.LightningDataModule,
          checkpoint: str | None) -> dict[str, float]:
    log.info("Testing %s on %s", checkpoint or "the current weights", type(datamodule).__name__)
    trainer.test(model, datamodule=datamodule, ckpt_path=checkpoint)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def before_after_table(before: dict[str, float], after: dict[str, float], keys: list[str]) -> str:
    """A Markdown table: a row per state (before / after training), a column per metric the run logged (the WIDER
    AP only on data with its ground truth), with the change."""
    keys = [k for k in keys if k in before and k in after]
    header = "| weights | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys)
    first = "| starting | " + " | ".join(f"{before[k]:.4f}" for k in keys) + " |"
    second = "| trained | " + " | ".join(f"{after[k]:.4f} ({after[k] - before[k]:+.4f})" for k in keys) + " |"
    return "\n".join([header, first, second])


def _finish(loggers: list, exit_code: int = 0, record: Path | None = None, datamodule: object = None) -> None:
    """Close W&B runs so the next job of a multirun starts a run of its own. The run's record (`result.json`) goes
    into the W&B run's files too, so `python -m kemotion.report` can read W&B run folders alone, and the run's model
    and crop table become W&B artifacts (`kemotion.engine.artifacts`)."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            run = logger.experiment
            try:
                if record is not None and Path(run.dir).is_dir():  # none when WANDB_MODE=disabled
                    shutil.copy(record, Path(run.dir) / record.name)
                    run.save(str(Path(run.dir) / record.name), base_path=run.dir, policy="now")
                    artifacts.log_run(run, record.parent, datamodule)
            finally:
                run.finish(exit_code=exit_code)
