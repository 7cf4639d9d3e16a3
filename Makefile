# Falsework: `make run` starts the service, `make test` runs the whole suite.
# `make run PORT=8080` (or FALSEWORK_PORT=8080 make run) serves on another port.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
PORT ?=

.PHONY: setup run test lint typecheck pytest test-unit test-integration test-acceptance bench clean \
	screenshots wheel

# The dev extra (pytest, ruff, mypy, playwright…) for `make test`.
setup: $(STAMP)

$(STAMP): pyproject.toml
	@PYTHON=$(PYTHON) ./scripts/install.sh $(VENV) -e '.[dev]'
	@touch $(STAMP) $(RUN_STAMP)

# Only what serving needs.
$(RUN_STAMP): pyproject.toml
	@PYTHON=$(PYTHON) ./scripts/install.sh $(VENV) -e .
	@touch $(RUN_STAMP)

run: $(RUN_STAMP)
	@$(BIN)/falsework serve $(if $(PORT),--port $(PORT))

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: setup
	$(BIN)/mypy

# The tests come in three tiers by cost (tests/unit, tests/integration, tests/acceptance;
# README's "Tests"). `make test` runs them all on JOBS workers (pytest-xdist, one file per
# worker at a time, the longest files first: tests/support/durations.py; xdist's own
# reordering, by number of tests, would undo that).
JOBS ?= 2
DIST ?= --dist loadfile --no-loadscope-reorder
PYTEST := $(BIN)/pytest -q -p no:cacheprovider
# Coverage of src/falsework over the whole suite, workers and `falsework serve` / CLI
# children combined ([tool.coverage.*] in pyproject.toml): the floor fails the run, the
# report is printed (files under 100 %) and written to .falsework/coverage/index.html.
# `make pytest COV=` runs without it. --cov-append, with the data erased before the run:
# pytest-cov erases every data file when a process starts, so the worker that replaces
# a dead one erased what the others and the children had written; workers write their
# data as they go (tests/support/cov_save.py), so a dead one keeps what it measured.
COV ?= --cov --cov-append --cov-report=term --cov-report=html --cov-fail-under=85
# A test that fails, or whose worker dies (the 120 s timeout ends it), runs once more
# (pytest-rerunfailures): each rerun prints R, is shown at once with its first failure
# (tests/conftest.py) and named in the summary (-rR); one that fails twice fails the run.
# `make pytest RERUNS=` runs each test once.
RERUNS ?= --reruns 1 -rfER

pytest: setup
	./scripts/ensure-postgres.sh
	./scripts/ensure-chromium.sh
	./scripts/ensure-forges.sh
	$(BIN)/coverage erase
	$(PYTEST) -n $(JOBS) $(DIST) $(RERUNS) $(COV)

# No I/O: seconds, nothing to start.
test-unit: setup
	$(PYTEST) tests/unit

# Both databases, git, loopback HTTP, in this process.
test-integration: setup
	./scripts/ensure-postgres.sh
	./scripts/ensure-forges.sh
	$(PYTEST) -n $(JOBS) $(DIST) $(RERUNS) tests/integration

# Real `falsework serve` processes, the CLI, Chromium, faults.
test-acceptance: setup
	./scripts/ensure-postgres.sh
	./scripts/ensure-chromium.sh
	./scripts/ensure-forges.sh
	$(PYTEST) -n $(JOBS) $(DIST) $(RERUNS) tests/acceptance

test: lint typecheck pytest

# Rewrites docs/screenshots/ from the browser tests (a plain `make test` leaves them be).
screenshots: setup
	./scripts/ensure-postgres.sh
	./scripts/ensure-chromium.sh
	FALSEWORK_SCREENSHOTS=1 $(PYTEST) tests/acceptance/web

# The peers (PgQueuer, Procrastinate, cookiecutter, copier) live in .venv-bench (copier is
# also a dev dependency: the update merge's oracle in tests/updates).
# BENCH_ARGS=--quick for a smoke run; --only NAME,... for some of them.
bench:
	./scripts/ensure-postgres.sh
	test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install -q --upgrade pip
	.venv-bench/bin/python -m pip install -q -e '.[bench]'
	.venv-bench/bin/python -m bench.run_all $(BENCH_ARGS)

# dist/falsework-<version>-py3-none-any.whl, for `pipx install` / `uv tool install` anywhere:
# it carries the example templates and the page.
wheel:
	$(PYTHON) -m pip wheel --no-deps -q -w dist .
	@ls dist/falsework-*.whl

clean:
	rm -rf $(VENV) .falsework .mypy_cache .ruff_cache dist
