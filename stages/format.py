"""Chat-format the clean data with the base tokenizer's own chat template.

    gabarito format --train data/interim/clean/train.jsonl --validation data/interim/clean/validation.jsonl \\
        --test data/interim/clean/test.jsonl --base models/base --prompts prompts/chat.v1.yaml \\
        --out-dir data/processed --metrics metrics/format.json

Each example becomes ``messages`` (system in Portuguese, user with context/question/options,
assistant ``Alternativa X``; an item with n options is lettered with the first n of
``format.letters``, and an item without a passage shows no context line) plus ``prompt`` and ``completion`` strings cut from the rendered
template: the prompt ends where the assistant's answer starts, so training puts the loss on the
completion only (answer + EOS) and evaluation uses the very same prompt. The same messages are also
exported in OpenAI's chat fine-tuning JSONL (train and validation; the held-out test split is only scored).

An item longer than ``train.sft.max_length`` tokens is fitted here, where its prompt is built, with
the base tokenizer (gabarito/fit.py): its passage is cut as ``format.fit`` says, or a training item is
dropped (``fit: drop``). Validation and test items are never dropped. Each fitted or dropped item is
counted per split and source in a WARNING line and in ``metrics/format.json``, beside each source's
token lengths (median, p95, max) against the limit.
"""

from __future__ import annotations

import click

from gabarito import io
from gabarito.chat import (
    load_prompts,
    mcq_messages,
    open_messages,
    split_prompt_completion,
)
from gabarito.clikit import log, params_option, require_output, user_errors
from gabarito.fit import DROPPED, FITS, FITTED, KEPT_WHOLE, fit_item, length_summary, token_count
from gabarito.params import load_section

# keys of a multiple-choice record that travel into data/processed: evaluation re-renders the question
# with its options permuted, and reports per type, source, language and option count
MCQ_KEYS = ("context", "question", "answers", "label", "question_type", "none_correct", "source", "language",
            "subject", "doc", "page")
# set on a record whose passage was cut to fit (how it was cut, and its tokens before), for evaluation to count
FIT_KEYS = ("fitted", "tokens_before_fit")
# the splits format writes; train alone trains, validation also gives the eval loss, test is only scored
SPLITS = ("train", "validation", "test")


def format_records(records: list[dict], tokenizer, prompts: dict[str, str], *, letters: list[str],
                   answer_prefix: str, include_open: bool) -> list[dict]:
    out = []
    for rec in records:
        if rec["kind"] == "mcq":
            messages = mcq_messages(rec, prompts, letters, answer_prefix)
        elif include_open:
            messages = open_messages(rec, prompts)
        else:
            continue
        prompt, completion = split_prompt_completion(tokenizer, messages)
        item = {"id": rec["id"], "kind": rec["kind"], "messages": messages, "prompt": prompt,
                "completion": completion}
        if rec["kind"] == "mcq":
            # the parts of the question travel too, so evaluation can re-render it with options permuted
            item.update({k: rec[k] for k in MCQ_KEYS if k in rec})
        else:
            item["reference"] = rec["answer"]
        item.update({k: rec[k] for k in FIT_KEYS if k in rec})
        out.append(item)
    return out


def count_group(rec: dict) -> str:
    """The group an item is counted in: its source; open questions together as "open" (their ``source``
    names the entry of the Q&A file each came from, a group of one)."""
    return "open" if rec["kind"] == "open" else str(rec.get("source") or "unknown")


def fit_records(records: list[dict], split: str, n_tokens, *, max_length: int, how: str) -> tuple[list[dict], list[dict]]:
    """(records that go on, one row per record: split, source, tokens, outcome). ``n_tokens`` counts a
    record's tokens as rendered; ``how``: format.fit.

    A scored split (validation, test) never loses an item: with ``fit: drop`` its items are still cut
    (at the end), and one that cannot be fitted (its question and options alone are too long) is kept
    whole, counted as ``kept_whole``: it is scored on its whole prompt and left out of the eval loss."""
    scored = split != "train"
    mode = "cut_end" if scored and how == "drop" else how
    kept, rows = [], []
    for rec in records:
        fitted, outcome, tokens = fit_item(rec, n_tokens, max_length, mode)
        if fitted is None and scored:
            fitted, outcome = rec, KEPT_WHOLE
        if outcome == FITTED:
            fitted = {**fitted, "fitted": mode, "tokens_before_fit": tokens}
        rows.append({"split": split, "source": count_group(rec), "tokens": tokens, "outcome": outcome})
        if fitted is not None:
            kept.append(fitted)
    return kept, rows


