"""Fixtures of the browser tests: one headless Chromium per module, driven by Playwright.

The browser is Debian's ``/usr/bin/chromium`` (``scripts/install_browser.sh`` installs it;
Playwright's own download cannot reach the internet here), or ``OUTLAST_TEST_CHROMIUM``. Without
one the tests are skipped, except under ``CI=true``, where they fail, as the PostgreSQL tests do.
Screenshots and measured timings go to ``var/test-artefacts/browser/`` (gitignored), or
``OUTLAST_TEST_ARTEFACTS``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("OUTLAST_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """The module's Chromium (Playwright's ``Browser``).

    Per module, not per session: Playwright's sync API keeps an event loop running in this
    thread while it is started, and the tests of other modules on the same worker call
    ``asyncio.run``."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    if not Path(CHROMIUM).exists():
        _unavailable(f"no browser at {CHROMIUM}: run scripts/install_browser.sh")
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as exc:  # Playwright raises its own Error for any failed launch
            _unavailable(f"{CHROMIUM} could not be launched: {exc}")
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def artefacts() -> Path:
    """Where screenshots and timings are saved, kept after the run."""
    path = Path(
        os.environ.get("OUTLAST_TEST_ARTEFACTS", ROOT / "var" / "test-artefacts" / "browser")
    )
    path.mkdir(parents=True, exist_ok=True)
    return path
