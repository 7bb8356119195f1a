"""Exam booklets as printed: each page's lines with their positions, in reading order, from the PDF's
own objects (pdfium: characters with boxes, drawn paths, images) or, for a scanned page, from
tesseract's word boxes. Used by the exams stage, which reads questions out of these lines.

What the positions give that a text layer alone cannot:

* **columns**: the gutter is the x that the most rows do not cross (two columns side by side); rows
  that cross it (a title, a cover) stay whole, and between them the left column reads before the right;
* **running headers and footers**: lines in the top or bottom band of the page (``margin_share`` of its
  height) that come back on many pages, digits aside ("LC - 1º dia | Caderno 1 - AZUL - Página 7"), or
  that are page numbers: flagged ``marginal`` wherever they sit left or right;
* **boxed letters**: INEP prints an alternative as a capital letter in a small drawn box, then its text,
  with no "(A)" or "A)": the letter is taken out of the text and given, as ``boxed``, to the line its box
  sits beside;
* **figures**: images, and drawn paths grouped into areas (a chart's bars, a diagram's boxes) of at
  least ``min_figure_pt`` on each side that hold little text, with their page and place, so that the
  question whose lines surround one is flagged from the page itself, not from the word "figura";
* **paragraph gaps**: a line further below the previous one in its column than 1.6 lines.

Scanned pages are rendered in the main thread (pdfium is not thread-safe) and OCR'd by tesseract in
``ocr_workers`` parallel processes, each page within ``page_timeout_s``.
"""

from __future__ import annotations

import concurrent.futures
import io
import itertools
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field

from gabarito.io import InputError
from gabarito.params import LETTERS

TEXT, OCR = "text", "ocr"


@dataclass
class Word:
    x0: float
    top: float
    x1: float
    bottom: float
    text: str


@dataclass
class Line:
    page: int
    words: list[Word]
    column: int = 0  # 0 spans the page (or the page has one column), 1 left, 2 right
    gap_before: bool = False  # a paragraph gap above it in its column
    boxed: str = ""  # the letter printed in a small box at the line's start
    marginal: bool = False  # a running header or footer, or a page number
    ocr: bool = False  # read by tesseract from a scanned page

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    @property
    def x0(self) -> float:
        return min(w.x0 for w in self.words)

    @property
    def x1(self) -> float:
        return max(w.x1 for w in self.words)

    @property
    def top(self) -> float:
        return min(w.top for w in self.words)

    @property
    def bottom(self) -> float:
        return max(w.bottom for w in self.words)


@dataclass
class Page:
    page: int
    width: float
    height: float
    method: str
    lines: list[Line] = field(default_factory=list)
    figures: list[tuple[float, float, float, float]] = field(default_factory=list)  # x0, top, x1, bottom
    gutter: float | None = None
    dpi: int | None = None
    text: str = ""  # the text layer as pdfium orders it, or tesseract's lines (what a key table is read from)


# --- rows and columns ------------------------------------------------------------------------------


def _rows(boxes: list[tuple[float, float, float, float, str]]) -> list[list[tuple]]:
    """Boxes (x0, top, x1, bottom, text) grouped into rows by the middle of their height, top row first."""
    rows: list[list] = []
    for box in sorted(boxes, key=lambda b: (b[1] + b[3]) / 2):
        mid, height = (box[1] + box[3]) / 2, box[3] - box[1]
        if rows and abs(rows[-1][0][0] - mid) <= 0.3 * max(height, rows[-1][0][1]):
            rows[-1][1].append(box)
        else:
            rows.append([(mid, height), [box]])
    return [sorted(row, key=lambda b: b[0]) for _, row in rows]


def _crosses(row: list[tuple], x: float, min_gap: float) -> bool:
    """A row crosses x when a box covers it or its nearest boxes on either side are closer than
    ``min_gap`` (a word space, not a gutter)."""
    if any(b[0] < x < b[2] for b in row):
        return True
    left = max((b[2] for b in row if b[2] <= x), default=None)
    right = min((b[0] for b in row if b[0] >= x), default=None)
    return left is not None and right is not None and right - left < min_gap


