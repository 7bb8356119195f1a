"""Time and peak memory of `gabarito mcq` over one big CSV of short rows (issue 23, section 6).

    .venv/bin/python benchmarks/mcq_rows.py               # 1,000,000 rows (~23 MB)
    .venv/bin/python benchmarks/mcq_rows.py --rows 100000

Writes the CSV and a params.yaml naming it to a temp folder, runs the stage there in a child process
(the one the stage runs in under dvc), and prints the file's size, the wall time and the child's peak
resident memory (getrusage's ru_maxrss: Linux reports KiB), and the peak as a multiple of the file. The
CPU time (user + system) is the figure to compare on a busy machine, where wall time varies.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write_csv(path: Path, rows: int) -> int:
    """``rows`` short items, as the attack on issue 23 wrote them: ~23 bytes a row."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("id,question,option_a,option_b,answer\n")
        for i in range(rows):
            fh.write(f"q{i},Q{i}?,a,b,A\n")
    return path.stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "data/raw/mcq").mkdir(parents=True)
        size = write_csv(work / "data/raw/mcq/big.csv", args.rows)
        (work / "params.yaml").write_text("mcq:\n  sources: [{path: data/raw/mcq/big.csv}]\n", encoding="utf-8")
        cmd = [sys.executable, "-m", "gabarito.cli", "mcq", "--raw-dir", "data/raw/mcq", "--out-pt", "pt.jsonl",
               "--out-en", "en.jsonl", "--metrics", "mcq.json"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_mb, cpu = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
        if proc.returncode:
            sys.exit(f"mcq failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        items = sum(1 for _ in open(work / "pt.jsonl", encoding="utf-8"))
    print(f"rows: {args.rows:,}  file: {size / 1e6:.1f} MB  items: {items:,}")
    print(f"time: {seconds:.1f} s (CPU {cpu:.1f} s)  peak RSS: {peak_mb:.0f} MiB "
          f"({peak_mb * 2**20 / size:.1f}x the file)")


if __name__ == "__main__":
    main()
