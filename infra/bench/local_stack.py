"""A devstack of its own for a benchmark, on the `bench` ports (`launcher.PORTS`)."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import boto3
import requests

from infra.devstack.identity import token_for
from infra.devstack.launcher import PORTS, ROOT, DidNotStart, launch

LOGS = ROOT / ".local" / "bench-logs"
API_PORT, MOTO_PORT = PORTS["bench"].api, PORTS["bench"].moto


def client(service: str, port: int = MOTO_PORT):
    return boto3.client(service, endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@contextmanager
def devstack(ports: str = "bench", logs: Path = LOGS, parameters: list[str] = (), faults: dict | None = None,
             speedups: bool = True, seeds: list[Path] = ()):
    """A benchmark's (or the soak's) stack: `launcher.launch`, exiting with its reason if it
    does not start."""
    try:
        with launch(ports, logs, parameters=parameters, faults=faults, speedups=speedups, seeds=seeds) as state:
            yield state
    except DidNotStart as e:
        sys.exit(str(e))


def consumer_session(state: dict) -> requests.Session:
    """An HTTP session that sends consumer-1's token (the demo orders' consumer)."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token_for(state, 'consumer-1')}"
    return session
