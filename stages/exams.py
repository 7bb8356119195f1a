"""Exam PDFs and their answer keys (gabaritos) -> multiple-choice items, one per question.

    gabarito exams --exam-dir data/raw/exams --out data/interim/exam_items.jsonl --report metrics/exams.json

The folder holds each exam beside its key, by name:

    data/raw/exams/<exam>.pdf             the exam (born-digital or scanned)
    data/raw/exams/<exam>.gabarito.pdf    its key: a table of number -> letter ("01 C", "1 - C",
                                          "01 | ANULADA", several pairs per line)
      or <exam>.gabarito.csv              columns questao,resposta (comma or semicolon separated; UTF-8;
                                          "Questão;Gabarito" as official keys head them reads too)

A key entry that is one of ``exams.annulled_marks`` (ANULADA, *, X) annuls its question. An exam
without a key, a key without an exam, or both a PDF and a CSV key for one exam stop the stage with
a message naming the file and the name expected. Names pair as written, case included (prova.pdf and
Prova.pdf are two exams), after Unicode normalisation (NFC: a key named on a Mac pairs with an exam
named elsewhere); two files whose names are one name in two Unicode forms, and a link that leads out of
the project, stop the stage too.

Pages are read as the extract stage reads them (:func:`gabarito.pdf.extract_pdf`: the text layer,
tesseract OCR for scanned pages), with two-column born-digital pages read column by column; running
headers, footers and page numbers go as in :mod:`gabarito.pdftext`. Questions start at a line
"QUESTÃO 01" / "Questão 1" (any number) or "01." / "1)" (the next number only, so a numbered list
inside a passage is not a question); alternatives at "(A)", "A)", "a)" or "A." in letter order, up
to ten. Everything between a question's number and its first alternative (a passage included) is
its text; a question may go on in the next column or page. A line that is exactly a heading of
``exams.subjects`` sets the subject of the questions after it.

Questions are joined with the key by number. Skipped, each counted in metrics/exams.json with the
question numbers and logged: annulled in the key; no answer in the key; a key letter outside the
alternatives found; fewer than two alternatives or an empty one (a picture); a number found twice;
and, unless ``exams.include_figure_questions``, questions naming a figure (``exams.figure_words``:
"figura", "gráfico", "charge"...), which are flagged ``needs_figure``. An item is
``{id: <exam>-q<NN>, split, context: "", question, answers, label, question_type: exam, source:
<exam>, language, doc, page, needs_figure[, subject]}``, split by a seeded hash of its id.
"""

from __future__ import annotations

import csv
import io
import os
import re
import unicodedata
from pathlib import Path

import click

from gabarito.clikit import log, params_option, user_errors
from gabarito.io import (
    InputError,
    excerpt,
    link_out_error,
    outside_project,
    read_text,
    write_json,
    write_jsonl,
)
from gabarito.items import MIN_OPTIONS, hash_split
from gabarito.params import LETTERS, ExamsParams, load_section

KEY_SUFFIX = ".gabarito"
# alternatives are lettered as format.letters' alphabet, LETTERS: an exam question has at most ten
UPPER = f"[{LETTERS[0]}-{LETTERS[-1]}]"  # [A-J], a regex character class
ANY_CASE = f"[{LETTERS[0]}-{LETTERS[-1]}{LETTERS[0].lower()}-{LETTERS[-1].lower()}]"  # [A-Ja-j]
ANNULLED = "annulled"
KEY_COLUMN_ALIASES = {"gabarito": "resposta"}  # a key CSV's header, accents and case folded -> its column

# --- pairing exams with their keys ----------------------------------------------------------------


def _nfc(name: str) -> str:
    """A file name as compared: macOS writes "ç" as c and a combining cedilla (NFD), other systems as one
    character (NFC); the same name either way. Case counts: prova.pdf and Prova.pdf are two exams."""
    return unicodedata.normalize("NFC", name)


def _key_of(key: Path) -> str:
    """The exam a key file names: "Prova 1" of "Prova 1.gabarito.pdf" (".gabarito.PDF" too, as Windows
    and scanners write it), NFC."""
    return _nfc(key.name[: -len(key.suffix) - len(KEY_SUFFIX)])


