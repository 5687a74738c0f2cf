"""Debian's Chromium for the browser tests: Playwright drives it and never downloads a browser."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("ORANGE_SMS_CHROMIUM", "/usr/bin/chromium")
# The flags this machine's closed network needs (no background connections, no sandbox as root).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch(playwright: Any, profile: Path, width: int, height: int) -> Any:
    """Debian's Chromium, headless, with :data:`CHROMIUM_FLAGS`, in its own profile directory."""
    return playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_FLAGS,
        viewport={"width": width, "height": height},
    )
