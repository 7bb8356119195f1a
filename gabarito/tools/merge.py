"""Fold the LoRA adapter into the base model, for serving without peft, and check it still scores alike.

    gabarito merge --base models/base --adapter models/adapter --validation data/processed/validation.jsonl \\
        --out models/merged --report metrics/merge.json

Sections: load the base in 16 bits / attach the adapter and merge / save (safetensors) / parity check.

Merging never touches 4-bit weights: adding B @ A to NF4 weights would round the sum back to 16
levels per block and lose most of the update. The merged weights are 16-bit (``merge.dtype``), and
there are two known recipes for what the update is added to (``base_weights``):

  dequantized (default)  the base as training and `evaluate` saw it: quantized to NF4 exactly as
                         ``load_4bit`` does, then dequantized. The merged model computes what was
                         evaluated, up to rounding to ``merge.dtype``.
  original               the base's original 16-bit weights (the common recipe). The adapter was
                         trained to correct the NF4 base, not this one, so scores can move. The
                         tiny offline model is very sensitive to this: its random base alone picks
                         another letter on 14 of 48 validation items in 4-bit than in float32.

Either way ``parity`` re-scores validation with both models and fails when letter-mode accuracy
moves by more than ``merge.parity_tolerance``.
"""

from __future__ import annotations

import gc
import hashlib
from pathlib import Path
from typing import Literal

import click

from gabarito import io
from gabarito.clikit import log, params_option, user_errors
from gabarito.io import InputError
from gabarito.params import MergeParams, QuantizationParams


class ParityError(InputError):
    """The merged model scores differently from base+adapter by more than merge.parity_tolerance.

    ``report`` holds the parity figures, so a caller can still write them before failing.
    """

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


def _device() -> str:
    import torch

    return f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"


def load_dense(path: str | Path, dtype: str, device: str = "cpu"):
    """A base (local folder or pinned hub reference) or a merged model, unquantized, in ``dtype``."""
    import torch
    from transformers import AutoModelForCausalLM

    from gabarito.modeling import resolve_base

    name, revision = resolve_base(path)
    model = AutoModelForCausalLM.from_pretrained(name, revision=revision, dtype=getattr(torch, dtype),
                                                 device_map={"": device})
    model.eval()
    return model


def load_dequantized(base: str | Path, q: QuantizationParams, dtype: str):
    """The base quantized exactly as ``load_4bit`` quantizes it, then dequantized to ``dtype``, on CPU."""
    import torch

    from gabarito.modeling import load_4bit

    # on CPU even with a GPU present (see merge's docstring)
    model = load_4bit(base, q, device="cpu").dequantize(dtype=getattr(torch, dtype))
    model.eval()
    return model.to(getattr(torch, dtype))  # norms and embeddings were never quantized


def merge(base: str | Path, adapter: str | Path, out_dir: str | Path, p: MergeParams, q: QuantizationParams, *,
          base_weights: Literal["dequantized", "original"] = "dequantized") -> dict:
    """Write base + adapter, merged, to ``out_dir`` (safetensors + tokenizer); return a summary.

    ``q`` is the quantization the adapter was trained with (``train.quantization``). Same inputs
    give the same bytes: everything runs on CPU with pinned threads (a GPU's kernels could round
    differently from one card to the next), and the files hold no timestamps nor ``out_dir``.
    Memory: a 7B base takes 14.5 GB of RAM in float16 (29 GB in float32), plus ~4 GB while 4-bit.
    """
    from peft import PeftModel

    from gabarito.modeling import check_adapter, load_tokenizer, seed_everything

    seed_everything(0, p.torch_threads)
    check_adapter(adapter)

    # --- load the base in 16 bits and attach the adapter ----------------------------------------
    tokenizer = load_tokenizer(base)
    if base_weights == "dequantized":
        model = load_dequantized(base, q, p.dtype)
    elif base_weights == "original":
        model = load_dense(base, p.dtype, "cpu")
    else:
        raise ValueError(f"base_weights must be 'dequantized' or 'original', not {base_weights!r}")
    model = PeftModel.from_pretrained(model, str(adapter))
    lora_layers = sum(1 for name, _ in model.named_modules() if name.endswith(".lora_A"))
    if not lora_layers:
        raise InputError(f"{adapter}: the adapter matches no layer of {base}; was it trained on another base?")

    # --- merge ----------------------------------------------------------------------------------
    # safe_merge: refuse NaN/inf weights (a float16 overflow) instead of saving a broken model.
    # peft computes B @ A in the adapter's float32 and adds it in `dtype`: one rounding per weight
    try:
        model = model.merge_and_unload(safe_merge=True)
    except ValueError as exc:  # peft's "NaNs detected in the merged weights"
        raise InputError(f"merging {adapter} into {base} in {p.dtype} gave NaN or inf weights ({exc}). A float16 "
                         "sum overflows most often: set merge.dtype to bfloat16 or float32 in params.yaml.") from None
    leftovers = [n for n, _ in model.named_modules() if "lora_" in n]
    if leftovers:  # would mean a peft change left adapter layers behind
        raise RuntimeError(f"LoRA layers left after merging: {leftovers[:3]}")

    # --- save -----------------------------------------------------------------------------------
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))  # safetensors is transformers 5's only format
    tokenizer.save_pretrained(str(out_dir))
    weights = sorted(out_dir.glob("*.safetensors"))
    if not weights:
        raise RuntimeError(f"{out_dir}: no safetensors file was written")
    return {
        "dtype": p.dtype,
        "base_weights": base_weights,
        "lora_layers_merged": lora_layers,
        "parameters": sum(t.numel() for t in model.parameters()),
        "sha256": {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in weights},
    }


