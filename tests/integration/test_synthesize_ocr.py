"""stages/synthesize.py on the bundled regulations as extract reads them: the born-digital PDF from its
text layer, the scan through tesseract's OCR (skipped without tesseract's Portuguese data)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from gabarito.params import SynthesizeParams
from stages.synthesize import finish, ground_pairs, load_qa_files

UNRELATED = ("Biblioteca Central", "Restaurante Universitário", "atividades complementares")


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
    from gabarito.params import ExtractParams
    from stages.extract import extract_dir

    pages, reports = extract_dir(repo_root / "data/raw/pdfs", ExtractParams())
    # the born-digital file is read from its text layer, the scan through OCR
    assert [(r["doc"], r["status"]) for r in reports] == [("regulamento_estagio.pdf", "ok"),
                                                          ("resolucao_trancamento_scan.pdf", "ocr")]
    return pages


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


def test_bundled_pairs_finish_one_document_per_split(repo_root, all_pages):
    kept, rejected = ground_pairs(load_qa_files(repo_root / "data/raw/qa"), all_pages, 0.6)
    records, bad, metrics = finish(kept, rejected, all_pages, SynthesizeParams())
    assert metrics == {"generated": 27, "kept": 24, "rejected": 3, "rejected_by_reason": {"ungrounded": 3},
                       "kept_train": 14, "kept_validation": 10, "multiple_choice": 24,
                       "docs_validation": ["resolucao_trancamento_scan.pdf"]}
    assert {r["split"] for r in records if r["doc"] == "regulamento_estagio.pdf"} == {"train"}
    assert {r["split"] for r in records if r["doc"] == "resolucao_trancamento_scan.pdf"} == {"validation"}
    opens = [r for r in records if r["kind"] == "open"]
    items = [r for r in records if r["kind"] == "mcq"]
    assert len(opens) == len(items) == 24
    for item in items:
        assert len(item["answers"]) == 4 and item["label"] in range(4)
        assert item["context"] and item["question_type"] == "regulation"
    assert len({r["id"] for r in records}) == 48
