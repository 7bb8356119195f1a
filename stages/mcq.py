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
UTF-8. Every bad row is reported with its file:line (all of them together, the stage exits 1 and
writes nothing); a row repeated with the same content (in any source) is kept once and counted.
Items without a split get one from a seeded hash of their id (``mcq.validation_share``); ``test``
items are written with that split, so they never train (clean keeps only train and validation).
Portuguese items go to ``--out-pt`` (straight to clean), English ones to ``--out-en`` (to translate).
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from gabarito.clikit import log, params_option, user_errors
from gabarito.io import InputError, read_text, redact_url, write_json, write_jsonl
from gabarito.items import MIN_OPTIONS, hash_split
from gabarito.params import LETTERS, MCQParams, MCQSource, load_section
from gabarito.sources import NONE_OF_THE_ABOVE, csv_error, download_text, question_type

# the file format's answer letters: A is the first option, J the tenth (format.letters is the prompt's
# alphabet, a param; these name the options in the user's file, whatever the prompt shows)
FILE_LETTERS = LETTERS
MAX_OPTIONS = len(FILE_LETTERS)
REQUIRED = ("id", "question", "options", "answer")
OPTIONAL = ("context", "split", "language", "subject", "source")
SPLITS = ("train", "validation", "test")
LANGUAGES = ("pt", "en")
CSV_OPTION = re.compile(rf"^option_([{FILE_LETTERS[0].lower()}-{FILE_LETTERS[-1].lower()}])$")  # a-j
CSV_COLUMNS = ("id", "question", "answer", *OPTIONAL, *(f"option_{c}" for c in FILE_LETTERS.lower()))
CSV_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}
LETTER_ANSWER = re.compile(r"^\s*\(?([A-Za-z])[).]?\s*$")
SHOWN_ERRORS = 20  # problems listed in the message; the rest are counted (a broken export has thousands)
# an English option saying none is right (as ingest reads Cosmos QA); the Portuguese ones exam writers use
NONE_CORRECT = {"en": NONE_OF_THE_ABOVE,
                "pt": re.compile(r"^\s*nenhuma das (alternativas|anteriores|op[çc][õo]es)", re.I)}


@dataclass
class Rows:
    """One source's raw rows, each with where it came from (``file:line``), and problems found reading them."""

    entry: MCQSource
    rows: list[tuple[str, dict]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    name: str = ""  # the file name its problems start with ("prova.csv:12: ..."), for their order


def _line_of(problem: str, name: str) -> int:
    """The line a ``name:line: ...`` problem names (0 for a problem of the whole source)."""
    m = re.match(rf"{re.escape(name)}:(\d+): ", problem) if name else None
    return int(m.group(1)) if m else 0


# --- reading: JSONL, CSV, hub rows ------------------------------------------------------------------
def jsonl_rows(text: str, name: str) -> tuple[list[tuple[str, dict]], list[str]]:
    """(where, object) per non-blank line, and one problem per line that is not a JSON object."""
    import json

    rows, errors = [], []
    for lineno, line in enumerate(text.split("\n"), 1):  # "\n" only, as gabarito.io.parse_jsonl
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"{name}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno}).")
            continue
        if not isinstance(obj, dict):
            errors.append(f"{name}:{lineno}: expected a JSON object {{\"id\": ..., ...}}, got {type(obj).__name__}.")
            continue
        rows.append((f"{name}:{lineno}", obj))
    return rows, errors


def _csv_options(header: list[str]) -> tuple[list[int], list[str]]:
    """The positions of option_a, option_b, ... in the header, and problems with them."""
    letters = {CSV_OPTION.match(h).group(1): i for i, h in enumerate(header) if CSV_OPTION.match(h)}
    order = [c for c in FILE_LETTERS.lower() if c in letters]
    expected = list(FILE_LETTERS.lower()[:len(order)])
    if order != expected:
        return [], [f"option columns must run option_a, option_b, ... without a gap; found "
                    f"{', '.join('option_' + c for c in order)}"]
    return [letters[c] for c in order], []


def csv_delimiter(text: str) -> str:
    """The delimiter the header line is written with: ``,``, or the ``;`` Excel writes where the decimal
    mark is a comma (pt-BR), or a tab: whichever splits the header into the most known columns
    (a tie is ``,``)."""
    header = text.split("\n", 1)[0]
    return max(CSV_DELIMITERS, key=lambda d: sum(h.strip() in CSV_COLUMNS for h in header.split(d)))


