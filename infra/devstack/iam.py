"""IAM on the local stack: each function's execution role, from the template, enforced on every
AWS call the function makes, so a missing permission fails here before it fails after
`sam deploy`.

devstack builds each role (`role_of`): the function's `Policies`, SAM policy templates expanded by
SAM's own translator (`samtranslator`'s policy template processor, not a copy), intrinsics
resolved to the local resources' ARNs. A statement's `Condition` is evaluated for the keys the
template uses (`CONDITION_KEYS`: `dynamodb:LeadingKeys`, `events:source`, `events:detail-type`)
with the string operators and their `ForAllValues:`/`ForAnyValue:` forms. What it cannot evaluate
faithfully (another key or operator, `NotAction`, `NotResource`, a managed policy by name) stops
it at start-up, naming it. The emulator's processes then check each call a function signs
(`iam_middleware.py`): its action on each resource it names (a table, index, queue, bus, secret; a
transaction's every item), with the request's condition keys, must be allowed by a statement and
denied by none, as IAM decides; otherwise the service's own access-denied error, logged with the
function, action and resource. `PutEvents` is decided per entry, as EventBridge does: an entry
whose source or detail type the role may not publish fails alone
(`NotAuthorizedForSourceException`, `NotAuthorizedForDetailTypeException`), the others go on. devstack's own calls and the
event source mappings' (Lambda's service role) are not the function's and are not checked.
Every allowed call is counted, for the report of used against granted permissions."""

from __future__ import annotations

import functools
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .template import ACCOUNT, REGION, Resource, Template, TemplateError

IAM_PATH = "/_devstack/iam"


# The condition keys devstack knows how to fill in from a request, and the operators it evaluates.
CONDITION_KEYS = {"dynamodb:LeadingKeys", "events:source", "events:detail-type"}
OPERATORS = {"StringEquals", "StringNotEquals", "StringLike", "StringNotLike"}
# A request's condition keys: each key's values (a key may have several: LeadingKeys).
Context = dict[str, list[str]]


@dataclass
class Statement:
    effect: str  # Allow or Deny
    actions: list[str]
    resources: list[str]
    # operator -> condition key -> values; every operator and key must hold (IAM's AND).
    conditions: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def matches(self, action: str, resource: str) -> bool:
        return any(_glob(a, action, case=False) for a in self.actions) and \
            any(_glob(r, resource, case=True) for r in self.resources)

    def holds(self, context: Context, ignoring: frozenset[str] = frozenset()) -> bool:
        """Whether the conditions hold for the request's keys (`ignoring` some keys), as IAM
        evaluates them (docs: reference_policies_condition-single-vs-multi-valued-context-keys):
        a plain operator needs the key present and one of its values matching one of the
        policy's; `ForAllValues:` needs every value of the request to match (true when the key
        is absent); `ForAnyValue:` needs one to (false when the key is absent)."""
        for operator, keys in self.conditions.items():
            qualifier, _, base = operator.rpartition(":")
            for key, allowed in keys.items():
                if key in ignoring:
                    continue
                values = context.get(key)
                if qualifier == "ForAllValues":
                    held = values is None or all(_string(base, v, allowed) for v in values)
                elif qualifier == "ForAnyValue":
                    held = values is not None and any(_string(base, v, allowed) for v in values)
                elif values is None:
                    held = base.startswith("StringNot")  # a negated operator holds on no value
                else:
                    held = any(_string(base, v, allowed) for v in values)
                if not held:
                    return False
        return True


def _string(operator: str, value: str, allowed: list[str]) -> bool:
    positive = operator.replace("Not", "")
    if positive == "StringEquals":
        found = value in allowed
    else:  # StringLike: * and ? wildcards, case-sensitive
        found = any(_glob(pattern, value, case=True) for pattern in allowed)
    return found != ("Not" in operator)


def _glob(pattern: str, value: str, case: bool) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


@dataclass
class Role:
    function: str
    statements: list[Statement]

    @property
    def arn(self) -> str:
        return f"arn:aws:sts::{ACCOUNT}:assumed-role/{self.function}-role/{self.function}"

    def allows(self, action: str, resource: str, context: Context | None = None,
               ignoring: frozenset[str] = frozenset()) -> bool:
        """IAM's rule: an explicit deny wins, then an allow; nothing said is a deny. A statement
        counts only when its conditions hold for the request's keys."""
        applying = [s for s in self.statements
                    if s.matches(action, resource) and s.holds(context or {}, ignoring)]
        return bool(applying) and all(s.effect == "Allow" for s in applying)

    def grants(self) -> list[str]:
        return sorted(f"{s.effect} {a} on {r}" for s in self.statements for a in s.actions for r in s.resources)

    def to_json(self) -> dict[str, Any]:
        return {"function": self.function,
                "statements": [{"Effect": s.effect, "Action": s.actions, "Resource": s.resources,
                                "Condition": s.conditions} for s in self.statements]}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Role:
        return cls(value["function"], [Statement(s["Effect"], s["Action"], s["Resource"],
                                                 s.get("Condition", {}))
                                       for s in value["statements"]])


