"""The answer key at work: ask the fine-tuned model one multiple-choice question.

    gabarito ask --base models/base --adapter models/adapter --prompts prompts/chat.v1.yaml

The question is put to the model exactly as evaluation puts it: the same chat messages
(``gabarito.chat.mcq_messages``), cut at the assistant turn by the same function the format stage
uses, and scored in ``letter`` mode (one forward pass; the probabilities of the answer letters
after the answer prefix, "Alternativa"). So the answer here is the answer ``evaluate`` would
count, with its probabilities.

A question can be typed or pasted as a small block of text (``parse_block``)::

    Contexto: Fui ao mercado de manhã, mas estava fechado.
    Pergunta: Por que a pessoa voltou para casa?
    A) O mercado estava fechado.
    B) Começou a chover.
    C) Esqueceu a carteira.
    D) Nenhuma das alternativas acima.

A question has 2 to 10 options (one letter of ``format.letters`` each, from A, in order): an ENEM
question's A) to E), a true/false's A) and B). ``Context:`` / ``Question:`` work too; a context may run
over several lines, and may be left out. A file may hold several blocks separated by a line of
``---`` (``parse_blocks``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Sequence, TextIO

import click

from gabarito.clikit import params_option, user_errors
from gabarito.io import InputError
from gabarito.items import MIN_OPTIONS, option_letters
from gabarito.params import FormatParams, QuantizationParams

# labels a person may type, folded to lower case; Portuguese first, as the prompts are
CONTEXT_LABELS = ("contexto", "context")
QUESTION_LABELS = ("pergunta", "question")
LABEL = re.compile(r"^\s*([A-Za-zÀ-ÿ]+)\s*:\s?(.*)$")
# "A) text", "A. text", "(A) text"; "a) text" too, as people type it
OPTION = re.compile(r"^\s*\(?([A-Za-z])[\).]\s*(.*)$")
SEPARATOR = "---"
# format.letters' default, for callers without params (the command passes params.yaml's)
LETTERS = tuple(FormatParams().letters)
BAR_WIDTH = 20  # characters of a 100% bar in ``render``
OPTION_WIDTH = 60  # option text shown in ``render``'s table before it is cut with "…"


# --- load ----------------------------------------------------------------------------------------
def load(base: str | Path, adapter: str | Path | None, q: QuantizationParams, cpu_kernel: str = "portable"):
    """(model, tokenizer): the 4-bit base as training and evaluation load it, plus the LoRA adapter
    (``None``: the base alone), in eval mode. ``q`` is ``train.quantization``; ``cpu_kernel`` is
    ``evaluate.cpu_4bit_kernel``, so an answer here is the one evaluate scored."""
    from gabarito.modeling import check_adapter, load_4bit, load_tokenizer

    if adapter is not None:
        check_adapter(adapter)
    tokenizer = load_tokenizer(base)
    model = load_4bit(base, q, cpu_kernel=cpu_kernel)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    model.eval()
    return model, tokenizer


# --- one question ------------------------------------------------------------------------------
def check_question(*, context: str, question: str, options: Sequence[str], letters: Sequence[str]) -> None:
    """Raise InputError naming what to fix: the question, the number of options, or an empty option.
    ``letters``: ``format.letters``; a question with n options uses the first n."""
    if not isinstance(context, str):
        raise InputError(f"the context must be text, got {type(context).__name__}.")
    if not isinstance(question, str) or not question.strip():
        raise InputError("the question is empty: write it after 'Pergunta:'.")
    if not MIN_OPTIONS <= len(options) <= len(letters):
        raise InputError(f"expected {MIN_OPTIONS} to {len(letters)} options ({letters[0]} to {letters[-1]}, one "
                         f"--option each, in order), got {len(options)}.")
    empty = [letter for letter, opt in zip(letters, options) if not isinstance(opt, str) or not opt.strip()]
    if empty:
        raise InputError(f"option(s) {', '.join(empty)} empty: every option needs its text.")


def build_prompt(tokenizer, *, context: str, question: str, options: Sequence[str], prompts: dict[str, str],
                 letters: Sequence[str], answer_prefix: str) -> str:
    """The evaluation (and training) prompt for one question, up to where the answer starts."""
    from gabarito.chat import mcq_messages, split_prompt_completion
    from gabarito.items import normalize_text

    context = context or ""  # no context is allowed: the prompt then has no context line
    check_question(context=context, question=question, options=options, letters=letters)
    # the text as the clean stage left the training and validation items: NFC (a macOS paste is NFD),
    # spaces folded, no-break spaces and junk characters gone; else the model reads other tokens.
    # Label 0 only fills the assistant turn, which split_prompt_completion cuts off
    rec = {"context": normalize_text(context), "question": normalize_text(question),
           "answers": [normalize_text(o) for o in options], "label": 0}
    prompt, _ = split_prompt_completion(tokenizer, mcq_messages(rec, prompts, list(letters), answer_prefix))
    return prompt


def answer(model, tokenizer, *, context: str, question: str, options: list[str], prompts: dict[str, str],
           letters: Sequence[str], answer_prefix: str) -> dict:
    """The model's answer: {"letter", "index", "option", "probabilities": {letter: p}} (letter mode),
    over the question's own letters (the first len(options) of ``letters``)."""
    from gabarito.scoring import score_letters

    prompt = build_prompt(tokenizer, context=context, question=question, options=options, prompts=prompts,
                          letters=letters, answer_prefix=answer_prefix)
    letters = option_letters(len(options), list(letters))
    probs = score_letters(model, tokenizer, [prompt], answer_prefix=answer_prefix, letters=letters,
                          batch_size=1)[0]
    # ties go to the earlier letter, as scoring.predict breaks them
    index = max(range(len(probs)), key=lambda i: (probs[i], -i))
    return {"letter": letters[index], "index": index, "option": options[index].strip(),
            "probabilities": dict(zip(letters, probs))}


