"""The local stack's orchestration: the data plane (moto, in processes of its own) started, the
template's resources created (`provision`, one module per kind), the functions and their event
source mappings started and stopped, the roles sent to the emulators, the counters gathered.
The control port is `control.py`."""

from __future__ import annotations

import json
from collections import Counter
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3

from . import chaos, iam, meter, provision
from .http_api import Cors, HttpApi, Route
from .identity import JwtAuthorizer, LocalIssuer
from .mappings import Mapping
from .runtime import Function
from .template import ACCOUNT, REGION, Template, TemplateError


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
        supported = provision.SUPPORTED | provision.DEPLOY_ONLY
        deploy_only: dict[str, int] = {}
        for resource in self.template.resources.values():
            if resource.type not in supported:
                raise TemplateError(f"{resource.logical_id}: devstack does not emulate "
                                    f"{resource.type}")
            if resource.type in provision.DEPLOY_ONLY:
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
        provision.create(self)

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


def write_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2))
    os.replace(temporary, path)
