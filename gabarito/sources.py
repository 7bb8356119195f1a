"""What the ingest and mcq stages share to read a source: a question's type, CSV error messages and bounded
URL downloads.
"""

from __future__ import annotations

import csv
import http.client
import re
import threading
import time
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


# mcq.max_download_mb and ingest.max_download_mb's default (gabarito.params): download_text's, for a caller
# that passes none
DEFAULT_MAX_DOWNLOAD_MB = 200.0
_CHUNK = 1 << 16


def download_text(url: str, *, timeout: float, max_mb: float = DEFAULT_MAX_DOWNLOAD_MB,
                  section: str | None = None) -> str:
    """The UTF-8 text at an http(s) URL (a byte-order mark dropped), read within ``timeout`` seconds in all
    and at most ``max_mb`` MB (10^6 bytes); a failure is an InputError without the URL's credentials,
    naming the params knob (``section``.download_timeout_s / .max_download_mb) to change. Shared with the
    mcq stage's url sources.

    The socket's own timeout bounds only a gap between two reads: a server that sends a byte a second
    never hits it. So the download runs in a thread that this one waits for until the deadline; the
    thread checks the deadline and the size after every chunk, and stops by itself once it is past
    (a server that trickles its headers keeps it until the socket gives up or the process ends: it
    is a daemon, and holds no more than the headers)."""
    def knob(name: str) -> str:  # the params key to change
        return f"{section}.{name}" if section else f"{name} (of the params.yaml section that lists this URL)"

    limit = int(max_mb * 1_000_000)
    where = redact_url(url)
    deadline = time.monotonic() + timeout
    received = [0]
    outcome: dict = {}

    def fetch() -> None:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                size = resp.headers.get("Content-Length")
                if size and size.isdigit() and int(size) > limit:
                    raise _TooLarge(int(size))
                chunks = []
                while time.monotonic() < deadline:
                    chunk = resp.read1(_CHUNK)  # what has arrived, not a full chunk: the deadline is checked often
                    if not chunk:
                        outcome["data"] = b"".join(chunks)
                        return
                    received[0] += len(chunk)
                    if received[0] > limit:
                        raise _TooLarge(None)
                    chunks.append(chunk)
        except BaseException as exc:  # handed to the caller's thread, which raises it
            outcome["error"] = exc

    worker = threading.Thread(target=fetch, name=f"download {where}", daemon=True)
    worker.start()
    worker.join(timeout)
    error = outcome.get("error")
    if "data" not in outcome and error is None:
        raise InputError(
            f"{where}: the download did not finish within {timeout:g} s ({received[0]:,} bytes received), the "
            f"limit {knob('download_timeout_s')} sets for the whole download. The server is too slow or never "
            "ends the file: check the URL, or raise that limit.")
    if isinstance(error, _TooLarge):
        got = f"the server announces {error.size:,} bytes" if error.size else f"stopped after {received[0]:,} bytes"
        raise InputError(
            f"{where}: larger than {max_mb:g} MB ({got}), the limit {knob('max_download_mb')} sets. No exam or "
            "question file comes near that: check that the URL is the file you mean, or raise that limit.")
    if isinstance(error, (OSError, http.client.HTTPException)):  # HTTPException: a connection cut mid-file
        raise InputError(f"{where}: download failed ({error}). Check the URL and your network.") from None
    if error is not None:
        raise error
    try:
        return outcome["data"].decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start}). "
                         "Save the file as UTF-8 and serve it again.") from None


class _TooLarge(Exception):
    def __init__(self, size: int | None):
        super().__init__(size)
        self.size = size  # the announced Content-Length, or None when counted while reading
