"""Synthetic PDF fixtures for tests and sample data.

This module builds small PDFs that exercise the different branches of the
extraction pipeline:

* :func:`text_pdf` -- a "born-digital" PDF with a real text layer;
* :func:`scanned_pdf` -- an image-only PDF that simulates a scanned document
  (no text layer at all, so it has to go through OCR);
* :func:`mixed_pdf` -- text pages followed by scanned pages in one file;
* :func:`encrypted_pdf` -- a password-protected text PDF;
* :func:`corrupt_pdf` -- a truncated, garbled file that starts like a PDF.

Every page is given as a plain string.  Each line of the string is drawn as
one line of text (wrapped when it is too wide for the page) and blank lines
separate paragraphs, so Brazilian legal layout (``Art. 1º``, ``§ 1º``,
``I –``) can be written literally.  Pages never overflow silently: a page
whose text does not fit raises :class:`ValueError`, which keeps the page count
-- and therefore things like "Página 1 de 3" -- under the caller's control.

Text is rendered with the DejaVu Sans TrueType font (see :func:`font_path`),
which covers Portuguese diacritics and symbols such as ``§ º ª –``; the font
is embedded, so the text layer of :func:`text_pdf` round-trips exactly.

Only reportlab and Pillow are needed; :func:`mixed_pdf` and
:func:`encrypted_pdf` also use pypdf, imported lazily.  Nothing here imports
the project itself.

Output is deterministic for the same input, except for :func:`encrypted_pdf`
(encryption uses random salts).
"""

from __future__ import annotations

import functools
import io
import os
import random
from pathlib import Path
from typing import Sequence, Union

from PIL import Image, ImageDraw, ImageFilter, ImageFont
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

__all__ = [
    "font_path",
    "text_pdf",
    "scanned_pdf",
    "mixed_pdf",
    "encrypted_pdf",
    "corrupt_pdf",
]

PathLike = Union[str, "os.PathLike[str]"]

_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/Library/Fonts/DejaVuSans.ttf",
)


@functools.lru_cache(maxsize=None)
def font_path() -> str:
    """Path of the TrueType font (DejaVu Sans) used for every generated PDF.

    Looked up in ``$PDFGEN_FONT``, the usual system locations and finally
    matplotlib's bundled copy.  Raises :class:`FileNotFoundError` when none
    exists (on Debian/Ubuntu: ``apt-get install fonts-dejavu-core``).
    """
    env = os.environ.get("PDFGEN_FONT")
    for candidate in ((env,) if env else ()) + _FONT_CANDIDATES:
        if candidate and Path(candidate).is_file():
            return candidate
    try:  # matplotlib ships DejaVu Sans; use it when the system lacks the font
        import matplotlib  # type: ignore[import-not-found]

        bundled = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        if bundled.is_file():
            return str(bundled)
    except ImportError:
        pass
    raise FileNotFoundError(
        "DejaVuSans.ttf not found; install fonts-dejavu-core or set PDFGEN_FONT "
        "to the path of a TrueType font covering Portuguese."
    )


_FONT_NAME = "PdfgenDejaVuSans"

# Page geometry (points; 1 pt = 1/72 inch).
_PAGE_W, _PAGE_H = A4
_MARGIN_X = 72.0  # 2.54 cm
_MARGIN_TOP = 72.0
_MARGIN_BOTTOM = 64.0
_BODY_SIZE = 11.5
_LEADING = 1.35  # line height as a multiple of the font size
_PARAGRAPH_GAP = 0.6  # extra space for a blank line, in line heights
_MARGINAL_SIZE = 9.5  # header/footer font size
_MARGINAL_GAP = 24.0  # space between header and body / body and footer


def _register_font() -> str:
    if _FONT_NAME not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(_FONT_NAME, font_path()))
    return _FONT_NAME


def _format_marginal(template: str | None, page: int, total: int) -> str:
    """Fill ``{page}`` and ``{pages}`` in a header/footer template."""
    if not template:
        return ""
    return template.format(page=page, pages=total)


