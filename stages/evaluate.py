"""Score the base model and base+adapter on the validation split, with nobody annotating by hand.

    gabarito evaluate --validation data/processed/validation.jsonl --train data/processed/train.jsonl \\
        --base models/base --adapter models/adapter --prompts prompts/chat.v1.yaml \\
        --predictions metrics/predictions.jsonl --metrics metrics/eval.json --plots-dir metrics/plots \\
        --report metrics/report.md

Modes (``evaluate.modes``; every mode runs for both models, on the exact training prompt):
  letter    one forward pass per item: the logits of the four answer-letter tokens after the answer
            prefix ("Alternativa"). Every item gets an answer and option probabilities.
  loglik    length-normalized log-likelihood of each option's text as the answer (the
            lm-evaluation-harness way); also gives option probabilities.
  generate  batched greedy generation, parsed into one category: a valid letter A-D, an invented
            letter (E and beyond), the text of an option without its letter (mapped when
            unambiguous), several letters, or no answer (explanations, refusals, noise).

Metrics per model and mode: accuracy (invalid counted wrong), accuracy over answered items,
invalid rate by category, n, a 95% bootstrap interval, accuracy by question type, calibration
(ECE); per model: answer-position bias under cyclic permutations of the options (letter mode); and
a McNemar test between base and fine-tuned. Open questions from PDFs (if any reach validation)
get exact match, token F1 and ROUGE-L.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from pathlib import Path

from stages.io import InputError
from stages.params import EvaluateParams, QuantizationParams

VALID, OPTION_TEXT, INVENTED, SEVERAL, NONE = "valid", "option_text", "invented_letter", "several_letters", "no_answer"
CATEGORIES = (VALID, OPTION_TEXT, INVENTED, SEVERAL, NONE)
ANSWERED = (VALID, OPTION_TEXT)


# --- parsing free text (generate mode) ---------------------------------------------------------------
def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.findall(r"[a-z0-9]+", text))


# a capital not followed by another letter is a letter ("B", "B)", "B.", but not "Bom")
_CAP = r"[A-Z](?![^\W\d_])"
# more letters hedged after the first: "B ou C", "B ou a C", "B e C", "A/B", "(B), (C)"; capitals
# only, so "Alternativa B e o narrador concorda" stays one answer
_HEDGE = rf"(?:\)?\s*(?:,|/|\bou\b|\be\b|\bor\b|\band\b)\s*(?:(?i:a|o)\s+)?\(?{_CAP}\)?)+"
# small a, e and o are Portuguese words (articles, "and", "or"): "não há alternativa a escolher",
# "alternativa e nenhuma", "a correta é a" cut off by max_new_tokens. One counts as a letter only
# right after the prefix or a colon, with nothing after it but a bracket or a stop ("alternativa: a")
_SMALL_WORDS = "aeo"


def _option_hits(text: str, options: list[str]) -> list[int]:
    """The options whose text ``text`` says, by whole words ("partir" does not say an option "ir")."""
    said = f" {_fold(text)} "
    return [i for i, opt in enumerate(options) if _fold(opt) and
            (f" {_fold(opt)} " in said or (said.strip() and said in f" {_fold(opt)} "))
            and len(said.split()) >= min(3, len(_fold(opt).split()))]


def _hedged(line: str, end: int) -> tuple[list[str], int]:
    """Letters hedged right after position ``end`` ("... B ou C"), and where they stop."""
    tail = re.match(_HEDGE, line[end:])
    if not tail:
        return [], end
    return re.findall(r"(?<![^\W\d_])[A-Z](?![^\W\d_])", tail.group(0)), end + tail.end()


def _option_at_start(text: str, options: list[str]) -> list[int]:
    """The options whose text ``text`` begins with ("C) <text of option B>"), or is the start of."""
    said = _fold(text)
    hits = []
    for i, opt in enumerate(options):
        fo = _fold(opt)
        if fo and said and (said == fo or said.startswith(fo + " ")
                            or (fo.startswith(said + " ") and len(said.split()) >= min(3, len(fo.split())))):
            hits.append(i)
    return hits


def parse_answer(text: str, letters: list[str], answer_prefix: str, options: list[str] | None = None,
                 markers: list[str] | tuple[str, ...] = ()) -> tuple[str | None, str]:
    """(letter or None, category) for one model output; only its first line is read.

    A letter counts after the answer prefix or one of ``markers`` ("Alternativa B", "alternativa: d",
    "Resposta: B", "a correta é a C", "é a alternativa C"), or at the start of the line ("C)",
    "(A)", "B. Porque..."). Several different letters are a hedge. A letter followed by the text of
    another option contradicts itself and counts as several letters too. A capital A, E or O
    followed by a word may be an article: when the words from it on are one option's text, that
    option is the answer. With no letter, the text of exactly one option is that option's answer.
    """
    line = text.strip().split("\n", 1)[0]
    prefix = re.escape(answer_prefix)
    words = "|".join([prefix, *(re.escape(m) for m in markers)])
    said = re.compile(
        rf"\b(?P<marker>(?i:{words}))s?\b\s*(?P<colon>[:=\-\u2013])?\s*"
        rf"(?P<article>(?i:a|o)\s+(?=(?i:{prefix})|{_CAP}|[b-df-np-z](?![^\W\d_])))?"
        rf"(?P<again>(?i:{prefix})s?\s*:?\s*)?\(?(?:(?P<cap>{_CAP})|(?P<small>[a-z])(?![^\W\d_]))")
    found, end, start = [], 0, None
    for m in said.finditer(line):
        small = m.group("small")
        if small is not None and small in _SMALL_WORDS and not (
                m.group("article") is None
                and (m.group("colon") or m.group("again") or re.fullmatch(prefix, m.group("marker"), re.I))
                and re.match(r"\)|[.:;!?]?\s*$", line[m.end():])):
            continue
        found.append(m.group("cap") or small)
        start = m.start("cap") if m.group("cap") else m.start("small")
        more, end = _hedged(line, m.end())
        found += more
    if not found:
        lead = re.match(rf"\s*\(?(?:([A-Z])|([a-z])(?=\)))(?:\)|[.:](?=\s|$)|\s*$|(?={_HEDGE}))", line)
        if lead:
            more, end = _hedged(line, lead.end())
            found = [lead.group(1) or lead.group(2), *more]
    distinct = sorted({f.upper() for f in found})
    if len(distinct) > 1:
        return None, SEVERAL
    if distinct:
        letter = distinct[0]
        if options and start is not None and letter in "AEO" and re.match(r"[A-Z]\s+[a-zà-ÿ]", line[start:]):
            # "Resposta: A casa": the article of option text "A casa"?
            as_text = _option_hits(line[start:], options)
            if len(as_text) == 1:
                return (letter, VALID) if letters[as_text[0]] == letter else (letters[as_text[0]], OPTION_TEXT)
        if letter not in letters:
            return None, INVENTED
        named = _option_at_start(line[end:].lstrip(" )].:;,-\u2013"), options) if options else []
        if len(named) == 1 and letters[named[0]] != letter:
            return None, SEVERAL  # "C) <the text of option B>": two answers in one
        return letter, VALID
    if options:
        hits = _option_hits(line, options)
        if len(hits) == 1:
            return letters[hits[0]], OPTION_TEXT
    return None, NONE


def percent(x: float | None) -> str:
    """A share as a percentage; "-" for none (no accuracy where nothing was answered)."""
    return "-" if x is None else f"{x:.2%}"


# --- statistics --------------------------------------------------------------------------------------
def bootstrap_ci(correct: list[bool], samples: int, seed: int) -> tuple[float, float]:
    """95% percentile interval of accuracy, resampling items with replacement."""
    import numpy as np

    if not correct:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    arr = np.asarray(correct, dtype=float)
    means = arr[rng.integers(0, len(arr), size=(samples, len(arr)))].mean(axis=1)
    return round(float(np.quantile(means, 0.025)), 6), round(float(np.quantile(means, 0.975)), 6)


def mcnemar(a: list[bool], b: list[bool]) -> dict:
    """Exact McNemar test on paired correctness: does B fix more items than it breaks?"""
    only_a = sum(x and not y for x, y in zip(a, b, strict=True))
    only_b = sum(y and not x for x, y in zip(a, b, strict=True))
    n = only_a + only_b
    k = min(only_a, only_b)
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n) if n else 1.0
    return {"only_base_correct": only_a, "only_finetuned_correct": only_b, "p_value": round(p, 6)}


def expected_calibration_error(confidences: list[float], correct: list[bool], bins: int) -> tuple[float, list[dict]]:
    """ECE over equal-width confidence bins, and the per-bin curve for plotting."""
    curve, ece, n = [], 0.0, len(correct)
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        idx = [i for i, c in enumerate(confidences) if lo <= c < hi or (b == bins - 1 and c == 1.0)]
        if not idx:
            continue
        conf = sum(confidences[i] for i in idx) / len(idx)
        acc = sum(correct[i] for i in idx) / len(idx)
        ece += abs(acc - conf) * len(idx) / n
        curve.append({"bin": b, "confidence": round(conf, 6), "accuracy": round(acc, 6), "count": len(idx)})
    return round(ece, 6), curve


def summarize(records: list[dict], preds: list[dict], p: EvaluateParams) -> dict:
    """Metrics of one model in one mode from its per-item predictions."""
    n = len(preds)
    correct = [pr["correct"] for pr in preds]
    counts = {c: sum(pr["category"] == c for pr in preds) for c in CATEGORIES}
    answered = counts[VALID] + counts[OPTION_TEXT]
    low, high = bootstrap_ci(correct, p.bootstrap_samples, p.seed)
    out = {
        "n": n,
        "accuracy": round(sum(correct) / n, 6) if n else 0.0,
        # null when nothing was answered: no accuracy to speak of (0% would read as "all wrong")
        "accuracy_valid": round(sum(correct) / answered, 6) if answered else None,
        "invalid_rate": round((n - answered) / n, 6) if n else 0.0,
        "ci95_low": low,
        "ci95_high": high,
        "invalid": {c: counts[c] for c in CATEGORIES if c not in ANSWERED},
    }
    if counts[OPTION_TEXT]:
        out["option_text_mapped"] = counts[OPTION_TEXT]
    by_type: dict[str, list[bool]] = {}
    for rec, pr in zip(records, preds, strict=True):
        by_type.setdefault(rec.get("question_type", "other"), []).append(pr["correct"])
        if rec.get("none_correct"):
            by_type.setdefault("none_of_the_above", []).append(pr["correct"])
    out["by_type"] = {t: round(sum(v) / len(v), 6) for t, v in sorted(by_type.items())}
    if all(pr.get("probs") for pr in preds) and n:
        out["ece"], _ = expected_calibration_error([max(pr["probs"]) for pr in preds], correct, p.calibration_bins)
    return out


# --- open questions ------------------------------------------------------------------------------------
def _tokens(text: str) -> list[str]:
    return _fold(text).split()


def exact_match(pred: str, ref: str) -> float:
    return float(_tokens(pred) == _tokens(ref))


def token_f1(pred: str, ref: str) -> float:
    from collections import Counter

    p, r = _tokens(pred), _tokens(ref)
    common = sum((Counter(p) & Counter(r)).values())
    if not p or not r or not common:
        return float(p == r)
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def rouge_l(pred: str, ref: str) -> float:
    """ROUGE-L F-measure from the longest common subsequence of tokens."""
    p, r = _tokens(pred), _tokens(ref)
    if not p or not r:
        return float(p == r)
    prev = [0] * (len(r) + 1)
    for tp in p:
        cur = [0]
        for j, tr in enumerate(r, 1):
            cur.append(prev[j - 1] + 1 if tp == tr else max(prev[j], cur[j - 1]))
        prev = cur
    lcs = prev[-1]
    if not lcs:
        return 0.0
    precision, recall = lcs / len(p), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


# --- guard rails -------------------------------------------------------------------------------------
def user_text(rec: dict) -> str:
    return next(m["content"] for m in rec["messages"] if m["role"] == "user")


def check_no_leak(validation: list[dict], train: list[dict]) -> None:
    """Refuse to score items the model was trained on (same id, or same rendered question)."""
    ids = {r["id"] for r in train}
    hashes = {hashlib.sha256(" ".join(user_text(r).casefold().split()).encode()).hexdigest() for r in train}
    leaked = [r["id"] for r in validation if r["id"] in ids or
              hashlib.sha256(" ".join(user_text(r).casefold().split()).encode()).hexdigest() in hashes]
    if leaked:
        raise InputError(f"{len(leaked)} validation item(s) are also in the training data (e.g. {', '.join(leaked[:3])}); "
                         "scores would be inflated. Fix the split (the clean stage's leak check) and rerun.")


def check_prompts(records: list[dict], tokenizer) -> None:
    """The evaluation prompt must be the training prompt up to the answer, byte for byte."""
    from stages.chat_format import split_prompt_completion

    for rec in records:
        prompt, completion = split_prompt_completion(tokenizer, rec["messages"])
        if prompt != rec["prompt"] or completion != rec["completion"]:
            raise InputError(f"validation item {rec['id']}: its prompt differs from what the base tokenizer's chat "
                             "template renders now; rerun the format stage (`dvc repro format`).")


# --- model scoring -----------------------------------------------------------------------------------
def letter_token_ids(tokenizer, answer_prefix: str, letters: list[str]) -> tuple[list[int], list[int]]:
    """(tokens of the answer prefix, one token per letter) as the template's answers tokenize."""
    variants = [tokenizer(f"{answer_prefix} {letter}", add_special_tokens=False)["input_ids"] for letter in letters]
    common = 0
    while all(len(v) > common for v in variants) and len({v[common] for v in variants}) == 1:
        common += 1
    if any(len(v) != common + 1 for v in variants) or len({v[common] for v in variants}) != len(letters):
        raise InputError(f"the tokenizer does not give each answer letter a single token after '{answer_prefix}'; "
                         "use evaluate.modes loglik or generate with this model.")
    return variants[0][:common], [v[common] for v in variants]


