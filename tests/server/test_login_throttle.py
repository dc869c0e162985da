"""The sign-in throttle's windows, with a clock the test moves."""

from __future__ import annotations

from server.login_throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_per_user_slide_out_of_the_window() -> None:
    clock = Clock()
    throttle = LoginThrottle(failures_per_user=2, attempts_per_address=100, window_s=60, clock=clock)
    throttle.record("alice", "10.0.0.1", succeeded=False)
    clock.now += 10
    throttle.record("alice", "10.0.0.2", succeeded=False)
    assert throttle.retry_after("alice", "10.0.0.3") == (50, "user")  # the first leaves in 50 s
    assert throttle.retry_after("bob", "10.0.0.3") is None
    clock.now += 50
    assert throttle.retry_after("alice", "10.0.0.3") is None


def test_successes_count_only_against_the_address() -> None:
    clock = Clock()
    throttle = LoginThrottle(failures_per_user=1, attempts_per_address=3, window_s=60, clock=clock)
    for _ in range(3):
        throttle.record("alice", "10.0.0.1", succeeded=True)
    assert throttle.retry_after("alice", "10.0.0.2") is None
    assert throttle.retry_after("alice", "10.0.0.1") == (60, "address")


def test_memory_is_bounded_by_max_keys() -> None:
    clock = Clock()
    throttle = LoginThrottle(
        failures_per_user=1, attempts_per_address=10**6, window_s=60, max_keys=100, clock=clock
    )
    for i in range(10_000):
        throttle.record(f"name-{i}", "10.0.0.1", succeeded=False)
    assert len(throttle._users._hits) == 100
    assert throttle.retry_after("name-9999", "10.0.0.2") is not None  # the newest are kept
