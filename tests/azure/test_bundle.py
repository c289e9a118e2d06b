"""The Databricks Asset Bundle generated from the pipelines, checked without a workspace."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from databricks.bundles.jobs import Job

from tests.conftest import REPO
from tools import databricks_bundle

EXPECTED_ORDER = ["ingestion", "featurization", "reduction", "classification", "reporting"]


@pytest.fixture(scope="module")
def job() -> dict:
    resources = yaml.safe_load(databricks_bundle.JOB_FILE.read_text())
    return resources["resources"]["jobs"]["fruits"]


def test_the_committed_bundle_is_what_the_pipelines_give_now():
    assert databricks_bundle.main(["--check"]) == 0


def test_one_task_per_pipeline_after_the_pipelines_it_reads_from(job):
    tasks = {task["task_key"]: task for task in job["tasks"]}
    assert list(tasks) == EXPECTED_ORDER
    needs = {
        key: [d["task_key"] for d in task.get("depends_on", [])] for key, task in tasks.items()
    }
    assert needs == {
        "ingestion": [],
        "featurization": ["ingestion"],
        "reduction": ["featurization"],
        "classification": ["reduction"],
        # images (ingestion), featurization_report (the sample grid's counts),
        # explained_variance and pca_features, the metrics.
        "reporting": ["ingestion", "featurization", "reduction", "classification"],
    }


def test_each_task_runs_the_wheels_entry_point_on_the_azure_environment(job):
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'fruits = "fruits.__main__:main"' in pyproject  # the wheel's `fruits` entry point
    for task in job["tasks"]:
        wheel_task = task["python_wheel_task"]
        assert (wheel_task["package_name"], wheel_task["entry_point"]) == ("fruits", "fruits")
        arguments = wheel_task["parameters"]
        assert arguments[:4] == [
            "--env", "azure", "--conf-source",
            "/Workspace${workspace.file_path}/dist/conf-fruits.tar.gz",
        ]  # fmt: skip
        assert arguments[4:6] == ["--pipelines", task["task_key"]]
        params = dict(item.split("=", 1) for item in arguments[7].split(","))
        root = "abfss://${var.container}@${var.storage_account}.dfs.core.windows.net/${var.prefix}"
        assert params["data_root"] == f"{root}/data"
        assert params["raw_images_path"] == f"{root}/raw"
        assert params["weights_source"].startswith(f"{root}/models/")
        assert task["libraries"] == [{"whl": "./dist/*.whl"}]
        assert task["job_cluster_key"] == "fruits"


def test_the_wheel_and_conf_are_built_and_synced_by_the_bundle():
    bundle = yaml.safe_load(databricks_bundle.BUNDLE_FILE.read_text())
    assert bundle["artifacts"]["fruits_wheel"] == {"type": "whl", "build": "kedro package",
                                                   "path": "."}  # fmt: skip
    assert set(bundle["sync"]["include"]) == {
        "dist/conf-fruits.tar.gz", "bootstrap/databricks_init.sh",
        "bootstrap/requirements-databricks.txt",
    }  # fmt: skip
    assert bundle["include"] == ["resources/*.yml"]
    assert bundle["targets"]["prod"]["mode"] == "production"


def test_a_classic_dedicated_cluster_with_the_init_script(job):
    [cluster] = job["job_clusters"]
    spec = cluster["new_cluster"]
    assert spec["data_security_mode"] == "SINGLE_USER"  # dedicated: a SparkContext
    assert spec["single_user_name"] == "${var.run_as}"
    assert spec["spark_version"] == "15.4.x-scala2.12"  # Spark 3.5, Python 3.11
    import pyspark  # noqa: PLC0415

    assert pyspark.__version__.startswith("3.5.")
    assert spec["init_scripts"] == [
        {"workspace": {"destination": "${workspace.file_path}/bootstrap/databricks_init.sh"}}
    ]
    assert spec["enable_local_disk_encryption"] is True
    assert spec["custom_tags"]["data-residency"] == "eu"
    # Credentials only as references to a secret scope, never values.
    secrets = {**spec["spark_conf"], **spec["spark_env_vars"]}
    for key in ("fs.azure.account.oauth2.client.secret", "AZURE_CLIENT_SECRET"):
        assert secrets[key] == "{{secrets/fruits/client-secret}}"


def test_the_init_script_installs_the_lock_without_spark():
    requirements = databricks_bundle.REQUIREMENTS_FILE.read_text()
    pins = [line.split("==")[0] for line in requirements.splitlines() if line[:1].isalpha()]
    assert "pyspark" not in pins and "py4j" not in pins and "adlfs" in pins
    blocks = requirements.split("\n", 1)[1].replace("\\\n", "").splitlines()
    assert all("--hash=sha256:" in block for block in blocks if "==" in block)
    shellcheck = Path(sys.executable).with_name("shellcheck")
    subprocess.run([str(shellcheck), str(REPO / databricks_bundle.INIT_SCRIPT)], check=True)


def test_the_job_is_checked_against_databricks_typed_models(job):
    """The generator builds the job through databricks-bundles, which refuses what the bundle
    schema does not know (a live check: a misspelt field or value fails)."""
    assert Job.from_dict(job).as_dict() == job
    with pytest.raises(ValueError, match="Unexpected field 'job_clusterz'"):
        Job.from_dict({**job, "job_clusterz": []})
    cluster = {**job["job_clusters"][0]["new_cluster"], "data_security_mode": "SINGLE_USR"}
    with pytest.raises(ValueError, match="not a valid DataSecurityMode"):
        Job.from_dict({**job, "job_clusters": [{"job_cluster_key": "fruits",
                                                "new_cluster": cluster}]})  # fmt: skip
