"""Scoring a model's answers: the answer parser, letter handling and the evaluation modes.

Used by ``evaluate`` (the stage), ``merge`` (its parity check) and ``ask``; no stage logic here, so
the modules that import it rerun only when scoring itself changes.

    from gabarito.scoring import parse_answer, predict, score_letters

Modes (``evaluate.modes``; each scores a model on the exact training prompt):
  letter    one forward pass per item: the logits of the answer-letter tokens after the answer prefix
            ("Alternativa"), softmaxed over the item's own letters (A-D for four options, A-E for
            five). Every item gets an answer and option probabilities.
  loglik    length-normalized log-likelihood of each option's text as the answer (the
            lm-evaluation-harness way); also gives option probabilities.
  generate  batched greedy generation, parsed into one category: a valid letter (one of the item's
            own: A-E for five options), an invented letter (F and beyond there), the text of an option without its letter (mapped when
            unambiguous), several letters, or no answer (explanations, refusals, noise).

Open questions (from PDFs) are scored against the reference by exact match, token F1 and ROUGE-L.
"""

from __future__ import annotations

import re
import unicodedata

from gabarito.io import InputError
from gabarito.items import option_letters
from gabarito.params import EvaluateParams

VALID, OPTION_TEXT, INVENTED, SEVERAL, NONE = "valid", "option_text", "invented_letter", "several_letters", "no_answer"
CATEGORIES = (VALID, OPTION_TEXT, INVENTED, SEVERAL, NONE)
ANSWERED = (VALID, OPTION_TEXT)


# --- parsing free text (generate mode) ---------------------------------------------------------------
def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.findall(r"[a-z0-9]+", text))


# a capital not followed by another letter is a letter ("B", "B)", "B.", but not "Bom")
_CAP = r"[A-Z](?![^\W\d_])"
# more letters hedged after the first: "B ou C", "B ou a C", "B e C", "A/B", "(B), (C)"; capitals
# only, so "Alternativa B e o narrador concorda" stays one answer
_HEDGE = rf"(?:\)?\s*(?:,|/|\bou\b|\be\b|\bor\b|\band\b)\s*(?:(?i:a|o)\s+)?\(?{_CAP}\)?)+"
# small a, e and o are Portuguese words (articles, "and", "or"): "não há alternativa a escolher",
# "alternativa e nenhuma", "a correta é a" cut off by max_new_tokens. One counts as a letter only
# right after the prefix or a colon, with nothing after it but a bracket or a stop ("alternativa: a")
_SMALL_WORDS = "aeo"


def _option_hits(text: str, options: list[str]) -> list[int]:
    """The options whose text ``text`` says, by whole words ("partir" does not say an option "ir")."""
    said = f" {_fold(text)} "
    return [i for i, opt in enumerate(options) if _fold(opt) and
            (f" {_fold(opt)} " in said or (said.strip() and said in f" {_fold(opt)} "))
            and len(said.split()) >= min(3, len(_fold(opt).split()))]


def _hedged(line: str, end: int) -> tuple[list[str], int]:
    """Letters hedged right after position ``end`` ("... B ou C"), and where they stop."""
    tail = re.match(_HEDGE, line[end:])
    if not tail:
        return [], end
    return re.findall(r"(?<![^\W\d_])[A-Z](?![^\W\d_])", tail.group(0)), end + tail.end()


def _option_at_start(text: str, options: list[str]) -> list[int]:
    """The options whose text ``text`` begins with ("C) <text of option B>"), or is the start of."""
    said = _fold(text)
    hits = []
    for i, opt in enumerate(options):
        fo = _fold(opt)
        if fo and said and (said == fo or said.startswith(fo + " ")
                            or (fo.startswith(said + " ") and len(said.split()) >= min(3, len(fo.split())))):
            hits.append(i)
    return hits


def parse_answer(text: str, letters: list[str], answer_prefix: str, options: list[str] | None = None,
                 markers: list[str] | tuple[str, ...] = ()) -> tuple[str | None, str]:
    """(letter or None, category) for one model output; only its first line is read.

    A letter counts after the answer prefix or one of ``markers`` ("Alternativa B", "alternativa: d",
    "Resposta: B", "a correta é a C", "é a alternativa C"), or at the start of the line ("C)",
    "(A)", "B. Porque..."). Several different letters are a hedge. A letter followed by the text of
    another option contradicts itself and counts as several letters too. A capital A, E or O
    followed by a word may be an article: when the words from it on are one option's text, that
    option is the answer. With no letter, the text of exactly one option is that option's answer.
    """
    line = text.strip().split("\n", 1)[0]
    prefix = re.escape(answer_prefix)
    words = "|".join([prefix, *(re.escape(m) for m in markers)])
    said = re.compile(
        rf"\b(?P<marker>(?i:{words}))s?\b\s*(?P<colon>[:=\-\u2013])?\s*"
        rf"(?P<article>(?i:a|o)\s+(?=(?i:{prefix})|{_CAP}|[b-df-np-z](?![^\W\d_])))?"
        rf"(?P<again>(?i:{prefix})s?\s*:?\s*)?\(?(?:(?P<cap>{_CAP})|(?P<small>[a-z])(?![^\W\d_]))")
    found, end, start = [], 0, None
    for m in said.finditer(line):
        small = m.group("small")
        if small is not None and small in _SMALL_WORDS and not (
                m.group("article") is None
                and (m.group("colon") or m.group("again") or re.fullmatch(prefix, m.group("marker"), re.I))
                and re.match(r"\)|[.:;!?]?\s*$", line[m.end():])):
            continue
        found.append(m.group("cap") or small)
        start = m.start("cap") if m.group("cap") else m.start("small")
        more, end = _hedged(line, m.end())
        found += more
    if not found:
        lead = re.match(rf"\s*\(?(?:([A-Z])|([a-z])(?=\)))(?:\)|[.:](?=\s|$)|\s*$|(?={_HEDGE}))", line)
        if lead:
            more, end = _hedged(line, lead.end())
            found = [lead.group(1) or lead.group(2), *more]
    distinct = sorted({f.upper() for f in found})
    if len(distinct) > 1:
        return None, SEVERAL
    if distinct:
        letter = distinct[0]
        if options and start is not None and letter in "AEO" and re.match(r"[A-Z]\s+[a-zà-ÿ]", line[start:]):
            # "Resposta: A casa": the article of option text "A casa"?
            as_text = _option_hits(line[start:], options)
            if len(as_text) == 1:
                return (letter, VALID) if letters[as_text[0]] == letter else (letters[as_text[0]], OPTION_TEXT)
        if letter not in letters:
            return None, INVENTED
        named = _option_at_start(line[end:].lstrip(" )].:;,-\u2013"), options) if options else []
        if len(named) == 1 and letters[named[0]] != letter:
            return None, SEVERAL  # "C) <the text of option B>": two answers in one
        return letter, VALID
    if options:
        hits = _option_hits(line, options)
        if len(hits) == 1:
            return letters[hits[0]], OPTION_TEXT
    return None, NONE



# --- open questions ------------------------------------------------------------------------------------
def _tokens(text: str) -> list[str]:
    return _fold(text).split()


def exact_match(pred: str, ref: str) -> float:
    return float(_tokens(pred) == _tokens(ref))


def token_f1(pred: str, ref: str) -> float:
    from collections import Counter

    p, r = _tokens(pred), _tokens(ref)
    common = sum((Counter(p) & Counter(r)).values())
    if not p or not r or not common:
        return float(p == r)
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def rouge_l(pred: str, ref: str) -> float:
    """ROUGE-L F-measure from the longest common subsequence of tokens."""
    p, r = _tokens(pred), _tokens(ref)
    if not p or not r:
        return float(p == r)
    prev = [0] * (len(r) + 1)
    for tp in p:
        cur = [0]
        for j, tr in enumerate(r, 1):
            cur.append(prev[j - 1] + 1 if tp == tr else max(prev[j], cur[j - 1]))
        prev = cur
    lcs = prev[-1]
    if not lcs:
        return 0.0
    precision, recall = lcs / len(p), lcs / len(r)
    return 2 * precision * recall / (precision + recall)

