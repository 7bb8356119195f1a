"""Extract every PDF into page records, with OCR for pages that have no usable text layer.

    gabarito extract --pdf-dir data/raw/pdfs --out data/interim/pages.jsonl --report metrics/extract.json

A page whose text layer has at least ``extract.min_text_chars`` characters is read with pdfium
(``method: text``); any other page is rendered at ``extract.ocr_dpi`` and read by tesseract in
``extract.ocr_lang`` (``method: ocr``). pdfium (pypdfium2, Apache-2.0/BSD) keeps Portuguese
diacritics intact and also renders pages, so one permissively licensed library does both jobs.

A file that cannot be read (corrupt, encrypted) never stops the stage: it ends in the report with
its status and a message saying what to do, and the other files go on.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

from stages.io import InputError

TEXT, OCR = "text", "ocr"


class TesseractMissing(InputError):
    pass


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
        raise RuntimeError(f"tesseract failed ({proc.returncode}): {err}")
    return proc.stdout.decode("utf-8", "replace")


def extract_pdf(data: bytes, *, doc: str, min_text_chars: int, ocr_dpi: int, ocr_lang: str,
                tesseract_config: str = "") -> tuple[list[dict], dict]:
    """Return (page records, file report) for one PDF given as bytes."""
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        msg = str(exc)
        if "password" in msg.lower():
            return [], {"doc": doc, "status": "encrypted", "pages": 0,
                        "message": "the PDF is password-protected: decrypt it (qpdf --decrypt) and re-add it"}
        return [], {"doc": doc, "status": "corrupt", "pages": 0,
                    "message": f"pdfium could not open it ({msg}): re-download or re-export the file"}
    pages = []
    try:
        for index in range(len(pdf)):
            page = pdf[index]
            textpage = page.get_textpage()
            text = textpage.get_text_range()
            textpage.close()
            method = TEXT
            if len(text.strip()) < min_text_chars:
                image = page.render(scale=ocr_dpi / 72).to_pil().convert("L")
                buf = io.BytesIO()
                image.save(buf, format="PNG")
                text = ocr_image(buf.getvalue(), lang=ocr_lang, config=tesseract_config)
                method = OCR
            page.close()
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            pages.append({
                "doc": doc,
                "page": index + 1,
                "method": method,
                "text": text,
                "status": "ok" if text.strip() else "empty",
            })
    finally:
        pdf.close()
    status = "ok" if any(p["status"] == "ok" for p in pages) else "empty"
    report = {"doc": doc, "status": status, "pages": len(pages),
              "message": "" if status == "ok" else "no text found on any page, even with OCR"}
    return pages, report


def extract_dir(pdf_dir: str | Path, **kwargs) -> tuple[list[dict], list[dict]]:
    pdf_dir = Path(pdf_dir)
    if not pdf_dir.is_dir():
        raise InputError(f"{pdf_dir}: not a folder. Put the PDFs to extract under it.")
    files = sorted(p for p in pdf_dir.rglob("*") if p.suffix.lower() == ".pdf" and p.is_file())
    from tqdm.auto import tqdm

    pages, reports = [], []
    for path in tqdm(files, desc="extract", unit="pdf", disable=len(files) < 2):
        doc = path.relative_to(pdf_dir).as_posix()
        file_pages, report = extract_pdf(path.read_bytes(), doc=doc, **kwargs)
        pages += file_pages
        reports.append(report)
    return pages, reports


def summarize(pages: list[dict], reports: list[dict]) -> dict:
    by_status: dict[str, int] = {}
    for r in reports:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    return {
        "files": len(reports),
        "files_by_status": dict(sorted(by_status.items())),
        "pages": len(pages),
        "pages_text": sum(p["method"] == TEXT for p in pages),
        "pages_ocr": sum(p["method"] == OCR for p in pages),
        "pages_empty": sum(p["status"] == "empty" for p in pages),
        "report": reports,
    }
