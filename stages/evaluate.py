"""Score the base model and base+adapter on the validation split.

    gabarito evaluate --validation data/processed/validation.jsonl --base models/base \\
        --adapter models/adapter --predictions metrics/predictions.jsonl --metrics metrics/eval.json

Both models see the exact prompt used in training (cut at the assistant turn) and answer by greedy
generation; a parser files every output under one category, so nobody has to classify outputs by
hand: ``valid`` (a letter A-D), ``invented_letter`` (E and beyond), ``several_letters``, or
``no_answer`` (an explanation, a refusal, noise).
"""

from __future__ import annotations

import re
from pathlib import Path

from stages.params import EvaluateParams, QuantizationParams

VALID, INVENTED, SEVERAL, NONE = "valid", "invented_letter", "several_letters", "no_answer"


def parse_answer(text: str, letters: list[str], answer_prefix: str) -> tuple[str | None, str]:
    """(letter or None, category) for one model output."""
    first_line = text.strip().split("\n", 1)[0]
    found = re.findall(rf"{re.escape(answer_prefix)}\s*:?\s*([A-Z])\b", first_line, flags=re.IGNORECASE)
    if not found:
        # a bare letter: "B", "B)", "(B)", "B."
        bare = re.fullmatch(r"\(?([A-Z])[\).:]?", first_line.strip())
        found = [bare.group(1)] if bare else []
    found = [f.upper() for f in found]
    distinct = sorted(set(found))
    if not distinct:
        return None, NONE
    if len(distinct) > 1:
        return None, SEVERAL
    if distinct[0] not in letters:
        return None, INVENTED
    return distinct[0], VALID


def generate(model, tokenizer, prompts: list[str], *, max_new_tokens: int, batch_size: int) -> list[str]:
    """Greedy, batched, left-padded generation; returns only the new text of each prompt."""
    import torch
    from tqdm.auto import tqdm

    tokenizer.padding_side = "left"
    outputs: list[str] = []
    device = next(model.parameters()).device
    for start in tqdm(range(0, len(prompts), batch_size), desc="generate", unit="batch"):
        batch = prompts[start:start + batch_size]
        enc = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        new = out[:, enc["input_ids"].shape[1]:]
        outputs += tokenizer.batch_decode(new, skip_special_tokens=True)
    return outputs


def score(records: list[dict], outputs: list[str], letters: list[str], answer_prefix: str,
          model_name: str) -> tuple[dict, list[dict]]:
    predictions = []
    categories = {VALID: 0, INVENTED: 0, SEVERAL: 0, NONE: 0}
    correct = 0
    for rec, out in zip(records, outputs, strict=True):
        letter, category = parse_answer(out, letters, answer_prefix)
        categories[category] += 1
        is_correct = letter is not None and letters.index(letter) == rec["label"]
        correct += is_correct
        predictions.append({"id": rec["id"], "model": model_name, "output": out, "category": category,
                            "prediction": letter, "label": letters[rec["label"]], "correct": is_correct})
    n = len(records)
    valid = categories[VALID]
    metrics = {
        "n": n,
        "accuracy": round(correct / n, 6) if n else 0.0,
        "accuracy_valid": round(correct / valid, 6) if valid else 0.0,
        "invalid_rate": round((n - valid) / n, 6) if n else 0.0,
        "invalid": {k: v for k, v in categories.items() if k != VALID},
    }
    return metrics, predictions


def evaluate(records: list[dict], base: str | Path, adapter: str | Path, p: EvaluateParams,
             q: QuantizationParams, *, letters: list[str], answer_prefix: str) -> tuple[dict, list[dict]]:
    from peft import PeftModel

    from stages.modeling import load_4bit, load_tokenizer, seed_everything

    seed_everything(0, p.torch_threads)
    records = [r for r in records if r["kind"] == "mcq"][: p.limit]
    prompts = [r["prompt"] for r in records]
    tokenizer = load_tokenizer(base)
    model = load_4bit(base, q)
    model.eval()
    metrics, predictions = {}, []
    for name in ("base", "finetuned"):
        if name == "finetuned":
            # wrap the already loaded 4-bit base: one load serves both models
            model = PeftModel.from_pretrained(model, str(adapter))
            model.eval()
        outputs = generate(model, tokenizer, prompts, max_new_tokens=p.max_new_tokens, batch_size=p.batch_size)
        metrics[name], preds = score(records, outputs, letters, answer_prefix, name)
        predictions += preds
    return metrics, predictions
