"""The served set: the explicit list of deployed versions an EKS server serves, and nothing else.

A Deployment's pod template carries it (templates/k8s/deployment.yaml.hbs renders it from the deployed versions), so a
new approval or a retirement changes the template and rolls out a new ReplicaSet; a folder on the file system that is
not listed is never served, approved or not. The document (JSON):

    {"schema_version": 1,
     "versions": [{"model": "risk-score", "version": "2", "path": "/mnt/models/risk-score/2",
                   "artifact_digest": "<64 hex, optional: the approved digest, checked with FERRY_VERIFY_MANIFEST>"}]}

It is read from exactly one of: FERRY_SERVED_SET (the document itself), FERRY_SERVED_SET_FILE (a file holding it), or
FERRY_MODEL_PATH (a served set of that one version, named as the Lambda handler names it: config.Settings). Every
problem is a ConfigError that starts with the source and names the field and the reason.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping

from .config import ConfigError, Settings
from .loader import TMP_PREFIX

SCHEMA_VERSION = 1
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
VERSION_RE = re.compile(r"^[1-9][0-9]{0,8}$")
DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
ENTRY_KEYS = {"model", "version", "path", "artifact_digest"}
SOURCES = ("FERRY_SERVED_SET", "FERRY_SERVED_SET_FILE", "FERRY_MODEL_PATH")


@dataclass(frozen=True)
class ServedVersion:
    model: str
    version: str
    path: str
    artifact_digest: str = ""

    @property
    def route(self) -> str:
        return f"/models/{self.model}/v{self.version}/invocations"

    @property
    def label(self) -> str:
        return f"{self.model} v{self.version}"


def from_env(env: Mapping[str, str] | None = None) -> tuple[ServedVersion, ...]:
    """The served set from the one source the environment sets."""
    env = os.environ if env is None else env
    if env.get("FERRY_MODELS_ROOT", "").strip():
        raise ConfigError("FERRY_MODELS_ROOT is no longer read: the server serves only its served set; list the "
                          "deployed versions in FERRY_SERVED_SET (see runtime/README.md)")
    given = [name for name in SOURCES if env.get(name, "").strip()]
    if not given:
        raise ConfigError("set FERRY_SERVED_SET (the served set as JSON), FERRY_SERVED_SET_FILE (a file holding it) "
                          "or FERRY_MODEL_PATH (one version folder)")
    if len(given) > 1:
        raise ConfigError(f"{' and '.join(given)} are set: the served set comes from exactly one of them, not more "
                          "than one")
    source = given[0]
    if source == "FERRY_SERVED_SET":
        return parse(env[source], source)
    if source == "FERRY_SERVED_SET_FILE":
        path = env[source].strip()
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as err:
            raise ConfigError(f"FERRY_SERVED_SET_FILE={path}: cannot read: {err.strerror or err}") from None
        return parse(text, path)
    single = Settings.from_env(env)
    return (ServedVersion(single.model_name, single.model_version, single.model_path, single.artifact_digest),)


def parse(text: str, source: str) -> tuple[ServedVersion, ...]:
    """The served set of a JSON document; `source` (a variable or file name) starts every error message."""
    def fail(field: str, reason: str) -> ConfigError:
        return ConfigError(f"{source}: {field} {reason}")

    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{source}: is not JSON: {err.msg} (line {err.lineno}, column {err.colno})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: must be a JSON object with schema_version and versions")
    for key in sorted(set(doc) - {"schema_version", "versions"}):
        raise fail(key, "is an unknown key (allowed: schema_version, versions)")
    if "schema_version" not in doc:
        raise fail("schema_version", f"is missing (write \"schema_version\": {SCHEMA_VERSION})")
    if doc["schema_version"] != SCHEMA_VERSION:
        raise fail(f"schema_version = {json.dumps(doc['schema_version'])}",
                   f"is not supported: this runtime reads only schema_version {SCHEMA_VERSION}")
    if "versions" not in doc:
        raise fail("versions", "is missing (the list of deployed versions to serve)")
    versions = doc["versions"]
    if not isinstance(versions, list):
        raise fail("versions", "must be a list of {model, version, path} objects")
    if not versions:
        raise fail("versions", "is empty: a server serves at least one version")
    served: list[ServedVersion] = []
    seen: set[tuple[str, str]] = set()
    for i, item in enumerate(versions):
        entry = _entry(item, f"versions[{i}]", fail)
        if (entry.model, entry.version) in seen:
            raise fail(f"versions[{i}]", f"repeats an entry: {entry.label} is listed twice")
        seen.add((entry.model, entry.version))
        served.append(entry)
    return tuple(served)


def _entry(item: Any, where: str, fail) -> ServedVersion:
    if not isinstance(item, dict):
        raise fail(where, "must be an object {model, version, path[, artifact_digest]}")
    for key in sorted(set(item) - ENTRY_KEYS):
        raise fail(f"{where}.{key}", f"is an unknown key (allowed: {', '.join(sorted(ENTRY_KEYS))})")
    for key in ("model", "version", "path"):
        if key not in item:
            raise fail(f"{where}.{key}", "is missing")
        if not isinstance(item[key], str):
            raise fail(f"{where}.{key} = {json.dumps(item[key])}", "must be a string")
    model, version, path = item["model"], item["version"], item["path"]
    if not NAME_RE.match(model) or model.startswith(TMP_PREFIX):
        raise fail(f"{where}.model = {model!r}", "is not a model name (1-128 letters, digits, '.', '_' or '-', "
                                                  "starting with a letter or digit)")
    if not VERSION_RE.match(version):
        raise fail(f"{where}.version = {version!r}", "is not a registry version (1-9 digits, no leading zero)")
    if not path.startswith("/"):
        raise fail(f"{where}.path = {path!r}", "must be an absolute path")
    if os.path.normpath(path) != path or "//" in path:
        raise fail(f"{where}.path = {path!r}", "must be normalised (no '.', '..', '//' or trailing '/')")
    if path.split("/")[-2:] != [model, version]:
        raise fail(f"{where}.path = {path!r}",
                   f"must end in /{model}/{version} (the EFS layout <mount>/<model>/<version>)")
    digest = item.get("artifact_digest")
    if digest is None:
        digest = ""
    elif not isinstance(digest, str) or not DIGEST_RE.match(digest):
        raise fail(f"{where}.artifact_digest = {json.dumps(digest)}",
                   "must be the artifact digest: 64 lowercase hex characters (or null)")
    return ServedVersion(model, version, path, digest)
