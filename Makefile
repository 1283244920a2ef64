# Set-up and everyday commands. `make run` and `make test` work on a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# TRACKER_DEVELOPMENT=1: `make run` and friends may use the development SECRET_KEY; production refuses it.
FLASK := TRACKER_DEVELOPMENT=1 $(BIN)/flask --app tracker
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test install install-test db seed bench screenshots load e2e clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements.txt requirements-test.txt $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

db: install
	$(FLASK) db upgrade

seed: db
	$(FLASK) seed --demo

run: seed
	$(FLASK) run --host $(HOST) --port $(PORT)

test: install-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

e2e: install-test
	$(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

screenshots: install-test
	TRACKER_SCREENSHOTS_DIR=docs/screenshots $(BIN)/python -m pytest tests/e2e -k screenshots $(PYTEST_ARGS)
	TRACKER_SCREENSHOTS_DIR=docs/screenshots $(BIN)/python -m pytest tests/test_render.py $(PYTEST_ARGS)

bench: install-test
	$(BIN)/python -m bench.run_all

load: install-test
	$(BIN)/python -m bench.load --uploaders 20 --seconds 60

clean:
	rm -rf $(VENV) instance/tracker.db* instance/outbox
