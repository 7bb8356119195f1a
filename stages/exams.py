"""Exam PDFs and their answer keys (gabaritos) -> multiple-choice items, one per question.

    gabarito exams --exam-dir data/raw/exams --out data/interim/exam_items.jsonl --report metrics/exams.json \\
                   --review data/interim/exams_review.md

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

Booklets are read from their layout (:mod:`gabarito.booklet`): the text layer's characters and the PDF's
drawings and images with their positions, or tesseract's words on scanned pages (OCR'd in parallel, each
page within ``exams.pdf.page_timeout_s``). Columns are read one after the other; running headers, footers
and page numbers go by their place on the page. Questions start at a "QUESTÃO 01" heading (however the
text layer or OCR spells it: "QUEST O 51", "Questão : 85") where the booklet has them, else at "01." /
"1)" / a number alone on its line, along the longest run of consecutive numbers (the cover's
instructions 1-9 and a list inside a passage are not questions). Lines before the first question (the
cover) are not read into any. Alternatives are the longest run of letters A, B, C... opening lines: a
letter in a drawn box (INEP prints no "(A)"), "(A)", "A)", "A.", or a bare capital set apart from its
text. Everything between a question's number and its first alternative is its text; "Texto para as
questões 10 e 11" opens a passage that becomes those questions' context; a question may go on in the
next column or page. A line that is exactly a heading of ``exams.subjects`` sets the subject (and the
item's question_type). ENEM day 1 prints 01-05 under "opção inglês" and again under "opção espanhol":
``exams.foreign_language`` picks the copy and the key's column. The year, day, caderno and colour the
booklet's cover and headers print are compared with the key's (``exams.check_identifiers``).

Questions are joined with the key by number. Skipped, each counted in metrics/exams.json with the
question numbers and logged: annulled in the key; no answer in the key; a key letter outside the
alternatives found; fewer than two alternatives or an empty one; a number found twice (and not a
language option); a number in ``exams.drop_questions``; and, unless ``exams.include_figure_questions``,
questions with a figure among their lines (an image or drawing of the PDF; on a scan, ink outside the
words), flagged ``needs_figure``. Every question read, joined or not, is written to the review file
(``--review``). An item is ``{id: <exam>-q<NN>, split, context, question, answers, label, question_type:
<subject> or exam, source: <exam>, language, doc, page, needs_figure[, subject][, foreign_language]}``,
split by a seeded hash of its id.
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
    write_text,
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
                             f"({other.name!a} and {f.name!a}: accents as one character, and as a letter "
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


def _language_rows(text: str, mark: str, where: str) -> tuple[dict[int, dict[str, str]], str]:
    """ENEM's day-1 key gives questions 1-5 two letters, under INGLÊS and ESPANHOL: ({number: {language:
    letter}}, the text without those rows). The columns' order is the header's."""
    rows = re.compile(rf"^\s*(\d{{1,5}})\s*[-–—.:|)]?\s+({mark})\s+({mark})\s*$", re.MULTILINE)
    found = rows.findall(text)
    if not found:
        return {}, text
    folded = text.casefold()
    at = {lang: folded.find(word) for lang, word in (("ingles", "ingl"), ("espanhol", "espanh"))}
    if -1 in at.values():
        raise InputError(f"{where}: questions {', '.join(n for n, _, _ in found[:5])} have two answers on one line, "
                         "and no INGLÊS / ESPANHOL header says whose: write the key as a CSV with columns "
                         "questao,resposta (your language's letters).")
    order = sorted(at, key=at.get)
    return {int(n): dict(zip(order, (a, b))) for n, a, b in found}, rows.sub("", text)


def parse_key_text(pages: list[dict], name: str, annulled_marks: list[str]) -> dict[int, object]:
    """{question number: letter, ANNULLED, or {language: letter or ANNULLED} for the rows that answer
    each foreign-language option} from the text of a key PDF's pages."""
    pattern, key = key_pattern(annulled_marks), {}
    marks = "|".join(re.escape(m) for m in sorted(annulled_marks, key=len, reverse=True))
    mark = rf"(?i:{marks})|{UPPER}"
    for page in pages:
        where = f"{name} page {page['page']}"
        pairs, text = _language_rows(page["text"], mark, where)
        for number, letters in pairs.items():
            if number in key:
                raise InputError(f"{where}: question {number} is in the key twice. Fix the key so each number "
                                 "appears once.")
            key[number] = {lang: _mark(v, annulled_marks) for lang, v in letters.items()}
        for m in pattern.finditer(text):
            _add(key, int(m.group(1)), _mark(m.group(2), annulled_marks), where)
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
# "QUESTÃO 01" as printed and as read: "QUEST O 51" (the Ã of a split text run on a line of its own),
# "Questão : 85", "qu ESTÃO 86", "“Questão 11", "; Questão 14"; numbers of any length
QUESTION = re.compile(r"^[^\w]{0,3}\s*q\s*u\s*e\s*s\s*t\s*[ãaâ]?\s*o\s*[:.;,]?\s*(?:n[º°o]?\.?\s*)?(?:\d\s+(?=\d{2}))?"
                      r"(\d{1,5})(?!\d)\s*[.:)–—-]?\s*(.*)$", re.IGNORECASE)  # "QUESTÃO 3 32": OCR doubled a digit
