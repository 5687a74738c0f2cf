"""Quiet hours: the daily window in which SMS may be sent, in one time zone or each recipient's own.

No Airflow here: :class:`SendWindow` answers "may this recipient be texted now?" and "when does its
window open next?"; ``SendSMSOperator`` defers until then.

A recipient's time zones come from ``phonenumbers``' time-zone data (the number's prefix, else its
country). Where a number maps to several zones (a country spanning several), the window counts as
open only when it is open in all of them: nobody is texted at night.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: ``send_window_timezone`` value that uses each recipient's own time zone.
RECIPIENT_TIMEZONE = "recipient"
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")
_UNKNOWN_ZONE = "Etc/Unknown"
_SEARCH_DAYS = 3


def _parse_time(value: object, what: str) -> datetime.time:
    match = _TIME.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"Invalid send_window {what} {value!r}: expected 'HH:MM' (24 h), e.g. '08:00'")
    hour, minute, second = match.groups()
    return datetime.time(int(hour), int(minute), int(second or 0))


@lru_cache(maxsize=1024)
def recipient_time_zones(address: str) -> tuple[str, ...]:
    """
    Return the IANA time zones of a normalised recipient (``tel:+…``), from ``phonenumbers``.

    :param address: The recipient.
    :raises ValueError: When neither the number nor its country has a known time zone.
    """
    import phonenumbers  # at call time: its metadata is large, and most sends have no window
    from phonenumbers import timezone as phone_timezones

    number = phonenumbers.parse(address[4:] if address.startswith("tel:") else address, None)
    zones = tuple(z for z in phone_timezones.time_zones_for_number(number) if z != _UNKNOWN_ZONE)
    if not zones:  # a number outside the known ranges: its country's zones
        region = phonenumbers.region_code_for_number(number)
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        if example is not None:
            zones = tuple(z for z in phone_timezones.time_zones_for_number(example) if z != _UNKNOWN_ZONE)
    if not zones:
        raise ValueError(
            f"No time zone is known for {address}: set send_window_timezone to a zone name instead of "
            f"{RECIPIENT_TIMEZONE!r}"
        )
    return zones


@dataclass(frozen=True)
class SendWindow:
    """
    A daily window of local time in which SMS may be sent.

    :param start: Local time the window opens.
    :param end: Local time it closes (before ``start``: the window spans midnight).
    :param timezone: IANA zone of the window, or ``None`` for each recipient's own zones.
    """

    start: datetime.time
    end: datetime.time
    timezone: str | None

    @classmethod
    def parse(cls, window: object, timezone: str = "UTC") -> SendWindow:
        """
        Build a window from ``("08:00", "20:00")`` and a zone name or ``"recipient"``.

        :param window: ``(start, end)`` as ``"HH:MM"`` or ``"HH:MM:SS"`` strings.
        :param timezone: An IANA zone (``"Africa/Abidjan"``, ``"UTC"``) or ``"recipient"``.
        :raises ValueError: Naming the bad value.
        """
        if not isinstance(window, (tuple, list)) or len(window) != 2:
            raise ValueError(
                f"Invalid send_window {window!r}: expected (start, end), e.g. ('08:00', '20:00')"
            )
        start, end = _parse_time(window[0], "start"), _parse_time(window[1], "end")
        if start == end:
            raise ValueError(f"Invalid send_window {window!r}: start and end are the same time")
        if timezone == RECIPIENT_TIMEZONE:
            return cls(start, end, None)
        try:
            ZoneInfo(str(timezone))
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"Invalid send_window_timezone {timezone!r}: expected an IANA zone such as 'Africa/Abidjan' "
                f"or {RECIPIENT_TIMEZONE!r}"
            ) from None
        return cls(start, end, str(timezone))

    def zones(self, address: str) -> tuple[str, ...]:
        """
        Return the zones the window is read in for ``address``.

        :param address: A normalised recipient.
        """
        return (self.timezone,) if self.timezone else recipient_time_zones(address)

    def _open_in(self, zone: str, moment: datetime.datetime) -> bool:
        local = moment.astimezone(ZoneInfo(zone)).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def is_open(self, address: str, now: datetime.datetime) -> bool:
        """
        Whether ``address`` may be texted at ``now`` (open in every one of its zones).

        :param address: A normalised recipient.
        :param now: An aware datetime.
        """
        return all(self._open_in(zone, now) for zone in self.zones(address))

    def next_opening(self, address: str, now: datetime.datetime) -> datetime.datetime:
        """
        Return the first moment at or after ``now`` when ``address`` may be texted (UTC).

        :param address: A normalised recipient.
        :param now: An aware datetime.
        :raises ValueError: When the window is never open in all of the recipient's zones at once.
        """
        if self.is_open(address, now):
            return now.astimezone(datetime.timezone.utc)
        candidates = []
        for zone in self.zones(address):
            tz = ZoneInfo(zone)
            local_day = now.astimezone(tz).date()
            for offset in range(_SEARCH_DAYS):
                opening = datetime.datetime.combine(
                    local_day + datetime.timedelta(days=offset), self.start, tz
                )
                if opening >= now:
                    candidates.append(opening)
        for moment in sorted(candidates):
            if self.is_open(address, moment):
                return moment.astimezone(datetime.timezone.utc)
        raise ValueError(
            f"The send window {self.start:%H:%M}-{self.end:%H:%M} is never open in all time zones of "
            f"{address} ({', '.join(self.zones(address))}) at once: set send_window_timezone"
        )
