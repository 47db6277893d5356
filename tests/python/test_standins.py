"""The stand-ins themselves: the servers answer, and `down` stops every process it started."""
import json

import urllib.request

import standins


def test_up_writes_env_and_platform_and_down_stops_every_process(tmp_path):
    st = standins.up(tmp_path / "local", with_mlflow=False)
    try:
        with urllib.request.urlopen(f"{st.moto_url}/moto-api/", timeout=5) as answer:
            assert answer.status == 200
        # Clients talk to the local Lambda, which passes moto's own API through as well.
        with urllib.request.urlopen(f"{st.aws_url}/moto-api/", timeout=5) as answer:
            assert answer.status == 200
        env = (tmp_path / "local" / "env").read_text()
        assert f"export AWS_ENDPOINT_URL={st.aws_url}\n" in env
        platform = json.loads((tmp_path / "local" / "platform.json").read_text())
        assert platform["efs"]["local_root"] == str(tmp_path / "local" / "efs")
        assert sorted(platform["functions"]) == ["readmission", "risk-score"]
    finally:
        standins.down(tmp_path / "local")
    for pid in st.pids:
        assert not standins.group_alive(pid), f"process group {pid} is still running"
    assert not (tmp_path / "local" / "standins.json").exists()


def test_the_session_stack_serves_mlflow_with_its_artifact_bucket_in_moto(stack):
    with urllib.request.urlopen(f"{stack.mlflow_url}/health", timeout=5) as answer:
        assert answer.status == 200
    s3 = __import__("boto3").client("s3", endpoint_url=stack.aws_url, region_name=stack.region,
                                    aws_access_key_id=standins.ACCESS_KEY, aws_secret_access_key=standins.SECRET_KEY)
    assert standins.BUCKET in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert stack.env()["MLFLOW_S3_ENDPOINT_URL"] == stack.aws_url


def start_for_a_parent(tmp_path):
    """A parent process, and a stack (moto and the local Lambda) started for it with --remove-dir."""
    import subprocess
    import sys

    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    workdir = tmp_path / "stack"
    out = subprocess.run([sys.executable, standins.__file__, "up", "--no-mlflow", "--json", "--remove-dir",
                          "--parent-pid", str(parent.pid), "--dir", str(workdir)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return parent, workdir, json.loads(out.stdout)["pids"]


def wait_until_gone(path, seconds=30):
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and path.exists():
        time.sleep(0.1)
    return not path.exists()


def test_a_stack_started_for_a_parent_with_remove_dir_is_stopped_and_deleted_once_the_parent_is_killed(tmp_path):
    # The Rust integration harness starts a stack per test thread, each holding its own copy of the runtime layer
    # (about 530 MB); a killed or finished test binary must leave neither servers nor that folder behind.
    parent, workdir, pids = start_for_a_parent(tmp_path)
    (workdir / "lambda" / "big").write_bytes(b"x" * 1024)
    assert all(standins.group_alive(p) for p in pids)
    parent.kill()
    parent.wait()
    assert wait_until_gone(workdir), "the stack's folder outlived its parent"
    for pid in pids:
        assert not standins.group_alive(pid), f"process group {pid} is still running"


def test_a_stack_whose_servers_were_stopped_first_is_still_deleted_when_its_parent_ends(tmp_path):
    # The Rust harness stops its servers itself at exit, before the parent is gone: the folder goes all the same.
    import time

    parent, workdir, pids = start_for_a_parent(tmp_path)
    standins.stop_groups(pids)
    time.sleep(1.5)  # the watchdog's poll sees the servers gone before the parent ends
    assert workdir.exists(), "deleted while its parent still runs"
    parent.kill()
    parent.wait()
    assert wait_until_gone(workdir), "the stack's folder outlived its parent"
