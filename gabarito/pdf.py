"""Reading a PDF's pages: the text layer (two-column pages column by column) or, for image-only pages,
tesseract OCR of a page rendered within a pixel budget. The extract stage reads regulations with it; the
exams stage's booklet reader (gabarito.booklet) uses its OCR and render budget.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess

from gabarito.io import InputError
from gabarito.params import ExtractParams

TEXT, OCR = "text", "ocr"  # how a page's text was read


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


def render_dpi(width_pt: float, height_pt: float, *, ocr_dpi: int, min_ocr_dpi: int,
               max_render_pixels: int) -> int | None:
    """The dpi to render a ``width_pt`` x ``height_pt`` page at: ``ocr_dpi`` when its pixels fit in
    ``max_render_pixels``, else the highest whole dpi that fits, or None when even ``min_ocr_dpi`` does not.

    A page is 1/72 inch per point, so at ``dpi`` it has (w * dpi / 72) x (h * dpi / 72) pixels.
    """
    def pixels(dpi: float) -> float:
        return (width_pt * dpi / 72) * (height_pt * dpi / 72)

    if pixels(ocr_dpi) <= max_render_pixels:
        return ocr_dpi
    fit = int(72 * (max_render_pixels / (width_pt * height_pt)) ** 0.5)
    while fit >= min_ocr_dpi and pixels(fit) > max_render_pixels:  # float rounding at the boundary
        fit -= 1
    return fit if fit >= min_ocr_dpi else None


def _record(doc: str, number: int, method: str, text: str = "", quality: float = 0.0, status: str = "error") -> dict:
    return {"doc": doc, "page": number, "method": method, "text": text, "quality": quality, "status": status}


def _unopened(doc: str, error: str) -> dict:
    """The report of a file pdfium could not open."""
    if "password" in error.lower():
        return {"doc": doc, "status": "encrypted", "pages": 0,
                "message": "the PDF is password-protected: decrypt it (qpdf --decrypt) and re-add it"}
    return {"doc": doc, "status": "corrupt", "pages": 0,
            "message": f"pdfium could not open it ({error}): re-download or re-export the file"}


def _text_layer(page) -> str:
    textpage = page.get_textpage()
    text = textpage.get_text_range()
    textpage.close()
    return text


def _ocr(page, dpi: int, p: ExtractParams, deadline: float) -> str:
    """tesseract's text of ``page`` rendered at ``dpi``, in grey (what it binarizes anyway), within the
    file's time left."""
    import time

    image = page.render(scale=dpi / 72).to_pil().convert("L")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return ocr_image(buf.getvalue(), lang=p.ocr_lang, config=p.tesseract_config,
                     timeout=max(1.0, deadline - time.monotonic()))


def _read_page(page, number: int, p: ExtractParams, *, doc: str, knobs: str, deadline: float,
               errors: list[str], render_note: dict[int, int]) -> dict:
    """The record of one page: its text layer, or OCR when that is short or poor (see extract_pdf).

    A page that cannot be read is an "error" record and a line in ``errors``; a page rendered below
    ``ocr_dpi`` to fit the pixel budget is noted in ``render_note``. Closes ``page``.
    """
    import pypdfium2 as pdfium

    from gabarito.pdftext import page_quality

    method = TEXT
    try:
        text = _text_layer(page)
        quality = page_quality(text)["score"]
        if len(text.strip()) < p.min_text_chars or quality < p.min_text_quality:
            method = OCR
            width, height = page.get_size()
            dpi = render_dpi(width, height, ocr_dpi=p.ocr_dpi, min_ocr_dpi=p.min_ocr_dpi,
                             max_render_pixels=p.max_render_pixels)
            if dpi is None:
                errors.append(f"page {number}: {width:g} x {height:g} pt is too large to render for OCR "
                              f"even at {p.min_ocr_dpi} dpi within {knobs}.max_render_pixels="
                              f"{p.max_render_pixels:,}; skipped")
                too_large = _record(doc, number, method, status="too_large")
                if text.strip():  # keep what the text layer had, even if it is poor
                    too_large.update(method=TEXT, text=text, quality=quality)
                return too_large
            if dpi != p.ocr_dpi:
                render_note[number] = dpi
            ocr = _ocr(page, dpi, p, deadline)
            ocr_quality = page_quality(ocr)["score"]
            if ocr_quality >= quality or len(text.strip()) < p.min_text_chars:
                text, quality = ocr, ocr_quality
            else:
                method = TEXT
    except (pdfium.PdfiumError, OCRFailed) as exc:
        errors.append(f"page {number}: {exc}")
        return _record(doc, number, method)
    finally:
        page.close()
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    record = _record(doc, number, method, text, quality, "ok" if text.strip() else "empty")
    if method == OCR and number in render_note:
        record["render_dpi"] = render_note[number]
    return record


