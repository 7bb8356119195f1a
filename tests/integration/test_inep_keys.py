"""The real INEP answer keys of ENEM 2022-2025 (tests/data/inep, public documents): every answer, the two
foreign-language columns of day 1, the annulled questions, and the identifiers each key prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from gabarito.params import ExamsParams
from stages.exams import ANNULLED, identifiers, read_key

KEYS = sorted((Path(__file__).parents[1] / "data" / "inep").glob("*_GB_impresso_D*_CD*.pdf"))
# what INEP's own notes and the printed keys say: annulled questions of each day-2 key; day-1 keys annul none
ANNULLED_BY_KEY = {"2022_GB_impresso_D2_CD7.pdf": [157], "2023_GB_impresso_D2_CD7.pdf": [164],
                   "2024_GB_impresso_D2_CD7.pdf": [129], "2025_GB_impresso_D2_CD7.pdf": [123, 132, 174]}
# the day-1 rows 1-5 as printed (INGLÊS, ESPANHOL)
LANGUAGE_ROWS = {"2024_GB_impresso_D1_CD1.pdf": ["CC", "AD", "AD", "AD", "EA"],
                 "2022_GB_impresso_D1_CD1.pdf": ["DE", "CD", "BC", "DA", "EA"]}


def test_all_eight_keys_are_here():
    assert len(KEYS) == 8


@pytest.mark.parametrize("path", KEYS, ids=lambda p: p.name)
def test_a_real_key_reads_90_answers_its_language_columns_and_its_identifiers(path):
    year, _, _, day, caderno = path.stem.split("_")
    key, text = read_key(path, ExamsParams())
    first = 1 if day == "D1" else 91
    assert sorted(key) == list(range(first, first + 90))
    assert [n for n, v in key.items() if v == ANNULLED] == ANNULLED_BY_KEY.get(path.name, [])
    languages = {n: v for n, v in key.items() if isinstance(v, dict)}
    assert sorted(languages) == ([1, 2, 3, 4, 5] if day == "D1" else [])
    if path.name in LANGUAGE_ROWS:
        assert [v["ingles"] + v["espanhol"] for _, v in sorted(languages.items())] == LANGUAGE_ROWS[path.name]
    assert all(v in "ABCDE" for v in key.values() if isinstance(v, str) and v != ANNULLED)
    assert identifiers(text) == {"year": year, "day": day[1], "caderno": caderno[2:], "colour": "AZUL"}
