"""What the runtime reads from its environment (docs/contracts.md, section 3)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

TRUE = {"1", "true", "yes", "on"}
FALSE = {"", "0", "false", "no", "off"}


class ConfigError(Exception):
    pass


def parse_bool(name: str, value: str | None) -> bool:
    text = (value or "").strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ConfigError(f"{name}={value!r} is not a boolean (use true or false)")


@dataclass(frozen=True)
class Settings:
    model_name: str
    model_version: str
    model_path: str
    artifact_digest: str = ""
    verify_manifest: bool = False
    spec_hash: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        path = env.get("FERRY_MODEL_PATH", "").strip()
        if not path:
            raise ConfigError("FERRY_MODEL_PATH is not set (the version folder, <mount_path>/<model>/<version>)")
        path = path.rstrip("/") or "/"
        # Name and version default to the last two parts of the path, as the EFS layout lays them out.
        parts = path.split("/")
        return cls(
            model_name=env.get("FERRY_MODEL_NAME", "").strip() or (parts[-2] if len(parts) >= 2 else ""),
            model_version=env.get("FERRY_MODEL_VERSION", "").strip() or parts[-1],
            model_path=path,
            artifact_digest=env.get("FERRY_ARTIFACT_DIGEST", "").strip(),
            verify_manifest=parse_bool("FERRY_VERIFY_MANIFEST", env.get("FERRY_VERIFY_MANIFEST")),
            spec_hash=env.get("FERRY_SPEC_HASH", "").strip(),
        )
