"""Reads template.yaml: CloudFormation's short tags, parameters, and the intrinsic functions the
template uses, resolved to the local stack's names. Anything devstack cannot honour is an error
that names the construct, never a silent skip."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REGION = "us-east-1"
ACCOUNT = "123456789012"


class TemplateError(Exception):
    """The template uses something devstack does not emulate."""


class _Loader(yaml.SafeLoader):
    pass


def _tag(name: str):
    def construct(loader: yaml.Loader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "Fn::GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    return construct


for _short in ("Base64", "Cidr", "And", "Equals", "If", "Not", "Or", "FindInMap", "GetAtt",
               "GetAZs", "ImportValue", "Join", "Select", "Split", "Sub"):
    _Loader.add_constructor(f"!{_short}", _tag(f"Fn::{_short}"))
_Loader.add_constructor("!Ref", _tag("Ref"))
_Loader.add_constructor("!Condition", _tag("Condition"))


def load(path: Path) -> dict[str, Any]:
    with open(path) as f:
        return yaml.load(f, Loader=_Loader)  # noqa: S506 - the SafeLoader subclass above


@dataclass
class Resource:
    logical_id: str
    type: str
    properties: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)


class Template:
    """The template with Globals merged into each function and parameters taking defaults."""

    def __init__(self, path: Path, parameters: dict[str, str] | None = None):
        self.path = path
        doc = load(path)
        unknown = set(parameters or {}) - set(doc.get("Parameters", {}))
        if unknown:
            raise TemplateError(f"the template has no parameter {', '.join(sorted(unknown))}")
        self.parameters = {
            name: str((parameters or {}).get(name, spec.get("Default", "")))
            for name, spec in doc.get("Parameters", {}).items()
        }
        self.lists = {name for name, spec in doc.get("Parameters", {}).items()
                      if spec.get("Type") == "CommaDelimitedList"}
        self.conditions = doc.get("Conditions", {})
        self._check_parameters(doc.get("Parameters", {}))
        self._check_rules(doc.get("Rules", {}))
        globals_ = doc.get("Globals", {})
        self.resources: dict[str, Resource] = {}
        for logical_id, spec in doc.get("Resources", {}).items():
            if "Condition" in spec and not self.condition(spec["Condition"]):
                continue
            properties = dict(spec.get("Properties", {}))
            if spec["Type"] == "AWS::Serverless::Function":
                properties = _merge(globals_.get("Function", {}), properties)
            self.resources[logical_id] = Resource(
                logical_id, spec["Type"], properties, spec.get("Metadata", {}))
        self.physical: dict[str, str] = {}
        self.attributes: dict[tuple[str, str], str] = {}

    def _check_parameters(self, specs: dict[str, Any]) -> None:
        """What CloudFormation checks of each value before anything is created: AllowedValues,
        AllowedPattern (a whole-string match), a Number's MinValue and MaxValue (docs:
        parameters-section-structure)."""
        for name, spec in specs.items():
            value = self.parameters[name]
            if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
                raise TemplateError(f"parameter {name}: {value!r} is not one of "
                                    f"{', '.join(map(str, spec['AllowedValues']))}")
            if spec.get("Type") == "Number":
                try:
                    number = float(value)
                except ValueError:
                    raise TemplateError(f"parameter {name}: {value!r} is not a number") from None
                if number < float(spec.get("MinValue", number)) or number > float(spec.get("MaxValue", number)):
                    raise TemplateError(f"parameter {name}: {value} is outside "
                                        f"{spec.get('MinValue', '')}..{spec.get('MaxValue', '')}")
            if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
                raise TemplateError(f"parameter {name}: {value!r} does not match "
                                    f"{spec['AllowedPattern']} "
                                    f"({spec.get('ConstraintDescription', 'no description')})")

    def _check_rules(self, rules: dict[str, Any]) -> None:
        """The template's Rules, as CloudFormation applies them before creating a stack: each
        assertion holds whenever its rule's condition does (docs: rules-section-structure)."""
        for name, rule in rules.items():
            if not self.resolve(rule.get("RuleCondition", True), f"Rules.{name}"):
                continue
            for assertion in rule["Assertions"]:
                if not self.resolve(assertion["Assert"], f"Rules.{name}"):
                    raise TemplateError(f"rule {name}: "
                                        f"{assertion.get('AssertDescription', 'assertion failed')}")

    def of_type(self, *types: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type in types]

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.conditions[name], f"Conditions.{name}"))

    def resolve(self, value: Any, where: str) -> Any:
        """Evaluates intrinsic functions inside `value`; `where` names the place for errors."""
        if isinstance(value, list):
            return [self.resolve(v, where) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (name, arg), = value.items()
            if name == "Ref":
                return self._ref(arg, where)
            if name == "Fn::GetAtt":
                return self._get_att(arg[0], arg[1], where)
            if name == "Fn::Sub":
                return self._sub(arg, where)
            if name == "Fn::Join":
                return arg[0].join(str(self.resolve(v, where)) for v in self.resolve(arg[1], where))
            if name == "Fn::If":
                return self.resolve(arg[1] if self.condition(arg[0]) else arg[2], where)
            if name == "Fn::Equals":
                left, right = self.resolve(arg, where)
                return str(left) == str(right)
            if name == "Fn::Not":
                return not self.resolve(arg[0], where)
            if name == "Fn::And":
                return all(self.resolve(v, where) for v in arg)
            if name == "Fn::Or":
                return any(self.resolve(v, where) for v in arg)
            if name == "Fn::Split":
                return str(self.resolve(arg[1], where)).split(arg[0])
            if name == "Fn::Select":
                return self.resolve(arg[1], where)[int(arg[0])]
            if name.startswith("Fn::"):
                raise TemplateError(f"{where}: {name} is not supported by devstack")
        return {k: self.resolve(v, f"{where}.{k}") for k, v in value.items()}

    def _ref(self, name: str, where: str) -> str | list[str] | None:
        pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::StackName": "local",
                  "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
                  "AWS::NoValue": None}
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            value = self.parameters[name]
            return value.split(",") if name in self.lists else value
        if name in self.physical:
            return self.physical[name]
        raise TemplateError(f"{where}: Ref {name} names nothing devstack has created")

    def _get_att(self, logical_id: str, attribute: str, where: str) -> str:
        try:
            return self.attributes[(logical_id, attribute)]
        except KeyError:
            raise TemplateError(f"{where}: GetAtt {logical_id}.{attribute} is not available "
                                "locally") from None

    def _sub(self, arg: Any, where: str) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(variables[name], where))
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return self._get_att(logical_id, attribute, where)
            return str(self._ref(name, where))

        return re.sub(r"\$\{([^!}][^}]*)\}", replace, text)


def _merge(defaults: dict[str, Any], specific: dict[str, Any]) -> dict[str, Any]:
    """SAM's Globals rule: maps merge, everything else the resource's own value wins."""
    merged = dict(defaults)
    for key, value in specific.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
