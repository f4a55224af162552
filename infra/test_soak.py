"""The soak's checker finds each kind of breach: a checker that cannot fail proves nothing."""

from __future__ import annotations

import json
from pathlib import Path

from infra.soak import order
from infra.soak_check import Placed, check

DEMO = json.loads((Path(__file__).parent / "demo-data.json").read_text())
AT = ["2026-11-27T10:00:00.000000001Z", "2026-11-27T10:00:00.5Z", "2026-11-27T10:00:01Z"]


class FakeEmulator:
    def __init__(self, orders, events, dead=()):
        self.tables = {"OrdersTable": orders, "OutboxTable": events}
        self.dead = list(dead)

    def scan(self, logical_id):
        return self.tables[logical_id]

    def peek(self, logical_id):
        return self.dead if logical_id == "ConsumerValidationDLQ" else []

    def relay_failures(self):
        return []


def stored(order_id, body, statuses, **extra):
    return {"pk": f"ORDER#{order_id}", "orderId": order_id, "status": statuses[-1], **body,
            "history": [{"status": s, "at": AT[i]} for i, s in enumerate(statuses)], **extra}


def terminal(order_id, detail_type="OrderValidated"):
    return {"orderId": order_id, "detailType": detail_type}


def placed(order_id, body, kind="valid"):
    return Placed(kind, f"key-{order_id}", body, 1, [(202, order_id)])


VALID = order(lines=[("item-1", 2)])
TOTAL = {"currency": "EUR", "amountMinor": 2500}
GOOD = stored("a", VALID, ["PENDING", "CONSUMER_VALIDATED", "VALIDATED"], total=TOTAL)


def breaches(orders, events, placements, dead=()):
    found = check(FakeEmulator(orders, events, dead), placements, DEMO)["breaches"]
    return {name: len(items) for name, items in found.items() if items}


def test_a_clean_run_has_no_breach():
    assert breaches([GOOD], [terminal("a")], [placed("a", VALID)]) == {}


def test_each_breach_is_found():
    assert breaches([], [], [placed("a", VALID)]) == {"lost": 1}
    assert breaches([GOOD], [terminal("a"), terminal("a")], [placed("a", VALID)]) == {"double": 1}
    wrong_total = {**GOOD, "total": {"currency": "EUR", "amountMinor": 1}}
    assert breaches([wrong_total], [terminal("a")], [placed("a", VALID)]) == {"wrong": 1}
    suspended = order(consumer="consumer-2")
    assert breaches([stored("a", suspended, ["PENDING", "CONSUMER_VALIDATED", "VALIDATED"], total=TOTAL)], [terminal("a")],
                    [placed("a", suspended)]) == {"wrong": 1}
    skipped = stored("a", VALID, ["PENDING", "VALIDATED"], total=TOTAL)
    assert breaches([skipped], [terminal("a")], [placed("a", VALID)]) == {"history": 1}
    assert breaches([GOOD, {**GOOD, "pk": "ORDER#b", "orderId": "b"}], [terminal("a")],
                    [placed("a", VALID)]) == {"orders nobody placed": 1}
    two = Placed("valid", "k", VALID, 2, [(202, "a"), (202, "b")])
    assert "one key, several orders" in breaches([GOOD], [terminal("a")], [two])


def test_an_undecided_order_is_lost_unless_a_dead_letter_queue_holds_it():
    waiting = stored("a", VALID, ["PENDING"])
    assert breaches([waiting], [], [placed("a", VALID)]) == {"lost": 1}
    dead = [{"Body": json.dumps({"detail": {"orderId": "a"}}),
             "MessageAttributes": {"DeadLetterReason": {"StringValue": "x"}}}]
    assert breaches([waiting], [], [placed("a", VALID)], dead) == {}
