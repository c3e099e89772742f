from __future__ import annotations

import pytest

from vpscli.paths import data_dir


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: pass --runslow to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def vps_data():
    """The public data folder (``VPS_DATA`` or ``../shared/data``); skips when absent."""
    root = data_dir()
    if not root.is_dir():
        pytest.skip(f"public data not found at {root} (set VPS_DATA)")
    return root
