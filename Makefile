# Two commands on a fresh machine: `make run` and `make test`. Both use one .venv with the
# project installed editable: `make run` installs what serving needs (SERVING), `make test`
# adds the test tools (TOOLS), each again when pyproject.toml is newer than its stamp.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SERVING := $(VENV)/.installed-serve
TOOLS := $(VENV)/.installed-test
ASSETS := graphql_ledger/static/graphiql/.installed
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
# `make run PORT=8100` serves the first app on 8100, the next on 8101.
PORT ?= 8000

.PHONY: run test assets lint format bench clean

run: $(SERVING) $(ASSETS)
	$(BIN)/graphql-ledger serve --port $(PORT)

# One pytest worker per core, each file on one worker (its module fixtures, servers and
# databases stay together): the suite's server processes and PostgreSQL overlap instead of
# taking turns. PYTEST_ARGS= runs it in one process.
PYTEST_ARGS ?= -n auto --dist loadfile

test: $(TOOLS) $(ASSETS)
	$(BIN)/pytest $(PYTEST_ARGS)

# The benchmark (bench/README.md): a few minutes; needs wrk (Debian's, installed if missing)
# and, for the PostGraphile peer, npm.
bench: $(TOOLS)
	@command -v wrk >/dev/null || { echo "installing wrk from Debian's packages"; \
		$(SUDO) apt-get install -y wrk >/dev/null 2>&1 \
		|| { $(SUDO) apt-get update >/dev/null && $(SUDO) apt-get install -y wrk; }; }
	$(BIN)/python -m bench.run

lint: $(TOOLS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(TOOLS)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# GraphiQL's files, so that /graphql works offline (graphql_ledger/graphiql.py): npm installs
# the packages pinned in assets/, assets/install.py copies them where the app serves them
# from. Without npm, a warning, and GraphiQL loads the same files from unpkg.com (online).
assets: $(ASSETS)

$(ASSETS): assets/package.json assets/package-lock.json assets/install.py $(SERVING)
	@if command -v npm >/dev/null; then \
		cd assets && npm ci --no-audit --no-fund --loglevel=error && cd .. \
		&& $(BIN)/python assets/install.py assets/node_modules && touch $@; \
	else echo "warning: npm not found: GraphiQL will load its files from unpkg.com, so it" \
		"needs internet; to serve them offline, install Node.js and npm, then make assets"; fi

$(SERVING): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "graphql-ledger needs Python 3.11 or newer; set PYTHON=python3.x"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --editable .
	touch $@

$(TOOLS): pyproject.toml $(SERVING)
	$(BIN)/python -m pip install --quiet --editable '.[test]'
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
