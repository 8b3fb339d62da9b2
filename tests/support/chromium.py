"""Headless Chromium (Debian `chromium`) for the tests: a page rendered to a PNG screenshot."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def chromium() -> str:
    found = shutil.which("chromium")
    assert found, "chromium missing: install the Debian package (make os-packages)"
    return found


def screenshot(page: Path, png: Path, profile: Path, size: tuple[int, int] = (1200, 1500)) -> Path:
    """Render the local HTML file `page` into `png` (no network: the page is self-contained)."""
    result = subprocess.run(
        [
            chromium(), "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
            f"--window-size={size[0]},{size[1]}", f"--screenshot={png}", page.as_uri(),
        ],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert png.exists() and png.stat().st_size > 0, result.stderr[-2000:]
    return png
