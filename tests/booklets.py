"""Exam booklets as the big Brazilian exams print them, their answer keys, and the truth to score a reader.

Written from issue 21 and from what the real booklets look like, **not** from what the project's reader
expects (the reader was not read while writing this). Nothing here imports ``gabarito`` or ``stages``.

Public API::

    inep_booklet(colour="AZUL", day=1, year=2024, scan=False, annulled=None) -> Booklet
    inep_key(colour="AZUL", day=1, year=2024, annulled=None) -> bytes
    fuvest_booklet(scan=False, annulled=()) -> Booklet ; fuvest_key(annulled=()) -> bytes
    fgv_booklet(scan=False, annulled=None) -> Booklet ; fgv_key(annulled=None) -> bytes
    score(items, truth, *, headers=()) -> dict
    write_booklet(dir, name, booklet)  # <name>.pdf, <name>.gabarito.pdf, <name>.truth.json

Everything is deterministic: the text bank is drawn from word lists with a seed made of the exam's
identifiers, reportlab runs with ``invariant=1`` and scans are saved by Pillow with fixed dates, so the
same call gives the same bytes.

ENEM (INEP), as printed -- details reproduced from the real print
-------------------------------------------------------------------
* A4; cover page with the exam name, ``EXAME NACIONAL DO ENSINO MÉDIO``, ``1º DIA``, ``CADERNO 1``, the
  colour, the tests of the day, ``LEIA ATENTAMENTE AS INSTRUÇÕES SEGUINTES:`` and the numbered
  instruction list (``1. Este CADERNO DE QUESTÕES contém 90 questões numeradas de 01 a 95, ...`` with
  ``a)`` ``b)`` ``c)``), then an ``ATENÇÃO:`` block with the sentence to copy onto the answer card.
* Inner pages in two columns with a thin vertical rule in the gutter; a running header in two runs at
  the same height (left ``ENEM2024``, right ``1º DIA • CADERNO 1 • AZUL``), a footer with the area
  abbreviation (``LC - 1º dia | Caderno 1 - AZUL``) and the page number at the outer corner, and a
  barcode-style page code at the foot (``*010103AZ4*``; INEP prints such a code on every page, the exact
  scheme here is chosen).
* Each area opens a page with a full-width band (``LINGUAGENS, CÓDIGOS E SUAS TECNOLOGIAS``,
  ``Questões de 01 a 45``); day 1 prints 01-05 twice (``Questões de 01 a 05 (opção inglês)`` then
  ``(opção espanhol)``): passage in the foreign language, question and alternatives in Portuguese.
* Bold ``QUESTÃO 01`` headings; on a few, the heading is drawn in runs so that pdfium's text layer
  splits it at the accent (``QUEST O 51 Ã``, ``QUEST\\nÃ\\nO 51``), as the issue saw in real INEP PDFs.
* Alternatives: the letter inside a small rounded box, no punctuation after it, the text after the box,
  wrapped lines aligned under the text (not under the box).
* Justified text with Portuguese hyphenation at some line ends (InDesign does it; pdfium's
  ``get_text_range`` then joins the two halves with U+FFFE: ``compor\\ufffetamento``), passages with
  a first-line indent, the source citation right-aligned in a smaller size (``Disponível em: ...
  Acesso em: ... (adaptado).``).
* ``TEXTO I`` / ``TEXTO II`` inside one question, and a few ``Texto para as questões 10 e 11`` blocks.
* Figures: raster charts (drawn with Pillow) and vector figures (reportlab rectangles and lines),
  some in questions that name no figure; and questions that say ``gráficos``, ``figura`` or ``imagem``
  in passing without any figure.
* Questions flow through columns and pages; a question may continue in the next column or page.
* Day 1 ends with the essay (``PROPOSTA DE REDAÇÃO``: numbered instructions with ``4.1.``-style
  sub-items, ``TEXTO I``-``TEXTO IV``) and a ``RASCUNHO`` page with lines numbered 1-30.
* Four colours per day (day 1: AZUL 1, AMARELO 2, BRANCO 3, ROSA 4; day 2: AMARELO 5, CINZA 6,
  AZUL 7, ROSA 8): the same questions, shuffled within each area (a shared-passage pair moves as
  one), renumbered, each with its own key. The alternatives keep their order.
* The answer key follows ``../shared/reference/inep/*.pdf``: year >= 2023 the 2024/2025 layout
  (``enem2024`` logo as a picture, not text; top right ``Azul``, ``CADERNO 1``, ``Gabarito 2024`` and a
  big ``1`` + ``º`` + ``dia`` that pdfium reads as ``1dia`` / ``º`` as in the real 2023 key (2024's
  reads ``dia 1º``); two rounded tables ``QUESTÃO GABARITO`` with striped rows; day 1 rows 1-5 with
  ``INGLÊS`` ``ESPANHOL``; ``Anulado`` in red; text drawn with
  font size 1 scaled by the text matrix, as InDesign does, so pdfium reports size 1.0; day 1 draws the
  right table first), year 2022 the 2022 layout (``Gabarito 2022``, ``Azul``, ``1º DIA - CADERNO 1``).

Chosen here (not known from the real print): the fonts (DejaVu Sans, the real one is a Helvetica-like
face), sizes and margins, the page-code scheme, the page on which each area and language block begins
(a new page each), the essay at the end of day 1, the prose itself (assembled from word lists, so it
reads Portuguese-like, not meaningful).

FUVEST 1ª fase (``fuvest_booklet``): cover with the instruction list, then two columns; the question
number alone on its own line in bold, two digits (``01`` ... ``90``); alternatives ``(A)``-``(E)`` with
wrapped lines under the text (FUVEST prints letters in parentheses as far as memory goes; it is also
the brief's fallback); running header ``FUVEST 2025 – 1ª Fase`` / ``Conhecimentos Gerais – Prova V``,
footer ``Página N`` (chosen wording); ``Texto para as questões 04 e 05`` and ``Texto para as questões
de 30 a 32`` blocks (the passage is the context of each); ``TEXTO I``/``TEXTO II``; figures as in ENEM;
its key a plain ``Questão | Resposta`` table (``Anulada`` where annulled; none by default).

FGV / OAB Exame de Ordem (``fgv_booklet``): cover as FGV prints it (``ORDEM DOS ADVOGADOS DO BRASIL``,
``XLI EXAME DE ORDEM UNIFICADO``, ``PROVA OBJETIVA``, ``TIPO 1 - BRANCA`` in a box, black tabs ``SUA
PROVA`` / ``TEMPO`` / ``NÃO SERÁ PERMITIDO`` with bullets and ``INFORMAÇÕES GERAIS`` numbered); one
column; the number in bold at the start of the stem's first line, the stem and alternatives indented
(chosen: exactly where FGV puts the number is not known here); four alternatives ``(A)``-``(D)``; legal
cases (names, ``art. 571 do Código Civil``, amounts in ``R$``), no figures (some cases say ``direito à
imagem``); header ``XLI EXAME DE ORDEM UNIFICADO`` / ``TIPO 1 - BRANCA`` (the brief's ASCII hyphen; FGV
may print an en dash), footer ``Realização FGV`` and ``Página N``; 80 questions, one annulled by
default (37: ``ANULADA`` in the preliminary key).

Scans (``scan=True``): each born-digital page rendered by pypdfium2 at 170 dpi (FUVEST 160, FGV 180),
greyscale, rotated 0.3-1° (alternating), blurred, with paper noise and specks, stored as JPEG; the
PDF has no text layer.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import io
import json
import math
import random
import re
import unicodedata
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from reportlab.lib.colors import Color, black, white
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from tests.pdfgen import _register_font, font_path

__all__ = ["Booklet", "inep_booklet", "inep_key", "fuvest_booklet", "fuvest_key", "fgv_booklet",
           "fgv_key", "score", "write_booklet"]

PAGE_W, PAGE_H = A4
LETTERS = "ABCDE"


@dataclasses.dataclass
class Booklet:
    """A generated booklet: its PDF, its answer key's PDF, the truth per printed question, and meta
    (year/day/caderno/colour/layout, the header and footer strings printed, which pages are what)."""
    pdf: bytes
    key_pdf: bytes
    truth: list[dict]
    meta: dict


# ----------------------------------------------------------------------------------------------------
# fonts and text primitives
# ----------------------------------------------------------------------------------------------------

REG = "PdfgenDejaVuSans"  # tests.pdfgen's name for DejaVu Sans
BOLD = "BookletsDejaVuSansBold"
ITAL = "BookletsDejaVuSansOblique"


@functools.lru_cache(maxsize=None)
def _fonts() -> tuple[str, str, str]:
    _register_font()
    folder = Path(font_path()).parent
    for name, file in ((BOLD, "DejaVuSans-Bold.ttf"), (ITAL, "DejaVuSans-Oblique.ttf")):
        if name not in pdfmetrics.getRegisteredFontNames():
            path = folder / file
            # without the bold/oblique files, fall back to the regular face (still deterministic)
            pdfmetrics.registerFont(TTFont(name, str(path if path.is_file() else font_path())))
    return REG, BOLD, ITAL


def _w(s: str, font: str, size: float) -> float:
    return pdfmetrics.stringWidth(s, font, size)


def _txt(c, x: float, y: float, s: str, font: str, size: float, *, tw: float = 0.0, fill=black,
         anchor: str = "l", matrix_size: bool = False) -> None:
    """Draw one run. Word spacing (Tw) is set on every run: it is part of the text state and would
    otherwise leak from a justified line into the next run. ``matrix_size`` draws with font size 1
    scaled by the text matrix (as InDesign writes keys)."""
    if anchor != "l":
        width = _w(s, font, size)
        x -= width if anchor == "r" else width / 2
    c.setFillColor(fill)
    t = c.beginText()
    if matrix_size:
        t.setTextTransform(size, 0, 0, size, x, y)
        t.setFont(font, 1)
        t.setWordSpace(tw / size)
    else:
        t.setTextOrigin(x, y)
        t.setFont(font, size)
        t.setWordSpace(tw)
    t.textOut(s)
    c.drawText(t)
    c.setFillColor(black)


_VOWELS = set("aeiouáéíóúâêôãõàü")
_NO_SPLIT = {"lh", "nh", "ch", "qu", "gu"}


def _hyphen_points(word: str) -> list[int]:
    """Places where a Portuguese word may be broken (rough syllable rules: V-CV, VC-CV but not inside
    lh/nh/ch/qu/gu or before r/l after a consonant cluster start)."""
    w = word.lower()
    if len(w) < 7 or not w.isalpha():
        return []
    out = []
    for i in range(3, len(w) - 2):
        a, b, nxt = w[i - 1], w[i], w[i + 1]
        if a in _VOWELS and b not in _VOWELS and nxt in _VOWELS and w[i:i + 2] not in _NO_SPLIT:
            out.append(i)  # ca-sa
        elif (a not in _VOWELS and b not in _VOWELS and nxt in _VOWELS and w[i - 2] in _VOWELS
              and w[i - 1:i + 1] not in _NO_SPLIT and b not in "rlh" and a != b):
            out.append(i)  # par-te
        elif a == b and a in "rs" and w[i - 2] in _VOWELS:
            out.append(i)  # ter-ra, pas-so
    return out


def _wrap(text: str, font: str, size: float, width: float, *, first_indent: float = 0.0,
          hyphenate: bool = False) -> list[tuple[str, bool]]:
    """Greedy wrap; returns (line, is_last_of_paragraph). With ``hyphenate``, a long word that does not
    fit is broken with "-" when the line would otherwise be loose (over 20% empty)."""
    words = text.split()
    lines: list[tuple[str, bool]] = []
    cur = ""
    avail = width - first_indent
    i = 0
    while i < len(words):
        word = words[i]
        cand = f"{cur} {word}" if cur else word
        if _w(cand, font, size) <= avail or not cur:
            cur = cand
            i += 1
            continue
        if hyphenate and (avail - _w(cur, font, size)) > 0.2 * avail:
            core = word.rstrip(".,;:!?)”\"")
            best = None
            for p in _hyphen_points(core):
                if _w(f"{cur} {word[:p]}-", font, size) <= avail:
                    best = p
            if best:
                lines.append((f"{cur} {word[:best]}-", False))
                words[i] = word[best:]
                cur = ""
                avail = width
                continue
        lines.append((cur, False))
        cur = ""
        avail = width
    if cur:
        lines.append((cur, True))
    return lines


# ----------------------------------------------------------------------------------------------------
# the text bank: Portuguese-like prose from word lists, seeded
# ----------------------------------------------------------------------------------------------------

SUBJ = ["a cidade contemporânea", "o trabalhador rural", "a escola pública", "o movimento estudantil",
        "a linguagem das redes sociais", "o mercado de trabalho", "a cultura popular nordestina",
        "o patrimônio histórico", "a comunidade ribeirinha", "o poder público municipal",
        "a literatura de cordel", "o cinema nacional", "a agricultura familiar", "o sistema de saúde",
        "a imprensa regional", "o Estado republicano", "a sociedade colonial", "o pensamento iluminista",
        "a indústria cultural", "o espaço urbano", "a música popular brasileira", "o discurso publicitário",
        "a economia cafeeira", "o povo indígena", "a população quilombola", "o narrador do romance",
        "a crônica jornalística", "o consumo de energia", "a produção de alimentos", "o ciclo da borracha",
        "a migração interna", "o debate ambiental", "a reforma agrária", "o ensino de ciências",
        "a juventude periférica", "o teatro de rua", "a arquitetura modernista", "o uso da internet",
        "a ciência moderna", "o comércio atlântico", "a poesia concreta", "o samba de roda",
        "a mineração colonial", "o voto feminino", "a urbanização acelerada", "o transporte coletivo"]
VERB = ["transforma", "revela", "questiona", "reforça", "amplia", "reduz", "expressa", "valoriza",
        "representa", "critica", "problematiza", "evidencia", "reconfigura", "preserva", "denuncia",
        "legitima", "redefine", "incorpora", "contesta", "aprofunda", "silencia", "ressignifica",
        "mobiliza", "tensiona", "sustenta", "desafia", "retrata", "estimula", "limita", "organiza"]
OBJ = ["as relações sociais", "o uso dos recursos naturais", "a memória coletiva", "a desigualdade regional",
       "os hábitos de leitura", "as formas de participação política", "a identidade cultural",
       "os direitos trabalhistas", "as fronteiras entre o público e o privado", "a circulação de informações",
       "os modos de produção", "a ocupação do território", "as práticas religiosas", "o acesso à educação",
       "a paisagem natural", "as tradições orais", "a diversidade linguística", "o equilíbrio dos ecossistemas",
       "as relações de gênero", "a noção de cidadania", "o papel da família", "as políticas de saneamento",
       "a organização do trabalho", "o valor da experiência", "os conflitos agrários", "a produção artística",
       "as variações da norma-padrão", "o sentido de pertencimento", "as redes de solidariedade",
       "a distribuição de renda", "o direito à moradia", "a expansão das fronteiras agrícolas"]
ADV = ["ao longo do século XX", "nas grandes cidades brasileiras", "desde o período colonial",
       "em diferentes contextos históricos", "no cotidiano escolar", "durante a Primeira República",
       "nas últimas décadas", "em comunidades tradicionais", "no interior do país",
       "após a Revolução Industrial", "na sociedade contemporânea", "entre os jovens", "no ambiente digital",
       "em regiões de fronteira", "durante o regime militar", "no campo e na cidade", "em escala global",
       "nos meios de comunicação", "ao final do Império", "em períodos de crise econômica"]
CONN = ["Além disso,", "No entanto,", "Dessa forma,", "Por outro lado,", "Nesse sentido,", "Assim,",
        "Contudo,", "Em contrapartida,", "De acordo com estudiosos,", "Ainda assim,", "Por isso,",
        "Segundo o autor,", "Historicamente,", "Na prática,"]
REL = ["que marca a experiência de muitas gerações", "que se manifesta de modo desigual",
       "cuja origem remonta a práticas antigas", "que ainda desperta intensos debates",
       "que depende de escolhas coletivas", "sem que haja consenso entre especialistas",
       "o que exige novas formas de interpretação", "como apontam pesquisas recentes",
       "o que altera a percepção dos moradores", "algo pouco discutido nas escolas"]
INF = ["valorizar", "criticar", "reforçar", "questionar", "ampliar", "denunciar", "preservar", "descrever",
       "ironizar", "defender", "relativizar", "combater", "explicar", "contestar", "legitimar", "ilustrar",
       "comparar", "registrar", "sugerir", "recusar"]
GER = ["evidenciando", "sugerindo", "reforçando", "negando", "ampliando", "ignorando", "associando",
       "contrapondo", "atualizando", "restringindo"]
PURPOSE = ["convencer o leitor", "sensibilizar o público", "informar a população", "criticar o senso comum",
           "defender uma tese", "descrever um processo", "narrar um episódio", "divulgar uma campanha",
           "relatar uma pesquisa", "homenagear um artista", "provocar a reflexão", "orientar o consumidor"]
SURN = ["SILVA", "SANTOS", "OLIVEIRA", "SOUZA", "LIMA", "PEREIRA", "CARVALHO", "ALMEIDA", "RIBEIRO",
        "MARTINS", "ROCHA", "BARBOSA", "ARAÚJO", "MOREIRA", "CAVALCANTI", "FREITAS", "MONTEIRO", "NOGUEIRA"]
CITY_PUB = ["São Paulo: Companhia das Letras", "Rio de Janeiro: Record", "Belo Horizonte: Autêntica",
            "Recife: Cepe", "Porto Alegre: L&PM", "Salvador: Edufba", "Brasília: UnB", "Curitiba: UFPR"]
SITES = ["www.revistapesquisa.org.br", "www.agenciabrasil.ebc.com.br", "www.cienciahoje.org.br",
         "www.museudapessoa.org", "www.ibge.gov.br", "www.nexojornal.com.br", "www.jornal.usp.br"]
MONTHS = ["jan.", "fev.", "mar.", "abr.", "maio", "jun.", "jul.", "ago.", "set.", "out.", "nov.", "dez."]

EN_SUBJ = ["the city council", "many young workers", "the local community", "social media platforms",
           "the new museum", "a group of scientists", "the school library", "online newspapers",
           "small farmers", "the public transport system", "the tourism industry", "street artists",
           "the digital generation", "the national park", "independent musicians", "the water company"]
EN_VERB = ["changed", "often ignored", "strongly supported", "reshaped", "questioned", "rarely discussed",
           "promoted", "reduced", "carefully described", "kept challenging", "celebrated", "transformed"]
EN_OBJ = ["the way people read the news", "the use of public spaces", "traditional recipes",
          "the right to clean water", "long working hours", "the habit of recycling", "local languages",
          "the price of healthy food", "the memory of older residents", "online privacy",
          "the value of manual work", "the protection of forests"]
EN_ADV = ["in recent years", "across the country", "in many schools", "after the pandemic",
          "around the world", "in small towns", "every summer", "for a long time"]
EN_CONN = ["However,", "In addition,", "As a result,", "Surprisingly,", "According to experts,",
           "Meanwhile,", "For many people,", "In other words,"]
ES_SUBJ = ["el ayuntamiento", "la juventud trabajadora", "la comunidad local", "la red social más usada",
           "el nuevo museo", "un grupo de científicos", "la biblioteca escolar", "el periódico digital",
           "el pequeño agricultor", "el transporte público", "la industria turística",
           "el arte callejero", "la generación digital", "el parque nacional", "la música independiente"]
ES_VERB = ["ha cambiado", "suele ignorar", "apoya con fuerza", "está transformando", "ha cuestionado",
           "rara vez discute", "promueve", "ha reducido", "describe con cuidado", "sigue desafiando"]
ES_OBJ = ["la manera de leer las noticias", "el uso de los espacios públicos", "las recetas tradicionales",
          "el derecho al agua potable", "las largas jornadas de trabajo", "el hábito de reciclar",
          "las lenguas indígenas", "el precio de los alimentos", "la memoria de los vecinos mayores",
          "la privacidad en internet", "el valor del trabajo manual", "la protección de los bosques"]
ES_ADV = ["en los últimos años", "en todo el país", "en muchas escuelas", "después de la pandemia",
          "en el mundo entero", "en los pueblos pequeños", "cada verano", "desde hace mucho tiempo"]
ES_CONN = ["Sin embargo,", "Además,", "Por eso,", "Sorprendentemente,", "Según los expertos,",
           "Mientras tanto,", "Para mucha gente,", "Es decir,"]

PRODUCTS = ["café", "soja", "leite", "mel", "farinha", "cimento", "tecido", "papel reciclado", "açaí", "cacau"]
UNITS = ["quilogramas", "litros", "metros", "caixas", "sacas", "pacotes"]


NAMES = ["Joana", "Pedro", "Mariana", "Carlos", "Renata", "Lúcio", "Beatriz", "Otávio", "Helena", "Vicente",
         "a sociedade empresária Alfa Ltda.", "o Município de Beta", "a associação Gama", "Rafael", "Cláudia"]
ROLES = ["advogada", "servidor público federal", "empresário individual", "sócia majoritária", "consumidor",
         "estudante universitário", "aposentada pelo Regime Geral", "estagiário de Direito", "locatário"]
ACTIONS = ["ação de cobrança", "ação indenizatória", "ação de despejo", "ação de alimentos", "ação anulatória",
           "ação de usucapião", "mandado de segurança", "reclamação trabalhista", "ação civil pública"]
FACTS = ["o contrato celebrado em {y} não foi cumprido no prazo ajustado", "houve cobrança indevida na fatura de "
         "energia elétrica", "a demissão ocorreu durante o período de estabilidade", "o imóvel foi ocupado de "
         "forma mansa e pacífica por mais de quinze anos", "a multa de trânsito foi aplicada sem notificação prévia",
         "o tributo foi exigido no mesmo exercício financeiro da lei que o instituiu", "a licitação foi dispensada "
         "sem justificativa", "o nome do autor foi inscrito em cadastro de inadimplentes", "o direito à imagem foi "
         "violado por publicação em rede social", "a sentença foi publicada sem a intimação do advogado"]
LAWS = ["do Código Civil", "do Código de Processo Civil", "da CRFB/88", "do Código de Defesa do Consumidor",
        "da CLT", "do Estatuto da Advocacia e da OAB", "do Código Tributário Nacional", "da Lei nº 8.666/93",
        "do Estatuto da Criança e do Adolescente", "da Lei de Execução Penal"]
OUTCOMES = ["a ação deve ser julgada improcedente", "o prazo prescricional é de três anos",
            "cabe recurso de apelação no prazo de quinze dias úteis", "a competência é da Justiça Federal",
            "o juiz deve extinguir o processo sem resolução do mérito", "a cláusula contratual é nula de pleno direito",
            "o advogado pode recusar o patrocínio da causa", "a responsabilidade do fornecedor é objetiva",
            "a tutela de urgência deve ser deferida", "a cobrança é legítima", "o ato administrativo é anulável",
            "o réu deve ser citado por edital", "a pretensão está prescrita", "a multa não pode ser exigida",
            "o tributo só pode ser cobrado no exercício seguinte", "cabe agravo de instrumento"]
REASONS = ["a lei veda a cobrança nessa hipótese", "o Estatuto assegura tal prerrogativa ao profissional",
           "não houve prévia notificação do interessado", "o prazo decadencial já se consumou",
           "o princípio da anterioridade deve ser observado", "a boa-fé objetiva impõe deveres anexos",
           "a competência é absoluta e pode ser reconhecida de ofício", "o dano moral, nesse caso, é presumido",
           "a relação jurídica é de consumo", "o contraditório não foi assegurado", "o ato foi praticado por "
           "autoridade incompetente", "a posse exercida não tinha ânimo de dono"]
LEGAL_STEMS = ["Sobre o caso narrado, assinale a afirmativa correta.",
               "Diante da situação hipotética, assinale a opção que está de acordo com a legislação vigente.",
               "Considerando o caso, assinale a afirmativa que apresenta a orientação correta.",
               "Com base na hipótese apresentada, assinale a opção correta.",
               "Nesse caso, de acordo com o entendimento dominante, assinale a afirmativa correta."]


def _legal_case(r: random.Random) -> str:
    name, other = r.sample(NAMES, 2)
    first = _cap(name) + ("" if name[0].islower() else f", {r.choice(ROLES)},")
    fact = r.choice(FACTS).format(y=r.randint(2015, 2023))
    text = (f"{first} ajuizou {r.choice(ACTIONS)} em face de {other}, alegando que {fact}. Na petição inicial, "
            f"invocou o art. {r.randint(2, 980)} {r.choice(LAWS)} e requereu a condenação ao pagamento de "
            f"{_money(r.randint(1000, 90000) * 10 / 10)}. ")
    if r.random() < 0.7:
        text += (f"Em contestação, {other} sustentou que {r.choice(FACTS).format(y=r.randint(2015, 2023))}, "
                 f"razão pela qual {r.choice(OUTCOMES)}. ")
    if r.random() < 0.5:
        text += (f"O juízo de primeiro grau, após audiência realizada em {r.randint(1, 28)} de "
                 f"{r.choice(['março', 'abril', 'junho', 'agosto', 'outubro'])} de {r.randint(2020, 2024)}, "
                 f"entendeu que {r.choice(OUTCOMES)}.")
    return text.strip()


def _legal_option(r: random.Random) -> str:
    o = f"{_cap(r.choice(OUTCOMES))}, pois {r.choice(REASONS)}"
    if r.random() < 0.3:
        o += f", nos termos {r.choice(LAWS)}"
    return o + "."


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


class _Prose:
    """Seeded sentence maker (Portuguese, English, Spanish)."""

    def __init__(self, rng: random.Random):
        self.r = rng

    def pt_sentence(self) -> str:
        r = self.r
        s = f"{r.choice(SUBJ)} {r.choice(VERB)} {r.choice(OBJ)} {r.choice(ADV)}"
        if r.random() < 0.45:
            s += f", {r.choice(REL)}"
        if r.random() < 0.5:
            return f"{r.choice(CONN)} {s}."
        return _cap(s) + "."

    def sentences(self, chars: int, make=None) -> str:
        make = make or self.pt_sentence
        out: list[str] = []
        while sum(len(s) + 1 for s in out) < chars:
            s = make()
            if s not in out:
                out.append(s)
        return " ".join(out)

    def paragraphs(self, chars: int, make=None) -> list[str]:
        text = self.sentences(chars, make)
        parts = text.split(". ")
        n = 1 if chars < 500 else (2 if chars < 1200 else 3)
        size = math.ceil(len(parts) / n)
        paras = [". ".join(parts[i:i + size]) for i in range(0, len(parts), size)]
        return [p if p.endswith(".") else p + "." for p in paras]

    def en_sentence(self) -> str:
        r = self.r
        s = f"{r.choice(EN_SUBJ)} {r.choice(EN_VERB)} {r.choice(EN_OBJ)} {r.choice(EN_ADV)}"
        return f"{r.choice(EN_CONN)} {s}." if r.random() < 0.4 else _cap(s) + "."

    def es_sentence(self) -> str:
        r = self.r
        s = f"{r.choice(ES_SUBJ)} {r.choice(ES_VERB)} {r.choice(ES_OBJ)} {r.choice(ES_ADV)}"
        return f"{r.choice(ES_CONN)} {s}." if r.random() < 0.4 else _cap(s) + "."

    def source(self) -> str:
        r = self.r
        if r.random() < 0.5:
            return (f"{r.choice(SURN)}, {r.choice('ABCDFGJLMNPRT')}. {_cap(r.choice(OBJ))} "
                    f"{r.choice(ADV)}. {r.choice(CITY_PUB)}, {r.randint(1978, 2022)} (adaptado).")
        return (f"Disponível em: {r.choice(SITES)}. Acesso em: {r.randint(1, 28)} {r.choice(MONTHS)} "
                f"{r.randint(2019, 2023)} (adaptado).")

    def option(self, kind: str) -> str:
        r = self.r
        if kind == "long":  # wraps over 2-3 lines of a column (now and then 4)
            o = f"{_cap(r.choice(INF))} {r.choice(OBJ)} {r.choice(ADV)}, {r.choice(GER)} {r.choice(OBJ)}"
            return o + (f" e {r.choice(INF)} {r.choice(OBJ)}." if r.random() < 0.35 else ".")
        if kind == "clause":
            return f"{_cap(r.choice(SUBJ))} {r.choice(VERB)} {r.choice(OBJ)}."
        return f"{_cap(r.choice(INF))} {r.choice(OBJ)} {r.choice(ADV)}."


def _money(v: float) -> str:
    whole, cents = divmod(round(v * 100), 100)
    return f"R$ {whole:,}".replace(",", ".") + f",{cents:02d}"


def _dec(v: float, places: int = 1) -> str:
    return f"{v:.{places}f}".replace(".", ",")


def _numeric_options(r: random.Random, kind: str) -> list[str]:
    """Five distinct numeric alternatives of one kind (money, fraction, percent, unit, formula)."""
    out: list[str] = []
    base = r.randint(3, 60)
    while len(out) < 5:
        if kind == "money":
            s = _money(r.choice([125, 250, 480, 1250, 2400, 37.5, 960]) * r.randint(1, 9) / r.choice([1, 2, 4]))
        elif kind == "fraction":
            d = r.choice([4, 5, 6, 8, 9, 12, 16, 25])
            s = f"{r.randint(1, d - 1)}/{d}"
        elif kind == "percent":
            s = f"{_dec(r.randint(5, 950) / 10)}%"
        elif kind == "unit":
            unit = ["m/s²", "km", "J", "kg", "mL", "°C", "m²"][base % 7]
            s = f"{_dec(base * r.choice([0.5, 1, 1.5, 2, 2.5, 4, 0.25]) + r.randint(0, 9) / 10)} {unit}"
        elif kind == "power":
            s = f"{_dec(r.randint(11, 99) / 10)} × 10{'⁻' if r.random() < 0.4 else ''}{'²³⁴⁵⁶'[r.randint(0, 4)]}"
        else:  # formula
            a, b = r.randint(1, 9), r.randint(1, 12)
            s = r.choice([f"x² + {a}x − {b}", f"{a}x + {b}", f"√{a * b}", f"{a}π", f"{a}/{b + a} · π r²",
                          f"2x² − {b}", f"({a} + x)/{b + 1}"])
        if s not in out:
            out.append(s)
    return out


@dataclasses.dataclass
class _Q:
    """One question of the bank: blocks of its own text, alternatives, answer."""
    uid: str
    blocks: list  # ("title"|"p"|"src"|"stem", text) | ("img", PIL image) | ("vec", seed)
    options: list[str]
    letter: str
    needs_figure: bool = False
    language: str | None = None
    group: str | None = None  # shared passage id

    def text(self) -> str:
        return "\n".join(t for k, t in self.blocks if k in ("title", "p", "src", "stem"))


@dataclasses.dataclass
class _Group:
    """A shared passage ("Texto para as questões 10 e 11") and its questions."""
    gid: str
    blocks: list
    questions: list

    def text(self) -> str:
        return "\n".join(t for k, t in self.blocks if k in ("title", "p", "src"))


# stems: {x} filled with a fragment so that no two questions are alike
STEMS_READ = ["Nesse texto, a estratégia utilizada para {p} consiste em",
              "A leitura do texto permite inferir que, para o autor, {s}",
              "Considerando-se o contexto de produção, o texto tem por finalidade",
              "No texto, o recurso que contribui para {p} é o(a)",
              "O texto evidencia que {s} porque",
              "Ao tratar de {o}, o texto",
              "Com base no texto, a relação entre {s2} e {o} é caracterizada por",
              "Qual aspecto de {o} o texto destaca?",
              "Ao {i} {o}, o autor do texto",
              "A argumentação do texto sustenta-se na ideia de que"]
STEMS_FOREIGN = ["No texto, a expressão “{w}” é usada para",
                 "O objetivo do texto é",
                 "Segundo o texto, {s2}",
                 "A leitura do texto indica que o autor pretende",
                 "Nesse texto, a menção a “{w}” revela"]
STEMS_FIG_WORD = ["O gráfico apresentado permite concluir que {s}",
                  "A figura representa uma situação em que {s2}",
                  "Os dados da imagem indicam que",
                  "O esquema apresentado na figura mostra que"]
STEMS_FIG_NONE = ["Com base nas informações apresentadas, conclui-se que {s}",
                  "A situação representada evidencia que",
                  "Os valores observados permitem afirmar que",
                  "A análise da situação apresentada indica que {s2}"]
PASSING = ["A imagem pública do movimento mudou {a}, como mostram relatos de moradores.",
           "Os gráficos divulgados pela imprensa sobre {o} foram criticados por especialistas {a}.",
           "A figura do narrador ganha destaque quando {s} {a}.",
           "Na imagem construída pelo poema, {s}.",
           "A figura de linguagem empregada pelo autor ajuda a compreender {o} {a}."]


class _Bank:
    """Builds the questions of one exam (seeded by its identifiers), never the same text twice."""

    def __init__(self, seed: str):
        self.r = random.Random(seed)
        self.p = _Prose(self.r)
        self.seen: set[str] = set()
        self.n = 0

    def _fill(self, stem: str) -> str:
        r = self.r
        return stem.format(p=r.choice(PURPOSE), s=f"{r.choice(SUBJ)} {r.choice(VERB)} {r.choice(OBJ)}",
                           s2=r.choice(SUBJ), o=r.choice(OBJ), i=r.choice(INF), v=r.choice(VERB),
                           a=r.choice(ADV), w="")

    def _options(self, n: int, numeric: str | None = None) -> list[str]:
        if numeric == "legal":
            out: list[str] = []
            while len(out) < n:
                o = _legal_option(self.r)
                if o not in out:
                    out.append(o)
            return out
        if numeric:
            return _numeric_options(self.r, numeric)[:n]
        kinds = self.r.choice([["short"] * 5, ["long"] * 5, ["clause"] * 5, ["short", "long"] * 3])
        out: list[str] = []
        while len(out) < n:
            o = self.p.option(kinds[len(out) % len(kinds)])
            if o not in out:
                out.append(o)
        return out

    def question(self, kind: str, *, n_options: int = 5, language: str | None = None,
                 figure: str | None = None, figure_word: bool = True, passing: bool = False,
                 group: str | None = None) -> _Q:
        """kind: long | short | two | math | science | foreign | follow (a question of a shared
        passage: stem only)."""
        r, p = self.r, self.p
        while True:
            blocks: list = []
            numeric = None
            if kind == "long":
                for para in p.paragraphs(r.randint(800, 1700)):
                    blocks.append(("p", para))
                blocks.append(("src", p.source()))
                stem = self._fill(r.choice(STEMS_READ))
            elif kind == "short":
                blocks.append(("p", p.sentences(r.randint(250, 600))))
                blocks.append(("src", p.source()))
                stem = self._fill(r.choice(STEMS_READ))
            elif kind == "two":
                for roman in ("TEXTO I", "TEXTO II"):
                    blocks.append(("title", roman))
                    blocks.append(("p", p.sentences(r.randint(250, 520))))
                    blocks.append(("src", p.source()))
                stem = self._fill("Os textos I e II convergem ao abordar {o}, pois ambos")
            elif kind == "foreign":
                make = p.en_sentence if language == "ingles" else p.es_sentence
                for para in p.paragraphs(r.randint(450, 950), make):
                    blocks.append(("p", para))
                sites = (["www.bbc.co.uk", "www.theguardian.com", "www.npr.org", "www.nytimes.com"]
                         if language == "ingles" else ["www.elpais.com", "www.clarin.com", "www.bbc.com/mundo",
                                                       "www.eltiempo.com"])
                blocks.append(("src", f"Disponível em: {r.choice(sites)}. Acesso em: {r.randint(1, 28)} "
                                      f"{r.choice(MONTHS)} {r.randint(2019, 2023)} (adaptado)."))
                words = blocks[0][1].split()
                k = r.randrange(0, max(1, len(words) - 3))
                stem = r.choice(STEMS_FOREIGN).format(w=" ".join(words[k:k + 2]).strip(".,"),
                                                      s2=f"{r.choice(SUBJ)} {r.choice(VERB)}")
            elif kind == "math":
                prod, unit = r.choice(PRODUCTS), r.choice(UNITS)
                a, b = r.randint(12, 480), r.randint(3, 95)
                blocks.append(("p", f"Uma cooperativa de {prod} vendeu {a} {unit} no primeiro mês e {b} "
                                    f"{unit} a mais no segundo, a um preço de {_money(r.randint(150, 9900) / 100)} "
                                    f"por unidade. {p.pt_sentence()}"))
                numeric = r.choice(["money", "fraction", "percent", "formula", "unit"])
                stem = {"money": "Qual foi, em real, a receita total da cooperativa nos dois meses?",
                        "fraction": f"Sorteando-se ao acaso um dos {a + b} lotes, qual é a probabilidade de ele ser do segundo mês?",
                        "percent": "Qual foi o aumento percentual das vendas do primeiro para o segundo mês?",
                        "formula": "A expressão algébrica que modela a receita, em função do número x de meses, é",
                        "unit": "O valor da grandeza pedida pelo gestor da cooperativa é"}[numeric]
            elif kind == "science":
                blocks.append(("p", p.sentences(r.randint(300, 800))))
                numeric = r.choice([None, None, "power", "unit"])
                stem = self._fill(r.choice(["O fenômeno descrito ocorre porque", "Esse processo é explicado pelo(a)",
                                            "O valor mais próximo da grandeza envolvida é"]
                                           if numeric is None else ["O valor mais próximo da grandeza envolvida é"]))
            elif kind == "legal":
                blocks.append(("p", _legal_case(r)))
                stem = r.choice(LEGAL_STEMS)
            elif kind == "follow":
                stem = self._fill(r.choice(STEMS_READ))
            else:
                raise ValueError(kind)
            if passing:  # a figure word in passing, no figure
                blocks.insert(0, ("p", self._fill(r.choice(PASSING))))
            if figure:
                fig = ("img", _chart_image(r.randrange(1 << 30))) if figure == "img" else ("vec", r.randrange(1 << 30))
                at = max(i for i, (k, _) in enumerate(blocks) if k != "src") + 1 if blocks else 0
                blocks.insert(at, fig)
                stem = self._fill(r.choice(STEMS_FIG_WORD if figure_word else STEMS_FIG_NONE))
            blocks.append(("stem", stem))
            if kind == "legal":
                numeric = "legal"
            q = _Q(uid="", blocks=blocks, options=self._options(n_options, numeric),
                   letter=LETTERS[r.randrange(n_options)], needs_figure=bool(figure), language=language,
                   group=group)
            if q.text() not in self.seen:
                self.seen.add(q.text())
                self.n += 1
                q.uid = f"q{self.n}"
                return q

    def group(self, n: int = 2) -> _Group:
        gid = f"g{self.n}"
        blocks = [("p", para) for para in self.p.paragraphs(self.r.randint(700, 1300))]
        blocks.append(("src", self.p.source()))
        return _Group(gid, blocks, [self.question("follow", group=gid) for _ in range(n)])


def _chart_image(seed: int) -> Image.Image:
    """A bar or line chart drawn with Pillow (RGB, 150 dpi for ~200 x 120 pt)."""
    r = random.Random(seed)
    w, h = 420, 250
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.truetype(font_path(), 13)
    x0, y0, x1, y1 = 44, 14, w - 12, h - 30
    d.line([(x0, y0), (x0, y1), (x1, y1)], fill=(40, 40, 40), width=2)
    for k in range(5):
        y = y1 - k * (y1 - y0) / 4
        d.line([(x0 - 4, y), (x0, y)], fill=(40, 40, 40), width=1)
        d.text((x0 - 8, y), str(k * 25), fill=(40, 40, 40), font=font, anchor="rm")
    n = r.randint(4, 7)
    vals = [r.uniform(0.1, 1.0) for _ in range(n)]
    step = (x1 - x0) / n
    if r.random() < 0.5:
        for k, v in enumerate(vals):
            bx = x0 + k * step + step * 0.2
            d.rectangle([bx, y1 - v * (y1 - y0), bx + step * 0.6, y1 - 1], fill=(60, 110, 170))
            d.text((bx + step * 0.3, y1 + 6), str(2016 + k), fill=(40, 40, 40), font=font, anchor="mt")
    else:
        pts = [(x0 + (k + 0.5) * step, y1 - v * (y1 - y0)) for k, v in enumerate(vals)]
        d.line(pts, fill=(200, 60, 40), width=3)
        for k, (px, py) in enumerate(pts):
            d.ellipse([px - 4, py - 4, px + 4, py + 4], fill=(200, 60, 40))
            d.text((px, y1 + 6), str(2016 + k), fill=(40, 40, 40), font=font, anchor="mt")
    return img


def _vector_figure(c, x: float, ytop: float, width: float, height: float, seed: int) -> None:
    """A figure made of drawn objects only: filled rectangles, boxes, lines (a map grid, a circuit,
    a bar chart without labels)."""
    r = random.Random(seed)
    left = x + (width - height * 1.6) / 2
    w, h = height * 1.6, height
    bottom = ytop - h
    c.saveState()
    c.setLineWidth(0.8)
    kind = r.randrange(3)
    if kind == 0:  # bars
        c.line(left, bottom, left + w, bottom)
        c.line(left, bottom, left, ytop)
        n = r.randint(4, 7)
        for k in range(n):
            bh = r.uniform(0.15, 0.95) * h
            c.setFillColor(Color(0.25 + 0.1 * (k % 3), 0.35, 0.6))
            c.rect(left + (k + 0.2) * w / n, bottom, 0.6 * w / n, bh, stroke=0, fill=1)
    elif kind == 1:  # circuit-like boxes and wires
        c.rect(left, bottom, w, h, stroke=1, fill=0)
        for k in range(r.randint(3, 5)):
            bx = left + r.uniform(0.1, 0.75) * w
            by = bottom + r.uniform(0.1, 0.7) * h
            c.setFillColor(Color(0.85, 0.85, 0.85))
            c.rect(bx, by, w * 0.14, h * 0.18, stroke=1, fill=1)
            c.line(bx + w * 0.07, by, bx + w * 0.07, bottom)
    else:  # map-like grid of filled cells
        n, m = 6, 4
        for i in range(n):
            for j in range(m):
                g = r.choice([0.3, 0.55, 0.75, 0.9])
                c.setFillColor(Color(g, g, g))
                c.rect(left + i * w / n, bottom + j * h / m, w / n, h / m, stroke=1, fill=1)
    c.restoreState()


# ----------------------------------------------------------------------------------------------------
# flow: units poured into columns and pages
# ----------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class _Unit:
    h: float
    draw: Callable  # draw(c, x, ytop)
    gap: bool = False  # spacing dropped at the top of a column
    keep: bool = False  # keep with the next unit
    mark: str | None = None  # a question starts here: record its page


@dataclasses.dataclass
class _Page:
    kind: str  # cover | questions | essay | draft
    area: str = ""
    ops: list = dataclasses.field(default_factory=list)


class _Flow:
    def __init__(self, *, cols: int, x0: float, width: float, gutter: float, top: float, bottom: float,
                 new_page: Callable[[], _Page]):
        self.cols, self.x0, self.gutter, self.top, self.bottom = cols, x0, gutter, top, bottom
        self.col_w = (width - gutter * (cols - 1)) / cols
        self.make = new_page
        self.pages: list[_Page] = []
        self.marks: dict[str, int] = {}
        self.page: _Page | None = None
        self.col = 0
        self.y = self.col_top = top

    def new_page(self, banner: Callable | None = None, banner_h: float = 0.0) -> None:
        self.page = self.make()
        self.pages.append(self.page)
        self.col = 0
        self.col_top = self.top - banner_h
        self.y = self.col_top
        if banner:
            self.page.ops.append(banner)
        col_top = self.col_top
        if self.cols == 2:  # the thin rule in the gutter
            gx = self.x0 + self.col_w + self.gutter / 2
            self.page.ops.append(lambda c, gx=gx, t=col_top: (c.setLineWidth(0.4), c.line(gx, t, gx, self.bottom)))

    def next_col(self) -> None:
        if self.col + 1 < self.cols:
            self.col += 1
            self.y = self.col_top
        else:
            self.new_page()

    def place(self, units: Sequence[_Unit]) -> None:
        i = 0
        while i < len(units):
            u = units[i]
            at_top = self.y == self.col_top
            if u.gap and at_top:
                i += 1
                continue
            need = u.h
            j = i
            while units[j].keep and j + 1 < len(units):  # a heading keeps its first line
                j += 1
                need += units[j].h
            if self.y - need < self.bottom and not at_top:
                self.next_col()
                continue
            x = self.x0 + self.col * (self.col_w + self.gutter)
            self.page.ops.append(functools.partial(u.draw, x=x, ytop=self.y))
            if u.mark:
                self.marks.setdefault(u.mark, len(self.pages))
            self.y -= u.h
            i += 1


# unit makers ---------------------------------------------------------------------------------------

def _para_units(text: str, font: str, size: float, lead: float, width: float, *, indent: float = 0.0,
                justify: bool = True, hyphenate: bool = True, align: str = "l", fill=black) -> list[_Unit]:
    units = []
    for k, (line, last) in enumerate(_wrap(text, font, size, width, first_indent=indent, hyphenate=hyphenate)):
        dx = indent if k == 0 else 0.0
        tw = 0.0
        if justify and not last and line.count(" "):
            tw = max(0.0, (width - dx - _w(line, font, size)) / line.count(" "))
            tw = min(tw, size * 0.9)

        def draw(c, x, ytop, line=line, dx=dx, tw=tw):
            if align == "r":
                _txt(c, x + width, ytop - lead * 0.8, line, font, size, anchor="r", fill=fill)
            elif align == "c":
                _txt(c, x + width / 2, ytop - lead * 0.8, line, font, size, anchor="c", fill=fill)
            else:
                _txt(c, x + dx, ytop - lead * 0.8, line, font, size, tw=tw, fill=fill)
        units.append(_Unit(lead, draw))
    return units


def _gap(h: float) -> _Unit:
    return _Unit(h, lambda c, x, ytop: None, gap=True)


def _image_unit(img: Image.Image, width: float, *, max_h: float = 150.0) -> _Unit:
    w = min(width * 0.85, 220.0)
    h = min(max_h, w * img.height / img.width)
    w = h * img.width / img.height
    reader = ImageReader(img)

    def draw(c, x, ytop):
        c.drawImage(reader, x + (width - w) / 2, ytop - h - 4, w, h)
    return _Unit(h + 8, draw)


def _vector_unit(seed: int, width: float, h: float = 95.0) -> _Unit:
    return _Unit(h + 10, lambda c, x, ytop: _vector_figure(c, x, ytop - 5, width, h, seed))


# ----------------------------------------------------------------------------------------------------
# ENEM (INEP)
# ----------------------------------------------------------------------------------------------------

INEP_COLOURS = {1: {"AZUL": 1, "AMARELO": 2, "BRANCO": 3, "ROSA": 4},
                2: {"AMARELO": 5, "CINZA": 6, "AZUL": 7, "ROSA": 8}}
INEP_AREAS = {1: [("LC", "LINGUAGENS, CÓDIGOS E SUAS TECNOLOGIAS", 1, 45),
                  ("CH", "CIÊNCIAS HUMANAS E SUAS TECNOLOGIAS", 46, 90)],
              2: [("CN", "CIÊNCIAS DA NATUREZA E SUAS TECNOLOGIAS", 91, 135),
                  ("MT", "MATEMÁTICA E SUAS TECNOLOGIAS", 136, 180)]}
INEP_DEFAULT_ANNULLED = {1: (68,), 2: (123,)}
# key table titles as the real keys break them
INEP_KEY_TITLES = {"LC": ("LINGUAGENS, CÓDIGOS ", "E SUAS TECNOLOGIAS"), "CH": ("CIÊNCIAS HUMANAS", "E SUAS TECNOLOGIAS"),
                   "CN": ("CIÊNCIAS DA NATUREZA", "E SUAS TECNOLOGIAS"), "MT": ("MATEMÁTICA E SUAS ", "TECNOLOGIAS")}
TINT = {"AZUL": Color(0.1, 0.55, 0.85), "AMARELO": Color(0.95, 0.75, 0.1), "BRANCO": Color(0.6, 0.6, 0.6),
        "ROSA": Color(0.9, 0.45, 0.6), "CINZA": Color(0.45, 0.45, 0.45)}

SIZE, LEAD = 9.5, 11.8
MX, GUT = 34.0, 20.0
BODY_TOP, BODY_BOTTOM = PAGE_H - 58.0, 56.0


def _plan(b: _Bank, n: int, kinds: Sequence[str], specials: Sequence[str], base: str) -> list:
    """``n`` questions: mostly of ``kinds``, with ``specials`` spread at seeded places: "img+"/"vec+"
    (a raster/vector figure, the stem names it), "img-"/"vec-" (the stem names no figure), "passing"
    (a figure word, no figure), "two" (TEXTO I / TEXTO II), "group2"/"group3" (a shared passage)."""
    r = b.r
    spec_at = sorted(r.sample(range(2, n - 4), len(specials)))
    todo = dict(zip(spec_at, r.sample(list(specials), len(specials))))
    plan: list = []
    count = 0
    while count < n:
        what = todo.pop(min(todo), None) if todo and count >= min(todo) else None
        if what and what.startswith("group"):
            size = min(int(what[5:]), n - count)
            plan.append(b.group(size))
            count += size
            continue
        if what == "two":
            plan.append(b.question("two"))
        elif what == "passing":
            plan.append(b.question(r.choice(kinds), passing=True))
        elif what:
            plan.append(b.question(base, figure=what[:3], figure_word=what.endswith("+")))
        else:
            plan.append(b.question(r.choice(kinds)))
        count += 1
    return plan


@functools.lru_cache(maxsize=None)
def _inep_bank(year: int, day: int) -> dict:
    """The questions of ENEM ``year`` day ``day`` in canonical order, per block: {"en": [...], "es": [...],
    area code: [unit, ...]} where a unit is a _Q or a _Group (moves as one when shuffled)."""
    b = _Bank(f"inep-{year}-{day}")
    out: dict = {}
    if day == 1:
        out["en"] = [b.question("foreign", language="ingles") for _ in range(5)]
        out["es"] = [b.question("foreign", language="espanhol") for _ in range(5)]
    for code, _, first, last in INEP_AREAS[day]:
        n = last - first + 1 - (5 if code == "LC" else 0)
        # figures: 2 raster, 2 vector per area; half of each names no figure
        specials = ["img+", "img-", "vec+", "vec-", "passing", "passing", "two", "two", "group2"]
        if code in ("CN", "MT"):
            specials = ["img+", "img-", "vec+", "vec-", "vec-", "passing", "passing", "group2"]
        kinds_main = {"LC": ["long", "long", "short", "short", "long"], "CH": ["long", "short", "long", "short"],
                      "CN": ["science", "science", "long", "short"], "MT": ["math", "math", "math", "short"]}[code]
        base = "math" if code == "MT" else ("science" if code == "CN" else "short")
        plan = _plan(b, n, kinds_main, specials, base)
        out[code] = plan
    return out


def _inep_order(year: int, day: int, colour: str) -> dict:
    """Per block, this colour's order of the bank's units (flattened to questions)."""
    bank = _inep_bank(year, day)
    caderno = INEP_COLOURS[day][colour]
    order: dict = {}
    for block, units in bank.items():
        units = list(units)
        if caderno not in (1, 7):  # cadernos 1 and 7 keep the bank's order (any fixed order would do)
            random.Random(f"order-{year}-{day}-{caderno}-{block}").shuffle(units)
        flat = []
        for u in units:
            flat += u.questions if isinstance(u, _Group) else [u]
        order[block] = (units, flat)
    return order


def _check_inep(colour: str, day: int) -> tuple[str, int]:
    colour = colour.upper()
    if day not in INEP_COLOURS:
        raise ValueError(f"ENEM has days 1 and 2, not {day}")
    if colour not in INEP_COLOURS[day]:
        raise ValueError(f"day {day} is printed in {', '.join(INEP_COLOURS[day])}, not {colour}")
    return colour, INEP_COLOURS[day][colour]


def _inep_numbers(year: int, day: int, colour: str) -> list[tuple[int, str | None, _Q, str]]:
    """(number, language, question, area code) in print order."""
    order = _inep_order(year, day, colour)
    out = []
    if day == 1:
        for lang, block in (("ingles", "en"), ("espanhol", "es")):
            for k, q in enumerate(order[block][1]):
                out.append((k + 1, lang, q, "LC"))
    for code, _, first, _last in INEP_AREAS[day]:
        start = 6 if code == "LC" else first
        for k, q in enumerate(order[code][1]):
            out.append((start + k, None, q, code))
    return out


def _annulled(day: int, annulled) -> tuple[int, ...]:
    return tuple(INEP_DEFAULT_ANNULLED[day] if annulled is None else annulled)


def _question_units(q: _Q, number: int, width: float, mark: str, *, split_variant: int = 0,
                    heading: str = "inep", n_options: int = 5) -> list[_Unit]:
    """A question as units: heading, its own text blocks, figures, stem, alternatives."""
    reg, bold, ital = _fonts()
    units: list[_Unit] = []
    if heading == "inep":
        units.append(_heading_unit(number, split_variant, mark))
    elif heading == "fuvest":
        units.append(_Unit(15, lambda c, x, ytop: _txt(c, x, ytop - 11.5, f"{number:02d}", bold, 11), keep=True, mark=mark))
    units += _blocks_units(q.blocks, width)
    units += _option_units(q.options, width, style="box" if heading == "inep" else "paren")
    return units


def _blocks_units(blocks, width: float, *, size: float = SIZE, lead: float = LEAD) -> list[_Unit]:
    reg, bold, ital = _fonts()
    units: list[_Unit] = []
    for kind, val in blocks:
        if kind == "title":
            units.append(_gap(3))
            units += _para_units(val, bold, size, lead, width, justify=False, hyphenate=False)
            units[-1].keep = True
        elif kind == "p":
            units += _para_units(val, reg, size, lead, width, indent=12.0)
            units.append(_gap(2))
        elif kind == "src":
            units += _para_units(val, reg, size - 2, lead - 2.5, width, justify=False, hyphenate=False, align="r")
            units.append(_gap(4))
        elif kind == "stem":
            units += _para_units(val, reg, size, lead, width, indent=0.0)
            units.append(_gap(3))
        elif kind == "img":
            units.append(_image_unit(val, width))
        elif kind == "vec":
            units.append(_vector_unit(val, width))
    return units


def _heading_unit(number: int, split_variant: int, mark: str) -> _Unit:
    reg, bold, ital = _fonts()
    size = 10.5
    num = f" {number:02d}"

    def draw(c, x, ytop):
        y = ytop - 12
        if not split_variant:
            _txt(c, x, y, "QUESTÃO" + num, bold, size)
            return
        # drawn in runs so that pdfium's text layer splits the word at its accent, as in real INEP PDFs
        wq, wa = _w("QUEST", bold, size), _w("Ã", bold, size)
        rise, a_last = {1: (5.0, True), 2: (8.0, False), 3: (8.0, True)}[split_variant]
        _txt(c, x, y, "QUEST", bold, size)
        if not a_last:
            _txt(c, x + wq, y + rise, "Ã", bold, size)
        _txt(c, x + wq + wa, y, "O" + num, bold, size)
        if a_last:
            _txt(c, x + wq, y + rise, "Ã", bold, size)
    return _Unit(18, draw, keep=True, mark=mark)


def _option_units(options: Sequence[str], width: float, *, style: str = "box", size: float = SIZE,
                  lead: float = LEAD) -> list[_Unit]:
    """INEP: the letter in a small rounded box, no punctuation, wrapped lines under the text.
    FUVEST/FGV: "(A) text", wrapped lines under the text."""
    reg, bold, ital = _fonts()
    units: list[_Unit] = []
    indent = 16.0 if style == "box" else _w("(A) ", reg, size) + 2
    for k, opt in enumerate(options):
        letter = LETTERS[k]
        lines = _wrap(opt, reg, size, width - indent)
        for j, (line, _last) in enumerate(lines):
            def draw(c, x, ytop, line=line, j=j, letter=letter):
                base = ytop - lead * 0.8
                if j == 0 and style == "box":
                    c.setLineWidth(0.6)
                    c.roundRect(x, base - 2.6, 10.5, 10.5, 2.2, stroke=1, fill=0)
                    _txt(c, x + 5.25, base, letter, bold, 7.8, anchor="c")
                elif j == 0:
                    _txt(c, x, base, f"({letter})", reg, size)
                _txt(c, x + indent, base, line, reg, size)
            units.append(_Unit(lead + (2.0 if j == len(lines) - 1 else 0.0), draw))
    units.append(_gap(12))
    return units


def _band(c, x, ytop, width, h, text, sub, colour) -> None:
    reg, bold, ital = _fonts()
    c.setFillColor(Color(0.88, 0.88, 0.88))
    c.rect(x, ytop - h, width, h, stroke=0, fill=1)
    c.setFillColor(colour)
    c.rect(x, ytop - h, 6, h, stroke=0, fill=1)
    _txt(c, x + width / 2, ytop - 17, text, bold, 12.5, anchor="c")
    if sub:
        _txt(c, x + width / 2, ytop - 31, sub, reg, 9.5, anchor="c")


def _inep_cover(c, year: int, day: int, caderno: int, colour: str) -> None:
    reg, bold, ital = _fonts()
    tint = TINT[colour]
    c.setFillColor(tint)
    c.rect(0, PAGE_H - 150, PAGE_W, 150, stroke=0, fill=1)
    _txt(c, MX + 10, PAGE_H - 70, f"ENEM {year}", bold, 40, fill=white)
    _txt(c, MX + 12, PAGE_H - 92, "EXAME NACIONAL DO ENSINO MÉDIO", bold, 13, fill=white)
    _txt(c, PAGE_W - MX - 10, PAGE_H - 66, f"{day}º DIA", bold, 30, anchor="r", fill=white)
    _txt(c, PAGE_W - MX - 10, PAGE_H - 92, f"CADERNO {caderno}", bold, 16, anchor="r", fill=white)
    c.setFillColor(white)
    c.roundRect(PAGE_W - MX - 140, PAGE_H - 138, 130, 30, 6, stroke=0, fill=1)
    _txt(c, PAGE_W - MX - 75, PAGE_H - 129, colour, bold, 18, anchor="c", fill=tint)
    tests = ("PROVA DE REDAÇÃO E DE LINGUAGENS, CÓDIGOS E SUAS TECNOLOGIAS E CIÊNCIAS HUMANAS E SUAS TECNOLOGIAS"
             if day == 1 else "PROVA DE CIÊNCIAS DA NATUREZA E SUAS TECNOLOGIAS E MATEMÁTICA E SUAS TECNOLOGIAS")
    y = PAGE_H - 178
    for line, _ in _wrap(tests, bold, 11, PAGE_W - 2 * MX - 40):
        _txt(c, PAGE_W / 2, y, line, bold, 11, anchor="c")
        y -= 14
    y -= 12
    _txt(c, MX + 10, y, "LEIA ATENTAMENTE AS INSTRUÇÕES SEGUINTES:", bold, 10.5)
    y -= 18
    if day == 1:
        items = [("1.", "Este CADERNO DE QUESTÕES contém 90 questões numeradas de 01 a 95, dispostas da seguinte maneira:",
                  ["a) as questões de número 01 a 05 são relativas à área de Linguagens, Códigos e suas Tecnologias, "
                   "nas opções de língua estrangeira inglês e espanhol;",
                   "b) as questões de número 06 a 45 são relativas à área de Linguagens, Códigos e suas Tecnologias;",
                   "c) as questões de número 46 a 90 são relativas à área de Ciências Humanas e suas Tecnologias."]),
                 ("2.", "Confira se a quantidade e a ordem das questões do seu CADERNO DE QUESTÕES estão de acordo com "
                        "as instruções anteriores. Caso o caderno esteja incompleto, tenha defeito ou apresente "
                        "divergência, comunique ao aplicador da sala para que ele tome as providências cabíveis.", []),
                 ("3.", "Para as questões de número 01 a 05, marque no CARTÃO-RESPOSTA sua opção de língua estrangeira "
                        "(inglês ou espanhol) e responda às questões relativas à língua escolhida.", []),
                 ("4.", "O tempo disponível para estas provas é de cinco horas e trinta minutos.", []),
                 ("5.", "Reserve tempo suficiente para preencher o CARTÃO-RESPOSTA e a FOLHA DE REDAÇÃO.", []),
                 ("6.", "Os rascunhos e as marcações assinaladas no CADERNO DE QUESTÕES não serão considerados na avaliação.", []),
                 ("7.", "Somente serão corrigidas as redações transcritas na FOLHA DE REDAÇÃO.", []),
                 ("8.", "Quando terminar as provas, acene para chamar o aplicador e entregue este CADERNO DE QUESTÕES e o "
                        "CARTÃO-RESPOSTA/FOLHA DE REDAÇÃO.", [])]
    else:
        items = [("1.", "Este CADERNO DE QUESTÕES contém 90 questões numeradas de 91 a 180, dispostas da seguinte maneira:",
                  ["a) as questões de número 91 a 135 são relativas à área de Ciências da Natureza e suas Tecnologias;",
                   "b) as questões de número 136 a 180 são relativas à área de Matemática e suas Tecnologias."]),
                 ("2.", "Confira se a quantidade e a ordem das questões do seu CADERNO DE QUESTÕES estão de acordo com "
                        "as instruções anteriores. Caso o caderno esteja incompleto, tenha defeito ou apresente "
                        "divergência, comunique ao aplicador da sala para que ele tome as providências cabíveis.", []),
                 ("3.", "O tempo disponível para estas provas é de cinco horas.", []),
                 ("4.", "Reserve tempo suficiente para preencher o CARTÃO-RESPOSTA.", []),
                 ("5.", "Os rascunhos e as marcações assinaladas no CADERNO DE QUESTÕES não serão considerados na avaliação.", []),
                 ("6.", "Quando terminar as provas, acene para chamar o aplicador e entregue este CADERNO DE QUESTÕES e o "
                        "CARTÃO-RESPOSTA.", [])]
    items.append((f"{len(items) + 1}.", "Você poderá deixar o local de prova somente após decorridas duas horas do início da "
                  "aplicação e poderá levar seu CADERNO DE QUESTÕES ao deixar em definitivo a sala de prova nos 30 "
                  "minutos que antecedem o término das provas.", []))
    width = PAGE_W - 2 * MX - 40
    for num, text, subs in items:
        _txt(c, MX + 10, y, num, bold, 9.5)
        for k, (line, _) in enumerate(_wrap(text, reg, 9.5, width)):
            _txt(c, MX + 26, y, line, reg, 9.5)
            y -= 12
        for sub in subs:
            for k, (line, _) in enumerate(_wrap(sub, reg, 9.5, width - 14)):
                _txt(c, MX + 40, y, line, reg, 9.5)
                y -= 12
        y -= 3
    y -= 10
    c.setLineWidth(1)
    c.roundRect(MX + 6, y - 62, PAGE_W - 2 * MX - 12, 70, 5)
    _txt(c, MX + 14, y - 6, "ATENÇÃO:", bold, 9.5)
    att = ("transcreva no espaço apropriado do seu CARTÃO-RESPOSTA, com sua caligrafia usual, considerando as "
           "letras maiúsculas e minúsculas, a seguinte frase:")
    yy = y - 6
    for k, (line, _) in enumerate(_wrap(att, reg, 9.5, width - 50, first_indent=0)):
        _txt(c, MX + 70 if k == 0 else MX + 14, yy, line, reg, 9.5)
        yy -= 12
    _txt(c, PAGE_W / 2, yy - 8, "“A palavra é o caminho que une quem ensina e quem aprende.”", ital, 11, anchor="c")


ESSAY_INSTRUCTIONS = [
    ("1.", "O rascunho da redação deve ser feito no espaço apropriado."),
    ("2.", "O texto definitivo deve ser escrito à tinta preta, na folha própria, em até 30 linhas."),
    ("3.", "A redação que apresentar cópia dos textos da Proposta de Redação ou do Caderno de Questões terá o número "
           "de linhas copiadas desconsiderado para efeito de correção."),
    ("4.", "Receberá nota zero, em qualquer das situações expressas a seguir, a redação que:"),
    ("4.1.", "tiver até 7 (sete) linhas escritas, sendo considerada “texto insuficiente”;"),
    ("4.2.", "fugir ao tema ou que não atender ao tipo dissertativo-argumentativo;"),
    ("4.3.", "apresentar parte do texto deliberadamente desconectada do tema proposto;"),
    ("4.4.", "apresentar nome, assinatura, rubrica ou outras formas de identificação no espaço destinado ao texto."),
]


def _essay_pages(flow: _Flow, prose: _Prose, width: float, essay_page: Callable) -> tuple[list[int], list[int]]:
    """PROPOSTA DE REDAÇÃO (instructions, TEXTO I-IV, the proposal) full width, then RASCUNHO."""
    reg, bold, ital = _fonts()
    first = len(flow.pages) + 1
    saved = (flow.cols, flow.col_w)
    flow.cols, flow.col_w = 1, width
    flow.make = essay_page
    flow.new_page()
    units = _para_units("PROPOSTA DE REDAÇÃO", bold, 14, 20, width, justify=False, hyphenate=False, align="c")
    units.append(_gap(6))
    units += _para_units("INSTRUÇÕES PARA A REDAÇÃO", bold, 10, 14, width, justify=False, hyphenate=False)
    for num, text in ESSAY_INSTRUCTIONS:
        indent = 30.0 if "." in num[:-1] else 14.0
        sub = _para_units(text, reg, 9.5, 12, width - indent - 20, justify=False, hyphenate=False)
        for k, u in enumerate(sub):
            def draw(c, x, ytop, u=u, k=k, num=num, indent=indent):
                if k == 0:
                    _txt(c, x + indent - 14 - (8 if indent > 20 else 0), ytop - 12 * 0.8, num, bold, 9.5)
                u.draw(c, x + indent + (6 if indent > 20 else 0), ytop)
            units.append(_Unit(u.h, draw))
    units.append(_gap(10))
    for roman in ("TEXTO I", "TEXTO II", "TEXTO III", "TEXTO IV"):
        units += _blocks_units([("title", roman), ("p", prose.sentences(prose.r.randint(300, 600))),
                                ("src", prose.source())], width)
    theme = f"Desafios para {prose.r.choice(OBJ)} no Brasil"
    units += _para_units(
        "A partir da leitura dos textos motivadores e com base nos conhecimentos construídos ao longo de sua "
        f"formação, redija texto dissertativo-argumentativo em modalidade escrita formal da língua portuguesa sobre "
        f"o tema “{theme}”, apresentando proposta de intervenção que respeite os direitos humanos. Selecione, "
        "organize e relacione, de forma coerente e coesa, argumentos e fatos para defesa de seu ponto de vista.",
        reg, SIZE, LEAD, width)
    flow.place(units)
    essay = list(range(first, len(flow.pages) + 1))
    # RASCUNHO: a box with lines numbered 1-30
    flow.new_page()

    def draft(c, x, ytop):
        _txt(c, x + width / 2, ytop - 16, "RASCUNHO", bold, 14, anchor="c")
        top = ytop - 30
        step = (top - BODY_BOTTOM - 10) / 30
        c.setLineWidth(0.8)
        c.rect(x, top - 30 * step, width, 30 * step)
        c.setLineWidth(0.3)
        for k in range(30):
            y = top - (k + 1) * step
            _txt(c, x + 6, y + 4, str(k + 1), reg, 8)
            c.line(x + 22, y, x + width - 6, y)
    flow.page.ops.append(functools.partial(draft, x=flow.x0, ytop=flow.top))
    flow.cols, flow.col_w = saved
    return essay, [len(flow.pages)]


def _render(pages: list[_Page], master: Callable, title: str, creator: str) -> bytes:
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=1, pageCompression=1)
    c.setTitle(title)
    c.setAuthor("")
    c.setCreator(creator)
    c.setProducer(creator)
    for n, page in enumerate(pages, 1):
        master(c, n, page)  # master-page items first, as InDesign writes them
        for op in page.ops:
            op(c)
        c.showPage()
    c.save()
    return buf.getvalue()


def _booklet_truth(entries, marks, annulled, *, context_of) -> list[dict]:
    truth = []
    for number, lang, q, _area in entries:
        key = f"{q.uid}"
        truth.append({"number": number, "language": lang, "context": context_of(q), "question": q.text(),
                      "options": list(q.options), "letter": q.letter, "annulled": number in annulled,
                      "needs_figure": q.needs_figure, "page": marks[key]})
    return truth


@functools.lru_cache(maxsize=16)
def _inep_pdf(colour: str, day: int, year: int, annulled: tuple[int, ...]) -> tuple[bytes, str, str]:
    colour, caderno = _check_inep(colour, day)
    reg, bold, ital = _fonts()
    bank = _inep_bank(year, day)
    order = _inep_order(year, day, colour)
    entries = _inep_numbers(year, day, colour)
    width = PAGE_W - 2 * MX
    head_l, head_r = f"ENEM{year}", f"{day}º DIA • CADERNO {caderno} • {colour}"
    foot = {code: f"{code} - {day}º dia | Caderno {caderno} - {colour}" for code, *_ in INEP_AREAS[day]}
    area_now = {"code": ""}

    def question_page():
        return _Page("questions", area_now["code"])

    flow = _Flow(cols=2, x0=MX, width=width, gutter=GUT, top=BODY_TOP, bottom=BODY_BOTTOM, new_page=question_page)
    flow.pages.append(_Page("cover"))
    groups = {}
    for units, _flat in order.values():
        for u in units:
            if isinstance(u, _Group):
                groups[u.gid] = u
    numbers = {(lang, q.uid): n for n, lang, q, _ in entries}
    split_rng = random.Random(f"split-{year}-{day}-{caderno}")
    split_numbers = set(split_rng.sample([n for n, *_ in entries], 4))
    variants = iter([1, 2, 3, 1])

    def pour(block_units, lang):
        units: list[_Unit] = []
        for u in block_units:
            qs = u.questions if isinstance(u, _Group) else [u]
            if isinstance(u, _Group):
                nums = [numbers[(lang, q.uid)] for q in qs]
                label = _group_label(nums, "{:02d}")
                units += _para_units(label, bold, SIZE, LEAD + 2, flow.col_w, justify=False, hyphenate=False)
                units[-1].keep = True
                units += _blocks_units(u.blocks, flow.col_w)
                units.append(_gap(6))
            for q in qs:
                n = numbers[(lang, q.uid)]
                variant = next(variants, 0) if n in split_numbers else 0
                units += _question_units(q, n, flow.col_w, q.uid, split_variant=variant)
        flow.place(units)

    def band_op(text, sub, h=40):
        return lambda c: _band(c, MX, BODY_TOP, width, h - 6, text, sub, TINT[colour])

    for code, name, first, last in INEP_AREAS[day]:
        area_now["code"] = code
        if code == "LC":
            for lang, block, label in (("ingles", "en", "inglês"), ("espanhol", "es", "espanhol")):
                sub = f"Questões de 01 a 05 (opção {label})"
                if lang == "ingles":
                    flow.new_page(band_op(name, "Questões de 01 a 45", 40), 40 + 22)
                    flow.page.ops.append(lambda c, s=sub: _txt(c, MX, BODY_TOP - 52, s, bold, 10.5))
                else:
                    flow.new_page(lambda c, s=sub: _txt(c, MX, BODY_TOP - 12, s, bold, 10.5), 22)
                pour(order[block][0], lang)
            flow.new_page()
            pour(order[code][0], None)
        else:
            flow.new_page(band_op(name, f"Questões de {first:02d} a {last:02d}", 40), 40)
            pour(order[code][0], None)
    essay, draft = [], []
    if day == 1:
        prose = _Prose(random.Random(f"essay-{year}"))
        essay, draft = _essay_pages(flow, prose, width, lambda: _Page("essay", "RED"))
        flow.pages[draft[0] - 1].kind = "draft"

    def master(c, n, page):
        if page.kind == "cover":
            _inep_cover(c, year, day, caderno, colour)
            return
        _txt(c, MX, PAGE_H - 34, head_l, bold, 13)
        _txt(c, PAGE_W - MX, PAGE_H - 34, head_r, bold, 9, anchor="r")
        c.setLineWidth(0.8)
        c.line(MX, PAGE_H - 42, PAGE_W - MX, PAGE_H - 42)
        label = foot.get(page.area, f"{day}º dia | Caderno {caderno} - {colour}")
        c.setFillColor(TINT[colour])
        if n % 2:  # odd page: number at the right corner
            c.rect(PAGE_W - MX - 22, 24, 22, 16, stroke=0, fill=1)
            _txt(c, PAGE_W - MX - 11, 28.5, str(n), bold, 9.5, anchor="c", fill=white)
            _txt(c, PAGE_W - MX - 30, 28.5, label, reg, 7.5, anchor="r")
        else:
            c.rect(MX, 24, 22, 16, stroke=0, fill=1)
            _txt(c, MX + 11, 28.5, str(n), bold, 9.5, anchor="c", fill=white)
            _txt(c, MX + 30, 28.5, label, reg, 7.5)
        _txt(c, PAGE_W / 2, 12, _page_code(year, day, caderno, colour, n), reg, 7, anchor="c")

    pdf = _render(flow.pages, master, f"ENEM {year} - {day}º dia - Caderno {caderno} - {colour}", "tests/booklets.py")

    def context_of(q):
        return groups[q.group].text() if q.group else ""

    truth = _booklet_truth(entries, flow.marks, annulled, context_of=context_of)
    kinds = [p.kind for p in flow.pages]
    meta = {"layout": "inep", "exam": "ENEM", "year": year, "day": day, "caderno": caderno, "colour": colour,
            "pages": len(flow.pages), "cover_pages": [1], "essay_pages": essay, "draft_pages": draft,
            "question_pages": [i + 1 for i, k in enumerate(kinds) if k == "questions"],
            "headers": [head_l, head_r], "footers": sorted(set(foot.values())),
            "page_codes": [_page_code(year, day, caderno, colour, n) for n in range(2, len(flow.pages) + 1)],
            "headings": sorted({name for _, name, *_ in INEP_AREAS[day]}
                               | {f"Questões de {a:02d} a {b:02d}" for _, _, a, b in INEP_AREAS[day]}
                               | ({"Questões de 01 a 45", "Questões de 01 a 05 (opção inglês)",
                                   "Questões de 01 a 05 (opção espanhol)"} if day == 1 else set())),
            "annulled": sorted(annulled), "split_headings": sorted(split_numbers)}
    return pdf, json.dumps(truth, ensure_ascii=False), json.dumps(meta, ensure_ascii=False)


def _group_label(nums: Sequence[int], fmt: str) -> str:
    """"Texto para as questões 10 e 11" / "Texto para as questões de 30 a 32"."""
    if len(nums) == 1:
        return f"Texto para a questão {fmt.format(nums[0])}"
    if len(nums) == 2:
        return f"Texto para as questões {fmt.format(nums[0])} e {fmt.format(nums[1])}"
    return f"Texto para as questões de {fmt.format(nums[0])} a {fmt.format(nums[-1])}"


def _page_code(year: int, day: int, caderno: int, colour: str, page: int) -> str:
    return f"*{day:02d}{caderno:02d}{page:02d}{colour[:2]}{year % 10}*"


def inep_booklet(colour: str = "AZUL", day: int = 1, year: int = 2024, scan: bool = False,
                 annulled: Iterable[int] | None = None) -> Booklet:
    """ENEM ``day`` of ``year`` in ``colour`` as INEP prints it (see the module docstring), with its key.

    ``annulled``: the numbers, as printed in this booklet, that the key marks "Anulado" (default one:
    68 on day 1, 123 on day 2). ``scan=True`` gives the image-only scan of the same booklet."""
    colour, _ = _check_inep(colour, day)
    ann = _annulled(day, annulled)
    pdf, truth, meta = _inep_pdf(colour, day, year, ann)
    meta = json.loads(meta)
    if scan:
        pdf = _scan(pdf, seed=f"scan-inep-{year}-{day}-{colour}", dpi=170)
        meta["scan"] = {"dpi": 170}
    meta["layout"] = "inep-scan" if scan else "inep"
    return Booklet(pdf=pdf, key_pdf=inep_key(colour, day, year, annulled=ann), truth=json.loads(truth), meta=meta)


# ----------------------------------------------------------------------------------------------------
# ENEM answer key, as INEP lays it out
# ----------------------------------------------------------------------------------------------------

KEY_BLUE = Color(0.05, 0.27, 0.5)
KEY_CYAN = Color(0.0, 0.66, 0.9)
KEY_STRIPE = Color(0.9, 0.9, 0.92)
KEY_RED = Color(0.8, 0.1, 0.1)


def _logo(text: str, sub: str, w: int, h: int) -> Image.Image:
    """The exam's logo as a picture (the real one is vector paths: no text in the layer)."""
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    big = ImageFont.truetype(font_path(), int(h * 0.55))
    small = ImageFont.truetype(font_path(), int(h * 0.18))
    d.text((4, 2), text, fill=(10, 70, 130), font=big)
    if sub:
        d.text((6, int(h * 0.72)), sub, fill=(110, 110, 110), font=small)
    return img


