# pitlake — one front door. `make` (or `make help`) lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.8
STAMP := $(VENV)/.pitlake-installed
PYTEST_ARGS ?=

.PHONY: help install engine engine-stop demo experiment serve test test-services test-all audit lint format typecheck bench bench-ingest airflow mlflow lock clean check-python reproduce

help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required: found " + sys.version.split()[0] + "; set PYTHON=/path/to/python3.11")'

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml | check-python
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip install --quiet --python $(PY) -r requirements.txt -r requirements-dev.txt
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	@touch $(STAMP)

install: $(STAMP) ## create .venv, install the pinned requirements, check Java 17+, fetch the Delta jars and Data Docs assets once
	@$(PY) -m pitlake check-java
	@$(PY) -m pitlake install-jars
	@$(PY) -m pitlake install-docs-assets

EXPERIMENT ?= hgb_search
demo: install ## run the pipeline on embedded defaults (local Airflow + Spark + Delta) for the demo dates, then EXPERIMENT
	$(PY) -m pitlake demo --experiment "$(EXPERIMENT)"

experiment: install ## run EXPERIMENT (conf/experiments/$(EXPERIMENT).yaml) on the newest training set; writes its report
	$(PY) jobs/run_experiment.py --config $(EXPERIMENT)

# The demo's features are history: serve them as of the newest materialization (SERVING_CLOCK=wall: UTC now).
SERVING_CLOCK ?= materialization
USE_CASE ?= purchase_propensity
serve: install ## serve the champion of USE_CASE on 127.0.0.1:8000 (/predict, or /recommend for product_recommendations)
	$(PY) -m pitlake serve --clock $(SERVING_CLOCK) --use-case $(USE_CASE)

test: install ## the test suite to run often: unit, Spark, Delta, GX, MLflow, DAG integrity, failure behaviour, engine (~12 to 19 min)
	$(PY) -m pytest -m "not slow" --cov --cov-report=term:skip-covered $(PYTEST_ARGS)

test-services: install ## the service tests: scheduler backfill, browser UI, Spark cluster, `airflow dags test` (~11 to 14 min)
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

test-all: test test-services ## both (what CI runs: .ci/run)

audit: install ## known vulnerabilities in the locked dependencies (pip-audit; exit 2 when no service answers)
	$(PY) scripts/audit.py

lint: install ## ruff + mypy (the package, the DAG files, the jobs, the benchmarks, the plugins)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy dags
	$(VENV)/bin/mypy jobs benchmarks
	$(VENV)/bin/mypy plugins

format: install ## apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install ## run every benchmark and write docs/benchmarks.md
	$(PY) -m benchmarks.run all

bench-ingest: install ## ingestion of 1M events/day on local[2] and DAG parse times
	$(PY) -m benchmarks.run ingest

engine: install ## start the warm Spark engine (Spark Connect on 127.0.0.1:15002) unless it runs
	$(PY) -m pitlake engine start

engine-stop: ## stop this home's Spark engine
	$(PY) -m pitlake engine stop

airflow: install ## start `airflow standalone` on 127.0.0.1:8080 (login printed; password in $PITLAKE_HOME/airflow)
	$(PY) -m pitlake airflow standalone

mlflow: install ## start the MLflow UI on 127.0.0.1:5000 against $PITLAKE_HOME/mlflow
	$(PY) -m pitlake mlflow-ui

reproduce: install ## rebuild a model's training set from its manifest, check the hash and metrics (MODEL=name VERSION=n)
	$(PY) jobs/reproduce.py --model $(MODEL) --version $(VERSION)

lock: ## recompile requirements*.txt from requirements*.in (needs network)
	$(UV) pip compile --quiet --python-version 3.11 requirements.in -o requirements.txt
	$(UV) pip compile --quiet --python-version 3.11 requirements-dev.in -o requirements-dev.txt

clean: ## remove generated state (.pitlake/ lake, airflow, mlflow; keeps the jars) and caches
	rm -rf .pitlake/landing .pitlake/lake .pitlake/airflow .pitlake/mlflow .pitlake/gx .pitlake/runs .pytest_cache .mypy_cache .ruff_cache
