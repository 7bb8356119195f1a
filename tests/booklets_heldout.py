"""A held-out booklet layout: a four-alternative vestibular in the manner of UNICAMP's 1ª fase (Comvest).

Written like ``tests/booklets.py`` (whose helpers, ``Booklet``, ``score`` and ``write_booklet`` it reuses) from
what real vestibular booklets look like, **not** from what the project's reader expects: the reader was not
read while writing this, and nothing here imports ``gabarito`` or ``stages``. Kept apart from the other
layouts so that a reader can be scored on it before any code is changed for it.

Public API::

    heldout_booklet(scan=False) -> Booklet   # truth/meta in the format of tests/booklets.py
    heldout_key() -> bytes                   # the key PDF (also Booklet.key_pdf)

Deterministic: the text bank is seeded, reportlab runs with ``invariant=1``, scans are saved with fixed dates.

Reproduced from the real print (as far as memory of Comvest's 1ª fase booklets and of vestibular booklets
in general goes)
-----------------------------------------------------------------------------------------------------------
* Four alternatives per question, lettered in lower case with a closing parenthesis: ``a)`` ``b)`` ``c)``
  ``d)`` (UNICAMP's 1ª fase prints them so), the letter at the left, wrapped lines hanging under the text.
* A version letter instead of a colour: ``PROVA Q`` on the cover, in the running header and on the key
  (Comvest prints versions Q, X, Y, Z with the same questions in different orders; only Q is made here).
* ``Vestibular Unicamp 2025`` is the exam taken in late 2024, so the key's publication line carries 2024 while
  every identifier says 2025.
* A cover page with the exam's name, the phase and day, the version in a box, a numbered ``INSTRUÇÕES`` list
  that itself quotes the numbering (``questões numeradas de 91 a 138``) and the lettering (``a), b), c) e
  d)``), a box for the candidate's name and registration.
* Shared passages: a bold lead sentence naming the questions, then the passage and its source, then each
  question (the passage is the context of each); ``TEXTO I`` / ``TEXTO II`` inside one question.
* Figures: raster charts and vector drawings, some in questions that name no figure; questions that say
  ``figura``/``gráfico``/``imagem`` in passing with none; one shared passage comes with a chart
  (``Leia o texto e observe o gráfico ...``), so both its questions need the figure.
* The key as vestibular commissions publish it: one page, ``GABARITO OFICIAL``, identifiers above it, a
  horizontal grid (a row of numbers over a row of letters, 12 to a row), the annulled question marked ``*``
  in its letter cell with the footnote ``* Questão anulada. ...``; upper-case letters in the key although
  the booklet prints them in lower case.
* The last page is a ``RASCUNHO DO GABARITO`` grid (every number 91-138 with ``a b c d`` in circles) that a
  candidate may tear off and take home: not questions.

Chosen here (not known from the real print, or changed on purpose)
------------------------------------------------------------------
* **Day 2 numbered 91 to 138** (48 questions), as if continuing a first day of 90: UNICAMP's 1ª fase is one
  day of 72 questions numbered from 1; the split is here so that most numbers have three digits.
* The question number in a **filled dark rounded box with white bold digits**, the first line of the
  question beginning to its right on the same line (no ``Questão`` word, no punctuation after the number).
* Two columns **without** a rule in the gutter; body in a serif face (DejaVu Serif, 9.3 pt, justified,
  hyphenated, first-line indents), headings in DejaVu Sans.
* Area headings in the flow of the column, between rules: ``MATEMÁTICA`` / ``Questões 91 a 102``,
  ``CIÊNCIAS DA NATUREZA`` / ``Questões 103 a 120``, ``CIÊNCIAS HUMANAS E LINGUAGENS`` / ``Questões 121 a
  138``; they do not start a page.
* Lead sentences of shared passages: ``Leia o texto a seguir para responder às questões 122 a 124.``,
  ``O texto a seguir refere-se às questões 131 e 132.`` and the chart one above.
* Running header ``Vestibular Unicamp 2025 – 1ª Fase`` (left) / ``2º dia – Prova Q`` (right) over a rule;
  footer ``Comvest – Comissão Permanente para os Vestibulares`` (left) and the page number at the right
  corner; none on the cover.
* Question 117 annulled. The prose (from tests/booklets.py's word lists), fonts, sizes and margins.

Scans (``scan=True``): tests/booklets.py's scan (greyscale, 0.3-1° rotation alternating, blur, paper
noise, specks, JPEG, no text layer) at **150 dpi**.
"""

