#!/usr/bin/env python3
"""Local stand-ins for AWS and the model registry on 127.0.0.1: a moto server, the local Lambda in front of it
(tools/lambda_local: every request passes through to moto except Invoke, which runs the function's real code), and
an MLflow server.

One implementation serves `make local-up`/`make local-down`, the pytest fixture and the Rust test harness:

    python tools/standins.py up --dir DIR [--no-mlflow] [--parent-pid PID [--remove-dir]] [--json] [control-plane settings]
    python tools/standins.py down --dir DIR

The local Lambda answers Lambda's control plane as Lambda does (tools/lambda_local/control_plane.py): AWS's request
quotas (GetFunction 100/s, GetPolicy 15/s, all other control-plane requests 15/s), updates that settle, RevisionIds,
pages. For tests an update settles in 0.2 s (TEST_CONTROL_PLANE) instead of the local Lambda's 1 s; `--settle-s`,
`--latency-ms`, `--rate-control`, `--rate-get-function`, `--rate-get-policy` (0 = unlimited) and `--burst-s`, or the
FERRY_LAMBDA_* variables of the same names, set them otherwise.

`up` picks free ports, starts the servers in the background (each in its own process group, logging to DIR),
waits until they answer, creates the artifact bucket in moto, and writes:
    DIR/standins.json   ports, URLs and PIDs (what `down` reads); `aws_url` is the endpoint every client uses (the
                        local Lambda), `moto_url` moto itself
    DIR/env             shell exports: AWS_ENDPOINT_URL (the local Lambda), AWS_REGION, dummy credentials,
                        MLFLOW_TRACKING_URI, ...
    DIR/lambda/         the local Lambda's state: logs/<function>.log (what CloudWatch Logs would hold), code, /tmp
    DIR/platform.json   a local `ferry_platform` (docs/contracts.md) whose EFS is the folder DIR/efs
With --parent-pid, a watchdog stops the servers when that process ends, whatever way it ends; with --remove-dir as
well, it then deletes DIR (a test's stack holds its own unpacked runtime layer, about 530 MB).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

REGION = "us-east-1"
BUCKET = "ferry-artifacts"
ACCESS_KEY = "ferry-local"
SECRET_KEY = "ferry-local-secret"
DEMO_MODELS = ("risk-score", "readmission")
MOTO_READY_TIMEOUT_S = 30
# The control plane as tests meet it: AWS's quotas and no added latency (the local Lambda's defaults), but an update
# settles in 0.2 s, which keeps the deploy tests fast while every update is still InProgress for a while.
TEST_CONTROL_PLANE = {"settle_s": 0.2, "publish_pending_s": 0.2}
CONTROL_PLANE_SETTINGS = ("settle_s", "latency_ms", "rate_control", "rate_get_function", "rate_get_policy", "burst_s",
                          "idle_s", "restore_s", "publish_pending_s")
MLFLOW_READY_TIMEOUT_S = 120


@dataclass
class Standins:
    dir: str
    aws_url: str            # AWS_ENDPOINT_URL: the local Lambda, which passes everything but Invoke to moto
    moto_url: str
    mlflow_url: str | None
    bucket: str = BUCKET
    region: str = REGION
    pids: list[int] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """The environment a client of these servers needs (boto3, MLflow's client, the ferry agent)."""
        env = {
            "AWS_ENDPOINT_URL": self.aws_url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "MLFLOW_S3_ENDPOINT_URL": self.aws_url,
            "FERRY_LOCAL_DIR": self.dir,
        }
        if self.mlflow_url:
            env["MLFLOW_TRACKING_URI"] = self.mlflow_url
        return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, timeout_s: float, proc: subprocess.Popen, log: Path, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} while starting; see {log}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    stop_groups([proc.pid])
    raise RuntimeError(f"{what} did not answer {url} within {timeout_s:.0f} s; see {log}")


def spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    out = open(log, "ab")
    # Own process group: `down` stops the server and every worker it forked, by PID.
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, start_new_session=True)


