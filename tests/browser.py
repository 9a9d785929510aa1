"""Debian's Chromium, driven by Playwright, for the tests that open a page.

Playwright's own browser download is not used: the tests run Debian's package, so that the
browser is the one a machine of the course has, and nothing is fetched at test time. A
missing Playwright or Chromium fails the tests that ask for it: feedback pages and reports
that are safe in a browser are a feature, not an option of the test machine.
"""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"


# Per module, not per session: Playwright's sync API keeps an event loop of its own while it
# runs, and a module that runs notebooks in-process (nbclient) should not find one there.
@pytest.fixture(scope="module")
def chromium():
    """A Chromium browser, started once for each test module that asks for it."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: pip install -c constraints.txt -e '.[dev]'")
    if not shutil.which(CHROMIUM):
        pytest.fail(
            f"No Chromium at {CHROMIUM}: install Debian's package "
            "(`sudo apt-get install -y chromium`); Playwright's own download is not used"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()
