"""Turn extracted PDF pages into grounded Portuguese question/answer pairs with provenance.

    gabarito synthesize --pages data/interim/pages.jsonl --qa-dir data/raw/qa \\
        --prompt prompts/synthesize.v1.txt --ledger data/interim/ledger/synthesize.jsonl \\
        --out data/interim/pdf_qa.jsonl --rejected data/interim/pdf_qa_rejected.jsonl \\
        --metrics metrics/synthesize.json

Providers (``synthesize.provider``):
  dataset  import Q&A files people already have (``[{"Pergunta": ..., "Resposta": ...}]``, or
           ``question``/``answer`` keys) and keep only pairs whose answer is grounded in the
           extracted text, each tagged with the page that supports it.
  openai   the LLM writes ``pairs_per_chunk`` pairs per text chunk through :mod:`stages.llm`; the
           same grounding filter then applies against the chunk.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from stages.io import InputError, read_json
from stages.llm import InvalidReply, Job, parse_json_object

def fold(text: str) -> str:
    """Lower case without accents: "Não" -> "nao"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


STOPWORDS = frozenset(fold(w) for w in (
    "a o as os de da do das dos e é em no na nos nas um uma uns umas para por pelo pela pelos pelas com "
    "sem que se ao aos à às ou ser são foi como mais deve devem sua seu suas seus este esta isso "
    "qual quais quando onde quem não").split())


def content_words(text: str) -> list[str]:
    """Accent-folded, lower-case words of 2+ characters that carry meaning (numbers included)."""
    return [w for w in re.findall(r"[a-z0-9]+", fold(text)) if len(w) >= 2 and w not in STOPWORDS]


def grounding(answer: str, source_words: set[str]) -> float:
    """Share of the answer's content words that occur in the source text (1.0 = all of them)."""
    words = content_words(answer)
    if not words:
        return 0.0
    return sum(w in source_words for w in words) / len(words)


def pair_id(doc: str, question: str) -> str:
    return "pdf-" + hashlib.sha256(f"{doc}\n{question}".encode()).hexdigest()[:12]


def load_qa_files(qa_dir: str | Path) -> list[dict]:
    """Read every *.json list of Q&A pairs under qa_dir, in file-name order."""
    qa_dir = Path(qa_dir)
    files = sorted(qa_dir.glob("*.json")) if qa_dir.is_dir() else [qa_dir]
    if not files or not files[0].exists():
        raise InputError(f"{qa_dir}: no .json Q&A files found.")
    pairs = []
    for file in files:
        data = read_json(file)
        if not isinstance(data, list):
            raise InputError(f"{file}: expected a JSON list of {{\"Pergunta\": ..., \"Resposta\": ...}} objects.")
        for i, obj in enumerate(data):
            q = obj.get("Pergunta", obj.get("question")) if isinstance(obj, dict) else None
            a = obj.get("Resposta", obj.get("answer")) if isinstance(obj, dict) else None
            if not isinstance(q, str) or not isinstance(a, str):
                raise InputError(f"{file}[{i}]: each entry needs text fields Pergunta and Resposta "
                                 "(or question and answer).")
            pairs.append({"question": q.strip(), "answer": a.strip(), "source": f"{file.name}[{i}]"})
    return pairs


def ground_pairs(pairs: list[dict], pages: list[dict], min_grounding: float) -> tuple[list[dict], list[dict]]:
    """Attach each pair to its best-supporting page; reject pairs below ``min_grounding``."""
    page_words = [(p, set(content_words(p["text"]))) for p in pages if p["status"] == "ok"]
    kept, rejected = [], []
    for pair in pairs:
        best, best_score = None, -1.0
        for page, words in page_words:
            score = grounding(pair["answer"], words)
            if score > best_score:
                best, best_score = page, score
        if best is None or best_score < min_grounding:
            rejected.append({**pair, "reason": "ungrounded", "grounding": round(max(best_score, 0.0), 4)})
            continue
        kept.append({"id": pair_id(best["doc"], pair["question"]), "kind": "open", "question": pair["question"],
                     "answer": pair["answer"], "doc": best["doc"], "page": best["page"],
                     "grounding": round(best_score, 4), "source": pair["source"]})
    return kept, rejected


