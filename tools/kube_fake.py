"""A fake Kubernetes API server for `ferry deploy --target eks`'s tests: the wire protocol of the calls Ferry makes, with
a real server's answer shapes (Status objects, resourceVersion, generation, watch streams), and a Deployment
controller that rolls a new pod template out replica by replica. No Kubernetes API server can be had on this machine
(no kube-apiserver in Debian, no container images); this is what the tests run against instead.

    python tools/kube_fake.py --port-file F --log L [--token T] [--unpullable DIGEST] [--step-seconds S]

Calls served (all under /api/v1 or /apis/<group>/<version>, namespaced):
  PATCH  .../<plural>/<name>?fieldManager=..&force=true   server-side apply (application/apply-patch+yaml)
  GET    .../<plural>/<name>                              one object, or a 404 Status
  GET    .../deployments?watch=true&fieldSelector=metadata.name=N&resourceVersion=RV&timeoutSeconds=S
                                                          a chunked stream of watch events, one JSON object a line
  DELETE .../<plural>/<name>
  GET    .../pods?labelSelector=k=v                       the pods the fake controller would run
Every request is appended to --log as one JSON line (method, path, query, content_type), so tests can count them.
Server-side apply is modelled per field manager: each manager's last applied configuration is kept, and the object
is their merge (maps merged key by key, the later apply winning; anything else replaced), so a field one manager
drops stays while another manager still applies it, and goes (back to its default: a Deployment's replicas to 1)
when none does; a forced apply takes the fields it sets over from every other manager. `dryRun=All` answers what an apply would give, with the live resourceVersion, and stores nothing
(as kube-apiserver's dry-run storage does); a no-op apply keeps the resourceVersion. A Deployment whose pod template
uses an image containing --unpullable never becomes available: its new pod waits in ImagePullBackOff and the
controller reports ProgressDeadlineExceeded (at once: the fake compresses the deadline)."""
from __future__ import annotations

import argparse
import copy
import datetime
import hashlib
import json
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

KINDS = {  # (group/version, plural) -> kind
    ("v1", "services"): "Service",
    ("v1", "pods"): "Pod",
    ("apps/v1", "deployments"): "Deployment",
    ("autoscaling/v2", "horizontalpodautoscalers"): "HorizontalPodAutoscaler",
    ("policy/v1", "poddisruptionbudgets"): "PodDisruptionBudget",
}


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def status(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "details": details or {}, "code": code}


