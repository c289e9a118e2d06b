"""Shared fixtures: the project's own Spark session and one real pipeline run.

Tests use the real Fruits-360 images and the offline MobileNetV2 weights of the
workspace's shared folder (next to the repository).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import s3fs
import yaml
from moto.server import ThreadedMotoServer

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
# Every Spark the tests start (in-process, spark-submit, YARN containers) listens on the
# loopback interface only: its driver, block manager and UI.
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
# The image files the catalog's raw_images entry reads (its Hadoop glob on file names).
IMAGE_GLOB = yaml.safe_load((REPO / "conf" / "base" / "catalog.yml").read_text())["raw_images"][
    "load_args"
]["pathGlobFilter"]
FRUITS_360 = SHARED / "data" / "fruits-360"
# The weights dataset checks a file of this name against its known sha256.
WEIGHTS_FILE = SHARED / "models" / "mobilenet_v2_1.0_224_no_top.reconstructed.h5"
WEIGHTS_PARAMS = {"weights_source": str(WEIGHTS_FILE)}
# Spark's S3A connector, fetched by `make setup` (versions in the Makefile).
S3A_JARS = [
    REPO / ".jars" / "hadoop-aws-3.3.4.jar",
    REPO / ".jars" / "aws-java-sdk-bundle-1.12.262.jar",
]
# Delta Lake's jars, fetched by `make setup` (conf/local adds them itself; a cluster has its own).
DELTA_JARS = sorted((REPO / ".jars" / "delta").glob("*.jar"))
# The JVMs of the cloud rehearsals (EMR's driver, the YARN containers, the EC2 and Azure
# drivers) compile with HotSpot's quick compiler only, as conf/local does: here two cores host
# the whole cluster, and the optimizing compiler (C2) of three JVMs took more CPU than the
# work (a 48-image run with EMR's settings: 129 CPU seconds, 81 with C1 only). A JIT tier
# changes no result; the environments' own settings are otherwise rehearsed as they are.
REHEARSAL_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m"
# Added to the environment of the rehearsed bootstrap scripts (EMR's bootstrap action, the EC2
# user data), which build a venv from the lock with pip: pip's byte-compilation of every
# installed module (TensorFlow's thousands) is ~40 s of CPU per venv on these two cores, and
# the runs after it compile on import only what they use. The scripts themselves are unchanged.
PIP_WITHOUT_BYTECODE = {"PIP_NO_COMPILE": "1"}
# The tests start Python processes by the hundred (kedro runs, Spark Python workers, YARN
# containers, those bootstrap venvs): each keeps the bytecode it compiles, as on a real node.
# A machine or CI runner that sets PYTHONDONTWRITEBYTECODE would have every one compile its
# imports from source again, ~3 s per process here (a clean clone's `make test`: 48 minutes).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

# The longest test files, longest first (seconds in a clean clone's `make test`): pytest-xdist
# hands whole files to its two workers in collection order (`--dist loadfile
# --no-loadscope-reorder` in the Makefile; xdist's default order, most tests first, started
# the YARN rehearsal last, alone on one worker for its last ~10 minutes).
LONGEST_FIRST = (
    "tests/yarn/test_cluster_rehearsal.py",  # ~890 s
    "tests/emr/test_rehearsal.py",  # ~460 s
    "tests/ec2/test_user_data_rehearsal.py",  # ~390 s
    "tests/pipelines/test_incremental.py",  # ~300 s
    "tests/pipelines/test_delta_tables.py",  # ~170 s
    "tests/test_input_errors.py",  # ~150 s
    "tests/azure/test_rehearsal.py",  # ~130 s
    "tests/serving/test_service.py",  # ~90 s
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the tests: the files of ``LONGEST_FIRST`` first, the others as collected."""
    rank = {path: position for position, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


# 22 classes (names with spaces among them) x (8 Training + 2 Test) = 220 real images.
PIPELINE_CLASSES = [
    "Apple Braeburn", "Apple Granny Smith", "Apricot", "Avocado", "Banana", "Cactus fruit",
    "Cherry 1", "Cocos", "Grape Blue", "Kiwi", "Lemon", "Limes", "Mango", "Orange",
    "Pear", "Pineapple", "Plum", "Pomegranate", "Raspberry", "Strawberry", "Tomato 1", "Walnut",
]  # fmt: skip
TRAINING_PER_CLASS = 8
TEST_PER_CLASS = 2


def copy_real_images(target: Path, classes: list[str], per_split: dict[str, int]) -> list[Path]:
    """Copy the first images of each class and split of Fruits-360 into ``target``."""
    if not FRUITS_360.is_dir() or not WEIGHTS_FILE.is_file():
        pytest.fail(f"The tests need the workspace's shared data and weights at {SHARED}.")
    copied = []
    for split, count in per_split.items():
        for label in classes:
            source_dir = FRUITS_360 / split / label
            (target / split / label).mkdir(parents=True, exist_ok=True)
            for source in sorted(source_dir.iterdir())[:count]:
                copied.append(Path(shutil.copy2(source, target / split / label / source.name)))
    return copied


def copy_project(target: Path) -> Path:
    """A copy of the project's sources and configuration, to package or build in ``target``."""
    for item in ("pyproject.toml", "README.md", "requirements.lock"):
        shutil.copy2(REPO / item, target / item)
    for folder in ("src", "conf", "bootstrap"):
        shutil.copytree(REPO / folder, target / folder, ignore=shutil.ignore_patterns("*.pyc"))
    return target


def run_project(env: str = "local", pipelines: list[str] | None = None, **runtime_params) -> None:
    """Run the default pipeline (or ``pipelines``) through a Kedro session, as `kedro run` does.

    Dotted names (``reduction.k``) are nested as `kedro run --params` nests them.
    """
    from kedro.framework.session import KedroSession  # noqa: PLC0415

    nested: dict = {}
    for key, value in runtime_params.items():
        *sections, name = key.split(".")
        target = nested
        for section in sections:
            target = target.setdefault(section, {})
        target[name] = value
    with KedroSession.create(project_path=REPO, env=env, runtime_params=nested) as session:
        session.run(pipeline_names=pipelines)


@pytest.fixture(scope="session", autouse=True)
def kedro_project():
    """Bootstrap the Kedro project (settings, pipelines) once."""
    from kedro.framework.startup import bootstrap_project  # noqa: PLC0415

    return bootstrap_project(REPO)


@pytest.fixture
def all_pipelines(kedro_project):
    """Kedro's pipeline registry holding every pipeline.

    The registry is process-wide and Kedro loads only the pipelines a run asks for: after a
    `session.run(pipeline_names=[...])` in this worker it holds those alone until reset.
    """
    from kedro.framework.project import pipelines  # noqa: PLC0415

    pipelines.set_requested(None)
    return pipelines


@pytest.fixture(scope="session")
def spark(kedro_project):
    """The Spark session exactly as the project's hook creates it for `--env local`."""
    from kedro.framework.session import KedroSession  # noqa: PLC0415
    from pyspark.sql import SparkSession  # noqa: PLC0415

    with KedroSession.create(project_path=REPO, env="local") as session:
        session.load_context()
    return SparkSession.getActiveSession()


@dataclass(frozen=True)
class PipelineRun:
    """Where a full run of the three pipelines read its images and wrote its outputs."""

    raw_images: Path
    image_files: list[Path]
    data_root: Path


def built_once(tmp_path_factory, name: str, build: Callable[[Path], object]) -> Path:
    """A folder ``build`` fills once for the whole test session, however many xdist workers
    ask for it: the first builds it under a file lock, the others wait, then read it.

    (pytest-xdist's recipe: session fixtures are per worker, and a pipeline run each is
    a minute of CPU.) Users treat the folder as read-only.
    """
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = shared / name
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / f"{name}.built").exists():
            shutil.rmtree(folder, ignore_errors=True)  # a worker that failed half-way
            folder.mkdir()
            build(folder)
            (shared / f"{name}.built").touch()
    return folder


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory, spark) -> PipelineRun:
    """Run every pipeline once on 220 real images (once for all the test processes)."""
    per_split = {"Training": TRAINING_PER_CLASS, "Test": TEST_PER_CLASS}

    def run(folder: Path) -> None:
        copy_real_images(folder / "raw_images", PIPELINE_CLASSES, per_split)
        run_project(
            raw_images_path=str(folder / "raw_images"), data_root=str(folder / "data"),
            **WEIGHTS_PARAMS,
        )  # fmt: skip

    folder = built_once(tmp_path_factory, "pipeline_run", run)
    image_files = sorted(path for path in (folder / "raw_images").rglob("*") if path.is_file())
    return PipelineRun(folder / "raw_images", image_files, folder / "data")


