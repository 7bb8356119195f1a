"""Score the base model and base+adapter on the validation and test splits, with nobody annotating by hand.

    gabarito evaluate --validation data/processed/validation.jsonl --test data/processed/test.jsonl \\
        --train data/processed/train.jsonl --base models/base --adapter models/adapter \\
        --prompts prompts/chat.v1.yaml --predictions metrics/predictions.jsonl \\
        --test-predictions metrics/predictions_test.jsonl --metrics metrics/eval.json --plots-dir metrics/plots \\
        --report metrics/report.md --headline metrics/headline.json --breakdown metrics/breakdown.json

The test split is held out: it never trained and never picked the checkpoint (train reads train and
validation only). When it has items it is scored like validation, every mode and statistic, into
``test`` of eval.json, breakdown.json and headline.json, its own predictions file and a section of the
report; the top level of eval.json, the plots and predictions.jsonl stay validation's. Items format cut to fit
``train.sft.max_length`` are scored as cut (the training prompt), and counted (``fitted``).

Modes (``evaluate.modes``: letter, loglik, generate; see gabarito/scoring.py) run for both models,
on the exact training prompt.

Items may have any number of options (2 to 10): item letters are the first n of ``format.letters``.

Metrics per model and mode: accuracy (invalid counted wrong), accuracy over answered items,
invalid rate by category, n, a 95% interval (``evaluate.proportion_ci_method``: Wilson or exact), accuracy by question type, calibration
(ECE); accuracy with n and interval per source (``by_source``; a record without ``source`` counts
as "unknown") and per option count (``by_options``); the majority-letter baseline (always answer
the most frequent gold letter) and the distribution of predicted letters, with
``top_letter_warning`` (and a warning in the log) when one letter takes more than
``evaluate.max_letter_share`` of the items. Per model: answer-position bias under cyclic
permutations of the options (letter mode; see ``position_bias``); and McNemar's exact test between
base and fine-tuned with Newcombe's paired interval of the difference. metrics/breakdown.json: all of
these per split, source, option count and subject, each with n (gabarito/breakdown.py).
metrics/headline.json, the only file dvc.yaml declares as metrics, holds the headline per split and
source, so a plain `dvc metrics diff` fits a 120-column terminal; eval.json and breakdown.json are
plain outputs (`dvc metrics diff --targets metrics/eval.json` shows them). Open questions from PDFs (if any reach validation)
get exact match, token F1 and ROUGE-L.

Sections: metrics of one mode / guard rails / running the models / plots / report / the command.
Scoring (the modes, the answer parser) lives in gabarito/scoring.py and the statistics in
gabarito/stats.py, which merge, ask and report share without depending on this stage.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import click

from gabarito import io
from gabarito.clikit import log, params_option, user_errors
from gabarito.io import InputError
from gabarito.params import LETTERS, EvaluateParams, QuantizationParams
from gabarito.scoring import (
    ANSWERED,
    CATEGORIES,
    OPTION_TEXT,
    VALID,
    check_prompts,
    exact_match,
    generate,
    item_letters,
    predict,
    rouge_l,
    score_letters,
    token_f1,
)
from gabarito.breakdown import breakdown, render_breakdown
from gabarito.stats import (
    accuracy_by,
    accuracy_ci,
    expected_calibration_error,
    letter_distribution,
    majority_baseline,
    mcnemar,
    percent,
    proportion_ci,
)

UNKNOWN_SOURCE = "unknown"  # by_source's group for a record without ``source``


# --- metrics of one model in one mode ----------------------------------------------------------------
def option_count(rec: dict) -> str:
    """by_options's group of a record: its number of options, as a string (a JSON key)."""
    return str(len(rec["answers"])) if "answers" in rec else "unknown"


def shown_letters(records: list[dict], labels, letters) -> list[str]:
    """The letters the items allow: the first n of ``letters`` for the widest item (A-D for Cosmos QA
    alone, A-E with five-option items), whether or not a model ever answered them; records without
    ``answers`` (old files) fall back to the gold letters seen."""
    widest = max((len(r["answers"]) for r in records if "answers" in r), default=0)
    return list(letters[:widest]) if widest else sorted({x for x in labels if x})