from __future__ import annotations

import functools
import io
import json
import random
from pathlib import Path

from reportlab.lib.colors import Color, white
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from tests.booklets import (A4, PAGE_H, PAGE_W, Booklet, _Bank, _chart_image, _Flow, _fonts, _gap, _Group,
                            _image_unit, _Page, _para_units, _Q, _render, _scan, _txt, _Unit, _vector_unit, _w,
                            _wrap, font_path, score, write_booklet)

__all__ = ["heldout_booklet", "heldout_key", "score", "write_booklet", "HELDOUT"]

HELDOUT = {"exam": "Vestibular Unicamp", "year": 2025, "phase": "1ª Fase", "day": 2, "version": "Q",
           "first": 91, "last": 138, "annulled": (117,)}
HEAD = ("Vestibular Unicamp 2025 – 1ª Fase", "2º dia – Prova Q")
FOOT = "Comvest – Comissão Permanente para os Vestibulares"
SECTIONS = [("MATEMÁTICA", 91, 102), ("CIÊNCIAS DA NATUREZA", 103, 120),
            ("CIÊNCIAS HUMANAS E LINGUAGENS", 121, 138)]
LOWER = "abcd"
SERIF, SERIF_B = "HeldoutDejaVuSerif", "HeldoutDejaVuSerifBold"
SIZE, LEAD = 9.3, 11.6
MX, GUT = 40.0, 22.0
TOP, BOTTOM = PAGE_H - 62.0, 54.0
BOX_W, BOX_H = 24.0, 12.5
DARK = Color(0.22, 0.22, 0.25)

INSTRUCTIONS = [
    "Só abra este caderno quando for autorizado pelo fiscal.",
    "Este caderno contém 48 questões objetivas, numeradas de 91 a 138, e uma folha de rascunho do gabarito. "
    "Confira se a impressão está completa e se a versão impressa na capa (PROVA Q) é a mesma da sua folha "
    "de respostas.",
    "Cada questão apresenta quatro alternativas, indicadas pelas letras a), b), c) e d). Apenas uma delas "
    "responde corretamente à questão.",
    "Assinale na folha de respostas a alternativa escolhida, preenchendo completamente o campo correspondente "
    "com caneta esferográfica de tinta preta.",
    "Não serão consideradas as respostas assinaladas neste caderno.",
    "A duração da prova é de 5 horas, já incluído o tempo para o preenchimento da folha de respostas. O "
    "candidato só poderá deixar a sala após 2 horas do início da prova.",
    "Ao terminar, entregue ao fiscal a folha de respostas e este caderno. A folha de rascunho do gabarito, "
    "na última página, pode ser destacada e levada pelo candidato.",
]


@functools.lru_cache(maxsize=None)
def _serif() -> tuple[str, str]:
    """DejaVu Serif (regular, bold); the sans face of tests/booklets.py where the system lacks it."""
    reg, bold, _ = _fonts()
    folder = Path(font_path()).parent
    out = []
    for name, file, fallback in ((SERIF, "DejaVuSerif.ttf", reg), (SERIF_B, "DejaVuSerif-Bold.ttf", bold)):
        path = folder / file
        if not path.is_file():
            out.append(fallback)
            continue
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(name, str(path)))
        out.append(name)
    return out[0], out[1]


# ----------------------------------------------------------------------------------------------------
# the questions
# ----------------------------------------------------------------------------------------------------

def _group_with_chart(b: _Bank, n: int) -> _Group:
    g = b.group(n)
    at = max(i for i, (k, _) in enumerate(g.blocks) if k == "p") + 1
    g.blocks.insert(at, ("img", _chart_image(b.r.randrange(1 << 30))))
    for q in g.questions:
        q.needs_figure = True
    return g


