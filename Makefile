# The project's commands. Everything installs what it needs first: uv (from PyPI, with pip),
# the locked Python packages, the Apache Kafka broker (from Maven Central, on first use), and for
# the browser test Debian's Chromium and Snowplow's browser tracker (npm, tests/browser/).

PYTHON ?= python3
UV_VERSION := 0.13.9
UV := $(PYTHON) -m uv
RUN := $(UV) run --frozen
SOURCES := common/src producer/src api_service/src forwarder_service/src local_collector/src tests scripts bench

.PHONY: help install browser-deps lint typecheck test test-quick fuzz bench chaos soak ship-check run kafka-up kafka-down clean

help:
	@echo "make run         start Kafka, the local collector, the API and the forwarder"
	@echo "make test        lint, types and every test (starts its own Kafka broker)"
	@echo "make test-quick  unit tests only"
	@echo "make fuzz        property tests and the API fuzz with random examples, 40x as many"
	@echo "make bench       benchmarks; figures in bench/results.json and bench/report.png"
	@echo "make chaos       every fault scenario on a three-node cluster; a table, figures in bench/results.json"
	@echo "make soak        a steady load through the pipeline for SOAK_MINUTES (10); RSS, p99 and lag each minute"
	@echo "make browser-deps  Chromium (Debian's, if missing) and the browser tracker for the browser test"
	@echo "make ship-check  tofu fmt, checkov, hadolint, Prometheus rules (also part of make test)"
	@echo "make kafka-up    start the local Kafka broker (KAFKA_BOOTSTRAP_SERVERS, default 127.0.0.1:9092);"
	@echo "                 KAFKA_BROKERS=3 make kafka-up starts a three-node cluster there instead"
	@echo "make kafka-down  stop what kafka-up started"

install:
	@$(PYTHON) -m uv --version 2>/dev/null | grep -q "uv $(UV_VERSION)" || \
		$(PYTHON) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	@$(UV) sync --all-packages --frozen --quiet

# Debian's chromium when /usr/bin/chromium is missing (apt-get, as root) and `npm ci` of the
# locked browser tracker; nothing downloads a browser of its own.
browser-deps:
	@sh tests/browser/install.sh

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports

typecheck: install
	$(RUN) mypy $(SOURCES)

test: lint typecheck browser-deps
	$(RUN) python -m scripts.kafka.commands fetch >/dev/null
	$(RUN) python -m scripts.check_terraform tools
	$(RUN) pytest

test-quick: install
	$(RUN) pytest tests/unit

# make test runs every property test and fuzz derandomized (the same examples each run); this
# is the longer, random search. A failure prints the blob that reproduces it.
fuzz: install
	HYPOTHESIS_PROFILE=fuzz $(RUN) pytest tests/unit --timeout=3600 -p no:cacheprovider

bench: install kafka-up
	$(RUN) python -m bench.run_all

chaos: install
	$(RUN) python -m scripts.kafka.commands fetch >/dev/null
	$(RUN) python -m bench.chaos

soak: install
	$(RUN) python -m bench.soak

ship-check: install
	$(RUN) python -m scripts.check_terraform all

run: install
	$(RUN) python -m scripts.run_pipeline

kafka-up: install
	@$(RUN) python -m scripts.kafka.commands up

kafka-down:
	@if [ -x .venv/bin/python ]; then .venv/bin/python -m scripts.kafka.commands down; \
	else echo "Kafka is not running (nothing installed)"; fi

clean: kafka-down
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache
