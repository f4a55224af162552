"""Brings up the template's topology on the local stack: moto for the data plane, the functions
as child processes behind a Runtime API, the HTTP API, and the event source mappings."""

from __future__ import annotations

from collections import Counter
import functools
import json
import os
import secrets
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import botocore.config

from .moto_server import FAULTS_PATH
from . import chaos, httpd, iam, meter
from .http_api import Cors, HttpApi, Route
from .identity import JwtAuthorizer, LocalIssuer
from .mappings import Mapping, ScheduleMapping, SqsMapping, StreamMapping
from .runtime import Function, InvocationError
from .template import ACCOUNT, REGION, Resource, Template, TemplateError

# Types that shape only the deployed stack: permissions, logs and alarms have no local effect.
# They are listed at start-up, so that nothing is skipped silently.
DEPLOY_ONLY = {"AWS::Logs::LogGroup", "AWS::CloudWatch::Alarm", "AWS::SQS::QueuePolicy",
               "AWS::SNS::Topic", "AWS::SNS::Subscription", "AWS::IAM::Role", "AWS::IAM::Policy"}

TABLE_PROPERTIES = {"TableName", "KeySchema", "AttributeDefinitions", "BillingMode",
                    "ProvisionedThroughput", "StreamSpecification", "TimeToLiveSpecification",
                    "GlobalSecondaryIndexes", "PointInTimeRecoverySpecification",
                    "DeletionProtectionEnabled", "SSESpecification", "Tags"}
FUNCTION_PROPERTIES = {"Environment", "Events", "MemorySize", "Timeout", "FunctionName",
                       "ReservedConcurrentExecutions",
                       # deploy-only: code location, permissions, tracing and log shipping
                       "CodeUri", "Handler", "Runtime", "Architectures", "Policies", "Tracing",
                       "LoggingConfig", "Description", "Tags", "Role"}
HTTP_API_PROPERTIES = {"Description", "FailOnWarnings", "Tags", "StageName", "Auth",
                       "CorsConfiguration",
                       # deploy-only: access logs and throttling
                       "AccessLogSettings", "DefaultRouteSettings"}
QUEUE_PROPERTIES = {"QueueName", "VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy",
                    "ReceiveMessageWaitTimeSeconds", "DelaySeconds", "MaximumMessageSize",
                    # deploy-only: encryption at rest and tags
                    "SqsManagedSseEnabled", "KmsMasterKeyId", "Tags"}
BUS_PROPERTIES = {"Name", "Description", "Tags"}
SECRET_PROPERTIES = {"Name", "Description", "GenerateSecretString", "Tags"}
RULE_PROPERTIES = {"Name", "Description", "EventBusName", "EventPattern", "State", "Targets"}
TARGET_PROPERTIES = {"Arn", "Id", "RetryPolicy",
                     # deploy-only: moto delivers to SQS at once and never needs the DLQ
                     "DeadLetterConfig"}
SQS_EVENT_PROPERTIES = {"Queue", "BatchSize", "MaximumBatchingWindowInSeconds",
                        "FunctionResponseTypes", "FilterCriteria", "Enabled", "ScalingConfig"}
STREAM_EVENT_PROPERTIES = {"Stream", "StartingPosition", "BatchSize", "MaximumBatchingWindowInSeconds",
                           "BisectBatchOnFunctionError", "MaximumRetryAttempts", "DestinationConfig",
                           "FunctionResponseTypes", "FilterCriteria", "Enabled",
                           "ParallelizationFactor", "MaximumRecordAgeInSeconds"}

# Instances of a function that serves the HTTP API (the others run `--instances`).
API_INSTANCES = 6

