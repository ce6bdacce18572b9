"""Headless Chromium (Debian `chromium` + `chromium-driver`) for checking the transcript viewer.

The viewer is JavaScript, so it is tested in a real browser; the test suite and
scripts/bench_viewer.py both start Chromium here. Selenium is a test extra and is imported only
when a browser is started. Nothing is ever downloaded: the driver and the browser are the ones
installed on the machine, so a missing one is reported, never fetched.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
INSTALL_HINT = (
    "install the Debian packages with `apt-get install chromium chromium-driver`, "
    "or name them in MEDBENCH_CHROMIUM and MEDBENCH_CHROMEDRIVER"
)


def find_chromium() -> tuple[Path, Path] | str:
    """(browser, driver) paths, or the reason there are none (for a skip message)."""
    browser = os.environ.get("MEDBENCH_CHROMIUM") or next(
        (found for name in BROWSERS if (found := shutil.which(name))), None
    )
    driver = os.environ.get("MEDBENCH_CHROMEDRIVER") or shutil.which("chromedriver")
    missing = [
        name for name, path in (("chromium", browser), ("chromedriver", driver)) if not path or not Path(path).is_file()
    ]
    if missing:
        return f"no {' and no '.join(missing)} found: {INSTALL_HINT}"
    return Path(str(browser)), Path(str(driver))


def headless_chromium(browser: Path, driver: Path, width: int = 1400, height: int = 1000) -> Any:
    """A Selenium WebDriver on a fresh headless Chromium that keeps the page's console messages."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(browser)
    # --no-sandbox: CI containers run as root, where Chromium's sandbox cannot start.
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=str(driver)), options=options)
