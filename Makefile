# hrnet-edu build glue. `make demo` sets up and runs the main job; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A CUDA-less machine gets the CPU build of torch first; on a GPU machine pip picks the CUDA build.
TORCH_CPU_SPEC ?= torch==2.13.0
# Extra pip arguments for that install, e.g. --index-url of PyTorch's CPU-only wheel index: from PyPI,
# Linux wheels of torch are CUDA builds (this project's own machines carry the CPU build locally).
TORCH_PIP_ARGS ?=

.PHONY: setup test lint pytest nbval browser-deps test-browser demo data train-cpu lab clean

$(BIN)/hrnet-edu: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@if command -v nvidia-smi >/dev/null 2>&1; then \
	    echo "GPU found: installing torch from the project's range"; \
	else \
	    echo "no GPU: installing the CPU build $(TORCH_CPU_SPEC) first"; \
	    $(BIN)/python -m pip install --quiet $(TORCH_PIP_ARGS) "$(TORCH_CPU_SPEC)"; \
	fi
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (hrnet-edu)" >/dev/null
	touch $(BIN)/hrnet-edu

setup: $(BIN)/hrnet-edu

lint: setup
	$(BIN)/ruff check hrnet_edu tests benchmarks notebooks

pytest: setup
	$(BIN)/python -m pytest -q tests

nbval: setup
	MPLBACKEND=Agg $(BIN)/python -m pytest -q --nbval notebooks

# The one test command of the README: lint (library and notebook cells), library tests (with the
# notebook pairs' check), and every notebook as a regression test.
test: setup
	$(BIN)/ruff check hrnet_edu tests benchmarks notebooks
	MPLBACKEND=Agg $(BIN)/python -m pytest -q tests --nbval notebooks

# The browser test of the notebooks' widgets (tests/browser, README "Widgets in a browser"): JupyterLab
# on localhost, driven by Playwright for Python (the browser extra) in the system's Chromium; on a
# machine without it, Debian's/Ubuntu's chromium package is installed (elsewhere: CHROMIUM=/path).
# Playwright's own browser builds are never downloaded. About 2.5 min on 2 cores (README).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(BIN)/.browser-extra: pyproject.toml $(BIN)/hrnet-edu
	$(BIN)/python -m pip install --quiet -e ".[browser]"
	touch $@

browser-deps: setup $(BIN)/.browser-extra
	@if [ ! -x "$(CHROMIUM)" ]; then \
	    if command -v apt-get >/dev/null 2>&1; then \
	        echo "no $(CHROMIUM): installing the chromium package"; \
	        $(SUDO) apt-get update -qq && \
	        $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	    else \
	        echo "no $(CHROMIUM): install Chromium, then make test-browser CHROMIUM=/path/to/chromium"; \
	        exit 1; \
	    fi; \
	fi

test-browser: browser-deps
	HRNET_EDU_BROWSER_TESTS=1 HRNET_EDU_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -v -s tests/browser

# The CPU recipe's training set (37,476 persons; val is the bundled data_samples/synthpose split).
data: setup
	test -f data/synthpose_20k/synthpose.json || \
	    $(BIN)/hrnet-edu synth --out data/synthpose_20k --train 20000 --val 0 --seed 0

# The CPU recipe, 15 epochs. Precision, memory format, compute threads and data workers are chosen
# for this machine when training starts (its first lines say what and why; cpu_settings.py); set any
# of them in TRAIN_ARGS to fix it. The committed checkpoint was trained in fp32 on 2 cores (87 min):
# `make train-cpu TRAIN_ARGS="cpu_bf16=false cpu_channels_last=false cpu_threads=1 workers=1"`
# repeats that run exactly.
TRAIN_ARGS ?=
train-cpu: data
	$(BIN)/hrnet-edu train --config synthpose_w16_128x96_cpu --out runs/synthpose_w16_128x96_cpu $(TRAIN_ARGS)

demo: setup
	$(BIN)/hrnet-edu demo --out runs/demo

lab: setup
	$(BIN)/jupyter lab notebooks

clean:
	rm -rf $(VENV) runs .pytest_cache
