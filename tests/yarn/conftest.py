"""The EMR step on a real multi-node YARN: cluster, bucket, bootstrap, submit, read back.

Everything comes from the project's own launcher (``fruits.apps.emr``): the artifacts it
builds and uploads, the cluster configuration it requests (spark-defaults, spark-env,
bootstrap action) and the spark-submit command of its step. The rehearsal changes only
what cannot be AWS here, each listed in ``REHEARSAL_SETTINGS`` and the README.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pyspark
import pytest
import s3fs

from fruits.apps import emr
from fruits.vision.embedder import EMBEDDER_BUILT
from tests.conftest import (
    DELTA_JARS,
    PIP_WITHOUT_BYTECODE,
    REHEARSAL_JVM_OPTIONS,
    S3A_JARS,
    WEIGHTS_FILE,
    S3Server,
    copy_project,
    copy_real_images,
)
from tools.yarn.minicluster import YarnCluster, mini_yarn, processes

BUCKET = "fruits-yarn"
PREFIX = "eu/fruits"
BIN = Path(sys.executable).parent
# 8 classes x (20 Training + 5 Test) real images.
CLASSES = ["Apple Braeburn", "Banana", "Cocos", "Kiwi", "Lemon", "Pear", "Raspberry", "Strawberry"]
PER_SPLIT = {"Training": 20, "Test": 5}
IMAGES = len(CLASSES) * sum(PER_SPLIT.values())
# Small featurization tasks: several per executor, so that reuse and retries show.
IMAGES_PER_PARTITION = 20
# The local copy of the images (for the `--env local` run compared with the cluster's).
LOCAL_RAW = "yarn_raw_images"


@dataclass(frozen=True)
class Submission:
    """A finished spark-submit: its output, and the application it ran."""

    returncode: int
    output: str
    application_id: str
    containers: dict[str, Path]

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0 and "final status: SUCCEEDED" in self.output

    def executor_logs(self) -> dict[str, str]:
        """stderr of every executor container (not the driver's, container 1 of an attempt)."""
        return {
            name: (folder / "stderr").read_text(errors="replace")
            for name, folder in self.containers.items()
            if not name.endswith("_000001") and (folder / "stderr").is_file()
        }

    def driver_logs(self) -> list[str]:
        """The driver container's log of each attempt (stdout, where Kedro logs, and stderr),
        without its source column nor whitespace: Kedro's log handler wraps long lines."""
        logs = []
        for name, folder in sorted(self.containers.items()):
            if name.endswith("_000001"):
                text = "".join(
                    (folder / log).read_text(errors="replace")
                    for log in ("stdout", "stderr")
                    if (folder / log).is_file()
                )
                text = re.sub(r" +[\w.]+\.py:\d+ *$", "", text, flags=re.MULTILINE)
                logs.append("".join(text.split()))
        return logs


@pytest.fixture(scope="module")
def yarn(tmp_path_factory) -> Iterator[YarnCluster]:
    """One ResourceManager and two NodeManagers on 127.0.0.1 for the module."""
    started = time.perf_counter()
    with mini_yarn(tmp_path_factory.mktemp("yarn"), node_managers=2) as cluster:
        logging.getLogger(__name__).warning(
            "YARN cluster up in %.1f s", time.perf_counter() - started
        )
        yield cluster


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp(LOCAL_RAW, numbered=False)
    copy_real_images(raw, CLASSES, PER_SPLIT)
    return raw


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> emr.ClusterSpec:
    """The cluster `fruits-emr deploy --bucket fruits-yarn --prefix eu/fruits` would request."""
    project = copy_project(tmp_path_factory.mktemp("project"))
    return emr.ClusterSpec(bucket=BUCKET, prefix=PREFIX, project_dir=project)


@pytest.fixture(scope="module")
def s3_requests() -> Iterator[list[str]]:
    """Every request line the S3 server answers (method and path), in order."""
    lines: list[str] = []

    class Recorder(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if '"' in message:
                lines.append(message.split('"')[1])  # e.g. GET /bucket/key HTTP/1.1

    logger = logging.getLogger("werkzeug")
    handler, level = Recorder(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)
    logger.propagate = True


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server, s3_requests, spec, images, tmp_path_factory) -> S3Server:
    """The bucket as `fruits-emr deploy` leaves it: artifacts, raw images, weights."""
    s3 = s3_server.client()
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
    staging = tmp_path_factory.mktemp("artifacts")
    artifacts = emr.build_artifacts(spec.project_dir, staging)
    emr.upload_artifacts(s3, artifacts, spec)
    for image in sorted(images.rglob("*.jpg")):
        s3.upload_file(str(image), BUCKET, f"{PREFIX}/raw/{image.relative_to(images).as_posix()}")
    # The offline copy under its own name (checked against its known sha256): machines here
    # cannot fetch the official file that the emr environment names.
    s3.upload_file(str(WEIGHTS_FILE), BUCKET, f"{PREFIX}/models/{WEIGHTS_FILE.name}")
    return s3_server


@pytest.fixture(scope="module")
def bootstrap_action(bucket: S3Server, spec, tmp_path_factory) -> Iterator[Callable[[], Path]]:
    """bootstrap/emr_bootstrap.sh, started now in the background; calling the result waits
    for it and gives the Python of the containers.

    Run as the cluster request's bootstrap action, with its arguments, except the venv's
    folder (the test's); the AWS CLI reaches the local S3 server through AWS_ENDPOINT_URL.
    It is two minutes of pip on one core: the local run compared with the cluster's runs
    on the other core meanwhile.
    """
    [action] = emr.cluster_request(spec)["BootstrapActions"]
    script = action["ScriptBootstrapAction"]
    artifacts_uri, _venv = script["Args"]
    assert script["Path"] == f"{artifacts_uri}/emr_bootstrap.sh"
    venv = tmp_path_factory.mktemp("cluster") / "venv"
    local_script = tmp_path_factory.mktemp("bootstrap") / "emr_bootstrap.sh"
    bucket.client().download_file(BUCKET, f"{PREFIX}/artifacts/emr_bootstrap.sh", str(local_script))
    environment = {
        **os.environ, **bucket.environment, **PIP_WITHOUT_BYTECODE,
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(
        ["bash", str(local_script), artifacts_uri, str(venv)],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def finished() -> Path:
        stdout, stderr = process.communicate()
        assert process.returncode == 0, stdout[-3000:] + stderr[-3000:]
        logging.getLogger(__name__).warning(
            "bootstrap action: %.1f s after its start\n%s", time.perf_counter() - started, stdout
        )
        return venv / "bin" / "python"

    yield finished
    if process.poll() is None:  # a test failed before waiting for it
        process.kill()
        process.communicate()


@pytest.fixture(scope="module")
def cluster_python(bootstrap_action) -> Path:
    """The Python of the containers: the venv bootstrap/emr_bootstrap.sh built."""
    return bootstrap_action()


def rehearsal_settings(bucket: S3Server, python: Path, staging: Path) -> dict[str, str]:
    """What differs from EMR here, and only that (the README lists it)."""
    credentials = {key: bucket.environment[key] for key in sorted(bucket.environment)}
    jars = [
        f"local:{Path(pyspark.__file__).parent / 'jars'}/*",
        *(f"local:{jar}" for jar in [*S3A_JARS, *DELTA_JARS]),
    ]
    return {
        # The bootstrap action's venv is the test's folder, not /opt/fruits/venv.
        emr.PYTHON_SETTING: str(python),
        "spark.yarn.appMasterEnv.PYSPARK_PYTHON": str(python),
        # EMR's nodes have Spark, EMRFS and Delta (delta-defaults) installed; here the
        # containers use pyspark's jars, Delta's, and S3A, for s3:// (EMRFS on EMR) as for
        # s3a://, against the local S3 server.
        "spark.yarn.jars": ",".join(jars),
        "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.endpoint": bucket.endpoint,
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.yarn.stagingDir": staging.as_uri(),
        # The instance profile's role on EMR; the emulator's throw-away keys here.
        **{f"spark.yarn.appMasterEnv.{key}": value for key, value in credentials.items()},
        **{f"spark.executorEnv.{key}": value for key, value in credentials.items()},
        # Containers listen on the loopback interface only.
        "spark.yarn.appMasterEnv.SPARK_LOCAL_IP": "127.0.0.1",
        "spark.executorEnv.SPARK_LOCAL_IP": "127.0.0.1",
        # No external shuffle service in the mini cluster: two fixed executors of one core
        # (EMR allocates dynamically), and container sizes for a 24 GB machine.
        "spark.dynamicAllocation.enabled": "false",
        "spark.executor.instances": "2",
        "spark.executor.cores": "1",
        "spark.executor.memory": "1g",
        "spark.driver.memory": "1g",
        "spark.yarn.maxAppAttempts": "1",
        # Three JVMs on two cores: the quick compiler only (tests/conftest.py).
        "spark.driver.extraJavaOptions": REHEARSAL_JVM_OPTIONS,
        "spark.executor.extraJavaOptions": REHEARSAL_JVM_OPTIONS,
    }


def step_command(spec: emr.ClusterSpec) -> list[str]:
    """The EMR step's command line, as `fruits-emr` builds it, on this YARN.

    Changed: `--master yarn` (EMR's default master), the offline weights, and smaller
    featurization tasks (several per executor).
    """
    arguments = list(emr.spark_step(spec)["HadoopJarStep"]["Args"])
    assert arguments[:3] == ["spark-submit", "--deploy-mode", "cluster"]
    params_at = arguments.index("--params") + 1
    params = dict(item.split("=", 1) for item in arguments[params_at].split(","))
    params["weights_source"] = f"s3a://{BUCKET}/{PREFIX}/models/{WEIGHTS_FILE.name}"
    params["featurization.images_per_partition"] = str(IMAGES_PER_PARTITION)
    arguments[params_at] = ",".join(f"{key}={value}" for key, value in params.items())
    return [str(BIN / "spark-submit"), "--master", "yarn", *arguments[1:]]


@pytest.fixture(scope="module")
def submit(yarn: YarnCluster, bucket: S3Server, spec, cluster_python, tmp_path_factory):
    """Run the step on YARN; ``during(application_id)`` runs while it does (fault injection)."""
    request = emr.cluster_request(spec)
    classifications = {c["Classification"]: c for c in request["Configurations"]}
    spark_env = classifications["spark-env"]["Configurations"][0]["Properties"]

    def run(
        label: str,
        during: Callable[[str, YarnCluster], None] | None = None,
        extra: dict[str, str] | None = None,
        pipelines: str | None = None,
    ) -> Submission:
        """``pipelines``: as `fruits-emr submit --pipelines` (default: every pipeline)."""
        workdir = tmp_path_factory.mktemp(label)
        # Each run starts from an empty data/ (no feature store to reuse), as a first run.
        s3 = s3fs.S3FileSystem()
        if s3.exists(f"{BUCKET}/{PREFIX}/data"):
            s3.rm(f"{BUCKET}/{PREFIX}/data", recursive=True)
        s3.invalidate_cache()
        # The cluster's spark-defaults classification, as EMR writes spark-defaults.conf.
        defaults = {
            **classifications["spark-defaults"]["Properties"],
            **rehearsal_settings(bucket, cluster_python, workdir / "staging"),
            **(extra or {}),
        }
        (workdir / "spark-defaults.conf").write_text(
            "".join(f"{key} {value}\n" for key, value in defaults.items())
        )
        # Not the test process's PYTHONPATH: Kedro puts this checkout's src/ there, and YARN
        # would hand it to the containers (the driver would import the checkout, not the
        # wheel the bootstrap action installed).
        inherited = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        environment = {
            **inherited,
            **bucket.environment,
            **{key: value for key, value in spark_env.items() if key != "PYSPARK_DRIVER_PYTHON"},
            "PYSPARK_PYTHON": str(cluster_python),
            # EMR's Spark installation (/usr/lib/spark): pyspark's, here.
            "SPARK_HOME": str(Path(pyspark.__file__).parent),
            "SPARK_CONF_DIR": str(workdir),
            "HADOOP_CONF_DIR": str(yarn.conf_dir),
            # The submitting JVM reads s3:// artifacts to stage them: S3A on its classpath.
            "SPARK_DIST_CLASSPATH": ":".join(str(jar) for jar in S3A_JARS),
            "SPARK_LOCAL_IP": "127.0.0.1",
        }
        log = workdir / "spark-submit.log"
        with log.open("w") as output:
            command = step_command(replace(spec, pipelines=pipelines))
            process = subprocess.Popen(
                command, cwd=workdir, env=environment, stdout=output,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            try:
                application_id = _wait_for_application(log, process)
                if during is not None:
                    during(application_id, yarn)
                process.wait(timeout=600)
            finally:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        text = log.read_text(errors="replace")
        return Submission(
            process.returncode, text, application_id, yarn.container_logs(application_id)
        )

    return run


def _wait_for_application(log: Path, process: subprocess.Popen, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"Submitted application (application_\d+_\d+)", log.read_text())
        if found:
            return found.group(1)
        if process.poll() is not None:
            raise AssertionError(f"spark-submit exited before submitting:\n{log.read_text()}")
        time.sleep(0.2)
    raise AssertionError(f"no application submitted in {timeout} s:\n{log.read_text()}")


def wait_for_featurization(
    application_id: str, yarn: YarnCluster, attempt: int = 1, timeout: float = 300
) -> str:
    """The first executor container of ``attempt`` whose Python worker has built its embedder:
    the CNN runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, folder in yarn.container_logs(application_id).items():
            stderr = folder / "stderr"
            if _of_attempt(name, attempt) and not name.endswith("_000001") and stderr.is_file():
                if EMBEDDER_BUILT in stderr.read_text(errors="replace"):
                    return name
        time.sleep(0.05)
    raise AssertionError(f"featurization never started in attempt {attempt} of {application_id}")


def driver_container(application_id: str, yarn: YarnCluster, attempt: int = 1) -> str:
    """The container of ``attempt``'s driver (YARN cluster mode: the application master)."""
    [driver] = [
        name
        for name in yarn.container_logs(application_id)
        if _of_attempt(name, attempt) and name.endswith("_000001")
    ]
    return driver


def _of_attempt(container: str, attempt: int) -> bool:
    """YARN names containers ``container_<cluster>_<app>_<attempt, 2 digits>_<number>``."""
    return container.split("_")[-2] == f"{attempt:02d}"


def kill_container_process(container: str, java_class: str) -> int:
    """SIGKILL the JVM of ``container`` running ``java_class``; its pid."""
    for pid, argv in processes(java_class, container):
        if argv[0].endswith("java"):
            os.kill(pid, signal.SIGKILL)
            return pid
    raise AssertionError(f"no {java_class} process for {container}")


def event_log(application_id: str, attempt: int = 1) -> list[dict]:
    """An attempt's Spark event log, as the emr environment writes it to S3 (named
    ``<application>_<attempt>``; ``.inprogress`` for an attempt that was killed)."""
    s3 = s3fs.S3FileSystem()
    s3.invalidate_cache()
    name = f"{application_id}_{attempt}"
    [path] = [
        p
        for p in s3.find(f"{BUCKET}/{PREFIX}/logs/spark-events")
        if p.rsplit("/", 1)[-1].split(".", 1)[0] == name
    ]
    with s3.open(path) as events:
        return [json.loads(line) for line in events.read().decode().splitlines()]