def _batches(n: int, size: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(range(0, n, size), desc=desc, unit="batch", leave=False)


def _left_pad(seqs: list[list[int]], pad_id: int):
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, width - len(s):] = torch.tensor(s)
        mask[i, width - len(s):] = 1
    return ids, mask


def score_letters(model, tokenizer, prompts: list[str], *, answer_prefix: str, letters: list[str],
                  batch_size: int) -> list[list[float]]:
    """Probabilities of each letter, from one forward pass per item."""
    import torch

    prefix_ids, letter_ids = letter_token_ids(tokenizer, answer_prefix, letters)
    # one call tokenizes the whole list (the same ids as one prompt at a time; fewer Python round trips)
    seqs = [ids + prefix_ids for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]] if prompts else []
    # batches of similar length waste less on padding; results go back in the original order
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    device = next(model.parameters()).device
    probs: list[list[float] | None] = [None] * len(seqs)
    for start in _batches(len(seqs), batch_size, "letter"):
        idx = order[start:start + batch_size]
        ids, mask = _left_pad([seqs[i] for i in idx], tokenizer.pad_token_id)
        with torch.no_grad():
            # only the last position's logits are needed: skip the vocabulary projection elsewhere. No KV
            # cache: nothing is generated after this pass, and the cache copies every layer's keys and
            # values and holds them to the end of the forward (~1.7 GB at batch 32 x 400 tokens on a 7B)
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), logits_to_keep=1,
                           use_cache=False).logits[:, -1, :]
        for i, row in zip(idx, torch.softmax(logits[:, letter_ids].float(), dim=-1).tolist()):
            probs[i] = row
    return probs


