"""`dvc metrics diff` as a person reads it after a rerun: real dvc in a temp git repo holding dvc.yaml,
the pipeline's committed metrics files of the other stages, and evaluate's files as its own
``output_files`` makes them from a realistic evaluation (three sources, four- and five-option items,
subjects, two modes, a held-out test split). The plain command must fit a 120-column terminal and list
only the headline; the detail (eval.json, breakdown.json) stays one documented ``--targets`` away.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gabarito import io
from gabarito.breakdown import breakdown
from gabarito.params import EvaluateParams
from gabarito.scoring import VALID
from gabarito.stats import mcnemar
from stages import evaluate as ev

P = EvaluateParams(modes=["letter", "generate"])
LETTERS = list("ABCDE")
# (source, options, subject): ENEM-shaped user exams beside Cosmos QA, as the sample pipeline has them
GROUPS = [("amostra_enem", 5, "ciências humanas"), ("enem_2024", 5, "linguagens e códigos"), ("cosmosqa", 4, None)]


def run_metrics(seed: int) -> dict:
    """eval.json as evaluate builds it in memory (summaries, McNemar, breakdown; ``test`` alike)."""
    rng = random.Random(seed)
    result: dict = {}
    for split, size in (("validation", 30), ("test", 12)):
        records = [{"id": f"{split}-{i}", "source": src, "answers": ["x"] * k, "label": rng.randrange(k),
                    "split": split, **({"subject": subj} if subj else {})}
                   for i, (src, k, subj) in enumerate(GROUPS[i % 3] for i in range(size))]
        preds = [{"id": r["id"], "model": model, "mode": mode, "label": LETTERS[r["label"]],
                  "prediction": (x := rng.choice(LETTERS[:len(r["answers"])])), "correct": x == LETTERS[r["label"]],
                  "category": VALID} for model in ("base", "finetuned") for mode in P.modes for r in records]
        metrics = {name: {mode: ev.summarize(records, [p for p in preds if (p["model"], p["mode"]) == (name, mode)], P)
                          for mode in P.modes} for name in ("base", "finetuned")}
        for name in ("base", "finetuned"):  # the primary mode's figures at the top, as evaluate() copies them
            metrics[name].update({k: metrics[name][P.modes[0]][k] for k in ("accuracy", "accuracy_valid", "invalid_rate", "n")})
        metrics["mcnemar"] = {mode: mcnemar(*([p["correct"] for p in preds if (p["model"], p["mode"]) == (name, mode)]
                                               for name in ("base", "finetuned"))) for mode in P.modes}
        metrics["breakdown"] = breakdown(records, preds, modes=P.modes, letters=LETTERS, method="wilson")
        if split == "test":
            result["test"] = metrics
        else:
            result.update(metrics)
    return result


def option(cmd: str, name: str) -> str:
    words = cmd.split()
    return words[words.index(name) + 1]


@pytest.fixture
def repo(tmp_path, repo_root) -> tuple[Path, dict, dict]:
    """git+dvc repo: dvc.yaml, the committed metrics of the other stages, evaluate's files from run 1."""
    home = tmp_path / "home"
    (home / "dvc-global").mkdir(parents=True)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "GIT_"))},
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "HOME": str(home),
           "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache"),
           "DVC_NO_ANALYTICS": "1", "DVC_GLOBAL_CONFIG_DIR": str(home / "dvc-global"),
           "DVC_SYSTEM_CONFIG_DIR": str(home / "dvc-system"), "DVC_SITE_CACHE_DIR": str(home / "dvc-site"),
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t", "COLUMNS": "120"}
    repo = tmp_path / "repo"
    repo.mkdir()
    sh(["git", "init", "-q"], repo, env)
    sh(["dvc", "init", "-q"], repo, env)
    shutil.copy(repo_root / "dvc.yaml", repo / "dvc.yaml")
    cmd = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]["evaluate"]["cmd"]
    paths = {role: option(cmd, flag) for role, flag in
             (("eval", "--metrics"), ("breakdown", "--breakdown"), ("headline", "--headline"))}
    (repo / "metrics").mkdir()
    for path in (repo_root / "metrics").glob("*.json"):  # the other stages' files, as the pipeline committed them
        if f"metrics/{path.name}" not in paths.values():
            shutil.copy(path, repo / "metrics" / path.name)
    write_run(repo, paths, seed=1)
    sh(["git", "add", "-A"], repo, env)
    sh(["git", "commit", "-qm", "run 1"], repo, env)
    return repo, env, paths


def write_run(repo: Path, paths: dict, seed: int) -> None:
    for role, content in ev.output_files(run_metrics(seed), P.modes).items():
        io.write_json(repo / paths[role], content)


def sh(cmd: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{cmd}: {proc.stdout}{proc.stderr}"
    return proc


def test_plain_metrics_diff_fits_120_columns_and_lists_the_headline_only(repo):
    repo, env, paths = repo
    write_run(repo, paths, seed=2)  # a rerun: every figure of evaluate moves
    lines = sh(["dvc", "metrics", "diff"], repo, env).stdout.splitlines()
    rows = [line.split() for line in lines[1:]]
    assert len(rows) > 10, lines  # the headline did move: validation and test, per mode and per source
    assert max(len(line) for line in lines) <= 120, "\n".join(line for line in lines if len(line) > 120)
    assert {r[0] for r in rows} == {paths["headline"]}
    names = {r[1] for r in rows}
    assert {"letter.finetuned.accuracy", "test.letter.finetuned.accuracy", "letter.mcnemar_p"} <= names
    assert {n for n in names if n.startswith("source.")} and {n for n in names if n.startswith("test.source.")}

    # the detail is one documented --targets away, and there are the per-group figures
    detail = sh(["dvc", "metrics", "diff", "--all", "--targets", paths["eval"], paths["breakdown"]], repo, env).stdout
    assert "validation.subject.linguagens e códigos.chance" in detail
    assert "finetuned.letter.by_source.enem_2024.ci95_low" in detail
    assert len(detail.splitlines()) > 5 * len(lines)


def test_metrics_show_lists_evaluate_headline_file_only(repo):
    """`dvc metrics show` is one row per file, one column per figure: it cannot fit 120 columns with every
    stage's counts, but evaluate's hundreds of figures are not among them."""
    repo, env, paths = repo
    lines = sh(["dvc", "metrics", "show"], repo, env).stdout.splitlines()
    files = {line.split()[0] for line in lines[1:]}
    assert paths["headline"] in files and not files & {paths["eval"], paths["breakdown"]}
    assert "breakdown" not in lines[0] and ".by_source." not in lines[0]
