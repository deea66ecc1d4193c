"""`show=true`: each annotated image or video frame in a window while predict runs, as `yolo predict show=True` shows
them; `q` or Esc ends the prediction there (what is done is kept, as after the last frame).

ultralytics' own (`BasePredictor.show`, `checks.check_imshow`) is a method of its predictor, and importing it imports
torch, which `backend=onnx` never loads: this is the same few OpenCV calls. A machine without a display is refused
when the window opens, before any model loads: OpenCV's Qt build aborts the whole process, without an exception, when
it cannot reach a display.
"""

from __future__ import annotations

import contextlib
import os
import sys

import cv2

from kemotion.inference.results import EmotionResult
from kemotion.inference.sources import Skip

IMAGE_WAIT_MS = 300  # an image stays this long (ultralytics' pause), a video frame 1 ms: the video's own pace
STOP_KEYS = frozenset({ord("q"), 27})  # q, Esc


class LiveWindow:
    """An OpenCV window showing predictions, open while the `with` block runs. Made, it checks that there is a
    display; entered, it opens the window."""

    def __init__(self, title: str) -> None:
        if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
            raise RuntimeError("show=true needs a display, and DISPLAY is not set here (a server, a container, ssh "
                               "without -X): leave show=false; the annotated pictures are written to the output folder")
        self.title = title

    def __enter__(self) -> LiveWindow:
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)  # resizable, the picture scaled
        except cv2.error:  # a build without a GUI (opencv-python-headless)
            raise RuntimeError("show=true: this OpenCV cannot open a window (a build without a GUI, such as "
                               "opencv-python-headless); leave show=false: the annotated pictures are written to the "
                               "output folder") from None
        return self

    def __exit__(self, *exc_info: object) -> None:
        with contextlib.suppress(cv2.error):  # closed by the user already
            cv2.destroyWindow(self.title)

    def show(self, result: EmotionResult | Skip) -> bool:
        """Show a prediction's frame with its faces drawn (a skipped file: nothing); False once q or Esc is pressed."""
        if isinstance(result, Skip):
            return True
        cv2.imshow(self.title, result.plot(bgr=True))
        return (cv2.waitKey(IMAGE_WAIT_MS if result.frame.fps is None else 1) & 0xFF) not in STOP_KEYS
