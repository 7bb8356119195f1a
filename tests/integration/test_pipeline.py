"""The whole pipeline with real `dvc` in a temporary copy of the repository.

Slow (a few minutes on 2 cores): it runs `dvc repro` twice from scratch and once after a param
change, pushes to the default local remote and pulls into a fresh clone. The first run from scratch is
notebooks/gabarito.ipynb executed headless (nbclient), so the notebook people open on Colab and Kaggle is
the one tested, at the cost of a few seconds over a plain `make repro`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import nbclient
import nbformat
import pytest
import yaml

pytestmark = pytest.mark.slow

# made at run time so that no file of the repository contains it
SENTINEL = "sk-" + uuid.uuid4().hex
ALL_STAGES = ["ingest", "mcq", "extract", "exams", "translate", "synthesize", "clean", "base_model", "format",
              "train", "evaluate"]


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "OPENAI_API_KEY": SENTINEL, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def copy_repo(src: Path, dst: Path) -> Path:
    """Copy the working tree as git sees it (tracked + untracked-not-ignored) and commit it."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=src,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, files):
        if (src / rel).is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / rel, dst / rel)
    run(["git", "init", "-q", "-b", "main"], dst)
    run(["git", "add", "-A"], dst)
    run(["git", "commit", "-qm", "copy"], dst)
    return dst


def ran(output: str) -> list[str]:
    return [s for s in ALL_STAGES if f"Running stage '{s}'" in output]


# no output may differ between two runs on one machine: DVCLive's history leaves out the wall-clock
# figures (seconds, tokens/s, peak memory), which the train stage prints instead
TIMED: set[str] = set()


def lock_hashes(repo: Path) -> dict[str, str]:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return {f"{stage}:{o['path']}": o["md5"] for stage, body in lock["stages"].items()
            for o in body.get("outs", []) if o["path"] not in TIMED}


NOTEBOOK = "notebooks/gabarito.ipynb"


