# One command to run the example, one to test. Both set up what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test setup lint bench clean binary deb test-binary coverage

$(BIN)/.built: pyproject.toml setup.py $(wildcard ext/*.pyx ext/*.pxd)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@
	@echo 'logtrain is installed in $(BIN), not on PATH: export PATH="$$PWD/$(BIN):$$PATH" (README, Quick start)'

setup: $(BIN)/.built

# Runs the agent on the built-in example (examples/logtrain.toml).
run: setup
	$(BIN)/logtrain run --config examples/logtrain.toml

# Installs the real peers (rsyslog, socat, openssl, logger), then lint and tests.
test: setup
	bash scripts/install-test-deps.sh
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider

# The test suite under pytest-cov, the agent processes the tests start included:
# prints the coverage of logtrain/ per module and the total.
coverage: setup
	bash scripts/install-test-deps.sh
	rm -f .coverage .coverage.*
	$(BIN)/python -m pytest -q -p no:cacheprovider --cov --cov-report=term

# The agent beside rsyslog and syslog-ng (installed by bench/install-peers.sh): one table.
bench: setup
	bash bench/install-peers.sh
	$(BIN)/python bench/run.py

# dist/logtrain, one static executable (PyInstaller one-file, then staticx),
# and dist/image/, what packaging/Dockerfile copies beside it.
# What the build printed is kept in build/binary.out and .err (tests/test_binary.py).
binary: setup
	@bash scripts/install-test-deps.sh
	@mkdir -p build
	@bash packaging/build-binary.sh >build/binary.out 2>build/binary.err; \
		status=$$?; cat build/binary.out; cat build/binary.err >&2; exit $$status

# dist/logtrain_VERSION-1_amd64.deb (dpkg-deb, from packaging/debian).
deb: binary
	@bash packaging/build-deb.sh

# The end-to-end tests against dist/logtrain instead of the source tree, and
# the tests of what ships: the empty chroot, the image layout, the Debian package.
test-binary: binary
	LOGTRAIN_TEST_BINARY=$(CURDIR)/dist/logtrain LOGTRAIN_BUILD_OUTPUT=$(CURDIR)/build/binary \
		$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_e2e.py tests/test_http_io.py tests/test_postgres.py \
		tests/test_hostile_input.py tests/test_httpserver.py tests/test_binary.py \
		tests/test_static.py tests/test_dockerfile.py tests/test_debian.py

clean:
	rm -rf $(VENV) build dist *.egg-info logtrain/*.so ext/*.c .state .bench fuzz-crashes .coverage .coverage.*