def bin_path(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def start_moto(workdir: Path) -> tuple[str, subprocess.Popen]:
    port = free_port()
    log = workdir / "moto.log"
    # Each server records into its own folder (moto's default is a file in the working directory, shared by all).
    env = dict(os.environ, MOTO_RECORDER_FILEPATH=str(workdir / "moto_recording"))
    proc = spawn([sys.executable, os.path.abspath(__file__), "moto_server", "-H", "127.0.0.1", "-p", str(port)], log, env)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/moto-api/", MOTO_READY_TIMEOUT_S, proc, log, "moto")
    return url, proc


def run_moto(argv: list[str]) -> int:
    """moto's own server, less two costs it pays on every request that nothing here needs: a directory listing to
    match the request to a service (cached once) and werkzeug's access log line (FERRY_MOTO_ACCESS_LOG=1 keeps it).
    Together they were about 40% of moto's CPU time; moto is the bottleneck of the tests and of `make bench-deploy`."""
    import logging

    import moto.backends
    from moto.server import main as moto_main

    modules = tuple(moto.backends.list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: modules
    if not os.environ.get("FERRY_MOTO_ACCESS_LOG"):
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # errors and tracebacks are still logged
    return moto_main(argv) or 0


def control_plane_flags(control_plane: dict[str, float] | None) -> list[str]:
    """The local Lambda's flags for these settings over TEST_CONTROL_PLANE; a FERRY_LAMBDA_* variable in the
    environment wins over a test default (not over a setting given here)."""
    given = dict(control_plane or {})
    unknown = set(given) - set(CONTROL_PLANE_SETTINGS)
    if unknown:
        raise ValueError(f"unknown control-plane settings {sorted(unknown)}; known: {', '.join(CONTROL_PLANE_SETTINGS)}")
    settings = {k: v for k, v in TEST_CONTROL_PLANE.items() if f"FERRY_LAMBDA_{k.upper()}" not in os.environ}
    settings.update(given)
    return [f"--{k.replace('_', '-')}={v}" for k, v in sorted(settings.items())]


def start_local_lambda(workdir: Path, moto_url: str,
                       control_plane: dict[str, float] | None = None) -> tuple[str, subprocess.Popen]:
    port = free_port()
    log = workdir / "lambda.log"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent))
    proc = spawn([sys.executable, "-m", "lambda_local", "--moto", moto_url, "--port", str(port),
                  "--state", str(workdir / "lambda"), *control_plane_flags(control_plane)], log, env)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/ferry-lambda/", MOTO_READY_TIMEOUT_S, proc, log, "the local Lambda")
    return url, proc


