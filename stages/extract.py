"""Extract every PDF into page records, with OCR for pages that have no usable text layer.

    gabarito extract --pdf-dir data/raw/pdfs --out data/interim/pages.jsonl --report metrics/extract.json

A page whose text layer has at least ``extract.min_text_chars`` characters is read with pdfium
(``method: text``); any other page is rendered at ``extract.ocr_dpi`` and read by tesseract in
``extract.ocr_lang`` (``method: ocr``). pdfium (pypdfium2, Apache-2.0/BSD) keeps Portuguese
diacritics intact and also renders pages, so one permissively licensed library does both jobs.

Pages are then cleaned per document (:mod:`stages.pdftext`): repeated headers and footers, page
numbers and OCR junk removed, hyphenated and wrapped lines joined; each page keeps a quality score.

Every file ends with a status in the report: ok (text layer), ocr (some pages OCR'd), encrypted,
corrupt, empty, page_errors (pages pdfium or tesseract failed on; the others kept) or timeout
(``extract.timeout_s`` per file). A file that cannot be read never stops the stage: its report line
says what to do, and the other files go on. A page that cannot be read is kept as an ``error``
record, with no text, so the page numbers stay true.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

from stages.io import InputError
from stages.params import ExtractParams

TEXT, OCR = "text", "ocr"


class TesseractMissing(InputError):
    pass


class OCRFailed(RuntimeError):
    """tesseract ran and failed on one image: that page is lost, not the stage."""


def ocr_image(png: bytes, *, lang: str, config: str = "", timeout: float = 120.0) -> str:
    """Run tesseract on a PNG image and return its text."""
    exe = shutil.which("tesseract")
    if exe is None:
        raise TesseractMissing(
            "tesseract is not installed, and a page needs OCR. Install it with `make system-deps` "
            "(Debian/Ubuntu: apt-get install tesseract-ocr tesseract-ocr-por)."
        )
    cmd = [exe, "stdin", "stdout", "-l", lang, *config.split()]
    # one OCR thread: the stage is I/O-light and OpenMP oversubscribes small machines
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    proc = subprocess.run(cmd, input=png, capture_output=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        if "Failed loading language" in err or "Error opening data file" in err:
            raise TesseractMissing(
                f"tesseract has no '{lang}' language data. Install it with `make system-deps` "
                f"(Debian/Ubuntu: apt-get install tesseract-ocr-{lang})."
            )
        raise OCRFailed(f"tesseract failed ({proc.returncode}): {err}")
    return proc.stdout.decode("utf-8", "replace")


def extract_pdf(data: bytes, *, doc: str, min_text_chars: int, ocr_dpi: int, ocr_lang: str,
                tesseract_config: str = "", min_text_quality: float = 0.0, timeout_s: float = 600.0
                ) -> tuple[list[dict], dict]:
    """Return (page records, file report) for one PDF given as bytes.

    A page is read from its text layer when that has at least ``min_text_chars`` characters and a
    quality score of at least ``min_text_quality`` (a layer with a broken font map reads as
    "Introdu¸˜o"); otherwise the rendered page is OCR'd, and the better of the two is kept. The file
    gets ``timeout_s`` in all; a file that runs out keeps the pages done so far, status "timeout".
    """
    import time

    import pypdfium2 as pdfium

    from stages.pdftext import page_quality

    deadline = time.monotonic() + timeout_s
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        msg = str(exc)
        if "password" in msg.lower():
            return [], {"doc": doc, "status": "encrypted", "pages": 0,
                        "message": "the PDF is password-protected: decrypt it (qpdf --decrypt) and re-add it"}
        return [], {"doc": doc, "status": "corrupt", "pages": 0,
                    "message": f"pdfium could not open it ({msg}): re-download or re-export the file"}
    pages, timed_out, errors = [], False, []
    try:
        for index in range(len(pdf)):
            if time.monotonic() > deadline:
                timed_out = True
                break
            method = TEXT
            try:
                page = pdf[index]
            except pdfium.PdfiumError as exc:
                errors.append(f"page {index + 1}: pdfium could not load it ({exc})")
                pages.append({"doc": doc, "page": index + 1, "method": method, "text": "", "quality": 0.0,
                              "status": "error"})
                continue
            try:
                textpage = page.get_textpage()
                text = textpage.get_text_range()
                textpage.close()
                quality = page_quality(text)["score"]
                if len(text.strip()) < min_text_chars or quality < min_text_quality:
                    method = OCR
                    image = page.render(scale=ocr_dpi / 72).to_pil().convert("L")
                    buf = io.BytesIO()
                    image.save(buf, format="PNG")
                    ocr = ocr_image(buf.getvalue(), lang=ocr_lang, config=tesseract_config,
                                    timeout=max(1.0, deadline - time.monotonic()))
                    ocr_quality = page_quality(ocr)["score"]
                    if ocr_quality >= quality or len(text.strip()) < min_text_chars:
                        text, quality = ocr, ocr_quality
                    else:
                        method = TEXT
            except subprocess.TimeoutExpired:
                timed_out = True
                break
            except (pdfium.PdfiumError, OCRFailed) as exc:
                errors.append(f"page {index + 1}: {exc}")
                pages.append({"doc": doc, "page": index + 1, "method": method, "text": "", "quality": 0.0,
                              "status": "error"})
                continue
            finally:
                page.close()
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            pages.append({"doc": doc, "page": index + 1, "method": method, "text": text,
                          "quality": quality, "status": "ok" if text.strip() else "empty"})
    finally:
        pdf.close()
    if timed_out:
        status, message = "timeout", f"stopped after {timeout_s:g} s at page {len(pages) + 1}; raise extract.timeout_s"
    elif errors:
        status, message = "page_errors", (
            f"{len(errors)} of {len(pages)} pages could not be read, the others were kept ({'; '.join(errors[:3])}"
            f"{'; ...' if len(errors) > 3 else ''}): re-export the PDF (print it to a new PDF) and rerun")
    elif not any(p["status"] == "ok" for p in pages):
        status, message = "empty", "no text found on any page, even with OCR"
    elif any(p["method"] == OCR for p in pages):
        status, message = "ocr", ""
    else:
        status, message = "ok", ""
    return pages, {"doc": doc, "status": status, "pages": len(pages), "message": message}


def extract_dir(pdf_dir: str | Path, p: ExtractParams) -> tuple[list[dict], list[dict]]:
    """Extract and clean every PDF under ``pdf_dir`` (sorted, so the output order is stable)."""
    from tqdm.auto import tqdm

    from stages.pdftext import clean_document

    pdf_dir = Path(pdf_dir)
    if not pdf_dir.is_dir():
        raise InputError(f"{pdf_dir}: not a folder. Put the PDFs to extract under it.")
    files = sorted(p for p in pdf_dir.rglob("*") if p.suffix.lower() == ".pdf" and p.is_file())
    pages, reports = [], []
    for path in tqdm(files, desc="extract", unit="pdf", disable=len(files) < 2):
        doc = path.relative_to(pdf_dir).as_posix()
        file_pages, report = extract_pdf(path.read_bytes(), doc=doc, min_text_chars=p.min_text_chars,
                                         ocr_dpi=p.ocr_dpi, ocr_lang=p.ocr_lang, tesseract_config=p.tesseract_config,
                                         min_text_quality=p.min_text_quality, timeout_s=p.timeout_s)
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
        "mean_quality_ocr": round(sum(ocr_quality) / len(ocr_quality), 4) if ocr_quality else None,
        "mean_quality_text": round(sum(text_quality) / len(text_quality), 4) if text_quality else None,
        "report": reports,
    }