@functools.lru_cache(maxsize=None)
def _bank() -> list:
    """Units in print order: ("section", name, first, last) | _Q | (_Group, lead wording)."""
    b = _Bank("heldout-unicamp-2025-d2-Q")
    q = functools.partial(b.question, n_options=4)
    out: list = [("section", *SECTIONS[0])]
    # MATEMÁTICA 91-102
    for k in range(12):
        if k == 4:
            out.append(q("math", figure="vec", figure_word=True))
        elif k == 8:
            out.append(q("math", figure="img", figure_word=False))
        elif k == 10:
            out.append(q("math", passing=True))
        else:
            out.append(q(b.r.choice(["math", "math", "math", "short"])))
    # CIÊNCIAS DA NATUREZA 103-120
    out.append(("section", *SECTIONS[1]))
    k = 0
    while k < 18:
        if k == 3:
            out.append(q("science", figure="img", figure_word=True))
        elif k == 8:
            out.append(q("science", figure="vec", figure_word=False))
        elif k == 12:
            g = _group_with_chart(b, 2)
            for qq in g.questions:
                qq.options = b._options(4)
                qq.letter = "ABCD"[b.r.randrange(4)]
            out.append((g, "Leia o texto e observe o gráfico para responder às questões {a} e {b}."))
            k += 2
            continue
        elif k == 15:
            out.append(q("science", passing=True))
        else:
            out.append(q(b.r.choice(["science", "science", "short"])))
        k += 1
    # CIÊNCIAS HUMANAS E LINGUAGENS 121-138
    out.append(("section", *SECTIONS[2]))
    k = 0
    while k < 18:
        if k in (1, 10):
            g = b.group(3 if k == 1 else 2)
            for qq in g.questions:
                qq.options = b._options(4)
                qq.letter = "ABCD"[b.r.randrange(4)]
            lead = ("Leia o texto a seguir para responder às questões {a} a {c}." if k == 1
                    else "O texto a seguir refere-se às questões {a} e {b}.")
            out.append((g, lead))
            k += len(g.questions)
            continue
        if k == 6:
            out.append(q("two"))
        elif k == 13:
            out.append(q("short", figure="img", figure_word=True))
        elif k == 15:
            out.append(q("long", passing=True))
        else:
            out.append(q(b.r.choice(["long", "short", "long"])))
        k += 1
    return out


def _entries() -> list[tuple[int, _Q, _Group | None]]:
    n = HELDOUT["first"]
    out = []
    for u in _bank():
        if isinstance(u, _Q):
            out.append((n, u, None))
            n += 1
        elif isinstance(u, tuple) and isinstance(u[0], _Group):
            for qq in u[0].questions:
                out.append((n, qq, u[0]))
                n += 1
    assert n - 1 == HELDOUT["last"], n
    return out


# ----------------------------------------------------------------------------------------------------
# units
# ----------------------------------------------------------------------------------------------------

def _text_units(blocks, width: float, *, first_indent: float | None = None) -> list[_Unit]:
    """Blocks as units in the serif body; ``first_indent`` (the number box) replaces the first text
    line's indent."""
    reg, bold = _serif()
    units: list[_Unit] = []
    first = first_indent is not None
    for kind, val in blocks:
        if kind == "title":
            units.append(_gap(2))
            units += _para_units(val, bold, SIZE, LEAD, width, justify=False, hyphenate=False,
                                 indent=first_indent if first else 0.0)
            units[-1].keep = True
        elif kind in ("p", "stem"):
            ind = first_indent if first else (10.0 if kind == "p" else 0.0)
            units += _para_units(val, reg, SIZE, LEAD, width, indent=ind)
            units.append(_gap(2 if kind == "p" else 4))
        elif kind == "src":
            units += _para_units(val, reg, SIZE - 1.8, LEAD - 2.4, width, justify=False, hyphenate=False, align="r")
            units.append(_gap(4))
        elif kind == "img":
            units.append(_image_unit(val, width, max_h=130.0))
        elif kind == "vec":
            units.append(_vector_unit(val, width, h=85.0))
        if kind in ("title", "p", "stem"):
            first = False
    return units


def _question_units(q: _Q, number: int, width: float) -> list[_Unit]:
    sans_b = _fonts()[1]
    units = _text_units(q.blocks, width, first_indent=BOX_W + 5)
    head = units[0]

    def draw(c, x, ytop, head=head):
        c.setFillColor(DARK)
        c.roundRect(x, ytop - LEAD * 0.8 - 3.0, BOX_W, BOX_H, 2.5, stroke=0, fill=1)
        _txt(c, x + BOX_W / 2, ytop - LEAD * 0.8, str(number), sans_b, 8.6, anchor="c", fill=white)
        head.draw(c, x, ytop)
    units[0] = _Unit(head.h, draw, keep=True, mark=q.uid)
    units.insert(0, _gap(4))
    units += _option_units(q.options, width)
    return units