def inep_key(colour: str = "AZUL", day: int = 1, year: int = 2024, annulled: Iterable[int] | None = None) -> bytes:
    """The answer-key PDF of that booklet, laid out like INEP's real keys."""
    colour, caderno = _check_inep(colour, day)
    return _inep_key_pdf(colour, day, year, _annulled(day, annulled))


@functools.lru_cache(maxsize=32)
def _inep_key_pdf(colour: str, day: int, year: int, annulled: tuple[int, ...]) -> bytes:
    caderno = INEP_COLOURS[day][colour]
    reg, bold, ital = _fonts()
    entries = _inep_numbers(year, day, colour)
    ans: dict[int, dict] = {}
    for n, lang, q, _ in entries:
        ans.setdefault(n, {})[lang] = "Anulado" if n in annulled else q.letter
    name = colour.capitalize()
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=1, pageCompression=1)
    c.setTitle("")
    c.setCreator("tests/booklets.py (after Adobe InDesign)")
    c.setProducer("tests/booklets.py")
    # background: light diagonal bands, as the real keys have
    c.saveState()
    c.setStrokeColor(Color(0.75, 0.88, 0.97))
    c.setLineWidth(14)
    for k in range(5):
        c.line(-50 + k * 160, -20, 250 + k * 160, PAGE_H + 20)
    c.restoreState()
    modern = year >= 2023
    # 2023-2025: logo top left, identifiers top right; 2022: identifiers top left, logo top right
    c.drawImage(ImageReader(_logo(f"enem{year}", "Exame Nacional do Ensino Médio", 300, 90)),
                80 if modern else 350, PAGE_H - 125 if modern else PAGE_H - 100, 150, 45)
    c.drawImage(ImageReader(_logo("inep", "", 120, 50)), PAGE_W / 2 - 30, 38, 60, 25)
    tables = [(code, first, last) for code, _, first, last in INEP_AREAS[day]]
    positions = {tables[0][0]: 75.0, tables[1][0]: 378.0}

    def identifiers():
        if modern:
            _txt(c, 480, PAGE_H - 110, name, bold, 13, anchor="c", fill=KEY_CYAN, matrix_size=True)
            _txt(c, 480, PAGE_H - 95, f"CADERNO {caderno}", bold, 10.5, anchor="c", fill=KEY_BLUE, matrix_size=True)
            _txt(c, 480, PAGE_H - 122, f"Gabarito {year}", bold, 9.5, anchor="c", fill=KEY_BLUE, matrix_size=True)
            _txt(c, 481, PAGE_H - 81, "dia", reg, 16, fill=KEY_BLUE, matrix_size=True)
            _txt(c, 456, PAGE_H - 81, str(day), bold, 36, fill=KEY_BLUE, matrix_size=True)
            _txt(c, 482, PAGE_H - 63, "º", reg, 14, fill=KEY_BLUE, matrix_size=True)
        else:
            c.saveState()
            c.setFillColor(KEY_CYAN)
            p = c.beginPath()
            p.moveTo(110, PAGE_H - 70), p.lineTo(135, PAGE_H - 45), p.lineTo(160, PAGE_H - 70), p.lineTo(135, PAGE_H - 95)
            c.drawPath(p, stroke=0, fill=1)
            c.restoreState()
            _txt(c, 140, PAGE_H - 82, name, bold, 16, fill=KEY_BLUE, matrix_size=True)
            _txt(c, 360, PAGE_H - 120, f"{day}º DIA - CADERNO {caderno}", bold, 12, fill=KEY_BLUE, matrix_size=True)
            _txt(c, 140, PAGE_H - 64, f"Gabarito {year}", bold, 9.5, fill=KEY_BLUE, matrix_size=True)

    def table(code, first, last):
        x = positions[code]
        w, row, head_h = 160.0, 11.6, 33.0
        lang = code == "LC"
        frame_top = PAGE_H - 137
        head_top = frame_top - 48
        n_rows = last - first + 1
        bottom = head_top - head_h - n_rows * row - 6
        c.saveState()
        c.setStrokeColor(KEY_CYAN)
        c.setFillColor(white)
        c.setLineWidth(1.2)
        c.roundRect(x, bottom, w, frame_top - bottom, 10, stroke=1, fill=1)
        c.setFillColor(KEY_CYAN)
        c.rect(x, head_top - head_h, w, head_h, stroke=0, fill=1)
        c.restoreState()
        t1, t2 = INEP_KEY_TITLES[code]
        col = x + 55
        _txt(c, x + 27, head_top - head_h / 2 - 2.5, "QUESTÃO", bold, 7, anchor="c", fill=white, matrix_size=True)
        if lang:
            _txt(c, col + (w - 55) / 2, head_top - 11, "GABARITO", bold, 7, anchor="c", fill=white, matrix_size=True)
            _txt(c, col + 26, head_top - 26, "INGLÊS", bold, 7, anchor="c", fill=white, matrix_size=True)
            _txt(c, col + 79, head_top - 26, "ESPANHOL", bold, 7, anchor="c", fill=white, matrix_size=True)
        else:
            _txt(c, col + (w - 55) / 2, head_top - head_h / 2 - 2.5, "GABARITO", bold, 7, anchor="c", fill=white,
                 matrix_size=True)
        y = head_top - head_h
        for k, n in enumerate(range(first, last + 1)):
            if k % 2:
                c.setFillColor(KEY_STRIPE)
                c.rect(x + 1, y - row, w - 2, row, stroke=0, fill=1)
            base = y - row + 3.6
            _txt(c, x + 27, base, str(n), bold, 6.8, anchor="c", fill=KEY_BLUE, matrix_size=True)
            a = ans[n]
            if lang and n <= 5:
                for dx, which in ((26, "ingles"), (79, "espanhol")):
                    s = a[which]
                    _txt(c, col + dx, base, s, bold, 6.8, anchor="c",
                         fill=KEY_RED if s == "Anulado" else KEY_BLUE, matrix_size=True)
            else:
                s = a[None]
                _txt(c, col + (w - 55) / 2, base, s, bold, 6.8, anchor="c",
                     fill=KEY_RED if s == "Anulado" else KEY_BLUE, matrix_size=True)
            y -= row
        c.setStrokeColor(KEY_BLUE)
        c.setLineWidth(0.8)
        c.line(col, head_top, col, y)
        if lang:
            c.setStrokeColor(white)
            c.line(col, head_top - 17, x + w, head_top - 17)
            c.setStrokeColor(KEY_BLUE)
            c.line(col + 52, head_top - 17, col + 52, head_top - head_h - 5 * row)
        titles.append((x + w / 2, t1, t2, frame_top))

    titles: list = []
    if modern and day == 2:
        identifiers()
    # day 1 draws the second area's table first, as the real 2024/2025 keys do
    for code, first, last in (tables[::-1] if day == 1 else tables):
        table(code, first, last)
    for cx, t1, t2, top in sorted(titles):
        _txt(c, cx, top - 20, t1, bold, 9.5, anchor="c", fill=KEY_BLUE, matrix_size=True)
        _txt(c, cx, top - 35, t2, bold, 9.5, anchor="c", fill=KEY_BLUE, matrix_size=True)
    if not (modern and day == 2):
        identifiers()
    c.showPage()
    c.save()
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------------
# FUVEST 1ª fase
# ----------------------------------------------------------------------------------------------------

