"""Send pacing as pure functions: a SIM's rate, daily cap and spacing, quiet hours, and
which SIM of a channel takes a message (hub.services.pacing, hub.services.sims.choose)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hub.services import pacing
from hub.services.pacing import Limits, SimState
from hub.services.sims import Sim, choose

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")


def after(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def near(at: datetime | None, expected: datetime) -> bool:
    """Waits are rounded up by a microsecond or two."""
    return at is not None and timedelta(0) <= at - expected < timedelta(milliseconds=1)


def test_a_fresh_sim_takes_its_limit_then_waits_until_the_first_part_ages_out() -> None:
    state, limits = SimState(), Limits(20, None)
    for i in range(20):
        assert pacing.sim_wait(state, limits, after(i), 1) is None
        state = pacing.taken(state, limits, after(i), 1, 0.0)
    assert near(pacing.sim_wait(state, limits, after(20), 1), after(61))
    assert pacing.sim_wait(state, limits, after(61), 1) is None  # a bucket counts 61 s


def test_no_sixty_seconds_hold_more_than_the_limit_sending_whenever_allowed() -> None:
    """Ten minutes at full pace, with spacing and 1-3 part messages: exact, never a burst."""
    sent: list[tuple[datetime, int]] = []
    state, limits, now = SimState(), Limits(20, None), T0
    while now < after(600):
        parts = 1 + now.second % 3
        wait = pacing.sim_wait(state, limits, now, parts)
        if wait is None:
            state = pacing.taken(state, limits, now, parts, 1.0)
            sent.append((now, parts))
            now += timedelta(seconds=0.1)
        else:
            now = wait
    minute = timedelta(seconds=60)
    for start, _ in sent:
        assert sum(p for t, p in sent if start <= t < start + minute) <= 20
    assert sum(p for _, p in sent) >= 9 * 20  # and the SIM is not starved either


def test_a_fast_sim_keeps_one_bucket_a_second() -> None:
    state, limits = SimState(), Limits(100_000, None)
    for i in range(3000):  # 50 a second for a minute
        state = pacing.taken(state, limits, after(i / 50), 1, 0.0)
    assert len(state.recent) <= 61 and pacing.parts_in_window(state, after(60)) >= 2950


def test_spacing_keeps_sends_apart_by_at_most_its_maximum() -> None:
    state, limits = SimState(), Limits(600, None)
    state = pacing.taken(state, limits, T0, 1, 2.0)
    assert state.next_at is not None and T0 <= state.next_at <= after(2)
    if state.next_at > T0:
        assert near(pacing.sim_wait(state, limits, T0, 1), state.next_at)
    assert pacing.sim_wait(state, limits, after(2), 1) is None
    assert pacing.taken(SimState(), limits, T0, 1, 0.0).next_at is None  # 0 = off


def test_a_message_longer_than_the_limit_goes_when_the_sim_is_idle() -> None:
    limits = Limits(20, None)
    assert pacing.sim_wait(SimState(), limits, T0, 25) is None
    busy = pacing.taken(SimState(), limits, T0, 1, 0.0)
    assert near(pacing.sim_wait(busy, limits, after(1), 25), after(61))


def test_the_daily_cap_holds_until_local_midnight_in_the_channel_timezone() -> None:
    limits = Limits(600, 3, PARIS)
    evening = datetime(2026, 12, 1, 22, 30, tzinfo=UTC)  # 23:30 in Paris
    state = SimState()
    for i in range(3):
        state = pacing.taken(state, limits, evening + timedelta(seconds=i), 1, 0.0)
    midnight_paris = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)
    assert pacing.sim_wait(state, limits, evening + timedelta(seconds=5), 1) == midnight_paris
    assert pacing.sim_wait(state, limits, midnight_paris, 1) is None
    assert state.day == "2026-12-01" and state.day_parts == 3
    # A cap of 3 and a 5-part message: it goes on a day the SIM has sent nothing.
    assert pacing.sim_wait(SimState(), limits, evening, 5) is None


def test_quiet_hours_across_midnight_end_the_next_morning_in_the_given_timezone() -> None:
    quiet = pacing.parse_quiet_hours({"start": "21:00", "end": "08:00"})
    at_2130_paris = datetime(2026, 12, 1, 20, 30, tzinfo=UTC)
    assert pacing.quiet_until(quiet, at_2130_paris, PARIS) == datetime(
        2026, 12, 2, 7, 0, tzinfo=UTC
    )
    at_0300_paris = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
    assert pacing.quiet_until(quiet, at_0300_paris, PARIS) == datetime(
        2026, 12, 2, 7, 0, tzinfo=UTC
    )
    assert pacing.quiet_until(quiet, datetime(2026, 12, 2, 7, 0, tzinfo=UTC), PARIS) is None
    assert pacing.quiet_until(quiet, at_2130_paris, UTC) is None  # 20:30 UTC is allowed
    lunch = pacing.parse_quiet_hours({"start": "12:00", "end": "14:00"})
    assert pacing.quiet_until(lunch, after(3 * 3600 + 60), UTC) == after(5 * 3600)
    assert pacing.quiet_until(None, T0, UTC) is None


@pytest.mark.parametrize(
    "value",
    [{"start": "21:00"}, {"start": "25:00", "end": "08:00"}, {"start": "9", "end": "10:00"},
     {"start": "08:00", "end": "08:00"}, "21:00-08:00"],
)  # fmt: skip
def test_bad_quiet_hours_are_refused_with_the_reason(value: object) -> None:
    with pytest.raises(ValueError, match="quiet_hours"):
        pacing.parse_quiet_hours(value)


def sim(device: str, slot: int, state: SimState | None = None, cap: int | None = None) -> Sim:
    return Sim(device, device, slot, True, None, cap, Limits(2, cap), state or SimState())


def full(n: int = 2) -> SimState:
    return SimState(recent=[(T0.timestamp(), n)], day="2026-12-01", day_parts=n)


def test_sims_are_taken_in_turn_skipping_the_busy_ones() -> None:
    sims = [sim("a", 0), sim("a", 1, full()), sim("b", 0)]
    assert choose(sims, T0, 1, turn=0).sim is sims[0]
    assert choose(sims, T0, 1, turn=1).sim is sims[2]  # a/1 is at its rate
    assert choose(sims, T0, 1, turn=5).sim is sims[2]


def test_when_every_sim_is_busy_the_message_waits_for_the_first_one_free() -> None:
    sims = [sim("a", 0, full()), sim("b", 0, SimState(recent=[(after(10).timestamp(), 2)]))]
    choice = choose(sims, after(20), 1)
    assert choice.sim is None and near(choice.wait_until, after(61))


def test_the_sticky_sim_waits_for_its_rate_and_yields_only_at_its_daily_cap() -> None:
    at_rate = [sim("a", 0, full()), sim("b", 0)]
    choice = choose(at_rate, after(1), 1, sticky=("a", 0))
    assert choice.sim is None and near(choice.wait_until, after(61))
    at_cap = [sim("a", 0, full(), cap=2), sim("b", 0)]
    assert choose(at_cap, after(1), 1, sticky=("a", 0)).sim is at_cap[1]


def test_a_message_with_its_own_sim_waits_for_that_sim() -> None:
    sims = [sim("a", 0, full()), sim("b", 0)]
    assert choose(sims, after(1), 1, own=("a", 0)).sim is None
    assert choose(sims, after(1), 1, own=("b", 0)).sim is sims[1]
