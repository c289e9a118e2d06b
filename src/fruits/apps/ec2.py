"""Run the project on one EC2 instance: package, upload, launch, follow (`fruits-ec2`).

    fruits-ec2 run --bucket my-bucket [--prefix fruits] [--region eu-west-3]
                   [--instance-type c7i.2xlarge] [--spot] [--keep-alive] [--timeout-minutes 240]
    fruits-ec2 status --bucket my-bucket [--run-id RUN]
    fruits-ec2 logs --bucket my-bucket [--run-id RUN]

`run` builds the package, uploads it with the pinned requirements and Spark's S3 jars, and
launches one Amazon Linux 2023 instance whose user data (``bootstrap/ec2_user_data.sh``)
installs them, runs `kedro run --env ec2` on the bucket's layout, uploads its log and status
under ``logs/ec2/<run id>/``, and shuts the instance down (which terminates it), success or
failure, or after a safety timeout. For small and medium volumes one well-sized instance
costs less than a cluster (BENCHMARKS.md, "Sizing").
"""

from __future__ import annotations

import json
import shlex
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fruits.apps import artifacts
from fruits.apps.aws import aws_errors
from fruits.errors import FruitsInputError
from fruits.gdpr import DEFAULT_REGION, require_eu_region

# The latest Amazon Linux 2023 AMI (x86_64), as AWS publishes it in every region.
AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
# 8 vCPUs (Intel, AVX-512 for the CNN), 16 GB: 4,750 images in ~1 min of CNN; see the sizing.
DEFAULT_INSTANCE_TYPE = "c7i.2xlarge"
# Names of what `run` creates once per account and region, then reuses.
ROLE_NAME = "fruits-ec2-run"
SECURITY_GROUP_NAME = "fruits-ec2-no-inbound"
# Session Manager (a shell without SSH or an open port) needs this AWS-managed policy.
SSM_CORE_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
# The instance's S3 permissions: the same as an EMR node's (read inputs, write data/ and logs/).
INSTANCE_POLICY = Path("bootstrap") / "iam" / "instance-profile-policy.json"
USER_DATA_SCRIPT = Path("bootstrap") / "ec2_user_data.sh"
# The user data AWS accepts, before base64.
USER_DATA_LIMIT = 16 * 1024
ROOT_VOLUME_GB = 30
# Where a run's status.json and run.log go, under the prefix.
RUNS_FOLDER = "logs/ec2"
# What the launcher records of a run, beside the instance's status.json and run.log.
LAUNCH_RECORD = "launch.json"
# What the instance installs: everything of the lock (no Spark is provided on a bare instance).
REQUIREMENTS_FILE = "requirements-ec2.txt"
# Spark's S3 connector and committer bindings, and Delta Lake, uploaded from the project's .jars/
# (`make setup`).
S3_JARS = ("hadoop-aws-", "aws-java-sdk-bundle-", "spark-hadoop-cloud_")
JAR_NAMES = (*S3_JARS, "delta/delta-spark_", "delta/delta-storage-")
# A role or instance profile just created is not usable by RunInstances for a few seconds.
PROFILE_PROPAGATION_SECONDS = 60


def new_run_id() -> str:
    """A run's id: its UTC start time, sortable (the latest run is the greatest)."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True)
class InstanceSpec:
    """What the instance is and what it runs."""

    bucket: str
    prefix: str = "fruits"
    region: str = DEFAULT_REGION
    instance_type: str = DEFAULT_INSTANCE_TYPE
    spot: bool = False
    keep_alive: bool = False
    timeout_minutes: int = 240
    pipelines: str | None = None
    # More `kedro run --params`, after the bucket's layout (e.g. reduction.k=50).
    extra_params: str | None = None
    run_id: str = field(default_factory=new_run_id)
    tags: dict[str, str] = field(default_factory=lambda: {"project": "fruits"})
    project_dir: Path = field(default_factory=Path.cwd)

    @property
    def s3_root(self) -> str:
        return f"s3a://{self.bucket}/{self.prefix}"

    @property
    def artifacts_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}/artifacts"

    @property
    def run_key(self) -> str:
        """The run's folder (status.json, run.log) in the bucket."""
        return f"{self.prefix}/{RUNS_FOLDER}/{self.run_id}"

    @property
    def run_params(self) -> str:
        """The bucket's layout, then ``extra_params`` (which may override it)."""
        layout = artifacts.run_params(self.project_dir, self.s3_root)
        return f"{layout},{self.extra_params}" if self.extra_params else layout

    @property
    def spark_settings(self) -> dict[str, str]:
        return artifacts.spark_settings(self.project_dir, "ec2", self.s3_root)


