"""The exam reader on booklets laid out as the big Brazilian exams print them (tests/booklets.py, written
from the real print and not from the reader): ENEM as INEP prints it (cover, boxed letters with no
punctuation, running headers in two parts, 01-05 in two languages, shared passages, drawn and raster
figures, essay and draft pages, four colours with their keys), FUVEST (the number alone on its line) and
FGV/OAB (one column, four options). Scored as a user would (tests.booklets.score): an item is right when
its text and each option are at least 0.9 similar to the source and its letter is right.

The scans of the same booklets are OCR'd in benchmarks/exam_layouts.py (minutes on 2 cores); here one
short scanned booklet keeps the OCR path honest.
"""

from __future__ import annotations

import json
import shutil
from functools import cache

import pytest

from gabarito.io import InputError
from gabarito.params import ExamsParams
from stages.exams import read_exam
from tests import booklets
from tests.cli_runner import invoke

needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract not installed")


@cache
def _booklet(kind: str, **kw):
    return {"inep": booklets.inep_booklet, "fuvest": booklets.fuvest_booklet, "fgv": booklets.fgv_booklet}[kind](**kw)


def _read(tmp_path, booklet, name="prova", **params):
    booklets.write_booklet(tmp_path, name, booklet)
    return read_exam(tmp_path / f"{name}.pdf", tmp_path / f"{name}.gabarito.pdf", ExamsParams(**params))


def _score(items, booklet, language="ingles"):
    truth = [t for t in booklet.truth if t["language"] in (None, language)]
    marks = booklet.meta["headers"] + booklet.meta["footers"] + list(booklet.meta.get("page_codes") or [])
    return booklets.score(items, truth, headers=marks)


@pytest.mark.parametrize("kind", ["inep", "fuvest", "fgv"])
def test_a_born_digital_booklet_reads_right_with_nothing_from_covers_headers_or_essays(tmp_path, kind):
    booklet = _booklet(kind)
    items, report, review = _read(tmp_path, booklet)
    score = _score(items, booklet)
    assert score["share_right_no_figure"] >= 0.95, score["wrong"]
    assert score["extra"] == [] and score["duplicates"] == [] and score["annulled_items"] == []
    assert score["header_leaks"] == []  # no running header, footer or page code inside an item
    outside = set(booklet.meta["cover_pages"] + booklet.meta["essay_pages"] + booklet.meta["draft_pages"])
    assert not [i["id"] for i in items if i["page"] in outside]
    # a figure is flagged from the page: every figure question, and no other
    flagged = {(e["number"], e["language"]) for e in review if e["needs_figure"]}
    assert flagged == {(t["number"], t["language"]) for t in booklet.truth if t["needs_figure"]}
    # nothing dropped without its reason: each answerable question is an item or skipped by name
    skipped = {n for s in report["skipped"].values() for n in s["questions"]}
    assert {t["number"] for t in booklet.truth} <= {int(i["id"].rsplit("q", 1)[1]) for i in items} | skipped
    assert report["key_without_question"] == []


def test_enem_day_one_takes_the_chosen_foreign_language_copy_and_key_column(tmp_path):
    booklet = _booklet("inep")
    english, report, _ = _read(tmp_path / "en", booklet)
    spanish, _, _ = _read(tmp_path / "es", booklet, foreign_language="espanhol")
    assert report["printed_twice"] == [1, 2, 3, 4, 5] and report["foreign_language"] == "ingles"
    for items, language in ((english, "ingles"), (spanish, "espanhol")):
        first = [i for i in items if int(i["id"].rsplit("q", 1)[1]) <= 5]
        assert len(first) == 5 and {i["foreign_language"] for i in first} == {language}
        truth = {t["number"]: t for t in booklet.truth if t["language"] == language}
        assert [i["label"] for i in first] == ["ABCDE".index(truth[int(i["id"][-2:])]["letter"]) for i in first]
        assert _score(first, booklet, language)["right"] == 5
    assert [i["question"] for i in english[:5]] != [i["question"] for i in spanish[:5]]


def test_a_shared_passage_is_the_context_of_each_question_it_serves(tmp_path):
    booklet = _booklet("fuvest")
    items, _, _ = _read(tmp_path, booklet)
    shared = [t for t in booklet.truth if t["context"]]
    assert len(shared) >= 4
    by_number = {int(i["id"].rsplit("q", 1)[1]): i for i in items}
    for t in shared:
        item = by_number[t["number"]]
        assert booklets._ratio(item["context"], t["context"]) >= 0.9, t["number"]
        assert booklets._ratio(item["question"], t["question"]) >= 0.9, t["number"]


