"""The report as a reader sees it, in headless Chromium (Playwright, the system Chromium; issue 23).

* The first screen at 1280 x 800: the title, the plain answer for every
  outcome and the answer table with its coverage column explained in its
  header, without scrolling or horizontal overflow.
* The risk tables under the Kaplan-Meier curves (inline SVG, drawn as
  survminer draws them): each arm's name stands in its own column, left of
  and clear of the first count of its row ("treat within 6" + 646 never reads
  "6646").
* Nothing overlaps: the boxes of every flow diagram, and every block of the
  page (tables, figures, lists, paragraphs) at 1280 px and at 900 px.
"""
from __future__ import annotations

import copy
import pathlib

import pytest

from report_support import make_result

pytestmark = pytest.mark.chromium


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
def page_url(tmp_path_factory):
    from causal_hcc.report.render import write_report

    res = copy.deepcopy(make_result())
    res.spec = dict(res.spec, title="Surgery after conversion therapy: a reanalysis",
                    labels={"surgery": "Surgery", "oligometastases": "Oligometastases (1-3 lesions)"})
    # the clone-censor arms as the design names them, with large numbers at risk (issue 23's "6646")
    rec = next(r for r in res.records if r.design == "clone_censor")
    tab = rec.curves.table
    tab["group"] = tab["group"].map({"treated": "treat within 6", "untreated": "never treat"})
    tab["n_at_risk"] = (tab["n_at_risk"] * 0 + 646).where(tab["time"] < 20, 0)
    rec.diagnostics["flow"] = [["patients in cohort", 646], ["excluded: nobody with bone_met=1 started treatment "
                                                             "(no support for the strategy)", 20],
                               ["clones per arm", 626], ["never treat: censored at treatment start", 26],
                               ["treat within 6: treated within grace", 24],
                               ["treat within 6: censored at 6 (untreated, deviates)", 69]]
    folder = tmp_path_factory.mktemp("layout")
    return pathlib.Path(write_report(res, str(folder), formats=("html",))["html"]).resolve().as_uri()


FIRST_SCREEN = """() => {
  const vis = e => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight && r.height > 0; };
  const title = document.getElementById('report-title');
  const answers = Array.from(document.querySelectorAll('.answer-sentence'));
  const head = document.querySelector('#answer th.coverage-head');
  const table = document.getElementById('answer');
  return {
    title: title.textContent, titleVisible: vis(title),
    answers: answers.map(a => a.textContent.trim()), answersVisible: answers.every(vis),
    coverageHead: head ? head.textContent.trim() : null,
    tableTop: table.getBoundingClientRect().top,
    scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
  };
}"""


def test_first_screen_answers_the_question(browser, page_url):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(page_url)
    info = page.evaluate(FIRST_SCREEN)
    page.close()
    assert info["title"] == "Surgery after conversion therapy: a reanalysis" and info["titleVisible"]
    assert len(info["answers"]) == 1 and info["answersVisible"]
    assert info["answers"][0].startswith("Overall survival: the 6 analyses that avoid immortal-time bias give hazard "
                                         "ratios from 0.50 to 0.80 for surgery")
    assert "cannot rule out" in info["answers"][0] and "confidence intervals include no effect" in info["answers"][0]
    assert info["coverageHead"] == "Coverage: 95% CI contained the truth, % of 20 simulated cohorts"
    assert info["tableTop"] < 800  # the answer table starts on the first screen
    assert info["scrollWidth"] <= info["innerWidth"]


