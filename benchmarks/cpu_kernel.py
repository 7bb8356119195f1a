"""The two CPU paths of the 4-bit layers (evaluate.cpu_4bit_kernel), side by side in one run.

    .venv/bin/python benchmarks/cpu_kernel.py                 # ~1-2 min on two idle cores
    .venv/bin/python benchmarks/cpu_kernel.py --hidden 2048 --layers 2 --threads 1

A Llama-shaped model with seeded random weights (--hidden wide, --layers deep; 1024 x 4 by default, ~100M
parameters, so the 4-bit matmuls and not the Python overhead carry the time) is saved to a temp folder and
loaded in NF4 the way evaluate loads the base (gabarito.modeling.load_4bit), once per path. Each path runs,
--repeats times after a warm-up, no grad, median printed:
  prompt   one pass over --batch prompts of --tokens tokens: what letter mode is, and how generation starts
  step     one pass over --batch single tokens: the shape of each generated token (no KV cache here, so it
           is the matmul cost alone)
with the ratio portable / packed and how far the packed path's next-token probabilities are from the
portable ones (bf16 arithmetic). The packed kernel is a matrix-vector kernel: it wins on steps and loses
on long prompts.

The packed path exists only on CPUs with AVX512-BF16; elsewhere it runs the portable path, and this says so.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build(folder: Path, hidden: int, layers: int, vocab: int) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=hidden * 11 // 4 // 32 * 32,
                         num_hidden_layers=layers, num_attention_heads=hidden // 64, num_key_value_heads=hidden // 256,
                         max_position_embeddings=2048)
    LlamaForCausalLM(config).save_pretrained(str(folder))


def run(folder: Path, kernel: str, shapes: dict, repeats: int):
    import torch

    from gabarito.modeling import load_4bit, use_cpu_kernel
    from gabarito.params import QuantizationParams

    model = load_4bit(folder, QuantizationParams(), device="cpu").eval()
    counts = use_cpu_kernel(model, kernel)  # what load_4bit(cpu_kernel=...) does, with the layer counts
    seconds = {}
    with torch.no_grad():
        probs = model(input_ids=shapes["prompt"]).logits[:, -1].float().softmax(-1)  # warm-up; packed repacks here
        for shape, ids in shapes.items():
            model(input_ids=ids)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                model(input_ids=ids)
                times.append(time.perf_counter() - start)
            seconds[shape] = statistics.median(times)
    return seconds, probs, counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=8000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import os

    import torch
    from bitsandbytes.functional import has_avx512bf16

    torch.set_num_threads(args.threads)
    ids = torch.randint(3, args.vocab, (args.batch, args.tokens), generator=torch.Generator().manual_seed(0))
    shapes = {"prompt": ids, "step": ids[:, :1]}
    print(f"CPU AVX512-BF16: {'yes' if has_avx512bf16() else 'no (packed runs the portable path)'}; "
          f"threads {args.threads}; load average {os.getloadavg()[0]:.2f}")
    print(f"model: hidden {args.hidden}, {args.layers} layers, vocab {args.vocab}; "
          f"{args.batch} prompts x {args.tokens} tokens, median of {args.repeats}")
    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp), args.hidden, args.layers, args.vocab)
        results = {k: run(Path(tmp), k, shapes, args.repeats) for k in ("portable", "packed")}
    print(f"  {'':9s} {'prompt':>10s} {'step':>10s}   4-bit layers")
    for kernel, (seconds, _, counts) in results.items():
        print(f"  {kernel:9s} {seconds['prompt'] * 1000:7.0f} ms {seconds['step'] * 1000:7.1f} ms   "
              f"{counts['packed']} packed, {counts['portable']} portable")
    ratio = {s: results["portable"][0][s] / results["packed"][0][s] for s in shapes}
    gap = (results["packed"][1] - results["portable"][1]).abs().max().item()
    print(f"  portable / packed time: prompt {ratio['prompt']:.2f}x, step {ratio['step']:.2f}x "
          f"(above 1: packed is faster); largest next-token probability difference {gap:.2e}")


if __name__ == "__main__":
    main()