# --- guard rail: the prompt scored is the prompt trained on ---------------------------------------
def check_prompts(records: list[dict], tokenizer) -> None:
    """The evaluation prompt must be the training prompt up to the answer, byte for byte."""
    from gabarito.chat import split_prompt_completion

    for rec in records:
        prompt, completion = split_prompt_completion(tokenizer, rec["messages"])
        if prompt != rec["prompt"] or completion != rec["completion"]:
            raise InputError(f"validation item {rec['id']}: its prompt differs from what the base tokenizer's chat "
                             "template renders now; rerun the format stage (`dvc repro format`).")

# --- model scoring -----------------------------------------------------------------------------------
def letter_token_ids(tokenizer, answer_prefix: str, letters: list[str]) -> tuple[list[int], list[int]]:
    """(tokens of the answer prefix, one token per letter) as the template's answers tokenize."""
    variants = [tokenizer(f"{answer_prefix} {letter}", add_special_tokens=False)["input_ids"] for letter in letters]
    common = 0
    while all(len(v) > common for v in variants) and len({v[common] for v in variants}) == 1:
        common += 1
    if any(len(v) != common + 1 for v in variants) or len({v[common] for v in variants}) != len(letters):
        raise InputError(f"the tokenizer does not give each answer letter a single token after '{answer_prefix}'; "
                         "use evaluate.modes loglik or generate with this model.")
    return variants[0][:common], [v[common] for v in variants]


def _batches(n: int, size: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(range(0, n, size), desc=desc, unit="batch", leave=False)


def _left_pad(seqs: list[list[int]], pad_id: int):
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, width - len(s):] = torch.tensor(s)
        mask[i, width - len(s):] = 1
    return ids, mask


def score_letters(model, tokenizer, prompts: list[str], *, answer_prefix: str, letters: list[str],
                  batch_size: int, counts: list[int] | None = None) -> list[list[float]]:
    """Probabilities of each item's letters, from one forward pass per item.

    ``letters`` is the alphabet (``format.letters``); item i has ``counts[i]`` options (default: every
    letter) and its probabilities are a softmax over the first ``counts[i]`` letters' logits only, so
    a four-option item gives no weight to "E". Letter tokens are looked up once, for as many letters
    as the largest item needs: a tokenizer without a single token for "J" still scores A-E items.
    """
    import torch

    counts = list(counts) if counts is not None else [len(letters)] * len(prompts)
    if len(counts) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(counts)} option counts")
    if not prompts:
        return []
    prefix_ids, letter_ids = letter_token_ids(tokenizer, answer_prefix, list(letters[:max(counts)]))
    # one call tokenizes the whole list (the same ids as one prompt at a time; fewer Python round trips)
    seqs = [ids + prefix_ids for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]]
    # batches of similar length waste less on padding; results go back in the original order
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    device = next(model.parameters()).device
    probs: list[list[float] | None] = [None] * len(seqs)
    for start in _batches(len(seqs), batch_size, "letter"):
        idx = order[start:start + batch_size]
        ids, mask = _left_pad([seqs[i] for i in idx], tokenizer.pad_token_id)
        with torch.no_grad():
            # only the last position's logits are needed: skip the vocabulary projection elsewhere. No KV
            # cache: nothing is generated after this pass, and the cache copies every layer's keys and
            # values and holds them to the end of the forward (~1.7 GB at batch 32 x 400 tokens on a 7B)
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), logits_to_keep=1,
                           use_cache=False).logits[:, -1, :]
        # rows with the same option count share one softmax over their first n letters
        for n in sorted({counts[i] for i in idx}):
            rows = [j for j, i in enumerate(idx) if counts[i] == n]
            sub = logits[rows][:, letter_ids[:n]].float()
            for j, row in zip(rows, torch.softmax(sub, dim=-1).tolist()):
                probs[idx[j]] = row
    return probs


