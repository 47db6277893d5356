"""The HTTP front of the local Lambda: one endpoint for `AWS_ENDPOINT_URL` (ferry, boto3, the AWS CLI, MLflow's S3
client). Every request goes to moto as it came, byte for byte, headers included, except:

  - `Invoke` (POST /2015-03-31/functions/{name}/invocations) runs the function here (invoke.py);
  - code uploads (CreateFunction, UpdateFunctionCode, PublishLayerVersion) are passed on and their zips recorded
    (code_store.py), with a function's FileSystemConfigs (moto drops them);
  - Lambda's control plane is answered as Lambda answers it (control_plane.py): the account's request quotas,
    updates that take time to settle, RevisionIds and their preconditions, pages, round-trip latency, runtime
    versions and the runtime-management calls;
  - `POST /moto-api/reset` is passed on and also stops every execution environment, and restores the control
    plane's settings and full token buckets;
  - where moto is gentler than Lambda or answers otherwise (fidelity.py): `PublishVersion` of an unchanged `$LATEST`
    returns the version published from it before, as Lambda does, instead of a second one; moto's
    `ConflictException` is Lambda's `ResourceConflictException`; function URL configs are kept per qualifier and
    listed, as Lambda does (moto keeps one per function and cannot list them); resource policies are kept per
    qualifier (policies.py: moto files every alias's permissions under one policy);
  - `/ferry-lambda/...` is this executor's own: `GET /ferry-lambda/environments` lists the environments (init
    duration and CPU, busy, alive), `POST /ferry-lambda/mounts` {"access_point_arn", "local_root"} says which
    local folder stands in for an EFS access point, `GET /ferry-lambda/control-plane` shows the control plane's
    settings and the requests it admitted and throttled per operation, `POST /ferry-lambda/control-plane`
    {"settle_s", "latency_ms", "idle_s", "restore_s", "rates": {"get_function", "get_policy", "other", "burst_s"}}
    changes settings,
    `POST /ferry-lambda/runtime-release` {"runtime"} releases a new runtime version (runtimes.py).
"""
from __future__ import annotations

import base64
import http.client
import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from . import fidelity, operations, policies
from .answers import Answer, json_answer
from .answers import json_object as _json
from .code_store import CodeStore
from .control_plane import ControlPlane, Settings
from .invoke import Invoker

INVOKE = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")
CREATE_FUNCTION = re.compile(r"^/2015-03-31/functions/?$")
UPDATE_CODE = re.compile(r"^/2015-03-31/functions/([^/]+)/code$")
UPDATE_CONFIG = re.compile(r"^/2015-03-31/functions/([^/]+)/configuration$")
FUNCTION = re.compile(r"^/2015-03-31/functions/([^/]+)$")
PUBLISH_LAYER = re.compile(r"^/2018-10-31/layers/([^/]+)/versions$")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection",
              "expect"}  # the front answered `Expect: 100-continue` itself
CHUNK = 1 << 20
ACCESS_KEY = "ferry-local"    # tools/standins.py's; moto maps every access key to its default account


class Upstream:
    """Keep-alive connections to moto, one per thread."""

    def __init__(self, url: str):
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname, parsed.port or 80
        self._local = threading.local()

    def connection(self, fresh: bool = False) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
            self._local.conn = conn
        return conn

    def request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> http.client.HTTPResponse:
        """A read is retried once on a fresh connection when a kept-alive one turns out closed. Anything else goes on
        a fresh connection and is never sent twice: a replayed conditional put (the deploy lock) would answer 412."""
        if method not in ("GET", "HEAD"):
            conn = self.connection(fresh=True)
            conn.request(method, path, body=body, headers=headers)
            return conn.getresponse()
        for attempt in (0, 1):
            conn = self.connection(fresh=attempt == 1)
            try:
                conn.request(method, path, body=body, headers=headers)
                return conn.getresponse()
            except (ConnectionError, http.client.HTTPException):
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def get(self, path: str, service: str = "lambda", region: str = "us-east-1") -> tuple[int, bytes]:
        """The executor's own reads. moto picks the service, region and account from the credential scope of the
        Authorization header (it checks no signature), so one is made up for the stand-in's access key."""
        auth = (f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/{region}/{service}/aws4_request, "
                "SignedHeaders=host, Signature=0")
        resp = self.request("GET", path, None, {"Host": f"{self.host}:{self.port}", "Authorization": auth})
        return resp.status, resp.read()


