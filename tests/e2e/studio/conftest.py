"""One headless Chromium for the Studio's browser tests, driven by Playwright for Python.

Debian's Chromium (`/usr/bin/chromium`) is used, never a browser Playwright would download:
`./run test` installs it with apt where it is missing (as root on Debian).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

CHROMIUM = os.environ.get("DRIFT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).parents[3] / "docs" / "studio"


def chromium_path() -> str:
    """The Chromium binary; fails the test (never skips) when it is missing, saying what to install."""
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if not found:
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: on Debian run `apt-get install -y chromium` "
            "(./run test does it as root); elsewhere install Chromium and set DRIFT_CHROMIUM to its path"
        )
    return found


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[object]:
    """One Chromium for the whole session; each test opens its own context (fresh session storage)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tests leave a screenshot of each page.

    A scratch folder by default, so a test run never rewrites tracked files; with
    `DRIFT_STUDIO_SCREENSHOTS=1` they refresh docs/studio/ (the pictures of docs/studio.md).
    """
    if os.environ.get("DRIFT_STUDIO_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    return tmp_path_factory.mktemp("studio-screenshots")
