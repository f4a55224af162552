"""Benchmark: another consumer's `POST /orders` latency while one consumer waits on its orders as
hard as the API lets it (16 threads each asking `Prefer: wait=20` again as soon as answered, on
an order that never changes: 4 waits held, the rest refused `429`), beside the same POSTs with no
one waiting. On the local stack; before the waits had a function of their own and a bound per
caller, 16 waits made the other consumer's POST time out (503 after 30.5 s).

Run with `make bench-local-stack`. It prints figures; it asserts nothing."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter

import requests

from infra.devstack.identity import token_for

from .local_stack import API_PORT, client, devstack
from .place_order import summary

WAITERS = 16
SAMPLES = 100
OTHER = json.dumps({"consumerId": "consumer-3", "restaurantId": "restaurant-1",
                    "lineItems": [{"menuItemId": "item-1", "quantity": 1}]})


def pending_order(state: dict) -> str:
    """consumer-1's order stored PENDING without an OrderCreated: nothing ever decides it."""
    order_id = str(uuid.uuid4())
    client("dynamodb").put_item(TableName=state["resources"]["OrdersTable"], Item={
        "pk": {"S": f"ORDER#{order_id}"}, "orderId": {"S": order_id},
        "consumerId": {"S": "consumer-1"}, "restaurantId": {"S": "restaurant-1"},
        "lineItems": {"L": [{"M": {"menuItemId": {"S": "item-1"}, "quantity": {"N": "1"}}}]},
        "status": {"S": "PENDING"}, "version": {"N": "1"},
        "history": {"L": [{"M": {"status": {"S": "PENDING"}, "at": {"S": "2026-12-01T00:00:00Z"}}}]}})
    return order_id


def posts(session: requests.Session, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        answer = session.post(f"http://127.0.0.1:{API_PORT}/orders", data=OTHER,
                              headers={"Content-Type": "application/json"})
        samples.append(time.perf_counter() - start)
        assert answer.status_code == 202, answer.text
    return samples


def main() -> None:
    with devstack() as state:
        other = requests.Session()
        other.headers["Authorization"] = f"Bearer {token_for(state, 'consumer-3')}"
        posts(other, 20)  # warm-up
        quiet = posts(other, SAMPLES)

        order_id = pending_order(state)
        answered: Counter[int] = Counter()
        stop = threading.Event()

        def wait_hard() -> None:
            waiter = requests.Session()
            waiter.headers["Authorization"] = f"Bearer {token_for(state, 'consumer-1')}"
            while not stop.is_set():
                answer = waiter.get(f"http://127.0.0.1:{API_PORT}/orders/{order_id}",
                                    headers={"Prefer": "wait=20"}, timeout=35)
                answered[answer.status_code] += 1

        threads = [threading.Thread(target=wait_hard, daemon=True) for _ in range(WAITERS)]
        for thread in threads:
            thread.start()
        time.sleep(2)
        loaded = posts(other, SAMPLES)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        print(f"consumer-3's POST /orders, {SAMPLES} sequential requests, on the local stack")
        print(f"  nobody waiting             {summary(quiet)}")
        print(f"  consumer-1 waiting hard    {summary(loaded)}")
        print(f"  consumer-1's answers meanwhile: {dict(sorted(answered.items()))} "
              f"({WAITERS} threads asking again at once; 4 waits held at a time, the rest 429)")


if __name__ == "__main__":
    main()