def summarize(records: list[dict], preds: list[dict], p: EvaluateParams, *,
              letters: list[str] | tuple[str, ...] = tuple(LETTERS)) -> dict:
    """Metrics of one model in one mode from its per-item predictions (``letters``: format.letters)."""
    n = len(preds)
    correct = [pr["correct"] for pr in preds]
    counts = {c: sum(pr["category"] == c for pr in preds) for c in CATEGORIES}
    answered = counts[VALID] + counts[OPTION_TEXT]
    low, high = proportion_ci(sum(correct), n, p.proportion_ci_method)
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
    out["by_source"] = accuracy_by([r.get("source") or UNKNOWN_SOURCE for r in records], correct,
                                   p.proportion_ci_method)
    out["by_options"] = accuracy_by([option_count(r) for r in records], correct, p.proportion_ci_method)
    shown = shown_letters(records, [pr.get("label") for pr in preds], letters)
    out["majority_baseline"] = majority_baseline([pr["label"] for pr in preds if pr.get("label")])
    out.update(letter_distribution([pr.get("prediction") for pr in preds], shown, p.max_letter_share))
    if all(pr.get("probs") for pr in preds) and n:
        out["ece"], _ = expected_calibration_error([max(pr["probs"]) for pr in preds], correct, p.calibration_bins)
    return out

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


# --- running the models ------------------------------------------------------------------------------
def permuted_prompts(records: list[dict], tokenizer, prompts_file: dict, shift: int, *, letters: list[str],
                     answer_prefix: str) -> tuple[list[str], list[int]]:
    """Prompts with the options rotated by ``shift`` places, and where each correct answer now sits.
    ``letters`` is the alphabet; each item is written with its own first n letters."""
    from gabarito.chat import mcq_messages, split_prompt_completion

    out, labels = [], []
    for rec in records:
        k = len(rec["answers"])
        answers = [rec["answers"][(i - shift) % k] for i in range(k)]
        label = (rec["label"] + shift) % k
        msgs = mcq_messages({**rec, "answers": answers, "label": label}, prompts_file, item_letters(rec, letters),
                            answer_prefix)
        out.append(split_prompt_completion(tokenizer, msgs)[0])
        labels.append(label)
    return out, labels


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
    """Letter-mode accuracy with the options rotated 0..n-1 places: a model that reads answers, not
    positions, scores about the same under every rotation.

    An item with n options has the n rotations 0..n-1; ``shift_s`` is the accuracy over the items
    that have rotation s (all items for s below the smallest option count, only the five-option
    ones for ``shift_4`` in a mix of four and five), and ``n_by_shift`` counts them. ``spread`` is
    max - min over the rotations every item has, so it always compares the same items. With one
    option count (Cosmos QA alone: 0-3 over every item) all of this is the plain per-rotation
    accuracy and its spread."""
    counts = [len(r["answers"]) for r in records]
    accs, sizes = {}, {}
    for shift in range(max(counts, default=0)):
        subset = [r for r, k in zip(records, counts) if k > shift]
        prompts, labels = permuted_prompts(subset, tokenizer, prompts_file, shift, letters=letters,
                                           answer_prefix=answer_prefix)
        probs = score_letters(model, tokenizer, prompts, answer_prefix=answer_prefix, letters=letters,
                              batch_size=p.batch_size, counts=[len(r["answers"]) for r in subset])
        hits = [max(range(len(pr)), key=lambda i: (pr[i], -i)) == y for pr, y in zip(probs, labels)]
        accs[f"shift_{shift}"] = round(sum(hits) / len(hits), 6) if hits else 0.0
        sizes[f"shift_{shift}"] = len(hits)
    common = [accs[f"shift_{s}"] for s in range(min(counts, default=0))]
    accs["spread"] = round(max(common) - min(common), 6) if common else 0.0
    accs["n_by_shift"] = sizes
    return accs


def evaluate(records: list[dict], base: str | Path, adapter: str | Path, p: EvaluateParams, q: QuantizationParams,
             *, letters: list[str], answer_prefix: str, prompts_file: dict | None = None,
             train: list[dict] | None = None) -> tuple[dict, list[dict], dict]:
    """Return (metrics, per-item predictions, plot data) for base and fine-tuned in every mode."""
    from peft import PeftModel

    from gabarito.modeling import load_4bit, load_tokenizer, seed_everything

    seed_everything(p.seed, p.torch_threads)
    if train is not None:
        check_no_leak(records, train)
    mcq = [r for r in records if r["kind"] == "mcq"][: p.limit]
    open_recs = [r for r in records if r["kind"] == "open"][: p.limit]
    tokenizer = load_tokenizer(base)
    check_prompts(mcq + open_recs, tokenizer)
    model = load_4bit(base, q, cpu_kernel=p.cpu_4bit_kernel)
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
            metrics[name][mode] = summarize(mcq, preds, p, letters=letters)
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
    # per split, source, option count and subject, each with n (gabarito/breakdown.py)
    metrics["breakdown"] = breakdown(mcq, predictions, modes=p.modes, letters=letters, method=p.proportion_ci_method)
    return metrics, predictions, plot_data(mcq, predictions, p, letters=letters)