# The functions' credentials; each signs with an access key of its own (`local-<function>`), so
# the emulator can tell their calls from devstack's (key "testing"), which are never faulted.
CREDENTIALS = {"AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}


def _check_properties(resource: Resource, allowed: set[str]) -> None:
    unknown = sorted(set(resource.properties) - allowed)
    if unknown:
        raise TemplateError(f"{resource.logical_id} ({resource.type}): devstack does not "
                            f"support {', '.join(unknown)}")


class Stack:
    def __init__(self, template: Template, bin_dir: Path, log_dir: Path, moto_port: int,
                 instances: int = 2, faults: dict[str, Any] | None = None, speedups: bool = True,
                 issuer: LocalIssuer | None = None, enforce_iam: bool = True,
                 served_ports: tuple[int, ...] = ()):
        self.template = template
        # The API's and control interface's ports: with the emulator's, no callback may reach them.
        self.served_ports = served_ports
        self.enforce_iam = enforce_iam
        self.roles: dict[str, iam.Role] = {}  # by access key
        self.issuer = issuer
        # Per HTTP API: its default authorizer's name and its authorizers; its CORS settings.
        self.authorizers: dict[str, tuple[str | None, dict[str, JwtAuthorizer]]] = {}
        self.cors: Cors | None = None
        self.bin_dir = bin_dir
        self.log_dir = log_dir
        self.moto_port = moto_port
        self.instances = instances
        self.endpoint = f"http://127.0.0.1:{moto_port}"
        self.dynamodb_endpoint = self.endpoint
        self.emulators: list[subprocess.Popen] = []
        self.functions: dict[str, Function] = {}
        self.routes: list[Route] = []
        self.mappings: list[Mapping] = []
        self.notes: list[str] = []
        self.speedups = speedups
        # Fault settings: delivery faults stay here, the rest go to the emulator's process.
        self.delivery_faults = chaos.DeliveryFaults()
        self.faults = dict(faults or {})
        self.delivery_faults.configure(self.faults)
        self._check_types()

    def _check_types(self) -> None:
        supported = {"AWS::DynamoDB::Table", "AWS::Serverless::Function",
                     "AWS::Serverless::HttpApi", "AWS::SQS::Queue", "AWS::Events::EventBus",
                     "AWS::Events::Rule", "AWS::SecretsManager::Secret"} | DEPLOY_ONLY
        deploy_only: dict[str, int] = {}
        for resource in self.template.resources.values():
            if resource.type not in supported:
                raise TemplateError(f"{resource.logical_id}: devstack does not emulate "
                                    f"{resource.type}")
            if resource.type in DEPLOY_ONLY:
                deploy_only[resource.type] = deploy_only.get(resource.type, 0) + 1
        if deploy_only:
            counted = ", ".join(f"{n} {kind}" for kind, n in sorted(deploy_only.items()))
            self.notes.append(f"deploy-only, no local effect: {counted}")

    def seed(self, data: dict[str, list[dict[str, Any]]]) -> None:
        """Puts items into tables named by logical id (plain JSON, as events/*/seed.json)."""
        from infra.load_demo_data import decimals

        unknown = set(data) - {t.logical_id for t in self.template.of_type("AWS::DynamoDB::Table")}
        if unknown:
            raise TemplateError(f"seed data names tables the template lacks: {', '.join(sorted(unknown))}")
        for logical_id, items in data.items():
            table = self._dynamodb().Table(self.template.physical[logical_id])
            for item in items:
                table.put_item(Item=decimals(item))

    def seed_demo(self, data: dict[str, Any]) -> None:
        """The demo consumers and restaurants straight into their tables and the replica, for a
        run without an API or event delivery (`invoke`)."""
        from infra.load_demo_data import into_tables

        into_tables(self._dynamodb(), self.template.physical, data)

    def load_demo(self, api: str, token: str, data: dict[str, Any]) -> float:
        """The demo data through the owners' APIs; waits for the replicas. Answers the seconds
        from the first PUT to the last replica updated."""
        from infra.load_demo_data import via_api, wait_for_replicas

        started = time.time()
        versions = via_api(api, token, data)
        wait_for_replicas(self.client("dynamodb"), self.template.physical["ReplicasTable"], versions)
        return time.time() - started

    def _dynamodb(self):
        return boto3.resource("dynamodb", endpoint_url=self.dynamodb_endpoint, region_name=REGION,
                              aws_access_key_id="testing", aws_secret_access_key="testing")

    def client(self, service: str):
        endpoint = self.dynamodb_endpoint if service.startswith("dynamodb") else self.endpoint
        return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def start_data_plane(self) -> None:
        """Starts the emulator: with the speed fixes, DynamoDB in a process of its own beside the
        main one (see moto_server.py); with port 0 the main one takes a free port."""
        forward = []
        if self.speedups:
            self.dynamodb_endpoint = self._start_emulator(0, "moto-dynamodb", "--label", "dynamodb")
            forward = ["--forward-dynamodb", self.dynamodb_endpoint.rsplit(":", 1)[1],
                       "--label", "sqs+events"]
        self.endpoint = self._start_emulator(self.moto_port, "moto", *forward)
        if not self.speedups:
            self.dynamodb_endpoint = self.endpoint

    def _start_emulator(self, port: int, name: str, *arguments: str) -> str:
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.devstack.moto_server", "--port", str(port),
             "--faults", json.dumps({k: v for k, v in self.faults.items() if k not in chaos.KEYS}),
             *([] if self.speedups else ["--no-speedups"]), *arguments],
            cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE,
            stderr=open(self.log_dir / f"{name}.log", "ab"), text=True)
        self.emulators.append(process)
        assert process.stdout is not None  # stdout=PIPE
        ready = process.stdout.readline()  # "moto listening on 127.0.0.1:<port>"
        if not ready.startswith("moto listening"):
            raise TemplateError(f"moto did not start; see {self.log_dir / f'{name}.log'}")
        return f"http://127.0.0.1:{int(ready.rsplit(':', 1)[1])}"

    def emulator_endpoints(self) -> list[str]:
        return [self.endpoint] + ([self.dynamodb_endpoint] if self.dynamodb_endpoint != self.endpoint else [])

    def create(self) -> None:
        for table in self.template.of_type("AWS::DynamoDB::Table"):
            self._create_table(table)
        # Dead-letter queues first: the queues that redrive to them name their ARNs.
        queues = self.template.of_type("AWS::SQS::Queue")
        for queue in sorted(queues, key=lambda q: "RedrivePolicy" in q.properties):
            self._create_queue(queue)
        for secret in self.template.of_type("AWS::SecretsManager::Secret"):
            self._create_secret(secret)
        for bus in self.template.of_type("AWS::Events::EventBus"):
            self._create_bus(bus)
        for rule in self.template.of_type("AWS::Events::Rule"):
            self._create_rule(rule)
        for api in self.template.of_type("AWS::Serverless::HttpApi"):
            _check_properties(api, HTTP_API_PROPERTIES)
            stage = api.properties.get("StageName", "$default")
            if stage != "$default":
                raise TemplateError(f"{api.logical_id}: only the $default stage is emulated")
            self.template.physical[api.logical_id] = api.logical_id
            self._create_authorizers(api)
            cors = self.template.resolve(api.properties.get("CorsConfiguration"), api.logical_id)
            if cors:
                try:
                    self.cors = Cors.of(cors)
                except ValueError as e:
                    raise TemplateError(f"{api.logical_id}: {e}") from None
        for function in self.template.of_type("AWS::Serverless::Function"):
            self._create_function(function)

    def _create_authorizers(self, api: Resource) -> None:
        """The API's JWT authorizers, verifying tokens of devstack's own issuer: without an
        AWS account or internet there is no other provider's key set to fetch."""
        where = f"{api.logical_id}.Auth"
        auth = self.template.resolve(api.properties.get("Auth", {}), where)
        unknown = set(auth) - {"DefaultAuthorizer", "Authorizers", "EnableIamAuthorizer"}
        if unknown or auth.get("EnableIamAuthorizer"):
            raise TemplateError(f"{where}: devstack emulates JWT authorizers only")
        authorizers = {}
        for name, spec in auth.get("Authorizers", {}).items():
            config = spec.get("JwtConfiguration")
            if config is None or set(spec) - {"JwtConfiguration", "IdentitySource"}:
                raise TemplateError(f"{where}.Authorizers.{name}: only JWT authorizers are emulated")
            if self.issuer is None or config.get("issuer") != self.issuer.url:
                raise TemplateError(
                    f"{where}.Authorizers.{name}: issuer {config.get('issuer')!r} is not devstack's "
                    f"({self.issuer.url if self.issuer else 'none'}); leave JwtIssuer unset locally")
            audience = config.get("audience") or []
            try:
                authorizers[name] = JwtAuthorizer(
                    self.issuer.url, audience if isinstance(audience, list) else [audience],
                    self.issuer.jwks(), spec.get("IdentitySource", "$request.header.Authorization"))
            except ValueError as e:
                raise TemplateError(f"{where}.Authorizers.{name}: {e}") from None
        default = auth.get("DefaultAuthorizer")
        if default is not None and default not in authorizers:
            raise TemplateError(f"{where}: DefaultAuthorizer {default} is not among its Authorizers")
        self.authorizers[api.logical_id] = (default, authorizers)

    def _route_auth(self, where: str, api_id: Any, auth: dict[str, Any]) -> tuple[JwtAuthorizer | None, list[str]]:
        """A route's authorizer and scopes: its own Auth, else the API's default authorizer."""
        api = api_id.get("Ref") if isinstance(api_id, dict) else None
        if api not in self.authorizers:
            raise TemplateError(f"{where}: ApiId must Ref an AWS::Serverless::HttpApi of the template")
        default, authorizers = self.authorizers[api]
        unknown = set(auth) - {"Authorizer", "AuthorizationScopes"}
        if unknown:
            raise TemplateError(f"{where}.Auth: devstack does not support {', '.join(sorted(unknown))}")
        name = auth.get("Authorizer", default)
        if name in (None, "NONE"):
            return None, []
        if name not in authorizers:
            raise TemplateError(f"{where}.Auth: no authorizer {name}")
        return authorizers[name], list(auth.get("AuthorizationScopes", []))

    def _create_table(self, resource: Resource) -> None:
        _check_properties(resource, TABLE_PROPERTIES)
        props = self.template.resolve(resource.properties, resource.logical_id)
        name = props.get("TableName", resource.logical_id)
        request: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if "ProvisionedThroughput" in props:
            request["ProvisionedThroughput"] = props["ProvisionedThroughput"]
        if "GlobalSecondaryIndexes" in props:
            request["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        if "StreamSpecification" in props:
            request["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        dynamodb = self.client("dynamodb")
        table = dynamodb.create_table(**request)["TableDescription"]
        if props.get("TimeToLiveSpecification", {}).get("Enabled"):
            dynamodb.update_time_to_live(TableName=name,
                                         TimeToLiveSpecification=props["TimeToLiveSpecification"])
        self.template.physical[resource.logical_id] = name
        self.template.attributes[(resource.logical_id, "Arn")] = table["TableArn"]
        if "LatestStreamArn" in table:
            self.template.attributes[(resource.logical_id, "StreamArn")] = table["LatestStreamArn"]

    def _create_queue(self, resource: Resource) -> None:
        _check_properties(resource, QUEUE_PROPERTIES)
        props = self.template.resolve(resource.properties, resource.logical_id)
        name = props.get("QueueName", resource.logical_id)
        attributes = {k: (json.dumps(v) if isinstance(v, dict) else str(v)) for k, v in props.items()
                      if k in ("VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy",
                               "ReceiveMessageWaitTimeSeconds", "DelaySeconds", "MaximumMessageSize")}
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.template.physical[resource.logical_id] = url
        self.template.attributes[(resource.logical_id, "Arn")] = arn
        self.template.attributes[(resource.logical_id, "QueueName")] = name
        self.template.attributes[(resource.logical_id, "QueueUrl")] = url

    def _create_secret(self, resource: Resource) -> None:
        """A secret with a generated value, as `GenerateSecretString` makes one; `Ref` is its ARN."""
        _check_properties(resource, SECRET_PROPERTIES)
        props = self.template.resolve(resource.properties, resource.logical_id)
        generate = props.get("GenerateSecretString")
        unknown = set(generate or {}) - {"PasswordLength", "ExcludePunctuation"}
        if not generate or unknown:
            raise TemplateError(f"{resource.logical_id}: devstack makes secrets with GenerateSecretString "
                                f"(PasswordLength, ExcludePunctuation) only")
        alphabet = string.ascii_letters + string.digits + ("" if generate.get("ExcludePunctuation") else string.punctuation)
        value = "".join(secrets.choice(alphabet) for _ in range(int(generate.get("PasswordLength", 32))))
        arn = self.client("secretsmanager").create_secret(Name=props.get("Name", resource.logical_id),
                                                          SecretString=value)["ARN"]
        self.template.physical[resource.logical_id] = arn

    def _create_bus(self, resource: Resource) -> None:
        _check_properties(resource, BUS_PROPERTIES)
        name = self.template.resolve(resource.properties["Name"], resource.logical_id)
        arn = self.client("events").create_event_bus(Name=name)["EventBusArn"]
        self.template.physical[resource.logical_id] = name
        self.template.attributes[(resource.logical_id, "Arn")] = arn
        self.template.attributes[(resource.logical_id, "Name")] = name

    def _create_rule(self, resource: Resource) -> None:
        _check_properties(resource, RULE_PROPERTIES)
        props = self.template.resolve(resource.properties, resource.logical_id)
        for target in props.get("Targets", []):
            unknown = set(target) - TARGET_PROPERTIES
            if unknown:
                raise TemplateError(f"{resource.logical_id}.Targets: devstack does not support "
                                    f"{', '.join(sorted(unknown))}")
            if ":sqs:" not in target["Arn"]:
                raise TemplateError(f"{resource.logical_id}: only SQS targets are emulated")
        name = props.get("Name", resource.logical_id)
        bus = props.get("EventBusName", "default")
        events = self.client("events")
        arn = events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(props["EventPattern"]),
                              State=props.get("State", "ENABLED"))["RuleArn"]
        events.put_targets(Rule=name, EventBusName=bus, Targets=[
            {"Id": t["Id"], "Arn": t["Arn"]} for t in props.get("Targets", [])])
        self.template.physical[resource.logical_id] = name
        self.template.attributes[(resource.logical_id, "Arn")] = arn

    def _send_failure(self, function: Function, destination_arn: str, record: dict[str, Any]) -> None:
        """Lambda sends a stream batch's on-failure record with the function's execution role, so
        the role must allow it: the send is signed with the function's credentials."""
        url = self.client("sqs").get_queue_url(QueueName=destination_arn.split(":")[-1])["QueueUrl"]
        sqs = boto3.client("sqs", endpoint_url=self.endpoint, region_name=REGION,
                           aws_access_key_id=function.environment["AWS_ACCESS_KEY_ID"],
                           aws_secret_access_key=function.environment["AWS_SECRET_ACCESS_KEY"],
                           aws_session_token=function.environment["AWS_SESSION_TOKEN"],
                           config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 10}))
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))

    def _create_function(self, resource: Resource) -> None:
        _check_properties(resource, FUNCTION_PROPERTIES)
        where = resource.logical_id
        build = resource.metadata
        if build.get("BuildMethod") != "rust-cargolambda":
            raise TemplateError(f"{where}: only Metadata.BuildMethod rust-cargolambda is run locally")
        binary = build.get("BuildProperties", {}).get("Binary")
        if not binary:
            raise TemplateError(f"{where}: Metadata.BuildProperties.Binary names no binary")
        props = resource.properties
        name = self.template.resolve(props.get("FunctionName", resource.logical_id), where)
        variables = self.template.resolve(props.get("Environment", {}).get("Variables", {}), where)
        # A variable resolved to AWS::NoValue is absent, as CloudFormation leaves it.
        environment = {k: str(v) for k, v in variables.items() if v is not None}
        environment.update(CREDENTIALS)
        # Temporary credentials of the function's role, as Lambda gives them.
        environment["AWS_ACCESS_KEY_ID"] = f"local-{name}"
        environment["AWS_SESSION_TOKEN"] = f"local-session-{name}"
        self.roles[environment["AWS_ACCESS_KEY_ID"]] = iam.role_of(self.template, resource, name)
        environment["AWS_ENDPOINT_URL"] = self.endpoint
        environment["AWS_ENDPOINT_URL_DYNAMODB"] = self.dynamodb_endpoint
        emulator_ports = {int(e.rsplit(":", 1)[1]) for e in (self.endpoint, self.dynamodb_endpoint)}
        environment["LOCAL_STACK_PORTS"] = ",".join(
            str(p) for p in sorted(emulator_ports | set(self.served_ports)))
        # Lambda scales a function behind an API with its requests; here the API's functions get
        # a few more instances than the others. Reserved concurrency is the most a function runs
        # at once, on AWS and here: beyond it an invocation is throttled.
        serves_api = any(e.get("Type") == "HttpApi" for e in props.get("Events", {}).values())
        instances = max(self.instances, API_INSTANCES) if serves_api else self.instances
        reserved = props.get("ReservedConcurrentExecutions")
        reserved = None if reserved is None else int(self.template.resolve(reserved, where))
        function = Function(name, self.bin_dir / binary, environment,
                            int(props.get("Timeout", 3)), int(props.get("MemorySize", 128)),
                            self.log_dir, instances, reserved)
        self.functions[resource.logical_id] = function
        self.template.physical[resource.logical_id] = name
        self.template.attributes[(resource.logical_id, "Arn")] = function.arn
        for event_name, event in props.get("Events", {}).items():
            self._create_event_source(resource, function, event_name, event)

    def _create_event_source(self, resource: Resource, function: Function, name: str,
                             event: dict[str, Any]) -> None:
        where = f"{resource.logical_id}.Events.{name}"
        kind = event.get("Type")
        props = event.get("Properties", {})
        if kind == "HttpApi":
            unknown = set(props) - {"ApiId", "Path", "Method", "PayloadFormatVersion", "Auth"}
            if unknown:
                raise TemplateError(f"{where}: devstack does not support {', '.join(sorted(unknown))}")
            if str(props.get("PayloadFormatVersion", "2.0")) != "2.0":
                raise TemplateError(f"{where}: only payload format 2.0 is emulated")
            method = props["Method"].upper()
            authorizer, scopes = self._route_auth(where, props.get("ApiId"),
                                                  self.template.resolve(props.get("Auth", {}), where))
            self.routes.append(Route("ANY" if method in ("ANY", "X-AMAZON-APIGATEWAY-ANY-METHOD")
                                     else method, props["Path"], function, authorizer, scopes))
        elif kind == "Schedule":
            unknown = set(props) - {"Schedule", "Enabled", "Description", "Name"}
            if unknown:
                raise TemplateError(f"{where}: devstack does not support {', '.join(sorted(unknown))}")
            if props.get("Enabled", True):
                self.mappings.append(ScheduleMapping(function, where, props["Schedule"]))
        elif kind in ("SQS", "DynamoDB"):
            allowed = SQS_EVENT_PROPERTIES if kind == "SQS" else STREAM_EVENT_PROPERTIES
            unknown = set(props) - allowed
            if unknown:
                raise TemplateError(f"{where}: devstack does not support {', '.join(sorted(unknown))}")
            props = self.template.resolve(props, where)
            if not props.get("Enabled", True):
                self.notes.append(f"{where}: disabled in the template")
                return
            if kind == "SQS":
                mapping: Mapping = SqsMapping(function, where, self.client("sqs"), props["Queue"], props,
                                     self.delivery_faults)
            else:
                destination = (props.get("DestinationConfig") or {}).get("OnFailure", {})
                if destination and ":sqs:" not in destination.get("Destination", ""):
                    raise TemplateError(f"{where}: only an SQS on-failure destination is emulated")
                readers = [m.where for m in self.mappings
                           if isinstance(m, StreamMapping) and m.stream_arn == props["Stream"]]
                if len(readers) >= 2:
                    # DynamoDB Streams throttles a third reader of a shard (LimitExceededException:
                    # "More than 2 processes are reading from the same streams shard").
                    raise TemplateError(f"{where}: a third reader of a stream {readers} would be throttled")
                mapping = StreamMapping(function, where, self.client("dynamodbstreams"),
                                        self.client("sqs"), props["Stream"], props,
                                        functools.partial(self._send_failure, function),
                                        self.delivery_faults)
            self.mappings.append(mapping)
        else:
            raise TemplateError(f"{where}: event source type {kind} is not emulated by devstack")

    def enforce_roles(self) -> None:
        """From now on the emulators check each function's calls against its role."""
        if self.enforce_iam:
            partition_keys = {
                iam.table_arn(self.template.physical[table.logical_id]): key["AttributeName"]
                for table in self.template.of_type("AWS::DynamoDB::Table")
                for key in table.properties["KeySchema"] if key["KeyType"] == "HASH"}
            self._emulators_iam({"roles": {key: role.to_json() for key, role in self.roles.items()},
                                 "partitionKeys": partition_keys})

    def start_functions(self) -> None:
        self.enforce_roles()
        for function in self.functions.values():
            function.start()
        for mapping in self.mappings:
            mapping.start()

    def _emulators_iam(self, roles: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Sends the roles to every emulator process (with `roles`); answers what each saw."""
        answers = []
        for endpoint in self.emulator_endpoints():
            request = urllib.request.Request(f"{endpoint}{iam.IAM_PATH}", method="POST" if roles else "GET",
                                             data=json.dumps(roles).encode() if roles else None)
            with urllib.request.urlopen(request, timeout=10) as answer:
                answers.append(json.loads(answer.read()))
        return answers

    def iam_report(self) -> str:
        """Each function's granted permissions beside those it used and was denied."""
        if not self.enforce_iam:
            return "IAM: not enforced (--no-iam)"
        usage = iam.Usage(granted={role.function: role for role in self.roles.values()})
        for described in self._emulators_iam():
            usage.add(described)
        return usage.report()

    def stats(self) -> dict[str, Any]:
        """Counters since start-up, for benchmarks: each function's invocations, their time and
        peak memory; every request the emulators served, by caller and operation."""
        requests: Counter = Counter()
        for endpoint in self.emulator_endpoints():
            with urllib.request.urlopen(f"{endpoint}{meter.METER_PATH}", timeout=10) as answer:
                requests.update(json.loads(answer.read()))
        return {"functions": {logical_id: f.stats() for logical_id, f in self.functions.items()},
                "requests": dict(requests)}

    def http_api(self, port: int) -> HttpApi:
        return HttpApi(self.routes, "127.0.0.1", port, self.cors)

    def function(self, name: str) -> Function:
        for logical_id, function in self.functions.items():
            if name in (logical_id, function.name, function.binary.name):
                return function
        raise KeyError(f"no function {name}; the template has {', '.join(self.functions)}")

    def describe(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "region": REGION,
            "account": ACCOUNT,
            "resources": dict(self.template.physical),
            "attributes": {f"{k[0]}.{k[1]}": v for k, v in self.template.attributes.items()},
            # Each function's environment as devstack runs it, for other runners (sam local).
            "environments": {logical_id: function.environment
                             for logical_id, function in self.functions.items()},
            "binaries": {logical_id: function.binary.name for logical_id, function in self.functions.items()},
            "logs": str(self.log_dir),
        }

    def stop(self) -> None:
        for mapping in self.mappings:
            mapping.stopped.set()
        for function in self.functions.values():
            function.stop()
        for emulator in self.emulators:
            emulator.terminate()
        for emulator in self.emulators:
            emulator.wait(timeout=10)


def serve_control(stack: Stack, port: int) -> None:
    """A small HTTP interface for tests and operators: stop, start and invoke a function; set
    faults (`POST /faults` with settings of `faults.py` and `chaos.py`; `POST /faults/put-events
    {"failureRate": 0.3, "source": "orders"}`) and read them with their counts (`GET /faults`)."""
    class Handler(httpd.Handler):
        def _faults(self, settings: dict[str, Any] | None) -> None:
            """Delivery faults are devstack's; the rest are the emulator's, passed on to it."""
            body = None
            if settings is not None:
                try:
                    stack.delivery_faults.configure(settings)
                except (ValueError, TypeError) as e:
                    return self.answer_json(400, {"message": str(e)})
                body = json.dumps({k: v for k, v in settings.items() if k not in chaos.KEYS}).encode()
            answers = []
            for endpoint in stack.emulator_endpoints():
                request = urllib.request.Request(f"{endpoint}{FAULTS_PATH}", data=body,
                                                 method="POST" if body is not None else "GET")
                try:
                    with urllib.request.urlopen(request, timeout=10) as answer:
                        answers.append(json.loads(answer.read()))
                except urllib.error.HTTPError as e:
                    return self.answer_json(e.code, json.loads(e.read()))
            # Both processes hold the same settings; each counts the faults of its own services.
            emulator = answers[0]
            for other in answers[1:]:
                emulator["putEvents"]["injected"] += other["putEvents"]["injected"]
                for name, count in other["counts"].items():
                    emulator["counts"][name] = emulator["counts"].get(name, 0) + count
            emulator["counts"] = dict(sorted(emulator["counts"].items()))
            self.answer_json(200, {**emulator, "delivery": stack.delivery_faults.describe()})

        def do_GET(self) -> None:
            if self.path.strip("/") == "faults":
                return self._faults(None)
            if self.path.strip("/") == "stats":
                return self.answer_json(200, stack.stats())
            # The local issuer's OIDC discovery document and key set, where API Gateway looks.
            if stack.issuer and self.path == "/.well-known/openid-configuration":
                return self.answer_json(200, stack.issuer.discovery())
            if stack.issuer and self.path == "/.well-known/jwks.json":
                return self.answer_json(200, stack.issuer.jwks())
            self.answer_json(404, {"message": "GET /faults, /stats, /.well-known/jwks.json"})

        def do_POST(self) -> None:
            parts = self.path.strip("/").split("/")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if parts[0] == "faults" and len(parts) <= 2:
                try:
                    settings = json.loads(body or b"{}")
                except ValueError:
                    return self.answer_json(400, {"message": "the body is no JSON"})
                if parts[1:] == ["put-events"]:
                    settings = {"putEvents": settings}
                return self._faults(settings if isinstance(settings, dict) else {"": settings})
            if len(parts) != 3 or parts[0] != "functions" or parts[2] not in ("start", "stop", "invoke"):
                return self.answer_json(404, {"message": "POST /functions/{name}/start, /stop or /invoke"})
            try:
                function = stack.function(parts[1])
            except KeyError as e:
                return self.answer_json(404, {"message": str(e)})
            if parts[2] == "invoke":
                try:
                    return self.answer_json(200, {"result": function.invoke(json.loads(body), wait=function.timeout + 5)})
                except InvocationError as e:
                    return self.answer_json(200, {"error": e.payload or {"errorType": e.kind, "errorMessage": str(e)}})
            function.start() if parts[2] == "start" else function.stop()
            return self.answer_json(200, {"function": function.name, "running": function.running})

    httpd.serve(Handler, "127.0.0.1", port)


def write_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2))
    os.replace(temporary, path)
