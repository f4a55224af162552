"""The console's pieces that need no stack: the order metrics read from the functions' logs, the
control port's origin check. The page itself is tested in a browser (tests/test_console.py)."""

from __future__ import annotations

import json
from pathlib import Path

from .console import OrderMetrics, percentile
from .control import own_origin
from .runtime import LastMinute


def emf(at_ms: int, **metrics: float | list[float]) -> str:
    """An EMF line declaring every metric it carries."""
    declared = [{"Namespace": "OrderTaking", "Dimensions": [["Function"]],
                 "Metrics": [{"Name": name} for name in metrics]}]
    return json.dumps({"_aws": {"Timestamp": at_ms, "CloudWatchMetrics": declared}, **metrics})


def test_order_metrics_are_bucketed_per_five_seconds_as_rates_and_percentiles(tmp_path: Path):
    log = tmp_path / "order-replies.log"
    now = 1_000_000
    log.write_text("\n".join([
        emf(now * 1000 - 1000, OrdersAccepted=1),
        emf(now * 1000 - 1000, OrdersAccepted=1),
        emf(now * 1000 - 500, OrdersValidated=1, TimeToDecision=100),
        emf(now * 1000 - 400, OrdersRejected=1, TimeToDecision=300),
        emf(now * 1000 - 400_000, OrdersAccepted=1),  # older than the window
        '{"level":"INFO","message":"not a metric"}',
        "a line that is not JSON",
    ]) + "\n")
    metrics = OrderMetrics([log]).series(now)
    assert len(metrics["at"]) == 60 and metrics["at"][-1] == now - now % 5
    # now - 1 s is in the bucket before now's (now is a multiple of 5).
    assert metrics["acceptedPerSecond"][-2] == 2 / 5
    assert metrics["decidedPerSecond"][-2] == 2 / 5
    assert metrics["timeToOutcomeP50"][-2] == 100 and metrics["timeToOutcomeP99"][-2] == 300
    assert sum(metrics["acceptedPerSecond"]) == 2 / 5
    assert metrics["timeToOutcomeP50"][0] is None


def test_one_invocation_that_decided_several_orders_carries_a_time_for_each(tmp_path: Path):
    log = tmp_path / "order-replies.log"
    now = 1_500_000
    log.write_text(emf(now * 1000 - 1000, InvocationMs=4.5, OrdersValidated=2, OrdersRejected=1,
                       TimeToDecision=[100, 200, 300]) + "\n")
    metrics = OrderMetrics([log]).series(now)
    assert metrics["decidedPerSecond"][-2] == 3 / 5
    assert metrics["timeToOutcomeP50"][-2] == 200 and metrics["timeToOutcomeP99"][-2] == 300


def test_order_metrics_read_on_from_where_they_stopped_and_wait_for_a_whole_line(tmp_path: Path):
    log = tmp_path / "order-api.log"
    now = 2_000_000
    log.write_text(emf(now * 1000 - 1000, OrdersAccepted=1) + "\n")
    metrics = OrderMetrics([log, tmp_path / "not-yet-written.log"])
    assert sum(metrics.series(now)["acceptedPerSecond"]) == 1 / 5
    line = emf(now * 1000 - 1000, OrdersAccepted=1)
    with open(log, "a") as f:
        f.write(line[:20])  # half written
    assert sum(metrics.series(now)["acceptedPerSecond"]) == 1 / 5
    with open(log, "a") as f:
        f.write(line[20:] + "\n")
    assert sum(metrics.series(now)["acceptedPerSecond"]) == 2 / 5


