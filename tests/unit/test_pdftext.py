"""Regulation text: quality scores, cleaning that keeps legal punctuation, article-aware chunks."""

from __future__ import annotations

from gabarito.pdftext import (
    chunk_document,
    clean_document,
    clean_page,
    count_tokens,
    page_quality,
    repeated_lines,
    units,
)

GOOD = ("Art. 4º A jornada de atividades em estágio não poderá ultrapassar 6 (seis) horas diárias e "
        "30 (trinta) horas semanais, conforme a Lei nº 11.788, de 25/09/2008.")


def test_quality_of_clean_text_is_high_and_of_broken_layers_low():
    assert page_quality(GOOD)["score"] > 0.95
    broken = page_quality("Introdu¸˜ao ao regulamento: informa¸c˜oes sobre matr´icula e avalia¸c˜ao")
    assert broken["broken_diacritics"] >= 4 and broken["score"] < 0.3
    garbage = page_quality("~~ ¤¤ ▓▓ ◊◊ ■■ ¶¶ ░░ ╬╬ ¤¤ ▓▓")
    assert garbage["garbage_ratio"] > 0.5 and garbage["score"] < 0.2
    assert page_quality("")["score"] == 0.0


def test_repeated_headers_and_footers_are_found_even_with_ocr_variations():
    pages = [f"Universidade Federal do Vale – Pró-Reitoria\nArt. {i}º Texto do artigo {i}.\nPágina {i} de 3"
             for i in (1, 2, 3)]  # the articles share a pattern too, but an article is never a header
    pages[2] = pages[2].replace("Pró-Reitoria", "Pr6-Reitoria")  # OCR misread on one page
    keys = repeated_lines(pages)
    cleaned = [clean_page(p, keys) for p in pages]
    assert cleaned == [f"Art. {i}º Texto do artigo {i}." for i in (1, 2, 3)]


def test_header_search_follows_the_extract_params():
    from gabarito.params import ExtractParams

    pages = [f"Universidade Federal do Vale – Pró-Reitoria\nArt. {i}º Texto do artigo {i}." for i in (1, 2, 3)]
    pages[2] = pages[2].replace("Pró-Reitoria", "Pr6-Reitoria")
    assert len(repeated_lines(pages, ExtractParams())) == 1  # the OCR variant joins the header's group
    strict = ExtractParams(header_similarity=1.0)  # exact spelling only: page 3's variant is no header,
    keys = repeated_lines(pages, strict)            # but pages 1-2 still make 2 of 3 >= the 0.5 share
    assert [clean_page(p, keys, strict).split("\n")[0] for p in pages] == [
        "Art. 1º Texto do artigo 1.", "Art. 2º Texto do artigo 2.", "Universidade Federal do Vale – Pr6-Reitoria"]
    assert repeated_lines(pages, ExtractParams(header_lines=0)) == set()  # the search turned off
    assert repeated_lines(pages, ExtractParams(header_min_share=1.0, header_similarity=1.0)) == set()
    # the junk filter's share: "AB%%%%CD" is 4 letters and digits of 8 characters
    assert clean_page("AB%%%%CD", set(), ExtractParams(junk_min_alnum_share=0.5)) == "AB%%%%CD"
    assert clean_page("AB%%%%CD", set(), ExtractParams(junk_min_alnum_share=0.6)) == ""


def test_cleaning_keeps_legal_punctuation_and_fixes_ocr_slips():
    raw = ("Art. 2º O trancamento poderá ser total ou par-\ncial, até 15/03/2023.\n"
           "$ 1º O pedido será feito no sistema.\n"
           "|| - de disciplina cursada em regime de dependência;\n"
           "Ill - quando houver processo disciplinar.\n"
           "~~~~ ||||| ____\n"
           "Parágrafo único. A Pró-Reitoria decide os casos omissos (art. 5º, § 2º, 8ª semana).\n"
           "7\n")
    assert clean_page(raw, set()).split("\n") == [
        "Art. 2º O trancamento poderá ser total ou parcial, até 15/03/2023.",
        "§ 1º O pedido será feito no sistema.",
        "II – de disciplina cursada em regime de dependência;",
        "III – quando houver processo disciplinar.",
        "Parágrafo único. A Pró-Reitoria decide os casos omissos (art. 5º, § 2º, 8ª semana).",
    ]


def test_wrapped_lines_are_joined_but_headings_and_articles_stay_apart():
    raw = "RESOLUÇÃO Nº 7/2022 – CEG\nEstabelece normas para o\ntrancamento de matrícula.\nArt. 1º Texto."
    assert clean_page(raw, set()).split("\n") == [
        "RESOLUÇÃO Nº 7/2022 – CEG", "Estabelece normas para o trancamento de matrícula.", "Art. 1º Texto."]


def test_clean_document_scores_every_page():
    pages = [{"doc": "d.pdf", "page": 1, "text": GOOD, "method": "text", "status": "ok"}]
    [page] = clean_document(pages)
    assert page["text"] == GOOD and page["quality"] > 0.95


def test_units_split_at_articles_paragraphs_and_incisos():
    text = ("Art. 1º Objeto.\n§ 1º Primeiro.\nParágrafo único. Único.\nArt. 2º Compete:\nI – aprovar;\n"
            "II – avaliar.\n\nTexto solto de um parágrafo\nque continua.")
    assert units(text) == ["Art. 1º Objeto.", "§ 1º Primeiro.", "Parágrafo único. Único.", "Art. 2º Compete:",
                           "I – aprovar;", "II – avaliar.", "Texto solto de um parágrafo\nque continua."]


def test_chunks_respect_the_token_limit_keep_articles_whole_and_overlap():
    arts = [f"Art. {i}º " + " ".join(f"palavra{i}x{j}" for j in range(30)) + "." for i in range(1, 9)]
    pages = [{"doc": "d.pdf", "page": 1 + i // 4, "text": "\n".join(arts[i:i + 4])} for i in (0, 4)]
    chunks = chunk_document("d.pdf", pages, max_tokens=100, overlap_tokens=40)
    assert [c["chunk_id"] for c in chunks] == [f"d.pdf#{i}" for i in range(len(chunks))]
    for c in chunks:
        assert c["tokens"] == count_tokens(c["text"]) <= 100
        for line in c["text"].split("\n"):
            assert line in arts  # whole articles only
    # each chunk after the first starts with the previous chunk's last article
    for prev, nxt in zip(chunks, chunks[1:]):
        assert nxt["text"].split("\n")[0] == prev["text"].split("\n")[-1]
    assert chunks[0]["pages"] == [1] and chunks[-1]["pages"] == [2]


def test_an_article_longer_than_the_limit_is_split():
    long_art = "Art. 1º " + " ".join(f"termo{j}." for j in range(200))
    chunks = chunk_document("d.pdf", [{"doc": "d.pdf", "page": 1, "text": long_art}], max_tokens=80, overlap_tokens=0)
    assert len(chunks) > 1 and all(c["tokens"] <= 80 for c in chunks)
    assert " ".join(c["text"] for c in chunks).split() == long_art.split()
