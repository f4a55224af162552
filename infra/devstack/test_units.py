"""devstack's own pieces, without a running stack: filters, routes, the template reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.devstack.http_api import Route
from infra.devstack.identity import JwtAuthorizer, LocalIssuer, Refused
from infra.devstack.mappings import check_pattern, fitting, matches
from infra.devstack.runtime import MAX_REQUEST_BYTES
from infra.devstack.template import Template, TemplateError

ROOT = Path(__file__).resolve().parents[2]


def test_filters_match_as_lambda_event_filtering_does():
    insert = {"eventName": "INSERT", "dynamodb": {"NewImage": {"status": {"S": "PENDING"}}}}
    assert matches({"eventName": ["INSERT"]}, insert)
    assert not matches({"eventName": ["REMOVE", "MODIFY"]}, insert)
    assert matches({"dynamodb": {"NewImage": {"status": {"S": [{"prefix": "PEN"}]}}}}, insert)
    assert matches({"eventName": [{"anything-but": ["REMOVE"]}]}, insert)
    assert matches({"userIdentity": [{"exists": False}]}, insert)
    assert not matches({"userIdentity": [{"exists": True}]}, insert)


def test_unsupported_filter_syntax_is_refused_at_start():
    with pytest.raises(TemplateError):
        check_pattern({"size": [{"numeric": [">", 10]}]}, "Fn.Events.X")
    with pytest.raises(TemplateError):
        check_pattern({"eventName": "INSERT"}, "Fn.Events.X")


def test_routes_prefer_literal_segments_and_bind_parameters():
    routes = sorted([Route("ANY", "/{proxy+}", None), Route("GET", "/orders/{orderId}", None),
                     Route("POST", "/orders", None)], key=Route.specificity, reverse=True)
    def route_for(method, path):
        return next((r.key, r.match(method, path)) for r in routes if r.match(method, path) is not None)
    assert route_for("POST", "/orders") == ("POST /orders", {})
    assert route_for("GET", "/orders/42") == ("GET /orders/{orderId}", {"orderId": "42"})
    assert route_for("GET", "/orders") == ("ANY /{proxy+}", {"proxy": "orders"})
    assert route_for("DELETE", "/a/b/c") == ("ANY /{proxy+}", {"proxy": "a/b/c"})


def test_the_template_resolves_what_it_uses(tmp_path):
    template = Template(ROOT / "template.yaml")
    assert template.parameters["Architecture"] == "arm64"
    assert template.resolve({"Fn::Sub": "${AWS::StackName}-orders"}, "x") == "local-orders"
    assert "AlarmEmailSubscription" not in template.resources  # its condition is false by default
    with pytest.raises(TemplateError, match="names nothing"):
        template.resolve({"Ref": "NoSuchThing"}, "Somewhere")


def test_loopback_callbacks_are_refused_outside_the_local_stack():
    """The template's rule, applied as CloudFormation applies it before creating anything."""
    with pytest.raises(TemplateError, match="rule LoopbackCallbacksOnlyLocally: .*local stack only"):
        Template(ROOT / "template.yaml", {"AllowLoopbackCallbacks": "true"})
    with pytest.raises(TemplateError, match="LocalEndpointUrl: .* does not match"):
        Template(ROOT / "template.yaml", {"AllowLoopbackCallbacks": "true",
                                          "LocalEndpointUrl": "https://dynamodb.amazonaws.com"})
    with pytest.raises(TemplateError, match="AllowLoopbackCallbacks: 'yes' is not one of true, false"):
        Template(ROOT / "template.yaml", {"AllowLoopbackCallbacks": "yes"})
    with pytest.raises(TemplateError, match="DecisionDeadlineSeconds: 901 is outside 1..900"):
        Template(ROOT / "template.yaml", {"DecisionDeadlineSeconds": "901"})
    with pytest.raises(TemplateError, match="OrderReaderConcurrency: 'many' is not a number"):
        Template(ROOT / "template.yaml", {"OrderReaderConcurrency": "many"})
    local = Template(ROOT / "template.yaml", {"AllowLoopbackCallbacks": "true",
                                              "LocalEndpointUrl": "http://127.0.0.1:4566"})
    assert local.parameters["AllowLoopbackCallbacks"] == "true"


def test_an_unsupported_resource_type_is_an_error(tmp_path):
    from infra.devstack.stack import Stack

    path = tmp_path / "template.yaml"
    path.write_text("Resources:\n  Cache:\n    Type: AWS::ElastiCache::CacheCluster\n    Properties: {}\n")
    with pytest.raises(TemplateError, match="AWS::ElastiCache::CacheCluster"):
        Stack(Template(path), tmp_path, tmp_path, 0)