def parity_report(ref: list[dict], got: list[dict], p: MergeParams, *, strict: bool) -> dict:
    """parity()'s report from the two models' letter-mode predictions of the same items, in order. With
    ``strict``, ParityError when the accuracy or the predicted letters moved more than the tolerance."""
    n = len(ref)
    right_ref, right_got = sum(r["correct"] for r in ref), sum(g["correct"] for g in got)
    diff = abs(right_ref - right_got) / n  # from counts: no float noise at the threshold
    # answers that flip both ways cancel out in the accuracy: the share of changed letters is held to
    # the same tolerance, so a merged model that answers many items differently cannot pass
    changed = sum(r["prediction"] != g["prediction"] for r, g in zip(ref, got)) / n
    report = {
        "n": n,
        "accuracy_adapter": round(right_ref / n, 6),
        "accuracy_merged": round(right_got / n, 6),
        "accuracy_diff": round(diff, 6),
        "letter_agreement": round(1 - changed, 6),
        "max_prob_diff": round(max(abs(a - b) for r, g in zip(ref, got) for a, b in zip(r["probs"], g["probs"])), 6),
        "parity_tolerance": p.parity_tolerance,
        "dtype": p.dtype,
        "ok": diff <= p.parity_tolerance + 1e-12 and changed <= p.parity_tolerance + 1e-12,
    }
    if strict and not report["ok"]:
        raise ParityError(
            f"merge parity failed on {n} validation items: letter-mode accuracy moved by {diff:.2%} "
            f"({report['accuracy_adapter']:.2%} with the 4-bit base + adapter, {report['accuracy_merged']:.2%} "
            f"merged in {p.dtype}) and {changed:.2%} of the predicted letters changed; merge.parity_tolerance="
            f"{p.parity_tolerance} allows at most that much of either, and one item is {1 / n:.2%}. Option "
            f"probabilities moved by up to {report['max_prob_diff']:.4f}. Check that --adapter was trained on "
            "--base with train.quantization as it is now, merge from the dequantized base (the default) or with "
            "merge.dtype: float32, or raise merge.parity_tolerance in params.yaml if this drift is acceptable.",
            report)
    return report


