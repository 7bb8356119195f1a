"""The exam reader's plain parts on lines and pages built here: alternatives as booklets print them and
as OCR garbles them, the run of question numbers, ENEM's language option, the identifiers booklet and
key print, running headers by their place, figures from a scan's ink, and the passage as context."""

from __future__ import annotations

import numpy as np
import pytest

from gabarito.booklet import Line, Page, Word, ink_figures, mark_marginal
from gabarito.io import InputError
from gabarito.params import ExamsParams
from stages.exams import (
    _chain,
    _context_and_question,
    _tidy,
    check_identifiers,
    find_options,
    identifiers,
    join_exam,
    parse_key_text,
)

MARKS = ["ANULADA", "ANULADO", "*", "X"]


def _line(text, *, x0=50.0, top=0.0, gap=6.0, boxed="", ocr=False, page=1):
    """A line of ``text`` whose first word is ``gap`` points from the second (a word space is ~3)."""
    words, x = [], x0
    for k, w in enumerate(text.split()):
        words.append(Word(x, top, x + 6.0 * len(w), top + 10.0, w))
        x += 6.0 * len(w) + (gap if k == 0 else 3.0)
    return Line(page, words, boxed=boxed, ocr=ocr)


def _options(lines):
    body = [_line(t) if isinstance(t, str) else t for t in lines]
    return [(i, text) for i, text in find_options(body)]


def test_boxed_letters_open_alternatives_and_an_article_in_the_stem_does_not():
    body = [_line("A mudança de hábitos foi rápida.", gap=3.0), _line("Nesse texto, o autor"),
            _line("reforça a tese.", boxed="A"), _line("critica a tese.", boxed="B"),
            _line("ignora a tese.", boxed="C"), _line("E ainda nega tudo.", gap=3.0), _line("resume a tese.", boxed="D")]
    assert _options(body) == [(2, "reforça a tese."), (3, "critica a tese."), (4, "ignora a tese."),
                              (6, "resume a tese.")]


def test_bare_capitals_set_apart_from_their_text_are_alternatives():
    body = [_line("Qual é a cor?"), _line("A azul", gap=9.0), _line("B verde", gap=9.0), _line("C cinza", gap=9.0)]
    assert _options(body) == [(1, "azul"), (2, "verde"), (3, "cinza")]
    prose = [_line("Qual é a cor?"), _line("A tarde caiu.", gap=3.0), _line("B era o nome.", gap=3.0)]
    assert _options(prose) == []  # two bare capitals in prose are not a run of alternatives


def test_ocr_garbles_a_box_or_loses_a_letter_the_run_still_reads_each_alternative():
    garbled = [_line("Segundo o texto,", ocr=True), _line("- (A) Reforçar a memória coletiva.", ocr=True),
               _line("[B) (B) Ironizar a desigualdade regional.", ocr=True),      # the box read twice
               _line("(3) (8) Combater a diversidade linguística.", ocr=True),    # C's box read as "(3) (8)"
               _line("“(D) Denunciar as formas de participação", ocr=True), _line("política.", ocr=True),
               _line("(E) Combater o valor da experiência.", ocr=True)]
    assert [t for _, t in _options(garbled)] == [
        "Reforçar a memória coletiva.", "Ironizar a desigualdade regional.", "Combater a diversidade linguística.",
        "Denunciar as formas de participação", "Combater o valor da experiência."]
    lost = [_line("Segundo o texto,", ocr=True), _line("(A) Reforçar a memória coletiva na", ocr=True),
            _line("sociedade. =", ocr=True), _line("Ironizar a desigualdade regional.", ocr=True),  # B's box lost
            _line("(C) Combater a diversidade.", ocr=True), _line("(D) Denunciar a política.", ocr=True)]
    assert [t for _, t in _options(lost)] == [
        "Reforçar a memória coletiva na", "Ironizar a desigualdade regional.", "Combater a diversidade.",
        "Denunciar a política."]


