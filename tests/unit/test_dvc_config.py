"""The committed .dvc/config: what every clone gets."""

from __future__ import annotations

import configparser


def test_dvc_sends_no_usage_reports(repo_root):
    # nobody asked for them; `dvc config core.analytics false` wrote this line
    config = configparser.ConfigParser()
    config.read(repo_root / ".dvc" / "config")
    assert config.get("core", "analytics") == "false"
