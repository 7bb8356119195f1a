"""OpenAI's hosted fine-tuning of the exported chat JSONL: check it, price it, and optionally run it.

    gabarito openai-finetune validate --train data/processed/openai_train.jsonl \\
        --validation data/processed/openai_validation.jsonl
    gabarito openai-finetune submit --train data/processed/openai_train.jsonl \\
        --validation data/processed/openai_validation.jsonl [--wait]

``validate`` needs no key and makes no call: it checks every line against OpenAI's chat fine-tuning
format (the checks of OpenAI's cookbook "Data preparation and analysis for chat model fine-tuning",
plus those of the API's FineTuneChatRequestInput schema: tool/function roles, content parts, the
0/1 ``weight`` of assistant messages), counts tokens the way the cookbook does, and estimates the
bill from ``openai_finetune`` in params.yaml. ``submit`` runs the same checks on the very bytes it is
about to upload, refuses on any error (nothing is sent), uploads both files with purpose
``fine-tune``, creates a supervised job and, with ``--wait``, follows it to the end, streaming the
job's events. The key only ever comes from ``$OPENAI_API_KEY`` and never appears in a message.

Sections: format checks / token counting / the report / the API (client, submit, wait).
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NamedTuple

import click

from gabarito import openai_client
from gabarito.clikit import params_option, user_errors
from gabarito.io import InputError, dumps
from gabarito.params import OpenAIFinetuneParams

# --- format checks ---------------------------------------------------------------------------------
# What a line of a chat fine-tuning file may hold (OpenAI's FineTuneChatRequestInput): the messages,
# plus tool definitions for tool-calling examples. Anything else makes OpenAI reject the file.
EXAMPLE_KEYS = ("messages", "tools", "parallel_tool_calls", "functions")
# keys each role's message takes; ``weight`` (assistant only) is checked on its own
ROLE_KEYS = {
    "system": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "name", "weight", "tool_calls", "function_call", "refusal"},
    "tool": {"role", "content", "tool_call_id"},
    "function": {"role", "content", "name"},  # legacy function calling, still accepted
}
# content may also be a list of parts; these are the part types each role takes
PART_TYPES = {"system": {"text"}, "user": {"text", "image_url"}, "assistant": {"text", "refusal"},
              "tool": {"text"}, "function": set()}
MAX_LISTED = 100  # errors listed in a report; error_count and error_kinds always count them all


@dataclass(frozen=True)
class Unparsed:
    """A line that is not JSON, kept so that the report can name it instead of stopping at it."""
    error: str


def read_lines(text: str) -> list[tuple[int, Any]]:
    """(line number, parsed JSON or Unparsed) for each non-blank line of a JSONL text."""
    out: list[tuple[int, Any]] = []
    # "\n" only: str.splitlines() would also split inside strings holding U+2028 (see gabarito.io)
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            out.append((lineno, json.loads(line)))
        except json.JSONDecodeError as exc:
            out.append((lineno, Unparsed(f"{exc.msg} at column {exc.colno}")))
    return out


def numbered(records: Iterable[Any]) -> list[tuple[int, Any]]:
    """Records held in memory (e.g. from stages.format.openai_export), numbered as the lines they become."""
    return list(enumerate(records, 1))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _check_parts(where: str, role: str, parts: list) -> list[tuple[str, str]]:
    allowed = PART_TYPES[role]
    if not allowed:
        return [("content_type", f"{where} has a list as content; {role} messages take a string")]
    if not parts:
        return [("missing_content", f"{where} has an empty content list; give it text")]
    problems = []
    for j, part in enumerate(parts, 1):
        kind = part.get("type") if isinstance(part, dict) else None
        if not isinstance(kind, str) or kind not in allowed:
            problems.append(("content_type", f"{where}, content part {j} has type {kind!r}; {role} messages take "
                                             f"parts of type {', '.join(sorted(allowed))}"))
        elif kind == "text" and not (isinstance(part.get("text"), str) and part["text"].strip()):
            problems.append(("missing_content", f"{where}, content part {j} has no text; give it a non-empty "
                                                "'text' string"))
        elif kind == "image_url" and not isinstance((part.get("image_url") or {}).get("url"), str):
            problems.append(("content_type", f"{where}, content part {j} needs image_url.url (a URL or a data: "
                                             "URI)"))
    return problems


def _check_calls(where: str, message: dict) -> list[tuple[str, str]]:
    """tool_calls / function_call of an assistant message: names and JSON-string arguments."""
    problems = []
    calls = message.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list) or not calls:
            return [("tool_calls", f"{where} has tool_calls that are not a non-empty list")]
        for j, call in enumerate(calls, 1):
            fn = call.get("function") if isinstance(call, dict) else None
            if not (isinstance(fn, dict) and isinstance(call.get("id"), str) and isinstance(fn.get("name"), str)):
                problems.append(("tool_calls", f"{where}, tool call {j} needs an 'id' and function.name"))
            elif not isinstance(fn.get("arguments"), str):
                got = _json_type(fn.get("arguments"))
                problems.append(("tool_calls", f"{where}, tool call {j} has arguments as {got}; OpenAI wants "
                                               "them JSON-encoded in a string"))
    fc = message.get("function_call")
    if fc is not None and not (isinstance(fc, dict) and isinstance(fc.get("name"), str)
                               and isinstance(fc.get("arguments"), str)):
        problems.append(("tool_calls", f"{where} has a function_call without a name and string arguments"))
    return problems


def _check_message(i: int, message: Any) -> list[tuple[str, str]]:
    where = f"message {i}"
    if not isinstance(message, dict):
        return [("message_data_type", f"{where} is {_json_type(message)}; each message is an object with "
                                      "'role' and 'content'")]
    if "role" not in message:
        return [("message_missing_key", f"{where} has no 'role'; give it one of {', '.join(ROLE_KEYS)}")]
    role = message["role"]
    if not isinstance(role, str) or role not in ROLE_KEYS:
        hint = (" (fine-tuning files take 'system' where chat requests take 'developer')"
                if role == "developer" else "")
        return [("unrecognized_role", f"{where} has role {role!r}; use one of {', '.join(ROLE_KEYS)}{hint}")]
    where = f"message {i} ({role})"
    problems = []
    if "weight" in message and role != "assistant":
        problems.append(("invalid_weight", f"{where} has 'weight', which only assistant messages take; remove it"))
    extra = sorted(set(message) - ROLE_KEYS[role] - {"weight"})
    if extra:
        problems.append(("message_unrecognized_key",
                         f"{where} has unexpected key(s) {', '.join(map(repr, extra))}; {role} messages take "
                         f"only {', '.join(sorted(ROLE_KEYS[role]))}: remove the others"))
    weight = message.get("weight", 1)
    if role == "assistant" and (isinstance(weight, bool) or weight not in (0, 1)):
        problems.append(("invalid_weight", f"{where} has weight {weight!r}; use 0 (context only, not trained on) "
                                           "or 1 (trained on)"))
    calls = role == "assistant" and any(message.get(k) is not None for k in ("tool_calls", "function_call"))
    content = message.get("content")
    if isinstance(content, list):
        problems += _check_parts(where, role, content)
    elif content is not None and not isinstance(content, str):
        problems.append(("content_type", f"{where} has content that is {_json_type(content)}; content must be a "
                                         "string (or a list of content parts)"))
    elif not (content or "").strip() and not calls:
        also = " (or tool_calls)" if role == "assistant" else ""
        problems.append(("missing_content", f"{where} has no content; give it a non-empty string{also}"))
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        problems.append(("message_missing_key", f"{where} needs 'tool_call_id', the id of the tool call it answers"))
    if role == "function" and not isinstance(message.get("name"), str):
        problems.append(("message_missing_key", f"{where} needs 'name', the function whose result it holds"))
    elif "name" in message and not isinstance(message["name"], str):
        problems.append(("message_unrecognized_key", f"{where} has a 'name' that is not a string"))
    if role == "assistant":
        problems += _check_calls(where, message)
    return problems


def check_example(example: Any) -> list[tuple[str, str]]:
    """Format problems of one line as (kind, what is wrong and what to do); [] when OpenAI would take it."""
    if not isinstance(example, dict):
        return [("data_type", f"the line is {_json_type(example)}; each line must be an object "
                              '{"messages": [...]}')]
    problems = []
    extra = sorted(set(example) - set(EXAMPLE_KEYS))
    if extra:
        problems.append(("unrecognized_example_key",
                         f"unexpected key(s) {', '.join(map(repr, extra))}; a line takes only "
                         f"{', '.join(EXAMPLE_KEYS)}: remove the others"))
    for key in ("tools", "functions"):
        if key in example and not isinstance(example[key], list):
            problems.append(("unrecognized_example_key", f"'{key}' must be a list of definitions"))
    if "parallel_tool_calls" in example and not isinstance(example["parallel_tool_calls"], bool):
        problems.append(("unrecognized_example_key", "'parallel_tool_calls' must be true or false"))
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        problems.append(("missing_messages_list", "no 'messages' list, or an empty one; each line needs "
                                                  '{"messages": [{"role": ..., "content": ...}, ...]}'))
        return problems
    for i, message in enumerate(messages, 1):
        problems += _check_message(i, message)
    roles = [m.get("role") if isinstance(m, dict) else None for m in messages]
    for i, role in enumerate(roles[1:], 2):
        if role == "system":
            problems.append(("system_not_first", f"message {i} is a system message; only the first message may be "
                                                 "one: merge it into message 1 or make it a user message"))
    if "assistant" not in roles:
        problems.append(("example_missing_assistant_message",
                         "no assistant message; OpenAI learns from assistant replies: end the example with "
                         '{"role": "assistant", "content": <the expected answer>}'))
    return problems


# --- token counting --------------------------------------------------------------------------------
# OpenAI's cookbook figures for its chat models: every message is framed by ~3 tokens
# (<|start|>{role}<|message|> ... <|end|>, the role's own token counted with the values), a name
# costs 1 more, and every example ends with the 3 tokens that prime the assistant's reply.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3


class TokenCounter(NamedTuple):
    method: str  # "tiktoken:o200k_base", "tiktoken:cl100k_base", or "estimate"
    count: Callable[[str], int]


def encoding_for(model: str) -> str:
    """tiktoken's encoding for a model: o200k_base from gpt-4o on, cl100k_base for gpt-3.5/gpt-4."""
    base = model.removeprefix("ft:")  # a fine-tuned model used as the base: ft:gpt-4o-mini-...:org::id
    o200k = ("gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4")
    return "o200k_base" if base.startswith(o200k) else "cl100k_base"