def chunk_pages(pages: list[dict], chunk_chars: int, overlap_chars: int) -> list[dict]:
    """Split each document's pages into chunks of at most ``chunk_chars`` on paragraph boundaries."""
    chunks = []
    by_doc: dict[str, list[dict]] = {}
    for page in pages:
        if page["status"] == "ok":
            by_doc.setdefault(page["doc"], []).append(page)
    for doc, doc_pages in by_doc.items():
        paras = [(p["page"], para.strip()) for p in doc_pages for para in re.split(r"\n\s*\n", p["text"])
                 if para.strip()]
        current: list[tuple[int, str]] = []
        size, index = 0, 0
        for page_no, para in paras:
            for piece in _hard_split(para, chunk_chars):
                if current and size + len(piece) > chunk_chars:
                    chunks.append(_chunk(doc, index, current))
                    index += 1
                    # carry an overlap only as far as it still leaves room for this piece
                    current = _tail(current, min(overlap_chars, chunk_chars - len(piece)))
                    size = sum(len(t) for _, t in current)
                current.append((page_no, piece))
                size += len(piece)
        if current:
            chunks.append(_chunk(doc, index, current))
    return chunks


def _hard_split(text: str, limit: int) -> list[str]:
    return [text[i:i + limit] for i in range(0, len(text), limit)] or [text]


def _tail(parts: list[tuple[int, str]], overlap: int) -> list[tuple[int, str]]:
    kept: list[tuple[int, str]] = []
    total = 0
    for page_no, text in reversed(parts):
        if total + len(text) > overlap:
            break
        kept.insert(0, (page_no, text))
        total += len(text)
    return kept


def _chunk(doc: str, index: int, parts: list[tuple[int, str]]) -> dict:
    return {"doc": doc, "chunk_id": f"{doc}#{index}", "page": parts[0][0], "pages": sorted({p for p, _ in parts}),
            "text": "\n\n".join(t for _, t in parts)}


class _Pair(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pergunta: str
    resposta: str
    trecho: str


class _Pairs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pares: list[_Pair]


SCHEMA = {
    "type": "object",
    "properties": {"pares": {"type": "array", "items": {
        "type": "object",
        "properties": {"pergunta": {"type": "string"}, "resposta": {"type": "string"}, "trecho": {"type": "string"}},
        "required": ["pergunta", "resposta", "trecho"], "additionalProperties": False}}},
    "required": ["pares"],
    "additionalProperties": False,
}


def build_job(chunk: dict, template: str, n: int) -> Job:
    system, _, user = template.partition("\n---\n")
    user = (user.replace("{{n}}", str(n)).replace("{{doc}}", chunk["doc"])
            .replace("{{page}}", str(chunk["page"])).replace("{{chunk}}", chunk["text"]))

    def validate(raw: str) -> dict:
        try:
            parsed = _Pairs.model_validate(parse_json_object(raw))
        except ValidationError as exc:
            raise InvalidReply('o JSON deve ser {"pares": [{"pergunta", "resposta", "trecho"}]}: '
                               f"{exc.errors()[0]['msg']}") from None
        pairs = [p for p in parsed.pares if p.pergunta.strip() and p.resposta.strip()]
        if not pairs:
            raise InvalidReply("nenhum par com pergunta e resposta preenchidas")
        return {"pairs": [p.model_dump() for p in pairs]}

    return Job(id=chunk["chunk_id"], key_input={"chunk": chunk["text"], "doc": chunk["doc"], "n": n},
               messages=[{"role": "system", "content": system.strip()}, {"role": "user", "content": user.strip()}],
               validate=validate, schema_name="pares", schema=SCHEMA)


def ground_generated(chunk: dict, pairs: list[dict], min_grounding: float) -> tuple[list[dict], list[dict]]:
    words = set(content_words(chunk["text"]))
    kept, rejected = [], []
    for i, pair in enumerate(pairs):
        score = grounding(pair["resposta"], words)
        rec = {"question": pair["pergunta"].strip(), "answer": pair["resposta"].strip(),
               "source": f"{chunk['chunk_id']}[{i}]"}
        if score < min_grounding:
            rejected.append({**rec, "reason": "ungrounded", "grounding": round(score, 4)})
            continue
        kept.append({**rec, "id": pair_id(chunk["doc"], rec["question"]), "kind": "open", "doc": chunk["doc"],
                     "page": chunk["page"], "chunk_id": chunk["chunk_id"], "span": pair["trecho"].strip(),
                     "grounding": round(score, 4)})
    return kept, rejected
