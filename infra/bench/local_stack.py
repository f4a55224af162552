"""Starts a devstack of its own for a benchmark, on ports apart from `make run` and the tests."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import boto3
import requests

from infra.devstack.identity import token_for

ROOT = Path(__file__).resolve().parents[2]
API_PORT, MOTO_PORT, CONTROL_PORT = 3200, 4700, 3299
LOGS = ROOT / ".local" / "bench-logs"


def client(service: str, port: int = MOTO_PORT):
    return boto3.client(service, endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@contextmanager
def devstack(ports: tuple[int, int, int] = (API_PORT, MOTO_PORT, CONTROL_PORT), logs: Path = LOGS,
             parameters: list[str] = (), faults: dict | None = None, speedups: bool = True,
             instances: int = 2, extra: list[str] = ()):
    """Yields the stack's state (endpoints, resource names, devstack's pid) and stops it
    afterwards."""
    api_port, moto_port, control_port = ports
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob("*.log"):
        old.unlink()
    state = Path(tempfile.mkdtemp()) / "state.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.devstack", "--moto-port", str(moto_port), "--log-dir", str(logs),
         *([] if speedups else ["--no-speedups"]), "--instances", str(instances),
         "--parameter-overrides", " ".join(parameters),
         "up", "--api-port", str(api_port), "--control-port", str(control_port), "--state", str(state),
         "--faults", json.dumps(faults or {}), "--demo-data", str(ROOT / "infra" / "demo-data.json"), *extra],
        cwd=ROOT, stdout=open(logs / "devstack.log", "w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while not state.exists():
            if process.poll() is not None or time.time() > deadline:
                sys.exit(f"devstack did not start; see {logs}/devstack.log")
            time.sleep(0.1)
        yield {**json.loads(state.read_text()), "pid": process.pid}
    finally:
        process.terminate()
        process.wait(timeout=20)


def consumer_session(state: dict) -> requests.Session:
    """An HTTP session that sends consumer-1's token (the demo orders' consumer)."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token_for(state, 'consumer-1')}"
    return session
