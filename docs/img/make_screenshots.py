"""Refresh the screenshots in docs/img from real run directories (headless Debian chromium).

    python docs/img/make_screenshots.py REPORT_RUN COMPARE_DIR [VALUES_RUN]

REPORT_RUN: an ``aligngoals eval`` directory (report.html); COMPARE_DIR: an ``aligngoals compare --out``
directory (compare.html); VALUES_RUN: an ``aligngoals eval --goal hhh`` directory.
"""

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
HERE = Path(__file__).parent


def shot(browser, html: Path, out: str, *, outcome: str | None, open_nth: int, search: str | None = None,
         full_page: bool = False, task: str | None = None) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(html.resolve().as_uri())
    page.wait_for_selector("html[data-viewer=ready]", timeout=20000)
    if task:
        page.select_option("#f-task", task)
    if outcome:
        page.select_option("#f-outcome", outcome)
    if search:
        page.fill("#f-search", search)
    page.locator("#v-list details.sample summary").nth(open_nth).click()
    if not full_page:
        page.evaluate("document.getElementById('viewer').previousElementSibling.scrollIntoView()")
    page.screenshot(path=str(HERE / out), full_page=full_page)
    page.close()


def main() -> None:
    report_run, compare_dir = Path(sys.argv[1]), Path(sys.argv[2])
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        shot(b, report_run / "report.html", "report.png", outcome="incorrect", open_nth=1)
        shot(b, compare_dir / "compare.html", "compare.png", outcome=None, open_nth=0, full_page=True)
        if len(sys.argv) > 3:
            shot(b, Path(sys.argv[3]) / "report.html", "values.png", outcome=None, open_nth=0, task="safety_attacks")
        b.close()


if __name__ == "__main__":
    main()
