# Détente: `make demo` runs two nodes (Pakistan and Iran) on loopback; `make test` runs every check.
# Both create what they need: the virtualenv, and Debian packages (Chromium, PostgreSQL) if missing.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: all venv system demo test lint typecheck unit bench bench-quick clean

all: test

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

# Debian packages the tests need: Chromium for the console tests, PostgreSQL server binaries for the
# storage tests. Installed only when missing (an unconditional install would upgrade PostgreSQL).
system:
	@./scripts/system-packages

demo: venv
	$(BIN)/detente demo --workdir demo

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: venv
	$(BIN)/mypy

test: venv system lint typecheck
	$(BIN)/pytest -q -n 2 --dist worksteal

unit: venv
	$(BIN)/pytest -q tests/unit tests/vectors

bench: venv system
	$(BIN)/python -m bench

bench-quick: venv system
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
