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
    kw = dict(CHECKPOINT=str(checkpoint), QLORA_ARGS="--steps 1 --warmup 1", EVAL_ARGS="--items 8 --prompt-tokens 20 30")
    run = _checks(repo_root, tmp_path / "out", "env", "gpu-tests", "qlora-memory", **kw)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    # built by qlora-memory, whole (no .partial left)
    assert (checkpoint / "config.json").exists() and not checkpoint.with_name("model.partial").exists()
    built = (checkpoint / "model.safetensors").stat().st_mtime_ns
    summary = (tmp_path / "out/summary.txt").read_text()
    for step in ("env", "gpu-tests", "qlora-memory"):
        assert f"\n{step}: ok in " in "\n" + summary, summary
    env = (tmp_path / "out/env.txt").read_text()
    assert "imports ok" in env and "cuda" in env and "bitsandbytes" in env
    assert "MISSING" not in env
    assert "1 skipped" in (tmp_path / "out/gpu-tests.txt").read_text()  # no CUDA here
    assert "tokens/step    2 x 128 = 256" in (tmp_path / "out/qlora-memory.txt").read_text()
    assert "  throughput " in summary and "gpu-tests: 1 skipped" in summary  # the figures, gathered

    # run from another folder, with a relative OUTDIR: eval-letter reuses the checkpoint, not rebuilds it
    run = subprocess.run(["bash", str(repo_root / "benchmarks/gpu_checks.sh"), "out2", "eval-letter"], cwd=tmp_path,
                         env={**ENV, **kw}, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert (checkpoint / "model.safetensors").stat().st_mtime_ns == built
    assert "items          8 synthetic" in (tmp_path / "out2/eval-letter.txt").read_text()
    summary = (tmp_path / "out2/summary.txt").read_text()
    assert summary.startswith("eval-letter: ok in ") and "  base + LoRA " in summary
    assert "throughput" not in summary and "gpu-tests" not in summary  # only this run's steps

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


def _stand_in(tmp_path, body):
    """A program in place of python for the benchmark steps: the script's verdicts, without torch."""
    exe = tmp_path / "stand-in"
    exe.write_text("#!/bin/bash\n" + body)
    exe.chmod(0o755)
    return str(exe)


def test_a_missed_target_and_a_kill_inside_the_limit_are_failures_with_their_reason(repo_root, tmp_path):
    missed = _stand_in(tmp_path, 'echo "  target memory  peak <= 16 GiB at 8,192 tokens/micro-batch: FAIL"\n')
    run = _checks(repo_root, tmp_path / "out", "qlora-memory", PYTHON=missed)
    assert run.returncode == 1
    summary = (tmp_path / "out/summary.txt").read_text()
    assert summary.startswith("qlora-memory: ran in ") and "but a target FAILED" in summary
    assert "target memory  peak <= 16 GiB at 8,192 tokens/micro-batch: FAIL" in summary

    killed = _stand_in(tmp_path, "kill -9 $$\n")  # as the kernel's OOM killer would
    run = _checks(repo_root, tmp_path / "out", "eval-letter", PYTHON=killed)
    assert run.returncode == 1
    assert "eval-letter: FAILED: killed (exit 137)" in (tmp_path / "out/summary.txt").read_text()


def test_a_sigterm_stops_the_running_step_and_the_run(repo_root, tmp_path):
    import signal
    import time

    pidfile = tmp_path / "step.pid"
    slow = _stand_in(tmp_path, f'echo $$ > {pidfile}\nexec sleep 60\n')
    proc = subprocess.Popen(["bash", "benchmarks/gpu_checks.sh", str(tmp_path / "out"), "qlora-memory", "eval-letter"],
                            cwd=repo_root, env={**ENV, "PYTHON": slow}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 30
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    step = int(pidfile.read_text())
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    summary = (tmp_path / "out/summary.txt").read_text()
    assert summary.startswith("qlora-memory: INTERRUPTED") and "eval-letter" not in summary  # no further step
    time.sleep(0.2)
    assert not Path(f"/proc/{step}").exists()  # the step's process is gone too, not left running
