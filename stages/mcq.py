"""Read the user's own multiple-choice items (JSONL, CSV, a URL or a hub dataset) into the shared record.

    gabarito mcq --raw-dir data/raw/mcq --out-pt data/interim/mcq_pt.jsonl \\
        --out-en data/interim/mcq_en.jsonl --metrics metrics/mcq.json

``mcq.sources`` in params.yaml is a mixture (as alignment-handbook's ``dataset_mixer``): each entry is a
file (``path``), an http(s) ``url`` or a ``hub`` dataset at a pinned ``revision``, and every item keeps
its source's name. One item per JSONL line / CSV row / dataset row:

    {"id": "q1", "question": "...", "options": ["...", "..."], "answer": "B",
     "context": "...", "split": "train", "language": "pt", "subject": "história", "source": "enem"}

``id``, ``question``, ``options`` (2 to 10 texts; in CSV the columns ``option_a``, ``option_b``, ...
filled left to right; the CSV separated by commas, semicolons or tabs) and ``answer`` (a letter A..,
"B)" or "(B)" as keys write it, or a 0-based index) are required; the rest are optional. Files are
UTF-8, read row by row (a big file is never whole in memory), and in the project (a path, or a link, that
leads out of the repository is refused: DVC could not track it). Every bad row is reported with its
file:line (all of them together, the stage exits 1 and writes nothing); a row repeated with the same
content (in any source) is kept once and counted. A message quotes at most a short, scrubbed excerpt of
a file (gabarito.io.excerpt). A row whose answer is an annulled mark (``mcq.annulled_marks``) or whose
optional ``needs_figure`` is true (unless ``mcq.include_figure_questions``) is skipped, not a problem:
counted per source in the metrics and logged in one line per source.
Items without a split get one from a seeded hash of their id (``mcq.validation_share``); a source
entry with ``split`` gives all its items that split. ``test`` items are written with that split: clean
keeps them apart (data/interim/clean/test.jsonl), so they are scored by evaluate and never trained on.
Portuguese items go to ``--out-pt`` (straight to clean), English ones to ``--out-en`` (to translate).
"""

from __future__ import annotations

import csv
import difflib
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Union

import click

from gabarito.clikit import log, params_option, user_errors
from gabarito.io import (
    InputError,
    atomic_path,
    dumps,
    excerpt,
    outside_project,
    read_lines,
    redact_url,
    split_lines,
    write_json,
)
from gabarito.items import MIN_OPTIONS, hash_split
from gabarito.params import LETTERS, MCQParams, MCQSource, load_section
from gabarito.sources import NONE_OF_THE_ABOVE, csv_error, download_text, question_type

# the file format's answer letters: A is the first option, J the tenth (format.letters is the prompt's
# alphabet, a param; these name the options in the user's file, whatever the prompt shows)
FILE_LETTERS = LETTERS
MAX_OPTIONS = len(FILE_LETTERS)
REQUIRED = ("id", "question", "options", "answer")
OPTIONAL = ("context", "split", "language", "subject", "source", "needs_figure")
KNOWN = frozenset(REQUIRED + OPTIONAL)
SPLITS = ("train", "validation", "test")
LANGUAGES = ("pt", "en")
CSV_OPTION = re.compile(rf"^option_([{FILE_LETTERS[0].lower()}-{FILE_LETTERS[-1].lower()}])$")  # a-j
CSV_COLUMNS = ("id", "question", "answer", *OPTIONAL, *(f"option_{c}" for c in FILE_LETTERS.lower()))
CSV_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}
LETTER_ANSWER = re.compile(r"^\s*\(?([A-Za-z])[).]?\s*$")
# a needs_figure value, as a JSON bool or number or a CSV cell writes it (case ignored)
FLAG_VALUES = {"true": True, "1": True, "sim": True, "yes": True,
               "false": False, "0": False, "não": False, "nao": False, "no": False}
SKIP_REASONS = ("annulled", "needs_figure")
SHOWN_IDS = 10  # skipped ids listed per source and reason in the metrics and the log; the rest are counted
SHOWN_ERRORS = 20  # problems listed in the message; the rest are counted (a broken export has thousands)
# an English option saying none is right (as ingest reads Cosmos QA); the Portuguese ones exam writers use
NONE_CORRECT = {"en": NONE_OF_THE_ABOVE,
                "pt": re.compile(r"^\s*nenhuma das (alternativas|anteriores|op[çc][õo]es)", re.I)}


