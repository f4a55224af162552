"""IAM at the emulator's door: every AWS call a function signs is checked against its role
(`iam.ENFORCER`) before it reaches a fault or the data, and refused as the service itself
refuses it; `PutEvents` is decided per entry. Serves `IAM_PATH` (roles in, usage out) for
devstack."""

from __future__ import annotations

import json
import sys
from typing import Any

from . import aws_request
from .iam import ENFORCER, IAM_PATH, Call, Role, calls_of


def _denied_answer(service: str, role: Role, action: str, resource: str):
    message = (f"User: {role.arn} is not authorized to perform: {action} on resource: {resource} "
               f"because no identity-based policy allows the {action} action")
    if service == "sqs":
        error_type, status = "com.amazonaws.sqs#AccessDenied", "403 Forbidden"
    else:
        error_type, status = "AccessDeniedException", "400 Bad Request"
    body = json.dumps({"__type": error_type, "message": message, "Message": message}).encode()
    version = "1.1" if service in ("events", "secretsmanager") else "1.0"
    headers = [("Content-Type", f"application/x-amz-json-{version}"), ("Content-Length", str(len(body))),
               ("x-amzn-query-error", f"{error_type.rsplit('#', 1)[-1]};Sender")]
    return status, headers, body


def middleware(app):
    """Checks every call a function signs against its role; serves `IAM_PATH` (roles in, usage
    out) for devstack."""

    def enforce(environ, start_response):
        if environ.get("PATH_INFO", "").startswith(IAM_PATH):
            return _control(environ, start_response)
        target = aws_request.target_of(environ)
        access_key = aws_request.access_key(environ)
        role = ENFORCER.roles.get(access_key)
        if target is None or role is None:
            return app(environ, start_response)
        service, operation = target.service, target.operation
        body = aws_request.json_body(environ)
        calls = calls_of(service, operation, body, ENFORCER.partition_keys)
        if service == "events" and operation == "PutEvents" and calls:
            return _put_events(app, environ, start_response, role, body, calls)
        refused = ENFORCER.decide(access_key, calls)
        if refused is None:
            return app(environ, start_response)
        role, action, resource = refused
        print(json.dumps({"accessDenied": {"function": role.function, "action": action,
                                           "resource": resource}}), file=sys.stderr, flush=True)
        status, headers, answer = _denied_answer(service, role, action, resource)
        start_response(status, headers)
        return [answer]

    return enforce


def _put_events(app, environ, start_response, role: Role, body: dict[str, Any], calls: list[Call]):
    """A `PutEvents` whose every entry the role may not publish at all (no statement allows the
    action on the bus) is refused whole with `AccessDeniedException`; otherwise each entry its
    conditions refuse fails alone, and the others are put (docs: PutEventsResultEntry)."""
    if not any(any(s.matches(a, r) and s.effect == "Allow" for s in role.statements) for a, r, _ in calls):
        action, resource, _ = calls[0]
        ENFORCER.decide(aws_request.access_key(environ), calls[:1])  # counted as denied
        status, headers, answer = _denied_answer("events", role, action, resource)
        start_response(status, headers)
        return [answer]
    codes = ENFORCER.decide_entries(role, calls)
    if not any(codes):
        return app(environ, start_response)
    for code, (action, resource, context) in zip(codes, calls):
        if code:
            print(json.dumps({"accessDenied": {"function": role.function, "action": action,
                                               "resource": resource, "code": code, **context}}),
                  file=sys.stderr, flush=True)
    entries = body["Entries"]
    allowed = [entry for entry, code in zip(entries, codes) if code is None]
    put: list[dict[str, Any]] = []
    if allowed:
        aws_request.replace_body(environ, {**body, "Entries": allowed})
        answered: dict[str, Any] = {}

        def capture(status, headers, exc_info=None):
            answered["status"], answered["headers"] = status, headers
            return lambda _: None

        raw = b"".join(app(environ, capture))
        if not answered["status"].startswith("200"):
            start_response(answered["status"], answered["headers"])
            return [raw]
        put = json.loads(raw)["Entries"]
    results = iter(put)
    merged = [next(results) if code is None else
              {"ErrorCode": code, "ErrorMessage": DENIED_ENTRY_MESSAGES[code]} for code in codes]
    answer = json.dumps({"FailedEntryCount": sum(1 for e in merged if "ErrorCode" in e),
                         "Entries": merged}).encode()
    start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1"),
                              ("Content-Length", str(len(answer)))])
    return [answer]


# The codes' descriptions in PutEventsResultEntry (the service's own message text is not documented).
DENIED_ENTRY_MESSAGES = {
    "NotAuthorizedForSourceException":
        "You do not have permissions to publish events with this source onto this event bus.",
    "NotAuthorizedForDetailTypeException":
        "You do not have permissions to publish events with this detail type onto this event bus.",
}


def _control(environ, start_response):
    if environ["REQUEST_METHOD"] == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        ENFORCER.configure(json.loads(environ["wsgi.input"].read(length) or b"{}"))
    body = json.dumps(ENFORCER.describe()).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
