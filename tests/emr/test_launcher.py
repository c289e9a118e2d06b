"""`fruits-emr`: the cluster request against moto's EMR emulation, and what it refuses."""

from pathlib import Path

import boto3
import pyspark
import pytest
from moto import mock_aws

from fruits.apps import emr
from fruits.datasets.backbone_weights import OFFICIAL_WEIGHTS_FILE
from fruits.gdpr import EU_REGIONS, RegionOutsideEUError, require_eu_region
from tests.conftest import REPO, copy_project

BUCKET = "fruits-launch"


@pytest.fixture()
def project_copy(tmp_path) -> Path:
    return copy_project(tmp_path)


@pytest.fixture()
def aws(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-3",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        boto3.client("s3", region_name="eu-west-3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-3"}
        )
        yield


def test_deploy_uploads_artifacts_and_creates_an_eu_transient_cluster(
    aws, project_copy, monkeypatch
):
    sent = []
    original_client = boto3.client

    def recording_client(service, *args, **kwargs):
        client = original_client(service, *args, **kwargs)
        if service == "emr":
            client.meta.events.register(
                "provide-client-params.emr.RunJobFlow", lambda params, **_: sent.append(params)
            )
        return client

    monkeypatch.setattr(boto3, "client", recording_client)
    emr.main(["deploy", "--bucket", BUCKET, "--prefix", "team/fruits", "--core-nodes", "3",
              "--spot-task-nodes", "2", "--project-dir", str(project_copy)])  # fmt: skip

    artifacts = f"s3://{BUCKET}/team/fruits/artifacts"
    uploaded = {
        item["Key"].rsplit("/", 1)[1]
        for item in original_client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]
    }
    assert {"emr_bootstrap.sh", "emr_step.py", "requirements-emr.txt", "conf-fruits.tar.gz",
            "fruits-0.1.0-py3-none-any.whl"} <= uploaded  # fmt: skip

    [request] = sent
    assert request["ReleaseLabel"] == "emr-7.10.0"
    assert request["AutoTerminationPolicy"] == {"IdleTimeout": 3600}
    assert request["Instances"]["KeepJobFlowAliveWhenNoSteps"] is False  # transient
    assert request["LogUri"] == f"s3://{BUCKET}/team/fruits/logs/"
    groups = {group["InstanceRole"]: group for group in request["Instances"]["InstanceGroups"]}
    assert groups["CORE"]["InstanceCount"] == 3 and groups["TASK"]["Market"] == "SPOT"
    [bootstrap] = request["BootstrapActions"]
    assert bootstrap["ScriptBootstrapAction"]["Path"] == f"{artifacts}/emr_bootstrap.sh"
    assert bootstrap["ScriptBootstrapAction"]["Args"][0] == artifacts
    [step] = request["Steps"]
    assert step["ActionOnFailure"] == "TERMINATE_CLUSTER"
    assert step["HadoopJarStep"]["Args"] == [
        "spark-submit", "--deploy-mode", "cluster",
        "--files", f"{artifacts}/conf-fruits.tar.gz",
        f"{artifacts}/emr_step.py",
        "--env", "emr", "--conf-source", "conf-fruits.tar.gz",
        "--params",
        f"data_root=s3a://{BUCKET}/team/fruits/data,raw_images_path=s3a://{BUCKET}/team/fruits/raw,"
        f"weights_source=s3a://{BUCKET}/team/fruits/models/{OFFICIAL_WEIGHTS_FILE}",
    ]  # fmt: skip
    # The venv of conf/emr/globals.yml: where the bootstrap action builds it, what Spark runs.
    assert bootstrap["ScriptBootstrapAction"]["Args"][1] == "/opt/fruits/venv"
    spark_env = request["Configurations"][0]["Configurations"][0]["Properties"]
    assert spark_env["PYSPARK_PYTHON"] == "/opt/fruits/venv/bin/python"
    classifications = {c["Classification"]: c for c in request["Configurations"]}
    # The project's own Spark settings for the emr env, known to YARN before the driver starts.
    defaults = classifications["spark-defaults"]["Properties"]
    assert defaults["spark.executorEnv.PYSPARK_PYTHON"] == "/opt/fruits/venv/bin/python"
    assert defaults["spark.python.worker.reuse"] == "true"
    assert defaults["spark.hadoop.fs.s3a.endpoint.region"] == "eu-west-3"
    # Spark's event log under the bucket and prefix given, in a folder that exists.
    assert defaults["spark.eventLog.dir"] == f"s3a://{BUCKET}/team/fruits/logs/spark-events"
    keys = {
        item["Key"] for item in original_client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]
    }
    assert "team/fruits/logs/spark-events/" in keys
    assert classifications["emrfs-site"]["Properties"]["fs.s3.enableServerSideEncryption"] == "true"

    # moto accepted the request: the cluster exists, in the EU region, with its step.
    client = original_client("emr", region_name="eu-west-3")
    [cluster] = client.list_clusters()["Clusters"]
    described = client.describe_cluster(ClusterId=cluster["Id"])["Cluster"]
    assert described["ReleaseLabel"] == "emr-7.10.0"
    assert client.list_steps(ClusterId=cluster["Id"])["Steps"][0]["Name"].startswith("fruits")
    actions = client.list_bootstrap_actions(ClusterId=cluster["Id"])["BootstrapActions"]
    assert actions[0]["ScriptPath"] == f"{artifacts}/emr_bootstrap.sh"


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-2", "eu-central-2", "ap-south-1"])
def test_non_eu_region_is_refused_before_any_call(region, monkeypatch, capsys):
    def no_aws(*args, **kwargs):
        raise AssertionError("no AWS client may be created for a non-EU region")

    monkeypatch.setattr(boto3, "client", no_aws)
    with pytest.raises(SystemExit) as stopped:
        emr.main(["deploy", "--bucket", BUCKET, "--region", region])
    assert f"AWS region '{region}' is outside the EU" in str(stopped.value)
    with pytest.raises(RegionOutsideEUError):
        emr.cluster_request(emr.ClusterSpec(bucket=BUCKET, region=region, project_dir=REPO))


