"""Items longer than ``train.sft.max_length`` tokens: fitted by shortening the passage, never lost silently.

An item's tokens are its prompt plus its completion as training tokenizes them (each part on its own,
no special tokens added; stages/train.py's ``tokenize_example``), counted with the stage's real
tokenizer. An item over the limit is *fitted*: its passage (``context``) is cut at word boundaries and
the cut marked with ``[...]``, so a reader (and the model) sees that text is missing. The question,
the options and the answer are never cut: a wrong option or a half question would be another item.

``format.fit`` says which part of the passage goes (``FIT_MODES``):

- ``cut_end``: keep the start, cut the end ("O texto começa assim [...]");
- ``cut_start``: keep the end, cut the start ("[...] e termina assim");
- ``cut_middle``: keep the start and the end, cut the middle ("começa [...] termina");
- ``drop``: leave a training item that does not fit out, as train did before fitting existed.

An item whose question and options alone exceed the limit (an exam question that carries its passage
in the question, an item without a passage) cannot be fitted: ``fit_item`` returns None and the caller
counts it. Training leaves such an item out; a scored split keeps it whole (evaluation never drops an
item), and format counts both.
"""

from __future__ import annotations

import math
import re
import statistics
from typing import Callable

FIT_MODES = ("cut_end", "cut_start", "cut_middle", "drop")
MARKER = "[...]"

# outcomes of fit_item, counted per split and source in metrics/format.json
FITS, FITTED, DROPPED, KEPT_WHOLE = "fits", "fitted", "dropped", "kept_whole"

_WORD = re.compile(r"\S+")


def token_count(tokenizer, prompt: str, completion: str) -> int:
    """Tokens of an example as training sees them: prompt and completion tokenized apart, no special
    tokens added (the chat template already wrote them)."""
    return (len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
            + len(tokenizer(completion, add_special_tokens=False)["input_ids"]))


def cut_passage(text: str, keep_words: int, how: str) -> str:
    """``text`` with only ``keep_words`` of its words left and ``MARKER`` where the rest was.

    Cuts fall between words and the text kept keeps its own spacing and line breaks. ``keep_words`` 0
    leaves the marker alone."""
    spans = [m.span() for m in _WORD.finditer(text)]
    if keep_words >= len(spans):
        return text
    if keep_words <= 0:
        return MARKER
    if how == "cut_end":
        return f"{text[:spans[keep_words - 1][1]]} {MARKER}"
    if how == "cut_start":
        return f"{MARKER} {text[spans[len(spans) - keep_words][0]:]}"
    if how == "cut_middle":
        head = math.ceil(keep_words / 2)
        tail = keep_words - head
        end = f" {text[spans[len(spans) - tail][0]:]}" if tail else ""
        return f"{text[:spans[head - 1][1]]} {MARKER}{end}"
    raise ValueError(f"cannot cut a passage with {how!r}; use one of {', '.join(FIT_MODES[:-1])}")


def fit_item(rec: dict, n_tokens: Callable[[dict], int], max_length: int, how: str) -> tuple[dict | None, str, int]:
    """(record, outcome, tokens of the record as it came). ``n_tokens`` counts a record's tokens as
    rendered (``token_count`` of its prompt and completion).

    A record within ``max_length`` comes back as it is (``fits``). A longer one comes back with the
    longest passage that fits, cut as ``how`` says (``fitted``), found by bisection on the number of
    words kept (about log2(words) renders). It is None (``dropped``) when ``how`` is ``drop``, or when
    even the passage reduced to the marker does not fit: the question and options alone are too long.
    """
    before = n_tokens(rec)
    if before <= max_length:
        return rec, FITS, before
    context = rec.get("context") or ""
    if how == "drop" or not context:
        return None, DROPPED, before
    words = len(_WORD.findall(context))

    def with_words(k: int) -> dict:
        return {**rec, "context": cut_passage(context, k, how)}

    if n_tokens(with_words(0)) > max_length:
        return None, DROPPED, before
    low, high = 0, words - 1  # with_words(low) fits; with_words(words) is the whole record, which does not
    while low < high:
        mid = (low + high + 1) // 2
        if n_tokens(with_words(mid)) <= max_length:
            low = mid
        else:
            high = mid - 1
    return with_words(low), FITTED, before


def length_summary(lengths: list[int], max_length: int) -> dict:
    """Token lengths of one source against the limit: n, median, p95 (nearest rank), max, and how
    many are over ``max_length``."""
    ordered = sorted(lengths)
    if not ordered:
        return {"n": 0, "median": None, "p95": None, "max": None, "over_max_length": 0}
    return {"n": len(ordered), "median": float(statistics.median(ordered)),
            "p95": ordered[math.ceil(0.95 * len(ordered)) - 1], "max": ordered[-1],
            "over_max_length": sum(n > max_length for n in ordered)}
