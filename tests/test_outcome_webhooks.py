"""Outcome delivery on the local stack: an order with a callback URL gets its outcome POSTed,
signed as Standard Webhooks with its consumer's own secret; a receiver verifies it with the
`standardwebhooks` library exactly as its documentation shows, before and after a rotation, and
drops a duplicate by its id; another consumer's secret verifies nothing. Callback URLs inside the
network are refused at submission (literal addresses here: no packet is sent to them; names that
resolve there are covered with a stubbed resolver in the Rust tests)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from flows import ORDER, place, terminal_rows, wait_for, wait_for_deliveries


def verifies(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """A receiver's check, as the library's documentation shows it (it also refuses a timestamp
    more than five minutes off)."""
    try:
        Webhook(secret).verify(body, headers)
        return True
    except WebhookVerificationError:
        return False


def webhook_secret(stack, consumer: str = "consumer-1", as_operator: bool = False) -> str:
    """The consumer's secret, read as the consumer reads it (or as an operator)."""
    token = stack.bearer(operator=True) if as_operator else stack.bearer(consumer)
    answer = stack.request("GET", f"/consumers/{consumer}/webhook-secret", headers={"Authorization": token})
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    return answer.json()["secret"]


def test_the_outcome_is_posted_signed_and_verifiable(stack, receiver):
    url, got = receiver
    order_id = place(stack, body={**ORDER, "callbackUrl": url}).json()["orderId"]
    wait_for_deliveries(got, 1)
    headers, body = got[0]
    key = webhook_secret(stack)
    assert key.startswith("whsec_") and key == webhook_secret(stack, as_operator=True)
    assert verifies(key, headers, body)
    outcome = json.loads(body)
    assert outcome["type"] == "order.validated"
    assert outcome["data"]["orderId"] == order_id and outcome["data"]["status"] == "VALIDATED"
    assert outcome["data"]["total"] == {"currency": "EUR", "amountMinor": 2950}
    # The id is the OrderValidated event's: the same on every retry of this outcome.
    validated = [row for row in stack.scan("OutboxTable")
                 if row["orderId"]["S"] == order_id and row["detailType"]["S"] == "OrderValidated"]
    assert headers["webhook-id"] == validated[0]["eventId"]["S"]
    assert terminal_rows(stack, order_id) == ["OrderValidated"]
    assert stack.request("GET", f"/orders/{order_id}").json()["callbackUrl"] == url

    # What a receiver must refuse: a tampered body, another consumer's secret, an old timestamp
    # signed anew with the right secret.
    assert not verifies(key, headers, body.replace(b"VALIDATED", b"REJECTED"))
    other = webhook_secret(stack, "consumer-2")
    assert other != key and not verifies(other, headers, body)
    old = int(headers["webhook-timestamp"]) - 600
    resigned = Webhook(key).sign(headers["webhook-id"], datetime.fromtimestamp(old, timezone.utc), body.decode())
    assert not verifies(key, {**headers, "webhook-timestamp": str(old), "webhook-signature": resigned}, body)


def test_only_an_order_with_a_callback_url_reaches_the_notifier(stack, receiver):
    """Both outcomes are published; the rule sends the notifier only the one whose order has a
    callback URL (`outcomeDelivery: callback`), so an order without one costs no delivery and no
    invocation.
    The notifier is stopped meanwhile and the test takes the queue's messages itself (each
    deleted once read: a receive counts towards the dead-letter queue)."""
    url, _ = receiver
    sqs, queue = stack.client("sqs"), stack.name("OutcomeNotificationsQueue")
    stack.function("OrderNotifierFunction", "stop")
    try:
        plain = place(stack).json()["orderId"]
        called = place(stack, body={**ORDER, "callbackUrl": url}).json()["orderId"]
        for order_id in (plain, called):
            assert wait_for(stack, order_id, {"VALIDATED", "REJECTED"})["status"] == "VALIDATED"
            assert terminal_rows(stack, order_id) == ["OrderValidated"]
        seen: dict[str, dict] = {}
        started = time.time()
        # Until the called order's outcome is in, and for 3 s at least: the relay publishes the
        # outcomes of both orders, decided by now, within about a second.
        while time.time() - started < 15 and (called not in seen or time.time() - started < 3):
            for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                               WaitTimeSeconds=1).get("Messages", []):
                detail = json.loads(message["Body"])["detail"]
                seen[detail["orderId"]] = detail
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        assert seen.get(called, {}).get("outcomeDelivery") == "callback", seen
        assert plain not in seen
    finally:
        stack.function("OrderNotifierFunction", "start")