NUMBERED = re.compile(r"^(\d{1,5})\s*(?:[.)]|\s[–—-])(?!\d)\s*(.*)$")  # "01.", "1)", "1 –"
# FUVEST: the number alone on its line, and the specks OCR reads beside it ("09 j", "25:", "88 | |")
BARE = re.compile(r"^(\d{1,5})(?!\d)\W{0,2}(?:\s+(?:[^\sA-Za-zÀ-ÿ]{1,3}|[a-z]))*\s*$")
LEAD = re.compile(r"^(\d{1,5})\s*[\])|}]?\s+([A-ZÀ-Ý“\"(].*)$")  # OAB: the number, then the stem's first words
# an alternative's letter as printed or as OCR garbles it: "(A)", "A)", "[A]", "| (D)", "A.", "A –"
EXPLICIT = re.compile(rf"^[|\[({{«\"“'‘]*\s*(?:\(\s*({ANY_CASE})\s*[)\]|}}]|({ANY_CASE})\s*[)\]|}}]|({UPPER})\.(?=\s|$)"
                      rf"|({UPPER})\s+[–—-]\s|\(({UPPER})(?=[A-ZÀ-Ý]\s))\s*(.*)$")  # last: OCR's "(CA cláusula"
AREA_RANGE = re.compile(r"^quest[õo]es\s+(?:de\s+)?\d{1,5}\s+(?:a|e|at[ée])\s+\d{1,5}\b", re.IGNORECASE)  # "Questões 121 a 138"
LEADING_JUNK = re.compile(r"^[-–—*•·|'‘’\"“”.,:;_~ ]+(?=\S)")  # OCR's specks before a line's first word
PLAIN = re.compile(rf"^({UPPER})(?:\s+(.*))?$")  # a bare capital letter opening the line: INEP's boxed letters
PASSAGE = re.compile(r"^\W*(?:textos?|leia|considere|instru[çc][ãa]o|o\s+texto|os\s+textos)\b.{0,80}?\bquest[õo]es\b"
                     r"\D{0,12}(\d{1,5})((?:\s*(?:,|e|a|at[ée]|-|–)\s*\d{1,5})+)", re.IGNORECASE)
LANGUAGE = re.compile(r"(?:op[çc][ãa]o|l[íi]ngua)\s*(?:de\s*)?(?:l[íi]ngua\s*)?(?:estrangeira\s*)?[:(–-]?\s*"
                      r"(ingl[eê]s[a]?|espanhol[a]?)|^\W*(ingl[eê]s|espanhol)\W*$", re.IGNORECASE)
LANGUAGES = {"ingles": "ingles", "inglês": "ingles", "inglesa": "ingles", "espanhol": "espanhol",
             "espanhola": "espanhol"}


def _norm(line: str) -> str:
    return " ".join(line.split()).casefold()


def _language(text: str) -> str | None:
    m = LANGUAGE.search(text) if len(text) <= 120 else None
    return LANGUAGES.get((m.group(1) or m.group(2)).casefold()) if m else None


def text_pages(pages: list[dict]) -> list:
    """Plain text pages (``{page, text}``) as booklet pages of one column, a line per line and a blank
    line a paragraph gap: what :func:`exam_lines` reads, for text that has no positions."""
    from gabarito.booklet import Line, Page, Word

    out = []
    for page in pages:
        lines, gap, y = [], False, 0.0
        for raw in page["text"].splitlines():
            if not raw.strip():
                gap = True
                continue
            y += 12.0
            x, words = 0.0, []
            for w in raw.split():
                words.append(Word(x, y, x + 6.0 * len(w), y + 10.0, w))
                x += 6.0 * len(w) + 3.0
            lines.append(Line(page["page"], words, gap_before=gap))
            gap = False
        out.append(Page(page["page"], 600.0, max(y + 24.0, 100.0), "text", lines))
    return out


def exam_lines(pages: list, p) -> list:
    """The booklet's lines in reading order without running headers, footers, page numbers, the stray
    accent of a split "QUESTÃO" and OCR junk. ``p``: the exams.pdf knobs."""
    from gabarito.booklet import mark_marginal

    mark_marginal(pages, margin_share=p.margin_share, min_share=p.header_min_share, similarity=p.header_similarity)
    out = []
    for page in pages:
        for line in page.lines:
            text = unicodedata.normalize("NFC", line.text).replace("\u00ad", "")
            if line.marginal or not text.strip():
                continue
            if len(text) == 1 and not text.isdigit() and text not in LETTERS:
                continue  # an accent drawn apart from its word ("Ã" of "QUESTÃO")
            unit = QUESTION.match(text) or EXPLICIT.match(text) or NUMBERED.match(text)
            if unit or line.boxed or sum(c.isalnum() for c in text) >= p.junk_min_alnum_share * len(text.replace(" ", "")):
                out.append(line)
    return out


