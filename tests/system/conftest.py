"""Fixtures for process-level tests of the otachain programs.

Helpers live in tests/testlib.py (shared with tests/interop); importing the
fixtures here registers them for this directory.

    otachain(*args, check=True, env=None, timeout=120)  run the CLI
    nginx            a real nginx on 127.0.0.1 serving nginx.root
    nginx_factory    start more of them (mirrors, misbehaving servers)
    tufjs            run the independent tuf-js client, get its JSON result
"""

import pytest

from testlib import (  # noqa: F401  (fixtures are registered by import)
    REPO,
    VECTORS,
    bin_dir,
    nginx,
    nginx_factory,
    otachain,
    tufjs,
)


@pytest.fixture(name="bin_dir")
def bin_dir_fixture():
    """The meson build directory under test (OTACHAIN_BIN_DIR, else build-asan)."""
    return bin_dir()


@pytest.fixture(name="otachain")
def otachain_fixture():
    """The otachain(*args, check=True, env=None, timeout=120) runner."""
    return otachain
