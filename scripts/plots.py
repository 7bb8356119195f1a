"""`make plots` / `make plots-diff REV=main`: DVC's plots as a page that works offline.

    python scripts/plots.py                    # dvc plots show -> dvc_plots/index.html
    python scripts/plots.py --diff main        # dvc plots diff main: the workspace against main
    python scripts/plots.py --diff HEAD~1 HEAD --out /tmp/plots
    python scripts/plots.py --template         # only (re)write .dvc/tmp/plots/offline.html (make setup runs it)

Plain `dvc plots show` and `dvc plots diff` are offline too: .dvc/config's ``plots.html_template`` names
``tmp/plots/offline.html`` (relative to .dvc/), the template ``--template`` writes there.

`dvc plots show` writes a page whose <script> tags load vega, vega-lite and vega-embed from a CDN, so
without network it is blank. DVC puts those tags where its HTML template says ``{scripts}``; the
template written here has no ``{scripts}`` and carries the three libraries inline instead, from
vl-convert-python's bundle (pinned in requirements.lock, so the JavaScript is pinned with it). The
template (~0.9 MB, ~3 s to build) is built once per vl-convert and vega-lite version, into .dvc/tmp/
(which DVC keeps out of git), and passed to dvc as ``--html-template``. The page itself is DVC's.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

# DVC's own page (dvc_render.html.PAGE_HTML) without {scripts}: the libraries come inline. dvc fills
# {plot_divs} (required) and {refresh_tag}; a charset, as the bundle is UTF-8 and a page opened from
# file:// has no HTTP header to say so.
PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    {refresh_tag}
    <title>DVC Plot</title>
    <script type="text/javascript">
BUNDLE
    </script>
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""
PLACEHOLDERS = ("{plot_divs}", "{scripts}", "{refresh_tag}")


def say(msg: str) -> None:
    print(f"[plots] {msg}", file=sys.stderr, flush=True)


def vega_lite_version() -> str:
    """The newest vega-lite vl-convert ships in the major version DVC's templates are written for (their
    ``$schema``, vega-lite v5 in dvc-render 1.0): a spec for v5 is then drawn by a v5 library."""
    import vl_convert
    from dvc_render.vega_templates import LinearTemplate

    major = re.search(r"/v(\d+)\.json$", LinearTemplate.DEFAULT_CONTENT["$schema"]).group(1)
    versions = [v for v in vl_convert.get_vegalite_versions() if v.split(".")[0] == major]
    if not versions:
        raise SystemExit(f"vl-convert {vl_convert.__version__} ships no vega-lite v{major} (it has "
                         f"{vl_convert.get_vegalite_versions()}): install the version requirements.lock pins")
    return max(versions, key=lambda v: tuple(int(x) for x in v.split(".")))


def offline_page(bundle: str) -> str:
    """The HTML template for dvc plots: DVC's page with ``bundle`` (JavaScript) inline instead of CDN tags."""
    # inside <script>, "</script" would end the element early; a placeholder would be filled by dvc
    bad = [s for s in ("</script", *PLACEHOLDERS) if s in bundle.lower()]
    if bad:
        raise ValueError(f"the JavaScript bundle contains {bad}: it cannot be inlined as is")
    return PAGE.replace("BUNDLE", bundle)


def template_path(dvc_dir: Path, vl_version: str) -> Path:
    import vl_convert

    return dvc_dir / "tmp" / "plots" / f"offline-vlc{vl_convert.__version__}-vl{vl_version}.html"


def ensure_template(dvc_dir: Path) -> Path:
    """Build the offline template unless this vl-convert and vega-lite version already have one."""
    import vl_convert

    from gabarito import io

    vl_version = vega_lite_version()
    path = template_path(dvc_dir, vl_version)
    if not path.is_file():
        say(f"bundling vega, vega-lite {vl_version} and vega-embed into {path}")
        io.write_text(path, offline_page(vl_convert.javascript_bundle(vl_version=vl_version)))
    return path


# the path .dvc/config's plots.html_template names, relative to .dvc/: plain `dvc plots show` uses it
CONFIGURED = Path("tmp/plots/offline.html")


def install_template(dvc_dir: Path) -> Path:
    """Copy the current offline template to the path .dvc/config names (only when it differs)."""
    from gabarito import io

    built = ensure_template(dvc_dir)
    target = dvc_dir / CONFIGURED
    content = built.read_text(encoding="utf-8")
    if not target.is_file() or target.read_text(encoding="utf-8") != content:
        io.write_text(target, content)
        say(f"{target}: plain `dvc plots show` now draws offline")
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--diff", nargs="*", metavar="REV",
                    help="dvc plots diff REV... (none: the workspace against HEAD) instead of dvc plots show")
    ap.add_argument("--out", help="folder for index.html (dvc's default: dvc_plots)")
    ap.add_argument("--open", action="store_true", help="open the page in a browser")
    ap.add_argument("--template", action="store_true",
                    help=f"only write the offline template to .dvc/{CONFIGURED} (plain dvc plots show uses it)")
    args = ap.parse_args(argv)
    dvc_dir = Path(".dvc")
    if not dvc_dir.is_dir():
        raise SystemExit(f"no .dvc folder in {Path.cwd()}: run this from the repository root")
    if args.template:
        install_template(dvc_dir)
        return 0
    cmd = ["dvc", "plots", *(["diff", *args.diff] if args.diff is not None else ["show"]),
           "--html-template", str(ensure_template(dvc_dir).resolve())]
    cmd += (["--out", args.out] if args.out else []) + (["--open"] if args.open else [])
    say(" ".join(cmd))
    return subprocess.run(cmd).returncode


if __name__ == "__main__":
    sys.exit(main())
