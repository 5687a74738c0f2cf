"""How an Orange SMS connection is read: its settings validated in one place, each extra's reader,
the connection form generated from them, and how the Redis connection (shared by the token store
and the send limit) is reached.
"""

from __future__ import annotations
