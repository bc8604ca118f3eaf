# Lakecache: `make test` installs everything it needs (venv, redis-server) and runs lint and the whole suite.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Only the code folders that exist yet; mypy fails on a missing one.
TYPED_DIRS := $(wildcard cache_service plugins dags spark_jobs infra bench)

.PHONY: venv system-deps lint test demo bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip install --python $(BIN)/python -e '.[dev]'
	touch $@

system-deps:
	@if command -v redis-server >/dev/null; then \
		echo "redis-server present: $$(redis-server --version)"; \
	else \
		sudo=""; if [ "$$(id -u)" -ne 0 ]; then sudo="sudo"; fi; \
		$$sudo apt-get update; \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y --no-install-recommends redis-server; \
	fi

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(TYPED_DIRS)

# pytest exits 5 when it collected no tests: a suite that proves nothing is a failure.
test: venv system-deps
	$(MAKE) --no-print-directory lint
	status=0; $(BIN)/pytest -q -p no:cacheprovider tests || status=$$?; \
	if [ "$$status" -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; \
	exit "$$status"

demo: venv
	$(BIN)/python -m infra.demo

bench: venv
	$(BIN)/python -m bench.run

clean:
	if [ -x $(BIN)/python ] && [ -f .local/stack/stack.json ]; then $(BIN)/python -m infra.stack down; fi
	rm -rf .local build dist .mypy_cache .ruff_cache .pytest_cache spark-warehouse metastore_db derby.log
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
