"""A real headless browser for the sessions app's tests: Debian's chromium through its chromedriver, driven
with selenium (the standard Python WebDriver client), one per test module.  Screenshots go to
``$OOD_K8S_ARTIFACTS/webapp`` (default ``tests/webapp/artifacts/``, ignored by git) for a reviewer."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,1400")


def artifacts() -> Path:
    base = os.environ.get("OOD_K8S_ARTIFACTS")
    path = Path(base) / "webapp" if base else ROOT / "tests" / "webapp" / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def browser_missing() -> str:
    """Why the browser tests cannot run here ('' when they can)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    if missing:
        return (f"{' and '.join(missing)} missing: install Debian's chromium and chromium-driver "
                "(.ci/run does) to run the browser tests")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[test]'"
    return ""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    why = browser_missing()
    if why and os.environ.get("OOD_K8S_BROWSER") == "required":  # .ci/run: a skip would hide a broken page
        pytest.fail(why)
    if why:
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="ood-k8s-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    # An explicit driver: selenium never looks one up or downloads one (no network here or in CI).
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def shot(driver: Any, name: str, width: int = 1280) -> Path:
    """A screenshot of the whole page at ``width`` CSS pixels wide."""
    driver.set_window_size(width, 1000)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, max(600, min(int(height) + 140, 6000)))
    path = artifacts() / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 1400)
    return path
