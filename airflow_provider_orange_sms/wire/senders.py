"""Which sender number an SMS goes out from.

An explicit sender wins; then the sender of the recipient's country (when senders are routed by
country, a recipient of another country is refused); then the default sender; then Orange's sender
of the default country.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from airflow_provider_orange_sms.recipients import SENDER_ADDRESSES, country_of, normalize_sender

__all__ = ["SenderRouting"]


@dataclass(frozen=True)
class SenderRouting:
    """
    The sender rules of one client, already normalised.

    :param sender_address: Default sender number (bare digits), if any.
    :param sender_addresses: Sender number per recipient country (ISO 3166 alpha-3).
    :param country: Default country (alpha-3), whose Orange sender is the last resort.
    """

    sender_address: str | None = None
    sender_addresses: dict[str, str] = field(default_factory=dict)
    country: str | None = None

    def sender_for(self, recipient: str, sender_address: str | None = None) -> str:
        """
        Return the sender number a send to ``recipient`` uses (bare digits).

        :param recipient: A normalised recipient (``tel:+…``).
        :param sender_address: An explicit sender for this send.
        :raises ValueError: When no sender applies, naming the recipient and its country.
        """
        if not sender_address and self.sender_addresses:
            country = country_of(recipient)
            sender = self.sender_addresses.get(country or "")
            if sender is None:
                raise ValueError(
                    f"No sender for {recipient} (country {country or 'unknown'}): sender_addresses has "
                    f"senders for {', '.join(sorted(self.sender_addresses))} only"
                )
            return sender
        return self.default_sender(sender_address)

    def default_sender(self, sender_address: str | None = None) -> str:
        """
        Return the sender of a call that has no recipient (a receipt subscription).

        :param sender_address: An explicit sender, normalised when given.
        :raises ValueError: When there is none.
        """
        if sender_address:
            return normalize_sender(sender_address)
        if self.sender_address:
            return self.sender_address
        if self.country and self.country in SENDER_ADDRESSES:
            return SENDER_ADDRESSES[self.country]
        raise ValueError(
            "No sender address: pass sender_address or set the connection's sender_address extra "
            "(e.g. '2250000' for Côte d'Ivoire) or its country"
        )
