"""Load policy files, naming the file, line and field of every error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from baton.policies.schema import Policy

POLICY_DIR = Path(__file__).resolve().parent


class PolicyError(ValueError):
    """A policy file that cannot be used. `problems` holds one line per error."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(problems))


def policy_path(name_or_path: str) -> Path:
    """A policy by file path, or by name from the bundled `policies/` folder."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return candidate
    return POLICY_DIR / f"{name_or_path}.yaml"


def load_policy(name_or_path: str) -> Policy:
    path = policy_path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise PolicyError(str(path), [f"{path}: cannot read: {err.strerror or err}"]) from err
    return load_policy_text(text, str(path))


def load_policy_text(text: str, source: str = "<policy>") -> Policy:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise PolicyError(source, [f"{source}{line}: invalid YAML: {getattr(err, 'problem', err)}"]) from err
    if root is None:
        raise PolicyError(source, [f"{source}:1: the file is empty"])
    lines: dict[tuple[Any, ...], int] = {}
    data = _to_python(root, (), lines)
    try:
        return Policy.model_validate(data)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            loc = _strip_union_tags(tuple(e["loc"]), data)
            line = _nearest_line(lines, loc)
            field = _format_loc(loc) or "(top level)"
            problems.append(f"{source}:{line}: {field}: {e['msg']}")
        raise PolicyError(source, problems) from err


def _to_python(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> Any:
    """Construct plain data from a composed node, recording each path's line."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _to_python(value_node, (*path, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(child, (*path, i), lines) for i, child in enumerate(node.value)]
    return yaml.SafeLoader("").construct_object(node, deep=True)


def _strip_union_tags(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """pydantic puts a discriminated union's tag (`when.intent.intent`) into
    locations; drop it so the field reads as the user wrote it."""
    kept: list[Any] = []
    node = data
    tag_skipped_at = None
    for part in loc:
        if isinstance(node, dict) and node.get("kind") == part and tag_skipped_at is not node:
            tag_skipped_at = node
            continue
        kept.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(kept)


def _nearest_line(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int:
    """The line of the field, or of its closest parent when the field is missing."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