def pair_files(exam_dir: Path, root: str | Path | None = None) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(exam PDF, key file) pairs, sorted by name, and the names of other files (ignored).

    The folder is read flat: ``<exam>.pdf`` beside ``<exam>.gabarito.pdf`` or ``<exam>.gabarito.csv``,
    names compared after Unicode normalisation (NFC). A link that leads out of the folder and out of the
    project ``root`` (the working directory: the repository) is refused, as is the folder itself when it
    is in the project and leads out of it.
    """
    if not exam_dir.is_dir():
        raise InputError(f"{exam_dir}: not a folder. Put exam PDFs and their answer keys in it "
                         f"(<exam>.pdf + <exam>{KEY_SUFFIX}.pdf or <exam>{KEY_SUFFIX}.csv).")
    in_project = Path(os.path.abspath(exam_dir)).is_relative_to(Path(root or Path.cwd()).resolve())
    if in_project and outside_project(exam_dir, root) is not None:
        raise link_out_error(exam_dir, outside_project(exam_dir, root), "the folder's files")
    files = sorted(p for p in exam_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    seen: dict[str, Path] = {}
    for f in files:
        target = outside_project(f, root)
        if target is not None and not target.is_relative_to(exam_dir.resolve()):
            raise link_out_error(f, target, f"the file itself into {exam_dir}/")
        other = seen.setdefault(_nfc(f.name), f)
        if other is not f:  # possible where names are bytes (Linux): one copied from a Mac, one not
            raise InputError(f"{exam_dir}: two files are named {_nfc(f.name)}, spelled in two Unicode forms "
                             f"({ascii(other.name)} and {ascii(f.name)}: accents as one character, and as a letter "
                             "and a combining accent, as macOS writes them). Keep one of them.")
    keys = [p for p in files if p.suffix.lower() in (".pdf", ".csv") and p.stem.casefold().endswith(KEY_SUFFIX)]
    exams = [p for p in files if p.suffix.lower() == ".pdf" and p not in set(keys)]
    other = [p.name for p in files if p not in set(keys) | set(exams)]
    for name in other:  # a key the person meant to give, in a format this stage cannot read
        if Path(name).stem.casefold().endswith(KEY_SUFFIX):
            raise InputError(f"{exam_dir / name}: an answer key must be a PDF or a CSV (columns questao,resposta); "
                             f"save it as {Path(name).stem}.pdf or {Path(name).stem}.csv.")
    pairs, used = [], set()
    for exam in exams:
        # a PDF key named first
        found = sorted((k for k in keys if _key_of(k) == _nfc(exam.stem)), key=lambda k: k.suffix.lower() != ".pdf")
        if not found:
            near = [k.name for k in keys if _key_of(k).casefold() == _nfc(exam.stem).casefold()]
            hint = f" ({near[0]} differs from the exam's name in case only: rename one to match)" if near else ""
            raise InputError(f"{exam}: no answer key{hint}. Put it beside the exam as {exam.stem}{KEY_SUFFIX}.pdf "
                             f"(a table of number -> letter) or {exam.stem}{KEY_SUFFIX}.csv (columns "
                             "questao,resposta), or move the exam out of the folder.")
        if len(found) > 1:
            raise InputError(f"{exam}: two answer keys ({found[0].name}, {found[1].name}); keep one.")
        pairs.append((exam, found[0]))
        used.add(found[0])
    for key in keys:
        if key not in used:
            raise InputError(f"{key}: an answer key without its exam: expected {_key_of(key)}.pdf beside it "
                             "(the key is named after the exam's file, plus .gabarito).")
    return pairs, other


# --- answer keys ----------------------------------------------------------------------------------


def _mark(value: str, annulled_marks: list[str]) -> str | None:
    """A key entry as a letter A-J, ANNULLED, or None when it is neither."""
    value = value.strip()
    if value.casefold() in {m.casefold() for m in annulled_marks}:
        return ANNULLED
    return value.upper() if len(value) == 1 and value.upper() in LETTERS else None


def key_pattern(annulled_marks: list[str]) -> re.Pattern:
    """A key pair "01 C", "1 - C", "01 | ANULADA", "1) *": a number (any number of digits), an optional
    separator, then an upper-case letter A-J or an annulled mark, each standing alone (the C of
    "CADERNO" and the a of "1 a 45" are not answers)."""
    marks = "|".join(re.escape(m) for m in sorted(annulled_marks, key=len, reverse=True))
    return re.compile(rf"(?<![\w.,])(\d+)(?![\d.,]\d)\s*(?:[-–—.:|)]\s*)?((?i:{marks})|{UPPER})(?![\w*])")


def _add(key: dict[int, str], number: int, value: str, where: str) -> None:
    if number in key and key[number] != value:
        raise InputError(f"{where}: question {number} has two answers ({key[number]}, {value}). "
                         "Fix the key so each number appears once.")
    key[number] = value


def parse_key_text(pages: list[dict], name: str, annulled_marks: list[str]) -> dict[int, str]:
    """{question number: letter or ANNULLED} from the text of a key PDF's pages."""
    pattern, key = key_pattern(annulled_marks), {}
    for page in pages:
        for m in pattern.finditer(page["text"]):
            _add(key, int(m.group(1)), _mark(m.group(2), annulled_marks), f"{name} page {page['page']}")
    if not key:
        raise InputError(f"{name}: no answer found: expected pairs of a question number and a letter "
                         "(\"01 C\", \"1 - C\", \"01 | ANULADA\"). Is it the answer key? A scan too poor "
                         f"to read? Or write the key as a CSV ({name.rsplit('.', 1)[0]}.csv, "
                         "columns questao,resposta).")
    return key


