"""Exam PDFs for tests and the bundled sample: two-column born-digital exams and answer-key tables.

* :func:`two_column_pdf` -- A4 pages with a full-width title, two text columns and a running
  header/footer, as ENEM booklets are laid out. Lines are drawn **row by row across both columns**
  (left line 1, right line 1, left line 2, ...), so the PDF's content stream is *not* in reading
  order: a reader that follows the stream interleaves the columns, one that finds the gutter does not.
* :func:`flow_columns` -- pours text blocks (questions) into columns and pages, so a question may
  continue in the next column or on the next page, as in a real booklet.
* :func:`key_pdf` -- an answer key: a table of number -> letter, several pairs per line.

The scanned (image-only) exam of the tests uses :func:`tests.pdfgen.scanned_pdf`. Output is
deterministic (reportlab's ``invariant=1``: fixed dates and ids), so the bundled sample's bytes
are stable. Nothing here imports the project.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import simpleSplit
from reportlab.pdfgen import canvas

from tests.pdfgen import _register_font

PAGE_W, PAGE_H = A4
MARGIN_X = 48.0
GUTTER = 28.0
TOP = PAGE_H - 56.0
BOTTOM = 64.0
SIZE = 10.0
LEADING = 13.0
COLUMN_W = (PAGE_W - 2 * MARGIN_X - GUTTER) / 2
TITLE_SIZE = 13.0
MARGINAL_SIZE = 8.5


def _canvas(buf, title: str) -> canvas.Canvas:
    c = canvas.Canvas(buf, pagesize=A4, invariant=1, pageCompression=1)
    c.setTitle(title)
    c.setAuthor("")
    c.setCreator("tests/examgen.py")
    c.setProducer("tests/examgen.py")
    return c


def wrap(text: str, width: float = COLUMN_W) -> list[str]:
    """A block's lines wrapped to ``width``; a blank line in ``text`` stays a blank line."""
    font = _register_font()
    out: list[str] = []
    for raw in text.strip("\n").splitlines():
        out += simpleSplit(raw.strip(), font, SIZE, width) if raw.strip() else [""]
    return out


def column_lines(title_lines: int = 0) -> int:
    """How many body lines one column holds (fewer on a page that has ``title_lines`` title lines)."""
    return int((TOP - BOTTOM - title_lines * (TITLE_SIZE + 6)) // LEADING)


def flow_columns(blocks: Sequence[str], *, title_lines: int = 1) -> list[tuple[list[str], list[str]]]:
    """Pour ``blocks`` (one question each) into (left, right) column lines, page after page, with a
    blank line between blocks; a block that does not fit continues in the next column or page. The
    first page loses ``title_lines`` title lines of room."""
    lines: list[str] = []
    for block in blocks:
        lines += wrap(block) + [""]
    pages: list[tuple[list[str], list[str]]] = []
    while lines:
        room = column_lines(title_lines if not pages else 0)
        left, lines = lines[:room], lines[room:]
        while lines and not lines[0]:
            lines.pop(0)
        right, lines = lines[:room], lines[room:]
        while lines and not lines[0]:
            lines.pop(0)
        pages.append((left, right))
    return pages


def two_column_pdf(path, pages: Sequence[tuple[str | list[str], str | list[str]]], *, title: str = "",
                   header: str | None = None, footer: str | None = None) -> Path:
    """Write a two-column born-digital exam. Each page is (left, right): text (wrapped to the column)
    or ready lines. ``title`` is drawn full-width above the columns of page 1; ``header``/``footer``
    on every page (``{page}``/``{pages}`` filled in). Raises ValueError when a column overflows."""
    font = _register_font()
    buf = io.BytesIO()
    c = _canvas(buf, title)
    for number, (left, right) in enumerate(pages, 1):
        cols = [wrap(col) if isinstance(col, str) else list(col) for col in (left, right)]
        top = TOP
        if header:
            c.setFont(font, MARGINAL_SIZE)
            c.drawCentredString(PAGE_W / 2, PAGE_H - 36, header.format(page=number, pages=len(pages)))
        if title and number == 1:
            c.setFont(font, TITLE_SIZE)
            c.drawCentredString(PAGE_W / 2, top - TITLE_SIZE, title)
            top -= TITLE_SIZE + 6
        room = column_lines(1 if title and number == 1 else 0)
        if max(len(cols[0]), len(cols[1])) > room:
            raise ValueError(f"page {number}: a column has {max(map(len, cols))} lines, room for {room}")
        c.setFont(font, SIZE)
        for row in range(max(len(cols[0]), len(cols[1]))):  # row by row across the columns, on purpose
            y = top - SIZE - row * LEADING
            for k, col in enumerate(cols):
                if row < len(col) and col[row] == FIGURE:
                    _figure(c, MARGIN_X + k * (COLUMN_W + GUTTER), y + SIZE, col[row + 1:])
                elif row < len(col) and col[row]:
                    c.drawString(MARGIN_X + k * (COLUMN_W + GUTTER), y, col[row])
        if footer:
            c.setFont(font, MARGINAL_SIZE)
            c.drawCentredString(PAGE_W / 2, 36, footer.format(page=number, pages=len(pages)))
        c.showPage()
    return _save(c, buf, path)


FIGURE = "[[figure]]"  # a block's line that is this draws a chart in the blank lines after it


def _figure(c, x: float, top: float, rest: list[str]) -> None:
    """A bar chart in a frame, drawn (vector paths, no text) over the blank lines that follow the marker
    in its column, as a booklet prints a figure between a question's lines."""
    blank = 1
    while blank < len(rest) + 1 and not rest[blank - 1]:
        blank += 1
    height = blank * LEADING - 4
    c.setLineWidth(0.8)
    c.rect(x + 10, top - height, COLUMN_W - 20, height)
    for k, share in enumerate((0.3, 0.7, 0.5, 0.9)):
        c.rect(x + 24 + k * 40, top - height + 4, 24, (height - 8) * share, fill=1)


def _save(c, buf: io.BytesIO, path) -> Path:
    """Finish the canvas and write its bytes to ``path`` (folders made)."""
    c.save()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buf.getvalue())
    return out


def key_pdf(path, answers: Sequence[tuple[int, str]], *, title: str = "GABARITO", per_line: int = 4,
            cell: str = "{n:02d}  {a}") -> Path:
    """Write an answer key: ``title`` then rows of ``per_line`` cells, each ``cell`` formatted with the
    number and the answer ("01  C", "1 - C", "01 | ANULADA"), drawn at its own x position."""
    font = _register_font()
    buf = io.BytesIO()
    c = _canvas(buf, title)
    c.setFont(font, TITLE_SIZE)
    c.drawString(MARGIN_X, TOP, title)
    c.setFont(font, SIZE)
    width = (PAGE_W - 2 * MARGIN_X) / per_line
    for i, (n, a) in enumerate(answers):
        row, col = divmod(i, per_line)
        c.drawString(MARGIN_X + col * width, TOP - 30 - row * (LEADING + 4), cell.format(n=n, a=a))
    c.showPage()
    return _save(c, buf, path)
