"""Images per second per core of each cropper, beside decoding alone and the detector's forward pass alone.

    .venv/bin/python benchmarks/croppers.py [--checkpoint CKPT] [--long-side 3000] [--detect-side 640]

On a set of large synthetic AI-Hub JPEGs (`--long-side`, like real 2000-4000 px selfies), in this one process with
one torch and one OpenCV thread (so per core), each cropper's `crop_files` — what the crop cache runs in each of its
workers, JPEG encoding and writing left out — is timed against:
- decode: the full-resolution decode of the same files (`kemotion.data.images.load_rgb`), the physical floor of a
  naive cropper;
- detector: the detector alone on inputs prepared beforehand. For `yolo`, the network's forward pass on a batch of
  `--batch` letterboxes at `--detect-side`, per image; for `opencv`, the Haar cascade's detectMultiScale3 on the
  640 px grey copy; `resize` has none.
The goal: cropper ≤ 1.5 × (decode + detector) per image. The table goes to stdout.

The YOLO detector is `--checkpoint`, or the newest one kemotion trained into `.cache/detectors/`; speed does not
depend on the weights, but NMS does on how many boxes they propose, so an untrained net is a last resort.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from kemotion.data import images
from kemotion.data.synthetic import SyntheticAIHub
from kemotion.preprocess.cropper import SourceImage
from kemotion.preprocess.detector_runtime import detector_runtime
from kemotion.preprocess.opencv import OpenCVCropper, _cascade
from kemotion.preprocess.resize import ResizeCropper
from kemotion.preprocess.yolo import YoloCropper

GOAL = 1.5


def main() -> None:
    args = _arguments()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    sources = _large_jpegs(args)
    checkpoint = args.checkpoint or _cached_detector(args.cache)
    print(f"{len(sources)} JPEGs of {sources[0].width}×{sources[0].height} px (long side {args.long_side}); "
          f"detector {checkpoint}; 1 torch thread, 1 OpenCV thread")

    decode = _per_image(lambda: [images.load_rgb(s.path) for s in sources], len(sources), args.repeats)
    resize = ResizeCropper(size=args.size)
    opencv = OpenCVCropper(size=args.size)
    yolo = YoloCropper(str(checkpoint), size=args.size, detect_side=args.detect_side, batch_size=args.batch)
    rows = [("resize", resize, 0.0), ("opencv", opencv, _haar_alone(opencv, sources, args.repeats)),
            ("yolo", yolo, _forward_alone(yolo, sources, args.repeats))]

    print(f"\n{'cropper':<8}{'ms/img':>9}{'img/s/core':>12}{'decode ms':>11}{'detector ms':>13}"
          f"{'cropper / (decode + detector)':>31}{'result':>8}")
    for name, cropper, detector in rows:
        crop = _per_image(lambda c=cropper: _crop_all(c, sources), len(sources), args.repeats)
        ratio = crop / (decode + detector)
        verdict = "PASS" if ratio <= GOAL else "FAIL"
        print(f"{name:<8}{crop * 1e3:>9.1f}{1 / crop:>12.1f}{decode * 1e3:>11.1f}{detector * 1e3:>13.1f}"
              f"{ratio:>31.2f}{verdict:>8}")


def _crop_all(cropper, sources: list[SourceImage]) -> None:
    for start in range(0, len(sources), cropper.batch_size):
        cropper.crop_files(sources[start:start + cropper.batch_size])


def _haar_alone(cropper: OpenCVCropper, sources: list[SourceImage], repeats: int) -> float:
    """The cascade alone, per image, on the grey copies `detect` makes (prepared beforehand)."""
    greys = []
    for source in sources:
        image = images.load_rgb(source.path, max_side=cropper.detect_side)
        scale = cropper.detect_side / max(image.shape[:2])
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        greys.append(cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    cascade = _cascade(cropper.cascade)
    min_px = round(cropper.min_size * min(greys[0].shape))

    def detect() -> None:
        for grey in greys:
            cascade.detectMultiScale3(grey, scaleFactor=cropper.scale_factor, minNeighbors=cropper.min_neighbors,
                                      minSize=(min_px, min_px), outputRejectLevels=True)

    return _per_image(detect, len(sources), repeats)


def _forward_alone(cropper: YoloCropper, sources: list[SourceImage], repeats: int) -> float:
    """The network's forward pass alone, per image, on batches of letterboxes (prepared beforehand)."""
    net = detector_runtime(cropper.checkpoint, cropper.checkpoint_sha256).net
    boxed = [ResizeCropper(size=cropper.detect_side, keep_aspect=True)(
        images.load_rgb(s.path, max_side=cropper.detect_side)) for s in sources]
    batches = [torch.from_numpy(np.stack(boxed[i:i + cropper.batch_size])).permute(0, 3, 1, 2).float() / 255
               for i in range(0, len(boxed), cropper.batch_size)]

    @torch.no_grad()
    def forward() -> None:
        for batch in batches:
            net(batch)

    return _per_image(forward, len(sources), repeats)


def _per_image(work, n: int, repeats: int) -> float:
    """Seconds per image: the best of `repeats` timed runs after one warm-up run."""
    work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times) / n


def _large_jpegs(args: argparse.Namespace) -> list[SourceImage]:
    root = SyntheticAIHub(args.cache / "benchmarks" / "croppers", seed=5, n_subjects=6,
                          images_per_class=args.images_per_class, long_side=args.long_side).prepare()
    paths = sorted(root.rglob("*.jpg"))
    return [SourceImage(str(p), info.width, info.height) for p, info in ((p, images.probe_image(p)) for p in paths)]


def _cached_detector(cache: Path) -> Path:
    found = sorted((cache / "detectors").glob("*/*/face_detector.ckpt"), key=os.path.getmtime)
    if found:
        return found[-1]
    from kemotion.models.yolo import build_detector, save_detector

    path = cache / "benchmarks" / "untrained_yolo_facev2_n.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_detector(build_detector("yolo-facev2", scale="n", num_classes=1), path)
    print("no trained detector in the cache: timing an untrained YOLO-FaceV2 n (NMS sees more boxes)")
    return path


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("KEMOTION_CACHE", ".cache")))
    parser.add_argument("--long-side", type=int, default=3000)
    parser.add_argument("--images-per-class", type=int, default=4)
    parser.add_argument("--detect-side", type=int, default=640)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    return parser.parse_args()


if __name__ == "__main__":
    main()