def _column(name: str) -> str:
    """A key CSV header as the column it names: case and accents ignored ("Questão" is questao), and
    "gabarito", as official keys head the letters, is resposta."""
    folded = "".join(c for c in unicodedata.normalize("NFKD", name.strip()) if not unicodedata.combining(c)).casefold()
    return KEY_COLUMN_ALIASES.get(folded, folded)


def parse_key_csv(text: str, name: str, annulled_marks: list[str]) -> dict[int, str]:
    """{question number: letter or ANNULLED} from a CSV with columns questao,resposta."""
    text = text.lstrip("\ufeff")
    first = text.split("\n", 1)[0]
    reader = csv.DictReader(io.StringIO(text), delimiter=";" if first.count(";") > first.count(",") else ",")
    columns = {_column(c or ""): c for c in reader.fieldnames or []}
    if not {"questao", "resposta"} <= set(columns):
        got = excerpt(",".join(reader.fieldnames or []), quoted=False)  # the header may be anything: quoted short
        raise InputError(f"{name}:1: expected the columns questao,resposta; got {got}.")
    key: dict[int, str] = {}
    for row in reader:
        where = f"{name}:{reader.line_num}"
        number, value = (row[columns["questao"]] or "").strip(), (row[columns["resposta"]] or "").strip()
        if not number and not value:
            continue
        if not number.isdigit():
            raise InputError(f"{where}: questao {excerpt(number)} is not a question number.")
        mark = _mark(value, annulled_marks)
        if mark is None:
            raise InputError(f"{where}: resposta {excerpt(value)} is neither a letter {LETTERS[0]}-{LETTERS[-1]} "
                             f"nor an annulled mark ({', '.join(annulled_marks)}).")
        _add(key, int(number), mark, where)
    if not key:
        raise InputError(f"{name}: no rows. Write one line per question: questao,resposta.")
    return key


# --- questions ------------------------------------------------------------------------------------
QUESTION = re.compile(r"^quest[ãa]o\s*(?:n[º°o]?\.?\s*)?(\d+)\s*[.:)–—-]?\s*(.*)$", re.I)
NUMBERED = re.compile(r"^(\d+)\s*[.)](?!\d)\s*(.*)$")
ALTERNATIVE = re.compile(rf"^(?:\(({ANY_CASE})\)|({ANY_CASE})\)|({UPPER})\.(?=\s|$))\s*(.*)$")
# never a running header, though one may open every page ("QUESTÃO 07" reads as "questão #")
EXAM_UNIT = re.compile(f"{QUESTION.pattern}|{NUMBERED.pattern}|{ALTERNATIVE.pattern}", re.I)


