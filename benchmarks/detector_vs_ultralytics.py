"""kemotion's face detector against ultralytics' own trainer: same synthetic faces, image size, epochs, CPU.

    .venv/bin/python benchmarks/detector_vs_ultralytics.py [--epochs 10 --imgsz 256 --batch 16 ...]
    .venv/bin/python benchmarks/detector_vs_ultralytics.py --epochs 1 --imgsz 128 --images-per-class 8 --n-detector 40
    .venv/bin/python benchmarks/detector_vs_ultralytics.py --data wider [--epochs 30 --n-train 160 --n-val 40 ...]

`--data wider` (issue 14): kemotion's YOLO-FaceV2 n (its own loss: NWD and repulsion, conf/detector/yolo_facev2.yaml)
against ultralytics' trainer with YOLOv8n, on the synthetic WIDER-layout set (many faces per image, small ones,
invalid flags; kemotion.data.synthetic.wider), scored on WIDER val by COCO mAP and by the WIDER protocol (easy /
medium / hard AP, kemotion.lit.wider_eval). Both train on the same targets: the valid faces of at least 2 px.

`--data aihub` (the default, issue 3): both train a one-class YOLOv8n built from ultralytics' YAML (never
downloaded) on the detector subset's cached letterboxes. In both modes ultralytics reads the very same JPEG files
through symlinks, with YOLO labels written by this script, and both validate on the same val split. The goals:
kemotion's mAP@0.5:0.95 ≥ ultralytics', and its seconds per epoch ≤ 1.2 × ultralytics'. The table goes to stdout
and `<out>/result.md`.

Measured, for each side:
- seconds per epoch: the mean over all epochs of the wall time from the end of one epoch to the end of the next (the
  first from the start of training, after setup): training batches, validation, and whatever the trainer does in
  between (ultralytics: `trainer.epoch_time`, which also covers its checkpoint saving; kemotion: a callback from
  `on_train_start` to each `on_train_epoch_end`, which Lightning calls after the epoch's validation).
  Validation alone is timed too (ultralytics' `on_val_start/end`, Lightning's `on_validation_start/end`).
- mAP by each side's own evaluator: ultralytics' validator (its AP is the trapezoid integral of the precision
  envelope, linearly interpolated at 101 recall points) on its EMA weights, last epoch; kemotion's `val/map`
  (torchmetrics configured to equal pycocotools' COCOeval: 101-point step interpolation), EMA weights, last epoch.
- mAP by one common evaluator: `FaceDetector`'s test step — kemotion's `face_map()` (COCOeval) and, on WIDER data,
  the WIDER protocol — over the val split, same NMS (conf 0.001, IoU 0.7, at most 100 boxes), for ultralytics'
  final weights (`last.pt`, its EMA; `best.pt` too) and kemotion's final (EMA) weights. The ratios use this column.

Both run in this process with `torch.set_num_threads(--threads)`, re-applied when ultralytics' trainer starts
(its `select_device` sets `os.cpu_count() - 1` threads on CPU, importing ultralytics sets OMP_NUM_THREADS=1).
ultralytics loads data in the main process on CPU whatever `workers` says; kemotion uses `--workers` processes.
On a 2-core machine 2 torch threads are fastest only when nothing else runs: any other busy process stalls the
threads' barriers (a step took ~30× longer than with 1 thread while another training ran), so run it on an idle
machine; the table shows the load average around each run.

Same settings (conf/detector/yolo_facev2.yaml, conf/experiment/face_detector.yaml): AdamW lr 0.002, betas
(0.9, 0.999), weight decay 5e-4 off biases and norms, 3 warm-up epochs, linear decay to 0.01, clipping at 10, EMA
(decay 0.9999, tau 2000), ultralytics' loss. What stays different is each trainer's recipe: ultralytics accumulates
round(nbs / batch) batches per optimizer step (nbs 64: 4 at batch 16; `--nbs 16` steps every batch like kemotion),
uses mosaic until its last `close_mosaic` (10) epochs and its own augmentations, warms up per batch and decays per
epoch; kemotion steps every batch with albumentations' flip / affine / HSV and schedules per step.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import shutil
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import OmegaConf

from kemotion.core.config import config_file
from kemotion.data.synthetic import SyntheticAIHub
from kemotion.data.synthetic.wider import SyntheticWider
from kemotion.datamodules.detection import DetectionDataModule  # kemotion sets YOLO_OFFLINE before ultralytics loads
from kemotion.datamodules.widerface import WiderDetectionDataModule
from kemotion.lit.detector import FaceDetector
from kemotion.lit.ema import RampedEMA
from kemotion.models.yolo import build_detector

ARCHITECTURE = "yolov8n.yaml"  # ultralytics' side, and kemotion's with --data aihub
FACEV2 = "yolo-facev2"  # kemotion's side with --data wider
SEED = 0
SPLIT = (0.8, 0.1, 0.1)  # paper Table 2, as conf/data/synthetic.yaml
# conf/detector/yolo_facev2.yaml + conf/experiment/face_detector.yaml, with ultralytics' plain loss (yolov8n.yaml)
LR, BETAS, WEIGHT_DECAY = 0.002, (0.9, 0.999), 0.0005
WARMUP_EPOCHS, FINAL_LR_RATIO, GRADIENT_CLIP = 3, 0.01, 10.0
PLAIN_LOSS = {"nwd_ratio": 0.0, "repulsion_weight": 0.0}
# the common evaluator's NMS: kemotion's and ultralytics' validation defaults (ultralytics keeps 300 boxes)
CONF, IOU, MAX_DET = 0.001, 0.7, 100
MAP_GOAL, TIME_GOAL = 1.0, 1.2  # the goals: mAP ratio ≥ 1, seconds-per-epoch ratio ≤ 1.2


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--imgsz", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--images-per-class", type=int, default=50, help="synthetic images per emotion (7 classes)")
    parser.add_argument("--n-detector", type=int, default=280, help="images of the detector subset (8:1:1)")
    parser.add_argument("--data", choices=["aihub", "wider"], default="aihub",
                        help="the AI-Hub detector subset (YOLOv8n on both sides) or the WIDER-layout set "
                             "(kemotion's YOLO-FaceV2 n against ultralytics' YOLOv8n)")
    parser.add_argument("--n-train", type=int, default=160, help="--data wider: WIDER_train images")
    parser.add_argument("--n-val", type=int, default=40, help="--data wider: WIDER_val images")
    parser.add_argument("--long-side", type=int, default=512, help="--data wider: the images' long side")
    parser.add_argument("--workers", type=int, default=2, help="generation, caching and kemotion's loaders")
    parser.add_argument("--threads", type=int, default=2, help="torch threads, the same for both")
    parser.add_argument("--nbs", type=int, default=64,
                        help="ultralytics' nominal batch: it accumulates round(nbs / batch) batches per step")
    parser.add_argument("--out", type=Path, default=Path(".cache/benchmarks/detector"))
    parser.add_argument("--skip-ultralytics", action="store_true")
    parser.add_argument("--skip-kemotion", action="store_true")
    return parser.parse_args()


def detector_data(args: argparse.Namespace) -> DetectionDataModule:
    """The synthetic AI-Hub set's detector subset or the synthetic WIDER set, letterboxed once under `out`."""
    if args.data == "wider":
        source = SyntheticWider(args.out / "synthetic_widerface", seed=SEED, n_train=args.n_train, n_val=args.n_val,
                                long_side=args.long_side, workers=args.workers)
        datamodule = WiderDetectionDataModule(source, args.out / "cache", image_size=args.imgsz, batch_size=args.batch,
                                              num_workers=args.workers, cache_workers=args.workers, augment={})
        datamodule.prepare_data()
        datamodule.setup("fit")
        return datamodule
    source = SyntheticAIHub(args.out / "synthetic_aihub", seed=SEED, images_per_class=args.images_per_class,
                            workers=args.workers)
    selection = {"n_per_class": args.images_per_class, "min_agreement": 0, "split": SPLIT,
                 "n_detector": args.n_detector, "seed": SEED, "workers": args.workers}
    datamodule = DetectionDataModule(source, selection, args.out / "cache", image_size=args.imgsz,
                                     batch_size=args.batch, num_workers=args.workers, cache_workers=args.workers,
                                     augment={})
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def write_yolo_dataset(datamodule: DetectionDataModule, image_size: int, root: Path) -> Path:
    """images/{train,val}/*.jpg (symlinks to kemotion's letterboxes), labels/…/*.txt (`0 cx cy w h` per training
    face: the very boxes kemotion's datasets train on, in the letterbox's pixels), data.yaml."""
    for split in ("train", "val"):
        dataset = datamodule.datasets[split]
        for path, boxes in zip(dataset.paths, dataset.boxes, strict=True):
            image = root / "images" / split / Path(path).name
            image.parent.mkdir(parents=True, exist_ok=True)
            if not image.is_symlink():
                image.symlink_to(Path(path).resolve())
            label = root / "labels" / split / f"{image.stem}.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text("".join(  # clipped, as FaceBoxDataset does
                f"0 {(x1 + x2) / 2 / image_size:.6f} {(y1 + y2) / 2 / image_size:.6f} "
                f"{(x2 - x1) / image_size:.6f} {(y2 - y1) / image_size:.6f}\n"
                for x1, y1, x2, y2 in boxes.clip(0, image_size)))
    data = root / "data.yaml"
    data.write_text(f"path: {root.resolve()}\ntrain: images/train\nval: images/val\nnames:\n  0: face\n")
    return data


