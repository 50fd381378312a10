"""The documentation: a README of at most 200 lines whose links resolve, and a site that includes every page.

``make docs`` builds the site with warnings as errors (Sphinx warns about a
page in no toctree); this test checks the same without Sphinx, so that the
default suite catches an orphan page or a dead README link.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_readme_is_short_and_has_the_required_parts():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    for head in ("## Set-up", "## Quick start on the twin", "## Quick start on your own data", "## Strategies",
                 "## Documentation"):
        assert head in text
    assert "date_format" in text and "codes:" in text and "missing:" in text  # dates, codes, missing values


def test_readme_links_resolve():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if target.startswith(("http://", "https://")):
            continue
        assert (ROOT / target).exists(), target


def test_every_docs_page_is_in_the_site(tmp_path):
    """index.md lists pages by topic; every other docs/*.md page goes to the generated "More pages" toctree."""
    import sys

    sys.path.insert(0, str(DOCS))
    from spec_reference import listed_pages, more_pages, write_more_pages

    pages = {p.stem for p in DOCS.glob("*.md")} - {"index"}
    listed = listed_pages(str(DOCS))
    assert "_generated/more_pages" in listed
    assert pages <= listed | set(more_pages(str(DOCS)))
    for x in listed:  # the index names no page that is missing
        assert (DOCS / f"{x}.md").exists() or x in ("gallery/index", "_generated/spec_reference",
                                                     "_generated/more_pages"), x
    (tmp_path / "index.md").write_text((DOCS / "index.md").read_text())
    (tmp_path / "new_page_of_another_branch.md").write_text("# New\n")
    text = open(write_more_pages(str(tmp_path), str(tmp_path / "more.md"))).read()
    assert "/new_page_of_another_branch" in text


def test_spec_reference_covers_every_key():
    import sys

    sys.path.insert(0, str(DOCS))
    from spec_reference import reference

    from causal_hcc.config import AnalysisSpec, RolesSpec

    text = reference()
    for key in [k for k, f in AnalysisSpec.model_fields.items() if not f.exclude] + list(RolesSpec.model_fields):
        assert f"| `{key}` |" in text, key
    assert "| `date_format` | str or null | none |" in text and "| `labels` | mapping str → str |" in text


def test_plugin_and_gallery_pages_exist():
    assert (DOCS / "plugins.md").exists() and list((DOCS / "examples").glob("plot_*.py"))
