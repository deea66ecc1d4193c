#!/usr/bin/env bash
# The wheels benchmarks/gpu.py needs on the GPU machine, which has torch, torchvision, lightning, torchmetrics, timm,
# OpenCV, pandas, scipy and matplotlib but no internet and none of these (benchmarks/README.md, "gpu.py"). They go
# into .whl/ (gitignored), for its Python: CPython 3.12 on x86-64 Linux. Versions are this project's venv's
# (typing_extensions too: pydantic_core needs a newer one than the machine may have).
#   bash benchmarks/gpu_wheels.sh [PYTHON]      # PYTHON: any pip-capable interpreter here (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${1:-python3}
rm -rf .whl && mkdir -p .whl
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${PLATFORMS[@]}" -d .whl \
  omegaconf==2.3.1 hydra-core==1.3.8 \
  albumentations==2.0.8 albucore==0.0.24 stringzilla==5.3.2 simsimd==6.5.16 \
  pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing_extensions==4.16.0 \
  ultralytics==8.4.190 ultralytics-thop==2.2.3 koreanize-matplotlib==0.1.1
# omegaconf's parser runtime is published as a source archive only: build its (pure Python) wheel here
"$PYTHON" -m pip wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3
du -ch .whl/*.whl | tail -1
