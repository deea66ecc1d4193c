"""kemotion: facial-emotion recognition on Korean faces — face detection, face crop, classification.

Entry points (`kemotion <name>` or `python -m kemotion.<name>`; all but report are Hydra apps over `kemotion/conf/`):
    train    a run or a sweep: the face-detector stage when a YOLO crop needs it, then fit, test, record
    prepare  the caches a run reads (manifest, face detector, crops), built up front
    inspect  a dataset's manifest summary and skip report
    report   Table 5 (mean ± std) and the other tables, from run folders or W&B
    predict  a trained run on photos, folders, video or a webcam
    export   a trained run as ONNX files that predict without torch
Rooms, from the bottom up (an import only runs downwards, `tests/test_layout.py`):
    core         the emotions, config validation, keys, atomic and build-once files, confusion, process pool
    data         reading AI-Hub and WIDER FACE (and the synthetic stand-in), the manifest, transforms
    models       plain `nn.Module`s: the classifiers, the face detectors, weight loading, ONNX export
    preprocess   croppers (resize, OpenCV, YOLO) and their crop cache
    lit          LightningModules: the classifier, the face detector, the one-stage model
    datamodules  LightningDataModules: manifest + cropper + cache → loaders
    engine       how a run runs: detector stage, training, run folders, classical fits, sweep caches
    inference    a trained run as a pipeline: record reading, sources, results, outputs, ONNX runtime
    notebooks    what the notebooks draw
"""

import os
from pathlib import Path

__version__ = "0.1.0"

# ultralytics reads these once, at its first import: never the network, never a pip install, settings kept in
# the project instead of the home folder. W&B runs offline unless the user says otherwise.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
_cache = Path(os.environ.get("KEMOTION_CACHE", ".cache")).resolve()
os.environ.setdefault("YOLO_CONFIG_DIR", str(_cache / "ultralytics"))
os.environ.setdefault("WANDB_MODE", "offline")

# The resolvers the configs use (${split_kind:...}, ${kemotion_help:...} for --help); the libraries' banners quieted.
from kemotion.core import commands as _commands  # noqa: E402,F401
from kemotion.core import config as _config  # noqa: E402,F401
from kemotion.core.console import quiet as _quiet  # noqa: E402

_quiet()


def __getattr__(name: str):
    """`from kemotion import EmotionPipeline, analyze` without making `import kemotion` heavy: loaded on first use."""
    if name in {"EmotionPipeline", "analyze"}:
        from kemotion.inference import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'kemotion' has no attribute {name!r}")
