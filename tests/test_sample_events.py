"""Every sample in events/ runs through its function's real binary with `devstack invoke`, the
way `sam local invoke -e` would run it, and gives the answer that sample is there to show."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"


def invoke(function: str, event: str, *seeds: str, logs: list[str] | None = None) -> dict:
    """The function's answer; its log lines into `logs`, when given, at debug: an order's steps
    are logged at debug."""
    command = [sys.executable, "-m", "infra.devstack", "--log-dir", str(ROOT / ".local" / "sample-logs"),
               "invoke", function, "--event", str(EVENTS / event)]
    for seed in seeds:
        command += ["--seed", str(EVENTS / seed)]
    environment = {**os.environ, "RUST_LOG": "debug"} if logs is not None else None
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, env=environment)
    assert done.returncode == 0, done.stdout + done.stderr
    if logs is not None:
        logs.extend(done.stderr.splitlines())
    return json.loads(done.stdout)


def message_ids(event: str) -> list[str]:
    return [r["messageId"] for r in json.loads((EVENTS / event).read_text())["Records"]]


def test_place_order_is_accepted():
    response = invoke("order-api", "order-api/place-order.json")
    assert response["statusCode"] == 202
    assert json.loads(response["body"])["status"] == "PENDING"
    assert response["headers"]["x-correlation-id"] == "sample-correlation-1"


def test_a_bad_quantity_is_refused():
    response = invoke("order-api", "order-api/place-order-bad-quantity.json")
    assert response["statusCode"] == 422
    assert response["headers"]["content-type"] == "application/problem+json"
    assert "lineItems[0].quantity" in json.loads(response["body"])["detail"]


def test_an_order_for_another_consumer_is_forbidden():
    # The sample's token is consumer-2's; its body names consumer-1.
    response = invoke("order-api", "order-api/place-order-for-another-consumer.json")
    assert response["statusCode"] == 403
    assert json.loads(response["body"])["type"] == "/problems/forbidden"


def test_an_operator_creates_a_consumer_and_a_consumer_may_not():
    created = invoke("consumer-api", "consumer-api/put-consumer.json")
    assert created["statusCode"] == 201 and json.loads(created["body"])["version"] == 1
    refused = invoke("consumer-api", "consumer-api/put-consumer-by-a-consumer.json")
    assert refused["statusCode"] == 403


def test_an_operator_changes_a_menu_to_its_next_version():
    # The demo data holds restaurant-1 at version 1; the sample changes its menu.
    changed = invoke("restaurant-api", "restaurant-api/put-restaurant.json")
    assert changed["statusCode"] == 200
    assert json.loads(changed["body"])["version"] == 2


def test_the_replica_updater_applies_both_kinds_of_update():
    assert invoke("replica-updater", "replica-updater/updates.json") == {"batchItemFailures": []}


def test_an_unknown_order_is_not_found():
    # GET is the reader's (the same binary, serving reads only).
    response = invoke("OrderReaderFunction", "order-api/get-unknown-order.json")
    assert response["statusCode"] == 404
    assert json.loads(response["body"])["detail"].startswith("there is no order with id ")


def test_the_relay_publishes_inserts_and_ignores_ttl_expiry():
    assert invoke("outbox-relay", "outbox-relay/inserts-and-a-ttl-expiry.json") == {"batchItemFailures": []}


@pytest.mark.parametrize("function", ["consumer-validator", "restaurant-validator"])
def test_validators_answer_every_message(function):
    # Valid or not, every order gets an answer published: no message goes back to the queue.
    assert invoke(function, f"{function}/order-created.json") == {"batchItemFailures": []}


def test_replies_apply_to_a_stored_order():
    assert invoke("order-replies", "order-replies/replies.json", "order-replies/seed.json") == {"batchItemFailures": []}


def test_replies_for_an_order_that_does_not_exist_go_to_the_dead_letter_queue_at_once():
    # No retry can make the order exist: each reply is dead-lettered with the reason, and
    # reported done so that SQS does not deliver it four more times first.
    logs: list[str] = []
    response = invoke("order-replies", "order-replies/replies.json", logs=logs)
    assert response == {"batchItemFailures": []}
    buried = [json.loads(line) for line in logs if "message dead-lettered" in line]
    assert sorted(line["messageId"] for line in buried) == sorted(message_ids("order-replies/replies.json"))
    assert all("does not exist" in line["reason"] for line in buried)


def test_the_deadline_rejects_a_stored_order_still_undecided():
    # The sample is the order's timer as the deadline queue delivers it, once the deadline passed.
    logs: list[str] = []
    assert invoke("order-replies", "order-replies/deadline.json", "order-replies/seed.json",
                  logs=logs) == {"batchItemFailures": []}
    moved = [json.loads(line) for line in logs if "order moved" in line]
    assert [(m["from"], m["to"]) for m in moved] == [("Pending", "Rejected")], logs


def test_the_timer_starts_a_deadline_for_an_order_created():
    logs: list[str] = []
    assert invoke("decision-timer", "decision-timer/order-created.json", logs=logs) == {"batchItemFailures": []}
    started = [json.loads(line) for line in logs if "deadline timers started" in line]
    assert [s["timers"] for s in started] == [1], logs


def test_the_notifier_takes_an_outcome_whose_order_has_no_callback():
    # The stored sample order has no callback URL: nothing to deliver, and nothing to retry.
    logs: list[str] = []
    assert invoke("order-notifier", "order-notifier/order-validated.json", "order-replies/seed.json",
                  logs=logs) == {"batchItemFailures": []}
    assert not [line for line in logs if "outcome delivered" in line]


def test_every_sample_is_covered():
    samples = {str(p.relative_to(EVENTS)) for p in EVENTS.rglob("*.json")} - {"order-replies/seed.json"}
    tested = {"order-api/place-order.json", "order-api/place-order-bad-quantity.json",
              "order-api/place-order-for-another-consumer.json",
              "consumer-api/put-consumer.json", "consumer-api/put-consumer-by-a-consumer.json",
              "restaurant-api/put-restaurant.json", "replica-updater/updates.json",
              "order-api/get-unknown-order.json", "outbox-relay/inserts-and-a-ttl-expiry.json",
              "consumer-validator/order-created.json", "restaurant-validator/order-created.json",
              "order-replies/replies.json", "order-replies/deadline.json",
              "order-notifier/order-validated.json", "decision-timer/order-created.json"}
    assert samples == tested
