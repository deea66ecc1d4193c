"""The prepared GPU benchmark (issue 24): does the loader keep each classifier busy, and what does Table 5 cost?

    python benchmarks/gpu.py [--budget-s 420] [--out DIR]          # the GPU machine (benchmarks/README.md: how)
    python benchmarks/gpu.py --device cpu --model-size 64 --loader-workers 0 1 2   # the CPU figures
    python benchmarks/gpu.py --smoke                                # tiny, CPU, seconds: CI runs it

In one process, on synthetic AI-Hub data built here (nothing travels but the code):
- loader: img/s the classification DataModule's train loader delivers at `--image-size` from a crop cache of
  `--crop-size` JPEGs (the train transforms, Random Erasing included), no model: the current path (JPEG decoded
  every epoch), the decoded cache (`data.decoded_cache`), and the decoded cache with `data.device_augment` (the
  workers' share; the device step's own img/s is timed beside it), for each of `--loader-workers`;
- classifiers: training img/s and peak device memory of VGG19, ResNet18 and K-EmotionNet at `--model-size` and
  `--batch`, each precision of `--precisions`, channels_last off/on (`torch.compile` with `--compile`), through
  Lightning's Trainer and the real EmotionClassifier on a batch already on the device: warm-up steps, then timed steps
  between synchronisations; then loader / model for each classifier at its fastest setting;
- detector: YOLO-FaceV2 (`--detector-scale`) training img/s at `--detector-size` (the real FaceDetector and its loss,
  one face per image), eval-mode detect img/s, and the exported ONNX detector's forward under onnxruntime (its CUDA
  provider when installed);
- projection: the paper-scale Table 5 (39,200 training images, 150 epochs, 3 croppers × 3 classifiers × 3 seeds)
  in device-hours at the measured model rates, and at the loader's rate where that is slower.
`--budget-s` bounds the whole run: once it is spent, the remaining sections are skipped (and say so).
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

PAPER_TRAIN_IMAGES = 39_200  # paper Table 2: 7 classes × 7,000 × 0.8
PAPER_EPOCHS = 150  # paper §4.1: up to 150 epochs
PAPER_CROPPERS, PAPER_SEEDS = 3, 3  # Table 5: resize, opencv, yolo; three seeds per cell
CLASSIFIERS = ("vgg19", "resnet18", "kemotionnet")
LOADER_VARIANTS = {"jpeg": {}, "decoded": {"decoded_cache": True},
                   "decoded+device": {"decoded_cache": True, "device_augment": True}}


def main(argv: list[str] | None = None) -> dict:
    args = _arguments(argv)
    start = time.perf_counter()
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = device.type == "cuda"
    print(f"device {_device_name(device)}; torch {torch.__version__}; budget {args.budget_s:.0f} s; out {args.out}")

    def left() -> float:
        return args.budget_s - (time.perf_counter() - start)

    results: dict = {"loader": {}, "device_step": None, "models": {}, "detector": {}}
    datamodule_args = _data(args)
    for name, options in LOADER_VARIANTS.items():
        for workers in args.loader_workers:
            if left() <= 0:
                print(f"loader {name}, {workers} workers: skipped (budget)")
                continue
            results["loader"][(name, workers)] = _loader_rate(datamodule_args | options, workers, args.loader_batches)
            print(f"loader {name:<15} {workers:>2} workers: {results['loader'][(name, workers)]:9.1f} img/s")
    results["device_step"] = _device_step_rate(args, device)
    print(f"device augment step (flip, normalise, erase) on {device.type}: {results['device_step']:9.1f} img/s")

    for model in args.models:
        for precision in args.precisions:
            for channels_last in (False, True) if args.channels_last_variants else (False,):
                for compiled in (False, True) if args.compile else (False,):
                    key = (model, precision, channels_last, compiled)
                    if left() <= 0:
                        print(f"{_label(key)}: skipped (budget)")
                        continue
                    results["models"][key] = _classifier_rate(args, device, model, precision, channels_last, compiled)
                    _release(device)
                    rate, memory = results["models"][key]
                    print(f"{_label(key)}: {rate:9.1f} img/s, peak {memory / 2**20:8.0f} MiB")
    if not args.no_detector and left() > 0:
        results["detector"] = _detector_rates(args, device)
    elif not args.no_detector:
        print("detector: skipped (budget)")
    _summary(args, results)
    print(f"total {time.perf_counter() - start:.0f} s")
    return results


# --- data ---------------------------------------------------------------------------------------------------------

def _data(args: argparse.Namespace) -> dict:
    """The ClassificationDataModule's arguments over a synthetic AI-Hub set whose train split has about
    `--train-images` images, cropped by the resize cropper to `--crop-size` (built once under `--out`)."""
    from kemotion.data.manifest import Selection
    from kemotion.data.synthetic import SyntheticAIHub
    from kemotion.preprocess.resize import ResizeCropper

    per_class = max(2, round(args.train_images / 7 / 0.8))
    source = SyntheticAIHub(root=str(args.out / "synthetic_aihub"), seed=0, n_subjects=6, images_per_class=per_class,
                            long_side=args.long_side, validation_fraction=0.0, exif_rotated_fraction=0.0,
                            missing_image_fraction=0.0, workers=args.prepare_workers)
    selection = Selection(n_per_class=per_class, min_agreement=0, n_detector=7, workers=args.prepare_workers)
    return {"source": source, "cropper": ResizeCropper(size=args.crop_size), "selection": selection,
            "cache_dir": str(args.out / "cache"), "image_size": args.image_size, "batch_size": args.batch,
            "crop_workers": args.prepare_workers, "augment": {"random_erasing_p": 0.5}, "pin_memory": False}


def _loader_rate(datamodule_args: dict, workers: int, batches: int) -> float:
    """Images per second out of the train loader (one warm-up batch first: worker start-up is not counted)."""
    from kemotion.datamodules.classification import ClassificationDataModule

    module = ClassificationDataModule(**datamodule_args, num_workers=workers)
    module.prepare_data()
    module.setup("fit")
    loader = module.train_dataloader()
    batches_seen, images, begin = -1, 0, 0.0
    while batches_seen < batches:
        for batch in loader:
            batches_seen += 1
            if batches_seen == 0:
                begin = time.perf_counter()
            else:
                images += len(batch[0])
            if batches_seen >= batches:
                break
    rate = images / (time.perf_counter() - begin)
    del loader, module  # persistent workers end with their loader
    return rate


def _device_step_rate(args: argparse.Namespace, device: torch.device) -> float:
    """Images per second of `BatchAugment` in training on a uint8 batch already on `device`."""
    from kemotion.data.transforms import BatchAugment

    step = BatchAugment(random_erasing_p=0.5, hflip_p=0.5)
    batch = torch.randint(0, 256, (args.batch, 3, args.image_size, args.image_size), dtype=torch.uint8, device=device)
    return args.batch * args.steps / _timed(lambda: step(batch, train=True), args.warmup, args.steps, device)


# --- models -------------------------------------------------------------------------------------------------------

def _classifier(model: str) -> torch.nn.Module:
    from kemotion.models.kemotionnet import kemotionnet
    from kemotion.models.resnet import resnet18
    from kemotion.models.vgg import vgg19

    return {"vgg19": vgg19, "resnet18": resnet18,
            "kemotionnet": functools.partial(kemotionnet, stages=[3, 4, 16, 3], width=64)}[model](num_classes=7)


def _classifier_rate(args: argparse.Namespace, device: torch.device, model: str, precision: str, channels_last: bool,
                     compiled: bool) -> tuple[float, int]:
    """(training img/s, peak device memory in bytes) of one classifier through the real EmotionClassifier."""
    from kemotion.lit.classifier import EmotionClassifier

    net = _classifier(model)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=memory_format)
    module = EmotionClassifier(net=torch.compile(net) if compiled else net,
                               optimizer=functools.partial(torch.optim.Adam, lr=1e-4), input_size=args.model_size)
    images = torch.randn(args.batch, 3, args.model_size, args.model_size, device=device)
    batch = (images.contiguous(memory_format=memory_format), torch.randint(0, 7, (args.batch,), device=device))
    return _fit_rate(args, device, module, batch, precision)


def _detector_rates(args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    """YOLO-FaceV2's training img/s (FaceDetector's loss on one centred face per image) and eval detect img/s."""
    import kemotion  # noqa: F401  (first: offline settings before ultralytics)
    from kemotion.lit.detector import FaceDetector
    from kemotion.models.yolo import build_detector

    size, n = args.detector_size, args.detector_batch
    detector = FaceDetector(net=build_detector("yolo-facev2", args.detector_scale),
                            optimizer=functools.partial(torch.optim.AdamW, lr=0.002))
    batch = {"img": torch.rand(n, 3, size, size, device=device),
             "batch_idx": torch.arange(n, device=device, dtype=torch.float32),
             "cls": torch.zeros(n, 1, device=device), "bboxes": torch.tensor([[0.5, 0.5, 0.3, 0.4]] * n, device=device)}
    train, memory = _fit_rate(args, device, detector, batch, args.detector_precision)
    detector = detector.to(device).eval()
    detect = n * args.steps / _timed(lambda: detector.detect(batch["img"]), args.warmup, args.steps, device)
    onnx, provider = _onnx_detect_rate(args, detector.net, batch["img"].cpu().numpy())
    print(f"detector YOLO-FaceV2 {args.detector_scale} {size} px, batch {n}, {args.detector_precision}: train "
          f"{train:8.1f} img/s (peak {memory / 2**20:.0f} MiB), detect (fp32, eval) {detect:8.1f} img/s, "
          f"ONNX forward ({provider}) {onnx:8.1f} img/s")
    return {"train": train, "detect": detect, "onnx": onnx}


def _onnx_detect_rate(args: argparse.Namespace, net: torch.nn.Module, images) -> tuple[float, str]:
    """The exported detector's forward img/s under onnxruntime (`kemotion.export`'s export; CUDA provider when the
    installed onnxruntime has it, else CPU). NaN when onnx or onnxruntime is missing."""
    try:
        import onnxruntime
    except ImportError:
        return float("nan"), "onnxruntime missing"
    from kemotion.inference.exporter import OPSET
    from kemotion.models.onnx_export import DecodedHead, to_onnx

    path = args.out / "face_detector.onnx"
    to_onnx(DecodedHead(net).cpu(), torch.zeros(2, 3, *images.shape[2:]), path, "detections", OPSET)
    provider = next(p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                     if p in onnxruntime.get_available_providers())
    runner = onnxruntime.InferenceSession(str(path), providers=[provider])
    seconds = _timed(lambda: runner.run(None, {"images": images}), args.warmup, args.steps, torch.device("cpu"))
    return len(images) * args.steps / seconds, provider


def _fit_rate(args: argparse.Namespace, device: torch.device, module, batch, precision: str) -> tuple[float, int]:
    """Train `module` on the same on-device `batch` for warm-up + timed steps; (img/s over the timed steps, peak
    device memory). The times are read after synchronising the device, at the first timed step's start and the
    last one's end."""
    import lightning as L

    clock = _StepClock(args.warmup, device)
    trainer = L.Trainer(accelerator=device.type, devices=1, precision=precision, max_steps=args.warmup + args.steps,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0, callbacks=[clock],
                        benchmark=device.type == "cuda", default_root_dir=str(args.out / "lightning"))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    trainer.fit(module, train_dataloaders=_Repeat(batch, args.warmup + args.steps))
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    return len(_first(batch)) * args.steps / clock.seconds, peak


