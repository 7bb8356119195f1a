"""What every multiple-choice source shares: option letters for n options and the seeded split.

A multiple-choice record, whatever its source (Cosmos QA, the user's files, exam PDFs), is
``{id, split, context, question, answers: [n strings], label, question_type, source, language, ...}``
with 2 <= n <= len(format.letters); its letters are the first n of ``format.letters``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from gabarito.io import InputError

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


# characters OCR and PDF text layers leave behind that carry no meaning in Portuguese prose
JUNK = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\ufffd\u200b-\u200f\u2028\u2029\ufeff]")


SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")


# decoration people type between paragraphs of a blog post (Cosmos QA's contexts come from blogs):
# "~*~*~", "* * *", "-----", "=====", "•°•°•". A run of three or more of these characters (spaces
# between them allowed) that touches no letter or digit is decoration: it is dropped, the item kept.
# Without this, "~" (a math symbol, not punctuation) sank a real item under min_clean_char_ratio.
# "f***" or "..." are not touched: the first touches a letter, "." is not decoration.
# Not "_": "prazo de ___ dias" is a blank to fill in, not decoration. Not a run that ends in an arrow
# head ("----->", "<====="): that is an arrow, and it points somewhere.
_DECO = "~*=#+•·°¤¨¸♪♫★☆♥❤♡✿❀^-"


DECORATION = re.compile(rf"(?<![\w<{re.escape(_DECO)}])[{re.escape(_DECO)}](?:[ \t]*[{re.escape(_DECO)}]){{2,}}+(?![\w>])")


def strip_decoration(text: str) -> str:
    """Decorative separator runs (see DECORATION) replaced by a space; normalize_text folds what is left."""
    return DECORATION.sub(" ", text)


def normalize_text(text: str) -> str:
    """NFC, junk characters removed, runs of spaces folded, lines trimmed, blank-line runs folded."""
    text = unicodedata.normalize("NFC", text)
    text = JUNK.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
