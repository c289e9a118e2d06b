"""Featurization: preprocessing, the once-per-worker model, the weights dataset, the node."""

import gc
import io
import os
import shutil
import threading
import weakref
from dataclasses import replace

import keras
import numpy as np
import pyarrow as pa
import pytest
from delta.tables import DeltaTable
from kedro.io import DatasetError
from PIL import Image
from pyspark.sql import functions as F

from fruits.datasets import BackboneWeightsDataset, FeatureViewDataset, ImageFilesDataset
from fruits.hooks import EARLY_START_JOB_GROUP, EarlyPythonWorkers
from fruits.params import FeaturizationParams, IngestionParams
from fruits.pipelines.featurization.nodes import prepare_backbone
from fruits.spark.embedding import (
    broadcast_of,
    embedding_batch,
    featurize_images,
    partition_count,
    start_python_workers,
)
from fruits.spark.feature_store import FEATURE_STORE_SCHEMA, _store_changes, publish
from fruits.spark.featurization_report import summarize
from fruits.spark.image_table import describe
from fruits.spark.sampling import calibration_contents
from fruits.vision.backbone import BackboneWeights, PortableBackbone, build_backbone
from fruits.vision.embedder import cached_embedder, load_embedder
from fruits.vision.images import preprocess_image
from tests.conftest import FRUITS_360, WEIGHTS_FILE, copy_real_images, keras_reference_features
from tests.helpers import local_path

REAL_IMAGES = (
    sorted((FRUITS_360 / "Test" / "Banana").iterdir())[:3]
    + sorted((FRUITS_360 / "Test" / "Strawberry").iterdir())[:3]
)


def featurization_params(**changes) -> FeaturizationParams:
    defaults = {"runtime": "tflite", "input_size": 224, "precision": "float32",
                "calibration_images": 100, "batch_size": 1, "images_per_partition": 4096,
                "threads_per_worker": 1}  # fmt: skip
    return FeaturizationParams.model_validate(defaults | changes)


def ingestion_params(unsplit_test_share: float) -> IngestionParams:
    """Training and Test folders; other images split by content hash at this share."""
    return IngestionParams(
        split_folders=["Training", "Test"],
        unsplit_test_share=unsplit_test_share,
        unsplit_train_split="Training",
        unsplit_test_split="Test",
    )


def keras_preprocessed(path, size: int) -> np.ndarray:
    image = keras.utils.load_img(path, target_size=(size, size), interpolation="bilinear")
    return keras.applications.mobilenet_v2.preprocess_input(keras.utils.img_to_array(image))


@pytest.mark.parametrize("size", [224, 128, 96])
def test_preprocessing_equals_keras_on_real_jpegs(size):
    for path in REAL_IMAGES:
        ours = preprocess_image(path.read_bytes(), size)
        assert ours.shape == (size, size, 3) and ours.dtype == np.float32
        np.testing.assert_allclose(ours, keras_preprocessed(path, size), atol=1e-6)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P"])
def test_preprocessing_converts_other_modes_to_rgb(tmp_path, mode):
    with Image.open(REAL_IMAGES[0]) as image:
        converted = image.convert(mode)
    encoded = io.BytesIO()
    converted.save(encoded, format="PNG")
    (tmp_path / "image.png").write_bytes(encoded.getvalue())
    ours = preprocess_image(encoded.getvalue(), 224)
    np.testing.assert_allclose(ours, keras_preprocessed(tmp_path / "image.png", 224), atol=1e-6)


