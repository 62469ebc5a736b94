import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import os  # noqa: E402

import pytest  # noqa: E402


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
