"""Root conftest: makes tests/testlib.py importable as `testlib` for every suite."""

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent / "tests")
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
