"""gabarito/tools/profile.py: a profile is an overlay on the shipped params, merged, validated and written into
params.yaml with its comments kept; `offline` gives back the shipped file byte for byte."""

from __future__ import annotations

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
    thesis, changed = pf.rewrite(shipped, pf.load_profile("thesis", repo_root / "profiles"), profile="thesis")
    assert len(changed) == 21 and "train.lora.lora_alpha" in changed and "ingest.source" in changed
    assert "# profile: thesis\n" in thesis and "# profile: offline\n" not in thesis
    back, changed_back = pf.rewrite(thesis, pf.load_profile("offline", repo_root / "profiles"), profile="offline")
    assert back == shipped
    assert sorted(changed_back) == sorted(changed)


def test_comments_and_layout_are_kept(repo_root):
    shipped = _shipped(repo_root)
    thesis, _ = pf.rewrite(shipped, pf.load_profile("thesis", repo_root / "profiles"), profile="thesis")
    old, new = shipped.splitlines(), thesis.splitlines()
    assert len(old) == len(new)
    for a, b in zip(old, new):
        if a.startswith("# profile:"):
            continue
        # same key, same comment in the same column (every thesis value fits before its comment)
        assert a.split(":")[0] == b.split(":")[0]
        if " #" in a and not a.lstrip().startswith("#"):
            assert a.index("#") == b.index("#") and a[a.index("#"):] == b[b.index("#"):]
        elif a.lstrip().startswith("#") or not a.strip():
            assert a == b


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
    with pytest.raises(InputError, match=r"no profile 'thesys'.*did you mean 'thesis'\?.*Profiles: offline, small, thesis\."):
        pf.load_profile("thesys", repo_root / "profiles")


def test_a_mapping_value_is_replaced_whole_and_lists_render_in_flow_style(repo_root, tmp_path):
    profiles = _profiles(tmp_path, mylab="ingest:\n  source: url\n  urls: {train: 'https://example.org/t.csv'}\n"
                                         "train:\n  lora:\n    target_modules: [q_proj, v_proj]\n")
    text, changed = pf.apply_profile("mylab", repo_root / "params.yaml", profiles)
    # a value longer than the room before its comment: one space, then the comment
    assert "  urls: {train: 'https://example.org/t.csv'} # source: url" in text
    assert "    target_modules: [q_proj, v_proj]\n" in text
    assert sorted(changed) == ["ingest.source", "ingest.urls", "train.lora.target_modules"]
    loaded = P.load_params(_write(tmp_path, text))
    assert loaded["ingest"]["urls"] == {"train": "https://example.org/t.csv"}


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
