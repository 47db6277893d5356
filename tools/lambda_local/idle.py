"""The `State` of published versions, as on Lambda (moto's are always `Active`): new ones that are `Pending` for a
while, idle ones that go `Inactive`.

Lambda developer guide, "Lambda function states": a function (and each published version) shows `State`;
"Inactive – A function becomes inactive when it has been idle long enough for Lambda to reclaim the external
resources that were configured for it. When you try to invoke a function that is inactive, the invocation fails and
Lambda sets the function to pending state until the function resources are recreated." For a VPC function those are
its network interfaces, reclaimed after "several weeks" without an invoke; the failed invoke is 502
`ResourceNotReadyException` ("The function is inactive and its VPC connection is no longer available. Wait for the VPC
connection to reestablish and try again"), and while `Pending` "Lambda does not invoke a function ... Any invocations
... will fail" (409 `ResourceConflictException`). `StateReasonCode` is `Idle` while inactive, `Restoring` while
pending again.

A published version can be `Pending` right after PublishVersion too (the SDKs' `PublishedVersionActive` waiter polls
for its `Active`; SnapStart versions are Pending while their snapshot is taken): here each new version is `Pending`
(`Creating`) for `publish_pending_s`, so a deploy that invokes a version before it is Active meets the 409.

Here a version goes `Inactive` `idle_s` seconds after it was published or last invoked (0, the default: never), and an
invoke of it then starts a restore that takes `restore_s`. `$LATEST` is never made inactive (Ferry never invokes
it). The state shows in GetFunction and GetFunctionConfiguration, not in listings (ListFunctions leaves it out).
"""
from __future__ import annotations

import threading
import time

from .answers import Answer, error_answer

Key = tuple[str, str]   # (region, function name)
NOT_READY = ("The function is inactive and its VPC connection is no longer available. Wait for the VPC connection to "
             "reestablish and try again.")


class Idleness:
    def __init__(self, idle_s: float = 0.0, restore_s: float = 1.0, publish_pending_s: float = 0.0,
                 clock=time.monotonic):
        self.idle_s, self.restore_s, self.publish_pending_s, self.clock = idle_s, restore_s, publish_pending_s, clock
        self._active_at: dict[tuple[Key, str], float] = {}     # last publish or invoke
        # Pending until then, and why: "Creating" (just published) or "Restoring" (was Inactive).
        self._pending: dict[tuple[Key, str], tuple[float, str]] = {}
        self._lock = threading.Lock()

    def configure(self, idle_s: float, restore_s: float, publish_pending_s: float) -> None:
        with self._lock:
            self.idle_s, self.restore_s, self.publish_pending_s = idle_s, restore_s, publish_pending_s

    def _state(self, key: Key, version: str) -> str:
        now = self.clock()
        if (pending := self._pending.get((key, version))) is not None:
            if now < pending[0]:
                return "Pending"
            del self._pending[(key, version)]
            self._active_at[(key, version)] = pending[0]
        since = self._active_at.setdefault((key, version), now)
        return "Inactive" if self.idle_s > 0 and now - since >= self.idle_s else "Active"

    # ---- what the control plane and the invoker tell it -------------------------------------------------------
    def published(self, key: Key, version: str) -> None:
        with self._lock:
            self._active_at[(key, version)] = self.clock()
            if self.publish_pending_s > 0:
                self._pending[(key, version)] = (self.clock() + self.publish_pending_s, "Creating")

    def admit_invoke(self, key: Key, version: str) -> Answer | None:
        """None when the version may run now (its idle time starts again); else Lambda's refusal."""
        if version == "$LATEST":
            return None
        with self._lock:
            state = self._state(key, version)
            if state == "Inactive":
                self._pending[(key, version)] = (self.clock() + self.restore_s, "Restoring")
                return error_answer(502, "ResourceNotReadyException", NOT_READY)
            if state == "Pending":
                return error_answer(409, "ResourceConflictException",
                                    "The operation cannot be performed at this time. The function is currently in "
                                    "the following state: Pending")
            self._active_at[(key, version)] = self.clock()
            return None

    def forget_function(self, key: Key) -> None:
        with self._lock:
            self._active_at = {k: v for k, v in self._active_at.items() if k[0] != key}
            self._pending = {k: v for k, v in self._pending.items() if k[0] != key}

    def reset(self) -> None:
        with self._lock:
            self._active_at.clear()
            self._pending.clear()

    # ---- answers ----------------------------------------------------------------------------------------------
    def show_config(self, key: Key, config: dict) -> None:
        version = str(config.get("Version") or "$LATEST")
        if version == "$LATEST":
            return
        with self._lock:
            state = self._state(key, version)
            why = self._pending.get((key, version), (0.0, "Restoring"))[1]
        config["State"] = state
        if state == "Active":
            config.pop("StateReason", None)
            config.pop("StateReasonCode", None)
        elif state == "Inactive":
            config["StateReason"], config["StateReasonCode"] = "The function is idle.", "Idle"
        elif why == "Creating":
            config["StateReason"], config["StateReasonCode"] = "The function is being created.", "Creating"
        else:
            config["StateReason"], config["StateReasonCode"] = "The function is being restored.", "Restoring"