@pytest.mark.parametrize("colour, day, year", [("AMARELO", 1, 2024), ("AZUL", 2, 2024), ("AZUL", 1, 2023)])
def test_a_key_of_another_colour_day_or_year_is_refused_naming_both(tmp_path, colour, day, year):
    booklet = _booklet("inep")
    booklets.write_booklet(tmp_path, "prova", booklet)
    (tmp_path / "prova.gabarito.pdf").write_bytes(booklets.inep_key(colour, day, year))
    with pytest.raises(InputError) as err:
        read_exam(tmp_path / "prova.pdf", tmp_path / "prova.gabarito.pdf", ExamsParams(max_unfound_share=1.0))
    message = str(err.value)
    assert "prova.pdf and prova.gabarito.pdf are not the same exam" in message
    wrong = {"colour": ("AZUL", colour), "day": ("1", str(day)), "year": ("2024", str(year))}
    for name, (ours, theirs) in wrong.items():
        if ours != theirs:
            assert f"{name}: {ours} in the booklet, {theirs} in the key" in message


@pytest.mark.parametrize("colour", ["AMARELO", "BRANCO", "ROSA"])
def test_each_colour_reads_with_its_own_key(tmp_path, colour):
    booklet = booklets.inep_booklet(colour=colour)
    items, report, _ = _read(tmp_path, booklet)
    assert report["identifiers"]["checked"] == ["year", "day", "caderno", "colour"]
    assert _score(items, booklet)["share_right_no_figure"] >= 0.95


def test_the_command_writes_a_review_of_every_question_and_logs_what_it_did(tmp_path, repo_root):
    booklets.write_booklet(tmp_path / "exams", "enem", _booklet("inep"))
    (tmp_path / "exams" / "enem.truth.json").unlink()
    result = invoke(["exams", "--exam-dir", "exams", "--out", "items.jsonl", "--report", "exams.json",
                     "--review", "review.md", "--params", str(repo_root / "params.yaml")], cwd=tmp_path)
    assert result.exit_code == 0, result.output
    log = " ".join(result.output.split())
    assert "enem.pdf: 36 pages, 90 found, 81 joined; skipped: annulled 1 (q68); needs figure 8 (" in log
    assert "foreign language ingles (questions 1, 2, 3, 4, 5 printed twice)" in log
    review = (tmp_path / "review.md").read_text(encoding="utf-8")
    assert review.count("\n### ") == 95  # every question read, both copies of 01-05 included
    assert "### 68 (page" in review and "— annulled" in review
    assert "— other language (ingles kept)" in review
    report = json.loads((tmp_path / "exams.json").read_text())["report"]["enem.pdf"]
    assert report["identifiers"]["key"] == {"year": "2024", "day": "1", "caderno": "1", "colour": "AZUL"}
    assert report["key_answers"] == 90 and report["pages"] == 36


def test_a_question_dropped_by_the_user_is_skipped_by_name(tmp_path):
    items, report, _ = _read(tmp_path, _booklet("fgv"), drop_questions={"prova": [3, 12]})
    assert report["skipped"]["dropped (exams.drop_questions)"] == {"count": 2, "questions": [3, 12]}
    assert not [i for i in items if i["id"] in ("prova-q03", "prova-q12")]


@needs_tesseract
def test_a_scanned_booklet_is_read_by_ocr_page_by_page(tmp_path):
    """FGV's scan, cut to its cover and first pages: boxed-less "(A)" letters garbled by OCR, a cover
    with numbered instructions, pages OCR'd in parallel."""
    import pypdfium2 as pdfium

    booklet = _booklet("fgv", scan=True)
    pdf = pdfium.PdfDocument(booklet.pdf)
    short = pdfium.PdfDocument.new()
    short.import_pages(pdf, list(range(4)))
    booklets.write_booklet(tmp_path, "prova", booklet)
    short.save(tmp_path / "prova.pdf")
    items, report, _ = read_exam(tmp_path / "prova.pdf", tmp_path / "prova.gabarito.pdf",
                                 ExamsParams(max_unfound_share=1.0))
    assert report["pages_ocr"] == 4
    numbers = sorted({t["number"] for t in booklet.truth if t["page"] <= 4})
    score = _score(items, booklet)
    right = score["right"] / len(numbers)
    assert right >= 0.85, (score["wrong"], score["missing"][:10])
    assert score["extra"] == [] and score["header_leaks"] == []
