"""Open report.html in headless Chromium: no console errors, images load, forest plot, escaped script tag."""
from __future__ import annotations

import json
import pathlib

import pytest

from cdp import find_chromium, load_and_inspect
from report_support import XSS, make_result

pytestmark = pytest.mark.chromium

INSPECT = """JSON.stringify({
  images: Array.from(document.images).map(i => ({complete: i.complete, w: i.naturalWidth})),
  forest: document.querySelectorAll('figure.forest img').length,
  study: document.getElementById('study-name').textContent,
  scripts: document.scripts.length,
  remote: Array.from(document.querySelectorAll('[src],[href]')).map(e => e.getAttribute('src') || e.getAttribute('href'))
          .filter(u => /^(https?:)?\\/\\//.test(u)).length,
  sorted: (function () {
    var t = document.getElementById('estimates'), col = 6;
    t.tHead.rows[0].cells[col].click();
    var v = Array.from(t.tBodies[0].rows).map(r => parseFloat(r.cells[col].textContent)).filter(x => !isNaN(x));
    return v.every((x, i) => i === 0 || v[i - 1] <= x);
  })()
})"""


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = find_chromium()
    if exe is None:
        pytest.skip("Chromium not found (install the Debian 'chromium' package; .ci/run installs it)")
    return exe


def test_report_in_headless_chromium(chromium, tmp_path):
    from causal_hcc.report.render import write_report

    paths = write_report(make_result(), str(tmp_path), formats=("html",))
    url = pathlib.Path(paths["html"]).resolve().as_uri()
    value, errors = load_and_inspect(chromium, url, INSPECT)
    assert errors == []
    info = json.loads(value)
    assert info["images"] and all(i["complete"] and i["w"] > 0 for i in info["images"])
    assert info["forest"] >= 1
    assert info["study"] == XSS  # shown as text, not executed
    assert info["scripts"] == 1  # only the inline sorting script
    assert info["remote"] == 0
    assert info["sorted"] is True