def _chain(candidates: list[tuple[int, int, bool]]) -> set[int]:
    """The indexes of the longest run of questions in reading order among (index, number, headed)
    candidates: each number follows a near one before it (n+1, or up to n+5 where OCR lost numbers), or,
    headed "QUESTÃO", any lower one. Not the cover's instructions 1-9 nor a numbered list in a passage.
    Ties go to the run with more "QUESTÃO" headings, then to the later one."""
    best: list[tuple[int, int, int | None]] = []  # per candidate: (run length, headings in it, previous)
    for k, (_, number, headed) in enumerate(candidates):
        # the number just before, or a few lower (numbers OCR lost), the nearest in reading order: each
        # candidate stepped over costs 1, each number skipped 3 (question 10 follows question 9, not the
        # cover's instruction 9; question 4 follows 3, not the list "1. 2." in 3's passage); else, headed,
        # the longest run below it
        near = [j for j in range(k) if 0 < number - candidates[j][1] <= 5]
        lower = [j for j in range(k) if headed and candidates[j][1] < number]
        if near:
            prev = min(near, key=lambda j: (k - j - 1 + 3 * (number - candidates[j][1] - 1), -best[j][0]))
        else:
            prev = max(lower, key=lambda j: (best[j][0], j), default=None)
        length, headings = (best[prev][0], best[prev][1]) if prev is not None else (0, 0)
        best.append((length + 1, headings + headed, prev))
    if not best:
        return set()
    k = max(range(len(best)), key=lambda j: (best[j][0], best[j][1], j))
    chain = set()
    while k is not None:
        chain.add(candidates[k][0])
        k = best[k][2]
    return chain


def question_starts(lines: list) -> dict[int, tuple[int, str]]:
    """{line index: (question number, the rest of the line)}. A booklet that heads its questions
    "QUESTÃO NN" (three at least) starts them there only; otherwise at "01." / "1)" / a number alone on
    its line / a number and a capitalised word, along the longest run of consecutive numbers."""
    headed = {i: (int(m.group(1)), m.group(2)) for i, ln in enumerate(lines) if (m := QUESTION.match(ln.text))}
    if len(headed) >= 3:
        return headed
    numbered = {}
    for i, ln in enumerate(lines):
        text = re.sub(r"^[^\w]+(?=\d)", "", ln.text)  # OCR's specks, a box's edge: "| 1 Joana", "[99 ] Uma"
        m = QUESTION.match(text) or NUMBERED.match(text) or BARE.match(text) or LEAD.match(text)
        if m:
            numbered[i] = (int(m.group(1)), m.group(2) if m.lastindex and m.lastindex >= 2 else "")
    chain = _chain([(i, n, i in headed) for i, (n, _) in numbered.items()])
    return {i: v for i, v in numbered.items() if i in chain}


GARBLED_BOX = re.compile(r"^[\[(|{]\S{0,2}[\])|}]$")  # a boxed letter OCR could not read: "(3)", "[B)", "(€)"


def _candidates(body: list) -> list[tuple[int, str, str, int]]:
    """(line index, letter, text after it, strength) of lines that may open an alternative: 2 for a
    letter in a drawn box or written "(A)", "A)", "A."; 1 for a bare letter set apart by a wide gap or
    alone on its line, or a box OCR garbled ("(3)": letter "?", its place in the run tells which); 0 for a
    bare capital and a word ("A mudança" may be an article)."""
    out = []
    for i, ln in enumerate(body):
        if ln.boxed:  # the letter is not among the line's words
            out.append((i, ln.boxed, "" if ln.text == ln.boxed and len(ln.words) == 1 else ln.text, 2))
            continue
        text = LEADING_JUNK.sub("", ln.text)
        m = EXPLICIT.match(text)
        if m:
            letter, rest = next(g for g in m.groups()[:5] if g), m.group(6)
            again = EXPLICIT.match(rest)  # OCR read the box twice: "[B) (B) Relativizar"
            if again and next(g for g in again.groups()[:5] if g).upper() == letter.upper():
                rest = again.group(6)
            out.append((i, letter.upper(), rest, 2))
            continue
        words = text.split(" ")
        if len(words) > 1 and GARBLED_BOX.match(words[0]):
            while len(words) > 1 and (GARBLED_BOX.match(words[0]) or EXPLICIT.match(words[0] + " x")):
                words.pop(0)  # "(3) (8) Combater": both are the box
            out.append((i, "?", " ".join(words), 1))
            continue
        m = PLAIN.match(text)
        if m:
            words = ln.words
            wide = len(words) == 1 or (words[1].x0 - words[0].x1) >= 0.6 * (words[0].bottom - words[0].top)
            out.append((i, m.group(1), m.group(2) or "", 1 if wide else 0))
    return out


def _next_option(cands: list[tuple], after: int, letter: str) -> tuple | None:
    """The alternative after line ``after`` that opens ``letter``: the first firm candidate (a box, a
    written letter, a garbled box) when it is that letter or unreadable; when it is a later letter, the
    firm one of this letter after it, or that one itself when letters up to it follow (OCR misread the
    letter), or None (this one's box went unread); with no firm candidate, the strongest bare capital of
    that letter."""
    later = [c for c in cands if c[0] > after]
    firm = [c for c in later if c[3] >= 1 and (c[1] == "?" or c[1] >= letter)]
    if firm:
        if firm[0][1] in (letter, "?"):
            return firm[0]
        exact = [c for c in firm if c[1] == letter]  # printed out of order: the later letter is text
        if exact:
            return exact[0]
        if any(c[1] != "?" and c[1] <= firm[0][1] for c in firm[1:]):  # OCR read "(C)" as "(E)": D, E follow
            return (firm[0][0], letter, firm[0][2], 1)
        return None
    weak = [c for c in later if c[1] == letter]
    return max(weak, key=lambda c: (c[3], -c[0])) if weak else None