def notebook_text(nb) -> str:
    """Everything the executed notebook showed: streams, displayed text and markdown, errors."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.extend(str(v) for k, v in out.get("data", {}).items() if k.startswith("text/"))
            parts.extend(out.get("traceback", []))
    return "".join(parts)


@pytest.fixture(scope="module")
def first(tmp_path_factory, repo_root):
    """The first run from scratch is the Colab/Kaggle notebook, headless: it clones the repository (a
    committed copy of the working tree), runs `make setup`, loads secrets (none here: the environment's
    OPENAI_API_KEY), `dvc pull` from the empty default remote, picks the profile for the machine (auto:
    offline on a CPU), `make repro` as README says, `make push`, and shows the report. The venv is NOT
    on PATH: the Makefile must put it there. The executed notebook is saved beside the clone."""
    base = tmp_path_factory.mktemp("first")
    src = copy_repo(repo_root, base / "src")
    repo = base / "repo"
    venv = Path(sys.executable).parent.parent
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if Path(p) != venv / "bin")
    nb = nbformat.read(repo_root / NOTEBOOK, as_version=4)
    env = {**os.environ, "PATH": path, "OPENAI_API_KEY": SENTINEL, "DVC_NO_ANALYTICS": "1",
           "GABARITO_REPO_URL": str(src), "GABARITO_WORKDIR": str(repo), "GABARITO_PROFILE": "auto",
           "GABARITO_REMOTE_URL": "", "GABARITO_RUN": "auto", "GABARITO_PUSH": "1", "GABARITO_VENV": str(venv),
           # -o: treat the venv's install as up to date, so that make never re-points the caller's venv
           # (an editable install) at this temporary copy when pyproject.toml is newer than the venv
           "GABARITO_MAKE_ARGS": f"-o {venv / 'bin' / 'gabarito'}"}
    client = nbclient.NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(base)}})
    try:
        client.execute(env=env)
    finally:
        nbformat.write(nb, base / "executed.ipynb")
    return repo, notebook_text(nb)


def test_repro_runs_every_stage_to_real_metrics(first):
    repo, log = first
    assert ran(log) == ALL_STAGES
    metrics = yaml.safe_load((repo / "metrics/eval.json").read_text())
    validation = [json.loads(line) for line in (repo / "data/processed/validation.jsonl").read_text().splitlines()]
    n_mcq = sum(r["kind"] == "mcq" for r in validation)
    # 48 Cosmos QA items + the multiple-choice items of the held-out regulation
    assert n_mcq > 48 and any(r["kind"] == "open" for r in validation)
    for model in ("base", "finetuned"):
        assert {"accuracy", "invalid_rate", "n", "letter", "generate", "position_bias", "open"} <= set(metrics[model])
        assert metrics[model]["n"] == n_mcq
        assert metrics[model]["letter"]["invalid_rate"] == 0.0  # letter mode answers every item
    # the random base cannot follow the format; the adapter learns "Alternativa X"
    assert metrics["base"]["generate"]["invalid_rate"] > 0.9
    assert metrics["finetuned"]["generate"]["invalid_rate"] < 0.5
    assert set(metrics["mcnemar"]) == {"letter", "generate"}
    report = (repo / "metrics/report.md").read_text()
    assert f"| finetuned | generate | {n_mcq} |" in report and "## Open questions from the PDFs" in report
    plots = run(["dvc", "plots", "show", "--json"], repo).stdout
    assert "confusion_finetuned.json" in plots and "calibration.json" in plots
    train = yaml.safe_load((repo / "metrics/train.json").read_text())
    assert train["last_logged_loss"] < train["first_logged_loss"] / 2
    assert train["best_eval_loss"] is not None and train["resumed_from_step"] == 0
    assert list((repo / "models/checkpoints").iterdir()) == []  # emptied after a finished run
    assert (repo / "metrics/train_live/plots/metrics/eval/loss.tsv").exists()
    live = [p.name for p in (repo / "metrics/train_live").rglob("*") if p.is_file()]
    assert not [n for n in live if "runtime" in n or "per_second" in n or "peak_memory" in n], live
    assert "tokens/s, peak memory" in log  # printed instead


def test_the_notebook_ran_each_step_and_showed_the_report(first):
    """Each of the notebook's steps ran, in order, and left its mark: the clone, setup, the secret taken
    from the environment (its value never shown), the tolerant pull from an empty remote, the profile
    auto picks on a CPU, make repro (not resume: offline pushes no checkpoints), make push, the report."""
    repo, log = first
    nb = nbformat.read(repo.parent / "executed.ipynb", as_version=4)
    assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code")  # every code cell ran
    steps = ["$ git clone", "$ make --no-print-directory setup", "secrets: OPENAI_API_KEY (environment)",
             "pull --allow-missing", "profile: offline", "$ make --no-print-directory profile PROFILE=offline",
             "$ make --no-print-directory repro", "$ make --no-print-directory push", "metrics show"]
    at = [log.find(step) for step in steps]
    assert -1 not in at and at == sorted(at), dict(zip(steps, at))
    assert "make --no-print-directory resume" not in log
    assert (repo / ".git").is_dir() and "src" in run(["git", "remote", "get-url", "origin"], repo).stdout
    shown = [o["data"]["text/markdown"] for o in nb.cells[-1].outputs if "text/markdown" in o.get("data", {})]
    assert shown == [(repo / "metrics/report.md").read_text(encoding="utf-8")]
    assert run(["python", "scripts/push.py", "--check"], repo).returncode == 0  # everything is on the remote


def test_status_is_clean_and_a_second_repro_runs_nothing(first):
    repo, _ = first
    assert "up to date" in run(["dvc", "status"], repo).stdout
    assert ran(run(["dvc", "repro"], repo).stdout) == []


def test_no_secret_reaches_outputs_lock_or_params(first):
    repo, log = first
    assert SENTINEL not in log
    for path in repo.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            assert SENTINEL.encode() not in path.read_bytes(), path


def test_two_fresh_runs_give_identical_hashes(first, tmp_path, repo_root):
    repo, _ = first
    second = copy_repo(repo_root, tmp_path / "repo")
    run(["dvc", "repro"], second)
    assert lock_hashes(second) == lock_hashes(repo)


def test_push_then_pull_into_a_fresh_clone_restores_every_output(first, tmp_path):
    repo, _ = first
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "run", "--allow-empty"], repo)
    run(["dvc", "push"], repo)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    # the default remote is a sibling of the repository: point the clone at the same folder
    remote = (repo / ".dvc" / "../../gabarito-dvc-remote").resolve()
    run(["dvc", "remote", "modify", "--local", "local", "url", str(remote)], clone)
    run(["dvc", "pull"], clone)
    assert "up to date" in run(["dvc", "status"], clone).stdout
    for rel in ("models/adapter/adapter_model.safetensors", "data/processed/train.jsonl", "metrics/predictions.jsonl"):
        assert (clone / rel).read_bytes() == (repo / rel).read_bytes()


def test_changing_a_train_param_reruns_only_train_and_evaluate(first):
    repo, _ = first
    params = (repo / "params.yaml").read_text()
    # one epoch instead of five: a train param like any other, and the rerun takes a fifth of the time
    assert params.count("    num_train_epochs: 5.0 ") == 1
    (repo / "params.yaml").write_text(params.replace("    num_train_epochs: 5.0 ", "    num_train_epochs: 1.0 "))
    log = run(["dvc", "repro"], repo)
    assert ran(log.stdout + log.stderr) == ["train", "evaluate"]
    diff = run(["dvc", "metrics", "diff"], repo).stdout
    assert "metrics/train.json" in diff and "train_loss" in diff


def test_a_held_out_test_item_is_scored_and_reruns_evaluate_never_train(first):
    """Issue 22: an item with split test flows through clean and format to evaluate, which scores it on its
    own; train (and base_model, translate) do not rerun. Its passage is long, so format fits it, says so
    in a WARNING line and counts it, and evaluate still scores it."""
    repo, _ = first
    raw = repo / "data/raw/mcq/exemplo.jsonl"
    row = {"id": "guardado-01", "split": "test", "subject": "linguagens",
           "context": " ".join(["O narrador conta que esqueceu a carteira em casa e voltou para buscá-la."] * 60),
           "question": "Por que o narrador voltou para casa?",
           "options": ["Para dormir", "Para buscar a carteira", "Para ver TV", "Para almoçar"], "answer": "B"}
    raw.write_text(raw.read_text(encoding="utf-8") + json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    status = json.loads(run(["dvc", "status", "--json"], repo).stdout)
    assert set(status) == {"mcq"}, status  # only the stage that reads the file sees a change, so far
    log = run(["dvc", "repro"], repo)
    out = log.stdout + log.stderr
    assert ran(out) == ["mcq", "clean", "format", "evaluate"], out
    assert "up to date" in run(["dvc", "status"], repo).stdout
    assert "clean: train 182, validation 75, test 1, quarantined 0" in out
    assert ("format: WARNING: 1 item(s) longer than train.sft.max_length=512 tokens (format.fit cut_end): "
            "fitted (passage cut, marked [...]) {'test': {'exemplo': 1}}") in out
    assert "format: train 182, validation 75, test 1 -> data/processed" in out
    metrics = json.loads((repo / "metrics/eval.json").read_text())
    assert metrics["base"]["n"] == 65 and metrics["test"]["base"]["n"] == metrics["test"]["finetuned"]["n"] == 1
    assert metrics["test"]["fitted"] == 1 and set(metrics["test"]["mcnemar"]) == {"letter", "generate"}
    assert "evaluate: test: finetuned (letter): accuracy" in out
    preds = [json.loads(line) for line in (repo / "metrics/predictions_test.jsonl").read_text().splitlines()]
    assert {(p["id"], p["split"]) for p in preds} == {("guardado-01", "test")} and len(preds) == 2 * 2  # models x modes
    assert "guardado-01" not in (repo / "metrics/predictions.jsonl").read_text()
    assert "test" in json.loads((repo / "metrics/headline.json").read_text())
    assert "# Held-out test split" in (repo / "metrics/report.md").read_text()
    fit = json.loads((repo / "metrics/format.json").read_text())
    assert fit["tokens_by_source"]["exemplo"]["max"] > 512 and fit["dropped_total"] == 0