def csv_rows(text: str, name: str) -> tuple[list[tuple[str, dict]], list[str]]:
    """(where, row) per CSV row, options gathered from option_a.. (trailing empty cells are no option)."""
    delimiter = csv_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True, delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return [], [f"{name}: empty file; expected a header line (id,question,option_a,option_b,...,answer)."]
    except csv.Error as exc:
        return [], [f"{name}:1: malformed header ({exc})."]
    problems = []
    for col in header:
        if col and col not in CSV_COLUMNS:  # a column without a name: the empty ones Excel keeps (checked per row)
            close = difflib.get_close_matches(col, CSV_COLUMNS, n=1)
            problems.append(f"unknown column {col!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    missing = [c for c in ("id", "question", "answer", "option_a", "option_b") if c not in header]
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    positions, bad = _csv_options(header)
    problems += bad
    if problems:
        return [], [f"{name}:1: {p}." for p in problems]
    rows, errors = [], []
    while True:
        lineno = reader.line_num + 1  # a quoted field may span lines: the row starts after the last one read
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            # the reader cannot find the next row reliably after this: the rest of the file is not read
            errors.append(f"{csv_error(exc, name, lineno, 'malformed CSV')} The rows after it were not read.")
            break
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            errors.append(f"{name}:{lineno}: expected {len(header)} fields, got {len(values)} "
                          f"(an unquoted {CSV_DELIMITERS[delimiter]}?).")
            continue
        unnamed = [i + 1 for i, (h, v) in enumerate(zip(header, values)) if not h and v.strip()]
        if unnamed:
            errors.append(f"{name}:{lineno}: a value in column(s) {', '.join(map(str, unnamed))}, which have no name in "
                          "the header: name the column, or empty it.")
            continue
        cells = {h: v for h, v in zip(header, values) if h}
        options = [values[i] for i in positions]
        while options and not options[-1].strip():
            options.pop()
        row: dict[str, Any] = {k: v for k, v in cells.items() if not CSV_OPTION.match(k) and v.strip()}
        row["options"] = options
        rows.append((f"{name}:{lineno}", row))
    return rows, errors


def file_rows(text: str, name: str) -> tuple[list[tuple[str, dict]], list[str]]:
    if name.endswith((".jsonl", ".json")):
        return jsonl_rows(text, name)
    if name.endswith(".csv"):
        return csv_rows(text, name)
    return [], [f"{name}: expected a .jsonl or .csv file."]


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
        return None, f"answer {value!r} is outside the {n} options (letters {letters[0]}-{letters[-1]})"
    else:
        return None, f"answer {value!r} is neither a letter ({letters[0]}-{letters[-1]}) nor a 0-based index"
    if 0 <= index < n:
        return index, None
    return None, f"answer {value!r} is outside the {n} options (indices 0-{n - 1}, counted from 0)"


def _text(row: dict, key: str, problems: list[str], *, required: bool) -> str:
    value = row.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            problems.append(f"missing field '{key}'")
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
    unknown = sorted(set(row) - set(REQUIRED) - set(OPTIONAL))
    for key in unknown:
        close = difflib.get_close_matches(key, REQUIRED + OPTIONAL, n=1)
        problems.append(f"unknown field {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
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
        if "answer" not in row:
            problems.append("missing field 'answer'")
        else:
            label, bad = parse_answer(row["answer"], len(options))
            if bad:
                problems.append(bad)
    split = row.get("split") or None  # null or "" (an empty CSV cell): no split of its own
    if split is not None and split not in SPLITS:
        problems.append(f"split {split!r} is unknown (use {', '.join(SPLITS)}, or leave it out for a seeded split)")
    lang = row.get("language") or language
    if lang not in LANGUAGES:
        problems.append(f"language {lang!r} is unknown (use {' or '.join(LANGUAGES)})")
    if problems:
        return None, [f"{where}: {p}." for p in problems]
    # ingest's question types are read off Cosmos QA's English templates, so only English items get one;
    # "other" is what a question no template reads is called everywhere
    qtype = question_type(question) if lang == "en" else "other"
    rec = {"id": item_id, "split": split, "context": context, "question": question, "answers": list(options),
           "label": label, "question_type": qtype, "none_correct": bool(NONE_CORRECT[lang].match(options[label])),
           "source": source, "language": lang}
    if subject:
        rec["subject"] = subject
    return rec, []


# --- the mixture ----------------------------------------------------------------------------------------
def _count(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def build(sources: list[Rows], p: MCQParams) -> tuple[list[dict], dict, list[str]]:
    """(records, metrics, problems) of every source in order: checked, de-duplicated by id, split.

    An id seen again with the same content (same fields, wherever it came from) is counted as a
    duplicate and kept once; with other content it is a problem naming both places.
    """
    records: list[dict] = []
    problems: list[str] = []
    seen: dict[str, tuple[str, dict]] = {}
    per_source: dict[str, dict] = {}
    for src in sources:
        name = src.entry.name()
        stats = {"read": len(src.rows) + len(src.errors), "kept": 0, "duplicates": 0, "problems": 0,
                 "by_split": {}, "by_options": {}, "by_language": {}}
        found = list(src.errors)  # this source's problems, put in line order below
        bad = len(src.errors)
        for where, row in src.rows:
            rec, errs = check_row(row, where, source=name, language=src.entry.language or p.default_language)
            if errs:
                found += errs
                bad += 1
                continue
            if rec["id"] in seen:
                first_where, first = seen[rec["id"]]
                # the same item copied into two files is one item (kept with its first source's name)
                differ = sorted(k for k in set(first) | set(rec) if k != "source" and first.get(k) != rec.get(k))
                if not differ:
                    stats["duplicates"] += 1
                else:
                    bad += 1
                    found.append(f"{where}: id {rec['id']!r} is also at {first_where} with different content "
                                 f"({', '.join(differ)}). Ids must be unique: give one of them another id, or "
                                 "remove the copy.")
                continue
            seen[rec["id"]] = (where, rec)
            if rec["split"] is None:
                rec = {**rec, "split": hash_split(rec["id"], seed=p.seed, validation_share=p.validation_share)}
            records.append(rec)
            stats["kept"] += 1
            _count(stats["by_split"], rec["split"])
            _count(stats["by_options"], str(len(rec["answers"])))
            _count(stats["by_language"], rec["language"])
        stats["problems"] = bad
        problems += sorted(found, key=lambda msg: _line_of(msg, src.name))
        if not src.rows and not src.errors:
            problems.append(f"{name}: no items. A configured source must hold at least one: add items, or remove "
                            "the entry from mcq.sources.")
        per_source[name] = {k: dict(sorted(v.items())) if isinstance(v, dict) else v for k, v in stats.items()}
    return records, summarize(records, per_source), problems


def summarize(records: list[dict], per_source: dict[str, dict]) -> dict:
    totals: dict[str, dict[str, int]] = {"by_split": {}, "by_options": {}, "by_language": {}}
    for rec in records:
        _count(totals["by_split"], rec["split"])
        _count(totals["by_options"], str(len(rec["answers"])))
        _count(totals["by_language"], rec["language"])
    notes = [f"no {s} items from these sources" for s in ("train", "validation") if records and s not in totals["by_split"]]
    if not per_source:
        notes.append("no sources configured (mcq.sources is empty): both outputs are empty")
    return {"items": len(records), **{k: dict(sorted(v.items())) for k, v in totals.items()},
            "duplicates": sum(s["duplicates"] for s in per_source.values()), "sources": per_source, "notes": notes}


def problem_message(problems: list[str]) -> str:
    shown = "\n".join(f"  {p}" for p in problems[:SHOWN_ERRORS])
    more = f"\n  ... and {len(problems) - SHOWN_ERRORS} more" if len(problems) > SHOWN_ERRORS else ""
    return (f"mcq: {len(problems)} problem(s) in the multiple-choice sources; nothing was written. Fix them "
            f"and rerun (README, \"Bring your own exam\", has the format):\n{shown}{more}")


def by_language(records: list[dict]) -> tuple[list[dict], list[dict]]:
    """(Portuguese, English) records, each in input order."""
    return [r for r in records if r["language"] == "pt"], [r for r in records if r["language"] == "en"]


# --- loading the sources (files, URLs, the hub) ------------------------------------------------------
def read_entry(entry: MCQSource, *, timeout: float) -> Rows:
    """One source's rows; a missing file or a failed download is a problem of that source, not a crash."""
    out = Rows(entry)
    try:
        if entry.path:
            path = Path(entry.path)
            if not path.is_file():
                out.errors.append(f"{path}: file not found (mcq.sources). Put the file there or fix the path.")
                return out
            out.name = str(path)
            out.rows, out.errors = file_rows(read_text(path), out.name)
        elif entry.url:
            out.name = redact_url(entry.url.split("?")[0])
            out.rows, out.errors = file_rows(download_text(entry.url, timeout=timeout), out.name)
        else:
            out.rows = hub_rows(entry)
    except InputError as exc:
        out.errors.append(str(exc))
    return out


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
              help="the folder dvc.yaml lists as this stage's dep: a path source outside it is warned about")
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
    sources = [read_entry(entry, timeout=p.download_timeout_s) for entry in p.sources]
    for entry in p.sources:
        local = outside(entry, raw_dir)
        if local:
            log(f"mcq: warning: {local} is outside {raw_dir}; dvc does not see it change. Move it there, "
                "or add it to the mcq stage's deps in dvc.yaml.")
    records, summary, problems = build(sources, p)
    if problems:
        raise InputError(problem_message(problems))
    pt, en = by_language(records)
    write_jsonl(out_pt, pt)
    write_jsonl(out_en, en)
    write_json(metrics, summary)
    for note in summary["notes"]:
        log(f"mcq: {note}")
    log(f"mcq: {len(records)} items {summary['by_split']} from {len(sources)} source(s), "
        f"{summary['duplicates']} repeated row(s) kept once: {len(pt)} pt -> {out_pt}, {len(en)} en -> {out_en}")
