"""Chat formatting's guard rails that need no tokenizer: a template without EOS after the answer, the
tiny tokenizer's training texts, the hub error. Formatting and loss masking with the tiny base model's
tokenizer are in tests/integration/test_format_and_labels.py."""

from __future__ import annotations

import pytest

from gabarito.chat import split_prompt_completion


def test_a_template_without_eos_after_the_answer_is_refused():
    class NoEos:
        eos_token = "</s>"

        def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False):
            text = "".join(f"[{m['role']}] {m['content']}\n" for m in messages)
            return text + ("[assistant] " if add_generation_prompt else "")

    from gabarito.io import InputError

    msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    with pytest.raises(InputError, match="prompt differently|EOS"):
        split_prompt_completion(NoEos(), msgs)


def test_the_tiny_tokenizer_trains_on_prompts_then_every_training_text():
    from stages.base_model import tokenizer_texts

    prompts = {"system_mcq": "S", "user_mcq": "U"}
    recs = [{"kind": "mcq", "context": "c", "question": "q", "answers": ["a", "b", "c2", "d"]},
            {"kind": "open", "question": "oq", "answer": "oa"}]
    assert tokenizer_texts(prompts, recs) == ["S", "U", "c", "q", "a", "b", "c2", "d", "oq", "oa"]


def test_hub_error_says_what_why_and_how_to_switch(monkeypatch):
    from gabarito.modeling import HubUnreachable, hub_error

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    err = hub_error("org/model", "abc123", OSError("We couldn't connect.\nA second paragraph of details."))
    assert isinstance(err, HubUnreachable)
    assert str(err).startswith("base model org/model@abc123: not reachable on the Hugging Face hub and not in the "
                               "local cache (OSError: We couldn't connect.). HF_HUB_OFFLINE is set")
    assert "second paragraph" not in str(err) and "base_model.source=tiny" in str(err)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert "HF_TOKEN" in str(hub_error("org/model", "abc123", OSError("x")))
