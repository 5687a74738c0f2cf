"""The trigger waiting for SMS credit without a worker slot (public: ``triggers.orange_sms``)."""

from __future__ import annotations