FUVEST_YEAR = 2025
FUVEST_HEAD = (f"FUVEST {FUVEST_YEAR} – 1ª Fase", "Conhecimentos Gerais – Prova V")
FUVEST_INSTRUCTIONS = [
    "Só abra este caderno quando o fiscal autorizar.",
    "Verifique se o seu nome está correto na capa deste caderno e se a folha óptica pertence ao grupo "
    "correspondente ao seu.",
    "Esta prova contém 90 questões objetivas, cada uma com 5 alternativas. Assinale somente uma alternativa "
    "por questão.",
    "Durante a prova, são vedadas a comunicação entre candidatos e a utilização de qualquer material de "
    "consulta, eletrônico ou impresso, e de aparelhos de telecomunicação.",
    "Duração da prova: 5 horas. Cada candidato deverá permanecer na sala por, no mínimo, duas horas.",
    "Preencha a folha óptica com caneta esferográfica de tinta azul ou preta, sem rasuras.",
    "Ao final da prova, é obrigatória a devolução da folha óptica e deste caderno de questões.",
]


@functools.lru_cache(maxsize=None)
def _fuvest_bank() -> list:
    b = _Bank(f"fuvest-{FUVEST_YEAR}")
    specials = ["img+", "img-", "vec+", "vec-", "img-", "passing", "passing", "passing", "two",
                "group2", "group3"]
    return _plan(b, 90, ["long", "short", "short", "science", "math", "long"], specials, "science")


def _cover_list(c, y: float, items, *, x: float = MX + 10, width: float = PAGE_W - 2 * MX - 40,
                size: float = 9.5, numbered: bool = True) -> float:
    reg, bold, ital = _fonts()
    for k, text in enumerate(items, 1):
        _txt(c, x, y, f"{k}." if numbered else "•", bold, size)
        for line, _ in _wrap(text, reg, size, width):
            _txt(c, x + 16, y, line, reg, size)
            y -= size + 3
        y -= 3
    return y


def _fuvest_cover(c) -> None:
    reg, bold, ital = _fonts()
    _txt(c, PAGE_W / 2, PAGE_H - 90, "FUVEST", bold, 36, anchor="c")
    _txt(c, PAGE_W / 2, PAGE_H - 110, "Fundação Universitária para o Vestibular", reg, 11, anchor="c")
    c.setLineWidth(1.5)
    c.line(MX, PAGE_H - 126, PAGE_W - MX, PAGE_H - 126)
    _txt(c, PAGE_W / 2, PAGE_H - 156, f"VESTIBULAR {FUVEST_YEAR} – 1ª FASE", bold, 16, anchor="c")
    _txt(c, PAGE_W / 2, PAGE_H - 178, "PROVA DE CONHECIMENTOS GERAIS", bold, 12, anchor="c")
    c.roundRect(PAGE_W / 2 - 40, PAGE_H - 215, 80, 24, 4)
    _txt(c, PAGE_W / 2, PAGE_H - 207, "PROVA V", bold, 12, anchor="c")
    _txt(c, MX + 10, PAGE_H - 250, "INSTRUÇÕES", bold, 11)
    y = _cover_list(c, PAGE_H - 270, FUVEST_INSTRUCTIONS)
    c.rect(MX + 6, y - 50, PAGE_W - 2 * MX - 12, 40)
    _txt(c, MX + 14, y - 24, "Nome do candidato: _______________________________________   Sala: ______", reg, 9.5)


def fuvest_booklet(scan: bool = False, annulled: Iterable[int] = ()) -> Booklet:
    """FUVEST 1ª fase as printed: number alone on its line, (A)-(E), two columns (see the module docstring)."""
    ann = tuple(annulled)
    pdf, truth, meta = _fuvest_pdf(ann)
    meta = json.loads(meta)
    if scan:
        pdf = _scan(pdf, seed=f"scan-fuvest-{FUVEST_YEAR}", dpi=160)
        meta["scan"] = {"dpi": 160}
    meta["layout"] = "fuvest-scan" if scan else "fuvest"
    return Booklet(pdf=pdf, key_pdf=fuvest_key(annulled=ann), truth=json.loads(truth), meta=meta)


def _numbered(units) -> list[tuple[int, None, _Q, str]]:
    flat = []
    for u in units:
        flat += u.questions if isinstance(u, _Group) else [u]
    return [(k + 1, None, q, "") for k, q in enumerate(flat)]


@functools.lru_cache(maxsize=4)
def _fuvest_pdf(annulled: tuple[int, ...]) -> tuple[bytes, str, str]:
    reg, bold, ital = _fonts()
    units_bank = _fuvest_bank()
    entries = _numbered(units_bank)
    numbers = {q.uid: n for n, _, q, _ in entries}
    width = PAGE_W - 2 * MX
    flow = _Flow(cols=2, x0=MX, width=width, gutter=GUT, top=BODY_TOP, bottom=BODY_BOTTOM,
                 new_page=lambda: _Page("questions"))
    flow.pages.append(_Page("cover"))
    flow.new_page()
    units: list[_Unit] = []
    groups = {}
    for u in units_bank:
        qs = u.questions if isinstance(u, _Group) else [u]
        if isinstance(u, _Group):
            groups[u.gid] = u
            units += _para_units(_group_label([numbers[q.uid] for q in qs], "{:02d}"), bold, SIZE, LEAD + 2,
                                 flow.col_w, justify=False, hyphenate=False)
            units[-1].keep = True
            units += _blocks_units(u.blocks, flow.col_w)
            units.append(_gap(6))
        for q in qs:
            units += _question_units(q, numbers[q.uid], flow.col_w, q.uid, heading="fuvest")
    flow.place(units)

    def master(c, n, page):
        if page.kind == "cover":
            _fuvest_cover(c)
            return
        _txt(c, MX, PAGE_H - 34, FUVEST_HEAD[0], bold, 9.5)
        _txt(c, PAGE_W - MX, PAGE_H - 34, FUVEST_HEAD[1], reg, 9.5, anchor="r")
        c.setLineWidth(0.6)
        c.line(MX, PAGE_H - 40, PAGE_W - MX, PAGE_H - 40)
        c.line(MX, 44, PAGE_W - MX, 44)
        _txt(c, PAGE_W / 2, 30, f"Página {n}", reg, 8.5, anchor="c")

    pdf = _render(flow.pages, master, f"FUVEST {FUVEST_YEAR} - 1a fase", "tests/booklets.py")
    truth = _booklet_truth(entries, flow.marks, annulled,
                           context_of=lambda q: groups[q.group].text() if q.group else "")
    meta = {"layout": "fuvest", "exam": "FUVEST", "year": FUVEST_YEAR, "day": 1, "caderno": None,
            "colour": None, "version": "V", "pages": len(flow.pages), "cover_pages": [1], "essay_pages": [],
            "draft_pages": [], "question_pages": list(range(2, len(flow.pages) + 1)),
            "headers": list(FUVEST_HEAD), "footers": [], "page_codes": [], "headings": [],
            "annulled": sorted(annulled)}
    return pdf, json.dumps(truth, ensure_ascii=False), json.dumps(meta, ensure_ascii=False)