# Pieces as cl100k/o200k pre-tokenize text, in Python's re (no \p{L}: [^\W\d_] is "a letter"):
# contractions, a word with at most one leading non-letter (usually its space), runs of up to three
# digits, punctuation runs, line breaks, other whitespace.
_PIECES = re.compile(r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\w]?[^\W\d_]+|\d{1,3}| ?(?:[^\s\w]|_)+[\r\n]*"
                     r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def estimate_tokens(text: str) -> int:
    """Tokens without tiktoken: each pre-token piece costs ceil(characters / 4), at least 1.

    Common short words are single tokens in OpenAI's vocabularies and long or rare ones split into
    pieces of a few characters, so " de" -> 1, " mercado" -> 2, " Alternativa" -> 3 (a piece's
    leading space is not counted). Uncalibrated against tiktoken (it cannot be installed here):
    treat the count, and the cost priced from it, as an estimate. Deterministic: same text, same count.
    """
    return sum(max(1, -(-len(piece.lstrip(" ")) // 4)) for piece in _PIECES.findall(text))


def token_counter(model: str) -> TokenCounter:
    """tiktoken's encoding for ``model`` when tiktoken is installed and has it, else ``estimate_tokens``."""
    name = encoding_for(model)
    try:
        import tiktoken

        encoding = tiktoken.get_encoding(name)
    except Exception:  # not installed, or offline with no cached encoding file: fall back, labelled as such
        return TokenCounter("estimate", estimate_tokens)
    return TokenCounter(f"tiktoken:{name}", lambda text: len(encoding.encode(text, disallowed_special=())))


def _message_texts(message: dict) -> list[str]:
    """The strings of a message the model reads: role, content (text parts), name, calls."""
    texts = [message["role"]]
    content = message.get("content")
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):  # image parts are not text; OpenAI bills them by size, not counted here
        texts += [part.get("text") or part.get("refusal") or "" for part in content]
    for key in ("name", "tool_call_id", "refusal"):
        if isinstance(message.get(key), str):
            texts.append(message[key])
    for call in message.get("tool_calls") or []:
        texts += [call["function"]["name"], call["function"]["arguments"]]
    if message.get("function_call"):
        texts += [message["function_call"]["name"], message["function_call"]["arguments"]]
    return texts


def example_tokens(example: dict, count: Callable[[str], int]) -> tuple[int, int]:
    """(tokens of the whole example, tokens of the assistant messages trained on) of a well-formed example."""
    total, assistant = REPLY_PRIMING, 0
    for message in example["messages"]:
        texts = _message_texts(message)
        tokens = sum(count(t) for t in texts)
        total += TOKENS_PER_MESSAGE + tokens + (TOKENS_PER_NAME if "name" in message else 0)
        if message["role"] == "assistant" and message.get("weight", 1) == 1:
            assistant += tokens - count(message["role"])
    for key in ("tools", "functions"):  # definitions are part of the prompt the model reads
        if example.get(key):
            total += count(json.dumps(example[key], ensure_ascii=False))
    return total, assistant


# --- the report ------------------------------------------------------------------------------------
def _quantile(ordered: list[int], q: float) -> float:
    """Linear interpolation between the closest ranks, numpy.quantile's default."""
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo), 1)


