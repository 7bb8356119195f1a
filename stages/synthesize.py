"""Turn extracted PDF pages into grounded Portuguese question/answer pairs with provenance.

    gabarito synthesize --pages data/interim/pages.jsonl --qa-dir data/raw/qa \\
        --prompt prompts/synthesize.v1.txt --ledger data/interim/ledger/synthesize.jsonl \\
        --out data/interim/pdf_qa.jsonl --rejected data/interim/pdf_qa_rejected.jsonl \\
        --metrics metrics/synthesize.json

Providers (``synthesize.provider``):
  dataset  import Q&A files people already have (``[{"Pergunta": ..., "Resposta": ...}]``, or
           ``question``/``answer`` keys) and keep only pairs whose answer is grounded in the
           extracted text, each tagged with the page that supports it; a pair with ``doc`` is
           grounded against that PDF only.
  openai   the LLM writes ``pairs_per_chunk`` pairs per chunk (cut by tokens at article boundaries)
           through :mod:`gabarito.llm`, each with its supporting span and three distractors; the same
           grounding filter then applies against the chunk (``batch`` uses the Batch API).

Then near-duplicate questions are dropped, whole documents go to train or validation (never both),
and, with ``multiple_choice``, each pair also becomes a Cosmos-QA-shaped item (context, question,
four options, label) so regulation questions are trained and scored like the rest.

When more than ``synthesize.llm.max_failure_share`` of the chunks' LLM jobs fail, the stage exits 1
naming them and writes nothing (DVC caches nothing); the ledger keeps every paid reply for the rerun.
Pairs in and none kept (every one ungrounded, say) also exits 1, after writing the rejected file
that says why. A PDF that yields no pair is named in the log and in the metrics' ``docs_without_pairs``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path
from typing import Callable

import click
from pydantic import BaseModel, ConfigDict, ValidationError

from gabarito.clikit import log, params_option, require_output, user_errors
from gabarito.io import InputError, read_json
from gabarito.llm import InvalidReply, Job, parse_json_object


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
    """Read every *.json list of Q&A pairs under qa_dir, in file-name order.

    A pair may name its PDF (``"doc": "regulamento_estagio.pdf"``, or ``"Documento"``; the file name as
    extract records it, ``.pdf`` optional): it is then grounded against that document only, so it cannot
    land on another PDF that happens to share its words (and in that PDF's split)."""
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
            pair = {"question": q.strip(), "answer": a.strip(), "source": f"{file.name}[{i}]"}
            doc = obj.get("doc", obj.get("Documento"))
            if doc is not None:
                if not isinstance(doc, str) or not doc.strip():
                    raise InputError(f"{file}[{i}]: \"doc\" must name a PDF (its file name, e.g. "
                                     f"\"regulamento.pdf\"), got {doc!r}. Fix it, or leave it out to match any PDF.")
                pair["doc"] = doc.strip()
            pairs.append(pair)
    return pairs


def _doc_named(name: str, docs: set[str]) -> str | None:
    """The document a pair's ``doc`` names: the file name as extract records it, ``.pdf`` optional."""
    if name in docs:
        return name
    return next((d for d in sorted(docs) if Path(d).stem == name), None)


def ground_pairs(pairs: list[dict], pages: list[dict], min_grounding: float) -> tuple[list[dict], list[dict]]:
    """Attach each pair to its best-supporting page; reject pairs below ``min_grounding``."""
    page_words = [(p, set(content_words(p["text"]))) for p in pages if p["status"] == "ok"]
    docs = {p["doc"] for p in pages}
    kept, rejected = [], []
    for pair in pairs:
        candidates = page_words
        if "doc" in pair:  # a pair that names its PDF is grounded there, or nowhere
            doc = _doc_named(pair["doc"], docs)
            if doc is None:
                rejected.append({**pair, "reason": f"unknown_doc: no extracted PDF is named {pair['doc']!r} "
                                 f"(PDFs: {', '.join(sorted(docs)) or 'none'}; one that failed extraction is in "
                                 "metrics/extract.json)", "grounding": 0.0})
                continue
            candidates = [(p, w) for p, w in page_words if p["doc"] == doc]
        best, best_score = None, -1.0
        for page, words in candidates:
            score = grounding(pair["answer"], words)
            if score > best_score:
                best, best_score = page, score
        if best is None or best_score < min_grounding:
            rejected.append({**pair, "reason": "ungrounded", "grounding": round(max(best_score, 0.0), 4)})
            continue
        kept.append({"id": pair_id(best["doc"], pair["question"]), "kind": "open", "question": pair["question"],
                     "answer": pair["answer"], "doc": best["doc"], "page": best["page"],
                     "grounding": round(best_score, 4), "source": pair["source"],
                     "span": best_unit(pair["answer"], best["text"])})
    return kept, rejected


def chunk_pages(pages: list[dict], max_tokens: int, overlap_tokens: int) -> list[dict]:
    """Each document's clean pages in chunks of at most ``max_tokens``, cut at article boundaries."""
    from gabarito.pdftext import chunk_document

    by_doc: dict[str, list[dict]] = {}
    for page in pages:
        if page["status"] == "ok":
            by_doc.setdefault(page["doc"], []).append(page)
    return [c for doc, doc_pages in by_doc.items() for c in chunk_document(doc, doc_pages, max_tokens, overlap_tokens)]


# --- after generation: near-duplicates, document split, multiple choice ---------------------------
def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def drop_near_duplicates(pairs: list[dict], threshold: float) -> tuple[list[dict], list[dict]]:
    """Keep the first of any questions (same document) whose content words overlap >= threshold."""
    kept, rejected, seen = [], [], []
    for pair in pairs:
        words = set(content_words(pair["question"]))
        dup = next((k for k, w in seen if k["doc"] == pair["doc"] and _jaccard(words, w) >= threshold), None)
        if dup is not None:
            rejected.append({**pair, "reason": "near_duplicate", "duplicate_of": dup["id"]})
            continue
        seen.append((pair, words))
        kept.append(pair)
    return kept, rejected


def _rank(seed: int, *parts: str) -> str:
    return hashlib.sha256("\n".join((str(seed), *parts)).encode()).hexdigest()


def split_documents(docs: list[str], validation_share: float, seed: int) -> dict[str, str]:
    """doc -> train|validation; whole documents, so no document is in both (none in validation if
    there is only one document)."""
    ordered = sorted(set(docs), key=lambda d: _rank(seed, d))
    n_val = min(len(ordered) - 1, round(validation_share * len(ordered))) if len(ordered) > 1 else 0
    return {d: ("validation" if i < n_val else "train") for i, d in enumerate(ordered)}


def best_unit(answer: str, text: str) -> str:
    """The article/paragraph of ``text`` that supports ``answer`` best: the MCQ's context."""
    from gabarito.pdftext import units

    candidates = units(text) or [text]
    return max(candidates, key=lambda u: (grounding(answer, set(content_words(u))), -len(u)))


def to_multiple_choice(pairs: list[dict], pages: list[dict], seed: int) -> list[dict]:
    """Cosmos-QA-shaped items from Q&A pairs: the supporting article as context, the answer and three
    distractors (LLM-written when the pair has them, else the answers of other questions about the same
    document, closest in length first), in a seeded order."""
    texts = {(p["doc"], p["page"]): p["text"] for p in pages}
    items = []
    for pair in pairs:
        seen = {fold(pair["answer"]).strip()}
        distractors: list[str] = []
        others = sorted((o for o in pairs if o["doc"] == pair["doc"] and o is not pair),
                        key=lambda o: (abs(len(o["answer"]) - len(pair["answer"])), o["id"]))
        for candidate in [*pair.get("distractors", []), *(o["answer"] for o in others)]:
            key = fold(candidate).strip()
            if key and key not in seen and len(distractors) < 3:  # four distinct options or none
                seen.add(key)
                distractors.append(candidate.strip())
        if len(distractors) < 3:
            continue
        options = [pair["answer"], *distractors[:3]]
        order = sorted(range(4), key=lambda i: _rank(seed, pair["id"], str(i)))
        # an LLM's quote is the context only when it was found in the text; else the best article
        context = pair["span"] if pair.get("distractors") and pair.get("span_found") else \
            best_unit(pair["answer"], texts.get((pair["doc"], pair["page"]), ""))
        items.append({"id": pair["id"].replace("pdf-", "pdfmc-"), "kind": "mcq", "source": "pdf",
                      "split": pair["split"], "doc": pair["doc"], "page": pair["page"], "context": context,
                      "question": pair["question"], "answers": [options[i] for i in order],
                      "label": order.index(0), "question_type": "regulation", "none_correct": False})
    return items


class _Pair(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pergunta: str
    resposta: str
    trecho: str
    distratores: list[str] = []


class _Pairs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pares: list[_Pair]


SCHEMA = {
    "type": "object",
    "properties": {"pares": {"type": "array", "items": {
        "type": "object",
        "properties": {"pergunta": {"type": "string"}, "resposta": {"type": "string"}, "trecho": {"type": "string"},
                       "distratores": {"type": "array", "items": {"type": "string"}}},
        "required": ["pergunta", "resposta", "trecho", "distratores"], "additionalProperties": False}}},
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
            raise InvalidReply('o JSON deve ser {"pares": [{"pergunta", "resposta", "trecho", "distratores"}]}: '
                               f"{exc.errors()[0]['msg']}") from None
        pairs = [p for p in parsed.pares if p.pergunta.strip() and p.resposta.strip()]
        if not pairs:
            raise InvalidReply("nenhum par com pergunta e resposta preenchidas")
        return {"pairs": [p.model_dump() for p in pairs]}

    return Job(id=chunk["chunk_id"], key_input={"chunk": chunk["text"], "chunk_id": chunk["chunk_id"], "n": n},
               messages=[{"role": "system", "content": system.strip()}, {"role": "user", "content": user.strip()}],
               validate=validate, schema_name="pares", schema=SCHEMA)


def ground_generated(chunk: dict, pairs: list[dict], min_grounding: float,
                     page_texts: dict[int, str] | None = None, *, span_min_grounding: float | None = None
                     ) -> tuple[list[dict], list[dict]]:
    """Keep pairs whose answer is supported by the chunk: lexical overlap with the chunk of at least
    ``min_grounding``, or a quoted span found verbatim in the chunk that the answer overlaps by at
    least ``span_min_grounding`` (synthesize.span_min_grounding; None: half of ``min_grounding``).
    With ``page_texts`` (page -> text), a pair's page is the one its span comes from."""
    span_bar = min_grounding / 2 if span_min_grounding is None else span_min_grounding
    chunk_words = set(content_words(chunk["text"]))
    folded_chunk = " ".join(content_words(chunk["text"]))
    kept, rejected = [], []
    for i, pair in enumerate(pairs):
        span = pair.get("trecho", "").strip()
        span_words = content_words(span)
        span_found = bool(span_words) and " ".join(span_words) in folded_chunk
        score = grounding(pair["resposta"], chunk_words)
        rec = {"question": pair["pergunta"].strip(), "answer": pair["resposta"].strip(),
               "source": f"{chunk['chunk_id']}[{i}]"}
        if score < min_grounding and not (span_found and grounding(pair["resposta"], set(span_words)) >= span_bar):
            rejected.append({**rec, "reason": "ungrounded", "grounding": round(score, 4)})
            continue
        page = next((pg for pg in chunk["pages"] if span_found and page_texts and
                     " ".join(span_words) in " ".join(content_words(page_texts.get(pg, "")))), chunk["page"])
        kept.append({**rec, "id": pair_id(chunk["doc"], rec["question"]), "kind": "open", "doc": chunk["doc"],
                     "page": page, "chunk_id": chunk["chunk_id"], "span": span, "span_found": span_found,
                     "grounding": round(score, 4),
                     "distractors": [d.strip() for d in pair.get("distratores", []) if d.strip()]})
    return kept, rejected


def finish(kept: list[dict], rejected: list[dict], pages: list[dict], p) -> tuple[list[dict], list[dict], dict]:
    """Near-duplicates out, whole documents to train or validation, optional multiple-choice items."""
    kept, near = drop_near_duplicates(kept, p.near_duplicate_threshold)
    rejected = rejected + near
    splits = split_documents([k["doc"] for k in kept], p.validation_docs_share, p.seed)
    kept = [{**k, "split": splits[k["doc"]]} for k in kept]
    mcq = to_multiple_choice(kept, pages, p.seed) if p.multiple_choice else []
    reasons: dict[str, int] = {}
    for r in rejected:
        key = r["reason"].split(":")[0]
        reasons[key] = reasons.get(key, 0) + 1
    metrics = {
        "generated": len(kept) + len(rejected), "kept": len(kept), "rejected": len(rejected),
        "rejected_by_reason": dict(sorted(reasons.items())),
        "kept_train": sum(k["split"] == "train" for k in kept),
        "kept_validation": sum(k["split"] == "validation" for k in kept),
        "multiple_choice": len(mcq),
        "docs_validation": sorted(d for d, sp in splits.items() if sp == "validation"),
    }
    return kept + mcq, rejected, metrics


# --- the stage: the grounding loop -----------------------------------------------------------------
def ground_results(chunks: list[dict], results: dict[str, dict], pages: list[dict], p, *,
                   where: Callable[[str], str]) -> tuple[list[dict], list[dict], list[dict]]:
    """(kept, rejected, LLM failures) from the engine's results, chunk by chunk in order.

    A chunk whose LLM job failed goes to rejected (reason "llm: ...") and to the failures that
    ``llm.check_failures`` weighs; a stored result without its pairs names its ledger line.
    """
    kept, bad, failed = [], [], []
    for chunk in chunks:
        entry = results[chunk["chunk_id"]]
        if entry["status"] != "ok":
            bad.append({"source": chunk["chunk_id"], "reason": f"llm: {entry['reason']}", "raw": entry.get("raw", "")})
            failed.append({"id": chunk["chunk_id"], "reason": entry["reason"]})
            continue
        pairs = entry["result"].get("pairs")
        if not isinstance(pairs, list) or not all(isinstance(pr, dict) and isinstance(pr.get("pergunta"), str)
                                                  and isinstance(pr.get("resposta"), str) for pr in pairs):
            raise InputError(f"{where(entry['key'])}: the stored reply for chunk {chunk['chunk_id']!r} needs "
                             "'pairs', a list of objects with pergunta and resposta. Remove that line (its call "
                             "is made again) and rerun.")
        page_texts = {pg["page"]: pg["text"] for pg in pages if pg["doc"] == chunk["doc"]}
        k, b = ground_generated(chunk, pairs, p.min_grounding, page_texts, span_min_grounding=p.span_min_grounding)
        kept += k
        bad += b
    return kept, bad, failed


def docs_without_pairs(pages: list[dict], records: list[dict], rejected: list[dict], provider: str) -> dict[str, str]:
    """doc -> what to do, for each extracted PDF that yields no pair: it would otherwise reach training as
    nothing, and nothing would say so."""
    with_pairs = {r["doc"] for r in records}
    with_text = {p["doc"] for p in pages if p["status"] == "ok"}
    out = {}
    for doc in sorted({p["doc"] for p in pages} - with_pairs):
        named = sum(r.get("doc") in (doc, Path(doc).stem) for r in rejected)
        if doc not in with_text:
            out[doc] = "no page of it has text (see metrics/extract.json for why); no pair can be grounded in it"
        elif provider == "dataset":
            out[doc] = ((f"{named} pair(s) naming it were rejected (see the rejected file); " if named else
                         "no Q&A pair is grounded in it; ")
                        + f"add pairs about it to a Q&A file in the --qa-dir folder, with \"doc\": \"{doc}\", or let an "
                        "LLM write them (synthesize.provider: openai, with OPENAI_API_KEY or a local server)")
        else:
            out[doc] = ("every pair the LLM wrote for it was rejected or dropped (see the rejected file); check "
                        "its text in data/interim/pages.jsonl, or lower synthesize.min_grounding")
    return out


def nothing_kept_hint(summary: dict, rejected: str, provider: str) -> str:
    """What a stage that kept no pair says: why its pairs were rejected, where, and what to check."""
    reasons = ", ".join(f"{k}: {v}" for k, v in summary["rejected_by_reason"].items())
    check = ("that the Q&A files in --qa-dir are about these PDFs" if provider == "dataset"
             else "the replies in the rejected file against their chunks")
    return (f"Every pair was rejected ({reasons}); each one, with its reason, is in {rejected}. Check {check}, "
            "or lower synthesize.min_grounding / synthesize.span_min_grounding if the answers are right.")


# --- command: gabarito synthesize --------------------------------------------------------------------
@click.command("synthesize")
@click.option("--pages", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--qa-dir", type=click.Path(exists=True), required=True, help="existing Q&A files (provider dataset)")
@click.option("--prompt", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--ledger", type=click.Path(dir_okay=False), required=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True)
@click.option("--rejected", type=click.Path(dir_okay=False), required=True)
@click.option("--metrics", type=click.Path(dir_okay=False), required=True)
@click.option("--retry-failed", is_flag=True, help="call the API again for chunks whose replies failed before")
@click.option("--no-progress", is_flag=True)
@params_option
@user_errors
def command(pages, qa_dir, prompt, ledger, out, rejected, metrics, retry_failed, no_progress, params_path):
    """Build grounded Portuguese Q&A pairs from PDF text (imported, or written by an LLM).

    Each pair must be supported by its chunk (lexical overlap or a verbatim span); the rest go to
    the rejected file with a reason. LLM replies are kept in a ledger, so a rerun pays nothing twice.

    \b
    Examples:
      dvc repro synthesize
      OPENAI_API_KEY=... dvc exp run -S synthesize.provider=openai
      dvc exp run -S synthesize.retry_failed=true   # ask again chunks whose replies failed validation
    """
    from gabarito import io
    from gabarito.llm import Engine, Ledger, check_failures, retry_advice
    from gabarito.params import load_section

    p = load_section("synthesize", params_path)
    page_records = io.read_jsonl(pages)
    template = Path(prompt).read_text(encoding="utf-8")
    failed: list[dict] = []
    results: dict[str, dict] = {}
    jobs = 0
    with Ledger(ledger) as led:  # locked while open: one writer
        engine = Engine(p.llm, template=template, ledger=led, progress=not no_progress)
        if p.provider == "dataset":
            kept, bad = ground_pairs(load_qa_files(qa_dir), page_records, p.min_grounding)
        else:
            chunks = chunk_pages(page_records, p.chunk_tokens, p.chunk_overlap_tokens)
            jobs = len(chunks)
            # the flag for one run, the param for `dvc repro` / `dvc exp run -S synthesize.retry_failed=true`
            results = engine.run([build_job(c, template, p.pairs_per_chunk) for c in chunks],
                                 retry_failed=retry_failed or p.retry_failed, batch=p.provider == "batch")
            kept, bad, failed = ground_results(chunks, results, page_records, p, where=led.where)
    check_failures("synthesize", failed, jobs, p.llm.max_failure_share, setting="synthesize.llm.max_failure_share",
                   retry=retry_advice("synthesize", results, "chunks"))
    records, bad, summary = finish(kept, bad, page_records, p)
    # the rejects first: when nothing is kept they are what says why
    io.write_jsonl(rejected, bad)
    require_output("synthesize", summary["generated"], summary["kept"], what_in="pairs", what_out="pairs kept",
                   hint=nothing_kept_hint(summary, rejected, p.provider))
    io.write_jsonl(out, records)
    for r in bad:
        if r["reason"].startswith("unknown_doc"):
            log(f"synthesize: {r['source']}: {r['reason']}")
    idle = docs_without_pairs(page_records, records, bad, p.provider)
    for doc, hint in idle.items():
        log(f"synthesize: {doc} yields no pairs: {hint}")
    io.write_json(metrics, {**engine.metrics(), **summary, "docs_without_pairs": idle})
    log(f"synthesize: kept {summary['kept']} pairs ({summary['kept_validation']} in validation), "
        f"{summary['multiple_choice']} multiple-choice items, rejected {len(bad)} -> {out}")
