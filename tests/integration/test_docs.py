"""The README's pipeline picture is what `dvc dag --mermaid` draws from dvc.yaml today."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def normalized(text: str) -> list[str]:
    """Lines with their whitespace collapsed, blank lines dropped: only the drawing is compared."""
    return [" ".join(line.split()) for line in text.strip().splitlines() if line.strip()]


def test_the_readme_draws_the_pipeline_dvc_draws(repo_root):
    dvc = Path(sys.executable).parent / "dvc"
    out = subprocess.run([str(dvc), "dag", "--mermaid"], cwd=repo_root, capture_output=True, text=True,
                         timeout=300, env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    assert out.returncode == 0, out.stderr
    readme = (repo_root / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```mermaid[ \t]*\n(.*?)^```[ \t]*$", readme, re.S | re.M)
    assert len(blocks) == 1, f"README.md has {len(blocks)} ```mermaid blocks, not one"
    assert normalized(blocks[0]) == normalized(out.stdout), \
        "README's pipeline picture is not `dvc dag --mermaid`: paste its output into the ```mermaid block"
