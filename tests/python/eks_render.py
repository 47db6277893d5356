"""`ferry render --target eks` as the tests run it: the built agent (target/debug/ferry, `cargo test --no-run` or
`cargo build` makes it) on a copy of the render fixture, tests/fixtures/k8s-render/ (a catalog, a platform and a
release manifest, so no registry), offline: no AWS endpoint and no registry is reachable while it runs.

A test changes its copy (`edit`, `append`) and renders it; `render` answers {file name: text} of the one model's
manifests, as the agent wrote them under `<out>/risk-score/`. The snapshots in tests/fixtures/k8s-rendered/ are what
the command in tests/fixtures/k8s-render/ferry.toml's header writes.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "k8s-render"
SNAPSHOTS = REPO / "tests" / "fixtures" / "k8s-rendered"
MODEL = "risk-score"
FERRY = REPO / "target" / "debug" / "ferry"
UNREACHABLE = "http://127.0.0.1:9"


class RenderFailed(Exception):
    """The agent refused to render: its exit code and stderr."""


def ferry() -> Path:
    if not FERRY.exists():
        raise FileNotFoundError(f"{FERRY} is missing: `cargo build -p ferry` first (make test does)")
    return FERRY


class Fixture:
    """A private copy of the render fixture in `directory`."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        for name in ("ferry.toml", "platform.json", "releases.toml"):
            shutil.copy(FIXTURE / name, self.dir / name)

    def edit(self, name: str, old: str, new: str) -> None:
        path = self.dir / name
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{name} has no {old!r}"
        path.write_text(text.replace(old, new), encoding="utf-8")

    def append(self, name: str, text: str) -> None:
        with open(self.dir / name, "a", encoding="utf-8") as f:
            f.write(text)

    def run(self, *args: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_", "FERRY_"))}
        env.update(AWS_ENDPOINT_URL=UNREACHABLE, AWS_REGION="eu-west-1", MLFLOW_TRACKING_URI=UNREACHABLE)
        return subprocess.run([str(ferry()), "render", "--target", "eks", "--catalog", "ferry.toml", "--platform",
                               "platform.json", *args], cwd=self.dir, env=env, capture_output=True, text=True,
                              timeout=60)

    def render(self, out: str = "out") -> dict[str, str]:
        proc = self.run("--out", out)
        if proc.returncode != 0:
            raise RenderFailed(f"exit {proc.returncode}: {proc.stderr}")
        folder = self.dir / out / MODEL
        return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.yaml"))}


def snapshots() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted((SNAPSHOTS / MODEL).glob("*.yaml"))}
