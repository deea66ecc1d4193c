"""Parameters and GFLOPs at 640 px of the face detectors kemotion builds (one class), as ultralytics counts them.

    .venv/bin/python benchmarks/detector_size.py

Parameters and the first GFLOPs column come from ultralytics' `model_info` / `get_flops`. get_flops runs thop on
small stride-aligned proxy images (32 × 32k px) and extrapolates linearly to the full size; the second column runs
the same thop count on the full 640 px image. They agree for layers whose cost grows with the image area;
YOLO-FaceV2's MultiSEAM patch embeddings (stride-6/7/8 convs over the proxies' 2-row stride-16 strip) do not, so
for it the full-size count is the exact one.
"""

from __future__ import annotations

from kemotion.models.yolo import (
    build_detector,  # first: kemotion sets YOLO_OFFLINE etc. before ultralytics loads
)

IMAGE_SIZE = 640
DETECTORS = (
    ("yolo-facev2", "n"),
    ("yolo-facev2", "s"),
    ("yolo-facev2", "m"),
    ("yolov8n.yaml", "n"),
    ("yolo11n.yaml", "n"),
)


def main() -> None:
    import thop
    import torch
    from ultralytics.utils.torch_utils import model_info

    rows = []
    for architecture, scale in DETECTORS:
        model = build_detector(architecture, scale=scale, num_classes=1).eval()
        _, params, _, gflops = model_info(model, imgsz=IMAGE_SIZE)
        macs, _ = thop.profile(model, inputs=[torch.empty(1, 3, IMAGE_SIZE, IMAGE_SIZE)], verbose=False)
        strides = "/".join(str(int(s)) for s in model.stride)
        rows.append((architecture, scale, params, gflops, 2 * macs / 1e9, strides))  # FLOPs = 2 MACs, as get_flops
    header = ("architecture", "scale", "params (M)", "GFLOPs get_flops", "GFLOPs full", "strides")
    print("\n{:<14}{:>6}{:>12}{:>18}{:>13}{:>10}".format(*header))
    for architecture, scale, params, gflops, full, strides in rows:
        print(f"{architecture:<14}{scale:>6}{params / 1e6:>12.2f}{gflops:>18.1f}{full:>13.1f}{strides:>10}")


if __name__ == "__main__":
    main()
