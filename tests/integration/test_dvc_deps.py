"""Real `dvc status` on a copy of this repository: dvc.lock matches the code, and editing a module
marks exactly the stages that run it as changed (so `dvc repro` reruns them and nothing else)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml


def _copy_tracked(root: Path, dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        src = root / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def _code_changes(repo: Path) -> dict[str, set[str]]:
    """stage -> the project code (stages/, gabarito/), prompts/ and configs/ files that dvc says changed."""
    out = subprocess.run(["dvc", "status", "--json"], cwd=repo, capture_output=True, text=True, check=True).stdout
    changed = {}
    for stage, entries in json.loads(out or "{}").items():
        for entry in entries:
            if isinstance(entry, dict):
                deps = entry.get("changed deps", {})
                code = {d for d, how in deps.items() if d.startswith(("stages/", "gabarito/", "prompts/", "configs/"))}
                if code:
                    changed[stage.split(":")[-1]] = code
    return changed


@pytest.fixture(scope="module")
def repo(tmp_path_factory, repo_root):
    if shutil.which("dvc") is None:
        pytest.skip("dvc is not on PATH")
    dest = tmp_path_factory.mktemp("clone")
    _copy_tracked(repo_root, dest)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


def test_dvc_lock_matches_the_committed_code(repo):
    assert _code_changes(repo) == {}, "dvc.lock is stale: run `dvc repro` and commit dvc.lock"


def _edit(repo: Path, module: str):
    path = repo / module
    before = path.read_bytes()
    path.write_bytes(before + b"\n# edited by the test\n")
    return lambda: path.write_bytes(before)


def test_editing_shared_io_marks_every_stage(repo):
    restore = _edit(repo, "gabarito/io.py")
    try:
        stages = set(yaml.safe_load((repo / "dvc.yaml").read_text())["stages"])
        assert set(_code_changes(repo)) == stages
    finally:
        restore()


def test_editing_the_report_marks_no_stage(repo):
    """report/compare read metrics; they shape no pipeline output, so editing them reruns nothing."""
    restore = _edit(repo, "gabarito/tools/report.py")
    try:
        assert _code_changes(repo) == {}
    finally:
        restore()


def test_editing_the_llm_engine_marks_translate_and_synthesize_only(repo):
    restore = _edit(repo, "gabarito/llm.py")
    try:
        assert set(_code_changes(repo)) == {"translate", "synthesize"}
    finally:
        restore()


def test_editing_a_stage_marks_that_stage_only(repo):
    """A stage is no library: before the move, editing base-model's module reran format, train and evaluate,
    which imported their model loading from it."""
    restore = _edit(repo, "stages/base_model.py")
    try:
        assert _code_changes(repo) == {"base_model": {"stages/base_model.py"}}
    finally:
        restore()


def test_editing_model_loading_marks_the_stages_that_load_a_model(repo):
    restore = _edit(repo, "gabarito/modeling.py")
    try:
        assert set(_code_changes(repo)) == {"base_model", "format", "train", "evaluate"}
    finally:
        restore()