def find_gutter(rows: list[list[tuple]], width: float) -> float | None:
    """The x between two columns, or None for a one-column page.

    Candidates lie in the middle 30-70% of the page; the gutter is the one the most rows do not cross
    (ties: the one nearest the middle). It counts when at least three rows have text on its left and
    three on its right, and more rows avoid it than cross it.
    """
    heights = sorted(b[3] - b[1] for row in rows for b in row)
    if len(rows) < 4 or not heights:
        return None
    min_gap = 0.9 * heights[len(heights) // 2]
    candidates = [width * (0.3 + 0.4 * k / 80) for k in range(81)]
    gutter = max(candidates, key=lambda x: (sum(not _crosses(r, x, min_gap) for r in rows), -abs(x - width / 2)))
    clear = [r for r in rows if not _crosses(r, gutter, min_gap)]
    left = sum(any(b[2] <= gutter for b in r) for r in clear)
    right = sum(any(b[0] >= gutter for b in r) for r in clear)
    if left < 3 or right < 3 or len(clear) <= len(rows) - len(clear):
        return None
    return gutter


def _words(row: list[tuple]) -> list[Word]:
    """One row's characters (x0, top, x1, bottom, char) as words: a gap wider than 0.15 of the height
    is a space."""
    words: list[Word] = []
    for x0, top, x1, bottom, ch in row:
        if words and x0 - words[-1].x1 <= 0.15 * (bottom - top):
            w = words[-1]
            words[-1] = Word(w.x0, min(w.top, top), x1, max(w.bottom, bottom), w.text + ch)
        else:
            words.append(Word(x0, top, x1, bottom, ch))
    return words


def _boxed_letters(chars: list[tuple], small: list[tuple]) -> tuple[list[tuple], list[tuple]]:
    """(the characters that are not boxed letters, the boxed letters as (letter, box)): a capital A-J
    alone in a small drawn box."""
    rest, letters = [], []
    for c in chars:
        cx, cy = (c[0] + c[2]) / 2, (c[1] + c[3]) / 2
        box = next((b for b in small if b[0] <= cx <= b[2] and b[1] <= cy <= b[3]), None)
        if box is not None and c[4] in LETTERS and \
                sum(1 for d in chars if box[0] <= (d[0] + d[2]) / 2 <= box[2] and box[1] <= (d[1] + d[3]) / 2 <= box[3]) == 1:
            letters.append((c[4], box))
        else:
            rest.append(c)
    return rest, letters


def _attach_letters(lines: list[Line], letters: list[tuple], number: int, gutter: float | None) -> list[Line]:
    """Give each boxed letter to the first line right of its box that overlaps it in height (the box may
    sit level with an alternative's first line or midway down a wrapped one); a letter with no such line
    (an alternative that is a picture) becomes a line of its own."""
    for letter, (x0, top, x1, bottom) in letters:
        column = 0 if gutter is None else (1 if x1 <= gutter else 2)
        near = [ln for ln in lines if ln.column in (column, 0) and 0 <= ln.x0 - x1 <= 4 * (bottom - top)
                and ln.top < bottom and ln.bottom > top and not ln.boxed]
        if near:
            min(near, key=lambda ln: ln.top).boxed = letter
        else:
            lines.append(Line(number, [Word(x0, top, x1, bottom, letter)], column, boxed=letter))
    return lines


def _order(lines: list[Line]) -> list[Line]:
    """Reading order: lines that span the page stay where they are; between two of them, the left
    column's lines come before the right column's, each top to bottom."""
    out: list[Line] = []
    block: list[Line] = []
    for line in sorted(lines, key=lambda ln: ln.top):
        if line.column == 0:
            out += sorted(block, key=lambda ln: (ln.column, ln.top))
            block = []
            out.append(line)
        else:
            block.append(line)
    return out + sorted(block, key=lambda ln: (ln.column, ln.top))


def _mark_gaps(lines: list[Line]) -> None:
    """``gap_before`` for a line more than 1.6 usual line steps below the previous one in its column (the
    first line of a column or page has none: whether it goes on from the last is the reader's call)."""
    for line in lines:
        line.gap_before = False
    steps = sorted(b.top - a.top for a, b in itertools.pairwise(lines) if a.column == b.column and b.top > a.top)
    if not steps:
        return
    pitch = steps[len(steps) // 2]
    for a, b in itertools.pairwise(lines):
        b.gap_before = a.column == b.column and b.top - a.top > 1.6 * pitch


# --- born-digital pages ------------------------------------------------------------------------------


def _figures(boxes: list[tuple], chars: list[tuple], min_side: float, page_w: float, page_h: float
             ) -> tuple[list[tuple], list[tuple]]:
    """(small square boxes: where letters are boxed, figure areas) from the page's paths and images,
    as (x0, top, x1, bottom, kind)."""
    small, parts = [], []
    for x0, top, x1, bottom, kind in boxes:
        w, h = x1 - x0, bottom - top
        if kind == "path" and 5 <= w <= 18 and 5 <= h <= 18 and abs(w - h) <= 0.35 * max(w, h):
            small.append((x0, top, x1, bottom))
        elif min(w, h) < 2 and max(w, h) > 0.4 * min(page_w, page_h):
            continue  # a rule: the gutter's line, a separator across a column (a chart's axis is shorter)
        elif w >= 0.9 * page_w and h >= 0.9 * page_h:
            continue  # a page-sized background or frame
        else:
            parts.append([x0, top, x1, bottom, kind == "image"])
    groups: list[list] = []  # parts within 6 pt of each other are one figure
    for part in sorted(parts, key=lambda b: (b[1], b[0])):
        for g in groups:
            if part[0] <= g[2] + 6 and g[0] <= part[2] + 6 and part[1] <= g[3] + 6 and g[1] <= part[3] + 6:
                g[:4] = [min(g[0], part[0]), min(g[1], part[1]), max(g[2], part[2]), max(g[3], part[3])]
                g[4] = g[4] or part[4]
                break
        else:
            groups.append(list(part))
    figures = []
    for x0, top, x1, bottom, image in groups:
        if x1 - x0 < min_side or bottom - top < min_side or max(x1 - x0, bottom - top) > 6 * min(x1 - x0, bottom - top):
            continue  # too small, or a band (an area's heading printed on a filled strip)
        inside = sum(1 for c in chars if x0 <= (c[0] + c[2]) / 2 <= x1 and top <= (c[1] + c[3]) / 2 <= bottom)
        if not image and inside > (x1 - x0) * (bottom - top) / 400:
            continue  # a frame around text (a passage in a box), not a picture
        figures.append((x0, top, x1, bottom))
    return small, figures


def text_page(page, number: int, *, min_figure_pt: float) -> Page:
    """The lines and figures of a born-digital page."""
    import pypdfium2.raw as pdfium_c

    width, height = page.get_size()
    textpage = page.get_textpage()
    raw = textpage.get_text_range().replace("\r\n", "\n").replace("\r", "\n")
    chars = []
    for i in range(textpage.count_chars()):
        ch = textpage.get_text_range(i, 1)
        if ch.strip():
            left, bottom, right, top = textpage.get_charbox(i, loose=True)
            chars.append((left, height - top, right, height - bottom, "-" if ch == "\ufffe" else ch))
    textpage.close()
    objects = []
    for obj in page.get_objects(max_depth=4):
        if obj.type in (pdfium_c.FPDF_PAGEOBJ_PATH, pdfium_c.FPDF_PAGEOBJ_IMAGE):
            left, bottom, right, top = obj.get_bounds()
            objects.append((left, height - top, right, height - bottom,
                            "image" if obj.type == pdfium_c.FPDF_PAGEOBJ_IMAGE else "path"))
    small, figures = _figures(objects, chars, min_figure_pt, width, height)
    chars, letters = _boxed_letters(chars, small)
    rows = _rows(chars)
    gutter = find_gutter(rows, width)
    heights = sorted(c[3] - c[1] for c in chars) or [10.0]
    min_gap = 0.9 * heights[len(heights) // 2]
    lines = []
    for row in rows:
        if gutter is None or _crosses(row, gutter, min_gap):
            parts = [(0, row)]
        else:
            parts = [(1, [b for b in row if b[2] <= gutter]), (2, [b for b in row if b[0] >= gutter])]
        for column, boxes in parts:
            if boxes:
                lines.append(Line(number, _words(boxes), column))
    lines = _order(_attach_letters(lines, letters, number, gutter))
    _mark_gaps(lines)
    return Page(number, width, height, TEXT, lines, figures, gutter, text=raw)


# --- scanned pages -----------------------------------------------------------------------------------


def parse_tsv(tsv: str, number: int, dpi: int, min_conf: float = 0.0) -> list[Line]:
    """tesseract's TSV (level 5 rows are words) as lines in points, one per tesseract line. A short or
    non-word token read with less than ``min_conf`` confidence is a speck taken for a word ("PAD", "ee",
    "j") and is left out, unless it opens its line (where a boxed letter OCR reads badly sits)."""
    scale = 72.0 / dpi
    lines: dict[tuple, list[Word]] = {}
    for row in tsv.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5" or not cols[11].strip():
            continue
        key, text = (cols[2], cols[3], cols[4]), cols[11].strip()
        bare = text.strip(".,;:!?()\"'“”")
        speck = not any(c.isdigit() for c in bare) and (len(bare) <= 3 or not bare.isalpha())
        if key in lines and float(cols[10]) < min_conf and speck:
            continue  # a speck: short or not a word ("PAD", "ee", ";"); a long word or a number read badly stays
        left, top, w, h = (int(c) for c in cols[6:10])
        lines.setdefault(key, []).append(
            Word(left * scale, top * scale, (left + w) * scale, (top + h) * scale, cols[11].strip()))
    return [Line(number, words, ocr=True) for words in lines.values()]


INK_CELL_PT = 2.0  # the grid a scanned page's ink is measured on, in points


def ink_grid(image, dpi: int):
    """(the share of dark pixels (grey < 128) in each cell of a rendered page, the cell's side in points):
    cells of whole pixels, about INK_CELL_PT."""
    import numpy as np

    dark = np.asarray(image) < 128
    cell = max(1, round(dpi * INK_CELL_PT / 72))
    rows, cols = dark.shape[0] // cell, dark.shape[1] // cell
    return dark[: rows * cell, : cols * cell].reshape(rows, cell, cols, cell).mean(axis=(1, 3)), cell * 72 / dpi


def ink_figures(grid, cell_pt: float, lines: list[Line], min_side: float) -> list[tuple[float, float, float, float]]:
    """Figure areas of a scanned page: ink outside every word tesseract read (a chart, a drawing, a
    photo), grouped across gaps of two cells, at least ``min_side`` points wide and tall."""
    import numpy as np
    from scipy import ndimage

    ink = grid > 0.2  # a stroke or a fill, not scanner speckle
    for ln in lines:
        for w in ln.words:  # a word's box, and a point around it
            ink[max(0, int(w.top / cell_pt) - 1): int(w.bottom / cell_pt) + 2,
                max(0, int(w.x0 / cell_pt) - 1): int(w.x1 / cell_pt) + 2] = False
    labels, _ = ndimage.label(ndimage.binary_dilation(ink, structure=np.ones((5, 5), bool)))
    figures = []
    for index, area in enumerate(ndimage.find_objects(labels), start=1):
        ys, xs = np.nonzero(ink[area] & (labels[area] == index))  # the ink itself, not the gaps grouping it
        if len(ys) == 0:
            continue
        top, left = area[0].start + ys.min(), area[1].start + xs.min()
        bottom, right = area[0].start + ys.max() + 1, area[1].start + xs.max() + 1
        box = (left * cell_pt, top * cell_pt, right * cell_pt, bottom * cell_pt)
        if box[2] - box[0] >= min_side and box[3] - box[1] >= min_side and ink[top:bottom, left:right].sum() >= 20:
            figures.append(box)
    return figures


def ocr_lines(lines: list[Line], number: int, width: float, height: float, dpi: int) -> Page:
    """A scanned page's lines placed in columns and reading order."""
    rows = [[(w.x0, w.top, w.x1, w.bottom, w.text) for w in ln.words] for ln in lines]
    gutter = find_gutter(rows, width)
    heights = sorted(w.bottom - w.top for ln in lines for w in ln.words) or [10.0]
    min_gap = 0.9 * heights[len(heights) // 2]
    slack = 2 * min_gap  # OCR reads a speck or a rule beside a column's text as part of its line ("|: (B) ...")
    for ln in lines:
        if gutter is not None and ln.x1 <= gutter + slack and (ln.x0 + ln.x1) / 2 < gutter:
            ln.column = 1
        elif gutter is not None and ln.x0 >= gutter - slack and (ln.x0 + ln.x1) / 2 > gutter:
            ln.column = 2
    ordered = _order(lines)
    _mark_gaps(ordered)
    return Page(number, width, height, OCR, ordered, [], gutter, dpi, "\n".join(ln.text for ln in ordered))


def _invert_solid_boxes(image, dpi: int):
    """The page with each small solid dark box (8-60 pt a side: a question number printed white on black,
    a letter in a filled circle) turned light on dark the other way round, which tesseract cannot read
    otherwise."""
    from PIL import ImageOps
    from scipy import ndimage

    grid, cell_pt = ink_grid(image, dpi)
    labels, _ = ndimage.label(grid > 0.5)
    cell = max(1, round(dpi * INK_CELL_PT / 72))
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        rows, cols = box
        h, w = (rows.stop - rows.start) * cell_pt, (cols.stop - cols.start) * cell_pt
        solid = ndimage.binary_fill_holes(labels[box] == index).mean()  # the white digits are its holes
        if 8 <= h <= 60 and 8 <= w <= 60 and solid >= 0.85:
            area = (cols.start * cell, rows.start * cell, cols.stop * cell, rows.stop * cell)
            image.paste(ImageOps.invert(image.crop(area)), area[:2])
    return image


def _render(page, dpi: int, denoise: bool):
    """(PNG bytes for tesseract, the page's ink grid) of ``page`` rendered in grey at ``dpi``; with
    ``denoise``, a 3x3 median filter first takes out a scan's specks (on the test booklets' scans it
    raised the share of words read right from 85% to 92%)."""
    from PIL import ImageFilter

    image = page.render(scale=dpi / 72).to_pil().convert("L")
    if denoise:
        image = image.filter(ImageFilter.MedianFilter(3))
    image = _invert_solid_boxes(image, dpi)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue(), ink_grid(image, dpi)  # (grid, cell_pt)


def _tsv(png: bytes, p, timeout: float) -> str:
    from gabarito.pdf import ocr_image

    return ocr_image(png, lang=p.ocr_lang, config=f"{p.tesseract_config} tsv", timeout=timeout)


def read_booklet(data: bytes, p, *, doc: str, knobs: str = "exams.pdf") -> list[Page]:
    """Every page of an exam PDF as a :class:`Page`: the text layer where it has at least
    ``p.min_text_chars`` characters of quality ``p.min_text_quality``, else tesseract's words of the page
    rendered at ``p.ocr_dpi`` (lower where the page exceeds ``p.max_render_pixels``). Scanned pages are
    OCR'd ``p.ocr_workers`` at a time (0: one per core), each within ``p.page_timeout_s``; a progress bar
    counts them. An exam is read whole: a page that cannot be read stops with its number and the knob.
    """
    import pypdfium2 as pdfium
    from tqdm.auto import tqdm

    from gabarito.pdf import OCRFailed, render_dpi
    from gabarito.pdftext import page_quality

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise InputError(f"{doc}: pdfium could not open it ({exc}): re-download or re-export the file") from None
    workers = p.ocr_workers or os.cpu_count() or 1
    pages: dict[int, Page] = {}
    jobs = {}
    bar = tqdm(total=len(pdf), desc=f"exams: {doc}", unit="page", file=sys.stderr, disable=None, leave=False)
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            for index in range(len(pdf)):
                number = index + 1
                page = pdf[index]
                try:
                    textpage = page.get_textpage()
                    text = textpage.get_text_range()
                    textpage.close()
                    if len(text.strip()) >= p.min_text_chars and page_quality(text)["score"] >= p.min_text_quality:
                        pages[number] = text_page(page, number, min_figure_pt=p.min_figure_pt)
                        bar.update()
                        continue
                    width, height = page.get_size()
                    dpi = render_dpi(width, height, ocr_dpi=p.ocr_dpi, min_ocr_dpi=p.min_ocr_dpi,
                                     max_render_pixels=p.max_render_pixels)
                    if dpi is None:
                        raise InputError(f"{doc} page {number}: {width:g} x {height:g} pt is too large to render "
                                         f"for OCR even at {p.min_ocr_dpi} dpi within {knobs}.max_render_pixels="
                                         f"{p.max_render_pixels:,}: scale the page down (re-export at a normal paper size), or raise "
                                         f"{knobs}.max_render_pixels if this machine has the memory. An exam is read "
                                         "whole: no item is made from it until every page reads.")
                    png, grid = _render(page, dpi, p.denoise)
                finally:
                    page.close()
                jobs[pool.submit(_tsv, png, p, p.page_timeout_s)] = (number, width, height, dpi, grid)
            for job in concurrent.futures.as_completed(jobs):
                number, width, height, dpi, grid = jobs[job]
                try:
                    tsv = job.result()
                except subprocess.TimeoutExpired:
                    raise InputError(f"{doc} page {number}: OCR took longer than {knobs}.page_timeout_s="
                                     f"{p.page_timeout_s:g} s; raise it (a dense page at {dpi} dpi on a slow "
                                     "machine), or lower ocr_dpi") from None
                except OCRFailed as exc:
                    raise InputError(f"{doc} page {number}: {exc}. Re-export the PDF and rerun.") from None
                pages[number] = ocr_lines(parse_tsv(tsv, number, dpi, p.min_word_conf), number, width, height, dpi)
                pages[number].figures = ink_figures(*grid, pages[number].lines, p.min_figure_pt)
                bar.update()
    except BaseException:
        for job in jobs:
            job.cancel()
        raise
    finally:
        bar.close()
        pdf.close()
    for page in pages.values():  # a page number's box, a logo in the header: the margins hold no figure
        band = p.margin_share * page.height
        page.figures = [f for f in page.figures if band < (f[1] + f[3]) / 2 < page.height - band]
    return [pages[n] for n in sorted(pages)]


# --- running headers and footers ---------------------------------------------------------------------
PAGE_NUMBER = re.compile(r"^(?:p[áa]g(?:ina)?\.?|page)?\s*[-–—]?\s*\d{1,4}\s*(?:(?:de|of|/)\s*\d{1,4})?\s*[-–—]?$"
                         r"|\bp[áa]g(?:ina)?\.?\s*\d{1,4}\s*(?:(?:de|of|/)\s*\d{1,4})?\W*$", re.IGNORECASE)  # "... Página 2"


def _key(text: str) -> str:
    """A header line as compared: case, digits and OCR's specks and punctuation aside."""
    return re.sub(r"\d+", "#", " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split()))


def _alike(a: str, b: str, similarity: float) -> bool:
    """Two header keys spelled alike (OCR varies a header from page to page), or one inside the other
    (OCR reads specks beside it: "É EX “LC - 1º dia |-Caderno 1 - AZUL")."""
    import difflib

    if a == b:
        return True
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if matcher.ratio() >= similarity:
        return True
    shorter = min(len(a), len(b))
    return shorter >= 8 and sum(m.size for m in matcher.get_matching_blocks() if m.size >= 3) >= similarity * shorter


def mark_marginal(pages: list[Page], *, margin_share: float, min_share: float, similarity: float) -> None:
    """Flag running headers, footers and page numbers: lines in the top or bottom ``margin_share`` of a
    page that are page numbers, or that come back (digits aside, spelled alike to ``similarity`` for OCR)
    in the same band of at least ``min_share`` of the pages, two at least."""

    def band(page: Page, line: Line) -> str:
        if line.bottom <= margin_share * page.height:
            return "top"
        return "bottom" if line.top >= (1 - margin_share) * page.height else ""

    groups: list[tuple[str, str, set[int]]] = []
    for page in pages:
        for line in page.lines:
            where = band(page, line)
            if not where:
                continue
            key = _key(line.text)
            for gwhere, gkey, members in groups:
                if gwhere == where and _alike(gkey, key, similarity):
                    members.add(page.page)
                    break
            else:
                groups.append((where, key, {page.page}))
    need = max(2, int(min_share * len(pages) + 0.999))
    repeated = {(where, key) for where, key, members in groups if len(members) >= need}
    for page in pages:
        for line in page.lines:
            where = band(page, line)
            if where and (PAGE_NUMBER.search(line.text.strip())
                          or any(w == where and _alike(k, _key(line.text), similarity) for w, k in repeated)):
                line.marginal = True
        _mark_gaps([ln for ln in page.lines if not ln.marginal])  # a header above a column is no paragraph gap
