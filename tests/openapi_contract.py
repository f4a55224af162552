"""Checks a live HTTP answer against docs/openapi.yaml: the status must be documented for the
operation, and the media type, body schema and documented headers must match."""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import referencing
import yaml
from openapi_spec_validator import validate as validate_spec

DOCUMENT = "urn:openapi"


class Contract:
    def __init__(self, path: Path):
        self.doc = yaml.safe_load(path.read_text())
        validate_spec(self.doc)
        resource = referencing.Resource.from_contents(
            self.doc, default_specification=referencing.jsonschema.DRAFT202012)
        self.registry = referencing.Registry().with_resource(DOCUMENT, resource)

    def _resolve(self, node: dict) -> dict:
        while isinstance(node, dict) and "$ref" in node:
            target = self.doc
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    def operation(self, method: str, path: str) -> dict | None:
        for template, item in self.doc["paths"].items():
            pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template))
            if re.fullmatch(pattern, path.split("?")[0]) and method.lower() in item:
                return item[method.lower()]
        return None

    def validate(self, schema: dict, value) -> None:
        validator = jsonschema.Draft202012Validator(
            {"$ref": f"{DOCUMENT}#{schema_pointer(self.doc, schema)}"} if "$ref" not in schema
            else {"$ref": DOCUMENT + schema["$ref"]},
            registry=self.registry, format_checker=jsonschema.FormatChecker())
        validator.validate(value)

    def check(self, method: str, path: str, response) -> None:
        operation = self.operation(method, path)
        # Routes the API does not document must still answer with a documented problem.
        responses = operation["responses"] if operation else {
            str(response.status_code): {"$ref": "#/components/responses/Problem"}}
        documented = responses.get(str(response.status_code))
        assert documented is not None, \
            f"{method} {path}: status {response.status_code} is not in the OpenAPI document"
        documented = self._resolve(documented)
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        content = documented.get("content", {})
        if not content:
            assert not response.content, f"{method} {path}: {response.status_code} documents no body"
        else:
            assert media_type in content, \
                f"{method} {path}: {media_type!r} is not documented for {response.status_code}"
            self.validate(content[media_type]["schema"], response.json())
        for name, header in documented.get("headers", {}).items():
            header = self._resolve(header)
            if name in response.headers:
                jsonschema.validate(response.headers[name], header["schema"])


def schema_pointer(doc: dict, schema: dict) -> str:
    """A JSON pointer to an inline schema inside the document (found by identity)."""
    def walk(node, pointer):
        if node is schema:
            return pointer
        children = node.items() if isinstance(node, dict) else \
            enumerate(node) if isinstance(node, list) else []
        for key, child in children:
            found = walk(child, f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}")
            if found is not None:
                return found
        return None

    found = walk(doc, "")
    assert found is not None, "schema is not part of the document"
    return found
