"""The soak's checker: its own copy of the rules (never the project's code: a second opinion,
not the first one repeated), the stack read through the AWS API alone as an operator reads AWS,
and the verdict that nothing accepted was lost, doubled or decided wrongly, with its table."""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

DLQS = ("ConsumerValidationDLQ", "RestaurantValidationDLQ", "OrderRepliesDLQ", "EventDeliveryFailures")
TERMINAL = {"VALIDATED", "REJECTED"}
# The state machine, as DESIGN.md draws it.
MOVES = {"PENDING": {"CONSUMER_VALIDATED", "ORDER_DETAILS_VALIDATED", "REJECTED"},
         "CONSUMER_VALIDATED": {"VALIDATED", "REJECTED"},
         "ORDER_DETAILS_VALIDATED": {"VALIDATED", "REJECTED"}}


def expected_outcome(body: dict[str, Any], demo: dict[str, Any]) -> tuple[str, Any]:
    """("VALIDATED", total) or ("REJECTED", the reason), from the demo data."""
    consumers, restaurants = demo["consumers"], demo["restaurants"]
    consumer = consumers.get(body["consumerId"])
    if consumer is None:
        return "REJECTED", f"consumer {body['consumerId']} is unknown"
    if consumer["status"] != "ACTIVE":
        return "REJECTED", f"consumer {body['consumerId']} is suspended"
    restaurant = restaurants.get(body["restaurantId"])
    if restaurant is None:
        return "REJECTED", f"restaurant {body['restaurantId']} is unknown"
    if not restaurant["acceptingOrders"]:
        return "REJECTED", f"restaurant {body['restaurantId']} is not accepting orders"
    menu = {item["menuItemId"]: item for item in restaurant["menu"]}
    total = 0
    for line in body["lineItems"]:
        item = menu.get(line["menuItemId"])
        if item is None:
            return "REJECTED", (f"menu item {line['menuItemId']} is not on the menu of restaurant "
                                f"{body['restaurantId']}")
        if not item["available"]:
            return "REJECTED", f"menu item {line['menuItemId']} is not available"
        total += item["price"]["amountMinor"] * line["quantity"]
    return "VALIDATED", {"currency": restaurant["menu"][0]["price"]["currency"], "amountMinor": total}


@dataclass
class Placed:
    kind: str
    key: str
    body: dict[str, Any]
    copies: int
    answers: list[tuple[int, str | None]] = field(default_factory=list)  # (status, orderId)
    client_retries: int = 0


class Emulator:
    """The local stack read through the AWS API, as an operator would read AWS."""

    def __init__(self, state: dict[str, Any]):
        import boto3

        self.state = state
        self.kw = dict(endpoint_url=state["endpoint"], region_name=state["region"],
                       aws_access_key_id="testing", aws_secret_access_key="testing")
        self.boto3 = boto3

    def client(self, service: str):
        return self.boto3.client(service, **self.kw)

    def scan(self, logical_id: str) -> list[dict[str, Any]]:
        from boto3.dynamodb.types import TypeDeserializer

        plain = TypeDeserializer()
        pages = self.client("dynamodb").get_paginator("scan").paginate(
            TableName=self.state["resources"][logical_id], ConsistentRead=True)
        return [{k: plain.deserialize(v) for k, v in item.items()} for page in pages for item in page["Items"]]

    def queue_depth(self, logical_id: str) -> int:
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=self.state["resources"][logical_id],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        return sum(int(v) for v in attributes.values())

    def peek(self, logical_id: str) -> list[dict[str, Any]]:
        """Every message in a queue, left in it."""
        sqs, url = self.client("sqs"), self.state["resources"][logical_id]
        seen: dict[str, dict[str, Any]] = {}
        while True:
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30,
                                        MessageAttributeNames=["All"]).get("Messages", [])
            if not batch:
                break
            for message in batch:
                seen[message["MessageId"]] = message
        for message in seen.values():
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"],
                                          VisibilityTimeout=0)
        return list(seen.values())

    def relay_failures(self) -> list[str]:
        """The order ids of outbox rows the relay dead-lettered (their image is the message), or
        of a batch a mapping gave up on (read back from the stream)."""
        order_ids = []
        streams = self.client("dynamodbstreams")
        for message in self.peek("OutboxRelayFailures"):
            body = json.loads(message["Body"])
            if "DDBStreamBatchInfo" not in body:
                order_ids.append(body.get("orderId", {}).get("S", "?"))
                continue
            info = body["DDBStreamBatchInfo"]
            iterator = streams.get_shard_iterator(
                StreamArn=info["streamArn"], ShardId=info["shardId"], ShardIteratorType="AT_SEQUENCE_NUMBER",
                SequenceNumber=info["startSequenceNumber"])["ShardIterator"]
            records = streams.get_records(ShardIterator=iterator, Limit=info["batchSize"])["Records"]
            order_ids += [r["dynamodb"]["NewImage"]["orderId"]["S"] for r in records]
        return order_ids