def test_eu_regions_are_accepted():
    assert {require_eu_region(region) for region in EU_REGIONS} == EU_REGIONS
    assert "eu-west-3" in EU_REGIONS


def test_cluster_requirements_pin_everything_but_spark():
    lock = (REPO / "requirements.lock").read_text()
    requirements = emr.emr_requirements(lock).splitlines()
    names = {line.split("==")[0] for line in requirements}
    assert "pyspark" not in names and "py4j" not in names
    assert {"kedro", "tensorflow-cpu", "kedro-datasets", "pillow"} <= names
    assert all("==" in line for line in requirements)
    lock_pins = {line for line in lock.splitlines() if "==" in line and not line.startswith("#")}
    assert set(requirements) == {
        pin for pin in lock_pins if pin.split("==")[0] not in {"pyspark", "py4j"}
    }


def test_local_pyspark_is_the_spark_of_the_emr_release():
    assert pyspark.__version__ == emr.EMR_SPARK_VERSION
    assert "pyspark==3.5.5" in (REPO / "requirements.lock").read_text().splitlines()


def test_bootstrap_script_passes_shellcheck():
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    shellcheck = Path(sys.executable).with_name("shellcheck")
    subprocess.run([str(shellcheck), str(REPO / "bootstrap" / "emr_bootstrap.sh")], check=True)


def _as_list(value):
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("name", ["instance-profile-policy.json", "launcher-policy.json"])
def test_iam_policies_are_least_privilege(name):
    import json  # noqa: PLC0415

    policy = json.loads((REPO / "bootstrap" / "iam" / name).read_text())
    for statement in policy["Statement"]:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert all(not action.endswith("*") for action in actions), statement
        resources = (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        )
        for resource in resources:
            if resource.startswith("arn:aws:s3"):
                assert resource == "arn:aws:s3:::BUCKET" or resource.startswith(
                    "arn:aws:s3:::BUCKET/PREFIX/"
                )
            if resource == "arn:aws:s3:::BUCKET":
                assert statement["Condition"]["StringLike"]["s3:prefix"] == ["PREFIX/*", "PREFIX"]
            if resource == "*":  # EMR actions: only in EU regions
                regions = statement["Condition"]["StringEquals"]["aws:RequestedRegion"]
                assert set(regions) == EU_REGIONS
    # The cluster may write only under data/ and logs/.
    if name == "instance-profile-policy.json":
        writes = [
            resource
            for statement in policy["Statement"]
            if "s3:PutObject" in statement["Action"]
            for resource in _as_list(statement["Resource"])
        ]
        assert sorted(writes) == [
            "arn:aws:s3:::BUCKET/PREFIX/data/*",
            "arn:aws:s3:::BUCKET/PREFIX/logs/*",
        ]
