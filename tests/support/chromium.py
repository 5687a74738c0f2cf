"""Debian's Chromium for the browser tests: Playwright drives it and never downloads a browser."""

from __future__ import annotations

import os

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