def _option_units(options, width: float) -> list[_Unit]:
    """``a) text``: the lower-case letter and parenthesis at the left, wrapped lines under the text."""
    reg, _ = _serif()
    indent = _w("d) ", reg, SIZE) + 3
    units: list[_Unit] = []
    for k, opt in enumerate(options):
        lines = _wrap(opt, reg, SIZE, width - indent)
        for j, (line, _last) in enumerate(lines):
            def draw(c, x, ytop, line=line, j=j, k=k):
                base = ytop - LEAD * 0.8
                if j == 0:
                    _txt(c, x, base, f"{LOWER[k]})", reg, SIZE)
                _txt(c, x + indent, base, line, reg, SIZE)
            units.append(_Unit(LEAD + (1.5 if j == len(lines) - 1 else 0.0), draw))
    units.append(_gap(12))
    return units


def _section_units(name: str, first: int, last: int, width: float) -> list[_Unit]:
    sans, sans_b, _ = _fonts()

    def draw(c, x, ytop):
        c.setLineWidth(1.2)
        c.line(x, ytop - 2, x + width, ytop - 2)
        _txt(c, x + width / 2, ytop - 16, name, sans_b, 10.5, anchor="c")
        _txt(c, x + width / 2, ytop - 28, f"Questões {first} a {last}", sans, 8.5, anchor="c")
        c.setLineWidth(0.5)
        c.line(x, ytop - 34, x + width, ytop - 34)
    return [_gap(6), _Unit(44, draw, keep=True)]


class _NoRuleFlow(_Flow):
    """tests/booklets.py's flow without the rule in the gutter."""

    def new_page(self, banner=None, banner_h: float = 0.0) -> None:
        super().new_page(banner, banner_h)
        if self.cols == 2:
            self.page.ops.pop()


# ----------------------------------------------------------------------------------------------------
# cover, draft page, master page
# ----------------------------------------------------------------------------------------------------

def _cover(c) -> None:
    sans, sans_b, _ = _fonts()
    reg, bold = _serif()
    c.setFillColor(DARK)
    c.rect(0, PAGE_H - 128, PAGE_W, 128, stroke=0, fill=1)
    _txt(c, MX, PAGE_H - 62, "Vestibular Unicamp 2025", sans_b, 28, fill=white)
    _txt(c, MX, PAGE_H - 86, "1ª Fase – Prova de Conhecimentos Gerais", sans, 13, fill=white)
    _txt(c, MX, PAGE_H - 108, "2º DIA", sans_b, 15, fill=white)
    c.setFillColor(white)
    c.roundRect(PAGE_W - MX - 96, PAGE_H - 104, 96, 52, 6, stroke=0, fill=1)
    _txt(c, PAGE_W - MX - 48, PAGE_H - 68, "PROVA", sans_b, 10, anchor="c", fill=DARK)
    _txt(c, PAGE_W - MX - 48, PAGE_H - 96, "Q", sans_b, 26, anchor="c", fill=DARK)
    y = PAGE_H - 160
    c.setLineWidth(0.8)
    c.rect(MX, y - 52, PAGE_W - 2 * MX, 60)
    _txt(c, MX + 8, y - 8, "Nome do candidato: ________________________________________________________", reg, 10)
    _txt(c, MX + 8, y - 34, "Número de inscrição: ____________________     Sala: ________     Carteira: ________", reg, 10)
    y -= 88
    _txt(c, MX, y, "INSTRUÇÕES", sans_b, 12)
    y -= 22
    width = PAGE_W - 2 * MX - 24
    for k, text in enumerate(INSTRUCTIONS, 1):
        _txt(c, MX + 4, y, f"{k}.", bold, 10)
        for line, _ in _wrap(text, reg, 10, width):
            _txt(c, MX + 24, y, line, reg, 10)
            y -= 13.5
        y -= 5
    y -= 12
    c.setLineWidth(1.2)
    c.roundRect(MX, y - 44, PAGE_W - 2 * MX, 52, 5)
    _txt(c, MX + 10, y - 10, "ATENÇÃO", sans_b, 10)
    _txt(c, MX + 10, y - 28, "Os rascunhos e as marcações feitas neste caderno não serão considerados na correção.",
         reg, 9.5)
    _txt(c, PAGE_W / 2, 60, "Comvest – Comissão Permanente para os Vestibulares – Unicamp", sans, 9, anchor="c")