def test_weights_dataset_reads_the_h5_file(weights):
    reference = keras.applications.MobileNetV2(
        include_top=False, weights=str(WEIGHTS_FILE), pooling="avg", input_shape=(224, 224, 3)
    )
    assert len(weights) == len(reference.get_weights()) == 260
    for ours, theirs in zip(weights, reference.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_weights_dataset_rejects_a_wrong_sha256():
    with pytest.raises(DatasetError, match="does not match the expected sha256"):
        BackboneWeightsDataset(source=str(WEIGHTS_FILE), sha256="0" * 64).load()


def test_a_digits_only_sha256_given_as_a_number_keeps_its_64_digits():
    """`--params=weights_sha256=000...0` arrives as the integer 0: echoed as 64 zeros."""
    with pytest.raises(DatasetError, match="expected sha256 " + "0" * 64 + ":"):
        BackboneWeightsDataset(source=str(WEIGHTS_FILE), sha256=0).load()


@pytest.mark.parametrize("sha256", ["abc", "g" * 64, 10**70, True])
def test_a_malformed_sha256_is_refused_at_once(sha256):
    with pytest.raises(DatasetError, match="is not a SHA-256 \\(64 hexadecimal digits\\)"):
        BackboneWeightsDataset(source=str(WEIGHTS_FILE), sha256=sha256)


@pytest.mark.parametrize(
    "layers",
    [
        {"dense": ("dense/kernel", (1280, 10))},  # another network
        {"Conv1": ("Conv1/kernel", (3, 3, 3, 16)), "Conv_1": ("Conv_1/kernel", (1, 1, 160, 640))},
    ],
    ids=["another network", "MobileNetV2 alpha 0.5"],
)
def test_weights_of_another_network_are_refused_before_the_run(tmp_path, layers):
    """Found from the file's layer layout by verify(), before any output is written."""
    import h5py  # noqa: PLC0415

    other = tmp_path / "other_model.h5"
    with h5py.File(other, "w") as weights:
        weights.attrs["layer_names"] = [name.encode() for name in layers]
        for name, (weight, shape) in layers.items():
            weights.create_group(name).attrs["weight_names"] = [weight.encode()]
            weights[name].create_dataset(weight, data=np.zeros(shape, np.float32))
    with pytest.raises(DatasetError, match="its layers are not MobileNetV2's"):
        BackboneWeightsDataset(source=str(other)).verify()


def test_the_offline_weights_pass_the_layer_check():
    BackboneWeightsDataset(source=str(WEIGHTS_FILE)).verify()


def test_weights_dataset_names_a_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="missing.h5 does not exist"):
        BackboneWeightsDataset(source=str(tmp_path / "missing.h5")).load()


def test_imagenet_source_verifies_the_official_sha256(monkeypatch, tmp_path):
    """Official weights go through Keras's cached download, with the official hash checked."""
    calls = []

    def fake_get_file(fname, origin, cache_subdir, file_hash):
        calls.append((fname, origin, cache_subdir, file_hash))
        return str(shutil.copy(WEIGHTS_FILE, tmp_path / fname))  # offline stand-in

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    with pytest.raises(DatasetError, match="does not match the expected sha256"):
        BackboneWeightsDataset(source="imagenet").load().arrays()
    [(fname, origin, cache_subdir, file_hash)] = calls
    assert fname == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
    assert origin.endswith(fname) and cache_subdir == "models"
    assert file_hash == "f8aff69536bd77a692c594f559c798c19bf7f3f36668fc9fa00b21c6aab4797c"


def test_backbone_is_built_without_downloading(monkeypatch, weights):
    def no_download(*args, **kwargs):
        raise AssertionError("the backbone must never download weights")

    monkeypatch.setattr(keras.utils, "get_file", no_download)
    model = build_backbone(weights, 96)
    assert model.output_shape == (None, 1280)
    for ours, theirs in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_embedder_is_built_once_per_process_and_token(tflite_backbone):
    loads = []

    def loader():  # what a worker does on first use: read the broadcast
        loads.append(1)
        return tflite_backbone

    first = cached_embedder("run-1", loader, 1)
    assert cached_embedder("run-1", loader, 1) is first
    assert len(loads) == 1
    assert cached_embedder("run-2", loader, 1) is not first
    assert len(loads) == 2


def test_embedder_is_left_out_of_the_collections_spark_runs_between_tasks(tflite_backbone):
    try:
        first = cached_embedder("frozen-1", lambda: tflite_backbone, 1)
        assert not any(tracked is first for tracked in gc.get_objects())  # frozen
        replaced = weakref.ref(first)
        del first
        second = cached_embedder("frozen-2", lambda: tflite_backbone, 1)
        gc.collect()
        assert replaced() is None  # unfrozen when replaced, then collected
        assert not any(tracked is second for tracked in gc.get_objects())
    finally:
        gc.unfreeze()


def test_backbone_is_broadcast_once_per_application_and_fingerprint(spark):
    context = spark.sparkContext
    first = PortableBackbone("keras", 96, [np.zeros(3)], "fingerprint-a")
    broadcast = broadcast_of(context, first)
    assert broadcast_of(context, first) is broadcast
    changed = broadcast_of(context, replace(first, fingerprint="fingerprint-b"))
    assert changed is not broadcast and changed.value.fingerprint == "fingerprint-b"
    anonymous = replace(first, fingerprint="")
    assert broadcast_of(context, anonymous) is not broadcast_of(context, anonymous)