# what a source's reader yields, in the order of the file: a row with where it came from
# (``(file:line, row)``), or a problem found reading (a str, "file:line: ...")
Read = Union[tuple[str, dict], str]


@dataclass
class Rows:
    """One source, read lazily: ``read()`` gives its rows and reading problems in file order, again
    each time it is called (a file is read one line at a time, so a big one is never whole in memory;
    it is read a second time only to name the first copy of an id repeated with other content)."""

    entry: MCQSource
    read: Callable[[], Iterable[Read]]


def rows_of(entry: MCQSource, items: Iterable[Read] | str, name: str | None = None) -> Rows:
    """A source whose rows are already at hand: a list of reads, or a file's text (read as ``name``)."""
    if isinstance(items, str):
        text = items
        return Rows(entry, lambda: file_rows(split_lines(text), name or entry.path or ""))
    items = list(items)
    return Rows(entry, lambda: iter(items))


# --- reading: JSONL, CSV, hub rows ------------------------------------------------------------------
def jsonl_rows(lines: Iterable[str], name: str) -> Iterator[Read]:
    """(where, object) per non-blank line, and one problem per line that is not a JSON object.
    ``lines`` split at "\\n" only, as gabarito.io.read_lines gives them."""
    import json

    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield f"{name}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})."
            continue
        if not isinstance(obj, dict):
            yield f"{name}:{lineno}: expected a JSON object {{\"id\": ..., ...}}, got {type(obj).__name__}."
            continue
        yield f"{name}:{lineno}", obj


def _csv_options(header: list[str]) -> tuple[list[int], list[str]]:
    """The positions of option_a, option_b, ... in the header, and problems with them."""
    letters = {CSV_OPTION.match(h).group(1): i for i, h in enumerate(header) if CSV_OPTION.match(h)}
    order = [c for c in FILE_LETTERS.lower() if c in letters]
    expected = list(FILE_LETTERS.lower()[:len(order)])
    if order != expected:
        return [], [f"option columns must run option_a, option_b, ... without a gap; found "
                    f"{', '.join('option_' + c for c in order)}"]
    return [letters[c] for c in order], []


def csv_delimiter(header: str) -> str:
    """The delimiter the header line is written with: ``,``, or the ``;`` Excel writes where the decimal
    mark is a comma (pt-BR), or a tab: whichever splits the header into the most known columns
    (a tie is ``,``)."""
    header = header.split("\n", 1)[0]
    return max(CSV_DELIMITERS, key=lambda d: sum(h.strip() in CSV_COLUMNS for h in header.split(d)))


_CSV_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def _csv_lines(lines: Iterable[str]) -> Iterator[str]:
    """Lines split at "\\n" as the csv module's newline="" reading splits them: at "\\r" too (old Mac files)."""
    for line in lines:
        if "\r" not in line or line.find("\r") == len(line) - 2 and line.endswith("\r\n"):
            yield line
        else:
            yield from _CSV_LINE.findall(line)


