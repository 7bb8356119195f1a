"""stages/exams.py's plain functions: answer keys, question parsing, figure words, pairing, joining."""

from __future__ import annotations

import re
import unicodedata

import pytest

from gabarito.booklet import Line, Page, Word
from gabarito.io import InputError
from gabarito.params import ExamsParams
from stages.exams import (
    ANNULLED,
    exam_lines,
    join_exam,
    pair_files,
    parse_key_csv,
    parse_key_text,
    parse_questions,
    text_pages,
)
from tests.fake_secrets import FAKE_KEY

MARKS = ["ANULADA", "ANULADO", "*", "X"]


def _pages(*texts):
    return [{"page": i, "text": t} for i, t in enumerate(texts, 1)]


def _parse(lines, subjects=None):
    """parse_questions on (page, text) lines, a blank text a paragraph gap; the questions' headline keys."""
    pages: dict[int, list[str]] = {}
    for page, text in lines:
        pages.setdefault(page, []).append(text)
    flat = [ln for pg in text_pages([{"page": n, "text": "\n".join(t)} for n, t in pages.items()]) for ln in pg.lines]
    questions, _ = parse_questions(flat, subjects or {})
    keys = ("number", "page", "subject", "question", "options")
    return [{k: q[k] for k in keys} for q in questions]


def test_key_pairs_in_every_common_layout():
    text = ("GABARITO – CADERNO 1 – AZUL – 2025 (questões 1 a 45)\n"
            "01 C   02 A   03 ANULADA   04 E\n"
            "5 - B  6 – D  7. A  8: *\n"
            "09 | x | 10 | J\n"
            "11) Anulado")
    assert parse_key_text(_pages(text), "k.pdf", MARKS) == {
        1: "C", 2: "A", 3: ANNULLED, 4: "E", 5: "B", 6: "D", 7: "A", 8: ANNULLED, 9: ANNULLED, 10: "J", 11: ANNULLED}


def test_a_key_number_with_two_answers_and_a_key_with_none_are_errors():
    with pytest.raises(InputError, match=r"k.pdf page 2: question 4 has two answers \(C, D\)"):
        parse_key_text(_pages("04 C", "04 D"), "k.pdf", MARKS)
    with pytest.raises(InputError, match="k.pdf: no answer found"):
        parse_key_text(_pages("Resultado final do concurso"), "k.pdf", MARKS)


def test_csv_key_comma_or_semicolon_and_annulled_marks():
    assert parse_key_csv("questao,resposta\n1,b\n2,ANULADA\n\n3,X\n", "k.csv", MARKS) == {1: "B", 2: ANNULLED, 3: ANNULLED}
    assert parse_key_csv("\ufeffQuestao;Resposta\n01;E\n", "k.csv", MARKS) == {1: "E"}
    with pytest.raises(InputError, match="k.csv:1: expected the columns questao,resposta; got numero,letra"):
        parse_key_csv("numero,letra\n1,A\n", "k.csv", MARKS)
    with pytest.raises(InputError, match="k.csv:2: questao 'um' is not a question number"):
        parse_key_csv("questao,resposta\num,A\n", "k.csv", MARKS)


def test_csv_key_headed_as_official_keys_are_in_portuguese():
    assert parse_key_csv("Questão;Gabarito\r\n1;a\r\n2;E\r\n", "k.csv", MARKS) == {1: "A", 2: "E"}
    assert parse_key_csv(" QUESTÃO , RESPOSTA \n3,c\n", "k.csv", MARKS) == {3: "C"}


def test_a_csv_key_not_in_utf8_names_its_line(tmp_path):
    from gabarito.io import read_text

    key = tmp_path / "prova.gabarito.csv"
    key.write_bytes("questao;resposta\r\n1;A\r\n2;ANULADA\r\n".encode("cp1252"))
    assert read_text(key) == "questao;resposta\r\n1;A\r\n2;ANULADA\r\n"  # ASCII is UTF-8
    key.write_bytes("Questão;Resposta\r\n1;A\r\n".encode("cp1252"))
    with pytest.raises(InputError, match=rf"^{re.escape(str(key))}:1: not UTF-8 text \(byte 0xe3: .*\"CSV UTF-8\""):
        read_text(key)


