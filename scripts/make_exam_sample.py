#!/usr/bin/env python
"""Render the bundled ENEM-style sample exam and its answer key from scripts/exam_sample.yaml.

Writes, under ``data/raw/exams`` (or ``--out-dir``):

* ``amostra_enem.pdf`` -- born-digital, two columns, with a title, section headings, a running
  header and "Página N de M" footers; questions flow from column to column and page to page, so
  some continue across a column or page break;
* ``amostra_enem.gabarito.pdf`` -- the answer key, a table of "NN  L" pairs, with ANULADA for the
  annulled question.

Usage::

    python scripts/make_exam_sample.py [--out-dir data/raw/exams]

The output is reproducible (reportlab's invariant mode: fixed dates and ids): running the script
again gives identical bytes, which tests/integration/test_exams.py checks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.examgen import FIGURE, flow_columns, key_pdf, two_column_pdf  # noqa: E402

SOURCE = REPO_ROOT / "scripts" / "exam_sample.yaml"
NAME = "amostra_enem"


def blocks_and_key(sample: dict) -> tuple[list[str], list[tuple[int, str]]]:
    """The text blocks to lay out (section headings, questions) and the key's (number, answer) pairs."""
    blocks, key, number = [], [], 0
    for section in sample["sections"]:
        blocks.append(section["heading"])
        for q in section["questions"]:
            number += 1
            options = "\n".join(f"({letter}) {text}" for letter, text in zip("ABCDE", q["options"], strict=True))
            text = q["text"].strip()
            if q.get("figure"):  # drawn after its first paragraph, as the picture it describes
                first, _, rest = text.partition("\n\n")
                text = f"{first}\n\n{FIGURE}\n\n\n\n\n\n{rest}"
            blocks.append(f"QUESTÃO {number:02d}\n{text}\n{options}")
            key.append((number, "ANULADA" if number in sample["annulled"] else q["answer"]))
    return blocks, key


def build(out_dir: Path, source: Path = SOURCE) -> list[Path]:
    sample = yaml.safe_load(source.read_text(encoding="utf-8"))
    blocks, key = blocks_and_key(sample)
    exam = two_column_pdf(out_dir / f"{NAME}.pdf", flow_columns(blocks), title=sample["title"],
                          header=sample["header"], footer=sample["footer"])
    answers = key_pdf(out_dir / f"{NAME}.gabarito.pdf", key, per_line=5,
                      title=f"GABARITO – {sample['header']}")
    return [exam, answers]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=REPO_ROOT / "data" / "raw" / "exams",
                        help="folder that receives the exam and its key (default: data/raw/exams)")
    args = parser.parse_args(argv)
    for path in build(args.out_dir):
        print(f"{path}  ({path.stat().st_size / 1024:.1f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
