# simeval entry points. Every target sets up .venv first, so a fresh clone needs only `make run`
# or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
READY  := $(VENV)/.ready

.PHONY: setup run test bench lint circuits clean

setup: $(READY)

$(READY): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(READY)

run: setup
	$(BIN)/python -m simeval.run --agent expert --circuit montreal

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/sim.py

lint: setup
	$(BIN)/ruff check simeval tests bench

circuits: setup
	$(BIN)/python -m simeval.circuits build

clean:
	rm -rf $(VENV) build dist *.egg-info
