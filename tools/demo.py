#!/usr/bin/env python3
"""`make demo`: the whole thread on this machine, with local stand-ins for AWS (moto) and the registry (MLflow).

1. starts the stand-ins and creates the local platform (bucket, one function per model, an EFS folder);
2. trains and registers 3 versions of `risk-score` and 2 of `readmission` (custom PythonModels), approves
   risk-score v1 and v2 and readmission v1 with Ferry's approval tags, and points `production` at risk-score v1;
3. runs `ferry plan` and `ferry deploy`;
4. answers a prediction through every deployed alias with the AWS CLI (`aws lambda invoke --qualifier v<N>`): the
   local Lambda runs that version's own code and layer on its runtime's Python, with its published environment and the
   EFS folder mounted read-only, so what is shown is what was deployed;
5. approves risk-score v3, shows the plan (one new alias), deploys again, and lists the audit records;
6. prints `ferry status` and where to look next. `make demo-down` stops the servers.

Re-runnable: each run starts from empty stand-ins in DIR.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import standins  # noqa: E402

CATALOG = ROOT / "examples" / "ferry.toml"


def banner(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}", flush=True)


class Demo:
    def __init__(self, workdir: Path, ferry: Path):
        self.dir = workdir.resolve()
        self.ferry_bin = ferry.resolve()
        self.env: dict[str, str] = {}

    def run(self, cmd: list[str], check: bool = True, capture: bool = False) -> subprocess.CompletedProcess:
        env = dict(os.environ, **self.env)
        proc = subprocess.run(cmd, env=env, cwd=ROOT, text=True, capture_output=capture)
        if check and proc.returncode != 0:
            if capture:
                sys.stderr.write(proc.stdout + proc.stderr)
            raise SystemExit(f"demo: `{' '.join(map(str, cmd))}` exited {proc.returncode}")
        return proc

    def python(self, *args: str, capture: bool = False) -> subprocess.CompletedProcess:
        return self.run([sys.executable, *args], capture=capture)

    def ferry(self, *args: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess:
        base = [str(self.ferry_bin), "--catalog", str(CATALOG), "--platform", str(self.dir / "platform.json")]
        return self.run(base + list(args), check=check, capture=capture)

    def start(self) -> None:
        banner("1. local stand-ins: moto (AWS) and MLflow (registry)")
        standins.down(self.dir)
        if self.dir.exists():
            shutil.rmtree(self.dir)
        started = time.monotonic()
        st = standins.up(self.dir)
        self.env = st.env()
        print(f"AWS (local Lambda in front of moto) {st.aws_url}, MLflow {st.mlflow_url} (up in "
              f"{time.monotonic() - started:.1f} s); env in {self.dir / 'env'}; function logs in {self.dir / 'lambda/logs'}")
        self.python("tools/local_platform.py", "--platform", str(self.dir / "platform.json"))
        print(f"EFS stand-in: {self.dir / 'efs'}")

    def register(self) -> None:
        banner("2. three versions of risk-score, two of readmission, registered through MLflow's client")
        self.python("tools/registry_fixture.py", "register", "--model", "risk-score", "--versions", "3",
                    "--approve", "1,2", "--ticket", "QA-812", "--alias", "production=1", capture=True)
        self.python("tools/registry_fixture.py", "register", "--model", "readmission", "--versions", "2",
                    "--approve", "1", "--ticket", "QA-815", capture=True)
        print("approved: risk-score v1 v2 (QA-812), readmission v1 (QA-815); not approved: risk-score v3, "
              "readmission v2; registry alias production -> risk-score v1")

    def deploy(self) -> None:
        banner("3. ferry plan, then ferry deploy")
        self.ferry("plan", check=False)
        self.ferry("deploy")

    def aliases(self) -> dict[str, list[str]]:
        import boto3
        lam = boto3.client("lambda", endpoint_url=self.env["AWS_ENDPOINT_URL"], region_name=self.env["AWS_REGION"],
                           aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                           aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"])
        platform = json.loads((self.dir / "platform.json").read_text())
        return {function: sorted(a["Name"] for a in lam.list_aliases(FunctionName=function)["Aliases"])
                for _, function in sorted(platform["functions"].items())}

    def predict(self) -> dict[str, dict[str, object]]:
        banner("4. a prediction through every deployed alias: aws lambda invoke --qualifier <alias>")
        platform = json.loads((self.dir / "platform.json").read_text())
        models = {function: model for model, function in platform["functions"].items()}
        aws = str(Path(sys.executable).parent / "aws")
        answers: dict[str, dict[str, object]] = {}
        for function, aliases in self.aliases().items():
            model = models[function]
            payload = ROOT / "examples" / "smoke" / f"{model}.json"
            for alias in aliases:
                out = self.dir / f"answer-{model}-{alias}.json"
                proc = self.run([aws, "lambda", "invoke", "--function-name", function, "--qualifier", alias,
                                 "--payload", f"file://{payload}",
                                 str(out)], capture=True)
                meta = json.loads(proc.stdout)
                answer = json.loads(out.read_text())
                if meta.get("FunctionError") or "predictions" not in answer:
                    raise SystemExit(f"demo: {function}:{alias} answered {answer} ({meta})")
                answers.setdefault(model, {})[alias] = answer["predictions"]
                print(f"{model:<12} {alias:<11} Lambda version {meta.get('ExecutedVersion')}, model version "
                      f"{answer.get('version')}: {json.dumps(answer['predictions'])}")
        v1, v2 = answers["risk-score"]["v1"], answers["risk-score"]["v2"]
        print("risk-score v1 and v2 answer differently, and both stay live." if v1 != v2 else
              "WARNING: v1 and v2 gave the same answer")
        return answers

    def approve_more(self) -> None:
        banner("5. approve risk-score v3 and deploy again: one new alias, nothing else touched")
        self.python("tools/registry_fixture.py", "approve", "--name", "risk-score", "--version", "3",
                    "--ticket", "QA-830")
        self.ferry("plan", check=False)
        self.ferry("deploy")
        import boto3
        s3 = boto3.client("s3", endpoint_url=self.env["AWS_ENDPOINT_URL"], region_name=self.env["AWS_REGION"],
                          aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"])
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=standins.BUCKET, Prefix="ferry/audit/").get("Contents", [])]
        print("audit records (never overwritten):")
        for key in sorted(keys):
            print(f"  s3://{standins.BUCKET}/{key}")

    def finish(self) -> None:
        banner("6. ferry status")
        self.ferry("status")
        print(f"""
Next:
  source {self.dir}/env        # point the AWS CLI, boto3 and ferry at the stand-ins
  target/debug/ferry --catalog examples/ferry.toml --platform {self.dir}/platform.json plan
  aws lambda invoke --function-name ferry-local-risk-score --qualifier v2 \\
      --payload file://examples/smoke/risk-score.json --log-type Tail answer.json   # with the run's log
  ls {self.dir}/efs/risk-score/2   # a synced, verified, frozen version folder
  make demo-down   # stop moto and MLflow""")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=ROOT / ".ferry-local")
    parser.add_argument("--ferry", type=Path, default=ROOT / "target" / "debug" / "ferry")
    parser.add_argument("--summary", type=Path, help="write the predictions per alias as JSON here")
    args = parser.parse_args(argv)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "runtime"), os.environ.get("PYTHONPATH")]))
    demo = Demo(args.dir, args.ferry)
    demo.start()
    demo.register()
    demo.deploy()
    answers = demo.predict()
    demo.approve_more()
    demo.finish()
    if args.summary:
        args.summary.write_text(json.dumps(answers, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
