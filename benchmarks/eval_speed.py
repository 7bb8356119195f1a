"""`letter` against `generate` evaluation speed on the tiny model, CPU, measured in one run.

    .venv/bin/python benchmarks/eval_speed.py [--base models/base] [--items 48] [--new-tokens 8 32]

Needs `dvc repro format` (or a full `dvc repro`) first: it reads models/base and
data/processed/validation.jsonl. Prints seconds per item for each mode and the ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stages.evaluate import generate, score_letters  # noqa: E402
from stages.io import read_jsonl  # noqa: E402
from stages.modeling import load_4bit, load_tokenizer, seed_everything  # noqa: E402
from stages.params import QuantizationParams  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default=str(ROOT / "models/base"))
    ap.add_argument("--validation", default=str(ROOT / "data/processed/validation.jsonl"))
    ap.add_argument("--items", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    seed_everything(0, args.threads)
    prompts = [r["prompt"] for r in read_jsonl(args.validation) if r["kind"] == "mcq"][: args.items]
    tokenizer = load_tokenizer(args.base)
    model = load_4bit(args.base, QuantizationParams())
    model.eval()
    # warm-up: first calls pay for kernel selection and allocation
    score_letters(model, tokenizer, prompts[:4], answer_prefix="Alternativa", letters=list("ABCD"), batch_size=4)
    generate(model, tokenizer, prompts[:4], max_new_tokens=2, batch_size=4)

    start = time.perf_counter()
    score_letters(model, tokenizer, prompts, answer_prefix="Alternativa", letters=list("ABCD"),
                  batch_size=args.batch_size)
    letter = (time.perf_counter() - start) / len(prompts)
    print(f"{len(prompts)} items, batch {args.batch_size}, {args.threads} threads, 4-bit NF4 tiny model on CPU")
    print(f"{'mode':<22} {'ms/item':>8} {'vs letter':>9}")
    print(f"{'letter':<22} {letter * 1000:>8.2f} {1.0:>8.1f}x")
    for n in args.new_tokens:
        start = time.perf_counter()
        # the base model never says EOS, so every item runs all n steps, as a rambling model does
        generate(model, tokenizer, prompts, max_new_tokens=n, batch_size=args.batch_size)
        gen = (time.perf_counter() - start) / len(prompts)
        print(f"{'generate, ' + str(n) + ' new tokens':<22} {gen * 1000:>8.2f} {gen / letter:>8.1f}x")


if __name__ == "__main__":
    main()
