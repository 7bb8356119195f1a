"""README's way back (`make back REV=...`) on a fresh clone whose cache lacks the recorded outputs.

A two-stage project stands in for gabarito: `prep` is deterministic on any machine (like the data
stages), `fit` writes bytes that depend on the machine (MACHINE in the environment stands for the
CPU, BLAS and thread count that change training's floats).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.integration.test_remotes import env, run  # noqa: F401  (env is a fixture)

BACK = [sys.executable, str(Path(__file__).resolve().parents[2] / "scripts" / "back.py")]

STAGES = '''\
import os, sys, yaml
x = yaml.safe_load(open("params.yaml"))["x"]
os.makedirs("metrics", exist_ok=True)
if sys.argv[1] == "prep":
    open("prep.txt", "w").write(f"prepared {x}\\n")
else:
    os.makedirs("model", exist_ok=True)
    open("model/weights.bin", "w").write(f"{open('prep.txt').read().strip()} on {os.environ.get('MACHINE', 'a')}\\n")
    open("metrics/fit.json", "w").write('{"x": %d}\\n' % x)
'''

DVC_YAML = """\
stages:
  prep:
    cmd: python stages.py prep
    deps: [stages.py]
    params: [x]
    outs: [prep.txt]
  fit:
    cmd: python stages.py fit
    deps: [stages.py, prep.txt]
    outs: [model]
    metrics:
      - metrics/fit.json: {cache: false}
"""


@pytest.fixture
def clone(env, tmp_path):  # noqa: F811
    """Origin: x=1 (commit v1), then x=2 (v2), only v2 pushed. A fresh clone, v2 pulled, then an
    experiment (x=3) run in it, whose outputs are in its cache."""
    origin = tmp_path / "origin"
    origin.mkdir()
    (origin / "stages.py").write_text(STAGES)
    (origin / "dvc.yaml").write_text(DVC_YAML)
    run(env, ["git", "init", "-q", "-b", "main"], origin)
    run(env, ["dvc", "init", "-q"], origin)
    run(env, ["dvc", "remote", "add", "-d", "local", str(tmp_path / "remote")], origin)
    for x in (1, 2):
        (origin / "params.yaml").write_text(f"x: {x}\n")
        run(env, ["dvc", "repro", "-q"], origin)
        run(env, ["git", "add", "-A"], origin)
        run(env, ["git", "commit", "-qm", f"v{x}"], origin)
    run(env, ["dvc", "push", "-q"], origin)
    dest = tmp_path / "clone"
    run(env, ["git", "clone", "-q", str(origin), str(dest)], tmp_path)
    run(env, ["dvc", "pull", "-q"], dest)
    (dest / "params.yaml").write_text("x: 3\n")
    run(env, ["dvc", "repro", "-q"], dest)
    return dest


def weights(repo: Path) -> str:
    return (repo / "model" / "weights.bin").read_text()


def test_plain_dvc_checkout_deletes_what_it_cannot_restore(env, clone):  # noqa: F811
    """Why the way back is a script: README's old one-liner, back to v1 (in no cache here)."""
    run(env, ["git", "checkout", "HEAD~1", "--", "params.yaml", "dvc.lock", "metrics"], clone)
    failed = run(env, ["dvc", "checkout", "--allow-missing"], clone, ok=False)
    assert not (clone / "model").exists() and not (clone / "prep.txt").exists(), failed.stdout + failed.stderr


def test_back_to_a_commit_in_no_cache_rebuilds_it_bit_for_bit_on_the_same_machine(env, clone):  # noqa: F811
    back = run(env, [*BACK, "HEAD~1"], clone)
    assert weights(clone) == "prepared 1 on a\n" and (clone / "prep.txt").read_text() == "prepared 1\n"
    assert "in no cache nor the remote: model, prep.txt; rebuilding with `dvc repro`" in back.stderr
    assert "rebuilt bit for bit as recorded in HEAD~1: model, prep.txt" in back.stderr
    assert run(env, ["git", "diff", "HEAD~1", "--", "dvc.lock", "params.yaml", "metrics"], clone).stdout == ""
    assert "up to date" in run(env, ["dvc", "status"], clone).stdout


