"""stages/synthesize.py: grounding, Q&A import, chunking, near-duplicates, the document split,
multiple-choice items, and the bundled regulations data."""

from __future__ import annotations

import json

import pytest

from gabarito.io import InputError
from gabarito.params import SynthesizeParams
from gabarito.pdftext import count_tokens
from stages.synthesize import (
    chunk_pages,
    content_words,
    docs_without_pairs,
    drop_near_duplicates,
    finish,
    ground_generated,
    ground_pairs,
    grounding,
    load_qa_files,
    pair_id,
    split_documents,
    to_multiple_choice,
)

UNRELATED = ("Biblioteca Central", "Restaurante Universitário", "atividades complementares")


# --- content_words / grounding ---------------------------------------------------------------------
def test_content_words_folds_accents_and_drops_stopwords():
    assert content_words("A Graduação É ótima, em 2023!") == ["graduacao", "otima", "2023"]
    assert content_words("Estágio obrigatório da UFVA") == ["estagio", "obrigatorio", "ufva"]
    # stopwords and one-character words carry no meaning
    assert content_words("o de da que para com por e é à 6 x") == []
    assert content_words("ESTÁGIO") == content_words("estagio") == ["estagio"]


def test_accented_stopwords_are_ignored():
    assert content_words("Não são") == []


def test_grounding_is_the_share_of_content_words_found():
    source = set(content_words("O estágio obrigatório é definido no Projeto Pedagógico do Curso."))
    assert grounding("Estágio obrigatório", source) == 1.0
    assert grounding("estagio OBRIGATORIO do curso", source) == 1.0  # accents/case/stopwords
    assert grounding("estágio remunerado", source) == 0.5
    assert grounding("biblioteca sábado", source) == 0.0
    assert grounding("o de da", source) == 0.0  # no content words at all


# --- ground_pairs ----------------------------------------------------------------------------------
PAGES = [
    {"doc": "a.pdf", "page": 1, "status": "ok", "text": "Capítulo I. Das disposições gerais da universidade."},
    {"doc": "a.pdf", "page": 2, "status": "ok",
     "text": "Art. 4º A jornada de estágio não poderá ultrapassar 6 (seis) horas diárias e 30 (trinta) horas "
             "semanais.\nArt. 5º O estágio obrigatório tem carga horária definida no Projeto Pedagógico.\n"
             "Parágrafo único. A Coordenação de Estágios acompanha a jornada."},
    {"doc": "b.pdf", "page": 1, "status": "ok",
     "text": "O trancamento total poderá ser concedido por, no máximo, 4 (quatro) semestres letivos."},
    {"doc": "b.pdf", "page": 2, "status": "empty",
     "text": "Biblioteca Central funciona aos sábados das 8h às 12h."},  # not ok: ignored
]


def _pair(q, a, i=0):
    return {"question": q, "answer": a, "source": f"qa.json[{i}]"}


def test_ground_pairs_keeps_grounded_pairs_with_doc_and_page():
    pairs = [
        _pair("Qual a jornada máxima?", "A jornada de estágio não pode ultrapassar 30 horas semanais.", 0),
        _pair("Quantos semestres de trancamento?", "No máximo 4 (quatro) semestres letivos de trancamento total.", 1),
        _pair("Quando abre a biblioteca?", "A Biblioteca Central funciona aos sábados das 8h às 12h.", 2),
    ]
    kept, rejected = ground_pairs(pairs, PAGES, 0.6)
    assert [(k["doc"], k["page"]) for k in kept] == [("a.pdf", 2), ("b.pdf", 1)]
    # "span" is the article (not the whole page) that supports the answer best
    assert kept[0] == {"id": pair_id("a.pdf", "Qual a jornada máxima?"), "kind": "open",
                       "question": "Qual a jornada máxima?", "answer": pairs[0]["answer"], "doc": "a.pdf",
                       "page": 2, "grounding": 0.8571, "source": "qa.json[0]",
                       "span": "Art. 4º A jornada de estágio não poderá ultrapassar 6 (seis) horas diárias e "
                               "30 (trinta) horas semanais."}
    assert kept[1]["grounding"] == 1.0
    assert kept[1]["span"] == PAGES[2]["text"]  # a page with no article marks is one unit
    assert kept[0]["id"].startswith("pdf-") and len(kept[0]["id"]) == 16
    # the library pair is only supported by a page whose extraction failed: rejected
    assert len(rejected) == 1
    assert rejected[0]["reason"] == "ungrounded"
    assert rejected[0]["source"] == "qa.json[2]"
    assert rejected[0]["grounding"] < 0.6


def test_ground_pairs_threshold_is_inclusive_and_no_pages_rejects_all():
    pairs = [_pair("q", "trancamento biblioteca")]  # exactly half of its words are on b.pdf p1
    kept, rejected = ground_pairs(pairs, PAGES, 0.5)
    assert len(kept) == 1 and kept[0]["grounding"] == 0.5
    kept, rejected = ground_pairs(pairs, PAGES, 0.51)
    assert kept == [] and rejected[0]["grounding"] == 0.5
    kept, rejected = ground_pairs(pairs, [], 0.1)
    assert kept == [] and rejected == [{**pairs[0], "reason": "ungrounded", "grounding": 0.0}]


# --- load_qa_files ---------------------------------------------------------------------------------
def test_load_qa_files_reads_both_key_styles_in_file_order(tmp_path):
    (tmp_path / "b.json").write_text(json.dumps([{"question": " Q3? ", "answer": " A3. "}]), encoding="utf-8")
    (tmp_path / "a.json").write_text(json.dumps([{"Pergunta": "Q1?", "Resposta": "A1."},
                                                 {"Pergunta": "Q2?", "Resposta": "A2."}], ensure_ascii=False))
    (tmp_path / "notes.txt").write_text("ignored")
    pairs = load_qa_files(tmp_path)
    assert pairs == [
        {"question": "Q1?", "answer": "A1.", "source": "a.json[0]"},
        {"question": "Q2?", "answer": "A2.", "source": "a.json[1]"},
        {"question": "Q3?", "answer": "A3.", "source": "b.json[0]"},
    ]
    assert load_qa_files(tmp_path / "b.json") == pairs[2:]


@pytest.mark.parametrize("entry", [
    {"Pergunta": "Q?"},
    {"question": "Q?", "answer": 3},
    "just a string",
    {"Pergunta": None, "Resposta": "A."},
])
def test_load_qa_files_names_file_and_index_of_a_bad_entry(tmp_path, entry):
    path = tmp_path / "qa.json"
    path.write_text(json.dumps([{"Pergunta": "Q?", "Resposta": "A."}, entry]), encoding="utf-8")
    with pytest.raises(InputError) as exc:
        load_qa_files(tmp_path)
    assert str(exc.value).startswith(f"{path}[1]: ")
    assert "Pergunta" in str(exc.value) and "Resposta" in str(exc.value)


# --- the doc field: a pair grounded against its own PDF ----------------------------------------------
# a.pdf says it word for word; b.pdf, the PDF the pair is about, says most of it (4 of 5 words: 0.8)
TWIN_PAGES = [
    {"doc": "a.pdf", "page": 1, "status": "ok",
     "text": "O prazo para o trancamento da matrícula é de 30 dias após o início do semestre letivo."},
    {"doc": "b.pdf", "page": 3, "status": "ok",
     "text": "Art. 2º O pedido de trancamento da matrícula tem limite de 30 dias corridos."},
]
TWIN = {"question": "Qual é o prazo para trancar a matrícula?",
        "answer": "O prazo de trancamento da matrícula é de 30 dias."}


def test_a_pair_naming_its_doc_is_grounded_and_split_by_that_doc_only():
    params = SynthesizeParams(validation_docs_share=0.5, multiple_choice=False)
    splits = split_documents(["a.pdf", "b.pdf"], 0.5, params.seed)
    assert splits["a.pdf"] != splits["b.pdf"]
    other = {"question": "Quem concede o trancamento?", "answer": "O prazo para o trancamento é de 30 dias.",
             "source": "qa.json[1]"}  # keeps a.pdf among the split documents
    loose, _ = ground_pairs([{**TWIN, "source": "qa.json[0]"}, other], TWIN_PAGES, 0.6)
    assert [(k["doc"], k["grounding"]) for k in loose] == [("a.pdf", 1.0), ("a.pdf", 1.0)]  # the wrong PDF

    named, rejected = ground_pairs([{**TWIN, "source": "qa.json[0]", "doc": "b.pdf"}, other], TWIN_PAGES, 0.6)
    assert rejected == []
    assert (named[0]["doc"], named[0]["page"], named[0]["grounding"]) == ("b.pdf", 3, 0.8)
    assert named[0]["id"] == pair_id("b.pdf", TWIN["question"])
    records, _, _ = finish(named, [], TWIN_PAGES, params)
    assert [(r["doc"], r["split"]) for r in records] == [("b.pdf", splits["b.pdf"]), ("a.pdf", splits["a.pdf"])]


def test_a_pair_naming_its_doc_is_not_rescued_by_another_pdf():
    pages = [TWIN_PAGES[0], {"doc": "b.pdf", "page": 1, "status": "ok", "text": "Outro assunto, sem prazo algum."}]
    kept, rejected = ground_pairs([{**TWIN, "source": "qa.json[0]", "doc": "b"}], pages, 0.6)  # ".pdf" optional
    assert kept == [] and rejected[0]["reason"] == "ungrounded" and rejected[0]["doc"] == "b"


def test_a_pair_naming_an_unknown_doc_is_rejected_with_the_pdfs_there_are():
    kept, rejected = ground_pairs([{**TWIN, "source": "qa.json[0]", "doc": "c.pdf"}], TWIN_PAGES, 0.6)
    assert kept == []
    assert rejected[0]["reason"] == ("unknown_doc: no extracted PDF is named 'c.pdf' (PDFs: a.pdf, b.pdf; one that "
                                     "failed extraction is in metrics/extract.json)")


def test_load_qa_files_reads_the_doc_field(tmp_path):
    (tmp_path / "qa.json").write_text(json.dumps([{"Pergunta": "Q1?", "Resposta": "A1.", "Documento": " b.pdf "},
                                                  {"question": "Q2?", "answer": "A2.", "doc": "a.pdf"},
                                                  {"question": "Q3?", "answer": "A3."}]), encoding="utf-8")
    assert [p.get("doc") for p in load_qa_files(tmp_path)] == ["b.pdf", "a.pdf", None]
    (tmp_path / "qa.json").write_text(json.dumps([{"question": "Q?", "answer": "A.", "doc": 3}]), encoding="utf-8")
    with pytest.raises(InputError, match=r"qa.json\[0\]: \"doc\" must name a PDF"):
        load_qa_files(tmp_path)


