"""Atomic, deterministic file I/O shared by every stage.

Outputs are written to a temporary sibling and renamed into place, so a crash never leaves a half
file that looks whole. JSON is written with sorted keys and no timestamps, so the same records give
the same bytes and DVC's cache means something.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator


class InputError(Exception):
    """Bad input a person can fix: the message names the file, the row and what to do."""


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)


@contextmanager
def atomic_path(path: str | Path, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
    old = None
    try:
        yield tmp
        if directory:
            os.chmod(tmp, 0o755)  # mkdtemp makes it private; outputs are ordinary folders
            # a folder cannot be renamed over another: the old one goes aside first (and comes back
            # if the new one cannot take its place), and is deleted only once the new one is there
            if path.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
                os.replace(path, old / path.name)
            os.replace(tmp, path)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        else:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
    except BaseException:
        if old is not None:
            if not path.exists() and (old / path.name).exists():
                os.replace(old / path.name, path)  # put the previous output back
            shutil.rmtree(old, ignore_errors=True)
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT) and \
                (exc.filename is None or str(exc.filename).startswith(str(tmp))):
            # a write() that hits a full disk names no file (or a temporary one): name the output
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, ensure_ascii=False, sort_keys=True, indent=2) + "\n")


def write_jsonl(path: str | Path, records: Iterable[dict]) -> int:
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(dumps(rec) + "\n")
            n += 1
    return n


def parse_jsonl(text: str, name: str) -> list[tuple[int, dict]]:
    """(line number, object) for each non-blank line; an error names ``name`` and the line."""
    out = []
    # split on "\n" only: str.splitlines() also breaks at U+2028/U+2029/U+0085, which JSON strings
    # written with ensure_ascii=False may hold
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{name}:{lineno}: not valid JSON ({exc.msg}). Fix or remove that line.") from None
        if not isinstance(rec, dict):
            raise InputError(f"{name}:{lineno}: expected a JSON object, got {type(rec).__name__}.")
        out.append((lineno, rec))
    return out


def read_text(path: str | Path) -> str:
    """A file's text, a byte-order mark dropped. Text not in UTF-8 (Excel's plain "CSV" and many Windows
    editors save Windows-1252) is an InputError naming the line and how to save it as UTF-8."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}: Windows-1252/Latin-1, as "
                         "Excel's plain \"CSV\" saves \"ção\"?). Save it as UTF-8 (Excel: \"CSV UTF-8\"; "
                         "LibreOffice: character set Unicode (UTF-8)).") from None


def read_jsonl_lines(path: str | Path) -> list[tuple[int, dict]]:
    """(line number in the file, object) for each record, for messages that name the line."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found. Run the stage that produces it (`dvc repro`).")
    return parse_jsonl(read_text(path), str(path))


def read_jsonl(path: str | Path) -> list[dict]:
    return [rec for _, rec in read_jsonl_lines(path)]


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found.")
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}).") from None

_KEYLIKE = re.compile(r"\bsk-[\w*.-]{4,}")  # sk-..., sk-proj-..., masked sk-abc***wxyz

# The bare key is replaced wherever it occurs only when it is this long. Real keys are long random
# strings (OpenAI's sk-... 51+ characters, Azure OpenAI's 32, vLLM/LiteLLM tokens usually 32+), and a
# 16-character random string does not occur in prose by chance. Short values are the placeholders
# local servers take ("local", "ollama", "EMPTY", README's OPENAI_API_KEY=local): replacing those
# everywhere would cut "local" out of "localidade" in every stored reply. A short key is still
# scrubbed where it stands as a credential (Authorization, Bearer, api-key values:
# openai_client.scrub), whatever its length.
MIN_BARE_KEY_CHARS = 16


def scrub(text: str, key: str | None) -> str:
    """``text`` without the key (when it is at least MIN_BARE_KEY_CHARS long), and without anything
    that looks like a key or a masked one: for messages that quote an API's error body, which some
    servers echo the key (or its tail) into."""
    if key and len(key) >= MIN_BARE_KEY_CHARS:
        text = text.replace(key, "***")
    return _KEYLIKE.sub("***", text)


def redact_url(url: str) -> str:
    """``url`` without credentials: user:password and the query string (SAS tokens, signed URLs) hidden.

    Local paths come back unchanged.
    """
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if not parts.netloc:
        # a local path, or a server written without a scheme ("user:pw@host:8000/v1"): hide what
        # stands before an "@" in its first part
        head, sep, rest = url.partition("/")
        return f"***@{head.rpartition('@')[2]}{sep}{rest}" if "@" in head else url
    host = parts.netloc.rpartition("@")[2]
    netloc = f"***@{host}" if "@" in parts.netloc else host
    return urlunsplit((parts.scheme, netloc, parts.path, "<hidden>" if parts.query else "", ""))