def test_a_third_reader_of_one_stream_is_refused():
    """DynamoDB Streams throttles more than two readers of a shard; devstack refuses the template."""
    from types import SimpleNamespace

    from infra.devstack.stream_mapping import StreamMapping
    from infra.devstack.provision.functions import create_event_source
    from infra.devstack.stack import Stack

    stack = Stack.__new__(Stack)
    stack.template = Template(ROOT / "template.yaml")
    stack.mappings = []
    for name in ("OutboxRelayFunction", "DecisionTimerFunction"):
        reader = StreamMapping.__new__(StreamMapping)
        reader.where, reader.stream_arn = f"{name}.Events.Stream", "arn:aws:dynamodb:r:1:table/T/stream/x"
        stack.mappings.append(reader)
    event = {"Type": "DynamoDB", "Properties": {"Stream": "arn:aws:dynamodb:r:1:table/T/stream/x",
                                                 "StartingPosition": "TRIM_HORIZON"}}
    with pytest.raises(TemplateError, match="third reader"):
        create_event_source(stack, SimpleNamespace(logical_id="Third"), None, "Stream", event)


def test_no_table_has_an_index_or_a_key_shared_by_all_orders():
    """Every table is keyed by one entity's own id and has no secondary index: a key every order
    writes to (as `awaiting-index` was) would cap the system at one partition's throughput."""
    template = Template(ROOT / "template.yaml")
    keys = {}
    for table in template.of_type("AWS::DynamoDB::Table"):
        assert not {"GlobalSecondaryIndexes", "LocalSecondaryIndexes"} & set(table.properties), table.logical_id
        [key] = table.properties["KeySchema"]
        keys[table.logical_id] = (key["AttributeName"], key["KeyType"])
    assert keys == {"OrdersTable": ("pk", "HASH"), "OutboxTable": ("eventId", "HASH"),
                    "ConsumersTable": ("consumerId", "HASH"), "RestaurantsTable": ("restaurantId", "HASH"),
                    "ConsumersOutboxTable": ("eventId", "HASH"), "RestaurantsOutboxTable": ("eventId", "HASH"),
                    "ReplicasTable": ("pk", "HASH")}


def test_the_authorizer_fills_scopes_only_on_routes_that_declare_them():
    # API Gateway's JWT authorizer: `scopes` is null unless the route has AuthorizationScopes;
    # claims are strings, arrays bracketed (docs/conformance.md, "JWT authorizer").
    issuer = LocalIssuer.create("https://issuer.test")
    authorizer = JwtAuthorizer(issuer.url, ["orders-api"], issuer.jwks())
    claims = issuer.claims("ops", "orders-api", ["orders/operator", "openid"])
    claims["groups"], claims["verified"] = ["a", "b"], True
    headers = {"authorization": "Bearer " + issuer.sign(claims)}
    plain = authorizer.authorize(headers, [])["jwt"]
    assert plain["scopes"] is None
    assert plain["claims"]["scope"] == "orders/operator openid"
    assert plain["claims"]["groups"] == "[a b]" and plain["claims"]["verified"] == "true"
    assert plain["claims"]["exp"] == str(claims["exp"])
    assert all(isinstance(value, str) for value in plain["claims"].values())
    scoped = authorizer.authorize(headers, ["orders/operator"])["jwt"]
    assert scoped["scopes"] == ["orders/operator", "openid"]
    with pytest.raises(Refused) as refused:
        authorizer.authorize(headers, ["orders/admin"])
    assert refused.value.status == 403


def test_a_batch_is_cut_where_its_payload_would_pass_6_mb():
    import json
    record = {"body": "x" * (MAX_REQUEST_BYTES // 4)}
    assert fitting([record] * 10) == 3
    exact = [{"body": "x" * 100}] * 7
    assert len(json.dumps({"Records": exact})) < MAX_REQUEST_BYTES and fitting(exact) == 7
    # As the runtime sends it, the payload of what fits is within the limit; one more is not.
    big = [{"body": "y" * 1_000_000}] * 7
    n = fitting(big)
    assert len(json.dumps({"Records": big[:n]})) <= MAX_REQUEST_BYTES < len(json.dumps({"Records": big[:n + 1]}))
    assert fitting([{"body": "z" * (MAX_REQUEST_BYTES + 1)}]) == 1  # one record always goes


def test_each_event_type_may_be_published_by_exactly_one_function():
    """The template's events:source and events:detail-type conditions against the event types
    the code defines (shared/src/language/events.rs): none missing, none granted twice."""
    import re

    code = (ROOT / "shared" / "src" / "language" / "events.rs").read_text()
    sources = dict(re.findall(r'pub const (\w+): &str = "(\w+)";', code))
    defined = {(sources[source], kind) for kind, source in re.findall(r"event!\(\s*(\w+),\s*source::(\w+)", code)}
    template = Template(ROOT / "template.yaml")
    granted: dict[tuple[str, str], list[str]] = {}
    for resource in template.of_type("AWS::Serverless::Function"):
        policies = resource.properties.get("Policies", [])
        # SAM's template grants PutEvents with no condition: any source, any detail type.
        assert not any("EventBridgePutEventsPolicy" in p for p in policies if isinstance(p, dict)), resource
        statements = [s for policy in policies if isinstance(policy, dict) for s in policy.get("Statement", [])]
        for statement in statements:
            if "events:PutEvents" not in statement["Action"]:
                continue
            allowed = statement["Condition"]["StringEquals"]
            for source in allowed["events:source"]:
                for kind in allowed["events:detail-type"]:
                    granted.setdefault((source, kind), []).append(resource.logical_id)
    assert len(defined) == 9, defined
    assert set(granted) == defined
    assert all(len(functions) == 1 for functions in granted.values()), granted
