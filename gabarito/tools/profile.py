"""Profiles: a profile lists only the params that differ from the shipped (offline) ones.

    gabarito profile thesis     # make profile PROFILE=thesis: params.yaml gets profiles/thesis.yaml's values
    gabarito profile offline    # make profile PROFILE=offline: back to the shipped values

The shipped values live in one place: the defaults of ``gabarito/params.py``'s typed sections, which
equal params.yaml as shipped (tests/unit/test_params.py checks every key). A profile is an overlay
on them: ``profiles/NAME.yaml`` holds a few nested keys (``train: {lora: {lora_alpha: 16}}``), and
``offline`` is the empty overlay (no file). Applying one computes defaults + overlay, validates it
as every stage will (an unknown key is an error with "did you mean"), and writes it into the
current params.yaml.

Trade-off: params.yaml is rewritten line by line, not dumped from a dict. PyYAML (the only YAML
library installed) drops comments when it writes, and params.yaml's comments are its documentation.
So each value that changes is replaced in place, in the form ``render`` gives; the ``# profile: NAME``
line says which profile is applied. A comment describes the value beside it, so it travels with it: a
value the profile changes gets the comment the profile's file has on that key's line (at that column),
or none (the old one would contradict it). ``profiles/offline.comments.yml`` holds params.yaml's lines
for the keys the profiles set, so switching back to ``offline`` writes their shipped comments again. Every value in
the shipped params.yaml is written as ``render`` writes it, so ``thesis`` then ``offline`` gives back
the shipped file byte for byte.

A profile changes the model, never the user's data: the keys of ``DATA_KEYS`` keep the values
params.yaml has now, whatever profile is applied (``offline`` too), and a profile file that sets one
is refused. The rewrite handles the block style params.yaml uses (one ``key: value``
per line, lists and mappings in flow style); anything else is refused with the line named.

No stage imports this module: editing it reruns nothing.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import BaseModel

from gabarito import io
from gabarito.clikit import log, params_option, user_errors
from gabarito.io import InputError
from gabarito.params import SECTIONS, check_sections, parse_section

_MISSING = object()
OFFLINE = "offline"  # the shipped params: the typed defaults, no overlay file
OFFLINE_NOTES = "offline.comments.yml"  # ... and its comments, which switching back to it writes again
PROFILE_LINE = re.compile(r"^# profile: (\S+)(.*)$", re.M)
KEY_LINE = re.compile(r"^( *)([A-Za-z_][A-Za-z0-9_]*):(?=\s|$)(.*)$")

# The user's data: which items there are, where they live and how they are split. A profile sets model,
# training and evaluation knobs; applying one (offline too) keeps params.yaml's current value of every
# key under these paths, and a profile file that sets one is refused. Switching to a bigger model must
# not drop the exams someone added to mcq.sources (issue 22). ingest.source, hub_id and hub_revision
# stay profile knobs: they pick which copy of Cosmos QA trains the model (the bundled sample or the
# full hub dataset), the scale a profile is about; ingest.urls and ingest.splits are the user's copy.
DATA_KEYS: tuple[tuple[str, ...], ...] = (
    ("mcq",),                               # your own multiple-choice sources, their language and split
    ("exams",),                             # your exam PDFs + keys: language, split, subjects, how they read
    ("ingest", "urls"),                     # your Cosmos QA files (source: url)
    ("ingest", "splits"),                   # which splits are read
    ("translate", "dataset_hub_id"),        # a published Portuguese Cosmos QA instead of the bundled one
    ("translate", "dataset_hub_revision"),
)


def is_data(path: tuple[str, ...]) -> bool:
    """True for a key path at or under one of ``DATA_KEYS``."""
    return any(path[:len(key)] == key for key in DATA_KEYS)


# --- the values of a profile ---------------------------------------------------------------------
def _branches(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """The fields of a section that are sections themselves (``train.lora``), by name."""
    out = {}
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out[name] = ann
    return out


def defaults() -> dict[str, dict]:
    """The shipped params as plain data: every section built from its defaults."""
    return {name: model().model_dump(mode="json") for name, model in SECTIONS.items()}


def _overlay(base: dict, over: dict, model: type[BaseModel] | None) -> dict:
    """``base`` with ``over``'s keys; nested sections merge key by key, any other value is replaced whole
    (``train.lora.target_modules`` given in a profile is the whole list)."""
    out = dict(base)
    branches = _branches(model) if model is not None else {}
    for key, value in over.items():
        if key in branches and isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = _overlay(base[key], value, branches[key])
        else:
            out[key] = value
    return out


def _refuse_data(overlay: dict, source: str, prefix: tuple = ()) -> None:
    """An InputError naming the first data key (``DATA_KEYS``) that ``overlay`` sets."""
    for key, value in overlay.items():
        path = (*prefix, str(key))
        if is_data(path) and (len(path) > 1 or not isinstance(value, dict) or not value):  # name the key, not "mcq"
            raise InputError(f"{source}: sets '{'.'.join(path)}', which is your data, not a model knob: a profile "
                             "never changes sources, exams or splits (they keep params.yaml's values). Remove it "
                             "from the profile and set it in params.yaml.")
        if isinstance(value, dict):
            _refuse_data(value, source, path)


def keep_data(params: dict[str, dict], current: Any, source: str = "params.yaml") -> dict[str, dict]:
    """``params`` with every data key (``DATA_KEYS``) set to its value in ``current`` (params.yaml as it
    is now) where that has the key; the sections changed are validated again."""
    out = copy.deepcopy(params)
    touched = set()
    for path in _leaves(params, None):
        if not is_data(path):
            continue
        node = current
        for key in path:
            node = node.get(key, _MISSING) if isinstance(node, dict) else _MISSING
        if node is _MISSING:
            continue
        parent = out
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = node
        touched.add(path[0])
    for name in touched:
        parse_section(name, out[name], source)
    return out


def merge_profile(overlay: Any, source: str) -> dict[str, dict]:
    """The full params of a profile: the shipped values with ``overlay`` on top, validated as the stages
    load them. An unknown section or key is an InputError naming it, with the closest valid name."""
    if overlay is None:
        overlay = {}
    check_sections(overlay, source)
    _refuse_data(overlay, source)
    base = defaults()
    merged = {}
    for name, model in SECTIONS.items():
        over = overlay.get(name)
        if over is not None and not isinstance(over, dict):
            raise InputError(f"{source}: section '{name}' must be a mapping of keys, got {over!r}.")
        merged[name] = _overlay(base[name], over or {}, model)
        parse_section(name, merged[name], source)  # raises with "did you mean" for a misspelled key
    return merged


def load_profile(name: str, profiles_dir: str | Path = "profiles") -> dict[str, dict]:
    """The full params of profile ``name``: ``offline`` is the shipped values, any other name the
    overlay in ``profiles_dir/NAME.yaml`` on top of them."""
    path = Path(profiles_dir) / f"{name}.yaml"
    if not path.is_file():
        if name == OFFLINE:
            return merge_profile({}, "the shipped params")
        known = sorted({OFFLINE, *(p.stem for p in Path(profiles_dir).glob("*.yaml"))})
        close = difflib.get_close_matches(name, known, n=1)
        raise InputError(f"no profile '{name}' ({path} not found)"
                         + (f"; did you mean '{close[0]}'?" if close else "")
                         + f" Profiles: {', '.join(known)}.")
    try:
        overlay = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from None
    return merge_profile(overlay, str(path))


# --- writing them into params.yaml ---------------------------------------------------------------
def render(value: Any) -> str:
    """One value as params.yaml writes it: YAML flow style on one line (``[a, b]``, ``{}``, ``null``,
    ``0.003``, ``6.0``); a text that reads like a command-line flag keeps double quotes."""
    if isinstance(value, str) and value.startswith("-"):
        return json.dumps(value, ensure_ascii=False)
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=float("inf"))
    return text.removesuffix("\n...\n").removesuffix("\n")


def _same(a: Any, b: Any) -> bool:
    """Equal as params: 60 and 60.0 are, True and 1 are not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _split_comment(rest: str) -> tuple[str, str]:
    """``"  16   # why"`` -> (``"16"``, ``"   # why"``): the value, and what follows it on the line."""
    cuts = [m.start() for m in re.finditer(r"\s#", rest)] + [len(rest)]
    whole = yaml.safe_load(f"k:{rest}")["k"]
    for cut in cuts:
        try:
            value = yaml.safe_load(f"k:{rest[:cut]}")
        except yaml.YAMLError:
            continue
        if isinstance(value, dict) and _same(value.get("k"), whole):
            return rest[:cut].strip(), rest[cut:]
    raise ValueError(rest)