# --- a PDF that yields no pairs is named, with what to do ---------------------------------------------
def test_docs_without_pairs_say_what_to_do():
    pages = [*TWIN_PAGES, {"doc": "scan.pdf", "page": 1, "status": "empty", "text": ""}]
    records = [{"doc": "a.pdf"}]
    out = docs_without_pairs(pages, records, [], "dataset")
    assert list(out) == ["b.pdf", "scan.pdf"]
    assert out["b.pdf"].startswith("no Q&A pair is grounded in it; add pairs about it to a Q&A file in the "
                                   '--qa-dir folder, with "doc": "b.pdf", or let an LLM write them')
    assert out["scan.pdf"].startswith("no page of it has text")
    rejected = [{"doc": "b", "reason": "ungrounded"}]
    assert docs_without_pairs(pages, records, rejected, "dataset")["b.pdf"].startswith(
        "1 pair(s) naming it were rejected")
    assert docs_without_pairs(pages, records, [], "openai")["b.pdf"].startswith("every pair the LLM wrote for it")
    assert docs_without_pairs(pages, [{"doc": "a.pdf"}, {"doc": "b.pdf"}, {"doc": "scan.pdf"}], [], "dataset") == {}


def test_the_command_names_a_pdf_without_pairs_in_its_log_and_metrics(tmp_path, repo_root):
    from tests.cli_runner import invoke

    (tmp_path / "pages.jsonl").write_text("".join(json.dumps(p) + "\n" for p in TWIN_PAGES), encoding="utf-8")
    (tmp_path / "qa").mkdir()
    (tmp_path / "qa/qa.json").write_text(json.dumps([{**TWIN, "doc": "a.pdf"}]), encoding="utf-8")
    (tmp_path / "params.yaml").write_text("synthesize:\n  multiple_choice: false\n", encoding="utf-8")
    result = invoke(["synthesize", "--pages", "pages.jsonl", "--qa-dir", "qa", "--prompt",
                     str(repo_root / "prompts/synthesize.v2.txt"), "--ledger", "ledger.jsonl", "--out", "out.jsonl",
                     "--rejected", "rejected.jsonl", "--metrics", "metrics.json", "--no-progress"], cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert "synthesize: b.pdf yields no pairs: no Q&A pair is grounded in it" in result.output
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert list(metrics["docs_without_pairs"]) == ["b.pdf"]


def test_load_qa_files_other_errors(tmp_path):
    with pytest.raises(InputError, match="no .json Q&A files"):
        load_qa_files(tmp_path)
    (tmp_path / "x.json").write_text('{"Pergunta": "Q", "Resposta": "A"}')
    with pytest.raises(InputError, match="expected a JSON list"):
        load_qa_files(tmp_path)
    (tmp_path / "x.json").write_text('[{"Pergunta": "Q",\n "Resposta": }]')
    with pytest.raises(InputError, match=r"x\.json:2: not valid JSON"):
        load_qa_files(tmp_path)


# --- chunk_pages -----------------------------------------------------------------------------------
def _art(n: int, k: int, tag: str) -> str:
    """An article of k words: k + 4 tokens ("Art", ".", "1º", k words, ".")."""
    return f"Art. {n}º " + " ".join(f"{tag}{j}" for j in range(k)) + "."


A1, A2, A3 = _art(1, 20, "a"), _art(2, 20, "b"), _art(3, 20, "c")           # 24 tokens each
PAR = "§ 1º " + " ".join(f"d{j}" for j in range(10)) + "."                   # 13 tokens
INC = "I – " + " ".join(f"e{j}" for j in range(5)) + ";"                     # 8 tokens
B1 = _art(1, 20, "f")
CHUNK_PAGES = [
    {"doc": "a.pdf", "page": 1, "status": "ok", "text": f"{A1}\n{A2}"},
    {"doc": "a.pdf", "page": 2, "status": "ok", "text": f"{A3}\n{PAR}\n{INC}"},
    {"doc": "a.pdf", "page": 3, "status": "empty", "text": _art(9, 5, "z")},  # not ok: ignored
    {"doc": "b.pdf", "page": 1, "status": "ok", "text": B1},
]


def test_token_counts_of_the_chunk_fixtures():
    assert [count_tokens(u) for u in (A1, A2, A3, PAR, INC, B1)] == [24, 24, 24, 13, 8, 24]


def test_chunk_pages_keeps_articles_whole_overlaps_and_tracks_pages():
    chunks = chunk_pages(CHUNK_PAGES, 60, 30)
    assert [(c["chunk_id"], c["text"].split("\n"), c["page"], c["pages"]) for c in chunks] == [
        ("a.pdf#0", [A1, A2], 1, [1]),
        ("a.pdf#1", [A2, A3], 1, [1, 2]),        # repeats A2 (24 <= 30 tokens); spans the page break
        ("a.pdf#2", [A3, PAR, INC], 2, [2]),     # repeats A3; A3+PAR would be 37 > 30
        ("b.pdf#0", [B1], 1, [1]),               # ids count per document
    ]
    for c in chunks:
        assert set(c) == {"doc", "chunk_id", "page", "pages", "text", "tokens"}
        assert c["doc"] == c["chunk_id"].split("#")[0]
        assert c["tokens"] == count_tokens(c["text"]) <= 60
    assert [c["tokens"] for c in chunks] == [48, 48, 45, 24]
    assert "z0" not in " ".join(c["text"] for c in chunks)


def test_chunk_pages_without_overlap_shares_nothing():
    chunks = chunk_pages(CHUNK_PAGES, 60, 0)
    assert [(c["chunk_id"], c["text"].split("\n"), c["pages"]) for c in chunks] == [
        ("a.pdf#0", [A1, A2], [1]), ("a.pdf#1", [A3, PAR, INC], [2]), ("b.pdf#0", [B1], [1])]


def test_chunk_overlap_carries_several_small_units_up_to_the_limit():
    numerals = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X"]
    incisos = [f"{n} – " + " ".join(f"{n.lower()}{j}" for j in range(5)) + ";" for n in numerals]  # 8 tokens
    assert {count_tokens(u) for u in incisos} == {8}
    pages = [{"doc": "d.pdf", "page": 4, "status": "ok", "text": "\n".join(incisos)}]
    chunks = chunk_pages(pages, 50, 20)
    # 6 incisos (48 tokens), then the last two (16 <= 20; three would be 24) start the next chunk
    assert [c["text"].split("\n") for c in chunks] == [incisos[:6], incisos[4:]]
    assert [c["tokens"] for c in chunks] == [48, 48]
    assert all(c["page"] == 4 and c["pages"] == [4] for c in chunks)


def test_chunk_overlap_never_pushes_a_chunk_over_the_limit():
    small, big = _art(1, 10, "s"), _art(2, 50, "b")  # 14 and 54 tokens
    pages = [{"doc": "d.pdf", "page": 1, "status": "ok", "text": f"{small}\n{big}"}]
    chunks = chunk_pages(pages, 60, 30)
    # repeating the 14-token article before the 54-token one would make 68 > 60: no overlap then
    assert [c["text"] for c in chunks] == [small, big]
    assert all(c["tokens"] <= 60 for c in chunks)


def test_chunk_pages_splits_a_long_article_at_sentence_ends():
    sentences = [f"Frase numero {j} do artigo." for j in range(30)]  # 6 tokens each
    text = "Art. 9º " + " ".join(sentences)
    assert count_tokens(text) == 183
    chunks = chunk_pages([{"doc": "d.pdf", "page": 7, "status": "ok", "text": text}], 60, 0)
    assert [c["tokens"] for c in chunks] == [57, 60, 60, 6]
    assert chunks[0]["text"].startswith("Art. 9º Frase numero 0 ")
    assert all(c["text"].endswith("do artigo.") for c in chunks)  # cut between sentences
    assert " ".join(c["text"] for c in chunks) == text
    assert all(c["page"] == 7 and c["pages"] == [7] for c in chunks)
    assert [c["chunk_id"] for c in chunks] == ["d.pdf#0", "d.pdf#1", "d.pdf#2", "d.pdf#3"]


def test_chunk_pages_splits_a_sentence_longer_than_the_limit_at_words():
    text = "Texto " + " ".join(f"w{j}" for j in range(150))  # no sentence end at all
    chunks = chunk_pages([{"doc": "d.pdf", "page": 2, "status": "ok", "text": text}], 50, 0)
    assert len(chunks) == 4
    assert all(0 < c["tokens"] <= 50 for c in chunks)
    assert " ".join(c["text"] for c in chunks) == text  # whole words, none lost or repeated
    assert all(c["pages"] == [2] for c in chunks)


def test_long_article_keeps_its_heading_with_its_number():
    text = "Art. 9º " + " ".join(f"w{j}" for j in range(57)) + "."  # 61 tokens, one sentence
    chunks = chunk_pages([{"doc": "d.pdf", "page": 1, "status": "ok", "text": text}], 60, 10)
    assert all(c["tokens"] <= 60 for c in chunks)
    assert chunks[0]["text"].startswith("Art. 9º w0")  # today: chunks[0]["text"] == "Art." (2 tokens)
    assert all(count_tokens(c["text"]) > 2 for c in chunks)


def test_chunk_pages_falls_back_to_paragraphs_without_articles():
    paras = [" ".join(f"p{i}w{j}" for j in range(20)) + "." for i in range(3)]  # 21 tokens each
    pages = [{"doc": "d.pdf", "page": 1, "status": "ok", "text": "\n\n".join(paras)}]
    chunks = chunk_pages(pages, 50, 0)
    assert [c["text"].split("\n") for c in chunks] == [paras[:2], paras[2:]]


def test_chunk_pages_of_nothing():
    assert chunk_pages([], 60, 0) == []
    assert chunk_pages([{"doc": "d.pdf", "page": 1, "status": "empty", "text": ""}], 60, 0) == []


# --- ground_generated -----------------------------------------------------------------------------
CHUNK = {"doc": "a.pdf", "chunk_id": "a.pdf#3", "page": 2, "pages": [2, 3], "tokens": 40,
         "text": "Art. 4º A jornada de estágio não poderá ultrapassar seis horas diárias.\n"
                 "Art. 5º O seguro contra acidentes pessoais é contratado pela universidade."}
# 3 of its 7 content words are in the chunk: 0.4286 < 0.6 overall, but >= 0.3 of a quoted span
PARTLY = "Seis horas diárias, salvo acordo coletivo específico."


def _gen(q, a, span="", distractors=()):
    return {"pergunta": q, "resposta": a, "trecho": span, "distratores": list(distractors)}


def test_ground_generated_keeps_supported_pairs_with_span_and_distractors():
    pairs = [
        _gen(" Quem contrata o seguro? ", " A universidade contrata o seguro contra acidentes. ",
             "O seguro contra acidentes pessoais é contratado pela universidade.",
             [" O estudante. ", "", "A empresa concedente.", "  "]),
        _gen("Qual a jornada diária?", PARTLY, "NÃO PODERÁ ultrapassar seis horas DIARIAS"),  # folded match
        _gen("Qual a jornada?", PARTLY, "não poderá ultrapassar oito horas diárias"),        # span not in chunk
        _gen("Quem acompanha?", PARTLY, "A jornada de estágio"),               # answer hardly in the span
        _gen("Quando?", "Biblioteca aos sábados.", ""),                       # nothing supports it
    ]
    kept, rejected = ground_generated(CHUNK, pairs, 0.6)
    assert kept == [
        {"question": "Quem contrata o seguro?", "answer": "A universidade contrata o seguro contra acidentes.",
         "source": "a.pdf#3[0]", "id": pair_id("a.pdf", "Quem contrata o seguro?"), "kind": "open",
         "doc": "a.pdf", "page": 2, "chunk_id": "a.pdf#3",
         "span": "O seguro contra acidentes pessoais é contratado pela universidade.", "span_found": True,
         "grounding": 0.8, "distractors": ["O estudante.", "A empresa concedente."]},
        {"question": "Qual a jornada diária?", "answer": PARTLY, "source": "a.pdf#3[1]",
         "id": pair_id("a.pdf", "Qual a jornada diária?"), "kind": "open", "doc": "a.pdf", "page": 2,
         "chunk_id": "a.pdf#3", "span": "NÃO PODERÁ ultrapassar seis horas DIARIAS", "span_found": True,
         "grounding": 0.4286, "distractors": []},
    ]
    assert rejected == [
        {"question": "Qual a jornada?", "answer": PARTLY, "source": "a.pdf#3[2]", "reason": "ungrounded",
         "grounding": 0.4286},
        {"question": "Quem acompanha?", "answer": PARTLY, "source": "a.pdf#3[3]", "reason": "ungrounded",
         "grounding": 0.4286},
        {"question": "Quando?", "answer": "Biblioteca aos sábados.", "source": "a.pdf#3[4]",
         "reason": "ungrounded", "grounding": 0.0},
    ]


def test_the_quoted_span_bar_is_a_param():
    pair = _gen("Qual a jornada diária?", PARTLY, "NÃO PODERÁ ultrapassar seis horas DIARIAS")
    for bar, kept_n in ((0.3, 1), (0.9, 0)):  # PARTLY overlaps that span by well over 0.3, under 0.9
        kept, rejected = ground_generated(CHUNK, [pair], 0.6, span_min_grounding=bar)
        assert (len(kept), len(rejected)) == (kept_n, 1 - kept_n)
    from gabarito.params import SynthesizeParams

    assert SynthesizeParams().span_min_grounding == 0.3 == SynthesizeParams().min_grounding / 2


def test_ground_generated_lexical_overlap_alone_is_enough_and_threshold_is_inclusive():
    # no quoted span: kept on overlap with the chunk alone, span_found False
    answer = "Seis horas diárias, salvo acordo."  # seis horas diarias salvo acordo: 3/5 in the chunk
    kept, rejected = ground_generated(CHUNK, [_gen("Q jornada?", answer)], 0.6)
    assert rejected == [] and kept[0]["grounding"] == 0.6
    assert (kept[0]["span"], kept[0]["span_found"], kept[0]["distractors"]) == ("", False, [])
    kept, rejected = ground_generated(CHUNK, [_gen("Q jornada?", answer)], 0.61)
    assert kept == [] and rejected[0]["grounding"] == 0.6
    # a span that is only stopwords is never "found"
    kept, _ = ground_generated(CHUNK, [_gen("Q?", PARTLY, "de da do")], 0.6)
    assert kept == []


# --- drop_near_duplicates ---------------------------------------------------------------------------
def _q(id_, doc, question, answer="Uma resposta."):
    return {"id": id_, "doc": doc, "question": question, "answer": answer}


def test_drop_near_duplicates_keeps_the_first_within_a_document():
    pairs = [
        _q("p1", "a.pdf", "Qual é a carga horária máxima do estágio?"),         # carga horaria maxima estagio
        _q("p2", "a.pdf", "Qual a CARGA horária máxima de estágio?"),          # same words: 1.0
        _q("p3", "b.pdf", "Qual é a carga horária máxima do estágio?"),         # other document: kept
        _q("p4", "a.pdf", "Qual é a carga horária máxima do estágio obrigatório?"),  # 4/5 = 0.8
        _q("p5", "a.pdf", "Quem assina o termo de compromisso?"),
        _q("p6", "a.pdf", "Quem assina o termo de compromisso de estágio?"),   # 3/4 = 0.75 with p5
    ]
    kept, rejected = drop_near_duplicates(pairs, 0.8)
    assert [k["id"] for k in kept] == ["p1", "p3", "p5", "p6"]
    assert rejected == [{**pairs[1], "reason": "near_duplicate", "duplicate_of": "p1"},
                        {**pairs[3], "reason": "near_duplicate", "duplicate_of": "p1"}]
    kept, rejected = drop_near_duplicates(pairs, 0.81)
    assert [k["id"] for k in kept] == ["p1", "p3", "p4", "p5", "p6"]
    assert [(r["id"], r["duplicate_of"]) for r in rejected] == [("p2", "p1")]
    kept, rejected = drop_near_duplicates(pairs, 0.75)
    assert [(r["id"], r["duplicate_of"]) for r in rejected] == [("p2", "p1"), ("p4", "p1"), ("p6", "p5")]
    assert drop_near_duplicates([], 0.8) == ([], [])


def test_questions_without_content_words_are_never_near_duplicates():
    pairs = [_q("p1", "a.pdf", "Qual é?"), _q("p2", "a.pdf", "Qual é?")]
    kept, rejected = drop_near_duplicates(pairs, 0.5)
    assert [k["id"] for k in kept] == ["p1", "p2"] and rejected == []


# --- split_documents ---------------------------------------------------------------------------------
def test_split_documents_holds_out_whole_documents():
    docs = ["d1", "d2", "d3", "d4"]
    assert split_documents(docs, 0.5, 0) == {"d1": "validation", "d2": "train", "d3": "train", "d4": "validation"}
    assert split_documents(docs, 0.5, 7) == {"d1": "validation", "d2": "validation", "d3": "train", "d4": "train"}
    # deterministic, independent of input order and repetition
    assert split_documents(list(reversed(docs)) + docs, 0.5, 0) == split_documents(docs, 0.5, 0)
    assert list(split_documents(docs, 0.5, 0).values()).count("validation") == 2
    assert set(split_documents(docs, 0.0, 0).values()) == {"train"}


def test_split_documents_never_puts_everything_in_validation():
    assert split_documents(["only.pdf", "only.pdf"], 0.9, 0) == {"only.pdf": "train"}
    assert split_documents(["a.pdf", "b.pdf"], 0.5, 0) == {"a.pdf": "train", "b.pdf": "validation"}
    assert list(split_documents(["d1", "d2", "d3"], 0.9, 0).values()).count("train") == 1
    assert split_documents([], 0.5, 0) == {}


# --- to_multiple_choice -------------------------------------------------------------------------------
MC_PAGE_TEXT = ("Art. 4º A jornada de estágio não poderá ultrapassar 6 (seis) horas diárias.\n"
                "Art. 5º A carga horária do estágio obrigatório é definida no Projeto Pedagógico do Curso.\n"
                "Art. 6º O seguro contra acidentes pessoais é contratado pela universidade.")
MC_PAGES = [{"doc": "a.pdf", "page": 1, "status": "ok", "text": MC_PAGE_TEXT},
            {"doc": "b.pdf", "page": 1, "status": "ok", "text": "Art. 1º O trancamento total."}]


def _mc(doc, question, answer, split="train", **extra):
    return {"id": pair_id(doc, question), "kind": "open", "doc": doc, "page": 1, "question": question,
            "answer": answer, "split": split, **extra}


MC_PAIRS = [
    _mc("a.pdf", "Qual a jornada diária máxima?", "Seis horas diárias."),                           # 19 chars
    _mc("a.pdf", "Onde se define a carga horária?", "No Projeto Pedagógico do Curso."),              # 31
    _mc("a.pdf", "Quem contrata o seguro?", "A universidade."),                                     # 15
    _mc("a.pdf", "Qual a jornada semanal máxima?", "Trinta horas semanais."),                      # 22
    _mc("a.pdf", "Quem decide os casos omissos?", "Pela Pró-Reitoria de Graduação.",               # 31
        span="Art. 9º Os casos omissos são decididos pela Pró-Reitoria de Graduação.", span_found=True,
        distractors=["Pelo Reitor.", "  ", "Pelo Conselho Universitário.", "Pela Pró-Reitoria de Graduação.",
                     "Pelo estudante.", "Pela empresa."]),
    _mc("a.pdf", "Com que frequência o relatório é entregue?", "Uma vez por semestre.",          # 21
        span="Art. 8º O relatório é entregue uma vez por semestre.", span_found=True,
        distractors=["Uma vez por ano."]),
    _mc("b.pdf", "Por quantos semestres se tranca?", "Quatro semestres.", split="validation"),
]


def test_to_multiple_choice_builds_four_option_items():
    items = to_multiple_choice(MC_PAIRS, MC_PAGES, 0)
    # b.pdf has a single pair and no distractors: no item can be made from it
    assert [i["question"] for i in items] == [p["question"] for p in MC_PAIRS[:6]]
    answers = [p["answer"] for p in MC_PAIRS]
    expected_distractors = [
        {answers[5], answers[3], answers[2]},                         # closest in length: 21, 22, 15 to 19
        {answers[4], answers[3], answers[5]},                         # 31 (tie by id), 22, 21
        {answers[0], answers[5], answers[3]},                         # 19, 21, 22 to 15
        {answers[5], answers[0], answers[2]},                         # 21, 19, 15 to 22
        {"Pelo Reitor.", "Pelo Conselho Universitário.", "Pelo estudante."},  # the LLM's, blanks/answer out
        {"Uma vez por ano.", answers[3], answers[0]},                 # the LLM's one, then 22 and 19 to 21
    ]
    for item, pair, distractors in zip(items, MC_PAIRS, expected_distractors):
        assert set(item) == {"id", "kind", "source", "split", "doc", "page", "context", "question", "answers",
                             "label", "question_type", "none_correct"}
        assert item["id"] == pair["id"].replace("pdf-", "pdfmc-") and item["id"].startswith("pdfmc-")
        assert (item["kind"], item["source"], item["question_type"], item["none_correct"]) == \
            ("mcq", "pdf", "regulation", False)
        assert (item["split"], item["doc"], item["page"]) == ("train", "a.pdf", 1)
        assert len(item["answers"]) == 4 and item["answers"][item["label"]] == pair["answer"]
        assert set(item["answers"]) - {pair["answer"]} == distractors
    # the context: the LLM's quoted span when it wrote distractors and the span is in the text,
    # else the page's best article
    assert [i["context"] for i in items] == [
        "Art. 4º A jornada de estágio não poderá ultrapassar 6 (seis) horas diárias.",
        "Art. 5º A carga horária do estágio obrigatório é definida no Projeto Pedagógico do Curso.",
        "Art. 6º O seguro contra acidentes pessoais é contratado pela universidade.",
        "Art. 4º A jornada de estágio não poderá ultrapassar 6 (seis) horas diárias.",
        MC_PAIRS[4]["span"],
        MC_PAIRS[5]["span"],
    ]


def test_to_multiple_choice_ties_in_length_are_broken_by_id():
    def pair(id_, answer):
        return {"id": id_, "doc": "a.pdf", "page": 1, "question": f"Pergunta {id_}?", "answer": answer,
                "split": "train"}

    target = pair("pdf-9", "x" * 10)
    siblings = [pair("pdf-3", "c" * 12), pair("pdf-1", "a" * 8), pair("pdf-2", "b" * 14), pair("pdf-0", "o" * 6)]
    [item] = [i for i in to_multiple_choice([target, *siblings], MC_PAGES, 0) if i["id"] == "pdfmc-9"]
    # distances 2, 2, 4, 4: both at 2, then pdf-0 before pdf-2
    assert sorted(item["answers"]) == sorted(["x" * 10, "a" * 8, "c" * 12, "o" * 6])


LABELS_SEED_0 = [0, 2, 3, 3, 2, 0]
LABELS_SEED_1 = [3, 1, 2, 1, 2, 1]


def test_to_multiple_choice_order_is_seeded_and_deterministic():
    first = to_multiple_choice(MC_PAIRS, MC_PAGES, 0)
    assert first == to_multiple_choice(MC_PAIRS, MC_PAGES, 0)
    assert [i["label"] for i in first] == LABELS_SEED_0
    other = to_multiple_choice(MC_PAIRS, MC_PAGES, 1)
    assert [i["label"] for i in other] == LABELS_SEED_1
    for a, b in zip(first, other):
        assert sorted(a["answers"]) == sorted(b["answers"]) and b["answers"][b["label"]] == a["answers"][a["label"]]


def test_to_multiple_choice_carries_the_split_and_skips_thin_documents():
    pairs = [_mc("b.pdf", q, a, split="validation")
             for q, a in [("Quantos semestres?", "Quatro."), ("Quem pede?", "O estudante."),
                          ("Onde se pede?", "No sistema acadêmico."), ("Até quando?", "Até 15 de março.")]]
    items = to_multiple_choice(pairs, MC_PAGES, 0)
    assert len(items) == 4 and {i["split"] for i in items} == {"validation"}
    assert to_multiple_choice(pairs[:3], MC_PAGES, 0) == []  # only two other answers each
    assert to_multiple_choice([], MC_PAGES, 0) == []


def test_multiple_choice_options_are_distinct():
    pairs = [_mc("a.pdf", "O estágio pode ser feito nas férias?", "Depende."),  # 8 chars: Não./Não./Sim. closest
             _mc("a.pdf", "O estágio pode ser prorrogado?", "Não."),
             _mc("a.pdf", "O estágio obrigatório é remunerado?", "Não."),
             _mc("a.pdf", "O seguro é obrigatório?", "Sim."),
             _mc("a.pdf", "Quem contrata o seguro?", "A universidade."),
             _mc("a.pdf", "Qual a jornada semanal?", "Trinta horas.", span="Art. 4º ...",
                 distractors=["Vinte horas.", "Vinte horas.", "trinta horas."])]
    items = {i["question"]: i["answers"] for i in to_multiple_choice(pairs, MC_PAGES, 0)}
    repeated = {q: options for q, options in items.items() if len({o.casefold() for o in options}) < 4}
    # today three items repeat an option, e.g. "O estágio pode ser feito nas férias?" gets "Não." twice
    # and "Qual a jornada semanal?" gets ["Vinte horas.", "Vinte horas.", "trinta horas.", "Trinta horas."]
    assert repeated == {}


# --- finish -------------------------------------------------------------------------------------------
def test_finish_drops_near_duplicates_splits_documents_and_adds_items():
    kept = [_mc("a.pdf", q, a) for q, a in [
        ("Qual a jornada diária máxima?", "Seis horas diárias."),
        ("Qual é a jornada diária máxima?", "Seis horas por dia."),            # near duplicate of the first
        ("Quem contrata o seguro?", "A universidade."),
        ("Qual a jornada semanal máxima?", "Trinta horas semanais."),
        ("Onde se define a carga horária?", "No Projeto Pedagógico do Curso.")]]
    kept += [_mc("b.pdf", "Por quantos semestres se tranca?", "Quatro semestres.")]
    kept = [{k: v for k, v in pair.items() if k != "split"} for pair in kept]  # finish assigns the split
    rejected = [{"source": "qa.json[9]", "reason": "ungrounded", "grounding": 0.1},
                {"source": "a.pdf#2", "reason": "llm: invalid JSON", "raw": ""}]
    records, bad, metrics = finish(kept, rejected, MC_PAGES, SynthesizeParams())
    assert metrics == {"generated": 8, "kept": 5, "rejected": 3,
                       "rejected_by_reason": {"llm": 1, "near_duplicate": 1, "ungrounded": 1},
                       "kept_train": 4, "kept_validation": 1, "multiple_choice": 4,
                       "docs_validation": ["b.pdf"]}
    assert bad == rejected + [{**kept[1], "reason": "near_duplicate", "duplicate_of": kept[0]["id"]}]
    opens, items = records[:5], records[5:]
    assert [r["id"] for r in opens] == [kept[i]["id"] for i in (0, 2, 3, 4, 5)]
    assert {(r["doc"], r["split"]) for r in records} == {("a.pdf", "train"), ("b.pdf", "validation")}
    assert [i["kind"] for i in items] == ["mcq"] * 4  # b.pdf's single pair makes no item
    assert [i["id"] for i in items] == [r["id"].replace("pdf-", "pdfmc-") for r in opens[:4]]


def test_finish_without_multiple_choice_and_with_one_document():
    kept = [{k: v for k, v in p.items() if k not in ("split", "span", "distractors")} for p in MC_PAIRS[:4]]
    records, bad, metrics = finish(kept, [], MC_PAGES, SynthesizeParams(multiple_choice=False))
    assert records == [{**k, "split": "train"} for k in kept]
    assert bad == []
    assert metrics == {"generated": 4, "kept": 4, "rejected": 0, "rejected_by_reason": {}, "kept_train": 4,
                       "kept_validation": 0, "multiple_choice": 0, "docs_validation": []}


# --- the bundled regulations -----------------------------------------------------------------------
def _born_digital_pages(repo_root) -> list[dict]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(repo_root / "data/raw/pdfs/regulamento_estagio.pdf"))
    pages = []
    try:
        for i in range(len(pdf)):
            tp = pdf[i].get_textpage()
            pages.append({"doc": "regulamento_estagio.pdf", "page": i + 1, "status": "ok",
                          "text": tp.get_text_range()})
            tp.close()
    finally:
        pdf.close()
    return pages