def score_loglik(model, tokenizer, prompts: list[str], options: list[list[str]], *, batch_size: int) -> list[list[float]]:
    """Softmax over options of the mean per-token log-likelihood of each option's text."""
    import torch

    pairs = []
    for prompt, opts in zip(prompts, options, strict=True):
        ctx = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        for opt in opts:
            cont = tokenizer(opt, add_special_tokens=False)["input_ids"] or [tokenizer.eos_token_id]
            pairs.append((ctx, cont))
    device = next(model.parameters()).device
    means: list[float] = []
    for start in _batches(len(pairs), batch_size, "loglik"):
        chunk = pairs[start:start + batch_size]
        ids, mask = _left_pad([c + o for c, o in chunk], tokenizer.pad_token_id)
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float(), -1)
        width = ids.shape[1]
        for i, (_, cont) in enumerate(chunk):
            pos = torch.arange(width - len(cont), width)
            target = ids[i, pos].to(device)
            means.append(logp[i, pos - 1, target].mean().item())
    k = len(options[0]) if options else 4
    out = []
    for i in range(0, len(means), k):
        scores = torch.tensor(means[i:i + k])
        out.append(torch.softmax(scores, dim=0).tolist())
    return out


def generate(model, tokenizer, prompts: list[str], *, max_new_tokens: int, batch_size: int) -> list[str]:
    """Greedy, batched, left-padded generation; returns only the new text of each prompt."""
    import torch

    tokenizer.padding_side = "left"
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    outputs: list[str | None] = [None] * len(prompts)
    device = next(model.parameters()).device
    for start in _batches(len(prompts), batch_size, "generate"):
        idx = order[start:start + batch_size]
        enc = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True,
                        add_special_tokens=False).to(device)
        with torch.no_grad():
            # the parser reads the first line only: stop at a newline as well as at EOS
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, stop_strings=["\n"],
                                 tokenizer=tokenizer, eos_token_id=tokenizer.eos_token_id,
                                 pad_token_id=tokenizer.pad_token_id)
        for i, text in zip(idx, tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)):
            outputs[i] = text
    return outputs


