"""The control-plane stand-in: where moto answers Lambda's control plane at once, in full and without limits, the
front answers as Lambda does. Per Lambda request, in this order:

  1. round-trip latency (`latency_ms`, every AWS request: a network's, not Lambda's);
  2. the account's request quotas (throttle.py): over them, 429 before anything else happens;
  3. an update in progress (settle.py): another update or a publish meanwhile is a 409;
  4. RevisionId preconditions (revisions.py): a mismatch is a 412;
  5. list parameters (pages.py): MaxItems out of range is a 400;
then moto answers, and its answer is rewritten: RevisionIds, `LastUpdateStatus`, the runtime version, a version's
`State` (idle.py: new versions Pending for `publish_pending_s`, idle ones Inactive after `idle_s`), one page of a
listing. The runtime-management calls, which moto lacks, are answered here (runtimes.py).

Settings come from `python -m lambda_local`'s flags (or FERRY_LAMBDA_* in its environment), AWS's quotas by default;
`POST /ferry-lambda/control-plane` changes them while it runs, and `POST /moto-api/reset` brings back the ones it
started with (and full token buckets), so that one test's settings never leak into the next.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

from . import pages, settle
from .answers import Answer, error_answer
from .answers import json_object as _json
from .operations import Request
from .idle import Idleness
from .revisions import MISMATCH, Revisions
from .runtimes import Runtimes, not_found
from .settle import Settling
from .throttle import Rates, Throttle, retry_after

# moto's one account (every access key maps to it unless MOTO_ACCOUNT_ID says otherwise).
ACCOUNT = os.environ.get("MOTO_ACCOUNT_ID", "123456789012")
UPDATES = ("UpdateFunctionConfiguration", "UpdateFunctionCode")
RUNTIME_MANAGEMENT = ("GetRuntimeManagementConfig", "PutRuntimeManagementConfig")
# Operations blocked while an update of $LATEST is in progress.
BLOCKED_WHILE_UPDATING = (*UPDATES, "PublishVersion")


@dataclass(frozen=True)
class Settings:
    rates: Rates = field(default_factory=Rates)
    settle_s: float = 1.0       # AWS documents no figure; the benchmark uses 1 s
    latency_ms: float = 0.0
    idle_s: float = 0.0         # a version goes Inactive this long after its last invoke (AWS: weeks); 0 = never
    restore_s: float = 1.0      # an Inactive version invoked is Pending this long (AWS documents no figure)
    publish_pending_s: float = 0.0  # a new version is Pending this long after PublishVersion (AWS: no figure)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    def updated(self, doc: dict) -> Settings:
        """These settings with the fields `doc` names replaced (unknown fields are an error)."""
        rates = dict(doc.get("rates") or {})
        scalars = {"settle_s", "latency_ms", "idle_s", "restore_s", "publish_pending_s"}
        unknown = set(doc) - {"rates", *scalars} | set(rates) - set(Rates.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown control-plane settings: {sorted(unknown)}")
        return Settings(rates=dataclasses.replace(self.rates, **{k: float(v) for k, v in rates.items()}),
                        **{name: float(doc.get(name, getattr(self, name))) for name in scalars})


FLAGS = [  # flag, environment variable, where in Settings, help
    ("--rate-get-function", "FERRY_LAMBDA_RATE_GET_FUNCTION", "get_function", "GetFunction requests/s (AWS: 100)"),
    ("--rate-get-policy", "FERRY_LAMBDA_RATE_GET_POLICY", "get_policy", "GetPolicy requests/s (AWS: 15)"),
    ("--rate-control", "FERRY_LAMBDA_RATE_CONTROL", "other",
     "all other control-plane requests together, per second (AWS: 15); 0 = unlimited"),
    ("--burst-s", "FERRY_LAMBDA_BURST_S", "burst_s", "seconds of tokens a bucket holds (1)"),
    ("--settle-s", "FERRY_LAMBDA_SETTLE_S", "settle_s", "seconds an update stays InProgress (1)"),
    ("--latency-ms", "FERRY_LAMBDA_LATENCY_MS", "latency_ms", "round-trip latency of every AWS request (0)"),
    ("--idle-s", "FERRY_LAMBDA_IDLE_S", "idle_s", "seconds without an invoke before a version is Inactive (0: never)"),
    ("--restore-s", "FERRY_LAMBDA_RESTORE_S", "restore_s", "seconds an Inactive version invoked stays Pending (1)"),
    ("--publish-pending-s", "FERRY_LAMBDA_PUBLISH_PENDING_S", "publish_pending_s",
     "seconds a new version stays Pending after PublishVersion (0)"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for flag, env, _, text in FLAGS:
        parser.add_argument(flag, type=float, default=os.environ.get(env), help=f"{text}; env {env}")


def settings_from(args: argparse.Namespace) -> Settings:
    doc: dict = {"rates": {}}
    for flag, _, name, _ in FLAGS:
        value = getattr(args, flag.removeprefix("--").replace("-", "_"))
        if value is not None:
            (doc["rates"] if name in Rates.__dataclass_fields__ else doc)[name] = float(value)
    return Settings().updated(doc)


class ControlPlane:
    def __init__(self, settings: Settings, moto_get):
        self.initial = settings
        self.moto_get = moto_get
        self.revisions = Revisions()
        self.runtimes = Runtimes()
        self.idle = Idleness()
        self._lock = threading.Lock()
        self._answers: dict[str, dict[str, int]] = {}   # operation -> HTTP status -> answers
        self._apply(settings)

    def _apply(self, settings: Settings) -> None:
        self.settings = settings
        self.throttle = Throttle(settings.rates)
        self.settling = Settling(settings.settle_s, self._settled)
        self.idle.configure(settings.idle_s, settings.restore_s, settings.publish_pending_s)

    def _settled(self, key) -> None:
        self.revisions.renew_latest(key)

    # ---- the front's own endpoints ----------------------------------------------------------------------------
    def configure(self, doc: dict) -> Settings:
        with self._lock:
            self._apply(self.settings.updated(doc))
        return self.settings

    def reset(self) -> None:
        """moto was reset: no functions, so no revisions or updates; the settings the front started with."""
        with self._lock:
            self.revisions.reset()
            self.runtimes.reset()
            self.idle.reset()
            self._answers.clear()
            self._apply(self.initial)

    def tally(self, operation: str, status: int) -> None:
        """One answer to a Lambda request (from moto or from here)."""
        with self._lock:
            by_status = self._answers.setdefault(operation, {})
            by_status[str(status)] = by_status.get(str(status), 0) + 1

    def describe(self) -> dict:
        """Settings; requests admitted and throttled per operation; answers per operation and HTTP status."""
        with self._lock:
            answers = {op: dict(by_status) for op, by_status in self._answers.items()}
        return {"settings": self.settings.to_json(), **self.throttle.stats(), "answers": answers}

    def round_trip(self) -> None:
        if self.settings.latency_ms > 0:
            time.sleep(self.settings.latency_ms / 1000)

    # ---- before moto ------------------------------------------------------------------------------------------
    def before(self, req: Request, body: bytes, query: dict[str, list[str]]) -> Answer | None:
        """Lambda's answer where it refuses the request; None to pass it on to moto."""
        if req.control_plane and (wait := self.throttle.admit(req.region, req.name, req.caller)):
            return error_answer(429, "TooManyRequestsException", "Rate exceeded",
                                {"Reason": "CallerRateLimitExceeded"}, {"Retry-After": retry_after(wait)})
        key = (req.region, req.function or "")
        if req.name in BLOCKED_WHILE_UPDATING and self.settling.in_progress(key):
            arn = f"arn:aws:lambda:{req.region}:{ACCOUNT}:function:{req.function}"
            return error_answer(409, "ResourceConflictException", settle.conflict_message(arn))
        if req.name in BLOCKED_WHILE_UPDATING or req.name == "UpdateAlias":
            wanted = _json(body).get("RevisionId")
            if wanted and (current := self._current_revision(req)) is not None and wanted != current:
                return error_answer(412, "PreconditionFailedException", MISMATCH)
        if req.name in pages.LISTINGS:
            try:
                pages.page_size(req.name, query)
                if marker := (query.get("Marker") or [None])[0]:
                    pages.decode_marker(marker)
            except pages.BadRequest as bad:
                return error_answer(400, bad.kind, bad.message)
        return None

    def admit_invoke(self, region: str, function: str, version: str) -> Answer | None:
        """Lambda's refusal of an invoke of an Inactive (or restoring) version; None to run it (idle.py)."""
        return self.idle.admit_invoke((region, function), version)

    def own_answer(self, req: Request, body: bytes) -> Answer | None:
        """The answer to a call moto does not have (the runtime-management calls); None for every other call."""
        if req.name not in RUNTIME_MANAGEMENT:
            return None
        qualifier = req.qualifier or "$LATEST"
        arn = f"arn:aws:lambda:{req.region}:{ACCOUNT}:function:{req.function}:{qualifier}"
        quoted = urllib.parse.quote(req.function or "", safe="")
        status, answer = self.moto_get(f"/2015-03-31/functions/{quoted}/configuration?Qualifier="
                                       f"{urllib.parse.quote(qualifier, safe='')}", region=req.region)
        config = _json(answer)
        if status != 200 or str(config.get("Version") or "$LATEST") != qualifier:
            return not_found(arn)
        key = (req.region, req.function or "")
        runtime = str(config.get("Runtime") or "")
        if req.name == "GetRuntimeManagementConfig":
            return self.runtimes.get(key, qualifier, arn, runtime)
        return self.runtimes.put(key, qualifier, arn, runtime, _json(body))

    def _current_revision(self, req: Request) -> str | None:
        """The revision a precondition is checked against; None where moto will answer (no such function or alias:
        its 404 comes first)."""
        quoted = urllib.parse.quote(req.function or "", safe="")
        key = (req.region, req.function or "")
        if req.name == "UpdateAlias":
            status, body = self.moto_get(f"/2015-03-31/functions/{quoted}/aliases/"
                                         f"{urllib.parse.quote(req.alias or '', safe='')}")
            if status >= 300:  # moto answers GetAlias with 201
                return None
            return self.revisions.alias(key, req.alias or "", _json(body).get("RevisionId"))
        status, _ = self.moto_get(f"/2015-03-31/functions/{quoted}/configuration")
        if status != 200:
            return None
        self.settling.in_progress(key)   # a settled update renews the revision first
        return self.revisions.latest(key)

    # ---- after moto -------------------------------------------------------------------------------------------
    def after(self, req: Request, status: int, answer: bytes, request_body: bytes,
              query: dict[str, list[str]], new_version: bool = True) -> bytes:
        """moto's successful answer to a Lambda control-plane request, as Lambda gives it. `new_version`: False for
        a PublishVersion answered with the version published before (fidelity.py), which leaves `$LATEST` alone."""
        if status >= 300 and req.name != "GetAlias":  # moto answers GetAlias with 201
            return answer
        doc = _json(answer)
        key = (req.region, req.function or "")
        name = req.name
        if name == "CreateFunction":
            key = (req.region, str(doc.get("FunctionName") or _json(request_body).get("FunctionName")))
            self._forget(key)
            self._show_config(key, doc)
        elif name in UPDATES:
            self.revisions.renew_latest(key)
            self.runtimes.updated(key, doc.get("Runtime"))
            self.settling.begin(key)
            self._show_config(key, doc)
        elif name == "PublishVersion":
            if new_version:
                self.revisions.renew_latest(key)
                self.runtimes.published(key, str(doc.get("Version")), doc.get("Runtime"))
                self.idle.published(key, str(doc.get("Version")))
            self._show_config(key, doc)
        elif name == "GetFunction":
            self._show_config(key, doc.get("Configuration") or {})
        elif name == "GetFunctionConfiguration":
            self._show_config(key, doc)
        elif name in ("ListVersionsByFunction", "ListFunctions"):
            doc = pages.paginate(name, doc, query)
            for config in doc.get(pages.LISTINGS[name].field, []):
                # ListFunctions shows no update status and no runtime version (Lambda API reference, ListFunctions:
                # "To get the additional fields (..., RuntimeVersionConfig) for a function or version, use
                # GetFunction"). For ListVersionsByFunction the reference says nothing: its runtime version is left
                # out too, so that Ferry is shown to read it where Lambda documents it.
                self._show_config((req.region, str(config.get("FunctionName"))), config,
                                  status=name == "ListVersionsByFunction", runtime=False)
        elif name == "ListAliases":
            doc = pages.paginate(name, doc, query)
            for alias in doc.get("Aliases", []):
                self.revisions.show_alias(key, alias)
        elif name == "UpdateAlias":
            self.revisions.renew_alias(key, req.alias or "")
            self.revisions.show_alias(key, doc)
        elif name in ("CreateAlias", "GetAlias"):
            self.revisions.show_alias(key, doc)
        elif name == "DeleteFunction":
            self._forget(key)
            return answer
        elif name == "DeleteAlias":
            self.revisions.forget_alias(key, req.alias or "")
            return answer
        else:
            return answer
        return json.dumps(doc).encode()

    def _show_config(self, key, config: dict, status: bool = True, runtime: bool = True) -> None:
        if not config:
            return
        # First the status: an update found settled here renews the revision shown below.
        latest = str(config.get("Version") or "$LATEST") == "$LATEST"
        in_progress = latest and self.settling.in_progress(key)
        if status:
            # A published version has no update of its own: Lambda shows it Successful.
            settle.show_status(config, in_progress)
        self.revisions.show_config(key, config)
        if runtime:   # what listings leave out: the runtime version and the state
            self.runtimes.show_config(key, config)
            self.idle.show_config(key, config)

    def _forget(self, key) -> None:
        self.revisions.forget_function(key)
        self.runtimes.forget_function(key)
        self.idle.forget_function(key)
        self.settling.forget(key)