def test_bundled_qa_file_shape(repo_root):
    pairs = load_qa_files(repo_root / "data/raw/qa")
    assert len(pairs) == 27
    assert all(p["question"] and p["answer"] for p in pairs)


def test_bundled_estagio_pairs_ground_on_the_born_digital_pdf(repo_root):
    pages = _born_digital_pages(repo_root)
    assert len(pages) == 3 and all(len(p["text"]) > 500 for p in pages)
    pairs = load_qa_files(repo_root / "data/raw/qa")
    kept, rejected = ground_pairs(pairs, pages, 0.6)
    estagio = [p for p in pairs if "estág" in p["question"].lower() or "estagiário" in p["question"].lower()]
    assert len(estagio) >= 10
    kept_q = {k["question"] for k in kept}
    assert all(p["question"] in kept_q for p in estagio)
    assert all(k["doc"] == "regulamento_estagio.pdf" and 1 <= k["page"] <= 3 for k in kept)
    for topic in UNRELATED:
        hits = [r for r in rejected if topic in r["answer"]]
        assert len(hits) == 1 and hits[0]["reason"] == "ungrounded"


def test_generated_pair_takes_the_page_its_span_comes_from():
    from stages.synthesize import ground_generated

    p1 = "Art. 1º O estágio é ato educativo supervisionado."
    p2 = "Art. 2º O seguro contra acidentes pessoais é contratado pela universidade."
    chunk = {"doc": "r.pdf", "chunk_id": "r.pdf#0", "page": 1, "pages": [1, 2], "text": p1 + "\n" + p2}
    pair = {"pergunta": "Quem contrata o seguro?", "resposta": "A universidade contrata o seguro contra acidentes.",
            "trecho": "O seguro contra acidentes pessoais é contratado pela universidade", "distratores": []}
    [kept], _ = ground_generated(chunk, [pair], 0.6, {1: p1, 2: p2})
    assert kept["page"] == 2 and kept["span_found"] is True
    [kept], _ = ground_generated(chunk, [pair], 0.6)  # without page texts: the chunk's first page
    assert kept["page"] == 1