def _file_report(doc: str, pages: list[dict], errors: list[str], render_note: dict[int, int], timed_out: bool,
                 p: ExtractParams, knobs: str) -> dict:
    """A file's status (ok, ocr, empty, page_errors, timeout) and what the person can do about it."""
    if timed_out:
        status = "timeout"
        message = f"stopped after {p.timeout_s:g} s at page {len(pages) + 1}; raise {knobs}.timeout_s"
    elif errors:
        status, message = "page_errors", (
            f"{len(errors)} of {len(pages)} pages could not be read ({'; '.join(errors[:3])}"
            f"{'; ...' if len(errors) > 3 else ''}): "
            + ("scale the oversized page(s) down (re-export at a normal paper size), or raise "
               f"{knobs}.max_render_pixels if this machine has the memory"
               if any(pg["status"] == "too_large" for pg in pages)
               else "re-export the PDF (print it to a new PDF) and rerun"))
    elif not any(pg["status"] == "ok" for pg in pages):
        status, message = "empty", "no text found on any page, even with OCR"
    elif any(pg["method"] == OCR for pg in pages):
        status, message = "ocr", ""
    else:
        status, message = "ok", ""
    if render_note and status in ("ok", "ocr"):
        message = (f"page(s) {', '.join(map(str, sorted(render_note)))} rendered below {p.ocr_dpi} dpi to stay within "
                   f"{knobs}.max_render_pixels; OCR of small print may suffer")
    return {"doc": doc, "status": status, "pages": len(pages), "message": message}


def extract_pdf(data: bytes, p: ExtractParams, *, doc: str, knobs: str = "extract") -> tuple[list[dict], dict]:
    """Return (page records, file report) for one PDF given as bytes, read with the knobs of ``p``
    (``extract``).

    A page is read from its text layer when that has at least ``p.min_text_chars`` characters and a
    quality score of at least ``p.min_text_quality`` (a layer with a broken font map reads as
    "Introdu¸˜o"); otherwise the rendered page is OCR'd, and the better of the two is kept. The file
    gets ``p.timeout_s`` in all; a file that runs out keeps the pages done so far, status "timeout".

    A page whose render at ``p.ocr_dpi`` would exceed ``p.max_render_pixels`` is rendered at the lower
    dpi that fits (its record says ``render_dpi``), or, below ``p.min_ocr_dpi``, not rendered at all:
    status ``too_large``, no text, named in the file's report (a 20000 x 20000 pt page at 300 dpi is 6.9
    billion pixels, ~28 GB as pdfium's 4-byte bitmap).

    ``knobs``: the params section ``p`` comes from (``extract``), named in the messages
    so that the person raises the knob that the failing stage reads.
    """
    import time

    import pypdfium2 as pdfium

    deadline = time.monotonic() + p.timeout_s
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        return [], _unopened(doc, str(exc))
    pages, timed_out, errors = [], False, []
    render_note: dict[int, int] = {}  # page -> the lower dpi it was rendered at to fit the pixel budget
    try:
        for index in range(len(pdf)):
            if time.monotonic() > deadline:
                timed_out = True
                break
            try:
                page = pdf[index]
            except pdfium.PdfiumError as exc:
                errors.append(f"page {index + 1}: pdfium could not load it ({exc})")
                pages.append(_record(doc, index + 1, TEXT))
                continue
            try:
                pages.append(_read_page(page, index + 1, p, doc=doc, knobs=knobs,
                                        deadline=deadline, errors=errors, render_note=render_note))
            except subprocess.TimeoutExpired:
                timed_out = True
                break
    finally:
        pdf.close()
    return pages, _file_report(doc, pages, errors, render_note, timed_out, p, knobs)