def _fill_unread(chain: list, body: list) -> list:
    """An alternative whose letter OCR lost entirely (None in the chain) is cut from the previous one's
    lines at the first line that opens a sentence after one that ends; without such a line the run
    stops before it."""
    out = []
    for k, c in enumerate(chain):
        if c is not None:
            out.append(c)
            continue
        if not out or k + 1 >= len(chain) or chain[k + 1] is None:
            break
        start, end = out[-1][0], chain[k + 1][0]
        cut = next((j for j in range(start + 1, end) if re.search(r"[.;!?]$", _tidy(body[j - 1].text, True))
                    and LEADING_JUNK.sub("", body[j].text)[:1].isupper()), None)
        if cut is None:
            break
        out.append((cut, "?", LEADING_JUNK.sub("", body[cut].text), 0))
    return out


def find_options(body: list) -> list[tuple[int, str]]:
    """(line index, text after the letter) of each alternative in the lines of one question, in letter
    order from A: the run that is longest, then strongest, then last (alternatives close a question,
    and its text may have a line that starts with "A")."""
    cands = _candidates(body)
    best, best_score = [], (0, 0, 0)
    for start in (c for c in cands if c[1] in (LETTERS[0], "?")):
        chain, at, k = [start], start[0], 1
        while k < len(LETTERS):
            nxt = _next_option(cands, at, LETTERS[k])
            if nxt is not None:
                chain.append(nxt)
                at, k = nxt[0], k + 1
                continue
            # read on: the next letter may follow an alternative whose box went unread
            after = _next_option(cands, at, LETTERS[k + 1]) if k + 1 < len(LETTERS) and chain[-1] is not None else None
            if after is None:
                break
            chain += [None, after]
            at, k = after[0], k + 2
        chain = _fill_unread(chain, body)
        if all(c[3] == 0 for c in chain) and len(chain) < 3:
            continue  # "A ... / B ..." in prose
        score = (len(chain), sum(c[3] for c in chain) - (start[1] == "?"), start[0])
        if score > best_score:
            best, best_score = chain, score
    return [(c[0], c[2]) for c in best]


# OCR's specks after a sentence's end: "naturáis. =", "sociais. o", "religiosas. di:", "hipótese. ]"
SPECKS_AFTER_END = re.compile(r"(?<=[.;!?])(?:\s+(?:[^\w\s]+\w{0,2}|\w{0,2}[^\w\s]+|[a-zà-ÿ]{1,2}|[A-Z]))+$")


def _tidy(text: str, ocr: bool) -> str:
    """A scanned line as its sentence ends: the specks OCR reads after its last full stop go, and a lone
    mark at its end ("19,3 kg -", "décadas. |")."""
    return SPECKS_AFTER_END.sub("", re.sub(r"(?:\s+[^\w\s]{1,2})+$", "", text.rstrip())) if ocr else text


def _paragraphs(lines: list, first: str = "") -> list[list[str]]:
    out = [[first] if first else []]
    for ln in lines:
        if ln.gap_before and out[-1]:
            out.append([])
        out[-1].append(_tidy(ln.text, ln.ocr))
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


def _last_option_end(lines: list, start: int) -> int:
    """Where the last alternative stops: at a paragraph gap, or, past a column or page break, at a heading
    in capitals or a line across the page (the essay that follows the last question); what follows up to
    the next question belongs to no question."""
    width = max(ln.x1 - ln.x0 for ln in lines[start:start + 1])
    for k in range(start + 1, len(lines)):
        line, prev = lines[k], lines[k - 1]
        moved = (line.page, line.column) != (prev.page, prev.column)  # on in the next column or page...
        title = any(c.isalpha() for c in line.text) and line.text.isupper()  # ... unless a heading opens it
        heading = title and len(re.findall(r"[^\W\d_]{2,}", line.text)) >= 2 or AREA_RANGE.match(line.text)
        if line.gap_before or heading or moved and (title or line.column == 0 and line.x1 - line.x0 > 1.3 * width):
            return k
    return len(lines)


def _question(number: int, first: str, heading, body: list, subject, language) -> dict:
    """One question from its lines after the number: stem, alternatives, and the lines left over."""
    options = find_options(body)
    # a second set of alternatives before the one taken: a question whose number was not read lies between
    twice = bool(options) and len(find_options(body[: options[0][0]])) == len(options)
    if options:
        stem_lines, ends = body[: options[0][0]], [o[0] for o in options[1:]]
        ends.append(_last_option_end(body, options[-1][0]))
        texts = [_join(_paragraphs(body[i + 1:end], _tidy(rest, body[i].ocr))).replace("\n", " ")
                 for (i, rest), end in zip(options, ends)]
        used = ends[-1]
    else:
        stem_lines, texts, used = body, [], len(body)
    return {"number": number, "page": heading.page, "heading": heading, "twice": twice, "subject": subject, "language": language,
            "question": _join(_paragraphs(stem_lines, first)), "options": texts, "lines": body[:used],
            "leftover": body[used:]}


