"""Several processes: with train.launch.num_processes=2, `gabarito train` re-runs itself under
`accelerate launch` and two ranks train one adapter over gloo on CPU (DDP; on GPUs the same code talks nccl)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from gabarito.params import QuantizationParams, TrainParams
from stages.train import train
from tests import adapters
from tests.adapters import relative_distance

ROOT = Path(__file__).resolve().parents[2]
# 16 examples, 2 per process and step: 2 processes take 16 / (2 x 2) = 4 steps for the epoch (one process
# would take 8); a checkpoint and an evaluation every 2 steps, the best of the two becomes the adapter
TRAIN = {"torch_threads": 1,  # two processes on a 2-core runner
         "early_stopping_patience": None,
         "lora": {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
         "sft": {"num_train_epochs": 1, "per_device_train_batch_size": 2, "learning_rate": 3e-3, "logging_steps": 1,
                 "eval_steps": 2, "save_steps": 2, "save_total_limit": None}}
# the 2-process adapter against a 1-process run on batches twice as big (the same examples in each step, the
# loss averaged over the same tokens) differs only by float summation order. The bound is relative to what
# one skipped batch does, measured in the same test on the same CPU: at most a tenth of it. Measured on an
# Intel Xeon with AVX512-BF16: 3.1e-8 (relative norm) against 9.6e-3 for the last batch skipped.
SHARE_OF_A_SKIPPED_BATCH = 0.1


def test_two_processes_train_one_adapter(tmp_path, formatted, tiny_base):
    from peft import PeftModel
    from safetensors.torch import load_file

    from gabarito.modeling import load_4bit

    train_set, val_set = formatted
    for name, recs in (("train.jsonl", train_set), ("validation.jsonl", val_set)):
        (tmp_path / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs))
    (tmp_path / "params.yaml").write_text(json.dumps({"train": {**TRAIN, "launch": {"num_processes": 2}}}))
    proc = subprocess.run(
        [sys.executable, "-m", "gabarito.cli", "train", "--train", "train.jsonl", "--validation", "validation.jsonl",
         "--base", str(tiny_base), "--out", "run/adapter", "--checkpoints", "run/checkpoints",
         "--live-dir", "run/live", "--metrics", "run/train.json"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert "accelerate.commands.launch --num_processes 2" in proc.stderr

    metrics = json.loads((tmp_path / "run/train.json").read_text())
    assert metrics["world_size"] == 2 and metrics["steps"] == 4 and metrics["examples"] == 16
    assert math.isfinite(metrics["train_loss"]) and metrics["train_loss"] > 0
    assert metrics["best_eval_loss"] is not None and math.isfinite(metrics["best_eval_loss"])
    # written once, by rank 0: no second atomic temp folder left behind, checkpoints cleared, one DVCLive log
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["adapter", "checkpoints", "live", "train.json"]
    assert sorted(p.name for p in (tmp_path / "run/adapter").iterdir()) == [
        "README.md", "adapter_config.json", "adapter_model.safetensors"]
    assert list((tmp_path / "run/checkpoints").iterdir()) == []
    assert {"train", "eval", "loss"} <= set(json.loads((tmp_path / "run/live/metrics.json").read_text()))

    # the adapter loads with peft onto the 4-bit base
    weights = load_file(str(tmp_path / "run/adapter/adapter_model.safetensors"))
    model = PeftModel.from_pretrained(load_4bit(tiny_base, QuantizationParams()), str(tmp_path / "run/adapter"))
    loaded = {k: v for k, v in model.state_dict().items() if "lora_" in k}
    assert len(loaded) == len(weights) == 8  # A and B of q_proj and v_proj in 2 layers
    assert all(w.abs().max() > 0 for k, w in weights.items() if "lora_B" in k)  # B starts at zero: it trained

    # the same training in one process with batches of 2 x 2: DDP split each batch, it skipped or repeated none
    single = TrainParams.model_validate(
        {**TRAIN, "sft": {**TRAIN["sft"], "per_device_train_batch_size": 4, "load_best_model_at_end": False}})
    assert train(train_set, tiny_base, tmp_path / "single", single)["steps"] == 4
    reference = load_file(str(tmp_path / "single/adapter_model.safetensors"))
    assert reference.keys() == weights.keys()
    # the control: the same single run without its last batch (3 steps of 4)
    skip = TrainParams.model_validate({**TRAIN, "sft": {**single.sft.model_dump(), "max_steps": 3}})
    assert train(train_set, tiny_base, tmp_path / "skipped", skip)["steps"] == 3
    one_batch = relative_distance(adapters.load(tmp_path / "skipped"), reference)
    assert one_batch > 1e-3  # a batch moves the adapter measurably, or the bound below means nothing
    assert relative_distance(weights, reference) <= SHARE_OF_A_SKIPPED_BATCH * one_batch
