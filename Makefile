# Two commands do all the set-up on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test bench protos clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# A development admin token so the README's admin examples work locally; never reuse it.
DEV_ADMIN_TOKEN ?= dev-admin-token

serve: $(STAMP)
	@echo "decide: demo server on 127.0.0.1:50051, admin token: $(DEV_ADMIN_TOKEN)"
	@echo "        (export DECIDE_ADMIN_TOKEN=$(DEV_ADMIN_TOKEN) for decide rules/status)"
	$(BIN)/decide serve --demo --host 127.0.0.1 --port 50051 --admin-token $(DEV_ADMIN_TOKEN)

# PostgreSQL's tests skip without its server; as root with apt, install it (best effort).
test: $(STAMP)
	@.ci/install-postgres
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/engine.py

protos: $(STAMP)
	$(BIN)/python scripts/gen_protos.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
