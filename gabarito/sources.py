"""What the ingest and mcq stages share to read a source: a question's type, CSV error messages and bounded
URL downloads.
"""

from __future__ import annotations

import csv
import re
import urllib.request

from gabarito.io import InputError, redact_url

# Cosmos QA's questions follow a few English templates; the type is read off the English text
# here, before translation, so evaluation can report accuracy by type without guessing in Portuguese
QUESTION_TYPES = (
    ("counterfactual", re.compile(r"\b(would|might|could) (have )?(happened|been|be)\b.*\bif\b|\bif\b.*\b(would|had|hadn't)\b", re.I)),
    ("cause", re.compile(r"\b(why|reason|cause[sd]?|because)\b", re.I)),
    ("effect", re.compile(r"\b(happen|happens|happened|next|will|going to)\b", re.I)),
    ("fact", re.compile(r"\b(true|fact|know|describe|best describes|who|what is|what was|which)\b", re.I)),
)


NONE_OF_THE_ABOVE = re.compile(r"^\s*none of the above", re.I)


def question_type(question: str) -> str:
    for name, pattern in QUESTION_TYPES:
        if pattern.search(question):
            return name
    return "other"


def csv_error(exc: csv.Error, name: str, line: int, what: str) -> InputError:
    """The csv module's error as a message: an over-long field says so (it is not a quoting problem)."""
    if "field larger than field limit" in str(exc):
        return InputError(
            f"{name}:{line}: a field is longer than the CSV reader's limit of {csv.field_size_limit():,} "
            "characters. Shorten or drop that row (no Cosmos QA context comes near that length), or, if a quote "
            "opened on that line is never closed, close it.")
    return InputError(
        f"{name}:{line}: {what} ({exc}). Check the quoting on that line: a field with commas, quotes or "
        'newlines must be wrapped in double quotes, with inner quotes doubled ("").')


def download_text(url: str, *, timeout: float) -> str:
    """The UTF-8 text at an http(s) URL (a byte-order mark dropped); a failure is an InputError without
    the URL's credentials. Shared with the mcq stage's url sources."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read().decode("utf-8-sig")
    except OSError as exc:
        raise InputError(f"{redact_url(url)}: download failed ({exc}). Check the URL and your network.") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{redact_url(url)}: not UTF-8 text ({exc.reason} at byte {exc.start}). "
                         "Save the file as UTF-8 and serve it again.") from None
