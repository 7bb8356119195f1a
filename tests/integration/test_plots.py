"""dvc.yaml's plot definitions, drawn by real `dvc` in a temp repo from files evaluate's own writers make,
and the page `make plots` writes (scripts/plots.py): vega inlined, no CDN, so it opens offline.

The specs dvc fills are drawn with vl-convert (the same vega-lite the page carries) into scenegraphs, so the
checks are on marks: two loss lines on one chart, the calibration diagonal, n beside each bar.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import vl_convert
import yaml

from gabarito import io
from stages import evaluate as ev
from tests.unit.test_plots_data import RECORDS, P, predictions

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "plots.py"
_spec = importlib.util.spec_from_file_location("plots_script", SCRIPT)
plots_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(plots_script)
VL = plots_script.vega_lite_version()  # the vega-lite the page carries draws the specs here too
TRAIN_LOSS = [(10, 3.0), (20, 2.5), (30, 2.0)]
EVAL_LOSS = [(15, 2.8), (30, 2.2)]
LIVE_OTHERS = {"learning_rate": [(10, 2e-3), (20, 1e-3)], "grad_norm": [(10, 4.5), (20, 3.7)],
               "mean_token_accuracy": [(10, 0.1), (20, 0.4)], "eval/mean_token_accuracy": [(15, 0.3), (30, 0.6)],
               "epoch": [(10, 0.4), (20, 0.8)], "num_tokens": [(10, 2e4), (20, 4e4)], "total_flos": [(30, 1e9)],
               "entropy": [(10, 6.3), (20, 5.1)]}


@pytest.fixture
def repo(tmp_path, repo_root) -> tuple[Path, dict]:
    """A git+dvc repo holding only dvc.yaml's plots, the templates in .dvc/plots and small metric files."""
    home = tmp_path / "home"
    (home / "dvc-global").mkdir(parents=True)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "GIT_"))},
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "HOME": str(home),
           "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache"),
           "DVC_NO_ANALYTICS": "1", "DVC_GLOBAL_CONFIG_DIR": str(home / "dvc-global"),
           "DVC_SYSTEM_CONFIG_DIR": str(home / "dvc-system"), "DVC_SITE_CACHE_DIR": str(home / "dvc-site"),
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    repo = tmp_path / "repo"
    repo.mkdir()
    sh(["git", "init", "-q"], repo, env)
    sh(["dvc", "init", "-q"], repo, env)
    shutil.copytree(repo_root / ".dvc/plots", repo / ".dvc/plots")
    plots = yaml.safe_load((repo_root / "dvc.yaml").read_text())["plots"]
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"plots": plots}))
    for name, rows in ev.plot_files(ev.plot_data(RECORDS, predictions(), P)).items():
        io.write_json(repo / "metrics/plots" / name, rows)
    live = repo / "metrics/train_live/plots/metrics"  # as DVCLive writes them (stages/train.py)
    io.write_text(live / "loss.tsv", "step\tloss\n" + "".join(f"{s}\t{v}\n" for s, v in TRAIN_LOSS))
    io.write_text(live / "eval/loss.tsv", "step\tloss\n" + "".join(f"{s}\t{v}\n" for s, v in EVAL_LOSS))
    for name, rows in LIVE_OTHERS.items():  # the rest of what DVCLive writes there, read or not
        io.write_text(live / f"{name}.tsv", f"step\t{name.split('/')[-1]}\n" + "".join(f"{s}\t{v}\n" for s, v in rows))
    return repo, env