def fit_report(rows: list[dict], *, max_length: int, how: str) -> dict:
    """metrics/format.json: items fitted, dropped and kept whole per split and source (zeros left out),
    and each source's token lengths (as they came, before fitting) against ``max_length``."""
    counts: dict[str, dict] = {FITTED: {}, DROPPED: {}, KEPT_WHOLE: {}}
    lengths: dict[str, list[int]] = {}
    for row in rows:
        lengths.setdefault(row["source"], []).append(row["tokens"])
        if row["outcome"] != FITS:
            per_split = counts[row["outcome"]].setdefault(row["split"], {})
            per_split[row["source"]] = per_split.get(row["source"], 0) + 1
    out = {"max_length": max_length, "fit": how,
           "tokens_by_source": {s: length_summary(v, max_length) for s, v in sorted(lengths.items())}}
    for outcome, per_split in counts.items():
        out[outcome] = {s: dict(sorted(c.items())) for s, c in sorted(per_split.items())}
        out[f"{outcome}_total"] = sum(sum(c.values()) for c in per_split.values())
    return out


def fit_warning(report: dict, metrics_path: str) -> str | None:
    """The WARNING line naming every item that does not fit, or None when all fit."""
    if not any(report[f"{o}_total"] for o in (FITTED, DROPPED, KEPT_WHOLE)):
        return None
    parts = [f"{what} {report[outcome]}" for outcome, what in (
        (FITTED, "fitted (passage cut, marked [...])"), (DROPPED, "dropped"),
        (KEPT_WHOLE, "scored whole (question and options alone are too long)")) if report[f"{outcome}_total"]]
    n = sum(report[f"{o}_total"] for o in (FITTED, DROPPED, KEPT_WHOLE))
    return (f"format: WARNING: {n} item(s) longer than train.sft.max_length={report['max_length']} tokens "
            f"(format.fit {report['fit']}): " + "; ".join(parts) + f". Token lengths per source in {metrics_path}.")


def openai_export(records: list[dict]) -> list[dict]:
    """OpenAI chat fine-tuning format: one {"messages": [...]} per line."""
    return [{"messages": r["messages"]} for r in records]


# --- command: gabarito format --------------------------------------------------------------------
@click.command("format")
@click.option("--train", "train_path", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--validation", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--test", "test_path", type=click.Path(dir_okay=False, exists=True), required=True,
              help="the held-out test split: formatted for evaluation only (it may be empty)")
@click.option("--base", type=click.Path(file_okay=False, exists=True), required=True)
@click.option("--prompts", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--out-dir", type=click.Path(file_okay=False), required=True)
@click.option("--metrics", type=click.Path(dir_okay=False), required=True,
              help="items fitted or dropped per split and source, and token lengths per source")
@params_option
@user_errors
def command(train_path, validation, test_path, base, prompts, out_dir, metrics, params_path):
    """Chat-format train/validation/test with the base tokenizer's template; fit long items; export OpenAI JSONL.

    \b
    Examples:
      dvc repro format
      head -c 600 data/processed/train.jsonl          # messages, prompt, completion
      jq .tokens_by_source metrics/format.json        # token lengths per source against train.sft.max_length
      gabarito openai-finetune validate               # check the OpenAI export
    """
    from gabarito.chat import mcq_messages, open_messages, split_prompt_completion
    from gabarito.modeling import load_tokenizer

    p = load_section("format", params_path)
    max_length = load_section("train", params_path).sft.max_length
    tokenizer = load_tokenizer(base)
    pr = load_prompts(prompts)
    kw = {"letters": p.letters, "answer_prefix": p.answer_prefix, "include_open": p.include_pdf_qa}

    def n_tokens(rec: dict) -> int:
        messages = (mcq_messages(rec, pr, p.letters, p.answer_prefix) if rec["kind"] == "mcq"
                    else open_messages(rec, pr))
        return token_count(tokenizer, *split_prompt_completion(tokenizer, messages))

    sets, rows = {}, []
    for name, path in (("train", train_path), ("validation", validation), ("test", test_path)):
        records = io.read_jsonl(path)
        # open questions left out by format.include_pdf_qa are not measured or counted as dropped
        wanted = [r for r in records if r["kind"] == "mcq" or p.include_pdf_qa]
        fitted, fit_rows = fit_records(wanted, name, n_tokens, max_length=max_length, how=p.fit)
        rows += fit_rows
        sets[name] = format_records(fitted, tokenizer, pr, **kw)
        # an empty test file (nothing held out) passes: 0 records in
        require_output(f"format ({name})", len(records), len(sets[name]), what_in="clean record(s)",
                       what_out="examples",
                       hint=f"{path} has only open questions and format.include_pdf_qa is false: set it to true, "
                            "or add multiple-choice items; or no item fits train.sft.max_length with "
                            f"format.fit drop ({metrics}).")
    report = fit_report(rows, max_length=max_length, how=p.fit)
    with io.atomic_path(out_dir, directory=True) as tmp:
        for name in SPLITS:
            io.write_jsonl(tmp / f"{name}.jsonl", sets[name])
        io.write_jsonl(tmp / "openai_train.jsonl", openai_export(sets["train"]))
        io.write_jsonl(tmp / "openai_validation.jsonl", openai_export(sets["validation"]))
    io.write_json(metrics, report)
    warning = fit_warning(report, metrics)
    if warning:
        log(warning)
    log(f"format: train {len(sets['train'])}, validation {len(sets['validation'])}, test {len(sets['test'])} "
        f"-> {out_dir}")