@functools.cache
def _processor():
    """SAM's policy template processor, loaded once (it reads and checks every template)."""
    from samtranslator.policy_template_processor.processor import PolicyTemplatesProcessor

    return PolicyTemplatesProcessor(PolicyTemplatesProcessor.get_default_policy_templates_json())


def role_of(template: Template, resource: Resource, function_name: str) -> Role:
    """The function's execution role as the template grants it, resolved to local ARNs."""
    where = f"{resource.logical_id}.Policies"
    policies = resource.properties.get("Policies", [])
    policies = policies if isinstance(policies, list) else [policies]
    processor = None
    statements: list[Statement] = []
    for index, policy in enumerate(policies):
        here = f"{where}[{index}]"
        if isinstance(policy, str):
            raise TemplateError(f"{here}: managed policy {policy} is not evaluated by devstack")
        if set(policy) - {"Statement", "Version"} and len(policy) == 1:
            (name, parameters), = policy.items()
            processor = processor or _processor()
            if not processor.has(name):
                raise TemplateError(f"{here}: {name} is no SAM policy template")
            parameters = template.resolve(parameters, here)
            document = processor.convert(name, parameters or {})
        elif "Statement" in policy:
            document = policy
        else:
            raise TemplateError(f"{here}: devstack reads inline statements and SAM policy templates only")
        for number, statement in enumerate(document["Statement"]):
            statements.append(_statement(template, statement, f"{here}.Statement[{number}]"))
    return Role(function_name, statements)


def _statement(template: Template, statement: dict[str, Any], where: str) -> Statement:
    unknown = set(statement) - {"Effect", "Action", "Resource", "Sid", "Condition"}
    if unknown:
        raise TemplateError(f"{where}: devstack cannot evaluate {', '.join(sorted(unknown))}")
    resolved = template.resolve(statement, where)
    as_list = lambda value: value if isinstance(value, list) else [value]  # noqa: E731
    conditions: dict[str, dict[str, list[str]]] = {}
    for operator, keys in resolved.get("Condition", {}).items():
        qualifier, _, base = operator.rpartition(":")
        if base not in OPERATORS or qualifier not in ("", "ForAllValues", "ForAnyValue"):
            raise TemplateError(f"{where}.Condition: devstack cannot evaluate {operator}")
        for key in keys:
            if key not in CONDITION_KEYS:
                raise TemplateError(f"{where}.Condition: devstack cannot evaluate the key {key}")
        conditions[operator] = {key: [str(v) for v in as_list(values)] for key, values in keys.items()}
    return Statement(resolved["Effect"], [str(a) for a in as_list(resolved["Action"])],
                     [str(r) for r in as_list(resolved["Resource"])], conditions)


# ---- In the emulator's processes ----

class Enforcer:
    """The roles by access key, and what each function was allowed and denied."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.roles: dict[str, Role] = {}
        # Each table's partition key attribute, by table ARN: what dynamodb:LeadingKeys reads.
        self.partition_keys: dict[str, str] = {}
        self.used: dict[str, Counter] = {}
        self.denied: dict[str, Counter] = {}

    def configure(self, value: dict[str, Any]) -> None:
        with self.lock:
            self.roles = {key: Role.from_json(role) for key, role in value.get("roles", {}).items()}
            self.partition_keys = dict(value.get("partitionKeys", {}))

    def describe(self) -> dict[str, Any]:
        with self.lock:
            return {"used": {f: dict(c) for f, c in self.used.items()},
                    "denied": {f: dict(c) for f, c in self.denied.items()}}

    def function_of(self, access_key: str) -> str | None:
        """The function whose role signs with `access_key`; None for devstack's own calls."""
        role = self.roles.get(access_key)
        return role.function if role else None

    def decide(self, access_key: str, calls: list[Call]) -> tuple[Role, str, str] | None:
        """The first (role, action, resource) the function's role does not allow, else None."""
        role = self.roles.get(access_key)
        if role is None:
            return None
        with self.lock:
            for action, resource, context in calls:
                if not role.allows(action, resource, context):
                    self.denied.setdefault(role.function, Counter())[f"{action} {resource}"] += 1
                    return role, action, resource
            for action, resource, _ in calls:
                self.used.setdefault(role.function, Counter())[f"{action} {resource}"] += 1
        return None

    def decide_entries(self, role: Role, calls: list[Call]) -> list[str | None]:
        """Per `PutEvents` entry: None when the role may publish it, else the code EventBridge
        fails that entry with (its detail type refused if its source alone would pass)."""
        codes: list[str | None] = []
        with self.lock:
            for action, resource, context in calls:
                key = f"{action} {resource}"
                if role.allows(action, resource, context):
                    self.used.setdefault(role.function, Counter())[key] += 1
                    codes.append(None)
                    continue
                self.denied.setdefault(role.function, Counter())[key] += 1
                source_passes = role.allows(action, resource, context, frozenset({"events:detail-type"}))
                codes.append("NotAuthorizedForDetailTypeException" if source_passes
                             else "NotAuthorizedForSourceException")
        return codes