def sh(cmd: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{cmd}: {proc.stdout}{proc.stderr}"
    return proc


def marks(spec: dict) -> list[dict]:
    """The mark groups of the spec drawn by vl-convert: [{marktype, name, items}] (axes, legends left out)."""
    return _scene_nodes(spec, lambda node: node.get("marktype") and node.get("role") == "mark")


def legend_labels(spec: dict) -> set[str]:
    return {item["text"] for node in _scene_nodes(spec, lambda node: node.get("role") == "legend-label")
            for item in node["items"]}


def _scene_nodes(spec: dict, wanted) -> list[dict]:
    """The nodes of the scenegraph vl-convert draws for ``spec`` that ``wanted`` accepts, in order."""
    out = []

    def walk(node):
        if isinstance(node, dict):
            if wanted(node):
                out.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(vl_convert.vegalite_to_scenegraph(spec, vl_version=VL))
    return out


def test_plot_definitions_draw_both_losses_the_calibration_diagonal_and_n(repo):
    repo, env = repo
    shown = json.loads(sh(["dvc", "plots", "show", "--json"], repo, env).stdout)
    assert shown.get("errors") is None, shown["errors"]
    specs = {name: entries[0]["content"] for name, entries in shown["data"].items()}

    # the page's order: the losses, the evaluation, then the DVCLive panels worth reading; DVCLive's
    # epoch, num_tokens and total_flos (one dot) are not drawn at all
    order = list(specs)
    assert order[0] == "loss" and order[-3:] == ["learning_rate", "grad_norm", "token_accuracy"], order
    assert all(name.startswith("metrics/plots/") for name in order[1:-3]), order
    assert not [name for name in order if any(k in name for k in ("epoch", "num_tokens", "total_flos"))]

    # train and eval loss: one chart, one line each, against the global step
    loss = specs["loss"]
    assert loss["encoding"]["x"]["field"] == "step"
    lines = [m for m in marks(loss) if m["marktype"] == "line"]
    assert sorted(len(m["items"]) for m in lines) == sorted([len(EVAL_LOSS), len(TRAIN_LOSS)])
    assert {"train", "eval"} <= legend_labels(loss)

    # calibration: the y = x diagonal across the whole plot, and a line per model and mode
    cal = specs["metrics/plots/calibration.json"]
    rules = [item for m in marks(cal) if m["marktype"] == "rule" for item in m["items"]]
    assert [{k: r[k] for k in ("x", "y", "x2", "y2")} for r in rules] == [
        {"x": 0, "y": cal["height"], "x2": cal["width"], "y2": 0}]
    assert {"base/letter", "finetuned/letter"} <= legend_labels(cal)

    # accuracy by source (and by type): one bar per group, its n beside it, its 95% interval as a line
    # from ci95_low to ci95_high, and the group's chance level as a tick (enem: five options, 0.2)
    src = specs["metrics/plots/by_source_finetuned.json"]
    assert sorted(item["text"] for m in marks(src) if m["marktype"] == "text" for item in m["items"]) == [
        "n=1", "n=1", "n=2"]
    layers = {m["name"]: m for m in marks(src)}  # the template's layers in order: bar, interval, chance, n
    assert [layers[f"child_layer_{i}_marks"]["marktype"] for i in range(4)] == ["rect", "rule", "rect", "text"]
    assert len(layers["child_layer_0_marks"]["items"]) == 3  # one bar per source
    rows = {r["source"]: r for r in json.loads((repo / "metrics/plots/by_source_finetuned.json").read_text())}
    width = src["spec"]["width"]
    intervals = sorted((round(i["x"] / width, 3), round(i["x2"] / width, 3)) for i in layers["child_layer_1_marks"]["items"])
    assert intervals == sorted((round(r["ci95_low"], 3), round(r["ci95_high"], 3)) for r in rows.values())
    assert all(low < high for low, high in intervals)
    chance = sorted(round((i["x"] + i["width"] / 2) / width, 3) for i in layers["child_layer_2_marks"]["items"])
    assert chance == sorted(r["chance"] for r in rows.values()) == [0.2, 0.25, 0.25]

    # confusion matrix: every letter the five-option items allow, E included though nobody answered E
    conf = specs["metrics/plots/confusion_finetuned.json"]
    cells = [i for m in marks(conf) if m["marktype"] == "text" for i in m["items"]]
    assert len(cells) == 25 and sorted(int(i["text"]) for i in cells)[-2:] == [1, 3]
    labels = {i["text"] for n in _scene_nodes(conf, lambda node: node.get("role") == "axis-label") for i in n["items"]}
    assert labels == set("ABCDE")
    by_type = specs["metrics/plots/by_type_base.json"]
    assert sorted(item["text"] for m in marks(by_type) if m["marktype"] == "text" for item in m["items"]) == [
        "n=2", "n=2"]


def page_parts(html: str) -> tuple[list[str], list[str]]:
    """(<script> opening tags, bodies of the scripts that are not dvc's per-plot vegaEmbed calls)."""
    tags = re.findall(r"<script\b[^>]*>", html, flags=re.I)
    bodies = [b for b in re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.S | re.I)
              if "vegaEmbed('#" not in b]
    return tags, bodies


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """The offline template, built once for this module by the function the script calls (~3 s)."""
    return plots_script.ensure_template(tmp_path_factory.mktemp("dvc"))