def test_questions_numbered_in_every_style_with_alternatives_in_letter_order():
    lines = [(1, x) for x in [
        "Leia as instruções antes de começar.",        # before the first question: not a question
        "Questão 1", "Quanto é 1 + 1?", "a) 1", "b) 2",
        "2. Quais são verdadeiras?", "1. O Sol é uma estrela.",  # not question 3: a list in the stem
        "A. só a primeira", "B. nenhuma", "C. todas",
        "QUESTÃO Nº 7 – Escolha a cor do céu:", "(A) azul", "(C) verde", "(B) cinza",  # (C) out of order
        "07) não é a questão 8"]]
    assert _parse(lines) == [
        {"number": 1, "page": 1, "subject": None, "question": "Quanto é 1 + 1?", "options": ["1", "2"]},
        {"number": 2, "page": 1, "subject": None, "question": "Quais são verdadeiras? 1. O Sol é uma estrela.",
         "options": ["só a primeira", "nenhuma", "todas"]},
        {"number": 7, "page": 1, "subject": None, "question": "Escolha a cor do céu:",
         "options": ["azul (C) verde", "cinza 07) não é a questão 8"]}]


def test_ten_alternatives_at_most_and_a_question_across_pages_keeps_its_first_page():
    lines = [(3, "QUESTÃO 05"), (3, "Escolha."), *[(3 if k < 6 else 4, f"({c}) op{c}") for k, c in enumerate("ABCDEFGHIJ")],
             (4, "(K) continua a J")]
    (q,) = _parse(lines)
    assert (q["page"], len(q["options"]), q["options"][-1]) == (3, 10, "opJ (K) continua a J")


def test_paragraph_gaps_hyphens_and_headings_that_wrap():
    lines = [(1, "CIÊNCIAS DA NATUREZA E"), (1, "SUAS TECNOLOGIAS"), (1, "QUESTÃO 01"), (1, "Um texto que se"),
             (1, "divide em li-"), (1, "nhas."), (1, ""), (1, "Qual é a pergunta?"), (1, "(A) esta"), (1, "(B) aquela")]
    (q,) = _parse(lines, {"Ciências da Natureza e suas Tecnologias": "natureza"})
    assert (q["question"], q["subject"]) == ("Um texto que se divide em linhas.\nQual é a pergunta?", "natureza")


def _line(page, top, text, x0=50.0):
    words, x = [], x0
    for w in text.split():
        words.append(Word(x, top, x + 5.0 * len(w), top + 10.0, w))
        x += 5.0 * len(w) + 3.0
    return Line(page, words)


def test_running_headers_go_by_their_place_but_a_question_number_atop_every_page_stays():
    """A header printed in two parts (left and right) and a footer with the page number, at the same
    place on every page, go; "QUESTÃO 0n" atop every page, and body text that repeats, stay."""
    stems = {1: "Quanto vale a razão?", 2: "Qual é a cor do céu?", 3: "Onde nasce o rio?"}
    pages = [Page(n, 595.0, 842.0, "text", [
        _line(n, 20, "ENEM2024"), _line(n, 20, "1º DIA • CADERNO 1 • AZUL", x0=400), _line(n, 70, f"QUESTÃO 0{n}"),
        _line(n, 84, stems[n]), _line(n, 98, "(A) 3/8."), _line(n, 112, "(B) x"), _line(n, 126, "Leia com atenção."),
        _line(n, 810, f"LC - 1º dia | Caderno 1 - AZUL - Página {n + 1}"), _line(n, 824, str(n + 1), x0=290)])
        for n in (1, 2, 3)]
    lines = [ln.text for ln in exam_lines(pages, ExamsParams().pdf)]
    assert lines[:6] == ["QUESTÃO 01", "Quanto vale a razão?", "(A) 3/8.", "(B) x", "Leia com atenção.", "QUESTÃO 02"]
    assert len(lines) == 15


def test_a_question_heading_split_by_its_accent_and_as_ocr_reads_it():
    lines = [(1, "QUEST O 51"), (1, "Ã"), (1, "Qual?"), (1, "(A) um"), (1, "(B) dois"),
             (1, "Questão : 85"), (1, "Qual?"), (1, "(A) um"), (1, "(B) dois"),
             (1, "qu ESTÃO 86"), (1, "Qual?"), (1, "(A) um"), (1, "(B) dois"),
             (1, "“Questão 11"), (1, "Qual?"), (1, "(A) um"), (1, "(B) dois")]
    pages = text_pages([{"page": 1, "text": "\n".join(t for _, t in lines)}])
    questions, _ = parse_questions(exam_lines(pages, ExamsParams().pdf), {})
    assert [(q["number"], q["question"], q["options"]) for q in questions] == [
        (n, "Qual?", ["um", "dois"]) for n in (51, 85, 86, 11)]


