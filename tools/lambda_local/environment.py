"""One execution environment: a sandboxed interpreter running the runtime interface client, and the Runtime API it
polls (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html), served here on a port of its own.

Lifecycle as on Lambda: the process starts and initialises (imports the handler module: on Ferry's runtime that loads
the model) until its first `GET /runtime/invocation/next`: that wait is the Init Duration. It then takes one
invocation at a time and stays warm for the next. An init error (`/runtime/init/error`), a process that exits, or an
invocation past its timeout ends the environment; the next invoke starts a fresh one.
"""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from . import sandbox

API = "/2018-06-01/runtime"
# The init phase of an on-demand environment may take at most 10 s
# (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html#runtimes-lifecycle-ib).
INIT_LIMIT_S = 10.0
LOG_TAIL_BYTES = 4096
SIGNAL_NAMES = {signal.SIGSEGV: "segmentation fault", signal.SIGKILL: "killed", signal.SIGABRT: "aborted",
                signal.SIGBUS: "bus error", signal.SIGTERM: "terminated", signal.SIGILL: "illegal instruction"}


@dataclass
class Result:
    """What an invocation answered: the payload bytes and, for an error, `function_error` ("Unhandled")."""
    payload: bytes
    function_error: str | None
    logs: str
    duration_ms: float
    init_ms: float | None = None      # set on the invocation that started the environment


@dataclass
class _Invocation:
    request_id: str
    payload: bytes
    deadline_ms: int
    invoked_arn: str
    done: threading.Event = field(default_factory=threading.Event)
    answer: bytes | None = None
    error: bytes | None = None
    started: float = 0.0


@dataclass(frozen=True)
class Config:
    """What an environment is started from: one published version's configuration."""
    function_name: str
    function_arn: str
    version: str
    runtime: str
    handler: str
    memory_mb: int
    timeout_s: int
    environment: dict[str, str]
    region: str