# The cloud rehearsals' images (EMR, EC2, Azure): 6 classes x (6 Training + 2 Test), and the
# local run each rehearsal's outputs are compared with, made once for all the test processes.
REHEARSAL_CLASSES = ["Apple Braeburn", "Banana", "Kiwi", "Lemon", "Pear", "Strawberry"]
REHEARSAL_PER_SPLIT = {"Training": 6, "Test": 2}
REHEARSAL_IMAGES = len(REHEARSAL_CLASSES) * sum(REHEARSAL_PER_SPLIT.values())


@pytest.fixture(scope="session")
def rehearsal_images(tmp_path_factory) -> Path:
    """The rehearsals' raw folder (never changed: a rehearsal adds photos in its bucket)."""

    def copy(folder: Path) -> None:
        copy_real_images(folder / "raw_images", REHEARSAL_CLASSES, REHEARSAL_PER_SPLIT)

    return built_once(tmp_path_factory, "rehearsal_images", copy) / "raw_images"


@pytest.fixture(scope="session")
def rehearsal_local_run(rehearsal_images, tmp_path_factory, spark) -> Path:
    """`kedro run --env local` (every pipeline, in this process) on ``rehearsal_images``."""
    return built_once(
        tmp_path_factory, "rehearsal_local_run",
        lambda data_root: run_project(
            raw_images_path=str(rehearsal_images), data_root=str(data_root), **WEIGHTS_PARAMS
        ),
    )  # fmt: skip


