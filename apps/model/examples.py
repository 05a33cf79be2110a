"""One labelled training message."""

from __future__ import annotations

from dataclasses import dataclass

from baton.apps.model.labels import FRUSTRATION_MAX, FRUSTRATION_MIN, INTENTS, TOPICS


@dataclass(frozen=True)
class Example:
    """A message with Baton's labels, and where it came from.

    `source` names the dataset (e.g. ``banking77``, ``hint3/curekart``); `source_label` is the row's own
    label in that dataset (several joined by ``,`` for multi-label sources).

    What a row is labelled for:
    - `topic` is None when the row carries no intent or topic annotation (GoEmotions): its empty
      `intents` is then "unknown", not "none of them", and a trainer must leave such rows out of the
      intent and topic objectives. Otherwise `intents` is the complete set (empty = no Baton intent).
    - `frustration` is None when the row carries no frustration annotation (every source but GoEmotions).
    """

    text: str
    source: str
    source_label: str
    intents: tuple[str, ...]
    topic: str | None
    frustration: float | None

    def __post_init__(self) -> None:
        unknown = [i for i in self.intents if i not in INTENTS]
        if unknown:
            raise ValueError(f"unknown intents {unknown} for {self.source} {self.source_label!r}")
        if len(set(self.intents)) != len(self.intents):
            raise ValueError(f"repeated intents {self.intents} for {self.source} {self.source_label!r}")
        if self.topic is not None and self.topic not in TOPICS:
            raise ValueError(f"unknown topic {self.topic!r} for {self.source} {self.source_label!r}")
        if self.frustration is not None and not FRUSTRATION_MIN <= self.frustration <= FRUSTRATION_MAX:
            raise ValueError(f"frustration {self.frustration} out of range for {self.source}")
        if self.topic is None and self.intents:
            raise ValueError(f"intents without a topic for {self.source} {self.source_label!r}")
