"""The EMR step in YARN cluster mode on two NodeManagers, and two faults it survives."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest
import s3fs

from fruits.hooks import EARLY_START_JOB_GROUP
from fruits.vision.embedder import EMBEDDER_BUILT
from tests.conftest import WEIGHTS_FILE, WEIGHTS_PARAMS, run_project
from tests.helpers import read_delta, read_delta_folder
from tests.yarn.conftest import (
    BUCKET,
    IMAGES,
    LOCAL_RAW,
    PREFIX,
    driver_container,
    event_log,
    kill_container_process,
    wait_for_featurization,
)

pytestmark = pytest.mark.yarn
DATA = f"{BUCKET}/{PREFIX}/data"


@pytest.fixture(scope="module")
def local_run(images, tmp_path_factory, spark, bootstrap_action) -> Path:
    """The same images through `kedro run --env local` (in this process), while the
    bootstrap action builds the cluster's venv (``bootstrap_action`` starts it first)."""
    data_root = tmp_path_factory.mktemp("local_data")
    run_project(raw_images_path=str(images), data_root=str(data_root), **WEIGHTS_PARAMS)
    return data_root


@pytest.fixture(scope="module")
def cluster_run(submit, s3_requests):
    """The step as EMR runs it, on a healthy cluster."""
    already = len(s3_requests)
    submission = submit("healthy")
    assert submission.succeeded, submission.output[-5000:]
    return submission, s3_requests[already:]


def relative_key(path: str) -> str:
    """An image's path below its raw folder (``raw/`` on S3, the local copy's root)."""
    for root in ("/raw/", f"/{LOCAL_RAW}/"):
        if root in path:
            return unquote(path.split(root, 1)[1])
    raise AssertionError(f"no raw root in {path}")


def s3_table(relative: str) -> pd.DataFrame:
    s3 = s3fs.S3FileSystem()
    s3.invalidate_cache()
    table = read_delta_folder(s3, f"{DATA}/{relative}")
    return table.assign(image=table["path"].map(relative_key)).sort_values("image")


def local_table(data_root: Path, relative: str) -> pd.DataFrame:
    table = read_delta(data_root / relative)
    return table.assign(image=table["path"].map(relative_key)).sort_values("image")


def s3_json(relative: str) -> dict:
    s3 = s3fs.S3FileSystem()
    s3.invalidate_cache()
    return json.loads(s3.cat_file(f"{DATA}/{relative}"))


# What the fault runs compute (the CNN is what a lost process interrupts); the healthy run
# computes everything.
FEATURES_ONLY = "ingestion,featurization"


def assert_outputs_equal_local(local_run: Path, features_only: bool = False) -> None:
    """Every output on S3 equals the local run's: rows, labels, features, k, metrics."""
    tables = [
        ("04_feature/image_features", "features"),
        ("05_model_input/pca_features", "pca_features"),
    ]
    for relative, column in tables[:1] if features_only else tables:
        on_s3, local = s3_table(relative), local_table(local_run, relative)
        assert len(on_s3) == len(local) == IMAGES
        for key in ("image", "label", "split"):
            assert list(on_s3[key]) == list(local[key])
        np.testing.assert_allclose(
            np.stack(on_s3[column]), np.stack(local[column]), atol=1e-5, rtol=0
        )
    if features_only:
        return
    variance = s3_json("08_reporting/explained_variance.json")
    local_variance = json.loads((local_run / "08_reporting/explained_variance.json").read_text())
    assert variance["k"] == local_variance["k"]
    np.testing.assert_allclose(
        variance["explained_variance_ratio"], local_variance["explained_variance_ratio"],
        atol=1e-9,
    )  # fmt: skip
    metrics = s3_json("08_reporting/classification_metrics.json")
    local_metrics = json.loads((local_run / "08_reporting/classification_metrics.json").read_text())
    for key in ("n_test_images", "accuracy", "labels", "confusion_matrix"):
        assert metrics[key] == local_metrics[key], key
    assert metrics["macro_f1"] == pytest.approx(local_metrics["macro_f1"], abs=1e-12)


def assert_each_content_once_in_the_store() -> None:
    s3 = s3fs.S3FileSystem()
    s3.invalidate_cache()
    store = read_delta_folder(s3, f"{DATA}/04_feature/image_feature_store")
    assert store["content_hash"].is_unique and len(store) == IMAGES


