"""Benchmark: outbox rows through the relay on the local stack. Writes rows straight into the
outbox table, then reads the relay's own log lines until every row is published, and prints
records per second and records per PutEvents call. It asserts nothing."""

from __future__ import annotations

import json
import time
import uuid

from .local_stack import LOGS, client, devstack

ROWS = 2_000


def relay_totals() -> tuple[int, int, int]:
    """(published, PutEvents calls, invocations) from the relay's log so far."""
    published = calls = invocations = 0
    path = LOGS / "OutboxRelayFunction.log"
    if path.exists():
        for line in path.read_text().splitlines():
            if '"relay batch done"' in line:
                entry = json.loads(line)
                published += entry["published"]
                calls += entry["calls"]
                invocations += 1
    return published, calls, invocations


def main() -> None:
    with devstack() as state:
        dynamodb = client("dynamodb")
        table = state["resources"]["OutboxTable"]
        rows = []
        for _ in range(ROWS):
            order_id, event_id = str(uuid.uuid4()), str(uuid.uuid4())
            detail = json.dumps({"eventId": event_id, "orderId": order_id, "schemaVersion": 1})
            rows.append({"eventId": {"S": event_id}, "orderId": {"S": order_id},
                         "source": {"S": "orders"}, "detailType": {"S": "BenchmarkEvent"},
                         "detail": {"S": detail}, "createdAt": {"S": "2026-11-26T12:00:00Z"},
                         "expiresAt": {"N": "0"}})
        start = time.perf_counter()
        for i in range(0, ROWS, 25):
            dynamodb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": r}} for r in rows[i:i + 25]]})
        written = time.perf_counter() - start
        while relay_totals()[0] < ROWS and time.perf_counter() - start < 300:
            time.sleep(0.2)
        elapsed = time.perf_counter() - start
        published, calls, invocations = relay_totals()
        print(f"outbox relay on the local stack: {ROWS:,} rows written in {written:.1f} s")
        print(f"  published {published:,} in {elapsed:.1f} s from the first write: {published / elapsed:,.0f} records/s")
        print(f"  {calls:,} PutEvents calls: {published / max(calls, 1):.2f} records per call")
        print(f"  {invocations:,} invocations: {published / max(invocations, 1):.1f} records per invocation")


if __name__ == "__main__":
    main()
