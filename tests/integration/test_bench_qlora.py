"""benchmarks/qlora_memory.py keeps running: its small shape on CPU, two steps, and the 7B shape's size."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys


def _bench(repo_root):
    spec = importlib.util.spec_from_file_location("qlora_memory", repo_root / "benchmarks/qlora_memory.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_7b_shape_is_mistral_7b_and_the_lora_is_the_thesis_one(repo_root):
    from transformers import MistralConfig

    bench = _bench(repo_root)
    n = bench.model_flops_params(MistralConfig(**bench.SHAPES["mistral-7b"], tie_word_embeddings=False))
    # Mistral-7B-v0.1 has 7,241,732,096 parameters; its input embedding (32000 x 4096) is a lookup
    assert n == 7_241_732_096 - 32000 * 4096
    lora = bench.thesis_train()["lora"]
    assert lora["r"] == 16 and len(lora["target_modules"]) == 6
    assert bench.gpu_peak_tflops("NVIDIA H100 PCIe") == 756.0 and bench.gpu_peak_tflops("NVIDIA H200") == 989.0


def test_small_shape_runs_two_steps_on_cpu(repo_root):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1"}
    out = subprocess.run([sys.executable, "benchmarks/qlora_memory.py", "--shape", "small", "--steps", "2",
                          "--warmup", "1", "--peak-tflops", "1"], cwd=repo_root, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    assert "tokens/step    2 x 128 = 256" in text
    tokens_per_s = float(re.search(r"throughput\s+([\d,.]+) tokens/s", text).group(1).replace(",", ""))
    assert tokens_per_s > 0
    assert re.search(r"peak memory\s+\d+ MiB peak RSS", text)
    # MFU against the given 1 TFLOP/s: 4 N tokens/s, N of the small shape
    n = _bench(repo_root).model_flops_params(__import__("transformers").MistralConfig(
        **_bench(repo_root).SHAPES["small"], tie_word_embeddings=False))
    mfu = float(re.search(r"MFU\s+([\d.]+)% of 1 TFLOP/s", text).group(1)) / 100
    assert abs(mfu - 4 * n * tokens_per_s / 1e12) < 0.0006
    assert re.search(r"loss \d+\.\d+ -> \d+\.\d+", text)  # finite losses (the script exits 1 otherwise)
