"""The report's baseline side read at a git revision through real DVC, against the working tree.

A temp git+dvc repo: metrics/eval.json and params.yaml tracked in git, metrics/predictions.jsonl a
DVC output (`dvc add`, data in .dvc/cache), committed; then all three are changed in the working
tree. The baseline comes from `dvc.api.read(..., rev="HEAD")`, the current side from the files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gabarito.io import InputError
from gabarito.tools import report as rp

PATHS = {"metrics": "metrics/eval.json", "predictions": "metrics/predictions.jsonl", "params": "params.yaml",
         "train": "metrics/train.json"}


def _write(repo: Path, right: list[bool], r: int) -> None:
    n = len(right)
    acc = round(sum(right) / n, 6)
    (repo / "metrics").mkdir(exist_ok=True)
    (repo / "metrics/eval.json").write_text(json.dumps(
        {"finetuned": {"accuracy": acc, "letter": {"accuracy": acc, "n": n, "invalid_rate": 0.0}}}))
    (repo / "metrics/predictions.jsonl").write_text("".join(
        json.dumps({"id": f"q{i}", "model": "finetuned", "mode": "letter", "correct": ok, "label": "A",
                    "prediction": "A" if ok else "B"}) + "\n" for i, ok in enumerate(right)))
    (repo / "params.yaml").write_text(f"train:\n  lora:\n    r: {r}\n")


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    (home / "dvc-global").mkdir(parents=True)
    (home / "dvc-global" / "config").write_text("[core]\n    analytics = false\n    check_update = false\n")
    # dvc runs in this process (dvc.api) and as a subprocess: both see a temp HOME and no user config
    for key in [k for k in os.environ if k.startswith(("DVC_", "GIT_"))]:  # e.g. a GIT_DIR of the caller
        monkeypatch.delenv(key)
    for key, value in {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # the venv's dvc
                       "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                       "XDG_CACHE_HOME": str(home / ".cache"), "DVC_NO_ANALYTICS": "1", "DVC_GLOBAL_CONFIG_DIR": str(home / "dvc-global"),
                       "DVC_SYSTEM_CONFIG_DIR": str(home / "dvc-system"),
                       "DVC_SITE_CACHE_DIR": str(home / "dvc-site-cache"), "GIT_CONFIG_NOSYSTEM": "1",
                       "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                       "GIT_COMMITTER_EMAIL": "t@t"}.items():
        monkeypatch.setenv(key, value)
    repo = tmp_path / "repo"
    repo.mkdir()

    def run(*cmd: str) -> None:
        proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, f"{cmd}: {proc.stdout}{proc.stderr}"

    run("git", "init", "-q")
    run("dvc", "init", "-q")
    _write(repo, [i < 5 for i in range(10)], r=16)             # HEAD: 5 of 10 right, r=16
    run("dvc", "add", "-q", "metrics/predictions.jsonl")
    run("git", "add", "-A")
    run("git", "commit", "-q", "-m", "baseline")
    _write(repo, [0 < i < 8 for i in range(10)], r=8)  # working tree: 7 right (3 fixed, 1 broken)
    return repo


def test_report_of_the_working_tree_against_head(repo):
    base = rp.load_side(rp.revision_reader("HEAD", repo=str(repo)), label="HEAD", **PATHS)
    cur = rp.load_side(rp.workspace_reader(repo), label="workspace", **PATHS)
    assert base["params"] == {"train": {"lora": {"r": 16}}} and cur["params"] == {"train": {"lora": {"r": 8}}}
    assert base["train"] is None  # not at that revision: optional, so None, not an error
    assert sum(r["correct"] for r in base["predictions"]) == 5  # the DVC output, read from the cache at HEAD

    report = rp.build_report(base, cur, labels=("HEAD", "workspace"), baseline_rev="HEAD")
    row = report["accuracy"][0]
    assert (row["a"], row["b"], row["delta"]) == (0.5, 0.7, 0.2)
    assert (row["paired"]["fixed"], row["paired"]["broken"]) == (3, 1)
    assert report["params"] == [{"key": "train.lora.r", "a": 16, "b": 8, "change": "changed"}]
    md = rp.render_markdown(report)
    assert "| finetuned | letter | 50.00% | 70.00% | +20.00 pp |" in md and "`dvc plots diff HEAD`" in md


def test_unknown_revision_is_an_error_a_person_can_act_on(repo):
    with pytest.raises(InputError, match="unknown revision 'no-such-branch'"):
        rp.load_side(rp.revision_reader("no-such-branch", repo=str(repo)), label="x", metrics=PATHS["metrics"])


def test_report_command_markdown_and_html(repo, monkeypatch):
    from click.testing import CliRunner

    from gabarito.cli import main

    monkeypatch.chdir(repo)
    (repo / "params.yaml").write_text("train:\n  lora:\n    r: 8\n")
    md = CliRunner().invoke(main, ["report", "HEAD"])
    assert md.exit_code == 0, md.output
    assert "| finetuned | letter | 50.00% | 70.00% | +20.00 pp |" in md.output
    html = CliRunner().invoke(main, ["report", "HEAD", "--html", "--out", "report.html"])
    assert html.exit_code == 0, html.output
    page = (repo / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    bad = CliRunner().invoke(main, ["report", "no-such-branch"])
    assert bad.exit_code == 1 and "unknown revision 'no-such-branch'" in bad.output and "Traceback" not in bad.output