def parity(records: list[dict], base: str | Path, adapter: str | Path, merged_dir: str | Path, p: MergeParams,
           q: QuantizationParams, *, letters: list[str], answer_prefix: str, limit: int | None = None,
           strict: bool = True) -> dict:
    """Letter-mode accuracy of base+adapter (as `evaluate` scores it) against the merged model.

    Why the two can differ at all: `evaluate` runs the adapter, unmerged, on the 4-bit base, so each
    weight it sees is the NF4-rounded W_q = W + e (16 levels per block of 64 weights: e is a few
    percent of a weight). A merged model from the *original* base holds W + B @ A instead, so every
    targeted layer's output moves by e @ x, and the adapter was trained to help W_q, not W. From the
    *dequantized* base it holds W_q + B @ A, and only rounding to ``merge.dtype`` (float16 keeps 11
    bits) and a different kernel order separate the two. A big move means the wrong base, a broken
    adapter, a float16 overflow, or a base too sensitive to quantization for the original recipe.

    ``letters`` is format.letters, the alphabet: each item is scored on its first n letters (n options).

    Returns n, accuracy_adapter, accuracy_merged, accuracy_diff, letter_agreement (share of items
    with the same predicted letter), max_prob_diff (largest change of any option's probability),
    parity_tolerance, dtype and ok. With ``strict``, raises ParityError when not ok.
    """
    import torch
    from peft import PeftModel

    from gabarito.modeling import (
        check_adapter,
        load_4bit,
        load_tokenizer,
        seed_everything,
    )
    from gabarito.params import EvaluateParams
    from gabarito.scoring import check_prompts, predict

    seed_everything(0, p.torch_threads)
    check_adapter(adapter)
    mcq = [r for r in records if r["kind"] == "mcq"][:limit]
    if not mcq:
        raise InputError("validation has no multiple-choice item: the parity check scores those. "
                         "Check the format stage's output.")
    e = EvaluateParams(modes=["letter"], batch_size=p.batch_size, torch_threads=p.torch_threads, position_bias=False)

    # --- base + adapter, exactly as evaluate scores the fine-tuned model -------------------------
    tokenizer = load_tokenizer(base)
    check_prompts(mcq, tokenizer)
    model = PeftModel.from_pretrained(load_4bit(base, q), str(adapter))
    model.eval()
    ref = predict(model, tokenizer, mcq, "letter", e, letters=letters, answer_prefix=answer_prefix, name="adapter")
    del model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # the 4-bit model's memory goes back before the 16-bit one loads

    # --- the merged model, with its own saved tokenizer (what a server would load) ---------------
    merged = load_dense(merged_dir, p.dtype, _device())
    got = predict(merged, load_tokenizer(merged_dir), mcq, "letter", e, letters=letters, answer_prefix=answer_prefix,
                  name="merged")
    del merged

    return parity_report(ref, got, p, strict=strict)


# --- command: gabarito merge ---
@click.command("merge")
@click.option("--base", type=click.Path(file_okay=False, exists=True), required=True)
@click.option("--adapter", type=click.Path(file_okay=False, exists=True), required=True)
@click.option("--validation", type=click.Path(dir_okay=False, exists=True), required=True,
              help="items re-scored by the parity check")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="folder for the merged model")
@click.option("--report", type=click.Path(dir_okay=False), required=True, help="parity figures (JSON)")
@click.option("--base-weights", type=click.Choice(["dequantized", "original"]), default="dequantized",
              show_default=True, help="what the LoRA update is added to (see `gabarito/tools/merge.py`)")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="re-score only the first N validation items")
@params_option
@user_errors
def command(base, adapter, validation, out, report, base_weights, limit, params_path):
    """Fold the adapter into the base (safetensors in merge.dtype, no peft needed) and check parity.

    The merged model re-scores the validation items in letter mode; the command fails, keeping no
    merged model, when its accuracy moves by more than merge.parity_tolerance from base+adapter.

    \b
    Examples:
      make merge                                  # models/merged + metrics/merge.json
      gabarito merge --base models/base --adapter models/adapter \\
          --validation data/processed/validation.jsonl --out models/merged --report metrics/merge.json
    """
    from gabarito.params import load_all

    params = load_all(params_path)
    p, q, fmt = params["merge"], params["train"].quantization, params["format"]
    with io.atomic_path(out, directory=True) as tmp:
        summary = merge(base, adapter, tmp, p, q, base_weights=base_weights)
        log(f"merge: {summary['lora_layers_merged']} LoRA layers merged into {summary['parameters']:,} "
            f"{p.dtype} parameters; checking parity on validation")
        try:
            result = parity(io.read_jsonl(validation), base, adapter, tmp, p, q, letters=fmt.letters,
                            answer_prefix=fmt.answer_prefix, limit=limit)
        except ParityError as exc:  # the figures are still worth keeping; the model is not
            io.write_json(report, {**summary, "parity": exc.report})
            raise
    io.write_json(report, {**summary, "parity": result})
    log(f"merge: parity ok: accuracy {result['accuracy_adapter']:.2%} (base+adapter) vs "
        f"{result['accuracy_merged']:.2%} (merged), letters agree on {result['letter_agreement']:.2%} "
        f"of {result['n']} items -> {out}")