class Executor:
    def __init__(self, moto_url: str, state: Path, settings: Settings | None = None):
        self.upstream = Upstream(moto_url)
        self.store = CodeStore(state / "store")
        self.invoker = Invoker(state, self.upstream.get, self.store)
        self.control_plane = ControlPlane(settings or Settings(), self.upstream.get)
        self.invoker.gate = self.control_plane.admit_invoke
        self.function_urls = fidelity.FunctionUrls(self.upstream)
        self.policies = policies.Policies(self.upstream)

    def record(self, method: str, path: str, body: bytes) -> None:
        """Keep the zips of code uploads, and a function's file systems, before moto sees the request."""
        if method == "POST" and CREATE_FUNCTION.match(path):
            doc = _json(body)
            self._keep_code(doc.get("Code") or {})
            self.invoker.record_file_systems(doc.get("FunctionName", ""), doc.get("FileSystemConfigs"))
        elif method == "PUT" and (m := UPDATE_CODE.match(path)):
            self._keep_code(_json(body))
        elif method == "PUT" and (m := UPDATE_CONFIG.match(path)):
            self.invoker.record_file_systems(urllib.parse.unquote(m.group(1)), _json(body).get("FileSystemConfigs"))
        elif method == "POST" and PUBLISH_LAYER.match(path):
            self._keep_code(_json(body).get("Content") or {})
        elif method == "DELETE" and (m := FUNCTION.match(path)):
            self.invoker.forget_function(urllib.parse.unquote(m.group(1)))

    def _keep_code(self, code: dict) -> None:
        if code.get("ZipFile"):
            self.store.put(base64.b64decode(code["ZipFile"]))
        elif code.get("S3Bucket") and code.get("S3Key"):
            key = urllib.parse.quote(code["S3Key"])
            status, data = self.upstream.get(f"/{code['S3Bucket']}/{key}", service="s3")
            if status == 200:
                self.store.put(data)


