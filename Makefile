# Soul KG CRM. `make run` and `make test` work on a fresh machine with Python, pip and npm.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
export PYTHONPATH := $(CURDIR):$(CURDIR)/gen/python

.PHONY: run test psql lint protos compose install clean bench bench-compare

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

## make run: embedded PostgreSQL (or DATABASE_URL) + migrations + every service, foreground.
run: $(STAMP)
	$(PY) tools/devstack.py run

## make test: the whole suite against a throwaway PostgreSQL (or DATABASE_URL's server).
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## make psql: psql on the development database, read-only across every organization (the operator
## role); `make psql AS=owner` for DDL as the owner. SQL on stdin runs and exits.
psql: $(STAMP)
	@$(PY) tools/devstack.py psql $(if $(filter owner,$(AS)),--as-owner,)

## make lint: ruff, the direction of imports between layers, buf lint, and the drift checks of
## generated code and docker-compose.yml.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) tools/lint_layers.py
	bash tools/lint_protos.sh
	$(PY) tools/gen_protos.py --check
	$(PY) tools/gen_compose.py --check
	$(PY) tools/gen_k8s.py --check

## make protos: regenerate gen/python from protos/ (commit the result).
protos: $(STAMP)
	$(PY) tools/gen_protos.py

## make compose: regenerate docker-compose.yml from libs/registry.py (commit the result).
compose: $(STAMP)
	$(PY) tools/gen_compose.py

clean:
	rm -rf $(VENV) build .pytest_cache

## make bench: benchmarks against their ceilings (bench/run.py); first run loads 1M clients.
bench: $(STAMP)
	@command -v h2load >/dev/null || apt-get install -y -q nghttp2-client >/dev/null 2>&1 \
	  || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q nghttp2-client >/dev/null 2>&1) \
	  || echo "h2load (Debian nghttp2-client) not installable here: the Python generator drives every workload"
	$(PY) -m bench.run $(BENCH_ARGS)

## make bench-compare A B: two runs of bench/results/ side by side (a file, or part of its name:
## a date, a commit); one name: against the latest run; none: the two latest runs.
ifeq (bench-compare,$(firstword $(MAKECMDGOALS)))
  COMPARE_RUNS := $(wordlist 2,$(words $(MAKECMDGOALS)),$(MAKECMDGOALS))
  ifneq ($(COMPARE_RUNS),)
    $(eval $(COMPARE_RUNS):;@:)
  endif
endif
bench-compare: $(STAMP)
	@$(PY) -m bench.compare $(COMPARE_RUNS)
