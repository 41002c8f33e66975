# returnsync task runner. `make help` lists the targets.
PY ?= python3
UV_VERSION := 0.13.9
VENV := .venv
UV := .tools/bin/uv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never

.DEFAULT_GOAL := help
.PHONY: help install demo test lint types unit chaos bench bench-reconcile clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(UV):
	$(PY) -m venv .tools
	.tools/bin/pip install -q "uv==$(UV_VERSION)"

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-groups --python $(PY)
	@touch $@

install: $(VENV)/.synced ## create .venv with the locked dependencies

demo: install ## run the demo month on SQLite + simulators, serve http://127.0.0.1:8000
	$(BIN)/returnsync demo

lint: install ## ruff check + format check
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

types: install ## mypy --strict on src/
	$(BIN)/mypy src

test: lint types ## lint, types and the whole test suite (SQLite and PostgreSQL)
	$(BIN)/pytest -q

chaos: install ## 10,000 simulated seeds, 10,000+ fuzzed bodies, 2,000 returns with 100 kills on SQLite and PostgreSQL
	$(BIN)/pytest -q -m chaos --run-chaos tests -k "not test_large_chaos_run"  # the 2,000-return runs are the two below, which print their figures
	$(BIN)/python -m returnsync.simulators.demo.chaos --returns 2000 --kills 100 --workers 4 --backend sqlite
	$(BIN)/python -m returnsync.simulators.demo.chaos --returns 2000 --kills 100 --workers 4 --backend postgresql

bench: install ## every benchmark (ingest, pipeline, catalog, claim, readers, reconcile); results go in the README table
	$(BIN)/python -m bench all

bench-reconcile: install ## reconcile 1,000,000 lines from files vs a bare DuckDB join
	$(BIN)/python -m bench.reconcile

clean: ## remove the virtualenvs and caches
	rm -rf .venv .tools .mypy_cache .ruff_cache .pytest_cache
