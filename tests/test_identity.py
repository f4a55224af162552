"""Access control on the local stack: the HTTP API's JWT authorizer refuses every bad token with
API Gateway's 401 before a function runs, and the functions' rules decide what a verified
consumer or operator may do."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from flows import JSON, ORDER, place, wait_for
from infra.devstack.identity import LocalIssuer, b64url, encode

ROOT = Path(__file__).resolve().parents[1]


def issuer(stack) -> LocalIssuer:
    return LocalIssuer.load(Path(stack.state["identity"]["keyFile"]))


def claims(stack, **changes) -> dict:
    """consumer-1's claims, valid for an hour, with `changes` (None removes a claim)."""
    made = issuer(stack).claims("consumer-1", stack.state["identity"]["audience"], [], 3600)
    made.update(changes)
    return {k: v for k, v in made.items() if v is not None}


def hmac_with_public_key(stack) -> str:
    """The classic confusion attack: HS256 keyed with the issuer's public key."""
    real = issuer(stack)
    public = real.key.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    return encode({"alg": "HS256", "typ": "JWT", "kid": real.kid}, claims(stack),
                  lambda data: hmac.new(public, data, hashlib.sha256).digest())


def unsigned(stack) -> str:
    header = b64url(json.dumps({"alg": "none", "typ": "JWT", "kid": issuer(stack).kid}).encode())
    return f"{header}.{b64url(json.dumps(claims(stack)).encode())}."


def another_key(stack) -> str:
    """A token in every other way right, signed with a key the issuer never published."""
    real = issuer(stack)
    impostor = LocalIssuer.create(real.url)
    impostor.kid = real.kid
    return impostor.sign(claims(stack))


REFUSED_TOKENS = {
    "no token": lambda stack: None,
    "not a JWT": lambda stack: "Bearer not-a-token",
    "expired": lambda stack: "Bearer " + issuer(stack).sign(claims(stack, exp=int(time.time()) - 5)),
    "not yet valid": lambda stack: "Bearer " + issuer(stack).sign(claims(stack, nbf=int(time.time()) + 300)),
    "no expiry": lambda stack: "Bearer " + issuer(stack).sign(claims(stack, exp=None)),
    "wrong issuer": lambda stack: "Bearer " + issuer(stack).sign(claims(stack, iss="https://evil.example.com")),
    "wrong audience": lambda stack: "Bearer " + issuer(stack).sign(claims(stack, aud="another-api")),
    "unknown kid": lambda stack: "Bearer " + issuer(stack).sign(
        claims(stack), {"alg": "RS256", "typ": "JWT", "kid": "no-such-key"}),
    "signed with another key": lambda stack: "Bearer " + another_key(stack),
    "alg none": lambda stack: "Bearer " + unsigned(stack),
    "HMAC with the public key": lambda stack: "Bearer " + hmac_with_public_key(stack),
}


def order_count(stack) -> int:
    return sum(1 for row in stack.scan("OrdersTable") if row["pk"]["S"].startswith("ORDER#"))


@pytest.mark.parametrize("case", REFUSED_TOKENS)
def test_a_bad_token_gets_401_from_the_gateway_and_nothing_is_written(stack, case):
    before = order_count(stack)
    authorization = REFUSED_TOKENS[case](stack)
    for method, path, body in (("POST", "/orders", json.dumps(ORDER)),
                               ("GET", "/orders/0193f0a0-0000-7000-8000-000000000000", None)):
        answer = stack.request(method, path, data=body, headers={**JSON, "Authorization": authorization})
        assert answer.status_code == 401, (case, answer.text)
        assert answer.json() == {"message": "Unauthorized"}
        assert answer.headers["www-authenticate"].startswith('Bearer scope="" error="invalid_token"')
    assert order_count(stack) == before


