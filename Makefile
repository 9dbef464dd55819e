# hrnet-edu build glue. `make demo` sets up and runs the main job; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A CUDA-less machine gets the CPU build of torch first; on a GPU machine pip picks the CUDA build.
TORCH_CPU_SPEC ?= torch==2.13.0
# Extra pip arguments for that install, e.g. --index-url of PyTorch's CPU-only wheel index: from PyPI,
# Linux wheels of torch are CUDA builds (this project's own machines carry the CPU build locally).
TORCH_PIP_ARGS ?=

.PHONY: setup test lint pytest nbval browser-deps test-browser site test-site test-slides demo data train-cpu lab clean student slides

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
	$(BIN)/ruff check hrnet_edu tests benchmarks notebooks docs

pytest: setup
	$(BIN)/python -m pytest -q tests

nbval: setup
	MPLBACKEND=Agg $(BIN)/python -m pytest -q --nbval notebooks

# The one test command of the README: lint (library and notebook cells), library tests (with the
# notebook pairs' check), and every notebook as a regression test.
test: setup
	$(BIN)/ruff check hrnet_edu tests benchmarks notebooks docs
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
	HRNET_EDU_BROWSER_TESTS=1 HRNET_EDU_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -v -s \
	    tests/browser/test_widgets_in_jupyterlab.py

# The course as a static website in site/ (README "The course website"): Sphinx + myst-nb render the
# committed, executed notebooks (never re-executed), the README's course map and docs/*.md
# (docs/site/build_site.py). Its Python packages are the site extra; MathJax, bundled into the site so
# that no page loads anything from the network, comes from the npm registry at a pinned version into
# the git-ignored build/. Open site/index.html, or serve site/ from any static host.
MATHJAX_VERSION := 3.2.2
MATHJAX := build/site-npm/mathjax-$(MATHJAX_VERSION)/node_modules/mathjax/es5

$(BIN)/.site-extra: pyproject.toml $(BIN)/hrnet-edu
	$(BIN)/python -m pip install --quiet -e ".[site]"
	touch $@

$(MATHJAX)/tex-svg.js:
	npm install --prefix build/site-npm/mathjax-$(MATHJAX_VERSION) --no-save --no-audit --no-fund --silent \
	    mathjax@$(MATHJAX_VERSION)

site: setup $(BIN)/.site-extra $(MATHJAX)/tex-svg.js
	$(BIN)/python docs/site/build_site.py --mathjax $(MATHJAX) --out site

# The website in Chromium (tests/browser/test_site.py): every page over a local HTTP server on
# 127.0.0.1 and from file://, as `make test-browser` sets the browser up.
test-site: site browser-deps
	HRNET_EDU_SITE_TESTS=1 HRNET_EDU_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -v tests/browser/test_site.py

# The slides of `make slides` in Chromium, offline (tests/browser/test_slides.py; about 15 s).
test-slides: browser-deps slides
	HRNET_EDU_BROWSER_TESTS=1 HRNET_EDU_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -v tests/browser/test_slides.py

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

# `make lab NB=notebooks/01_heatmaps.ipynb` opens one notebook (the command each page of the site names).
NB ?= notebooks
lab: setup
	$(BIN)/jupyter lab $(NB)

# Student versions of the chapters and appendices (README "Course map"): nbconvert's TagRemovePreprocessor drops the
# cells tagged `solution` and clears the outputs of the cells tagged `exercise` (tags are cell metadata,
# kept in the jupytext pairs as `# %% tags=["exercise"]`); notebooks/solutions/ is left out. The
# notebooks go to $(STUDENT_DIR)/notebooks, beside a link to data_samples, so their relative paths work
# (tests/test_student_version.py).
STUDENT_DIR ?= build/student
STUDENT_NOTEBOOKS ?= notebooks
student: setup
	rm -rf $(STUDENT_DIR)/notebooks
	mkdir -p $(STUDENT_DIR)/notebooks
	$(BIN)/jupyter nbconvert --to notebook --log-level=WARN --output-dir $(STUDENT_DIR)/notebooks \
	    --TagRemovePreprocessor.enabled=True \
	    --TagRemovePreprocessor.remove_cell_tags='["solution"]' \
	    --TagRemovePreprocessor.remove_all_outputs_tags='["exercise"]' \
	    $(wildcard $(STUDENT_NOTEBOOKS)/[0-9][0-9]_*.ipynb $(STUDENT_NOTEBOOKS)/A[0-9]_*.ipynb)
	ln -sfn $(CURDIR)/data_samples $(STUDENT_DIR)/data_samples
	@echo "student notebooks in $(STUDENT_DIR)/notebooks"

# reveal.js slides of the chapters (nbconvert's slides exporter): a slide per section heading, a
# vertical slide per subsection (cell metadata `slideshow`, kept in the jupytext pairs); library
# source and live widgets are skipped. Viewable offline: reveal.js, jQuery, RequireJS and MathJax are
# the versions nbconvert's template expects, installed from npm into build/reveal (git-ignored), not
# loaded from a CDN; docs/slides/offline_reveal.html.j2 drops the template's Mermaid import (no
# diagrams) and the notebook metadata (widget state) is cleared, so no widget manager is fetched.
# Open them through http (`python -m http.server -d build`, then /slides/NN_name.slides.html):
# tests/browser/test_slides.py does, with every request outside localhost blocked.
SLIDES_DIR ?= build/slides
REVEAL_DIR ?= build/reveal
NPM_PACKAGES := reveal.js@4.0.2 jquery@2.2.4 requirejs@2.1.22 mathjax@2.7.7
$(REVEAL_DIR)/.installed:
	mkdir -p $(REVEAL_DIR)
	npm install --prefix $(REVEAL_DIR) --no-audit --no-fund --no-save $(NPM_PACKAGES)
	touch $@

slides: setup $(REVEAL_DIR)/.installed
	mkdir -p $(SLIDES_DIR)
	$(BIN)/jupyter nbconvert --to slides --log-level=ERROR --output-dir $(SLIDES_DIR) \
	    --template-file $(CURDIR)/docs/slides/offline_reveal.html.j2 \
	    --SlidesExporter.reveal_theme=white --SlidesExporter.reveal_scroll=True \
	    --SlidesExporter.reveal_url_prefix=../reveal/node_modules/reveal.js \
	    --HTMLExporter.jquery_url=../reveal/node_modules/jquery/dist/jquery.min.js \
	    --HTMLExporter.require_js_url=../reveal/node_modules/requirejs/require.js \
	    --HTMLExporter.mathjax_url='../reveal/node_modules/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe' \
	    --ClearMetadataPreprocessor.enabled=True --ClearMetadataPreprocessor.clear_cell_metadata=False \
	    --ClearMetadataPreprocessor.clear_notebook_metadata=True \
	    $(wildcard notebooks/[0-9][0-9]_*.ipynb notebooks/A[0-9]_*.ipynb)
	@echo "slides in $(SLIDES_DIR): python -m http.server -d build, then open /slides/<chapter>.slides.html"

clean:
	rm -rf $(VENV) runs .pytest_cache site build
