# Set-up-and-go targets used by the README. Everything installs into ./.venv, with every
# version pinned by constraints.txt (torch==2.13.0 is the local CPU wheel; an unpinned
# dependency would otherwise pull a CUDA build of torch).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
OUT    ?= rgsynth-demo

.PHONY: install demo test lint clean

# pyradiomics 3.0.1 ships no wheel and its build needs numpy and versioneer present, so it
# is built without build isolation, before the package that depends on it.
$(BIN)/rgsynth: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt numpy versioneer wheel
	$(BIN)/pip install -q -c constraints.txt --no-build-isolation pyradiomics
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(BIN)/rgsynth

install: $(BIN)/rgsynth

demo: install
	$(BIN)/rgsynth demo --out $(OUT)

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
