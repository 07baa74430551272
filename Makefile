# The two commands: `make run` (the whole job on demo data) and `make test` (the whole suite but Spark).
# Both set up .venv in the repo with the pinned dependencies of pyproject.toml first, with the demo world
# and stand-ins (demo/, the `demo` extra) that they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: setup run test lint format test-spark test-spark-cluster bench clean dashboard screenshots

$(INSTALLED): pyproject.toml sources/pyproject.toml demo/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ./sources -e '.[demo,dev,dashboard]' -e ./demo
	touch $(INSTALLED)

setup: $(INSTALLED)

run: setup
	$(BIN)/warehouse demo

test: setup
	$(BIN)/python -m pytest

# ruff (lint and format), mypy on sources/ and mail_warehouse/, sqlfluff (dbt templater) on the models; their
# settings are in pyproject.toml and .sqlfluff. `make format` applies ruff's fixes and formatting. sqlfluff
# compiles the models against an empty warehouse of its own, so it lints the same SQL on every machine (a
# first, full build's), not what the models compile to against whatever warehouse.duckdb is at hand.
LINT_DIR := var/lint
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	WAREHOUSE_PATH=$(LINT_DIR)/warehouse.duckdb DBT_TARGET_PATH=$(LINT_DIR)/target $(BIN)/sqlfluff lint models macros

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The same sources and models on Apache Spark (the `spark` extra; Java 17, Debian's openjdk-17-jre-headless):
# the test world through the lake and `dbt build --target spark`, its counts against the generator's truth,
# an incremental build against a full refresh, `warehouse run` with the spark engine. SPARK_LOCAL_IP keeps
# Spark off an unresolvable host name.
SPARK_INSTALLED := $(VENV)/.installed-spark

$(SPARK_INSTALLED): $(INSTALLED)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ./sources -e '.[demo,dev,dashboard,spark]' -e ./demo
	touch $(SPARK_INSTALLED)

test-spark: $(SPARK_INSTALLED)
	SPARK_LOCAL_IP=$${SPARK_LOCAL_IP:-127.0.0.1} $(BIN)/python -m pytest -m spark tests/spark

# The same on a Spark standalone cluster on loopback (a master, a worker and the Thrift server, from pyspark's own
# jars, in Europe/Amsterdam rather than UTC), dbt-spark connecting over Thrift (PyHive).
test-spark-cluster: $(SPARK_INSTALLED)
	SPARK_LOCAL_IP=$${SPARK_LOCAL_IP:-127.0.0.1} $(BIN)/python -m pytest -m spark_cluster tests/spark_cluster

# The dashboard on analytics.duckdb (after `make run`): http://127.0.0.1:8501/
dashboard: setup
	$(BIN)/warehouse dashboard

# Every page of the dashboard photographed into docs/ (after `make run`; needs Debian's chromium)
screenshots: setup
	$(BIN)/python docs/screenshots.py

# Every benchmark but Spark's (it needs `make test-spark`'s setup: run bench/bench_spark_build.py by hand).
bench: setup
	@for script in bench/bench_*.py; do \
	  case $$script in *spark*) continue;; esac; \
	  echo "== $$script"; $(BIN)/python $$script || exit 1; done

# Back to a fresh clone's state: everything `make run`, `make test` and the commands write, dlt's pipeline
# state included (a rerun would otherwise resume from stale cursors). The virtual environment stays.
clean:
	rm -rf var target logs exports .dlt_pipelines .pytest_cache
	rm -f warehouse.duckdb* analytics.duckdb* .warehouse.duckdb*.lock .analytics.duckdb* .user.yml derby.log
	rm -rf metastore_db spark-warehouse
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +
