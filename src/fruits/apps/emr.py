"""Run the project on AWS EMR: package, upload, create a cluster or add a step (`fruits-emr`).

    fruits-emr deploy --bucket my-bucket [--prefix fruits] [--region eu-west-3] [--core-nodes 2]
    fruits-emr submit --bucket my-bucket --cluster-id j-XXXX [--pipelines ingestion,featurization]

`deploy` builds the package, uploads it with the bootstrap action and entry script, and
creates a transient cluster that runs the pipelines once and terminates (lowest cost);
`--keep-alive` keeps it up (auto-terminated when idle). `submit` adds a run to a live cluster.
Every AWS call happens after the region has been checked to be in the EU.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fruits.apps import artifacts
from fruits.gdpr import DEFAULT_REGION, require_eu_region

# Spark 3.5.5, the pyspark pinned in requirements.lock, with S3A as the default S3 connector.
RELEASE_LABEL = "emr-7.10.0"
EMR_SPARK_VERSION = "3.5.5"
# Spark and its Py4J come with EMR; the bootstrap must never install them.
PROVIDED_BY_EMR = ("pyspark", "py4j")
# The Spark setting naming the Python of the executors (the bootstrap action's venv).
PYTHON_SETTING = "spark.executorEnv.PYSPARK_PYTHON"


@dataclass(frozen=True)
class ClusterSpec:
    """What the cluster is made of and how long it lives."""

    bucket: str
    prefix: str = "fruits"
    region: str = DEFAULT_REGION
    instance_type: str = "m5.xlarge"
    core_nodes: int = 2
    spot_task_nodes: int = 0
    idle_timeout_seconds: int = 3600
    run_pipeline: bool = True
    keep_alive: bool = False
    pipelines: str | None = None
    service_role: str = "EMR_DefaultRole"
    instance_profile: str = "EMR_EC2_DefaultRole"
    tags: dict[str, str] = field(default_factory=lambda: {"project": "fruits"})
    # The project whose conf/ gives the S3 layout and the Spark settings.
    project_dir: Path = field(default_factory=Path.cwd)

    @property
    def artifacts_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}/artifacts"

    @property
    def s3_root(self) -> str:
        """The AWS environments' ``s3_root`` for this bucket and prefix."""
        return f"s3a://{self.bucket}/{self.prefix}"

    @property
    def run_params(self) -> str:
        """`kedro run --params` placing every dataset of the emr env under this bucket/prefix."""
        return artifacts.run_params(self.project_dir, self.s3_root)

    @property
    def spark_settings(self) -> dict[str, str]:
        """The project's Spark settings for this cluster (its cluster's spark-defaults)."""
        return artifacts.spark_settings(self.project_dir, "emr", self.s3_root)


def emr_requirements(lock_text: str) -> str:
    """The pins of ``requirements.lock`` for the cluster's venv: all but Spark and Py4J."""
    return artifacts.locked_requirements(lock_text, PROVIDED_BY_EMR)


def build_artifacts(project_dir: Path, output_dir: Path) -> list[Path]:
    """`kedro package`, plus the bootstrap script, entry script and cluster requirements."""
    built = artifacts.package_project(project_dir, output_dir)
    for script in ("emr_bootstrap.sh", "emr_step.py"):
        built.append(Path(shutil.copy2(project_dir / "bootstrap" / script, output_dir)))
    requirements = output_dir / "requirements-emr.txt"
    requirements.write_text(emr_requirements((project_dir / "requirements.lock").read_text()))
    built.append(requirements)
    return built


def upload_artifacts(s3_client: Any, built: list[Path], spec: ClusterSpec) -> None:
    """Put every artifact under ``s3://<bucket>/<prefix>/artifacts/`` and create the
    Spark event log's folder."""
    artifacts.upload_artifacts(s3_client, built, spec, spec.spark_settings)