def csv_rows(lines: Iterable[str], name: str) -> Iterator[Read]:
    """(where, row) per CSV row, options gathered from option_a.. (trailing empty cells are no option)."""
    lines = _csv_lines(lines)
    first = next(lines, None)
    if first is None:
        yield f"{name}: empty file; expected a header line (id,question,option_a,option_b,...,answer)."
        return
    delimiter = csv_delimiter(first)
    reader = csv.reader(itertools.chain([first], lines), strict=True, delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        yield f"{name}: empty file; expected a header line (id,question,option_a,option_b,...,answer)."
        return
    except csv.Error as exc:
        yield f"{name}:1: malformed header ({exc})."
        return
    problems = []
    for col in header:
        if col and col not in CSV_COLUMNS:  # a column without a name: the empty ones Excel keeps (checked per row)
            close = difflib.get_close_matches(col, CSV_COLUMNS, n=1)
            problems.append(f"unknown column {excerpt(col)}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    missing = [c for c in ("id", "question", "answer", "option_a", "option_b") if c not in header]
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    positions, bad = _csv_options(header)
    problems += bad
    if problems:
        yield from (f"{name}:1: {p}." for p in problems)
        return
    # worked out once, not per row: a million rows went through these
    no_name = [i for i, h in enumerate(header) if not h]
    option_columns = {h for h in header if CSV_OPTION.match(h)}
    while True:
        lineno = reader.line_num + 1  # a quoted field may span lines: the row starts after the last one read
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            # the reader cannot find the next row reliably after this: the rest of the file is not read
            yield f"{csv_error(exc, name, lineno, 'malformed CSV')} The rows after it were not read."
            break
        if not "".join(values).strip():  # a blank row (all cells empty or spaces)
            continue
        if len(values) != len(header):
            yield (f"{name}:{lineno}: expected {len(header)} fields, got {len(values)} "
                   f"(an unquoted {CSV_DELIMITERS[delimiter]}?).")
            continue
        unnamed = [i + 1 for i in no_name if values[i].strip()]
        if unnamed:
            yield (f"{name}:{lineno}: a value in column(s) {', '.join(map(str, unnamed))}, which have no name in "
                   "the header: name the column, or empty it.")
            continue
        cells = {h: v for h, v in zip(header, values) if h}
        options = [values[i] for i in positions]
        while options and not options[-1].strip():
            options.pop()
        # an empty cell is an absent field, but in a required column: "question is empty", not "missing"
        row: dict[str, Any] = {k: v for k, v in cells.items()
                               if k not in option_columns and (v.strip() or k in REQUIRED)}
        row["options"] = options
        yield f"{name}:{lineno}", row


def file_rows(lines: Iterable[str], name: str) -> Iterator[Read]:
    """A file's rows and reading problems, in file order; a line not in UTF-8 (read_lines' InputError)
    is the last problem, and the rest of the file is not read. ``lines`` may be the file's text."""
    if isinstance(lines, str):
        lines = split_lines(lines)
    if name.endswith((".jsonl", ".json")):
        rows = jsonl_rows(lines, name)
    elif name.endswith(".csv"):
        rows = csv_rows(lines, name)
    else:
        yield f"{name}: expected a .jsonl or .csv file."
        return
    try:
        yield from rows
    except InputError as exc:
        yield str(exc)


def dataset_rows(ds, name: str, split: str) -> list[tuple[str, dict]]:
    """Rows of a ``datasets`` split; a row without a split of its own takes the split's name when that is
    train, validation or test (else the seeded hash gives one). Null columns are absent fields."""
    rows = []
    for i, row in enumerate(ds):
        row = {k: v for k, v in row.items() if v is not None}
        if "split" not in row and split in SPLITS:
            row["split"] = split
        rows.append((f"{name}[{split}][{i}]", row))
    return rows


# --- checking: one row into one record ----------------------------------------------------------------
def parse_answer(value: Any, n: int) -> tuple[int | None, str | None]:
    """(0-based label, None), or (None, the problem): a letter A.. or an index 0..n-1."""
    letters = FILE_LETTERS[:n]
    if isinstance(value, bool):
        value = str(value)  # true/false is no answer: reported below, not read as 1/0
    if isinstance(value, int):
        index = value
    elif isinstance(value, str) and value.strip().isdigit():
        index = int(value.strip())
    elif isinstance(value, str) and LETTER_ANSWER.match(value):
        letter = LETTER_ANSWER.match(value).group(1).upper()  # "C", "c", "C)", "(C)", "C." as keys write it
        if letter in letters:
            return letters.index(letter), None
        return None, f"answer {excerpt(value)} is outside the {n} options (letters {letters[0]}-{letters[-1]})"
    else:
        return None, f"answer {_quote(value)} is neither a letter ({letters[0]}-{letters[-1]}) nor a 0-based index"
    if 0 <= index < n:
        return index, None
    return None, f"answer {_quote(value)} is outside the {n} options (indices 0-{n - 1}, counted from 0)"


def _quote(value: Any) -> str:
    """A value of the user's row for a message: a text as a short, scrubbed excerpt; a number as it is."""
    return excerpt(value) if isinstance(value, str) else excerpt(repr(value), quoted=False)


def _text(row: dict, key: str, problems: list[str], *, required: bool) -> str:
    value = row.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            problems.append(f"missing field '{key}'" if value is None else f"{key} is empty")
        return ""
    if isinstance(value, int) and not isinstance(value, bool) and key == "id":
        return str(value)  # hub datasets often number their rows
    if not isinstance(value, str):
        problems.append(f"'{key}' must be text, got {type(value).__name__}")
        return ""
    return value.strip() if key == "id" else value


def check_row(row: dict, where: str, *, source: str, language: str) -> tuple[dict | None, list[str]]:
    """One raw row as a record (split may be None: assigned later), or None and every problem it has,
    each as ``where: problem. what to do``."""
    problems: list[str] = []
    unknown = sorted(row.keys() - KNOWN)
    for key in unknown:
        close = difflib.get_close_matches(key, REQUIRED + OPTIONAL, n=1)
        problems.append(f"unknown field {excerpt(key)}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    item_id = _text(row, "id", problems, required=True)
    question = _text(row, "question", problems, required=True)
    context = _text(row, "context", problems, required=False)
    subject = _text(row, "subject", problems, required=False)
    source = _text(row, "source", problems, required=False) or source
    options = row.get("options")
    label = None
    if options is None or options == []:
        problems.append("missing field 'options'")
    elif not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        problems.append("'options' must be a list of texts")
    elif not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
        problems.append(f"{len(options)} option(s); an item needs {MIN_OPTIONS} to {MAX_OPTIONS}")
    elif any(not o.strip() for o in options):
        empty = [FILE_LETTERS[i] for i, o in enumerate(options) if not o.strip()]
        problems.append(f"option(s) {', '.join(empty)} empty (in CSV, fill option_a, option_b, ... left to right)")
    else:
        folded = [" ".join(o.casefold().split()) for o in options]
        same = [FILE_LETTERS[i] for i, o in enumerate(folded) if folded.index(o) != i]
        if same:
            problems.append(f"option(s) {', '.join(same)} repeat an earlier option")
        if "answer" not in row or row["answer"] is None:
            problems.append("missing field 'answer'")
        elif isinstance(row["answer"], str) and not row["answer"].strip():
            problems.append("answer is empty")
        else:
            label, bad = parse_answer(row["answer"], len(options))
            if bad:
                problems.append(bad)
    split = row.get("split") or None  # null or "" (an empty CSV cell): no split of its own
    if split is not None and split not in SPLITS:
        problems.append(f"split {_quote(split)} is unknown (use {', '.join(SPLITS)}, or leave it out for a seeded "
                        "split)")
    if figure_flag(row.get("needs_figure")) is None:
        problems.append(f"needs_figure {_quote(row['needs_figure'])} is neither true nor false (write true/false, "
                        "1/0, sim/não or yes/no, or leave it out)")
    lang = row.get("language") or language
    if lang not in LANGUAGES:
        problems.append(f"language {_quote(lang)} is unknown (use {' or '.join(LANGUAGES)})")
    if problems:
        return None, [f"{where}: {p}." for p in problems]
    # an exam's question is typed by its subject (an ENEM area), as the exams stage types them; otherwise
    # ingest's types are read off Cosmos QA's English templates, so only English items get one; "other" is
    # what a question no template reads is called everywhere
    qtype = subject or (question_type(question) if lang == "en" else "other")
    rec = {"id": item_id, "split": split, "context": context, "question": question, "answers": list(options),
           "label": label, "question_type": qtype, "none_correct": bool(NONE_CORRECT[lang].match(options[label])),
           "source": source, "language": lang}
    if subject:
        rec["subject"] = subject
    return rec, []


def figure_flag(value: Any) -> bool | None:
    """A needs_figure value as a bool (absent or empty: False), or None when it is neither true nor false."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return False if not value.strip() else FLAG_VALUES.get(value.strip().casefold())
    return None


def skip_reason(row: dict, p: MCQParams) -> str | None:
    """Why a row is skipped (counted, no problem), or None: its answer is an annulled mark
    (``mcq.annulled_marks``: the exam annulled the question), or it needs a figure its text does not carry
    (``needs_figure`` true) and ``mcq.include_figure_questions`` is false."""
    answer = row.get("answer")
    if isinstance(answer, str) and answer.strip().casefold() in {m.casefold() for m in p.annulled_marks}:
        return "annulled"
    if not p.include_figure_questions and figure_flag(row.get("needs_figure")) is True:
        return "needs_figure"
    return None


def _skip(stats: dict, reason: str, row: dict, where: str) -> None:
    """Count a skipped row in its source's stats, keeping the first SHOWN_IDS ids (or places, without one)."""
    stats["skipped"][reason] += 1
    ids = stats["skipped_ids"][reason]
    if len(ids) < SHOWN_IDS:
        item_id = row.get("id")
        ids.append(str(item_id).strip() if isinstance(item_id, (str, int)) and str(item_id).strip() else where)


def describe_skipped(name: str, stats: dict) -> str | None:
    """One source's log line of skipped rows ('enem: skipped annulled 1 (q12); needs figure 2 (q3, q8)'),
    or None when none was skipped."""
    parts = []
    for reason, n in stats["skipped"].items():
        if n:
            ids = stats["skipped_ids"][reason]
            more = f", ... {n - len(ids)} more" if n > len(ids) else ""
            parts.append(f"{reason.replace('_', ' ')} {n} ({', '.join(ids)}{more})")
    return f"{name}: skipped {'; '.join(parts)}" if parts else None


# --- the mixture ----------------------------------------------------------------------------------------
def _count(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


class Problems(list):
    """The first SHOWN_ERRORS problems, in order; ``total`` counts them all (a broken export can have
    a million bad rows: their messages are counted, not kept)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def add(self, problem: str | None) -> None:
        self.total += 1
        if len(self) < SHOWN_ERRORS:
            self.append(problem)


_DIGEST = (1 << 64) - 1
_POSITION = (1 << 40) - 1


def _digest(rec: dict) -> int:
    """An item's content but its source, as 64 bits: two different contents share one with a chance of
    one in 2^64 per pair of equal ids, which would keep the first of the two and count a duplicate."""
    fields = dict(rec, answers=tuple(rec["answers"]))  # the one list among the fields
    del fields["source"]
    return hash(frozenset(fields.items())) & _DIGEST


def build(sources: list[Rows], p: MCQParams, emit: Callable[[dict], Any] | None = None
          ) -> tuple[list[dict], dict, Problems]:
    """(records, metrics, problems) of every source in order: checked, de-duplicated by id, split.
    With ``emit``, each record goes to it as it is made (the command writes it out) and none is kept.

    An id seen again with the same content (same fields, wherever it came from) is counted as a
    duplicate and kept once; with other content it is a problem naming both places.
    """
    records: list[dict] = []
    emit = emit or records.append
    problems = Problems()
    # each id seen, with its content's digest, source and position packed in one int: ~140 bytes an item
    # in all (1,000,000 CSV rows kept as records and rows took 1.33 GB)
    seen: dict[str, int] = {}
    conflicts: list[tuple[int, str, dict, int]] = []  # shown problems whose first copy is named at the end
    per_source: dict[str, dict] = {}
    for index, src in enumerate(sources):
        name = src.entry.name()
        language = src.entry.language or p.default_language
        stats = {"read": 0, "kept": 0, "duplicates": 0, "problems": 0,
                 "by_split": {}, "by_options": {}, "by_language": {},
                 "skipped": dict.fromkeys(SKIP_REASONS, 0), "skipped_ids": {r: [] for r in SKIP_REASONS}}
        for position, item in enumerate(src.read()):
            stats["read"] += 1
            if isinstance(item, str):
                problems.add(item)
                stats["problems"] += 1
                continue
            where, row = item
            reason = skip_reason(row, p)
            if reason:
                _skip(stats, reason, row, where)
                continue
            rec, errs = check_row(row, where, source=name, language=language)
            if errs:
                for err in errs:
                    problems.add(err)
                stats["problems"] += 1
                continue
            digest = _digest(rec)
            first = seen.get(rec["id"])
            if first is not None:
                # the same item copied into two files is one item (kept with its first source's name)
                if first & _DIGEST == digest:
                    stats["duplicates"] += 1
                else:
                    stats["problems"] += 1
                    if len(problems) < SHOWN_ERRORS:
                        conflicts.append((len(problems), where, rec, first))
                    problems.add(None)  # its message names the first copy, read again below
                continue
            seen[rec["id"]] = digest | (position << 64) | (index << 104)
            if src.entry.split:  # a source declared as one split (a held-out exam: split test)
                rec["split"] = src.entry.split
            if rec["split"] is None:
                rec["split"] = hash_split(rec["id"], seed=p.seed, validation_share=p.validation_share)
            emit(rec)
            stats["kept"] += 1
            _count(stats["by_split"], rec["split"])
            _count(stats["by_options"], str(len(rec["answers"])))
            _count(stats["by_language"], rec["language"])
        if not stats["read"]:
            problems.add(f"{name}: no items. A configured source must hold at least one: add items, or remove "
                         "the entry from mcq.sources.")
        per_source[name] = {k: dict(sorted(v.items())) if isinstance(v, dict) else v for k, v in stats.items()}
    for at, where, rec, first in conflicts:
        problems[at] = _conflict(where, rec, sources[first >> 104], (first >> 64) & _POSITION, p)
    return records, summarize(per_source), problems


def _conflict(where: str, rec: dict, src: Rows, position: int, p: MCQParams) -> str:
    """The problem of an id met again with other content, naming where it was first and what differs."""
    item = next(itertools.islice(src.read(), position, None), None)
    first_where, differ = "an earlier row", ""
    if isinstance(item, tuple):  # read again as it was read first (unless the file changed meanwhile)
        first_where = item[0]
        first, _ = check_row(item[1], first_where, source=src.entry.name(),
                             language=src.entry.language or p.default_language)
        if first is not None:
            fields = sorted(k for k in set(first) | set(rec) if k != "source" and first.get(k) != rec.get(k))
            differ = f" ({', '.join(fields)})"
    return (f"{where}: id {excerpt(rec['id'])} is also at {first_where} with different content{differ}. Ids must "
            "be unique: give one of them another id, or remove the copy.")


def summarize(per_source: dict[str, dict]) -> dict:
    totals: dict[str, dict[str, int]] = {"by_split": {}, "by_options": {}, "by_language": {}}
    for stats in per_source.values():
        for key, counts in totals.items():
            for value, n in stats[key].items():
                counts[value] = counts.get(value, 0) + n
    items = sum(s["kept"] for s in per_source.values())
    notes = [f"no {s} items from these sources" for s in ("train", "validation")
             if items and s not in totals["by_split"]]
    if not per_source:
        notes.append("no sources configured (mcq.sources is empty): both outputs are empty")
    return {"items": items, **{k: dict(sorted(v.items())) for k, v in totals.items()},
            "duplicates": sum(s["duplicates"] for s in per_source.values()),
            "skipped": {r: sum(s["skipped"][r] for s in per_source.values()) for r in SKIP_REASONS},
            "sources": per_source, "notes": notes}


def problem_message(problems: list[str]) -> str:
    total = getattr(problems, "total", len(problems))
    shown = "\n".join(f"  {p}" for p in problems[:SHOWN_ERRORS])
    more = f"\n  ... and {total - SHOWN_ERRORS} more" if total > SHOWN_ERRORS else ""
    return (f"mcq: {total} problem(s) in the multiple-choice sources; nothing was written. Fix them "
            f"and rerun (docs/own-exams.md has the format):\n{shown}{more}")


def by_language(records: list[dict]) -> tuple[list[dict], list[dict]]:
    """(Portuguese, English) records, each in input order."""
    return [r for r in records if r["language"] == "pt"], [r for r in records if r["language"] == "en"]


# --- loading the sources (files, URLs, the hub) ------------------------------------------------------
def read_entry(entry: MCQSource, *, timeout: float, max_mb: float | None = None, raw_dir: str | None = None,
               root: str | Path | None = None) -> Rows:
    """One source, read when its rows are asked for; a missing file, a file outside the project ``root``
    (the working directory: the repository) or a failed download is a problem of that source, not a crash."""
    try:
        if entry.path:
            path = Path(entry.path)
            if not path.is_file():
                return rows_of(entry, [f"{path}: file not found (mcq.sources). Put the file there or fix the path."])
            target = outside_project(path, root)
            if target is not None:
                return rows_of(entry, [outside_message(path, target, raw_dir or "data/raw/mcq")])
            return Rows(entry, lambda: file_rows(read_lines(path), str(path)))
        if entry.url:
            limit = {} if max_mb is None else {"max_mb": max_mb, "section": "mcq"}
            text = download_text(entry.url, timeout=timeout, **limit)
            return rows_of(entry, text, redact_url(entry.url.split("?")[0]))
        return rows_of(entry, hub_rows(entry))
    except InputError as exc:
        return rows_of(entry, [str(exc)])


def outside_message(path: Path, target: Path, raw_dir: str) -> str:
    """A path source that leads out of the project, refused: DVC cannot track what is not in the project."""
    leads = "" if Path(path).absolute() == target else f" (it leads to {target})"
    return (f"{path}: outside the project{leads}. DVC does not track it, so a change there reruns nothing and a "
            f"clone elsewhere cannot rebuild from it. Copy it under {raw_dir}/ and name the copy in mcq.sources, "
            f"or bring it in with `dvc import-url {target} {raw_dir}/{target.name}`.")


def hub_rows(entry: MCQSource) -> list[tuple[str, dict]]:
    import datasets  # heavy import, only for this source

    rows = []
    for split in entry.splits or ["train"]:
        try:
            ds = datasets.load_dataset(entry.hub, split=split, revision=entry.revision)
        except Exception as exc:  # the hub client raises many types; all mean "could not load"
            raise InputError(f"hub dataset {entry.hub}@{entry.revision} split {split}: could not load ({exc}). "
                             "Check hub, revision and splits in mcq.sources, your network and HF_TOKEN.") from None
        rows += dataset_rows(ds, entry.hub, split)
    return rows


def outside(entry: MCQSource, raw_dir: str | None) -> str | None:
    """A local source (a file, or a dataset folder given as ``hub``) that is not under the folder dvc.yaml
    lists, named: dvc would not rerun when it changes. A hub id's revision pins it; a folder has none."""
    local = entry.path or (entry.hub if entry.hub and Path(entry.hub).exists() else None)
    if not local or raw_dir is None:
        return None
    return None if Path(local).resolve().is_relative_to(Path(raw_dir).resolve()) else local


# --- command: gabarito mcq -------------------------------------------------------------------------------
@click.command("mcq")
@click.option("--raw-dir", type=click.Path(file_okay=False),
              help="the folder dvc.yaml lists as this stage's dep: a path source outside it is warned about "
                   "(one outside the project is refused)")
@click.option("--out-pt", type=click.Path(dir_okay=False), required=True, help="Portuguese items (to clean)")
@click.option("--out-en", type=click.Path(dir_okay=False), required=True, help="English items (to translate)")
@click.option("--metrics", type=click.Path(dir_okay=False), required=True)
@params_option
@user_errors
def command(raw_dir, out_pt, out_en, metrics, params_path):
    """Read your own multiple-choice items (files, URLs, hub datasets) listed in mcq.sources.

    Portuguese items go to --out-pt (straight to clean), English ones to --out-en (to translate).
    Every bad row is reported with its file:line; nothing is written until all are fixed.

    \b
    Examples:
      dvc repro mcq
      gabarito mcq --out-pt /tmp/pt.jsonl --out-en /tmp/en.jsonl --metrics /tmp/mcq.json
    """
    p = load_section("mcq", params_path)
    sources = [read_entry(entry, timeout=p.download_timeout_s, max_mb=p.max_download_mb, raw_dir=raw_dir)
               for entry in p.sources]
    for entry in p.sources:
        local = outside(entry, raw_dir)
        if local and not (entry.path and outside_project(local)):  # a path out of the project is refused
            log(f"mcq: warning: {local} is outside {raw_dir}; dvc does not see it change. Move it there, "
                "or add it to the mcq stage's deps in dvc.yaml.")
    counts = {"pt": 0, "en": 0}
    # the records go straight to the outputs' temporary files, renamed into place only if no row has a
    # problem (raising inside atomic_path removes them): a big file is never whole in memory
    with atomic_path(out_pt) as tmp_pt, atomic_path(out_en) as tmp_en, \
            open(tmp_pt, "w", encoding="utf-8") as pt, open(tmp_en, "w", encoding="utf-8") as en:
        def emit(rec: dict) -> None:
            counts[rec["language"]] += 1
            (pt if rec["language"] == "pt" else en).write(dumps(rec) + "\n")

        _, summary, problems = build(sources, p, emit)
        if problems:
            raise InputError(problem_message(problems))
    write_json(metrics, summary)
    for note in summary["notes"]:
        log(f"mcq: {note}")
    for name, stats in summary["sources"].items():
        line = describe_skipped(name, stats)
        if line:
            log(f"mcq: {line}")
    log(f"mcq: {summary['items']} items {summary['by_split']} from {len(sources)} source(s), "
        f"{summary['duplicates']} repeated row(s) kept once: {counts['pt']} pt -> {out_pt}, "
        f"{counts['en']} en -> {out_en}")
