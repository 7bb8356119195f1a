"""Launching and resuming with several processes: the guards that need no training to check."""

from __future__ import annotations

from gabarito.params import LaunchParams
from stages.train import (
    COMPLETE,
    LAUNCHED,
    accelerate_command,
    launched,
    world_size_mismatch,
)


def _ckpt(folder, step: int, marker: str):
    ckpt = folder / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / COMPLETE).write_text(marker)
    return ckpt


def test_a_checkpoint_resumes_only_with_the_process_count_that_wrote_it(tmp_path):
    two = _ckpt(tmp_path / "a", 6, "6 2")
    assert world_size_mismatch(two, 2) is None
    message = world_size_mismatch(two, 1)
    assert "saved by 2 training process(es), and this run has 1" in message
    assert "train.launch.num_processes back to 2" in message and str(tmp_path / "a") in message
    # markers written before the world size was recorded came from one process
    old = _ckpt(tmp_path / "b", 4, "4")
    assert world_size_mismatch(old, 1) is None and "saved by 1" in world_size_mismatch(old, 2)
    assert world_size_mismatch(None, 4) is None  # nothing to resume


def test_only_our_own_launch_counts_as_launched(monkeypatch):
    # accelerate's plain launcher sets no LOCAL_RANK; torchrun does, for any script: neither is ours
    monkeypatch.delenv(LAUNCHED, raising=False)
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert not launched()
    monkeypatch.setenv(LAUNCHED, "1")
    assert launched()


def test_accelerate_command():
    ddp = accelerate_command(LaunchParams(num_processes=2), ["train", "--out", "x"])
    assert ddp[1:] == ["-m", "accelerate.commands.launch", "--num_processes", "2", "--multi_gpu",
                       "--main_process_port", "0", "-m", "gabarito.cli", "train", "--out", "x"]
    fsdp = accelerate_command(LaunchParams(num_processes=4, config_file="configs/accelerate/fsdp_qlora.yaml"), ["train"])
    assert fsdp[3:7] == ["--num_processes", "4", "--config_file", "configs/accelerate/fsdp_qlora.yaml"]
