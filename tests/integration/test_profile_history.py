"""gabarito/tools/profile.py against git history: the thesis overlay gives the params of the thesis profile
as a whole file, before profiles became overlays (read with `git show`)."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from gabarito.params import COSMOS_QA_PARQUET
from gabarito.tools import profile as pf

# the thesis profile as a whole file, before profiles became overlays (commit 3afd287)
OLD_THESIS_COMMIT = "3afd287"


REMOVED = ("evaluate", "bootstrap_samples")  # the one key removed since


def test_thesis_overlay_gives_the_thesis_params_of_the_whole_file_profile(repo_root):
    old = subprocess.run(["git", "show", f"{OLD_THESIS_COMMIT}:profiles/thesis.yaml"], cwd=repo_root,
                         capture_output=True, text=True)
    if old.returncode:
        pytest.skip(f"commit {OLD_THESIS_COMMIT} is not in this clone's history")
    old_params = yaml.safe_load(old.stdout)
    new_params = pf.load_profile("thesis", repo_root / "profiles")
    text, _ = pf.apply_profile("thesis", repo_root / "params.yaml", repo_root / "profiles")
    applied = yaml.safe_load(text)
    for got in (new_params, applied):
        # keys added since then take their shipped value; every key of the old file has its old value
        old_leaves, got_leaves = pf._leaves(old_params, None), pf._leaves(got, None)
        # format.letters became the alphabet for 2-10 options (issue 14); A-D are still its first four
        assert got_leaves.pop(("format", "letters"))[:4] == old_leaves.pop(("format", "letters"))
        # the hub pull was unpinned (main, a loading script only); it now reads cosmos_qa's Parquet conversion
        assert old_leaves.pop(("ingest", "hub_revision")) is None
        assert got_leaves.pop(("ingest", "hub_revision")) == COSMOS_QA_PARQUET
        # the percentile bootstrap gave way to Wilson/exact intervals from scipy (issue 22 §3)
        assert old_leaves.pop(REMOVED) == 1000 and REMOVED not in got_leaves
        assert {k: v for k, v in got_leaves.items() if k in old_leaves} == old_leaves
        assert pf._diff({**got}, got) == []
    assert set(pf._leaves(old_params, None)) - {REMOVED} <= set(pf._leaves(applied, None))
