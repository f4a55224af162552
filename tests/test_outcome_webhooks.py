"""Outcome delivery on the local stack: an order with a callback URL gets its outcome POSTed,
signed as Standard Webhooks; a receiver verifies it, and drops a duplicate by its id. Callback
URLs inside the network are refused at submission (literal addresses here: no packet is sent
to them; names that resolve there are covered with a stubbed resolver in the Rust tests)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from flows import ORDER, place, terminal_rows

TOLERANCE_SECONDS = 300


def verify(secret: str, headers: dict[str, str], body: bytes, now: float | None = None) -> bool:
    """A receiver's check of a delivery (the README shows the same): the signature over
    `id.timestamp.body` with the shared secret, and a timestamp within five minutes."""
    webhook_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs((now or time.time()) - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(f"v1,{expected}", s) for s in headers["webhook-signature"].split())


@pytest.fixture
def receiver():
    """A webhook receiver on loopback (which the local stack allows): it records deliveries."""
    got: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/orders", got
    server.shutdown()


def secret(stack) -> str:
    return stack.client("secretsmanager").get_secret_value(SecretId=stack.name("WebhookSecret"))["SecretString"]


def wait_for_deliveries(got: list, count: int, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while len(got) < count and time.time() < deadline:
        time.sleep(0.1)
    assert len(got) >= count, got


def test_the_outcome_is_posted_signed_and_verifiable(stack, receiver):
    url, got = receiver
    order_id = place(stack, body={**ORDER, "callbackUrl": url}).json()["orderId"]
    wait_for_deliveries(got, 1)
    headers, body = got[0]
    assert verify(secret(stack), headers, body)
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

    # What a receiver must refuse: a tampered body, another secret, an old (re-signed) timestamp.
    key = secret(stack)
    assert not verify(key, headers, body.replace(b"VALIDATED", b"REJECTED"))
    assert not verify("not-the-secret", headers, body)
    old = str(int(headers["webhook-timestamp"]) - 600)
    signed = f"{headers['webhook-id']}.{old}.".encode() + body
    resigned = "v1," + base64.b64encode(hmac.new(key.encode(), signed, hashlib.sha256).digest()).decode()
    assert not verify(key, {**headers, "webhook-timestamp": old, "webhook-signature": resigned}, body)


def test_an_outcome_delivered_twice_carries_one_id(stack, receiver):
    url, got = receiver
    stack.faults({"eventDuplicates": 1.0})  # every event reaches its queues twice
    try:
        place(stack, body={**ORDER, "callbackUrl": url})
        wait_for_deliveries(got, 2)
    finally:
        stack.faults({"eventDuplicates": 0.0})
    key = secret(stack)
    assert all(verify(key, headers, body) for headers, body in got)
    assert len({headers["webhook-id"] for headers, _ in got}) == 1  # a receiver keeps one


@pytest.mark.parametrize("url", [
    "http://10.0.0.1/hooks", "https://172.16.5.4/hooks", "https://192.168.1.1/hooks", "https://100.64.0.1/",
    "http://169.254.169.254/latest/meta-data/", "https://169.254.1.1/", "https://224.0.0.1/", "https://0.0.0.0/",
    "https://[fd00:ec2::254]/", "https://[fe80::1]/", "https://[fc00::1]/", "https://[ff02::1]/", "https://[::]/",
    "https://[::ffff:10.0.0.1]/", "ftp://hooks.example.com/", "https://user:pass@127.0.0.1/",
])
def test_a_callback_inside_the_network_is_refused_at_submission(stack, url):
    answer = place(stack, body={**ORDER, "callbackUrl": url})
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "callbackUrl"
