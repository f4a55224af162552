"""The SQS mapping's batching window, without an emulator: a scripted queue and a clock of the
test's own."""

from __future__ import annotations

from typing import Any

import pytest

from . import mappings
from .mappings import SqsMapping


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class ScriptedQueue:
    """Each receive answers the next (seconds it takes, messages) of the script, and records the
    wait it was asked for."""

    def __init__(self, clock: Clock, script: list[tuple[float, int]]):
        self.clock, self.script = clock, list(script)
        self.waits: list[int] = []

    def receive_message(self, **request: Any) -> dict[str, Any]:
        self.waits.append(request["WaitTimeSeconds"])
        took, count = self.script.pop(0) if self.script else (request["WaitTimeSeconds"], 0)
        self.clock.now += took
        return {"Messages": [{"MessageId": str(i)} for i in range(count)]}


def gather(monkeypatch, window: float, batch_size: int, script: list[tuple[float, int]]):
    clock = Clock()
    monkeypatch.setattr(mappings, "time", clock)
    queue = ScriptedQueue(clock, script)
    mapping = object.__new__(SqsMapping)  # only what _gather reads
    mapping.sqs, mapping.queue_url, mapping.window, mapping.batch_size = queue, "q", window, batch_size
    started = clock.now
    messages = mapping._gather()
    return len(messages), queue.waits, clock.now - started


def test_without_a_window_the_batch_is_what_one_receive_gets(monkeypatch):
    assert gather(monkeypatch, 0, 10, [(3.0, 2), (0.0, 5)]) == (2, [20], pytest.approx(3.0))


def test_an_idle_queue_is_one_long_poll(monkeypatch):
    assert gather(monkeypatch, 5, 10, [(20.0, 0)]) == (0, [20], pytest.approx(20.0))


@pytest.mark.parametrize("window", [1, 2, 5])
def test_with_a_window_reading_goes_on_until_it_has_passed_since_the_first_message(monkeypatch, window):
    count, waits, took = gather(monkeypatch, window, 10, [(0.0, 1), (0.5, 1)])
    assert count == 2
    assert took == pytest.approx(window)  # never longer than the window
    assert len(waits) <= 4  # long polls, not a busy loop


def test_a_full_batch_is_invoked_without_waiting_for_the_window(monkeypatch):
    assert gather(monkeypatch, 30, 10, [(0.0, 6), (0.2, 4)]) == (10, [20, 20], pytest.approx(0.2))
