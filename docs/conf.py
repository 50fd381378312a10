"""Sphinx configuration of the causal_hcc documentation (``make docs``: warnings are errors).

Pages are Markdown (MyST). ``index.md`` lists the pages by topic; every other
``docs/*.md`` page is listed under "More pages" (``_generated/more_pages.md``,
written when the build starts), so a page another branch adds slots in without
an edit here, and Sphinx's "document isn't included in any toctree" warning (an
error here) cannot happen for a docs page. Two pages are generated when the build starts: the spec reference
from the pydantic models of ``causal_hcc/config.py`` (``_generated/spec_reference.md``,
written by ``docs/spec_reference.py``) and the gallery of executed examples
(sphinx-gallery runs ``docs/examples/*.py``). The API reference is autodoc on
the public functions' numpydoc docstrings.
"""
from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

project = "causal_hcc"
author = "causal_hcc developers"
copyright = "2026, causal_hcc developers"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "examples/README.rst", "gallery/*.ipynb", "gallery/*.py", "gallery/*.zip",
                    "gallery/*.json", "gallery/*.md5", "gallery/*.pickle", "**.ipynb_checkpoints"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
# links to repository files outside the site (tests/, configs/) stay text; pages written by several people may
# start at H2 or skip a level: cosmetic, not an error
suppress_warnings = ["myst.xref_missing", "myst.header"]

autodoc_default_options = {"members": False, "undoc-members": False}
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "gallery",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "matplotlib_animations": False,
    "show_memory": False,
    "min_reported_time": 3600,
}

try:
    import furo  # noqa: F401

    html_theme = "furo"
except ImportError:  # the built-in theme keeps the build working without the extra
    html_theme = "alabaster"
html_title = "causal_hcc"
html_static_path: list[str] = []


def _spec_reference(app) -> None:
    from spec_reference import write_more_pages, write_reference

    write_reference(os.path.join(HERE, "_generated", "spec_reference.md"))
    write_more_pages(HERE, os.path.join(HERE, "_generated", "more_pages.md"))


def setup(app):
    app.connect("builder-inited", _spec_reference)
