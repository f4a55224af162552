"""Faults devstack can inject into the emulator, for tests of the paths that handle them.

`PutEvents` entries can be refused the way EventBridge refuses them under load (per entry,
`InternalFailure`, while the call itself succeeds), for one event source or all."""

from __future__ import annotations

import random
import threading
from typing import Any

from moto.events.models import EventsBackend


class PutEventsFaults:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rate = 0.0
        self.source: str | None = None
        self.injected = 0
        self.random = random.Random(7)

    def set(self, rate: float, source: str | None) -> None:
        with self.lock:
            self.rate, self.source = rate, source

    def refuse(self, event: dict[str, Any]) -> bool:
        with self.lock:
            if self.source not in (None, event.get("Source")) or self.random.random() >= self.rate:
                return False
            self.injected += 1
            return True

    def describe(self) -> dict[str, Any]:
        with self.lock:
            return {"failureRate": self.rate, "source": self.source, "injected": self.injected}


PUT_EVENTS = PutEventsFaults()


def apply() -> None:
    """Wraps moto's PutEvents so that chosen entries are refused. Call before the server starts."""
    original = EventsBackend.put_events

    def put_events(self: EventsBackend, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(events) > 10:
            return original(self, events)  # moto's own validation error
        results = []
        for event in events:
            if PUT_EVENTS.refuse(event):
                results.append({"ErrorCode": "InternalFailure",
                                "ErrorMessage": "refused by devstack's fault injection"})
            else:
                results.extend(original(self, [event]))
        return results

    EventsBackend.put_events = put_events
