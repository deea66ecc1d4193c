"""How the crop cache stores a crop: a JPEG of quality 95, read back as RGB. The classifier trains and is tested on
crops read back from it, so prediction passes its crops through the same encoding (`as_stored`): the classifier then
sees exactly what it learnt from, and a test image predicted from its source gives the test step's input bit for bit.
"""

from __future__ import annotations

import cv2
import numpy as np

JPEG_QUALITY = 95


def encode_crop(crop: np.ndarray) -> bytes:
    """An RGB uint8 crop as the cache's JPEG bytes."""
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"could not encode a {crop.shape} crop as JPEG")
    return np.asarray(encoded).tobytes()


def as_stored(crop: np.ndarray) -> np.ndarray:
    """The crop as the cache would give it back: JPEG-encoded and decoded, RGB uint8."""
    decoded = cv2.imdecode(np.frombuffer(encode_crop(crop), np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
