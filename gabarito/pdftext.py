"""Text of regulation PDFs: page quality, cleaning, and article-aware chunking.

Plain functions over strings and page records, shared by the extract and synthesize stages.

Quality: a page's text is scored by its share of real-looking words, broken-diacritic patterns
(a text layer with a bad font map gives "Introdu¸˜o" for "Introdução") and garbage characters.
Cleaning: headers and footers repeated across a document's pages and page numbers are removed,
hyphenated line breaks joined, wrapped lines merged into paragraphs, OCR junk removed while §, º, ª,
article numbers and dates stay. Chunking: by (approximate) tokens with overlap, cutting at article
boundaries (Art., §, Parágrafo único, incisos) where the text has them.
"""

from __future__ import annotations

import difflib
import re
import unicodedata

from gabarito.params import ExtractParams

# --- quality -----------------------------------------------------------------------------------------
WORD = re.compile(r"\S+")
# a real word: letters (accents included), optionally with inner hyphens/apostrophes, edge punctuation
REAL = re.compile(r"^[(\"'«“]*[A-Za-zÀ-ÖØ-öø-ÿ]+[ºª]?(?:[-'’][A-Za-zÀ-ÖØ-öø-ÿ]+)*[)\"'»”.,;:!?]*$")
NUMBERISH = re.compile(r"^[(\"']*[\dIVXLCivxlc]+(?:[.,/:-]\d+)*[ºª°]?[).,;:%]*$|^[§–—-]$")
# spacing diacritics left alone by a broken font map, e.g. "Introdu¸˜o", "informa¸c˜ao"
BROKEN_DIACRITIC = re.compile(r"[¸˜´`^¨˘˙˚˝]")
ALLOWED = re.compile(r"[\wÀ-ÖØ-öø-ÿ\s.,;:!?()\[\]\"'“”‘’«»/\\%$&@*+=<>#§ºª°–—-]")


def page_quality(text: str) -> dict:
    """Scores in [0, 1]: share of real words, garbage-character ratio, broken diacritics, overall."""
    words = WORD.findall(text)
    if not words:
        return {"words": 0, "real_word_share": 0.0, "garbage_ratio": 0.0, "broken_diacritics": 0, "score": 0.0}
    real = sum(1 for w in words if REAL.match(w) or NUMBERISH.match(w))
    chars = [c for c in text if not c.isspace()]
    garbage = sum(1 for c in chars if not ALLOWED.match(c)) / max(1, len(chars))
    broken = len(BROKEN_DIACRITIC.findall(text))
    share = real / len(words)
    score = share * (1 - garbage) * max(0.0, 1 - 10 * broken / len(words))
    return {"words": len(words), "real_word_share": round(share, 4), "garbage_ratio": round(garbage, 4),
            "broken_diacritics": broken, "score": round(score, 4)}


# --- cleaning ----------------------------------------------------------------------------------------
PAGE_NUMBER = re.compile(r"^\s*(?:p[áa]g(?:ina)?\.?|page)?\s*[-–—]?\s*\d{1,4}\s*(?:(?:de|of|/)\s*\d{1,4})?\s*[-–—]?\s*$", re.I)
# OCR reads the roman numerals of incisos as |, l or 1: "|| -" -> "II –", "Ill -" -> "III –"
OCR_ROMAN = re.compile(r"^([Il|1]{1,3}|[Il|1]?[VX][Il|1]{0,3})\s*[-–—]\s+")
JUNK_RUN = re.compile(r"([~_=*|^`´¨<>#])\1{2,}")
# ... and the section sign as "$" or "S" before a paragraph number: "$ 1º" -> "§ 1º"
OCR_SECTION = re.compile(r"^[$S]\s*(?=\d{1,2}\s*[º°o]\s)")


