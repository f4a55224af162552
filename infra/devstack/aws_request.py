"""What the emulators' middlewares (IAM, the meter) read from an AWS call: the JSON protocol's
target (`X-Amz-Target`), the signer's access key, and the body, read once and put back for the
next reader."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

# The X-Amz-Target prefixes of the JSON protocols the stack's functions use, with each one's
# service prefix in IAM actions and ARNs.
SERVICES = {"DynamoDB_20120810": "dynamodb", "DynamoDBStreams_20120810": "dynamodb",
            "AWSEvents": "events", "AmazonSQS": "sqs", "secretsmanager": "secretsmanager"}

_BODY = "devstack.json_body"


@dataclass(frozen=True)
class Target:
    prefix: str
    operation: str

    @property
    def service(self) -> str:
        return SERVICES[self.prefix]

    def __str__(self) -> str:
        return f"{self.prefix}.{self.operation}"


def target_of(environ: dict[str, Any]) -> Target | None:
    """The call's target, when it is one of `SERVICES`' JSON protocols."""
    prefix, _, operation = environ.get("HTTP_X_AMZ_TARGET", "").partition(".")
    return Target(prefix, operation) if prefix in SERVICES else None


def access_key(environ: dict[str, Any]) -> str:
    """The access key that signed the call (SigV4's `Credential=KEY/...`), or "" if unsigned."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    start = authorization.find("Credential=")
    return authorization[start + len("Credential="):].split("/", 1)[0] if start >= 0 else ""


def json_body(environ: dict[str, Any]) -> dict[str, Any]:
    """The request's JSON object ({} when it is none); the stream is put back for the app."""
    if _BODY not in environ:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        environ[_BODY] = body if isinstance(body, dict) else {}
    return environ[_BODY]


def replace_body(environ: dict[str, Any], body: dict[str, Any]) -> None:
    """Sends `body` on instead of what came (IAM's `PutEvents` without its refused entries)."""
    raw = json.dumps(body).encode()
    environ["wsgi.input"] = io.BytesIO(raw)
    environ["CONTENT_LENGTH"] = str(len(raw))
    environ[_BODY] = body
