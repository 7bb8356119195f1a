"""dvc.yaml, params.yaml, the CLI, .ci/run and README must agree with each other."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from gabarito.cli import main
from gabarito.params import SECTIONS, load_all
from tests.imports import PACKAGES, code_of, module_files


@pytest.fixture(scope="module")
def dvc(repo_root):
    return yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]


@pytest.fixture(scope="module")
def params(repo_root):
    return yaml.safe_load((repo_root / "params.yaml").read_text())


def _paths(entries):
    for entry in entries or []:
        yield next(iter(entry)) if isinstance(entry, dict) else entry


def test_every_params_section_loads(repo_root):
    loaded = load_all(repo_root / "params.yaml")
    assert set(loaded) == set(SECTIONS)


def test_every_cmd_calls_an_existing_subcommand_with_existing_options(dvc):
    for name, stage in dvc.items():
        argv = shlex.split(stage["cmd"])
        assert argv[0] == "gabarito", name
        command = main.get_command(None, argv[1])
        assert command is not None, f"{name}: no subcommand {argv[1]}"
        known = {opt for p in command.params for opt in getattr(p, "opts", [])}
        used = [a for a in argv[2:] if a.startswith("--")]
        assert set(used) <= known, f"{name}: unknown options {set(used) - known}"
        required = {p.opts[0] for p in command.params if getattr(p, "required", False)}
        assert required <= set(used), f"{name}: missing required {required - set(used)}"


def test_every_listed_param_exists(dvc, params):
    for name, stage in dvc.items():
        for key in stage.get("params", []):
            node = params
            for part in key.split("."):
                assert isinstance(node, dict) and part in node, f"{name}: params key {key} not in params.yaml"
                node = node[part]


def test_every_dep_exists_or_is_produced_by_a_stage(dvc, repo_root):
    outs = [p for s in dvc.values() for field in ("outs", "metrics", "plots") for p in _paths(s.get(field))]
    for name, stage in dvc.items():
        for dep in _paths(stage.get("deps")):
            produced = any(dep == o or dep.startswith(o.rstrip("/") + "/") for o in outs)
            assert produced or (repo_root / dep).exists(), f"{name}: dep {dep} neither exists nor is produced"


def stage_code(cmd: str, root: Path) -> set[str]:
    """The project code a dvc.yaml ``cmd`` runs: cli.py's group, and the subcommand's module."""
    from gabarito.cli import COMMANDS

    argv = shlex.split(cmd)
    module = COMMANDS[argv[1]].split(":")[0].replace(".", "/") + ".py"
    return code_of("gabarito/cli.py", root) | code_of(module, root) | module_files(COMMANDS[argv[1]].split(":")[0], root)


def test_each_stage_lists_exactly_the_project_code_it_runs(dvc, repo_root):
    """Editing a module reruns the stages that run it, and no others. No exemptions: editing
    io.py or params.py reruns everything, which is right, since their code shapes every output."""
    for name, stage in dvc.items():
        listed = {d for d in _paths(stage.get("deps")) if d.split("/")[0] in PACKAGES}
        runs = stage_code(stage["cmd"], repo_root)
        assert not runs - listed, f"{name}: runs {sorted(runs - listed)} without listing it in deps"
        assert not listed - runs, f"{name}: lists {sorted(listed - runs)}, which it never runs"
        for prompt in re.findall(r"prompts/\S+", stage["cmd"]):
            assert prompt in _paths(stage.get("deps")), f"{name}: reads {prompt} without listing it"


def test_the_import_scan_sees_lazy_and_package_imports(tmp_path):
    (tmp_path / "stages").mkdir()
    (tmp_path / "gabarito/tools").mkdir(parents=True)
    for name, body in {"a": "from stages import b\n", "b": "def f():\n    from stages.c import x\n",
                       "c": "import stages.d\n", "d": "from gabarito import lib\n", "e": ""}.items():
        (tmp_path / "stages" / f"{name}.py").write_text(body)
    (tmp_path / "gabarito/lib.py").write_text("from gabarito.tools.t import y\n")
    (tmp_path / "gabarito/tools/t.py").write_text("")
    for init in ("stages", "gabarito", "gabarito/tools"):
        (tmp_path / init / "__init__.py").write_text("")
    assert code_of("stages/a.py", tmp_path) == {f"stages/{m}.py" for m in "abcd"} | {
        "stages/__init__.py", "gabarito/__init__.py", "gabarito/lib.py", "gabarito/tools/__init__.py",
        "gabarito/tools/t.py"}


def test_ci_runs_the_test_command_written_in_the_readme(repo_root):
    readme = (repo_root / "README.md").read_text()
    ci = (repo_root / ".ci/run").read_text()
    assert "make setup" in readme and "make test" in readme
    assert re.search(r"^make setup$", ci, re.M) and re.search(r"^make test$", ci, re.M)
