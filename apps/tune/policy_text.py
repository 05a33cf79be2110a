"""The proposals written into the policy file's own text, and shown as a unified diff.

The text is edited where the value stands (found through the YAML node's position), so comments, order and
layout stay as the support team wrote them, and the diff shows only the lines that change. A parameter the
trigger does not set yet (an intent trigger without ``min_probability``) is added to its ``when``.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import yaml

from baton.apps.tune.search import Proposal


class PolicyTextError(ValueError):
    """The policy text cannot be edited where the proposal points."""


def _value_text(value: float | int) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _mapping_get(node: yaml.Node, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
    return None


def _when_node(root: yaml.Node, trigger_id: str) -> yaml.MappingNode:
    triggers = _mapping_get(root, "triggers")
    if triggers is None or not isinstance(triggers[1], yaml.SequenceNode):
        raise PolicyTextError("the policy has no `triggers` list")
    for item in triggers[1].value:
        ident = _mapping_get(item, "id")
        if ident is not None and ident[1].value == trigger_id:
            when = _mapping_get(item, "when")
            if when is None or not isinstance(when[1], yaml.MappingNode):
                raise PolicyTextError(f"trigger {trigger_id}: no `when` mapping")
            return when[1]
    raise PolicyTextError(f"no trigger with id {trigger_id!r} in the policy text")


def _edit(text: str, proposal: Proposal) -> str:
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    when = _when_node(root, proposal.trigger)
    new = _value_text(proposal.proposed)
    found = _mapping_get(when, proposal.parameter)
    if found is not None:
        value = found[1]
        return text[: value.start_mark.index] + new + text[value.end_mark.index :]
    if when.flow_style:  # {kind: intent, intent: x}: add before the closing brace
        close = text.rindex("}", when.start_mark.index, when.end_mark.index)
        return text[:close] + f", {proposal.parameter}: {new}" + text[close:]
    # Block style: a line of its own after the mapping's last entry, indented as its keys.
    last_key, last_value = when.value[-1]
    indent = " " * last_key.start_mark.column
    line_end = text.find("\n", last_value.end_mark.index - 1)
    line_end = len(text) if line_end < 0 else line_end
    return text[:line_end] + f"\n{indent}{proposal.parameter}: {new}" + text[line_end:]


def proposed_text(text: str, proposals: Sequence[Proposal]) -> str:
    """The policy text with every proposal applied (one at a time: positions are read afresh each time)."""
    for proposal in proposals:
        text = _edit(text, proposal)
    return text


def unified_diff(before: str, after: str, path: str) -> str:
    """A diff `git apply` (relative paths, from where they are relative to) or `patch -p1` takes as it is."""
    old, new = (f"a/{path}", f"b/{path}") if not path.startswith("/") else (path, path)
    lines = difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True), old, new)
    return "".join(lines)
