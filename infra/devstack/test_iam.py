"""The IAM rules devstack enforces, without a running stack: roles read from a template (SAM
policy templates expanded by SAM's translator), IAM's decision, and what each request asks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .iam import ENFORCER, Role, Statement, calls_of, role_of
from .iam_middleware import middleware
from .template import Template, TemplateError

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/Orders"
OTHER = "arn:aws:dynamodb:us-east-1:123456789012:table/Consumers"


def template(tmp_path: Path, policies: list) -> Template:
    path = tmp_path / "template.yaml"
    path.write_text(json.dumps({
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {
            "Orders": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
            "Dlq": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "Fn": {"Type": "AWS::Serverless::Function", "Properties": {"Policies": policies}}}}))
    loaded = Template(path)
    loaded.attributes[("Orders", "Arn")] = TABLE
    loaded.attributes[("Dlq", "QueueName")] = "Dlq"
    return loaded


def test_inline_statements_and_sam_policy_templates_become_the_role(tmp_path):
    loaded = template(tmp_path, [
        {"Statement": [{"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": {"Fn::GetAtt": ["Orders", "Arn"]}}]},
        {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["Dlq", "QueueName"]}}},
    ])
    role = role_of(loaded, loaded.resources["Fn"], "fn")
    assert role.allows("dynamodb:GetItem", TABLE)
    assert not role.allows("dynamodb:PutItem", TABLE)
    assert not role.allows("dynamodb:GetItem", OTHER)
    # SAM's template grants sqs:SendMessage* on the queue's ARN, built from its name.
    assert role.allows("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:Dlq")
    assert not role.allows("sqs:ReceiveMessage", "arn:aws:sqs:us-east-1:123456789012:Dlq")


@pytest.mark.parametrize("policy, construct", [
    ({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*",
                     "Condition": {"StringEquals": {"aws:SourceVpc": "vpc-1"}}}]}, "Condition"),
    ({"Statement": [{"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}]}, "NotAction"),
    ("AWSLambdaBasicExecutionRole", "managed policy"),
    ({"NoSuchPolicyTemplate": {}}, "no SAM policy template"),
])
def test_what_devstack_cannot_evaluate_stops_it_at_start_up(tmp_path, policy, construct):
    loaded = template(tmp_path, [policy])
    with pytest.raises(TemplateError, match=construct):
        role_of(loaded, loaded.resources["Fn"], "fn")


def test_an_explicit_deny_wins_over_an_allow():
    role = Role("fn", [Statement("Allow", ["dynamodb:*"], ["*"]),
                       Statement("Deny", ["dynamodb:DeleteItem"], [TABLE])])
    assert role.allows("dynamodb:DeleteItem", OTHER)
    assert not role.allows("dynamodb:DeleteItem", TABLE)
    assert role.allows("DynamoDB:getitem", TABLE)  # actions are not case-sensitive


def test_each_request_names_every_action_and_resource_iam_checks():
    transaction = {"TransactItems": [{"Put": {"TableName": "Orders"}}, {"ConditionCheck": {"TableName": "Consumers"}}]}
    assert calls_of("dynamodb", "TransactWriteItems", transaction) == [
        ("dynamodb:PutItem", TABLE, {}), ("dynamodb:ConditionCheckItem", OTHER, {})]
    assert calls_of("dynamodb", "Query", {"TableName": "Orders", "IndexName": "byStatus"}) == [
        ("dynamodb:Query", TABLE + "/index/byStatus", {})]
    assert calls_of("sqs", "SendMessage", {"QueueUrl": "http://127.0.0.1:4566/123456789012/Dlq"}) == [
        ("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:Dlq", {})]
    entries = {"Entries": [{"EventBusName": "local-orders", "Source": "orders", "DetailType": "OrderCreated"}, {}]}
    assert calls_of("events", "PutEvents", entries) == [
        ("events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/local-orders",
         {"events:source": ["orders"], "events:detail-type": ["OrderCreated"]}),
        ("events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/default",
         {"events:source": [""], "events:detail-type": [""]})]
    # The partition key of the item named: what dynamodb:LeadingKeys is.
    keys = {TABLE: "pk"}
    assert calls_of("dynamodb", "DeleteItem", {"TableName": "Orders", "Key": {"pk": {"S": "WAIT#0#a"}}}, keys) == [
        ("dynamodb:DeleteItem", TABLE, {"dynamodb:LeadingKeys": ["WAIT#0#a"]})]
    put = {"TransactItems": [{"Put": {"TableName": "Orders", "Item": {"pk": {"S": "ORDER#1"}, "n": {"N": "1"}}}}]}
    assert calls_of("dynamodb", "TransactWriteItems", put, keys) == [
        ("dynamodb:PutItem", TABLE, {"dynamodb:LeadingKeys": ["ORDER#1"]})]


def test_conditions_are_evaluated_as_iam_does():
    leading = Statement("Allow", ["dynamodb:PutItem"], [TABLE],
                        {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["WAIT#*"]}})
    role = Role("fn", [leading])
    assert role.allows("dynamodb:PutItem", TABLE, {"dynamodb:LeadingKeys": ["WAIT#1#consumer-1"]})
    assert not role.allows("dynamodb:PutItem", TABLE, {"dynamodb:LeadingKeys": ["ORDER#1"]})
    # ForAllValues holds when the request has no such key (IAM's documented pitfall);
    # ForAnyValue does not.
    assert role.allows("dynamodb:PutItem", TABLE, {})
    any_value = Role("fn", [Statement("Allow", ["dynamodb:PutItem"], [TABLE],
                                      {"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": ["WAIT#*"]}})])
    assert any_value.allows("dynamodb:PutItem", TABLE, {"dynamodb:LeadingKeys": ["ORDER#1", "WAIT#2"]})
    assert not any_value.allows("dynamodb:PutItem", TABLE, {})
    source = Statement("Allow", ["events:PutEvents"], ["*"],
                       {"StringEquals": {"events:source": ["consumers"],
                                         "events:detail-type": ["ConsumerValidated", "ConsumerValidationFailed"]}})
    role = Role("fn", [source])
    assert role.allows("events:PutEvents", "bus", {"events:source": ["consumers"], "events:detail-type": ["ConsumerValidated"]})
    assert not role.allows("events:PutEvents", "bus", {"events:source": ["restaurants"], "events:detail-type": ["ConsumerValidated"]})
    assert not role.allows("events:PutEvents", "bus", {"events:source": ["consumers"], "events:detail-type": ["OrderDetailsValidated"]})
    assert not role.allows("events:PutEvents", "bus", {})  # a plain operator needs the key
    negated = Role("fn", [Statement("Allow", ["*"], ["*"]),
                          Statement("Deny", ["events:PutEvents"], ["*"], {"StringNotEquals": {"events:source": ["orders"]}})])
    assert negated.allows("events:PutEvents", "bus", {"events:source": ["orders"]})
    assert not negated.allows("events:PutEvents", "bus", {"events:source": ["consumers"]})


def test_put_events_fails_only_the_entries_the_role_may_not_publish():
    reached = []

    def emulator(environ, start_response):
        entries = json.loads(environ["wsgi.input"].read())["Entries"]
        reached.append(entries)
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1")])
        return [json.dumps({"FailedEntryCount": 0, "Entries": [{"EventId": f"e{i}"} for i in range(len(entries))]}).encode()]

    app = middleware(emulator)
    allowed = Statement("Allow", ["events:PutEvents"], ["*"],
                        {"StringEquals": {"events:source": ["consumers"], "events:detail-type": ["ConsumerValidated"]}})
    ENFORCER.configure({"roles": {"local-fn": Role("fn", [allowed]).to_json()}})
    try:
        entries = [{"Source": "consumers", "DetailType": "ConsumerValidated", "Detail": "{}"},
                   {"Source": "restaurants", "DetailType": "OrderDetailsValidated", "Detail": "{}"},
                   {"Source": "consumers", "DetailType": "OrderDetailsValidated", "Detail": "{}"}]
        body = json.dumps({"Entries": entries}).encode()
        environ = {"PATH_INFO": "/", "REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(body)),
                   "HTTP_X_AMZ_TARGET": "AWSEvents.PutEvents",
                   "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=local-fn/20261127/us-east-1/events/aws4_request",
                   "wsgi.input": __import__("io").BytesIO(body)}
        answered = {}
        answer = json.loads(b"".join(app(environ, lambda status, headers: answered.update(status=status))))
        assert answered["status"] == "200 OK"
        assert reached == [[entries[0]]]  # only the allowed entry reaches the bus
        assert answer["FailedEntryCount"] == 2
        assert answer["Entries"][0] == {"EventId": "e0"}
        assert [e.get("ErrorCode") for e in answer["Entries"][1:]] == [
            "NotAuthorizedForSourceException", "NotAuthorizedForDetailTypeException"]
    finally:
        ENFORCER.configure({})
        ENFORCER.used.clear()
        ENFORCER.denied.clear()


def test_a_denied_call_gets_the_services_error_and_never_reaches_the_data():
    reached = []
    app = middleware(lambda environ, start_response: reached.append(environ) or [b"{}"])
    ENFORCER.configure({"roles": {"local-fn": Role("fn", [Statement("Allow", ["dynamodb:GetItem"], [TABLE])]).to_json()}})
    try:
        def call(operation: str, key: str = "local-fn"):
            body = json.dumps({"TableName": "Orders"}).encode()
            environ = {"PATH_INFO": "/", "REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(body)),
                       "HTTP_X_AMZ_TARGET": f"DynamoDB_20120810.{operation}",
                       "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential={key}/20261127/us-east-1/dynamodb/aws4_request",
                       "wsgi.input": __import__("io").BytesIO(body)}
            answered: dict[str, str] = {}
            chunks = app(environ, lambda status, headers: answered.update(status=status))
            return answered.get("status"), b"".join(chunks)

        assert call("GetItem") == (None, b"{}")
        status, body = call("PutItem")
        assert status == "400 Bad Request"
        assert json.loads(body)["__type"] == "AccessDeniedException"
        assert "not authorized to perform: dynamodb:PutItem on resource: " + TABLE in json.loads(body)["message"]
        assert len(reached) == 1
        assert call("PutItem", key="testing")[0] is None  # devstack's own calls are not a role's
        assert ENFORCER.describe()["denied"] == {"fn": {f"dynamodb:PutItem {TABLE}": 1}}
    finally:
        ENFORCER.configure({})