def questions_given(*, context: str, question: str | None, options: Sequence[str], blocks: TextIO | None,
                    letters: Sequence[str]) -> list[dict] | None:
    """The questions of one ``gabarito ask`` call: the one given by --question/--option, else the
    blocks read from ``blocks`` (--file, read only then), else None (interactive). Each is checked
    before any model loads."""
    if question is not None or options:
        item = {"context": context, "question": question or "", "options": list(options)}
        check_question(letters=letters, **item)
        return [item]
    if blocks is not None:
        return parse_blocks(blocks.read(), letters)
    return None


# --- text blocks ---------------------------------------------------------------------------------
def parse_block(text: str, letters: Sequence[str] = LETTERS) -> dict:
    """{"context", "question", "options"} from a block a person typed (see the module docstring).

    Lines that start no new part continue the one before, so a context can span paragraphs. Option
    lines count only after the question, so a context line like "A. Lincoln disse..." stays context,
    and other letters than the first (A) only after the first option, so a question's items "I.", "V."
    stay question. The options are the first n letters, in order, 2 <= n <= len(letters).
    """
    parts: dict[str, list[str]] = {}
    options: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        label = LABEL.match(line)
        key = label.group(1).casefold() if label else None
        option = OPTION.match(line) if "question" in parts else None
        letter = option.group(1).upper() if option else None
        if letter != letters[0] and not options:
            # before the first option, a list inside the question ("I. ...", "V. ...") is question text
            letter = None
        if key in CONTEXT_LABELS or key in QUESTION_LABELS:
            part = "context" if key in CONTEXT_LABELS else "question"
            if part in parts:
                raise InputError(f"'{label.group(1)}:' appears twice; write one question per block "
                                 f"(separate blocks with a line '{SEPARATOR}').")
            if part == "context" and "question" in parts:
                raise InputError("'Contexto:' must come before 'Pergunta:'.")
            current = parts[part] = [label.group(2)]
        elif letter is not None:
            if letter not in letters:
                raise InputError(f"option {letter}) is not one of {', '.join(letters)}: a question has "
                                 f"{MIN_OPTIONS} to {len(letters)} options, lettered from {letters[0]}.")
            if letter in options:
                raise InputError(f"option {letter}) appears twice.")
            current = options[letter] = [option.group(2)]
        elif current is not None:
            current.append(line.strip())  # indentation of pasted text is layout, not content
        elif line.strip():
            raise InputError(f"unexpected text before 'Contexto:' or 'Pergunta:': {line.strip()[:60]!r}. "
                             "Start the block with 'Contexto: ...' (optional) and 'Pergunta: ...'.")
    if "question" not in parts:
        raise InputError("no question: add a line 'Pergunta: ...' (or 'Question: ...') after the context.")
    # the options given are the first n letters: every letter up to the last one given is needed
    last = max((letters.index(letter) for letter in options), default=-1)
    wanted = list(letters[:max(last + 1, MIN_OPTIONS)])
    missing = [letter for letter in wanted if letter not in options]
    if missing:
        raise InputError(f"missing option(s) {', '.join(f'{m})' for m in missing)}: write one line per option "
                         f"after the question, from {letters[0]}) in order ({MIN_OPTIONS} to {len(letters)} options).")
    order = list(options)
    if order != wanted:
        raise InputError(f"options out of order ({', '.join(order)}): write them {', '.join(wanted)}.")
    result = {"context": "\n".join(parts.get("context", [])).strip(),
              "question": "\n".join(parts["question"]).strip(),
              "options": ["\n".join(options[letter]).strip() for letter in wanted]}
    check_question(**result, letters=letters)
    return result


