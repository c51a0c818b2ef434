# The two commands a newcomer needs: `make run` and `make test`.
# Both bootstrap .venv on a machine with only Python >= 3.11 and make.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest venv clean bench lock

# Installs are reproducible: every package at the version pinned in requirements.lock
# (`make lock` writes it from pyproject.toml with uv), then the project itself without
# resolving anything again. uv installs when it is on PATH, pip otherwise.
$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if command -v uv >/dev/null 2>&1; then \
	  uv pip install --quiet --python $(BIN)/python -r requirements.lock && \
	  uv pip install --quiet --python $(BIN)/python --no-deps -e .; \
	else \
	  $(BIN)/python -m pip install --quiet --upgrade pip && \
	  $(BIN)/python -m pip install --quiet -r requirements.lock && \
	  $(BIN)/python -m pip install --quiet --no-deps -e .; \
	fi
	@touch $(STAMP)

venv: $(STAMP)

# Re-resolve requirements.lock after a change to pyproject.toml's dependencies (uv from
# PATH, else installed into .venv for the purpose).
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@command -v uv >/dev/null 2>&1 && UV=uv || { $(BIN)/python -m pip install --quiet uv && UV=$(BIN)/uv; }; \
	$$UV pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
	  --quiet --output-file requirements.lock

run: $(STAMP)
	$(BIN)/smshub serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

# The suite in each configuration, one pytest process each (tests/conftest.py):
# sqlite = the embedded default (every test), postgres = the hub-backed tests on
# PostgreSQL + the inline queue, arq = the same on PostgreSQL + Redis + arq workers.
# Every configuration runs even when an earlier one failed; the target fails if any did.
TEST_CONFIGS ?= sqlite postgres arq

pytest: $(STAMP)
	@failed=""; for config in $(TEST_CONFIGS); do \
	  echo "== pytest, SMSHUB_TEST_CONFIG=$$config"; \
	  SMSHUB_TEST_CONFIG=$$config $(BIN)/pytest $(PYTEST_ARGS) || failed="$$failed $$config"; \
	done; \
	if [ -n "$$failed" ]; then echo "== pytest failed in:$$failed"; exit 1; fi

test: lint typecheck pytest

# Not part of `make test` or CI: every scenario of bench/README.md, minutes long.
# Flags through BENCH_ARGS, e.g. make bench BENCH_ARGS="--quick --no-write".
bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
