"""gabarito/tools/profile.py: a profile is an overlay on the shipped params, merged, validated and written into
params.yaml, each changed value with its profile's comment; the user's data keys are never touched; `offline`
gives back the shipped file byte for byte."""

from __future__ import annotations

import re

import pytest
import yaml

from gabarito import params as P
from gabarito.io import InputError
from gabarito.tools import profile as pf


def _shipped(repo_root) -> str:
    return (repo_root / "params.yaml").read_text(encoding="utf-8")


def _profiles(tmp_path, **files) -> str:
    d = tmp_path / "profiles"
    d.mkdir(exist_ok=True)
    for name, text in files.items():
        (d / f"{name}.yaml").write_text(text, encoding="utf-8")
    return str(d)


def test_thesis_values_and_the_rest_shipped(repo_root):
    params = pf.load_profile("thesis", repo_root / "profiles")
    assert params["train"]["lora"]["lora_alpha"] == 16 and params["train"]["lora"]["r"] == 16  # r: shipped
    assert params["train"]["sft"]["learning_rate"] == pytest.approx(4e-5)
    assert params["merge"]["dtype"] == "bfloat16"
    assert params["clean"] == pf.defaults()["clean"]


def test_offline_is_the_shipped_params(repo_root):
    assert pf.load_profile("offline", repo_root / "profiles") == pf.defaults()
    text, changed = pf.apply_profile("offline", repo_root / "params.yaml", repo_root / "profiles")
    assert text == _shipped(repo_root) and changed == []


def test_thesis_then_offline_gives_back_the_shipped_file_byte_for_byte(repo_root):
    shipped = _shipped(repo_root)
    thesis, changed = pf.apply_text(shipped, "thesis", repo_root / "profiles")
    assert len(changed) == 21 and "train.lora.lora_alpha" in changed and "ingest.source" in changed
    assert "# profile: thesis\n" in thesis and "# profile: offline\n" not in thesis
    back, changed_back = pf.apply_text(thesis, "offline", repo_root / "profiles")
    assert back == shipped
    assert sorted(changed_back) == sorted(changed)


def test_offline_comments_hold_the_shipped_lines(repo_root):
    """profiles/offline.comments.yml only carries params.yaml's comments back: its lines are the shipped ones,
    for every key a profile sets."""
    text = (repo_root / "profiles" / pf.OFFLINE_NOTES).read_text(encoding="utf-8")
    assert pf.merge_profile(yaml.safe_load(text), pf.OFFLINE_NOTES) == pf.defaults()
    shipped = set(_shipped(repo_root).splitlines())
    assert [x for x in text.splitlines() if ": " in x and not x.startswith("#") and x not in shipped] == []
    notes = set(pf.profile_notes("offline", repo_root / "profiles"))
    lines = _shipped(repo_root).splitlines()
    commented = {p for p, i in pf._key_lines(lines, "params.yaml").items() if " #" in lines[i]}
    for name in ("small", "thesis"):
        text = (repo_root / "profiles" / f"{name}.yaml").read_text(encoding="utf-8")
        sets = set(pf._key_lines(text.splitlines(), name))
        assert sets & commented <= notes, f"add these params.yaml lines to {pf.OFFLINE_NOTES}"


def test_a_changed_value_carries_its_profiles_comment(repo_root):
    shipped = _shipped(repo_root)
    thesis, changed = pf.apply_text(shipped, "thesis", repo_root / "profiles")
    notes = pf.profile_notes("thesis", repo_root / "profiles")
    old, new = shipped.splitlines(), thesis.splitlines()
    assert len(old) == len(new)
    where = pf._key_lines(new, "params.yaml")
    changed_lines = {where[tuple(k.split("."))]: tuple(k.split(".")) for k in changed}
    for i, (a, b) in enumerate(zip(old, new)):
        if a.startswith("# profile:"):
            continue
        assert a.split(":")[0] == b.split(":")[0]
        if i not in changed_lines:
            assert a == b  # comment lines, blank lines and unchanged values stay as they were
            continue
        column, note = notes.get(changed_lines[i], (0, ""))
        if note:  # the profile's comment, at its column (every thesis value fits before it)
            assert b.index(" #") + 1 <= column and b[column:] == note
        else:  # the shipped comment described the old value: gone with it
            assert "#" not in b
    assert "    learning_rate: 4.0e-05      # the reference run's 81.03% configuration" in new
    assert "    bf16: true" in new


