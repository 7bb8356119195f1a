"""benchmarks/gpu_checks.sh, the one-run GPU check, rehearsed on CPU: every step runs (the benchmarks
in their small shapes) and shares one checkpoint; a failing or overlong step is named in the summary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHON": sys.executable}


def _checks(repo_root, out, *steps, **env):
    return subprocess.run(["bash", "benchmarks/gpu_checks.sh", str(out), *steps], cwd=repo_root,
                          env={**ENV, **env}, capture_output=True, text=True, timeout=600)


def test_every_step_runs_and_the_benchmarks_share_one_checkpoint(repo_root, tmp_path):
    checkpoint = tmp_path / "ckpt" / "model"
    run = _checks(repo_root, tmp_path / "out", CHECKPOINT=str(checkpoint), QLORA_ARGS="--steps 1 --warmup 1",
                  EVAL_ARGS="--items 8 --prompt-tokens 20 30")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    summary = (tmp_path / "out/summary.txt").read_text()
    for step in ("env", "gpu-tests", "qlora-memory", "eval-letter"):
        assert f"\n{step}: ok in " in "\n" + summary, summary
    env = (tmp_path / "out/env.txt").read_text()
    assert "imports ok" in env and "cuda" in env and "bitsandbytes" in env
    assert "MISSING" not in env
    assert "1 skipped" in (tmp_path / "out/gpu-tests.txt").read_text()  # no CUDA here
    assert "tokens/step    2 x 128 = 256" in (tmp_path / "out/qlora-memory.txt").read_text()
    assert "items          8 synthetic" in (tmp_path / "out/eval-letter.txt").read_text()
    # the figures are gathered into the summary
    assert "  throughput " in summary and "  base + LoRA " in summary and "gpu-tests: 1 skipped" in summary
    # built once by qlora-memory, whole (no .partial left), and reused by eval-letter
    assert (checkpoint / "config.json").exists() and not checkpoint.with_name("model.partial").exists()
    built = (checkpoint / "model.safetensors").stat().st_mtime_ns

    # a checkpoint of another shape is refused, and left as it was
    bad = subprocess.run([sys.executable, "benchmarks/eval_letter_7b.py", "--shape", "mistral-7b", "--items", "2",
                          "--checkpoint", str(checkpoint)], cwd=repo_root, env=ENV, capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode != 0 and "holds a checkpoint of another shape" in bad.stderr
    assert (checkpoint / "model.safetensors").stat().st_mtime_ns == built


def test_a_failing_step_and_an_overlong_one_are_named_and_fail_the_run(repo_root, tmp_path):
    run = _checks(repo_root, tmp_path / "out", "eval-letter", "qlora-memory", CHECKPOINT=str(tmp_path / "m"),
                  EVAL_ARGS="--prompt-tokens 5 1", LIMIT_QLORA="1")
    assert run.returncode == 1
    summary = (tmp_path / "out/summary.txt").read_text()
    assert "eval-letter: FAILED (exit 2)" in summary and "see eval-letter.txt" in summary
    assert "give LOW <= HIGH" in Path(tmp_path / "out/eval-letter.txt").read_text()
    assert "qlora-memory: FAILED: over its 1 s limit" in summary
    assert "env:" not in summary  # only the steps asked for ran

    unknown = _checks(repo_root, tmp_path / "out2", "qlora")
    assert unknown.returncode == 2 and "no step 'qlora'" in unknown.stderr
