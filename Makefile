# Two commands for a new user (see README.md):
#   make lab    set up .venv and open the course in JupyterLab (TensorFlow backend)
#   make test   set up .venv, add JAX and PyTorch (CPU builds), and run the whole test suite
#               on all three Keras backends (what CI runs)
# Others:
#   make test BACKENDS=jax      the suite on one backend only
#   make outputs     re-run every notebook top to bottom in a fresh kernel and save its outputs
#   make benchmarks  print the course's measured figures
#   make reference   the reference runs the TL;DRs cite (benchmarks/results/reference_*.json),
#                    then the figures in the prose refreshed from them; on a quiet machine

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BACKENDS_STAMP := $(VENV)/.installed-backends
BACKENDS ?= tensorflow jax torch
# PyTorch's CPU build. PyPI's Linux wheel of torch pulls several GB of CUDA libraries, so the
# tests take the CPU build: a local "+cpu" wheel if pip can see one (a wheel folder in pip's
# find-links), else PyTorch's own CPU index. The check after it refuses a CUDA build.
TORCH_VERSION ?= 2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb notebooks/deep-dives/[0-9][0-9]_*.ipynb))
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup lab test lint unit notebooks outputs benchmarks reference clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

# JAX and PyTorch, CPU builds, for the tests only (TensorFlow comes with requirements.txt).
$(BACKENDS_STAMP): $(STAMP) requirements-backends.txt
	$(BIN)/python -m pip install --quiet -r requirements-backends.txt
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)+cpu" 2>/dev/null \
		|| $(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)" --index-url $(TORCH_CPU_INDEX)
	$(BIN)/python -c "import sys, torch; sys.exit('a CUDA build of torch got installed' if torch.version.cuda else 0)"
	touch $(BACKENDS_STAMP)

test: lint unit notebooks

lint: $(STAMP)
	$(BIN)/ruff check helpers tests benchmarks notebooks tools

# The first backend runs every unit test; the others skip those marked backend_independent
# (tests/conftest.py lists them), whose outcome no backend can change.
unit: $(BACKENDS_STAMP)
	@only=""; for backend in $(BACKENDS); do \
		echo "== unit tests, KERAS_BACKEND=$$backend $${only:+(backend-dependent ones)}"; \
		KERAS_BACKEND=$$backend $(BIN)/python -m pytest tests $${only:+-m "not backend_independent"} || exit 1; \
		only=1; \
	done

# Two lanes side by side, one per core (tools/nbval_lanes.py): the core path and the deep
# dives, each in a learner's order; they share no data folder.
notebooks: $(BACKENDS_STAMP)
	@for backend in $(BACKENDS); do \
		echo "== notebooks, KERAS_BACKEND=$$backend"; \
		KERAS_BACKEND=$$backend $(BIN)/python tools/nbval_lanes.py || exit 1; \
	done

# TQDM_DISABLE: progress bars are for people running the notebook; in committed outputs a
# widget bar would show on GitHub frozen at 0%.
# Committed outputs are the TensorFlow run, the course's default backend.
outputs: $(STAMP)
	@for nb in $(NOTEBOOKS); do \
		echo "== $$nb"; \
		KERAS_BACKEND=tensorflow TQDM_DISABLE=1 $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
			--ExecutePreprocessor.timeout=1800 "$$nb" || exit 1; \
		$(BIN)/python tools/tidy_outputs.py "$$nb" || exit 1; \
	done

benchmarks: $(STAMP)
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python "$$script" || exit 1; done

reference: $(STAMP)
	$(BIN)/python benchmarks/reference.py
	$(BIN)/python benchmarks/feed_gpu.py
	$(BIN)/python tools/reference_figures.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