def train_ultralytics(data: Path, args: argparse.Namespace) -> dict:
    from ultralytics import YOLO  # here, not above: the import sorter would put it before kemotion's

    epoch_seconds, val_seconds, threads, val_start = [], [], [], []

    def on_train_start(trainer) -> None:
        torch.set_num_threads(args.threads)  # select_device set os.cpu_count() - 1
        threads.append(torch.get_num_threads())

    def on_fit_epoch_end(trainer) -> None:
        if trainer.epoch < trainer.epochs:  # final_eval calls it once more, as epoch `epochs`, after best.pt's val
            epoch_seconds.append(trainer.epoch_time)

    model = YOLO(ARCHITECTURE)
    model.add_callback("on_train_start", on_train_start)
    model.add_callback("on_fit_epoch_end", on_fit_epoch_end)
    model.add_callback("on_val_start", lambda validator: val_start.append(time.perf_counter()))
    model.add_callback("on_val_end", lambda validator: val_seconds.append(time.perf_counter() - val_start[-1]))
    load, started = os.getloadavg()[0], time.perf_counter()
    model.train(data=str(data), imgsz=args.imgsz, epochs=args.epochs, batch=args.batch, device="cpu",
                workers=args.workers, optimizer="AdamW", lr0=LR, lrf=FINAL_LR_RATIO, weight_decay=WEIGHT_DECAY,
                momentum=BETAS[0],  # AdamW's beta1 in ultralytics; its default 0.937 is SGD's momentum
                warmup_epochs=WARMUP_EPOCHS,
                warmup_bias_lr=0.0,  # as optimizer="auto" sets when it picks AdamW; the default 0.1 is for SGD
                nbs=args.nbs, plots=False, val=True, project=str(args.out.resolve()), name="ultralytics",
                exist_ok=True, seed=SEED, deterministic=False, verbose=False, amp=False)
    total = time.perf_counter() - started
    trainer = model.trainer
    last = trainer.read_results_csv()  # ultralytics' validation of its EMA weights after each epoch
    return {"map": float(last["metrics/mAP50-95(B)"][-1]), "map50": float(last["metrics/mAP50(B)"][-1]),
            "csv_seconds": float(last["time"][-1]), "epoch_seconds": epoch_seconds,
            "val_seconds": val_seconds[:len(epoch_seconds)],  # the final_eval of best.pt validates once more
            "total_seconds": total, "load": (load, os.getloadavg()[0]), "threads": threads[0],
            "accumulate": trainer.accumulate, "last": trainer.last, "best": trainer.best}  # after warm-up's ramp