def test_a_valid_token_may_say_bearer_in_any_case(stack):
    token = stack.bearer("consumer-1").split(" ", 1)[1]
    answer = place(stack, headers={"Authorization": f"bearer {token}"})
    assert answer.status_code == 202, answer.text


def test_a_consumer_places_orders_for_itself_only(stack):
    before = order_count(stack)
    answer = place(stack, headers={"Authorization": stack.bearer("consumer-2")})
    assert answer.status_code == 403, answer.text
    assert answer.json()["type"] == "/problems/forbidden"
    assert order_count(stack) == before
    answer = place(stack, headers={"Authorization": stack.bearer(operator=True)})
    assert answer.status_code == 202, answer.text


def test_a_consumer_reads_its_own_orders_only(stack):
    order_id = place(stack).json()["orderId"]
    for peeker in ("consumer-2", "consumer-10"):
        answer = stack.request("GET", f"/orders/{order_id}",
                               headers={"Authorization": stack.bearer(peeker), "Prefer": "wait=3"})
        assert answer.status_code == 404, answer.text
        assert answer.json()["detail"] == f"there is no order with id {order_id}"
    mine = stack.request("GET", f"/orders/{order_id}")
    assert mine.status_code == 200 and mine.json()["consumerId"] == "consumer-1"
    shown = wait_for(stack, order_id, {"VALIDATED"})  # as an operator
    assert shown["status"] == "VALIDATED"


def test_cors_is_answered_by_the_gateway_for_allowed_origins_only(stack):
    preflight = stack.http.options(stack.api + "/orders", timeout=10, headers={
        "Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type", "Authorization": None})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "authorization" in preflight.headers["access-control-allow-headers"]
    answer = place(stack, headers={"Origin": "http://localhost:5173"})
    assert answer.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "location" in answer.headers["access-control-expose-headers"]
    stranger = place(stack, headers={"Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in stranger.headers


def test_the_issuer_publishes_its_key_set_where_api_gateway_looks(stack):
    import requests
    discovery = requests.get(stack.state["identity"]["issuer"] + "/.well-known/openid-configuration",
                             timeout=10).json()
    keys = requests.get(discovery["jwks_uri"], timeout=10).json()["keys"]
    assert [k["kid"] for k in keys] == [issuer(stack).kid]
    assert base64.urlsafe_b64decode(keys[0]["e"] + "==") == b"\x01\x00\x01"


def test_an_operator_is_known_by_the_scope_claim_on_routes_that_declare_no_scopes(stack):
    """No route declares AuthorizationScopes, so the authorizer passes `scopes: null` and the
    operator scope arrives only inside the `scope` claim, among others, as a Cognito access
    token carries it (docs/conformance.md, "JWT authorizer")."""
    declared = [line for line in (ROOT / "template.yaml").read_text().splitlines()
                if line.strip().startswith("AuthorizationScopes")]
    assert declared == [], "a route declares scopes: revisit docs/conformance.md, JWT authorizer"
    audience, scope = stack.state["identity"]["audience"], stack.state["identity"]["operatorScope"]
    made = issuer(stack).claims("ops-7", audience, ["openid", scope, "aws.cognito.signin.user.admin"])
    made.update({"cognito:groups": ["operators", "support"], "auth_time": made["iat"],
                 "email_verified": True})
    operator = {**JSON, "Authorization": "Bearer " + issuer(stack).sign(made)}
    body = {"name": "Grace Hopper", "status": "ACTIVE"}
    answer = stack.request("PUT", "/consumers/consumer-scope-claim", data=json.dumps(body),
                           headers=operator)
    assert answer.status_code == 201, answer.text
    assert place(stack, headers={"Authorization": operator["Authorization"]}).status_code == 202
    consumer = {**JSON, "Authorization": stack.bearer("consumer-scope-claim")}
    refused = stack.request("PUT", "/consumers/consumer-scope-claim", data=json.dumps(body),
                            headers=consumer)
    assert refused.status_code == 403, refused.text

