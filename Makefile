# Two commands for a new user (see README.md):
#   make lab    set up .venv and open the course in JupyterLab
#   make test   set up .venv and run the whole test suite (what CI runs)
# Others:
#   make outputs     re-run every notebook top to bottom in a fresh kernel and save its outputs
#   make benchmarks  print the course's measured figures

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup lab test lint unit notebooks outputs benchmarks clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

test: lint unit notebooks

lint: $(STAMP)
	$(BIN)/ruff check helpers tests benchmarks notebooks tools

unit: $(STAMP)
	$(BIN)/python -m pytest tests

notebooks: $(STAMP)
	$(BIN)/python -m pytest notebooks

# TQDM_DISABLE: progress bars are for people running the notebook; in committed outputs a
# widget bar would show on GitHub frozen at 0%.
outputs: $(STAMP)
	@for nb in $(NOTEBOOKS); do \
		echo "== $$nb"; \
		TQDM_DISABLE=1 $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
			--ExecutePreprocessor.timeout=1800 "$$nb" || exit 1; \
	done

benchmarks: $(STAMP)
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python "$$script" || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
