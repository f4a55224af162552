"""`make sam-local`: `sam local invoke` on every sample event in events/, on what `sam build`
made, in Lambda's own container image with its Runtime Interface Emulator, against the local
stack; each answer is checked (SAM's exit code says nothing: it is 0 when the function fails).

Docker: a reachable daemon (DOCKER_HOST, or /var/run/docker.sock) is used as it is, with the
base image `public.ecr.aws/lambda/provided:al2023-x86_64` pulled if the user has a registry.
Without one, as root, everything is prepared in .local/docker: Debian's docker.io, containerd and
runc unpacked there (not installed), a daemon with no bridge and no iptables rules (nothing but
loopback), and a base image made with debootstrap from Debian's mirror; the daemon is stopped by
its pid at the end and its mounts released. Without Docker and without root it says so and
skips, exit 0. The functions get their environment from the running stack (`--env-vars`
generated from devstack's state, never hand-kept) and their own role's credentials, so IAM is
enforced on them too."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from queue import Queue

import requests

from infra.bench.local_stack import devstack
from infra.devstack.launcher import SAM_LOCAL_API_PORT

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".local" / "docker"
SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
BUILT = ROOT / ".aws-sam" / "build" / "template.yaml"
IMAGE = "public.ecr.aws/lambda/provided:al2023-x86_64"
# What SAM builds on IMAGE (the emulator added), made here too: SAM's own build names the
# platform, and Docker 20.10's builder then asks the registry for the base image.
RAPID = "public.ecr.aws/lambda/provided:al2023-rapid-x86_64"
EMULATOR = ROOT / ".venv-sam/lib/python3.11/site-packages/samcli/local/rapid/aws-lambda-rie-x86_64"
# `sam local invoke`s run side by side (15 one after another took 152 s warm on two cores, 64 s
# three at a time).
INVOKES_AT_ONCE = 3
PACKAGES = ["docker.io", "containerd", "runc", "tini", "debootstrap"]
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")

# Every sample, its function, and what its answer must be.
BATCH_OK = {"batchItemFailures": []}
CHECKS = [
    ("order-api/place-order.json", lambda a: a["statusCode"] == 202 and json.loads(a["body"])["status"] == "PENDING"),
    ("order-api/place-order-bad-quantity.json", lambda a: a["statusCode"] == 422),
    ("order-api/place-order-for-another-consumer.json", lambda a: a["statusCode"] == 403),
    ("order-api/get-unknown-order.json",
     lambda a: a["statusCode"] == 404 and json.loads(a["body"])["detail"].startswith("there is no order")),
    ("consumer-api/put-consumer.json", lambda a: a["statusCode"] == 201),
    ("consumer-api/put-consumer-by-a-consumer.json", lambda a: a["statusCode"] == 403),
    ("restaurant-api/put-restaurant.json", lambda a: a["statusCode"] == 200 and json.loads(a["body"])["version"] == 2),
    ("outbox-relay/inserts-and-a-ttl-expiry.json", lambda a: a == BATCH_OK),
    ("consumer-validator/order-created.json", lambda a: a == BATCH_OK),
    ("restaurant-validator/order-created.json", lambda a: a == BATCH_OK),
    ("decision-timer/order-created.json", lambda a: a == BATCH_OK),
    ("order-replies/deadline.json", lambda a: a == BATCH_OK),
    ("order-replies/replies.json", lambda a: a == BATCH_OK),
    ("order-notifier/order-validated.json", lambda a: a == BATCH_OK),
    ("replica-updater/updates.json", lambda a: a == BATCH_OK),
]
# Samples that must run in this order: the order needs restaurant-1's item-2, which both menu
# updates after it take away; the deadline and the replies act on the same seeded order.
IN_ORDER = [("order-api/place-order.json", "restaurant-api/put-restaurant.json", "replica-updater/updates.json"),
            ("order-replies/deadline.json", "order-replies/replies.json")]


def lanes() -> list[tuple[str, ...]]:
    """Every sample once: the IN_ORDER runs, then each other sample on its own."""
    ordered = {sample for lane in IN_ORDER for sample in lane}
    return [*IN_ORDER, *((sample,) for sample, _ in CHECKS if sample not in ordered)]


FUNCTIONS = {"order-api": "OrderApiFunction", "consumer-api": "ConsumerApiFunction",
             "restaurant-api": "RestaurantApiFunction", "outbox-relay": "OutboxRelayFunction",
             "consumer-validator": "ConsumerValidatorFunction",
             "restaurant-validator": "RestaurantValidatorFunction", "order-replies": "OrderRepliesFunction",
             "order-notifier": "OrderNotifierFunction", "replica-updater": "ReplicaUpdaterFunction",
             "decision-timer": "DecisionTimerFunction"}


def reachable(docker_host: str) -> bool:
    path = docker_host.removeprefix("unix://")
    try:
        with socket.socket(socket.AF_UNIX) as probe:
            probe.connect(path)
        return True
    except OSError:
        return False


class LocalDocker:
    """A Docker daemon of the project's own, in .local/docker, stopped by its pid."""

    def __init__(self) -> None:
        self.root = WORK / "root"
        self.host = f"unix://{WORK / 'run' / 'docker.sock'}"
        self.process: subprocess.Popen | None = None

    def binaries(self) -> None:
        marker = self.root / ".unpacked"
        if marker.exists():
            return
        debs = WORK / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", "-q", *PACKAGES], cwd=debs, check=True,
                       stdout=subprocess.DEVNULL)
        for deb in debs.glob("*.deb"):
            subprocess.run(["dpkg", "-x", str(deb), str(self.root)], check=True)
        marker.touch()

    def environment(self) -> dict[str, str]:
        path = f"{self.root / 'usr/bin'}:{self.root / 'usr/sbin'}:{os.environ['PATH']}"
        return {**os.environ, "PATH": path, "DOCKER_HOST": self.host,
                "DEBOOTSTRAP_DIR": str(self.root / "usr/share/debootstrap")}

    def start(self) -> None:
        for folder in ("run", "data", "exec"):
            (WORK / folder).mkdir(parents=True, exist_ok=True)
        log = open(WORK / "dockerd.log", "ab")
        # No registry is reachable or wanted: any pull goes to a proxy on loopback that is not
        # there, so the daemon fails at once and never even looks a registry's name up.
        offline = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}
        self.process = subprocess.Popen(
            ["dockerd", "--iptables=false", "--ip6tables=false", "--bridge=none", "-H", self.host,
             "--data-root", str(WORK / "data"), "--exec-root", str(WORK / "exec"),
             "--pidfile", str(WORK / "run" / "docker.pid")],
            env={**self.environment(), **offline}, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while not reachable(self.host):
            if self.process.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"dockerd did not start; see {WORK / 'dockerd.log'}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
        # dockerd may leave its network namespace mounted under its exec-root.
        for mount in reversed(Path("/proc/mounts").read_text().splitlines()):
            target = mount.split()[1]
            if target.startswith(str(WORK / "exec")):
                subprocess.run(["umount", target], check=False)


def base_image(environment: dict[str, str]) -> None:
    """Lambda's provided.al2023 image as SAM expects it, made from a minimal Debian: SAM adds the
    emulator and mounts the function; the function needs a shell and a glibc."""
    inspect = subprocess.run(["docker", "image", "inspect", RAPID], env=environment, capture_output=True)
    if inspect.returncode == 0:
        return
    context = WORK / "image"
    archive = context / "rootfs.tar"
    if not archive.exists():
        rootfs = WORK / "rootfs"
        shutil.rmtree(rootfs, ignore_errors=True)
        # ca-certificates: the functions' SDK loads the system roots at start, as on Lambda.
        subprocess.run([str(WORK / "root/usr/sbin/debootstrap"), "--variant=minbase", "--include=ca-certificates", "bookworm",
                        str(rootfs), MIRROR], env=environment, check=True, stdout=subprocess.DEVNULL)
        for folder in ("var/task", "var/runtime", "opt"):
            (rootfs / folder).mkdir(parents=True, exist_ok=True)
        (rootfs / "tmp").chmod(0o1777)
        context.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive, "w") as tar:
            tar.add(rootfs, arcname=".")
        shutil.rmtree(rootfs)
    (context / "Dockerfile").write_text("\n".join([
        "FROM scratch", "ADD rootfs.tar /",
        "ENV LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime LANG=C.UTF-8",
        "ENV PATH=/var/lang/bin:/usr/local/bin:/usr/bin:/bin:/opt/bin",
        "ENV LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
        "WORKDIR /var/task", ""]))
    subprocess.run(["docker", "build", "-t", IMAGE, str(context)], env=environment, check=True,
                   stdout=subprocess.DEVNULL)
    rapid = WORK / "rapid"
    rapid.mkdir(exist_ok=True)
    shutil.copy(EMULATOR, rapid / "aws-lambda-rie")
    (rapid / "Dockerfile").write_text(f"FROM {IMAGE}\nADD aws-lambda-rie /var/rapid/\n"
                                      "RUN chmod +x /var/rapid/aws-lambda-rie\n")
    subprocess.run(["docker", "build", "-t", RAPID, str(rapid)], env=environment, check=True,
                   stdout=subprocess.DEVNULL)