def parse_questions(lines: list, subjects: dict[str, str]) -> tuple[list[dict], dict]:
    """Questions in reading order: ``{number, page, subject, language, question, context, options,
    lines, leftover}``, and what was read around them: ``{before: lines before the first question,
    passages: {number: {text, lines}}}``. A line that is exactly a heading of ``subjects`` sets the subject; an
    "opção inglês" / "opção espanhol" heading the language of the copies of a question printed twice;
    "Texto para as questões 10 e 11" opens a passage that is those questions' context."""
    headings = {_norm(h): s for h, s in subjects.items()}
    starts = question_starts(lines)
    questions, passages, before = [], {}, []
    subject = language = None
    cur: tuple[int, str, int] | None = None  # number, rest of the heading line, index of its first body line
    passage: tuple[list[int], int] | None = None  # numbers, index of its first line

    def close(end: int):
        nonlocal cur, passage
        if cur is not None:
            number, first, at = cur
            questions.append(_question(number, first, lines[at], lines[at + 1:end], subject, language))
        if passage is not None:
            shared = {"text": _join(_paragraphs(lines[passage[1]:end])), "lines": lines[passage[1]:end]}
            for n in passage[0]:
                passages[n] = shared
        cur = passage = None

    i = 0
    while i < len(lines):
        text = lines[i].text
        pair = _norm(f"{text} {lines[i + 1].text}") if i + 1 < len(lines) else ""
        if _norm(text) in headings or pair in headings:  # a heading wrapped over two lines is one heading
            close(i)
            subject = headings.get(_norm(text)) or headings[pair]
            i += 1 if _norm(text) in headings else 2
            continue
        if i in starts:
            close(i)
            cur = (starts[i][0], starts[i][1], i)
        elif _language(text) and (cur is None or find_options(lines[cur[2] + 1:i])):  # not a word of a stem
            close(i)
            language = _language(text)
        elif (m := PASSAGE.match(text) or PASSAGE.match(f"{text} {lines[i + 1].text}" if i + 1 < len(lines) else "")) \
                and len(m.string) <= 200 and not (i + 1 in starts):
            close(i)
            two = m.string != text  # "Leia o texto a seguir para responder às" / "questões 122 a 124."
            passage = (_passage_numbers(m), i + 1 + two)
            i += two
        elif cur is None and passage is None and not questions:
            before.append(lines[i])
        i += 1
    close(len(lines))
    printed = [q["number"] for q in questions]
    for q in questions:  # a language heading tells apart the copies of a question printed twice, no more
        if printed.count(q["number"]) == 1:
            q["language"] = None
    return questions, {"before": before, "passages": passages}


def _passage_numbers(m: re.Match) -> list[int]:
    """The questions "Texto para as questões 10 e 11" / "10 a 12" / "10, 11 e 12" names."""
    first, rest = int(m.group(1)), m.group(2)
    numbers = [first] + [int(n) for n in re.findall(r"\d+", rest)]
    if re.match(r"\s*(?:a|at[ée]|-|–)\s*\d", rest, re.IGNORECASE) and len(numbers) == 2:
        return list(range(numbers[0], numbers[1] + 1))
    return numbers


# --- figures --------------------------------------------------------------------------------------


def _column_of(x0: float, x1: float, gutter: float | None) -> set[int]:
    if gutter is None:
        return {0, 1, 2}
    return {0} | ({1} if x0 < gutter else set()) | ({2} if x1 > gutter else set())


def flag_figures(questions: list[dict], passages: dict, pages: list) -> None:
    """``needs_figure`` on each question a figure of the page belongs to: an image or a drawing the PDF
    carries, or on a scan, ink that is not text (not the word "figura": a question may name a chart it
    does not show, or show one it does not name). A figure belongs to the question of the nearest line
    below it in its column (a figure comes before the command and alternatives it illustrates), or, at
    the foot of a column, of the nearest line above; a passage's figure to every question sharing it."""
    owners: dict[int, list[dict]] = {}
    for q in questions:
        q["needs_figure"] = False
        for ln in [q["heading"], *q["lines"], *passages.get(q["number"], {}).get("lines", [])]:
            owners.setdefault(id(ln), []).append(q)
    placed: dict[int, list] = {}
    for q in questions:
        for ln in [q["heading"], *q["lines"]]:
            placed.setdefault(ln.page, []).append(ln)
    for shared in passages.values():
        for ln in shared["lines"]:
            placed.setdefault(ln.page, []).append(ln)
    for page in pages:
        for x0, top, x1, bottom in page.figures:
            columns = _column_of(x0, x1, page.gutter)
            near = [ln for ln in placed.get(page.page, []) if ln.column in columns or ln.column == 0]
            middle = (top + bottom) / 2
            below = [ln for ln in near if ln.top >= middle]
            line = min(below, key=lambda ln: ln.top) if below else max(near, key=lambda ln: ln.top, default=None)
            for q in owners.get(id(line), []):
                q["needs_figure"] = True


# --- the booklet's and the key's identifiers ------------------------------------------------------
COLOURS = {"azul": "AZUL", "amarelo": "AMARELO", "amarela": "AMARELO", "branco": "BRANCO", "branca": "BRANCO",
           "rosa": "ROSA", "cinza": "CINZA", "verde": "VERDE", "laranja": "LARANJA", "lilás": "LILÁS"}
