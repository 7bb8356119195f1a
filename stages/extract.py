"""Extract every PDF into page records, with OCR for pages that have no usable text layer.

    gabarito extract --pdf-dir data/raw/pdfs --out data/interim/pages.jsonl --report metrics/extract.json

A page whose text layer has at least ``extract.min_text_chars`` characters is read with pdfium
(``method: text``); any other page is rendered at ``extract.ocr_dpi`` and read by tesseract in
``extract.ocr_lang`` (``method: ocr``). pdfium (pypdfium2, Apache-2.0/BSD) keeps Portuguese
diacritics intact and also renders pages, so one permissively licensed library does both jobs.

Pages are then cleaned per document (:mod:`gabarito.pdftext`): repeated headers and footers, page
numbers and OCR junk removed, hyphenated and wrapped lines joined; each page keeps a quality score.

Every file ends with a status in the report: ok (text layer), ocr (some pages OCR'd), encrypted,
corrupt, empty, page_errors (pages pdfium or tesseract failed on; the others kept) or timeout
(``extract.timeout_s`` per file). A file that cannot be read never stops the stage: its report line
says what to do, and the other files go on. A page that cannot be read is kept as an ``error``
record, with no text, so the page numbers stay true. A page too large to render within
``extract.max_render_pixels`` is OCR'd at a lower dpi (``render_dpi`` in its record), or, below
``extract.min_ocr_dpi``, kept as a ``too_large`` record with its text layer (if any) and named in
the file's report.
"""

from __future__ import annotations

from pathlib import Path

import click

from gabarito.clikit import log, params_option, require_output, user_errors
from gabarito.io import InputError, refuse_outside, write_json, write_jsonl
from gabarito.params import ExtractParams, load_section
from gabarito.pdf import OCR, TEXT, extract_pdf


def extract_dir(pdf_dir: str | Path, p: ExtractParams) -> tuple[list[dict], list[dict]]:
    """Extract and clean every PDF under ``pdf_dir`` (sorted, so the output order is stable)."""
    from tqdm.auto import tqdm

    from gabarito.pdftext import clean_document

    pdf_dir = Path(pdf_dir)
    if not pdf_dir.is_dir():
        raise InputError(f"{pdf_dir}: not a folder. Put the PDFs to extract under it.")
    files = sorted(p for p in pdf_dir.rglob("*") if p.suffix.lower() == ".pdf" and p.is_file())
    for path in files:  # before any work: a PDF linked from outside the project is not DVC's to track
        refuse_outside(path)
    pages, reports = [], []
    for path in tqdm(files, desc="extract", unit="pdf", disable=len(files) < 2):
        doc = path.relative_to(pdf_dir).as_posix()
        file_pages, report = extract_pdf(path.read_bytes(), p, doc=doc)
        cleaned = clean_document(file_pages, p)
        for page in cleaned:  # never "ok" with no text left after cleaning
            if page["status"] == "ok" and not page["text"].strip():
                page["status"] = "empty"
        if report["status"] in ("ok", "ocr") and not any(p["status"] == "ok" for p in cleaned):
            report = {**report, "status": "empty", "message": "no text left after removing headers and junk"}
        pages += cleaned
        reports.append(report)
    return pages, reports


def summarize(pages: list[dict], reports: list[dict]) -> dict:
    by_status: dict[str, int] = {}
    for r in reports:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    ocr_quality = [p["quality"] for p in pages if p["method"] == OCR and p["status"] == "ok"]
    text_quality = [p["quality"] for p in pages if p["method"] == TEXT and p["status"] == "ok"]
    return {
        "files": len(reports),
        "files_by_status": dict(sorted(by_status.items())),
        "pages": len(pages),
        "pages_text": sum(p["method"] == TEXT for p in pages),
        "pages_ocr": sum(p["method"] == OCR for p in pages),
        "pages_empty": sum(p["status"] == "empty" for p in pages),
        "pages_error": sum(p["status"] == "error" for p in pages),
        "pages_too_large": sum(p["status"] == "too_large" for p in pages),
        "pages_downscaled": sum("render_dpi" in p for p in pages),
        "mean_quality_ocr": round(sum(ocr_quality) / len(ocr_quality), 4) if ocr_quality else None,
        "mean_quality_text": round(sum(text_quality) / len(text_quality), 4) if text_quality else None,
        "report": reports,
    }


def failed_files(reports: list[dict]) -> list[dict]:
    """Report lines of the files that did not yield their text (corrupt, encrypted, empty, ...)."""
    return [r for r in reports if r["status"] not in ("ok", "ocr")]


# --- command: gabarito extract -------------------------------------------------------------------
@click.command("extract")
@click.option("--pdf-dir", type=click.Path(file_okay=False), required=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True)
@click.option("--report", type=click.Path(dir_okay=False), required=True)
@params_option
@user_errors
def command(pdf_dir, out, report, params_path):
    """Extract PDF pages to text: the text layer where present, tesseract OCR otherwise.

    Every page gets a quality score; a garbled text layer is OCR'd too. metrics/extract.json lists
    each file's status (ok, ocr, encrypted, corrupt, empty, page_errors, timeout).

    \b
    Examples:
      cp ~/regulamentos/*.pdf data/raw/pdfs/ && dvc repro extract
      dvc exp run -S extract.ocr_dpi=400             # sharper OCR for small print
    """
    p = load_section("extract", params_path)
    pages, reports = extract_dir(pdf_dir, p)
    for r in failed_files(reports):
        log(f"extract: WARNING {Path(pdf_dir) / r['doc']}: {r['status']}: {r['message']}")
    if not reports:
        raise InputError(f"{pdf_dir}: no text could be extracted from any PDF: the folder has no .pdf file.")
    require_output("extract", len(reports), sum(pg["status"] == "ok" for pg in pages),
                   what_in="PDF file(s)", what_out="pages with text",
                   hint=f"{pdf_dir}: no text could be extracted from any PDF (see messages above).")
    write_jsonl(out, pages)
    summary = summarize(pages, reports)
    write_json(report, summary)
    log(f"extract: {summary['files']} files, {summary['pages_text']} text + {summary['pages_ocr']} OCR pages -> {out}")