def score_loglik(model, tokenizer, prompts: list[str], options: list[list[str]], *, batch_size: int) -> list[list[float]]:
    """Softmax over options of the mean per-token log-likelihood of each option's text."""
    import torch

    pairs = []
    for prompt, opts in zip(prompts, options, strict=True):
        ctx = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        for opt in opts:
            cont = tokenizer(opt, add_special_tokens=False)["input_ids"] or [tokenizer.eos_token_id]
            pairs.append((ctx, cont))
    device = next(model.parameters()).device
    means: list[float] = []
    for start in _batches(len(pairs), batch_size, "loglik"):
        chunk = pairs[start:start + batch_size]
        ids, mask = _left_pad([c + o for c, o in chunk], tokenizer.pad_token_id)
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float(), -1)
        width = ids.shape[1]
        for i, (_, cont) in enumerate(chunk):
            pos = torch.arange(width - len(cont), width)
            target = ids[i, pos].to(device)
            means.append(logp[i, pos - 1, target].mean().item())
    out, at = [], 0
    for opts in options:  # each item has its own number of options
        scores = torch.tensor(means[at:at + len(opts)])
        out.append(torch.softmax(scores, dim=0).tolist())
        at += len(opts)
    return out


def generate(model, tokenizer, prompts: list[str], *, max_new_tokens: int, batch_size: int) -> list[str]:
    """Greedy, batched, left-padded generation; returns only the new text of each prompt."""
    import torch

    tokenizer.padding_side = "left"
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    outputs: list[str | None] = [None] * len(prompts)
    device = next(model.parameters()).device
    for start in _batches(len(prompts), batch_size, "generate"):
        idx = order[start:start + batch_size]
        enc = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True,
                        add_special_tokens=False).to(device)
        with torch.no_grad():
            # the parser reads the first line only: stop at a newline as well as at EOS
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, stop_strings=["\n"],
                                 tokenizer=tokenizer, eos_token_id=tokenizer.eos_token_id,
                                 pad_token_id=tokenizer.pad_token_id)
        for i, text in zip(idx, tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)):
            outputs[i] = text
    return outputs


def item_letters(rec: dict, alphabet: list[str]) -> list[str]:
    """The letters of one multiple-choice record: the first n of the alphabet for n options."""
    return option_letters(len(rec["answers"]), alphabet)


def predict(model, tokenizer, records: list[dict], mode: str, p: EvaluateParams, *, letters: list[str],
            answer_prefix: str, name: str) -> list[dict]:
    """Per-item predictions of one model in one mode. ``letters`` is the alphabet (``format.letters``);
    each item answers with its own first n letters."""
    prompts = [r["prompt"] for r in records]
    own = [item_letters(r, letters) for r in records]
    preds = []
    if mode in ("letter", "loglik"):
        if mode == "letter":
            probs = score_letters(model, tokenizer, prompts, answer_prefix=answer_prefix, letters=letters,
                                  batch_size=p.batch_size, counts=[len(x) for x in own])
        else:
            probs = score_loglik(model, tokenizer, prompts, [r["answers"] for r in records], batch_size=p.batch_size)
        for rec, pr, lets in zip(records, probs, own, strict=True):
            choice = max(range(len(pr)), key=lambda i: (pr[i], -i))
            preds.append({"id": rec["id"], "model": name, "mode": mode, "output": lets[choice],
                          "category": VALID, "prediction": lets[choice], "label": lets[rec["label"]],
                          "correct": choice == rec["label"], "probs": [round(x, 6) for x in pr]})
    else:
        outputs = generate(model, tokenizer, prompts, max_new_tokens=p.max_new_tokens, batch_size=p.batch_size)
        for rec, out, lets in zip(records, outputs, own, strict=True):
            letter, category = parse_answer(out, lets, answer_prefix, rec["answers"], p.answer_markers)
            preds.append({"id": rec["id"], "model": name, "mode": mode, "output": out, "category": category,
                          "prediction": letter, "label": lets[rec["label"]],
                          "correct": letter is not None and lets.index(letter) == rec["label"]})
    return preds