IDENTIFIERS = {
    "year": re.compile(r"\b(?:enem|gabarito|exame nacional do ensino m[ée]dio)\s*[-–]?\s*(20\d\d)\b"),
    "day": re.compile(r"\b([1-9])\s*[º°o]?\s*dia\b|\bdia\s*([1-9])\s*[º°]"),
    "caderno": re.compile(r"\bcaderno\s*(\d{1,2})\b"),
    "colour": re.compile(rf"\b({'|'.join(COLOURS)})\b"),
}


def identifiers(text: str) -> dict[str, str]:
    """The year, day, caderno and colour a booklet's cover and running headers, or a key, print (the
    most frequent of each where several are found), each only where printed."""
    text = " ".join(unicodedata.normalize("NFC", text).casefold().split())
    found = {}
    for name, pattern in IDENTIFIERS.items():
        values = [next(g for g in m.groups() if g) for m in pattern.finditer(text)]
        if values:
            value = max(sorted(set(values)), key=values.count)
            found[name] = COLOURS[value] if name == "colour" else str(int(value))
    return found


def check_identifiers(booklet: dict, key: dict, exam: Path, key_file: Path) -> dict:
    """The identifiers compared, or an error naming both files when one that both print disagrees."""
    both = [k for k in IDENTIFIERS if k in booklet and k in key]
    wrong = [k for k in both if booklet[k] != key[k]]
    if wrong:
        said = "; ".join(f"{k}: {booklet[k]} in the booklet, {key[k]} in the key" for k in wrong)
        raise InputError(f"{exam} and {key_file.name} are not the same exam ({said}). A key of another colour, day or "
                         f"year joins every question with a wrong letter: put the key of this booklet beside it as "
                         f"{exam.stem}{KEY_SUFFIX}.pdf (ENEM: the key of the same year, day, caderno and colour).")
    return {"booklet": booklet, "key": key, "checked": both,
            "unchecked": [k for k in IDENTIFIERS if k not in both and (k in booklet or k in key)]}


# --- joining the questions with the key -----------------------------------------------------------


def _choose(copies: list[dict], p: ExamsParams) -> tuple[dict | None, str | None]:
    """The copy of a question to keep, or None and why: a question printed once is kept; one printed
    in each foreign language (ENEM's 01-05) keeps the copy of ``p.foreign_language``."""
    if len(copies) == 1:
        return copies[0], None
    languages = [q["language"] for q in copies]
    if None not in languages and len(set(languages)) == len(languages):
        chosen = [q for q in copies if q["language"] == p.foreign_language]
        if chosen:
            return chosen[0], None
        return None, f"no {p.foreign_language} copy (exams.foreign_language)"
    return None, "number found twice"


def _skip_reason(q: dict, answer, p: ExamsParams, exam: str) -> str | None:
    options = q["options"]
    if q["number"] in p.drop_questions.get(exam, []):
        return "dropped (exams.drop_questions)"
    if q.get("twice"):  # which alternatives are this question's is a guess: no item rather than a wrong one
        return "two sets of alternatives (the next question's number not read?)"
    if len(options) < MIN_OPTIONS:
        return f"fewer than {MIN_OPTIONS} alternatives found"
    if not all(options) or not q["question"]:
        return "empty question or alternative (a picture?)"
    if answer is None:
        return "no answer in key"
    if answer == ANNULLED:
        return "annulled"
    if LETTERS.index(answer) >= len(options):
        return "key letter outside the alternatives found"
    if q["needs_figure"] and not p.include_figure_questions:
        return "needs figure"
    return None


def _context_and_question(text: str, shared: str) -> tuple[str, str]:
    """(context, question) of a question's text: its last paragraph is what it asks ("O texto evidencia
    que"); the paragraphs before it (its passage, the source line) and a passage it shares with other
    questions are its context, which a long item may have cut to fit (format.fit), never the question."""
    paragraphs = text.split("\n")
    own, asked = ("\n".join(paragraphs[:-1]), paragraphs[-1]) if len(paragraphs) > 1 else ("", text)
    return "\n".join(part for part in (shared, own) if part), asked


def join_exam(questions: list[dict], key: dict, *, exam: str, doc: str, p: ExamsParams,
              passages: dict | None = None) -> tuple[list[dict], dict]:
    """Items of the questions the key answers, and the exam's report: found, joined, and every
    skipped question under its reason. A key entry that is ``{language: letter}`` (ENEM's two columns
    for 01-05) answers with ``p.foreign_language``'s letter, which the item records."""
    passages = passages or {}
    copies: dict[int, list[dict]] = {}
    for q in questions:
        copies.setdefault(q["number"], []).append(q)
    skipped: dict[str, list[int]] = {}
    items, chosen_language = [], []
    for number, found in copies.items():
        q, reason = _choose(found, p)
        answer = key.get(number)
        if isinstance(answer, dict):
            answer = answer[p.foreign_language]
            chosen_language.append(number)
        reason = reason or _skip_reason(q, answer, p, exam)
        if reason:
            skipped.setdefault(reason, []).append(number)
            continue
        item_id = f"{exam}-q{number:02d}"
        context, question = _context_and_question(q["question"], passages.get(number, {}).get("text", ""))
        split = p.splits.get(exam) or hash_split(item_id, seed=p.seed, validation_share=p.validation_share)
        item = {"id": item_id, "split": split, "context": context, "question": question,
                "answers": q["options"], "label": LETTERS.index(answer),
                "question_type": q["subject"] or "exam", "source": exam, "language": p.language, "doc": doc,
                "page": q["page"], "needs_figure": q["needs_figure"]}
        if q["subject"]:
            item["subject"] = q["subject"]
        if number in chosen_language or len(found) > 1:
            item["foreign_language"] = p.foreign_language
        items.append(item)
    report = {"found": len(copies), "joined": len(items),
              "skipped": {r: {"count": len(ns), "questions": ns} for r, ns in sorted(skipped.items())},
              "key_without_question": sorted(set(key) - set(copies)),
              "printed_twice": sorted(n for n, f in copies.items() if len(f) > 1)}
    if chosen_language:
        report["foreign_language"] = p.foreign_language
    return items, report


