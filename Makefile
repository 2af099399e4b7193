# Two commands for a fresh machine (see README):  make run   |   make test
# Both create .venv and install requirements.txt when needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)

.PHONY: run test install connector migrate clean

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

## start the service exactly as the Procfile's web process (sandbox mode when no platform credentials are set)
run: $(STAMP)
	PATH="$(BIN):$$PATH" PORT="$${PORT:-8000}" sh -c "exec $$(sed -n 's/^web: //p' Procfile)"

## run the test suite (offline; PostgreSQL tests use TEST_DATABASE_URL, default the local server)
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## regenerate connector-definition/ from openapi.yaml
connector: $(STAMP)
	$(BIN)/python -m service.connector build

## apply the ledger's database migrations to DATABASE_URL (live deployments; sandbox does it by itself)
migrate: $(STAMP)
	$(BIN)/python -m service.db upgrade

clean:
	rm -rf $(VENV) var .pytest_cache