def test_a_letter_ocr_misread_is_taken_by_its_place_and_one_printed_out_of_order_is_text():
    misread = ["Pergunta?", "(A) um.", "(B) dois.", "(E) três.", "(D) quatro.", "(E) cinco."]
    assert [t for _, t in _options(misread)] == ["um.", "dois.", "três.", "quatro.", "cinco."]
    shuffled = ["Pergunta?", "(A) um", "(C) dois", "(B) três"]
    assert [t for _, t in _options(shuffled)] == ["um", "três"]


def test_specks_after_a_sentence_end_go_only_from_scanned_lines():
    assert _tidy("naturáis. =", True) == "naturáis."
    assert _tidy("religiosas. di:", True) == "religiosas."
    assert _tidy("hipótese. ]", True) == "hipótese."
    assert _tidy("disse o Sr. Luz", True) == "disse o Sr. Luz"
    assert _tidy("naturáis. =", False) == "naturáis. ="


def test_the_run_of_numbers_skips_the_cover_a_list_in_a_passage_and_a_number_ocr_lost():
    cover = [(k, k + 1, False) for k in range(9)]                          # instructions 1-9
    exam = [(100 + k, n, False) for k, n in enumerate([1, 2, 3, 1, 2, 4, 5, 7, 8, 9, 10])]  # a list; 6 lost
    chain = _chain(cover + exam)
    assert sorted(chain) == [100, 101, 102, 105, 106, 107, 108, 109, 110]


def test_enem_day_one_key_columns_and_the_copy_of_the_chosen_language():
    text = "QUESTÃO GABARITO\nINGLÊS ESPANHOL\n1 C A\n2 A D\n6 E\n7 Anulado"
    key = parse_key_text([{"page": 1, "text": text}], "k.pdf", MARKS)
    assert key == {1: {"ingles": "C", "espanhol": "A"}, 2: {"ingles": "A", "espanhol": "D"}, 6: "E", 7: "annulled"}
    reversed_header = parse_key_text([{"page": 1, "text": "ESPANHOL INGLÊS\n1 C A"}], "k.pdf", MARKS)
    assert reversed_header == {1: {"espanhol": "C", "ingles": "A"}}
    with pytest.raises(InputError, match="two answers on one line, and no INGLÊS / ESPANHOL header"):
        parse_key_text([{"page": 1, "text": "1 C A\n2 B D"}], "k.pdf", MARKS)

    def q(number, language, text):
        return {"number": number, "page": 1, "subject": None, "question": text, "options": ["x", "y", "z"],
                "needs_figure": False, "language": language}

    questions = [q(1, "ingles", "In English?"), q(1, "espanhol", "¿En español?"), q(6, None, "Em português?")]
    for language, text, label in (("ingles", "In English?", 2), ("espanhol", "¿En español?", 0)):
        items, report = join_exam(questions, {**key, 6: "B"}, exam="p", doc="p.pdf",
                                  p=ExamsParams(foreign_language=language))
        first = items[0]
        assert (first["question"], first["label"], first["foreign_language"]) == (text, label, language)
        assert report["printed_twice"] == [1] and report["foreign_language"] == language
        assert "foreign_language" not in items[1]


