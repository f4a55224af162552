"""devstack: the project's SAM template on one machine, without Docker or an AWS account.

  up      runs the whole stack until interrupted (what `make run` runs)
  invoke  runs one function once on an event file and prints its response, like
          `sam local invoke -e`: a fresh data plane with the template's tables and the seed data,
          the function's real binary behind the Runtime API; no event source mappings run.
  token   prints a token the running stack accepts: `token --sub consumer-1` a consumer's,
          `token --operator` an operator's; the token is the last line of the output."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from .launcher import DEBUG_BINARIES, PORTS
from .identity import DEFAULT_AUDIENCE, OPERATOR_SCOPE, LocalIssuer, token_for
from .runtime import InvocationError
from .console import Console
from .control import serve_control
from .stack import Stack, write_state
from .template import Template, TemplateError


def main() -> int:
    parser = argparse.ArgumentParser(prog="devstack", description=__doc__)
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    parser.add_argument("--bin-dir", type=Path, default=DEBUG_BINARIES,
                        help="where the functions' binaries are (cargo's output folder; `make build`'s by default)")
    parser.add_argument("--ports", choices=PORTS, default="run",
                        help="which of the project's stacks this is: its ports (API, emulator, control) "
                             "from launcher.PORTS")
    parser.add_argument("--moto-port", type=int, help="the emulator's port, instead of --ports'")
    parser.add_argument("--log-dir", type=Path, default=Path(".local/logs"))
    parser.add_argument("--instances", type=int, default=2,
                        help="how many instances of each function run at once")
    parser.add_argument("--no-speedups", action="store_true",
                        help="run moto without devstack's speed fixes (to measure what they save)")
    parser.add_argument("--no-iam", action="store_true",
                        help="do not enforce the functions' IAM policies (on by default)")
    parser.add_argument("--parameter-overrides", default="", metavar="'NAME=VALUE ...'",
                        help="template parameters, as `sam deploy --parameter-overrides` takes them")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="run the whole stack until interrupted")
    up.add_argument("--api-port", type=int, help="the API's port, instead of --ports'")
    up.add_argument("--control-port", type=int, help="the control port, instead of --ports'")
    up.add_argument("--seed", type=Path, action="append", default=[],
                    help="JSON file of items per table logical id, loaded once the tables exist")
    up.add_argument("--demo-data", type=Path,
                    help="consumers and restaurants (infra/demo-data.json) PUT through their APIs "
                         "once the stack runs; ready once the replicas hold them")
    up.add_argument("--state", type=Path, default=Path(".local/devstack.json"),
                    help="written once the stack is ready: endpoints and resource names")
    up.add_argument("--faults", type=json.loads, default={},
                    help='fault settings as JSON, e.g. \'{"crashes": 0.02}\' (see docs/local-stack.md)')
    invoke = commands.add_parser("invoke", help="run one function once on an event")
    invoke.add_argument("function", help="logical id (OrderApiFunction) or binary (order-api)")
    invoke.add_argument("--event", type=Path, required=True, help="the event, as AWS would send it")
    invoke.add_argument("--seed", type=Path, action="append", default=[],
                        help="JSON file of items per table logical id (the demo data of "
                             "infra/demo-data.json is always loaded, replicas included)")
    token = commands.add_parser("token", help="print a token for the running stack")
    who = token.add_mutually_exclusive_group(required=True)
    who.add_argument("--sub", help="the consumer the token is for (its consumerId)")
    who.add_argument("--operator", action="store_true",
                     help=f"an operator's token (scope {OPERATOR_SCOPE}): acts for any consumer")
    token.add_argument("--state", type=Path, default=Path(".local/devstack.json"),
                       help="the running stack's state file")
    token.add_argument("--seconds", type=int, default=12 * 3600, help="how long the token is valid")
    args = parser.parse_args()
    ports = PORTS[args.ports]
    if args.moto_port is None:
        args.moto_port = ports.moto
    if args.command == "up":
        args.api_port = ports.api if args.api_port is None else args.api_port
        args.control_port = ports.control if args.control_port is None else args.control_port
    if args.command == "token":
        return print_token(args)
    args.log_dir.mkdir(parents=True, exist_ok=True)
    try:
        args.parameters = dict(override.split("=", 1) for override in args.parameter_overrides.split())
    except ValueError:
        parser.error("--parameter-overrides takes NAME=VALUE pairs")
    # The API's authorizer trusts devstack's own issuer, whose key set the control port serves.
    issuer = LocalIssuer.create(f"http://127.0.0.1:{getattr(args, 'control_port', ports.control)}")
    args.parameters.setdefault("JwtIssuer", issuer.url)
    args.parameters.setdefault("JwtAudience", DEFAULT_AUDIENCE)
    # The functions call devstack's emulator (set on each; the template's rules need it named).
    args.parameters.setdefault("LocalEndpointUrl", f"http://127.0.0.1:{args.moto_port}")
    if args.command == "invoke":
        return run_invoke(args, issuer)

    stack = None
    try:
        demo = json.loads(args.demo_data.read_text()) if args.demo_data else {}
        stack = Stack(Template(args.template, args.parameters), args.bin_dir, args.log_dir,
                      args.moto_port, args.instances, args.faults, not args.no_speedups, issuer,
                      enforce_iam=not args.no_iam,
                      served_ports=(args.api_port, args.control_port))
        stack.start_data_plane()
        stack.create()
        for seed in args.seed:
            stack.seed(json.loads(seed.read_text()))
        stack.start_functions()
    except (TemplateError, FileNotFoundError, ValueError) as e:
        print(f"devstack: {e}", file=sys.stderr)
        if stack is not None:
            stack.stop()
        return 2
    for note in stack.notes:
        print(f"devstack: {note}")

    stack.http_api(args.api_port)
    audience = args.parameters["JwtAudience"].split(",")[0]
    serve_control(stack, args.control_port,
                  Console(stack, args.state, audience, demo, f"http://127.0.0.1:{args.api_port}"))
    key_file = args.state.with_name(args.state.stem + "-issuer.json")
    issuer.save(key_file)
    if args.demo_data:
        try:
            seconds = stack.load_demo(f"http://127.0.0.1:{args.api_port}",
                                      issuer.token("devstack", audience, [OPERATOR_SCOPE], 300),
                                      demo)
        except (OSError, ValueError, RuntimeError) as e:
            print(f"devstack: demo data not loaded: {e}", file=sys.stderr)
            stack.stop()
            return 2
        print(f"devstack: demo data loaded through the APIs; replicas updated in {seconds:.2f} s")
    state = {**stack.describe(), "api": f"http://127.0.0.1:{args.api_port}",
             "control": f"http://127.0.0.1:{args.control_port}",
             "console": f"http://127.0.0.1:{args.control_port}/console/",
             "identity": {"issuer": issuer.url, "audience": audience, "keyFile": str(key_file),
                          "operatorScope": OPERATOR_SCOPE}}
    write_state(args.state, state)
    print(f"devstack: ready; API on {state['api']}, AWS endpoint {stack.endpoint}, "
          f"function logs in {args.log_dir}/", flush=True)
    print(f"devstack: the console: {state['console']}", flush=True)
    print("devstack: every request needs a token (Authorization: Bearer ...); valid 12 hours:\n"
          f"  consumer-1: {issuer.token('consumer-1', audience)}\n"
          f"  operator:   {issuer.token('operator', audience, [OPERATOR_SCOPE])}\n"
          "devstack: more with `python -m infra.devstack token --sub CONSUMER_ID` "
          "(or `--operator`)", flush=True)

    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    report = stack.iam_report()
    (args.log_dir / "iam-report.txt").write_text(report + "\n")
    print(report, flush=True)
    for function in stack.functions.values():
        print(f"devstack: {function.name} peak memory {function.peak_memory_mb():.1f} MiB "
              f"of {function.memory} MB; longest invocation {function.longest_invocation * 1000:.0f} ms "
              f"of {function.timeout} s", flush=True)
    stack.stop()
    args.state.unlink(missing_ok=True)
    key_file.unlink(missing_ok=True)
    print(json.dumps({"devstack": "stopped"}))
    return 0


def print_token(args: argparse.Namespace) -> int:
    try:
        state = json.loads(args.state.read_text())
        token = token_for(state, args.sub, args.operator, args.seconds)
    except (OSError, KeyError, ValueError) as e:
        print(f"devstack: no running stack's issuer in {args.state} ({e}); start one with "
              "`make run`", file=sys.stderr)
        return 2
    who = f"consumer {args.sub}" if args.sub else f"an operator (scope {OPERATOR_SCOPE})"
    print(f"devstack: a token for {who}, valid {args.seconds} s, for the API at {state['api']}:")
    print(token)
    return 0


def run_invoke(args: argparse.Namespace, issuer: LocalIssuer) -> int:
    try:
        stack = Stack(Template(args.template, args.parameters), args.bin_dir, args.log_dir, 0,
                      instances=1, issuer=issuer)
    except TemplateError as e:
        print(f"devstack: {e}", file=sys.stderr)
        return 2
    try:
        return invoke_once(stack, args)
    finally:
        stack.stop()


def invoke_once(stack: Stack, args: argparse.Namespace) -> int:
    try:
        stack.start_data_plane()
        stack.create()
        stack.seed_demo(json.loads((Path(__file__).parents[1] / "demo-data.json").read_text()))
        for seed in args.seed:
            stack.seed(json.loads(seed.read_text()))
        function = stack.function(args.function)
        event = json.loads(args.event.read_text())
        stack.enforce_roles()
    except (TemplateError, FileNotFoundError, KeyError, ValueError) as e:
        print(f"devstack: {e}", file=sys.stderr)
        return 2
    log_start = function.log_path.stat().st_size if function.log_path.exists() else 0
    function.start()
    try:
        result, failed = function.invoke(event, wait=function.timeout + 5), False
    except InvocationError as e:
        result, failed = e.payload or {"errorType": e.kind, "errorMessage": str(e)}, True
    finally:
        function.stop()
    with open(function.log_path, "rb") as logs:
        logs.seek(log_start)
        sys.stderr.write(logs.read().decode(errors="replace"))
    print(json.dumps(result, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