def permuted_prompts(records: list[dict], tokenizer, prompts_file: dict, shift: int, *, letters: list[str],
                     answer_prefix: str) -> tuple[list[str], list[int]]:
    """Prompts with the options rotated by ``shift`` places, and where each correct answer now sits."""
    from stages.chat_format import mcq_messages, split_prompt_completion

    out, labels = [], []
    for rec in records:
        k = len(rec["answers"])
        answers = [rec["answers"][(i - shift) % k] for i in range(k)]
        label = (rec["label"] + shift) % k
        msgs = mcq_messages({**rec, "answers": answers, "label": label}, prompts_file, letters, answer_prefix)
        out.append(split_prompt_completion(tokenizer, msgs)[0])
        labels.append(label)
    return out, labels


def predict(model, tokenizer, records: list[dict], mode: str, p: EvaluateParams, *, letters: list[str],
            answer_prefix: str, name: str) -> list[dict]:
    """Per-item predictions of one model in one mode."""
    prompts = [r["prompt"] for r in records]
    preds = []
    if mode in ("letter", "loglik"):
        if mode == "letter":
            probs = score_letters(model, tokenizer, prompts, answer_prefix=answer_prefix, letters=letters,
                                  batch_size=p.batch_size)
        else:
            probs = score_loglik(model, tokenizer, prompts, [r["answers"] for r in records], batch_size=p.batch_size)
        for rec, pr in zip(records, probs, strict=True):
            choice = max(range(len(pr)), key=lambda i: (pr[i], -i))
            preds.append({"id": rec["id"], "model": name, "mode": mode, "output": letters[choice],
                          "category": VALID, "prediction": letters[choice], "label": letters[rec["label"]],
                          "correct": choice == rec["label"], "probs": [round(x, 6) for x in pr]})
    else:
        outputs = generate(model, tokenizer, prompts, max_new_tokens=p.max_new_tokens, batch_size=p.batch_size)
        for rec, out in zip(records, outputs, strict=True):
            letter, category = parse_answer(out, letters, answer_prefix, rec["answers"], p.answer_markers)
            preds.append({"id": rec["id"], "model": name, "mode": mode, "output": out, "category": category,
                          "prediction": letter, "label": letters[rec["label"]],
                          "correct": letter is not None and letters.index(letter) == rec["label"]})
    return preds