def _ensure_parent(path: PathLike) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def _layout(text: str, wrap) -> list[str | None]:
    """Split page text into drawn lines; ``None`` marks a paragraph gap.

    ``wrap(line)`` must return the line broken into pieces that fit the
    available width.
    """
    out: list[str | None] = []
    for raw in text.strip("\n").splitlines():
        line = raw.rstrip()
        if not line.strip():
            if out and out[-1] is not None:
                out.append(None)
            continue
        out.extend(wrap(line) or [""])
    while out and out[-1] is None:
        out.pop()
    return out


# --------------------------------------------------------------------------
# Born-digital PDFs
# --------------------------------------------------------------------------


def _text_pdf_bytes(
    pages: Sequence[str],
    *,
    title: str = "",
    header: str | None = None,
    footer: str | None = None,
    first_page: int = 1,
    total: int | None = None,
) -> bytes:
    """Render text pages; ``first_page``/``total`` drive ``{page}``/``{pages}``."""
    font = _register_font()
    buf = io.BytesIO()
    c = canvas.Canvas(
        buf,
        pagesize=A4,
        invariant=1,
        pageCompression=1,
        initialFontName=font,
        initialFontSize=_BODY_SIZE,
    )
    c.setTitle(title)
    c.setAuthor("")
    c.setCreator("tests/pdfgen.py")
    c.setProducer("tests/pdfgen.py")

    width = _PAGE_W - 2 * _MARGIN_X
    line_h = _BODY_SIZE * _LEADING
    top = _PAGE_H - _MARGIN_TOP
    bottom = _MARGIN_BOTTOM
    if header:
        top -= _MARGINAL_SIZE + _MARGINAL_GAP
    if footer:
        bottom += _MARGINAL_SIZE + _MARGINAL_GAP

    total = len(pages) if total is None else total
    for number, text in enumerate(pages, start=first_page):
        head = _format_marginal(header, number, total)
        if head:
            c.setFont(font, _MARGINAL_SIZE)
            c.drawCentredString(_PAGE_W / 2, _PAGE_H - _MARGIN_TOP, head)

        c.setFont(font, _BODY_SIZE)
        y = top - _BODY_SIZE
        for line in _layout(text, lambda s: simpleSplit(s, font, _BODY_SIZE, width)):
            if line is None:
                y -= line_h * _PARAGRAPH_GAP
                continue
            if y < bottom:
                raise ValueError(
                    f"text of page {number} does not fit on one A4 page; "
                    "shorten it or split it into more pages"
                )
            c.drawString(_MARGIN_X, y, line)
            y -= line_h

        foot = _format_marginal(footer, number, total)
        if foot:
            c.setFont(font, _MARGINAL_SIZE)
            c.drawCentredString(_PAGE_W / 2, _MARGIN_BOTTOM, foot)
        c.showPage()
    c.save()
    return buf.getvalue()


def text_pdf(
    path: PathLike,
    pages: list[str],
    *,
    title: str = "",
    header: str | None = None,
    footer: str | None = None,
) -> None:
    """Write a born-digital A4 PDF with a real, extractable text layer.

    Args:
        path: output file; parent directories are created.
        pages: one string per page.  Each line is drawn as a line of text
            (long lines are wrapped to the page width) and blank lines
            separate paragraphs.
        title: document title stored in the PDF metadata.
        header: optional line drawn centred at the top of every page.
        footer: optional line drawn centred at the bottom of every page.
            Both may use the placeholders ``{page}`` and ``{pages}``, e.g.
            ``"Página {page} de {pages}"``.

    The font (DejaVu Sans) is embedded, so diacritics and ``§ º ª –`` are
    extracted exactly.  reportlab runs with ``invariant=1``: the same input
    always gives the same bytes.

    Raises:
        ValueError: if ``pages`` is empty or a page's text does not fit.
    """
    if not pages:
        raise ValueError("pages must contain at least one page")
    data = _text_pdf_bytes(pages, title=title, header=header, footer=footer)
    _ensure_parent(path).write_bytes(data)


# --------------------------------------------------------------------------
# Scanned (image-only) PDFs
# --------------------------------------------------------------------------


