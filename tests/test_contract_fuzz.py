"""A contract fuzzer: requests generated from docs/openapi.yaml and mutated from it, sent to the
running API. The document decides what each must get: a body the schema accepts is `202`, one
it refuses is `400` or `422` and writes nothing; a correlation id is echoed when it fits its
pattern and refused with `400` when not; every answer, including to methods the document does
not list, is checked against the document by `stack.request`. Seeded, so CI sees the same cases
each run; CONTRACT_FUZZ_EXAMPLES=500 explores more."""

from __future__ import annotations

import copy
import json
import os
import re
import time
from urllib.parse import quote

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from flows import JSON, place, wait_for
from test_identity import order_count

EXAMPLES = int(os.environ.get("CONTRACT_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


def inline(doc: dict, node):
    """The schema with every `$ref` replaced by what it names. Patterns end in ECMA-262's `$`
    (end of input); Python's `$` also matches before a final newline, so it becomes `\\Z`."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = doc
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return inline(doc, target)
        inlined = {k: inline(doc, v) for k, v in node.items() if k not in ("description", "examples")}
        if isinstance(inlined.get("pattern"), str) and inlined["pattern"].endswith("$"):
            inlined["pattern"] = inlined["pattern"][:-1] + r"\Z"
        return inlined
    if isinstance(node, list):
        return [inline(doc, v) for v in node]
    return node


def place_order_schema(stack) -> dict:
    schema = inline(stack.contract.doc, stack.contract.doc["components"]["schemas"]["PlaceOrder"])
    # A callback URL's host is resolved and checked at submission: beyond what a schema can say.
    schema["properties"].pop("callbackUrl")
    return schema


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=70),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3),
    max_leaves=8)


def operator(stack) -> dict:
    return {**JSON, "Authorization": stack.bearer(operator=True)}


def test_every_body_the_schema_accepts_is_accepted(stack):
    schema = place_order_schema(stack)

    @FUZZ
    @given(body=from_schema(schema))
    def accepted(body):
        answer = stack.request("POST", "/orders", data=json.dumps(body), headers=operator(stack))
        assert answer.status_code == 202, (body, answer.text)

    accepted()


def test_a_body_the_schema_refuses_is_refused_and_writes_nothing(stack):
    schema = place_order_schema(stack)
    valid = {"consumerId": "consumer-1", "restaurantId": "restaurant-1",
             "lineItems": [{"menuItemId": "item-1", "quantity": 2}]}
    paths = [("consumerId",), ("restaurantId",), ("lineItems",), ("lineItems", 0),
             ("lineItems", 0, "menuItemId"), ("lineItems", 0, "quantity"), ("extra",)]
    accepted = []
    before = order_count(stack)

    @FUZZ
    @given(path=st.sampled_from(paths), value=json_values)
    def judged_by_the_schema(path, value):
        body = copy.deepcopy(valid)
        target = body
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        answer = stack.request("POST", "/orders", data=json.dumps(body), headers=operator(stack))
        if jsonschema.Draft202012Validator(schema).is_valid(body):
            assert answer.status_code == 202, (body, answer.text)
            accepted.append(body)
        else:
            assert answer.status_code in (400, 422), (body, answer.status_code, answer.text)

    judged_by_the_schema()
    assert order_count(stack) == before + len(accepted)


def test_a_correlation_id_is_echoed_when_it_fits_the_pattern_and_refused_when_not(stack):
    schema = inline(stack.contract.doc, stack.contract.doc["components"]["parameters"]["CorrelationId"]["schema"])
    # What an HTTP header can carry (RFC 9110: visible ASCII, spaces, obs-text; no edge spaces).
    # Control characters never reach the API: the HTTP front end refuses them (test below).
    header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                        blacklist_characters="\x7f"), max_size=140).map(str.strip)

    @FUZZ
    @given(value=header_text | from_schema(schema))
    def judged(value):
        answer = stack.request("GET", "/orders/0193f0a0-0000-7000-8000-000000000000",
                               headers={"X-Correlation-Id": value.encode("latin-1")})
        if jsonschema.Draft202012Validator(schema).is_valid(value):
            assert answer.status_code == 404 and answer.headers["x-correlation-id"] == value
        else:
            assert answer.status_code == 400, (value, answer.text)
            assert answer.json()["errors"][0]["field"] == "X-Correlation-Id"

    judged()


def test_methods_the_document_does_not_list_get_a_problem(stack):
    for method in ("TRACE", "PATCH", "DELETE", "PUT"):
        for path in ("/orders", "/orders/0193f0a0-0000-7000-8000-000000000000", "/nowhere",
                     "/consumers/consumer-1/webhook-secret", "/consumers/consumer-1/webhook-secret/rotate"):
            answer = stack.request(method, path)
            assert answer.status_code in (404, 405), (method, path, answer.status_code)


def test_a_header_http_does_not_allow_is_refused_before_any_function(stack):
    for value in (b"\x7f", b"a\x01b"):
        answer = stack.http.get(stack.api + "/orders/0193f0a0-0000-7000-8000-000000000000",
                                headers={"X-Correlation-Id": value}, timeout=10)
        assert (answer.status_code, answer.json()) == (400, {"message": "Bad Request"})


def test_a_webhook_secret_is_shown_to_its_consumer_and_operators_for_any_id_the_schema_takes(stack):
    schema = inline(stack.contract.doc, stack.contract.doc["components"]["schemas"]["Id"])
    path_text = st.text(st.characters(blacklist_characters="/%?#", blacklist_categories=("Cs",)),
                        min_size=1, max_size=70)
    consumer = {"Authorization": stack.bearer("consumer-1")}

    @FUZZ
    @given(consumer_id=from_schema(schema) | path_text)
    def judged(consumer_id):
        path = f"/consumers/{quote(consumer_id, safe='')}/webhook-secret"
        valid = jsonschema.Draft202012Validator(schema).is_valid(consumer_id)
        as_operator = stack.request("GET", path, headers=operator(stack))
        assert as_operator.status_code == (200 if valid else 404), (consumer_id, as_operator.text)
        as_consumer = stack.request("GET", path, headers=consumer)
        assert as_consumer.status_code == (200 if consumer_id == "consumer-1" else 404), consumer_id

    judged()


def test_any_prefer_header_on_a_decided_order_is_answered_at_once(stack):
    order_id = place(stack).json()["orderId"]
    wait_for(stack, order_id, {"VALIDATED", "REJECTED"})
    header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(str.strip)

    @FUZZ
    @given(prefer=header_text | st.builds("wait={}".format, st.integers(-5, 10**20)))
    def judged(prefer):
        began = time.time()
        answer = stack.request("GET", f"/orders/{order_id}", headers={"Prefer": prefer})
        assert answer.status_code == 200 and time.time() - began < 2, (prefer, answer.status_code)
        applied = answer.headers.get("Preference-Applied")
        assert applied is None or re.fullmatch(r"wait=([0-9]|1[0-9]|20)", applied), (prefer, applied)

    judged()
