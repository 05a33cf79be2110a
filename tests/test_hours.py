"""Business hours: on shift or not, the next opening across weekends, holidays and clock changes, callback wording."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from baton.policies import load_policy
from baton.policies.hours import format_callback, is_open, next_opening
from baton.policies.schema import BusinessHours, TeamHours

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS_9_TO_5 = {day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}


@pytest.fixture(scope="module")
def hours() -> BusinessHours:
    business = load_policy("default").hours
    assert business is not None
    return business


@pytest.fixture(scope="module")
def london(hours: BusinessHours) -> TeamHours:
    return hours.default


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)


def new_york_team() -> TeamHours:
    return TeamHours(timezone="America/New_York", weekly=WEEKDAYS_9_TO_5)


# --- is_open --------------------------------------------------------------------------------------------------


def test_open_on_a_weekday_inside_hours(london: TeamHours) -> None:
    assert is_open(london, local(LONDON, 2026, 12, 2, 10, 0))  # Wednesday, GMT
    assert is_open(london, utc(2026, 7, 15, 7, 0))  # Wednesday 08:00 BST
    assert not is_open(london, utc(2026, 7, 15, 6, 59))  # 07:59 BST, although 07:00 would be open in GMT


def test_just_before_opening_is_closed_and_opens_at_eight(london: TeamHours) -> None:
    at = local(LONDON, 2026, 12, 2, 7, 59)
    assert not is_open(london, at)
    assert next_opening(london, at) == utc(2026, 12, 2, 8, 0)


def test_closing_time_is_closed(london: TeamHours) -> None:
    assert is_open(london, local(LONDON, 2026, 12, 2, 17, 59, 59))
    assert not is_open(london, local(LONDON, 2026, 12, 2, 18, 0))
    assert next_opening(london, local(LONDON, 2026, 12, 2, 18, 0)) == utc(2026, 12, 3, 8, 0)


def test_any_zone_is_converted_to_the_teams(london: TeamHours) -> None:
    # 04:00 in New York is 09:00 in London.
    assert is_open(london, local(NEW_YORK, 2026, 12, 2, 4, 0))
    assert not is_open(london, local(NEW_YORK, 2026, 12, 2, 13, 0))  # 18:00 in London


def test_until_2359_means_until_midnight(hours: BusinessHours) -> None:
    priority = hours.for_queue("priority")
    assert is_open(priority, local(LONDON, 2026, 12, 2, 23, 59, 30))
    assert is_open(priority, local(LONDON, 2026, 12, 3, 0, 0))
    assert not is_open(priority, local(LONDON, 2026, 12, 5, 8, 59))  # Saturday: 09:00-17:00
    assert hours.for_queue("billing") is hours.default and hours.for_queue(None) is hours.default


def test_naive_datetimes_are_rejected(london: TeamHours) -> None:
    with pytest.raises(ValueError, match="aware"):
        is_open(london, datetime(2026, 12, 2, 10, 0))
    with pytest.raises(ValueError, match="aware"):
        next_opening(london, datetime(2026, 12, 2, 10, 0))


# --- next_opening ---------------------------------------------------------------------------------------------


def test_open_now_returns_the_same_moment_in_utc(london: TeamHours) -> None:
    at = local(NEW_YORK, 2026, 7, 15, 5, 30)  # 10:30 BST
    opening = next_opening(london, at)
    assert opening == at and opening is not None and opening.tzinfo is UTC


def test_friday_evening_opens_monday_morning(london: TeamHours) -> None:
    opening = next_opening(london, local(LONDON, 2026, 12, 4, 19, 0))
    assert opening == utc(2026, 12, 7, 8, 0) and opening is not None and opening.tzinfo is UTC


def test_weekend_opens_monday(london: TeamHours) -> None:
    saturday = local(LONDON, 2026, 12, 5, 12, 0)
    assert not is_open(london, saturday)
    assert not is_open(london, local(LONDON, 2026, 12, 6, 10, 0))
    assert next_opening(london, saturday) == utc(2026, 12, 7, 8, 0)


def test_christmas_holidays_are_skipped(london: TeamHours) -> None:
    # Friday 25 and Monday 28 December 2026 are holidays: Thursday evening waits until Tuesday.
    assert not is_open(london, local(LONDON, 2026, 12, 25, 10, 0))
    assert not is_open(london, local(LONDON, 2026, 12, 28, 10, 0))
    thursday_evening = local(LONDON, 2026, 12, 24, 19, 0)
    assert next_opening(london, thursday_evening) == utc(2026, 12, 29, 8, 0)
    # New Year's Day too.
    assert next_opening(london, local(LONDON, 2026, 12, 31, 18, 30)) == utc(2027, 1, 4, 8, 0)


def test_spring_forward_opening_that_exists(london: TeamHours, hours: BusinessHours) -> None:
    # 2027-03-28 01:00 UTC: London's clocks go from 01:00 GMT to 02:00 BST.
    assert next_opening(london, local(LONDON, 2027, 3, 26, 18, 0)) == utc(2027, 3, 29, 7, 0)  # Monday 08:00 BST
    priority = hours.for_queue("priority")
    assert next_opening(priority, utc(2027, 3, 28, 0, 30)) == utc(2027, 3, 28, 8, 0)  # Sunday 09:00 BST


def test_spring_forward_opening_inside_the_gap_opens_when_the_clocks_jump() -> None:
    team = TeamHours(timezone="Europe/London", weekly={"sun": ["01:30-03:00"]})
    assert not is_open(team, utc(2027, 3, 28, 0, 59))  # 00:59 GMT
    assert next_opening(team, utc(2027, 3, 28, 0, 0)) == utc(2027, 3, 28, 1, 0)  # 02:00 BST, first valid instant
    assert is_open(team, utc(2027, 3, 28, 1, 0))
    # The same range a week earlier opens at 01:30 GMT.
    assert next_opening(team, utc(2027, 3, 21, 0, 0)) == utc(2027, 3, 21, 1, 30)


def test_a_range_entirely_inside_the_gap_does_not_open_that_day() -> None:
    team = TeamHours(timezone="Europe/London", weekly={"sun": ["01:10-01:50"]})
    assert next_opening(team, utc(2027, 3, 28, 0, 0)) == utc(2027, 4, 4, 0, 10)  # next Sunday, 01:10 BST


def test_fall_back(london: TeamHours) -> None:
    # 2027-10-31 01:00 UTC: London's clocks go from 02:00 BST back to 01:00 GMT.
    assert next_opening(london, local(LONDON, 2027, 10, 29, 18, 0)) == utc(2027, 11, 1, 8, 0)  # Monday 08:00 GMT
    assert next_opening(london, utc(2027, 10, 29, 6, 30)) == utc(2027, 10, 29, 7, 0)  # Friday 08:00 BST


def test_fall_back_repeated_hour_opens_again() -> None:
    # 01:20-01:40 happens twice; after the first pass the second one is next.
    team = TeamHours(timezone="Europe/London", weekly={"sun": ["01:20-01:40"]})
    assert next_opening(team, utc(2027, 10, 30, 23, 0)) == utc(2027, 10, 31, 0, 20)  # 01:20 BST
    assert next_opening(team, utc(2027, 10, 31, 0, 45)) == utc(2027, 10, 31, 1, 20)  # 01:20 GMT
    assert not is_open(team, utc(2027, 10, 31, 1, 0))
    # A range the clock re-enters when it falls back opens at the change itself.
    team = TeamHours(timezone="Europe/London", weekly={"sun": ["00:30-01:15"]})
    assert next_opening(team, utc(2027, 10, 31, 0, 20)) == utc(2027, 10, 31, 1, 0)


def test_new_york_team_vs_london_default(london: TeamHours) -> None:
    new_york = BusinessHours(default=london, teams={"us": new_york_team()}).for_queue("us")
    at = utc(2026, 12, 7, 12, 0)  # Monday: 12:00 GMT, 07:00 EST
    assert is_open(london, at) and not is_open(new_york, at)
    assert next_opening(new_york, at) == utc(2026, 12, 7, 14, 0)  # 09:00 EST
    evening = utc(2026, 12, 7, 19, 0)  # 19:00 GMT, 14:00 EST
    assert not is_open(london, evening) and is_open(new_york, evening)
    # The US changes clocks two weeks before the UK.
    assert next_opening(new_york, utc(2027, 3, 15, 12, 0)) == utc(2027, 3, 15, 13, 0)  # 09:00 EDT
    assert next_opening(london, utc(2027, 3, 15, 7, 30)) == utc(2027, 3, 15, 8, 0)  # 08:00 GMT


def test_never_open_returns_none(london: TeamHours) -> None:
    assert next_opening(TeamHours(timezone="Europe/London", weekly={}), utc(2026, 12, 2, 10, 0)) is None
    days = [datetime(2026, 12, 1).date() + timedelta(days=n) for n in range(30)]
    all_holidays = TeamHours(timezone="Europe/London", weekly=WEEKDAYS_9_TO_5, holidays=days)
    assert next_opening(all_holidays, utc(2026, 12, 1, 0, 0)) is None


# --- property: the opening is open, and nothing before it is -------------------------------------------------

GAP_TEAM = TeamHours(timezone="Europe/London", weekly={"sun": ["01:30-03:00"], "wed": ["12:00-12:30", "16:00-23:59"]})
REPEAT_TEAM = TeamHours(
    timezone="Europe/London", weekly={"sun": ["00:30-01:15", "01:20-01:40"], "mon": ["00:00-23:59"]}
)


@pytest.mark.parametrize(
    ("team_name", "start"),
    [
        ("default", utc(2026, 12, 24, 19, 0)),
        ("default", utc(2027, 3, 26, 17, 45)),
        ("default", utc(2027, 10, 29, 16, 53)),
        ("priority", utc(2027, 3, 27, 16, 59)),
        ("new_york", utc(2027, 3, 12, 22, 7)),
        ("gap", utc(2027, 3, 24, 12, 10)),
        ("repeat", utc(2027, 10, 30, 23, 50)),
    ],
)
def test_next_opening_is_the_first_open_moment(hours: BusinessHours, team_name: str, start: datetime) -> None:
    team = {
        "default": hours.default,
        "priority": hours.for_queue("priority"),
        "new_york": new_york_team(),
        "gap": GAP_TEAM,
        "repeat": REPEAT_TEAM,
    }[team_name]
    at = start
    for _ in range(6):  # follow several openings: after each, start again from the next closed minute
        opening = next_opening(team, at)
        assert opening is not None and opening >= at and is_open(team, opening)
        probe = at
        while probe < opening:
            assert not is_open(team, probe), f"{team_name}: open at {probe}, before {opening}"
            probe += timedelta(minutes=15)
        if opening > at:
            assert not is_open(team, opening - timedelta(seconds=1))
        at = opening
        while is_open(team, at):
            at += timedelta(minutes=1)


# --- format_callback ------------------------------------------------------------------------------------------


def test_format_callback_today_tomorrow_and_weekday() -> None:
    now = utc(2026, 12, 2, 7, 0)
    assert format_callback(utc(2026, 12, 2, 9, 30), "Europe/London", now) == "today at 09:30 GMT"
    assert format_callback(utc(2026, 12, 3, 8, 0), "Europe/London", now) == "tomorrow at 08:00 GMT"
    assert format_callback(utc(2026, 12, 28, 8, 30), "Europe/London", now) == "Monday 28 December at 08:30 GMT"
    assert format_callback(utc(2026, 7, 15, 7, 0), "Europe/London", utc(2026, 7, 14, 21, 0)) == "tomorrow at 08:00 BST"


def test_format_callback_today_is_decided_in_the_callers_zone() -> None:
    now = utc(2026, 12, 8, 1, 0)  # already the 8th in London, still the 7th (20:00 EST) in New York
    moment = utc(2026, 12, 8, 14, 0)
    assert format_callback(moment, "America/New_York", now) == "tomorrow at 09:00 EST"
    assert format_callback(moment, "Europe/London", now) == "today at 14:00 GMT"
    assert format_callback(utc(2026, 12, 10, 5, 0), "Asia/Dubai", now) == "Thursday 10 December at 09:00 UTC+04"


def test_format_callback_for_the_holiday_case(london: TeamHours) -> None:
    now = local(LONDON, 2026, 12, 24, 19, 0)
    opening = next_opening(london, now)
    assert opening is not None
    assert format_callback(opening, london.timezone, now) == "Tuesday 29 December at 08:00 GMT"
