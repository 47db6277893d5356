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
