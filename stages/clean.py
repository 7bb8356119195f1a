"""Normalize, validate, de-duplicate and leak-check every record before it can reach training.

    gabarito clean --mcq data/interim/translated_pt.jsonl [--mcq more.jsonl ...] --open data/interim/pdf_qa.jsonl \\
        --out-dir data/interim/clean --metrics metrics/clean.json

Rejected rows go to ``quarantine.jsonl`` with their reason; nothing is dropped silently. Checks, in
order: text normalization (Unicode NFC, whitespace, control and OCR junk characters), schema
(a question; a context that is either empty, for items without a passage, or long enough; 2 to
``len(format.letters)`` non-empty distinct answers; a label among them), duplicates (same normalized
content, or the same id twice in a split), and leakage (a training item equal to a validation item,
by id or content; a test item equal to a train or validation one). Every other key of a record (source,
language, subject, doc, page...) is kept. Items go to ``train.jsonl``, ``validation.jsonl`` and
``test.jsonl`` (the held-out split, only scored; empty when nothing is held out).
"""

from __future__ import annotations

import hashlib
import unicodedata

import click

from gabarito import io
from gabarito.clikit import log, params_option, require_output, user_errors
from gabarito.io import InputError
from gabarito.items import MIN_OPTIONS, normalize_text, strip_decoration
from gabarito.params import CleanParams, FormatParams, load_section

# the most options an item may have: one letter each (format.letters); the command passes the
# params.yaml value, this default (the params default) is for callers that take the defaults
MAX_OPTIONS = len(FormatParams().letters)
# the splits an item may have: train trains, validation gives the eval loss and picks the checkpoint,
# test (held out) is only scored
SPLITS = ("train", "validation", "test")


def clean_char_ratio(text: str) -> float:
    """Share of characters that are letters, digits, common punctuation or spaces."""
    if not text:
        return 1.0
    ok = sum(1 for c in text if c.isalnum() or c.isspace() or unicodedata.category(c).startswith("P")
             or c in "§º°ª%$+-=/<>")
    return ok / len(text)


def content_hash(*parts: str) -> str:
    folded = "\n".join(" ".join(p.casefold().split()) for p in parts)
    return hashlib.sha256(folded.encode()).hexdigest()


def mcq_hash(rec: dict) -> str:
    return content_hash(rec["context"], rec["question"], *rec["answers"])


def question_hash(rec: dict) -> str:
    """The question whatever the order of its answers: passage and question. Without a passage, the
    answers (sorted) join in: exams share stems like "Assinale a alternativa correta." that are
    different questions."""
    if rec["context"]:
        return content_hash(rec["context"], rec["question"])
    return content_hash("", rec["question"], *sorted(" ".join(a.casefold().split()) for a in rec["answers"]))


def check_mcq(rec: dict, p: CleanParams, max_options: int = MAX_OPTIONS) -> str | None:
    """Return the reason a multiple-choice record is unusable, or None. An item has 2 to
    ``max_options`` answers (one letter of ``format.letters`` each)."""
    if not isinstance(rec.get("context"), str):
        return "schema: context must be text (empty for an item without a passage)"
    answers = rec.get("answers")
    if not isinstance(answers, list):
        return "schema: answers must be a list"
    if len(answers) < MIN_OPTIONS:
        return f"schema: fewer than {MIN_OPTIONS} answers"
    if len(answers) > max_options:
        return f"schema: more than {max_options} answers (one letter of format.letters each)"
    label = rec.get("label")
    # an int: 1.0 and True equal 1 in Python, and would then fail as list indices in format
    if type(label) is not int or not 0 <= label < len(answers):
        return f"schema: label {label!r} outside 0-{len(answers) - 1}"
    # an empty context is an item without a passage (an exam question carries it in the question);
    # a short one is a passage cut off
    if rec.get("context") and len(rec["context"]) < p.min_context_chars:
        return f"schema: context shorter than {p.min_context_chars} characters"
    if len(rec.get("question", "")) < p.min_question_chars:
        return f"schema: question shorter than {p.min_question_chars} characters"
    if any(not a for a in answers):
        return "schema: empty answer"
    if len({a.casefold() for a in answers}) < len(answers):
        return "schema: two answers are the same"
    for field in ("context", "question"):
        if clean_char_ratio(rec[field]) < p.min_clean_char_ratio:
            return f"junk: {field} is mostly non-text characters"
    return None


