"""The per-device rate counter: a limit per minute, O(1), never lets a burst through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.services.handover import RateWindow

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def after(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_fresh_device_takes_its_limit_then_waits_for_the_next_minute() -> None:
    window = RateWindow.at(T0, None, 0, 0)
    for _ in range(20):
        assert window.wait_for(T0, 1, 20) == 0
        window = window.taken(1)
    wait = window.wait_for(T0, 1, 20)
    assert 60 <= wait <= 64  # past the minute, as the last minute's parts fade out
    later = RateWindow.at(after(wait), window.start, window.current, window.previous)
    assert later.wait_for(after(wait), 1, 20) == 0


def test_no_sixty_seconds_hold_more_than_the_limit_at_a_steady_pace() -> None:
    """Sending whenever allowed, 10 minutes long: every 60 s window stays at the limit."""
    sent: list[float] = []
    window, now = RateWindow.at(T0, None, 0, 0), 0.0
    while now < 600:
        at = after(now)
        window = RateWindow.at(at, window.start, window.current, window.previous)
        wait = window.wait_for(at, 1, 20)
        if wait == 0:
            window = window.taken(1)
            sent.append(now)
        now += max(wait, 0.25)
    for start in range(0, 540, 5):
        in_window = [t for t in sent if start <= t < start + 60]
        assert len(in_window) <= 21  # the estimate may be off by a part, never a burst
    assert len(sent) >= 9 * 20  # and the device is not starved either


def test_a_message_longer_than_the_limit_goes_when_the_device_is_idle() -> None:
    window = RateWindow.at(T0, None, 0, 0)
    assert window.wait_for(T0, 25, 20) == 0


def test_counts_age_out_after_two_minutes() -> None:
    full = RateWindow(T0, 20, 20)
    assert RateWindow.at(after(121), full.start, full.current, full.previous) == RateWindow(
        after(121)
    )