STARTS_UNIT = re.compile(r"^(Art\.|Artigo\b|§|Parágrafo único|CAPÍTULO|Capítulo|SEÇÃO|Seção|TÍTULO|"
                         r"[IVXL]{1,5}\s*[–—-]\s|[a-z]\)\s)")


def _key(line: str) -> str:
    """Header/footer identity: case, digits and dash style ignored ("Página 1 de 3" ~ "Página 2 de 3")."""
    line = unicodedata.normalize("NFC", line).casefold().replace("–", "-").replace("—", "-")
    return re.sub(r"\d+", "#", " ".join(line.split()))


def repeated_lines(pages: list[str], p: ExtractParams | None = None) -> set[str]:
    """Keys of lines among the ``p.header_lines`` at the top or bottom of at least
    ``p.header_min_share`` of the pages (two at least). An article (``STARTS_UNIT``) is never a running
    header, though one may open every page."""
    p = p or ExtractParams()
    edge = p.header_lines
    if len(pages) < 2 or edge == 0:
        return set()
    groups: list[tuple[str, set[int]]] = []
    for i, text in enumerate(pages):
        lines = [ln for ln in text.splitlines() if ln.strip()]
        for ln in lines[:edge] + lines[-edge:]:
            if STARTS_UNIT.match(ln.strip()):  # an article is never a running header
                continue
            key = _key(ln)
            for gkey, members in groups:
                # OCR spells a header slightly differently on each page
                if gkey == key or difflib.SequenceMatcher(None, gkey, key).ratio() >= p.header_similarity:
                    members.add(i)
                    break
            else:
                groups.append((key, {i}))
    need = max(2, int(p.header_min_share * len(pages) + 0.999))
    return {key for key, members in groups if len(members) >= need}


def _is_repeated(line: str, keys: set[str], similarity: float) -> bool:
    key = _key(line)
    return key in keys or any(difflib.SequenceMatcher(None, key, k).ratio() >= similarity for k in keys)


def is_marginal(line: str, repeated: set[str], p: ExtractParams | None = None) -> bool:
    """A page number, or a running header/footer among ``repeated`` (from :func:`repeated_lines`)."""
    p = p or ExtractParams()
    return bool(PAGE_NUMBER.match(line)) or bool(repeated and _is_repeated(line, repeated, p.header_similarity))


def clean_page(text: str, repeated: set[str], p: ExtractParams | None = None) -> str:
    """One page: drop headers/footers/page numbers and junk, fix OCR'd incisos, rejoin lines."""
    p = p or ExtractParams()
    text = unicodedata.normalize("NFC", text).replace("\u00ad", "")  # soft hyphens
    lines = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            lines.append("")  # a paragraph break
            continue
        m = OCR_ROMAN.match(line)
        if m:  # before the junk filter, which would eat the "|" of "|| -"
            numeral = re.sub(r"[l|1]", "I", m.group(1))
            line = f"{numeral} – {line[m.end():]}"
        line = OCR_SECTION.sub("§ ", line)
        line = JUNK_RUN.sub("", line)
        line = "".join(c for c in line if ALLOWED.match(c) or c.isalpha())
        line = re.sub(r"[ \t]+", " ", line).strip()
        if not line:  # nothing but junk
            continue
        if is_marginal(line, repeated, p):
            continue
        letters = sum(c.isalnum() for c in line)
        if letters < p.junk_min_alnum_share * len(line.replace(" ", "")):  # mostly symbols: OCR noise
            continue
        lines.append(line)
    # rejoin: hyphenated breaks ("regula-" + "mento"), then wrapped lines into paragraphs
    out: list[str] = []
    for line in lines:
        if out and out[-1] and line and not STARTS_UNIT.match(line):
            prev = out[-1]
            if re.search(r"[A-Za-zÀ-ÿ]-$", prev) and line[0].islower():
                out[-1] = prev[:-1] + line
                continue
            title = not re.search(r"[a-zà-ÿ]", prev.replace("º", "").replace("ª", ""))  # headings stay apart
            if not title and (not re.search(r"[.:;!?]$", prev) or line[0].islower()):
                out[-1] = prev + ("" if prev.endswith("-") else " ") + line
                continue
        out.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


def clean_document(pages: list[dict], p: ExtractParams | None = None) -> list[dict]:
    """Clean every page of one document (headers found across its pages); adds ``quality``."""
    repeated = repeated_lines([page["text"] for page in pages], p)
    out = []
    for page in pages:
        text = clean_page(page["text"], repeated, p)
        out.append({**page, "text": text, "quality": page_quality(text)["score"]})
    return out


# --- chunking ----------------------------------------------------------------------------------------
TOKEN = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    """Word pieces and punctuation marks: close to a BPE count for Portuguese prose (~1.2x words)."""
    return len(TOKEN.findall(text))


def units(text: str) -> list[str]:
    """Split a document's text at article boundaries (Art., §, incisos...), else at paragraphs."""
    out: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        for line in para.splitlines():
            line = line.strip()
            if not line:
                continue
            if out and not STARTS_UNIT.match(line) and not out[-1].endswith("\n\n"):
                out[-1] += "\n" + line
            else:
                out.append(line)
        if out:
            out[-1] = out[-1].rstrip() + "\n\n"
    return [u.strip() for u in out if u.strip()]


def _split_long(unit: str, limit: int) -> list[str]:
    """A unit longer than the limit, cut at sentence ends, then at words."""
    pieces, cur = [], ""
    # sentence ends, but not the abbreviations legal text is full of ("Art. 9º", "Prof. Dr.")
    for sentence in re.split(r"(?<!Art\.)(?<!art\.)(?<!Prof\.)(?<!Dr\.)(?<!Sr\.)(?<!Sra\.)(?<!inc\.)(?<=[.;:])\s+", unit):
        candidate = f"{cur} {sentence}".strip()
        if cur and count_tokens(candidate) > limit:
            pieces.append(cur)
            cur = sentence
        else:
            cur = candidate
    if cur:
        pieces.append(cur)
    out = []
    for piece in pieces:
        words = piece.split()
        while count_tokens(" ".join(words)) > limit and len(words) > 1:
            n = len(words)
            while n > 1 and count_tokens(" ".join(words[:n])) > limit:
                n = max(1, n * 3 // 4)
            out.append(" ".join(words[:n]))
            words = words[n:]
        if words:
            out.append(" ".join(words))
    return out


def chunk_document(doc: str, pages: list[dict], max_tokens: int, overlap_tokens: int) -> list[dict]:
    """Chunks of at most ``max_tokens`` tokens, made of whole articles where possible; each chunk
    repeats up to ``overlap_tokens`` of the previous one's last units for context."""
    parts: list[tuple[int, str]] = []
    for p in pages:
        for u in units(p["text"]):
            for piece in ([u] if count_tokens(u) <= max_tokens else _split_long(u, max_tokens)):
                parts.append((p["page"], piece))
    chunks, current, size = [], [], 0
    for page_no, text in parts:
        n = count_tokens(text)
        if current and size + n > max_tokens:
            chunks.append(_chunk(doc, len(chunks), current))
            tail, tail_size = [], 0
            for item in reversed(current):
                m = count_tokens(item[1])
                if tail_size + m > min(overlap_tokens, max_tokens - n):
                    break
                tail.insert(0, item)
                tail_size += m
            current, size = tail, tail_size
        current.append((page_no, text))
        size += n
    if current:
        chunks.append(_chunk(doc, len(chunks), current))
    return chunks


def _chunk(doc: str, index: int, parts: list[tuple[int, str]]) -> dict:
    text = "\n".join(t for _, t in parts)
    return {"doc": doc, "chunk_id": f"{doc}#{index}", "page": parts[0][0], "pages": sorted({p for p, _ in parts}),
            "text": text, "tokens": count_tokens(text)}