def _render_page_image(
    text: str,
    *,
    dpi: int,
    header: str,
    footer: str,
) -> Image.Image:
    """Render one page of text onto a white grayscale A4 image at ``dpi``."""
    scale = dpi / 72.0
    w, h = round(_PAGE_W * scale), round(_PAGE_H * scale)
    img = Image.new("L", (w, h), 255)
    draw = ImageDraw.Draw(img)
    body = ImageFont.truetype(font_path(), round(_BODY_SIZE * scale))
    small = ImageFont.truetype(font_path(), round(_MARGINAL_SIZE * scale))

    margin_x = _MARGIN_X * scale
    max_w = w - 2 * margin_x
    line_h = _BODY_SIZE * _LEADING * scale
    top = _MARGIN_TOP * scale
    bottom = h - _MARGIN_BOTTOM * scale

    if header:
        draw.text((w / 2, top), header, font=small, fill=0, anchor="mt")
        top += (_MARGINAL_SIZE + _MARGINAL_GAP) * scale
    if footer:
        draw.text((w / 2, bottom), footer, font=small, fill=0, anchor="mb")
        bottom -= (_MARGINAL_SIZE + _MARGINAL_GAP) * scale

    def wrap(line: str) -> list[str]:
        indent = line[: len(line) - len(line.lstrip(" "))]
        words = line.split()
        lines: list[str] = []
        current = indent
        for word in words:
            candidate = f"{current} {word}" if current.strip() else current + word
            if current.strip() and draw.textlength(candidate, font=body) > max_w:
                lines.append(current)
                current = word
            else:
                current = candidate
        lines.append(current)
        return lines

    y = top
    for line in _layout(text, wrap):
        if line is None:
            y += line_h * _PARAGRAPH_GAP
            continue
        if y + line_h > bottom + line_h * 0.25:
            raise ValueError(
                "page text does not fit on one A4 page; "
                "shorten it or split it into more pages"
            )
        draw.text((margin_x, y), line, font=body, fill=0)
        y += line_h
    return img


def _degrade(
    img: Image.Image,
    *,
    noise: float,
    skew_degrees: float,
    blur: float,
    rng: random.Random,
) -> Image.Image:
    """Simulate a scanner: small rotation, salt-and-pepper noise, soft focus."""
    if skew_degrees:
        img = img.rotate(
            skew_degrees, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=255
        )
    if noise > 0:
        w, h = img.size
        px = img.load()
        for _ in range(int(w * h * noise)):
            x = rng.randrange(w)
            y = rng.randrange(h)
            # Mostly dark specks on paper, some white dropouts in the ink.
            dark = rng.random() < 0.5
            px[x, y] = rng.randint(0, 90) if dark else rng.randint(200, 255)
    if blur > 0:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    return img


def _scanned_images(
    pages: Sequence[str],
    *,
    dpi: int,
    noise: float,
    skew_degrees: float,
    blur: float,
    seed: int,
    header: str | None,
    footer: str | None,
    first_page: int = 1,
    total: int | None = None,
) -> list[Image.Image]:
    if not pages:
        raise ValueError("pages must contain at least one page")
    if not 0 <= noise < 1:
        raise ValueError("noise must be a fraction in [0, 1)")
    if dpi < 50:
        raise ValueError("dpi must be at least 50")
    rng = random.Random(seed)
    total = len(pages) if total is None else total
    images = []
    for number, text in enumerate(pages, start=first_page):
        img = _render_page_image(
            text,
            dpi=dpi,
            header=_format_marginal(header, number, total),
            footer=_format_marginal(footer, number, total),
        )
        # Alternate the skew direction a little from page to page.
        skew = skew_degrees * (1 if number % 2 else -0.7)
        # ``blur`` is given for 200 dpi; keep the same physical softness.
        img = _degrade(
            img, noise=noise, skew_degrees=skew, blur=blur * dpi / 200, rng=rng
        )
        images.append(img)
    return images


