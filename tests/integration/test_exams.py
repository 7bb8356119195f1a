"""`gabarito exams` on exam PDFs the tests generate: a two-column born-digital booklet, a scanned
vestibular read by real tesseract, answer keys as PDF and CSV, and the bundled ENEM-style sample."""

from __future__ import annotations

import json
import shutil
import time

import pytest
import yaml

from gabarito.params import ExamsParams
from stages.exams import read_exam
from tests.cli_runner import invoke
from tests.examgen import key_pdf, two_column_pdf
from tests.fake_secrets import FAKE_KEY
from tests.pdfgen import huge_page_pdf, scanned_pdf, text_pdf

needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract not installed")

HEADER = "EXAME NACIONAL DE TESTE 2025 – 1º DIA – CADERNO AZUL"
FOOTER = "Página {page} de {pages}"

P1_LEFT = """CIÊNCIAS HUMANAS E SUAS TECNOLOGIAS
QUESTÃO 01
A vila cresceu à beira do rio porque a água trazia os barcos, e os barcos traziam o sal, o tecido e as notícias de longe.

Segundo o texto, a vila cresceu à beira do rio por causa
(A) da pesca abundante.
(B) do transporte fluvial.
(C) das terras férteis.
(D) do clima ameno.
(E) da defesa militar.

QUESTÃO 02
Observe a charge publicada em um jornal de 1920.
[[figure]]




A crítica da charge dirige-se
(A) ao voto de cabresto.
(B) à imigração.
(C) à industrialização.
(D) ao café.
(E) à urbanização."""

P1_RIGHT = """QUESTÃO 03
Qual era o principal produto de exportação do Brasil no século XIX?
(A) Ouro.
(B) Açúcar.
(C) Café.
(D) Borracha.
(E) Algodão.

QUESTÃO 04
Uma cooperativa de agricultores decidiu dividir a colheita igualmente entre as famílias associadas.
Essa decisão expressa o princípio da
(A) concorrência.
(B) hierarquia.
(C) especialização."""

P2_LEFT = """(D) solidariedade.
(E) propriedade.

QUESTÃO 05
O sertão nordestino tem clima
(A) equatorial.
(B) semiárido.
(C) temperado.
(D) polar.
(E) subtropical.

MATEMÁTICA E SUAS TECNOLOGIAS
QUESTÃO 06
Quanto é 7 x 8?
(A) 54
(B) 56
(C) 58
(D) 64"""

P2_RIGHT = """QUESTÃO 07
Uma caixa tem 12 lápis e outra tem o dobro. Quantos lápis há nas duas caixas jun-
tas?
(A) 24
(B) 36
(C) 48
(D) 30
(E) 18"""

KEY = [(1, "B"), (2, "A"), (3, "ANULADA"), (4, "D"), (6, "E"), (7, "B")]


def make_enem(folder):
    two_column_pdf(folder / "enem_teste.pdf", [(P1_LEFT, P1_RIGHT), (P2_LEFT, P2_RIGHT)],
                   title="EXAME NACIONAL DE TESTE", header=HEADER, footer=FOOTER)
    key_pdf(folder / "enem_teste.gabarito.pdf", KEY, title="GABARITO – CADERNO 1 – AZUL", cell="{n:02d} | {a}")


