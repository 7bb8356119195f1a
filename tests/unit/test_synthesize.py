"""stages/synthesize.py: grounding, Q&A import, chunking, and the bundled regulations data."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from stages.io import InputError
from stages.synthesize import (chunk_pages, content_words, ground_pairs, grounding, load_qa_files,
                               pair_id)

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
     "text": "A jornada de estágio não poderá ultrapassar 6 (seis) horas diárias e 30 (trinta) horas semanais."},
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
    assert kept[0] == {"id": pair_id("a.pdf", "Qual a jornada máxima?"), "kind": "open",
                       "question": "Qual a jornada máxima?", "answer": pairs[0]["answer"], "doc": "a.pdf",
                       "page": 2, "grounding": kept[0]["grounding"], "source": "qa.json[0]"}
    assert kept[0]["grounding"] >= 0.6 and kept[1]["grounding"] == 1.0
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
def _paras(prefix: str, n: int, size: int) -> list[str]:
    return [(f"{prefix}{i:02d} " + "palavra " * size)[:size].strip() for i in range(n)]


def _content_len(chunk: dict) -> int:
    return len(chunk["text"]) - 2 * (chunk["text"].count("\n\n"))


def test_chunk_pages_respects_size_overlap_and_provenance():
    p1, p2, p3 = _paras("x", 4, 70), _paras("y", 4, 70), _paras("z", 3, 70)
    pages = [
        {"doc": "a.pdf", "page": 1, "status": "ok", "text": "\n\n".join(p1)},
        {"doc": "a.pdf", "page": 2, "status": "ok", "text": "\n \n".join(p2)},
        {"doc": "a.pdf", "page": 3, "status": "empty", "text": ""},
        {"doc": "b.pdf", "page": 1, "status": "ok", "text": "\n\n".join(p3)},
    ]
    chunks = chunk_pages(pages, chunk_chars=250, overlap_chars=80)
    a = [c for c in chunks if c["doc"] == "a.pdf"]
    b = [c for c in chunks if c["doc"] == "b.pdf"]
    assert [c["chunk_id"] for c in chunks] == [f"a.pdf#{i}" for i in range(len(a))] + \
        [f"b.pdf#{i}" for i in range(len(chunks) - len(a))]
    assert len(a) == 4 and len(b) == 1
    for c in chunks:
        assert _content_len(c) <= 250
        assert c["page"] == c["pages"][0]
    # every paragraph of a.pdf appears, in order, and consecutive chunks share one paragraph (<= 80 chars)
    for prev, nxt in zip(a, a[1:]):
        shared = prev["text"].split("\n\n")[-1]
        assert nxt["text"].split("\n\n")[0] == shared and len(shared) <= 80
    seen = []
    for c in a:
        for part in c["text"].split("\n\n"):
            if not seen or seen[-1] != part:
                seen.append(part)
    assert seen == [p.strip() for p in p1 + p2]
    assert a[0]["pages"] == [1] and a[-1]["pages"] == [2]
    assert any(c["pages"] == [1, 2] for c in a)  # a chunk spanning the page break starts on page 1
    assert b[0] == {"doc": "b.pdf", "chunk_id": "b.pdf#0", "page": 1, "pages": [1],
                    "text": "\n\n".join(p3)}


def test_chunk_pages_hard_splits_long_paragraphs_and_no_overlap():
    text = "a" * 450
    chunks = chunk_pages([{"doc": "d.pdf", "page": 7, "status": "ok", "text": text}], 200, 0)
    assert [c["text"] for c in chunks] == ["a" * 200, "a" * 200, "a" * 50]
    assert all(c["page"] == 7 and c["pages"] == [7] for c in chunks)


def test_chunk_never_exceeds_chunk_chars_after_overlap():
    pages = [{"doc": "d.pdf", "page": 1, "status": "ok", "text": "a" * 50 + "\n\n" + "b" * 200}]
    chunks = chunk_pages(pages, chunk_chars=200, overlap_chars=60)
    assert all(_content_len(c) <= 200 for c in chunks), [_content_len(c) for c in chunks]


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


def _has_tesseract_por() -> bool:
    exe = shutil.which("tesseract")
    if exe is None:
        return False
    out = subprocess.run([exe, "--list-langs"], capture_output=True, text=True)
    return "por" in (out.stdout + out.stderr).split()


@pytest.fixture(scope="module")
def all_pages(repo_root):
    if not _has_tesseract_por():
        pytest.skip("tesseract with Portuguese data is not installed (make system-deps)")
    from stages.extract import extract_dir

    pages, reports = extract_dir(repo_root / "data/raw/pdfs", min_text_chars=40, ocr_dpi=300, ocr_lang="por",
                                 tesseract_config="--psm 6")
    assert [r["status"] for r in reports] == ["ok", "ok"]
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


def test_bundled_pairs_with_ocr_of_the_scan(repo_root, all_pages):
    pairs = load_qa_files(repo_root / "data/raw/qa")
    kept, rejected = ground_pairs(pairs, all_pages, 0.6)
    assert len(kept) >= 20
    assert len(kept) + len(rejected) == len(pairs)
    assert len(rejected) == 3
    assert sorted(r["source"] for r in rejected) == ["regulamentos_qa.json[10]", "regulamentos_qa.json[14]",
                                                      "regulamentos_qa.json[19]"]
    for topic in UNRELATED:
        assert sum(topic in r["answer"] for r in rejected) == 1
    assert all(r["reason"] == "ungrounded" and r["grounding"] < 0.6 for r in rejected)
    by_q = {k["question"]: k for k in kept}
    scan = by_q["Por quantos semestres é possível trancar totalmente a matrícula?"]
    assert scan["doc"] == "resolucao_trancamento_scan.pdf"
    born = by_q["Qual é a carga horária máxima de um estágio na UFVA?"]
    assert born["doc"] == "regulamento_estagio.pdf"
    docs = {k["doc"] for k in kept}
    assert docs == {"regulamento_estagio.pdf", "resolucao_trancamento_scan.pdf"}
    assert len({k["id"] for k in kept}) == len(kept)
