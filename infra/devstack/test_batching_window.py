"""The SQS mapping's batching window, without an emulator: a scripted queue and a clock of the
test's own, which moves a millisecond each time it is read, as a real one does."""

from __future__ import annotations

from typing import Any

import pytest

from . import mappings
from .mappings import SqsMapping


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def time(self) -> float:
        self.now += 0.001
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class ScriptedQueue:
    """Each receive answers the next (seconds it takes, messages) of the script, then nothing
    after the wait it was asked for; records the waits asked for."""

    def __init__(self, clock: Clock, script: list[tuple[float, int]]):
        self.clock, self.script = clock, list(script)
        self.waits: list[int] = []

    def receive_message(self, **request: Any) -> dict[str, Any]:
        self.waits.append(request["WaitTimeSeconds"])
        took, count = self.script.pop(0) if self.script else (request["WaitTimeSeconds"], 0)
        self.clock.now += took
        return {"Messages": [{"MessageId": str(i)} for i in range(count)]}


def gather(monkeypatch, window: float, batch_size: int, script: list[tuple[float, int]]):
    """(messages in the batch, the waits asked for, seconds it took)."""
    clock = Clock()
    monkeypatch.setattr(mappings, "time", clock)
    queue = ScriptedQueue(clock, script)
    mapping = object.__new__(SqsMapping)  # only what _gather reads
    mapping.sqs, mapping.queue_url, mapping.window, mapping.batch_size = queue, "q", window, batch_size
    started = clock.now
    messages = mapping._gather()
    return len(messages), queue.waits, clock.now - started


def test_without_a_window_the_batch_is_what_one_receive_gets(monkeypatch):
    count, waits, took = gather(monkeypatch, 0, 10, [(3.0, 2), (0.0, 5)])
    assert (count, waits) == (2, [20]) and took == pytest.approx(3.0, abs=0.01)


def test_an_idle_queue_is_one_long_poll(monkeypatch):
    count, waits, took = gather(monkeypatch, 5, 10, [(20.0, 0)])
    assert (count, waits) == (0, [20]) and took == pytest.approx(20.0, abs=0.01)


@pytest.mark.parametrize("window", [1, 2, 5, 10])
def test_with_a_window_reading_goes_on_until_it_has_passed(monkeypatch, window):
    count, waits, took = gather(monkeypatch, window, 10, [(0.1, 1), (0.4, 1)])
    assert count == 2
    # The window opened as the call began (the previous invocation's end): it ends there.
    assert took == pytest.approx(window, abs=0.05)
    assert len(waits) <= 8  # long polls, then a receive every 0.2 s in the last second


def test_a_batch_filled_in_the_last_second_is_invoked_at_once(monkeypatch):
    count, _, took = gather(monkeypatch, 1, 10, [(0.1, 6), (0.3, 4)])
    assert count == 10 and took < 0.7


def test_a_message_after_the_window_has_passed_is_invoked_at_once(monkeypatch):
    count, waits, took = gather(monkeypatch, 1, 10, [(3.0, 1)])
    assert (count, waits) == (1, [20]) and took == pytest.approx(3.0, abs=0.01)
