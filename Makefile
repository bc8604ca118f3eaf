# Lakecache: `make test` installs everything it needs (venv, redis-server, chromium) and runs lint and the whole suite.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Only the code folders that exist yet; mypy fails on a missing one.
TYPED_DIRS := $(wildcard cache_service plugins dags spark_jobs infra bench)

# Debian packages the suite runs for real: Redis, Chromium for the browser tests of the Airflow UI, Prometheus and
# Alertmanager (and Redis's exporter) for monitoring (python -m infra.monitoring up).
SYSTEM_PACKAGES := redis-server chromium prometheus prometheus-alertmanager prometheus-redis-exporter

.PHONY: venv system-deps lint test demo bench chaos airflow clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip install --python $(BIN)/python -e '.[dev]'
	touch $@

system-deps:
	@missing=""; for pkg in $(SYSTEM_PACKAGES); do \
		dpkg-query -W -f='$${Status}' "$$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$pkg"; \
	done; \
	if [ -z "$$missing" ]; then \
		echo "system packages present: $(SYSTEM_PACKAGES)"; \
	else \
		sudo=""; if [ "$$(id -u)" -ne 0 ]; then sudo="sudo"; fi; \
		$$sudo apt-get update; \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y --no-install-recommends $$missing; \
	fi

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(TYPED_DIRS)
	$(BIN)/python -m infra.monitoring generate --check

# pytest exits 5 when it collected no tests: a suite that proves nothing is a failure.
# Two test processes (one per core here), each taking whole files so that a module's fixtures start once: most tests
# wait on the services they start, so two at a time halve the suite's time. TEST_WORKERS=0 runs it in one process.
# The 30 slowest tests are listed at the end: what to look at first when the suite nears CI's budget.
TEST_WORKERS ?= 2
test: venv system-deps
	$(MAKE) --no-print-directory lint
	status=0; $(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --durations=30 tests || status=$$?; \
	if [ "$$status" -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; \
	exit "$$status"

# DEMO_EVENTS (default 1,000,000), DEMO_WORKERS (cache workers, 1 to 8; default 1), DEMO_S3_MODEL=0: see docs/demo.md.
demo: venv
	$(BIN)/python -m infra.demo

bench: venv
	$(BIN)/python -m bench.run

# The reliability campaigns against real processes, quick (under 15 minutes; CHAOS_FULL=1 for the long ones); rewrites
# docs/reliability.md and bench/results/reliability.json, and fails if a guarantee broke. One campaign:
# python -m bench.reliability --only NAME.
chaos: venv system-deps
	$(BIN)/python -m bench.reliability

# Airflow's UI on the local stack, in the foreground until Ctrl-C (detached: python -m infra.airflow up|down|status).
airflow: venv
	$(BIN)/python -m infra.airflow run

clean:
	if [ -x $(BIN)/python ] && [ -f .local/stack/stack.json ]; then $(BIN)/python -m infra.stack down; fi
	rm -rf .local build dist .mypy_cache .ruff_cache .pytest_cache spark-warehouse metastore_db derby.log
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