def seeded(repo: Path, template: Path) -> Path:
    """Give the repo the template as the script caches it (.dvc/tmp/plots/, same name)."""
    (repo / ".dvc/tmp/plots").mkdir(parents=True, exist_ok=True)
    shutil.copy(template, repo / ".dvc/tmp/plots" / template.name)
    return repo


def test_make_plots_page_carries_vega_inline_and_loads_nothing(repo, template):
    repo, env = repo
    made = sh([sys.executable, str(SCRIPT), "--out", "out"], seeded(repo, template), env)
    assert "bundling" not in made.stderr  # built once per vl-convert version, then reused
    html = (repo / "out/index.html").read_text(encoding="utf-8")
    tags, bodies = page_parts(html)
    assert not [t for t in tags if "src" in t.lower()], tags  # no <script src=...>: nothing from a CDN
    assert "cdn.jsdelivr" not in html and not re.search(r"""src\s*=\s*["']?https?:""", html)
    assert len(bodies) == 1 and len(bodies[0]) > 500_000  # the libraries, inline
    assert "window.vegaEmbed=" in bodies[0] and f'"{vl_convert.get_vega_version()}"' in bodies[0]
    # every plot: loss, 2 confusion, 2 by source, 2 by type, calibration, 3 DVCLive panels
    assert html.count("vegaEmbed('#") == 11

    # the libraries parse and define vegaEmbed, which each plot's <div> calls (no browser here: node)
    if shutil.which("node"):
        probe = "globalThis.window=globalThis;(0,eval)(require('fs').readFileSync(0,'utf8'));" \
                "process.stdout.write(typeof window.vegaEmbed)"
        out = subprocess.run(["node", "-e", probe], input=bodies[0], capture_output=True, text=True, timeout=60)
        assert out.stdout == "function", out.stderr


def test_make_plots_diff_page_is_offline_too_and_draws_both_revisions(repo, template):
    repo, env = repo
    sh(["git", "add", "-A"], repo, env)
    sh(["git", "commit", "-qm", "plots"], repo, env)
    cal = repo / "metrics/plots/calibration.json"
    io.write_json(cal, [{**row, "accuracy": 1.0} for row in json.loads(cal.read_text())])
    sh([sys.executable, str(SCRIPT), "--diff", "HEAD", "--out", "out"], seeded(repo, template), env)
    html = (repo / "out/index.html").read_text(encoding="utf-8")
    tags, bodies = page_parts(html)
    assert not [t for t in tags if "src" in t.lower()] and len(bodies) == 1
    assert '"rev": "HEAD"' in html and '"rev": "workspace"' in html


def test_plain_dvc_plots_show_draws_offline_with_the_configured_template(repo, repo_root):
    """`dvc plots show` itself, not only `make plots`: .dvc/config names the template `make setup` writes."""
    repo, env = repo
    config = (repo_root / ".dvc/config").read_text()
    configured = re.search(r"^\s*html_template\s*=\s*(\S+)", config, re.M).group(1)
    assert configured == str(plots_script.CONFIGURED)
    sh(["dvc", "config", "plots.html_template", configured], repo, env)
    made = sh([sys.executable, str(SCRIPT), "--template"], repo, env)
    assert (repo / ".dvc" / configured).is_file(), made.stderr
    sh(["dvc", "plots", "show", "--out", "out"], repo, env)
    html = (repo / "out/index.html").read_text(encoding="utf-8")
    tags, bodies = page_parts(html)
    assert not [t for t in tags if "src" in t.lower()] and len(bodies) == 1, tags
    assert "cdn.jsdelivr" not in html and html.count("vegaEmbed('#") == 11