def distribution(values: list[int]) -> dict:
    if not values:
        return {"min": 0, "mean": 0.0, "p50": 0.0, "p90": 0.0, "max": 0}
    ordered = sorted(values)
    return {"min": ordered[0], "mean": round(sum(ordered) / len(ordered), 1), "p50": _quantile(ordered, 0.5),
            "p90": _quantile(ordered, 0.9), "max": ordered[-1]}


def _lines_note(lines: list[int]) -> str:
    shown = ", ".join(map(str, lines[:10]))
    return f"line {shown}" if len(lines) == 1 else f"lines {shown}" + (", ..." if len(lines) > 10 else "")


@dataclass
class _Tally:
    """What validate() finds going through one file's examples."""
    name: str
    n: int = 0
    errors: list[str] = field(default_factory=list)
    kinds: Counter = field(default_factory=Counter)
    bad_lines: set[int] = field(default_factory=set)
    totals: list[int] = field(default_factory=list)
    assistants: list[int] = field(default_factory=list)
    n_messages: list[int] = field(default_factory=list)
    first_seen: dict[str, int] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)
    no_system: list[int] = field(default_factory=list)
    no_user: list[int] = field(default_factory=list)
    not_last: list[int] = field(default_factory=list)
    untrained: list[int] = field(default_factory=list)

    def error(self, lineno: int, kind: str, message: str) -> None:
        self.kinds[kind] += 1
        self.bad_lines.add(lineno)
        self.errors.append(f"{self.name}:{lineno}: {message}")