def _leaves(data: dict, model: type[BaseModel] | None, prefix: tuple = ()) -> dict[tuple, Any]:
    """{("train", "lora", "r"): 16, ...}: the values of full params, by key path."""
    out = {}
    branches = _branches(model) if model is not None else {}
    for key, value in data.items():
        path = (*prefix, key)
        if model is None:  # the top level: every key is a section
            out.update(_leaves(value, SECTIONS[key], path))
        elif key in branches:
            out.update(_leaves(value, branches[key], path))
        else:
            out[path] = value
    return out


def _diff(a: dict, b: dict) -> list[str]:
    la, lb = _leaves(a, None), _leaves(b, None)
    return [".".join(k) for k in sorted(set(la) | set(lb)) if k not in la or k not in lb or not _same(la[k], lb[k])]


def _key_lines(lines: list[str], source: str) -> dict[tuple, int]:
    """{key path: line index} of every ``key: value`` line (a key with no value opens a mapping). A line of
    another form is an InputError naming it."""
    stack: list[tuple[int, str]] = []
    where: dict[tuple, int] = {}
    for i, line in enumerate(lines):
        body = line.rstrip("\r\n")
        if not body.strip() or body.lstrip().startswith("#"):
            continue
        m = KEY_LINE.match(body)
        if not m:
            raise InputError(f"{source}:{i + 1}: expected 'key: value' on one line; `make profile` edits "
                             f"params.yaml line by line (lists in flow style: [a, b]). Got: {body.strip()[:60]!r}")
        indent, key, rest = len(m.group(1)), m.group(2), m.group(3)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = (*(k for _, k in stack), key)
        try:
            value_text, _ = _split_comment(rest)
        except (yaml.YAMLError, ValueError):
            raise InputError(f"{source}:{i + 1}: cannot read the value of '{'.'.join(path)}'.") from None
        if value_text:
            where[path] = i
        else:
            stack.append((indent, key))
    return where