def check_open(rec: dict, p: CleanParams) -> str | None:
    if len(rec.get("question", "")) < p.min_question_chars:
        return f"schema: question shorter than {p.min_question_chars} characters"
    if not rec.get("answer"):
        return "schema: empty answer"
    if clean_char_ratio(rec["answer"]) < p.min_clean_char_ratio:
        return "junk: answer is mostly non-text characters"
    return None


def _text(value) -> str:
    """A field as text: null becomes empty (and fails the schema check with a reason, not a crash)."""
    return normalize_text(strip_decoration(value)) if isinstance(value, str) else ""


def normalize_mcq(rec: dict) -> dict:
    answers = rec.get("answers")
    # a context that is not text stays as it is, for check_mcq to name (empty is an item without a passage)
    context = rec.get("context")
    return {**rec, "context": _text(context) if isinstance(context, str) else context,
            "question": _text(rec.get("question")),
            "answers": [_text(a) for a in answers] if isinstance(answers, list) else answers}


def normalize_open(rec: dict) -> dict:
    return {**rec, "question": _text(rec.get("question")), "answer": _text(rec.get("answer"))}


def clean_records(mcq: list[dict], open_qa: list[dict], p: CleanParams, *,
                  max_options: int = MAX_OPTIONS) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    """Return (train, validation, test, quarantine). ``max_options``: ``len(format.letters)``.

    ``open_qa`` holds what synthesize made of the PDFs: open questions, and multiple-choice items
    (``kind: mcq``) that join the Cosmos QA ones. Each keeps the split synthesize gave its document
    (train when it has none).

    ``test`` is the held-out split: scored by evaluate, never trained on and never used to pick a
    checkpoint. It goes through every check the others do; a test item equal to a train or validation
    item (by id or content) is quarantined as a leak. The test item goes, not its twin: what is held
    out never changes what trains, so adding test items leaves train.jsonl and validation.jsonl as they were.
    """
    mcq = mcq + [r for r in open_qa if r.get("kind") == "mcq"]
    open_qa = [r for r in open_qa if r.get("kind") != "mcq"]
    quarantine: list[dict] = []

    def reject(rec: dict, reason: str) -> None:
        quarantine.append({"id": rec.get("id"), "kind": rec.get("kind", "mcq"), "reason": reason, "record": rec})

    # duplicates are looked for within a split; across splits the train copy is a leak (below),
    # so the validation set never loses an item to its training twin
    valid: list[dict] = []
    seen: dict[tuple[str, str], str] = {}
    seen_ids: set[tuple[str, str]] = set()
    for raw in mcq:
        rec = {**normalize_mcq(raw), "kind": "mcq"}
        reason = check_mcq(rec, p, max_options)
        if reason is None and rec.get("split") not in SPLITS:
            reason = f"split {rec.get('split')!r} unknown (use {', '.join(SPLITS)})"
        if reason:
            reject(rec, reason)
            continue
        key = (rec["split"], mcq_hash(rec))
        if key in seen:
            reject(rec, f"duplicate of {seen[key]}")
            continue
        # two sources (--mcq files) may reuse an id for different items: predictions are keyed by id
        if (rec["split"], rec["id"]) in seen_ids:
            reject(rec, "duplicate id: another item in this split has it")
            continue
        seen[key] = rec["id"]
        seen_ids.add((rec["split"], rec["id"]))
        valid.append(rec)

    validation = [r for r in valid if r["split"] == "validation"]
    val_ids = {r["id"] for r in validation}
    val_hashes = {mcq_hash(r) for r in validation}
    # the same passage+question with answers reordered still leaks the answer
    val_questions = {question_hash(r) for r in validation}
    train = []
    for rec in valid:
        if rec["split"] != "train":
            continue
        if rec["id"] in val_ids or mcq_hash(rec) in val_hashes or question_hash(rec) in val_questions:
            reject(rec, "leak: also in validation")
            continue
        train.append(rec)

    open_ok = checked_open(open_qa, p, reject)
    # as with multiple choice: a train question equal to a validation one is a leak
    val_open = {content_hash(r["question"]) for r in open_ok if r["split"] == "validation"}
    for rec in open_ok:
        if rec["split"] in ("validation", "test"):
            continue
        if content_hash(rec["question"]) in val_open:
            reject(rec, "leak: also in validation")
        else:
            train.append(rec)
    validation += [r for r in open_ok if r["split"] == "validation"]
    test = held_out([r for r in valid + open_ok if r["split"] == "test"], train, validation, reject)
    return train, validation, test, quarantine


