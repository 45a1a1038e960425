"""Sphinx configuration for the xwvnet documentation (MyST pages, executed MyST-NB notebooks, numpydoc API).

Build with ``docs/build.sh`` (or ``make docs``); it sets ``XWVNET_DATA_DIR`` to the sample-data mirror and treats
every warning as an error. The build is offline: no intersphinx inventories are fetched and no remote images are
used. ``XWVNET_DOCS_EXECUTE=off`` renders the notebooks without running them (for a quick look at prose).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import sphinx_autosummary_accessors

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the checkout's xwvnet, also when it is not installed

import xwvnet  # noqa: E402  (registers the ``wvnet`` accessor for autosummary)

project = "xwvnet"
author = "the xwvnet authors"
copyright = "the xwvnet authors; WV-Net weights and samples: hawaii-ai/WV-Net; Copernicus Sentinel data"
version = release = xwvnet.__version__

extensions = [
    "myst_nb",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx_autosummary_accessors",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "jupyter_execute", "**.ipynb_checkpoints", "generated/*.ipynb"]
templates_path = ["_templates", sphinx_autosummary_accessors.templates_path]

# -- MyST and notebooks -------------------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off" if os.environ.get("XWVNET_DOCS_EXECUTE", "").lower() in {"0", "off", "no"} else "cache"
nb_execution_cache_path = str(HERE / "_build" / ".jupyter_cache")
nb_execution_timeout = 300  # seconds per cell, a guard for loaded CI machines; notebooks take 15 s to about 3 min here
nb_execution_raise_on_error = True  # a failing cell fails the build
nb_execution_in_temp = True  # stores and figures the notebooks write go to a temporary directory
nb_execution_show_tb = True
nb_merge_streams = True

# -- API reference -------------------------------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autosummary_ignore_module_all = False  # a package page (joins, evaluation) lists its __all__
autodoc_typehints = "none"  # numpydoc shows the types from the docstrings; annotations stay in the signature text
autodoc_default_options = {"members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()  # style is checked in review; the build checks that pages render

# Offline build: no intersphinx; types stay plain text rather than unresolved cross-references.
nitpicky = False

# -- HTML ----------------------------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"xwvnet {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]  # code blocks wrap long lines
# The whole table of contents on every page (every page is at the top level, where the theme's own section
# navigation shows nothing).
html_sidebars = {"**": ["sidebar-nav-full"]}
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_show_sourcelink = False
