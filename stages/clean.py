"""Normalize, validate, de-duplicate and leak-check every record before it can reach training.

    gabarito clean --mcq data/interim/cosmosqa_pt.jsonl --open data/interim/pdf_qa.jsonl \\
        --out-dir data/interim/clean --metrics metrics/clean.json

Rejected rows go to ``quarantine.jsonl`` with their reason; nothing is dropped silently. Checks, in
order: text normalization (Unicode NFC, whitespace, control and OCR junk characters), schema
(non-empty context and question, four non-empty distinct answers, label 0-3), duplicates (same
normalized content), and leakage (a training item equal to a validation item, by id or content).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

import click

from stages import io
from stages.clikit import log, params_option, require_output, user_errors
from stages.io import InputError
from stages.params import CleanParams, load_section

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


def check_mcq(rec: dict, p: CleanParams) -> str | None:
    """Return the reason a multiple-choice record is unusable, or None."""
    answers = rec.get("answers")
    if not isinstance(answers, list) or len(answers) != 4:
        return "schema: need exactly 4 answers"
    label = rec.get("label")
    # an int: 1.0 and True equal 1 in Python, and would then fail as list indices in format
    if type(label) is not int or label not in (0, 1, 2, 3):
        return f"schema: label {label!r} outside 0-3"
    if len(rec.get("context", "")) < p.min_context_chars:
        return f"schema: context shorter than {p.min_context_chars} characters"
    if len(rec.get("question", "")) < p.min_question_chars:
        return f"schema: question shorter than {p.min_question_chars} characters"
    if any(not a for a in answers):
        return "schema: empty answer"
    if len({a.casefold() for a in answers}) < 4:
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
    return {**rec, "context": _text(rec.get("context")), "question": _text(rec.get("question")),
            "answers": [_text(a) for a in answers] if isinstance(answers, list) else answers}


def normalize_open(rec: dict) -> dict:
    return {**rec, "question": _text(rec.get("question")), "answer": _text(rec.get("answer"))}


def clean_records(mcq: list[dict], open_qa: list[dict], p: CleanParams) -> tuple[list[dict], list[dict], list[dict]]:
    """Return (train, validation, quarantine).

    ``open_qa`` holds what synthesize made of the PDFs: open questions, and multiple-choice items
    (``kind: mcq``) that join the Cosmos QA ones. Each keeps the split synthesize gave its document
    (train when it has none).
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
    for raw in mcq:
        rec = {**normalize_mcq(raw), "kind": "mcq"}
        reason = check_mcq(rec, p)
        if reason is None and rec.get("split") not in ("train", "validation"):
            reason = f"split {rec.get('split')!r} not used (only train and validation are)"
        if reason:
            reject(rec, reason)
            continue
        key = (rec["split"], mcq_hash(rec))
        if key in seen:
            reject(rec, f"duplicate of {seen[key]}")
            continue
        seen[key] = rec["id"]
        valid.append(rec)

    validation = [r for r in valid if r["split"] == "validation"]
    val_ids = {r["id"] for r in validation}
    val_hashes = {mcq_hash(r) for r in validation}
    # the same passage+question with answers reordered still leaks the answer
    val_questions = {content_hash(r["context"], r["question"]) for r in validation}
    train = []
    for rec in valid:
        if rec["split"] != "train":
            continue
        if rec["id"] in val_ids or mcq_hash(rec) in val_hashes or \
                content_hash(rec["context"], rec["question"]) in val_questions:
            reject(rec, "leak: also in validation")
            continue
        train.append(rec)

    # as above: duplicates within a split; a train question equal to a validation one is a leak
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
    val_open = {content_hash(r["question"]) for r in open_ok if r["split"] == "validation"}
    for rec in open_ok:
        if rec["split"] == "validation":
            validation.append(rec)
        elif content_hash(rec["question"]) in val_open:
            reject(rec, "leak: also in validation")
        else:
            train.append(rec)
    return train, validation, quarantine


def summarize(train: list[dict], validation: list[dict], quarantine: list[dict]) -> dict:
    reasons: dict[str, int] = {}
    for q in quarantine:
        key = q["reason"].split(" of ")[0] if q["reason"].startswith("duplicate") else q["reason"]
        reasons[key] = reasons.get(key, 0) + 1
    return {
        "train_mcq": sum(r["kind"] == "mcq" for r in train),
        "train_open": sum(r["kind"] == "open" for r in train),
        "validation": len(validation),
        "validation_mcq": sum(r["kind"] == "mcq" for r in validation),
        "validation_open": sum(r["kind"] == "open" for r in validation),
        "quarantined": len(quarantine),
        "quarantine_reasons": dict(sorted(reasons.items())),
    }


def require_kept(n_in: dict[str, int], train: list[dict], validation: list[dict], summary: dict, *,
                 quarantine_path: str, metrics_path: str) -> None:
    """A split that came in with items and leaves with none fails the stage, naming the counts and
    where the reasons are: training (or evaluating) on nothing must not be cached as a success.
    ``n_in``: items that came in per split."""
    top = sorted(summary["quarantine_reasons"].items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    hint = (f"{summary['quarantined']} item(s) quarantined in all, most for "
            + ", ".join(f"{reason!r} ({count})" for reason, count in top)
            + f". Each item and its reason are in {quarantine_path}, the counts in {metrics_path}. Fix the input, "
            "or the clean thresholds in params.yaml if they are too strict for it.")
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
@click.option("--mcq", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--open", "open_path", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--out-dir", type=click.Path(file_okay=False), required=True)
@click.option("--metrics", type=click.Path(dir_okay=False), required=True)
@params_option
@user_errors
def command(mcq, open_path, out_dir, metrics, params_path):
    """Normalize, validate, de-duplicate and leak-check; quarantine rejects with a reason.

    \b
    Examples:
      dvc repro clean
      jq -r .reason data/interim/clean/quarantine.jsonl | sort | uniq -c   # why items were dropped
    """
    p = load_section("clean", params_path)
    mcq_records, open_records = io.read_jsonl(mcq), io.read_jsonl(open_path)
    train, validation, quarantine = clean_records(mcq_records, open_records, p)
    # written even when the stage then fails: the quarantine is where the reasons are
    with io.atomic_path(out_dir, directory=True) as tmp:
        io.write_jsonl(tmp / "train.jsonl", train)
        io.write_jsonl(tmp / "validation.jsonl", validation)
        io.write_jsonl(tmp / "quarantine.jsonl", quarantine)
    summary = summarize(train, validation, quarantine)
    io.write_json(metrics, summary)
    require_kept(split_sizes(mcq_records, open_records), train, validation, summary,
                 quarantine_path=f"{out_dir}/quarantine.jsonl", metrics_path=metrics)
    log(f"clean: train {len(train)}, validation {len(validation)}, quarantined {len(quarantine)} -> {out_dir}")
