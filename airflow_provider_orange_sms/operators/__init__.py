"""The operators: send SMS, read the account, manage subscriptions and the opt-out list
(public: ``operators.orange_sms``; the other modules are where they are implemented)."""

from __future__ import annotations
