"""Which Lambda API operation an HTTP request is, and for which function, region and qualifier.

Lambda's API is REST-JSON (https://docs.aws.amazon.com/lambda/latest/api/API_Operations.html): the operation is the
method and the path, the function is a path segment (a name, a partial or a full ARN). A request is Lambda's when its
SigV4 credential scope names the service `lambda` (moto routes on the same field), so S3, IAM, EFS and STS requests
are never taken for Lambda's.
"""
from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

# Invocations are the data plane: not counted against the control-plane request quotas
# (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html#api-requests).
DATA_PLANE = frozenset({"Invoke", "InvokeAsync", "InvokeWithResponseStream"})

_FN = r"(?P<fn>[^/]+)"
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (method, re.compile(f"^{pattern}$"), name) for method, pattern, name in [
        ("POST", rf"/2015-03-31/functions/{_FN}/invocations", "Invoke"),
        ("POST", rf"/2014-11-13/functions/{_FN}/invoke-async/?", "InvokeAsync"),
        ("POST", rf"/2021-11-15/functions/{_FN}/response-streaming-invocations", "InvokeWithResponseStream"),
        ("GET", r"/2015-03-31/functions/?", "ListFunctions"),
        ("POST", r"/2015-03-31/functions/?", "CreateFunction"),
        ("GET", rf"/2015-03-31/functions/{_FN}", "GetFunction"),
        ("DELETE", rf"/2015-03-31/functions/{_FN}", "DeleteFunction"),
        ("GET", rf"/2015-03-31/functions/{_FN}/configuration", "GetFunctionConfiguration"),
        ("PUT", rf"/2015-03-31/functions/{_FN}/configuration", "UpdateFunctionConfiguration"),
        ("PUT", rf"/2015-03-31/functions/{_FN}/code", "UpdateFunctionCode"),
        ("GET", rf"/2015-03-31/functions/{_FN}/versions", "ListVersionsByFunction"),
        ("POST", rf"/2015-03-31/functions/{_FN}/versions", "PublishVersion"),
        ("GET", rf"/2015-03-31/functions/{_FN}/aliases", "ListAliases"),
        ("POST", rf"/2015-03-31/functions/{_FN}/aliases", "CreateAlias"),
        ("GET", rf"/2015-03-31/functions/{_FN}/aliases/(?P<alias>[^/]+)", "GetAlias"),
        ("PUT", rf"/2015-03-31/functions/{_FN}/aliases/(?P<alias>[^/]+)", "UpdateAlias"),
        ("DELETE", rf"/2015-03-31/functions/{_FN}/aliases/(?P<alias>[^/]+)", "DeleteAlias"),
        ("GET", rf"/2015-03-31/functions/{_FN}/policy", "GetPolicy"),
        ("POST", rf"/2015-03-31/functions/{_FN}/policy", "AddPermission"),
        ("DELETE", rf"/2015-03-31/functions/{_FN}/policy/[^/]+", "RemovePermission"),
        ("POST", rf"/2021-10-31/functions/{_FN}/url", "CreateFunctionUrlConfig"),
        ("GET", rf"/2021-10-31/functions/{_FN}/url", "GetFunctionUrlConfig"),
        ("PUT", rf"/2021-10-31/functions/{_FN}/url", "UpdateFunctionUrlConfig"),
        ("DELETE", rf"/2021-10-31/functions/{_FN}/url", "DeleteFunctionUrlConfig"),
        ("GET", rf"/2021-10-31/functions/{_FN}/urls", "ListFunctionUrlConfigs"),
        ("GET", rf"/2021-07-20/functions/{_FN}/runtime-management-config", "GetRuntimeManagementConfig"),
        ("PUT", rf"/2021-07-20/functions/{_FN}/runtime-management-config", "PutRuntimeManagementConfig"),
    ]
]
_SCOPE = re.compile(r"Credential=(?P<key>[^/]+)/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")


@dataclass(frozen=True)
class Request:
    """One Lambda request: `name` is the operation (`Unknown` for a Lambda path not listed here, which still counts
    as a control-plane request), `function` the bare function name, `qualifier` the version or alias it names,
    `caller` the access key that signed it (one account's users told apart)."""
    name: str
    region: str
    function: str | None = None
    qualifier: str | None = None
    alias: str | None = None
    caller: str = ""

    @property
    def control_plane(self) -> bool:
        return self.name not in DATA_PLANE


def credential_scope(authorization: str | None) -> tuple[str, str, str] | None:
    """(region, service, access key id) of a SigV4 Authorization header; None for an unsigned request."""
    m = _SCOPE.search(authorization or "")
    return (m.group("region"), m.group("service"), m.group("key")) if m else None


def split_function(raw: str) -> tuple[str, str | None]:
    """A FunctionName path segment (`name`, `name:qualifier`, `account:function:name[:q]`, a full ARN) → (name,
    qualifier)."""
    name = urllib.parse.unquote(raw)
    parts = name.split(":")
    if name.startswith("arn:"):
        # arn:aws:lambda:region:account:function:name[:qualifier]
        return parts[6], parts[7] if len(parts) > 7 else None
    if len(parts) >= 3:   # account:function:name[:qualifier]
        return parts[2], parts[3] if len(parts) > 3 else None
    return parts[0], parts[1] if len(parts) > 1 else None


def classify(method: str, path: str, query: dict[str, list[str]], authorization: str | None) -> Request | None:
    """The Lambda operation of a request, or None when the request is not Lambda's."""
    scope = credential_scope(authorization)
    if scope is None or scope[1] != "lambda":
        return None
    region, _, caller = scope
    for route_method, pattern, name in _ROUTES:
        if method == route_method and (m := pattern.match(path)):
            groups = m.groupdict()
            if "fn" not in groups:
                return Request(name, region, caller=caller)
            function, qualifier = split_function(groups["fn"])
            qualifier = (query.get("Qualifier") or [qualifier])[0]
            alias = urllib.parse.unquote(groups["alias"]) if groups.get("alias") else None
            return Request(name, region, function, qualifier, alias, caller)
    return Request("Unknown", region, caller=caller)
