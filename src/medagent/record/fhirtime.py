"""FHIR date and dateTime values as naive UTC datetimes, partial dates taken at their start."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$")


def parse_fhir_time(value: object) -> datetime | None:
    """Parse a FHIR `date`/`dateTime`/`instant` into naive UTC; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    match = _PARTIAL.match(value)
    if match:
        year, month, day = match.groups()
        try:
            return datetime(int(year), int(month or 1), int(day or 1))
        except ValueError:  # e.g. month 13: matches the shape, not a date
            return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return to_utc_naive(parsed)


def to_utc_naive(value: datetime) -> datetime:
    """A datetime as naive UTC (an aware one converted, a naive one taken as UTC already)."""
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def format_instant(value: datetime) -> str:
    """Naive UTC datetime as a FHIR instant with a `Z`."""
    return value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
