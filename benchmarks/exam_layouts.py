"""The exam reader on each booklet layout of tests/booklets.py and tests/booklets_heldout.py, born-digital
and scanned, scored as a user would (issue 21): an item is right when its text and each option are at
least 0.9 similar to the source and its letter is right.

    .venv/bin/python benchmarks/exam_layouts.py                 # every layout, born-digital and scan
    .venv/bin/python benchmarks/exam_layouts.py --no-scan       # born-digital only (seconds)
    .venv/bin/python benchmarks/exam_layouts.py --only inep     # one layout

Prints one row per booklet: questions answerable without a figure, the share of them fully right, items
from covers/essays/drafts (extra), header or footer text inside items, figure flags against the truth
(missed / flagged without a figure), and the wall time of `read_exam` (the scans' OCR uses every core).
ENEM day 1 is scored on the foreign language chosen (exams.foreign_language: ingles).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gabarito.io import InputError
from gabarito.params import ExamsParams
from stages.exams import read_exam
from tests import booklets, booklets_heldout

LAYOUTS = {
    "inep": ("ENEM day 1, caderno 1 AZUL (INEP)", lambda scan: booklets.inep_booklet(scan=scan)),
    "inep-d2": ("ENEM day 2, caderno 6 CINZA (INEP)", lambda scan: booklets.inep_booklet(day=2, colour="CINZA", scan=scan)),
    "fuvest": ("FUVEST 1ª fase", lambda scan: booklets.fuvest_booklet(scan=scan)),
    "fgv": ("FGV / OAB Exame de Ordem", lambda scan: booklets.fgv_booklet(scan=scan)),
    "heldout": ("held out: UNICAMP-style, 4 options", lambda scan: booklets_heldout.heldout_booklet(scan=scan)),
}


def run(name: str, scan: bool) -> dict:
    booklet = LAYOUTS[name][1](scan)
    p = ExamsParams()
    with tempfile.TemporaryDirectory() as tmp:
        booklets.write_booklet(Path(tmp), name, booklet)
        start = time.monotonic()
        try:
            items, report, review = read_exam(Path(tmp) / f"{name}.pdf", Path(tmp) / f"{name}.gabarito.pdf", p)
        except InputError as exc:  # the stage would stop: a row that says so
            return {"layout": LAYOUTS[name][0], "scan": scan, "error": str(exc)[:160],
                    "seconds": time.monotonic() - start}
        seconds = time.monotonic() - start
    truth = [t for t in booklet.truth if t["language"] in (None, p.foreign_language)]
    marks = booklet.meta["headers"] + booklet.meta["footers"] + list(booklet.meta.get("page_codes") or [])
    score = booklets.score(items, truth, headers=marks)
    figures = {(t["number"], t["language"]) for t in truth if t["needs_figure"]}
    flagged = {(e["number"], e["language"]) for e in review if e["needs_figure"]}
    return {"layout": LAYOUTS[name][0], "scan": scan, "pages": report["pages"],
            "no_figure": score["n_truth_no_figure"], "right": score["right_no_figure"],
            "share": score["share_right_no_figure"], "extra": len(score["extra"]),
            "leaks": len(score["header_leaks"]), "figures": len(figures),
            "missed": len(figures - flagged), "false_figures": len(flagged - figures), "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-scan", action="store_true")
    ap.add_argument("--only", choices=sorted(LAYOUTS))
    args = ap.parse_args()
    print("| layout | kind | pages | fully right (no figure) | extra items | header leaks | figures missed / "
          "false | time |")
    print("|---|---|---|---|---|---|---|---|")
    for name in [args.only] if args.only else LAYOUTS:
        for scan in (False,) if args.no_scan else (False, True):
            r = run(name, scan)
            if "error" in r:
                print(f"| {r['layout']} | {'scan' if scan else 'born-digital'} | stopped: {r['error']} |||||"
                      f" {r['seconds']:.1f} s |", flush=True)
                continue
            print(f"| {r['layout']} | {'scan' if scan else 'born-digital'} | {r['pages']} | "
                  f"{r['right']}/{r['no_figure']} ({100 * r['share']:.1f}%) | {r['extra']} | {r['leaks']} | "
                  f"{r['missed']}/{r['figures']} missed, {r['false_figures']} false | {r['seconds']:.1f} s |",
                  flush=True)


if __name__ == "__main__":
    main()