def test_two_column_exam_joins_its_key_pdf(tmp_path):
    make_enem(tmp_path)
    items, report, _ = read_exam(tmp_path / "enem_teste.pdf", tmp_path / "enem_teste.gabarito.pdf", ExamsParams())
    assert [(i["id"], i["page"], i["label"], i.get("subject")) for i in items] == [
        ("enem_teste-q01", 1, 1, "ciencias_humanas"), ("enem_teste-q04", 1, 3, "ciencias_humanas"),
        ("enem_teste-q07", 2, 1, "matematica")]
    q1, q4, q7 = items
    # the passage is the context (what format.fit may cut), the last paragraph what is asked
    assert (q1["context"], q1["question"]) == (
        "A vila cresceu à beira do rio porque a água trazia os barcos, e os barcos traziam o sal, o tecido e as "
        "notícias de longe.", "Segundo o texto, a vila cresceu à beira do rio por causa")
    assert q1["answers"] == ["da pesca abundante.", "do transporte fluvial.", "das terras férteis.",
                             "do clima ameno.", "da defesa militar."]
    # split across the page break: its last two alternatives are on page 2
    assert q4["answers"] == ["concorrência.", "hierarquia.", "especialização.", "solidariedade.", "propriedade."]
    assert q7["question"] == "Uma caixa tem 12 lápis e outra tem o dobro. Quantos lápis há nas duas caixas juntas?"
    assert q7["answers"] == ["24", "36", "48", "30", "18"]
    assert {(i["source"], i["doc"], i["language"], i["needs_figure"])
            for i in items} == {("enem_teste", "enem_teste.pdf", "pt", False)}
    assert [i["question_type"] for i in items] == [i["subject"] for i in items]  # the area, not "exam"
    assert report == {
        "doc": "enem_teste.pdf", "key": "enem_teste.gabarito.pdf", "pages": 2, "pages_ocr": 0,
        "pages_before_first_question": [1], "key_answers": 6, "printed_twice": [],
        "identifiers": {"booklet": {"day": "1", "colour": "AZUL"}, "key": {"caderno": "1", "colour": "AZUL"},
                        "checked": ["colour"], "unchecked": ["day", "caderno"]},
        "lines_outside_questions": {"count": 0, "pages": []},
        "found": 7, "joined": 3, "key_without_question": [],
        "skipped": {"annulled": {"count": 1, "questions": [3]},
                    "key letter outside the alternatives found": {"count": 1, "questions": [6]},
                    "needs figure": {"count": 1, "questions": [2]},
                    "no answer in key": {"count": 1, "questions": [5]}}}


def test_pdfium_stream_order_interleaves_the_columns_and_the_layout_reader_does_not(tmp_path):
    """The booklet is drawn row by row across its columns: pdfium's own text order reads halves of lines
    side by side; the booklet reader finds the gutter and reads each column whole."""
    from gabarito.booklet import read_booklet

    make_enem(tmp_path)
    (page, _) = read_booklet((tmp_path / "enem_teste.pdf").read_bytes(), ExamsParams().pdf, doc="enem_teste.pdf")
    assert "CIÊNCIAS HUMANAS E SUAS TECNOLOGIAS QUESTÃO 03\nQUESTÃO 01 Qual era o principal produto" in page.text
    lines = [ln.text for ln in page.lines]
    assert lines.index("QUESTÃO 01") < lines.index("QUESTÃO 02") < lines.index("QUESTÃO 03")
    assert page.gutter is not None and [ln.column for ln in page.lines if ln.text == "QUESTÃO 03"] == [2]


def test_a_drawn_figure_flags_its_question_and_a_figure_word_alone_does_not(tmp_path):
    """Question 2 has a chart drawn between its lines; question 1 says "texto" and question 7 nothing,
    and a question that names a "gráfico" with no drawing is not flagged on a born-digital page."""
    make_enem(tmp_path)
    (tmp_path / "enem_teste.pdf").unlink()
    two_column_pdf(tmp_path / "enem_teste.pdf", [(P1_LEFT.replace("[[figure]]", ""), P1_RIGHT.replace(
        "Qual era o principal produto", "Segundo os gráficos do censo, qual era o principal produto")),
        (P2_LEFT, P2_RIGHT)], title="EXAME NACIONAL DE TESTE", header=HEADER, footer=FOOTER)
    items, report, _ = read_exam(tmp_path / "enem_teste.pdf", tmp_path / "enem_teste.gabarito.pdf", ExamsParams())
    assert "needs figure" not in report["skipped"] and "enem_teste-q02" in [i["id"] for i in items]


def test_figure_questions_are_kept_when_asked(tmp_path):
    make_enem(tmp_path)
    items, report, _ = read_exam(tmp_path / "enem_teste.pdf", tmp_path / "enem_teste.gabarito.pdf",
                              ExamsParams(include_figure_questions=True))
    q2 = [i for i in items if i["id"] == "enem_teste-q02"]
    assert [(i["needs_figure"], i["label"], i["context"], i["question"]) for i in q2] == [
        (True, 0, "Observe a charge publicada em um jornal de 1920.", "A crítica da charge dirige-se")]
    assert "needs figure" not in report["skipped"] and report["joined"] == 4


