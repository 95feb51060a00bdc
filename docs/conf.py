"""Sphinx configuration of the provider's documentation (``make docs`` builds it with warnings as errors)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
# autodoc imports the provider, which imports Airflow: keep Airflow's own files out of the user's home.
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")

from airflow_provider_pixxel import __version__  # noqa: E402

project = "airflow-provider-pixxel"
author = "airflow-provider-pixxel contributors"
copyright = "the airflow-provider-pixxel contributors, Apache License 2.0"
release = __version__
version = __version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.viewcode"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence"]
# Headings become link targets (``page.md#heading``) down to this depth.
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}

html_theme = "alabaster"
html_title = f"airflow-provider-pixxel {__version__}"
html_static_path: list[str] = []