def spark_step(spec: ClusterSpec) -> dict[str, Any]:
    """The EMR step: spark-submit of the packaged project in cluster mode, `--env emr`."""
    arguments = [
        "spark-submit",
        "--deploy-mode", "cluster",
        "--files", f"{spec.artifacts_uri}/conf-fruits.tar.gz",
        f"{spec.artifacts_uri}/emr_step.py",
        "--env", "emr",
        "--conf-source", "conf-fruits.tar.gz",
        "--params", spec.run_params,
    ]  # fmt: skip
    if spec.pipelines:
        arguments += ["--pipelines", spec.pipelines]
    return {
        "Name": "fruits: kedro run --env emr",
        "ActionOnFailure": "CONTINUE" if spec.keep_alive else "TERMINATE_CLUSTER",
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": arguments},
    }


def cluster_request(spec: ClusterSpec) -> dict[str, Any]:
    """Arguments of EMR's RunJobFlow for this job."""
    require_eu_region(spec.region)
    instance_groups = [
        {"Name": "master", "InstanceRole": "MASTER", "Market": "ON_DEMAND",
         "InstanceType": spec.instance_type, "InstanceCount": 1},
        {"Name": "core", "InstanceRole": "CORE", "Market": "ON_DEMAND",
         "InstanceType": spec.instance_type, "InstanceCount": spec.core_nodes},
    ]  # fmt: skip
    if spec.spot_task_nodes:
        instance_groups.append(
            {"Name": "task-spot", "InstanceRole": "TASK", "Market": "SPOT",
             "InstanceType": spec.instance_type, "InstanceCount": spec.spot_task_nodes}
        )  # fmt: skip
    spark_settings = spec.spark_settings
    python = spark_settings[PYTHON_SETTING]
    # AWS_DEFAULT_REGION: s3fs (reports, weights) talks to the EU region directly.
    python_env = {
        "PYSPARK_PYTHON": python,
        "PYSPARK_DRIVER_PYTHON": python,
        "AWS_DEFAULT_REGION": spec.region,
    }
    return {
        "Name": f"fruits-{spec.prefix.replace('/', '-')}",
        "ReleaseLabel": RELEASE_LABEL,
        "Applications": [{"Name": "Spark"}],
        "LogUri": f"s3://{spec.bucket}/{spec.prefix}/logs/",
        "Instances": {
            "InstanceGroups": instance_groups,
            "KeepJobFlowAliveWhenNoSteps": spec.keep_alive or not spec.run_pipeline,
            "TerminationProtected": False,
        },
        "BootstrapActions": [
            {
                "Name": "fruits python environment",
                "ScriptBootstrapAction": {
                    "Path": f"{spec.artifacts_uri}/emr_bootstrap.sh",
                    "Args": [spec.artifacts_uri, str(Path(python).parent.parent)],
                },
            }
        ],
        "Configurations": [
            {
                "Classification": "spark-env",
                "Configurations": [{"Classification": "export", "Properties": python_env}],
            },
            # The project's own Spark settings for the emr env (conf/base + conf/emr), known
            # to YARN before the driver starts.
            {
                "Classification": "spark-defaults",
                "Properties": {
                    **spark_settings,
                    "spark.yarn.appMasterEnv.AWS_DEFAULT_REGION": spec.region,
                },
            },
            # Delta Lake's jars (EMR 7.10: Delta 3.3.0) on the classpath of Spark; the session's
            # Delta settings come from conf/base/spark.yml, the Python API from the lock.
            {"Classification": "delta-defaults", "Properties": {"delta.enabled": "true"}},
            # EMR writes s3:// and s3a:// through EMRFS: encrypt server-side (SSE-S3).
            {
                "Classification": "emrfs-site",
                "Properties": {"fs.s3.enableServerSideEncryption": "true"},
            },
        ],
        "Steps": [spark_step(spec)] if spec.run_pipeline else [],
        "AutoTerminationPolicy": {"IdleTimeout": spec.idle_timeout_seconds},
        "ServiceRole": spec.service_role,
        "JobFlowRole": spec.instance_profile,
        "VisibleToAllUsers": True,
        "Tags": [{"Key": key, "Value": value} for key, value in spec.tags.items()]
        + [{"Key": "data-residency", "Value": "eu"}],
    }