VESTIBULAR = """UNIVERSIDADE DO VALE – VESTIBULAR 2025

1. Qual é o maior planeta do Sistema Solar?
a) Marte
b) Júpiter
c) Saturno
d) Terra

2. A capital do estado de Minas Gerais é
a) Uberlândia
b) Juiz de Fora
c) Belo Horizonte
d) Ouro Preto

3. Quantos lados tem um hexágono?
a) cinco
b) seis
c) sete
d) oito
"""


@needs_tesseract
def test_scanned_vestibular_is_read_by_ocr_and_joined_with_a_csv_key(tmp_path):
    scanned_pdf(tmp_path / "vestibular.pdf", [VESTIBULAR], footer="Página {page} de {pages}")
    (tmp_path / "vestibular.gabarito.csv").write_text("questao,resposta\n1,B\n2,C\n3,*\n", encoding="utf-8")
    items, report, _ = read_exam(tmp_path / "vestibular.pdf", tmp_path / "vestibular.gabarito.csv", ExamsParams())
    assert [(i["id"], i["question"], i["answers"], i["label"], i["page"]) for i in items] == [
        ("vestibular-q01", "Qual é o maior planeta do Sistema Solar?", ["Marte", "Júpiter", "Saturno", "Terra"], 1, 1),
        ("vestibular-q02", "A capital do estado de Minas Gerais é",
         ["Uberlândia", "Juiz de Fora", "Belo Horizonte", "Ouro Preto"], 2, 1)]
    assert (report["pages_ocr"], report["found"], report["joined"], report["skipped"]) == (
        1, 3, 2, {"annulled": {"count": 1, "questions": [3]}})


