"""Prompts and chat formatting, shared by format (training text), evaluate, merge and ask (the same prompt,
byte for byte): the versioned prompt file, the messages of an item, and the cut between prompt and answer.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from gabarito.io import InputError
from gabarito.items import option_letters

PROMPT_KEYS = ("system_mcq", "user_mcq", "system_open", "user_open")


def load_prompts(path: str | Path) -> dict[str, str]:
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    missing = [k for k in PROMPT_KEYS if not isinstance(data.get(k), str)]
    if missing:
        raise InputError(f"{path}: missing prompt(s) {', '.join(missing)}.")
    return {k: data[k] for k in PROMPT_KEYS}


def mcq_user(template: str, *, context: str, question: str, options: str) -> str:
    """The user turn. An item without a passage (context "") shows no context block: the template's
    lines holding ``{context}`` are left out, rather than "Contexto: " followed by nothing."""
    if not context:
        template = "\n".join(line for line in template.split("\n") if "{context}" not in line)
    return template.format(context=context, question=question, options=options)


def mcq_messages(rec: dict, prompts: dict[str, str], letters: list[str], answer_prefix: str) -> list[dict]:
    """System, user and assistant turns of a multiple-choice item. ``letters``: ``format.letters`` (the
    alphabet); an item with n answers is lettered with its first n (``items.option_letters``)."""
    letters = option_letters(len(rec["answers"]), letters)
    options = "\n".join(f"{letter}) {answer}" for letter, answer in zip(letters, rec["answers"]))
    user = mcq_user(prompts["user_mcq"], context=rec["context"], question=rec["question"], options=options)
    return [{"role": "system", "content": prompts["system_mcq"]},
            {"role": "user", "content": user},
            {"role": "assistant", "content": f"{answer_prefix} {letters[rec['label']]}"}]


def open_messages(rec: dict, prompts: dict[str, str]) -> list[dict]:
    return [{"role": "system", "content": prompts["system_open"]},
            {"role": "user", "content": prompts["user_open"].format(question=rec["question"])},
            {"role": "assistant", "content": rec["answer"]}]


def split_prompt_completion(tokenizer, messages: list[dict]) -> tuple[str, str]:
    """Render with the chat template; cut at the assistant turn; end the completion at EOS."""
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    if not full.startswith(prompt):
        raise InputError("the tokenizer's chat template renders the prompt differently with and without the "
                         "answer, so the answer cannot be isolated for loss masking; use a standard template.")
    completion = full[len(prompt):]
    eos = tokenizer.eos_token
    answer_at = completion.find(messages[-1]["content"])
    end = completion.find(eos, max(answer_at, 0)) if eos else -1
    if answer_at < 0 or end < 0:
        raise InputError("the chat template does not end the assistant turn with the EOS token; the model "
                         "would never learn to stop.")
    return prompt, completion[: end + len(eos)]