def fuvest_key(annulled: Iterable[int] = ()) -> bytes:
    """FUVEST's key: a plain table of number and answer, three blocks of 30."""
    letters = {n: ("Anulada" if n in tuple(annulled) else q.letter) for n, _, q, _ in _numbered(_fuvest_bank())}
    return _simple_key([f"FUVEST {FUVEST_YEAR} – 1ª Fase – Prova V", "GABARITO"], letters,
                       head=("Questão", "Resposta"), per_col=30, fmt="{:02d}")


def _simple_key(titles: Sequence[str], letters: dict[int, str], *, head: tuple[str, str], per_col: int,
                fmt: str) -> bytes:
    reg, bold, ital = _fonts()
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=1, pageCompression=1)
    c.setCreator("tests/booklets.py")
    c.setProducer("tests/booklets.py")
    y = PAGE_H - 70
    for k, t in enumerate(titles):
        _txt(c, PAGE_W / 2, y, t, bold, 14 if k == 0 else 12, anchor="c")
        y -= 22
    numbers = sorted(letters)
    cols = math.ceil(len(numbers) / per_col)
    col_w = 120.0
    x0 = (PAGE_W - cols * col_w - (cols - 1) * 20) / 2
    row = 15.0
    top = y - 20
    for ci in range(cols):
        x = x0 + ci * (col_w + 20)
        chunk = numbers[ci * per_col:(ci + 1) * per_col]
        c.setFillColor(Color(0.85, 0.85, 0.85))
        c.rect(x, top - row, col_w, row, stroke=1, fill=1)
        _txt(c, x + 30, top - row + 4.5, head[0], bold, 9, anchor="c")
        _txt(c, x + 90, top - row + 4.5, head[1], bold, 9, anchor="c")
        for k, n in enumerate(chunk):
            yy = top - (k + 2) * row
            c.rect(x, yy, col_w, row, stroke=1, fill=0)
            c.line(x + 60, yy, x + 60, yy + row)
            _txt(c, x + 30, yy + 4.5, fmt.format(n), reg, 9, anchor="c")
            _txt(c, x + 90, yy + 4.5, letters[n], bold, 9, anchor="c")
    c.showPage()
    c.save()
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------------
# FGV: OAB Exame de Ordem Unificado, 1ª fase
# ----------------------------------------------------------------------------------------------------