def test_a_record_without_a_time_counts_when_read_and_none_from_before_the_first_read(tmp_path: Path):
    history, fresh = tmp_path / "order-api.log", tmp_path / "order-notifier.log"
    record = json.dumps({"Function": "OrderApiFunction", "InvocationMs": 9.5, "AwsRequests": 1,
                         "OrdersAccepted": 1.0})
    now = 5_000_000
    decided = json.loads(emf(now * 1000 - 1000, TimeToDecision=150))
    decided["OrdersValidated"] = 1.0  # a plain count beside the declared time, as order-replies writes
    # Written before the console read: a record's time is unknown, an EMF line's declared metrics
    # have theirs (and only those count, or history would show orders decided but none accepted).
    history.write_text(record + "\n" + json.dumps(decided) + "\n")
    metrics = OrderMetrics([history, fresh])
    before = metrics.series(now)
    assert sum(before["acceptedPerSecond"]) == 0 and sum(before["decidedPerSecond"]) == 0
    assert before["timeToOutcomeP50"][-2] == 150
    with open(history, "a") as f:
        f.write(record + "\n")
    fresh.write_text(record + "\n")  # a log that did not exist at the first read
    metrics.refresh(now - 3)  # read three seconds ago: in the bucket before the last
    series = metrics.series(now)
    assert series["acceptedPerSecond"][-2] == 2 / 5 and sum(series["acceptedPerSecond"]) == 2 / 5


def test_percentile_is_the_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([5.0], 99) == 5.0
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0 and percentile(values, 99) == 99.0


def test_the_control_port_takes_only_its_own_host_and_origin():
    assert own_origin({"Host": "127.0.0.1:3999"}, 3999)
    assert own_origin({"Host": "localhost:3999", "Origin": "http://localhost:3999"}, 3999)
    assert own_origin({"Host": "127.0.0.1:3999", "Origin": "http://127.0.0.1:3999"}, 3999)
    assert not own_origin({"Host": "127.0.0.1:3999", "Origin": "https://example.com"}, 3999)
    assert not own_origin({"Host": "127.0.0.1:3999", "Origin": "null"}, 3999)
    assert not own_origin({"Host": "rebound.example:3999"}, 3999)
    assert not own_origin({"Host": "127.0.0.1:3000"}, 3999)
    assert not own_origin({}, 3999)
    # An image or a link of another site carries no Origin, but the browser says whose it is.
    assert not own_origin({"Host": "127.0.0.1:3999", "Sec-Fetch-Site": "cross-site"}, 3999)
    assert not own_origin({"Host": "127.0.0.1:3999", "Sec-Fetch-Site": "same-site"}, 3999)
    assert own_origin({"Host": "127.0.0.1:3999", "Sec-Fetch-Site": "same-origin"}, 3999)
    assert own_origin({"Host": "127.0.0.1:3999", "Sec-Fetch-Site": "none"}, 3999)  # typed in


def test_last_minute_counts_only_the_last_sixty_seconds():
    counter = LastMinute()
    for at in (100.0, 150.0, 159.0):
        counter.add(at)
    assert counter.count(160.0) == 3
    assert counter.count(209.5) == 2
    assert counter.count(300.0) == 0


def test_last_minute_forgets_as_it_counts_even_when_nobody_reads_it():
    counter = LastMinute()
    for second in range(10_000):
        counter.add(float(second))
    assert len(counter._times) == 61


def test_order_metrics_skip_what_is_not_a_finite_number(tmp_path: Path):
    log = tmp_path / "order-replies.log"
    now = 3_000_000
    log.write_text("\n".join([
        '{"_aws": {"Timestamp": 1e400}, "OrdersAccepted": 1}',
        '{"_aws": {"Timestamp": %d}, "OrdersAccepted": NaN, "TimeToDecision": Infinity}' % (now * 1000),
        '{"_aws": {"Timestamp": %d}, "OrdersValidated": true}' % (now * 1000),
        '["_aws"]',
    ]) + "\n")
    metrics = OrderMetrics([log]).series(now)
    json.dumps(metrics, allow_nan=False)  # valid JSON for the page
    assert sum(metrics["acceptedPerSecond"]) == 0 and sum(metrics["decidedPerSecond"]) == 0


def test_the_last_bucket_is_a_rate_over_the_seconds_it_has_had():
    log_dir = Path("/nonexistent")
    now = 4_000_002  # two seconds into a bucket: 3 seconds counted
    metrics = OrderMetrics([log_dir / "none.log"])
    metrics.counts[now - now % 5]["accepted"] = 6
    assert metrics.series(now)["acceptedPerSecond"][-1] == 2
