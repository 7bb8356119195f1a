"""`letter` against `generate` evaluation speed on the tiny model, CPU, every figure measured in one run.

    .venv/bin/python benchmarks/eval_speed.py                     # ~30 s on two idle cores
    .venv/bin/python benchmarks/eval_speed.py --items 58 --reference-items 16 --threads 1

Needs `dvc repro format` (or a full `dvc repro`) first: it reads models/base and
data/processed/validation.jsonl (or give --base and --validation). Prints milliseconds per item of:

  letter      gabarito.scoring.score_letters, batched: one forward pass per item (what evaluate runs)
  generate    gabarito.scoring.generate, batched, greedy, stopping at a newline: at the pipeline's
              evaluate.max_new_tokens (params.yaml, 8) and at 32
  reference   the thesis's procedure for the base model: one item at a time, no stop string,
              GenerationConfig(do_sample=True, top_k=1, temperature=0.1, max_new_tokens=256), whose
              3,000 outputs were then classified by hand. Slow, so it runs on the first
              --reference-items items only; its figure is a mean over that many items of 256
              forward passes each, already steady, so it is timed once.

and each one's ratio to letter. The batched modes are timed --repeats times on the same items and
the median taken. "passes" is the mean number of forward passes per batch (per item for the
reference): how many times the model runs, which is what generate pays for. For the reference the
mean number of new tokens per item and how many items sampled EOS are printed as well: a model that
never says EOS (the tiny base is one) runs all 256 steps on every item.

Timing on a shared machine: with other processes busy, torch's threads wait for each other at every
operation (on the 2-core machine, with other jobs running, a (6400 x 64) @ (64 x 192) matmul took
2.3 ms on one thread and 16 ms on two), and every mode slows down many times over, unevenly. The
load average is printed; when it is above the core count, --threads 1 gives the steadier ratios.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# before anything imports tqdm, which reads it then: evaluate's per-batch progress bars would bury the table
os.environ.setdefault("TQDM_DISABLE", "1")

from gabarito.io import read_jsonl
from gabarito.modeling import load_4bit, load_tokenizer, seed_everything
from gabarito.params import QuantizationParams, load_section
from gabarito.scoring import generate, score_letters

# the reference thesis's generation settings for the base model (evaluated one item at a time)
REFERENCE = dict(do_sample=True, top_k=1, temperature=0.1, max_new_tokens=256)


class PassCounter:
    """Counts the model's forward passes (a forward pre-hook): one per batch in letter mode, one per
    generated token in generate mode."""

    def __init__(self, model):
        self.n = 0
        model.register_forward_pre_hook(self._hook)

    def _hook(self, module, args):
        self.n += 1


def reference_generate(model, tokenizer, prompts: list[str], *, seed: int) -> list[int]:
    """The thesis procedure: each prompt alone, sampled with REFERENCE; returns new tokens per item."""
    import torch
    from transformers import GenerationConfig

    config = GenerationConfig(**REFERENCE, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    device = next(model.parameters()).device
    torch.manual_seed(seed)
    new_tokens = []
    for prompt in prompts:
        enc = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(device)
        with torch.no_grad():
            out = model.generate(**enc, generation_config=config)
        new_tokens.append(out.shape[1] - enc["input_ids"].shape[1])
    return new_tokens


def timed(fn, counter: PassCounter, repeats: int) -> tuple[float, float, object]:
    """(median seconds, forward passes per run, last result) over ``repeats`` runs of ``fn``."""
    seconds, passes, result = [], [], None
    for _ in range(repeats):
        counter.n = 0
        start = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - start)
        passes.append(counter.n)
    return statistics.median(seconds), statistics.mean(passes), result


def main(argv: list[str] | None = None) -> int:
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    evaluate_params = load_section("evaluate", ROOT / "params.yaml")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", default=str(ROOT / "models/base"))
    ap.add_argument("--validation", default=str(ROOT / "data/processed/validation.jsonl"))
    ap.add_argument("--items", type=int, default=48, help="multiple-choice items for letter and generate")
    ap.add_argument("--batch-size", type=int, default=evaluate_params.batch_size,
                    help=f"batch of letter and generate (default: params.yaml's {evaluate_params.batch_size})")
    ap.add_argument("--new-tokens", type=int, nargs="+", default=[evaluate_params.max_new_tokens, 32],
                    help=f"generate's max_new_tokens (default: params.yaml's {evaluate_params.max_new_tokens}; 32)")
    ap.add_argument("--reference-items", type=int, default=8,
                    help="items for the reference procedure (256 one-item forward passes each); 0 skips it")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each batched mode (the median is printed)")
    ap.add_argument("--threads", type=int, default=evaluate_params.torch_threads,
                    help=f"CPU threads for torch (default: params.yaml's {evaluate_params.torch_threads})")
    args = ap.parse_args(argv)
    if min(args.items, args.batch_size, args.repeats, args.threads) < 1 or args.reference_items < 0:
        ap.error("--items, --batch-size, --repeats and --threads must be >= 1, --reference-items >= 0")

    seed_everything(0, args.threads)
    records = [r for r in read_jsonl(args.validation) if r["kind"] == "mcq"]
    prompts = [r["prompt"] for r in records][: args.items]
    ref_prompts = prompts[: args.reference_items]
    tokenizer = load_tokenizer(args.base)
    model = load_4bit(args.base, QuantizationParams())
    model.eval()
    counter = PassCounter(model)
    letters = dict(answer_prefix="Alternativa", letters=list("ABCD"))
    lengths = [len(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]]
    load_before = os.getloadavg()[0]

    # warm-up: first calls pay for kernel selection and allocation
    score_letters(model, tokenizer, prompts[:4], batch_size=4, **letters)
    generate(model, tokenizer, prompts[:4], max_new_tokens=2, batch_size=4)

    # --- measure: every mode in this one process, on the same items ------------------------------
    batches = math.ceil(len(prompts) / args.batch_size)
    rows = []  # (label, items, runs, seconds per item, forward passes per batch or per reference item)
    sec, passes, _ = timed(lambda: score_letters(model, tokenizer, prompts, batch_size=args.batch_size, **letters),
                           counter, args.repeats)
    letter = sec / len(prompts)
    rows.append(("letter", len(prompts), args.repeats, letter, passes / batches))
    for n in args.new_tokens:
        sec, passes, _ = timed(lambda: generate(model, tokenizer, prompts, max_new_tokens=n,
                                                batch_size=args.batch_size), counter, args.repeats)
        label = f"generate, {n} new tokens" + (" (pipeline)" if n == evaluate_params.max_new_tokens else "")
        rows.append((label, len(prompts), args.repeats, sec / len(prompts), passes / batches))
    if ref_prompts:
        sec, passes, new_tokens = timed(lambda: reference_generate(model, tokenizer, ref_prompts, seed=0), counter, 1)
        rows.append(("reference (thesis)", len(ref_prompts), 1, sec / len(ref_prompts), passes / len(ref_prompts)))
    load_after = os.getloadavg()[0]

    # --- report ----------------------------------------------------------------------------------
    cores = os.cpu_count() or 1
    busy = max(load_before, load_after) > cores
    print(f"eval_speed: 4-bit NF4 tiny model on CPU, {args.threads} thread{'s' if args.threads > 1 else ''}; "
          f"{len(prompts)} validation items, prompts {min(lengths)}-{max(lengths)} tokens "
          f"(mean {statistics.mean(lengths):.0f}); batch {args.batch_size}")
    print(f"  load average {load_before:.1f} before, {load_after:.1f} after ({cores} cores"
          + ("; other work on the machine: figures are noisy" if busy else "") + ")")
    print(f"  {'mode':<34} {'items':>5} {'runs':>4} {'ms/item':>9} {'passes':>7} {'vs letter':>10}")
    for label, items, runs, per_item, per in rows:
        print(f"  {label:<34} {items:>5} {runs:>4} {per_item * 1000:>9.2f} {per:>7.1f} {per_item / letter:>9.1f}x")
    if ref_prompts:
        eos = sum(t < REFERENCE["max_new_tokens"] for t in new_tokens)
        print(f"  reference      GenerationConfig({', '.join(f'{k}={v}' for k, v in REFERENCE.items())}), "
              f"one item at a time, the first {len(ref_prompts)} items")
        print(f"                 mean new tokens {statistics.mean(new_tokens):.1f} of {REFERENCE['max_new_tokens']}; "
              f"EOS sampled on {eos} of {len(ref_prompts)} items")
        ratio = rows[-1][3] / letter
        print(f"  target         letter >= 20x faster per item than the reference procedure: {ratio:.1f}x "
              f"{'PASS' if ratio >= 20 else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
