import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import os  # noqa: E402
import subprocess  # noqa: E402

import pytest  # noqa: E402

if "COVERAGE_PROCESS_CONFIG" in os.environ:  # under `make coverage`
    # coverage's subprocess patch reaches child processes through this variable;
    # tests give their processes environments of their own, so it is added there.
    _popen_init = subprocess.Popen.__init__

    def _with_coverage(self, *args, **kwargs):
        env = kwargs.get("env")
        if env is not None and "COVERAGE_PROCESS_CONFIG" not in env:
            kwargs["env"] = {**env, "COVERAGE_PROCESS_CONFIG": os.environ["COVERAGE_PROCESS_CONFIG"]}
        _popen_init(self, *args, **kwargs)

    subprocess.Popen.__init__ = _with_coverage


def pytest_collection_modifyitems(config, items):
    """Tests marked slow (fuzzing) run with ``-m slow`` or LOGTRAIN_SLOW_TESTS=1."""
    if "slow" in (config.getoption("-m") or "") or os.environ.get("LOGTRAIN_SLOW_TESTS"):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow or LOGTRAIN_SLOW_TESTS=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def pg():
    """A throwaway PostgreSQL cluster of the module's own (tests/pgserver.py)."""
    from pgserver import PostgresServer

    server = PostgresServer().start()
    server.wait_ready()
    yield server
    server.cleanup()
