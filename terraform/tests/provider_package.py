"""The pinned npm packages the schema check reads the AWS provider's schema from, fetched with `npm pack`.

`@cdktf/provider-aws` is marked deprecated upstream (CDKTF is being retired): the versions and their sha512
integrity are pinned here, and a tarball that does not match is deleted and refused. Two are checked: the
provider release the modules are written against, and the floor of their `>= 6.0, < 7.0` constraint.

`python provider_package.py fetch DIR` fetches what DIR lacks (`npm pack`: nothing is installed, no script runs).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

PACKAGES = {
    "6.25.0": {
        "spec": "@cdktf/provider-aws@21.22.1",
        "file": "cdktf-provider-aws-21.22.1.tgz",
        "integrity": "sha512-BuSHeaQFUL9l33pBzIMRT7cTQ69AM2mLtijjteCPhVQRmvuhuj9Lvfymf7knAMhYqAT6+Lrls9jiGVW/Us3zrQ==",
    },
    "6.0.0": {
        "spec": "@cdktf/provider-aws@21.0.0",
        "file": "cdktf-provider-aws-21.0.0.tgz",
        "integrity": "sha512-oZ2wvckEEcTEEs3Pbd+rwMy4ZBtgqTcl4v+8J0ax31bzKyOBinC1v73GIXhqviKtcYNvSm26RkFCGOA237Xhvg==",
    },
}
REPO = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = REPO / ".cache" / "terraform-provider-aws"


def cache_dir() -> Path:
    return Path(os.environ.get("FERRY_PROVIDER_SCHEMA_CACHE", DEFAULT_CACHE))


def integrity(path: Path) -> str:
    digest = hashlib.sha512()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def verified(provider: str, directory: Path | None = None) -> Path:
    """The tarball of a pinned provider release, checked against its integrity; an error says how to fetch it."""
    pin = PACKAGES[provider]
    path = (directory or cache_dir()) / pin["file"]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; run `make terraform-provider-schema` (npm pack {pin['spec']})")
    actual = integrity(path)
    if actual != pin["integrity"]:
        raise ValueError(f"{path}: integrity {actual} is not the pinned {pin['integrity']}")
    return path


def fetch(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for provider, pin in PACKAGES.items():
        path = directory / pin["file"]
        if path.is_file() and integrity(path) == pin["integrity"]:
            continue
        path.unlink(missing_ok=True)
        out = subprocess.run(
            ["npm", "pack", pin["spec"], "--pack-destination", str(directory), "--json", "--ignore-scripts"],
            check=True,
            capture_output=True,
            text=True,
        )
        packed = json.loads(out.stdout)[0]
        if packed["filename"] != pin["file"] or packed["integrity"] != pin["integrity"]:
            path.unlink(missing_ok=True)
            raise SystemExit(f"npm pack {pin['spec']}: got {packed['filename']} {packed['integrity']}, pinned {pin['file']} {pin['integrity']}")
        verified(provider, directory)
        print(f"fetched {pin['spec']} (AWS provider {provider}) into {directory}")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "fetch":
        raise SystemExit("usage: provider_package.py fetch DIR")
    fetch(Path(sys.argv[2]))