# --- reading the files ----------------------------------------------------------------------------


def read_key(key_file: Path, p: ExamsParams) -> tuple[dict, str]:
    """The key (see :func:`parse_key_text`, :func:`parse_key_csv`) and the text it prints (a PDF's)."""
    from gabarito.booklet import read_booklet

    if key_file.suffix.lower() == ".csv":
        return parse_key_csv(read_text(key_file), str(key_file), p.annulled_marks), ""
    pages = read_booklet(key_file.read_bytes(), p.pdf, doc=str(key_file))
    records = [{"page": pg.page, "text": pg.text} for pg in pages]
    return parse_key_text(records, str(key_file), p.annulled_marks), "\n".join(r["text"] for r in records)


def _where_not_found(exam: Path, pages: list) -> str:
    return (f"{exam}: no numbered question found in {len(pages)} page(s) of text. Expected questions headed "
            "\"QUESTÃO 01\" (or \"Questão 1\"), or numbered \"01.\" / \"1)\" or a number alone on its line, "
            "each followed by its alternatives (\"(A)\", \"A)\", or a letter in a box). Is it an exam? Is it "
            "laid out differently? Remove it from the folder or convert it (one question per block).")


def read_exam(exam: Path, key_file: Path, p: ExamsParams) -> tuple[list[dict], dict, list[dict]]:
    """Items, report and review entries (every question read, joined or not) of one exam and its key."""
    from gabarito.booklet import read_booklet

    key, key_text = read_key(key_file, p)
    pages = read_booklet(exam.read_bytes(), p.pdf, doc=str(exam))
    lines = exam_lines(pages, p.pdf)
    questions, around = parse_questions(lines, p.subjects)
    if not questions:
        raise InputError(_where_not_found(exam, pages))
    printed = " ".join([*(ln.text for ln in around["before"]),
                        *(ln.text for pg in pages for ln in pg.lines if ln.marginal)])
    ids = check_identifiers(identifiers(printed), identifiers(key_text), exam, key_file) if p.check_identifiers \
        else {"checked": [], "unchecked": list(IDENTIFIERS)}
    flag_figures(questions, around["passages"], pages)
    # ids from the name as NFC: the same exam copied from a Mac gives the same items
    items, report = join_exam(questions, key, exam=_nfc(exam.stem), doc=_nfc(exam.name), p=p,
                              passages=around["passages"])
    if not items:
        raise InputError(f"{exam}: {len(questions)} questions found, none joined with {key_file.name} "
                         f"({describe({'doc': _nfc(exam.name), **report})}). Does the key belong to this exam?")
    unfound = report["key_without_question"]
    if len(unfound) > p.max_unfound_share * len(key):
        shown = ", ".join(map(str, unfound[:20])) + (", ..." if len(unfound) > 20 else "")
        raise InputError(
            f"{exam}: {len(unfound)} of the {len(key)} questions in {key_file.name} were not found in the exam "
            f"({shown}), more than exams.max_unfound_share={p.max_unfound_share} allows; {len(items)} would be "
            "kept. The exam is probably laid out in a way the reader misses: check those questions' pages, or "
            "convert the exam. If the key also covers another booklet, give this exam only its own questions, "
            "or raise exams.max_unfound_share.")
    unread = sorted(set(p.drop_questions.get(_nfc(exam.stem), [])) - {q["number"] for q in questions})
    if unread:
        raise InputError(f"exams.drop_questions: {exam.stem}: question(s) {', '.join(map(str, unread))} were not "
                         f"read in {exam.name} (see the review file for the numbers read); fix the numbers.")
    leftover = [ln for q in questions for ln in q["leftover"]]
    report = {"doc": _nfc(exam.name), "key": _nfc(key_file.name), "pages": len(pages),
              "pages_ocr": sum(pg.method == "ocr" for pg in pages),
              "pages_before_first_question": sorted({ln.page for ln in around["before"]}),
              "key_answers": len(key), "identifiers": ids, **report,
              "lines_outside_questions": {"count": len(leftover), "pages": sorted({ln.page for ln in leftover})}}
    return items, report, review_entries(questions, items, report, key, around["passages"], p)


