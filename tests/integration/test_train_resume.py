"""Training that survives interruption: kill -9, SIGINT and SIGTERM mid-run, then resume (CPU, tiny model).

A resumed run is the run: its adapter is the uninterrupted run's, tensor for tensor, and so are its best
eval loss, train loss, step count and DVCLive history. Exact equality is the right test, not a tolerance:
both runs are on the same CPU with the same thread count (train.torch_threads), so nothing but a state the
resume failed to bring back (data order, RNG, optimizer, schedule, early-stopping counter, eval cadence)
can move a bit.
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

from gabarito.params import TrainParams
from stages.train import COMPLETE, last_complete_checkpoint, train, write_marker
from tests import adapters

ROOT = Path(__file__).resolve().parents[2]
PARAMS = {"train": {"early_stopping_patience": None, "lora": {"lora_dropout": 0.0}, "sft": {
    "max_steps": 12, "save_steps": 3, "eval_steps": 3, "logging_steps": 1, "per_device_train_batch_size": 4,
    "learning_rate": 3e-3, "load_best_model_at_end": False, "save_total_limit": None}}}
# the interrupted runs: the shipped train section's shape (early stopping, the best checkpoint as the
# adapter, 2 checkpoints kept), plus what a resume can get wrong: dropout (the RNG state), gradient
# accumulation, and 16 examples in batches of 3 (a last batch of 1; 3 optimizer steps per epoch, so the
# 12 steps cross 3 epoch ends)
RESUME = {"train": {"early_stopping_patience": 2, "lora": {"lora_dropout": 0.1}, "sft": {
    "max_steps": 12, "save_steps": 3, "eval_steps": 3, "logging_steps": 1, "per_device_train_batch_size": 3,
    "gradient_accumulation_steps": 2, "learning_rate": 3e-3, "load_best_model_at_end": True,
    "save_total_limit": 2}}}


def _workdir(folder: Path, formatted, params: dict) -> Path:
    train_set, val_set = formatted
    for name, recs in (("train.jsonl", train_set), ("validation.jsonl", val_set)):
        (folder / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs))
    (folder / "params.yaml").write_text(json.dumps(params))
    return folder


@pytest.fixture(scope="module")
def resume_dir(tmp_path_factory, formatted, tiny_base) -> Path:
    """A folder with RESUME's params and the uninterrupted run in clean/, made once for the module."""
    folder = _workdir(tmp_path_factory.mktemp("resume"), formatted, RESUME)
    clean = start(folder, tiny_base, "clean")
    assert clean.wait(timeout=300) == 0, clean.stderr.read()
    return folder


def command(base: Path, run: str) -> list[str]:
    return ["train", "--train", "train.jsonl", "--validation", "validation.jsonl", "--base", str(base),
            "--out", f"{run}/adapter", "--checkpoints", f"{run}/checkpoints", "--live-dir", f"{run}/live",
            "--metrics", f"{run}/train.json"]


# `gabarito train` with one more callback, which sends SIGNAL to its own process at the end of optimizer
# step STEP: an interruption at a chosen step, where one sent from outside lands wherever the run is
AT_STEP = """
import os, signal, sys
import stages.train as stage
from transformers import TrainerCallback
step, sig = int(sys.argv.pop(1)), signal.Signals[sys.argv.pop(1)]
class At(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == step:
            os.kill(os.getpid(), sig)
made = stage._callbacks
def _callbacks(*args, **kwargs):
    callbacks, signals = made(*args, **kwargs)
    return [At(), *callbacks], signals
stage._callbacks = _callbacks
from gabarito.cli import main
main()
"""


def start(workdir, base, run, at: tuple[int, str] | None = None):
    """``gabarito train`` in a process of its own; with ``at`` (step, signal name), interrupted there."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    head = ["-c", AT_STEP, str(at[0]), at[1]] if at else ["-m", "gabarito.cli"]
    return subprocess.Popen([sys.executable, *head, *command(base, run)], cwd=workdir, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def assert_same_run(workdir: Path, run: str, reference: str = "clean") -> dict:
    """``run``'s adapter is ``reference``'s tensor for tensor, and so are its metrics but where it resumed
    from and its DVCLive history; returns ``run``'s metrics."""
    import torch
    from safetensors.torch import load_file

    got, want = (load_file(str(workdir / r / "adapter/adapter_model.safetensors")) for r in (run, reference))
    assert got.keys() == want.keys()
    assert [k for k in want if not torch.equal(got[k], want[k])] == []
    for name in ("adapter_model.safetensors", "adapter_config.json"):  # and so the files, byte for byte
        assert (workdir / run / "adapter" / name).read_bytes() == (workdir / reference / "adapter" / name).read_bytes()
    metrics, clean = (json.loads((workdir / r / "train.json").read_text()) for r in (run, reference))
    assert metrics["resumed_from_step"] > 0
    assert {**metrics, "resumed_from_step": 0} == clean  # best_eval_loss, train_loss, steps: exactly
    for name in ("loss", "grad_norm", "learning_rate", "eval/loss"):
        assert live_history(workdir / run / "live", name) == live_history(workdir / reference / "live", name)
    assert list((workdir / run / "checkpoints").iterdir()) == []
    return metrics


