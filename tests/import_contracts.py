"""Baton's import contracts, checked over the source (run by `make lint` and tests/test_layers.py).

Layers, bottom to top; a module may import its own layer and the ones below, never above:

    contract <- domain <- policies <- workflows <- config <- classifier <- store <- activities <- worker <- apps

Besides the layers: the pure layers (contract, domain, policies, workflows) import no I/O library;
importing the gateway loads no workflow, activity or SQLAlchemy module; Baton's modules import in
no circle. Every ``import`` counts, also those inside functions, except where a contract says
"loads" (what runs at import time).

Usage: python -m tests.import_contracts [ROOT]   exits 1 and lists each violation.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("contract", ("baton.contract",)),
    ("domain", ("baton.domain",)),
    ("policies", ("baton.policies",)),
    ("workflows", ("baton.workflows",)),
    ("config", ("baton.settings", "baton.logging", "baton")),
    ("classifier", ("baton.classifier",)),
    ("store", ("baton.store",)),
    ("activities", ("baton.activities",)),
    ("worker", ("baton.worker",)),
    ("apps", ("baton.apps",)),
]
PURE = ("baton.contract", "baton.domain", "baton.policies", "baton.workflows")
IO_LIBRARIES = (
    "sqlalchemy", "alembic", "asyncpg", "aiosqlite", "httpx", "openai", "fastapi", "starlette", "uvicorn",
    "matplotlib", "structlog", "temporalio.client", "temporalio.worker", "temporalio.testing",
    "socket", "subprocess", "urllib", "random", "time",
)  # fmt: skip
# Only what the contract layer may use of the SDK: the activity decorator and search-attribute keys.
SDK_IN_PURE = {
    "baton.contract": ("temporalio.activity", "temporalio.common"),
    "baton.domain": (),
    "baton.policies": (),
}
GATEWAY = "baton.apps.gateway"
GATEWAY_NEVER_LOADS = ("baton.workflows", "baton.activities", "baton.store", "sqlalchemy")


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    imports: list[tuple[str, int, bool]] = field(default_factory=list)  # (module, line, at import time)


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def discover(root: Path) -> dict[str, Module]:
    """Every module of the installed package, named as pyproject's package-dir maps its folders."""
    project = tomllib.loads((root / "pyproject.toml").read_text())
    package_dir: dict[str, str] = project["tool"]["setuptools"]["package-dir"]
    modules: dict[str, Module] = {}
    for package, folder in package_dir.items():
        directory = root / folder
        for path in sorted(directory.glob("*.py")):
            is_package = path.name == "__init__.py"
            name = package if is_package else f"{package}.{path.stem}"
            modules[name] = Module(name, path, is_package)
    for module in modules.values():
        module.imports = list(_imports(module, modules))
    return modules


def _imports(module: Module, modules: dict[str, Module]) -> Iterator[tuple[str, int, bool]]:
    tree = ast.parse(module.path.read_text(encoding="utf-8"), str(module.path))
    top_level = {id(node) for node in _top_level_statements(tree.body)}
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    for node in ast.walk(tree):
        at_import = id(node) in top_level
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, at_import
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                internal = _within(base, "baton")
                yield (candidate if candidate in modules or not internal else base), node.lineno, at_import


def _top_level_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that run when the module is imported (not inside functions or TYPE_CHECKING)."""
    for node in body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        yield node
        if isinstance(node, ast.If | ast.Try | ast.With | ast.ClassDef):
            children = [*getattr(node, "body", []), *getattr(node, "orelse", []), *getattr(node, "finalbody", [])]
            for handler in getattr(node, "handlers", []):
                children.extend(handler.body)
            yield from _top_level_statements(children)


def layer_of(name: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer index): the longest prefix wins
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if _within(name, prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return best[1] if best else None


def unmapped_packages(root: Path) -> list[str]:
    """Package folders under a mapped folder that pyproject does not install (package-dir and packages)."""
    setuptools = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dir: dict[str, str] = setuptools["package-dir"]
    folders = {Path(folder) for folder in package_dir.values()}
    listed = set(setuptools["packages"])
    problems = [f"pyproject: {name} is mapped in package-dir but not listed in packages" for name in package_dir]
    problems = [p for p, name in zip(problems, package_dir, strict=True) if name not in listed]
    for folder in sorted(folders):
        for init in sorted((root / folder).glob("*/__init__.py")):
            sub = init.parent.relative_to(root)
            if sub not in folders:
                problems.append(
                    f"pyproject: the package folder {sub} is not installed (add it to package-dir and packages)"
                )
    return problems


def check(root: Path = ROOT) -> list[str]:
    modules = discover(root)
    problems: list[str] = unmapped_packages(root)
    for module in modules.values():
        where = f"{module.path.relative_to(root)}"
        own = layer_of(module.name)
        for target, line, _ in module.imports:
            if _within(target, "baton"):
                theirs = layer_of(target)
                if own is not None and theirs is not None and theirs > own:
                    problems.append(
                        f"{where}:{line}: layers: {module.name} ({LAYERS[own][0]}) imports {target} "
                        f"({LAYERS[theirs][0]}), a layer above it"
                    )
                continue
            for pure in PURE:
                if not _within(module.name, pure):
                    continue
                if any(_within(target, lib) for lib in IO_LIBRARIES):
                    problems.append(f"{where}:{line}: pure: {module.name} imports the I/O library {target}")
                allowed = SDK_IN_PURE.get(pure)
                if (
                    allowed is not None
                    and _within(target, "temporalio")
                    and not any(_within(target, a) for a in allowed)
                ):
                    problems.append(f"{where}:{line}: pure: {module.name} imports {target}")
    problems += _gateway_loads(modules, root)
    problems += _cycles(modules)
    return problems


def _loaded_by(start: str, modules: dict[str, Module]) -> dict[str, str]:
    """Modules importing `start` loads (package __init__ files included), each with the module that loads it."""
    seen: dict[str, str] = {}
    stack = [start]
    while stack:
        name = stack.pop()
        module = modules.get(name)
        if module is None:
            continue
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        for target in [*parents, *(t for t, _, at_import in module.imports if at_import)]:
            if target not in seen:
                seen[target] = name
                stack.append(target)
    return seen


def _gateway_loads(modules: dict[str, Module], root: Path) -> list[str]:
    loaded = _loaded_by(GATEWAY, modules)
    return [
        f"{modules[by].path.relative_to(root)}: gateway: importing {GATEWAY} loads {name} (through {by})"
        for name, by in sorted(loaded.items())
        if any(_within(name, never) for never in GATEWAY_NEVER_LOADS)
    ]


def _cycles(modules: dict[str, Module]) -> list[str]:
    """Circles of imports between Baton's modules, deferred ones included (Tarjan's strongly connected
    components): a deferred import hides a circle from Python, not from a reader."""
    graph = {name: sorted({t for t, _, _ in m.imports if t in modules and t != name}) for name, m in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return [f"cycle: {' <-> '.join(component)} import each other" for component in found]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]).resolve() if args else ROOT
    problems = check(root)
    for problem in problems:
        print(problem)
    contracts = len(LAYERS) - 1
    print(f"import contracts: {'broken' if problems else 'kept'} ({contracts} layer boundaries, pure layers, "
          f"gateway imports, no cycles; {len(problems)} violations)")  # fmt: skip
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
