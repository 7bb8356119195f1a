"""`make profile PROFILE=...` as README says: overlay merged, validated and written; offline gives back
the shipped params.yaml; a bad profile changes nothing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def repo(tmp_path, repo_root):
    out = tmp_path / "repo"
    out.mkdir()
    for name in ("Makefile", "params.yaml", "pyproject.toml", "requirements.lock"):
        shutil.copy2(repo_root / name, out / name)
    shutil.copytree(repo_root / "profiles", out / "profiles")
    return out


def make(repo: Path, repo_root: Path, profile: str) -> subprocess.CompletedProcess:
    venv = Path(sys.executable).parent.parent
    # -o: the venv's install and the plots template count as up to date (make must not rebuild them in
    # this copy, which holds no scripts/); the console script imports the code under test
    return subprocess.run(["make", "-o", str(venv / "bin" / "gabarito"), "-o", ".dvc/tmp/plots/offline.html",
                           "profile", f"PROFILE={profile}", f"VENV={venv}"], cwd=repo, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(repo_root)})


def test_make_profile_thesis_then_offline(repo, repo_root):
    shipped = (repo / "params.yaml").read_bytes()
    out = make(repo, repo_root, "thesis")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "is now the 'thesis' profile (21 values changed" in out.stderr
    text = (repo / "params.yaml").read_text(encoding="utf-8")
    assert "# profile: thesis\n" in text and "    bf16: true\n" in text and "  source: hub " in text
    out = make(repo, repo_root, "offline")
    assert out.returncode == 0, out.stdout + out.stderr
    assert (repo / "params.yaml").read_bytes() == shipped


@pytest.mark.parametrize(("profile", "overlay", "message"), [
    ("thesys", None, "no profile 'thesys' (profiles/thesys.yaml not found); did you mean 'thesis'?"),
    ("mylab", "train:\n  sft:\n    learnig_rate: 1.0e-4\n", "train.sft.learnig_rate: unknown key (did you mean "
                                                              "'learning_rate'?)"),
])
def test_a_bad_profile_fails_and_leaves_params_yaml_alone(repo, repo_root, profile, overlay, message):
    if overlay:
        (repo / "profiles" / f"{profile}.yaml").write_text(overlay, encoding="utf-8")
    before = (repo / "params.yaml").read_bytes()
    out = make(repo, repo_root, profile)
    assert out.returncode != 0
    assert message in out.stderr and "Traceback" not in out.stderr
    assert (repo / "params.yaml").read_bytes() == before


def test_make_profile_small_keeps_the_users_sources(repo, repo_root):
    """Issue 22: `make profile PROFILE=small` dropped the user's two ENEM sources from mcq.sources and left
    the toy's learning-rate comment beside the small model's rate."""
    mine = ("[{path: data/raw/mcq/exemplo.jsonl}, {path: data/raw/mcq/enem2024.jsonl, source: enem2024}, "
            "{path: data/raw/mcq/enem2022.csv, source: enem2022}]")
    text = (repo / "params.yaml").read_text(encoding="utf-8")
    text, n = re.subn(r"^(mcq:.*\n  sources: )\[.*?\](?=  #|$)", lambda m: m.group(1) + mine, text, count=1, flags=re.M)
    assert n == 1
    (repo / "params.yaml").write_text(text, encoding="utf-8")
    out = make(repo, repo_root, "small")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "your data (mcq, exams, ingest.urls/splits) kept as it was" in out.stderr
    small = (repo / "params.yaml").read_text(encoding="utf-8")
    assert f"  sources: {mine}" in small
    assert "    learning_rate: 0.0002       # the usual QLoRA rate for a pretrained base" in small
    assert "high because the base is random" not in small
    out = make(repo, repo_root, "offline")
    assert out.returncode == 0, out.stdout + out.stderr
    assert (repo / "params.yaml").read_text(encoding="utf-8") == text