def test_an_unverified_llm_span_is_not_used_as_context():
    from stages.synthesize import to_multiple_choice

    pages = [{"doc": "a.pdf", "page": 1, "text": "Art. 1º A jornada é de seis horas diárias."}]
    pair = _mc("a.pdf", "Qual a jornada?", "Seis horas diárias.", span="Texto inventado pelo modelo.",
               span_found=False, distractors=["Oito horas.", "Dez horas.", "Doze horas."])
    [item] = to_multiple_choice([pair], pages, seed=0)
    assert item["context"] == "Art. 1º A jornada é de seis horas diárias."


def test_a_qa_file_not_in_utf8_names_its_line_instead_of_a_traceback(tmp_path):
    # a Q&A file saved by a Windows editor in Windows-1252: "Pergunta" texts with "ção" on line 3
    (tmp_path / "qa.json").write_bytes('[\n  {"Pergunta": "Qual o prazo?",\n   "Resposta": "Trinta dias de inscrição."}\n]'
                                       .encode("cp1252"))
    with pytest.raises(InputError, match=r"qa\.json:3: not UTF-8 text \(byte 0xe7: .*\"CSV UTF-8\""):
        load_qa_files(tmp_path)
    (tmp_path / "qa.json").write_bytes("\ufeff[]".encode("utf-8"))  # a byte-order mark is no problem
    assert load_qa_files(tmp_path) == []
