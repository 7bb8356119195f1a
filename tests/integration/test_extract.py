"""Extraction on PDFs the tests generate: text layers, real tesseract OCR, and broken files."""

from __future__ import annotations

import re
import shutil

import pytest

from gabarito.params import ExtractParams
from stages.extract import extract_dir, summarize
from tests.pdfgen import (
    corrupt_pdf,
    encrypted_pdf,
    huge_page_pdf,
    mixed_pdf,
    scanned_pdf,
    text_pdf,
)

needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract not installed")

PAGE = (
    "RESOLUÇÃO Nº 5/2024 – CONSELHO DE GRADUAÇÃO\n\n"
    "Art. 1º A matrícula em disciplinas de graduação será feita pelo estudante no prazo de "
    "quinze dias, conforme o calendário acadêmico aprovado pela Pró-Reitoria.\n\n"
    "§ 1º A solicitação de trancamento poderá ser apresentada até a metade do período letivo, "
    "com justificativa e ciência do coordenador do curso.\n\n"
    "Art. 2º Esta resolução entra em vigor na data de sua publicação, revogadas as disposições "
    "em contrário. Porto Alegre, 15 de março de 2024."
)
KW = {"min_text_chars": 40, "ocr_dpi": 300, "ocr_lang": "por", "tesseract_config": "--psm 6"}


def words(text: str) -> list[str]:
    return re.findall(r"[A-Za-zÀ-ÿ]{3,}", text)


def recall(source: str, extracted: str) -> float:
    got = set(w.casefold() for w in words(extracted))
    src = [w.casefold() for w in words(source)]
    return sum(w in got for w in src) / len(src)


def test_text_layer_is_read_without_ocr(tmp_path):
    text_pdf(tmp_path / "pdfs" / "digital.pdf", [PAGE, "Art. 3º Os casos omissos serão resolvidos pela Câmara."])
    pages, reports = extract_dir(tmp_path / "pdfs", ExtractParams(**KW))
    assert [(p["doc"], p["page"], p["method"], p["status"]) for p in pages] == [
        ("digital.pdf", 1, "text", "ok"), ("digital.pdf", 2, "text", "ok")]
    assert pages[1]["text"] == "Art. 3º Os casos omissos serão resolvidos pela Câmara."
    assert "§ 1º A solicitação de trancamento poderá ser apresentada" in pages[0]["text"]
    assert all(p["quality"] > 0.9 for p in pages)
    assert reports == [{"doc": "digital.pdf", "status": "ok", "pages": 2, "message": ""}]


def test_headers_footers_page_numbers_and_hyphenation_are_cleaned(tmp_path):
    body = ["Art. 1º O estágio obrigatório terá carga horária definida no projeto pedagó-\ngico de cada curso.",
            "Art. 2º O termo de compromisso será assinado antes do início das atividades.",
            "Art. 3º O relatório final será entregue ao orientador docente."]
    text_pdf(tmp_path / "pdfs" / "r.pdf", body, header="Universidade Federal do Vale – Pró-Reitoria",
             footer="Página {page} de {pages}")
    pages, _ = extract_dir(tmp_path / "pdfs", ExtractParams(**KW))
    texts = [p["text"] for p in pages]
    assert texts[0] == "Art. 1º O estágio obrigatório terá carga horária definida no projeto pedagógico de cada curso."
    assert texts[1] == body[1] and texts[2] == body[2]
    assert not any("Pró-Reitoria" in t or "Página" in t for t in texts)


def test_a_garbled_text_layer_is_replaced_by_ocr(tmp_path):
    """A scan with an invisible OCR layer of broken diacritics, as bad PDF tools produce."""

    import pypdfium2 as pdfium
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    scanned_pdf(tmp_path / "scan.pdf", [PAGE], dpi=200, noise=0.0, seed=1)
    image = pdfium.PdfDocument(str(tmp_path / "scan.pdf"))[0].render(scale=200 / 72).to_pil()
    out = tmp_path / "pdfs" / "garbled.pdf"
    out.parent.mkdir()
    c = canvas.Canvas(str(out), pagesize=A4)
    c.drawImage(ImageReader(image), 0, 0, *A4)
    t = c.beginText(40, 800)
    t.setTextRenderMode(3)  # invisible, like an OCR layer
    for _ in range(8):
        t.textLine("RESOLU¸˜AO N~ 5/2024 Introdu¸˜ao a matr´icula ¸c˜ao ~~ §§ ´´ informa¸c˜oes")
    c.drawText(t)
    c.save()
    pages, reports = extract_dir(tmp_path / "pdfs", ExtractParams(**{**KW, "min_text_quality": 0.6}))
    [page] = pages
    assert page["method"] == "ocr" and reports[0]["status"] == "ocr"
    assert recall(PAGE, page["text"]) >= 0.90


