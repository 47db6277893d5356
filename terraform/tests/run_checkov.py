#!/usr/bin/env python3
"""Run checkov on every Terraform module and example; fail on any failed check, parse error or bad skip.

    .venv-checkov/bin/python terraform/tests/run_checkov.py [DIR...]

Checkov runs offline (`--skip-download`, CKV_SKIP_PACKAGE_UPDATE_CHECK=1), with Ferry's own checks beside this
script (checkov_checks/: resources its bundled checks leave unchecked). It exits 0 on files it cannot parse,
so this script reads its JSON summary and fails on `parsing_errors` too. Skips are allowed only as
`#checkov:skip=ID:reason` comments inside the resource they concern, with a real reason; no check is skipped on
the command line. Uses only the standard library, so it runs with checkov's own virtual environment.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

TERRAFORM_DIR = Path(__file__).resolve().parent.parent
EXTERNAL_CHECKS = Path(__file__).resolve().parent / "checkov_checks"
SKIP = re.compile(r"checkov:skip=")
GOOD_SKIP = re.compile(r"^\s*#checkov:skip=(CKV2?_[A-Z0-9]+_\d+):(\S.{9,})$")


def checkov_binary() -> str:
    beside = Path(sys.executable).parent / "checkov"
    if beside.exists():
        return str(beside)
    found = shutil.which("checkov")
    if not found:
        sys.exit("run_checkov: no checkov next to this python or on PATH (make venv creates .venv-checkov)")
    return found


def bad_skip_comments(directory: Path) -> list[str]:
    problems = []
    for path in sorted(directory.rglob("*.tf")):
        if ".terraform" in path.parts:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if SKIP.search(line) and not GOOD_SKIP.match(line):
                problems.append(f"{path.relative_to(TERRAFORM_DIR)}:{number}: skip needs `#checkov:skip=ID:reason` "
                                f"(a reason of 10+ characters) on its own line: {line.strip()}")
    return problems


def run(checkov: str, directory: Path) -> tuple[dict, list[dict], list[dict]]:
    env = dict(os.environ, CKV_SKIP_PACKAGE_UPDATE_CHECK="1", LOG_LEVEL="ERROR")
    proc = subprocess.run(
        [checkov, "-d", str(directory), "--framework", "terraform", "--skip-download", "-o", "json", "--quiet",
         "--external-checks-dir", str(EXTERNAL_CHECKS)],
        capture_output=True, text=True, env=env, cwd=TERRAFORM_DIR,
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"run_checkov: checkov exited {proc.returncode} without a JSON report for {directory}")
    reports = report if isinstance(report, list) else [report]
    summary = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0}
    failed, skipped = [], []
    for r in reports:
        for key in summary:
            summary[key] += int(r.get("summary", {}).get(key, 0))
        failed += r.get("results", {}).get("failed_checks", [])
        skipped += r.get("results", {}).get("skipped_checks", [])
    if proc.returncode not in (0, 1):
        sys.stderr.write(proc.stderr)
        summary["parsing_errors"] += 1  # checkov crashed: treat as unparsed
    return summary, failed, skipped


def main(argv: list[str]) -> int:
    dirs = [Path(a).resolve() for a in argv] or sorted(
        p for p in [*(TERRAFORM_DIR / "modules").iterdir(), *(TERRAFORM_DIR / "examples").iterdir()] if p.is_dir()
    )
    checkov = checkov_binary()
    ok = True
    # One checkov process per directory (a report each), as many at once as there are cores: most of a run is
    # checkov's own start-up, which one directory after another pays a dozen times over.
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        reports = list(pool.map(lambda d: run(checkov, d), dirs))
    for directory, (summary, failed, skipped) in zip(dirs, reports):
        name = directory.relative_to(TERRAFORM_DIR) if directory.is_relative_to(TERRAFORM_DIR) else directory
        problems = bad_skip_comments(directory)
        verdict = "ok"
        if failed or summary["parsing_errors"] or problems or summary["resource_count"] == 0:
            verdict = "FAIL"
            ok = False
        print(f"checkov {name}: {verdict} (passed {summary['passed']}, failed {summary['failed']}, "
              f"skipped {summary['skipped']}, parsing errors {summary['parsing_errors']}, "
              f"resources {summary['resource_count']})")
        if summary["resource_count"] == 0:
            print(f"  no resources found in {name}: nothing was checked")
        for check in failed:
            lines = check.get("file_line_range", ["?", "?"])
            print(f"  FAILED {check['check_id']} {check.get('check_name', '')}\n"
                  f"         {check['resource']} ({check.get('file_path', '?')}:{lines[0]}-{lines[1]})")
        for problem in problems:
            print(f"  {problem}")
        for check in skipped:
            if not check.get("suppress_comment"):
                print(f"  skip without reason: {check['check_id']} on {check['resource']}")
                ok = False
    print(f"checkov: {'all directories pass' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
