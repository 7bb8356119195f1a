"""dvc.yaml, params.yaml, the CLI, .ci/run and README must agree with each other."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml

from stages.cli import main
from stages.params import SECTIONS, load_all


@pytest.fixture(scope="module")
def dvc(repo_root):
    return yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]


@pytest.fixture(scope="module")
def params(repo_root):
    return yaml.safe_load((repo_root / "params.yaml").read_text())


# shared plumbing, deliberately not listed as deps (see the note at the top of dvc.yaml)
PLUMBING = {"stages/io.py", "stages/params.py", "stages/cli.py"}


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
        command = main.commands.get(argv[1])
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


def test_each_stage_depends_on_its_own_module_and_the_llm_engine_where_used(dvc, repo_root):
    for name, stage in dvc.items():
        deps = set(_paths(stage.get("deps")))
        modules = [d for d in deps if d.startswith("stages/")]
        assert modules, f"{name}: lists no stage module"
        for module in modules:
            source = (repo_root / module).read_text()
            # every stage module it imports, shared plumbing aside, must be a dependency too
            for imported in set(re.findall(r"from stages\.(\w+) import|from stages import (\w+)", source)):
                dep = f"stages/{''.join(imported)}.py"
                if dep not in PLUMBING:
                    assert dep in deps, f"{name}: {module} imports {dep}, which is not in its deps"
        for prompt in re.findall(r"prompts/\S+", stage["cmd"]):
            assert prompt in deps, f"{name}: reads {prompt} without listing it"


def test_ci_runs_the_test_command_written_in_the_readme(repo_root):
    readme = (repo_root / "README.md").read_text()
    ci = (repo_root / ".ci/run").read_text()
    assert "make setup" in readme and "make test" in readme
    assert re.search(r"^make setup$", ci, re.M) and re.search(r"^make test$", ci, re.M)
