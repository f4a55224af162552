"""End-to-end fixtures: one devstack for the whole session, on ports of its own so that a stack
started by `make run` can keep running beside the tests."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
import requests

from infra.devstack.identity import token_for
from infra.devstack.launcher import PORTS, DidNotStart, launch
from openapi_contract import Contract

ROOT = Path(__file__).resolve().parent.parent


class LocalStack:
    """The running stack as a test sees it: the API, the emulator's clients, resource names."""

    def __init__(self, state: dict, contract: Contract):
        self.state = state
        self.api = state["api"]
        self.contract = contract
        self.http = requests.Session()
        # Requests are consumer-1's (the demo orders' consumer) unless a test sends other headers.
        self.http.headers["Authorization"] = self.bearer("consumer-1")

    def bearer(self, subject: str | None = None, operator: bool = False) -> str:
        """An Authorization header value for a token of the stack's issuer."""
        return f"Bearer {token_for(self.state, subject, operator)}"

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.state["endpoint"],
                            region_name=self.state["region"], aws_access_key_id="testing",
                            aws_secret_access_key="testing")

    def name(self, logical_id: str) -> str:
        return self.state["resources"][logical_id]

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        """Calls the API and checks the answer against docs/openapi.yaml."""
        response = self.http.request(method, self.api + path, timeout=35, **kwargs)
        self.contract.check(method, path, response)
        return response

    def scan(self, logical_id: str) -> list[dict]:
        pages = self.client("dynamodb").get_paginator("scan").paginate(
            TableName=self.name(logical_id), ConsistentRead=True)
        return [item for page in pages for item in page["Items"]]

    def faults(self, settings: dict | None = None) -> dict:
        """Sets faults (only the keys given) and answers every setting with its counts."""
        url = f"{self.state['control']}/faults"
        answer = requests.post(url, json=settings, timeout=10) if settings is not None \
            else requests.get(url, timeout=10)
        answer.raise_for_status()
        return answer.json()

    def function(self, name: str, action: str) -> None:
        requests.post(f"{self.state['control']}/functions/{name}/{action}", timeout=10) \
            .raise_for_status()


@contextmanager
def running_stack(ports: str, logs: str, parameters: str = "", template: Path = ROOT / "template.yaml"):
    """A devstack of `template` with the demo data on `launcher.PORTS[ports]`, stopped
    afterwards."""
    log_dir = ROOT / ".local" / logs
    try:
        with launch(ports, log_dir, template=template, parameters=parameters) as state:
            yield LocalStack(state, Contract(ROOT / "docs" / "openapi.yaml"))
    except DidNotStart as e:
        pytest.fail(f"{e}:\n{(log_dir / 'devstack.log').read_text()}")
    finally:
        REPORTS.append(log_dir / "iam-report.txt")


# Each stack's IAM report (granted against used permissions), shown at the end of the run.
REPORTS: list[Path] = []


def pytest_terminal_summary(terminalreporter):
    for report in REPORTS:
        if report.exists():
            terminalreporter.write_sep("-", f"{report.parent.name}: IAM")
            terminalreporter.write_line(report.read_text())


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    # As `make run` does: loopback callbacks allowed, so a test's receiver can take webhooks; the
    # API open to the console's origin (the control port), whose page calls it from a browser.
    control = f"http://127.0.0.1:{PORTS['tests'].control}"
    with running_stack("tests", "test-logs", "AllowLoopbackCallbacks=true "
                       f"CorsAllowedOrigins=http://localhost:5173,{control}") as running:
        yield running


@pytest.fixture
def receiver():
    """A webhook receiver on loopback (which the local stack allows): it records deliveries."""
    got: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/orders", got
    server.shutdown()