ENFORCER = Enforcer()

TRANSACT_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                    "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}


def _arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


def table_arn(name: str, index: str | None = None) -> str:
    if name.startswith("arn:"):
        return name
    return _arn("dynamodb", f"table/{name}" + (f"/index/{index}" if index else ""))


# What IAM checks of one request: (action, resource ARN, condition keys).
Call = tuple[str, str, Context]


def _leading_keys(table: str, request: dict[str, Any], partition_keys: dict[str, str]) -> Context:
    """`dynamodb:LeadingKeys`: the partition key value of the item a request names (its `Key`, or
    a put's `Item`). Absent when the request names no item (a scan, a query)."""
    name = partition_keys.get(table)
    value = (request.get("Key") or request.get("Item") or {}).get(name) if name else None
    if not isinstance(value, dict) or not value:
        return {}
    (_, text), = value.items()
    return {"dynamodb:LeadingKeys": [str(text)]}


def calls_of(service: str, operation: str, body: dict[str, Any],
             partition_keys: dict[str, str] | None = None) -> list[Call]:
    """What IAM checks for one request; `PutEvents` gives one call per entry."""
    keys = partition_keys or {}
    if service == "dynamodb":
        if operation in ("TransactWriteItems", "TransactGetItems"):
            return [(f"dynamodb:{TRANSACT_ACTIONS[kind]}", table,
                     _leading_keys(table, item[kind], keys))
                    for item in body.get("TransactItems", []) for kind in item
                    for table in [table_arn(item[kind]["TableName"])]]
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [(f"dynamodb:{operation}", table_arn(name), {}) for name in body.get("RequestItems", {})]
        if "StreamArn" in body:
            return [(f"dynamodb:{operation}", body["StreamArn"], {})]
        if "TableName" in body:
            table = table_arn(body["TableName"], body.get("IndexName"))
            return [(f"dynamodb:{operation}", table, _leading_keys(table, body, keys))]
        return [(f"dynamodb:{operation}", "*", {})]
    if service == "sqs":
        url = body.get("QueueUrl", "")
        return [(f"sqs:{operation}", _arn("sqs", url.rstrip("/").rsplit("/", 1)[-1]) if url else "*", {})]
    if service == "events":
        if operation == "PutEvents":
            return [("events:PutEvents", _bus(entry.get("EventBusName") or "default"),
                     {"events:source": [str(entry.get("Source", ""))],
                      "events:detail-type": [str(entry.get("DetailType", ""))]})
                    for entry in body.get("Entries", [])]
        return [(f"events:{operation}", "*", {})]
    if service == "secretsmanager":
        secret = body.get("SecretId", "*")
        return [(f"secretsmanager:{operation}",
                 secret if secret.startswith("arn:") or secret == "*" else _arn("secretsmanager", f"secret:{secret}"),
                 {})]
    return [(f"{service}:{operation}", "*", {})]


def _bus(name: str) -> str:
    return name if name.startswith("arn:") else _arn("events", f"event-bus/{name}")


# ---- The report ----

@dataclass
class Usage:
    """Per function: what it was granted, used and denied during a run."""
    granted: dict[str, Role] = field(default_factory=dict)
    used: dict[str, Counter] = field(default_factory=dict)
    denied: dict[str, Counter] = field(default_factory=dict)

    def add(self, described: dict[str, Any]) -> None:
        for kind in ("used", "denied"):
            for function, counts in described[kind].items():
                getattr(self, kind).setdefault(function, Counter()).update(counts)

    def report(self) -> str:
        lines = ["IAM: each function's calls against its role (devstack enforces the template's policies)"]
        for function, role in sorted(self.granted.items()):
            used = self.used.get(function, Counter())
            lines.append(f"  {function}")
            calls = [(*call.split(" ", 1), n) for call, n in used.items()]
            for statement in role.statements:
                for action in statement.actions:
                    for resource in statement.resources:
                        if statement.effect == "Deny":
                            lines.append(f"    Deny {action} on {_short(resource)}")
                            continue
                        hits = sum(n for a, r, n in calls
                                   if _glob(action, a, case=False) and _glob(resource, r, case=True))
                        mark = f"used {hits}x" if hits else "NEVER USED"
                        when = "".join(f" if {key} {operator} {'|'.join(values)}"
                                       for operator, keys in statement.conditions.items()
                                       for key, values in keys.items())
                        lines.append(f"    Allow {action} on {_short(resource)}{when}: {mark}")
            for call, n in sorted(self.denied.get(function, Counter()).items()):
                action, resource = call.split(" ", 1)
                lines.append(f"    DENIED {action} on {_short(resource)}: {n}x")
        return "\n".join(lines)


def _short(arn: str) -> str:
    return arn.replace("arn:aws:", "").replace(f":{REGION}:{ACCOUNT}:", ":")
