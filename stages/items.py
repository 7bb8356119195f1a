"""What every multiple-choice source shares: option letters for n options and the seeded split.

A multiple-choice record, whatever its source (Cosmos QA, the user's files, exam PDFs), is
``{id, split, context, question, answers: [n strings], label, question_type, source, language, ...}``
with 2 <= n <= len(format.letters); its letters are the first n of ``format.letters``.
"""

from __future__ import annotations

import hashlib

from stages.io import InputError

MIN_OPTIONS = 2


def option_letters(n: int, alphabet: list[str] | tuple[str, ...]) -> list[str]:
    """The letters of an item with ``n`` options: the first n of ``format.letters``."""
    if not MIN_OPTIONS <= n <= len(alphabet):
        raise InputError(f"an item has {n} options; gabarito takes {MIN_OPTIONS} to {len(alphabet)} "
                         f"(format.letters: {''.join(alphabet)}).")
    return list(alphabet[:n])


def hash_split(item_id: str, *, seed: int, validation_share: float) -> str:
    """``validation`` for about ``validation_share`` of ids, else ``train``: a seeded hash of the id, so an
    item keeps its split when others are added or removed, and every machine agrees."""
    digest = hashlib.sha256(f"{seed}:{item_id}".encode()).digest()
    return "validation" if int.from_bytes(digest[:8], "big") / 2**64 < validation_share else "train"
