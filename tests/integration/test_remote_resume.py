"""A run that survives the machine (issue 26 §2): checkpoints pushed to the DVC remote while training,
and a fresh clone with only the remote resumes from the last one (CPU, tiny model, real `dvc`).

The project here is a one-stage copy of dvc.yaml's train stage, its inputs tracked by DVC and pushed to
a local remote (what a Colab session has on a mounted Google Drive): `dvc repro` is killed with SIGKILL
(a session that ends takes no signal) once a checkpoint is on the remote; a `git clone` elsewhere runs
the steps `make resume` runs (`dvc pull`, `gabarito checkpoints pull`, `dvc repro`) and must end with
the adapter of a run never interrupted, byte for byte.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from gabarito.checkpoints import COMPLETE, PREFIX, Pusher, Remote, write_marker
from gabarito.params import parse_section

ROOT = Path(__file__).resolve().parents[2]
# test_train_resume's interrupted-run shape: dropout, gradient accumulation, early stopping, the best
# checkpoint as the adapter, 2 kept; 12 optimizer steps, a checkpoint every 3
TRAIN = {"early_stopping_patience": 2, "lora": {"lora_dropout": 0.1}, "sft": {
    "max_steps": 12, "save_steps": 3, "eval_steps": 3, "logging_steps": 1, "per_device_train_batch_size": 3,
    "gradient_accumulation_steps": 2, "learning_rate": 3e-3, "load_best_model_at_end": True,
    "save_total_limit": 2}, "push_checkpoints": {"remote": "default", "keep": 2}}
TRAIN_ARGS = ("--train data/processed/train.jsonl --validation data/processed/validation.jsonl "
              "--base models/base --checkpoints models/checkpoints")


def sh(args: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    out = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env(), **kwargs)
    assert out.returncode == 0, f"{args}: {out.stdout}{out.stderr}"
    return out


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "DVC_NO_ANALYTICS": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def the_train_stage() -> dict:
    """dvc.yaml's train stage, its deps cut to the data and the base (the code is not in this project)."""
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["train"]
    return {**stage, "deps": ["data/processed/train.jsonl", "data/processed/validation.jsonl", "models/base"]}


@pytest.fixture(scope="module")
def project(tmp_path_factory, formatted, tiny_base) -> Path:
    """A git + DVC project with the train stage, its inputs pushed to the default (local) remote."""
    top = tmp_path_factory.mktemp("survive")
    repo = top / "repo"
    (repo / "data/processed").mkdir(parents=True)
    for name, recs in zip(("train.jsonl", "validation.jsonl"), formatted):
        (repo / "data/processed" / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs))
    shutil.copytree(tiny_base, repo / "models/base")
    # every train key: dvc.yaml's stage lists train's subsections one by one
    (repo / "params.yaml").write_text(yaml.safe_dump({"train": parse_section("train", TRAIN).model_dump(mode="json")}))
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"train": the_train_stage()}}, sort_keys=False))
    sh(["git", "init", "-q", "-b", "main"], repo)
    sh(["dvc", "init", "-q"], repo)
    sh(["dvc", "remote", "add", "-d", "drive", str(top / "drive")], repo)  # a mounted Drive folder, say
    sh(["dvc", "add", "-q", "data/processed", "models/base"], repo)
    sh(["dvc", "push", "-q"], repo)
    sh(["git", "add", "-A"], repo)
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "project"], repo)
    return repo


def remote_markers(drive: Path) -> list[int]:
    return sorted(int(m.parent.name.split("-")[1]) for m in drive.glob(f"{PREFIX}/*/checkpoint-*/{COMPLETE}"))


