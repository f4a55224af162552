"""The main emulator process passes DynamoDB calls on to the DynamoDB process, and only those."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from werkzeug.test import Client

from infra.devstack import moto_server


@pytest.fixture
def recorder():
    """A stand-in for the DynamoDB process: it records each request and answers with its own."""
    seen = []
    drop = threading.Event()  # set: close each connection after answering, without notice

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
            answer = json.dumps({"TableNames": ["seen-by-dynamodb"]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("x-amz-crc32", "12345")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
            self.close_connection = drop.is_set()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], seen, drop
    server.shutdown()


def call(client: Client, target: str, body: dict, service: str = "dynamodb"):
    return client.post("/?x=1", data=json.dumps(body), headers={
        "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.0",
        "Authorization": f"AWS4-HMAC-SHA256 Credential=local-fn/20261127/us-east-1/{service}/aws4_request"})


@pytest.mark.parametrize("target", ["DynamoDB_20120810.ListTables", "DynamoDBStreams_20120810.ListStreams"])
def test_dynamodb_calls_are_passed_on_as_they_came(recorder, target):
    port, seen, _ = recorder
    client = Client(moto_server.application(forward_dynamodb=port))
    answer = call(client, target, {"Limit": 5})
    assert answer.status_code == 200
    assert json.loads(answer.data) == {"TableNames": ["seen-by-dynamodb"]}
    assert answer.headers["x-amz-crc32"] == "12345"
    [request] = seen
    assert request["path"] == "/?x=1"
    assert json.loads(request["body"]) == {"Limit": 5}
    assert request["headers"]["X-Amz-Target"] == target
    assert request["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=local-fn/")


def test_other_services_stay_in_the_main_process(recorder):
    port, seen, _ = recorder
    client = Client(moto_server.application(forward_dynamodb=port))
    answer = call(client, "AmazonSQS.ListQueues", {}, service="sqs")
    assert answer.status_code == 200, answer.data
    assert seen == []


def test_a_closed_connection_is_opened_again(recorder):
    """The DynamoDB process may drop a kept-alive connection; the next call still goes through."""
    port, seen, drop = recorder
    drop.set()
    client = Client(moto_server.application(forward_dynamodb=port))
    for _ in range(3):
        assert call(client, "DynamoDB_20120810.ListTables", {}).status_code == 200
    assert len(seen) == 3
