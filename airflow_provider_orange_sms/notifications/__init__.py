"""The notifier sending an SMS from a callback (public: ``notifications.orange_sms``)."""

from __future__ import annotations