def test_a_consumer_reads_only_its_own_secret(stack):
    answer = stack.request("GET", "/consumers/consumer-2/webhook-secret",
                           headers={"Authorization": stack.bearer("consumer-1")})
    assert answer.status_code == 404 and "secret" not in answer.json()
    rotate = stack.request("POST", "/consumers/consumer-1/webhook-secret/rotate",
                           headers={"Authorization": stack.bearer("consumer-1")})
    assert rotate.status_code == 403, rotate.text


def test_after_rotations_deliveries_verify_with_the_new_secret_and_each_old_one(stack, receiver):
    url, got = receiver
    consumer = "consumer-3"
    secrets = [webhook_secret(stack, consumer)]
    # Twice, as a retried rotation would: the second takes the conditional write's other branch.
    for _ in range(2):
        rotated = stack.request("POST", f"/consumers/{consumer}/webhook-secret/rotate",
                                headers={"Authorization": stack.bearer(operator=True)})
        assert rotated.status_code == 200, rotated.text
        secrets.append(rotated.json()["secret"])
        assert webhook_secret(stack, consumer) == secrets[-1]
        assert datetime.fromisoformat(rotated.json()["previousSecretSignsUntil"]) > datetime.now(timezone.utc)
    assert len(set(secrets)) == 3
    place(stack, body={**ORDER, "consumerId": consumer, "callbackUrl": url})
    wait_for_deliveries(got, 1)
    headers, body = got[0]
    # A signature per secret still within its overlap: a receiver on any of them loses nothing.
    assert len(headers["webhook-signature"].split()) == 3
    assert all(verifies(secret, headers, body) for secret in secrets)
    assert not verifies(webhook_secret(stack, "consumer-1"), headers, body)


def test_an_outcome_delivered_twice_carries_one_id(stack, receiver):
    url, got = receiver
    stack.faults({"eventDuplicates": 1.0})  # every event reaches its queues twice
    try:
        place(stack, body={**ORDER, "callbackUrl": url})
        wait_for_deliveries(got, 2)
    finally:
        stack.faults({"eventDuplicates": 0.0})
    key = webhook_secret(stack)
    assert all(verifies(key, headers, body) for headers, body in got)
    assert len({headers["webhook-id"] for headers, _ in got}) == 1  # a receiver keeps one


@pytest.mark.parametrize("url", [
    "http://10.0.0.1/hooks", "https://172.16.5.4/hooks", "https://192.168.1.1/hooks", "https://100.64.0.1/",
    "http://169.254.169.254/latest/meta-data/", "https://169.254.1.1/", "https://224.0.0.1/", "https://0.0.0.0/",
    "https://[fd00:ec2::254]/", "https://[fe80::1]/", "https://[fc00::1]/", "https://[ff02::1]/", "https://[::]/",
    "https://[::ffff:10.0.0.1]/", "ftp://hooks.example.com/", "https://user:pass@127.0.0.1/",
    # IPv6 forms that carry an IPv4 address or a range that is not globally reachable (IANA)
    "https://[2002:a9fe:a9fe::1]/", "https://[64:ff9b::a00:1]/", "https://[64:ff9b:1::808:808]/",
    "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "https://[fec0::1]/", "https://[::10.0.0.1]/",
    "https://[3fff::1]/", "https://[5f00::1]/", "https://192.88.99.1/",
])
def test_a_callback_inside_the_network_is_refused_at_submission(stack, url):
    answer = place(stack, body={**ORDER, "callbackUrl": url})
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "callbackUrl"


def test_a_callback_to_the_local_stack_itself_is_refused_though_loopback_is_allowed(stack):
    """Its AWS endpoint, API and control port: a callback there would drive the emulator."""
    for base, path in [(stack.state["endpoint"], "/"), (stack.state["api"], "/orders"),
                       (stack.state["control"], "/functions/OrderApiFunction/stop")]:
        answer = place(stack, body={**ORDER, "callbackUrl": base + path})
        assert answer.status_code == 422, answer.text
        port = base.rsplit(":", 1)[1]
        assert answer.json()["errors"][0]["message"] == f"must not reach the local stack's own port {port}"
