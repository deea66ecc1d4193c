"""Peak memory of one decode of a very large image: at the size a cropper asks for, against the whole image.

`kemotion.data.images.load_rgb(path, max_side)` is the one decoder of training and predict. Before issue 20 a
non-JPEG came back whole whatever `max_side` asked (what `max_side=None` does now); now it is box-reduced in its own
mode before any conversion. Each decode runs in a fresh process (Linux), and what is printed is its peak RSS above
the RSS it had just before the decode (imports done).

    python benchmarks/decode_memory.py [--side 12000] [--max-side 640]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

MEASURE = """
import sys
from kemotion.data.images import load_rgb

def status(key):  # KB; VmHWM is this process's own peak (ru_maxrss would carry the parent's over fork + exec)
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key + ":"))

before = status("VmRSS")
shape = load_rgb(sys.argv[1], max_side=None if sys.argv[2] == "none" else int(sys.argv[2])).shape
print(status("VmHWM") - before, *shape)
"""


def make_png(path: Path, side: int, mode: str) -> None:
    """A side × side PNG of smooth gradients (quick to write, compresses well), in RGB or 16-bit greyscale."""
    ramp = np.linspace(0, 1, side, dtype=np.float32)
    if mode == "I;16":
        Image.fromarray((np.add.outer(ramp, ramp) * 32767).astype(np.uint16)).save(path, compress_level=1)
    else:
        channel = (ramp * 255).astype(np.uint8)
        rgb = np.empty((side, side, 3), np.uint8)
        rgb[..., 0], rgb[..., 1], rgb[..., 2] = channel[None, :], channel[:, None], 128
        Image.fromarray(rgb).save(path, compress_level=1)
        del rgb


def peak(path: Path, max_side: int | None) -> tuple[float, str]:
    """(peak RSS growth in MB, returned shape) of one decode in a fresh process."""
    out = subprocess.run([sys.executable, "-c", MEASURE, str(path), str(max_side or "none")], check=True,
                         capture_output=True, text=True).stdout.split()
    return int(out[0]) / 1024, "×".join(out[1:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=12000)
    parser.add_argument("--max-side", type=int, default=640)  # the yolo detector's side on AI-Hub (data.detector)
    args = parser.parse_args()
    Image.MAX_IMAGE_PIXELS = None  # the benchmark image itself is made here, on purpose
    print(f"| image | whole (before) | max_side={args.max_side} (now) | now / before |\n|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for mode in ("RGB", "I;16"):
            path = Path(folder) / f"big-{mode.replace(';', '')}.png"
            make_png(path, args.side, mode)
            (whole, whole_shape), (reduced, reduced_shape) = peak(path, None), peak(path, args.max_side)
            print(f"| {args.side}×{args.side} PNG, {mode} | {whole:.0f} MB ({whole_shape}) | {reduced:.0f} MB "
                  f"({reduced_shape}) | {reduced / whole:.2f} |")


if __name__ == "__main__":
    main()