def test_back_on_another_machine_keeps_the_outputs_and_says_what_differs(env, clone):  # noqa: F811
    back = run({**env, "MACHINE": "b"}, [*BACK, "HEAD~1"], clone)
    assert weights(clone) == "prepared 1 on b\n"  # present, and this machine's
    assert "rebuilt bit for bit as recorded in HEAD~1: prep.txt" in back.stderr
    assert "rebuilt with other bytes than recorded in HEAD~1: model" in back.stderr
    assert "bit for bit reproducible on one machine only" in back.stderr
    diff = run(env, ["git", "diff", "HEAD~1", "--name-only"], clone).stdout.split()
    assert diff == ["dvc.lock"]  # the model's hash; prep's and the params are as recorded


def test_back_to_what_the_remote_holds_restores_it_without_rebuilding(env, clone):  # noqa: F811
    back = run({**env, "MACHINE": "b"}, [*BACK, "HEAD"], clone)
    assert weights(clone) == "prepared 2 on a\n"  # the recorded bytes, not this machine's
    assert "restored from the cache and the remote: model, prep.txt" in back.stderr
    assert "every output is the recorded version" in back.stderr and "dvc repro" not in back.stderr
    assert run(env, ["git", "status", "--porcelain"], clone).stdout == ""


def test_back_refuses_to_destroy_an_output_in_no_cache_and_changes_nothing(env, clone):  # noqa: F811
    """A run killed before DVC committed its output (or a hand edit) leaves a workspace copy that is in
    no cache: going back would delete it, so nothing is touched unless --force says so."""
    (clone / "model" / "weights.bin").write_text("an unsaved run\n")
    before = run(env, ["git", "status", "--porcelain"], clone).stdout
    back = run(env, [*BACK, "HEAD~1"], clone, ok=False)
    assert back.returncode == 1
    assert "not going back: model differ from dvc.lock and are in no cache" in back.stderr
    assert weights(clone) == "an unsaved run\n"
    assert run(env, ["git", "status", "--porcelain"], clone).stdout == before  # params, dvc.lock as they were
    forced = run(env, [*BACK, "HEAD~1", "--force"], clone)
    assert weights(clone) == "prepared 1 on a\n", forced.stderr


PAYING = '''\
import yaml
x = yaml.safe_load(open("params.yaml"))["x"]
lines = open("ledger.txt").read().splitlines() if __import__("os").path.exists("ledger.txt") else []
if f"paid {x}" not in lines:
    open("ledger.txt", "a").write(f"paid {x}\\n")
open("out.txt", "w").write(f"answer {x}\\n")
'''


def test_back_leaves_a_persistent_ledger_as_it_is(env, tmp_path):  # noqa: F811
    """The ledger of paid API calls is newer than any commit: going back must not swap it for an older
    copy (the next run would pay again for what the newer one holds)."""
    repo = tmp_path / "p"
    repo.mkdir()
    (repo / "pay.py").write_text(PAYING)
    (repo / "dvc.yaml").write_text("stages:\n  pay:\n    cmd: python pay.py\n    deps: [pay.py]\n    params: [x]\n"
                                   "    outs:\n      - out.txt\n      - ledger.txt:\n          persist: true\n")
    run(env, ["git", "init", "-q", "-b", "main"], repo)
    run(env, ["dvc", "init", "-q"], repo)
    for x in (1, 2):
        (repo / "params.yaml").write_text(f"x: {x}\n")
        run(env, ["dvc", "repro", "-q"], repo)
        run(env, ["git", "add", "-A"], repo)
        run(env, ["git", "commit", "-qm", f"v{x}"], repo)
    back = run(env, [*BACK, "HEAD~1"], repo)
    assert (repo / "out.txt").read_text() == "answer 1\n", back.stderr
    assert (repo / "ledger.txt").read_text() == "paid 1\npaid 2\n"
