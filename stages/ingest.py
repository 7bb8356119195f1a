"""Ingest Cosmos QA into one normalized schema.

    gabarito ingest --local-dir data/raw/cosmosqa --out data/interim/cosmosqa_en.jsonl

Sources (``ingest.source`` in params.yaml):
  local  a folder with ``train.csv`` / ``valid.csv`` (Cosmos QA's own release names) or
         ``<split>.csv`` / ``<split>.jsonl`` (the bundled sample; the default)
  url    ``ingest.urls``: split -> http(s) URL of a CSV or JSONL file in the same columns
  hub    ``ingest.hub_id`` (``allenai/cosmos_qa``) at ``ingest.hub_revision`` via ``datasets``

Every record leaves as ``{id, split, context, question, answers: [4], label, question_type,
none_correct, source: "cosmosqa", language: "en"}`` (the multiple-choice record of
:mod:`gabarito.items`): the type (cause, effect, fact, counterfactual, other) and whether the correct
answer is "None of the above" are read off the English text, for evaluation by type; ``source``
names it among the other multiple-choice sources, and ``language`` sends it through translation.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterable

import click

from gabarito.clikit import log, params_option, user_errors
from gabarito.io import InputError, redact_url, refuse_outside, write_jsonl
from gabarito.io import parse_jsonl as jsonl_lines
from gabarito.params import IngestParams, load_section
from gabarito.sources import (
    DEFAULT_MAX_DOWNLOAD_MB,
    NONE_OF_THE_ABOVE,
    csv_error,
    download_text,
    question_type,
)

COLUMNS = ("id", "context", "question", "answer0", "answer1", "answer2", "answer3", "label")
# every Cosmos QA item's ``source`` (metrics are reported per source) and ``language`` (translated to pt)
SOURCE, LANGUAGE = "cosmosqa", "en"
# Cosmos QA's GitHub release calls the validation file "valid"
SPLIT_ALIASES = {"validation": ("validation", "valid", "dev"), "train": ("train",), "test": ("test",)}


def normalize_row(row: dict, *, split: str, where: str) -> dict:
    """Turn one raw Cosmos QA row into the pipeline's schema, or raise naming ``where``."""
    missing = [c for c in COLUMNS if c not in row]
    if missing:
        raise InputError(
            f"{where}: missing column(s) {', '.join(missing)}. Cosmos QA files need the columns "
            f"{', '.join(COLUMNS)}."
        )
    raw_label = row["label"]
    try:
        label = int(str(raw_label).strip())
    except ValueError:
        label = None
    if label not in (0, 1, 2, 3):
        raise InputError(
            f"{where}: label {raw_label!r} is outside 0-3 (id {row['id']!r}). The label is the index "
            "of the correct answer among answer0..answer3: fix it or remove the row."
        )
    answers = [str(row[f"answer{i}"] or "") for i in range(4)]
    return {
        "id": str(row["id"]).strip(),
        "split": split,
        "context": str(row["context"] or ""),
        "question": str(row["question"] or ""),
        "answers": answers,
        "label": label,
        "question_type": question_type(str(row["question"] or "")),
        "none_correct": bool(NONE_OF_THE_ABOVE.match(answers[label])),
        "source": SOURCE,
        "language": LANGUAGE,
    }


def parse_csv(text: str, *, split: str, name: str) -> list[dict]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"{name}: empty file; expected a header line with {', '.join(COLUMNS)}.") from None
    except csv.Error as exc:
        raise csv_error(exc, name, 1, "malformed header") from None
    header = [h.strip() for h in header]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise InputError(
            f"{name}: missing column(s) {', '.join(missing)} in the header. Expected {', '.join(COLUMNS)}."
        )
    records = []
    while True:
        # a quoted field may span lines: the row starts on the line after the last one read
        row_line = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise csv_error(exc, name, row_line, "malformed CSV row") from None
        if not values:
            continue
        if len(values) != len(header):
            raise InputError(
                f"{name}:{row_line}: expected {len(header)} fields, got {len(values)}. "
                "Check the quoting on that line (unescaped comma or quote?)."
            )
        records.append(normalize_row(dict(zip(header, values)), split=split, where=f"{name}:{row_line}"))
    return records


def parse_jsonl(text: str, *, split: str, name: str) -> list[dict]:
    return [normalize_row(row, split=split, where=f"{name}:{lineno}") for lineno, row in jsonl_lines(text, name)]


def parse_file(text: str, *, split: str, name: str) -> list[dict]:
    if name.endswith((".jsonl", ".json")):
        return parse_jsonl(text, split=split, name=name)
    return parse_csv(text, split=split, name=name)


def find_local_file(folder: Path, split: str) -> Path:
    for alias in SPLIT_ALIASES.get(split, (split,)):
        for ext in (".csv", ".jsonl"):
            candidate = folder / f"{alias}{ext}"
            if candidate.exists():
                return candidate
    raise InputError(
        f"{folder}: no file for split '{split}' (looked for "
        + ", ".join(f"{a}.csv/.jsonl" for a in SPLIT_ALIASES.get(split, (split,)))
        + "). Add it or remove the split from ingest.splits."
    )