def job_stages(events: list[dict], job_group: str) -> set[int]:
    """The stages of the jobs of ``job_group`` (a Kedro node's name: fruits.hooks.NodeTimer)."""
    return {
        stage
        for event in events
        if event["Event"] == "SparkListenerJobStart"
        and event.get("Properties", {}).get("spark.jobGroup.id") == job_group
        for stage in event["Stage IDs"]
    }


def featurization_tasks(events: list[dict]) -> Counter:
    """Successful tasks per executor of the featurization stage: the feature store node's
    first mapInArrow stage (the early start of the Python workers is another job's)."""
    store_stages = job_stages(events, "update_feature_store")
    stages = [
        event["Stage Info"]["Stage ID"]
        for event in events
        if event["Event"] == "SparkListenerStageSubmitted"
        and event["Stage Info"]["Stage ID"] in store_stages
        and "MapInArrow" in json.dumps(event["Stage Info"]["RDD Info"])
    ]
    featurization = min(stages)
    return Counter(
        event["Task Info"]["Executor ID"]
        for event in events
        if event["Event"] == "SparkListenerTaskEnd"
        and event["Stage ID"] == featurization
        and event["Task End Reason"]["Reason"] == "Success"
    )


def test_the_step_succeeds_in_cluster_mode_and_equals_a_local_run(local_run, cluster_run):
    submission, _ = cluster_run
    assert_outputs_equal_local(local_run)
    # The driver ran in a YARN container (the application master's), from the venv the
    # bootstrap action built, with the wheel installed there.
    [driver_log] = submission.driver_logs()
    assert "fruits0.1.0from" in driver_log
    assert "/venv/lib/python3.11/site-packages/fruits/__init__.py" in driver_log
    assert f"Runsummary:{IMAGES}imagefiles,{IMAGES}accepted,0rejected" in driver_log


def test_featurization_ran_on_two_executors_each_building_its_model_once(cluster_run):
    submission, _ = cluster_run
    events = event_log(submission.application_id)
    tasks = featurization_tasks(events)
    assert len(tasks) == 2 and min(tasks.values()) >= 2, tasks
    assert job_stages(events, EARLY_START_JOB_GROUP)  # started early (fruits.hooks), on YARN too
    logs = submission.executor_logs()
    assert len(logs) == 2  # two executors, each in its own container
    for stderr in logs.values():
        assert stderr.count(EMBEDDER_BUILT) == 1  # one interpreter, reused by every task


def test_no_executor_read_the_weights_file(cluster_run):
    _, requests = cluster_run
    weights = f"/{BUCKET}/{PREFIX}/models/{WEIGHTS_FILE.name}"
    reads = [line for line in requests if line.startswith("GET ") and weights in line]
    assert len(reads) == 1  # the driver's; the executors got the broadcast


def test_a_killed_driver_is_retried_and_a_lost_executor_replaced_with_exact_outputs(
    submit, local_run
):
    """Two faults in one application (one cluster run fewer for the suite): the driver's
    container killed during the first attempt's featurization, then one executor during the
    second's. YARN starts a second attempt; Spark replaces the executor and reruns its tasks."""
    killed: dict[str, int] = {}

    def kill_the_driver_then_an_executor(application_id, yarn):
        wait_for_featurization(application_id, yarn, attempt=1)
        driver = driver_container(application_id, yarn, attempt=1)
        killed["driver"] = kill_container_process(driver, "ApplicationMaster")
        executor = wait_for_featurization(application_id, yarn, attempt=2)
        killed["executor"] = kill_container_process(executor, "CoarseGrainedExecutorBackend")

    submission = submit(
        "driver_then_executor_lost",
        during=kill_the_driver_then_an_executor,
        extra={"spark.yarn.maxAppAttempts": "2"},
        pipelines=FEATURES_ONLY,
    )
    assert submission.succeeded, submission.output[-5000:]
    assert set(killed) == {"driver", "executor"}
    assert len(submission.driver_logs()) == 2  # two attempts
    lost = [
        event for event in event_log(submission.application_id, attempt=2)
        if event["Event"] == "SparkListenerTaskEnd"
        and event["Task End Reason"]["Reason"] == "ExecutorLostFailure"
    ]  # fmt: skip
    assert lost, "the executor was killed after its tasks were done"
    assert_outputs_equal_local(local_run, features_only=True)
    assert_each_content_once_in_the_store()
    report = s3_json("08_reporting/featurization_report.json")
    # The first attempt died before the store's snapshot was committed: the second ran
    # the CNN again on every content (what a crash costs: the unfinished stage, once).
    assert (report["image_files"], report["contents_new"]) == (IMAGES, IMAGES)