def test_blank_pdf_is_empty_never_ok(tmp_path):
    from reportlab.pdfgen import canvas

    (tmp_path / "pdfs").mkdir()
    c = canvas.Canvas(str(tmp_path / "pdfs" / "blank.pdf"))
    c.showPage()
    c.save()
    pages, reports = extract_dir(tmp_path / "pdfs", ExtractParams(**KW))
    assert [p["status"] for p in pages] == ["empty"]
    assert reports[0]["status"] == "empty" and "no text" in reports[0]["message"]


@needs_tesseract
def test_each_file_has_a_time_limit(tmp_path):
    from gabarito.pdf import extract_pdf

    scanned_pdf(tmp_path / "long.pdf", [PAGE] * 3, dpi=200, noise=0.0)
    pages, report = extract_pdf((tmp_path / "long.pdf").read_bytes(), ExtractParams(**KW, timeout_s=0.5),
                                doc="long.pdf")
    assert report["status"] == "timeout"
    assert len(pages) < 3 and "raise extract.timeout_s" in report["message"]


@needs_tesseract
def test_a_page_tesseract_fails_on_is_an_error_record_and_the_rest_goes_on(tmp_path, monkeypatch):
    # the real tesseract behind a wrapper that fails its first call, as a crash on one odd page would
    real = shutil.which("tesseract")
    shim = tmp_path / "bin" / "tesseract"
    shim.parent.mkdir()
    shim.write_text(f"""#!/bin/sh
if [ ! -e "{tmp_path}/failed-once" ]; then
  touch "{tmp_path}/failed-once"; echo "Error in pixReadMem: unknown format" >&2; exit 1
fi
exec "{real}" "$@"
""")
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim.parent}:{__import__('os').environ['PATH']}")
    scanned_pdf(tmp_path / "pdfs" / "a_scan.pdf", [PAGE, PAGE], dpi=200, noise=0.0)
    text_pdf(tmp_path / "pdfs" / "b_digital.pdf", [PAGE])
    pages, reports = extract_dir(tmp_path / "pdfs", ExtractParams(**KW))
    assert [(p["doc"], p["page"], p["status"]) for p in pages] == [
        ("a_scan.pdf", 1, "error"), ("a_scan.pdf", 2, "ok"), ("b_digital.pdf", 1, "ok")]
    assert pages[0]["text"] == "" and pages[0]["method"] == "ocr"
    assert recall(PAGE, pages[1]["text"]) >= 0.9  # the page after the failure was OCR'd as usual
    report = reports[0]
    assert report["status"] == "page_errors" and report["pages"] == 2
    assert "1 of 2 pages could not be read" in report["message"]
    assert "page 1: tesseract failed (1): Error in pixReadMem" in report["message"]
    assert reports[1]["status"] == "ok"
    summary = summarize(pages, reports)
    assert summary["pages_error"] == 1 and summary["files_by_status"] == {"ok": 1, "page_errors": 1}


@needs_tesseract
def test_image_only_scan_is_ocrd_in_portuguese_with_diacritics(tmp_path):
    scanned_pdf(tmp_path / "pdfs" / "scan.pdf", [PAGE], dpi=200, noise=0.01, seed=3)
    pages, reports = extract_dir(tmp_path / "pdfs", ExtractParams(**KW))
    [page] = pages
    assert page["method"] == "ocr" and page["status"] == "ok"
    assert recall(PAGE, page["text"]) >= 0.90
    assert page["quality"] > 0.8
    # diacritics survive OCR: words with accents are recovered as such
    accented = [w for w in words(PAGE) if re.search(r"[À-ÿ]", w)]
    assert recall(" ".join(accented), page["text"]) >= 0.90
    assert reports[0]["status"] == "ocr"


@needs_tesseract
def test_mixed_document_uses_each_method_per_page(tmp_path):
    mixed_pdf(tmp_path / "pdfs" / "mixed.pdf", [PAGE], [PAGE], dpi=200, noise=0.01)
    pages, _ = extract_dir(tmp_path / "pdfs", ExtractParams(**KW))
    assert [p["method"] for p in pages] == ["text", "ocr"]


def test_broken_files_are_reported_and_do_not_stop_the_others(tmp_path):
    pdfs = tmp_path / "pdfs"
    text_pdf(pdfs / "a_good.pdf", [PAGE])
    encrypted_pdf(pdfs / "b_locked.pdf", [PAGE], user_password="segredo")
    corrupt_pdf(pdfs / "c_broken.pdf")
    pages, reports = extract_dir(pdfs, ExtractParams(**KW))
    assert [p["doc"] for p in pages] == ["a_good.pdf"]
    status = {r["doc"]: r["status"] for r in reports}
    assert status == {"a_good.pdf": "ok", "b_locked.pdf": "encrypted", "c_broken.pdf": "corrupt"}
    messages = {r["doc"]: r["message"] for r in reports}
    assert "password" in messages["b_locked.pdf"]
    assert "re-download" in messages["c_broken.pdf"]
    summary = summarize(pages, reports)
    assert summary["files_by_status"] == {"corrupt": 1, "encrypted": 1, "ok": 1}
    assert summary["pages_text"] == 1 and summary["pages_ocr"] == 0
    assert summary["mean_quality_ocr"] is None and summary["mean_quality_text"] > 0.9