def _norm(line: str) -> str:
    return " ".join(line.split()).casefold()


def exam_lines(pages: list[dict], p) -> list[tuple[int, str]]:
    """(page, line) of an exam's pages in reading order, without running headers, footers, page
    numbers and OCR junk; "" marks a paragraph gap. ``p``: ExtractParams-like cleaning knobs."""
    from gabarito.pdftext import is_marginal, repeated_lines

    repeated = repeated_lines([pg["text"] for pg in pages], p, never=EXAM_UNIT)
    out = []
    for page in pages:
        # soft hyphens; pdfium's U+FFFE is a hyphen it took out of a word it joined across a line end
        text = unicodedata.normalize("NFC", page["text"]).replace("\u00ad", "").replace("\ufffe", "")
        for raw in text.splitlines():
            line = " ".join(raw.split())
            if not line:
                out.append((page["page"], ""))
            elif is_marginal(line, repeated, p):
                continue
            # mostly symbols: OCR noise, unless it opens a question or an alternative ("(A) 3/8.")
            elif EXAM_UNIT.match(line) or \
                    sum(c.isalnum() for c in line) >= p.junk_min_alnum_share * len(line.replace(" ", "")):
                out.append((page["page"], line))
    return out


def _join(paragraphs: list[list[str]]) -> str:
    """Wrapped lines into paragraphs (a hyphen at a line's end joins the word), one per line."""
    out = []
    for lines in paragraphs:
        text = ""
        for line in lines:
            if re.search(r"[A-Za-zÀ-ÿ]-$", text) and line[:1].islower():
                text = text[:-1] + line
            else:
                text = f"{text} {line}" if text else line
        if text:
            out.append(text)
    return "\n".join(out)


def parse_questions(lines: list[tuple[int, str]], subjects: dict[str, str]) -> list[dict]:
    """Questions in order: ``{number, page, question, options: [texts], subject}``."""
    headings = {_norm(h): s for h, s in subjects.items()}
    merged: list[tuple[int, str]] = []
    for page, line in lines:  # a heading wrapped over two lines of a narrow column is one heading
        if merged and merged[-1][1] and line and _norm(f"{merged[-1][1]} {line}") in headings:
            merged[-1] = (merged[-1][0], f"{merged[-1][1]} {line}")
        else:
            merged.append((page, line))
    questions: list[dict] = []
    cur: dict | None = None
    subject = None

    def finish():
        if cur is not None:
            questions.append({"number": cur["number"], "page": cur["page"], "subject": cur["subject"],
                              "question": _join(cur["stem"]), "options": [_join(o) for o in cur["options"]]})

    for page, line in merged:
        target = None if cur is None else (cur["options"][-1] if cur["options"] else cur["stem"])
        if not line:
            if target is not None and target[-1]:
                target.append([])
            continue
        if _norm(line) in headings:
            finish()
            cur, subject = None, headings[_norm(line)]
            continue
        m = QUESTION.match(line)
        n = NUMBERED.match(line) if m is None else None
        if m or (n and (cur is None or int(n.group(1)) == cur["number"] + 1)):
            m = m or n
            finish()
            cur = {"number": int(m.group(1)), "page": page, "subject": subject,
                   "stem": [[m.group(2)] if m.group(2) else []], "options": []}
            continue
        if cur is None:
            continue  # the cover and instructions before the first question
        a = ALTERNATIVE.match(line)
        letter = next((g for g in a.groups()[:3] if g), "").upper() if a else ""
        if len(cur["options"]) < len(LETTERS) and letter == LETTERS[len(cur["options"])]:
            cur["options"].append([[a.group(4)] if a.group(4) else []])
        else:
            target[-1].append(line)
    finish()
    return questions


def figure_pattern(words: list[str]) -> re.Pattern:
    alternatives = "|".join(r"\s+".join(map(re.escape, w.split())) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.I)


