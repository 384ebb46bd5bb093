"""One way to open the page in Debian's Chromium for the browser tests.

Skips (saying why) when Playwright's Python package or the ``chromium`` binary is missing
(``make browser`` installs the browser where it can). Collects page errors and Content Security
Policy violations, so each test can assert that the page's own scripts raised none.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@contextmanager
def chromium_page(**page_options: Any) -> Iterator[tuple[Any, list[str]]]:
    """``(page, errors)``: a fresh page (``page_options``: e.g. a viewport) of a headless
    Chromium, closed on exit."""
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright not installed (pip install playwright)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}: `make browser` installs it (apt, root)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(**page_options)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            # The page runs under its strict CSP: none of its own scripts may trip it.
            page.on("console", lambda m: errors.append(m.text)
                    if "Content Security Policy" in m.text else None)
            yield page, errors
        finally:
            browser.close()
