"""Which model scores a new conversation: the deployment's models folder and its registry file.

A deployment's own models (`baton model train --from-store`/`--from-jsonl`) live in the models folder
(`BATON_MODELS_DIR`, default `.state/models/`), one subfolder per version, each a complete model folder
that `Classifier.load` checks like the shipped one. `registry.json` in the same folder names the promoted
version and the ones promoted before it (for `baton model rollback`); without it, or with no version
promoted, the shipped model in classifier/weights/ is the current one.

New conversations are scored by the current version and pin it (state.model_version); a running
conversation keeps the version it pinned, as long as that version's folder is there. The registry file is
read again whenever its modification time, size or inode changed, checked at each score without a pinned
version, i.e. at the first message of each new conversation: a promotion reaches a running worker and
gateway with the next new conversation, without a restart.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from baton.classifier.model import META_FILE, WEIGHTS_DIR, Classifier, ModelError, SecondRead, default_classifier
from baton.contract.scoring import MessageScores

REGISTRY_FILE = "registry.json"
_log = logging.getLogger(__name__)
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class RegistryError(ValueError):
    """A version that cannot be promoted, or nothing to roll back to."""


@dataclass(frozen=True)
class Registry:
    """The promoted version (None: the shipped model) and the versions promoted before it, oldest first."""

    current: str | None = None
    previous: tuple[str | None, ...] = ()

    def as_json(self) -> str:
        return json.dumps({"current": self.current, "previous": list(self.previous)}, indent=2) + "\n"


def read_registry(models_dir: Path) -> Registry:
    path = models_dir / REGISTRY_FILE
    if not path.is_file():
        return Registry()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Registry(current=data.get("current"), previous=tuple(data.get("previous") or ()))
    except (ValueError, AttributeError, TypeError) as err:
        raise RegistryError(f"{path}: not a registry file ({err})") from err


def write_registry(models_dir: Path, registry: Registry) -> None:
    """Written to a temporary file and renamed over the old one, so a reader never sees half a file."""
    models_dir.mkdir(parents=True, exist_ok=True)
    temporary = models_dir / f".{REGISTRY_FILE}.{os.getpid()}.tmp"
    temporary.write_text(registry.as_json(), encoding="utf-8")
    os.replace(temporary, models_dir / REGISTRY_FILE)


def shipped_version() -> str:
    return json.loads((WEIGHTS_DIR / META_FILE).read_text(encoding="utf-8"))["version"]


def model_dir(models_dir: Path, version: str) -> Path:
    if not VERSION_PATTERN.match(version):
        raise RegistryError(f"version: {version!r} is not a model version (letters, digits, '.', '_', '-')")
    return models_dir / version


def load_version(models_dir: Path, version: str) -> Classifier:
    """The model of that version: the shipped one, or a folder in the models folder (checked at load)."""
    if version == default_classifier().version:
        return default_classifier()
    directory = model_dir(models_dir, version)
    if not (directory / META_FILE).is_file():
        raise RegistryError(f"version: no model {version!r} in {models_dir} (train one with `baton model train`)")
    shipped = default_classifier()
    return Classifier.load(directory, embedding=_shared_embedding(directory, shipped))


def _shared_embedding(directory: Path, shipped: Classifier):  # -> Embedder | None
    """The shipped model's embedding object when the folder's embedding files are the same bytes (saves
    the 30 MB table per version in memory); None lets `Classifier.load` read the folder's own."""
    own = json.loads((directory / META_FILE).read_text(encoding="utf-8")).get("embedding", {})
    ships = json.loads((WEIGHTS_DIR / META_FILE).read_text(encoding="utf-8")).get("embedding", {})
    return shipped.embedding if own == ships and shipped.embedding is not None else None


def promote(models_dir: Path, version: str) -> Registry:
    """Make `version` the one new conversations use; the current one is remembered for rollback."""
    load_version(models_dir, version)  # refuses a missing or damaged model before anything changes
    registry = read_registry(models_dir)
    target = None if version == shipped_version() else version
    if target == registry.current:
        return registry
    updated = Registry(current=target, previous=(*registry.previous, registry.current))
    write_registry(models_dir, updated)
    return updated


def rollback(models_dir: Path) -> Registry:
    """Back to the version promoted before the current one."""
    registry = read_registry(models_dir)
    if not registry.previous:
        raise RegistryError(f"{models_dir / REGISTRY_FILE}: nothing to roll back to (no earlier promotion)")
    updated = Registry(current=registry.previous[-1], previous=registry.previous[:-1])
    write_registry(models_dir, updated)
    return updated


@dataclass
class ModelSelector:
    """The scorer of a deployment: the current version for new conversations, a pinned one on request.

    `version` and `score` follow the current version (re-read from the registry when its file changed);
    `for_version` gives a conversation's pinned version, loaded once and kept.
    """

    models_dir: Path
    _loaded: dict[str, Classifier] = field(default_factory=dict)
    _stamp: tuple[int, int, int] | None = None
    _current: Classifier | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # The registry's path as a string, made once: it is checked at every message.
    _registry_path: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self._registry_path = str(self.models_dir / REGISTRY_FILE)

    def _registry_stamp(self) -> tuple[int, int, int] | None:
        try:
            stat = os.stat(self._registry_path)
        except FileNotFoundError:
            return None
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def current(self) -> Classifier:
        stamp = self._registry_stamp()
        if self._current is not None and stamp == self._stamp:
            return self._current
        with self._lock:
            try:
                registry = read_registry(self.models_dir) if stamp is not None else Registry()
                self._current = self._get(registry.current) if registry.current else default_classifier()
            except (RegistryError, ModelError) as err:
                # A decision never waits on a broken registry: the shipped model scores (its version says so)
                # until the file changes again.
                _log.error("promoted model unusable; scoring with the shipped model", extra={"error": str(err)})
                self._current = default_classifier()
            self._stamp = stamp
            return self._current

    def _get(self, version: str) -> Classifier:
        if version not in self._loaded:
            self._loaded[version] = load_version(self.models_dir, version)
        return self._loaded[version]

    def for_version(self, version: str) -> Classifier | None:
        """The model of a pinned version, or None when this deployment does not have it (any more)."""
        try:
            return self._get(version)
        except (RegistryError, ModelError):
            return None

    @property
    def version(self) -> str:
        return self.current().version

    def score(self, text: str) -> MessageScores:
        return self.current().score(text)

    def staged(self, text: str) -> MessageScores | SecondRead:
        return self.current().staged(text)  # one version for both parts, even across a promotion


@cache
def selector_for(models_dir: Path) -> ModelSelector:
    """One selector per models folder per process (its loaded versions are shared)."""
    return ModelSelector(models_dir.resolve())
