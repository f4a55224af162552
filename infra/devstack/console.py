"""The local stack's console: one page (`console/index.html`, plain HTML and JavaScript, no build
step, nothing from a CDN) served on the control port at `/console/`, and the JSON it reads there:

  GET  /console/state                      each function (running, invocations, errors and
                                           throttles in the last minute), each queue (depths, age
                                           of its oldest message, its dead-letter queue), and the
                                           last five minutes of the order metrics
  GET  /console/catalog                    the demo consumers and restaurants, and the API's URL
  POST /console/token                      {"consumerId": ...}: a token for a demo consumer
  GET  /console/dead-letters               `orderctl --json dlq list`
  POST /console/dead-letters/{queue}/redrive  `orderctl --json dlq redrive {queue}`

Stopping and starting functions and setting faults are the control port's own routes, which the
page calls as any tool does. The page places and follows orders through the API itself, with a
token, as a client does (the API must allow the console's origin: `make run` does). The charts'
figures are the functions' own metrics, read from their logs as CloudWatch Logs reads them: EMF
lines, and the invocation records whose counts the template's metric filters make metrics."""

from __future__ import annotations

import json
import math
import mimetypes
import re
import subprocess
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .moto_server import QUEUES_PATH

if TYPE_CHECKING:
    from .stack import Stack

PAGE_DIR = Path(__file__).resolve().parent / "console"
# uPlot, installed by npm at the version package-lock.json pins (`make run` installs it).
UPLOT_DIR = PAGE_DIR / "node_modules" / "uplot" / "dist"
FILES = {
    "": PAGE_DIR / "index.html",
    "console.js": PAGE_DIR / "console.js",
    "console.css": PAGE_DIR / "console.css",
    "uPlot.iife.min.js": UPLOT_DIR / "uPlot.iife.min.js",
    "uPlot.min.css": UPLOT_DIR / "uPlot.min.css",
}
ORDER_METRICS = {"OrdersAccepted": "accepted", "OrdersValidated": "validated",
                 "OrdersRejected": "rejected", "OrdersTimedOut": "timedOut"}
ORDERCTL_SECONDS = 60


class Refused(Exception):
    """A console request that cannot be answered: its HTTP status and why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class OrderMetrics:
    """The order metrics of the functions' logs (`shared::platform::metrics`) over the last
    `window` seconds, in buckets of `bucket` seconds: orders accepted and decided per second, and
    time to outcome (TimeToDecision) p50 and p99. Each log is read on from where the last read
    ended; a log seen for the first time is read from at most its last `first_read` bytes.

    An EMF line is bucketed by its `Timestamp`. An invocation record without one (its counts are
    plain fields, made metrics by metric filters) is bucketed by when it is read, as CloudWatch
    Logs stamps each event with the time Lambda captured the line: the console reads every second (`Console`). What a log
    held before its first read has no such time, so only its EMF lines count."""

    def __init__(self, logs: Iterable[Path], window: int = 300, bucket: int = 5,
                 first_read: int = 8 << 20):
        self.logs = list(logs)
        self.window, self.bucket, self.first_read = window, bucket, first_read
        self.offsets: dict[Path, int] = {}
        self.counts: defaultdict[int, defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.times: defaultdict[int, list[float]] = defaultdict(list)
        self.lock = threading.Lock()

    def _read(self, log: Path, read_at: float) -> None:
        try:
            size = log.stat().st_size
        except OSError:
            self.offsets.setdefault(log, 0)  # not written yet: all it will hold is new
            return
        offset = self.offsets.get(log)
        history = offset is None
        if offset is None or offset > size:  # new, or started again
            offset = max(0, size - self.first_read)
        try:
            with open(log, "rb") as f:
                f.seek(offset)
                chunk = f.read(size - offset)
        except OSError:  # removed since its size was read: its next read starts again
            return
        complete = chunk.rfind(b"\n") + 1  # a line still being written waits for the next read
        self.offsets[log] = offset + complete
        for line in chunk[:complete].splitlines():
            if b'"_aws"' in line or (not history and b'"InvocationMs"' in line):
                self._take(line, read_at, history)

    def _take(self, line: bytes, read_at: float, history: bool) -> None:
        """One line's metrics; from a log's history only what its EMF declares, which has a time
        (a record's plain counts there have none, and order-api's records are skipped)."""
        try:
            document = json.loads(line)
            if not isinstance(document, dict):
                return
            at = int(document["_aws"]["Timestamp"]) // 1000 if "_aws" in document else int(read_at)
            taken = declared(document) if history else document.keys()
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError):
            return
        bucket = at - at % self.bucket
        for metric, name in ORDER_METRICS.items():
            if metric in taken and _finite(document.get(metric)):
                self.counts[bucket][name] += document[metric]
        # EMF carries one value, or an array of them (one per order an invocation decided).
        times: Any = document.get("TimeToDecision") if "TimeToDecision" in taken else None
        for value in times if isinstance(times, list) else [times]:
            if _finite(value):
                self.times[bucket].append(float(value))

    def refresh(self, read_at: float | None = None) -> None:
        """Reads what the logs gained since the last read, as read at `read_at` (now)."""
        read_at = time.time() if read_at is None else read_at
        with self.lock:
            for log in self.logs:
                self._read(log, read_at)

    def series(self, now: float | None = None) -> dict[str, list[Any]]:
        """Oldest bucket first; rates per second (the last bucket's over the seconds it has had
        so far); percentiles in ms, null where nothing was decided."""
        now = int(time.time() if now is None else now)
        last = now - now % self.bucket
        buckets = list(range(last - self.window + self.bucket, last + 1, self.bucket))
        self.refresh(now)
        with self.lock:
            for old in [b for b in self.counts if b < buckets[0]]:
                del self.counts[old]
            for old in [b for b in self.times if b < buckets[0]]:
                del self.times[old]
            counts = {b: dict(self.counts.get(b, {})) for b in buckets}
            times = {b: sorted(self.times.get(b, [])) for b in buckets}
        decided = ("validated", "rejected", "timedOut")
        seconds = {b: min(self.bucket, now - b + 1) for b in buckets}
        return {
            "at": buckets,
            "acceptedPerSecond": [counts[b].get("accepted", 0) / seconds[b] for b in buckets],
            "decidedPerSecond": [sum(counts[b].get(n, 0) for n in decided) / seconds[b] for b in buckets],
            "timeToOutcomeP50": [percentile(times[b], 50) for b in buckets],
            "timeToOutcomeP99": [percentile(times[b], 99) for b in buckets],
        }


def declared(document: dict[str, Any]) -> set[str]:
    """The metrics an EMF document declares; none for a line without `_aws`."""
    return {m["Name"] for d in document.get("_aws", {}).get("CloudWatchMetrics", []) for m in d["Metrics"]}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def percentile(ordered: list[float], p: float) -> float | None:
    """The nearest-rank percentile of sorted values, None of none."""
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * p // 100))  # ceil
    return ordered[int(rank) - 1]


class Console:
    def __init__(self, stack: Stack, state_file: Path, audience: str, demo: dict[str, Any], api: str):
        self.stack = stack
        self.state_file = state_file
        self.audience = audience
        self.demo = demo
        self.api = api
        self.metrics = OrderMetrics(function.log_path for function in stack.functions.values())
        self.queues = self._queues()
        threading.Thread(target=self._keep_reading, name="console-metrics", daemon=True).start()

    def _keep_reading(self) -> None:
        """Reads the logs every second, so that a record without a time of its own is stamped
        within a second of being written."""
        while True:
            try:
                self.metrics.refresh()
            except Exception as e:  # a bad read must not stop the stamping of the next ones
                print(f"devstack console: reading the function logs failed: {e!r}", flush=True)
            time.sleep(1)

    def _queues(self) -> list[dict[str, Any]]:
        """The template's queues: logical id, name, and the dead-letter queue each redrives to;
        those that are some queue's dead-letter queue, or the relay's and the bus's failure
        queues (filled by their writers), are marked as dead-letter queues."""
        template = self.stack.template
        queues = []
        for resource in template.of_type("AWS::SQS::Queue"):
            target = resource.properties.get("RedrivePolicy", {}).get("deadLetterTargetArn", {})
            queues.append({"logicalId": resource.logical_id,
                           "name": template.attributes[(resource.logical_id, "QueueName")],
                           "deadLetterQueue": target.get("Fn::GetAtt", [None])[0]})
        targets = {q["deadLetterQueue"] for q in queues}
        failure_queues = {"OutboxRelayFailures", "EventDeliveryFailures"}
        for q in queues:
            q["isDeadLetterQueue"] = q["logicalId"] in targets | failure_queues
        return queues

    # -- the routes

    def file(self, name: str) -> tuple[bytes, str]:
        path = FILES.get(name)
        if path is None:
            raise Refused(404, f"no /console/{name}")
        try:
            body = path.read_bytes()
        except OSError:
            raise Refused(404, f"{path} is missing (`make run` installs the page's chart library)") from None
        return body, mimetypes.guess_type(path.name)[0] or "application/octet-stream"

    def state(self) -> dict[str, Any]:
        depths = self._depths()
        functions = [{"logicalId": logical_id, "name": f.name, "running": f.running,
                      **{kind: counter.count() for kind, counter in f.last_minute.items()}}
                     for logical_id, f in self.stack.functions.items()]
        queues = [{**q, **depths.get(q["name"], {})} for q in self.queues]
        return {"functions": functions, "queues": queues, "metrics": self.metrics.series()}

    def _depths(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.stack.endpoint}{QUEUES_PATH}", timeout=10) as answer:
            return json.loads(answer.read())

    def catalog(self) -> dict[str, Any]:
        return {"api": self.api,
                "consumers": [{"consumerId": cid, "name": c.get("name"), "status": c.get("status")}
                              for cid, c in self.demo.get("consumers", {}).items()],
                "restaurants": [{"restaurantId": rid, "name": r.get("name"),
                                 "menu": [{"menuItemId": i.get("menuItemId"), "name": i.get("name")}
                                          for i in r.get("menu", [])]}
                                for rid, r in self.demo.get("restaurants", {}).items()]}

    def token(self, body: bytes) -> dict[str, str]:
        """A token for one of the demo consumers only: the page is no way to act as anyone else."""
        try:
            consumer = json.loads(body or b"{}").get("consumerId")
        except (ValueError, AttributeError):
            raise Refused(400, 'the body is not {"consumerId": "..."}') from None
        if not isinstance(consumer, str) or consumer not in self.demo.get("consumers", {}):
            raise Refused(400, f"{consumer!r} is not one of the demo consumers")
        if self.stack.issuer is None:
            raise Refused(503, "this stack has no local issuer")
        return {"consumerId": consumer, "token": self.stack.issuer.token(consumer, self.audience)}

    def dead_letters(self) -> Any:
        return self._orderctl("dlq", "list")

    def redrive(self, queue: str) -> Any:
        if queue not in {q["logicalId"] for q in self.queues if q["isDeadLetterQueue"]}:
            raise Refused(404, f"{queue!r} is not a dead-letter queue of this stack")
        return self._orderctl("dlq", "redrive", queue)

    def _orderctl(self, *arguments: str) -> Any:
        """orderctl itself, so that the page lists and redrives exactly as an operator does."""
        binary = self.stack.bin_dir / "orderctl"
        if not binary.exists():
            raise Refused(503, f"{binary} is missing; run `make build` first")
        try:
            done = subprocess.run([str(binary), "--state", str(self.state_file), "--json", *arguments],
                                  capture_output=True, text=True, timeout=ORDERCTL_SECONDS, check=False)
        except subprocess.TimeoutExpired:
            raise Refused(504, f"orderctl took over {ORDERCTL_SECONDS} s") from None
        if done.returncode != 0:
            raise Refused(502, done.stderr.strip() or f"orderctl exited {done.returncode}")
        return json.loads(done.stdout)

    def route(self, method: str, path: str, body: bytes) -> tuple[int, bytes, str]:
        """Answers one request under /console: status, body and content type."""
        rest = path.removeprefix("/console").split("?", 1)[0].strip("/")
        try:
            if method == "GET" and rest in FILES:
                body, kind = self.file(rest)
                return 200, body, kind
            handlers = {("GET", "state"): self.state, ("GET", "catalog"): self.catalog,
                        ("GET", "dead-letters"): self.dead_letters}
            if (method, rest) in handlers:
                return _json(200, handlers[(method, rest)]())
            if (method, rest) == ("POST", "token"):
                return _json(200, self.token(body))
            redrive = re.fullmatch(r"dead-letters/([A-Za-z0-9]{1,64})/redrive", rest)
            if method == "POST" and redrive:
                return _json(200, self.redrive(redrive.group(1)))
            raise Refused(404, f"no {method} /console/{rest}")
        except Refused as e:
            return _json(e.status, {"message": str(e)})
        except Exception as e:  # noqa: BLE001 - the page is told, and the server goes on
            return _json(500, {"message": f"{type(e).__name__}: {e}"})


def _json(status: int, value: Any) -> tuple[int, bytes, str]:
    return status, json.dumps(value).encode(), "application/json"