class EpochTimer(Callback):
    """Wall seconds of each epoch (from the previous epoch's end, or the start of training) and of each validation."""

    def __init__(self) -> None:
        self.epoch_seconds: list[float] = []
        self.val_seconds: list[float] = []
        self.threads = 0
        self.mark = self.val_start = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.threads = torch.get_num_threads()
        self.mark = time.perf_counter()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.val_start = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.val_seconds.append(time.perf_counter() - self.val_start)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:  # after validation
        now = time.perf_counter()
        self.epoch_seconds.append(now - self.mark)
        self.mark = now


def train_kemotion(datamodule: DetectionDataModule, args: argparse.Namespace) -> dict:
    L.seed_everything(SEED)
    architecture, loss = ARCHITECTURE, PLAIN_LOSS
    if args.data == "wider":  # YOLO-FaceV2 with its own loss terms, as conf/detector/yolo_facev2.yaml trains it
        architecture = FACEV2
        loss = OmegaConf.to_container(OmegaConf.load(config_file("detector", "yolo_facev2.yaml")).module.loss)
    module = FaceDetector(
        net=build_detector(architecture, scale="n", num_classes=1),
        optimizer=functools.partial(torch.optim.AdamW, lr=LR, betas=BETAS, weight_decay=WEIGHT_DECAY),
        warmup_epochs=WARMUP_EPOCHS, final_lr_ratio=FINAL_LR_RATIO, loss=loss)
    timer = EpochTimer()
    trainer = L.Trainer(max_epochs=args.epochs, accelerator="cpu", devices=1, gradient_clip_val=GRADIENT_CLIP,
                        callbacks=[RampedEMA(), timer], logger=False, enable_checkpointing=False,
                        num_sanity_val_steps=0)
    torch.set_num_threads(args.threads)
    load, started = os.getloadavg()[0], time.perf_counter()
    trainer.fit(module, datamodule=datamodule)  # ends with the EMA weights copied into the module
    metrics = trainer.callback_metrics
    return {"map": float(metrics["val/map"]), "map50": float(metrics["val/map50"]),
            "epoch_seconds": timer.epoch_seconds, "val_seconds": timer.val_seconds,
            "total_seconds": time.perf_counter() - started, "load": (load, os.getloadavg()[0]),
            "threads": timer.threads, "accumulate": 1,
            "net": module.net}