# --- plots -------------------------------------------------------------------------------------------
def confusion_cells(preds: list[dict], allowed: list[str], model: str) -> list[dict]:
    """One row per (actual, predicted) cell with its ``count``, zeros included, so the matrix has a
    row and a column for every letter the items allow (no E column only because E was never
    predicted); ``invalid`` is a column when some answer named no letter (generate mode)."""
    counts: dict[tuple[str, str], int] = {}
    for pr in preds:
        key = (pr["label"], pr["prediction"] or "invalid")
        counts[key] = counts.get(key, 0) + 1
    actual = allowed + sorted({a for a, _ in counts} - set(allowed))
    predicted = allowed + sorted({x for _, x in counts} - set(allowed))
    return [{"model": model, "actual": a, "predicted": x, "count": counts.get((a, x), 0)}
            for a in actual for x in predicted]


def plot_data(records: list[dict], predictions: list[dict], p: EvaluateParams, *,
              letters: list[str] | tuple[str, ...] = tuple(LETTERS)) -> dict[str, list[dict]]:
    """Rows for `dvc plots`: confusion matrix cells (every letter the items allow), accuracy with n, 95%
    interval and chance by question type and by source (the primary mode), calibration curve. ``n``
    goes with every accuracy: 1/1 and 40/40 are both 100%; ``chance`` is the mean of 1/options."""
    by_id = {r["id"]: r for r in records}
    groups = {"type": {r["id"]: r.get("question_type", "other") for r in records},
              # records from before sources existed (or a file that names none) are counted, as "unknown"
              "source": {r["id"]: r.get("source") or "unknown" for r in records}}
    primary = [pr for pr in predictions if pr["mode"] == p.modes[0]]
    allowed = shown_letters(records, [pr["label"] for pr in primary], letters)
    confusion = [row for name in ("base", "finetuned")
                 for row in confusion_cells([pr for pr in primary if pr["model"] == name], allowed, name)
                 if any(pr["model"] == name for pr in primary)]
    accuracy_by: dict[str, list[dict]] = {}
    for key, group_of in groups.items():
        cells: dict[tuple[str, str], list[dict]] = {}
        for pr in primary:
            cells.setdefault((pr["model"], group_of[pr["id"]]), []).append(pr)
        accuracy_by[key] = []
        for (m, g), prs in sorted(cells.items()):
            row = {"model": m, key: g, **accuracy_ci([pr["correct"] for pr in prs], p.proportion_ci_method)}
            options = [len(by_id[pr["id"]]["answers"]) for pr in prs if "answers" in by_id[pr["id"]]]
            if options:  # the chance line of the bar: 0.25 for four options, 0.2 for five
                row["chance"] = round(sum(1 / k for k in options) / len(options), 6)
            accuracy_by[key].append(row)
    calibration = []
    for name in ("base", "finetuned"):
        for mode in p.modes:
            preds = [pr for pr in predictions if pr["model"] == name and pr["mode"] == mode and pr.get("probs")]
            if preds:
                _, curve = expected_calibration_error([max(pr["probs"]) for pr in preds],
                                                      [pr["correct"] for pr in preds], p.calibration_bins)
                calibration += [{"model": f"{name}/{mode}", **row} for row in curve]
    return {"confusion": confusion, "accuracy_by_type": accuracy_by["type"],
            "accuracy_by_source": accuracy_by["source"], "calibration": calibration}


