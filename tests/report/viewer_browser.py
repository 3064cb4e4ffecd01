"""Headless Chromium for the report viewer tests (Playwright, Debian's chromium; never a download)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_path() -> str | None:
    """``$ALIGNGOALS_CHROMIUM``, else chromium on the PATH (``apt-get install -y chromium``)."""
    env = os.environ.get("ALIGNGOALS_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    exe = chromium_path()
    if exe is None:
        pytest.skip("no chromium on this machine: apt-get install -y chromium (CI installs it in .ci/run)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[dev]'")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def open_page(browser, path: Path, *, viewer: bool = True):
    """Open a page from disk, record page errors and CSP violations, and wait for the viewer."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: page.errors.append(str(e)))  # type: ignore[attr-defined]
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)  # type: ignore[attr-defined]
    page.goto(Path(path).resolve().as_uri())
    if viewer:
        page.wait_for_selector("html[data-viewer=ready]", timeout=20000)
    return page