def env_vars(state: dict) -> dict[str, dict[str, str]]:
    """`--env-vars`: each function's variables as devstack runs it, credentials aside (SAM
    passes those from its own environment)."""
    secret = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION")
    return {function: {k: v for k, v in variables.items() if k not in secret}
            for function, variables in state["environments"].items()}


def invoke(environment: dict[str, str], state: dict, sample: str, env_file: Path,
           ports: str) -> tuple[dict | None, float, str]:
    # order-api's reads are deployed as OrderReaderFunction (ORDER_API_ROUTES=reads).
    function = "OrderReaderFunction" if sample.startswith("order-api/get-") else FUNCTIONS[sample.split("/")[0]]
    credentials = state["environments"][function]
    command = [str(SAM_PYTHON), "-m", "infra.sam_launcher", "local", "invoke", function,
               "-e", str(ROOT / "events" / sample), "--template", str(BUILT), "--env-vars", str(env_file),
               "--skip-pull-image", "--layer-cache-basedir", str(WORK / "layers"),
               "--parameter-overrides", f"Architecture=x86_64 LocalEndpointUrl={state['endpoint']}"]
    started = time.time()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180, env={
        **environment, "TMPDIR": str(WORK / "tmp"), "SAM_CLI_TELEMETRY": "0", "SAM_LOCAL_PORTS": ports,
        "AWS_ACCESS_KEY_ID": credentials["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": credentials["AWS_SECRET_ACCESS_KEY"],
        "AWS_SESSION_TOKEN": credentials["AWS_SESSION_TOKEN"], "AWS_DEFAULT_REGION": state["region"]})
    took = time.time() - started
    answer = None
    for line in reversed(done.stdout.strip().splitlines()):
        try:
            answer = json.loads(line)
            break
        except ValueError:
            continue
    return answer, took, done.stdout[-2000:] + done.stderr[-2000:]


