# hrnet-edu build glue. `make demo` sets up and runs the main job; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A CUDA-less machine gets the CPU build of torch first; on a GPU machine pip picks the CUDA build.
TORCH_CPU_SPEC ?= torch==2.13.0
# Extra pip arguments for that install, e.g. --index-url of PyTorch's CPU-only wheel index: from PyPI,
# Linux wheels of torch are CUDA builds (this project's own machines carry the CPU build locally).
TORCH_PIP_ARGS ?=

.PHONY: setup test lint pytest nbval demo data lab clean

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
	$(BIN)/ruff check hrnet_edu tests benchmarks

pytest: setup
	$(BIN)/python -m pytest -q tests

nbval: setup
	MPLBACKEND=Agg $(BIN)/python -m pytest -q --nbval notebooks

# The one test command of the README: lint, library tests, and every notebook as a regression test.
test: setup
	$(BIN)/ruff check hrnet_edu tests benchmarks
	MPLBACKEND=Agg $(BIN)/python -m pytest -q tests --nbval notebooks

data: setup
	$(BIN)/hrnet-edu synth --out data/synthpose --train 2000 --val 500 --seed 0

demo: setup
	$(BIN)/hrnet-edu demo --out runs/demo

lab: setup
	$(BIN)/jupyter lab notebooks

clean:
	rm -rf $(VENV) runs .pytest_cache