def _with_my_sources(text: str) -> str:
    mine = ("[{path: data/raw/mcq/exemplo.jsonl}, {path: data/raw/mcq/enem2024.jsonl, source: enem2024}, "
            "{path: data/raw/mcq/enem2022.csv, source: enem2022}]")
    out, n = re.subn(r"^(mcq:.*\n  sources: )\[.*?\](?=  #|$)", lambda m: m.group(1) + mine, text, count=1,
                     flags=re.M)
    assert n == 1
    return out


@pytest.mark.parametrize("profile", ["small", "thesis"])
def test_a_profile_keeps_the_users_data(repo_root, profile):
    """Issue 22: `make profile PROFILE=small` dropped the user's ENEM sources from mcq.sources."""
    mine = _with_my_sources(_shipped(repo_root))
    switched, changed = pf.apply_text(mine, profile, repo_root / "profiles")
    sources = yaml.safe_load(switched)["mcq"]["sources"]
    assert [s.get("source") for s in sources] == [None, "enem2024", "enem2022"]
    assert not [k for k in changed if k.startswith(("mcq.", "exams.", "ingest.urls", "ingest.splits"))]
    back, _ = pf.apply_text(switched, "offline", repo_root / "profiles")
    assert back == mine  # offline keeps them too, and gives back the user's file byte for byte


def test_other_data_keys_keep_the_users_values(repo_root):
    mine = (_shipped(repo_root).replace("  splits: [train, validation]", "  splits: [train]          ")
            .replace("  validation_share: 0.2         # ... when others", "  validation_share: 0.3         # ... when others"))
    for profile in ("small", "offline"):
        text, _ = pf.apply_text(mine, profile, repo_root / "profiles")
        got = yaml.safe_load(text)
        assert got["ingest"]["splits"] == ["train"] and got["exams"]["validation_share"] == 0.3


@pytest.mark.parametrize(("overlay", "key"), [
    ("mcq:\n  sources: []\n", "mcq.sources"),
    ("exams:\n  pdf:\n    ocr_dpi: 200\n", "exams.pdf"),
    ("ingest:\n  urls: {train: 'https://example.org/t.csv'}\n", "ingest.urls"),
    ("ingest:\n  splits: [train]\n", "ingest.splits"),
    ("translate:\n  dataset_hub_id: someone/cosmos-pt\n", "translate.dataset_hub_id"),
])
def test_a_profile_that_sets_data_is_refused(repo_root, tmp_path, overlay, key):
    profiles = _profiles(tmp_path, mylab="train:\n  lora:\n    r: 8\n" + overlay)
    with pytest.raises(InputError) as exc:
        pf.apply_profile("mylab", repo_root / "params.yaml", profiles)
    assert f"mylab.yaml: sets '{key}', which is your data" in str(exc.value)