def plot_files(plots: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """The files of the plots folder (name -> rows), as dvc.yaml's ``plots`` section names them: a
    confusion matrix and accuracy by type and by source per model, one calibration file for every
    model and mode (dvc.yaml draws it with the y = x diagonal, .dvc/plots/calibration.json)."""
    files = {}
    for name in ("base", "finetuned"):
        files[f"confusion_{name}.json"] = [r for r in plots["confusion"] if r["model"] == name]
        files[f"by_type_{name}.json"] = [r for r in plots["accuracy_by_type"] if r["model"] == name]
        files[f"by_source_{name}.json"] = [r for r in plots["accuracy_by_source"] if r["model"] == name]
    files["calibration.json"] = plots["calibration"]
    return files


def headline_metrics(metrics: dict, modes: list[str]) -> dict:
    """metrics/headline.json: the numbers `dvc metrics show` / `dvc metrics diff` / `dvc exp show` lead
    with, copied from eval.json and its breakdown (never recomputed): per mode, each model's accuracy and
    invalid rate, fine-tuned minus base and McNemar's p; per source, its n, chance and both models'
    accuracy in the primary mode (``source.cosmosqa.letter.finetuned``); the item count. Mode first
    (``letter.finetuned.accuracy``), so no name is one of eval.json's (``finetuned.letter.accuracy``):
    read together (``--targets``), dvc would otherwise prefix both columns with their file.

    Every name stays under 50 characters (``test.source.<source>.generate.finetuned`` with a 15-letter
    source is 46), so `dvc metrics diff` fits a 120-column terminal: path 22 + name 50 + three numbers."""
    out: dict = {"n": metrics["base"]["n"]}
    for mode in modes:
        out[mode] = {name: {k: metrics[name][mode][k] for k in ("accuracy", "invalid_rate")}
                     for name in ("base", "finetuned")}
        out[mode]["finetuned_minus_base"] = round(
            metrics["finetuned"][mode]["accuracy"] - metrics["base"][mode]["accuracy"], 6)
        if mode in metrics.get("mcnemar", {}):
            out[mode]["mcnemar_p"] = metrics["mcnemar"][mode]["p_value"]
    primary = modes[0]
    for source, g in metrics.get("breakdown", {}).get("source", {}).items():
        accuracy = {name: g[name][primary]["accuracy"] for name in ("base", "finetuned") if primary in g.get(name, {})}
        out.setdefault("source", {})[source] = {"n": g["n"], "chance": g["chance"], primary: accuracy}
    return out


def output_files(result: dict, modes: list[str]) -> dict[str, dict]:
    """What evaluate writes as JSON, by role: ``eval`` (every figure, for `gabarito report` and
    `--targets`), ``breakdown`` (per split, source, option count and subject: hundreds of numbers, its
    own file) and ``headline`` (the only one dvc.yaml declares as metrics). The test split, when scored,
    is ``test`` in each."""
    test = result.get("test")
    heads = headline_metrics(result, modes)
    details = {"validation": result.get("breakdown", {})}
    if test is not None:
        heads["test"] = headline_metrics(test, modes)
        details["test"] = test.get("breakdown", {})
    plain = {k: v for k, v in result.items() if k not in ("breakdown", "test")}
    if test is not None:
        plain["test"] = {k: v for k, v in test.items() if k != "breakdown"}
    return {"eval": plain, "breakdown": details, "headline": heads}


# --- report ------------------------------------------------------------------------------------------
def render_report(metrics: dict, modes: list[str], *, max_letter_share: float | None = None,
                  method: str = "wilson") -> str:
    """metrics/report.md: the tables a person reads after `dvc repro`; with ``max_letter_share``
    (evaluate.max_letter_share), the models that answer one letter too often are named first.
    ``method``: the proportion interval's (evaluate.proportion_ci_method)."""
    lines = ["# Evaluation report", "",
             "Accuracy counts invalid answers as wrong; *valid-only* divides by answered items. "
             f"CI is a 95% interval ({method}).", ""]
    if max_letter_share is not None:
        lines += [f"**WARNING: {w}.**" for w in letter_warnings(metrics, modes, max_letter_share)]
        lines += [""] if lines[-1] != "" else []
    lines += [
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
    if metrics.get("breakdown"):  # per split, source, option count and subject (gabarito/breakdown.py)
        lines += ["", *render_breakdown(metrics["breakdown"], modes=modes, method=method)]
    if "majority_baseline" in metrics["base"][modes[0]]:
        lines += ["", "## Predicted letters against the majority-letter baseline", "",
                  "The baseline always answers the most frequent gold letter. A letter taking more than "
                  "evaluate.max_letter_share of the items is flagged: the model answers by position.", "",
                  "| model | mode | baseline | baseline accuracy | accuracy | predicted letters | top letter share | |",
                  "| --- | --- | --- | ---: | ---: | --- | ---: | --- |"]
        for name in ("base", "finetuned"):
            for mode in modes:
                m = metrics[name][mode]
                mb, dist = m["majority_baseline"], m["predicted_letters"]
                top = f"{m['top_letter']} {m['top_letter_share']:.2%}" if m["top_letter"] else "-"
                lines.append(f"| {name} | {mode} | {mb['letter'] or '-'} | {mb['accuracy']:.2%} | {m['accuracy']:.2%} | "
                             + " ".join(f"{x}:{c}" for x, c in dist.items())
                             + f" | {top} | {'**warning**' if m['top_letter_warning'] else ''} |")
    if "position_bias" in metrics["base"]:
        pb0 = metrics["base"]["position_bias"]
        shifts = [k for k in pb0 if k.startswith("shift")]
        sizes = pb0.get("n_by_shift", {})
        mixed = len(set(sizes.values())) > 1
        lines += ["", "## Answer-position bias (letter mode, options rotated)", ""]
        if mixed:
            lines += ["Items with n options are rotated 0..n-1 places; each column scores the items that have "
                      "that rotation (n under the column). The spread compares the rotations every item has.", ""]
        lines += ["| model | " + " | ".join(f"{s} (n={sizes[s]})" if mixed else s for s in shifts) + " | spread |",
                  "| --- |" + " ---: |" * (len(shifts) + 1)]
        for name in ("base", "finetuned"):
            pb = metrics[name]["position_bias"]
            lines.append(f"| {name} | " + " | ".join(f"{pb[s]:.2%}" for s in shifts) + f" | {pb['spread']:.2%} |")
    if "open" in metrics["base"]:
        lines += ["", "## Open questions from the PDFs (generated answers against the reference)", "",
                  "| model | n | exact match | token F1 | ROUGE-L |", "| --- | ---: | ---: | ---: | ---: |"]
        for name in ("base", "finetuned"):
            o = metrics[name]["open"]
            lines.append(f"| {name} | {o['n']} | {o['exact_match']:.2%} | {o['token_f1']:.3f} | {o['rouge_l']:.3f} |")
    lines += ["", "## Base vs fine-tuned (exact McNemar test, Newcombe's paired 95% interval)", "",
              "| mode | only base correct | only fine-tuned correct | fine-tuned - base | 95% CI (paired) | p-value |",
              "| --- | ---: | ---: | ---: | --- | ---: |"]
    for mode in modes:
        mc = metrics["mcnemar"][mode]
        paired = (f"{mc['finetuned_minus_base'] * 100:+.2f} pp | {mc['ci95_low'] * 100:+.2f} to {mc['ci95_high'] * 100:+.2f} pp"
                  if "ci95_low" in mc else "- | -")  # an eval.json from before the paired interval
        lines.append(f"| {mode} | {mc['only_base_correct']} | {mc['only_finetuned_correct']} | {paired} | {mc['p_value']:.4f} |")
    return "\n".join(lines) + "\n"


def headline(metrics: dict, modes: list[str]) -> list[str]:
    """One line per model with the primary mode's numbers, for the log."""
    return [f"{name} ({modes[0]}): accuracy {m['accuracy']:.2%} (valid-only {percent(m['accuracy_valid'])}), "
            f"invalid {m['invalid_rate']:.2%}, n={m['n']}"
            for name, m in ((name, metrics[name]) for name in ("base", "finetuned"))]


def letter_warnings(metrics: dict, modes: list[str], max_share: float) -> list[str]:
    """One line per model and mode whose most predicted letter takes more than ``max_share`` of the items."""
    out = []
    for name in ("base", "finetuned"):
        for mode in modes:
            m = metrics[name][mode]
            if m.get("top_letter_warning"):
                count = m["predicted_letters"][m["top_letter"]]
                out.append(f"{name} ({mode}) answers {m['top_letter']} on {count} of {m['n']} items "
                           f"({m['top_letter_share']:.2%} > evaluate.max_letter_share {max_share}): it answers by "
                           f"position, not by the question (majority-letter baseline: "
                           f"{m['majority_baseline']['letter']} {m['majority_baseline']['accuracy']:.2%}, "
                           f"accuracy {m['accuracy']:.2%})")
    return out


def score_test(test: list[dict], seen: list[dict], base, adapter, p: EvaluateParams, q: QuantizationParams, *,
               letters: list[str], answer_prefix: str, prompts_file: dict) -> tuple[dict, list[dict]]:
    """(metrics, predictions) of the held-out test split; ``seen``: the train and validation records,
    none of which may be among the test items. A second model load: the tiny model's takes under a
    second, a 7B 4-bit one's about a minute, and it keeps evaluate() as it is for each split."""
    metrics, preds, _ = evaluate(test, base, adapter, p, q, letters=letters, answer_prefix=answer_prefix,
                                 prompts_file=prompts_file, train=seen)
    metrics["fitted"] = sum("fitted" in r for r in test)
    return metrics, [{**pr, "split": "test"} for pr in preds]


# --- command: gabarito evaluate ---
@click.command("evaluate")
@click.option("--validation", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--test", "test_path", type=click.Path(dir_okay=False, exists=True), required=True,
              help="the held-out test split, scored on its own (an empty file: none)")
@click.option("--train", "train_path", type=click.Path(dir_okay=False, exists=True), required=True,
              help="training set, to refuse scoring items the model saw")
@click.option("--base", type=click.Path(file_okay=False, exists=True), required=True)
@click.option("--adapter", type=click.Path(file_okay=False, exists=True), required=True)
@click.option("--prompts", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--predictions", type=click.Path(dir_okay=False), required=True)
@click.option("--test-predictions", type=click.Path(dir_okay=False), required=True,
              help="per-item predictions on the test split (empty when there is none)")
@click.option("--metrics", type=click.Path(dir_okay=False), required=True)
@click.option("--plots-dir", type=click.Path(file_okay=False), required=True)
@click.option("--report", type=click.Path(dir_okay=False), required=True)
@click.option("--headline", "headline_path", type=click.Path(dir_okay=False), required=True,
              help="the headline per split and source: the file dvc.yaml declares as metrics")
@click.option("--breakdown", "breakdown_path", type=click.Path(dir_okay=False), required=True,
              help="per split, source, option count and subject (detail: not declared as metrics)")
@params_option
@user_errors
def command(validation, test_path, train_path, base, adapter, prompts, predictions, test_predictions, metrics,
            plots_dir, report, headline_path, breakdown_path, params_path):
    """Score base and fine-tuned models on validation and the held-out test; metrics, predictions, plots, a report.

    \b
    Examples:
      dvc repro evaluate
      dvc metrics diff                         # the headline per split and source, against HEAD
      dvc metrics diff --targets metrics/eval.json   # every figure (metrics/breakdown.json: per group)
      make plots                               # confusion, accuracy by type and source, calibration (offline)
    """
    from gabarito.chat import load_prompts
    from gabarito.params import load_all

    params = load_all(params_path)
    p, fmt, q = params["evaluate"], params["format"], params["train"].quantization
    records = io.read_jsonl(validation)
    if not records:  # an accuracy over n=0 is no measurement: fail instead of caching 0.0
        raise InputError(f"{validation}: no validation items to score. Upstream, clean and format must leave "
                         "some in the validation split (see metrics/clean.json).")
    train, test = io.read_jsonl(train_path), io.read_jsonl(test_path)
    kw = {"letters": fmt.letters, "answer_prefix": fmt.answer_prefix, "prompts_file": load_prompts(prompts)}
    result, preds, plots = evaluate(records, base, adapter, p, q, train=train, **kw)
    result["fitted"] = sum("fitted" in r for r in records)
    test_preds, text = [], render_report(
        result, p.modes, max_letter_share=p.max_letter_share, method=p.proportion_ci_method)
    if test:
        result["test"], test_preds = score_test(test, train + records, base, adapter, p, q, **kw)
        text += "\n# Held-out test split\n\n" + render_report(
            result["test"], p.modes, max_letter_share=p.max_letter_share, method=p.proportion_ci_method).split("\n", 2)[2]
    io.write_jsonl(predictions, preds)
    io.write_jsonl(test_predictions, test_preds)
    files = output_files(result, p.modes)
    io.write_json(metrics, files["eval"])
    io.write_json(breakdown_path, files["breakdown"])
    io.write_json(headline_path, files["headline"])
    with io.atomic_path(plots_dir, directory=True) as tmp:
        for name, rows in plot_files(plots).items():
            io.write_json(tmp / name, rows)
    io.write_text(report, text)
    for split, m in (("", result), ("test: ", result.get("test"))):
        if m is None:
            continue
        for line in headline(m, p.modes):
            log(f"evaluate: {split}{line}")
        for line in letter_warnings(m, p.modes, p.max_letter_share):
            log(f"evaluate: {split}WARNING: {line}")
        if m["fitted"]:
            log(f"evaluate: {split or 'validation: '}{m['fitted']} item(s) scored with their passage cut to fit "
                "train.sft.max_length (format.fit; counts per source in metrics/format.json)")
