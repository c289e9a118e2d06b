"""`fruits-ec2`: the instance it launches (moto's EC2, IAM, SSM and S3), and what it refuses."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from fruits.apps import ec2, ec2_cli
from fruits.apps import launch_cli as launch_cli_module
from fruits.gdpr import EU_REGIONS
from tests.conftest import REPO

BUCKET = "fruits-single"
REGION = "eu-west-3"


@pytest.fixture()
def aws(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        # AWS's managed policies (AmazonSSMManagedInstanceCore) exist in moto's IAM.
        "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield


@pytest.fixture()
def small_build(monkeypatch) -> list[str]:
    """A stand-in for `kedro package` and the jars: their names, a few bytes each."""

    def build(project_dir: Path, output_dir: Path) -> list[Path]:
        output_dir.mkdir(parents=True, exist_ok=True)
        names = ("fruits-0.1.0-py3-none-any.whl", "conf-fruits.tar.gz", "requirements-ec2.txt")
        files = [output_dir / name for name in names]
        for file in files:
            file.write_text(file.name)
        (jars := output_dir / "jars").mkdir()
        (jars / "hadoop-aws-3.3.4.jar").write_text("jar")
        return [*files, jars]

    monkeypatch.setattr(ec2, "build_artifacts", build)


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("fruits-ec2")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def launched(capsys) -> tuple[str, str]:
    """The run id and instance id `run` printed."""
    found = re.search(r"^run (\S+): instance (\S+) ", capsys.readouterr().out, re.MULTILINE)
    assert found
    return found[1], found[2]


def test_run_launches_exactly_the_intended_instance(aws, small_build, capsys):
    code = ec2_cli.main(["run", "--bucket", BUCKET, "--prefix", "team/fruits",
                         "--instance-type", "c7i.4xlarge", "--timeout-minutes", "90",
                         "--project-dir", str(REPO)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    run_id, instance_id = launched(capsys)
    client = boto3.client("ec2", region_name=REGION)
    [instance] = client.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"
    ]
    assert instance["InstanceType"] == "c7i.4xlarge"
    assert instance["Placement"]["AvailabilityZone"].startswith(REGION)
    assert instance["MetadataOptions"]["HttpTokens"] == "required"  # IMDSv2 only
    assert instance["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    # The image: the latest Amazon Linux 2023 of AWS's public SSM parameter.
    ami = boto3.client("ssm", region_name=REGION).get_parameter(Name=ec2.AMI_PARAMETER)
    assert instance["ImageId"] == ami["Parameter"]["Value"]
    assert instance["IamInstanceProfile"]["Arn"].endswith(f"instance-profile/{ec2.ROLE_NAME}")
    behaviour = client.describe_instance_attribute(
        InstanceId=instance_id, Attribute="instanceInitiatedShutdownBehavior"
    )
    assert behaviour["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"
    tags = {tag["Key"]: tag["Value"] for tag in instance["Tags"]}
    assert tags["fruits-run"] == run_id and tags["data-residency"] == "eu"
    # Encrypted root volume, deleted with the instance.
    [volume] = client.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}]
    )["Volumes"]
    assert volume["Encrypted"] and volume["Size"] == ec2.ROOT_VOLUME_GB
    [root] = instance["BlockDeviceMappings"]
    assert root["Ebs"]["DeleteOnTermination"]
    # No inbound rule at all; outbound HTTPS only.
    [group] = client.describe_security_groups(GroupIds=[instance["SecurityGroups"][0]["GroupId"]])[
        "SecurityGroups"
    ]
    assert group["GroupName"] == ec2.SECURITY_GROUP_NAME
    assert group["IpPermissions"] == []
    assert [(rule["IpProtocol"], rule["FromPort"], rule["ToPort"])
            for rule in group["IpPermissionsEgress"]] == [("tcp", 443, 443)]  # fmt: skip
    # The user data: the script with this run's settings.
    user_data = client.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    script = base64.b64decode(user_data["UserData"]["Value"]).decode()
    template = (REPO / ec2.USER_DATA_SCRIPT).read_text()
    assert script.startswith("#!/usr/bin/env bash\n# Settings of this run")
    assert script.endswith(template.partition("\n")[2])
    assert f"export FRUITS_RUN_URI=s3://{BUCKET}/team/fruits/logs/ec2/{run_id}" in script
    assert f"data_root=s3a://{BUCKET}/team/fruits/data" in script
    assert "export FRUITS_TIMEOUT_MINUTES=90" in script and "FRUITS_KEEP_ALIVE=0" in script
    # The role: the S3 policy of this bucket and prefix, and Session Manager's.
    iam = boto3.client("iam", region_name=REGION)
    policy = iam.get_role_policy(RoleName=ec2.ROLE_NAME, PolicyName="fruits-s3")["PolicyDocument"]
    resources = json.dumps(policy)
    assert f"arn:aws:s3:::{BUCKET}/team/fruits/data/*" in resources and "PREFIX" not in resources
    attached = iam.list_attached_role_policies(RoleName=ec2.ROLE_NAME)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [ec2.SSM_CORE_POLICY]
    trust = iam.get_role(RoleName=ec2.ROLE_NAME)["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    # Artifacts and the launch record in the bucket.
    s3 = boto3.client("s3", region_name=REGION)
    keys = {obj["Key"] for obj in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert {f"team/fruits/artifacts/{name}" for name in
            ("fruits-0.1.0-py3-none-any.whl", "conf-fruits.tar.gz", "requirements-ec2.txt",
             "jars/hadoop-aws-3.3.4.jar")} <= keys  # fmt: skip
    assert "team/fruits/logs/spark-events/" in keys  # the event log's folder must exist
    record = json.loads(
        s3.get_object(Bucket=BUCKET, Key=f"team/fruits/logs/ec2/{run_id}/launch.json")[
            "Body"
        ].read()
    )
    assert record["instance_id"] == instance_id and record["region"] == REGION


def test_a_second_run_reuses_the_role_and_the_group(aws, small_build, capsys):
    for _ in range(2):
        assert ec2_cli.main(["run", "--bucket", BUCKET, "--project-dir", str(REPO)]) == 0
    client = boto3.client("ec2", region_name=REGION)
    groups = client.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [ec2.SECURITY_GROUP_NAME]}]
    )["SecurityGroups"]
    assert len(groups) == 1
    instances = [i for r in client.describe_instances()["Reservations"] for i in r["Instances"]]
    assert len(instances) == 2


def test_spot_and_keep_alive(aws, small_build, capsys):
    assert ec2_cli.main(["run", "--bucket", BUCKET, "--spot", "--keep-alive",
                         "--project-dir", str(REPO)]) == 0  # fmt: skip
    _, instance_id = launched(capsys)
    client = boto3.client("ec2", region_name=REGION)
    [instance] = client.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"
    ]
    assert instance.get("InstanceLifecycle") == "spot"
    user_data = client.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    assert "FRUITS_KEEP_ALIVE=1" in base64.b64decode(user_data["UserData"]["Value"]).decode()


def test_request_asks_for_one_time_spot_terminated_on_interruption():
    spec = ec2.InstanceSpec(bucket=BUCKET, spot=True, project_dir=REPO)
    request = ec2.instance_request(spec, "ami-1", "#!/bin/bash", "sg-1")
    assert request["InstanceMarketOptions"]["SpotOptions"] == {
        "SpotInstanceType": "one-time",
        "InstanceInterruptionBehavior": "terminate",
    }


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-2", "eu-central-2"])
def test_non_eu_region_is_refused_before_any_client(region, monkeypatch, capsys):
    def no_client(*args, **kwargs):
        raise AssertionError("an AWS client was created")

    monkeypatch.setattr(launch_cli_module, "_client", no_client)
    monkeypatch.setattr(ec2_cli, "_client", no_client)
    assert ec2_cli.main(["run", "--bucket", BUCKET, "--region", region]) == 2
    assert f"AWS region '{region}' is outside the EU" in one_line(capsys)


def test_eu_regions_are_accepted():
    for region in EU_REGIONS:
        spec = ec2.InstanceSpec(bucket=BUCKET, region=region, project_dir=REPO)
        assert ec2.instance_request(spec, "ami-1", "#!/bin/bash", "sg-1")["ImageId"] == "ami-1"


@pytest.mark.parametrize("instance_type", ["c7g.2xlarge", "t4g.large", "m7gd.xlarge"])
def test_graviton_types_are_refused_with_the_fix(instance_type, capsys):
    assert ec2_cli.main(["run", "--bucket", BUCKET, "--instance-type", instance_type]) == 2
    assert "Graviton (arm64)" in one_line(capsys)


def test_status_and_logs_read_the_run_from_the_bucket(aws, small_build, capsys):
    assert ec2_cli.main(["run", "--bucket", BUCKET, "--project-dir", str(REPO)]) == 0
    run_id, instance_id = launched(capsys)
    assert ec2_cli.main(["status", "--bucket", BUCKET]) == 0
    status = capsys.readouterr().out
    assert status.startswith(f"run {run_id}: state launched") and instance_id in status
    assert "instance_state running" in status
    # No log before the instance uploads one: one line saying so.
    assert ec2_cli.main(["logs", "--bucket", BUCKET, "--run-id", run_id]) == 2
    assert f"no log for run {run_id} yet" in one_line(capsys)
    s3 = boto3.client("s3", region_name=REGION)
    run_key = f"fruits/logs/ec2/{run_id}"
    s3.put_object(Bucket=BUCKET, Key=f"{run_key}/run.log", Body=b"[fruits-ec2] kedro run\n")
    s3.put_object(Bucket=BUCKET, Key=f"{run_key}/status.json",
                  Body=b'{"state": "succeeded", "exit_code": 0}')  # fmt: skip
    assert ec2_cli.main(["logs", "--bucket", BUCKET]) == 0
    assert capsys.readouterr().out == "[fruits-ec2] kedro run\n"
    assert ec2_cli.main(["status", "--bucket", BUCKET, "--run-id", run_id]) == 0
    assert "state succeeded, exit_code 0" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("reduction.variance_targt=0.9", "did you mean `variance_target`?"),
        ("raw_image_path=s3a://x/raw", "did you mean `raw_images_path`?"),
        ("reduction.k", "'reduction.k' is not NAME=VALUE"),
        ("reduction.k=5000", "reduction.k=5000: Input should be less than or equal to 1280"),
    ],
)
def test_bad_params_are_refused_before_any_call(params, message, monkeypatch, capsys):
    def no_client(*args, **kwargs):
        raise AssertionError("an AWS client was created")

    monkeypatch.setattr(launch_cli_module, "_client", no_client)
    assert ec2_cli.main(["run", "--bucket", BUCKET, "--params", params,
                         "--project-dir", str(REPO)]) == 2  # fmt: skip
    assert message in one_line(capsys)


def test_status_without_any_run_is_one_line(aws, capsys):
    assert ec2_cli.main(["status", "--bucket", BUCKET]) == 2
    assert "no run under s3://fruits-single/fruits/logs/ec2/" in one_line(capsys)


def test_user_data_fits_ec2s_limit():
    spec = ec2.InstanceSpec(bucket=BUCKET, pipelines="ingestion,featurization", project_dir=REPO)
    user_data = ec2.render_user_data(spec, (REPO / ec2.USER_DATA_SCRIPT).read_text())
    assert len(user_data.encode()) < ec2.USER_DATA_LIMIT


def test_instance_installs_every_pin_with_its_hash(tmp_path):
    built = ec2.artifacts.locked_requirements((REPO / "requirements.lock").read_text())
    pins = [line for line in built.splitlines() if line and not line.startswith(" ")]
    assert any(line.startswith("pyspark==") for line in pins)  # no Spark on a bare instance
    assert all("--hash=" in block for block in built.split("\n    \n"))


def test_user_data_script_passes_shellcheck():
    shellcheck = Path(sys.executable).with_name("shellcheck")
    subprocess.run([str(shellcheck), str(REPO / ec2.USER_DATA_SCRIPT)], check=True)
