# fedstream — one command to run the demo, one to pass the tests. Everything installs into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test-tools demo test test-unit test-integration bench schemas stack-up stack-down clean

install: $(STAMP)

# torch is pinned; pip takes a CPU wheel from a local wheel directory when the machine has one
# (pip's find-links), else downloads it. pip's own cache makes reinstalls quick.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel setuptools
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## The main job: stack up, six services, 15 simulated hospitals to convergence.
demo: install
	$(BIN)/fedstream demo

## Unit, contract and integration tests (the integration suite starts its own Kafka, PostgreSQL, Redis).
test: install test-tools
	$(BIN)/python -m pytest

# Chromium (report screenshot test) and promtool (alert rule tests), from Debian's packages when missing.
test-tools:
	bash infra/scripts/install-test-tools.sh

test-unit: install test-tools
	$(BIN)/python -m pytest tests/unit

test-integration: install
	$(BIN)/python -m pytest tests/integration tests/contract

## Figures, printed and written to bench-results/*.json: pipeline throughput/latency, DP rows and the
## flood (bench.pipeline), encrypted aggregation, the alert processor, blob sealing, secured Kafka.
bench: install
	$(BIN)/python -m bench.pipeline
	$(BIN)/python -m bench.he
	$(BIN)/python -m bench.alerts
	$(BIN)/python -m bench.envelope
	$(BIN)/python -m bench.transport

schemas: install
	$(BIN)/python -m schemas.generate

stack-up: install
	$(BIN)/fedstream stack up

stack-down: install
	$(BIN)/fedstream stack down

clean:
	-$(BIN)/fedstream stack down 2>/dev/null
	rm -rf $(VENV) .fedstream bench-results
