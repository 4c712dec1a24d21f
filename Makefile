# Every target bootstraps itself from a fresh clone: the first one run creates .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install test lint typecheck unit run serve bench bench-ratio load soak bench-memory reset clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable '.[dev]'
	touch $(STAMP)

## make test: lint, type-check, then every test (PostgreSQL ones on a throwaway server), on two
## processes (TEST_PROCESSES=1 for one)
TEST_PROCESSES ?= 2
test: lint
	$(BIN)/python -m pytest -n $(TEST_PROCESSES)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict expense_core adapters entrypoints

unit: install
	$(BIN)/python -m pytest tests/unit

# Server workers unless WORKERS is given: one per two cores (one on 2 cores), where the database
# shares the machine. On 2 cores, PostgreSQL and the load generator beside it, `make bench` served
# as many requests a second with 1 worker as with 2 (three alternating pairs), and 2 spent 13-14%
# more server CPU on each (docs/performance.md). The embedded SQLite database takes one writer at
# a time: `make run` serves it with one worker, PostgreSQL with this many.
CORES := $(shell nproc 2>/dev/null || echo 2)
BEST_WORKERS := $(shell expr $(CORES) / 2 \| 1)
GIVEN_WORKERS = $(filter command line environment,$(origin WORKERS))
RUN_WORKERS = $(if $(GIVEN_WORKERS),$(WORKERS),$(if $(filter postgresql%,$(DATABASE_URL)),$(BEST_WORKERS),1))

## make run: migrate and seed the embedded database (DATABASE_URL to use another), serve on :4000
## beside one notification worker; Ctrl-C stops both
run: install
	$(BIN)/expense-tracker db upgrade
	$(BIN)/expense-tracker seed demo
	@$(BIN)/expense-tracker worker & worker=$$!; \
	trap 'kill -TERM $$worker 2>/dev/null; wait $$worker' EXIT INT TERM; \
	$(BIN)/expense-tracker serve --workers $(RUN_WORKERS)

## make serve: migrate the configured database and serve it as it is (no demo data)
serve: install
	$(BIN)/expense-tracker db upgrade
	$(BIN)/expense-tracker serve

# make bench / make load options: SCENARIO=light|medium|heavy|spike WORKERS=N DURATION=60
# POOL=8 (connections per worker); TARGET=http://... drives a running server instead (PLAN=...);
# NOTIFY=1 subscribes a local receiver to every event and runs a notification worker beside it;
# PAGES=1 makes one user in ten an approver viewing the inbox and expense pages.
SCENARIO ?=
WORKERS ?= $(BEST_WORKERS)
DURATION ?=
POOL ?=
TARGET ?=
PLAN ?=
NOTIFY ?=
PAGES ?=
LOAD_OPTIONS = --workers $(WORKERS) $(if $(DURATION),--duration $(DURATION)) \
	$(if $(POOL),--pool-size $(POOL)) $(if $(TARGET),--host $(TARGET)) $(if $(PLAN),--plan $(PLAN)) \
	$(if $(filter 1 yes true,$(NOTIFY)),--notify) $(if $(filter 1 yes true,$(PAGES)),--pages)

## make bench: throwaway PostgreSQL + server + seed, the 50/30/20 mix (spike), one JSON line
bench: install
	$(BIN)/python -m loadtest.bench --scenario $(or $(SCENARIO),spike) $(LOAD_OPTIONS)

## make load SCENARIO=medium: one of the seed's scenarios, HTML report in loadtest/reports/
load: install
	$(BIN)/python -m loadtest.bench --scenario $(or $(SCENARIO),medium) --html $(LOAD_OPTIONS)

## make soak: 30 minutes of the mix (DURATION=seconds to change it); RSS of every server process
## and database connections at start and end, throughput drift: under "soak" in the JSON line
soak: install
	$(BIN)/python -m loadtest.bench --scenario $(or $(SCENARIO),medium) --workers $(WORKERS) \
		--soak $(or $(DURATION),1800) $(if $(POOL),--pool-size $(POOL))

## make bench-ratio: this product against the hand-written reference, alternately on one
## throwaway PostgreSQL, medians and product / reference (RATIO=path/to/ratio.py, ROUNDS=3,
## DURATION=60; one server worker unless WORKERS=N is given on the command line)
RATIO ?= ../shared/bench/ratio.py
bench-ratio: install
	@test -f $(RATIO) || { echo "no $(RATIO): set RATIO=path/to/ratio.py" >&2; exit 2; }
	$(PYTHON) $(RATIO) --project . --rounds $(or $(ROUNDS),3) --duration $(or $(DURATION),60) \
		--workers $(if $(filter command line,$(origin WORKERS)),$(WORKERS),1)

## make bench-memory: submit-and-approve cycles per second of the in-memory engine
bench-memory: install
	$(BIN)/python -m loadtest.bench_memory

## make reset: delete the embedded database, so the next `make run` starts from the seed's ids
reset:
	rm -f expense_tracker.db expense_tracker.db-wal expense_tracker.db-shm

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
