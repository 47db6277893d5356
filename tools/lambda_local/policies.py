"""Resource-based policies as Lambda keeps them: one per qualifier. The function (unqualified; `$LATEST` is taken
for it here), each published version and each alias has a policy of its own, and a permission added to an alias
applies to that alias only (Lambda developer guide, resource-based policies; AddPermission's Qualifier). moto files
every alias's statements under one policy for the function (a deploy's v1, v2 and production permissions all
come back from GetPolicy of production), and ignores the Qualifier of RemovePermission. `Policies` answers the
three calls here instead:

- AddPermission (POST /2015-03-31/functions/{name}/policy[?Qualifier=]): adds a statement to that qualifier's policy
  only; a statement id already in it is `ResourceConflictException`; a qualifier that is neither a published version
  nor an alias is `ResourceNotFoundException`; `RevisionId` other than the policy's is `PreconditionFailedException`;
  a policy over 20 KB (Lambda's quota per function resource-based policy) is `PolicyLengthExceededException`.
  It answers 201 {"Statement": "<the statement as JSON>"}.
- GetPolicy (GET .../policy[?Qualifier=]): that qualifier's policy and its RevisionId, nothing of the function's or
  another alias's; none is `ResourceNotFoundException`.
- RemovePermission (DELETE .../policy/{sid}[?Qualifier=&RevisionId=]): removes the statement from that qualifier's
  policy (204); a qualifier without a policy, or a statement id not in its policy, is `ResourceNotFoundException`.

A policy goes with what it is on: DeleteAlias forgets the alias's, DeleteFunction the function's (all of them, or one
version's with a Qualifier), when the request passes through (before moto answers: a delete of something that does
not exist has nothing to forget). The policy's RevisionId here is its own, renewed on every change; AWS does not
document how it relates to the function's or the alias's RevisionId.
"""
from __future__ import annotations

import json
import re
import threading
import urllib.parse
import uuid

from .answers import json_object as _json
from .operations import split_function

POLICY = re.compile(r"^/2015-03-31/functions/([^/]+)/policy/?$")
STATEMENT = re.compile(r"^/2015-03-31/functions/([^/]+)/policy/([^/]+)/?$")
DELETE_ALIAS = re.compile(r"^/2015-03-31/functions/([^/]+)/aliases/([^/]+)/?$")
DELETE_FUNCTION = re.compile(r"^/2015-03-31/functions/([^/]+)/?$")
STATEMENT_ID = re.compile(r"^[a-zA-Z0-9\-_.]{1,100}$")
MAX_POLICY_BYTES = 20 * 1024

# AddPermission's request fields that become a condition: field -> (operator, key).
CONDITIONS = {
    "SourceArn": ("ArnLike", "AWS:SourceArn"),
    "SourceAccount": ("StringEquals", "AWS:SourceAccount"),
    "PrincipalOrgID": ("StringEquals", "aws:PrincipalOrgID"),
    "EventSourceToken": ("StringEquals", "lambda:EventSourceToken"),
    "FunctionUrlAuthType": ("StringEquals", "lambda:FunctionUrlAuthType"),
}


class Refused(Exception):
    """Lambda's error answer to a policy call: its HTTP status and body."""

    def __init__(self, status: int, doc: dict):
        super().__init__(doc["message"])
        self.status, self.doc = status, doc


