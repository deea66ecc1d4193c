# The README's contract: `make install`, `make demo`, `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torchvision has no CPU wheel for the torch on these machines; this pair installs and runs on CPU (and CUDA).
TORCH_PAIR := torch==2.14.1 torchvision==0.29.1

.PHONY: install test test-fast demo lint clean

install:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(TORCH_PAIR)
	$(BIN)/pip install -e '.[dev,export]' $(TORCH_PAIR)

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
