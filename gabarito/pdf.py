"""Reading a PDF's pages: the text layer (two-column pages column by column) or, for image-only pages,
tesseract OCR of a page rendered within a pixel budget. Shared by the extract and exams stages.
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


def _glyph_rows(textpage) -> list[list[tuple[float, float, float, float, str]]]:
    """The page's visible characters as (left, bottom, right, top, char), grouped into rows by the
    middle of their loose (advance-width) box, top row first."""
    chars = []
    for i in range(textpage.count_chars()):
        ch = textpage.get_text_range(i, 1)
        if ch.strip():
            chars.append((*textpage.get_charbox(i, loose=True), ch))
    rows: list[list] = []
    for box in sorted(chars, key=lambda b: -(b[1] + b[3]) / 2):
        mid, height = (box[1] + box[3]) / 2, box[3] - box[1]
        if rows and abs(rows[-1][0][0] - mid) <= 0.3 * max(height, rows[-1][0][1]):
            rows[-1][1].append(box)
        else:
            rows.append([(mid, height), [box]])
    return [row for _, row in rows]


def _row_text(chars: list) -> str:
    """One row's characters left to right, a space where the gap between two is a word space."""
    out, prev = "", None
    for box in sorted(chars, key=lambda b: b[0]):
        if prev is not None and box[0] - prev[2] > 0.15 * (box[3] - box[1]):
            out += " "
        out += "-" if box[4] == "\ufffe" else box[4]  # pdfium's mark for a hyphen that ends a line
        prev = box
    return out


def column_text(textpage, page_width: float) -> str | None:
    """A two-column page's text in reading order (left column, then right, block by block), or None
    when the page has no vertical gutter (one column: the caller keeps pdfium's own order).

    pdfium returns characters in content-stream order; a booklet drawn row by row across its columns
    then reads as interleaved halves of lines. Here rows are rebuilt from character boxes and the
    gutter is the x in the middle 30-70% of the page that separates the most rows into text on
    both sides (a row crosses x when a character covers it or its nearest characters on either side
    are closer than two character widths: a word space, not a gutter); three such rows at least,
    and more rows split than crossing, or the page is one column. Rows that cross it (a full-width title, a
    running header) stay where they are; between them, the left halves come before the right ones.
    A gap of more than 1.6 lines within a column reads as a blank line (a paragraph break).
    """
    rows = _glyph_rows(textpage)
    widths = sorted(b[2] - b[0] for row in rows for b in row)
    if len(rows) < 4 or not widths:
        return None
    min_gap = 2 * widths[len(widths) // 2]

    def crosses(row, x: float) -> bool:
        left = max((b[2] for b in row if b[2] <= x), default=None)
        right = min((b[0] for b in row if b[0] >= x), default=None)
        if any(b[0] < x < b[2] for b in row):
            return True
        return left is not None and right is not None and right - left < min_gap

    def separates(row, x: float) -> bool:  # text on both sides of x, and a gutter between
        return not crosses(row, x) and min(b[0] for b in row) < x < max(b[2] for b in row)

    candidates = [page_width * (0.3 + 0.4 * k / 80) for k in range(81)]
    gutter = max(candidates, key=lambda x: (sum(separates(r, x) for r in rows), -abs(x - page_width / 2)))
    split = [not crosses(r, gutter) for r in rows]
    if sum(separates(r, gutter) for r in rows) < 3 or sum(split) <= len(rows) - sum(split):
        return None
    mids = [sum(b[1] + b[3] for b in r) / (2 * len(r)) for r in rows]
    steps = sorted(a - b for a, b in zip(mids, mids[1:]))
    pitch = steps[len(steps) // 2]  # the usual line spacing
    out: list[str] = []
    block: list[int] = []

    def flush():
        for side in (lambda b: b[2] <= gutter, lambda b: b[0] >= gutter):
            last = None
            for i in block:
                text = _row_text([b for b in rows[i] if side(b)])
                if text:
                    if last is not None and mids[last] - mids[i] > 1.6 * pitch:
                        out.append("")  # a paragraph gap, as a blank line
                    out.append(text)
                    last = i
        block.clear()

    for i, is_split in enumerate(split):
        if is_split:
            block.append(i)
        else:
            flush()
            out.append(_row_text(rows[i]))
    flush()
    return "\n".join(out)


def _record(doc: str, number: int, method: str, text: str = "", quality: float = 0.0, status: str = "error") -> dict:
    return {"doc": doc, "page": number, "method": method, "text": text, "quality": quality, "status": status}


def _unopened(doc: str, error: str) -> dict:
    """The report of a file pdfium could not open."""
    if "password" in error.lower():
        return {"doc": doc, "status": "encrypted", "pages": 0,
                "message": "the PDF is password-protected: decrypt it (qpdf --decrypt) and re-add it"}
    return {"doc": doc, "status": "corrupt", "pages": 0,
            "message": f"pdfium could not open it ({error}): re-download or re-export the file"}


def _text_layer(page, columns: bool) -> str:
    textpage = page.get_textpage()
    text = textpage.get_text_range()
    if columns:
        text = column_text(textpage, page.get_width()) or text
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


def _read_page(page, number: int, p: ExtractParams, *, doc: str, columns: bool, knobs: str, deadline: float,
               errors: list[str], render_note: dict[int, int]) -> dict:
    """The record of one page: its text layer, or OCR when that is short or poor (see extract_pdf).

    A page that cannot be read is an "error" record and a line in ``errors``; a page rendered below
    ``ocr_dpi`` to fit the pixel budget is noted in ``render_note``. Closes ``page``.
    """
    import pypdfium2 as pdfium

    from gabarito.pdftext import page_quality

    method = TEXT
    try:
        text = _text_layer(page, columns)
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


def extract_pdf(data: bytes, p: ExtractParams, *, doc: str, columns: bool = False,
                knobs: str = "extract") -> tuple[list[dict], dict]:
    """Return (page records, file report) for one PDF given as bytes, read with the knobs of ``p``
    (``extract``, or ``exams.pdf``).

    A page is read from its text layer when that has at least ``p.min_text_chars`` characters and a
    quality score of at least ``p.min_text_quality`` (a layer with a broken font map reads as
    "Introdu¸˜o"); otherwise the rendered page is OCR'd, and the better of the two is kept. The file
    gets ``p.timeout_s`` in all; a file that runs out keeps the pages done so far, status "timeout".

    A page whose render at ``p.ocr_dpi`` would exceed ``p.max_render_pixels`` is rendered at the lower
    dpi that fits (its record says ``render_dpi``), or, below ``p.min_ocr_dpi``, not rendered at all:
    status ``too_large``, no text, named in the file's report (a 20000 x 20000 pt page at 300 dpi is 6.9
    billion pixels, ~28 GB as pdfium's 4-byte bitmap).

    ``columns``: a text layer laid out in two columns is read column by column (:func:`column_text`),
    for exam booklets; a one-column page reads as without it.

    ``knobs``: the params section ``p`` comes from (``extract``, ``exams.pdf``), named in the messages
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
                pages.append(_read_page(page, index + 1, p, doc=doc, columns=columns, knobs=knobs,
                                        deadline=deadline, errors=errors, render_note=render_note))
            except subprocess.TimeoutExpired:
                timed_out = True
                break
    finally:
        pdf.close()
    return pages, _file_report(doc, pages, errors, render_note, timed_out, p, knobs)
