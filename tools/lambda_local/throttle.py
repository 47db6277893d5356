"""Lambda's control-plane request quotas, as token buckets per account and Region.

AWS (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html#api-requests), none of them raisable:
  - GetFunction API requests: 100 per second;
  - GetPolicy API requests: 15 per second;
  - all other control-plane API requests (invocations, GetFunction and GetPolicy excluded): 15 per second, together.
Invocations are the data plane and are not counted here. Over a quota Lambda answers HTTP 429
`TooManyRequestsException`, body `{"Reason": "CallerRateLimitExceeded", "Type": "User", "message": "Rate exceeded"}`
(as Lambda sends it, seen in e.g. fyoorer/ShadowClone#25), and the API model binds `retryAfterSeconds` to the
`Retry-After` header (botocore's lambda/2015-03-31 service model).

AWS does not document a burst; a bucket here holds one second's worth of tokens (`burst_s`), so that a client
sending at the quota's rate is never refused and one sending faster is refused as soon as that second is spent.
Every access key maps to moto's one account, so the buckets are per Region. A refused request takes no token.
What each caller (access key) sent is tallied apart, with its busiest second: a test can tell one user's share of the
account's budget from another's.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

GET_FUNCTION = "GetFunction"
GET_POLICY = "GetPolicy"
OTHER = "control plane"


@dataclass(frozen=True)
class Rates:
    """Requests per second; 0 is unlimited."""
    get_function: float = 100.0
    get_policy: float = 15.0
    other: float = 15.0
    burst_s: float = 1.0

    def of(self, bucket: str) -> float:
        return {GET_FUNCTION: self.get_function, GET_POLICY: self.get_policy}.get(bucket, self.other)


def bucket_of(operation: str) -> str:
    return operation if operation in (GET_FUNCTION, GET_POLICY) else OTHER


class TokenBucket:
    def __init__(self, rate: float, capacity: float, clock=time.monotonic):
        self.rate, self.capacity, self.clock = rate, capacity, clock
        self.tokens, self.stamp = capacity, clock()

    def take(self) -> float:
        """0 when a token was taken; else the seconds until one is there (nothing taken)."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class Throttle:
    def __init__(self, rates: Rates, clock=time.monotonic):
        self.rates, self.clock = rates, clock
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}      # operation -> requests admitted
        self.throttled: dict[str, int] = {}   # operation -> requests refused with 429
        self._callers: dict[str, Caller] = {}

    def admit(self, region: str, operation: str, caller: str = "") -> float:
        """0 when the request may go on; else the seconds the caller should wait (the request is refused)."""
        bucket = bucket_of(operation)
        rate = self.rates.of(bucket)
        with self._lock:
            if rate <= 0:
                wait = 0.0
            else:
                key = (region, bucket)
                if key not in self._buckets:
                    self._buckets[key] = TokenBucket(rate, max(1.0, rate * self.rates.burst_s), self.clock)
                wait = self._buckets[key].take()
            tally = self.throttled if wait else self.counts
            tally[operation] = tally.get(operation, 0) + 1
            self._callers.setdefault(caller, Caller()).tally(operation, bucket, self.clock(), refused=bool(wait))
        return wait

    def reset(self) -> None:
        """Full buckets and no counts (moto was reset: a test starts from an unused budget)."""
        with self._lock:
            self._buckets.clear()
            self.counts.clear()
            self.throttled.clear()
            self._callers.clear()

    def stats(self) -> dict:
        """Per operation, requests admitted and throttled; per caller and quota, the same and its busiest second."""
        with self._lock:
            return {"admitted": dict(self.counts), "throttled": dict(self.throttled),
                    "callers": {c: t.describe() for c, t in self._callers.items()}}


class Caller:
    """One access key's requests: per quota when each admitted one came and how many were refused; per operation
    how many were admitted."""

    def __init__(self):
        self.admitted: dict[str, list[float]] = {}
        self.refused: dict[str, int] = {}
        self.operations: dict[str, int] = {}

    def tally(self, operation: str, bucket: str, now: float, refused: bool) -> None:
        if refused:
            self.refused[bucket] = self.refused.get(bucket, 0) + 1
        else:
            self.admitted.setdefault(bucket, []).append(now)
            self.operations[operation] = self.operations.get(operation, 0) + 1

    def describe(self) -> dict:
        buckets = sorted(set(self.admitted) | set(self.refused))
        quotas = {b: {"admitted": len(self.admitted.get(b, [])), "throttled": self.refused.get(b, 0),
                      "busiest_second": busiest_second(self.admitted.get(b, []))} for b in buckets}
        return {"quotas": quotas, "operations": dict(sorted(self.operations.items()))}


def busiest_second(times: list[float]) -> int:
    """The most of `times` (ascending) within any one second."""
    most, first = 0, 0
    for last, t in enumerate(times):
        while t - times[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def retry_after(wait_s: float) -> str:
    """Retry-After in whole seconds, as the header carries it (at least 1)."""
    return str(max(1, math.ceil(wait_s)))