def dead_letters(emulator: Emulator) -> dict[str, list[str]]:
    """What waits in a dead-letter queue or the relay's failure queue, by order id, with why."""
    dead: dict[str, list[str]] = {}
    for dlq in DLQS:
        for message in emulator.peek(dlq):
            try:
                order_id = json.loads(message["Body"])["detail"]["orderId"]
            except (ValueError, KeyError, TypeError):
                order_id = "?"
            reason = message.get("MessageAttributes", {}).get("DeadLetterReason", {}).get(
                "StringValue", "redriven after 5 receives")
            dead.setdefault(order_id, []).append(f"{dlq}: {reason}")
    for order_id in emulator.relay_failures():
        dead.setdefault(order_id, []).append("OutboxRelayFailures")
    return dead


def drain(emulator: Emulator, accepted: set[str], timeout: float) -> float:
    """Waits until every accepted order is decided or dead-lettered and no queue holds a
    message; answers how long that took."""
    began = time.time()
    queues = ("ConsumerValidationQueue", "RestaurantValidationQueue", "OrderRepliesQueue")
    while time.time() - began < timeout:
        # Queue depths are cheap to read; a scan of every order is not, and would slow the
        # stack it watches, so it waits until the queues are empty.
        if all(emulator.queue_depth(q) == 0 for q in queues):
            orders = {o["orderId"]: o for o in emulator.scan("OrdersTable") if "orderId" in o}
            undecided = {i for i in accepted if orders.get(i, {}).get("status") not in TERMINAL}
            if not undecided or undecided <= set(dead_letters(emulator)):
                break
        time.sleep(2)
    return time.time() - began