def score_open(model, tokenizer, records: list[dict], p: EvaluateParams, name: str) -> tuple[dict, list[dict]]:
    """Open questions (from PDFs): generated answers against the reference by EM, token F1, ROUGE-L."""
    outputs = generate(model, tokenizer, [r["prompt"] for r in records], max_new_tokens=p.max_new_tokens_open,
                       batch_size=p.batch_size)
    preds = []
    for rec, out in zip(records, outputs, strict=True):
        preds.append({"id": rec["id"], "model": name, "mode": "open", "output": out, "reference": rec["reference"],
                      "exact_match": exact_match(out, rec["reference"]), "token_f1": round(token_f1(out, rec["reference"]), 6),
                      "rouge_l": round(rouge_l(out, rec["reference"]), 6)})
    n = len(preds)
    return {"n": n, **{k: round(sum(pr[k] for pr in preds) / n, 6) for k in ("exact_match", "token_f1", "rouge_l")}}, preds


def position_bias(model, tokenizer, records, prompts_file, p: EvaluateParams, *, letters, answer_prefix) -> dict:
    """Letter-mode accuracy with the options rotated 0-3 places: a model that reads answers, not
    positions, scores about the same under every rotation."""
    accs = {}
    for shift in range(len(letters)):
        prompts, labels = permuted_prompts(records, tokenizer, prompts_file, shift, letters=letters,
                                           answer_prefix=answer_prefix)
        probs = score_letters(model, tokenizer, prompts, answer_prefix=answer_prefix, letters=letters,
                              batch_size=p.batch_size)
        hits = [max(range(len(pr)), key=lambda i: (pr[i], -i)) == y for pr, y in zip(probs, labels)]
        accs[f"shift_{shift}"] = round(sum(hits) / len(hits), 6) if hits else 0.0
    accs["spread"] = round(max(accs.values()) - min(accs.values()), 6) if accs else 0.0
    return accs


