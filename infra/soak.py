"""The chaos soak: thousands of orders through a local stack that fails the way AWS does, then a
check, through the AWS API alone, that nothing accepted was lost, doubled or decided wrongly.

`python -m infra.soak --orders 5000` (`make soak ORDERS=5000`). It starts a stack of its own with
every fault on, places a mix of valid orders, orders each kind of validation rejects, requests
the API must refuse, and client retries of one `Idempotency-Key` (some at once), while validators
are stopped and started at random and the bus refuses the order context's events for seconds at
a time. Then it turns the faults off, lets the stack drain, reads
the tables and the dead-letter queues, prints a table and exits 1 on any breach.

The checker knows the demo data and the state machine from its own copy of the rules below,
never from the project's code: it is a second opinion, not the first one repeated."""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from infra.bench.local_stack import ROOT, devstack
from infra.devstack.identity import token_for

LOGS = ROOT / ".local" / "soak-logs"
# A message comes back 15 s after a crash instead of 60 s: the soak drains in minutes.
PARAMETERS = ["QueueVisibilityTimeout=15"]
FAULTS = {
    "transactionHoldMs": 5,
    "errors": {"dynamodb": {"throttle": 0.03, "internal": 0.01},
               "events": {"throttle": 0.03, "internal": 0.01},
               "sqs": {"throttle": 0.03, "internal": 0.01}},
    "putEvents": {"failureRate": 0.05},
    "eventDuplicates": 0.05,
    "sqsDuplicates": 0.05,
    "sqsReorder": 0.5,
    "crashes": 0.03,
    "timeouts": 0.01,
}
FAULTS_OFF = {"errors": {}, "putEvents": {"failureRate": 0}, "eventDuplicates": 0, "sqsDuplicates": 0,
              "sqsReorder": 0, "crashes": 0, "timeouts": 0}
VALIDATORS = ("ConsumerValidatorFunction", "RestaurantValidatorFunction")
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


def order(consumer="consumer-1", restaurant="restaurant-1", lines=(("item-1", 2), ("item-2", 1))):
    return {"consumerId": consumer, "restaurantId": restaurant,
            "lineItems": [{"menuItemId": m, "quantity": q} for m, q in lines]}


# (kind, weight, body or raw request). Each invalid order has exactly one cause. What the order
# context's replica does not know (an unknown consumer or restaurant) is accepted and rejected
# by the validators; what it proves wrong is refused at intake (REFUSED).
ORDERS = [
    ("valid", 60, lambda r: order(lines=[("item-1", r.randint(1, 5)), ("item-2", r.randint(1, 3))])),
    ("valid, near the limit", 4, lambda r: order(consumer="consumer-3", lines=[("item-1", 2)])),
    ("unknown consumer", 4, lambda r: order(consumer=f"consumer-{r.randint(100, 999)}")),
    ("unknown restaurant", 4, lambda r: order(restaurant="restaurant-9")),
]
REFUSED = [
    ("suspended consumer", 4, 422, lambda r: json.dumps(order(consumer="consumer-2")), "application/json"),
    ("closed restaurant", 4, 422, lambda r: json.dumps(order(restaurant="restaurant-2", lines=[("item-1", 1)])),
     "application/json"),
    ("unknown item", 4, 422, lambda r: json.dumps(order(lines=[("item-9", 1)])), "application/json"),
    ("unavailable item", 4, 422, lambda r: json.dumps(order(lines=[("item-1", 1), ("item-3", 1)])),
     "application/json"),
    ("over the limit", 4, 422, lambda r: json.dumps(order(consumer="consumer-3", lines=[("item-1", 3)])),
     "application/json"),
    ("bad quantity", 4, 422, lambda r: json.dumps(order(lines=[("item-1", 0)])), "application/json"),
    ("malformed JSON", 4, 400, lambda r: '{"consumerId": ', "application/json"),
    ("wrong content type", 4, 415, lambda r: json.dumps(order()), "text/plain"),
]


@dataclass
class Placed:
    kind: str
    key: str
    body: dict[str, Any]
    copies: int
    answers: list[tuple[int, str | None]] = field(default_factory=list)  # (status, orderId)
    client_retries: int = 0


class Client:
    """A well-behaved client: it retries a 5xx or a lost connection with the same key."""

    def __init__(self, api: str, token: str):
        self.api = api
        self.token = token
        self.local = threading.local()

    def post(self, body: str, content_type: str, key: str | None) -> tuple[requests.Response | None, int]:
        session = getattr(self.local, "session", None) or requests.Session()
        self.local.session = session
        headers = {"Content-Type": content_type, "Authorization": f"Bearer {self.token}",
                   **({"Idempotency-Key": key} if key else {})}
        retries = 0
        for attempt in range(8):
            try:
                answer = session.post(f"{self.api}/orders", data=body, headers=headers, timeout=30)
            except requests.RequestException:
                answer = None
            if answer is not None and answer.status_code < 500:
                return answer, retries
            retries += 1
            time.sleep(min(0.05 * 2 ** attempt, 2))
        return answer, retries


