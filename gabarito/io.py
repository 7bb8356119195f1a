"""Atomic, deterministic file I/O shared by every stage.

Outputs are written to a temporary sibling and renamed into place, so a crash never leaves a half
file that looks whole. JSON is written with sorted keys and no timestamps, so the same records give
the same bytes and DVC's cache means something.
"""

from __future__ import annotations

import errno
import functools
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


_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True)  # json.dumps would build one per call


def dumps(obj: Any) -> str:
    return _ENCODER.encode(obj)


@contextmanager
def atomic_path(path: str | Path, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` only if the block succeeds (a
    block that fails leaves no trace: nor the folders made for it)."""
    path = Path(path)
    made = [d for d in (path.parent, *path.parent.parents) if not d.exists()]  # the deepest first
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
        for folder in made:
            try:
                folder.rmdir()
            except OSError:  # not empty: something else was put there meanwhile
                break
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


def _not_utf8(path: Path, line: int, byte: int) -> InputError:
    return InputError(f"{path}:{line}: not UTF-8 text (byte 0x{byte:02x}: Windows-1252/Latin-1, as Excel's plain "
                      "\"CSV\" saves \"ção\"?). Save it as UTF-8 (Excel: \"CSV UTF-8\"; LibreOffice: character set "
                      "Unicode (UTF-8)).")


def read_text(path: str | Path) -> str:
    """A file's text, a byte-order mark dropped. Text not in UTF-8 (Excel's plain "CSV" and many Windows
    editors save Windows-1252) is an InputError naming the line and how to save it as UTF-8."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, data[:exc.start].count(b"\n") + 1, data[exc.start]) from None


def read_lines(path: str | Path) -> Iterator[str]:
    """A file's lines as read_text would give them, read one at a time (a big file is never whole in
    memory): split at "\n" only, each with its "\n" (a "\r" stays in its line), a byte-order mark
    dropped; the first line not in UTF-8 raises read_text's InputError when it is reached."""
    path = Path(path)
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _not_utf8(path, lineno, raw[exc.start]) from None
            yield line


def split_lines(text: str) -> Iterator[str]:
    """``text``'s lines as read_lines gives a file's: split at "\n" only, each with its "\n"."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end + 1
        yield text[start:end]
        start = end


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
# local servers take ("local", "ollama", "EMPTY", the guides' OPENAI_API_KEY=local): replacing those
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


# --- quoting input in messages ------------------------------------------------------------------------
# A message quotes at most this much of a user's input: enough to recognise the column or value, too
# little to carry a file along (a CSV linked to /proc/self/environ had its whole header, the process's
# environment, quoted as one "unknown column")
EXCERPT_CHARS = 60
# "Authorization: Bearer X", "authorization": "X", "api-key: X" (Azure OpenAI's header), "x-api-key", as a
# header dump or a JSON string (escaped quotes included) shows them: the value is replaced, whatever its
# length, the name kept so a reader sees what was there. openai_client.scrub uses them on what an API echoes.
AUTH_VALUE = re.compile(r"""(?i)((?:proxy-)?authorization\\?["']?\s*[:=]\s*\\?["']?\s*|\b(?:x-)?api[-_]key\\?["']?\s*[:=]\s*\\?["']?\s*)(?:bearer\s+|basic\s+)?[^\s"'\\,;}]+""")
# a bare "Bearer X" only when X looks like a credential (8+ token characters, a digit among them), so
# that prose such as "the bearer of bad news" stays as it is
BEARER = re.compile(r"(?i)\b(bearer\s+)(?=[\w.~+/=-]*\d)[\w.~+/=-]{8,}")
# NAME=value where NAME says it holds a secret (OPENAI_API_KEY, HF_TOKEN, AWS_SECRET_ACCESS_KEY, DB_PASSWORD),
# as an environment dump or a .env file writes it: the value goes, whatever its length
_SECRET_NAME = r"[A-Za-z0-9_]*(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)[A-Za-z0-9_]*"
_SECRET_ASSIGN = re.compile(rf"(?i)\b({_SECRET_NAME}\s*=\s*)[^\x00\s,;\"']+")
_SECRET_WORD = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL", re.I)


@functools.lru_cache(maxsize=1)
def _secret_values(fingerprint: tuple) -> tuple[str, ...]:
    """The values of secret-named environment variables long enough to be scrubbed bare (``scrub``).
    Cached per ``fingerprint`` (how many variables there are, and $OPENAI_API_KEY): reading the
    environment costs ~80 us, paid once a message otherwise (a million bad rows: 80 s)."""
    return tuple(v for k, v in os.environ.items() if len(v) >= MIN_BARE_KEY_CHARS and _SECRET_WORD.search(k))


def scrub_secrets(text: str) -> str:
    """``text`` without secrets, for a message that quotes a user's input: the values of this process's
    secret-named environment variables ($OPENAI_API_KEY, $HF_TOKEN...: when MIN_BARE_KEY_CHARS long, as
    ``scrub``), anything that looks like an OpenAI key, Authorization/Bearer/api-key values, and the
    value of every NAME=value whose NAME says secret."""
    if len(text) >= MIN_BARE_KEY_CHARS:  # a shorter text (a bad answer "Z") holds no value scrubbed bare
        for value in _secret_values((len(os.environ), os.environ.get("OPENAI_API_KEY"))):
            text = scrub(text, value)
    text = scrub(text, None)
    text = AUTH_VALUE.sub(r"\1***", text)
    text = _SECRET_ASSIGN.sub(r"\1***", text)
    return BEARER.sub(r"\1***", text)


def excerpt(text: Any, limit: int = EXCERPT_CHARS, *, quoted: bool = True) -> str:
    """``text`` (a value read from a user's file) quoted for a message, as ``repr`` quotes it: secrets
    scrubbed (``scrub_secrets``), characters that do not print (NUL, newlines, bidi controls) written
    as escapes (\\x00, \\n, \\u202e), and cut after ``limit`` characters with an ellipsis; without the
    quotes where ``quoted`` is false."""
    text = str(text)
    # only the head is scrubbed and shown; it is longer than any key, so a key that starts in the part
    # shown is whole in it, and scrubbed
    head = scrub_secrets(text[:limit + 1024])
    pieces, used, cut = [], 0, len(text) > limit + 1024
    for ch in head:
        piece = ch if ch.isprintable() else ascii(ch)[1:-1]
        if used + len(piece) > limit:
            cut = True
            break
        pieces.append(piece)
        used += len(piece)
    shown = "".join(pieces) + ("…" if cut else "")
    if not quoted:
        return shown
    quote = '"' if "'" in shown and '"' not in shown else "'"
    return f"{quote}{shown}{quote}"


# --- inputs inside the project ------------------------------------------------------------------------
def _dvc_cache_dirs(root: Path) -> list[Path]:
    """The project's DVC cache folders: .dvc/cache, and a ``[cache] dir`` set in .dvc/config(.local)
    (a cache shared between clones, into which ``cache.type: symlink`` links the workspace's files)."""
    dirs = [root / ".dvc" / "cache"]
    for name in ("config", "config.local"):
        try:
            text = (root / ".dvc" / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        section = ""
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("["):
                section = line.strip("[]'\" ").lower()
            elif section == "cache" and re.match(r"dir\s*=", line):
                dirs.append((root / ".dvc" / line.split("=", 1)[1].strip()).resolve())
    return dirs


def outside_project(path: str | Path, root: str | Path | None = None) -> Path | None:
    """Where ``path`` leads (links followed) when that is outside the project, ``root`` (the working
    directory a stage runs in, the repository's root) and its DVC cache; None when it is inside.

    DVC tracks only what is in the project: a file read from elsewhere changes without rerunning
    anything, and a clone elsewhere cannot rebuild from it."""
    root = Path(root if root is not None else Path.cwd()).resolve()
    target = Path(path).resolve()
    if target.is_relative_to(root) or any(target.is_relative_to(d) for d in _dvc_cache_dirs(root)):
        return None
    return target


def link_out_error(path: str | Path, target: Path, copy: str = "the file itself") -> InputError:
    """The message for an input that leads out of the project (``outside_project``), with the ways in."""
    return InputError(f"{path}: a link to {target}, outside the project. DVC does not track it, so a change there "
                      f"reruns nothing and a clone elsewhere cannot rebuild from it. Copy {copy} in its place, or "
                      f"bring it in with `dvc import-url {target} {path}`.")


def refuse_outside(path: str | Path, root: str | Path | None = None) -> None:
    """InputError when ``path``, a stage's input in the project (under data/raw/), is a link that leads out of
    it. A path outside the project given by hand (a test's temp folder) is the caller's business."""
    if not Path(os.path.abspath(path)).is_relative_to(Path(root if root is not None else Path.cwd()).resolve()):
        return
    target = outside_project(path, root)
    if target is not None:
        raise link_out_error(path, target)