class _Repeat:
    """The same batch `n` times: an iterable the Trainer reads as its train loader."""

    def __init__(self, batch, n: int) -> None:
        self.batch, self.n = batch, n

    def __iter__(self) -> Iterator:
        return iter([self.batch] * self.n)

    def __len__(self) -> int:
        return self.n


def _first(batch) -> torch.Tensor:
    return batch["img"] if isinstance(batch, dict) else batch[0]


class _StepClock(Callback):
    """The time from the first timed step's start to the end of training, read after synchronising the device."""

    def __init__(self, warmup: int, device: torch.device) -> None:
        self.warmup, self.device, self.begin, self.seconds = warmup, device, 0.0, float("nan")

    def on_train_batch_start(self, trainer, module, batch, batch_idx: int) -> None:
        if batch_idx == self.warmup:
            _synchronise(self.device)
            self.begin = time.perf_counter()

    def on_train_end(self, trainer, module) -> None:
        _synchronise(self.device)
        self.seconds = time.perf_counter() - self.begin


def _timed(work: Callable[[], object], warmup: int, steps: int, device: torch.device) -> float:
    for _ in range(warmup):
        work()
    _synchronise(device)
    begin = time.perf_counter()
    for _ in range(steps):
        work()
    _synchronise(device)
    return time.perf_counter() - begin