def require_x86_instance_type(instance_type: str) -> str:
    """``instance_type`` if the x86_64 AMI runs on it (Graviton types, e.g. c7g, are refused)."""
    family = instance_type.split(".", 1)[0]
    if "." not in instance_type or not family[:1].isalpha():
        raise FruitsInputError(
            f"'{instance_type}' is not an EC2 instance type: give one such as "
            f"{DEFAULT_INSTANCE_TYPE}."
        )
    generation = family.lstrip("abcdefghijklmnopqrstuvwxyz")
    if generation[:1].isdigit() and "g" in generation[1:].split("-")[0]:
        raise FruitsInputError(
            f"'{instance_type}' is a Graviton (arm64) type; the run installs x86_64 wheels and "
            f"AMI: choose an Intel or AMD type such as {DEFAULT_INSTANCE_TYPE} or c7a.2xlarge."
        )
    return instance_type


def check_run_params(spec: InstanceSpec) -> None:
    """Refuse, before anything is launched, run-time names the configuration does not know
    (a typo in ``--params`` would otherwise fail on the instance minutes later).

    Raises:
        FruitsInputError: A malformed item or an unknown name, with the closest known one.
    """
    from omegaconf import OmegaConf  # noqa: PLC0415

    from fruits.config import ProjectConfigLoader  # noqa: PLC0415 - the run's own checks
    from fruits.params import validate_parameters  # noqa: PLC0415
    from fruits.settings import CONFIG_LOADER_ARGS  # noqa: PLC0415

    items = [item.strip() for item in spec.run_params.split(",") if item.strip()]
    malformed = [item for item in items if not item.partition("=")[0].strip() or "=" not in item]
    if malformed:
        raise FruitsInputError(
            f"--params: '{malformed[0]}' is not NAME=VALUE (e.g. reduction.k=50)."
        )
    runtime_params = OmegaConf.to_container(OmegaConf.from_dotlist(items))
    conf = str(spec.project_dir / "conf")
    loader = ProjectConfigLoader(
        conf, env="ec2", runtime_params=runtime_params, **CONFIG_LOADER_ARGS
    )
    validate_parameters(loader["parameters"])


def render_user_data(spec: InstanceSpec, script: str) -> str:
    """The instance's user data: ``script`` with the run's settings after its first line.

    Raises:
        FruitsInputError: The result is over EC2's 16 KB limit.
    """
    settings = {
        "FRUITS_ARTIFACTS": spec.artifacts_uri,
        "FRUITS_RUN_URI": f"s3://{spec.bucket}/{spec.run_key}",
        "FRUITS_RUN_PARAMS": spec.run_params,
        "FRUITS_PIPELINES": spec.pipelines or "",
        "FRUITS_TIMEOUT_MINUTES": str(spec.timeout_minutes),
        "FRUITS_KEEP_ALIVE": "1" if spec.keep_alive else "0",
        "AWS_DEFAULT_REGION": spec.region,
    }
    shebang, _, body = script.partition("\n")
    lines = [f"export {name}={shlex.quote(value)}" for name, value in settings.items()]
    user_data = "\n".join([shebang, "# Settings of this run (fruits-ec2 run).", *lines, body])
    if len(user_data.encode()) > USER_DATA_LIMIT:
        raise FruitsInputError(
            f"the user data is {len(user_data.encode())} bytes, over EC2's {USER_DATA_LIMIT}: "
            "shorten bootstrap/ec2_user_data.sh."
        )
    return user_data


