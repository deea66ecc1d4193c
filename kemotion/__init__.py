"""kemotion: facial-emotion recognition on Korean faces — face detection, face crop, classification."""

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
os.environ.setdefault("WANDB_SILENT", "true")

from kemotion import config as _config  # noqa: E402,F401  registers the resolvers the configs use (${split_kind:...})


def __getattr__(name: str):
    """`from kemotion import EmotionPipeline` without making `import kemotion` heavy: loaded on first use."""
    if name == "EmotionPipeline":
        from kemotion.inference.pipeline import EmotionPipeline

        return EmotionPipeline
    raise AttributeError(f"module 'kemotion' has no attribute {name!r}")