def evaluate(records: list[dict], base: str | Path, adapter: str | Path, p: EvaluateParams, q: QuantizationParams,
             *, letters: list[str], answer_prefix: str, prompts_file: dict | None = None,
             train: list[dict] | None = None) -> tuple[dict, list[dict], dict]:
    """Return (metrics, per-item predictions, plot data) for base and fine-tuned in every mode."""
    from peft import PeftModel

    from stages.modeling import load_4bit, load_tokenizer, seed_everything

    seed_everything(p.seed, p.torch_threads)
    if train is not None:
        check_no_leak(records, train)
    mcq = [r for r in records if r["kind"] == "mcq"][: p.limit]
    open_recs = [r for r in records if r["kind"] == "open"][: p.limit]
    tokenizer = load_tokenizer(base)
    check_prompts(mcq + open_recs, tokenizer)
    model = load_4bit(base, q)
    model.eval()
    metrics: dict = {}
    predictions: list[dict] = []
    for name in ("base", "finetuned"):
        if name == "finetuned":
            # wrap the already loaded 4-bit base: one load serves both models
            model = PeftModel.from_pretrained(model, str(adapter))
            model.eval()
        metrics[name] = {}
        for mode in p.modes:
            preds = predict(model, tokenizer, mcq, mode, p, letters=letters, answer_prefix=answer_prefix, name=name)
            metrics[name][mode] = summarize(mcq, preds, p)
            predictions += preds
        # the primary mode's headline numbers at the top, for `dvc metrics diff` at a glance
        primary = metrics[name][p.modes[0]]
        metrics[name].update({k: primary[k] for k in ("accuracy", "accuracy_valid", "invalid_rate", "n")})
        if open_recs:
            metrics[name]["open"], preds = score_open(model, tokenizer, open_recs, p, name)
            predictions += preds
        if p.position_bias and prompts_file is not None:
            metrics[name]["position_bias"] = position_bias(model, tokenizer, mcq, prompts_file, p, letters=letters,
                                                           answer_prefix=answer_prefix)
    metrics["mcnemar"] = {}
    for mode in p.modes:
        a = [pr["correct"] for pr in predictions if pr["model"] == "base" and pr["mode"] == mode]
        b = [pr["correct"] for pr in predictions if pr["model"] == "finetuned" and pr["mode"] == mode]
        metrics["mcnemar"][mode] = mcnemar(a, b)
    return metrics, predictions, plot_data(mcq, predictions, p)


def plot_data(records: list[dict], predictions: list[dict], p: EvaluateParams) -> dict[str, list[dict]]:
    """Rows for `dvc plots`: confusion matrix, accuracy by question type, calibration curve."""
    types = {r["id"]: r.get("question_type", "other") for r in records}
    primary = p.modes[0]
    confusion = [{"model": pr["model"], "actual": pr["label"], "predicted": pr["prediction"] or "invalid"}
                 for pr in predictions if pr["mode"] == primary]
    by_type: dict[tuple[str, str], list[bool]] = {}
    for pr in predictions:
        if pr["mode"] == primary:
            by_type.setdefault((pr["model"], types[pr["id"]]), []).append(pr["correct"])
    accuracy_by_type = [{"model": m, "type": t, "accuracy": round(sum(v) / len(v), 6)}
                        for (m, t), v in sorted(by_type.items())]
    calibration = []
    for name in ("base", "finetuned"):
        for mode in p.modes:
            preds = [pr for pr in predictions if pr["model"] == name and pr["mode"] == mode and pr.get("probs")]
            if preds:
                _, curve = expected_calibration_error([max(pr["probs"]) for pr in preds],
                                                      [pr["correct"] for pr in preds], p.calibration_bins)
                calibration += [{"model": f"{name}/{mode}", **row} for row in curve]
    return {"confusion": confusion, "accuracy_by_type": accuracy_by_type, "calibration": calibration}


