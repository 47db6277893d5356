"""RevisionIds of functions, versions and aliases, and the preconditions that use them, as on Lambda.

Lambda (API reference, FunctionConfiguration.RevisionId, AliasConfiguration.RevisionId): "The latest updated revision
of the function or alias". `UpdateFunctionConfiguration`, `UpdateFunctionCode` and `PublishVersion` take `$LATEST`'s
RevisionId, `UpdateAlias` the alias's, as a precondition: "Only update the function if the revision ID matches the ID
that's specified"; a mismatch is HTTP 412 `PreconditionFailedException`, "The Revision Id provided does not match
the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id".

`$LATEST`'s RevisionId changes
  - on every accepted update of code or configuration;
  - again when that update settles (aws/aws-sdk#377: the id an update answers is gone once the update finished);
  - when a version is published from it (LocalStack, whose Lambda tests are recorded against AWS, renews it there:
    localstack/localstack#7482); an unchanged publish, which publishes nothing, leaves it alone.
A published version's RevisionId never changes; an alias's changes on every UpdateAlias.

moto 5.2.5 gives functions and versions no RevisionId, gives an alias one that never changes, and checks none of the
preconditions: this module keeps all of them and the proxy writes them into moto's answers.
"""
from __future__ import annotations

import threading
import uuid

Key = tuple[str, str]   # (region, function name)

MISMATCH = ("The Revision Id provided does not match the latest Revision Id. "
            "Call the GetFunction/GetAlias API to retrieve the latest Revision Id")


def new_revision() -> str:
    return str(uuid.uuid4())


class Revisions:
    def __init__(self):
        self._latest: dict[Key, str] = {}
        self._versions: dict[tuple[Key, str], str] = {}
        self._aliases: dict[tuple[Key, str], str] = {}
        self._lock = threading.Lock()

    # ---- $LATEST ----------------------------------------------------------------------------------------------
    def latest(self, key: Key) -> str:
        with self._lock:
            return self._latest.setdefault(key, new_revision())

    def renew_latest(self, key: Key) -> str:
        with self._lock:
            self._latest[key] = rid = new_revision()
            return rid

    # ---- published versions and aliases -----------------------------------------------------------------------
    def version(self, key: Key, version: str) -> str:
        with self._lock:
            return self._versions.setdefault((key, version), new_revision())

    def alias(self, key: Key, name: str, moto_revision: str | None = None) -> str:
        with self._lock:
            return self._aliases.setdefault((key, name), moto_revision or new_revision())

    def renew_alias(self, key: Key, name: str) -> str:
        with self._lock:
            self._aliases[(key, name)] = rid = new_revision()
            return rid

    def of(self, key: Key, version: str) -> str:
        return self.latest(key) if version == "$LATEST" else self.version(key, version)

    # ---- forgetting -------------------------------------------------------------------------------------------
    def forget_function(self, key: Key) -> None:
        with self._lock:
            self._latest.pop(key, None)
            self._versions = {k: v for k, v in self._versions.items() if k[0] != key}
            self._aliases = {k: v for k, v in self._aliases.items() if k[0] != key}

    def forget_alias(self, key: Key, name: str) -> None:
        with self._lock:
            self._aliases.pop((key, name), None)

    def reset(self) -> None:
        with self._lock:
            self._latest.clear()
            self._versions.clear()
            self._aliases.clear()

    # ---- answers ----------------------------------------------------------------------------------------------
    def show_config(self, key: Key, config: dict) -> None:
        """A FunctionConfiguration (of `$LATEST` or of a version) with its RevisionId."""
        config["RevisionId"] = self.of(key, str(config.get("Version") or "$LATEST"))

    def show_alias(self, key: Key, alias: dict) -> None:
        alias["RevisionId"] = self.alias(key, str(alias.get("Name")), alias.get("RevisionId"))
