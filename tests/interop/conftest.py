"""Fixtures for interop tests (tuf-js client, independent forger).

Same helpers as tests/system, from tests/testlib.py.
"""

import pytest

from testlib import (  # noqa: F401  (fixtures are registered by import)
    REPO,
    VECTORS,
    bin_dir,
    forge,
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


@pytest.fixture(name="forge")
def forge_fixture():
    """forge(infile, out, set=(), delete=(), sign=(), clear_sigs=False, dup_sig=False)."""
    return forge
