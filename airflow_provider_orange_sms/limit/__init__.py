"""The send limit: spacing SMS so no sender pushes an account past Orange's rate, on one machine
(a file lock) or on every machine of a deployment (Redis).
"""

from __future__ import annotations