def _tally(lines: Iterable[tuple[int, Any]], p: OpenAIFinetuneParams, name: str, counter: TokenCounter) -> _Tally:
    t = _Tally(name)
    for lineno, example in lines:
        t.n += 1
        if isinstance(example, Unparsed):
            t.error(lineno, "invalid_json", f"not valid JSON ({example.error}); fix or remove that line")
            continue
        problems = check_example(example)
        for kind, message in problems:
            t.error(lineno, kind, message)
        if not problems:
            _tally_example(t, lineno, example, p, counter)
    return t


def _tally_example(t: _Tally, lineno: int, example: dict, p: OpenAIFinetuneParams, counter: TokenCounter) -> None:
    """Tokens, roles and duplicates of an example whose format is right."""
    messages = example["messages"]
    total, assistant = example_tokens(example, counter.count)
    t.totals.append(total)
    t.assistants.append(assistant)
    t.n_messages.append(len(messages))
    if total > p.max_tokens_per_example:
        t.error(lineno, "too_long", f"{total} tokens, over openai_finetune.max_tokens_per_example "
                                    f"({p.max_tokens_per_example}, the model's limit): OpenAI would cut it "
                                    "short; shorten its context or drop it")
    roles = [m["role"] for m in messages]
    if "system" not in roles:
        t.no_system.append(lineno)
    if "user" not in roles:
        t.no_user.append(lineno)
    if roles[-1] != "assistant":
        t.not_last.append(lineno)
    if not any(m["role"] == "assistant" and m.get("weight", 1) == 1 for m in messages):
        t.untrained.append(lineno)
    key = dumps(example)
    if key in t.first_seen:
        t.duplicates.append(f"{t.name}:{lineno}: same example as line {t.first_seen[key]}")
    else:
        t.first_seen[key] = lineno


def _warnings(t: _Tally, counter: TokenCounter) -> list[str]:
    """Duplicates, then examples that train on less than they seem to, then an estimated token count."""
    name = t.name
    warnings = t.duplicates[:MAX_LISTED]
    if len(t.duplicates) > MAX_LISTED:
        warnings.append(f"... and {len(t.duplicates) - MAX_LISTED} more duplicate(s)")
    for found, what in ((t.no_system, "have no system message (the model then learns without the instructions "
                                      "it will be given)"),
                        (t.no_user, "have no user message"),
                        (t.not_last, "do not end with an assistant message (what follows the last one is never "
                                     "trained on)"),
                        (t.untrained, "have weight 0 on every assistant message, so nothing in them is trained on")):
        if found:
            warnings.append(f"{name}: {len(found)} example(s) {what}: {_lines_note(found)}")
    if counter.method == "estimate":
        warnings.append(f"{name}: tiktoken is not available, so tokens (and the cost) are estimated, not counted")
    return warnings


def _price(totals: list[int], p: OpenAIFinetuneParams) -> dict:
    """The billed tokens and cost: each example counted up to max_tokens_per_example, once per epoch."""
    per_epoch = sum(min(t, p.max_tokens_per_example) for t in totals)
    billed = per_epoch * p.n_epochs
    return {
        "billed_tokens_per_epoch": per_epoch, "n_epochs": p.n_epochs, "billed_tokens": billed,
        "price_per_million_tokens": p.price_per_million_tokens,
        "estimated_cost_usd": round(billed * p.price_per_million_tokens / 1e6, 4),
    }