@pytest.fixture(scope="session")
def weights():
    """The offline MobileNetV2 weight arrays, through the project's dataset (sha256 checked)."""
    from fruits.datasets import BackboneWeightsDataset  # noqa: PLC0415

    return BackboneWeightsDataset(source=str(WEIGHTS_FILE)).load().arrays()


@pytest.fixture(scope="session")
def tflite_backbone(weights):
    """The backbone as the pipeline exports it by default (TFLite, 224 pixels)."""
    from fruits.vision.backbone import export_backbone  # noqa: PLC0415

    return export_backbone(weights, 224, "tflite")


@pytest.fixture(scope="session")
def real_image_features(spark, tflite_backbone, tmp_path_factory):
    """Real MobileNetV2 features of 3 Training + 1 Test image of each of the 22 classes.

    Embedded in this process with the library (no pipeline run): ``path``, ``label``,
    ``split`` and ``features`` rows, as ``image_features`` has them, for the model tests.
    """
    from fruits.vision.embedder import embed_images, load_embedder  # noqa: PLC0415

    root = tmp_path_factory.mktemp("feature_images")
    files = copy_real_images(root, PIPELINE_CLASSES, {"Training": 3, "Test": 1})
    embedder = load_embedder(tflite_backbone, threads=2)
    contents = [path.read_bytes() for path in files]
    features = [vector for vector, _ in embed_images(contents, embedder, 224, batch_size=16)]
    rows = [
        (f"file:{path}", path.parent.name, path.parent.parent.name, vector.tolist())
        for path, vector in zip(files, features, strict=True)
    ]
    schema = "path string, label string, split string, features array<float>"
    return spark.createDataFrame(rows, schema).cache()


@pytest.fixture(scope="session")
def keras_reference_model():
    """Plain Keras MobileNetV2 loading the same weights file directly (no Spark, no broadcast)."""
    import keras  # noqa: PLC0415

    return keras.applications.MobileNetV2(
        include_top=False, weights=str(WEIGHTS_FILE), pooling="avg", input_shape=(224, 224, 3)
    )


def keras_reference_features(model, image_paths: list[Path]):
    """Features of the images the plain Keras way: load_img, preprocess_input, predict."""
    import keras  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    batch = np.stack(
        [
            keras.utils.img_to_array(
                keras.utils.load_img(path, target_size=(224, 224), interpolation="bilinear")
            )
            for path in image_paths
        ]
    )
    inputs = keras.applications.mobilenet_v2.preprocess_input(batch)
    return model.predict(inputs, batch_size=32, verbose=0)


# A real S3 API on 127.0.0.1 (moto's server mode), started and stopped by the tests.
REGION = "eu-west-3"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    environment: dict[str, str]

    def client(self):
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION)


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server(monkeypatch_module) -> Iterator[S3Server]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    port = _free_loopback_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # Throw-away credentials of the local emulator; AWS_ENDPOINT_URL points boto3/s3fs at it.
    environment = {
        "AWS_ACCESS_KEY_ID": "rehearsal",
        "AWS_SECRET_ACCESS_KEY": "rehearsal",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
    }
    for key, value in environment.items():
        monkeypatch_module.setenv(key, value)
    # fsspec caches file systems by their arguments: an S3FileSystem() of an earlier module
    # would still talk to that module's (stopped) server.
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        yield S3Server(endpoint, environment)
    finally:
        server.stop()
        s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture()
def silent_endpoint() -> Iterator[str]:
    """An HTTP endpoint on 127.0.0.1 that accepts connections and never answers: what a
    client sees of an object store behind a dead network or a wrong proxy."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)  # the kernel completes the handshakes; nobody ever reads
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch
