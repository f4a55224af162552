"""Lambda for local use: each function's real binary runs as child processes that poll a Lambda
Runtime API served here, with the environment, timeout and memory size the template gives it."""

from __future__ import annotations

import json
import os
import queue
import select
import socket
import subprocess
import threading
import time
import uuid
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import httpd
from .template import ACCOUNT, REGION

API = "/2018-06-01/runtime"
# Lambda's synchronous payload limits: 6 MB each way; the Runtime API refuses a larger response
# with 413, and the invocation fails with Function.ResponseSizeTooLarge (docs/conformance.md).
MAX_REQUEST_BYTES = 6 * 1024 * 1024
MAX_RESPONSE_BYTES = 6_291_556


class InvocationError(Exception):
    """The function reported an error, crashed, or ran past its timeout."""

    def __init__(self, kind: str, message: str, payload: Any = None):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.payload = payload


class LastMinute:
    """How many times something happened in the last 60 s, as Lambda's per-minute metrics
    (Invocations, Errors, Throttles) count it; for the console."""

    WINDOW = 60.0

    def __init__(self) -> None:
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def add(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._lock:
            self._times.append(now)
            self._forget(now)

    def count(self, now: float | None = None) -> int:
        with self._lock:
            self._forget(time.time() if now is None else now)
            return len(self._times)

    def _forget(self, now: float) -> None:
        while self._times and self._times[0] < now - self.WINDOW:
            self._times.popleft()


@dataclass
class _Invocation:
    request_id: str
    payload: bytes
    deadline: float
    result: Future
    slot: int = -1  # the instance that took it
    admitted: bool = False  # counted against the reserved concurrency until answered


@dataclass
class _Slot:
    """One instance of a function, with a Runtime API endpoint of its own, so that devstack knows
    which instance took which event: a crash or a timeout ends that instance alone, as it ends
    one Lambda sandbox and not its neighbours."""

    index: int
    server: Any = None
    process: subprocess.Popen | None = None
    # Bumped whenever the instance ends: a poll from an ended instance gets no work.
    generation: int = 0


class Function:
    """One function: its instances and their Runtime API endpoints."""

    def __init__(self, name: str, binary: Path, environment: dict[str, str], timeout: int,
                 memory: int, log_dir: Path, instances: int = 1, reserved: int | None = None):
        self.name = name
        # Reserved concurrency: invocations beyond it at once are throttled, not queued.
        self.reserved = reserved
        instances = instances if reserved is None else max(1, min(instances, reserved))
        self.binary = binary
        self.environment = environment
        self.timeout = timeout
        self.memory = memory
        self.instances = instances
        self.log_path = log_dir / f"{name}.log"
        self.pending: queue.Queue[_Invocation] = queue.Queue()
        self.in_flight: dict[str, _Invocation] = {}
        self.admitted = 0  # invocations taken and not yet answered
        self.lock = threading.Lock()
        self.running = False
        self.longest_invocation = 0.0
        # What Lambda bills: invocations, and their time from the event handed out to the answer.
        self.invocations = 0
        self.busy_seconds = 0.0
        # Lambda's metrics over the last minute: every invocation answered or failed (a crash and
        # a timeout count as errors, as Lambda counts them), and the ones refused (throttles).
        self.last_minute = {"invocations": LastMinute(), "errors": LastMinute(), "throttles": LastMinute()}
        self.slots = [_Slot(i) for i in range(instances)]
        for slot in self.slots:
            slot.server = httpd.serve(self._handler(slot), "127.0.0.1", 0)
        threading.Thread(target=self._watch, daemon=True).start()

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.name}"

    def start(self) -> None:
        if not self.binary.exists():
            raise FileNotFoundError(f"{self.name}: {self.binary} is missing; run `make build` first")
        with self.lock:
            self.running = True
            for slot in self.slots:
                if slot.process is None:
                    self._spawn(slot)

    def _spawn(self, slot: _Slot) -> None:
        environment = {
            **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TZ", "RUST_LOG")},
            **self.environment,
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}",
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{slot.server.server_address[1]}",
            "_HANDLER": "bootstrap",
        }
        with open(self.log_path, "ab") as log:
            slot.process = subprocess.Popen([str(self.binary)], env=environment, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def peak_memory_mb(self) -> float:
        """The largest peak resident set (VmHWM) among the running instances, in MiB."""
        peak = 0
        for slot in self.slots:
            if slot.process is None:  # not started, or stopped
                continue
            try:
                with open(f"/proc/{slot.process.pid}/status") as status:
                    for line in status:
                        if line.startswith("VmHWM:"):
                            peak = max(peak, int(line.split()[1]))
            except (OSError, AttributeError):
                continue
        return peak / 1024

    def stats(self) -> dict[str, Any]:
        with self.lock:
            invocations, busy = self.invocations, self.busy_seconds
        return {"invocations": invocations, "busySeconds": busy, "memoryMB": self.memory,
                "peakMiB": self.peak_memory_mb()}

    def stop(self) -> None:
        """Stops the instances. Invocations already queued are refused, as a function
        throttled to zero refuses them; one in flight fails, as its sandbox ends."""
        with self.lock:
            self.running = False
        for slot in self.slots:
            self._end(slot, "Runtime.Exited", "instance stopped", graceful=True)
        while True:
            try:
                waiting = self.pending.get_nowait()
            except queue.Empty:
                break
            self._settle(waiting, error=InvocationError("TooManyRequestsException", "function is stopped"))

    def _end(self, slot: _Slot, kind: str, message: str, graceful: bool = False) -> None:
        """Ends one instance: its invocation in flight fails with `kind`; a running function
        gets a new instance in its place."""
        with self.lock:
            slot.generation += 1
            process, slot.process = slot.process, None
            stranded = [i for i in self.in_flight.values() if i.slot == slot.index]
            for invocation in stranded:
                del self.in_flight[invocation.request_id]
        if process is not None and process.poll() is None:
            if graceful:
                process.terminate()
            else:
                process.kill()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for invocation in stranded:
            self._settle(invocation, error=InvocationError(kind, message))
        with self.lock:
            if self.running and slot.process is None:
                self._spawn(slot)

    def invoke_and_crash(self, payload: Any, wait: float) -> None:
        """Lets an instance handle the event, then kills it before its answer counts, as a
        crash or a timeout ends a Lambda sandbox."""
        invocation = self._submit(payload)
        try:
            invocation.result.result(timeout=wait)
            # Answered, but the answer dies with the instance: Lambda counts an error.
            self.last_minute["errors"].add()
        except InvocationError:
            pass  # counted when it was settled
        if invocation.slot >= 0:
            self._end(self.slots[invocation.slot], "Runtime.ExitError", "crashed")

    def _submit(self, payload: Any) -> _Invocation:
        invocation = _Invocation(str(uuid.uuid4()), json.dumps(payload).encode(), 0.0, Future())
        if len(invocation.payload) > MAX_REQUEST_BYTES:
            invocation.result.set_exception(InvocationError(
                "RequestEntityTooLargeException",
                f"{len(invocation.payload)} byte payload is too large for the RequestResponse "
                f"invocation type ({MAX_REQUEST_BYTES} byte maximum)"))
            return invocation
        with self.lock:
            # Lambda refuses a synchronous invocation past the function's reserved concurrency
            # at once (429 TooManyRequestsException, Reason
            # ReservedFunctionConcurrentInvocationLimitExceeded); below it, it scales, which
            # here is a wait for a free instance.
            if self.reserved is not None and self.admitted >= self.reserved:
                self.last_minute["throttles"].add()
                invocation.result.set_exception(InvocationError(
                    "TooManyRequestsException", "Rate Exceeded. "
                    "(Reason: ReservedFunctionConcurrentInvocationLimitExceeded)"))
                return invocation
            # Counted from admission to its answer, whichever instance has it meanwhile.
            self.admitted += 1
            invocation.admitted = True
            self.pending.put(invocation)
        return invocation

    def _settle(self, invocation: _Invocation, value: Any = None,
                error: InvocationError | None = None) -> None:
        """Answers the invocation, and first frees its share of the reserved concurrency, so
        that a caller woken by the answer can invoke again at once."""
        with self.lock:
            if invocation.admitted:
                invocation.admitted = False
                self.admitted -= 1
        if invocation.result.done():
            return
        if error is not None and error.kind == "TooManyRequestsException":
            self.last_minute["throttles"].add()
        else:
            self.last_minute["invocations"].add()
            if error is not None:
                self.last_minute["errors"].add()
        if error is not None:
            invocation.result.set_exception(error)
        else:
            invocation.result.set_result(value)

    def invoke_async(self, payload: Any) -> Future:
        return self._submit(payload).result

    def invoke(self, payload: Any, wait: float | None = None) -> Any:
        return self.invoke_async(payload).result(timeout=wait)

    def _watch(self) -> None:
        """Ends an instance whose invocation ran past the timeout, as Lambda ends its sandbox,
        and replaces an instance whose process exited."""
        while True:
            time.sleep(0.5)
            now = time.time()
            with self.lock:
                late = {i.slot for i in self.in_flight.values() if i.deadline and i.deadline < now}
                exited = [s for s in self.slots if s.process is not None and s.process.poll() is not None]
            for index in late:
                self._end(self.slots[index], "Sandbox.Timedout", f"timed out after {self.timeout} seconds")
            for slot in exited:
                if slot.index not in late:
                    self._end(slot, "Runtime.ExitError", "the function's process exited")

    def _handler(self, slot: _Slot):
        function = self

        class Handler(httpd.Handler):
            def do_GET(self) -> None:
                if self.path != f"{API}/invocation/next":
                    return self.answer(404)
                generation = slot.generation
                invocation = None
                while invocation is None:
                    if slot.generation != generation:
                        return self.answer(410)
                    if self._peer_gone():
                        return  # the instance died while it waited: it takes nothing
                    try:
                        invocation = function.pending.get(timeout=1)
                    except queue.Empty:
                        continue
                    if slot.generation != generation:
                        function.pending.put(invocation)
                        return self.answer(410)
                invocation.deadline = time.time() + function.timeout
                invocation.slot = slot.index
                with function.lock:
                    function.in_flight[invocation.request_id] = invocation
                try:
                    self.answer(200, invocation.payload, {
                        "Content-Type": "application/json",
                        "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                        "Lambda-Runtime-Deadline-Ms": str(int(invocation.deadline * 1000)),
                        "Lambda-Runtime-Invoked-Function-Arn": function.arn,
                        "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}",
                    })
                except OSError:
                    # The instance died as it was handed the event: another one takes it.
                    with function.lock:
                        function.in_flight.pop(invocation.request_id, None)
                    invocation.deadline, invocation.slot = 0.0, -1
                    function.pending.put(invocation)

            def _peer_gone(self) -> bool:
                readable, _, _ = select.select([self.connection], [], [], 0)
                try:
                    return bool(readable) and not self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    return True

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path.removeprefix(API).strip("/").split("/")
                if parts == ["init", "error"]:
                    self.answer(202)
                    return
                if len(parts) != 3 or parts[0] != "invocation":
                    return self.answer(404)
                too_large = parts[2] == "response" and len(body) > MAX_RESPONSE_BYTES
                with function.lock:
                    invocation = function.in_flight.pop(parts[1], None)
                if too_large:
                    self.answer_json(413, {"errorMessage": f"Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
                                           "errorType": "RequestEntityTooLarge"})
                else:
                    self.answer(202)
                if invocation is None or invocation.result.done():
                    return
                took = time.time() - (invocation.deadline - function.timeout)
                with function.lock:
                    function.longest_invocation = max(function.longest_invocation, took)
                    function.invocations += 1
                    function.busy_seconds += took
                if too_large:
                    function._settle(invocation, error=InvocationError(
                        "Function.ResponseSizeTooLarge",
                        f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."))
                elif parts[2] == "response":
                    function._settle(invocation, json.loads(body) if body else None)
                else:
                    error = json.loads(body) if body else {}
                    function._settle(invocation, error=InvocationError(
                        error.get("errorType", "Unhandled"), error.get("errorMessage", ""), error))

        return Handler