RISK_TABLE = """() => Array.from(document.querySelectorAll('svg.fig')).filter(s => s.querySelector('[id*="risk-label-"]'))
  .map(svg => {
    const box = e => { const r = e.getBoundingClientRect(); return {x0: r.left, x1: r.right, y0: r.top, y1: r.bottom}; };
    const labels = Array.from(svg.querySelectorAll('[id*="risk-label-"]')).map(e => ({id: e.id, ...box(e)}));
    const counts = Array.from(svg.querySelectorAll('[id*="risk-count-"]')).map(e => ({id: e.id, ...box(e)}))
      .filter(c => c.x1 > c.x0);
    const axis = svg.querySelector('[id$="axes_1"] [id*="patch_2"]') || svg.querySelector('[id*="patch_2"]');
    return {figure: svg.closest('figure').id, labels, counts, axisLeft: axis ? box(axis).x0 : null};
  })"""


def test_risk_tables_have_their_own_label_column(browser, page_url):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(page_url)
    tables = page.evaluate(RISK_TABLE)
    page.close()
    assert len(tables) >= 3 and any(t["figure"] == "summary-curves" for t in tables)
    clone = [t for t in tables if any(len(c["id"]) for c in t["counts"])]
    assert clone
    for t in tables:
        assert len(t["labels"]) >= 2 and t["counts"]
        for lab in t["labels"]:
            panel, row = lab["id"].rsplit("risk-label-", 1)
            mine = [c for c in t["counts"] if c["id"].rsplit("risk-count-", 1)[0] == panel
                    and c["id"].rsplit("risk-count-", 1)[1].split("-")[0] == row]
            same_line = [c for c in mine if c["y0"] < lab["y1"] and lab["y0"] < c["y1"]]
            assert same_line, (t["figure"], lab["id"])  # the label stands on its row of counts
            gap = min(c["x0"] for c in same_line) - lab["x1"]
            assert gap >= 3, (t["figure"], lab["id"], gap)  # a clear gap before the first count
        for i, a in enumerate(t["counts"]):  # counts never run into each other
            for b in t["counts"][i + 1:]:
                assert not (a["x0"] < b["x1"] - 0.5 and b["x0"] < a["x1"] - 0.5
                            and a["y0"] < b["y1"] - 0.5 and b["y0"] < a["y1"] - 0.5), (t["figure"], a["id"], b["id"])


OVERLAP = """() => {
  const out = {flow: [], blocks: []};
  const ov = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
  document.querySelectorAll('figure.flow svg.fig').forEach(svg => {
    const boxes = Array.from(svg.querySelectorAll('[id*="flow-box-"], [id*="flow-excl-"]'))
      .filter(e => !e.id.includes('flow-text')).map(e => ({id: e.id, r: e.getBoundingClientRect()}));
    out.flow.push(boxes.length);
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++)
      if (ov(boxes[i].r, boxes[j].r)) out.flow.push(boxes[i].id + ' overlaps ' + boxes[j].id);
  });
  const blocks = Array.from(document.querySelectorAll('section table, section figure, section ul, section p, .banner, .answer-text'))
    .filter(e => e.offsetParent !== null && !e.closest('details:not([open])'));
  for (let i = 0; i < blocks.length; i++) for (let j = i + 1; j < blocks.length; j++) {
    const a = blocks[i], b = blocks[j];
    if (a.contains(b) || b.contains(a)) continue;
    if (ov(a.getBoundingClientRect(), b.getBoundingClientRect()))
      out.blocks.push((a.id || a.tagName + '.' + a.className) + ' overlaps ' + (b.id || b.tagName + '.' + b.className));
  }
  out.wide = Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5
    && !e.closest('.wide') && !e.closest('details:not([open])')).map(e => e.tagName + '#' + e.id).slice(0, 5);
  return out;
}"""


@pytest.mark.parametrize("width", [1280, 900])
def test_nothing_overlaps(browser, page_url, width):
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(page_url)
    info = page.evaluate(OVERLAP)
    page.close()
    counts = [x for x in info["flow"] if isinstance(x, int)]
    assert counts and all(n >= 2 for n in counts) and max(counts) >= 5  # flow diagrams with their boxes found
    assert [x for x in info["flow"] if isinstance(x, str)] == []
    assert info["blocks"] == []
    assert info["wide"] == []
