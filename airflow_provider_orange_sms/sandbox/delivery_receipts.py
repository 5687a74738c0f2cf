"""The sandbox's delivery receipts: posted to the account's subscription after each accepted SMS."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_orange_sms.sandbox.state import SandboxState


class ReceiptPoster:
    """
    Posts delivery receipts in background threads, as the configured delay and retries say.

    :param state: The sandbox's state (configuration, subscriptions; each post is recorded there).
    """

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._callbacks = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sandbox-dr")

    def shutdown(self, *, wait: bool = False) -> None:
        """
        Stop posting.

        :param wait: Post every receipt already scheduled (with its retries) first; otherwise
            pending receipts are dropped.
        """
        self._callbacks.shutdown(wait=wait, cancel_futures=not wait)

    def schedule(self, client_id: str, resource_id: str, address: str) -> None:
        """
        Post the receipts of an accepted SMS to the account's subscription, if it has one.

        :param client_id: The account.
        :param resource_id: Orange's id of the SMS.
        :param address: The recipient.
        """
        delay = self.state.config.dr_delay
        with self.state.lock:
            subscription = next(
                (s for s in self.state.subscriptions.values() if s.client_id == client_id), None
            )
        statuses = self.state.receipt_statuses(address)
        if delay is None or subscription is None or not statuses:
            return
        callback_data = resource_id if self.state.config.dr_callback_data else ""
        notifications = [
            {
                "deliveryInfoNotification": {
                    "callbackData": callback_data,
                    "deliveryInfo": {"address": address, "deliveryStatus": status},
                }
            }
            for status in statuses
        ]
        self._callbacks.submit(self._post_receipts, subscription.notify_url, notifications, delay)

    def _post_receipts(self, url: str, notifications: list[dict[str, Any]], delay: float) -> None:
        for notification in notifications:
            self._post_receipt(url, notification, delay)

    def _post_receipt(self, url: str, notification: dict[str, Any], delay: float) -> None:
        time.sleep(delay)
        for _ in range(self.state.config.dr_retries):
            if self._post_receipt_once(url, notification):
                return
            time.sleep(self.state.config.dr_retry_delay)
        self._post_receipt_once(url, notification)

    def _post_receipt_once(self, url: str, notification: dict[str, Any]) -> bool:
        """Post one receipt, record the outcome; False when it may be worth posting again."""
        request = urllib.request.Request(
            url,
            data=json.dumps(notification).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        outcome: int | str
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                outcome = response.status
        except urllib.error.HTTPError as exc:
            outcome = exc.code
        except Exception as exc:
            outcome = type(exc).__name__
        with self.state.lock:
            self.state.callbacks.append(
                {"url": mask_url(url), "notification": notification, "outcome": outcome}
            )
        return isinstance(outcome, int) and outcome < 500


def mask_url(url: str) -> str:
    """A notify URL without its last path segment (the receiver's secret) for the state snapshot."""
    head, _, tail = url.rpartition("/")
    secret_follows = "delivery-receipts" in head or "inbound-messages" in head
    return f"{head}/***" if head and tail and secret_follows else url