def join_exam(questions: list[dict], key: dict[int, str], *, exam: str, doc: str, p: ExamsParams
              ) -> tuple[list[dict], dict]:
    """Items of the questions the key answers, and the exam's report: found, joined, and every
    skipped question under its reason."""
    figure = figure_pattern(p.figure_words)
    skipped: dict[str, list[int]] = {}
    items, seen = [], set()
    for q in questions:
        number, options = q["number"], q["options"]
        answer = key.get(number)
        needs_figure = bool(figure.search(" ".join([q["question"], *options])))
        if number in seen:
            reason = "number found twice"
        elif len(options) < MIN_OPTIONS:
            reason = f"fewer than {MIN_OPTIONS} alternatives found"
        elif not all(options) or not q["question"]:
            reason = "empty question or alternative (a picture?)"
        elif answer is None:
            reason = "no answer in key"
        elif answer == ANNULLED:
            reason = "annulled"
        elif LETTERS.index(answer) >= len(options):
            reason = "key letter outside the alternatives found"
        elif needs_figure and not p.include_figure_questions:
            reason = "needs figure"
        else:
            reason = None
        seen.add(number)
        if reason:
            skipped.setdefault(reason, []).append(number)
            continue
        item_id = f"{exam}-q{number:02d}"
        item = {"id": item_id, "split": hash_split(item_id, seed=p.seed, validation_share=p.validation_share),
                "context": "", "question": q["question"], "answers": options, "label": LETTERS.index(answer),
                "question_type": "exam", "source": exam, "language": p.language, "doc": doc, "page": q["page"],
                "needs_figure": needs_figure}
        if q["subject"]:
            item["subject"] = q["subject"]
        items.append(item)
    numbers = {q["number"] for q in questions}
    report = {"found": len(questions), "joined": len(items),
              "skipped": {r: {"count": len(ns), "questions": ns} for r, ns in sorted(skipped.items())},
              "key_without_question": sorted(set(key) - numbers)}
    return items, report


# --- reading the files ----------------------------------------------------------------------------


def read_pdf(path: Path, p: ExamsParams, *, columns: bool) -> tuple[list[dict], dict]:
    """Page records of one PDF as the extract stage reads it; a file that cannot be read stops the stage."""
    from gabarito.pdf import extract_pdf

    pages, report = extract_pdf(path.read_bytes(), p.pdf, doc=path.name, columns=columns, knobs="exams.pdf")
    if report["status"] not in ("ok", "ocr"):
        # unlike extract, which keeps a file's other pages, an exam is read whole: a question on a page
        # that could not be read would go missing without a trace in the key's join
        raise InputError(f"{path}: {report['status']}: {report['message'] or 'no text could be read'}. "
                         "An exam is read whole: no item is made from it until every page reads.")
    return pages, report


def read_exam(exam: Path, key_file: Path, p: ExamsParams) -> tuple[list[dict], dict]:
    """Items and report of one exam and its key."""
    if key_file.suffix.lower() == ".csv":
        key = parse_key_csv(read_text(key_file), str(key_file), p.annulled_marks)
    else:
        key = parse_key_text(read_pdf(key_file, p, columns=False)[0], str(key_file), p.annulled_marks)
    pages, extracted = read_pdf(exam, p, columns=p.columns)
    questions = parse_questions(exam_lines(pages, p.pdf), p.subjects)
    if not questions:
        raise InputError(f"{exam}: no numbered question found in {len(pages)} page(s) of text. Expected lines "
                         "starting \"QUESTÃO 01\", \"Questão 1\" or \"01.\", followed by alternatives \"(A)\", "
                         "\"A)\" or \"a)\". Is it an exam? Is it laid out differently? Remove it from the folder "
                         "or convert it (one question per block).")
    # ids from the name as NFC: the same exam copied from a Mac gives the same items
    items, report = join_exam(questions, key, exam=_nfc(exam.stem), doc=_nfc(exam.name), p=p)
    if not items:
        raise InputError(f"{exam}: {len(questions)} questions found, none joined with {key_file.name} "
                         f"({describe({'doc': _nfc(exam.name), **report})}). Does the key belong to this exam?")
    unfound = report["key_without_question"]
    if len(unfound) > p.max_unfound_share * len(key):
        shown = ", ".join(map(str, unfound[:20])) + (", ..." if len(unfound) > 20 else "")
        raise InputError(
            f"{exam}: {len(unfound)} of the {len(key)} questions in {key_file.name} were not found in the exam "
            f"({shown}), more than exams.max_unfound_share={p.max_unfound_share} allows; {len(items)} would be "
            "kept. The exam is probably laid out in a way the reader misses (questions not starting \"QUESTÃO "
            "01\", \"Questão 1\" or \"01.\", or columns read across): check that page, or convert the exam. "
            "If the key also covers another booklet, give this exam only its own questions, or raise "
            "exams.max_unfound_share.")
    report = {"doc": _nfc(exam.name), "key": _nfc(key_file.name), "pages": extracted["pages"],
              "pages_ocr": sum(pg["method"] == "ocr" for pg in pages), **report}
    return items, report