def test_the_command_writes_items_and_the_report_and_logs_each_exam(tmp_path, repo_root):
    make_enem(tmp_path / "exams")
    result = invoke(["exams", "--exam-dir", "exams", "--out", "out/items.jsonl", "--report", "out/exams.json",
                     "--params", str(repo_root / "params.yaml")], cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert ("[gabarito] exams: enem_teste.pdf: 2 pages, 7 found, 3 joined; skipped: annulled 1 (q03); key letter outside "
            "the alternatives found 1 (q06); needs figure 1 (q02); no answer in key 1 (q05)") in result.output
    lines = (tmp_path / "out/items.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["enem_teste-q01", "enem_teste-q04", "enem_teste-q07"]
    metrics = json.loads((tmp_path / "out/exams.json").read_text(encoding="utf-8"))
    assert (metrics["exams"], metrics["found"], metrics["joined"]) == (1, 7, 3)
    assert metrics["skipped"] == {"annulled": 1, "key letter outside the alternatives found": 1, "needs figure": 1,
                                  "no answer in key": 1}
    first = (tmp_path / "out/items.jsonl").read_bytes()
    assert invoke(["exams", "--exam-dir", "exams", "--out", "out/items.jsonl", "--report", "out/exams.json",
                   "--params", str(repo_root / "params.yaml")], cwd=tmp_path).exit_code == 0
    assert (tmp_path / "out/items.jsonl").read_bytes() == first


def _run(tmp_path, repo_root):
    return invoke(["exams", "--exam-dir", "exams", "--out", "items.jsonl", "--report", "exams.json",
                   "--params", str(repo_root / "params.yaml")], cwd=tmp_path)


def test_an_exam_without_its_key_is_an_error_naming_the_key_expected(tmp_path, repo_root):
    text_pdf(tmp_path / "exams" / "prova.pdf", ["QUESTÃO 01\nQuanto é 2 + 2?\n(A) 3\n(B) 4"])
    result = _run(tmp_path, repo_root)
    assert result.exit_code == 1
    assert "prova.pdf: no answer key. Put it beside the exam as prova.gabarito.pdf" in result.output
    assert "or prova.gabarito.csv (columns questao,resposta)" in result.output
    assert not (tmp_path / "items.jsonl").exists()


def test_a_key_without_its_exam_is_an_error(tmp_path, repo_root):
    (tmp_path / "exams").mkdir()
    (tmp_path / "exams" / "prova.gabarito.csv").write_text("questao,resposta\n1,A\n", encoding="utf-8")
    result = _run(tmp_path, repo_root)
    assert result.exit_code == 1 and "an answer key without its exam: expected prova.pdf beside it" in result.output


def test_a_pdf_with_text_but_no_questions_fails_loudly(tmp_path, repo_root):
    text_pdf(tmp_path / "exams" / "ata.pdf", ["Ata da reunião do conselho, realizada em março, com a presença de "
                                              "todos os membros, que aprovaram o calendário."])
    (tmp_path / "exams" / "ata.gabarito.csv").write_text("questao,resposta\n1,A\n", encoding="utf-8")
    result = _run(tmp_path, repo_root)
    assert result.exit_code == 1 and "ata.pdf: no numbered question found in 1 page(s) of text" in result.output


def test_a_bad_csv_key_row_names_the_file_and_line(tmp_path, repo_root):
    make_enem(tmp_path / "exams")
    (tmp_path / "exams" / "enem_teste.gabarito.pdf").unlink()
    (tmp_path / "exams" / "enem_teste.gabarito.csv").write_text("questao,resposta\n1,B\n2,Z\n", encoding="utf-8")
    result = _run(tmp_path, repo_root)
    assert result.exit_code == 1
    assert "enem_teste.gabarito.csv:3: resposta 'Z' is neither a letter A-J nor an annulled mark" in result.output


def test_the_bundled_sample_is_read_in_seconds_and_matches_its_source(repo_root):
    start = time.monotonic()
    items, report, _ = read_exam(repo_root / "data/raw/exams/amostra_enem.pdf",
                              repo_root / "data/raw/exams/amostra_enem.gabarito.pdf", ExamsParams())
    assert time.monotonic() - start < 10  # born-digital: no OCR
    assert report["pages_ocr"] == 0 and report["key_without_question"] == []
    assert (report["found"], report["joined"]) == (34, 31)
    assert report["skipped"] == {"annulled": {"count": 1, "questions": [19]},
                                 "needs figure": {"count": 2, "questions": [8, 26]}}
    source = yaml.safe_load((repo_root / "scripts/exam_sample.yaml").read_text(encoding="utf-8"))
    questions = [(q, sec["heading"]) for sec in source["sections"] for q in sec["questions"]]
    expected = [(f"amostra_enem-q{n:02d}", "\n".join(" ".join(par.split()) for par in q["text"].split("\n\n")),
                 [str(o) for o in q["options"]], "ABCDE".index(q["answer"]), ExamsParams().subjects[heading])
                for n, (q, heading) in enumerate(questions, 1) if n not in (8, 19, 26)]
    assert [(i["id"], "\n".join(filter(None, (i["context"], i["question"]))), i["answers"], i["label"], i["subject"])
            for i in items] == expected


def test_the_sample_generator_reproduces_the_committed_pdfs(repo_root, tmp_path):
    from scripts.make_exam_sample import build

    for path in build(tmp_path):
        assert path.read_bytes() == (repo_root / "data/raw/exams" / path.name).read_bytes(), path.name


def test_a_one_column_born_digital_exam_reads_as_is(tmp_path):
    """The column reader finds no gutter on a one-column page and keeps pdfium's order."""
    text_pdf(tmp_path / "simulado.pdf", [
        "SIMULADO DE FÍSICA\n\n01. Um corpo em queda livre, perto da superfície da Terra, tem aceleração de cerca de\n"
        "A) 1 m/s²\nB) 5 m/s²\nC) 10 m/s²\nD) 50 m/s²\n\n"
        "02. A unidade de força no Sistema Internacional é o\nA) joule\nB) watt\nC) pascal\nD) newton"])
    (tmp_path / "simulado.gabarito.csv").write_text("questao;resposta\n1;C\n2;D\n", encoding="utf-8")
    items, _, _ = read_exam(tmp_path / "simulado.pdf", tmp_path / "simulado.gabarito.csv", ExamsParams())
    assert [(i["id"], i["question"], i["answers"], i["label"]) for i in items] == [
        ("simulado-q01", "Um corpo em queda livre, perto da superfície da Terra, tem aceleração de cerca de",
         ["1 m/s²", "5 m/s²", "10 m/s²", "50 m/s²"], 2),
        ("simulado-q02", "A unidade de força no Sistema Internacional é o", ["joule", "watt", "pascal", "newton"], 3)]


def test_an_oversized_exam_page_names_the_exams_knob_and_stops_the_exam(tmp_path, repo_root):
    """The message named extract.max_render_pixels, which the exams stage does not read, and said "the
    others were kept" while the stage stopped."""
    huge_page_pdf(tmp_path / "exams" / "prova.pdf",
                  then=["QUESTÃO 01\nQuanto é dois mais dois, somados numa conta simples?\n(A) 3\n(B) 4"])
    (tmp_path / "exams" / "prova.gabarito.csv").write_text("questao,resposta\n1,B\n", encoding="utf-8")
    result = _run(tmp_path, repo_root)
    assert result.exit_code == 1, result.output
    assert ("prova.pdf page 1: 20000 x 20000 pt is too large to render for OCR even at 150 dpi within "
            "exams.pdf.max_render_pixels=40,000,000: scale the page down (re-export at a normal paper size), or "
            "raise exams.pdf.max_render_pixels if this machine has the memory. An exam is read whole: no item is "
            "made from it until every page reads.") in " ".join(result.output.split())
    assert "extract." not in result.output and "kept" not in result.output
    assert not (tmp_path / "items.jsonl").exists()


def test_a_folder_of_files_none_of_them_an_exam_fails_instead_of_caching_no_items(tmp_path, repo_root):
    """A Word exam (prova.docx) was a WARNING line, an empty items file and exit 0: dvc cached it as done."""
    (tmp_path / "exams").mkdir()
    (tmp_path / "exams" / "prova.docx").write_bytes(b"PK")
    result = _run(tmp_path, repo_root)
    assert result.exit_code == 1, result.output
    assert "exams: none of its 1 file(s) (prova.docx) is an exam PDF. Give each exam as <exam>.pdf" in result.output
    assert not (tmp_path / "items.jsonl").exists()


@pytest.mark.parametrize("key, skipped", [
    ("1,ANULADA\n2,ANULADA\n", "annulled 2 (q01, q02)"),
    ("50,A\n51,B\n", "no answer in key 2 (q01, q02); in the key but not found: 50, 51")])
def test_an_exam_whose_questions_are_all_skipped_fails_naming_why(tmp_path, repo_root, key, skipped):
    """Input came in and no item would come out: every question annulled or needing a figure, or a key
    that belongs to another exam."""
    text_pdf(tmp_path / "exams" / "p.pdf", ["QUESTÃO 01\nQuanto é dois mais dois, somados numa conta?\n(A) 3\n"
                                            "(B) 4\nQUESTÃO 02\nObserve a figura abaixo. Qual é a cor do céu?\n"
                                            "(A) azul\n(B) verde"])
    (tmp_path / "exams" / "p.gabarito.csv").write_text("questao,resposta\n" + key, encoding="utf-8")
    result = _run(tmp_path, repo_root)
    assert result.exit_code == 1, result.output
    assert (f"p.pdf: 2 questions found, none joined with p.gabarito.csv (p.pdf: 2 found, 0 joined; skipped: "
            f"{skipped}). Does the key belong to this exam?") in " ".join(result.output.split())
    assert not (tmp_path / "items.jsonl").exists()


def _ten_question_key(tmp_path, found: int) -> None:
    """An exam whose text reads only its first ``found`` questions, with a key of ten."""
    text_pdf(tmp_path / "exams" / "p.pdf", ["\n".join(
        f"QUESTÃO {n:02d}\nQuanto é {n} mais {n}, somados numa conta simples?\n(A) {n}\n(B) {2 * n}"
        for n in range(1, found + 1))])
    (tmp_path / "exams" / "p.gabarito.csv").write_text(
        "questao,resposta\n" + "".join(f"{n},B\n" for n in range(1, 11)), encoding="utf-8")


def test_a_key_whose_questions_the_exam_mostly_lacks_stops_instead_of_keeping_a_fraction(tmp_path, repo_root):
    """Three of the key's ten questions read (a layout read wrong, say) were three items and exit 0."""
    _ten_question_key(tmp_path, found=3)
    result = _run(tmp_path, repo_root)
    assert result.exit_code == 1, result.output
    assert ("p.pdf: 7 of the 10 questions in p.gabarito.csv were not found in the exam (4, 5, 6, 7, 8, 9, 10), "
            "more than exams.max_unfound_share=0.1 allows; 3 would be kept.") in " ".join(result.output.split())
    assert not (tmp_path / "items.jsonl").exists()


@pytest.mark.parametrize("found, share", [(9, 0.1), (3, 1.0)])
def test_a_few_unfound_questions_or_a_raised_share_keep_the_items_found(tmp_path, repo_root, found, share):
    _ten_question_key(tmp_path, found=found)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"exams": {"max_unfound_share": share}}))
    result = invoke(["exams", "--exam-dir", "exams", "--out", "items.jsonl", "--report", "exams.json",
                     "--params", "params.yaml"], cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "items.jsonl").read_text().splitlines()) == found
    report = json.loads((tmp_path / "exams.json").read_text())["report"]["p.pdf"]
    assert report["key_without_question"] == list(range(found + 1, 11))