def load_ultralytics(path: Path) -> torch.nn.Module:
    """The model of an ultralytics checkpoint: its EMA weights, saved in half precision by strip_optimizer."""
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def common_scores(net: torch.nn.Module, loader) -> dict[str, float]:
    """`net`'s scores over `loader` by `FaceDetector`'s test step (one NMS setting): `map`, `map50` (COCOeval) and,
    on WIDER data, `wider_easy|medium|hard` (the WIDER protocol, on boxes mapped back to the source's pixels)."""
    module = FaceDetector(net=net.float(), optimizer=None, conf_threshold=CONF, iou_threshold=IOU, max_det=MAX_DET)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    (metrics,) = trainer.test(module, dataloaders=loader, verbose=False)
    return {key.removeprefix("test/"): float(value) for key, value in metrics.items()}


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def result_table(ultralytics: dict | None, kemotion: dict | None, args: argparse.Namespace, counts: dict) -> str:
    """The side-by-side Markdown table: values, kemotion / ultralytics ratios, goals and PASS/FAIL."""
    rows = [  # (label, key into a side's result, format — "" for no ratio, goal: "map" / "time" / None)
        ("mAP@0.5:0.95, common evaluator (COCOeval), final EMA weights", "common_map", ".4f", "map"),
        ("mAP@0.5, common evaluator, final EMA weights", "common_map50", ".4f", None),
        ("mAP@0.5:0.95, own evaluator, last epoch's val (EMA)", "map", ".4f", "map"),
        ("mAP@0.5, own evaluator, last epoch's val (EMA)", "map50", ".4f", None),
        ("mAP@0.5:0.95, common evaluator, ultralytics best.pt", "common_best_map", ".4f", None),
        *[(f"WIDER {subset} AP, common evaluator, final EMA weights", f"common_wider_{subset}", ".4f", "ap")
          for subset in ("easy", "medium", "hard") if args.data == "wider"],
        ("seconds / epoch (train + val, mean)", "epoch_mean", ".2f", "time"),
        ("  of which validation seconds / epoch", "val_mean", ".2f", None),
        ("  slowest epoch seconds", "epoch_max", ".2f", None),
        ("wall seconds of train() / fit()", "total_seconds", ".1f", None),
        ("torch threads while training", "threads", "", None),
        ("batches accumulated per optimizer step", "accumulate", "", None),
        ("1-min load average, start → end (others' jobs distort times)", "load", "", None),
    ]
    models = ("ultralytics YOLOv8n against kemotion YOLO-FaceV2 n, synthetic WIDER-layout set"
              if args.data == "wider" else f"{ARCHITECTURE} on both sides, synthetic detector subset")
    lines = [f"Face detector (1 class), {models} {counts}: {args.epochs} epochs at {args.imgsz} px, batch "
             f"{args.batch}, CPU, {args.threads} torch thread(s).", "",
             "| | ultralytics | kemotion | kemotion / ultralytics | goal | result |",
             "|---|---:|---:|---:|---|---|"]
    for label, key, spec, goal in rows:
        u = None if ultralytics is None else ultralytics.get(key)
        k = None if kemotion is None else kemotion.get(key)
        ratio = verdict = target = ""
        if u is not None and k is not None and spec:
            ratio = f"{k / u:.3f}" if u else ("1.000" if k == u else "inf")
            if goal == "map" and args.data == "aihub":  # issue 3's goal: the same YOLOv8n on both sides
                target, verdict = f"≥ {MAP_GOAL:g}", "PASS" if k >= MAP_GOAL * u else "FAIL"
            elif goal == "ap":  # issue 14 states no goal for it: the ratio per subset is the result
                target, verdict = "", ""
            elif goal == "time" and args.data == "aihub":
                target, verdict = f"≤ {TIME_GOAL:g}", "PASS" if k <= TIME_GOAL * u else "FAIL"
        cells = ["–" if v is None else format(v, spec) if spec else cell(v) for v in (u, k)]
        lines.append(f"| {label} | {cells[0]} | {cells[1]} | {ratio} | {target} | {verdict} |")
    for name, side in (("ultralytics", ultralytics), ("kemotion", kemotion)):
        if side is not None:
            lines += ["", f"{name} seconds of each epoch: {[round(s, 2) for s in side['epoch_seconds']]}."]
    if ultralytics is not None:
        lines += [f"ultralytics' results.csv `time`: {ultralytics['csv_seconds']:.1f} s at the last epoch's metrics "
                  "(cumulative from the start of training, before that epoch's checkpoint save)."]
    return "\n".join(lines) + "\n"


