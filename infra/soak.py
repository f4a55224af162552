"""The chaos soak: thousands of orders through a local stack that fails the way AWS does, then a
check, through the AWS API alone, that nothing accepted was lost, doubled or decided wrongly.

`python -m infra.soak --orders 5000` (`make soak ORDERS=5000`). It starts a stack of its own with
every fault on, places a mix of valid orders, orders each kind of validation rejects, requests
the API must refuse, and client retries of one `Idempotency-Key` (some at once), while validators
are stopped and started at random and the bus refuses the order context's events for seconds at
a time. Then it turns the faults off, lets the stack drain, reads
the tables and the dead-letter queues, prints a table and exits 1 on any breach.

The checker (`soak_check.py`) knows the demo data and the state machine from its own copy of
the rules, never from the project's code: it is a second opinion, not the first one repeated."""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from infra.bench.local_stack import ROOT, devstack
from infra.devstack.identity import token_for
from infra.soak_check import Emulator, Placed, check, drain, report

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