def test_a_killed_run_resumes_in_a_fresh_clone_from_the_remote(project, tmp_path):
    drive = project.parent / "drive"
    # the uninterrupted run, pushing nothing, for the adapter to compare with
    clean = dict(TRAIN, push_checkpoints={"remote": None, "keep": 2})
    (tmp_path / "clean.yaml").write_text(yaml.safe_dump({"train": clean}))
    sh(["gabarito", "train", *TRAIN_ARGS.split(), "--out", str(tmp_path / "adapter"), "--live-dir",
        str(tmp_path / "live"), "--metrics", str(tmp_path / "train.json"), "--params", str(tmp_path / "clean.yaml")],
       project)

    # the session: dvc repro, killed (the VM is gone) once a checkpoint is on the remote
    proc = subprocess.Popen(["dvc", "repro"], cwd=project, env=env(), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    while not remote_markers(drive):
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "no checkpoint reached the remote in time"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (project / "models/adapter").exists()
    pushed = remote_markers(drive)
    assert 0 < max(pushed) < 12 and len(pushed) <= 2  # the newest 2 kept

    # a fresh runtime: the repository and the remote, nothing else
    clone = tmp_path / "clone"
    sh(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    sh(["dvc", "pull", "-q", "data/processed.dvc", "models/base.dvc"], clone)  # train's inputs
    out = sh(["gabarito", "checkpoints", "pull", *TRAIN_ARGS.split()], clone)
    step = max(remote_markers(drive))
    assert f"resumes from step {step}" in out.stderr + out.stdout
    assert (clone / f"models/checkpoints/checkpoint-{step}" / COMPLETE).exists()
    sh(["dvc", "repro"], clone)

    metrics = json.loads((clone / "metrics/train.json").read_text())
    assert metrics["resumed_from_step"] == step
    want = json.loads((tmp_path / "train.json").read_text())
    assert {**metrics, "resumed_from_step": 0} == want
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        assert (clone / "models/adapter" / name).read_bytes() == (tmp_path / "adapter" / name).read_bytes()
    # DVCLive's history went with the checkpoints
    assert list(drive.glob(f"{PREFIX}/*/live/plots/metrics/loss.tsv"))


# `gabarito train` with one more callback, which sends SIGTERM to its own process at the end of step 5
AT_STEP_5 = """
import os, signal
import stages.train as stage
from transformers import TrainerCallback
class At(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 5:
            os.kill(os.getpid(), signal.SIGTERM)
made = stage._callbacks
stage._callbacks = lambda *a, **k: (lambda c, s: ([At(), *c], s))(*made(*a, **k))
from gabarito.cli import main
main()
"""


def test_sigterm_pushes_the_checkpoint_it_saves_before_the_process_ends(project, tmp_path):
    sh(["dvc", "remote", "add", "sigterm", str(tmp_path / "remote")], project)
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({"train": dict(TRAIN, push_checkpoints={"remote": "sigterm",
                                                                                            "keep": 1})}))
    out = subprocess.run([sys.executable, "-c", AT_STEP_5, "train", *TRAIN_ARGS.replace(
        "models/checkpoints", str(tmp_path / "ckpt")).split(), "--out", str(tmp_path / "adapter"), "--live-dir",
        str(tmp_path / "live"), "--metrics", str(tmp_path / "m.json"), "--params", str(tmp_path / "p.yaml")],
        cwd=project, env=env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 1 and "interrupted by SIGTERM at step 5" in out.stderr, out.stderr
    assert remote_markers(tmp_path / "remote") == [5]  # keep 1: checkpoint-3 went once 5 was whole
    assert "checkpoint-5 pushed to remote 'sigterm'" in out.stderr


def test_a_remote_that_cannot_be_reached_stops_the_run_before_it_trains(project, tmp_path):
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({"train": dict(TRAIN, push_checkpoints={"remote": "nope"})}))
    out = subprocess.run(["gabarito", "train", *TRAIN_ARGS.split(), "--out", str(tmp_path / "a"), "--live-dir",
                          str(tmp_path / "l"), "--metrics", str(tmp_path / "m.json"), "--params",
                          str(tmp_path / "p.yaml")], cwd=project, env=env(), capture_output=True, text=True)
    assert out.returncode == 1 and "train.push_checkpoints" in out.stderr and "nope" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


# --- the pusher and the remote folder, on a local filesystem ----------------------------------------
def _local_remote(path: Path) -> Remote:
    from dvc_objects.fs.local import LocalFileSystem

    return Remote(LocalFileSystem(), str(path), "fp", name="test")


def _checkpoint(folder: Path, step: int) -> Path:
    ckpt = folder / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / "adapter.bin").write_bytes(bytes([step]) * (2**20 + step))  # over 1 MiB: a hard link
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    write_marker(ckpt, step, 1, "fp")
    return ckpt


def test_pusher_keeps_the_newest_and_a_pull_skips_a_torn_one(tmp_path):
    remote = _local_remote(tmp_path / "remote")
    pusher = Pusher(remote, keep=2, staging=tmp_path / "work/.push")
    for step in (3, 6, 9):
        pusher.submit(_checkpoint(tmp_path / "work", step), step)
        time.sleep(0.2)  # a step's time: each push done before the next save
    pusher.close()
    assert remote.checkpoints() == [(6, True), (9, True)]
    assert not (tmp_path / "work/.push").exists()
    # a push cut short: the newest has lost a file on the remote, so the one before is fetched
    (tmp_path / "remote" / PREFIX / "fp/checkpoint-9/adapter.bin").unlink()
    got = remote.pull_last(tmp_path / "fresh")
    assert got == tmp_path / "fresh/checkpoint-6"
    assert (got / "adapter.bin").read_bytes() == (tmp_path / "work/checkpoint-6/adapter.bin").read_bytes()
    assert sorted(p.name for p in (tmp_path / "fresh").iterdir()) == ["checkpoint-6"]


def test_a_failing_remote_is_logged_and_training_goes_on(tmp_path, capsys):
    class Broken(Remote):
        def put_folder(self, *args, **kwargs):
            raise OSError("no route to host")

    from dvc_objects.fs.local import LocalFileSystem

    pusher = Pusher(Broken(LocalFileSystem(), str(tmp_path / "r"), "fp", name="broken"), 2, tmp_path / "s")
    pusher.submit(_checkpoint(tmp_path / "w", 3), 3)
    pusher.close()
    assert pusher.failed == [3] and pusher.pushed == []
    assert "pushing checkpoint-3 to broken failed (OSError: no route to host)" in capsys.readouterr().err