def check(emulator: Emulator, placed: list[Placed], demo: dict[str, Any]) -> dict[str, Any]:
    """The invariants, from the tables and queues alone."""
    orders = {o["orderId"]: o for o in emulator.scan("OrdersTable") if str(o["pk"]).startswith("ORDER#")}
    terminal_events = Counter(row["orderId"] for row in emulator.scan("OutboxTable")
                              if row["detailType"] in ("OrderValidated", "OrderRejected"))
    dead = dead_letters(emulator)
    breaches: dict[str, list[str]] = {"lost": [], "double": [], "wrong": [], "history": [],
                                      "one key, several orders": [], "orders nobody placed": []}
    outcome = Counter()
    dead_reasons: Counter = Counter()
    times: list[float] = []
    accepted: set[str] = set()
    for item in placed:
        ids = {order_id for status, order_id in item.answers if status == 202}
        if len(ids) > 1:
            breaches["one key, several orders"].append(f"{item.key}: {sorted(ids)}")
        if not ids:
            outcome["never accepted"] += 1
            continue
        order_id = ids.pop()
        accepted.add(order_id)
        stored = orders.get(order_id)
        if stored is None:
            breaches["lost"].append(f"{order_id}: answered 202, not stored")
            continue
        status = stored["status"]
        if status not in TERMINAL:
            if order_id in dead:
                outcome["dead-lettered"] += 1
                for reason in dead[order_id]:
                    dead_reasons[reason] += 1
            else:
                breaches["lost"].append(f"{order_id}: {status} after the drain, in no DLQ")
            continue
        outcome[status.lower()] += 1
        if terminal_events[order_id] != 1:
            breaches["double"].append(f"{order_id}: {terminal_events[order_id]} terminal events")
        want, detail = expected_outcome(item.body, demo)
        if status != want:
            breaches["wrong"].append(f"{order_id} ({item.kind}): {status}, expected {want} {detail}")
        elif want == "VALIDATED" and stored.get("total") != detail:
            breaches["wrong"].append(f"{order_id}: total {stored.get('total')}, expected {detail}")
        elif want == "REJECTED" and list(stored.get("rejectionReasons", [])) != [detail]:
            breaches["wrong"].append(f"{order_id}: reasons {stored.get('rejectionReasons')}, expected {detail}")
        history = [change["status"] for change in stored["history"]]
        stamps = [change["at"] for change in stored["history"]]
        legal = history[0] == "PENDING" and all(b in MOVES.get(a, set()) for a, b in zip(history, history[1:]))
        if not legal or stamps != sorted(stamps) or history[-1] != status:
            breaches["history"].append(f"{order_id}: {history}")
        times.append(_seconds(stamps[-1]) - _seconds(stamps[0]))
    for order_id in set(orders) - accepted:
        breaches["orders nobody placed"].append(order_id)
    return {"breaches": breaches, "outcome": outcome, "times": times, "accepted": accepted,
            "dead": dead_reasons}


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(placed: list[Placed], refusals: Counter, result: dict[str, Any], faults: dict[str, Any],
           stops: Counter, took: float, drained: float) -> None:
    outcome, breaches, times = result["outcome"], result["breaches"], result["times"]
    rows = [
        ("orders placed (distinct keys)", len(placed)),
        ("requests sent for them, copies included", sum(len(p.answers) for p in placed)),
        ("  of which client retries after a 5xx", sum(p.client_retries for p in placed)),
        ("  keys sent more than once", sum(1 for p in placed if p.copies > 1)),
        ("accepted (202)", len(result["accepted"])),
        ("validated", outcome["validated"]),
        ("rejected", outcome["rejected"]),
        ("dead-lettered, with the reason", outcome["dead-lettered"]),
        ("never accepted", outcome["never accepted"]),
        ("refused requests (400/415/422) sent", sum(v for k, v in refusals.items() if k.startswith("expected"))),
        ("  answered otherwise than expected", refusals["wrong answer"]),
    ]
    for name, items in breaches.items():
        rows.append((f"BREACH {name}" if items else name, len(items)))
    rows += [
        ("time to outcome p50 (s)", f"{statistics.median(times):.2f}" if times else "-"),
        ("time to outcome p99 (s)", f"{percentile(times, 0.99):.2f}"),
        ("placing took (s)", f"{took:.0f}"),
        ("  requests per second", f"{(sum(len(p.answers) for p in placed) + sum(v for k, v in refusals.items() if k.startswith('expected'))) / max(took, 1e-9):.1f}"),
        ("drain took (s)", f"{drained:.0f}"),
    ]
    for name, count in sorted(faults["counts"].items()):
        rows.append((f"fault {name}", count))
    for name, count in sorted(faults["delivery"]["counts"].items()):
        rows.append((f"fault {name}", count))
    for name, count in sorted(stops.items()):
        rows.append((f"fault {name} stopped", count))
    width = max(len(name) for name, _ in rows)
    print()
    for name, value in rows:
        print(f"{name:<{width}}  {value:>8}")
    for reason, count in sorted(result["dead"].items()):
        print(f"  dead-lettered: {count} x {reason}")
    for name, items in breaches.items():
        for line in items[:10]:
            print(f"  {name}: {line}")
