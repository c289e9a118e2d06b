"""`fruits-emr`: the cluster request against moto's EMR emulation, and what it refuses."""

import os
import re
import socket
import textwrap
import time
from pathlib import Path

import boto3
import pyspark
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from fruits.apps import aws as aws_calls
from fruits.apps import emr, emr_cli
from fruits.datasets.backbone_weights import OFFICIAL_WEIGHTS_FILE
from fruits.errors import FruitsInputError
from fruits.gdpr import EU_REGIONS, RegionOutsideEUError, require_eu_region
from tests.conftest import REPO, copy_project

BUCKET = "fruits-launch"


def one_line(capsys) -> str:
    """The only line the command wrote on stderr (no traceback, no usage)."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fruits-emr"), err
    return lines[0]


def error_line(capsys) -> str:
    """The command's one line on stderr, among what Kedro logs while reading the conf."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("fruits-emr")]
    assert len(lines) == 1, err
    return lines[0]


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
    emr_cli.main(["deploy", "--bucket", BUCKET, "--prefix", "team/fruits", "--core-nodes", "3",
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
        f"weights_source=s3a://{BUCKET}/team/fruits/models/{OFFICIAL_WEIGHTS_FILE},"
        f"spark_event_log=s3a://{BUCKET}/team/fruits/logs/spark-events",
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
    assert emr_cli.main(["deploy", "--bucket", BUCKET, "--region", region]) == 2
    assert f"AWS region '{region}' is outside the EU" in one_line(capsys)
    with pytest.raises(RegionOutsideEUError):
        emr.cluster_request(emr.ClusterSpec(bucket=BUCKET, region=region, project_dir=REPO))


def test_eu_regions_are_accepted():
    assert {require_eu_region(region) for region in EU_REGIONS} == EU_REGIONS
    assert "eu-west-3" in EU_REGIONS


def lock_entries(text: str) -> dict[str, str]:
    """Each requirement of a lock (or requirements file) by name: its pin and hash lines,
    without comments, as one string."""
    entries = {}
    for block in re.split(r"\n(?=[^\s#])", text):
        lines = [line.strip() for line in block.splitlines()]
        lines = [line for line in lines if line and not line.startswith("#")]
        if lines:
            entries[lines[0].split("==")[0]] = "\n".join(lines)
    return entries


def test_cluster_requirements_pin_everything_but_spark():
    lock = (REPO / "requirements.lock").read_text()
    requirements = lock_entries(emr.emr_requirements(lock))
    assert "pyspark" not in requirements and "py4j" not in requirements
    assert {"kedro", "tensorflow-cpu", "kedro-datasets", "pillow"} <= set(requirements)
    # Every other requirement of the lock, unchanged: its pin and all its hashes.
    assert requirements == {
        name: entry for name, entry in lock_entries(lock).items() if name not in {"pyspark", "py4j"}
    }
    assert all(re.match(r"\S+==\S+ \\\n--hash=sha256:", entry) for entry in requirements.values())


def test_cluster_requirements_drop_a_removed_pin_with_its_hash_lines():
    lock = textwrap.dedent(
        """\
        numpy==2.4.6 \\
            --hash=sha256:aaaa \\
            --hash=sha256:bbbb
            # via pandas
        py4j==0.10.9.7 \\
            --hash=sha256:cccc \\
            --hash=sha256:dddd
            # via pyspark
        PySpark==3.5.5 \\
            --hash=sha256:eeee
            # via fruits (pyproject.toml)
        pyyaml==6.0.3 \\
            --hash=sha256:ffff
            # via kedro
        """
    )
    assert emr.emr_requirements(lock) == textwrap.dedent(
        """\
        numpy==2.4.6 \\
            --hash=sha256:aaaa \\
            --hash=sha256:bbbb
        pyyaml==6.0.3 \\
            --hash=sha256:ffff
        """
    )
    # A pin without a hash would fail only on the cluster (--require-hashes): refused here.
    with pytest.raises(
        FruitsInputError, match=r"pins pillow==13\.0\.0 without a --hash.*make lock"
    ):
        emr.emr_requirements(lock + "pillow==13.0.0\n    # via fruits\n")


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements-dev.lock"])
def test_every_locked_requirement_carries_its_hashes(lock):
    entries = lock_entries((REPO / lock).read_text())
    assert len(entries) > 50
    unhashed = [name for name, entry in entries.items() if "--hash=sha256:" not in entry]
    assert unhashed == []


def _commands(text: str) -> list[str]:
    """The lines of a shell script or Makefile, with continuation lines joined."""
    return re.sub(r"\\\n\s*", " ", text).splitlines()


def test_installs_from_a_lock_require_hashes():
    makefile = _commands((REPO / "Makefile").read_text())
    compiles = [line for line in makefile if "uv pip compile" in line]
    assert len(compiles) == 2 and all("--generate-hashes" in line for line in compiles)
    [venv_install] = [line for line in makefile if "-r requirements-dev.lock" in line]
    assert "--require-hashes" in venv_install
    # The project itself, editable, has no hash: installed on its own, without dependencies.
    [project_install] = [line for line in makefile if "pip install" in line and " -e ." in line]
    assert "--no-deps" in project_install and "-r " not in project_install

    bootstrap = _commands((REPO / "bootstrap" / "emr_bootstrap.sh").read_text())
    pip_installs = [line for line in bootstrap if '/bin/pip" install' in line]
    [requirements] = [line for line in pip_installs if "requirements-emr.txt" in line]
    assert "--require-hashes" in requirements
    # The project's wheel, built by `fruits-emr`, is not in the lock: its own call, no deps.
    [wheel] = [line for line in pip_installs if '"$wheel"' in line]
    assert "--no-deps" in wheel and "requirements-emr.txt" not in wheel


def test_local_pyspark_is_the_spark_of_the_emr_release():
    assert pyspark.__version__ == emr.EMR_SPARK_VERSION
    assert lock_entries((REPO / "requirements.lock").read_text())["pyspark"].startswith(
        "pyspark==3.5.5 \\"
    )


def test_bootstrap_script_passes_shellcheck():
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    shellcheck = Path(sys.executable).with_name("shellcheck")
    subprocess.run([str(shellcheck), str(REPO / "bootstrap" / "emr_bootstrap.sh")], check=True)


def _as_list(value):
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize(
    "name", ["instance-profile-policy.json", "launcher-policy.json", "ec2-launcher-policy.json"]
)
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
            if resource == "arn:aws:s3:::BUCKET" and actions != ["s3:ListBucketMultipartUploads"]:
                # (ListBucketMultipartUploads takes no prefix condition: it names keys of
                # uploads in progress only, what the S3A committers must find and abort.)
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


# The command convention: one line on stderr naming the input and the fix, exit 2 for bad
# input or an AWS error, 130 on Ctrl-C, a traceback only with --verbose; nothing half-done.


@pytest.fixture()
def no_build(monkeypatch):
    """The package must not be built: the launch stops before."""

    def refuse(*args, **kwargs):
        raise AssertionError("the package was built before the input was checked")

    monkeypatch.setattr(emr, "build_artifacts", refuse)


@pytest.fixture()
def small_build(monkeypatch) -> list[str]:
    """A stand-in for `kedro package`: the artifacts' names, a few bytes each."""
    built = []

    def build(project_dir: Path, output_dir: Path) -> list[Path]:
        output_dir.mkdir(parents=True, exist_ok=True)
        names = ("fruits-0.1.0-py3-none-any.whl", "conf-fruits.tar.gz", "emr_bootstrap.sh",
                 "emr_step.py", "requirements-emr.txt")  # fmt: skip
        built.extend(names)
        for name in names:
            (output_dir / name).write_text(name)
        return [output_dir / name for name in names]

    monkeypatch.setattr(emr, "build_artifacts", build)
    return built


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture()
def offline_aws(monkeypatch, tmp_path) -> None:
    """No AWS configuration at all, and every endpoint on a closed port of 127.0.0.1."""
    for key in [key for key in os.environ if key.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    # boto3's default session keeps the credentials it found for the next clients.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    # Fail fast whatever happens: one attempt, one second to connect.
    fast = {"connect_timeout": 1, "retries": {"total_max_attempts": 1}}
    monkeypatch.setattr(aws_calls, "AWS_CLIENT_CONFIG", fast, raising=False)


def test_bare_help_lists_each_command_and_option_with_its_help(capsys):
    assert emr_cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"deploy\s+build, upload and start a cluster", out)
    assert re.search(r"submit\s+upload the current project and add a run", out)
    parser = emr_cli._parser()
    [commands] = [action for action in parser._actions if action.dest == "command"]
    assert set(commands.choices) == {"deploy", "submit"}
    for name, command in commands.choices.items():
        for action in command._actions:
            assert action.help, f"fruits-emr {name} {action.option_strings} has no help"
        assert emr_cli.main([name, "--help"]) == 0
        out = capsys.readouterr().out
        assert "--bucket BUCKET" in out and "the S3 bucket" in out


@pytest.mark.parametrize(
    ("bucket", "problem"),
    [
        ("My_Bucket", "only lower-case letters, digits"),
        ("ab", "3 to 63 characters"),
        ("s3://fruits-launch", "without s3://"),
        ("fruits-launch/team", "no '/'"),
        ("fruits..launch", "two adjacent periods"),
        ("-fruits", "begins and ends with a letter or a digit"),
        ("192.168.1.10", "IP address"),
        ("xn--fruits", "AWS reserves"),
    ],
)
def test_bad_bucket_name_is_refused_before_any_build_or_call(
    bucket, problem, no_build, monkeypatch, capsys
):
    monkeypatch.setattr(boto3, "client", lambda *a, **k: pytest.fail("an AWS client was made"))
    assert emr_cli.main(["deploy", f"--bucket={bucket}", "--project-dir", str(REPO)]) == 2
    line = one_line(capsys)
    assert f"'{bucket}' is not a valid S3 bucket name" in line and problem in line


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["deploy"], "required: --bucket (see `fruits-emr deploy --help`)"),
        ([], "required: {deploy,submit}"),
        (["deploy", "--bucket", BUCKET, "--core-nodes", "0"], "'0' is refused: give a whole"),
        (["deploy", "--bucket", BUCKET, "--idle-timeout", "5"], "from 60 to 604800"),
        (["deploy", "--bucket", BUCKET, "--prefix", "/fruits/"], "'/fruits/' is not a usable"),
        (["submit", "--bucket", BUCKET, "--cluster-id", "x1"], "'x1' is not an EMR cluster id"),
        (["deploy", "--bucket", BUCKET, "--pipelines", "ingestoin"], "did you mean ingestion?"),
        (["deploy", "--bucket", BUCKET, "--project-dir", "/"], "is not the fruits project"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(arguments, expected, no_build, monkeypatch, capsys):
    monkeypatch.setattr(boto3, "client", lambda *a, **k: pytest.fail("an AWS client was made"))
    if "--project-dir" not in arguments and arguments:
        arguments = [*arguments, "--project-dir", str(REPO)]
    assert emr_cli.main(arguments) == 2
    assert expected in one_line(capsys)


def test_missing_credentials_are_one_line_before_any_build(offline_aws, no_build, capsys):
    started = time.perf_counter()
    assert emr_cli.main(["deploy", "--bucket", BUCKET, "--project-dir", str(REPO)]) == 2
    assert time.perf_counter() - started < 10
    line = one_line(capsys)
    assert line.startswith("fruits-emr: no usable AWS credentials")
    assert "AWS_PROFILE" in line and "AWS_ACCESS_KEY_ID" in line


def test_unknown_profile_is_one_line_before_any_build(offline_aws, no_build, monkeypatch, capsys):
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    assert emr_cli.main(["deploy", "--bucket", BUCKET, "--project-dir", str(REPO)]) == 2
    assert one_line(capsys) == (
        "fruits-emr: The config profile (no-such-profile) could not be found: set AWS_PROFILE "
        "to one of `aws configure list-profiles`."
    )


def test_unreachable_aws_is_one_line_before_any_build(offline_aws, no_build, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    started = time.perf_counter()
    assert emr_cli.main(["deploy", "--bucket", BUCKET, "--project-dir", str(REPO)]) == 2
    assert time.perf_counter() - started < 10
    line = one_line(capsys)
    assert re.match(
        r"fruits-emr: cannot reach http://127\.0\.0\.1:\d+/ for sts:GetCallerIdentity", line
    )


def test_verbose_shows_the_traceback(offline_aws, no_build):
    with pytest.raises(aws_calls.AwsCallError, match="no usable AWS credentials"):
        emr_cli.main(["deploy", "--bucket", BUCKET, "--project-dir", str(REPO), "--verbose"])


def test_upper_case_region_is_normalised(aws, small_build, capsys):
    assert emr_cli.main(["deploy", "--bucket", BUCKET, "--region", "EU-WEST-3",
                     "--project-dir", str(REPO)]) == 0  # fmt: skip
    assert "starting in eu-west-3" in capsys.readouterr().out
    client = boto3.client("emr", region_name="eu-west-3")
    [cluster] = client.list_clusters()["Clusters"]
    tags = client.describe_cluster(ClusterId=cluster["Id"])["Cluster"]["Tags"]
    assert {"Key": "data-residency", "Value": "eu"} in tags


def test_missing_bucket_is_one_line_before_any_build(aws, no_build, capsys):
    arguments = ["deploy", "--bucket", "fruits-missing", "--region", "eu-west-1"]
    assert emr_cli.main([*arguments, "--project-dir", str(REPO)]) == 2
    line = one_line(capsys)
    assert line.startswith("fruits-emr: NoSuchBucket on s3://fruits-missing/fruits/: ")
    assert "aws s3 mb s3://fruits-missing --region eu-west-1" in line


def test_aws_refusal_is_one_line_and_creates_no_cluster(aws, small_build, monkeypatch, capsys):
    """S3 refuses the upload (AccessDenied): one line naming the object, no cluster."""

    class Body:
        def stream(self, **_):
            yield (b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code>"
                   b"<Message>Access Denied</Message></Error>")  # fmt: skip

    def deny(request, **_):
        return AWSResponse(request.url, 403, {"Content-Type": "application/xml"}, Body())

    original_client = boto3.client

    def refusing_client(service, *args, **kwargs):
        client = original_client(service, *args, **kwargs)
        if service == "s3":
            client.meta.events.register_first("before-send.s3.PutObject", deny)
        return client

    monkeypatch.setattr(boto3, "client", refusing_client)
    assert emr_cli.main(["deploy", "--bucket", BUCKET, "--project-dir", str(REPO)]) == 2
    assert error_line(capsys) == (
        f"fruits-emr: AccessDenied on s3://{BUCKET}/fruits/artifacts/{small_build[0]}: "
        "Access Denied (bootstrap/iam/ holds the launchers' policies: launcher-policy.json for "
        "fruits-emr, ec2-launcher-policy.json for fruits-ec2)"
    )
    assert original_client("emr", region_name="eu-west-3").list_clusters()["Clusters"] == []


def test_submit_to_a_cluster_that_is_not_live_is_refused_before_any_build(aws, no_build, capsys):
    client = boto3.client("emr", region_name="eu-west-3")
    request = emr.cluster_request(emr.ClusterSpec(bucket=BUCKET, project_dir=REPO))
    cluster_id = client.run_job_flow(**request)["JobFlowId"]
    client.terminate_job_flows(JobFlowIds=[cluster_id])
    capsys.readouterr()
    arguments = ["submit", "--bucket", BUCKET, "--project-dir", str(REPO), "--cluster-id"]
    assert emr_cli.main([*arguments, cluster_id]) == 2
    assert f"cluster {cluster_id} in eu-west-3 is TERMINAT" in one_line(capsys)
    assert emr_cli.main([*arguments, "j-NOSUCHCLUSTER"]) == 2
    assert one_line(capsys).startswith(
        "fruits-emr: InvalidRequestException on cluster j-NOSUCHCLUSTER in eu-west-3: "
    )


@pytest.mark.parametrize(
    ("stage", "told"),
    [
        ("build_artifacts", "nothing was uploaded or created on AWS."),
        ("upload_artifacts", f"the artifacts under s3://{BUCKET}/fruits/artifacts/ may be"),
    ],
)
def test_interrupt_exits_130_with_one_line(stage, told, aws, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(emr, stage, interrupted)
    try:
        code = emr_cli.main(["deploy", "--bucket", BUCKET, "--project-dir", str(REPO)])
    except KeyboardInterrupt:
        pytest.fail("the interrupt escaped with its traceback")
    assert code == 130
    line = error_line(capsys)
    assert line.startswith("fruits-emr: interrupted; ") and told in line
    assert boto3.client("emr", region_name="eu-west-3").list_clusters()["Clusters"] == []