# --- issue 23 ----------------------------------------------------------------------------------------------


def test_a_key_linked_to_the_environment_is_refused_and_nothing_of_it_is_quoted(tmp_path, repo_root, monkeypatch):
    """`ln -s /proc/self/environ exams/X.gabarito.csv` printed the whole environment, NULs and all."""
    text_pdf(tmp_path / "exams" / "X.pdf", ["QUESTÃO 01\nQuanto é 2 + 2?\n(A) 3\n(B) 4"])
    (tmp_path / "exams" / "X.gabarito.csv").symlink_to("/proc/self/environ")
    result = _run(tmp_path, repo_root)
    assert result.exit_code == 1 and "X.gabarito.csv: a link to /proc/" in result.output, result.output
    assert "outside the project" in result.output and "dvc import-url" in result.output
    assert "\x00" not in result.output and "PATH=" not in result.output
    # the same dump copied into the project: read, and quoted short and scrubbed
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    (tmp_path / "exams" / "X.gabarito.csv").unlink()
    (tmp_path / "exams" / "X.gabarito.csv").write_text(
        f"PATH=/usr/bin\x00OPENAI_API_KEY={FAKE_KEY}\x00" + "HOME=/root\x00" * 200, encoding="utf-8")
    result = _run(tmp_path, repo_root)
    assert result.exit_code == 1 and "X.gabarito.csv:1: expected the columns questao,resposta" in result.output
    assert "TEST" not in result.output and "\x00" not in result.output and len(result.output) < 400, result.output


