# One command to run the example, one to test. Both set up what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test setup lint bench clean

$(BIN)/.built: pyproject.toml setup.py $(wildcard ext/*.pyx ext/*.pxd)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

setup: $(BIN)/.built

# Runs the agent on the built-in example (examples/logtrain.toml).
run: setup
	$(BIN)/logtrain run --config examples/logtrain.toml

# Installs the real peers (rsyslog, socat, openssl, logger), then lint and tests.
test: setup
	bash scripts/install-test-deps.sh
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider

# The agent beside rsyslog and syslog-ng (installed by bench/install-peers.sh): one table.
bench: setup
	bash bench/install-peers.sh
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info logtrain/*.so ext/*.c .state .bench fuzz-crashes
