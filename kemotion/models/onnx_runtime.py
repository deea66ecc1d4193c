"""An ONNX graph run by onnxruntime on the CPU: the classifier and the face detector of an export. No torch here."""

from __future__ import annotations

from pathlib import Path


def session(path: Path):
    """An onnxruntime CPU session of `path`; a clear error when onnxruntime is not installed or the file is absent."""
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError("the ONNX backend needs onnxruntime: pip install -e '.[export]'") from error
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a `python -m kemotion.export` folder")
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