def merge(base: dict, top: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in top.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def strip(other: dict, top: dict) -> dict:
    """`other` without the fields `top` sets: what a forced apply of `top` takes over from another manager."""
    out = copy.deepcopy(other)
    for k, v in top.items():
        if k not in out or k in ("apiVersion", "kind") or (k == "metadata" and not isinstance(v, dict)):
            continue
        if isinstance(v, dict) and isinstance(out[k], dict):
            rest = strip(out[k], v)
            if rest or k == "metadata":
                out[k] = rest
            else:
                del out[k]
        elif k not in ("name", "namespace"):
            del out[k]
    return out


def defaulted(obj: dict) -> dict:
    if obj.get("kind") == "Deployment":
        obj.setdefault("spec", {}).setdefault("replicas", 1)
    return obj


class Store:
    """Objects by (group/version, plural, namespace, name), one resourceVersion counter, a condition for watchers."""

    def __init__(self, unpullable: str | None, step: float):
        self.objects: dict[tuple, dict] = {}
        # key -> {manager: its last applied configuration}, in the order the managers first applied
        self.configs: dict[tuple, dict[str, dict]] = {}
        self.version = 0
        self.changed = threading.Condition()
        self.unpullable = unpullable
        self.step = step

    def bump(self, obj: dict) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)

    def apply(self, key: tuple, body: dict, manager: str, dry_run: bool = False) -> tuple[int, dict]:
        with self.changed:
            old = self.objects.get(key)
            # A forced apply takes over every field it sets from the other managers (a conflict is not modelled:
            # Ferry always forces); its own configuration is the latest.
            configs = {m: strip(c, body) for m, c in self.configs.get(key, {}).items() if m != manager}
            # What the server sets is not part of an applied configuration (status is its own subresource).
            config = {k: v for k, v in copy.deepcopy(body).items() if k != "status"}
            for k in ("uid", "resourceVersion", "creationTimestamp", "generation"):
                config.get("metadata", {}).pop(k, None)
            configs[manager] = config
            merged: dict = {}
            for config in configs.values():
                merged = merge(merged, config)
            obj = defaulted(merged)
            meta = obj.setdefault("metadata", {})
            meta["namespace"] = key[2]
            if old is None:
                meta.update(uid=str(uuid.uuid4()), creationTimestamp=now(), generation=1)
                code = 201
            else:
                for k in ("uid", "creationTimestamp", "resourceVersion"):
                    meta[k] = old["metadata"][k]
                spec_changed = old.get("spec") != obj.get("spec")
                meta["generation"] = old["metadata"]["generation"] + (1 if spec_changed else 0)
                if "status" in old:
                    obj["status"] = old["status"]
                code = 200
                unchanged = {k: v for k, v in old["metadata"].items() if k != "managedFields"} == meta and \
                    {k: v for k, v in old.items() if k != "metadata"} == {k: v for k, v in obj.items() if k != "metadata"}
                if unchanged:
                    if not dry_run:
                        self.configs[key] = configs
                    return 200, old  # a no-op apply changes nothing, not even the resourceVersion
            meta["managedFields"] = [{"manager": m, "operation": "Apply", "apiVersion": obj["apiVersion"],
                                      "time": now(), "fieldsType": "FieldsV1", "fieldsV1": {}} for m in configs]
            if dry_run:
                # As a real server: the would-be object, with the live resourceVersion (nothing was written).
                obj = copy.deepcopy(obj)
                if old is None:
                    obj["metadata"].pop("resourceVersion", None)
                return code, obj
            self.bump(obj)
            self.objects[key] = obj
            self.configs[key] = configs
            self.changed.notify_all()
        if obj["kind"] == "Deployment" and (old is None or meta["generation"] != old["metadata"]["generation"]):
            threading.Thread(target=self.roll_out, args=(key, meta["generation"]), daemon=True).start()
        return code, obj

    def roll_out(self, key: tuple, generation: int) -> None:
        """The Deployment controller: one new replica at a time (maxSurge 1, maxUnavailable 0)."""
        def update(**fields) -> bool:
            with self.changed:
                obj = self.objects.get(key)
                if obj is None or obj["metadata"]["generation"] != generation:
                    return False  # deleted, or a newer spec took over
                obj.setdefault("status", {}).update(fields)
                self.bump(obj)
                self.changed.notify_all()
                return True

        with self.changed:
            obj = copy.deepcopy(self.objects[key])
        want = obj["spec"].get("replicas", 1)
        old_ready = obj.get("status", {}).get("availableReplicas", 0)
        image = obj["spec"]["template"]["spec"]["containers"][0]["image"]
        time.sleep(self.step)
        if not update(observedGeneration=generation, replicas=old_ready + 1, updatedReplicas=0,
                      availableReplicas=old_ready, readyReplicas=old_ready,
                      conditions=[progressing("True", "ReplicaSetUpdated", key[3])]):
            return
        if self.unpullable and self.unpullable in image:
            time.sleep(self.step)
            update(updatedReplicas=1, replicas=old_ready + 1, unavailableReplicas=1,
                   conditions=[progressing("False", "ProgressDeadlineExceeded", key[3])])
            return
        for done in range(1, want + 1):
            time.sleep(self.step)
            old_left = max(0, min(old_ready, want - done))
            if not update(updatedReplicas=done, replicas=done + old_left, availableReplicas=done + old_left,
                          readyReplicas=done + old_left):
                return
        update(replicas=want, updatedReplicas=want, availableReplicas=want, readyReplicas=want,
               conditions=[progressing("True", "NewReplicaSetAvailable", key[3])])

    def pods(self, namespace: str, selector: dict) -> list[dict]:
        with self.changed:
            deployments = [o for k, o in self.objects.items() if k[1] == "deployments" and k[2] == namespace]
        pods = []
        for d in deployments:
            labels = d["spec"]["template"]["metadata"].get("labels", {})
            if any(labels.get(k) != v for k, v in selector.items()):
                continue
            image = d["spec"]["template"]["spec"]["containers"][0]["image"]
            broken = bool(self.unpullable and self.unpullable in image)
            rs = hashlib.sha256(json.dumps(d["spec"]["template"], sort_keys=True).encode()).hexdigest()[:10]
            for i in range(1 if broken else d["spec"].get("replicas", 1)):
                name = f"{d['metadata']['name']}-{rs}-{i:05x}"
                state = ({"waiting": {"reason": "ImagePullBackOff",
                                      "message": f'Back-off pulling image "{image}"'}} if broken
                         else {"running": {"startedAt": now()}})
                pods.append({"apiVersion": "v1", "kind": "Pod",
                             "metadata": {"name": name, "namespace": namespace, "labels": labels},
                             "status": {"phase": "Pending" if broken else "Running",
                                        "conditions": [{"type": "PodScheduled", "status": "True"}],
                                        "containerStatuses": [{"name": "server", "image": image, "imageID": "",
                                                               "ready": not broken, "restartCount": 0,
                                                               "state": state}]}})
        return pods