def validate(lines: Iterable[tuple[int, Any]], p: OpenAIFinetuneParams, *, name: str = "records",
             counter: TokenCounter | None = None, min_examples: int | None = None, priced: bool = True) -> dict:
    """Check numbered examples (``read_lines`` / ``numbered``) against OpenAI's chat fine-tuning format.

    Returns a plain dict: ``ok`` (no errors), ``examples`` (lines), ``valid_examples``,
    ``token_counter`` ("tiktoken:o200k_base", or "estimate" when tiktoken or its encoding is not
    available), ``total_tokens`` and ``tokens_per_example`` (min/mean/p50/p90/max),
    ``assistant_tokens`` and ``assistant_tokens_per_example`` (assistant messages trained on),
    ``messages_per_example``; when ``priced``: ``billed_tokens_per_epoch`` (each example counted up
    to ``max_tokens_per_example``), ``n_epochs``, ``billed_tokens``, ``price_per_million_tokens`` and
    ``estimated_cost_usd``; ``errors`` ("file:line: what is wrong; what to do", at most MAX_LISTED)
    with ``error_count`` and ``error_kinds``, and ``warnings``. Token figures cover every example
    whose format is right, too-long ones included. ``min_examples`` defaults to ``p.min_examples``.
    """
    counter = counter or token_counter(p.model)
    need = p.min_examples if min_examples is None else min_examples
    t = _tally(lines, p, name, counter)
    valid = t.n - len(t.bad_lines)
    if valid < need:
        t.kinds["too_few_examples"] += 1
        t.errors.append(f"{name}: {valid} valid example(s) of {t.n}; OpenAI needs at least {need}"
                        + (" (openai_finetune.min_examples)" if min_examples is None else "")
                        + ": fix the lines above or export more data")
    warnings = _warnings(t, counter)

    report: dict[str, Any] = {
        "file": name, "ok": not t.errors, "examples": t.n, "valid_examples": valid,
        "token_counter": counter.method,
        "total_tokens": sum(t.totals), "tokens_per_example": distribution(t.totals),
        "assistant_tokens": sum(t.assistants), "assistant_tokens_per_example": distribution(t.assistants),
        "messages_per_example": distribution(t.n_messages),
        "max_tokens_per_example": p.max_tokens_per_example,
    }
    if priced:
        report.update(_price(t.totals, p))
    listed = t.errors[:MAX_LISTED]
    if len(t.errors) > MAX_LISTED:
        listed.append(f"... and {len(t.errors) - MAX_LISTED} more error(s); see error_kinds")
    report.update({"error_count": len(t.errors), "error_kinds": dict(sorted(t.kinds.items())), "errors": listed,
                   "warnings": warnings})
    return report


def validate_pair(train: list[tuple[int, Any]], validation: list[tuple[int, Any]] | None,
                  p: OpenAIFinetuneParams, *, train_name: str = "train", validation_name: str = "validation",
                  counter: TokenCounter | None = None) -> dict:
    """Reports for the training file and the (optional) validation file of one job.

    Returns {"ok", "train": report, "validation": report or None, "estimated_cost_usd",
    "billed_tokens", "token_counter"}. The price is the training file's, as in OpenAI's cookbook (the
    validation file is scored, not trained on); it needs at least one example, not min_examples.
    Validation examples that also appear in the training file are warned about: they flatter the
    validation loss.
    """
    counter = counter or token_counter(p.model)
    train_report = validate(train, p, name=train_name, counter=counter)
    val_report = None
    if validation is not None:
        val_report = validate(validation, p, name=validation_name, counter=counter, min_examples=1, priced=False)
        seen = {dumps(ex) for _, ex in train if isinstance(ex, dict)}
        shared = [lineno for lineno, ex in validation if isinstance(ex, dict) and dumps(ex) in seen]
        if shared:
            val_report["warnings"].append(f"{validation_name}: {len(shared)} example(s) also in {train_name}: "
                                          f"{_lines_note(shared)}")
    return {"ok": train_report["ok"] and (val_report is None or val_report["ok"]),
            "train": train_report, "validation": val_report,
            "estimated_cost_usd": train_report["estimated_cost_usd"],
            "billed_tokens": train_report["billed_tokens"], "token_counter": counter.method}


def describe(check: dict) -> str:
    """A few human lines for a validate_pair result (what the CLI prints)."""
    t = check["train"]
    dist = t["tokens_per_example"]
    label = "estimated" if t["token_counter"] == "estimate" else f"counted with {t['token_counter']}"
    out = [f"{t['file']}: {t['examples']} examples ({t['valid_examples']} valid), {t['total_tokens']} tokens "
           f"({label}); per example min {dist['min']} / mean {dist['mean']} / p50 {dist['p50']} / "
           f"p90 {dist['p90']} / max {dist['max']}; assistant tokens {t['assistant_tokens']}",
           f"billed: {t['billed_tokens_per_epoch']} tokens x {t['n_epochs']} epochs = {t['billed_tokens']} tokens "
           f"~ ${t['estimated_cost_usd']:.2f} at ${t['price_per_million_tokens']}/1M"
           + (" (token count estimated)" if t["token_counter"] == "estimate" else "")]
    v = check["validation"]
    if v is not None:
        out.append(f"{v['file']}: {v['examples']} examples ({v['valid_examples']} valid), {v['total_tokens']} tokens")
    for report in filter(None, (t, v)):
        out += [f"warning: {w}" for w in report["warnings"]]
        out += [f"error: {e}" for e in report["errors"]]
    out.append("ok: ready to submit" if check["ok"] else "NOT ready: fix the errors above")
    return "\n".join(out)


