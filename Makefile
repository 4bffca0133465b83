# interplab: `make lab` to study, `make test` to run every test. Both install what they need first.
PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch; on a machine with a GPU, e.g. `make lab TORCH=torch==2.13.0` from your CUDA index.
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
export OMP_WAIT_POLICY := PASSIVE

.PHONY: install lab test bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

lab: install
	$(BIN)/jupyter lab --notebook-dir=.

test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

bench: install
	$(BIN)/python benchmarks/notebooks.py
