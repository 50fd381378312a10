"""Screenshots of a report's first screen (and its Monte Carlo panel) at 1280 px, for docs/.

Run after ``make report``::

    .venv/bin/python docs/screenshots.py reports/zhang2024-twin

Drives the system Chromium with Playwright (``pip install -e '.[test]'``; no
browser download); ``CAUSAL_HCC_CHROMIUM`` overrides the executable.
"""
from __future__ import annotations

import pathlib
import sys

from playwright.sync_api import sync_playwright

from causal_hcc.report.render import find_chromium

HERE = pathlib.Path(__file__).parent


def main(folder: str = "reports/zhang2024-twin") -> None:
    url = (pathlib.Path(folder) / "report.html").resolve().as_uri()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url)
        page.screenshot(path=str(HERE / "report_first_screen.png"))
        panel = page.locator("#monte_carlo figure")
        if panel.count():
            panel.first.screenshot(path=str(HERE / "report_monte_carlo.png"))
        browser.close()
    print(HERE / "report_first_screen.png")


if __name__ == "__main__":
    main(*sys.argv[1:])
