"""Install a Debian package the tests need (Chromium, PostgreSQL's server), on first use.

The CI runs as root on Debian, so it installs what is missing from the registry the machine already
uses; anyone else gets a clear message saying how.
"""

from __future__ import annotations

import os
import shutil
import subprocess


class PackageMissing(RuntimeError):
    pass


def apt_install(package: str, needed_for: str) -> None:
    """`apt-get install -y package`, with `apt-get update` first when the package lists are missing."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PackageMissing(
            f"{needed_for} needs Debian's package {package}: run `sudo apt-get install -y {package}` "
            "(the tests install it themselves only when they run as root on a machine with apt-get)"
        )
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    result = subprocess.run(install, capture_output=True, text=True, env=environment, timeout=900)
    if result.returncode != 0:  # a fresh machine has no package lists yet
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, text=True, env=environment, timeout=600)
        result = subprocess.run(install, capture_output=True, text=True, env=environment, timeout=900)
    if result.returncode != 0:
        raise PackageMissing(f"`{' '.join(install)}` failed (exit {result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