def test_identifiers_as_booklets_and_real_keys_print_them_and_a_mismatch_names_both(tmp_path):
    assert identifiers("ENEM2024 1º DIA • CADERNO 1 • AZUL LC - 1º dia | Caderno 1 - AZUL") == {
        "year": "2024", "day": "1", "caderno": "1", "colour": "AZUL"}
    assert identifiers("CADERNO 7 Azul Gabarito 2023 2dia\nº") == {
        "year": "2023", "day": "2", "caderno": "7", "colour": "AZUL"}
    assert identifiers("o céu azul do sertão, em 2024") == {"colour": "AZUL"}  # no year without its exam's name
    ok = check_identifiers({"year": "2024", "colour": "AZUL"}, {"colour": "AZUL"}, tmp_path / "p.pdf",
                           tmp_path / "p.gabarito.pdf")
    assert (ok["checked"], ok["unchecked"]) == (["colour"], ["year"])
    with pytest.raises(InputError, match=r"p.pdf and p.gabarito.pdf are not the same exam \(day: 1 in the booklet, "
                                         r"2 in the key; colour: AZUL in the booklet, AMARELO in the key\)"):
        check_identifiers({"day": "1", "colour": "AZUL"}, {"day": "2", "colour": "AMARELO"}, tmp_path / "p.pdf",
                          tmp_path / "p.gabarito.pdf")


def test_headers_and_footers_go_by_their_place_even_as_ocr_varies_them():
    footers = ["LC - 1º dia | Caderno 1 - AZUL [5]", "É EX “LC - 1º dia |-Caderno 1 - AZUL", "LC - 1º dia | Caderno 1 - AZUL 7"]
    pages = [Page(n, 595.0, 842.0, "ocr", [_line("ENEM2024 |" if n == 2 else "ENEM2024", top=20, page=n),
                                          _line("O texto do meio da página.", top=400, page=n),
                                          _line(footers[n - 1], top=810, page=n)]) for n in (1, 2, 3)]
    mark_marginal(pages, margin_share=0.08, min_share=0.5, similarity=0.85)
    assert [[ln.marginal for ln in pg.lines] for pg in pages] == [[True, False, True]] * 3


def test_a_scans_figure_is_ink_no_word_covers_and_specks_are_not():
    grid = np.zeros((421, 298))  # an A4 page in 2 pt cells
    grid[100:150, 40:120] = 0.0
    grid[100, 40:120] = grid[149, 40:120] = grid[100:150, 40] = grid[100:150, 119] = 1.0  # a drawn frame
    grid[110:148, 60:70] = 1.0                                                              # a bar in it
    grid[300:305, 40:140] = 0.6                                                             # a line of text
    rng = np.random.default_rng(0)
    specks = rng.integers(0, 421, 40), rng.integers(0, 298, 40)
    grid[specks] = 1.0
    text = Line(1, [Word(80.0, 600.0, 280.0, 610.0, "texto")])
    figures = ink_figures(grid, 2.0, [text], 24.0)
    assert len(figures) == 1
    x0, top, x1, bottom = figures[0]
    assert (x0, top) == pytest.approx((80.0, 200.0), abs=6) and (x1, bottom) == pytest.approx((240.0, 300.0), abs=6)


def test_a_questions_passage_is_its_context_and_its_last_paragraph_the_question():
    assert _context_and_question("Passagem longa.\nFonte: livro.\nO texto sugere que", "") == (
        "Passagem longa.\nFonte: livro.", "O texto sugere que")
    assert _context_and_question("Quanto é 2 + 2?", "Texto comum às questões 3 e 4.") == (
        "Texto comum às questões 3 e 4.", "Quanto é 2 + 2?")


def test_two_sets_of_alternatives_in_one_question_skip_it_instead_of_joining_a_guess():
    """OCR lost question 11's number: 10's lines hold its alternatives and 11's; taking either set could
    join the key's letter to the wrong alternatives."""
    from stages.exams import _question

    lines = ["Caso do primeiro.", "(A) a1", "(B) b1", "(C) c1", "Caso do segundo.", "(A) a2", "(B) b2", "(C) c2"]
    q = _question(10, "", _line("10 Caso"), [_line(t) for t in lines], None, None)
    q["needs_figure"] = False
    items, report = join_exam([q], {10: "A"}, exam="p", doc="p.pdf", p=ExamsParams())
    assert items == [] and report["skipped"] == {
        "two sets of alternatives (the next question's number not read?)": {"count": 1, "questions": [10]}}
