"""Output files of the commands that run long (`baton replay`, `baton export`): checked before the run,
so that a bad path fails at once rather than after the work."""

from __future__ import annotations

import os
from pathlib import Path


def unwritable(target: str | Path) -> str | None:
    """Why ``target`` cannot be written, or None. The message names ``target`` as given."""
    path = Path(target)
    if path.is_dir():
        return f"{target}: cannot write: is a directory"
    if not path.parent.is_dir():
        return f"{target}: cannot write: no such directory {path.parent}"
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"{target}: cannot write: permission denied"
    return None


def write_failed(target: str | Path, err: OSError) -> str:
    """The message for a write that failed after all."""
    return f"{target}: cannot write: {err.strerror or err}"