def parse_blocks(text: str, letters: Sequence[str] = LETTERS) -> list[dict]:
    """Every block of a file, blocks separated by a line of ``---``; an error names the block."""
    chunks, current = [], []
    for line in text.splitlines():
        if line.strip() == SEPARATOR:
            chunks.append(current)
            current = []
        else:
            current.append(line)
    chunks.append(current)
    out = []
    for n, chunk in enumerate(chunks, 1):
        if not any(line.strip() for line in chunk):
            continue
        try:
            out.append(parse_block("\n".join(chunk), letters))
        except InputError as exc:
            raise InputError(f"question {n}: {exc}") from None
    if not out:
        raise InputError(f"no question found: write 'Pergunta: ...' and {MIN_OPTIONS} to {len(letters)} options, "
                         f"{letters[0]}), {letters[1]}), ... one per line.")
    return out


def format_block(context: str, question: str, options: Sequence[str], letters: Sequence[str] = LETTERS) -> str:
    """The text block ``parse_block`` reads (Portuguese labels, as the prompts use)."""
    lines = [f"Contexto: {context}"] if context else []
    lines.append(f"Pergunta: {question}")
    lines += [f"{letter}) {opt}" for letter, opt in zip(option_letters(len(options), letters), options, strict=True)]
    return "\n".join(lines) + "\n"


# --- output ----------------------------------------------------------------------------------------
def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def render(result: dict, options: Sequence[str], letters: Sequence[str]) -> str:
    """The chosen letter and option, then every option with its probability and a bar."""
    probs = result["probabilities"]
    letters = option_letters(len(options), list(letters))
    lines = [f"Answer: {result['letter']}) {' '.join(result['option'].split())}  "
             f"({probs[result['letter']]:.1%})", ""]
    width = min(OPTION_WIDTH, max(len(" ".join(o.split())) for o in options))
    for letter, opt in zip(letters, options, strict=True):
        p = probs[letter]
        mark = ">" if letter == result["letter"] else " "
        bar = "█" * round(p * BAR_WIDTH)
        lines.append(f"{mark} {letter}) {_cut(opt, width):<{width}}  {p:6.1%}  {bar}")
    return "\n".join(lines) + "\n"


def as_json_line(item: dict, result: dict) -> str:
    """``--json``'s line for one question: the question and its answer, keys sorted."""
    return json.dumps({**item, **result}, ensure_ascii=False, sort_keys=True)