def _images_to_pdf_bytes(
    images: Sequence[Image.Image], *, dpi: int, jpeg_quality: int, title: str
) -> bytes:
    buf = io.BytesIO()
    images[0].save(
        buf,
        format="PDF",
        save_all=True,
        append_images=list(images[1:]),
        resolution=float(dpi),
        quality=jpeg_quality,
        optimize=True,
        title=title,
        producer="tests/pdfgen.py",
        creator="tests/pdfgen.py",
        # Fixed dates keep the output byte-for-byte reproducible.
        creationDate="D:20000101000000Z",
        modDate="D:20000101000000Z",
    )
    return buf.getvalue()


def scanned_pdf(
    path: PathLike,
    pages: list[str],
    *,
    dpi: int = 200,
    noise: float = 0.02,
    skew_degrees: float = 0.6,
    seed: int = 0,
    blur: float = 0.8,
    jpeg_quality: int = 40,
    title: str = "",
    header: str | None = None,
    footer: str | None = None,
) -> None:
    """Write an image-only A4 PDF that looks like a scan (no text layer).

    Each page is rendered in DejaVu Sans (11.5 pt at ``dpi``, same layout as
    :func:`text_pdf`) onto a grayscale bitmap, rotated by a small skew,
    sprinkled with salt-and-pepper noise and slightly blurred, then all pages
    are stored as grayscale JPEG images in one PDF with Pillow.  There is no
    text on the pages, so text extraction returns nothing and OCR is
    required.

    Args:
        path: output file; parent directories are created.
        pages: one string per page (same conventions as :func:`text_pdf`).
        dpi: scan resolution; the PDF page size stays A4.
        noise: fraction of pixels replaced by dark or light specks.
        skew_degrees: rotation of odd pages in degrees, counter-clockwise
            (even pages get ``-0.7 ×`` it).
        seed: seed of the ``random.Random`` driving the noise; same arguments
            give the same bytes.
        blur: Gaussian blur radius in pixels at 200 dpi (scaled with
            ``dpi``), imitating scanner optics; 0 disables it.
        jpeg_quality: JPEG quality (1-95) of the page images.  Text pages
            compress poorly: at 200 dpi expect roughly 100-150 KB per page at
            25, several hundred KB at 80, more with heavy ``noise``.
        title: document title stored in the PDF metadata.
        header, footer: optional centred lines, as in :func:`text_pdf`
            (``{page}`` and ``{pages}`` are filled in).

    Raises:
        ValueError: if ``pages`` is empty, ``noise`` is out of range or a
            page's text does not fit.
    """
    images = _scanned_images(
        pages,
        dpi=dpi,
        noise=noise,
        skew_degrees=skew_degrees,
        blur=blur,
        seed=seed,
        header=header,
        footer=footer,
    )
    data = _images_to_pdf_bytes(images, dpi=dpi, jpeg_quality=jpeg_quality, title=title)
    _ensure_parent(path).write_bytes(data)


# --------------------------------------------------------------------------
# Mixed, encrypted and corrupt PDFs
# --------------------------------------------------------------------------


def mixed_pdf(
    path: PathLike,
    text_pages: list[str],
    scanned_pages: list[str],
    *,
    dpi: int = 200,
    noise: float = 0.02,
    skew_degrees: float = 0.6,
    seed: int = 0,
    blur: float = 0.8,
    jpeg_quality: int = 40,
    title: str = "",
    header: str | None = None,
    footer: str | None = None,
) -> None:
    """Write a PDF whose first pages have a text layer and the rest are scans.

    ``text_pages`` become born-digital pages (as in :func:`text_pdf`) and
    ``scanned_pages`` follow as image-only pages (as in :func:`scanned_pdf`,
    which ``dpi``, ``noise``, ``skew_degrees``, ``seed``, ``blur`` and
    ``jpeg_quality`` are passed to).  ``{page}``/``{pages}`` in header and
    footer count over the whole document.  Requires pypdf.
    """
    from pypdf import PdfReader, PdfWriter

    if not text_pages or not scanned_pages:
        raise ValueError("text_pages and scanned_pages must both be non-empty")

    total = len(text_pages) + len(scanned_pages)
    text_part = _text_pdf_bytes(
        text_pages, title=title, header=header, footer=footer, total=total
    )
    images = _scanned_images(
        scanned_pages,
        dpi=dpi,
        noise=noise,
        skew_degrees=skew_degrees,
        blur=blur,
        seed=seed,
        header=header,
        footer=footer,
        first_page=len(text_pages) + 1,
        total=total,
    )
    scan_part = _images_to_pdf_bytes(
        images, dpi=dpi, jpeg_quality=jpeg_quality, title=title
    )

    writer = PdfWriter()
    for part in (text_part, scan_part):
        writer.append(PdfReader(io.BytesIO(part)))
    metadata = {"/Producer": "tests/pdfgen.py"}
    if title:
        metadata["/Title"] = title
    writer.add_metadata(metadata)
    buf = io.BytesIO()
    writer.write(buf)
    _ensure_parent(path).write_bytes(buf.getvalue())


