"""Debian's Chromium for the browser test, installed on first use.

Playwright's own browser download (`playwright install`) needs a CDN this project's CI cannot
reach; Debian's package comes from the registry the machine already uses. The CI runs as root, so
it installs it; anyone else gets a clear message saying how.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# Headless, and nothing that phones home or waits for a GPU or a first-run dialog.
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


class ChromiumMissing(RuntimeError):
    pass


def ensure_chromium() -> Path:
    """The path of Chromium, installing Debian's package first when it is missing and we are root."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ChromiumMissing(
            f"the dashboard's browser test needs Chromium at {CHROMIUM}: run `sudo apt-get install -y chromium` "
            "(Debian's package; the test installs it itself only when it runs as root on a machine with apt-get)"
        )
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    result = subprocess.run(install, capture_output=True, text=True, env=environment, timeout=900)
    if result.returncode != 0:  # a fresh machine has no package lists yet
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, text=True, env=environment, timeout=600)
        result = subprocess.run(install, capture_output=True, text=True, env=environment, timeout=900)
    if result.returncode != 0 or not CHROMIUM.exists():
        raise ChromiumMissing(f"`{' '.join(install)}` failed (exit {result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return CHROMIUM