def handler_class(ex: Executor):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: with Nagle's algorithm the second waits for the peer's delayed
        # ACK, 40 ms a request.
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def _read_body(self) -> bytes:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                parts = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(parts)
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            if req := getattr(self, "lambda_request", None):
                ex.control_plane.tally(req.name, status)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _answer(self, answer: Answer) -> None:
            self._send(answer.status, answer.body, answer.headers)

        def _handle(self) -> None:
            self.lambda_request = None
            body = self._read_body()
            path = self.path.split("?", 1)[0]
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            if path.startswith("/ferry-lambda/"):
                return self._own(path, body)
            if not path.startswith("/moto-api/"):
                ex.control_plane.round_trip()
            req = self.lambda_request = operations.classify(self.command, path, query, self.headers.get("Authorization"))
            if req and (refused := ex.control_plane.before(req, body, query)):
                return self._answer(refused)
            if req and (own := ex.control_plane.own_answer(req, body)):
                return self._answer(own)
            if self.command == "POST" and (m := INVOKE.match(path)):
                headers = {k.lower(): v for k, v in self.headers.items()}
                return self._answer(ex.invoker.invoke(m.group(1), query, headers, body))
            if (answer := ex.function_urls.handle(self.command, path, query, body)
                    or ex.policies.handle(self.command, path, query, body)) is not None:
                status, doc = answer
                headers = {"Content-Type": "application/json"}
                if status >= 400:
                    headers["x-amzn-ErrorType"] = doc["__type"]
                return self._send(status, json.dumps(doc).encode() if status != 204 else b"", headers)
            if self.command == "POST" and (m := fidelity.PUBLISH_VERSION.match(path)):
                if existing := fidelity.unchanged_publish(ex.upstream, m.group(1), body):
                    if req:
                        existing = ex.control_plane.after(req, 201, existing, body, query, new_version=False)
                    return self._send(201, existing, {"Content-Type": "application/json"})
            ex.record(self.command, path, body)
            if self.command == "POST" and path == "/moto-api/reset":
                ex.invoker.reset()  # before moto answers: once the caller sees the reset, no environment is left
                ex.control_plane.reset()
                ex.function_urls.reset()
                ex.policies.reset()
            self._pass_on(body, req if req and req.control_plane else None, query)

        def _pass_on(self, body: bytes, req: operations.Request | None, query: dict[str, list[str]]) -> None:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            if body or self.command in ("POST", "PUT", "PATCH"):
                headers["Content-Length"] = str(len(body))
            resp = ex.upstream.request(self.command, self.path, body if body else None, headers)
            if req is not None or (resp.status == 409 and self.path.startswith("/2015-03-31/")):
                # A Lambda control-plane answer: small JSON, rewritten as Lambda gives it.
                data, answer_headers = resp.read(), resp.getheaders()
                if resp.status == 409:
                    data, answer_headers = fidelity.lambda_conflict(data, answer_headers)
                if req is not None:
                    data = ex.control_plane.after(req, resp.status, data, body, query)
                return self._send(resp.status, data, {k: v for k, v in answer_headers
                                                      if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"})
            length = resp.getheader("Content-Length")
            out = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"]
            self.send_response(resp.status)
            for k, v in out:
                self.send_header(k, v)
            if length is None or self.command == "HEAD":
                data = resp.read()
                self.send_header("Content-Length", length if self.command == "HEAD" and length else str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                return
            self.send_header("Content-Length", length)
            self.end_headers()
            while chunk := resp.read(CHUNK):
                self.wfile.write(chunk)

        def _own(self, path: str, body: bytes) -> None:
            if path == "/ferry-lambda/environments" and self.command == "GET":
                return self._send(200, json.dumps(ex.invoker.environments()).encode(),
                                  {"Content-Type": "application/json"})
            if path == "/ferry-lambda/mounts" and self.command == "POST":
                doc = _json(body)
                root = Path(str(doc.get("local_root", "")))
                if not doc.get("access_point_arn") or not root.is_absolute() or not root.is_dir():
                    return self._send(400, b'{"message": "need access_point_arn and an existing absolute local_root"}',
                                      {"Content-Type": "application/json"})
                ex.invoker.mounts[doc["access_point_arn"]] = root
                return self._send(200, b"{}", {"Content-Type": "application/json"})
            if path == "/ferry-lambda/control-plane" and self.command == "GET":
                return self._answer(json_answer(200, ex.control_plane.describe()))
            if path == "/ferry-lambda/control-plane" and self.command == "POST":
                try:
                    settings = ex.control_plane.configure(_json(body))
                except (ValueError, TypeError) as err:
                    return self._send(400, json.dumps({"message": str(err)}).encode(),
                                      {"Content-Type": "application/json"})
                return self._answer(json_answer(200, settings.to_json()))
            if path == "/ferry-lambda/runtime-release" and self.command == "POST":
                runtime = _json(body).get("runtime")
                if not isinstance(runtime, str) or not runtime:
                    return self._send(400, b'{"message": "need the runtime identifier: {\\"runtime\\": ...}"}',
                                      {"Content-Type": "application/json"})
                return self._answer(json_answer(200, {"runtime": runtime,
                                                      "release": ex.control_plane.runtimes.release(runtime)}))
            if path == "/ferry-lambda/" and self.command == "GET":
                return self._send(200, b'{"status": "ok"}', {"Content-Type": "application/json"})
            self._send(404, b"{}", {"Content-Type": "application/json"})

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

    return Handler


def serve(moto_url: str, port: int, state: Path, settings: Settings | None = None) -> None:
    ex = Executor(moto_url, state, settings)
    server = ThreadingHTTPServer(("127.0.0.1", port), handler_class(ex))
    server.daemon_threads = True
    try:
        server.serve_forever()
    finally:
        ex.invoker.reset()  # every environment stops with the executor
