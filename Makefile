# simeval entry points. Every target sets up .venv first, so a fresh clone needs only `make run`
# or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
READY  := $(VENV)/.ready

.PHONY: setup run test bench lint circuits data models offline clean

setup: $(READY)

$(READY): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(READY)

run: setup
	$(BIN)/python -m simeval.run --agent torch-fp32 --circuit montreal

# One pytest worker per CPU (pytest-xdist): the suite is mostly laps and model builds, each on one core.
# The report's browser test needs Debian's chromium: installed first when missing (apt).
test: setup
	scripts/ensure-browser.sh
	$(BIN)/python -m pytest -q -n auto

bench: setup
	$(BIN)/python bench/sim.py

lint: setup
	$(BIN)/ruff check simeval tests bench examples

circuits: setup
	$(BIN)/python -m simeval.circuits build

# The data set, both fp32 models and their optimized variants, from scratch (resumable: rerun
# after an interrupt). Variants that need hardware missing here (TensorRT) are reported, not built.
data: setup
	$(BIN)/python -m simeval.dataset

models: data
	$(BIN)/python -m simeval.train --framework torch
	$(BIN)/python -m simeval.train --framework tf
	$(BIN)/python -m simeval.optimize all

offline: setup
	$(BIN)/python -m simeval.offline

clean:
	rm -rf $(VENV) build dist *.egg-info
