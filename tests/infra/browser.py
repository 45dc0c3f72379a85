"""Headless Chromium (Debian's `chromium`): what a browser renders of a page, and a screenshot."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

BROWSER_TIMEOUT = 90.0


def chromium() -> str:
    """The browser's path; fails (never skips) naming the package when it is missing."""
    path = shutil.which("chromium")
    if path is None:
        raise RuntimeError("chromium not found: apt-get install -y chromium (scripts/install.sh --test)")
    return path


def _run(url: str, profile: Path, *args: str) -> str:
    flags = [
        "--headless",
        "--disable-gpu",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=1000",  # let the page settle; it refreshes itself every few seconds
    ]
    if os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses to run its sandbox as root
    done = subprocess.run(
        [chromium(), *flags, *args, url], capture_output=True, text=True, timeout=BROWSER_TIMEOUT, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"chromium exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def dump_dom(url: str, profile: Path) -> str:
    """The DOM after the page was loaded and rendered, serialized."""
    return _run(url, profile, "--dump-dom")


def screenshot(url: str, profile: Path, png: Path, width: int = 1280, height: int = 900) -> Path:
    _run(url, profile, f"--screenshot={png}", f"--window-size={width},{height}", "--hide-scrollbars")
    return png