def summarize(reports: list[dict], ignored: list[str]) -> dict:
    reasons: dict[str, int] = {}
    for r in reports:
        for reason, s in r["skipped"].items():
            reasons[reason] = reasons.get(reason, 0) + s["count"]
    return {"exams": len(reports), "found": sum(r["found"] for r in reports),
            "joined": sum(r["joined"] for r in reports), "skipped": dict(sorted(reasons.items())),
            "ignored_files": ignored, "report": {r["doc"]: r for r in reports}}


def describe(report: dict) -> str:
    """One exam's log line: 'a.pdf: 34 found, 31 joined; skipped: annulled 1 (q12), ...'."""
    parts = [f"{reason} {s['count']} ({', '.join(f'q{n:02d}' for n in s['questions'])})"
             for reason, s in report["skipped"].items()]
    line = f"{report['doc']}: {report['found']} found, {report['joined']} joined"
    line += f"; skipped: {'; '.join(parts)}" if parts else "; none skipped"
    if report["key_without_question"]:
        line += f"; in the key but not found: {', '.join(map(str, report['key_without_question']))}"
    return line


# --- command: gabarito exams ----------------------------------------------------------------------
@click.command("exams")
@click.option("--exam-dir", type=click.Path(file_okay=False), required=True,
              help="folder of <exam>.pdf + <exam>.gabarito.pdf (or .gabarito.csv) pairs")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="multiple-choice items (JSONL)")
@click.option("--report", type=click.Path(dir_okay=False), required=True, help="per-exam report (JSON)")
@params_option
@user_errors
def command(exam_dir, out, report, params_path):
    """Turn exam PDFs and their answer keys into multiple-choice items.

    Each <exam>.pdf needs its key beside it: <exam>.gabarito.pdf (a table such as "01 C  02 ANULADA")
    or <exam>.gabarito.csv (columns questao,resposta). Annulled questions, questions missing from
    the key and questions that need a figure are skipped; metrics/exams.json lists them by number.

    \b
    Examples:
      cp prova.pdf data/raw/exams/ && cp gabarito.pdf data/raw/exams/prova.gabarito.pdf && dvc repro exams
      dvc exp run -S exams.include_figure_questions=true
    """
    p = load_section("exams", params_path)
    pairs, ignored = pair_files(Path(exam_dir))
    for name in ignored:
        log(f"exams: WARNING {Path(exam_dir) / name}: neither an exam PDF nor a .gabarito key; ignored")
    if not pairs and ignored:  # files came in and no item would come out: not a success to cache
        raise InputError(f"{exam_dir}: none of its {len(ignored)} file(s) ({', '.join(ignored[:5])}) is an exam PDF. "
                         f"Give each exam as <exam>.pdf with its key <exam>{KEY_SUFFIX}.pdf or <exam>{KEY_SUFFIX}.csv "
                         "beside it (convert Word or image files to PDF), or empty the folder.")
    if not pairs:
        log(f"exams: {exam_dir} has no exam PDF; no exam items")
    items, reports = [], []
    for exam, key_file in pairs:
        exam_items, exam_report = read_exam(exam, key_file, p)
        log(f"exams: {describe(exam_report)}")
        items += exam_items
        reports.append(exam_report)
    write_jsonl(out, items)
    summary = summarize(reports, ignored)
    write_json(report, summary)
    log(f"exams: {summary['exams']} exam(s), {summary['found']} questions found, {summary['joined']} items -> {out}")