class Policies:
    """Resource policies by (function name, qualifier); the function's own under qualifier ""."""

    def __init__(self, upstream):
        self.upstream = upstream
        # -> {"statements": [...], "revision": str}; a policy whose last statement is removed is gone.
        self.policies: dict[tuple[str, str], dict] = {}
        self.lock = threading.Lock()

    def reset(self) -> None:
        with self.lock:
            self.policies.clear()

    def handle(self, method: str, path: str, query: dict, body: bytes) -> tuple[int, dict] | None:
        """The answer to a policy call, or None when it is not one (a delete it learns from passes on to moto)."""
        if method == "DELETE" and self._forget(path, query):
            return None
        statement = STATEMENT.match(path) if method == "DELETE" else None
        policy = POLICY.match(path) if method in ("GET", "POST") else None
        if not (statement or policy):
            return None
        try:
            if statement:
                key, _ = self._target(statement.group(1), query)
                return self._remove(key, query, urllib.parse.unquote(statement.group(2)))
            key, arn = self._target(policy.group(1), query)
        except Refused as refused:
            return refused.status, refused.doc
        if method == "GET":
            return self._get(key)
        return self._add(key, arn, _json(body))

    # ---- the calls ----------------------------------------------------------------------------------------------
    def _get(self, key: tuple[str, str]) -> tuple[int, dict]:
        with self.lock:
            policy = self.policies.get(key)
            if not policy:
                return 404, _error("ResourceNotFoundException", "The resource you requested does not exist.")
            return 200, {"Policy": json.dumps(_document(policy)), "RevisionId": policy["revision"]}

    def _add(self, key: tuple[str, str], arn: str, request: dict) -> tuple[int, dict]:
        sid = request.get("StatementId")
        if not isinstance(sid, str) or not STATEMENT_ID.match(sid):
            return 400, _error("ValidationException",
                               f"1 validation error detected: Value '{sid}' at 'statementId' failed to satisfy "
                               "constraint: Member must satisfy regular expression pattern: ([a-zA-Z0-9-_.]+)")
        for field in ("Action", "Principal"):
            if not request.get(field):
                return 400, _error("ValidationException", f"{field} is required")
        statement = {"Sid": sid, "Effect": "Allow", "Principal": _principal(str(request["Principal"])),
                     "Action": request["Action"], "Resource": arn}
        condition: dict[str, dict[str, str]] = {}
        for field, (operator, name) in CONDITIONS.items():
            if request.get(field):
                condition.setdefault(operator, {})[name] = request[field]
        if condition:
            statement["Condition"] = condition
        with self.lock:
            policy = self.policies.get(key) or {"statements": [], "revision": _revision()}
            if (wanted := request.get("RevisionId")) and wanted != policy["revision"]:
                return 412, _error("PreconditionFailedException",
                                   "The Revision Id provided does not match the latest Revision Id. Call the "
                                   "GetPolicy API to retrieve the latest Revision Id")
            if any(s["Sid"] == sid for s in policy["statements"]):
                return 409, _error("ResourceConflictException",
                                   f"The statement id ({sid}) provided already exists. Please provide a new "
                                   "statement id, or remove the existing statement.")
            statements = [*policy["statements"], statement]
            size = len(json.dumps(_document({"statements": statements})).encode())
            if size > MAX_POLICY_BYTES:
                return 400, _error("PolicyLengthExceededException",
                                   f"The final policy size ({size}) is bigger than the limit ({MAX_POLICY_BYTES}).")
            self.policies[key] = {"statements": statements, "revision": _revision()}
        return 201, {"Statement": json.dumps(statement)}

    def _remove(self, key: tuple[str, str], query: dict, sid: str) -> tuple[int, dict]:
        with self.lock:
            policy = self.policies.get(key)
            if not policy:
                return 404, _error("ResourceNotFoundException", "No policy is associated with the given resource.")
            if (wanted := (query.get("RevisionId") or [None])[0]) and wanted != policy["revision"]:
                return 412, _error("PreconditionFailedException",
                                   "The Revision Id provided does not match the latest Revision Id. Call the "
                                   "GetPolicy API to retrieve the latest Revision Id")
            kept = [s for s in policy["statements"] if s["Sid"] != sid]
            if len(kept) == len(policy["statements"]):
                return 404, _error("ResourceNotFoundException", f"Statement {sid} is not found in resource policy.")
            if kept:
                self.policies[key] = {"statements": kept, "revision": _revision()}
            else:
                del self.policies[key]
        return 204, {}

    def _forget(self, path: str, query: dict) -> bool:
        """Forgets the policies a DeleteAlias or DeleteFunction takes with it; True when the request is one."""
        if m := DELETE_ALIAS.match(path):
            name, _ = split_function(m.group(1))
            with self.lock:
                self.policies.pop((name, urllib.parse.unquote(m.group(2))), None)
            return True
        if m := DELETE_FUNCTION.match(path):
            name, qualifier = split_function(m.group(1))
            qualifier = (query.get("Qualifier") or [qualifier])[0]
            with self.lock:
                for key in [k for k in self.policies if k[0] == name and (qualifier is None or k[1] == qualifier)]:
                    del self.policies[key]
            return True
        return False

    # ---- what a request names -----------------------------------------------------------------------------------
    def _target(self, raw_function: str, query: dict) -> tuple[tuple[str, str], str]:
        """((function name, qualifier), the resource's ARN) of a policy call; `Refused` when the function, version or
        alias does not exist."""
        name, in_name = split_function(raw_function)
        qualifier = (query.get("Qualifier") or [in_name])[0] or ""
        if qualifier == "$LATEST":
            qualifier = ""
        quoted = urllib.parse.quote(name, safe="")
        status, body = self.upstream.get(f"/2015-03-31/functions/{quoted}")
        if status != 200:
            raise Refused(404, _error("ResourceNotFoundException", f"Function not found: {name}"))
        unqualified = str(_json(body).get("Configuration", {}).get("FunctionArn", "")).removesuffix(":$LATEST")
        if not qualifier:
            return (name, ""), unqualified
        if qualifier.isdigit():
            exists = self.upstream.get(f"/2015-03-31/functions/{quoted}?Qualifier={qualifier}")[0] == 200
        else:
            path = f"/2015-03-31/functions/{quoted}/aliases/{urllib.parse.quote(qualifier, safe='')}"
            exists = 200 <= self.upstream.get(path)[0] < 300   # moto answers GetAlias with 201
        if not exists:
            raise Refused(404, _error("ResourceNotFoundException", f"Function not found: {unqualified}:{qualifier}"))
        return (name, qualifier), f"{unqualified}:{qualifier}"


def _document(policy: dict) -> dict:
    return {"Version": "2012-10-17", "Id": "default", "Statement": policy["statements"]}


def _principal(principal: str) -> str | dict:
    """A principal as Lambda writes it into the statement: `*`, a service, or an account or IAM ARN."""
    if principal == "*":
        return "*"
    if principal.isdigit():
        return {"AWS": f"arn:aws:iam::{principal}:root"}
    if principal.startswith("arn:"):
        return {"AWS": principal}
    return {"Service": principal}


def _revision() -> str:
    return str(uuid.uuid4())


def _error(code: str, message: str) -> dict:
    return {"__type": code, "Type": "User", "Message": message, "message": message}
