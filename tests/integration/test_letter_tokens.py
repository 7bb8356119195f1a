"""The letter tokens evaluation reads, on the tiny base model's tokenizer."""

from __future__ import annotations

from gabarito import scoring as sc

L = ["A", "B", "C", "D"]


def test_letter_tokens_follow_the_answer_prefix(tiny_base):
    from gabarito.modeling import load_tokenizer

    tok = load_tokenizer(tiny_base)
    prefix, letters = sc.letter_token_ids(tok, "Alternativa", L)
    assert len(set(letters)) == 4
    for letter, tid in zip(L, letters):
        assert tok(f"Alternativa {letter}", add_special_tokens=False)["input_ids"] == prefix + [tid]
