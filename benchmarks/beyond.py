"""From a 1600 px JPEG to an emotion, images/s on 1 core: two-stage against one-stage against face + scene; and the
parameters and GFLOPs of each one's networks.

    .venv/bin/python benchmarks/beyond.py [--images-per-class 3] [--repeats 3]

On synthetic AI-Hub JPEGs of the demo's size (1600 px long side), in this one process with one torch and one OpenCV
thread, each pipeline runs everything between the file and the answer, at the synthetic default's sizes:
- two-stage (`+experiment=yolo_kemo`): the YOLO cropper's `crop_files` (reduced decode, YOLO-FaceV2 n on a 256 px
  letterbox, NMS, a 500 px margin crop), then K-EmotionNet on the 64 px crop;
- one-stage (`+experiment=onestage_emotion`): a reduced decode, a 256 px letterbox, YOLO-FaceV2 n with 7 classes,
  NMS, the most confident face's class;
- face + scene (`+experiment=context_kemo`): the two-stage's face crop and the resize cropper's whole frame (a second
  reduced decode), then K-EmotionNet + ResNet18 at 64 px.
Batch 1 and batch 8 (the detector and the classifier see 8 images at once). The networks are built from their
configs, untrained: speed does not depend on the weights, but NMS and the crop do on the boxes proposed, so both
pipelines keep every box above a confidence of 0.001 (`FLOOR`), which makes an untrained detector propose faces
(a trained one proposes fewer boxes: its NMS is cheaper). GFLOPs: torch.utils.flop_counter on one image, FLOPs
counted as 2 × multiply-adds, as ultralytics does. The table goes to stdout.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from hydra import compose, initialize_config_module
from hydra.utils import instantiate
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import kemotion  # noqa: F401  (first: offline settings before ultralytics)
from kemotion.core.config import CONFIG_NAME, CONFIG_PACKAGE
from kemotion.data import images
from kemotion.data.synthetic import SyntheticAIHub
from kemotion.data.transforms import eval_transform
from kemotion.lit.detection_metrics import postprocess
from kemotion.lit.onestage import most_confident_emotion
from kemotion.models.yolo import save_detector
from kemotion.preprocess.cropper import SourceImage
from kemotion.preprocess.resize import ResizeCropper
from kemotion.preprocess.yolo import YoloCropper

FLOOR = 0.001  # lowest box confidence kept, in both detectors' NMS (see the docstring)
BATCHES = (1, 8)


def main() -> None:
    args = _arguments()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    sources = _jpegs(args)
    nets = _networks()
    detector_size, input_size = nets["detect_side"], nets["input_size"]
    checkpoint = args.cache / "benchmarks" / "untrained_face_detector.ckpt"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    save_detector(nets["face_detector"], checkpoint)  # tensors and the architecture, as a training run saves it
    face_cropper = YoloCropper(str(checkpoint), size=500, detect_side=detector_size, conf=FLOOR, batch_size=8)
    scene_cropper = ResizeCropper(size=500)
    to_input = eval_transform(input_size)

    def tensors(crops: list[np.ndarray]) -> torch.Tensor:
        return torch.stack([to_input(image=crop)["image"] for crop in crops])

    @torch.no_grad()
    def two_stage(batch: list[SourceImage]) -> torch.Tensor:
        return nets["classifier"](tensors([c.image for c in face_cropper.crop_files(batch)])).argmax(1)

    @torch.no_grad()
    def one_stage(batch: list[SourceImage]) -> torch.Tensor:
        letterbox = ResizeCropper(size=detector_size, keep_aspect=True)
        boxed = np.stack([letterbox(images.load_rgb(s.path, max_side=detector_size)) for s in batch])
        decoded = nets["onestage"](torch.from_numpy(boxed).permute(0, 3, 1, 2).float() / 255)
        return most_confident_emotion(postprocess(decoded, conf=FLOOR, iou=0.7, max_det=100), face_conf=FLOOR)

    @torch.no_grad()
    def context(batch: list[SourceImage]) -> torch.Tensor:
        faces = tensors([c.image for c in face_cropper.crop_files(batch)])
        scenes = tensors([c.image for c in scene_cropper.crop_files(batch)])
        return nets["context"](faces, scenes).emotions.argmax(1)

    pipelines = {"two-stage": two_stage, "one-stage": one_stage, "face + scene": context}
    print(f"{len(sources)} JPEGs of {sources[0].width}×{sources[0].height} px; detector input {detector_size} px, "
          f"classifier input {input_size} px; 1 torch thread, 1 OpenCV thread; best of {args.repeats}")
    seconds = {(name, b): _per_image(run, sources, b, args.repeats) for b in BATCHES for name, run in pipelines.items()}
    print(f"\n{'pipeline':<14}" + "".join(f"{f'img/s, batch {b}':>17}{'÷ two-stage':>13}" for b in BATCHES))
    for name in pipelines:
        speeds = [(1 / seconds[name, b], seconds["two-stage", b] / seconds[name, b]) for b in BATCHES]
        print(f"{name:<14}" + "".join(f"{speed:>17.2f}{ratio:>13.2f}" for speed, ratio in speeds))

    image = torch.zeros(1, 3, detector_size, detector_size)
    crop = torch.zeros(1, 3, input_size, input_size)
    sizes = {"two-stage": [(nets["face_detector"], (image,)), (nets["classifier"], (crop,))],
             "one-stage": [(nets["onestage"], (image,))],
             "face + scene": [(nets["face_detector"], (image,)), (nets["context"], (crop, crop))]}
    print(f"\n{'pipeline':<14}{'params (M)':>12}{'GFLOPs / image':>16}   networks")
    for name, parts in sizes.items():
        params = sum(_parameters(net) for net, _ in parts)
        gflops = sum(_flops(net, inputs) for net, inputs in parts) / 1e9
        names = " + ".join(type(net).__name__ for net, _ in parts)
        print(f"{name:<14}{params / 1e6:>12.2f}{gflops:>16.3f}   {names}")


def _networks() -> dict:
    """The nets of the three pipelines as their configs build them (the synthetic default), in eval mode."""
    with initialize_config_module(config_module=CONFIG_PACKAGE, version_base="1.3"):
        two_stage = compose(CONFIG_NAME, overrides=["+experiment=face_detector"])
        onestage = compose(CONFIG_NAME, overrides=["+experiment=onestage_emotion"])
        classifier = compose(CONFIG_NAME, overrides=["model=kemotionnet"])
        context = compose(CONFIG_NAME, overrides=["model=context_kemo"])
    return {"face_detector": instantiate(two_stage.detector.module.net).eval(),
            "onestage": instantiate(onestage.detector.module.net).eval(),
            "classifier": instantiate(classifier.model.net).eval(),
            "context": instantiate(context.model.net).eval(),
            "detect_side": two_stage.data.detector.image_size, "input_size": classifier.data.image_size}


def _per_image(run: Callable, sources: list[SourceImage], batch: int, repeats: int) -> float:
    """Seconds per image: the best of `repeats` passes over all sources in batches, after one warm-up pass."""
    chunks = [sources[i:i + batch] for i in range(0, len(sources), batch)]
    times = []
    for attempt in range(repeats + 1):
        start = time.perf_counter()
        for chunk in chunks:
            run(chunk)
        if attempt:
            times.append(time.perf_counter() - start)
    return min(times) / len(sources)


def _parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@torch.no_grad()
def _flops(net: nn.Module, inputs: tuple[torch.Tensor, ...]) -> int:
    with FlopCounterMode(display=False) as counter:
        net(*inputs)
    return counter.get_total_flops()


def _jpegs(args: argparse.Namespace) -> list[SourceImage]:
    root = SyntheticAIHub(args.cache / "benchmarks" / "beyond", seed=5, n_subjects=6,
                          images_per_class=args.images_per_class, long_side=1600).prepare()
    paths = sorted(root.rglob("*.jpg"))[: 8 * (len(list(root.rglob("*.jpg"))) // 8)]  # whole batches of 8
    if not paths:
        raise SystemExit(f"{root} holds fewer than 8 JPEGs (one batch of 8): raise --images-per-class")
    return [SourceImage(str(p), info.width, info.height) for p, info in ((p, images.probe_image(p)) for p in paths)]


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("KEMOTION_CACHE", ".cache")))
    parser.add_argument("--images-per-class", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    return parser.parse_args()


if __name__ == "__main__":
    main()
