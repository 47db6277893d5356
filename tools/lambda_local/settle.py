"""Updates of `$LATEST` that take time to settle, as on Lambda.

"When you update a function, Lambda provisions an instance of the function and its supporting resources. ... During
this time, you can't modify the function" (https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html):
after `UpdateFunctionConfiguration` or `UpdateFunctionCode`, `LastUpdateStatus` is `InProgress` (reason code
`Creating`), then `Successful`; meanwhile another update or a publish fails with HTTP 409
`ResourceConflictException`, "The operation cannot be performed at this time. An update is in progress for resource:
<function ARN>" (the message Lambda sends, e.g. lumigo-io/SAR-measure-cold-start#16). AWS documents no duration (for
VPC functions support has said up to a minute; the SDK's FunctionUpdatedV2 waiter polls GetFunction every 1 s, up to
300 times): here it is `settle_s`, the same for every update.

An update settles lazily: the first request that looks at the function after its deadline sees it settled, and
`on_settled` runs once for it then (revisions.py renews `$LATEST`'s RevisionId there, as Lambda does).
"""
from __future__ import annotations

import threading
import time
from typing import Callable

Key = tuple[str, str]   # (region, function name)

IN_PROGRESS = {"LastUpdateStatus": "InProgress", "LastUpdateStatusReason": "The function is being created.",
               "LastUpdateStatusReasonCode": "Creating"}


class Settling:
    def __init__(self, settle_s: float, on_settled: Callable[[Key], None], clock=time.monotonic):
        self.settle_s, self.on_settled, self.clock = settle_s, on_settled, clock
        self._deadlines: dict[Key, float] = {}
        self._lock = threading.Lock()

    def begin(self, key: Key) -> None:
        """An update of `key` was accepted now."""
        if self.settle_s <= 0:
            return
        with self._lock:
            self._deadlines[key] = self.clock() + self.settle_s

    def in_progress(self, key: Key) -> bool:
        with self._lock:
            deadline = self._deadlines.get(key)
            if deadline is None:
                return False
            if self.clock() < deadline:
                return True
            del self._deadlines[key]
        self.on_settled(key)
        return False

    def forget(self, key: Key) -> None:
        with self._lock:
            self._deadlines.pop(key, None)

    def reset(self) -> None:
        with self._lock:
            self._deadlines.clear()


def show_status(config: dict, in_progress: bool) -> None:
    """A `$LATEST` configuration as Lambda shows it: InProgress with its reason, or Successful without one."""
    if in_progress:
        config.update(IN_PROGRESS)
    else:
        config["LastUpdateStatus"] = "Successful"
        config.pop("LastUpdateStatusReason", None)
        config.pop("LastUpdateStatusReasonCode", None)


def conflict_message(function_arn: str) -> str:
    return f"The operation cannot be performed at this time. An update is in progress for resource: {function_arn}"
