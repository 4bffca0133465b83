# interplab: `make lab` to study, `make test` to run every test, `make site` for the course site.
# Each installs what it needs first, into .venv/ (run the course's command as .venv/bin/interplab,
# or `source .venv/bin/activate` first).
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
# Where torch comes from. Empty: pip's default, which on Linux is PyPI's CUDA build (several GB with its
# nvidia-* libraries). For PyTorch's CPU build (a few hundred MB), which is all the course needs:
#   make install TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
BIN := $(VENV)/bin
# pip, quiet: no version nag, no root warning in containers, and none of the notices about
# unreachable package locations that some machines' pip configuration produces.
PIP := PIP_ROOT_USER_ACTION=ignore $(BIN)/python -m pip --quiet --disable-pip-version-check
QUIET_PIP := 2>&1 | sed -u '/is ignored: it is neither a file nor a directory/d'
# JupyterLab refuses to start as root (as in most containers) unless asked.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
export OMP_WAIT_POLICY := PASSIVE

.PHONY: install lab test site bench

# JupyterHub's proxy, from npm, for a course on a hub (docs/hub.md) and its test (tests/test_hub.py): the
# versions locked in autograder/hub/proxy/, installed into $(VENV)/hub/. Without npm the rest still installs
# (only a hub needs the proxy, and the hub test then skips), except in CI, which must run that test.
PROXY_LOCK := autograder/hub/proxy/package.json autograder/hub/proxy/package-lock.json

install: $(VENV)/.installed $(VENV)/hub/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	@echo "Installing $(TORCH) from $(or $(TORCH_INDEX),pip's default index) ..."
	@$(PIP) install $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH)" $(QUIET_PIP)
	@echo "Installing the course and its pinned dependencies (constraints.txt) ..."
	@$(PIP) install -c constraints.txt -e ".[dev]" $(QUIET_PIP)
	touch $@
	@echo "Installed. The course's command is $(BIN)/interplab (or run 'source $(BIN)/activate' first, then 'interplab')."

$(VENV)/hub/.installed: $(PROXY_LOCK)
	@if ! command -v npm > /dev/null; then \
	    echo "npm is missing, so JupyterHub's proxy (configurable-http-proxy) is not installed: only a course on a hub needs it (docs/hub.md). Install Node.js 18 or later (it brings npm; Debian: apt-get install nodejs npm), then run make install again."; \
	    if [ -n "$$CI" ]; then exit 1; fi; \
	else \
	    echo "Installing JupyterHub's proxy (configurable-http-proxy, from npm) into $(VENV)/hub ..."; \
	    mkdir -p $(VENV)/hub && cp $(PROXY_LOCK) $(VENV)/hub/ && \
	    npm ci --prefix $(VENV)/hub --no-audit --no-fund && touch $@; \
	fi

# Your own copies of the lessons and labs go to work/ (never overwritten); JupyterLab opens there.
# It starts in the course folder, where nbgrader_config.py gives the formgrader the course's labs.
lab: install
	$(BIN)/interplab start
	$(BIN)/jupyter lab $(ALLOW_ROOT) --ServerApp.root_dir=. --ServerApp.default_url=/lab/tree/work

test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

site: install
	$(BIN)/interplab site

bench: install
	$(BIN)/python benchmarks/notebooks.py