def _q(number, options=("a", "b", "c", "d", "e"), question="Qual?", needs_figure=False, language=None):
    return {"number": number, "page": 1, "subject": None, "question": question, "options": list(options),
            "needs_figure": needs_figure, "language": language}


def test_join_skips_each_question_under_its_reason():
    questions = [_q(1), _q(2), _q(3, options=("a", "b", "c", "d")), _q(4, needs_figure=True), _q(5),
                 _q(6, options=("a",)), _q(7, options=("a", "", "c")), _q(1)]
    key = {1: "A", 3: "E", 4: "B", 5: ANNULLED, 6: "A", 7: "C", 9: "D"}
    items, report = join_exam(questions, key, exam="p", doc="p.pdf", p=ExamsParams())
    assert items == []  # question 1, printed twice without a language to tell the copies apart, is neither
    assert report == {"found": 7, "joined": 0, "key_without_question": [9], "printed_twice": [1], "skipped": {
        "annulled": {"count": 1, "questions": [5]},
        "empty question or alternative (a picture?)": {"count": 1, "questions": [7]},
        "fewer than 2 alternatives found": {"count": 1, "questions": [6]},
        "key letter outside the alternatives found": {"count": 1, "questions": [3]},
        "needs figure": {"count": 1, "questions": [4]},
        "no answer in key": {"count": 1, "questions": [2]},
        "number found twice": {"count": 1, "questions": [1]}}}


def test_splits_follow_the_seeded_hash_of_the_id():
    from gabarito.items import hash_split

    questions = [_q(n) for n in range(1, 41)]
    p = ExamsParams(validation_share=0.5, seed=3)
    items, _ = join_exam(questions, {n: "B" for n in range(1, 41)}, exam="p", doc="p.pdf", p=p)
    assert [i["split"] for i in items] == [hash_split(f"p-q{n:02d}", seed=3, validation_share=0.5) for n in range(1, 41)]
    assert 10 < sum(i["split"] == "validation" for i in items) < 30


def test_pairing_by_name(tmp_path):
    for name in ("a.pdf", "a.gabarito.pdf", "b.pdf", "b.gabarito.csv", "notas.txt"):
        (tmp_path / name).write_bytes(b"")
    pairs, other = pair_files(tmp_path)
    assert [(e.name, k.name) for e, k in pairs] == [("a.pdf", "a.gabarito.pdf"), ("b.pdf", "b.gabarito.csv")]
    assert other == ["notas.txt"]
    (tmp_path / "a.gabarito.csv").write_bytes(b"")
    with pytest.raises(InputError, match=r"a.pdf: two answer keys \(a.gabarito.pdf, a.gabarito.csv\); keep one"):
        pair_files(tmp_path)


def test_a_key_whose_extension_is_in_capitals_pairs_with_its_exam(tmp_path):
    """PROVA.GABARITO.PDF, as Windows and scanners write it, was "no answer key: put it beside the exam as
    p.gabarito.pdf" while it was there."""
    for name in ("p.pdf", "p.gabarito.CSV", "q.PDF", "q.gabarito.Pdf", "R.PDF", "R.GABARITO.PDF"):
        (tmp_path / name).write_bytes(b"")
    pairs, other = pair_files(tmp_path)
    assert [(e.name, k.name) for e, k in pairs] == [("R.PDF", "R.GABARITO.PDF"), ("p.pdf", "p.gabarito.CSV"),
                                                    ("q.PDF", "q.gabarito.Pdf")]
    assert other == []


def test_a_key_in_a_format_the_stage_cannot_read_is_an_error_not_an_ignored_file(tmp_path):
    for name in ("p.pdf", "p.gabarito.xlsx"):
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(InputError, match=r"p.gabarito.xlsx: an answer key must be a PDF or a CSV .*save it as "
                                         r"p.gabarito.pdf or p.gabarito.csv"):
        pair_files(tmp_path)


# --- issue 23: secrets in messages, links out of the project, names as machines write them, big exams ----
ENV_DUMP = f"IS_SANDBOX=yes\x00PATH=/usr/bin\x00OPENAI_API_KEY={FAKE_KEY}\x00HOME=/root\x00LANG=C.UTF-8\x00"


