"""Faults of delivery that devstack's event source mappings inject, as Lambda's and SQS's own
behaviour produces them on AWS. The emulator's faults (throttles, internal errors, refused
entries, conflicts) are in `faults.py`; the control port takes both in one JSON body.

- `sqsDuplicates`: the share of successfully handled SQS messages that are not deleted but made
  visible again, so they arrive a second time (SQS is at-least-once).
- `sqsReorder`: the share of SQS batches delivered in a shuffled order.
- `crashes`: the share of invocations (SQS and stream) whose instance handles only the first part
  of its batch and then dies without answering; the mapping redelivers as Lambda does (the
  messages after their visibility timeout, the stream batch by its retry policy).
- `timeouts`: the share of invocations that do all their work but answer after the timeout; the
  answer is discarded and the instance replaced, with the same redelivery.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any

KEYS = {"sqsDuplicates", "sqsReorder", "crashes", "timeouts"}


class DeliveryFaults:
    def __init__(self, seed: int = 11) -> None:
        self.lock = threading.Lock()
        self.random = random.Random(seed)
        self.rates = {key: 0.0 for key in KEYS}
        self.counts: Counter[str] = Counter()

    def configure(self, settings: dict[str, Any]) -> None:
        with self.lock:
            for key in KEYS & set(settings):
                rate = float(settings[key])
                if not 0 <= rate <= 1:
                    raise ValueError(f"{key}: a share between 0 and 1, not {rate}")
                self.rates[key] = rate

    def happens(self, key: str) -> bool:
        with self.lock:
            if self.random.random() >= self.rates[key]:
                return False
            self.counts[key] += 1
            return True

    def invocation_fault(self) -> str | None:
        """"crashes", "timeouts" or None for the next invocation."""
        if self.happens("crashes"):
            return "crashes"
        if self.happens("timeouts"):
            return "timeouts"
        return None

    def part(self, records: list[Any]) -> list[Any]:
        """The part of a batch a crashing instance gets through: at least one record, not all
        of a larger batch."""
        with self.lock:
            return records[: self.random.randint(1, max(1, len(records) - 1))]

    def shuffle(self, records: list[Any]) -> None:
        with self.lock:
            self.random.shuffle(records)

    def describe(self) -> dict[str, Any]:
        with self.lock:
            return {**self.rates, "counts": dict(sorted(self.counts.items()))}