def test_every_shipped_value_is_written_as_rewrite_writes_it(repo_root):
    """So any profile, not just thesis, switches back to the shipped bytes."""
    stack, bad = [], []
    for n, line in enumerate(_shipped(repo_root).splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = pf.KEY_LINE.match(line)
        while stack and stack[-1][0] >= len(m.group(1)):
            stack.pop()
        value, _ = pf._split_comment(m.group(3))
        if not value:
            stack.append((len(m.group(1)), m.group(2)))
            continue
        node = pf.defaults()
        for key in [k for _, k in stack] + [m.group(2)]:
            node = node[key]
        if pf.render(node) != value:
            bad.append(f"params.yaml:{n}: write {pf.render(node)!r}, not {value!r}")
    assert bad == []


@pytest.mark.parametrize(("overlay", "message"), [
    ("train:\n  lora:\n    lora_alhpa: 8\n", "train.lora.lora_alhpa: unknown key (did you mean 'lora_alpha'?)"),
    ("trian:\n  lora:\n    r: 8\n", "unknown section(s) 'trian' (did you mean 'train'?)"),
    ("evaluate:\n  batch_sise: 8\n", "evaluate.batch_sise: unknown key (did you mean 'batch_size'?)"),
    ("train:\n  lora:\n    r: 0\n", "train.lora.r: Input should be greater than or equal to 1"),
    ("base_model:\n  source: hub\n  revision: null\n", "base_model.revision must pin a commit"),
    ("- train\n", "expected a mapping of sections"),
    ("train: 5\n", "section 'train' must be a mapping"),
])
def test_a_bad_profile_is_an_error_naming_the_key(repo_root, tmp_path, overlay, message):
    profiles = _profiles(tmp_path, mylab=overlay)
    with pytest.raises(InputError) as exc:
        pf.apply_profile("mylab", repo_root / "params.yaml", profiles)
    assert message in str(exc.value) and "mylab.yaml" in str(exc.value)


def test_unknown_profile_name(repo_root):
    with pytest.raises(InputError, match=r"no profile 'thesys'.*did you mean 'thesis'\?.*Profiles: gpu24, offline, small, t4, thesis\."):
        pf.load_profile("thesys", repo_root / "profiles")


def test_lists_render_in_flow_style_and_comments_keep_the_profiles_column(repo_root, tmp_path):
    profiles = _profiles(tmp_path, mylab="train:\n  lora:\n    target_modules: [q_proj, v_proj]  # attention only\n"
                                         "    lora_alpha: 16\n  sft:\n    optim: adamw_torch_fused_with_a_long_name  # x\n")
    text, changed = pf.apply_profile("mylab", repo_root / "params.yaml", profiles)
    assert "    target_modules: [q_proj, v_proj]  # attention only\n" in text
    assert "    optim: adamw_torch_fused_with_a_long_name  # x\n" in text
    assert "    lora_alpha: 16\n" in text  # no comment in the profile: the shipped "usually 2*r ... (2 here)" goes
    assert sorted(changed) == ["train.lora.lora_alpha", "train.lora.target_modules", "train.sft.optim"]
    loaded = P.load_params(_write(tmp_path, text))
    assert loaded["train"]["lora"]["target_modules"] == ["q_proj", "v_proj"]


def _write(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_key_missing_from_params_yaml_is_named(repo_root, tmp_path):
    text = _shipped(repo_root).replace("    lora_dropout: 0.0           # the toy model underfits; dropout only "
                                       "slows it down\n", "")
    assert "lora_dropout" not in text
    with pytest.raises(InputError, match=r"no line for 'train\.lora\.lora_dropout'\. Add `lora_dropout: 0\.05` "
                                         r"under 'train\.lora'"):
        pf.apply_profile("thesis", _write(tmp_path, text), repo_root / "profiles")


def test_an_unknown_key_left_in_params_yaml_is_named(repo_root, tmp_path):
    text = _shipped(repo_root).replace("    r: 16\n", "    r: 16\n    rr: 3\n")
    with pytest.raises(InputError, match=r"still differ from it: train\.lora\.rr"):
        pf.apply_profile("offline", _write(tmp_path, text), repo_root / "profiles")


def test_render():
    assert [pf.render(v) for v in (0.003, 6.0, 4e-05, None, True, [], {}, ["A", "B"], "--psm 6", "24h", "é")] == \
        ["0.003", "6.0", "4.0e-05", "null", "true", "[]", "{}", "[A, B]", '"--psm 6"', "24h", "é"]
    for v in (0.003, 6.0, None, True, ["A", "B"], "--psm 6", "24h", "é", "3bac35", "1e3", "yes", "null"):
        assert yaml.safe_load(f"k: {pf.render(v)}")["k"] == v
