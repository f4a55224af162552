"""orderctl against the running stack: a reply that cannot apply lands in a dead-letter queue,
`dlq list` shows it with its order and reason, and once the cause is gone `dlq redrive` brings
the order to its decision; an outbox row the relay could not publish is put back for it;
`order` tells its story."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

from infra.devstack.identity import token_for
from infra.devstack.launcher import DEBUG_BINARIES
from flows import pending_order, queue_depth, reply_envelope, take_dead_timers, wait_for

ORDERCTL = DEBUG_BINARIES / "orderctl"


def orderctl(stack, tmp_path, *args: str, json_out: bool = True):
    state = tmp_path / "devstack.json"
    state.write_text(json.dumps(stack.state))
    # The API commands send consumer-1's token (ORDERCTL_TOKEN, as a user would set it).
    environment = {**os.environ, "ORDERCTL_TOKEN": token_for(stack.state, "consumer-1")}
    done = subprocess.run([str(ORDERCTL), "--state", str(state), *(["--json"] if json_out else []), *args],
                          capture_output=True, text=True, timeout=60, env=environment)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if json_out else done.stdout


def letters_for(listing: dict, order_id: str) -> list[tuple[str, dict]]:
    return [(q["queue"], m) for q in listing["queues"] for m in q["messages"] if m["orderId"] == order_id]


def test_a_dead_lettered_reply_is_listed_redriven_and_decides_its_order(stack, tmp_path):
    order_id = str(uuid.uuid4())
    sqs = stack.client("sqs")
    # The replies arrive before their order exists: no retry can help, so each is dead-lettered
    # at once with the reason.
    for detail_type, fields in (("ConsumerValidated", {}),
                                ("OrderDetailsValidated", {"total": {"currency": "EUR", "amountMinor": 2350}})):
        sqs.send_message(QueueUrl=stack.name("OrderRepliesQueue"),
                         MessageBody=json.dumps(reply_envelope(order_id, detail_type, **fields)))
    deadline = time.time() + 30
    while time.time() < deadline:
        listing = orderctl(stack, tmp_path, "dlq", "list")
        if len(letters_for(listing, order_id)) == 2:
            break
        time.sleep(0.5)
    letters = letters_for(listing, order_id)
    assert sorted(m["eventType"] for _, m in letters) == ["ConsumerValidated", "OrderDetailsValidated"]
    for queue, message in letters:
        assert queue == "OrderRepliesDLQ"
        assert f"order {order_id} does not exist" in message["reason"]
        assert message["function"] == "OrderRepliesFunction" and message["deadLetteredAt"]
        assert message["sourceQueueArn"].endswith(":OrderRepliesQueue")
    shown = orderctl(stack, tmp_path, "dlq", "list", json_out=False)
    assert f"order {order_id}  ConsumerValidated" in shown and "does not exist" in shown

    pending_order(stack, order_id)  # the cause removed: the order exists now
    redriven = orderctl(stack, tmp_path, "dlq", "redrive", "OrderRepliesDLQ")
    assert sum(redriven["moved"].values()) >= 2 and redriven["left"] == []
    assert wait_for(stack, order_id, {"VALIDATED", "REJECTED"})["status"] == "VALIDATED"
    assert queue_depth(stack, "OrderRepliesDLQ") == 0

    story = orderctl(stack, tmp_path, "order", order_id)
    assert story["order"]["status"] == "VALIDATED"
    assert [c["status"] for c in story["order"]["history"]][-1] == "VALIDATED"
    assert [e["detailType"] for e in story["outbox"]] == ["OrderValidated"]
    assert story["deadLetters"] == []
    told = orderctl(stack, tmp_path, "order", order_id, json_out=False)
    assert f"order {order_id}: VALIDATED (version 3)" in told and "OrderValidated" in told


def test_an_unknown_order_is_told_as_not_found(stack, tmp_path):
    told = orderctl(stack, tmp_path, "order", "no-such-order", json_out=False)
    assert "order no-such-order: not found" in told


def test_place_prints_the_order_then_each_status_to_the_decision(stack, tmp_path):
    out = orderctl(stack, tmp_path, "place", "--consumer", "consumer-1", "--restaurant", "restaurant-1",
                   "--item", "item-1:2", "--key", str(uuid.uuid4()), json_out=False)
    lines = out.strip().splitlines()
    assert lines[0].startswith("order ") and lines[0].endswith(" accepted"), out
    order_id = lines[0].split()[1]
    statuses = [line.split()[2] for line in lines[1:]]
    assert statuses[0] in ("PENDING", "CONSUMER_VALIDATED", "ORDER_DETAILS_VALIDATED", "VALIDATED"), out
    # 2 x item-1 at 12.50 EUR (infra/demo-data.json), shown as money, not as 2500 minor units.
    assert statuses[-1] == "VALIDATED" and lines[-1].endswith("total 25.00 EUR"), out
    assert len(statuses) == len(set(statuses)), out  # each status once: the long poll, not a loop
    # get and watch on the same order, the one as the API shows it, the other its decision.
    assert "VALIDATED" in orderctl(stack, tmp_path, "get", order_id, json_out=False)
    watched = orderctl(stack, tmp_path, "--json", "watch", order_id, json_out=False).strip().splitlines()
    assert [json.loads(line)["status"] for line in watched] == ["VALIDATED"]


def test_place_refused_by_the_api_says_why(stack, tmp_path):
    state = tmp_path / "devstack.json"
    state.write_text(json.dumps(stack.state))
    done = subprocess.run([str(ORDERCTL), "--state", str(state), "place", "--consumer", "consumer-1",
                           "--restaurant", "restaurant-1", "--item", "item-1:0",
                           "--token", token_for(stack.state, "consumer-1")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "422" in done.stderr and "lineItems[0].quantity" in done.stderr, done.stderr


def test_without_a_token_orderctl_says_how_to_send_one(stack, tmp_path):
    state = tmp_path / "devstack.json"
    state.write_text(json.dumps(stack.state))
    environment = {k: v for k, v in os.environ.items() if k != "ORDERCTL_TOKEN"}
    done = subprocess.run([str(ORDERCTL), "--state", str(state), "get", str(uuid.uuid4())],
                          capture_output=True, text=True, timeout=60, env=environment)
    assert done.returncode == 1 and "401" in done.stderr and "--token" in done.stderr, done.stderr


def relay_failures_for(stack, tmp_path, order_id: str) -> list[dict]:
    listing = orderctl(stack, tmp_path, "dlq", "list")
    return [m for queue, m in letters_for(listing, order_id) if queue == "OutboxRelayFailures"]


def test_an_outbox_row_the_relay_could_not_publish_is_listed_and_put_back_for_the_relay(stack, tmp_path):
    order_id, table = str(uuid.uuid4()), stack.name("OutboxTable")
    # EventBridge refuses this row's entry for good (MalformedDetail): the relay dead-letters it.
    stack.client("dynamodb").put_item(TableName=table, Item={
        "eventId": {"S": str(uuid.uuid4())}, "subject": {"S": order_id}, "orderId": {"S": order_id},
        "source": {"S": "orders"}, "detailType": {"S": "OrderCreated"}, "detail": {"S": "not JSON"},
        "createdAt": {"S": "2026-11-26T12:00:00Z"}, "expiresAt": {"N": "0"}})
    deadline = time.time() + 30
    while not (letters := relay_failures_for(stack, tmp_path, order_id)) and time.time() < deadline:
        time.sleep(0.5)
    assert len(letters) == 1, letters
    first = letters[0]
    assert first["eventType"] == "OrderCreated" and "MalformedDetail" in first["reason"], first
    assert first["function"] == "OutboxRelayFunction" and first["sourceStreamArn"]

    redriven = orderctl(stack, tmp_path, "dlq", "redrive", "OutboxRelayFailures")
    # Put back as a new insert, the relay reads it again: still malformed, it is dead-lettered
    # again, as a new message, which the redrive leaves for the next one if it sees it.
    assert redriven["moved"] == {f"table {table}": 1}, redriven
    assert all(m["why"] == "dead-lettered again during this redrive" for m in redriven["left"]), redriven
    deadline = time.time() + 30
    while not (letters := relay_failures_for(stack, tmp_path, order_id)) and time.time() < deadline:
        time.sleep(0.5)
    assert [m["messageId"] != first["messageId"] for m in letters] == [True], letters
    sqs, url = stack.client("sqs"), stack.name("OutboxRelayFailures")
    for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        if json.loads(message["Body"]).get("orderId", {}).get("S") == order_id:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert relay_failures_for(stack, tmp_path, order_id) == []
    # The row was inserted twice, and started its order's timer twice; the order does not exist.
    deadline = time.time() + 30
    taken = 0
    while taken < 2 and time.time() < deadline:
        taken += take_dead_timers(stack, {order_id})
    assert taken == 2


def test_help_and_version_are_printed_to_stdout_and_succeed():
    for args in (["--help"], ["--version"], ["dlq", "redrive", "--help"], ["completions", "bash"]):
        done = subprocess.run([str(ORDERCTL), *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and done.stdout and not done.stderr, (args, done)
    assert "Usage: orderctl" in subprocess.run([str(ORDERCTL), "--help"], capture_output=True, text=True).stdout
    wrong = subprocess.run([str(ORDERCTL), "dlq", "shred"], capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "unrecognized subcommand 'shred'" in wrong.stderr, wrong
