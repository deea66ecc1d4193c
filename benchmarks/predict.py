"""`kemotion.predict`'s speed against the crop cache's, onnxruntime's against torch's, and predict's peak memory.

    .venv/bin/python benchmarks/predict.py [--run RUN] [--long-side 1600] [--many 500]

On synthetic AI-Hub JPEGs (`--long-side`), in this one process with one torch, one onnxruntime and one OpenCV
thread (so per core):
- predict: images/s of `predict_into` (what `python -m kemotion.predict ... save=false` runs: header read, decode,
  detect, crop, classify, tables) against the crop cache's own per-image cost for the same cropper
  (`kemotion.preprocess.cache.crop_batch`: decode, detect, crop, JPEG written; the manifest's probe left out).
  Goal (issue 13): predict ≥ 0.9 × the cache's rate.
- onnxruntime against torch, per image, for the classifier (a batch of crops) and the face detector (a batch of
  letterboxes). Goal: ≥ 1.0 ×.
- peak RSS of `python -m kemotion.predict save=false` over a folder of 10 images and one of `--many` (links to the
  same 4000 px files, so only the count differs), each in a fresh process.
RUN is a YOLO-crop run (`make demo`'s); without one, the demo's settings with untrained weights are recorded here
(speed does not depend on the weights, only NMS on how many boxes they propose).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from kemotion.data import images
from kemotion.data.synthetic import SyntheticAIHub
from kemotion.inference.exporter import export_run
from kemotion.inference.onnx import DETECTOR_FILE
from kemotion.inference.outputs import predict_into
from kemotion.inference.pipeline import EmotionPipeline
from kemotion.models.onnx_export import DecodedHead
from kemotion.models.onnx_runtime import session
from kemotion.models.yolo import load_detector
from kemotion.preprocess.cache import crop_batch
from kemotion.preprocess.cropper import SourceImage
from kemotion.preprocess.resize import ResizeCropper

PREDICT_GOAL, ONNX_GOAL = 0.9, 1.0


def main() -> None:
    args = _arguments()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    work = Path(tempfile.mkdtemp(prefix="kemotion-bench-"))
    run = args.run or _demo_like_run(work)
    if not args.memory_only:
        _speed(args, run, work)
    _memory(args, run, work)


def _speed(args: argparse.Namespace, run: Path, work: Path) -> None:
    folder = SyntheticAIHub(args.cache / "benchmarks" / f"predict_{args.long_side}", seed=5, n_subjects=6,
                            images_per_class=args.images_per_class, long_side=args.long_side).prepare()
    paths = sorted(folder.rglob("*.jpg"))
    pipe = EmotionPipeline.from_run(run, batch_size=8)
    print(f"{len(paths)} JPEGs, long side {args.long_side}; run {run}; cropper {pipe.cropper.name}; "
          "1 torch / onnxruntime / OpenCV thread")

    sources = [SourceImage(str(p), *images.upright_size(p)) for p in paths]
    jobs = [(s, str(work / "crops" / f"{i}.jpg")) for i, s in enumerate(sources)]
    batch = pipe.cropper.batch_size
    cache = _per_image(lambda: [crop_batch(pipe.cropper, jobs[i:i + batch]) for i in range(0, len(jobs), batch)],
                       len(jobs), args.repeats)
    predict = _per_image(lambda: predict_into(pipe, str(folder), work / "predict", batch_size=8, save=False),
                         len(paths), args.repeats)
    _row("predict vs crop cache (img/s)", 1 / cache, 1 / predict, PREDICT_GOAL)

    export = export_run(run, work / "export")
    onnx_pipe = EmotionPipeline.from_export(export)
    crops = [np.random.default_rng(i).integers(0, 256, (pipe.cropper.size,) * 2 + (3,), np.uint8) for i in range(8)]
    inputs = pipe.classify.inputs(crops)
    _row("classifier, 8 crops (img/s)", 8 / _seconds(lambda: pipe.classify.logits(inputs), args.repeats),
         8 / _seconds(lambda: onnx_pipe.classify.logits(inputs.numpy()), args.repeats), ONNX_GOAL, "torch", "onnx")
    if pipe.cropper.needs_face_detector:
        side = pipe.cropper.detect_side
        boxed = np.stack([ResizeCropper(size=side, keep_aspect=True)(images.load_rgb(p, max_side=side))
                          for p in paths[:8]]).transpose(0, 3, 1, 2).astype(np.float32) / 255
        net, runner = DecodedHead(load_detector(pipe.cropper.checkpoint)).eval(), session(export / DETECTOR_FILE)
        with torch.inference_mode():
            torch_rate = 8 / _seconds(lambda: net(torch.from_numpy(boxed)), args.repeats)
        _row(f"face detector, 8 × {side} px (img/s)", torch_rate,
             8 / _seconds(lambda: runner.run(None, {"images": boxed}), args.repeats), ONNX_GOAL, "torch", "onnx")



def _memory(args: argparse.Namespace, run: Path, work: Path) -> None:
    big = SyntheticAIHub(args.cache / "benchmarks" / "predict_4000", seed=6, n_subjects=2, images_per_class=2,
                         long_side=4000).prepare()
    originals = sorted(big.rglob("*.jpg"))[:10]
    for count in (10, args.many):
        linked = work / f"folder_{count}"
        linked.mkdir()
        for i in range(count):
            (linked / f"{i:05d}_{originals[i % 10].name}").symlink_to(originals[i % 10].resolve())
        seconds, peak = _peak_rss(run, linked, work / f"out_{count}")
        print(f"peak RSS, {count} images of 4000 px: {peak / 1024:.0f} MB ({count / seconds:.1f} img/s)")


def _row(what: str, base: float, ours: float, goal: float, base_name: str = "crop cache", ours_name: str = "predict"):
    ratio = ours / base
    print(f"{what:<40}{base_name} {base:8.2f}   {ours_name} {ours:8.2f}   ratio {ratio:5.2f}   goal ≥ {goal}: "
          f"{'PASS' if ratio >= goal else 'FAIL'}")


def _peak_rss(run: Path, folder: Path, out: Path) -> tuple[float, int]:
    """Seconds and peak RSS (KiB) of `python -m kemotion.predict save=false` in a fresh process."""
    code = ("import resource, subprocess, sys, time; start = time.perf_counter(); "
            "subprocess.run(sys.argv[1:], check=True, capture_output=True); "
            "print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    command = [sys.executable, "-m", "kemotion.predict", f"run={run}", f"source={folder}", "save=false",
               f"project={out.parent}", f"name={out.name}"]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    seconds, peak = subprocess.run([sys.executable, "-c", code, *command], check=True, capture_output=True,
                                   text=True, env=env).stdout.split()
    return float(seconds), int(peak)


def _demo_like_run(work: Path) -> Path:
    """A run recorded with `make demo`'s settings (yolo_kemo on the synthetic default) and untrained weights."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.conftest import compose_config
    from tests.inference.conftest import record_run

    return record_run(compose_config(work, ["+experiment=yolo_kemo"]), work, architecture="yolo-facev2")


def _per_image(work, n: int, repeats: int) -> float:
    return _seconds(work, repeats) / n


def _seconds(work, repeats: int) -> float:
    """The best of `repeats` timed runs after one warm-up run."""
    work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, default=None)
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("KEMOTION_CACHE", ".cache")))
    parser.add_argument("--long-side", type=int, default=1600)
    parser.add_argument("--images-per-class", type=int, default=4)
    parser.add_argument("--many", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--memory-only", action="store_true", help="only the peak RSS of 10 and --many images")
    return parser.parse_args()


if __name__ == "__main__":
    main()
