"""Benchmark: POST /orders latency on empty tables and after 10,000 stored orders, on the local
stack, beside the latency of the emulator's own TransactWriteItems measured in the same run.

Run with `make bench-local-stack`. It prints figures; it asserts nothing."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
import uuid

import requests

from infra.devstack.launcher import PLAIN_MOTO_PORT

from .local_stack import API_PORT, client, consumer_session, devstack

STORED = 10_000
SAMPLES = 200
ORDER = json.dumps({"consumerId": "consumer-1", "restaurantId": "restaurant-1",
                    "lineItems": [{"menuItemId": "item-1", "quantity": 2}]})


def summary(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[int(len(ms) * 0.95) - 1]
    return f"median {statistics.median(ms):7.1f} ms   p95 {p95:7.1f} ms   (n={len(ms)})"


def post_latencies(session: requests.Session, n: int) -> list[float]:
    url = f"http://127.0.0.1:{API_PORT}/orders"
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        response = session.post(url, data=ORDER, headers={"Content-Type": "application/json"})
        samples.append(time.perf_counter() - start)
        assert response.status_code == 202, response.text
    return samples


def fill(dynamodb, orders_table: str, outbox_table: str, template_order: dict, n: int) -> None:
    """Stores n order-shaped rows and n outbox rows, 25 per BatchWriteItem."""
    for start in range(0, n, 25):
        order_rows, outbox_rows = [], []
        for _ in range(min(25, n - start)):
            order_id = str(uuid.uuid4())
            order_rows.append({"PutRequest": {"Item": {
                **template_order, "pk": {"S": f"ORDER#{order_id}"}, "orderId": {"S": order_id}}}})
            event_id = str(uuid.uuid4())
            outbox_rows.append({"PutRequest": {"Item": {
                "eventId": {"S": event_id}, "orderId": {"S": order_id}, "source": {"S": "orders"},
                # A detail type no rule routes, should the relay ever publish it.
                "detailType": {"S": "BenchmarkFill"}, "createdAt": {"S": "2026-11-26T12:00:00Z"},
                "detail": {"S": json.dumps({"eventId": event_id, "orderId": order_id})},
                "expiresAt": {"N": "0"}}}})
        dynamodb.batch_write_item(RequestItems={orders_table: order_rows, outbox_table: outbox_rows})


def transaction_latencies(dynamodb, orders_table: str, outbox_table: str, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        items = [
            {"Put": {"TableName": orders_table, "Item": {"pk": {"S": f"ORDER#{uuid.uuid4()}"}},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"TableName": outbox_table, "Item": {"eventId": {"S": str(uuid.uuid4())}},
                     "ConditionExpression": "attribute_not_exists(eventId)"}},
        ]
        start = time.perf_counter()
        dynamodb.transact_write_items(TransactItems=items)
        samples.append(time.perf_counter() - start)
    return samples


def settle(state: dict) -> None:
    """Waits until the validators and the replies have worked off what the relay sent them."""
    sqs = client("sqs")
    queues = [state["resources"][q] for q in
              ("ConsumerValidationQueue", "RestaurantValidationQueue", "OrderRepliesQueue")]
    quiet_since = time.time()
    while time.time() - quiet_since < 2:
        for url in queues:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
            if any(int(v) for v in attributes.values()):
                quiet_since = time.time()
        time.sleep(0.2)


def create_tables(dynamodb) -> tuple[str, str]:
    for name, key in (("orders", "pk"), ("outbox", "eventId")):
        dynamodb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                              KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                              StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    return "orders", "outbox"


def main() -> None:
    plain = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(PLAIN_MOTO_PORT)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with devstack() as state:
        names = state["resources"]
        orders, outbox = names["OrdersTable"], names["OutboxTable"]
        ours = client("dynamodb")
        session = consumer_session(state)
        post_latencies(session, 20)  # warm-up: connections, first allocations
        flowing = post_latencies(session, SAMPLES)

        # Every accepted order sets off the relay, both validators and the replies: on two cores
        # that work competes with the next request. With the relay stopped the rest stays idle
        # too (the stream waits), so the figures below are about the API and the table size.
        requests.post(f"{state['control']}/functions/OutboxRelayFunction/stop", timeout=10)
        settle(state)
        tx_empty = transaction_latencies(ours, orders, outbox, 50)
        print(f"POST /orders through devstack (Lambda runtime API + patched moto), {SAMPLES} sequential requests")
        print(f"  whole flow running     {summary(flowing)}   (for context)")
        empty = post_latencies(session, SAMPLES)
        print(f"  ~empty tables          {summary(empty)}   (relay stopped, as below)")
        template_order = ours.scan(TableName=orders, Limit=1)["Items"][0]
        fill(ours, orders, outbox, template_order, STORED)
        full = post_latencies(session, SAMPLES)
        print(f"  +{STORED:,} orders        {summary(full)}")
        ratio = statistics.median(full) / statistics.median(empty)
        print(f"  ratio of medians       {ratio:.2f}x (target: within 1.5x)")

        print("\nTransactWriteItems (order + outbox put), measured directly on each emulator")
        theirs = None
        for _ in range(50):
            try:
                theirs = client("dynamodb", PLAIN_MOTO_PORT)
                theirs.list_tables()
                break
            except Exception:  # noqa: BLE001 - the plain server is still starting
                time.sleep(0.2)
        plain_orders, plain_outbox = create_tables(theirs)
        print(f"  patched moto, ~empty  {summary(tx_empty)}")
        print(f"  patched moto, +{STORED:,} {summary(transaction_latencies(ours, orders, outbox, 50))}")
        print(f"  plain moto,  empty     {summary(transaction_latencies(theirs, plain_orders, plain_outbox, 50))}")
        fill(theirs, plain_orders, plain_outbox, template_order, STORED)
        print(f"  plain moto,  +{STORED:,} {summary(transaction_latencies(theirs, plain_orders, plain_outbox, 5))}")
    plain.terminate()


if __name__ == "__main__":
    main()