def review_entries(questions: list[dict], items: list[dict], report: dict, key: dict, passages: dict,
                   p: ExamsParams) -> list[dict]:
    """One entry per question read, in the booklet's order: what the review file shows."""
    joined = {it["id"].rsplit("-q", 1)[1]: it for it in items}
    reasons = {n: r for r, s in report["skipped"].items() for n in s["questions"]}
    out = []
    for q in questions:
        answer = key.get(q["number"])
        if isinstance(answer, dict):
            answer = " / ".join(f"{lang} {v}" for lang, v in answer.items())
        item = joined.get(f"{q['number']:02d}")
        kept = item is not None and q["language"] in (None, item.get("foreign_language"))
        out.append({"number": q["number"], "page": q["page"], "language": q["language"], "subject": q["subject"],
                    "context": passages.get(q["number"], {}).get("text", ""), "question": q["question"],
                    "options": q["options"], "key": answer, "needs_figure": q["needs_figure"],
                    "status": item["id"] if kept else reasons.get(q["number"], f"other language ({p.foreign_language} kept)")})
    return out


def review_markdown(exams: list[tuple[dict, list[dict]]]) -> str:
    """The review file: per exam, its report's headline, then one section per question."""
    out = ["# Exam items to review", "",
           ("What `gabarito exams` read from each booklet. Check questions, alternatives and key letters before "
           "training on them; to fix a misread question, see docs/own-exams.md#fix-or-drop-a-question."), ""]
    for report, entries in exams:
        out += [f"## {report['doc']}", "", describe(report), ""]
        for e in entries:
            flags = ", ".join(f for f, on in (("needs figure", e["needs_figure"]),
                                               (f"language {e['language']}", e["language"])) if on)
            out += [f"### {e['number']:02d} (page {e['page']}) — {e['status']}",
                    f"key: {e['key'] or '—'}" + (f"; {flags}" if flags else "")
                    + (f"; subject {e['subject']}" if e["subject"] else ""), ""]
            if e["context"]:
                out += ["> " + e["context"].replace("\n", "\n> "), ""]
            out += [e["question"] or "*(no text)*", ""]
            out += [f"- **{LETTERS[i]}** {text}" for i, text in enumerate(e["options"])] + [""]
    return "\n".join(out)


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
    pages = f"{report['pages']} page{'s' * (report['pages'] != 1)}, " if "pages" in report else ""
    line = f"{report['doc']}: {pages}{report['found']} found, {report['joined']} joined"
    line += f"; skipped: {'; '.join(parts)}" if parts else "; none skipped"
    if report["key_without_question"]:
        line += f"; in the key but not found: {', '.join(map(str, report['key_without_question']))}"
    if report.get("foreign_language"):
        twice = report.get("printed_twice")
        line += f"; foreign language {report['foreign_language']}" + (
            f" (questions {', '.join(map(str, twice))} printed twice)" if twice else " (the key's column)")
    ids = report.get("identifiers")
    if ids and not ids["checked"] and not ids["unchecked"] and "booklet" in ids:
        line += "; no year, day, caderno or colour printed on the booklet or the key: their match is not checked"
    elif ids and ids["unchecked"]:
        line += (f"; not checked against the key (printed on one side only): {', '.join(ids['unchecked'])}"
                 f" (booklet {ids['booklet']}, key {ids['key']})" if "booklet" in ids else
                 "; identifiers not checked (exams.check_identifiers: false)")
    outside = report.get("lines_outside_questions", {})
    if outside.get("count"):
        line += f"; {outside['count']} line(s) outside any question (pages {', '.join(map(str, outside['pages']))}), in the review file"
    return line


# --- command: gabarito exams ----------------------------------------------------------------------
@click.command("exams")
@click.option("--exam-dir", type=click.Path(file_okay=False), required=True,
              help="folder of <exam>.pdf + <exam>.gabarito.pdf (or .gabarito.csv) pairs")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="multiple-choice items (JSONL)")
@click.option("--report", type=click.Path(dir_okay=False), required=True, help="per-exam report (JSON)")
@click.option("--review", type=click.Path(dir_okay=False), default=None,
              help="write every question read, joined or not, here to check by eye (Markdown)")
@params_option
@user_errors
def command(exam_dir, out, report, review, params_path):
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
    named = {f"exams.{knob}": set(getattr(p, knob)) for knob in ("splits", "drop_questions")}
    for knob, names in named.items():  # a typo would hold nothing out, or drop nothing: silently
        unknown = sorted(names - {_nfc(exam.stem) for exam, _ in pairs})
        if unknown:
            raise InputError(f"{knob} names {', '.join(unknown)}, not an exam in {exam_dir} (exams: "
                             f"{', '.join(sorted(_nfc(e.stem) for e, _ in pairs)) or 'none'}). Use the exam's file "
                             "name without .pdf.")
    items, reports, reviewed = [], [], []
    for exam, key_file in pairs:
        exam_items, exam_report, entries = read_exam(exam, key_file, p)
        log(f"exams: {describe(exam_report)}")
        items += exam_items
        reports.append(exam_report)
        reviewed.append((exam_report, entries))
    write_jsonl(out, items)
    if review:
        write_text(review, review_markdown(reviewed))
    summary = summarize(reports, ignored)
    write_json(report, summary)
    log(f"exams: {summary['exams']} exam(s), {summary['found']} questions found, {summary['joined']} items -> {out}")
