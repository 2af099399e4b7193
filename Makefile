# Two commands for a fresh machine (see README):  make run   |   make test
# Both create .venv and install requirements.txt when needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)

.PHONY: run test browser nginx install connector migrate deploy clean

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

# the settings file (python-dotenv): variables already in the environment win over it, as in the service
ENV_FILE ?= .env
DOTENV   := $(if $(wildcard $(ENV_FILE)),$(BIN)/dotenv -f $(ENV_FILE) run --no-override --)

## start the service exactly as the Procfile's web process (sandbox mode when no platform credentials are set)
run: $(STAMP)
	PATH="$(BIN):$$PATH" $(DOTENV) sh -c "PORT=\$${PORT:-8000}; export PORT; exec $$(sed -n 's/^web: //p' Procfile)"

## run the test suite (offline; PostgreSQL tests use TEST_DATABASE_URL, default the local server)
test: $(STAMP) browser nginx
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## the headless browser of the /ui test (Debian's chromium and its driver), installed when missing
browser:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { \
	  command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] || { \
	    echo "note: /usr/bin/chromium is missing and cannot be installed here (needs apt-get as root); the /ui browser test will skip"; exit 0; }; \
	  echo "installing chromium and chromium-driver (Debian packages) for the /ui browser test"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get -qq update >/dev/null && \
	  apt-get -qq install -y --no-install-recommends chromium chromium-driver >/dev/null; }

## the TLS proxy of the production rehearsal (tests/deploy; Debian's nginx), installed when missing. The package
## does not start a system nginx where policy-rc.d forbids it (containers); the rehearsal runs its own.
nginx:
	@test -x /usr/sbin/nginx || { \
	  command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] || { \
	    echo "note: /usr/sbin/nginx is missing and cannot be installed here (needs apt-get as root); the production rehearsal will skip"; exit 0; }; \
	  echo "installing nginx (Debian package) for the production rehearsal"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get -qq update >/dev/null && \
	  apt-get -qq install -y --no-install-recommends nginx >/dev/null; }

## production on one VM (docs/deploy.md): the Procfile's web process twice behind nginx terminating TLS, e.g.
##   make deploy DEPLOY_ARGS="--cert /etc/marketing-actions/tls/fullchain.pem --key /etc/marketing-actions/tls/privkey.pem"
## (the service and this command read .env themselves: a changed setting is seen by the next rolling restart)
deploy: $(STAMP)
	$(BIN)/python -m deploy.vm $(DEPLOY_ARGS)

## regenerate connector-definition/ from openapi.yaml
connector: $(STAMP)
	$(BIN)/python -m service.connector build

## apply the ledger's database migrations to DATABASE_URL (live deployments; sandbox does it by itself)
migrate: $(STAMP)
	$(DOTENV) $(BIN)/python -m service.db upgrade

clean:
	rm -rf $(VENV) var .pytest_cache
