"""Chat-format the clean data with the base tokenizer's own chat template.

    gabarito format --train data/interim/clean/train.jsonl --validation data/interim/clean/validation.jsonl \\
        --base models/base --prompts prompts/chat.v1.yaml --out-dir data/processed

Each example becomes ``messages`` (system in Portuguese, user with context/question/options,
assistant ``Alternativa X``; an item with n options is lettered with the first n of
``format.letters``, and an item without a passage shows no context line) plus ``prompt`` and ``completion`` strings cut from the rendered
template: the prompt ends where the assistant's answer starts, so training puts the loss on the
completion only (answer + EOS) and evaluation uses the very same prompt. The same messages are also
exported in OpenAI's chat fine-tuning JSONL.
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
from gabarito.params import load_section

# keys of a multiple-choice record that travel into data/processed: evaluation re-renders the question
# with its options permuted, and reports per type, source, language and option count
MCQ_KEYS = ("context", "question", "answers", "label", "question_type", "none_correct", "source", "language",
            "subject", "doc", "page")


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
        out.append(item)
    return out


def openai_export(records: list[dict]) -> list[dict]:
    """OpenAI chat fine-tuning format: one {"messages": [...]} per line."""
    return [{"messages": r["messages"]} for r in records]


# --- command: gabarito format --------------------------------------------------------------------
@click.command("format")
@click.option("--train", "train_path", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--validation", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--base", type=click.Path(file_okay=False, exists=True), required=True)
@click.option("--prompts", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--out-dir", type=click.Path(file_okay=False), required=True)
@params_option
@user_errors
def command(train_path, validation, base, prompts, out_dir, params_path):
    """Chat-format train/validation with the base tokenizer's template; export OpenAI JSONL.

    \b
    Examples:
      dvc repro format
      head -c 600 data/processed/train.jsonl          # messages, prompt, completion
      gabarito openai-finetune validate               # check the OpenAI export
    """
    from gabarito.modeling import load_tokenizer

    p = load_section("format", params_path)
    tokenizer = load_tokenizer(base)
    pr = load_prompts(prompts)
    kw = {"letters": p.letters, "answer_prefix": p.answer_prefix, "include_open": p.include_pdf_qa}
    sets = {}
    for name, path in (("train", train_path), ("validation", validation)):
        records = io.read_jsonl(path)
        sets[name] = format_records(records, tokenizer, pr, **kw)
        require_output(f"format ({name})", len(records), len(sets[name]), what_in="clean record(s)",
                       what_out="examples",
                       hint=f"{path} has only open questions and format.include_pdf_qa is false: set it to true, "
                            "or add multiple-choice items.")
    with io.atomic_path(out_dir, directory=True) as tmp:
        io.write_jsonl(tmp / "train.jsonl", sets["train"])
        io.write_jsonl(tmp / "validation.jsonl", sets["validation"])
        io.write_jsonl(tmp / "openai_train.jsonl", openai_export(sets["train"]))
        io.write_jsonl(tmp / "openai_validation.jsonl", openai_export(sets["validation"]))
    log(f"format: train {len(sets['train'])}, validation {len(sets['validation'])} -> {out_dir}")
