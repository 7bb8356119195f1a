"""The house: stages apart from the library, tools apart from both, and imports that only go down.

Floors, from the bottom: the library (``gabarito/*.py``) < the stages (``stages/*.py``) and the tools
(``gabarito/tools/*.py``) < ``gabarito/cli.py``, which only names the others (by string, imported on use).
"""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from tests.imports import imported_modules, module_files

ROOT = Path(__file__).resolve().parents[2]


def modules(root: Path = ROOT) -> list[str]:
    files = sorted(root.glob("stages/*.py")) + sorted(root.glob("gabarito/**/*.py"))
    return [str(f.relative_to(root)) for f in files if f.name != "__init__.py"]


def floor(path: str) -> int:
    if path == "gabarito/cli.py":
        return 2
    if path.startswith(("stages/", "gabarito/tools/")):
        return 1
    return 0


def edges(root: Path = ROOT) -> set[tuple[str, str]]:
    found = set()
    for m in modules(root):
        for dotted in imported_modules(root / m):
            found |= {(m, f) for f in module_files(dotted, root) if not f.endswith("__init__.py") and f != m}
    return found


def test_stages_are_exactly_the_dvc_stages_named_after_them():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert sorted(p.stem for p in (ROOT / "stages").glob("*.py") if p.name != "__init__.py") == sorted(stages)


def test_no_import_goes_up_a_floor_or_from_one_stage_to_another():
    graph = edges()
    assert graph, "the scan found no imports at all"
    up = sorted((a, b) for a, b in graph if floor(b) > floor(a))
    assert up == [], f"imports from a lower floor to a higher one: {up}"
    sideways = sorted((a, b) for a, b in graph if floor(a) == floor(b) == 1)
    assert sideways == [], f"a stage or tool imports another stage or tool: {sideways}"


def test_no_import_circle():
    graph: dict[str, set[str]] = {}
    for a, b in edges():
        graph.setdefault(a, set()).add(b)
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            assert state.get(nxt) != 1, f"import circle: {' -> '.join(path + [node, nxt])}"
            if nxt not in state:
                visit(nxt, path + [node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def test_the_checks_see_a_bad_house(tmp_path):
    """The scan is not blind: a stage importing a stage, and a library module importing a tool, are seen."""
    (tmp_path / "stages").mkdir()
    (tmp_path / "gabarito/tools").mkdir(parents=True)
    (tmp_path / "stages/a.py").write_text("from stages.b import x\n")
    (tmp_path / "stages/b.py").write_text("def f():\n    from gabarito import lib\n")
    (tmp_path / "gabarito/lib.py").write_text("from gabarito.tools.t import y\n")
    (tmp_path / "gabarito/tools/t.py").write_text("")
    graph = edges(tmp_path)
    assert ("stages/a.py", "stages/b.py") in graph
    assert ("stages/b.py", "gabarito/lib.py") in graph
    assert ("gabarito/lib.py", "gabarito/tools/t.py") in graph


# --- size and single definitions -------------------------------------------------------------------
CODE = ("stages", "gabarito", "scripts", "benchmarks")  # project code: what stages, tools and people run
MAX_FUNCTION_LINES = 80  # def line to last line, docstring included: about a screen


def code_files(root: Path = ROOT) -> list[Path]:
    return [p for folder in CODE for p in sorted((root / folder).rglob("*.py"))]


def long_functions(root: Path = ROOT) -> list[str]:
    """``path:line name (N lines)`` of every function (methods and nested ones too) over MAX_FUNCTION_LINES."""
    found = []
    for path in code_files(root):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_over_80_lines():
    """A function is read in one sitting: a longer one is split into named steps."""
    found = long_functions()
    assert found == [], (f"functions over {MAX_FUNCTION_LINES} lines; split them into steps with names:\n  "
                         + "\n  ".join(found))


def test_the_length_check_sees_a_long_method(tmp_path):
    """The scan is not blind: an async method of MAX_FUNCTION_LINES + 1 lines, in a class, is seen."""
    (tmp_path / "benchmarks").mkdir()
    body = "".join(f"        x = {i}\n" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "benchmarks/b.py").write_text(f"class C:\n    async def long(self):\n{body}\n\ndef short():\n    pass\n",
                                              encoding="utf-8")
    assert long_functions(tmp_path) == [f"benchmarks/b.py:2 long ({MAX_FUNCTION_LINES + 1} lines)"]


def test_the_letter_alphabet_is_written_in_one_file():
    """format.letters' default, the letters of the user's files and of exam alternatives, and the regexes
    that read them all come from one LETTERS: a second copy would drift from it."""
    alphabet = "ABCDEFGHIJ"
    holding = [str(p.relative_to(ROOT)) for p in code_files() if alphabet in p.read_text(encoding="utf-8")]
    assert len(holding) == 1, f"{alphabet!r} is written in {holding or 'no file'}; write it once and import it"