@needs_tesseract
def test_bundled_sample_pdfs(repo_root):
    pages, reports = extract_dir(repo_root / "data/raw/pdfs", ExtractParams(**KW))
    methods = {(p["doc"], p["method"]) for p in pages}
    assert ("regulamento_estagio.pdf", "text") in methods
    assert ("resolucao_trancamento_scan.pdf", "ocr") in methods
    assert {r["doc"]: r["status"] for r in reports} == {"regulamento_estagio.pdf": "ok",
                                                        "resolucao_trancamento_scan.pdf": "ocr"}
    assert not any("Pró-Reitoria de Graduação" in p["text"].split("\n")[0] for p in pages)
    scan_text = " ".join(p["text"] for p in pages if p["method"] == "ocr")
    assert "trancamento" in scan_text.casefold()


# --- a pixel budget for renders --------------------------------------------------------------------
def test_render_dpi_fits_the_pixel_budget():
    from gabarito.pdf import render_dpi

    a4 = (595.28, 841.89)
    # 300 dpi A4 is 2480 x 3508 = 8.7 M pixels: fits 40 M as asked
    assert render_dpi(*a4, ocr_dpi=300, min_ocr_dpi=150, max_render_pixels=40_000_000) == 300
    # 4 M pixels: 72 * sqrt(4e6 / (595.28 * 841.89)) = 203.4 -> 203 dpi, the highest whole dpi that fits
    dpi = render_dpi(*a4, ocr_dpi=300, min_ocr_dpi=150, max_render_pixels=4_000_000)
    assert dpi == 203
    assert (a4[0] * dpi / 72) * (a4[1] * dpi / 72) <= 4_000_000 < (a4[0] * 204 / 72) * (a4[1] * 204 / 72)
    # 20000 pt square: 40 M pixels allow only 22 dpi, under the 150 minimum -> not rendered
    assert render_dpi(20000, 20000, ocr_dpi=300, min_ocr_dpi=150, max_render_pixels=40_000_000) is None


def test_a_page_too_large_to_render_is_skipped_with_a_status_and_the_rest_goes_on(tmp_path):
    # 20000 x 20000 pt at 300 dpi would be 6.9 G pixels (~28 GB in pdfium's bitmap): once a MemoryError
    # that ended the stage. Nothing is rendered now, so this runs in well under a second and a few MB.
    import resource
    import time

    huge_page_pdf(tmp_path / "pdfs" / "poster.pdf", then=[PAGE])
    start, rss0 = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pages, reports = extract_dir(tmp_path / "pdfs", ExtractParams(**KW))
    assert time.monotonic() - start < 10
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 200_000  # KiB: no giant bitmap
    assert [(p["page"], p["status"], p["text"]) for p in pages][0] == (1, "too_large", "")
    assert pages[1]["status"] == "ok" and pages[1]["method"] == "text" and "matrícula" in pages[1]["text"]
    [report] = reports
    assert report["status"] == "page_errors"
    assert "page 1: 20000 x 20000 pt is too large to render" in report["message"]
    assert "extract.max_render_pixels" in report["message"]
    summary = summarize(pages, reports)
    assert summary["pages_too_large"] == 1 and summary["pages_downscaled"] == 0


@needs_tesseract
def test_a_page_over_the_budget_is_ocrd_at_a_lower_dpi(tmp_path):
    scanned_pdf(tmp_path / "pdfs" / "scan.pdf", [PAGE], dpi=200, noise=0.01, seed=3)
    pages, reports = extract_dir(tmp_path / "pdfs", ExtractParams(**KW, max_render_pixels=4_000_000))
    [page] = pages
    assert page["method"] == "ocr" and page["status"] == "ok" and page["render_dpi"] == 203
    assert recall(PAGE, page["text"]) >= 0.85  # 203 dpi still reads 11 pt print
    assert reports[0]["status"] == "ocr" and "rendered below 300 dpi" in reports[0]["message"]
    assert summarize(pages, reports)["pages_downscaled"] == 1
    # within the budget nothing changes: no render_dpi field, the same record as before the budget existed
    pages, _ = extract_dir(tmp_path / "pdfs", ExtractParams(**KW))
    assert "render_dpi" not in pages[0]