def progressing(status_: str, reason: str, name: str) -> dict:
    messages = {
        "ReplicaSetUpdated": f'ReplicaSet "{name}" is progressing.',
        "NewReplicaSetAvailable": f'ReplicaSet "{name}" has successfully progressed.',
        "ProgressDeadlineExceeded": f'ReplicaSet "{name}" has timed out progressing.',
    }
    return {"type": "Progressing", "status": status_, "reason": reason, "message": messages[reason],
            "lastUpdateTime": now(), "lastTransitionTime": now()}


def route(path: str) -> tuple[str, str, str, str | None] | None:
    """(group/version, namespace, plural, name or None) of a namespaced resource path."""
    parts = path.strip("/").split("/")
    if parts[:2] == ["api", "v1"]:
        gv, rest = "v1", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        return None
    if len(rest) < 3 or rest[0] != "namespaces" or (gv, rest[2]) not in KINDS:
        return None
    return gv, rest[1], rest[2], rest[3] if len(rest) > 3 else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    store: Store
    token: str | None
    log: Path

    def log_message(self, *args) -> None:
        pass

    def record(self, query: dict) -> None:
        with self.log.open("a") as f:
            f.write(json.dumps({"method": self.command, "path": urlsplit(self.path).path,
                                "query": {k: v[0] for k, v in query.items()},
                                "content_type": self.headers.get("Content-Type"),
                                "status": getattr(self, "answered", 200)}) + "\n")

    def answer(self, code: int, body: dict) -> None:
        self.answered = code
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.answered = 200  # one handler serves every request of a kept-alive connection
        if query.get("watch"):
            # A watch is logged as it starts: it may stream for minutes.
            self.record(query)
            return self.route_request(url, query, body)
        try:
            self.route_request(url, query, body)
        finally:
            self.record(query)

    def route_request(self, url, query: dict, body: bytes) -> None:
        if self.token and self.headers.get("Authorization") != f"Bearer {self.token}":
            return self.answer(401, status(401, "Unauthorized", "Unauthorized"))
        target = route(url.path)
        if target is None:
            return self.answer(404, status(404, "NotFound", "the server could not find the requested resource"))
        gv, namespace, plural, name = target
        group = gv.split("/")[0] if "/" in gv else ""
        details = {"name": name or "", "group": group, "kind": plural}
        not_found = status(404, "NotFound", f'{plural}{"." + group if group else ""} "{name}" not found', details)
        key = (gv, plural, namespace, name)
        q = lambda k: query.get(k, [None])[0]  # noqa: E731
        if self.command == "PATCH" and name:
            if self.headers.get("Content-Type") != "application/apply-patch+yaml":
                return self.answer(415, status(415, "UnsupportedMediaType",
                                               f'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json'))
            if not q("fieldManager"):
                return self.answer(422, status(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'))
            try:
                obj = json.loads(body)
            except ValueError as e:
                return self.answer(400, status(400, "BadRequest", f"error decoding YAML: {e}"))
            if obj.get("apiVersion") != gv or obj.get("kind") != KINDS[(gv, plural)]:
                return self.answer(400, status(400, "BadRequest", f"the API version in the data ({obj.get('apiVersion')}) does not match the expected API version ({gv})"))
            meta = obj.get("metadata", {})
            if meta.get("managedFields"):
                return self.answer(400, status(400, "BadRequest", "metadata.managedFields must be nil"))
            if meta.get("name") != name or meta.get("namespace", namespace) != namespace:
                return self.answer(400, status(400, "BadRequest", "the name of the object does not match the name on the URL"))
            code, stored = self.store.apply(key, obj, q("fieldManager"), dry_run=q("dryRun") == "All")
            return self.answer(code, stored)
        if self.command == "DELETE" and name:
            with self.store.changed:
                obj = self.store.objects.pop(key, None)
                self.store.configs.pop(key, None)
                self.store.changed.notify_all()
            if obj is None:
                return self.answer(404, not_found)
            return self.answer(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                     "details": details})
        if self.command == "GET" and name:
            with self.store.changed:
                obj = copy.deepcopy(self.store.objects.get(key))
            return self.answer(200, obj) if obj else self.answer(404, not_found)
        if self.command == "GET" and plural == "pods":
            selector = dict(p.split("=", 1) for p in (q("labelSelector") or "").split(",") if "=" in p)
            return self.answer(200, {"kind": "PodList", "apiVersion": "v1",
                                     "metadata": {"resourceVersion": str(self.store.version)},
                                     "items": self.store.pods(namespace, selector)})
        if self.command == "GET" and plural == "deployments" and q("watch") in ("true", "1"):
            return self.watch(key[:3], q("fieldSelector") or "", q("resourceVersion") or "0",
                              float(q("timeoutSeconds") or 300))
        return self.answer(405, status(405, "MethodNotAllowed", f"{self.command} is not supported by this fake"))

    def watch(self, prefix: tuple, field_selector: str, since: str, timeout: float) -> None:
        wanted = field_selector.removeprefix("metadata.name=") if field_selector.startswith("metadata.name=") else None
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        last = int(since or 0)
        deadline = time.monotonic() + timeout
        sent_initial = since not in ("", "0")
        try:
            while time.monotonic() < deadline:
                with self.store.changed:
                    events = []
                    for key, obj in self.store.objects.items():
                        if key[:3] != prefix or (wanted and key[3] != wanted):
                            continue
                        rv = int(obj["metadata"]["resourceVersion"])
                        if rv > last or not sent_initial:
                            events.append(("ADDED" if not sent_initial else "MODIFIED", copy.deepcopy(obj)))
                    sent_initial = True
                    if not events:
                        self.store.changed.wait(timeout=min(1.0, max(0.0, deadline - time.monotonic())))
                        continue
                for kind, obj in events:
                    last = max(last, int(obj["metadata"]["resourceVersion"]))
                    line = json.dumps({"type": kind, "object": obj}).encode() + b"\n"
                    self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_PATCH = do_DELETE = do_POST = do_PUT = handle_any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port-file", type=Path, required=True, help="where the chosen port is written")
    parser.add_argument("--log", type=Path, required=True, help="one JSON line per request")
    parser.add_argument("--token", help="the bearer token every request must carry")
    parser.add_argument("--unpullable", help="an image (or digest) whose pods never start")
    parser.add_argument("--step-seconds", type=float, default=0.05, help="the controller's pace per replica")
    args = parser.parse_args(argv)
    Handler.store = Store(args.unpullable, args.step_seconds)
    Handler.token = args.token
    Handler.log = args.log
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    tmp = args.port_file.with_suffix(".tmp")
    tmp.write_text(str(server.server_address[1]))
    tmp.rename(args.port_file)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
