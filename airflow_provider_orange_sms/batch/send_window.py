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
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from collections.abc import Iterable

#: ``send_window_timezone`` value that uses each recipient's own time zone.
RECIPIENT_TIMEZONE = "recipient"
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")
_UNKNOWN_ZONE = "Etc/Unknown"
_SEARCH_DAYS = 3
_NAMED_PER_ZONES = 5


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

    @property
    def per_recipient(self) -> bool:
        """Whether the window is read in each recipient's own zones (``"recipient"``)."""
        return self.timezone is None

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

    def _first_opening(self, zones: tuple[str, ...], now: datetime.datetime) -> datetime.datetime | None:
        """The first moment at or after ``now`` open in all ``zones`` (UTC); ``None`` when never."""
        if all(self._open_in(zone, now) for zone in zones):
            return now.astimezone(datetime.timezone.utc)
        candidates = []
        for zone in zones:
            tz = ZoneInfo(zone)
            local_day = now.astimezone(tz).date()
            for offset in range(_SEARCH_DAYS):
                opening = datetime.datetime.combine(
                    local_day + datetime.timedelta(days=offset), self.start, tz
                )
                if opening >= now:
                    candidates.append(opening)
        # Where the windows of all zones overlap, the overlap begins at one of their openings.
        for moment in sorted(candidates):
            if all(self._open_in(zone, moment) for zone in zones):
                return moment.astimezone(datetime.timezone.utc)
        return None

    def _never_open(self, named: str, zones: tuple[str, ...]) -> str:
        return (
            f"The send window {self.start:%H:%M}-{self.end:%H:%M} is never open in all time zones of "
            f"{named} ({', '.join(zones)}) at once: set send_window_timezone to one zone (e.g. "
            f"{zones[0]!r}), or send them in a task with a wider window"
        )

    def next_opening(self, address: str, now: datetime.datetime) -> datetime.datetime:
        """
        Return the first moment at or after ``now`` when ``address`` may be texted (UTC).

        :param address: A normalised recipient.
        :param now: An aware datetime.
        :raises ValueError: When the window is never open in all of the recipient's zones at once.
        """
        zones = self.zones(address)
        opening = self._first_opening(zones, now)
        if opening is None:
            raise ValueError(self._never_open(address, zones))
        return opening

    def unreachable(self, addresses: Iterable[str], now: datetime.datetime) -> list[str]:
        """
        Say which recipients this window never lets through, before anything is sent.

        A recipient is unreachable when no time zone is known for it, or when the window is never
        open in all of its zones at once (DR Congo spans UTC+1 and UTC+2: a 30-minute window never
        is). One line per set of zones, naming its recipients (the first five, then a count).

        :param addresses: Normalised recipients.
        :param now: An aware datetime (the search for an opening starts there).
        :return: The problems found; empty when every recipient's window opens.
        """
        if not self.per_recipient:
            return []  # one zone: a window with start != end opens every day
        problems: list[str] = []
        by_zones: dict[tuple[str, ...], list[str]] = {}
        for address in addresses:
            try:
                by_zones.setdefault(self.zones(address), []).append(address)
            except ValueError as exc:
                problems.append(str(exc))
        for zones, members in by_zones.items():
            if self._first_opening(zones, now) is None:
                named = ", ".join(members[:_NAMED_PER_ZONES])
                if len(members) > _NAMED_PER_ZONES:
                    named += f" and {len(members) - _NAMED_PER_ZONES} more"
                problems.append(self._never_open(named, zones))
        return problems