def _draft(c) -> None:
    """RASCUNHO DO GABARITO: every number with a b c d in circles (to tear off and take home)."""
    sans, sans_b, _ = _fonts()
    _txt(c, PAGE_W / 2, TOP - 14, "RASCUNHO DO GABARITO", sans_b, 14, anchor="c")
    _txt(c, PAGE_W / 2, TOP - 30, "Destaque esta folha e leve-a para conferir suas respostas com o gabarito oficial.",
         sans, 9, anchor="c")
    numbers = list(range(HELDOUT["first"], HELDOUT["last"] + 1))
    per_col, cols = 12, 4
    col_w = (PAGE_W - 2 * MX) / cols
    for i, n in enumerate(numbers):
        ci, ri = divmod(i, per_col)
        x = MX + ci * col_w + 14
        y = TOP - 70 - ri * 26
        _txt(c, x, y, str(n), sans_b, 10)
        for k, letter in enumerate(LOWER):
            cx = x + 34 + k * 22
            c.setLineWidth(0.7)
            c.circle(cx, y + 3.5, 7.5, stroke=1, fill=0)
            _txt(c, cx, y, letter, sans, 9, anchor="c")
    c.setDash(3, 3)
    c.line(MX - 20, TOP - 50, PAGE_W - MX + 20, TOP - 50)
    c.setDash()
    _txt(c, MX, TOP - 70 - per_col * 26 - 10, "Nome: __________________________________________   Inscrição: "
         "______________", sans, 9.5)


@functools.lru_cache(maxsize=2)
def _pdf() -> tuple[bytes, str, str]:
    reg, bold = _serif()
    sans, sans_b, _ = _fonts()
    width = PAGE_W - 2 * MX
    flow = _NoRuleFlow(cols=2, x0=MX, width=width, gutter=GUT, top=TOP, bottom=BOTTOM,
                       new_page=lambda: _Page("questions"))
    flow.pages.append(_Page("cover"))
    flow.new_page()
    entries = _entries()
    numbers = {q.uid: n for n, q, _ in entries}
    units: list[_Unit] = []
    for u in _bank():
        if isinstance(u, _Q):
            units += _question_units(u, numbers[u.uid], flow.col_w)
        elif isinstance(u[0], _Group):
            g, lead = u
            nums = [numbers[q.uid] for q in g.questions]
            text = lead.format(a=nums[0], b=nums[-1], c=nums[-1])
            units.append(_gap(6))
            units += _para_units(text, bold, SIZE, LEAD + 1, flow.col_w, justify=False, hyphenate=False)
            units[-1].keep = True
            units.append(_gap(3))
            units += _text_units(g.blocks, flow.col_w)
            for q in g.questions:
                units += _question_units(q, numbers[q.uid], flow.col_w)
        else:
            units += _section_units(*u[1:], flow.col_w)
    flow.place(units)
    flow.pages.append(_Page("draft"))

    def master(c, n, page):
        if page.kind == "cover":
            _cover(c)
            return
        _txt(c, MX, PAGE_H - 36, HEAD[0], sans_b, 9.5)
        _txt(c, PAGE_W - MX, PAGE_H - 36, HEAD[1], sans, 9.5, anchor="r")
        c.setLineWidth(0.7)
        c.line(MX, PAGE_H - 43, PAGE_W - MX, PAGE_H - 43)
        c.setLineWidth(0.4)
        c.line(MX, 40, PAGE_W - MX, 40)
        _txt(c, MX, 28, FOOT, sans, 7.5)
        _txt(c, PAGE_W - MX, 27, str(n), sans_b, 10, anchor="r")
        if page.kind == "draft":
            _draft(c)

    pdf = _render(flow.pages, master, "Vestibular Unicamp 2025 - 1a Fase - 2o dia - Prova Q", "tests/booklets_heldout.py")
    annulled = HELDOUT["annulled"]
    truth = [{"number": n, "language": None, "context": g.text() if g else "", "question": q.text(),
              "options": list(q.options), "letter": q.letter, "annulled": n in annulled,
              "needs_figure": q.needs_figure, "page": flow.marks[q.uid]} for n, q, g in entries]
    kinds = [p.kind for p in flow.pages]
    meta = {"layout": "heldout-vestibular4", "exam": HELDOUT["exam"], "year": HELDOUT["year"],
            "phase": HELDOUT["phase"], "day": HELDOUT["day"], "caderno": None, "colour": None,
            "version": HELDOUT["version"], "pages": len(flow.pages), "cover_pages": [1], "essay_pages": [],
            "draft_pages": [i + 1 for i, k in enumerate(kinds) if k == "draft"],
            "question_pages": [i + 1 for i, k in enumerate(kinds) if k == "questions"],
            "headers": list(HEAD), "footers": [FOOT], "page_codes": [],
            "headings": sorted({s for s, _, _ in SECTIONS} | {f"Questões {a} a {b}" for _, a, b in SECTIONS}),
            "annulled": sorted(annulled), "numbers": [HELDOUT["first"], HELDOUT["last"]], "n_options": 4}
    return pdf, json.dumps(truth, ensure_ascii=False), json.dumps(meta, ensure_ascii=False)