def comments(text: str, source: str) -> dict[tuple, tuple[int, str]]:
    """{key path: (column, comment)} of the values in ``text`` (a profile file) that have a comment on
    their line: the comment a value carries into params.yaml."""
    lines = text.splitlines()
    out = {}
    for path, i in _key_lines(lines, source).items():
        _, after = _split_comment(KEY_LINE.match(lines[i]).group(3))
        if after.strip():
            out[path] = (len(lines[i]) - len(after.lstrip()), after.strip())
    return out


def rewrite(text: str, params: dict[str, dict], *, profile: str, source: str = "params.yaml",
            notes: dict[tuple, tuple[int, str]] | None = None) -> tuple[str, list[str]]:
    """``text`` (a params.yaml) with every value set to ``params``' and its ``# profile:`` line naming
    ``profile``; order and layout stay. Returns the new text and the keys whose value changed.

    Each value that changes is written with ``render`` and the comment ``notes`` gives for its key (at
    that column when the value fits before it, else one space after it), or none: the comment that
    described the old value goes with it. Unchanged values keep their line. A key of ``params`` with no
    line in ``text`` is an InputError naming it.
    """
    notes = notes or {}
    lines = text.splitlines(keepends=True)
    where = _key_lines(lines, source)
    changed = []
    for path, value in _leaves(params, None).items():
        if path not in where:
            parent = ".".join(path[:-1])
            raise InputError(f"{source}: no line for '{'.'.join(path)}'. Add `{path[-1]}: {render(value)}` under "
                             f"'{parent}' (params.yaml spells out every key), then run this again.")
        i = where[path]
        body, end = lines[i].rstrip("\r\n"), lines[i][len(lines[i].rstrip("\r\n")):]
        m = KEY_LINE.match(body)
        value_text, after = _split_comment(m.group(3))
        if _same(yaml.safe_load(value_text), value):
            continue
        new = render(value)
        lead = f"{m.group(1)}{m.group(2)}: "
        column, note = notes.get(path, (0, ""))
        after = " " * max(1, column - len(lead) - len(new)) + note if note else ""
        lines[i] = f"{lead}{new}{after}{end}"
        changed.append(".".join(path))

    out = "".join(lines)
    if PROFILE_LINE.search(out):
        out = PROFILE_LINE.sub(lambda m: f"# profile: {profile}{m.group(2)}", out, count=1)
    else:
        out = f"# profile: {profile}\n" + out
    got = yaml.safe_load(out)
    wrong = _diff(got, params) if isinstance(got, dict) and set(got) == set(params) else ["(sections)"]
    if wrong:  # a key in params.yaml that no section has, or a line this rewrite misread
        raise InputError(f"{source}: after applying profile '{profile}' these keys still differ from it: "
                         f"{', '.join(wrong[:10])}. Fix or remove them in {source} (every key must be a "
                         "params field) and run this again.")
    return out, changed