def test_a_csv_key_holding_an_environment_dump_quotes_no_key_and_no_nul(monkeypatch):
    """X.gabarito.csv linked to /proc/self/environ: the message printed the whole environment, NULs and all."""
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    for text in (ENV_DUMP * 20, f"questao,resposta\n1,{ENV_DUMP}\n", f"questao,resposta\n{ENV_DUMP},A\n"):
        with pytest.raises(InputError) as err:
            parse_key_csv(text, "X.gabarito.csv", MARKS)
        message = str(err.value)
        assert "TEST" not in message and "\x00" not in message and len(message) < 250, message
        assert message.startswith("X.gabarito.csv:"), message


def test_an_exam_and_its_key_pair_whichever_unicode_form_their_names_are_in(tmp_path):
    exam = unicodedata.normalize("NFC", "Simulação única")
    key = unicodedata.normalize("NFD", "Simulação única") + ".gabarito.pdf"  # as macOS writes it
    (tmp_path / f"{exam}.pdf").write_bytes(b"")
    (tmp_path / key).write_bytes(b"")
    pairs, other = pair_files(tmp_path)
    assert [(e.name, k.name) for e, k in pairs] == [(f"{exam}.pdf", key)] and other == []


def test_prova_and_Prova_each_with_its_own_key_are_two_exams(tmp_path):
    for name in ("prova.pdf", "prova.gabarito.pdf", "Prova.pdf", "Prova.gabarito.csv"):
        (tmp_path / name).write_bytes(b"")
    pairs, _ = pair_files(tmp_path)
    assert sorted((e.name, k.name) for e, k in pairs) == [("Prova.pdf", "Prova.gabarito.csv"),
                                                          ("prova.pdf", "prova.gabarito.pdf")]
    (tmp_path / "Prova.gabarito.csv").unlink()
    with pytest.raises(InputError, match=r"Prova.pdf: no answer key \(prova.gabarito.pdf differs from the exam's "
                                         r"name in case only: rename one to match\)"):
        pair_files(tmp_path)


def test_one_name_in_two_unicode_forms_is_named_as_such(tmp_path):
    nfc, nfd = (unicodedata.normalize(form, "Simulação.pdf") for form in ("NFC", "NFD"))
    (tmp_path / nfc).write_bytes(b"")
    (tmp_path / nfd).write_bytes(b"")
    with pytest.raises(InputError, match=r"two files are named Simulação.pdf, spelled in two Unicode forms .*"
                                         r"Keep one of them"):
        pair_files(tmp_path)


def test_a_file_linked_from_outside_the_project_is_refused(tmp_path):
    root = tmp_path / "repo"
    exams = root / "data/raw/exams"
    exams.mkdir(parents=True)
    (tmp_path / "secret.csv").write_text("x")
    (exams / "p.pdf").write_bytes(b"")
    (exams / "p.gabarito.csv").symlink_to(tmp_path / "secret.csv")
    with pytest.raises(InputError, match=r"p.gabarito.csv: a link to .*secret.csv, outside the project\. .*"
                                         r"`dvc import-url .*secret.csv .*p.gabarito.csv`"):
        pair_files(exams, root=root)
    (exams / "p.gabarito.csv").unlink()
    (exams / "p.gabarito.csv").symlink_to(exams / "p.pdf")  # a link inside the project is fine
    assert len(pair_files(exams, root=root)[0]) == 1
    (tmp_path / "elsewhere").mkdir()
    (root / "data/raw/linked").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(InputError, match=r"linked: a link to .*elsewhere, outside the project"):
        pair_files(root / "data/raw/linked", root=root)


def test_question_numbers_of_four_digits_and_more_are_numbers():
    """A 2,000-question file stopped at 999: 1,001 questions were "not found"."""
    lines = [(1, x) for n in (998, 999, 1000, 1001, 12345) for x in (f"{n}. Quanto é {n}?", "A) sim", "B) não")]
    lines[6] = (1, "QUESTÃO 1000")
    assert [q["number"] for q in _parse(lines)] == [998, 999, 1000, 1001]
    assert _parse([(1, "Questão 12345"), (1, "a) x"), (1, "b) y")])[0]["number"] == 12345
    key = parse_key_text(_pages("998 C  999 D  1000 A  1001 ANULADA  2000 - B  12345 E"), "k.pdf", MARKS)
    assert key == {998: "C", 999: "D", 1000: "A", 1001: ANNULLED, 2000: "B", 12345: "E"}
    assert parse_key_text(_pages("1.000 C 1,5 D 7 A"), "k.pdf", MARKS) == {7: "A"}  # a thousands mark, a decimal