# --- the API: client, submit, wait -----------------------------------------------------------------
TERMINAL = ("succeeded", "failed", "cancelled")


class OpenAIFinetuneError(InputError):
    """The API refused or failed a request; the message says what to check and never holds the key."""


class DataNotReady(InputError):
    """validate found errors, so nothing was uploaded; ``check`` is the validate_pair result."""

    def __init__(self, message: str, check: dict):
        super().__init__(message)
        self.check = check


def make_client(p: OpenAIFinetuneParams):
    """openai.OpenAI for ``p.base_url`` or ``$OPENAI_BASE_URL`` (else OpenAI), keyed by ``$OPENAI_API_KEY``."""
    import openai

    key, base_url = openai_client.credentials(p.base_url, hint=" (`gabarito openai-finetune validate` needs no key.)")
    # the client retries connection errors, 408/409/429 and 5xx itself (3 times, backing off and
    # honouring Retry-After). A retried upload can at worst leave a spare file; job creation is
    # retried by submit instead, which first looks for the job the failed call may have created.
    return openai.OpenAI(api_key=key, base_url=base_url, max_retries=3)


# openai's error ``param`` -> the params.yaml knob behind it
_PARAM_HINTS = {
    "model": " Check openai_finetune.model: it must be a model OpenAI can fine-tune, e.g. gpt-4o-mini-2024-07-18.",
    "suffix": " Check openai_finetune.suffix (at most 64 characters).",
    "hyperparameters.n_epochs": " Check openai_finetune.n_epochs.",
    "method.supervised.hyperparameters.n_epochs": " Check openai_finetune.n_epochs.",
}


def api_error(exc: Exception, doing: str, key: str | None, base_url: Any = None) -> OpenAIFinetuneError:
    """A clean, key-free message for an exception of the openai client."""
    import openai

    msg = openai_client.describe_error(exc, doing, base_url=base_url, key=key, hints=_PARAM_HINTS,
                                       settings="openai_finetune.base_url")
    if isinstance(exc, openai.PermissionDeniedError):
        msg += " Is fine-tuning enabled for this key's project?"
    return OpenAIFinetuneError(msg)


@contextmanager
def _api(client, doing: str) -> Iterator[None]:
    import openai

    try:
        yield
    except openai.OpenAIError as exc:
        raise api_error(exc, doing, getattr(client, "api_key", None), getattr(client, "base_url", None)) from None


def job_request(p: OpenAIFinetuneParams, training_file: str, validation_file: str | None) -> dict:
    """Arguments of client.fine_tuning.jobs.create: a supervised job with n_epochs under ``method``
    (the top-level ``hyperparameters`` argument is deprecated)."""
    request: dict[str, Any] = {
        "model": p.model, "training_file": training_file,
        "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": p.n_epochs}}},
    }
    if validation_file is not None:
        request["validation_file"] = validation_file
    if p.suffix:
        request["suffix"] = p.suffix
    return request


def _wait(exc: Exception, attempt: int) -> float:
    """Seconds before the next try: the server's Retry-After(-ms) when given (at most a minute), else
    0.5 s doubling to 8 s."""
    wait = openai_client.retry_after(exc, cap=60.0)
    return min(8.0, 0.5 * 2 ** (attempt - 1)) if wait is None else wait


def create_job(client, request: dict, *, attempts: int = 4, sleep: Callable[[float], None] = time.sleep):
    """client.fine_tuning.jobs.create, retried without paying for two jobs when a reply is lost.

    After a 5xx, a 429 or a dropped connection, the recent jobs are searched for one on this
    upload's training file (a fresh file id: a match can only be this submit's job) before trying
    again (openai_client.create_then_find). Other errors are final at once.
    """
    once = client.with_options(max_retries=0)

    def find():
        return next((job for job in client.fine_tuning.jobs.list(limit=20).data
                     if job.training_file == request["training_file"]), None)

    return openai_client.create_then_find(lambda: once.fine_tuning.jobs.create(**request), find,
                                          retries=attempts - 1, wait=_wait, sleep=sleep)


