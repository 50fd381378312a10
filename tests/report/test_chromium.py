"""report.html in headless Chromium, driven by Playwright (the system Chromium, no downloaded browser).

Checks what a reader sees: no console errors, every image loads, the forest
plot is there, strings from the spec are shown as text (never executed), the
findings come first, nothing is wider than a 1280 px window; and the PDF is
Chromium's print of the same page.
"""
from __future__ import annotations

import pathlib

import pytest

from report_support import XSS, make_result

pytestmark = pytest.mark.chromium

INSPECT = """() => ({
  images: Array.from(document.images).map(i => ({complete: i.complete, w: i.naturalWidth})),
  forest: document.querySelectorAll('figure.forest img').length,
  study: document.getElementById('study-name').textContent,
  scripts: document.scripts.length,
  remote: Array.from(document.querySelectorAll('[src],[href]')).map(e => e.getAttribute('src') || e.getAttribute('href'))
          .filter(u => /^(https?:)?\\/\\//.test(u)).length,
  firstSection: document.querySelector('body section').id,
  bannerInFindings: !!document.querySelector('#findings #twin-banner'),
  scrollWidth: document.documentElement.scrollWidth,
  innerWidth: window.innerWidth,
  wide: Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
          .map(e => e.tagName + '#' + e.id).slice(0, 5),
  answerTop: document.getElementById('answer').getBoundingClientRect().top,
  sorted: (function () {
    var t = document.getElementById('estimates'), col = 6;
    t.tHead.rows[0].cells[col].click();
    var v = Array.from(t.tBodies[0].rows).map(r => parseFloat(r.cells[col].textContent)).filter(x => !isNaN(x));
    return v.length > 2 && v.every((x, i) => i === 0 || v[i - 1] <= x);
  })()
})"""


@pytest.fixture(scope="module")
def browser():
    from causal_hcc.report.render import find_chromium

    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the 'test' extra)")
    exe = find_chromium()
    if exe is None:
        pytest.skip("Chromium not found (install the Debian 'chromium' package; .ci/run installs it)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from causal_hcc.report.render import write_report

    folder = tmp_path_factory.mktemp("browser")
    return write_report(make_result(), str(folder), formats=("html", "pdf"))


def test_report_in_headless_chromium(browser, report):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(pathlib.Path(report["html"]).resolve().as_uri())
    info = page.evaluate(INSPECT)
    page.close()
    assert errors == []
    assert info["images"] and all(i["complete"] and i["w"] > 0 for i in info["images"])
    assert info["forest"] >= 1
    assert info["study"] == XSS  # shown as text, not executed
    assert info["scripts"] == 1  # only the inline sorting script
    assert info["remote"] == 0
    assert info["sorted"] is True
    assert info["firstSection"] == "findings"
    assert info["bannerInFindings"] is True
    assert info["wide"] == [] and info["scrollWidth"] <= info["innerWidth"]  # no horizontal overflow at 1280 px
    assert info["answerTop"] < 800  # the answer table starts on the first screen


def test_pdf_is_chromium_print_of_the_page(report):
    pdf = pathlib.Path(report["pdf"]).read_bytes()
    assert pdf[:5] == b"%PDF-"
    assert b"/Producer (Skia" in pdf  # Chromium's print engine (matplotlib would write its own producer)
    assert pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages") >= 3  # pages of the laid-out report