def _release(device: torch.device) -> None:
    """Free the last variant's model and optimizer before the next one is built and measured."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- the table ----------------------------------------------------------------------------------------------------

def _summary(args: argparse.Namespace, results: dict) -> None:
    """Loader / model per classifier (the fastest setting of each against each loader variant at the most workers
    measured), and Table 5 at paper scale in device-hours at the pace of the best data path (the slower of its
    loader and its model)."""
    loaders = {name: rate for (name, workers), rate in results["loader"].items()
               if workers == max(w for n, w in results["loader"] if n == name)}
    print(f"\nloader / model at {args.image_size} px (loader) and {args.model_size} px (model), batch {args.batch}; "
          f"loaders at {max(args.loader_workers)} workers")
    print(f"{'classifier':<12} {'fastest setting':<28} {'model img/s':>11} " +
          " ".join(f"{name + ' ratio':>20}" for name in loaders) + f" {'Table 5 h, 9 runs':>18}")
    hours_total: dict[str, float] = {}
    for model in CLASSIFIERS:
        measured = {key: value for key, value in results["models"].items() if key[0] == model}
        if not measured:
            continue
        key, (rate, _) = max(measured.items(), key=lambda item: item[1][0])
        # the device step (decoded+device) runs on the model's device, in the training step's stream: its time adds to
        # the model's, not to the workers'
        consumes = {name: 1 / (1 / rate + 1 / results["device_step"]) if name == "decoded+device" else rate
                    for name in loaders}
        ratios = " ".join(f"{loaders[name] / consumes[name]:20.2f}" for name in loaders)
        paced = max((min(loaders[name], consumes[name]) for name in loaders), default=rate)  # the best data path
        hours = PAPER_TRAIN_IMAGES * PAPER_EPOCHS * PAPER_CROPPERS * PAPER_SEEDS / paced / 3600
        hours_total[model] = hours
        print(f"{model:<12} {_label(key)[len(model) + 1:]:<28} {rate:11.1f} {ratios} {hours:18.1f}")
    if hours_total:
        print(f"Table 5 at paper scale (training only, {PAPER_EPOCHS} epochs, no early stop): "
              f"{sum(hours_total.values()):.1f} device-hours here; "
              + ", ".join(f"{m} {h / sum(hours_total.values()):.0%}" for m, h in hours_total.items()))


def _label(key: tuple) -> str:
    model, precision, channels_last, compiled = key
    return f"{model} {precision}{' channels_last' if channels_last else ''}{' compiled' if compiled else ''}"


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} torch threads, {os.cpu_count()} cores)"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    gpu = torch.cuda.is_available()
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU, a few seconds (CI)")
    parser.add_argument("--device", default="cuda" if gpu else "cpu")
    parser.add_argument("--budget-s", type=float, default=420.0, help="stop starting sections after this many s")
    parser.add_argument("--out", type=Path, default=None, help="data and caches (default: a temporary folder)")
    parser.add_argument("--image-size", type=int, default=224, help="the loader's output size")
    parser.add_argument("--model-size", type=int, default=None, help="the classifiers' input (default: image size)")
    parser.add_argument("--crop-size", type=int, default=500, help="the crop cache's JPEGs (paper: 500 px)")
    parser.add_argument("--long-side", type=int, default=1000, help="the synthetic photos' long side")
    parser.add_argument("--train-images", type=int, default=2000 if gpu else 400,
                        help="about this many training crops (an epoch of 16 workers should outlast their start)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--models", nargs="+", choices=CLASSIFIERS, default=list(CLASSIFIERS))
    parser.add_argument("--loader-workers", type=int, nargs="+", default=[4, 8, 16] if gpu else [0, 1, 2])
    parser.add_argument("--loader-batches", type=int, default=30)
    parser.add_argument("--prepare-workers", type=int, default=min(16, os.cpu_count() or 1))
    parser.add_argument("--precisions", nargs="+", default=["32-true", "bf16-mixed", "16-mixed"] if gpu
                        else ["32-true"])
    parser.add_argument("--no-channels-last", dest="channels_last_variants", action="store_false")
    parser.add_argument("--compile", action="store_true", help="also time each classifier under torch.compile")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--no-detector", action="store_true")
    parser.add_argument("--detector-scale", default="s")
    parser.add_argument("--detector-size", type=int, default=640)
    parser.add_argument("--detector-batch", type=int, default=16)
    parser.add_argument("--detector-precision", default="bf16-mixed" if gpu else "32-true")
    args = parser.parse_args(argv)
    if args.smoke:
        args.device, args.image_size, args.model_size, args.crop_size, args.long_side = "cpu", 32, 32, 48, 160
        args.train_images, args.batch, args.loader_workers, args.loader_batches = 22, 4, [0, 1], 2
        args.prepare_workers, args.precisions, args.channels_last_variants = 1, ["32-true"], False
        args.warmup, args.steps, args.detector_scale, args.detector_size, args.detector_batch = 1, 2, "n", 64, 2
        args.detector_precision = "32-true"
    args.model_size = args.model_size or args.image_size
    args.out = args.out or Path(tempfile.mkdtemp(prefix="kemotion-gpu-bench-"))
    return args


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's kemotion without an install
    main()