def profile_notes(name: str, profiles_dir: str | Path = "profiles") -> dict[tuple, tuple[int, str]]:
    """The comments profile ``name``'s file has on its values (none when it has no file); ``offline``'s
    are params.yaml's own, kept in ``OFFLINE_NOTES``."""
    path = Path(profiles_dir) / (OFFLINE_NOTES if name == OFFLINE else f"{name}.yaml")
    return comments(path.read_text(encoding="utf-8"), str(path)) if path.is_file() else {}


def apply_text(text: str, name: str, profiles_dir: str | Path = "profiles",
               source: str = "params.yaml") -> tuple[str, list[str]]:
    """``text`` (params.yaml as it is) switched to profile ``name``: its values and comments, the data
    keys as ``text`` has them. Returns the new text and the keys whose value changed."""
    params = load_profile(name, profiles_dir)
    try:
        current = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: not valid YAML: {exc}") from None
    params = keep_data(params, current if isinstance(current, dict) else {}, source)
    return rewrite(text, params, profile=name, source=source, notes=profile_notes(name, profiles_dir))


def apply_profile(name: str, params_path: str | Path = "params.yaml",
                  profiles_dir: str | Path = "profiles") -> tuple[str, list[str]]:
    """The text params.yaml gets for profile ``name`` (validated), and the keys it changes."""
    path = Path(params_path)
    if not path.is_file():
        raise InputError(f"{path}: not found. Restore it with `git checkout -- {path}` and rerun.")
    return apply_text(path.read_text(encoding="utf-8"), name, profiles_dir, str(path))


# --- command: gabarito profile ---
@click.command("profile")
@click.argument("name")
@click.option("--profiles-dir", type=click.Path(file_okay=False), default="profiles", show_default=True)
@params_option
@user_errors
def command(name, profiles_dir, params_path):
    """Switch params.yaml to profile NAME: the shipped values plus profiles/NAME.yaml's, validated.

    'offline' is the shipped params (the defaults of gabarito/params.py). A profile file lists only
    the keys that differ from them, nested as in params.yaml. Your data (mcq, exams, ingest.urls and
    .splits, translate's dataset) keeps the values params.yaml has; a profile that sets them is
    refused. A changed value takes the comment its profile file gives it (or none); the rest of
    params.yaml stays. `dvc repro` then reruns exactly what the switch changed.

    \b
    Examples:
      make profile PROFILE=thesis        # Zephyr-7B-beta, full Cosmos QA, the OpenAI API
      make profile PROFILE=offline       # back to the shipped params.yaml, byte for byte
    """
    text, changed = apply_profile(name, params_path, profiles_dir)
    io.write_text(params_path, text)
    log(f"profile: {params_path} is now the '{name}' profile ({len(changed)} values changed"
        + (f": {', '.join(changed[:8])}{', ...' if len(changed) > 8 else ''}" if changed else "")
        + "); your data (mcq, exams, ingest.urls/splits) kept as it was; `dvc repro` reruns what it changes")
