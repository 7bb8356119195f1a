"""Letter-mode evaluation of the whole validation split on a Mistral-7B-shaped model in 4-bit: wall time.

    python benchmarks/eval_letter_7b.py                      # CUDA: Mistral-7B shape, 2,985 items, batch 32
    python benchmarks/eval_letter_7b.py --shape small        # CPU: a small shape, 64 items, seconds (no rot)
    python benchmarks/eval_letter_7b.py --batch-size 64 --checkpoint /tmp/mistral-7b-random

Target (issue #6): all 2,985 validation items with a 7B-shaped model in ``letter`` mode, batched, in
under 2 minutes on one GPU.

The model is built as benchmarks/qlora_memory.py builds it (its helpers, imported): random bf16
weights of Mistral-7B-v0.1's shape (Zephyr-7B-beta's base) drawn on the GPU, saved to a temporary
checkpoint and loaded back by ``gabarito.modeling.load_4bit``, the loader evaluate uses, with
the thesis profile's ``train.quantization`` (NF4, double quantization, bfloat16 compute; float32
compute on CPU, as params.yaml has it there). The scoring is ``gabarito.scoring.score_letters``
itself, at the thesis profile's ``evaluate.batch_size`` (32): tokenization, sorting by length,
left padding, one forward pass per item with the LM head on the last position only.

The items are synthetic: random words of a word-level tokenizer over the random vocabulary, one
token each (w2 ... w31999), so a prompt's length is exactly what was drawn: uniform in 250-450 tokens (mean 350),
plus the one answer-prefix token score_letters appends. Why that range: the Cosmos QA validation
prompts in the chat template are 797-1,301 characters (median 1,077) of Portuguese (system prompt,
context, question, four options), and Llama's SentencePiece vocabulary, Zephyr's, cuts Portuguese
into ~3 characters per token, so ~270-430 tokens; the range is a little wider and longer on purpose.
The answer prefix and the four letters are the words w2 and w3-w6 (the template's "Alternativa"
and A-D are not in a random vocabulary); their count and position are what matter for the cost.

By default the fine-tuned model is timed too, as evaluate scores it: the same base wrapped by peft
with the thesis profile's LoRA (r=16 on six projections, unmerged, in float32). Its B matrices
start at zero, so its probabilities equal the base's; the extra matmuls are what it costs. Prints
the wall time (torch.cuda.synchronize() before the clock starts and stops, after one untimed
warm-up batch), items/s, tokens/s, model TFLOP/s (2 N per prompt token, N without the input
embedding and the LM head, which runs on one position per item), peak GPU memory, and the target.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
# before anything imports tqdm, which reads it then: score_letters' progress bar would bury the figures
os.environ.setdefault("TQDM_DISABLE", "1")

from qlora_memory import SHAPES, build_checkpoint, model_flops_params  # noqa: E402

from gabarito.params import parse_section
from gabarito.tools.profile import load_profile

PROFILE = "thesis"  # profiles/thesis.yaml over the shipped params
VALIDATION_ITEMS = 2985  # the Cosmos QA validation split the thesis scores
TARGET_SECONDS = 120.0
ANSWER_PREFIX, LETTERS = "w2", ["w3", "w4", "w5", "w6"]  # ids 2-6 of word_tokenizer


def word_tokenizer(vocab: int):
    """One token per space-separated word: ``<pad>`` (0), ``</s>`` (1), then ``w2`` ... ``w{vocab-1}``.

    Not qlora_memory's random_tokenizer: its special tokens t0 and t1 are matched inside words too
    ("t1234" is t1 + unknown), and it has no pre-tokenizer, so a prompt's length would not be the drawn one.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = {"<pad>": 0, "</s>": 1, **{f"w{i}": i for i in range(2, vocab)}}
    tok = Tokenizer(models.WordLevel(words, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<pad>", pad_token="<pad>", eos_token="</s>")


def synthetic_prompts(n: int, low: int, high: int, vocab: int, seed: int) -> list[str]:
    """``n`` prompts of random words, each uniform in [low, high] tokens long; seeded."""
    rng = random.Random(seed)
    first = 2 + 1 + len(LETTERS)  # never the padding, EOS, prefix or letter words
    return [" ".join(f"w{rng.randrange(first, vocab)}" for _ in range(rng.randint(low, high))) for _ in range(n)]


def time_letters(model, tokenizer, prompts: list[str], batch_size: int, cuda: bool) -> tuple[float, list[list[float]]]:
    """(seconds, probabilities): one untimed warm-up batch, then every prompt through score_letters."""
    import torch

    from gabarito.scoring import score_letters

    kwargs = dict(answer_prefix=ANSWER_PREFIX, letters=LETTERS, batch_size=batch_size)
    score_letters(model, tokenizer, prompts[:batch_size], **kwargs)  # kernel selection, allocator, cuBLAS
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    probs = score_letters(model, tokenizer, prompts, **kwargs)
    if cuda:
        torch.cuda.synchronize()  # .tolist() in score_letters syncs each batch already; this makes it explicit
    return time.perf_counter() - start, probs


def parse_args(argv: list[str] | None, cuda: bool, thesis_batch: int) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="mistral-7b" if cuda else "small")
    ap.add_argument("--items", type=int, default=None,
                    help=f"synthetic items (default {VALIDATION_ITEMS:,} on CUDA, the validation split; 64 on CPU)")
    ap.add_argument("--batch-size", type=int, default=thesis_batch,
                    help=f"items per forward pass (default: the thesis profile's evaluate.batch_size, "
                         f"{thesis_batch})")
    ap.add_argument("--prompt-tokens", type=int, nargs=2, default=[250, 450], metavar=("LOW", "HIGH"),
                    help="prompt length range in tokens, uniform (default 250 450: Cosmos QA in the chat template)")
    ap.add_argument("--compute-dtype", choices=["bfloat16", "float16", "float32"], default=None,
                    help="bnb_4bit_compute_dtype (default: the profile's bfloat16 on CUDA, float32 on CPU)")
    ap.add_argument("--no-lora", action="store_true", help="time the base model only, not base + LoRA as well")
    ap.add_argument("--checkpoint", type=Path, default=None,
                    help="keep the random checkpoint here and reuse it next time (default: a temporary folder)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    args = ap.parse_args(argv)
    low, high = args.prompt_tokens
    if not 1 <= low <= high:
        ap.error("--prompt-tokens: give LOW <= HIGH, both >= 1")
    return args


def time_models(config, quant, lora, tokenizer, prompts: list[str], args: argparse.Namespace, device: str,
                cuda: bool) -> tuple[float, list[tuple]]:
    """(seconds to build and load the model, [(label, seconds, peak bytes or None, probabilities)]): the
    base in 4-bit as evaluate loads it, then, unless --no-lora, base + LoRA as evaluate's fine-tuned pass."""
    import torch

    from gabarito.modeling import load_4bit

    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="eval-7b-bench-") as tmp:
        folder = args.checkpoint or Path(tmp) / "model"
        build_checkpoint(config, folder, device)
        model = load_4bit(folder, quant)
        model.eval()
        built = time.perf_counter() - started

        # --- score: the base, then base + LoRA as evaluate's fine-tuned pass ----------------------
        seconds, probs = time_letters(model, tokenizer, prompts, args.batch_size, cuda)
        results.append(("base", seconds, torch.cuda.max_memory_allocated() if cuda else None, probs))
        if not args.no_lora:
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(model, LoraConfig(**lora.model_dump()))
            model.eval()
            seconds, probs = time_letters(model, tokenizer, prompts, args.batch_size, cuda)
            results.append(("base + LoRA", seconds, torch.cuda.max_memory_allocated() if cuda else None, probs))
    return built, results


def print_results(results: list[tuple], *, items: int, tokens: int, n_body: int, at_target: bool) -> bool:
    """A line per timed model, the LoRA check and the target; False when scoring went wrong."""
    gib = 2**30
    ok = True
    for label, seconds, peak, probs in results:
        finite = all(math.isfinite(x) for row in probs for x in row) and all(abs(sum(r) - 1) < 1e-3 for r in probs)
        ok &= finite and len(probs) == items
        memory = f"; peak memory {peak / gib:.2f} GiB" if peak is not None else ""
        print(f"  {label:<14} {seconds:.2f} s wall, {items / seconds:,.1f} items/s, {tokens / seconds:,.0f} tokens/s, "
              f"{2 * n_body * tokens / seconds / 1e12:.3g} model TFLOP/s{memory}"
              + ("" if finite else "; probabilities NOT finite"))
    if len(results) == 2:
        diff = max(abs(a - b) for ra, rb in zip(results[0][3], results[1][3]) for a, b in zip(ra, rb))
        print(f"  LoRA check     max |p(base + LoRA) - p(base)| = {diff:.2g} (B starts at zero: ~0 expected)")
    base_seconds = results[0][1]
    print(f"  target         {VALIDATION_ITEMS:,} items with the 7B shape in letter mode in under "
          f"{TARGET_SECONDS / 60:.0f} minutes on a GPU: "
          + (("PASS" if base_seconds < TARGET_SECONDS else "FAIL") + f" ({base_seconds:.1f} s)" if at_target
             else "n/a (needs CUDA, --shape mistral-7b and the default --items)"))
    return ok


def main(argv: list[str] | None = None) -> int:
    import warnings

    import torch
    import transformers

    warnings.filterwarnings("ignore", category=FutureWarning)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()

    cuda = torch.cuda.is_available()
    thesis = load_profile(PROFILE, ROOT / "profiles")
    train = parse_section("train", thesis["train"])
    args = parse_args(argv, cuda, parse_section("evaluate", thesis["evaluate"]).batch_size)
    low, high = args.prompt_tokens

    torch.set_num_threads(args.threads)
    device = f"cuda:{torch.cuda.current_device()}" if cuda else "cpu"
    items = args.items or (VALIDATION_ITEMS if cuda else 64)
    compute = args.compute_dtype or (train.quantization.bnb_4bit_compute_dtype if cuda else "float32")
    quant = train.quantization.model_copy(update={"bnb_4bit_compute_dtype": compute})
    shape = dict(SHAPES[args.shape])
    from transformers import MistralConfig

    config = MistralConfig(**shape, tie_word_embeddings=False)
    # forward FLOPs per prompt token: the LM head runs on one position per item (logits_to_keep=1)
    n_body = model_flops_params(config) - config.vocab_size * config.hidden_size
    tokenizer = word_tokenizer(config.vocab_size)
    prompts = synthetic_prompts(items, low, high, config.vocab_size, args.seed)
    lengths = [len(ids) + 1 for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]]  # + the prefix
    tokens = sum(lengths)
    name = torch.cuda.get_device_name() if cuda else "CPU"

    # --- build the random checkpoint; load it in 4-bit as evaluate does; score --------------------
    built, results = time_models(config, quant, train.lora, tokenizer, prompts, args, device, cuda)

    # --- report -----------------------------------------------------------------------------------
    print(f"letter-mode benchmark: {args.shape} shape on {name}" + ("" if cuda else f" ({args.threads} threads)"))
    print(f"  model          hidden {shape['hidden_size']}, MLP {shape['intermediate_size']}, "
          f"{shape['num_hidden_layers']} layers, {shape['num_attention_heads']}/{shape['num_key_value_heads']} "
          f"heads, vocab {shape['vocab_size']}; random weights, built and loaded in 4-bit in {built:.0f} s")
    profile_compute = train.quantization.bnb_4bit_compute_dtype
    print(f"  quantization   {quant.bnb_4bit_quant_type}, double quant {quant.bnb_4bit_use_double_quant}, "
          f"compute {compute} (the thesis profile's train.quantization"
          + ("" if compute == profile_compute else f", whose compute dtype is {profile_compute}") + ")")
    print(f"  items          {items:,} synthetic, prompts {min(lengths)}-{max(lengths)} tokens with the answer "
          f"prefix (mean {tokens / items:.1f}, drawn uniform in {low}-{high} + 1): {tokens:,} tokens")
    print(f"  batch          {args.batch_size}, sorted by length (gabarito.scoring.score_letters)")
    at_target = cuda and args.shape == "mistral-7b" and items == VALIDATION_ITEMS
    if not print_results(results, items=items, tokens=tokens, n_body=n_body, at_target=at_target):
        print("  scoring failed: non-finite probabilities or missing items", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