FGV_EDITION = "XLI"
FGV_HEAD = (f"{FGV_EDITION} EXAME DE ORDEM UNIFICADO", "TIPO 1 - BRANCA")
FGV_DEFAULT_ANNULLED = (37,)
FGV_BOXES = [
    ("SUA PROVA", ["Além deste caderno contendo 80 (oitenta) questões objetivas, você receberá do fiscal de sala "
                   "a folha de respostas das questões objetivas."]),
    ("TEMPO", ["5 (cinco) horas é o período disponível para a realização da prova, já incluído o tempo para a "
               "marcação da folha de respostas da prova objetiva.",
               "3 (três) horas após o início da prova é possível retirar-se da sala, sem levar o caderno de prova.",
               "A partir dos 30 (trinta) minutos anteriores ao término da prova é possível retirar-se da sala "
               "levando o caderno de prova."]),
    ("NÃO SERÁ PERMITIDO", ["Qualquer tipo de comunicação entre os examinandos durante a aplicação da prova.",
                            "Usar o sanitário ao término da prova, após deixar a sala."]),
]
FGV_INFO = [
    "Verifique se seu caderno de prova é do TIPO 1 - BRANCA e se contém 80 questões; em caso de divergência, "
    "comunique ao fiscal de sala.",
    "Confira seus dados pessoais, especialmente nome, número de inscrição e documento de identidade, e leia "
    "atentamente as instruções para preencher a folha de respostas.",
    "Use somente caneta esferográfica, fabricada em material transparente, com tinta preta ou azul.",
    "Assine seu nome apenas no(s) espaço(s) reservado(s).",
    "Marque na folha de respostas o campo relativo à confirmação do tipo/cor de prova, conforme o caderno que "
    "você recebeu.",
    "O preenchimento da folha de respostas é de sua responsabilidade e não será permitida a troca da folha em "
    "caso de erro cometido pelo examinando.",
]


