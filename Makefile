# simeval entry points. Every target sets up .venv first, so a fresh clone needs only `make run`
# or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
READY  := $(VENV)/.ready

.PHONY: setup run test bench lint circuits data models clean

setup: $(READY)

$(READY): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(READY)

run: setup
	$(BIN)/python -m simeval.run --agent torch-fp32 --circuit montreal

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/sim.py

lint: setup
	$(BIN)/ruff check simeval tests bench

circuits: setup
	$(BIN)/python -m simeval.circuits build

# The data set and both fp32 models, from scratch (resumable: rerun after an interrupt).
data: setup
	$(BIN)/python -m simeval.dataset

models: data
	$(BIN)/python -m simeval.train --framework torch
	$(BIN)/python -m simeval.train --framework tf

clean:
	rm -rf $(VENV) build dist *.egg-info
