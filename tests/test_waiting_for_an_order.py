"""GET /orders/{id} with `Prefer: wait=N` and `If-None-Match` on the local stack: the client
learns each change within a second, without a polling loop of its own."""

from __future__ import annotations

import threading
import time
from datetime import datetime

from flows import ORDER, pending_order, place, wait_for
from infra.devstack.provision.functions import API_INSTANCES

MAX_WAITS = 4  # per caller (functions/orders/src/ports/wait_slots.rs)


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


def test_one_callers_waits_are_bounded_and_another_consumers_orders_are_not_held_up(stack):
    """consumer-1 waits as hard as the API lets it (8 waits at once on an order that never
    changes: 4 held, 4 refused), then an operator holds 4 more, more than the reader's 6
    instances here (API_INSTANCES): every reader instance is busy, and consumer-3's orders are answered
    meanwhile as promptly as ever, because placing them is another function's work."""
    order_id = pending_order(stack)
    answers: dict[str, list] = {"consumer-1": [], "operator": []}

    def wait(who: str, headers: dict) -> None:
        began = time.time()
        answer = get(stack, order_id, Prefer="wait=10", **headers)
        answers[who].append((answer, time.time() - began))

    operator = {"Authorization": stack.bearer(operator=True)}
    waiting = [threading.Thread(target=wait, args=("consumer-1", {})) for _ in range(8)]
    for thread in waiting:
        thread.start()
    time.sleep(1)  # each of consumer-1's waits has taken a slot or been refused
    # Enough to run on every reader instance consumer-1's waits left, and two more that queue.
    operators = API_INSTANCES - MAX_WAITS + 2
    assert operators <= MAX_WAITS, "the operator's own bound would refuse some"
    waiting += [threading.Thread(target=wait, args=("operator", operator)) for _ in range(operators)]
    for thread in waiting[8:]:
        thread.start()
    time.sleep(1)
    other = {**ORDER, "consumerId": "consumer-3", "lineItems": [{"menuItemId": "item-1", "quantity": 1}]}
    took = []
    for _ in range(5):
        began = time.time()
        assert place(stack, body=other).status_code == 202
        took.append(time.time() - began)
    for thread in waiting:
        thread.join(timeout=40)
    held = [seconds for answer, seconds in answers["consumer-1"] if answer.status_code == 200]
    refused = [answer for answer, _ in answers["consumer-1"] if answer.status_code == 429]
    assert len(held) == 4 and len(refused) == 4, [a.status_code for a, _ in answers["consumer-1"]]
    assert min(held) > 9.5  # the four held their whole wait
    problem = refused[0]
    assert problem.headers["Content-Type"] == "application/problem+json"
    assert problem.json()["type"] == "/problems/too-many-waits"
    assert 8 <= int(problem.headers["Retry-After"]) <= 10  # until consumer-1's first wait ends
    # The operator's waits had their own slots; two of them found every reader instance busy
    # and waited for one: the reader was full while consumer-3 placed its orders.
    operator_took = sorted(seconds for answer, seconds in answers["operator"] if answer.status_code == 200)
    assert len(operator_took) == operators and operator_took[-1] > 15, operator_took
    assert max(took) < 2.0, took
    # The slots were given back: a wait is taken again.
    assert get(stack, order_id, Prefer="wait=1").status_code == 200