def load_local(folder: str | Path, splits: Iterable[str]) -> list[dict]:
    folder = Path(folder)
    records = []
    for split in splits:
        path = find_local_file(folder, split)
        refuse_outside(path)  # a split linked from outside the project is not DVC's to track
        # utf-8-sig: spreadsheet exports often start with a byte-order mark
        records += parse_file(path.read_text(encoding="utf-8-sig"), split=split, name=str(path))
    return records


def load_urls(urls: dict[str, str], splits: Iterable[str], *, timeout: float,
              max_mb: float = DEFAULT_MAX_DOWNLOAD_MB) -> list[dict]:
    records = []
    for split in splits:
        url = urls.get(split)
        if not url:
            raise InputError(f"params.yaml: ingest.urls has no URL for split '{split}'.")
        if not url.startswith(("http://", "https://")):
            raise InputError(f"params.yaml: ingest.urls.{split} must be an http(s) URL, got {redact_url(url)!r}.")
        name = redact_url(url.split("?")[0])
        records += parse_file(download_text(url, timeout=timeout, max_mb=max_mb, section="ingest"), split=split, name=name)
    return records


def load_hub(hub_id: str, revision: str | None, splits: Iterable[str]) -> list[dict]:
    import datasets  # heavy import, only for this source

    records = []
    for split in splits:
        try:
            ds = datasets.load_dataset(hub_id, split=split, revision=revision)
        except Exception as exc:  # the hub client raises many types; all mean "could not load"
            raise InputError(
                f"hub dataset {hub_id}@{revision or 'main'} split {split}: could not load ({exc}). "
                "Check ingest.hub_id / hub_revision, your network and HF_TOKEN."
            ) from None
        for i, row in enumerate(ds):
            records.append(normalize_row(row, split=split, where=f"{hub_id}[{split}][{i}]"))
    return records


def check_unique_ids(records: list[dict]) -> None:
    seen: dict[str, str] = {}
    for rec in records:
        key = rec["id"]
        if key in seen:
            raise InputError(
                f"id {key!r} appears twice (splits {seen[key]} and {rec['split']}). Ids must be unique: "
                "fix the source file."
            )
        seen[key] = rec["split"]


def limit_per_split(records: list[dict], limit: int | None) -> list[dict]:
    if limit is None:
        return records
    counts: dict[str, int] = {}
    kept = []
    for rec in records:
        n = counts.get(rec["split"], 0)
        if n < limit:
            kept.append(rec)
            counts[rec["split"]] = n + 1
    return kept


def load_records(p: IngestParams, local_dir: str | Path) -> list[dict]:
    """Every item of ``p.splits`` from the source ``ingest.source`` names, capped and checked for unique ids."""
    if p.source == "local":
        records = load_local(local_dir, p.splits)
    elif p.source == "url":
        records = load_urls(p.urls, p.splits, timeout=p.download_timeout_s, max_mb=p.max_download_mb)
    else:
        records = load_hub(p.hub_id, p.hub_revision, p.splits)
    records = limit_per_split(records, p.limit_per_split)
    check_unique_ids(records)
    return records


def split_counts(records: list[dict], splits: Iterable[str]) -> dict[str, int]:
    return {s: sum(r["split"] == s for r in records) for s in splits}


def require_every_split(counts: dict[str, int], source: str) -> None:
    """A split that yields no item (a CSV with a header only, an empty hub split) would train or
    evaluate on nothing downstream, while this stage exits 0 and DVC caches the empty file."""
    empty = [s for s, n in counts.items() if n == 0]
    if empty:
        raise InputError(
            f"ingest: {', '.join(empty)}: 0 items read from {source} ({counts}). Each split in ingest.splits needs "
            "at least one item: check that file (rows under the header?) or remove the split from ingest.splits.")


# --- command: gabarito ingest --------------------------------------------------------------------
@click.command("ingest")
@click.option("--local-dir", type=click.Path(file_okay=False), required=True,
              help="folder with train/validation files (used when ingest.source is local)")
@click.option("--out", type=click.Path(dir_okay=False), required=True)
@params_option
@user_errors
def command(local_dir, out, params_path):
    """Read Cosmos QA (local folder, URLs or the hub) into one normalized JSONL.

    ingest.source picks where from: local (data/raw/cosmosqa, the bundled sample), url (the
    official CSVs) or hub (a pinned dataset revision).

    \b
    Examples:
      dvc repro ingest
      dvc exp run -S ingest.source=hub               # all 28k labelled train + validation items (network)
    """
    p = load_section("ingest", params_path)
    records = load_records(p, local_dir)
    counts = split_counts(records, p.splits)
    source = {"local": str(local_dir), "url": "ingest.urls", "hub": f"{p.hub_id}@{p.hub_revision or 'main'}"}[p.source]
    require_every_split(counts, source)
    write_jsonl(out, records)
    log(f"ingest: {len(records)} items {counts} -> {out}")
