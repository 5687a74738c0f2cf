"""The sensors: SMS credit, delivery receipts, replies (public: ``sensors.orange_sms``; the other
modules are where they are implemented)."""

from __future__ import annotations
