"""Lambda's synchronous payload limits on devstack's Runtime API, with a real function process
(a small Python runtime client): 6 MB in, 6,291,556 bytes out (docs/conformance.md, "Limits")."""

from __future__ import annotations

import sys
import textwrap
import time

import pytest

from infra.devstack.runtime import MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, Function, InvocationError

# A runtime client that answers each event with `size` bytes of JSON, and reports what the
# Runtime API answered it to its log.
CLIENT = textwrap.dedent(f"""\
    #!{sys.executable}
    import json, os, urllib.request
    api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
    while True:
        with urllib.request.urlopen(api + "next") as got:
            request_id = got.headers["Lambda-Runtime-Aws-Request-Id"]
            size = json.loads(got.read())["size"]
        answer = urllib.request.Request(api + request_id + "/response", data=json.dumps("x" * size).encode())
        try:
            urllib.request.urlopen(answer).read()
        except urllib.error.HTTPError as refused:
            print(refused.code, refused.read().decode(), flush=True)
""")


@pytest.fixture(scope="module")
def function(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runtime")
    binary = folder / "bootstrap"
    binary.write_text(CLIENT)
    binary.chmod(0o755)
    made = Function("sized", binary, {}, timeout=10, memory=128, log_dir=folder)
    made.start()
    yield made
    made.stop()


def test_a_response_within_the_limit_is_answered(function):
    assert function.invoke({"size": 1000}, wait=20) == "x" * 1000


def test_a_response_over_6_mb_fails_the_invocation_and_the_runtime_is_told_413(function):
    with pytest.raises(InvocationError) as failed:
        function.invoke({"size": MAX_RESPONSE_BYTES}, wait=20)  # with its quotes, two bytes over
    assert failed.value.kind == "Function.ResponseSizeTooLarge"
    assert "6291556 bytes" in str(failed.value)
    deadline = time.monotonic() + 10
    while "413" not in function.log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)  # the client writes what it was told just after
    told = function.log_path.read_text()
    assert '413 {"errorMessage": "Exceeded maximum allowed payload size (6291556 bytes).", ' \
           '"errorType": "RequestEntityTooLarge"}' in told


def test_an_event_over_6_mb_is_refused_before_any_instance_sees_it(function):
    with pytest.raises(InvocationError) as refused:
        function.invoke({"size": 1, "padding": "p" * MAX_REQUEST_BYTES}, wait=20)
    assert refused.value.kind == "RequestEntityTooLargeException"
    assert function.invoke({"size": 3}, wait=20) == "xxx"  # the instance is still there


# A runtime client that takes `sleep` seconds over each event.
SLOW_CLIENT = textwrap.dedent(f"""\
    #!{sys.executable}
    import json, os, time, urllib.request
    api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
    while True:
        with urllib.request.urlopen(api + "next") as got:
            request_id = got.headers["Lambda-Runtime-Aws-Request-Id"]
            time.sleep(json.loads(got.read())["sleep"])
        urllib.request.urlopen(urllib.request.Request(api + request_id + "/response", data=b"1")).read()
""")


def test_an_invocation_past_the_reserved_concurrency_is_throttled_at_once(tmp_path):
    binary = tmp_path / "bootstrap"
    binary.write_text(SLOW_CLIENT)
    binary.chmod(0o755)
    function = Function("reserved", binary, {}, timeout=10, memory=128, log_dir=tmp_path,
                        instances=4, reserved=1)
    function.start()
    try:
        assert len(function.slots) == 1  # never more instances than it may run at once
        held = function.invoke_async({"sleep": 1.5})
        began = time.monotonic()
        with pytest.raises(InvocationError) as throttled:
            function.invoke({"sleep": 0}, wait=5)
        assert time.monotonic() - began < 0.5  # refused, not queued behind the first
        assert throttled.value.kind == "TooManyRequestsException"
        assert "ReservedFunctionConcurrentInvocationLimitExceeded" in str(throttled.value)
        assert held.result(timeout=10) == 1
        assert function.admitted == 0
        # Free again as soon as the first is answered: its caller may invoke again at once.
        assert function.invoke({"sleep": 0}, wait=10) == 1
    finally:
        function.stop()