@pytest.mark.parametrize("batch_sizes", [(32,), (5, 32, 5)])
def test_tflite_runtime_equals_keras(tflite_backbone, keras_reference_model, batch_sizes):
    """The fast path gives Keras's features within 1e-4, whatever the batch sequence."""
    paths = sorted((FRUITS_360 / "Training" / "Kiwi").iterdir())[: max(batch_sizes)]
    reference = keras_reference_features(keras_reference_model, paths)
    embed = load_embedder(tflite_backbone, threads=2)
    for size in batch_sizes:
        batch = np.stack([preprocess_image(p.read_bytes(), 224) for p in paths[:size]])
        assert np.abs(embed(batch) - reference[:size]).max() <= 1e-4


def test_tflite_backbone_holds_the_weights(weights, tflite_backbone):
    """The broadcast payload is self-contained: a flatbuffer of about the weights' size."""
    assert isinstance(tflite_backbone.payload, bytes)
    weight_bytes = sum(array.nbytes for array in weights)
    assert 0.8 * weight_bytes < len(tflite_backbone.payload) < 1.5 * weight_bytes


@pytest.mark.parametrize("runtime", ["tflite", "keras"])
def test_featurize_images_node_matches_keras(
    spark, weights, tmp_path, keras_reference_model, runtime
):
    for path in REAL_IMAGES:
        (tmp_path / "Test" / path.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, tmp_path / "Test" / path.parent.name / path.name)
    # Two real JPEGs cut short: rejected rows among accepted ones in the same batches.
    for path in REAL_IMAGES[:2]:
        broken = tmp_path / "Test" / path.parent.name / f"truncated_{path.name}"
        broken.write_bytes(path.read_bytes()[:300])
    raw = ImageFilesDataset(filepath=str(tmp_path), load_args={"recursiveFileLookup": True})
    ingestion = ingestion_params(unsplit_test_share=0.2)
    images = describe(raw.load().read_all(), ingestion)

    prepared = prepare_backbone(
        BackboneWeights(None, lambda: weights), None, featurization_params(runtime=runtime)
    )
    settings = featurization_params(runtime=runtime, batch_size=4, images_per_partition=4)
    features = featurize_images(images, prepared, settings)
    assert features.columns == ["content_hash", "backbone", "features", "rejection"]
    # 8 images at 4 per partition: 2, rounded up to whole waves over the session's cores.
    cores = images.sparkSession.sparkContext.defaultParallelism
    assert features.rdd.getNumPartitions() == cores * -(-2 // cores)
    by_hash = {row.content_hash: row for row in features.collect()}
    rows = sorted(images.select("path", "content_hash").collect(), key=lambda row: row.path)
    good = [row for row in rows if "truncated_" not in row.path]
    reference = keras_reference_features(keras_reference_model, [local_path(r.path) for r in good])
    ours = np.array([by_hash[row.content_hash].features for row in good])
    assert np.abs(ours - reference).max() <= 1e-4
    assert {row.backbone for row in by_hash.values()} == {prepared.fingerprint}
    assert {by_hash[row.content_hash].rejection for row in good} == {None}
    for row in rows:
        if "truncated_" in row.path:
            assert by_hash[row.content_hash].features is None
            assert "corrupt or truncated" in by_hash[row.content_hash].rejection


@pytest.mark.parametrize(
    ("images", "per_partition", "cores", "expected"),
    [(4750, 256, 2, 20), (4750, 4096, 2, 2), (10, 256, 2, 2), (20_000, 1024, 8, 24), (1, 1, 1, 1)],
)
def test_partition_count_is_whole_waves_of_the_target_size(
    images: int, per_partition: int, cores: int, expected: int
) -> None:
    partitions = partition_count(images, per_partition, cores)
    assert partitions == expected
    assert partitions % cores == 0


def test_embedding_batch_keeps_each_row_with_its_image():
    first, third = np.full(1280, 1.5, np.float32), np.arange(1280, dtype=np.float32)
    results = [(first, None), (None, "corrupt or truncated image"), (third, None), (None, "x")]
    hashes = pa.array(["a", "b", "c", "d"])

    batch = embedding_batch(hashes, results).to_pydict()

    assert batch["content_hash"] == ["a", "b", "c", "d"]
    assert batch["rejection"] == [None, "corrupt or truncated image", None, "x"]
    assert batch["features"][1] is None and batch["features"][3] is None
    np.testing.assert_array_equal(batch["features"][0], first)
    np.testing.assert_array_equal(batch["features"][2], third)
    assert embedding_batch(hashes[:0], []).num_rows == 0


def test_int8_calibration_reads_a_spread_of_training_images_only(spark, tmp_path):
    """Spread over the classes by a digest of the name, never the test split, same order."""
    files = copy_real_images(tmp_path, ["Banana", "Kiwi", "Lemon"], {"Training": 6, "Test": 6})
    # Images outside the split folders get their split from their content hash.
    unsplit = tmp_path / "Unsorted" / "Kiwi"
    unsplit.mkdir(parents=True)
    for path in sorted(FRUITS_360.glob("Training/Kiwi/*.jpg"))[20:40]:
        shutil.copy2(path, unsplit / path.name)
    raw = ImageFilesDataset(filepath=str(tmp_path), load_args={"recursiveFileLookup": True})
    ingestion = ingestion_params(unsplit_test_share=0.5)
    images = describe(raw.load().read_all(), ingestion).cache()
    training = {bytes(row.content) for row in images.where("split = 'Training'").collect()}
    assert images.where("split = 'Test' AND path LIKE '%Unsorted%'").count() > 0
    chosen = calibration_contents(images, 30, "Training")
    assert len(chosen) == 18 + images.where("split = 'Training' AND path LIKE '%Unsorted%'").count()
    assert set(chosen) <= training
    few = calibration_contents(images, 9, "Training")
    by_content = {path.read_bytes(): path for path in [*files, *unsplit.iterdir()]}
    assert len({by_content[content].parent.name for content in few}) > 1
    assert calibration_contents(images, 9, "Training") == few


def test_the_stores_counts_tell_new_reused_removed_and_invalidated_contents(spark):
    """Against the store: a content cached under this backbone is reused, one stored under
    another is invalidated (and new again if still wanted), one no image has is removed."""
    images = spark.createDataFrame([("a",), ("b",), ("c",), ("c",)], ["content_hash"])
    store = spark.createDataFrame(
        [("a", "fp"), ("b", "old"), ("d", "fp"), ("e", "old")], ["content_hash", "backbone"]
    )
    new, kept = _store_changes(images, store, "fp")
    assert new == 2  # b (stored under another backbone) and c (twice among the images)
    assert kept == {"reused": 1, "removed": 1, "invalidated": 2}
    assert _store_changes(images, store.limit(0), "fp") == (
        3,
        {"reused": 0, "removed": 0, "invalidated": 0},
    )


def test_each_file_is_in_exactly_one_view_with_its_contents_outcome(spark):
    """Accepted: a content with features under the backbone; rejected: with a reason, under
    another backbone only, or missing from the store. Two paths of one content share it."""
    images = spark.createDataFrame(
        [(f"/{name}.jpg", "Kiwi", "Training", content) for name, content in
         [("a", "ok"), ("a copy", "ok"), ("b", "bad"), ("c", "stale"), ("d", "absent")]],
        "path string, label string, split string, content_hash string",
    )  # fmt: skip
    store = spark.createDataFrame(
        [("ok", "fp", [0.5, 1.5], None), ("bad", "fp", None, "empty file"),
         ("stale", "old", [2.0, 3.0], None), ("gone", "fp", [4.0, 5.0], None)],
        FEATURE_STORE_SCHEMA,
    )  # fmt: skip
    accepted, rejected = publish(images, store, "fp")
    assert sorted((r.path, r.backbone, list(r.features)) for r in accepted.collect()) == [
        ("/a copy.jpg", "fp", [0.5, 1.5]),
        ("/a.jpg", "fp", [0.5, 1.5]),
    ]
    assert sorted((r.path, r.backbone, r.reason) for r in rejected.collect()) == [
        ("/b.jpg", "fp", "empty file"),
        ("/c.jpg", "fp", "not featurized"),
        ("/d.jpg", "fp", "not featurized"),
    ]
    # Without a backbone (outside a run): the store's rows as they are.
    anyone = publish(images, store)[0]
    assert sorted(r.path for r in anyone.collect()) == ["/a copy.jpg", "/a.jpg", "/c.jpg"]


def test_the_feature_view_is_the_runs_within_it_and_the_tables_outside(spark, tmp_path):
    images_path, store_path = str(tmp_path / "images"), str(tmp_path / "store")
    view = FeatureViewDataset(
        images=images_path, image_feature_store=store_path, outcome="accepted"
    )
    with pytest.raises(DatasetError, match=r"images is not a Delta table yet: run the pipeline"):
        view.load()
    spark.createDataFrame(
        [("/a.jpg", "Kiwi", "Training", "ok"), ("/b.jpg", "Kiwi", "Test", "bad")],
        "path string, label string, split string, content_hash string",
    ).write.format("delta").save(images_path)
    spark.createDataFrame(
        [("ok", "fp", [0.5], None), ("bad", "fp", None, "corrupt")], FEATURE_STORE_SCHEMA
    ).write.format("delta").save(store_path)
    assert [r.path for r in view.load().collect()] == ["/a.jpg"]
    rejected = FeatureViewDataset(
        images=images_path, image_feature_store=store_path, outcome="rejected"
    ).load()
    assert [(r.path, r.reason) for r in rejected.collect()] == [("/b.jpg", "corrupt")]
    # Within a run: the DataFrame the publishing node made, until Kedro releases it.
    published = spark.createDataFrame([("/x.jpg",)], "path string")
    view.save(published)
    assert view.load() is published
    view.release()
    assert [r.path for r in view.load().collect()] == ["/a.jpg"]
    with pytest.raises(DatasetError, match="outcome must be one of"):
        FeatureViewDataset(images=images_path, image_feature_store=store_path, outcome="both")


class _Unqueried:
    """Stands for a table the code under test must not query."""

    def __getattr__(self, name):
        raise AssertionError(f"a table was queried ({name})")


def test_a_report_over_unchanged_tables_reuses_the_last_counts_without_a_query():
    unchanged = {"inserted": 0, "updated": 0, "deleted": 0}
    # The image table untouched since version 3; the store got a commit without rows (sources).
    versions = {
        "images": {"read": 3, "written": [], **unchanged},
        "image_feature_store": {"read": 5, "written": [6], **unchanged},
    }
    counts = {
        "image_files": 9,
        "accepted": 8,
        "rejected": 1,
        "distinct_contents": 7,
        "rejection_reasons": {"empty file": 1},
    }
    previous = {
        **counts,
        "tables": {"images": {"read": 2, "written": [3]}, "image_feature_store": {"read": 5}},
    }
    previous["tables"]["image_feature_store"]["written"] = []
    nothing_read = {"files_read": 0, "files_removed": 0, "raw_bytes_read": 0}
    tables = [_Unqueried(), _Unqueried(), "fp"]
    report = summarize(*tables, nothing_read, versions, previous)
    assert report == {
        **counts,
        **nothing_read,
        "contents_new": 0,
        "contents_reused": 7,
        "contents_removed": 0,
        "contents_invalidated": 0,
        "tables": versions,
    }
    # Another writer committed in between, or this run changed rows, or no earlier report:
    # counted again.
    moved = {**versions, "images": {**versions["images"], "read": 4}}
    added = {**versions, "images": {**versions["images"], "written": [4], "inserted": 1}}
    for table_versions, last in [(moved, previous), (added, previous), (versions, None)]:
        with pytest.raises(AssertionError, match="a table was queried"):
            summarize(*tables, nothing_read, table_versions, last)


def test_python_workers_are_started_by_a_light_job(spark):
    workers = start_python_workers(spark)
    assert len(workers) == spark.sparkContext.defaultParallelism
    assert os.getpid() not in workers
    for worker in workers:
        os.kill(worker, 0)  # alive, kept by Spark for the next Python tasks


def _python_worker_jobs(tracker) -> set[int]:
    """The early-start jobs of this session, once every start thread has ended."""
    for thread in threading.enumerate():
        if thread.name == EARLY_START_JOB_GROUP:
            thread.join(timeout=300)
    return set(tracker.getJobIdsForGroup(EARLY_START_JOB_GROUP))


def test_python_workers_start_early_only_when_the_run_read_new_files(spark):
    tracker, hook = spark.sparkContext.statusTracker(), EarlyPythonWorkers()
    before = _python_worker_jobs(tracker)  # an earlier test's run may have started some

    def started_jobs() -> list[str]:
        return [tracker.getJobInfo(job).status for job in _python_worker_jobs(tracker) - before]

    hook.after_node_run(outputs={"image_table_changes": {"files_read": 0, "raw_bytes_read": 0}})
    hook.after_node_run(outputs={"images": None})
    assert started_jobs() == []
    hook.after_node_run(outputs={"image_table_changes": {"files_read": 3, "raw_bytes_read": 9}})
    assert started_jobs() == ["SUCCEEDED"]


def _image_rows(spark, rows):
    return spark.createDataFrame(
        [(path, content_hash, content_hash.encode()) for path, content_hash in rows],
        "path string, content_hash string, content binary",
    )


def _store_updates(spark, tmp_path, monkeypatch, caplog, feed: str) -> dict:
    """A store derived from an image table, then the table changed by four commits (as when
    a run is killed between the two tables' commits): the store's update, and what it ran.
    ``feed``: the table records its changes ("kept"), does not ("none"), or did but their
    files were removed by OPTIMIZE and VACUUM ("vacuumed")."""
    from fruits.datasets import DeltaMergeDataset  # noqa: PLC0415
    from fruits.spark import delta, feature_store  # noqa: PLC0415

    featurized = []

    def fake_cnn(contents, backbone, settings, count):
        featurized.append(sorted(row.content_hash for row in contents.collect()))
        return contents.select(
            "content_hash", F.lit(backbone.fingerprint).alias("backbone"),
            F.array(F.lit(1.0).cast("float")).alias("features"),
            F.lit(None).cast("string").alias("rejection"),
        )  # fmt: skip

    monkeypatch.setattr(feature_store, "featurize_images", fake_cnn)
    properties = None if feed == "none" else {"delta.enableChangeDataFeed": "true"}
    images = DeltaMergeDataset(
        filepath=str(tmp_path / "images"), key=["path"], properties=properties
    )
    store = DeltaMergeDataset(filepath=str(tmp_path / "store"), key=["content_hash"])
    backbone = type("Backbone", (), {"fingerprint": "fp"})()

    def commit(upserted=(), deleted=()):
        rows = delta.upserts(_image_rows(spark, upserted))
        gone = spark.createDataFrame([(path,) for path in deleted], "path string")
        images.save(delta.TableChanges(rows=lambda: rows.unionByName(delta.deletes(gone, rows))))

    commit([("/a", "x"), ("/b", "y"), ("/c", "x")])
    store.save(feature_store.update(images.load(), None, backbone, None))
    commit([("/d", "z"), ("/e", "y")])  # a new content, and a copy of a stored one
    commit([("/a", "w")], deleted=["/b"])  # x still at /c, y still at /e
    commit([("/f", "q")], deleted=["/c"])  # x gone from every path
    commit(deleted=["/f"])  # q added, then removed before the store saw it
    if feed == "vacuumed":
        table = DeltaTable.forPath(spark, str(tmp_path / "images"))
        table.optimize().executeCompaction()
        spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
        try:
            table.vacuum(0)
        finally:
            spark.conf.unset("spark.databricks.delta.retentionDurationCheck.enabled")
    featurized.clear()
    caplog.clear()
    with caplog.at_level("INFO", logger="fruits.spark.feature_store"):
        store.save(feature_store.update(images.load(), store.load(), backbone, None))
    current = {row.content_hash for row in images.load().collect()}
    stored = sorted(row.content_hash for row in store.load().collect())
    return {"featurized": featurized, "stored": stored, "current": current, "log": caplog.text}


@pytest.mark.parametrize("feed", ["kept", "none", "vacuumed"])
def test_the_store_follows_the_image_tables_changes_since_it_was_derived(
    spark, tmp_path, monkeypatch, caplog, feed
):
    """With the change data feed, only the image rows changed since the store's last commit
    are compared; without it, the whole table. Both give the store the same contents."""
    updated = _store_updates(spark, tmp_path, monkeypatch, caplog, feed)
    assert updated["featurized"] == [["w", "z"]]  # the CNN on the new contents only
    assert updated["stored"] == sorted(updated["current"]) == ["w", "y", "z"]
    if feed == "kept":
        assert (
            "2 new image contents, 1 removed (the image table's changes after version 0)"
            in (updated["log"])
        )
    else:
        assert "the whole table is compared with the store instead" in updated["log"]
        assert "2 new image contents, 1 reused, 1 removed" in updated["log"]