def render_report(metrics: dict, modes: list[str]) -> str:
    """metrics/report.md: the tables a person reads after `dvc repro`."""
    lines = ["# Evaluation report", "",
             "Accuracy counts invalid answers as wrong; *valid-only* divides by answered items. "
             "CI is a 95% bootstrap interval.", "",
             "| model | mode | n | accuracy | 95% CI | valid-only | invalid | ECE |",
             "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: |"]
    for name in ("base", "finetuned"):
        for mode in modes:
            m = metrics[name][mode]
            ece = f"{m['ece']:.3f}" if "ece" in m else "-"
            lines.append(f"| {name} | {mode} | {m['n']} | {m['accuracy']:.2%} | {m['ci95_low']:.2%}-{m['ci95_high']:.2%} "
                         f"| {percent(m['accuracy_valid'])} | {m['invalid_rate']:.2%} | {ece} |")
    lines += ["", "## Invalid answers by category", "",
              "| model | mode | " + " | ".join(c for c in CATEGORIES if c not in ANSWERED) + " |",
              "| --- | --- |" + " ---: |" * (len(CATEGORIES) - len(ANSWERED))]
    for name in ("base", "finetuned"):
        for mode in modes:
            inv = metrics[name][mode]["invalid"]
            lines.append(f"| {name} | {mode} | " + " | ".join(str(inv[c]) for c in inv) + " |")
    types = sorted({t for name in ("base", "finetuned") for t in metrics[name][modes[0]]["by_type"]})
    lines += ["", f"## Accuracy by question type ({modes[0]})", "", "| model | " + " | ".join(types) + " |",
              "| --- |" + " ---: |" * len(types)]
    for name in ("base", "finetuned"):
        bt = metrics[name][modes[0]]["by_type"]
        lines.append(f"| {name} | " + " | ".join(f"{bt[t]:.2%}" if t in bt else "-" for t in types) + " |")
    if "position_bias" in metrics["base"]:
        shifts = [k for k in metrics["base"]["position_bias"] if k.startswith("shift")]
        lines += ["", "## Answer-position bias (letter mode, options rotated)", "",
                  "| model | " + " | ".join(shifts) + " | spread |", "| --- |" + " ---: |" * (len(shifts) + 1)]
        for name in ("base", "finetuned"):
            pb = metrics[name]["position_bias"]
            lines.append(f"| {name} | " + " | ".join(f"{pb[s]:.2%}" for s in shifts) + f" | {pb['spread']:.2%} |")
    if "open" in metrics["base"]:
        lines += ["", "## Open questions from the PDFs (generated answers against the reference)", "",
                  "| model | n | exact match | token F1 | ROUGE-L |", "| --- | ---: | ---: | ---: | ---: |"]
        for name in ("base", "finetuned"):
            o = metrics[name]["open"]
            lines.append(f"| {name} | {o['n']} | {o['exact_match']:.2%} | {o['token_f1']:.3f} | {o['rouge_l']:.3f} |")
    lines += ["", "## Base vs fine-tuned (exact McNemar test)", "",
              "| mode | only base correct | only fine-tuned correct | p-value |", "| --- | ---: | ---: | ---: |"]
    for mode in modes:
        mc = metrics["mcnemar"][mode]
        lines.append(f"| {mode} | {mc['only_base_correct']} | {mc['only_finetuned_correct']} | {mc['p_value']:.4f} |")
    return "\n".join(lines) + "\n"


def flipped(a: list[dict], b: list[dict], *, model: str, mode: str) -> list[dict]:
    """Items whose correctness differs between two prediction files (experiments A and B)."""
    pick = {(r["id"]): r for r in a if r["model"] == model and r.get("mode", mode) == mode and "correct" in r}
    out = []
    for r in b:
        if r["model"] != model or r.get("mode", mode) != mode or r["id"] not in pick or "correct" not in r:
            continue
        old = pick[r["id"]]
        if old["correct"] != r["correct"]:
            out.append({"id": r["id"], "label": r["label"], "a": old["prediction"], "b": r["prediction"],
                        "change": "fixed" if r["correct"] else "broken"})
    return out