def instance_policy(project_dir: Path, spec: InstanceSpec) -> str:
    """The instance role's policy: ``bootstrap/iam/instance-profile-policy.json`` for this
    bucket and prefix."""
    text = (project_dir / INSTANCE_POLICY).read_text()
    return text.replace("BUCKET", spec.bucket).replace("PREFIX", spec.prefix)


def instance_request(
    spec: InstanceSpec, image_id: str, user_data: str, security_group_id: str
) -> dict[str, Any]:
    """Arguments of EC2's RunInstances for this run."""
    require_eu_region(spec.region)
    tags = {**spec.tags, "Name": f"fruits-{spec.run_id}", "fruits-run": spec.run_id}
    tag_list = [{"Key": key, "Value": value} for key, value in tags.items()]
    tag_list.append({"Key": "data-residency", "Value": "eu"})
    request: dict[str, Any] = {
        "ImageId": image_id,
        "InstanceType": spec.instance_type,
        "MinCount": 1,
        "MaxCount": 1,
        "UserData": user_data,
        "IamInstanceProfile": {"Name": ROLE_NAME},
        "SecurityGroupIds": [security_group_id],
        # The run ends with `shutdown`: the instance is then terminated, never left stopped.
        "InstanceInitiatedShutdownBehavior": "terminate",
        # IMDSv2 only (session tokens), one hop: a container on the instance cannot reach it.
        "MetadataOptions": {
            "HttpTokens": "required",
            "HttpPutResponseHopLimit": 1,
            "HttpEndpoint": "enabled",
        },
        "BlockDeviceMappings": [
            {
                "DeviceName": "/dev/xvda",
                "Ebs": {
                    "VolumeSize": ROOT_VOLUME_GB,
                    "VolumeType": "gp3",
                    "Encrypted": True,
                    "DeleteOnTermination": True,
                },
            }
        ],
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tag_list},
            {"ResourceType": "volume", "Tags": tag_list},
        ],
    }
    if spec.spot:
        # A one-time spot request: an interrupted run is terminated, not resumed half-way.
        request["InstanceMarketOptions"] = {
            "MarketType": "spot",
            "SpotOptions": {
                "SpotInstanceType": "one-time",
                "InstanceInterruptionBehavior": "terminate",
            },
        }
    return request


def build_artifacts(project_dir: Path, output_dir: Path) -> list[Path]:
    """`kedro package`, the pinned requirements, Spark's S3 and Delta jars (folder ``jars``)."""
    built = artifacts.package_project(project_dir, output_dir)
    requirements = output_dir / REQUIREMENTS_FILE
    requirements.write_text(
        artifacts.locked_requirements((project_dir / "requirements.lock").read_text())
    )
    built.append(requirements)
    jars = output_dir / "jars"
    jars.mkdir()
    for name in JAR_NAMES:
        found = sorted((project_dir / ".jars").glob(f"{name}*.jar"))
        if not found:
            raise FruitsInputError(
                f"no {name}*.jar in {project_dir / '.jars'}: run `make setup`, which fetches "
                "Spark's S3 and Delta jars."
            )
        shutil.copy2(found[-1], jars)
    built.append(jars)
    return built


def ensure_instance_profile(iam: Any, spec: InstanceSpec) -> bool:
    """The instance role and profile ``ROLE_NAME`` with this run's S3 policy; True if created.

    The role's inline policy is (re)written for the bucket and prefix of this run.
    """
    created = False
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    with aws_errors(f"iam role {ROLE_NAME}", spec.region):
        try:
            iam.get_role(RoleName=ROLE_NAME)
        except iam.exceptions.NoSuchEntityException:
            iam.create_role(
                RoleName=ROLE_NAME,
                AssumeRolePolicyDocument=json.dumps(trust),
                Description="fruits-ec2: one run of the fruits pipelines on one instance",
                Tags=[{"Key": key, "Value": value} for key, value in spec.tags.items()],
            )
            iam.attach_role_policy(RoleName=ROLE_NAME, PolicyArn=SSM_CORE_POLICY)
            created = True
        iam.put_role_policy(
            RoleName=ROLE_NAME,
            PolicyName="fruits-s3",
            PolicyDocument=instance_policy(spec.project_dir, spec),
        )
        try:
            iam.get_instance_profile(InstanceProfileName=ROLE_NAME)
        except iam.exceptions.NoSuchEntityException:
            iam.create_instance_profile(InstanceProfileName=ROLE_NAME)
            iam.add_role_to_instance_profile(InstanceProfileName=ROLE_NAME, RoleName=ROLE_NAME)
            created = True
    return created


