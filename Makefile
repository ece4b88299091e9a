# Every target uses the venv that `make install` creates at .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
CONFIG ?= config.yaml
DB ?= litellm.db
OUT ?= public
HOST ?= 127.0.0.1
PORT ?= 4000
EXPLORE_PORT ?= 8001
DAYS ?= 90

.PHONY: install run report explore demo test bench backup prune lint chromium promtool redis clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

run: install
	$(PYTHON) -m proxy serve --config $(CONFIG) --host $(HOST) --port $(PORT) --db $(DB)$(if $(WORKERS), --workers $(WORKERS))

report: install
	@# Alerts first so the overview shows this run's alerts; a failed check still fails the
	@# target, but only after the site is built.
	@$(PYTHON) -m sitegen alerts --db $(DB) $(if $(wildcard $(CONFIG)),--config $(CONFIG)); status=$$?; \
	$(PYTHON) -m sitegen build --db $(DB) --out $(OUT) $(if $(wildcard $(CONFIG)),--config $(CONFIG)) && exit $$status

# Datasette on the request log only (never keys.db), read-only: shin-explore (sitegen/explore.py)
# holds the setup. `make explore DB=path/to/litellm.db PORT=8002`: PORT given here is Datasette's
# port; without it Datasette uses EXPLORE_PORT (PORT's own default, 4000, is the gateway's).
explore: install
	$(BIN)/shin-explore --db $(DB) --host $(HOST) \
		--port $(if $(filter command line environment,$(origin PORT)),$(PORT),$(EXPLORE_PORT))

# Fake upstream + the real gateway on free ports, virtual keys, 30 days of history and live SDK
# traffic into demo/ (rewritten each run), then the site. DEMO_DIR=path moves it;
# DEMO_ARGS=--quick is the CI-sized run. The site build is its own step: proxy never imports sitegen.
demo: install
	$(PYTHON) -m proxy.demo --dir $(or $(DEMO_DIR),demo) $(DEMO_ARGS)
	$(PYTHON) -m sitegen build --db $(or $(DEMO_DIR),demo)/litellm.db --out $(OUT) --config $(or $(DEMO_DIR),demo)/config.yaml
	@echo ""
	@echo "Open the report:  file://$(abspath $(OUT))/index.html"
	@echo "  or serve it:    $(PYTHON) -m proxy serve --config $(or $(DEMO_DIR),demo)/config.yaml --port $(PORT)  then http://$(HOST):$(PORT)/ui"
	@echo "Explore with SQL: make explore DB=$(or $(DEMO_DIR),demo)/litellm.db  then http://$(HOST):$(EXPLORE_PORT)"

# Headless Chromium for the browser test of the report (Debian package; installed once).
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q chromium; }

# promtool for the test that lints /metrics: taken out of Debian's prometheus package (a 19 MB
# download) into the venv, without installing the Prometheus server it ships with.
promtool: install
	@command -v promtool >/dev/null 2>&1 || test -x $(BIN)/promtool || { \
		tmp=$$(mktemp -d) && cd $$tmp && apt-get update -q >/dev/null && apt-get download -q prometheus >/dev/null \
		&& dpkg-deb -x prometheus_*.deb x && cp x/usr/bin/promtool $(abspath $(BIN))/promtool; \
		status=$$?; rm -rf $$tmp; exit $$status; }

# redis-server for the Redis tests (Debian package; installed once). Tests start their own
# server on a free port with a temp dir: no system service is used.
redis:
	@command -v redis-server >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q redis-server; }

test: install chromium promtool redis
	$(PYTHON) -m pytest -q

bench: install
	$(PYTHON) -m bench

backup: install
	$(PYTHON) -m proxy backup --config $(CONFIG) --db $(DB)$(if $(KEEP), --keep $(KEEP))$(if $(DEST), --dest $(DEST))

prune: install
	$(PYTHON) -m proxy prune --config $(CONFIG) --db $(DB) --days $(DAYS)$(if $(ARCHIVE), --archive $(ARCHIVE))$(if $(VACUUM), --vacuum)

lint: install
	$(BIN)/ruff check proxy sitegen tests bench datasette setup.py

clean:
	rm -rf $(VENV) .pytest_cache