def test_four_digit_question_numbers_join_with_their_key(tmp_path, repo_root):
    numbers = range(995, 1005)
    pages = ["\n".join(f"{n}. Quanto é {n} + 1?\n(A) {n + 1}\n(B) {n + 2}\n" for n in numbers[:5]),
             "\n".join(f"{n}. Quanto é {n} + 1?\n(A) {n + 1}\n(B) {n + 2}\n" for n in numbers[5:])]
    text_pdf(tmp_path / "exams" / "longa.pdf", pages)
    key_pdf(tmp_path / "exams" / "longa.gabarito.pdf", [(n, "A") for n in numbers])
    result = _run(tmp_path, repo_root)
    assert result.exit_code == 0, result.output
    items = [json.loads(x) for x in (tmp_path / "items.jsonl").read_text().splitlines()]
    assert [i["id"] for i in items] == [f"longa-q{n}" for n in numbers]


def test_an_exam_named_on_a_mac_pairs_and_its_items_are_named_in_nfc(tmp_path, repo_root):
    import unicodedata

    nfc, nfd = (unicodedata.normalize(form, "Simulação única") for form in ("NFC", "NFD"))
    text_pdf(tmp_path / "exams" / f"{nfd}.pdf", ["QUESTÃO 01\nQuanto é 2 + 2?\n(A) 3\n(B) 4"])
    (tmp_path / "exams" / f"{nfc}.gabarito.csv").write_text("questao,resposta\n1,B\n", encoding="utf-8")
    result = _run(tmp_path, repo_root)
    assert result.exit_code == 0, result.output
    items = [json.loads(x) for x in (tmp_path / "items.jsonl").read_text().splitlines()]
    assert [(i["id"], i["source"], i["doc"]) for i in items] == [(f"{nfc}-q01", nfc, f"{nfc}.pdf")]
