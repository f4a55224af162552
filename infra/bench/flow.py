"""Benchmark of the local stack itself: how fast the whole flow decides orders, what each
process spends per order, and what the stack costs idle, with devstack's moto speed fixes on and
off (`moto_speedups.py`), each on a fresh stack.

Run with `make bench-local-stack` (or `python -m infra.bench.flow`). It prints figures beside the targets of
the local stack; it asserts nothing."""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import requests

from .local_stack import API_PORT, client, consumer_session, devstack

SATURATION_ORDERS = 400
STEADY_RATE = 20  # orders per second
STEADY_SECONDS = 20
IDLE_SECONDS = 20
ORDER = json.dumps({"consumerId": "consumer-1", "restaurantId": "restaurant-1",
                    "lineItems": [{"menuItemId": "item-1", "quantity": 2}]})
TERMINAL = {"VALIDATED", "REJECTED"}
TICK = os.sysconf("SC_CLK_TCK")


def processes(root: int) -> dict[int, str]:
    """The stack's processes by pid: devstack, the emulator, each function's instances."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = {}, [root]
    while todo:
        pid = todo.pop()
        try:
            command = (Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"))
        except OSError:
            continue
        text = b" ".join(command).decode(errors="replace")
        if pid == root:
            found[pid] = "devstack"
        elif "moto_server" in text:
            found[pid] = f"emulator ({command[command.index(b'--label') + 1].decode()})" \
                if b"--label" in command else "emulator"
        else:
            found[pid] = Path(command[0].decode(errors="replace")).name
        todo += children.get(pid, [])
    return found


def cpu_seconds(root: int) -> dict[str, float]:
    """CPU seconds used so far, summed by process name (instances of a function together)."""
    totals: dict[str, float] = {}
    for pid, name in processes(root).items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        totals[name] = totals.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICK
    return totals


def decided(dynamodb, table: str, order_ids: set[str]) -> dict[str, dict]:
    """The decided orders among `order_ids`, read from the table."""
    found = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            order_id = item.get("orderId", {}).get("S")
            if order_id in order_ids and item.get("status", {}).get("S") in TERMINAL:
                found[order_id] = item
    return found


def place(session: requests.Session) -> str:
    answer = session.post(f"http://127.0.0.1:{API_PORT}/orders", data=ORDER,
                          headers={"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())})
    assert answer.status_code == 202, answer.text
    return answer.json()["orderId"]


def wait_until_decided(state: dict, ids: set[str], timeout: float = 600) -> dict[str, dict]:
    """Waits for the queues to empty (cheap to ask), then reads the orders (a scan, which
    would slow the stack if it ran all along)."""
    dynamodb, sqs = client("dynamodb"), client("sqs")
    queues = [state["resources"][q] for q in ("ConsumerValidationQueue", "RestaurantValidationQueue",
                                               "OrderRepliesQueue")]
    deadline = time.time() + timeout
    while True:
        depth = sum(int(v) for url in queues for v in sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                          "ApproximateNumberOfMessagesNotVisible"])["Attributes"].values())
        if depth == 0 or time.time() > deadline:
            done = decided(dynamodb, state["resources"]["OrdersTable"], ids)
            if len(done) == len(ids) or time.time() > deadline:
                return done
        time.sleep(0.2)


def last_decision(items: dict[str, dict]) -> float:
    return max(datetime.fromisoformat(i["history"]["L"][-1]["M"]["at"]["S"]).timestamp() for i in items.values())


def time_to_outcome(items: dict[str, dict]) -> list[float]:
    spans = []
    for item in items.values():
        history = [datetime.fromisoformat(c["M"]["at"]["S"]) for c in item["history"]["L"]]
        spans.append((history[-1] - history[0]).total_seconds())
    return spans


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def measure(speedups: bool) -> dict:
    with devstack(speedups=speedups) as state:
        time.sleep(5)  # start-up settles
        before = cpu_seconds(state["pid"])
        time.sleep(IDLE_SECONDS)
        idle = sum(cpu_seconds(state["pid"]).values()) - sum(before.values())

        # Saturation: eight clients place orders as fast as they are answered.
        local = threading.local()

        def session() -> requests.Session:
            local.session = getattr(local, "session", None) or consumer_session(state)
            return local.session

        before = cpu_seconds(state["pid"])
        began = time.time()
        with ThreadPoolExecutor(max_workers=8) as pool:
            ids = set(pool.map(lambda _: place(session()), range(SATURATION_ORDERS)))
        done = wait_until_decided(state, ids)
        after = cpu_seconds(state["pid"])
        took = last_decision(done) - began
        per_order = {name: (after.get(name, 0) - before.get(name, 0)) / len(ids) for name in after}

        # Steady load: STEADY_RATE orders a second, each placed on its own schedule.
        steady: set[str] = set()
        began_steady = time.time()
        with ThreadPoolExecutor(max_workers=16) as pool:
            futures = []
            for i in range(STEADY_RATE * STEADY_SECONDS):
                time.sleep(max(0.0, began_steady + i / STEADY_RATE - time.time()))
                futures.append(pool.submit(lambda: place(session())))
            steady = {f.result() for f in futures}
        steady_done = wait_until_decided(state, steady)
        spans = time_to_outcome(steady_done)
    return {"idle": idle / IDLE_SECONDS * 100, "rate": len(done) / took, "decided": len(done),
            "placed": len(ids), "per_order": per_order, "p50": statistics.median(spans) if spans else float("nan"),
            "p99": percentile(spans, 0.99), "steady_decided": len(steady_done), "steady_placed": len(steady)}


def main() -> None:
    import sys

    results = {"with speed fixes": measure(True)}
    if "--only-fixed" not in sys.argv:
        results["without (plain moto)"] = measure(False)
    print(f"\nLocal stack, whole flow ({SATURATION_ORDERS} orders at saturation by 8 clients; "
          f"{STEADY_RATE * STEADY_SECONDS} at a steady {STEADY_RATE}/s)")
    names = list(results)
    print(f"{'':44}" + "".join(f"{n:>22}" for n in names) + f"{'target':>12}")
    rows = [
        ("decided orders per second at saturation", "rate", "{:.1f}", ">= 40"),
        (f"time to outcome p50 at {STEADY_RATE}/s (s)", "p50", "{:.2f}", "< 1"),
        (f"time to outcome p99 at {STEADY_RATE}/s (s)", "p99", "{:.2f}", ""),
        ("idle CPU, whole stack (% of one core)", "idle", "{:.1f}", "< 3"),
    ]
    for label, key, fmt, target in rows:
        print(f"{label:44}" + "".join(f"{fmt.format(results[n][key]):>22}" for n in names) + f"{target:>12}")
    for n in names:
        r = results[n]
        if r["decided"] < r["placed"] or r["steady_decided"] < r["steady_placed"]:
            print(f"  {n}: only {r['decided']}/{r['placed']} and {r['steady_decided']}/{r['steady_placed']} decided in time")
    print("CPU seconds per order, by process (saturation run):")
    processes_seen = sorted({p for n in names for p in results[n]["per_order"]})
    for process in processes_seen:
        print(f"  {process:42}" + "".join(f"{results[n]['per_order'].get(process, 0) * 1000:>19.1f} ms"
                                          for n in names))
    print(f"  {'all':42}" + "".join(f"{sum(results[n]['per_order'].values()) * 1000:>19.1f} ms" for n in names))


if __name__ == "__main__":
    main()