def cell(value) -> str:
    return " → ".join(f"{v:.1f}" for v in value) if isinstance(value, tuple) else str(value)


def summarise(result: dict) -> dict:
    """Add the per-epoch means and maximum to a side's result."""
    return {**result, "epoch_mean": mean(result["epoch_seconds"]), "val_mean": mean(result["val_seconds"]),
            "epoch_max": max(result["epoch_seconds"], default=float("nan"))}


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    datamodule = detector_data(args)
    counts = datamodule.table["split"].value_counts().to_dict()
    ultralytics = kemotion = None
    if not args.skip_ultralytics:
        root = args.out / "yolo"
        shutil.rmtree(root, ignore_errors=True)  # this script's own folder: no labels of an earlier run's images
        shutil.rmtree(args.out / "ultralytics", ignore_errors=True)
        ultralytics = summarise(train_ultralytics(write_yolo_dataset(datamodule, args.imgsz, root), args))
        for weights, key in (("last", "common"), ("best", "common_best")):
            scores = common_scores(load_ultralytics(ultralytics[weights]), datamodule.val_dataloader())
            ultralytics |= {f"{key}_{name}": value for name, value in scores.items()}
    if not args.skip_kemotion:
        kemotion = summarise(train_kemotion(datamodule, args))
        scores = common_scores(kemotion.pop("net"), datamodule.val_dataloader())
        kemotion |= {f"common_{name}": value for name, value in scores.items()}
    table = result_table(ultralytics, kemotion, args, counts)
    (args.out / "result.md").write_text(table, encoding="utf-8")
    print("\n" + table)
    print(f"Written to {(args.out / 'result.md').resolve()}")


if __name__ == "__main__":
    main()