# ----------------------------------------------------------------------------------------------------
# the key
# ----------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def heldout_key() -> bytes:
    """GABARITO OFICIAL, one page: identifiers, a grid of 12 numbers over 12 letters per row, ``*`` for the
    annulled question with its footnote, the publication line."""
    sans, sans_b, _ = _fonts()
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=1, pageCompression=1)
    c.setTitle("Gabarito oficial - Vestibular Unicamp 2025 - 1a Fase - 2o dia - Prova Q")
    c.setCreator("tests/booklets_heldout.py")
    c.setProducer("tests/booklets_heldout.py")
    _txt(c, PAGE_W / 2, PAGE_H - 70, "Vestibular Unicamp 2025", sans_b, 18, anchor="c")
    _txt(c, PAGE_W / 2, PAGE_H - 92, "1ª Fase – Prova de Conhecimentos Gerais – 2º dia", sans, 12, anchor="c")
    _txt(c, PAGE_W / 2, PAGE_H - 128, "GABARITO OFICIAL", sans_b, 15, anchor="c")
    c.setFillColor(DARK)
    c.roundRect(PAGE_W / 2 - 45, PAGE_H - 166, 90, 24, 4, stroke=0, fill=1)
    _txt(c, PAGE_W / 2, PAGE_H - 158, "PROVA Q", sans_b, 12, anchor="c", fill=white)
    entries = _entries()
    per_row, cell, row = 12, 38.0, 17.0
    x0 = (PAGE_W - per_row * cell) / 2
    y = PAGE_H - 200
    for start in range(0, len(entries), per_row):
        chunk = entries[start:start + per_row]
        for k, (n, q, _g) in enumerate(chunk):
            x = x0 + k * cell
            c.setLineWidth(0.6)
            c.setFillColor(Color(0.86, 0.86, 0.88))
            c.rect(x, y - row, cell, row, stroke=1, fill=1)
            c.rect(x, y - 2 * row, cell, row, stroke=1, fill=0)
            _txt(c, x + cell / 2, y - row + 5, str(n), sans_b, 9.5, anchor="c")
            mark = "*" if n in HELDOUT["annulled"] else q.letter
            _txt(c, x + cell / 2, y - 2 * row + 5, mark, sans, 10, anchor="c")
        y -= 2 * row + 14
    y -= 6
    _txt(c, x0, y, "* Questão anulada. A pontuação correspondente será atribuída a todos os candidatos.", sans, 9)
    _txt(c, x0, y - 30, "Campinas, 27 de outubro de 2024.", sans, 9)
    _txt(c, x0, y - 44, "Comvest – Comissão Permanente para os Vestibulares", sans_b, 9)
    c.showPage()
    c.save()
    return buf.getvalue()


def heldout_booklet(scan: bool = False) -> Booklet:
    """The held-out four-alternative vestibular (see the module docstring) with its key and truth.
    ``scan=True``: the same booklet as an image-only scan at 150 dpi."""
    pdf, truth, meta = _pdf()
    meta = json.loads(meta)
    if scan:
        pdf = _scan(pdf, seed="scan-heldout-unicamp-2025-Q", dpi=150)
        meta["scan"] = {"dpi": 150}
    meta["layout"] = "heldout-vestibular4-scan" if scan else "heldout-vestibular4"
    return Booklet(pdf=pdf, key_pdf=heldout_key(), truth=json.loads(truth), meta=meta)
