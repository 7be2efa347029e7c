# Two commands: `make dev` runs the product locally, `make test` runs the test suite.
# Both install everything they need first (a virtualenv with the project, and a Java runtime
# from Debian's packages where none is installed, for the Spark engine). `make team-dev` is `make
# dev` for a team: Dagster's instance and the Iceberg catalog in a local PostgreSQL (deploy/team/).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export LAKEHOUSE_HOME ?= $(CURDIR)/.lakehouse
export DAGSTER_HOME ?= $(LAKEHOUSE_HOME)/dagster
DEMO_START ?= 2013-01-01
DEMO_END ?= 2013-01-31
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# team-dev: the PostgreSQL cluster, and the Dagster home that holds deploy/team/dagster.yaml
PG_ROOT ?= $(LAKEHOUSE_HOME)/postgres
TEAM_DAGSTER_HOME ?= $(LAKEHOUSE_HOME)/dagster-team
# Dagster reads it from the environment only: a step's events are written 50 rows to an INSERT
DAGSTER_EVENT_BATCH_SIZE ?= 50
TEAM_PORT ?= 3000

.PHONY: install java postgresql demo dagster-home dev team-dev test lint clean

# editable_mode=compat: the editable install is a .pth naming this folder; setuptools' default (an
# import hook) prints a BuildBackendWarning on every install
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
	touch $@

java:
	@command -v java >/dev/null 2>&1 || { \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends default-jre-headless; }

# Debian's server binaries live in /usr/lib/postgresql/<version>/bin, off PATH
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends postgresql; }

install: $(VENV)/.installed java

demo: install
	$(BIN)/lakehouse demo-landing --start $(DEMO_START) --end $(DEMO_END)

# The shipped instance settings (run monitoring, run retries) go to a DAGSTER_HOME without its own;
# an operator's own dagster.yaml is never overwritten.
dagster-home:
	mkdir -p $(DAGSTER_HOME)
	test -e $(DAGSTER_HOME)/dagster.yaml || cp deploy/dagster.yaml $(DAGSTER_HOME)/dagster.yaml

# `dg dev` is `dagster dev` (superseded by it) after a check of every defs.yaml against its schema.
# The instance is DAGSTER_HOME, so runs launched from a shell with the same DAGSTER_HOME show here.
dev: demo dagster-home
	VIRTUAL_ENV=$(abspath $(VENV)) PYTHONWARNINGS=ignore::Warning:dagster.components.scaffold.scaffold \
		$(BIN)/dg dev

# PostgreSQL under $(PG_ROOT) (127.0.0.1 only; under root it runs as the `postgres` user), its
# `dagster` and `lakehouse` databases, then the daemon and the webserver on http://127.0.0.1:$(TEAM_PORT) (3000).
# Ctrl-C stops all three; the cluster's data stays for the next start.
team-dev: demo postgresql
	mkdir -p $(TEAM_DAGSTER_HOME)
	test -e $(TEAM_DAGSTER_HOME)/dagster.yaml || cp deploy/team/dagster.yaml $(TEAM_DAGSTER_HOME)/dagster.yaml
	set -e; exports=$$($(BIN)/python deploy/team/local_postgres.py start $(PG_ROOT)); eval "$$exports"; \
	export DAGSTER_HOME=$(TEAM_DAGSTER_HOME) DAGSTER_EVENT_BATCH_SIZE=$(DAGSTER_EVENT_BATCH_SIZE); \
	$(BIN)/dagster instance migrate >/dev/null; \
	$(BIN)/dagster-daemon run & daemon=$$!; \
	trap 'set +e; kill $$daemon 2>/dev/null; wait $$daemon; $(BIN)/python deploy/team/local_postgres.py stop $(PG_ROOT)' EXIT; \
	trap 'exit 130' INT TERM; \
	$(BIN)/dagster-webserver -h 127.0.0.1 -p $(TEAM_PORT)

# The lint first, so CI keeps the import contracts too. Then `dg check defs` loads every contract
# as the code location does (a wrong one fails with its file, line and field), on a temporary
# instance (no DAGSTER_HOME). VIRTUAL_ENV tells dg this venv is the project's (else it warns); the
# filter hides a preview warning of dagster-spark's scaffolder.
# The PostgreSQL tests start servers of their own from Debian's package (`postgresql`).
test: install lint postgresql
	env -u DAGSTER_HOME VIRTUAL_ENV=$(abspath $(VENV)) \
		PYTHONWARNINGS=ignore::Warning:dagster.components.scaffold.scaffold $(BIN)/dg check defs </dev/null
	$(BIN)/pytest -n 2 --dist loadfile

# imports flow one way (pyproject's [tool.importlinter]), then style
lint: install
	$(BIN)/lint-imports
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .lakehouse