def start_api(environment: dict[str, str], state: dict, env_file: Path) -> tuple[bool, str]:
    """`sam local start-api` serves the template's routes too. SAM runs no JWT authorizer, so a
    request reaches order-api without verified claims, and the function refuses it (`401`
    problem+json): it never trusts a token nothing verified. Checked here end to end."""
    port = SAM_LOCAL_API_PORT
    credentials = state["environments"]["OrderApiFunction"]
    command = [str(SAM_PYTHON), "-m", "infra.sam_launcher", "local", "start-api", "--host", "127.0.0.1",
               "--port", str(port), "--template", str(BUILT), "--env-vars", str(env_file), "--skip-pull-image",
               "--layer-cache-basedir", str(WORK / "layers"),
               "--parameter-overrides", f"Architecture=x86_64 LocalEndpointUrl={state['endpoint']}"]
    log = open(WORK / "start-api.log", "w")
    server = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={
        **environment, "TMPDIR": str(WORK / "tmp"), "SAM_CLI_TELEMETRY": "0",
        "AWS_ACCESS_KEY_ID": credentials["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": credentials["AWS_SECRET_ACCESS_KEY"],
        "AWS_SESSION_TOKEN": credentials["AWS_SESSION_TOKEN"], "AWS_DEFAULT_REGION": state["region"]})
    try:
        deadline = time.time() + 90
        while True:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/orders/0193f0a0-0000-7000-8000-000000000000",
                                      headers={"Authorization": "Bearer not-verified-by-sam"}, timeout=60)
                break
            except requests.ConnectionError:
                if server.poll() is not None or time.time() > deadline:
                    return False, (WORK / "start-api.log").read_text()[-2000:]
                time.sleep(0.5)
        kind = answer.json().get("type") if answer.headers.get("content-type", "").endswith("json") else None
        return (answer.status_code, kind) == (401, "/problems/unauthenticated"), f"{answer.status_code} {answer.text}"
    finally:
        server.send_signal(2)  # SIGINT: SAM stops its containers
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def main() -> int:
    if not BUILT.exists():
        print("sam-local: run `make sam-build` first (.aws-sam/build is missing)", file=sys.stderr)
        return 2
    docker_host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    local_docker = None
    environment = {**os.environ, "DOCKER_HOST": docker_host}
    started = time.time()
    if not reachable(docker_host):
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            print("sam-local: SKIPPED: no Docker daemon reachable and no root to prepare one; "
                  "`devstack invoke` (in make e2e) ran every sample instead")
            return 0
        local_docker = LocalDocker()
        local_docker.binaries()
        local_docker.start()
        environment = local_docker.environment()
    (WORK / "tmp").mkdir(parents=True, exist_ok=True)
    failures = []
    try:
        base_image(environment)
        prepared = time.time() - started
        print(f"sam-local: Docker and the base image ready in {prepared:.1f} s")
        with devstack("sam-local", ROOT / ".local" / "sam-local-logs",
                      seeds=[ROOT / "events" / "order-replies" / "seed.json"]) as state:
            env_file = WORK / "env-vars.json"
            env_file.write_text(json.dumps(env_vars(state)))
            # A few at once: most of an invoke is SAM starting and Docker making a container,
            # waits more than work. Samples whose order matters share a lane (IN_ORDER); each
            # invoke running has a port block of its own (sam_launcher: SAM_LOCAL_PORTS).
            blocks: Queue[str] = Queue()
            for first in range(5000, 5000 + 1000 * INVOKES_AT_ONCE, 1000):
                blocks.put(f"{first}-{first + 999}")

            def run(lane: tuple[str, ...]) -> list[tuple[str, tuple[dict | None, float, str]]]:
                done = []
                for sample in lane:
                    ports = blocks.get()
                    try:
                        done.append((sample, invoke(environment, state, sample, env_file, ports)))
                    finally:
                        blocks.put(ports)
                return done

            with ThreadPoolExecutor(max_workers=INVOKES_AT_ONCE) as pool:
                answers = dict(answer for lane in pool.map(run, lanes()) for answer in lane)
            for sample, check in CHECKS:
                answer, took, output = answers[sample]
                ok = answer is not None and check(answer)
                print(f"sam-local: {'ok  ' if ok else 'FAIL'} {took:5.1f} s  {sample}", flush=True)
                if not ok:
                    failures.append(sample)
                    print(output, file=sys.stderr)
            began = time.time()
            served, detail = start_api(environment, state, env_file)
            print(f"sam-local: {'ok  ' if served else 'FAIL'} {time.time() - began:5.1f} s  sam local start-api: "
                  f"GET /orders/{{id}} reaches order-api, which refuses the unverified token: {detail[:120]}")
            if not served:
                failures.append("start-api")
    finally:
        if local_docker is not None:
            local_docker.stop()
    print(f"sam-local: {len(CHECKS) + 1 - len(failures)} of {len(CHECKS) + 1} checks (every sample, and "
          f"start-api) answered as expected in {time.time() - started:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