def reserved_variables(cfg: Config, api: str) -> dict[str, str]:
    """The variables Lambda sets itself (they override the function's own of the same name)
    (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime)."""
    py = cfg.runtime.removeprefix("python")
    return {
        "_HANDLER": cfg.handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{cfg.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": cfg.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": cfg.version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(cfg.memory_mb),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{cfg.function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"{time.strftime('%Y/%m/%d')}/[{cfg.version}]{uuid.uuid4().hex}",
        "AWS_LAMBDA_RUNTIME_API": api,
        "AWS_REGION": cfg.region,
        "AWS_DEFAULT_REGION": cfg.region,
        # The execution role's credentials on Lambda; the stand-in's dummy ones here.
        "AWS_ACCESS_KEY_ID": "ferry-local", "AWS_SECRET_ACCESS_KEY": "ferry-local-secret",
        "AWS_SESSION_TOKEN": "ferry-local-session",
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
        "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
        # Lambda's Python search path: task root, then the layers, then the runtime.
        "PYTHONPATH": f"/var/task:/opt/python/lib/python{py}/site-packages:/opt/python:/var/runtime",
    }


class Environment:
    def __init__(self, cfg: Config, layout: sandbox.Layout, python: str, log_file: Path, key: str):
        self.cfg = cfg
        self.key = key              # what a warm environment must match to be reused (invoke.py)
        self.id = uuid.uuid4().hex[:12]
        self.layout = layout
        self.python = python
        self.log_file = log_file
        self.busy = False
        self.dead = False
        self.init_ms: float | None = None
        self.init_cpu_s: float | None = None
        self.init_error: bytes | None = None
        self._reported_init = False  # the first REPORT line carries the Init Duration
        self.last_used = time.monotonic()
        self._cond = threading.Condition()
        self._pending: _Invocation | None = None
        self._current: _Invocation | None = None
        self._log_lines: list[str] = []
        self._output_lock = threading.Lock()  # held while a read chunk of the runtime's output becomes log lines
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        api = f"127.0.0.1:{self._server.server_address[1]}"
        env = {**cfg.environment, **reserved_variables(cfg, api)}
        layout.tmp.mkdir(parents=True, exist_ok=True)
        self._started = time.monotonic()
        self.proc = subprocess.Popen(sandbox.command(layout, python, cfg.handler, env), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._log(f"INIT_START Runtime Version: {cfg.runtime}.local Runtime Version ARN: local "
                  f"(environment {self.id}, pid {self.proc.pid})")
        threading.Thread(target=self._read_output, daemon=True).start()

    # ---- the invoker's side ---------------------------------------------------------------------------------
    def invoke(self, payload: bytes, request_id: str) -> Result:
        """Runs one invocation; the caller has marked the environment busy."""
        started = time.monotonic()
        first = self.init_ms is None
        inv = _Invocation(request_id, payload, 0, self.cfg.function_arn)
        with self._cond:
            self._log_lines = self._log_lines if first else []
            self._pending = inv
            self._cond.notify_all()
        # Init has its own limit; the function's timeout counts from when the runtime takes the invocation.
        init_deadline = self._started + INIT_LIMIT_S
        while not inv.done.wait(0.02):
            now = time.monotonic()
            if self.init_error is not None:
                return self._end(inv, self.init_error, "Unhandled", started)
            if self.proc.poll() is not None:
                error = self._exit_error(inv)
                self.kill()
                return self._end(inv, error, "Unhandled", started)
            if inv.started == 0.0 and self.init_ms is None and now > init_deadline:
                self.kill()
                return self._end(inv, self._timeout_error(inv, INIT_LIMIT_S, "Init"), "Unhandled", started)
            if inv.started and now > inv.started + self.cfg.timeout_s:
                self.kill()
                return self._end(inv, self._timeout_error(inv, self.cfg.timeout_s, "Task"), "Unhandled", started)
        if inv.error is not None:
            return self._end(inv, inv.error, "Unhandled", started)
        return self._end(inv, inv.answer or b"null", None, started)

    def _end(self, inv: _Invocation, payload: bytes, function_error: str | None, started: float) -> Result:
        duration = (time.monotonic() - (inv.started or started)) * 1000
        memory = self._max_memory_mb()
        report = (f"REPORT RequestId: {inv.request_id}\tDuration: {duration:.2f} ms\tBilled Duration: "
                  f"{max(1, int(duration + 0.999))} ms\tMemory Size: {self.cfg.memory_mb} MB\tMax Memory Used: "
                  f"{memory} MB")
        first = self.init_ms is not None and not self._reported_init
        if first:
            report += f"\tInit Duration: {self.init_ms:.2f} ms"
            self._reported_init = True
        self._drain_output()
        self._log(f"END RequestId: {inv.request_id}")
        self._log(report)
        if function_error and self.proc.poll() is None and self.init_error is not None:
            self.kill()
        with self._cond:
            logs = "".join(self._log_lines)
            self._log_lines = []
            self._current = None
        self.last_used = time.monotonic()
        return Result(payload, function_error, logs, duration, self.init_ms if first else None)

    def _exit_error(self, inv: _Invocation) -> bytes:
        self.dead = True
        code = self.proc.returncode
        why = f"signal: {SIGNAL_NAMES.get(-code, f'signal {-code}')}" if code < 0 else f"exit status {code}"
        return json.dumps({"errorType": "Runtime.ExitError",
                           "errorMessage": f"RequestId: {inv.request_id} Error: Runtime exited with error: {why}"}).encode()

    def _timeout_error(self, inv: _Invocation, seconds: float, phase: str) -> bytes:
        return json.dumps({"errorType": "Sandbox.Timedout",
                           "errorMessage": f"RequestId: {inv.request_id} Error: {phase} timed out after "
                                           f"{seconds:.2f} seconds"}).encode()

    def kill(self) -> None:
        self.dead = True
        # One process: unshare, sh and env each exec the next, so the pid is the interpreter's. It stays in the
        # executor's process group, so stopping the executor's group (tools/standins.py) stops it too.
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._server.shutdown()
        self._server.server_close()
        shutil.rmtree(self.layout.tmp, ignore_errors=True)

    def alive(self) -> bool:
        return not self.dead and self.proc.poll() is None

    def describe(self) -> dict:
        return {"id": self.id, "function": self.cfg.function_name, "version": self.cfg.version,
                "runtime": self.cfg.runtime, "pid": self.proc.pid, "busy": self.busy, "alive": self.alive(),
                "init_ms": self.init_ms, "init_cpu_s": self.init_cpu_s}

    # ---- logs -----------------------------------------------------------------------------------------------
    def _log(self, line: str) -> None:
        text = line.rstrip("\n") + "\n"
        with self._cond:
            self._log_lines.append(text)
        with open(self.log_file, "a", encoding="utf-8") as f:
            f.write(text)

    def _read_output(self) -> None:
        assert self.proc.stdout is not None
        fd, pending = self.proc.stdout.fileno(), b""
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError:
                chunk = b""
            with self._output_lock:
                if not chunk:
                    if pending:
                        self._log(pending.decode("utf-8", errors="replace"))
                    return
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    self._log(line.decode("utf-8", errors="replace"))

    def _drain_output(self, limit_s: float = 0.5) -> None:
        """Wait until everything the runtime wrote so far is in the log. What the handler printed was written to the
        pipe before its answer was posted, so it is either still in the pipe or in a chunk being split into lines."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            try:
                readable, _, _ = select.select([self.proc.stdout.fileno()], [], [], 0)
            except (OSError, ValueError):
                return
            if not readable:
                with self._output_lock:
                    return
            time.sleep(0.002)

    def _max_memory_mb(self) -> int:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
        except OSError:
            pass
        return 0

    def _cpu_seconds(self) -> float | None:
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return None

    # ---- the runtime's side: the Runtime API ----------------------------------------------------------------
    def _next(self) -> _Invocation | None:
        """The next invocation, once there is one; None when the environment ended meanwhile."""
        with self._cond:
            if self.init_ms is None:
                self.init_ms = (time.monotonic() - self._started) * 1000
                self.init_cpu_s = self._cpu_seconds()
            while self._pending is None:
                if self.dead:
                    return None
                self._cond.wait(0.5)
            inv, self._pending = self._pending, None
            self._current = inv
        inv.deadline_ms = int((time.time() + self.cfg.timeout_s) * 1000)
        self._log(f"START RequestId: {inv.request_id} Version: {self.cfg.version}")
        return inv

    def _handler_class(self):
        env = self

        class RuntimeApi(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: with Nagle's algorithm the second waits for the peer's delayed
            # ACK, 40 ms a request.
            disable_nagle_algorithm = True

            def log_message(self, *args):  # the runtime's own logs are what matters
                pass

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _reply(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != f"{API}/invocation/next":
                    return self._reply(404)
                inv = env._next()
                if inv is None:
                    return self._reply(410, b'{"errorType":"EnvironmentEnded"}')
                self._reply(200, inv.payload, {
                    "Content-Type": "application/json",  # awslambdaric crashes on a /next without it
                    "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": inv.invoked_arn,
                    "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0",
                })
                inv.started = time.monotonic()  # Duration and the timeout count from the event's delivery

            def do_POST(self):
                body = self._body()
                if self.path == f"{API}/init/error":
                    env.init_error = body
                    return self._reply(202, b'{"status":"OK"}')
                parts = self.path.removeprefix(f"{API}/invocation/").split("/")
                current = env._current
                if len(parts) != 2 or current is None or parts[0] != current.request_id:
                    return self._reply(400, b'{"errorType":"InvalidRequestID"}')
                if parts[1] == "response":
                    current.answer = body
                elif parts[1] == "error":
                    current.error = body
                else:
                    return self._reply(404)
                current.done.set()
                self._reply(202, b'{"status":"OK"}')

        return RuntimeApi
