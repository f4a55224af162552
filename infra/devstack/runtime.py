"""Lambda for local use: each function's real binary runs as child processes that poll a Lambda
Runtime API served here, with the environment, timeout and memory size the template gives it."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import httpd
from .template import ACCOUNT, REGION

API = "/2018-06-01/runtime"


class InvocationError(Exception):
    """The function reported an error, crashed, or ran past its timeout."""

    def __init__(self, kind: str, message: str, payload: Any = None):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.payload = payload


@dataclass
class _Invocation:
    request_id: str
    payload: bytes
    deadline: float
    result: Future


class Function:
    """One function: its Runtime API endpoint and its running instances."""

    def __init__(self, name: str, binary: Path, environment: dict[str, str], timeout: int,
                 memory: int, log_dir: Path, instances: int = 1):
        self.name = name
        self.binary = binary
        self.environment = environment
        self.timeout = timeout
        self.memory = memory
        self.instances = instances
        self.log_path = log_dir / f"{name}.log"
        self.pending: queue.Queue[_Invocation] = queue.Queue()
        self.in_flight: dict[str, _Invocation] = {}
        self.lock = threading.Lock()
        self.processes: list[subprocess.Popen] = []
        self.running = False
        self.longest_invocation = 0.0
        # Bumped by every stop: a poll from an instance of an older generation gets no work.
        self.generation = 0
        self.server = httpd.serve(self._handler(), "127.0.0.1", 0)
        threading.Thread(target=self._watch_deadlines, daemon=True).start()

    @property
    def runtime_api(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.name}"

    def start(self) -> None:
        if not self.binary.exists():
            raise FileNotFoundError(f"{self.name}: {self.binary} is missing; run `cargo build` first")
        with self.lock:
            self.running = True
            log = open(self.log_path, "ab")
            env = {
                **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TZ")},
                **self.environment,
                "AWS_LAMBDA_FUNCTION_NAME": self.name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
                "AWS_LAMBDA_RUNTIME_API": self.runtime_api,
                "_HANDLER": "bootstrap",
            }
            while len(self.processes) < self.instances:
                stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
                self.processes.append(subprocess.Popen(
                    [str(self.binary)], env={**env, "AWS_LAMBDA_LOG_STREAM_NAME": stream},
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))

    def peak_memory_mb(self) -> float:
        """The largest peak resident set (VmHWM) among the running instances, in MiB."""
        peak = 0
        for process in self.processes:
            try:
                with open(f"/proc/{process.pid}/status") as status:
                    for line in status:
                        if line.startswith("VmHWM:"):
                            peak = max(peak, int(line.split()[1]))
            except OSError:
                continue
        return peak / 1024

    def stop(self) -> None:
        """Stops the instances. Invocations already queued wait until the function starts."""
        with self.lock:
            self.running = False
            self.generation += 1
            processes, self.processes = self.processes, []
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
        # An instance stopped mid-invocation never answers: that invocation fails, as on Lambda.
        with self.lock:
            stranded, self.in_flight = list(self.in_flight.values()), {}
        for invocation in stranded:
            invocation.result.set_exception(InvocationError("Runtime.Exited", "instance stopped"))
        # Invocations not yet taken are refused, as a function throttled to zero refuses them.
        while True:
            try:
                waiting = self.pending.get_nowait()
            except queue.Empty:
                break
            waiting.result.set_exception(InvocationError("TooManyRequestsException", "function is stopped"))

    def crash(self) -> None:
        """Kills one instance without a word, as a crash or a timeout ends a Lambda sandbox;
        the watcher replaces it."""
        with self.lock:
            victims = [p for p in self.processes if p.poll() is None][:1]
        for process in victims:
            process.kill()
            process.wait()

    def invoke_async(self, payload: Any) -> Future:
        invocation = _Invocation(str(uuid.uuid4()), json.dumps(payload).encode(), 0.0, Future())
        self.pending.put(invocation)
        return invocation.result

    def invoke(self, payload: Any, wait: float | None = None) -> Any:
        return self.invoke_async(payload).result(timeout=wait)

    def _watch_deadlines(self) -> None:
        while True:
            time.sleep(0.2)
            now = time.time()
            with self.lock:
                late = [i for i in self.in_flight.values() if i.deadline and i.deadline < now]
            if late:
                # Lambda ends the sandbox of a timed-out invocation; so does devstack.
                self.stop()
                for invocation in late:
                    if not invocation.result.done():
                        invocation.result.set_exception(InvocationError(
                            "Sandbox.Timedout", f"timed out after {self.timeout} seconds"))
                self.start()
            with self.lock:
                crashed = [p for p in self.processes if p.poll() is not None]
            if crashed and self.running:
                with self.lock:
                    self.processes = [p for p in self.processes if p.poll() is None]
                    stranded = [i for i in self.in_flight.values()]
                    self.in_flight = {}
                for invocation in stranded:
                    if not invocation.result.done():
                        invocation.result.set_exception(InvocationError(
                            "Runtime.ExitError", "the function's process exited"))
                time.sleep(0.5)
                self.start()

    def _handler(self):
        function = self

        class Handler(httpd.Handler):
            def do_GET(self) -> None:
                if self.path != f"{API}/invocation/next":
                    return self.answer(404)
                generation = function.generation
                invocation = None
                while invocation is None:
                    if function.generation != generation:
                        return self.answer(410)
                    try:
                        invocation = function.pending.get(timeout=0.2)
                    except queue.Empty:
                        continue
                    if function.generation != generation:
                        function.pending.put(invocation)
                        return self.answer(410)
                invocation.deadline = time.time() + function.timeout
                with function.lock:
                    function.in_flight[invocation.request_id] = invocation
                self.answer(200, invocation.payload, {
                    "Content-Type": "application/json",
                    "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(int(invocation.deadline * 1000)),
                    "Lambda-Runtime-Invoked-Function-Arn": function.arn,
                    "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}",
                })

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path.removeprefix(API).strip("/").split("/")
                if parts == ["init", "error"]:
                    self.answer(202)
                    return
                if len(parts) != 3 or parts[0] != "invocation":
                    return self.answer(404)
                with function.lock:
                    invocation = function.in_flight.pop(parts[1], None)
                self.answer(202)
                if invocation is None or invocation.result.done():
                    return
                took = time.time() - (invocation.deadline - function.timeout)
                function.longest_invocation = max(function.longest_invocation, took)
                if parts[2] == "response":
                    invocation.result.set_result(json.loads(body) if body else None)
                else:
                    error = json.loads(body) if body else {}
                    invocation.result.set_exception(InvocationError(
                        error.get("errorType", "Unhandled"), error.get("errorMessage", ""), error))

        return Handler
