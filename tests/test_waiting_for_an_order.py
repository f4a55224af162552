"""GET /orders/{id} with `Prefer: wait=N` and `If-None-Match` on the local stack: the client
learns each change within a second, without a polling loop of its own."""

from __future__ import annotations

import threading
import time
from datetime import datetime

from flows import place, wait_for


def get(stack, order_id: str, **headers: str):
    return stack.request("GET", f"/orders/{order_id}", headers={k.replace("_", "-"): v for k, v in headers.items()})


def test_a_wait_without_an_etag_answers_with_the_decision(stack):
    order_id = place(stack).json()["orderId"]
    answer = get(stack, order_id, Prefer="wait=15")
    assert answer.status_code == 200
    assert answer.json()["status"] == "VALIDATED"
    assert answer.headers["Preference-Applied"] == "wait=15"
    assert answer.headers["ETag"] == f'"v{len(answer.json()["history"])}"'
    assert "Retry-After" not in answer.headers


def test_a_waiting_request_answers_within_a_second_of_the_change(stack):
    stack.function("RestaurantValidatorFunction", "stop")
    try:
        order_id = place(stack).json()["orderId"]
        shown = wait_for(stack, order_id, {"CONSUMER_VALIDATED"})
        current = get(stack, order_id)
        assert current.headers["Retry-After"] == "1"
        answers = []
        waiting = threading.Thread(target=lambda: answers.append(
            (get(stack, order_id, Prefer="wait=20", If_None_Match=current.headers["ETag"]), time.time())))
        waiting.start()
        time.sleep(2)
        assert not answers, "answered before anything changed"
    finally:
        stack.function("RestaurantValidatorFunction", "start")
    waiting.join(timeout=30)
    answer, answered_at = answers[0]
    assert answer.status_code == 200 and answer.json()["status"] == "VALIDATED", answer.text
    changed_at = datetime.fromisoformat(answer.json()["history"][-1]["at"]).timestamp()
    assert answered_at - changed_at < 1.0, answered_at - changed_at
    assert answer.headers["ETag"] != current.headers["ETag"] and shown["status"] == "CONSUMER_VALIDATED"


def test_a_wait_on_a_decided_order_is_answered_at_once(stack):
    order_id = place(stack).json()["orderId"]
    decided = wait_for(stack, order_id, {"VALIDATED", "REJECTED"})
    tag = get(stack, order_id).headers["ETag"]
    assert decided["status"] == "VALIDATED"
    # It can never change again: held, the request would only hold a function for nothing.
    began = time.time()
    answer = get(stack, order_id, Prefer="wait=20", If_None_Match=tag)
    took = time.time() - began
    assert answer.status_code == 304 and answer.content == b""
    assert answer.headers["ETag"] == tag and answer.headers["Preference-Applied"] == "wait=20"
    assert took < 1, took
    began = time.time()
    assert get(stack, order_id, Prefer="wait=20").json()["status"] == "VALIDATED"
    assert time.time() - began < 1
    # Without a wait, a current copy is 304 at once.
    assert get(stack, order_id, If_None_Match=tag).status_code == 304