def encrypted_pdf(
    path: PathLike,
    pages: list[str],
    user_password: str,
    *,
    owner_password: str | None = None,
    title: str = "",
) -> None:
    """Write a text PDF (see :func:`text_pdf`) encrypted with ``user_password``.

    The file cannot be opened without the password.  Uses pypdf with AES-128
    when the ``cryptography`` package is available and RC4-128 otherwise.
    The bytes differ between runs (random salts); the content does not.
    """
    from pypdf import PdfReader, PdfWriter
    from pypdf.errors import DependencyError

    if not pages:
        raise ValueError("pages must contain at least one page")
    source = _text_pdf_bytes(pages, title=title)
    owner = owner_password or user_password
    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(source)))
    try:
        writer.encrypt(user_password, owner, algorithm="AES-128")
    except DependencyError:  # neither cryptography nor pycryptodome installed
        writer = PdfWriter()
        writer.append(PdfReader(io.BytesIO(source)))
        writer.encrypt(user_password, owner, algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    _ensure_parent(path).write_bytes(buf.getvalue())


def corrupt_pdf(path: PathLike, *, keep_fraction: float = 0.3, seed: int = 0) -> None:
    """Write a damaged PDF: a real PDF truncated and partly overwritten.

    The file keeps the ``%PDF-`` signature (so it still "looks" like a PDF
    by extension and magic bytes) but only the first ``keep_fraction`` of a
    valid document survives -- the catalog, page tree, cross-reference table
    and trailer are lost -- and some of the remaining bytes are garbled.
    PDF readers such as pdfium and pypdf refuse to open it.  Deterministic
    for a given ``seed``.
    """
    if not 0 < keep_fraction < 1:
        raise ValueError("keep_fraction must be in (0, 1)")
    good = _text_pdf_bytes(["Documento corrompido.\n\nEste arquivo foi truncado."])
    rng = random.Random(seed)
    cut = max(16, int(len(good) * keep_fraction))
    body = bytearray(good[:cut])
    # Garble a handful of bytes after the header line, never the signature.
    start = good.index(b"\n", 0, 64) + 1
    for _ in range(max(1, cut // 50)):
        body[rng.randrange(start, cut)] = rng.randrange(256)
    body += b"\n%%garbage: transfer interrupted\n"
    _ensure_parent(path).write_bytes(bytes(body))


def huge_page_pdf(path: PathLike, *, width_pt: float = 20000, height_pt: float = 20000,
                  then: Sequence[str] = ()) -> None:
    """Write a PDF whose first page is ``width_pt`` x ``height_pt`` points with no text (a poster, a
    scanned plan: it would need OCR), followed by normal A4 pages with the text layers ``then``.

    The file is tiny (an empty page costs a few bytes whatever its size); rendering it is what costs:
    20000 x 20000 pt at 300 dpi is 83,333^2 pixels. PDF allows pages up to 14,400 pt per side in its
    user-unit-free form, but pdfium and reportlab take larger MediaBoxes as written.
    """
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(width_pt, height_pt), invariant=1)
    c.showPage()
    font = _register_font()
    for text in then:
        c.setPageSize(A4)
        c.setFont(font, 11)
        y = A4[1] - 72
        for line in text.splitlines():
            c.drawString(72, y, line)
            y -= 14
        c.showPage()
    c.save()
    _ensure_parent(path).write_bytes(buf.getvalue())
