"""Debian's Chromium for the browser test, installed on first use.

Playwright's own browser download (`playwright install`) needs a CDN this project's CI cannot
reach; Debian's package comes from the registry the machine already uses. The CI runs as root, so
it installs it; anyone else gets a clear message saying how.
"""

from __future__ import annotations

from pathlib import Path

from support.debian_packages import PackageMissing, apt_install

CHROMIUM = Path("/usr/bin/chromium")
# Headless, and nothing that phones home or waits for a GPU or a first-run dialog.
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


class ChromiumMissing(PackageMissing):
    pass


def ensure_chromium() -> Path:
    """The path of Chromium, installing Debian's package first when it is missing and we are root."""
    if not CHROMIUM.exists():
        try:
            apt_install("chromium", "the dashboard's browser test")
        except PackageMissing as err:
            raise ChromiumMissing(str(err)) from None
    if not CHROMIUM.exists():
        raise ChromiumMissing(f"Debian's package chromium is installed, but {CHROMIUM} is not there")
    return CHROMIUM