def ensure_security_group(ec2: Any, spec: InstanceSpec) -> str:
    """The id of a security group without any inbound rule, outbound HTTPS only (S3, PyPI,
    the package repositories; DNS and the metadata service are not filtered by groups)."""
    with aws_errors(f"ec2 security group {SECURITY_GROUP_NAME}", spec.region):
        found = ec2.describe_security_groups(
            Filters=[{"Name": "group-name", "Values": [SECURITY_GROUP_NAME]}]
        )["SecurityGroups"]
        if found:
            return found[0]["GroupId"]
        group_id = ec2.create_security_group(
            GroupName=SECURITY_GROUP_NAME,
            Description="fruits-ec2: no inbound rule; outbound HTTPS only",
        )["GroupId"]
        ec2.revoke_security_group_egress(
            GroupId=group_id,
            IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
        )
        ec2.authorize_security_group_egress(
            GroupId=group_id,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 443,
                    "ToPort": 443,
                    "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "HTTPS"}],
                }
            ],
        )
    return group_id


def latest_image_id(ssm: Any, region: str) -> str:
    """The latest Amazon Linux 2023 AMI of ``region``, from AWS's public SSM parameter."""
    with aws_errors(f"ssm parameter {AMI_PARAMETER} in {region}", region):
        return ssm.get_parameter(Name=AMI_PARAMETER)["Parameter"]["Value"]


def run_instance(ec2: Any, request: dict[str, Any], profile_created: bool) -> str:
    """RunInstances, retried while a just-created instance profile propagates; the id."""
    deadline = time.monotonic() + (PROFILE_PROPAGATION_SECONDS if profile_created else 0)
    while True:
        try:
            with aws_errors(f"ec2:RunInstances in {request['InstanceType']}"):
                return ec2.run_instances(**request)["Instances"][0]["InstanceId"]
        except FruitsInputError as error:
            if "iamInstanceProfile" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(5)


def write_launch_record(s3: Any, spec: InstanceSpec, record: dict[str, Any]) -> None:
    """The run's ``launch.json``: what was launched (the instance writes ``status.json``)."""
    key = f"{spec.run_key}/{LAUNCH_RECORD}"
    with aws_errors(f"s3://{spec.bucket}/{key}", spec.region):
        s3.put_object(
            Bucket=spec.bucket,
            Key=key,
            Body=json.dumps(record, indent=2).encode(),
            ServerSideEncryption="AES256",
            ContentType="application/json",
        )


def latest_run_id(s3: Any, bucket: str, prefix: str, region: str) -> str:
    """The id of the most recent run under ``prefix``.

    Raises:
        FruitsInputError: No run there.
    """
    runs_prefix = f"{prefix}/{RUNS_FOLDER}/"
    with aws_errors(f"s3://{bucket}/{runs_prefix}", region):
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=runs_prefix, Delimiter="/"
        )
        runs = [
            common["Prefix"][len(runs_prefix) :].rstrip("/")
            for page in pages
            for common in page.get("CommonPrefixes", [])
        ]
    if not runs:
        raise FruitsInputError(
            f"no run under s3://{bucket}/{runs_prefix}: start one with `fruits-ec2 run`."
        )
    return max(runs)


def read_run_file(s3: Any, bucket: str, key: str, region: str) -> bytes | None:
    """The bytes of a run's file, or None if the instance has not written it yet."""
    with aws_errors(f"s3://{bucket}/{key}", region):
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None


def instance_state(ec2: Any, instance_id: str, region: str) -> str:
    """The EC2 state of the run's instance (``running``, ``terminated``...)."""
    with aws_errors(f"ec2 instance {instance_id} in {region}", region):
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]["State"]["Name"] if reservations else "unknown"