def place_all(client: Client, count: int, seed: int, deadline: float,
              rate: float = 0) -> tuple[list[Placed], Counter]:
    rng = random.Random(seed)
    demo_kinds = [k for k, w, _ in ORDERS for _ in range(w)]
    refused_kinds = [k for k, w, *_ in REFUSED for _ in range(w)]
    share_refused = len(refused_kinds) / (len(refused_kinds) + len(demo_kinds))
    plan: list[tuple[str, Any]] = []
    for _ in range(count):
        if rng.random() < share_refused:
            plan.append(("refused", rng.choice(refused_kinds)))
        else:
            kind = rng.choice(demo_kinds)
            body = next(make for name, _, make in ORDERS if name == kind)(rng)
            copies = 1 if rng.random() < 0.85 else rng.randint(2, 3)
            plan.append(("order", Placed(kind, str(uuid.uuid4()), body, copies)))
    refusals: Counter = Counter()
    lock = threading.Lock()

    began = time.time()

    def run(numbered: tuple[int, tuple[str, Any]]) -> None:
        number, (what, item) = numbered
        if rate:
            time.sleep(max(0.0, began + number / rate - time.time()))
        if time.time() > deadline:
            return
        if what == "refused":
            kind, _, status, make, content_type = next(r for r in REFUSED if r[0] == item)
            answer, _ = client.post(make(rng), content_type, str(uuid.uuid4()))
            with lock:
                refusals["expected " + str(status)] += 1
                refusals["got " + str(answer.status_code if answer is not None else "nothing")] += 1
                if answer is None or answer.status_code != status:
                    refusals["wrong answer"] += 1
            return
        body = json.dumps(item.body)
        # Copies of one request: the first and, for some, a second at the same moment.
        with ThreadPoolExecutor(max_workers=item.copies) as copies:
            results = list(copies.map(lambda _: client.post(body, "application/json", item.key),
                                      range(item.copies)))
        for answer, retries in results:
            order_id = answer.json().get("orderId") if answer is not None and answer.status_code == 202 else None
            item.answers.append((answer.status_code if answer is not None else 0, order_id))
            item.client_retries += retries

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(run, enumerate(plan)))
    return [item for what, item in plan if what == "order" and item.answers], refusals


def chaos_monkey(control: str, stop: threading.Event, seed: int, stops: Counter) -> None:
    """Stops a validator for one to four seconds, every two to six seconds."""
    rng = random.Random(seed)
    while not stop.wait(rng.uniform(2, 6)):
        name = rng.choice(VALIDATORS)
        requests.post(f"{control}/functions/{name}/stop", timeout=10)
        stops[name] += 1
        stop.wait(rng.uniform(1, 4))
        requests.post(f"{control}/functions/{name}/start", timeout=10)
    for name in VALIDATORS:
        requests.post(f"{control}/functions/{name}/start", timeout=10)


def bus_outages(control: str, stop: threading.Event, seed: int, stops: Counter) -> None:
    """Refuses every event of the order context for two to four seconds, every three to eight:
    longer than the relay's retries within an invocation, so the stream mapping's retries carry
    the rows, which must all be published, in order, once the bus accepts again."""
    rng = random.Random(seed + 1)
    while not stop.wait(rng.uniform(3, 8)):
        requests.post(f"{control}/faults", json={"putEvents": {"failureRate": 1.0, "source": "orders"}},
                      timeout=10)
        stops["the bus, for the order context's events,"] += 1
        stop.wait(rng.uniform(2, 4))
        requests.post(f"{control}/faults", json={"putEvents": FAULTS["putEvents"]}, timeout=10)


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--minutes", type=float, default=20, help="placing stops after this long")
    parser.add_argument("--drain-seconds", type=float, default=900)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=0,
                        help="requests per second at most (0: as fast as 8 clients are answered)")
    args = parser.parse_args()
    demo = json.loads((ROOT / "infra" / "demo-data.json").read_text())
    with devstack("soak", LOGS, PARAMETERS, FAULTS) as state:
        stop, stops = threading.Event(), Counter()
        monkeys = [threading.Thread(target=chaos, args=(state["control"], stop, args.seed, stops))
                   for chaos in (chaos_monkey, bus_outages)]
        for monkey in monkeys:
            monkey.start()
        began = time.time()
        try:
            placed, refusals = place_all(Client(state["api"], token_for(state, operator=True)), args.orders, args.seed,
                                         began + args.minutes * 60, args.rate)
        finally:
            stop.set()
            for monkey in monkeys:
                monkey.join()
        took = time.time() - began
        faults = requests.post(f"{state['control']}/faults", json=FAULTS_OFF, timeout=10).json()
        emulator = Emulator(state)
        accepted = {i for p in placed for s, i in p.answers if s == 202}
        drained = drain(emulator, accepted, args.drain_seconds)
        result = check(emulator, placed, demo)
    report(placed, refusals, result, faults, stops, took, drained)
    iam_report = LOGS / "iam-report.txt"  # written by devstack as it stopped
    if iam_report.exists():
        print("\n" + iam_report.read_text())
    breached = any(result["breaches"].values()) or refusals["wrong answer"] or not placed
    print("\nsoak: " + ("FAILED" if breached else "passed"))
    return 1 if breached else 0


if __name__ == "__main__":
    sys.exit(main())