@functools.lru_cache(maxsize=None)
def _fgv_bank() -> list:
    b = _Bank(f"fgv-oab-{FGV_EDITION}")
    out = []
    for k in range(80):
        out.append(b.question("legal", n_options=4, passing=k in (23, 58)))
    return out


def _fgv_cover(c) -> None:
    reg, bold, ital = _fonts()
    _txt(c, PAGE_W / 2, PAGE_H - 70, "ORDEM DOS ADVOGADOS DO BRASIL", bold, 13, anchor="c")
    _txt(c, PAGE_W / 2, PAGE_H - 100, FGV_HEAD[0], bold, 18, anchor="c")
    _txt(c, PAGE_W / 2, PAGE_H - 124, "PROVA OBJETIVA", bold, 14, anchor="c")
    c.setLineWidth(1.2)
    c.rect(PAGE_W / 2 - 90, PAGE_H - 162, 180, 26)
    _txt(c, PAGE_W / 2, PAGE_H - 153, FGV_HEAD[1], bold, 14, anchor="c")
    y = PAGE_H - 195
    for title, bullets in FGV_BOXES:
        c.setFillColor(Color(0.2, 0.2, 0.2))
        c.rect(MX, y - 4, 150, 16, stroke=0, fill=1)
        _txt(c, MX + 6, y, title, bold, 9.5, fill=white)
        y = _cover_list(c, y - 20, bullets, numbered=False) - 8
    c.setFillColor(Color(0.2, 0.2, 0.2))
    c.rect(MX, y - 4, 150, 16, stroke=0, fill=1)
    _txt(c, MX + 6, y, "INFORMAÇÕES GERAIS", bold, 9.5, fill=white)
    _cover_list(c, y - 20, FGV_INFO)
    _txt(c, PAGE_W / 2, 50, "Realização: FGV", bold, 10, anchor="c")


def fgv_booklet(scan: bool = False, annulled: Iterable[int] | None = None) -> Booklet:
    """OAB Exame de Ordem (FGV) as printed: one column, (A)-(D), 80 questions (see the module docstring).
    ``annulled`` defaults to one question (37)."""
    ann = tuple(FGV_DEFAULT_ANNULLED if annulled is None else annulled)
    pdf, truth, meta = _fgv_pdf(ann)
    meta = json.loads(meta)
    if scan:
        pdf = _scan(pdf, seed=f"scan-fgv-{FGV_EDITION}", dpi=180)
        meta["scan"] = {"dpi": 180}
    meta["layout"] = "fgv-scan" if scan else "fgv"
    return Booklet(pdf=pdf, key_pdf=fgv_key(annulled=ann), truth=json.loads(truth), meta=meta)


def _fgv_question_units(q: _Q, number: int, width: float) -> list[_Unit]:
    """Number in bold at the start of the stem's first line, stem lines under the stem; (A)-(D)."""
    reg, bold, ital = _fonts()
    size, lead, indent = 10.0, 13.0, 22.0
    units: list[_Unit] = []
    first = True
    for kind, val in q.blocks:
        if kind not in ("p", "stem"):
            continue
        for line_unit in _para_units(val, reg, size, lead, width - indent, indent=0.0, hyphenate=False):
            def draw(c, x, ytop, u=line_unit, first=first):
                if first:
                    _txt(c, x, ytop - lead * 0.8, str(number), bold, size + 1)
                u.draw(c, x + indent, ytop)
            units.append(_Unit(line_unit.h, draw, keep=first, mark=q.uid if first else None))
            first = False
        units.append(_gap(5))
    opts = _option_units(q.options, width - indent, style="paren", size=size, lead=lead)
    for u in opts:
        units.append(_Unit(u.h, lambda c, x, ytop, u=u: u.draw(c, x + indent, ytop), gap=u.gap))
    return units


@functools.lru_cache(maxsize=4)
def _fgv_pdf(annulled: tuple[int, ...]) -> tuple[bytes, str, str]:
    bank = _fgv_bank()
    entries = [(k + 1, None, q, "") for k, q in enumerate(bank)]
    width = PAGE_W - 2 * 56.0
    flow = _Flow(cols=1, x0=56.0, width=width, gutter=0, top=BODY_TOP, bottom=BODY_BOTTOM + 6,
                 new_page=lambda: _Page("questions"))
    flow.pages.append(_Page("cover"))
    flow.new_page()
    units: list[_Unit] = []
    for n, _, q, _ in entries:
        units += _fgv_question_units(q, n, width)
    flow.place(units)
    reg, bold, ital = _fonts()

    def master(c, n, page):
        if page.kind == "cover":
            _fgv_cover(c)
            return
        _txt(c, 56, PAGE_H - 34, FGV_HEAD[0], bold, 9)
        _txt(c, PAGE_W - 56, PAGE_H - 34, FGV_HEAD[1], bold, 9, anchor="r")
        c.setLineWidth(0.5)
        c.line(56, PAGE_H - 40, PAGE_W - 56, PAGE_H - 40)
        _txt(c, 56, 34, "Realização", reg, 7)
        _txt(c, 56, 24, "FGV", bold, 10)
        _txt(c, PAGE_W - 56, 28, f"Página {n}", reg, 8.5, anchor="r")

    pdf = _render(flow.pages, master, f"{FGV_HEAD[0]} - {FGV_HEAD[1]}", "tests/booklets.py")
    truth = _booklet_truth(entries, flow.marks, annulled, context_of=lambda q: "")
    meta = {"layout": "fgv", "exam": "OAB", "year": None, "edition": FGV_EDITION, "day": 1, "caderno": 1,
            "colour": "BRANCA", "type": "TIPO 1", "pages": len(flow.pages), "cover_pages": [1], "essay_pages": [],
            "draft_pages": [], "question_pages": list(range(2, len(flow.pages) + 1)),
            "headers": list(FGV_HEAD), "footers": ["Realização"], "page_codes": [], "headings": [],
            "annulled": sorted(annulled)}
    return pdf, json.dumps(truth, ensure_ascii=False), json.dumps(meta, ensure_ascii=False)


def fgv_key(annulled: Iterable[int] | None = None) -> bytes:
    """The OAB preliminary key: TIPO 1 - BRANCA, numbers 1-80, "ANULADA" where annulled."""
    ann = tuple(FGV_DEFAULT_ANNULLED if annulled is None else annulled)
    letters = {k + 1: ("ANULADA" if k + 1 in ann else q.letter) for k, q in enumerate(_fgv_bank())}
    return _simple_key([FGV_HEAD[0], "GABARITO PRELIMINAR", FGV_HEAD[1]], letters, head=("Questão", "Gabarito"),
                       per_col=40, fmt="{}")


# ----------------------------------------------------------------------------------------------------
# scans
# ----------------------------------------------------------------------------------------------------

def _scan(pdf: bytes, *, seed: str, dpi: int = 170, quality: int = 50) -> bytes:
    """The booklet as a scanner gives it: each page rendered at ``dpi``, greyscale, rotated 0.3-1°
    (alternating sides), slightly blurred, paper noise and specks, JPEG; no text layer."""
    import pypdfium2 as pdfium

    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "little"))
    doc = pdfium.PdfDocument(pdf)
    images = []
    try:
        for k in range(len(doc)):
            page = doc[k]
            img = page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
            page.close()
            angle = float(rng.uniform(0.3, 1.0)) * (1 if k % 2 else -1)
            img = img.rotate(angle, resample=Image.Resampling.BILINEAR, expand=False, fillcolor=250)
            img = img.filter(ImageFilter.GaussianBlur(0.7))
            a = np.asarray(img, dtype=np.float32)
            a = a * 0.92 + 12 + rng.normal(0, 4, a.shape).astype(np.float32)  # grey paper, sensor noise
            specks = rng.random(a.shape) < 0.0004
            a[specks] = rng.integers(0, 90, int(specks.sum()))
            images.append(Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L"))
    finally:
        doc.close()
    buf = io.BytesIO()
    images[0].save(buf, format="PDF", save_all=True, append_images=images[1:], resolution=float(dpi),
                   quality=quality, title="", producer="tests/booklets.py", creator="tests/booklets.py",
                   creationDate="D:20000101000000Z", modDate="D:20000101000000Z")
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------------
# score: a reader's items against the truth, as a user would judge them
# ----------------------------------------------------------------------------------------------------

def _norm(s) -> str:
    return " ".join(str(s or "").split())


def _ratio(a: str, b: str) -> float:
    a, b = _norm(a), _norm(b)
    if a == b:
        return 1.0
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def _lang(v) -> str | None:
    if v is None or v is False or v == "":
        return None
    s = unicodedata.normalize("NFKD", str(v)).encode("ascii", "ignore").decode().lower()
    if s.startswith(("ing", "en")):
        return "ingles"
    if s.startswith(("esp", "es", "spa")):
        return "espanhol"
    return s


def _item_number(item: dict) -> int | None:
    if item.get("number") is not None:
        try:
            return int(item["number"])
        except (TypeError, ValueError):
            return None
    m = re.search(r"q(\d+)$", str(item.get("id", "")))
    return int(m.group(1)) if m else None


def score(items: Sequence[dict], truth: Sequence[dict], *, headers: Iterable[str] = ()) -> dict:
    """Score a reader's ``items`` against ``truth`` (a Booklet's), as a user would.

    An item is matched to the truth entry with its number (``number``, or an ``id`` ending in
    ``q<digits>``) and, where the truth has two copies of the number, its language
    (``language``/``foreign_language``/``language_option``; without one, the closer copy). It is
    RIGHT when context+question is at least 0.9 similar to the truth's (difflib ratio after whitespace
    normalisation), as many options, each at least 0.9 similar, and the letter (``label`` index or
    ``letter``) right. Annulled truth entries are not counted; an item made of one is listed.
    ``headers``: strings printed in headers/footers; an item containing one is listed."""
    by_number: dict[int, list[dict]] = {}
    for t in truth:
        by_number.setdefault(int(t["number"]), []).append(t)
    answerable = [t for t in truth if not t["annulled"]]
    no_fig = [t for t in answerable if not t["needs_figure"]]
    headers = [h for h in (_norm(h) for h in headers) if h]
    out = {"n_truth": len(answerable), "n_truth_no_figure": len(no_fig), "items": len(items), "right": 0,
           "right_no_figure": 0, "share_right": 0.0, "share_right_no_figure": 0.0, "wrong": [], "missing": [],
           "extra": [], "duplicates": [], "annulled_items": [], "header_leaks": [],
           "needs_figure": {"true_positive": 0, "false_positive": 0, "false_negative": 0, "true_negative": 0}}
    seen: set[tuple] = set()
    for item in items:
        number = _item_number(item)
        lang = _lang(item.get("foreign_language", item.get("language_option", item.get("language"))))
        text = _norm(f"{item.get('context') or ''} {item.get('question') or ''}")
        options = [_norm(o) for o in item.get("answers", item.get("options", [])) or []]
        blob = " ".join([text] + options)
        leaks = [h for h in headers if h in blob]
        if leaks:
            out["header_leaks"].append({"number": number, "strings": leaks})
        cands = by_number.get(number, []) if number is not None else []
        if not cands:
            out["extra"].append(number if number is not None else item.get("id"))
            continue
        if len(cands) > 1:
            same = [t for t in cands if t["language"] == lang]
            if same:
                cands = same
        scored = [(_ratio(text, f"{t['context']} {t['question']}"), t) for t in cands]
        q_ratio, t = max(scored, key=lambda s: s[0])
        key = (t["number"], t["language"])
        if key in seen:
            out["duplicates"].append({"number": t["number"], "language": t["language"]})
            continue
        seen.add(key)
        if t["annulled"]:
            out["annulled_items"].append(t["number"])
            continue
        what = []
        if q_ratio < 0.9:
            what.append("question")
        truth_opts = [_norm(o) for o in t["options"]]
        o_ratios = [_ratio(a, b) for a, b in zip(options, truth_opts)]
        if len(options) != len(truth_opts) or any(r < 0.9 for r in o_ratios):
            what.append("options")
        label = item.get("label")
        letter = item.get("letter")
        if letter is None and isinstance(label, int) and 0 <= label < len(LETTERS):
            letter = LETTERS[label]
        if letter != t["letter"]:
            what.append("letter")
        flag = item.get("needs_figure")
        if flag is not None:
            k = ("true" if bool(flag) == t["needs_figure"] else "false") + ("_positive" if flag else "_negative")
            out["needs_figure"][k] += 1
        if what:
            out["wrong"].append({"number": t["number"], "language": t["language"], "what": what,
                                 "question_ratio": round(q_ratio, 3),
                                 "min_option_ratio": round(min(o_ratios), 3) if o_ratios else 0.0,
                                 "options": [len(options), len(truth_opts)], "letter": [letter, t["letter"]]})
            continue
        out["right"] += 1
        if not t["needs_figure"]:
            out["right_no_figure"] += 1
    out["missing"] = sorted({t["number"] for t in answerable if (t["number"], t["language"]) not in seen})
    out["share_right"] = round(out["right"] / len(answerable), 4) if answerable else 0.0
    out["share_right_no_figure"] = round(out["right_no_figure"] / len(no_fig), 4) if no_fig else 0.0
    return out


def write_booklet(dir, name: str, booklet: Booklet) -> dict[str, Path]:
    """Write ``<name>.pdf``, ``<name>.gabarito.pdf`` (the project's folder convention) and
    ``<name>.truth.json`` (truth and meta) under ``dir``."""
    folder = Path(dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"pdf": folder / f"{name}.pdf", "key": folder / f"{name}.gabarito.pdf",
             "truth": folder / f"{name}.truth.json"}
    paths["pdf"].write_bytes(booklet.pdf)
    paths["key"].write_bytes(booklet.key_pdf)
    paths["truth"].write_text(json.dumps({"meta": booklet.meta, "truth": booklet.truth}, ensure_ascii=False,
                                         indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return paths