def checked_open(open_qa: list[dict], p: CleanParams, reject) -> list[dict]:
    """Open questions normalized, checked and de-duplicated within their split (as multiple choice is);
    the rejected go to ``reject``. A question without a split is a training one."""
    seen_q: dict[tuple[str, str], str] = {}
    open_ok = []
    for raw in open_qa:
        rec = {**normalize_open(raw), "kind": "open", "split": raw.get("split", "train")}
        reason = check_open(rec, p)
        if reason:
            reject(rec, reason)
            continue
        key = (rec["split"], content_hash(rec["question"]))
        if key in seen_q:
            reject(rec, f"duplicate of {seen_q[key]}")
            continue
        seen_q[key] = rec["id"]
        open_ok.append(rec)
    return open_ok


def held_out(candidates: list[dict], train: list[dict], validation: list[dict], reject) -> list[dict]:
    """The test items that are in neither train nor validation (by id, content or question); the others
    go to ``reject`` as leaks, naming the split they are also in."""
    def keys(rec: dict) -> set:
        if rec["kind"] == "open":
            return {("id", rec["id"]), ("open", content_hash(rec["question"]))}
        return {("id", rec["id"]), ("mcq", mcq_hash(rec)), ("question", question_hash(rec))}

    seen = {split: set().union(*(keys(r) for r in recs)) for split, recs in (("train", train), ("validation", validation))}
    test = []
    for rec in candidates:
        also = [split for split, known in seen.items() if keys(rec) & known]
        if also:
            reject(rec, f"leak: also in {also[0]}")
        else:
            test.append(rec)
    return test


def mcq_counts(train: list[dict], validation: list[dict], test: list[dict] | None = None
               ) -> tuple[dict, dict, list[str]]:
    """Kept multiple-choice items per source and split, per option count, and the splits left with none
    (train and validation: a test split is optional)."""
    by_source: dict[str, dict[str, int]] = {}
    by_options: dict[str, int] = {}
    for split, recs in (("train", train), ("validation", validation), ("test", test or [])):
        for r in recs:
            if r["kind"] != "mcq":
                continue
            counts = by_source.setdefault(str(r.get("source", "unknown")), dict.fromkeys(SPLITS, 0))
            counts[split] += 1
            by_options[str(len(r["answers"]))] = by_options.get(str(len(r["answers"])), 0) + 1
    empty = [s for s, recs in (("train", train), ("validation", validation)) if not any(r["kind"] == "mcq" for r in recs)]
    return (dict(sorted(by_source.items())), dict(sorted(by_options.items(), key=lambda kv: int(kv[0]))), empty)


def summarize(train: list[dict], validation: list[dict], quarantine: list[dict], test: list[dict] | None = None) -> dict:
    reasons: dict[str, int] = {}
    for q in quarantine:
        key = q["reason"].split(" of ")[0] if q["reason"].startswith("duplicate") else q["reason"]
        reasons[key] = reasons.get(key, 0) + 1
    by_source, by_options, no_mcq = mcq_counts(train, validation, test)
    test = test or []
    return {
        "mcq_by_source": by_source,
        "mcq_by_option_count": by_options,
        # a split with only open questions: no accuracy on it (validation) or no letters learnt (train)
        "splits_without_mcq": no_mcq,
        "train_mcq": sum(r["kind"] == "mcq" for r in train),
        "train_open": sum(r["kind"] == "open" for r in train),
        "validation": len(validation),
        "validation_mcq": sum(r["kind"] == "mcq" for r in validation),
        "validation_open": sum(r["kind"] == "open" for r in validation),
        "test": len(test),
        "test_mcq": sum(r["kind"] == "mcq" for r in test),
        "test_open": sum(r["kind"] == "open" for r in test),
        "quarantined": len(quarantine),
        "quarantine_reasons": dict(sorted(reasons.items())),
    }