def create_bucket(moto_url: str, bucket: str) -> None:
    import boto3  # only needed here; keeps `down` importable without boto3

    s3 = boto3.client("s3", endpoint_url=moto_url, region_name=REGION,
                      aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
    s3.create_bucket(Bucket=bucket)


def start_mlflow(workdir: Path, moto_url: str) -> tuple[str, subprocess.Popen]:
    port = free_port()
    log = workdir / "mlflow.log"
    env = dict(os.environ)
    env.update({
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_S3_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
    })
    cmd = [bin_path("mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
           "--default-artifact-root", f"s3://{BUCKET}/mlflow", "--no-serve-artifacts", "--workers", "1"]
    proc = spawn(cmd, log, env)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/health", MLFLOW_READY_TIMEOUT_S, proc, log, "MLflow")
    return url, proc


def host_architecture() -> str:
    """This machine's architecture, as Lambda names it: what the local Lambda can run."""
    return {"aarch64": "arm64"}.get(os.uname().machine, "x86_64")


def runtime_target() -> dict:
    """runtime/lambda-target.json: the one runtime the functions run (checked where the layer is built)."""
    return json.loads((Path(__file__).resolve().parent.parent / "runtime" / "lambda-target.json").read_text())


def runtime_of_the_build() -> dict:
    """`ferry_platform.runtime` as the Terraform examples emit it: the target's runtime, this machine's architecture,
    the package versions of the layer dist/ holds (none when it has not been built yet)."""
    root = Path(__file__).resolve().parent.parent
    target = runtime_target()
    report = root / "dist" / "ferry-runtime-layer.json"
    packages = json.loads(report.read_text()).get("packages", {}) if report.exists() else {}
    return {"python": target["runtime"],
            "architecture": host_architecture(),
            "layer_packages": packages}


def local_platform(workdir: Path, models: tuple[str, ...] = DEMO_MODELS) -> dict:
    """A `ferry_platform` for the stand-ins: same shape as Terraform's output, EFS replaced by a folder."""
    account = "123456789012"
    return {
        "schema_version": 1,
        "environment": "local",
        "region": REGION,
        "artifact_bucket": BUCKET,
        "audit_prefix": "ferry/audit/",
        "lock_prefix": "ferry/locks/",
        "efs": {
            "file_system_id": "fs-local",
            "inference_access_point_arn": f"arn:aws:elasticfilesystem:{REGION}:{account}:access-point/fsap-inference",
            "sync_access_point_arn": f"arn:aws:elasticfilesystem:{REGION}:{account}:access-point/fsap-sync",
            "mount_path": "/mnt/models",
            "local_root": str(workdir / "efs"),
        },
        "network": {"subnet_ids": ["subnet-local-a", "subnet-local-b"], "security_group_ids": ["sg-local"]},
        "functions": {m: f"ferry-local-{m}" for m in models},
        "sync_function": None,
        "http_api_id": None,
        "runtime": runtime_of_the_build(),
    }


def write_files(st: Standins) -> None:
    workdir = Path(st.dir)
    (workdir / "efs").mkdir(parents=True, exist_ok=True)
    (workdir / "standins.json").write_text(json.dumps(asdict(st), indent=2) + "\n")
    (workdir / "env").write_text("".join(f"export {k}={v}\n" for k, v in sorted(st.env().items())))
    (workdir / "platform.json").write_text(json.dumps(local_platform(workdir), indent=2) + "\n")


def up(workdir: Path, with_mlflow: bool = True, parent_pid: int | None = None,
       control_plane: dict[str, float] | None = None, remove_dir: bool = False) -> Standins:
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    started: list[int] = []
    try:
        moto_url, moto = start_moto(workdir)
        started.append(moto.pid)
        aws_url, local_lambda = start_local_lambda(workdir, moto_url, control_plane)
        started.append(local_lambda.pid)
        create_bucket(aws_url, BUCKET)
        mlflow_url = None
        if with_mlflow:
            mlflow_url, mlflow = start_mlflow(workdir, aws_url)
            started.append(mlflow.pid)
    except BaseException:
        stop_groups(started)
        raise
    st = Standins(dir=str(workdir), aws_url=aws_url, moto_url=moto_url, mlflow_url=mlflow_url, pids=started)
    write_files(st)
    if parent_pid:
        start_watchdog(parent_pid, started, workdir if remove_dir else None)
    return st


def stop_groups(pids: list[int], grace_s: float = 5.0) -> None:
    """SIGTERM each process group, then SIGKILL whatever is still there after the grace period."""
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_s
    for pid in pids:
        while time.monotonic() < deadline and group_alive(pid):
            time.sleep(0.05)
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        reap(pid)


def group_alive(pgid: int) -> bool:
    reap(pgid)
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def start_watchdog(parent_pid: int, pids: list[int], remove_dir: Path | None = None) -> None:
    cmd = [sys.executable, os.path.abspath(__file__), "watch", "--parent-pid", str(parent_pid),
           *[f"--pid={p}" for p in pids], *([f"--remove-dir={remove_dir}"] if remove_dir else [])]
    subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)


def watch(parent_pid: int, pids: list[int], remove_dir: Path | None = None) -> None:
    while process_alive(parent_pid):
        # Servers stopped by their owner leave nothing to watch, but a folder to delete once the owner is gone.
        if remove_dir is None and not any(group_alive(p) for p in pids):
            return
        time.sleep(0.5)
    stop_groups(pids)
    if remove_dir is not None:
        shutil.rmtree(remove_dir, ignore_errors=True)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def down(workdir: Path) -> None:
    state_file = workdir / "standins.json"
    if not state_file.exists():
        return
    state = json.loads(state_file.read_text())
    stop_groups(state.get("pids", []))
    state_file.unlink()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["moto_server"]:  # internal: the server process `up` starts; moto parses its own arguments
        return run_moto(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start moto and MLflow")
    p_up.add_argument("--dir", type=Path, required=True)
    p_up.add_argument("--no-mlflow", action="store_true", help="start moto only")
    p_up.add_argument("--parent-pid", type=int, help="stop the servers when this process ends")
    p_up.add_argument("--remove-dir", action="store_true",
                      help="with --parent-pid: delete DIR once that process has ended and the servers are stopped")
    p_up.add_argument("--json", action="store_true", help="print the state as JSON on stdout")
    for name in CONTROL_PLANE_SETTINGS:
        p_up.add_argument(f"--{name.replace('_', '-')}", type=float, dest=name,
                          help="a control-plane setting of the local Lambda (python -m lambda_local --help)")
    p_down = sub.add_parser("down", help="stop what `up` started in DIR")
    p_down.add_argument("--dir", type=Path, required=True)
    p_watch = sub.add_parser("watch", help=argparse.SUPPRESS)
    p_watch.add_argument("--parent-pid", type=int, required=True)
    p_watch.add_argument("--pid", type=int, action="append", default=[])
    p_watch.add_argument("--remove-dir", type=Path)
    args = parser.parse_args(argv)

    if args.command == "up":
        if (args.dir / "standins.json").exists():
            down(args.dir)  # a previous `up` in the same folder: restart cleanly
        try:
            control_plane = {k: getattr(args, k) for k in CONTROL_PLANE_SETTINGS if getattr(args, k) is not None}
            if args.remove_dir and not args.parent_pid:
                raise ValueError("--remove-dir needs --parent-pid: the folder goes when that process ends")
            st = up(args.dir, with_mlflow=not args.no_mlflow, parent_pid=args.parent_pid, control_plane=control_plane,
                    remove_dir=args.remove_dir)
        except (RuntimeError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(asdict(st)))
        else:
            print(f"moto    {st.moto_url}  (pid {st.pids[0]}, log {st.dir}/moto.log)")
            print(f"Lambda  {st.aws_url}  (pid {st.pids[1]}, log {st.dir}/lambda.log; function logs in "
                  f"{st.dir}/lambda/logs/): AWS_ENDPOINT_URL")
            if st.mlflow_url:
                print(f"MLflow  {st.mlflow_url}  (pid {st.pids[2]}, log {st.dir}/mlflow.log)")
            print(f"env     {st.dir}/env\nplatform {st.dir}/platform.json")
    elif args.command == "down":
        down(args.dir)
    else:
        watch(args.parent_pid, args.pid, args.remove_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
