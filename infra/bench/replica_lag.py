"""Benchmark: replica lag on the local stack. A restaurant's menu is changed through its owner's
API (`PUT /restaurants/{id}`) and the order context's replica is read until it holds the new
version: the time from the owner's answer to the replica's update, p50 and p99, and the
requests each change costs along the way (counted from the path, printed beside)."""

from __future__ import annotations

import json
import statistics
import time

import requests

from infra.devstack.identity import token_for

from .local_stack import client, devstack

CHANGES = 100


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    with devstack() as state:
        session = requests.Session()
        session.headers.update({"Authorization": f"Bearer {token_for(state, operator=True)}",
                                "Content-Type": "application/json"})
        dynamodb = client("dynamodb")
        table = state["resources"]["ReplicasTable"]
        url = f"{state['api']}/restaurants/bench-restaurant"
        lags = []
        for change in range(CHANGES):
            body = {"name": "Bench", "acceptingOrders": True, "menu": [
                {"menuItemId": "dish", "name": "Dish", "available": True,
                 "price": {"currency": "EUR", "amountMinor": 1000 + change}}]}
            answer = session.put(url, data=json.dumps(body), timeout=30)
            answered = time.perf_counter()
            version = answer.json()["version"]
            while True:
                item = dynamodb.get_item(TableName=table, Key={"pk": {"S": "RESTAURANT#bench-restaurant"}},
                                         ConsistentRead=True).get("Item")
                if item and int(item["version"]["N"]) >= version:
                    break
                time.sleep(0.005)
            lags.append(time.perf_counter() - answered)
        ms = [lag * 1000 for lag in lags]
        print(f"replica lag, owner's answer to replica updated ({CHANGES} menu changes, one at a time):")
        print(f"  p50 {statistics.median(ms):.0f} ms   p99 {percentile(ms, 0.99):.0f} ms   max {max(ms):.0f} ms")
        print("requests per change: PUT (API Gateway 1, Lambda 1), owner GetItem 1 + TransactWriteItems 1 "
              "(2 writes), stream read by the relay, PutEvents 1 entry, rule delivery to SQS 1, "
              "SQS receive + delete (batched), replica-updater Lambda 1, PutItem 1")


if __name__ == "__main__":
    main()
