# Two commands on a fresh machine: `make run` and `make test`. Each creates .venv and
# installs the project (editable, with its test tools) when pyproject.toml is newer.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
ASSETS := graphql_ledger/static/graphiql/.installed
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: run test assets lint format bench clean

run: $(INSTALLED) $(ASSETS)
	$(BIN)/graphql-ledger serve

# One pytest worker per core, each file on one worker (its module fixtures, servers and
# databases stay together): the suite's server processes and PostgreSQL overlap instead of
# taking turns. PYTEST_ARGS= runs it in one process.
PYTEST_ARGS ?= -n auto --dist loadfile

test: $(INSTALLED) $(ASSETS)
	$(BIN)/pytest $(PYTEST_ARGS)

# The benchmark (bench/README.md): a few minutes; needs wrk (Debian's, installed if missing)
# and, for the PostGraphile peer, npm.
bench: $(INSTALLED)
	@command -v wrk >/dev/null || { echo "installing wrk from Debian's packages"; \
		$(SUDO) apt-get install -y wrk >/dev/null 2>&1 \
		|| { $(SUDO) apt-get update >/dev/null && $(SUDO) apt-get install -y wrk; }; }
	$(BIN)/python -m bench.run

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# GraphiQL's files, so that /graphql works offline (graphql_ledger/graphiql.py): the npm
# packages pinned in assets/, copied where the app serves them from. Without npm, a warning:
# the app then serves the GraphiQL page that loads them from the CDN.
assets: $(ASSETS)

$(ASSETS): assets/package.json assets/package-lock.json $(INSTALLED)
	@if command -v npm >/dev/null; then \
		cd assets && npm ci --no-audit --no-fund --loglevel=error && cd .. \
		&& $(BIN)/python -c 'from graphql_ledger.graphiql import main; raise SystemExit(main())' \
			install assets/node_modules && touch $@; \
	else echo "warning: npm not found, so GraphiQL loads its files from the CDN;" \
		"install Node.js and npm, then run make assets"; fi

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "graphql-ledger needs Python 3.11 or newer; set PYTHON=python3.x"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --editable '.[test]'
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