def read_file(path: str | Path) -> tuple[bytes, list[tuple[int, Any]]]:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found. Run the format stage first (`dvc repro format`).")
    data = path.read_bytes()
    try:
        return data, read_lines(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 (byte {exc.start}); OpenAI wants UTF-8 JSONL.") from None


def submit(client, train_path: str | Path, validation_path: str | Path | None, p: OpenAIFinetuneParams, *,
           wait: bool = False, progress: Callable[[dict], None] | None = None,
           sleep: Callable[[float], None] = time.sleep, counter: TokenCounter | None = None) -> dict:
    """Validate, upload both files (purpose fine-tune), create the job; with ``wait``, follow it.

    Raises DataNotReady (an InputError; nothing is sent) when validate_pair finds errors, and
    OpenAIFinetuneError (an InputError) when the API refuses or fails. Returns {"job_id", "status",
    "model", "training_file", "validation_file" (file ids), "suffix", "n_epochs", "billed_tokens",
    "estimated_cost_usd", "token_counter", "fine_tuned_model" (None until the job succeeds),
    "trained_tokens", "error", "events"}; with ``wait`` those are the job's final values (see
    wait_for_job) and ``progress`` gets each new job event as it appears.
    """
    train_bytes, train_lines = read_file(train_path)
    val_bytes, val_lines = read_file(validation_path) if validation_path is not None else (None, None)
    check = validate_pair(train_lines, val_lines, p, train_name=str(train_path),
                          validation_name=str(validation_path), counter=counter)
    if not check["ok"]:
        listed = [e for r in (check["train"], check["validation"]) if r for e in r["errors"]]
        count = sum(r["error_count"] for r in (check["train"], check["validation"]) if r)
        raise DataNotReady(f"not submitted, nothing was uploaded: the data has {count} error(s):\n  "
                           + "\n  ".join(listed[:20]) + ("\n  ..." if len(listed) > 20 else "")
                           + "\n(`gabarito openai-finetune validate` shows the whole report)", check)

    with _api(client, f"uploading {train_path}"):
        train_file = client.files.create(file=(Path(train_path).name, train_bytes, "application/jsonl"),
                                         purpose="fine-tune")
    val_file = None
    if validation_path is not None:
        with _api(client, f"uploading {validation_path} (training file already uploaded as {train_file.id})"):
            val_file = client.files.create(file=(Path(validation_path).name, val_bytes, "application/jsonl"),
                                           purpose="fine-tune")
    uploaded = ", ".join(f.id for f in (train_file, val_file) if f is not None)
    with _api(client, f"creating the fine-tuning job (files {uploaded} stay uploaded; reuse or delete them)"):
        job = create_job(client, job_request(p, train_file.id, val_file.id if val_file else None), sleep=sleep)
    out = {"job_id": job.id, "status": job.status, "model": p.model, "training_file": train_file.id,
           "validation_file": val_file.id if val_file else None, "suffix": p.suffix, "n_epochs": p.n_epochs,
           "billed_tokens": check["billed_tokens"], "estimated_cost_usd": check["estimated_cost_usd"],
           "token_counter": check["token_counter"], "fine_tuned_model": job.fine_tuned_model,
           "trained_tokens": job.trained_tokens, "error": None, "events": 0}
    if wait:
        out.update(wait_for_job(client, job.id, p, progress=progress, sleep=sleep))
    return out


def _event(ev) -> dict:
    # what the server wrote is shown: scrubbed, in case it quotes the request's headers
    return openai_client.scrub_record({"id": ev.id, "created_at": ev.created_at, "level": ev.level,
                                       "message": ev.message, "type": ev.type, "data": ev.data})


def wait_for_job(client, job_id: str, p: OpenAIFinetuneParams, *, progress: Callable[[dict], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep, max_poll_failures: int = 5) -> dict:
    """Poll the job every ``p.poll_interval_s`` until succeeded, failed or cancelled.

    Each new job event goes to ``progress`` (oldest first) as {"id", "created_at", "level",
    "message", "type", "data"}. Returns {"job_id", "status", "fine_tuned_model", "trained_tokens",
    "error" (the job's error message when it failed), "events" (how many were seen)}. A network blip
    while polling is retried (the job runs on regardless); after ``max_poll_failures`` in a row,
    OpenAIFinetuneError names the job so a later wait can pick it up.
    """
    import openai

    seen: set[str] = set()
    failures = 0
    while True:
        try:
            job = client.fine_tuning.jobs.retrieve(job_id)
            new = []
            # newest first, page after page: stop at the first event already shown
            for ev in client.fine_tuning.jobs.list_events(job_id, limit=100):
                if ev.id in seen:
                    break
                new.append(ev)
            failures = 0
        except (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError) as exc:
            failures += 1
            if failures > max_poll_failures:
                raise api_error(exc, f"waiting for job {job_id} (it keeps running at OpenAI; wait for it again "
                                     "later)", getattr(client, "api_key", None),
                                getattr(client, "base_url", None)) from None
            sleep(p.poll_interval_s)
            continue
        except openai.OpenAIError as exc:
            raise api_error(exc, f"checking job {job_id}", getattr(client, "api_key", None),
                            getattr(client, "base_url", None)) from None
        for ev in reversed(new):
            seen.add(ev.id)
            if progress is not None:
                progress(_event(ev))
        if job.status in TERMINAL:
            return {"job_id": job.id, "status": job.status, "fine_tuned_model": job.fine_tuned_model,
                    "trained_tokens": job.trained_tokens,
                    "error": openai_client.scrub(job.error.message) if job.error else None,
                    "events": len(seen)}
        sleep(p.poll_interval_s)


# --- command: gabarito openai-finetune ---------------------------------------------------------------
@click.group("openai-finetune")
def group():
    """OpenAI's hosted fine-tuning of the exported chat JSONL: check it, price it, run it.

    \b
    Examples:
      gabarito openai-finetune validate                     # no key, no call: format, tokens, cost
      OPENAI_API_KEY=... gabarito openai-finetune submit --wait
      gabarito openai-finetune wait ftjob-abc123            # follow a job submitted earlier
    """


def _files_options(fn):
    fn = click.option("--validation", type=click.Path(dir_okay=False), default="data/processed/openai_validation.jsonl",
                      show_default=True, help="validation file ('' for none)")(fn)
    return click.option("--train", "train_path", type=click.Path(dir_okay=False),
                        default="data/processed/openai_train.jsonl", show_default=True)(fn)


def _print_event(ev: dict) -> None:
    click.echo(f"  [{ev['level']}] {ev['message']}")


@group.command("validate")
@_files_options
@click.option("--json", "as_json", is_flag=True, help="print the whole report as JSON")
@params_option
@user_errors
def validate_command(train_path, validation, as_json, params_path):
    """Check the files against OpenAI's chat fine-tuning format; count tokens; estimate the cost.

    Makes no API call and needs no key. Exits 1 when a line would make OpenAI reject the file.

    \b
    Examples:
      gabarito openai-finetune validate
      gabarito openai-finetune validate --train my.jsonl --validation ''
      gabarito openai-finetune validate --json | jq .train.tokens_per_example
    """
    from gabarito.params import load_section

    p = load_section("openai_finetune", params_path)
    train_lines = read_file(train_path)[1]
    val_lines = read_file(validation)[1] if validation else None
    check = validate_pair(train_lines, val_lines, p, train_name=train_path, validation_name=validation or "")
    click.echo(json.dumps(check, indent=1, ensure_ascii=False) if as_json else describe(check))
    if not check["ok"]:
        sys.exit(1)


@group.command("submit")
@_files_options
@click.option("--wait", is_flag=True, help="follow the job to the end, printing its events")
@params_option
@user_errors
def submit_command(train_path, validation, wait, params_path):
    """Validate, upload both files and start a fine-tuning job (key from $OPENAI_API_KEY).

    Nothing is uploaded when validation finds an error. The model, epochs and suffix come from
    the openai_finetune section of params.yaml; the endpoint from openai_finetune.base_url or
    $OPENAI_BASE_URL.

    \b
    Examples:
      gabarito openai-finetune submit                 # prints the job id and returns
      gabarito openai-finetune submit --wait          # ... and follows it to the end
    """
    from gabarito.params import load_section

    p = load_section("openai_finetune", params_path)
    client = make_client(p)
    out = submit(client, train_path, validation or None, p)
    # the id first: a job runs for hours, and a dropped session can pick it up again with `wait`
    click.echo(f"job {out['job_id']}: {out['status']} (model {out['model']}, files {out['training_file']}"
               + (f" + {out['validation_file']}" if out["validation_file"] else "")
               + f"; ~{out['billed_tokens']:,} billed tokens, ~${out['estimated_cost_usd']:.2f})")
    if not wait:
        click.echo(f"follow it with: gabarito openai-finetune wait {out['job_id']}")
        return
    out.update(wait_for_job(client, out["job_id"], p, progress=_print_event))
    click.echo(f"job {out['job_id']}: {out['status']}"
               + (f"; fine-tuned model: {out['fine_tuned_model']}" if out["fine_tuned_model"] else ""))
    if out["status"] != "succeeded":
        raise click.ClickException(f"job {out['job_id']} {out['status']}: {out['error'] or 'no reason given'}")


@group.command("wait")
@click.argument("job_id")
@params_option
@user_errors
def wait_command(job_id, params_path):
    """Follow a fine-tuning job until it succeeds, fails or is cancelled, printing its events.

    \b
    Example:
      gabarito openai-finetune wait ftjob-abc123
    """
    from gabarito.params import load_section

    p = load_section("openai_finetune", params_path)
    out = wait_for_job(make_client(p), job_id, p, progress=_print_event)
    click.echo(f"job {out['job_id']}: {out['status']}"
               + (f"; fine-tuned model: {out['fine_tuned_model']}" if out["fine_tuned_model"] else ""))
    if out["status"] != "succeeded":
        raise click.ClickException(f"job {job_id} {out['status']}: {out['error'] or 'no reason given'}")
