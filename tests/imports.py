"""The project's import graph, read from the source (top-level and lazy imports): which project files a
module runs. dvc.yaml's code deps are derived from it (test_drift), and the layering is checked on it
(test_layers)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGES = ("stages", "gabarito")


def module_files(dotted: str, root: Path) -> set[str]:
    """The files importing ``dotted`` runs: the module (or package ``__init__``) and every package
    ``__init__.py`` above it (``gabarito.tools.ask`` runs gabarito/__init__.py and gabarito/tools/__init__.py)."""
    parts = dotted.split(".")
    files = {"/".join(parts[:i]) + "/__init__.py" for i in range(1, len(parts))}
    for candidate in ("/".join(parts) + ".py", "/".join(parts) + "/__init__.py"):
        if (root / candidate).is_file():
            files.add(candidate)
    return {f for f in files if (root / f).is_file()}


def imported_modules(path: Path) -> set[str]:
    """The project modules (dotted) a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] in PACKAGES:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}  # ``from gabarito import io``: a module
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] in PACKAGES}
    return found


def project_imports(path: Path, root: Path) -> set[str]:
    """The project files a file's imports run (``stages/*.py``, ``gabarito/**/*.py``)."""
    return {f for m in imported_modules(path) for f in module_files(m, root)}


def code_of(entry: str, root: Path) -> set[str]:
    """Every project module whose code can run from ``entry``: the transitive closure of imports."""
    seen, todo = set(), [entry]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += project_imports(root / module, root)
    return seen
