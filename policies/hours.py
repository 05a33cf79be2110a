"""Business hours: whether a team is on shift, when it next is, and how to say so.

Pure functions, like the engine: no clock and no I/O besides time zone lookups, so workflow code can
call them with `workflow.now()`. Every datetime taken must be aware; every datetime returned is UTC.

Ranges are wall-clock times in the team's zone, start inclusive and end exclusive; an end of 23:59
means the end of the day. A local opening time that does not exist (inside a daylight-saving gap)
opens at the first instant after the gap.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from baton.policies.schema import WEEKDAYS, TeamHours

# How far ahead next_opening looks before deciding a team never opens.
SEARCH_DAYS = 21

END_OF_DAY = time(23, 59)
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

# (opens, closes); closes None means midnight at the end of the day.
Range = tuple[time, time | None]


def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)  # ZoneInfo caches instances by name


@lru_cache(maxsize=256)
def _parse_range(text: str) -> Range:
    start, _, end = text.partition("-")
    opens, closes = time.fromisoformat(start.strip()), time.fromisoformat(end.strip())
    return opens, (None if closes == END_OF_DAY else closes)


def day_ranges(hours: TeamHours, weekday: str) -> list[Range]:
    """The weekday's ranges ("mon".."sun"), sorted by opening time; empty when the team is closed that day."""
    ranges: dict[str, list[str]] = dict(hours.weekly)
    return sorted((_parse_range(text) for text in ranges.get(weekday, [])), key=lambda r: r[0])


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got {at!r}")


def _open_at_local(hours: TeamHours, local: datetime) -> bool:
    day = local.date()
    if day in hours.holidays:
        return False
    now = local.time().replace(tzinfo=None, fold=0)
    return any(opens <= now and (closes is None or now < closes) for opens, closes in day_ranges(hours, _weekday(day)))


def _weekday(day: date) -> str:
    return WEEKDAYS[day.weekday()]


def is_open(hours: TeamHours, at: datetime) -> bool:
    """Whether the team is on shift at `at` (any zone): a working day in its zone, inside one of that day's ranges."""
    _require_aware(at)
    return _open_at_local(hours, at.astimezone(_zone(hours.timezone)))


def _first_change(zone: ZoneInfo, lo: datetime, hi: datetime) -> datetime | None:
    """The first UTC instant in (lo, hi] where the zone's offset differs from its offset at lo, to the second."""
    base = lo.astimezone(zone).utcoffset()
    if hi.astimezone(zone).utcoffset() == base:
        return None
    low, high = int(lo.timestamp()), int(hi.timestamp())
    while high - low > 1:
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, UTC).astimezone(zone).utcoffset() == base:
            low = mid
        else:
            high = mid
    return datetime.fromtimestamp(high, UTC)


def _local_instants(zone: ZoneInfo, day: date, at_time: time) -> set[datetime]:
    """UTC instants a wall-clock time occurs on that day: one, two in a repeated hour, or none in a gap."""
    found = set()
    for fold in (0, 1):
        local = datetime.combine(day, at_time, tzinfo=zone).replace(fold=fold)
        utc = local.astimezone(UTC)
        if utc.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None, fold=0):
            found.add(utc)
    return found


def _midnight(zone: ZoneInfo, day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def next_opening(hours: TeamHours, at: datetime) -> datetime | None:
    """The first moment at or after `at` when the team is on shift, in UTC; None if not within SEARCH_DAYS days.

    The team can only go from closed to open where the local clock reaches a range's opening time or where it
    jumps (a daylight-saving change, which also covers an opening time inside a gap), so those are the candidates.
    """
    _require_aware(at)
    at_utc = at.astimezone(UTC)
    if is_open(hours, at_utc):
        return at_utc
    zone = _zone(hours.timezone)
    first_day = at_utc.astimezone(zone).date()
    best: datetime | None = None
    for offset in range(SEARCH_DAYS + 1):
        day = first_day + timedelta(days=offset)
        candidates: set[datetime] = set()
        if day not in hours.holidays:
            for opens, _ in day_ranges(hours, _weekday(day)):
                candidates |= _local_instants(zone, day, opens)
        change = _first_change(zone, _midnight(zone, day), _midnight(zone, day + timedelta(days=1)))
        if change is not None:
            candidates.add(change)
        for moment in candidates:
            if moment >= at_utc and (best is None or moment < best) and is_open(hours, moment):
                best = moment
        if best is not None and best < _midnight(zone, day + timedelta(days=1)):
            return best
    return best


def _zone_label(local: datetime) -> str:
    name = local.tzname() or ""
    # Zones without a common abbreviation report a bare offset such as "+04".
    return f"UTC{name}" if name[:1] in "+-" else name


def format_callback(moment: datetime, tz_name: str, now: datetime) -> str:
    """How a person in that zone would say the moment: 'today at 09:30 GMT', 'tomorrow at 08:00 GMT',
    'Monday 28 December at 08:30 GMT'. `now` decides what today is."""
    _require_aware(moment)
    _require_aware(now)
    zone = _zone(tz_name)
    local = moment.astimezone(zone)
    today = now.astimezone(zone).date()
    clock = f"{local:%H:%M} {_zone_label(local)}"
    if local.date() == today:
        return f"today at {clock}"
    if local.date() == today + timedelta(days=1):
        return f"tomorrow at {clock}"
    return f"{_DAY_NAMES[local.weekday()]} {local.day} {_MONTH_NAMES[local.month - 1]} at {clock}"