def wait_for_checkpoint(workdir: Path, run: str, proc, step: int, timeout: float = 120) -> None:
    marker = workdir / run / "checkpoints" / f"checkpoint-{step}" / COMPLETE
    deadline = time.monotonic() + timeout
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.05)


def live_history(live_dir: Path, name: str) -> list[tuple[int, float]]:
    """(step, value) rows of one DVCLive metric history (plots/metrics/NAME.tsv)."""
    rows = (live_dir / "plots" / "metrics" / f"{name}.tsv").read_text().splitlines()
    header = rows[0].split("\t")
    assert header[:2] == ["step", name.split("/")[-1]], header
    return [(int(r.split("\t")[0]), float(r.split("\t")[1])) for r in rows[1:]]


def test_kill_9_then_resume_is_the_uninterrupted_run(resume_dir, tiny_base):
    """kill -9 from outside once checkpoint 3 is whole (an epoch end: 3 steps per epoch)."""
    proc = start(resume_dir, tiny_base, "crash")
    wait_for_checkpoint(resume_dir, "crash", proc, 3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (resume_dir / "crash/adapter").exists()  # no half adapter that looks whole
    assert last_complete_checkpoint(resume_dir / "crash/checkpoints") is not None

    again = start(resume_dir, tiny_base, "crash")
    assert again.wait(timeout=300) == 0, again.stderr.read()
    metrics = assert_same_run(resume_dir, "crash")
    assert metrics["resumed_from_step"] >= 3 and metrics["steps"] == 12

    # DVCLive's history is whole across the resume, one row per global step (logging_steps 1), not
    # restarted and not counting log events; eval rows sit at the eval steps
    crash_live = live_history(resume_dir / "crash/live", "loss")
    assert [step for step, _ in crash_live] == list(range(1, 13))
    assert [s for s, _ in live_history(resume_dir / "crash/live", "eval/loss")] == [3, 6, 9, 12]
    # train_loss is the mean over all 12 steps, as in the uninterrupted run, not over the resumed ones
    # only (before that was fixed: the mean of the steps after the checkpoint, far below, as the loss falls)
    assert metrics["train_loss"] == pytest.approx(sum(v for _, v in crash_live) / 12, abs=1e-6)
    live_summary = json.loads((resume_dir / "crash/live/metrics.json").read_text())
    assert live_summary["step"] == 12 and live_summary["train"]["loss"] == pytest.approx(metrics["train_loss"])


@pytest.mark.parametrize("step, sig", [
    (8, "SIGKILL"),  # between checkpoints: 6 is kept, and steps 7-8 are trained again
    (5, "SIGINT"),   # Ctrl-C: a checkpoint at 5, off the save and eval cadence, in the middle of an epoch
])
def test_an_interrupted_run_resumed_is_the_uninterrupted_run(resume_dir, tiny_base, step, sig):
    run = f"{sig}-{step}"
    proc = start(resume_dir, tiny_base, run, at=(step, sig))
    err = proc.communicate(timeout=300)[1]
    if sig == "SIGKILL":
        assert proc.returncode == -signal.SIGKILL
        resumes_at = step // 3 * 3
    else:  # SIGINT as SIGTERM: a checkpoint at the step it came, a message, no traceback
        assert proc.returncode == 1, err
        assert f"training interrupted by SIGINT at step {step}: checkpoint saved in" in err, err
        assert "Traceback" not in err and "Aborted" not in err
        resumes_at = step
    assert last_complete_checkpoint(resume_dir / run / "checkpoints").name == f"checkpoint-{resumes_at}"

    again = start(resume_dir, tiny_base, run)
    assert again.wait(timeout=300) == 0, again.stderr.read()
    assert assert_same_run(resume_dir, run)["resumed_from_step"] == resumes_at


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(resume_dir, tiny_base):
    """SIGTERM takes SIGINT's path (Signals), whose resume the test above follows to the end: here only the
    stop, sent from outside as a shutdown sends it."""
    proc = start(resume_dir, tiny_base, "term")
    wait_for_checkpoint(resume_dir, "term", proc, 3)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 1
    assert "training interrupted by SIGTERM at step" in err and "Traceback" not in err
    step = int(err.split("SIGTERM at step ")[1].split(":")[0])
    checkpoints = resume_dir / "term/checkpoints"
    assert last_complete_checkpoint(checkpoints) == checkpoints / f"checkpoint-{step}"


def test_half_written_checkpoints_are_skipped(tmp_path):
    for step, complete in ((3, True), (6, True), (9, False)):
        ckpt = tmp_path / f"checkpoint-{step}"
        ckpt.mkdir()
        if complete:
            (ckpt / COMPLETE).write_text(str(step))
    assert last_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-6"
    assert not (tmp_path / "checkpoint-9").exists()
    assert last_complete_checkpoint(tmp_path / "missing") is None


def _checkpoint(folder: Path, step: int, files: dict[str, bytes]) -> Path:
    ckpt = folder / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    for name, data in files.items():
        (ckpt / name).parent.mkdir(parents=True, exist_ok=True)
        (ckpt / name).write_bytes(data)
    return ckpt


def test_a_marked_checkpoint_whose_files_were_torn_or_removed_is_not_resumed(tmp_path):
    files = {"adapter_model.safetensors": b"w" * 64, "optimizer.pt": b"o" * 32, "sub/rng_state.pth": b"r" * 8}
    for step in (3, 6, 9):
        write_marker(_checkpoint(tmp_path, step, files), step, 1, "f1")
    marker = json.loads((tmp_path / "checkpoint-9" / COMPLETE).read_text())
    assert marker == {"step": 9, "world_size": 1, "fingerprint": "f1",
                      "files": {"adapter_model.safetensors": 64, "optimizer.pt": 32, "sub/rng_state.pth": 8}}
    (tmp_path / "checkpoint-9/optimizer.pt").write_bytes(b"o" * 5)  # torn by a power cut
    (tmp_path / "checkpoint-6/sub/rng_state.pth").unlink()           # a deletion cut short
    assert last_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-3"]
    (tmp_path / "checkpoint-3" / COMPLETE).write_text("")  # an empty marker proves nothing
    assert last_complete_checkpoint(tmp_path) is None


def test_a_checkpoint_is_resumed_only_by_the_run_that_wrote_it(formatted, tiny_base, tmp_path):
    from gabarito.io import InputError
    from stages.train import fingerprint_mismatch, run_fingerprint

    train_set, val_set = formatted
    params = TrainParams.model_validate({**PARAMS["train"], "sft": {**PARAMS["train"]["sft"], "max_steps": 4,
                                                                    "save_steps": 2}})
    # train() leaves its checkpoints to the caller (the CLI clears them once the adapter is in place),
    # just as a run killed after its last save would
    train(train_set, tiny_base, tmp_path / "a1", params, eval_records=val_set, checkpoint_dir=tmp_path / "ckpt")
    assert last_complete_checkpoint(tmp_path / "ckpt") == tmp_path / "ckpt/checkpoint-4"
    other = TrainParams.model_validate({**PARAMS["train"], "sft": {**PARAMS["train"]["sft"], "max_steps": 6,
                                                                   "save_steps": 2, "learning_rate": 1e-9}})
    with pytest.raises(InputError, match=r"other train params, data or base model .* delete .*ckpt"):
        train(train_set, tiny_base, tmp_path / "a2", other, eval_records=val_set, checkpoint_dir=tmp_path / "ckpt")
    with pytest.raises(InputError, match="other train params, data or base model"):  # other data, same params
        train(train_set[1:], tiny_base, tmp_path / "a3", params, eval_records=val_set, checkpoint_dir=tmp_path / "ckpt")
    # the same run resumes; the process count is not part of the fingerprint (it has its own check)
    again = train(train_set, tiny_base, tmp_path / "a4", params, eval_records=val_set, checkpoint_dir=tmp_path / "ckpt")
    assert again["resumed_from_step"] == 4
    launch = params.model_copy(update={"launch": params.launch.model_copy(update={"num_processes": 2})})
    fp = run_fingerprint(params, train_set, val_set, tiny_base)
    assert run_fingerprint(launch, train_set, val_set, tiny_base) == fp
    assert fingerprint_mismatch(tmp_path / "ckpt/checkpoint-4", fp) is None


def test_early_stopping_keeps_the_best_checkpoint(formatted, tiny_base, tmp_path):
    import torch

    train_set, val_set = formatted
    # a learning rate this small leaves the eval loss nearly flat: improvements stop within a few evaluations
    params = TrainParams.model_validate({"early_stopping_patience": 2, "sft": {
        "max_steps": 40, "eval_steps": 2, "save_steps": 2, "logging_steps": 1, "per_device_train_batch_size": 4,
        "learning_rate": 1e-12, "save_total_limit": None}})  # every checkpoint kept, for the resume below
    metrics = train(train_set, tiny_base, tmp_path / "adapter", params, eval_records=val_set,
                    checkpoint_dir=tmp_path / "ckpt", live_dir=tmp_path / "live")
    # stopped after 2 evaluations without a gain, long before the 40 planned steps
    assert metrics["stopped_early"] is True and metrics["steps"] < 40 and metrics["steps"] % 2 == 0
    assert metrics["eval_examples"] == 6 and metrics["best_eval_loss"] is not None
    live = json.loads((tmp_path / "live/metrics.json").read_text())
    assert {"train", "eval"} <= set(live) and "loss" in live and "learning_rate" in live
    # wall-clock figures would change dvc.lock on every run: printed, never stored
    assert not [k for k in json.dumps(live).split('"') if "per_second" in k or "runtime" in k or "peak_memory" in k]

    # killed before its last checkpoint: the one before, one evaluation short of the stop, is resumed. The
    # early-stopping counter comes back with it, so the run stops where it stopped (before the fix, the
    # counter restarted at 0 and the run went on for `patience` more evaluations)
    shutil.rmtree(tmp_path / f"ckpt/checkpoint-{metrics['steps']}")
    again = train(train_set, tiny_base, tmp_path / "again", params, eval_records=val_set,
                  checkpoint_dir=tmp_path / "ckpt")
    assert again["resumed_from_step"] == metrics["steps"] - 2
    assert {**again, "resumed_from_step": 0} == metrics
    one, two = (adapters.load(tmp_path / run) for run in ("adapter", "again"))
    assert one.keys() == two.keys() and all(torch.equal(one[k], two[k]) for k in one)


def test_a_resume_at_the_last_step_reports_the_run_s_loss_and_history(formatted, tiny_base, tmp_path):
    """Killed after the last checkpoint but before the adapter was in place: the rerun trains no step,
    and must report the loss and the DVCLive history of the run it finishes (before the fix: 0.0 and
    an empty history). logging_steps 3 with saves every 2 steps: every checkpoint still carries the
    loss of every step before it."""
    train_set, val_set = formatted
    params = TrainParams.model_validate({**PARAMS["train"], "sft": {**PARAMS["train"]["sft"], "max_steps": 4,
                                                                    "save_steps": 2, "eval_steps": 2,
                                                                    "logging_steps": 3}})
    first = train(train_set, tiny_base, tmp_path / "a1", params, eval_records=val_set,
                  checkpoint_dir=tmp_path / "ckpt", live_dir=tmp_path / "live1")
    assert first["resumed_from_step"] == 0 and first["train_loss"] > 1
    again = train(train_set, tiny_base, tmp_path / "a2", params, eval_records=val_set,
                  checkpoint_dir=tmp_path / "ckpt", live_dir=tmp_path / "live2")
    assert again["resumed_from_step"] == 4 and again["steps"] == 4
    for key in ("train_loss", "first_logged_loss", "last_logged_loss", "best_eval_loss"):
        assert again[key] == first[key], key
    one, two = live_history(tmp_path / "live1", "loss"), live_history(tmp_path / "live2", "loss")
    assert [s for s, _ in one] == [s for s, _ in two] == [2, 3, 4]  # 2 and 4: checkpoints; 3: logging_steps
    assert one == two
    assert json.loads((tmp_path / "live2/metrics.json").read_text())["train"]["loss"] == pytest.approx(
        first["train_loss"])


def test_run_mean_loss_weights_each_log_line_by_the_steps_it_covers():
    from stages.train import run_mean_loss

    history = [{"loss": 4.0, "step": 3}, {"eval_loss": 9.0, "step": 3}, {"loss": 2.0, "step": 4},
               {"loss": 1.0, "step": 6}]
    # resumed at step 4: steps 1-3 at 4.0, step 4 at 2.0, then steps 5-6 of this process at 1.0
    assert run_mean_loss(history, 4, 6, 1.0) == pytest.approx((3 * 4.0 + 2.0 + 2 * 1.0) / 6)
    assert run_mean_loss(history, 0, 6, 2.5) == 2.5  # not resumed: the Trainer's own mean
    assert run_mean_loss(history, 6, 6, 0.0) == pytest.approx((3 * 4.0 + 2.0 + 2 * 1.0) / 6)  # resumed at the end
    # a checkpoint at step 5 from before every save was logged: step 5's loss is unknown, left out
    assert run_mean_loss(history[:3], 5, 6, 1.0) == pytest.approx((3 * 4.0 + 2.0 + 1.0) / 5)