def read_options(letters: Sequence[str]) -> list[str]:
    """Options typed one per letter until an empty one (after at least MIN_OPTIONS) or the last letter."""
    opts: list[str] = []
    while len(opts) < len(letters):
        opt = click.prompt(f"{letters[len(opts)]})", default="", show_default=False, err=True)
        if opt.strip():
            opts.append(opt)
        elif len(opts) >= MIN_OPTIONS:
            break
        else:
            click.echo(f"A question needs at least {MIN_OPTIONS} options.", err=True)
    return opts


# --- command: gabarito ask ---
@click.command("ask")
@click.option("--base", type=click.Path(file_okay=False), default="models/base", show_default=True)
@click.option("--adapter", type=click.Path(file_okay=False), default="models/adapter", show_default=True)
@click.option("--no-adapter", is_flag=True, help="ask the base model alone")
@click.option("--prompts", type=click.Path(dir_okay=False, exists=True), default="prompts/chat.v1.yaml",
              show_default=True)
@click.option("--context", default="", help="the text the question is about")
@click.option("--question", default=None)
@click.option("--option", "options", multiple=True,
              help="an answer option; 2 to 10 of them, in order (A, B, C...)")
@click.option("--file", "file_", type=click.File("r", encoding="utf-8-sig"), default=None,
              help="questions in the block format, separated by '---' lines ('-': standard input)")
@click.option("--json", "as_json", is_flag=True, help="one JSON line per question")
@params_option
@user_errors
def command(base, adapter, no_adapter, prompts, context, question, options, file_, as_json, params_path):
    """The answer key: the fine-tuned model picks one option of a question, with each option's probability.

    Give one question with --question and 2 to 10 --option (A, B, C... in order), a file of questions
    with --file, or nothing to type them in (an empty option ends the options, an empty question
    ends). The prompt is exactly the one the model was trained and evaluated on; the letter is scored
    in one forward pass (letter mode).

    \b
    Examples:
      gabarito ask --context "Fui ao mercado comprar pão." --question "Por que fui ao mercado?" \\
          --option "Para comprar pão." --option "Para vender o carro." --option "Para trabalhar." \\
          --option "Nenhuma das alternativas."
      gabarito ask --question "Qual é a capital do Brasil?" --option Salvador --option Brasília \\
          --option Recife --option Manaus --option Belém              # five options, A-E
      gabarito ask --file questions.txt          # Contexto: / Pergunta: / A) ... E) blocks
      gabarito ask                               # interactive
    """
    import warnings

    from gabarito.chat import load_prompts
    from gabarito.modeling import seed_everything
    from gabarito.params import load_all

    # libraries' deprecation notices are for developers; a person asking a question sees the answer
    warnings.filterwarnings("ignore", category=FutureWarning)

    params = load_all(params_path)
    fmt, e = params["format"], params["evaluate"]
    letters = fmt.letters
    items = questions_given(context=context, question=question, options=options,
                            blocks=file_, letters=letters)
    if not Path(base).is_dir():
        raise InputError(f"{base}: no base model here. Run `dvc repro` (or `dvc pull`) first.")
    pr = load_prompts(prompts)  # before the model: a bad file should not cost a 7B load first
    seed_everything(e.seed, e.torch_threads)
    model, tokenizer = load(base, None if no_adapter else adapter, params["train"].quantization,
                            e.cpu_4bit_kernel)

    def one(item: dict) -> None:
        result = answer(model, tokenizer, prompts=pr, letters=letters, answer_prefix=fmt.answer_prefix, **item)
        click.echo(as_json_line(item, result) if as_json else render(result, item["options"], letters))

    if items is not None:
        for item in items:
            one(item)
        return
    click.echo(f"Type a question (empty question: quit), then {MIN_OPTIONS} to {len(letters)} options "
               f"({letters[0]}, {letters[1]}, ...; an empty option ends them).", err=True)
    while True:
        ctx = click.prompt("Contexto (optional)", default="", show_default=False, err=True)
        q = click.prompt("Pergunta", default="", show_default=False, err=True)
        if not q.strip():
            return
        opts = read_options(letters)
        try:
            one({"context": ctx, "question": q, "options": opts})
        except InputError as exc:  # a typo in one question does not end the session
            click.echo(f"Error: {exc}", err=True)
