# The two commands of the README. Both install into a virtual environment (.venv) first.
VENV ?= .venv
PY := $(VENV)/bin/python

# Written once `make run` has installed its extras; pip runs again only when pyproject.toml is
# newer, so that a second `make run` starts at once.
RUN_STAMP := $(VENV)/.installed-local-train

.PHONY: run check

# Install the local service and run it on its embedded SQLite store, training a first model
# from the vendored closed tickets if there is none yet.
run: $(RUN_STAMP)
	$(VENV)/bin/ticket-enrich serve

$(RUN_STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[local,train]'
	touch $@

# Install everything the checks need (Request Tracker 5 from Debian's packages for the RT
# connector's tests, which needs root; then each tests/setup.d/*.sh for the local servers and
# tools the cloud and browser tests start), then lint, type-check, check the import contracts
# and run the whole test suite.
check:
	sh tests/integration/rt_server.sh install
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	for script in tests/setup.d/*.sh; do [ -e "$$script" ] || continue; VENV=$(VENV) sh "$$script" || exit 1; done
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) -m pytest