def require_kept(n_in: dict[str, int], train: list[dict], validation: list[dict], summary: dict, *,
                 quarantine_path: str, metrics_path: str, test: list[dict] | None = None) -> None:
    """A split that came in with items and leaves with none fails the stage, naming the counts and
    where the reasons are: training (or evaluating) on nothing must not be cached as a success.
    ``n_in``: items that came in per split."""
    top = sorted(summary["quarantine_reasons"].items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    hint = (f"{summary['quarantined']} item(s) quarantined in all, most for "
            + ", ".join(f"{reason!r} ({count})" for reason, count in top)
            + f". Each item and its reason are in {quarantine_path}, the counts in {metrics_path}. Fix the input, "
            "or the clean thresholds in params.yaml if they are too strict for it.")
    # a test split that came in and left empty fails too: the held-out score would silently vanish
    require_output("clean (test)", n_in.get("test", 0), len(test or []), what_in="test item(s)", what_out="kept",
                   hint=hint)
    for split, kept in (("train", train), ("validation", validation)):
        require_output(f"clean ({split})", n_in.get(split, 0), len(kept), what_in=f"{split} item(s)",
                       what_out="kept", hint=hint)
        if not kept and sum(n_in.values()):
            # nothing came in for this split at all: training on nothing, or scoring on nothing (an
            # accuracy of 0.0 over n=0), must not be cached as a success either
            came = ", ".join(f"{s} {n}" for s, n in sorted(n_in.items())) or "none"
            raise InputError(f"clean: no {split} items came in (items per split: {came}). The pipeline needs "
                             "both train and validation items: give some items split "
                             f"'{split}' (Cosmos QA's CSVs per split, the Q&A files' documents) and rerun.")


def split_sizes(mcq: list[dict], open_qa: list[dict]) -> dict[str, int]:
    """Items per split as they come in (a PDF question without a split goes to train, as in clean_records)."""
    sizes: dict[str, int] = {}
    for split in [r.get("split") for r in mcq] + [r.get("split", "train") for r in open_qa]:
        sizes[str(split)] = sizes.get(str(split), 0) + 1
    return sizes


# --- command: gabarito clean ---------------------------------------------------------------------
@click.command("clean")
@click.option("--mcq", type=click.Path(dir_okay=False, exists=True), required=True, multiple=True,
              help="multiple-choice items (JSONL); repeat for several sources")
@click.option("--open", "open_path", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--out-dir", type=click.Path(file_okay=False), required=True)
@click.option("--metrics", type=click.Path(dir_okay=False), required=True)
@params_option
@user_errors
def command(mcq, open_path, out_dir, metrics, params_path):
    """Normalize, validate, de-duplicate and leak-check into train, validation and test; quarantine rejects.

    \b
    Examples:
      dvc repro clean
      jq -r .reason data/interim/clean/quarantine.jsonl | sort | uniq -c   # why items were dropped
    """
    p = load_section("clean", params_path)
    max_options = len(load_section("format", params_path).letters)
    mcq_records = [rec for path in mcq for rec in io.read_jsonl(path)]
    open_records = io.read_jsonl(open_path)
    train, validation, test, quarantine = clean_records(mcq_records, open_records, p, max_options=max_options)
    # written even when the stage then fails: the quarantine is where the reasons are. test.jsonl is a file
    # of its own (empty when nothing is held out), so base_model and train, which read train.jsonl and
    # validation.jsonl, do not rerun when test items change
    with io.atomic_path(out_dir, directory=True) as tmp:
        io.write_jsonl(tmp / "train.jsonl", train)
        io.write_jsonl(tmp / "validation.jsonl", validation)
        io.write_jsonl(tmp / "test.jsonl", test)
        io.write_jsonl(tmp / "quarantine.jsonl", quarantine)
    summary = summarize(train, validation, quarantine, test)
    io.write_json(metrics, summary)
    require_kept(split_sizes(mcq_records, open_records), train, validation, summary,
                 quarantine_path=f"{out_dir}/quarantine.jsonl", metrics_path=metrics, test=test)
    for split in summary["splits_without_mcq"]:
        log(f"clean: warning: the {split} split has no multiple-choice item left (open questions only): "
            + ("accuracy cannot be measured. " if split == "validation" else "the model learns no answer letters. ")
            + f"Give some multiple-choice items split '{split}' (see {out_dir}/quarantine.jsonl for the rejected).")
    log(f"clean: train {len(train)}, validation {len(validation)}, test {len(test)}, quarantined {len(quarantine)} "
        f"-> {out_dir}"
        + f"; multiple-choice per source {summary['mcq_by_source']}")
