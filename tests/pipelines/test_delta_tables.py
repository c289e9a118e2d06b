"""The Delta tables around the runs: one writer at a time, earlier runs read back, the old
snapshot store migrated, maintenance as its policy says."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from delta.tables import DeltaTable

from fruits.datasets import RunLockDataset
from fruits.datasets.run_lock import RunLockedError
from fruits.spark import delta, delta_log
from tests.conftest import REPO, WEIGHTS_PARAMS, copy_real_images, run_project
from tests.helpers import FEATURES_VIEW, read_delta, read_view

FEATURES_ONLY = ["ingestion", "featurization"]
CLASSES = ["Apple Braeburn", "Banana", "Kiwi", "Lemon"]
KEDRO = Path(sys.executable).with_name("kedro")


def report(data: Path) -> dict:
    return json.loads((data / "08_reporting" / "featurization_report.json").read_text())


def kedro_run(raw: Path, data: Path) -> subprocess.Popen:
    params = {"raw_images_path": raw, "data_root": data, **WEIGHTS_PARAMS}
    return subprocess.Popen(
        [str(KEDRO), "run", "--env", "local", "--pipelines", ",".join(FEATURES_ONLY),
         "--params", ",".join(f"{key}={value}" for key, value in params.items())],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"},
    )  # fmt: skip


@pytest.mark.pipeline
def test_a_second_run_on_the_same_data_root_stops_at_once(tmp_path):
    raw, data = tmp_path / "raw", tmp_path / "data"
    copy_real_images(raw, CLASSES, {"Training": 4})
    first = kedro_run(raw, data)
    try:
        deadline = time.monotonic() + 120
        while not (data / ".fruits-run.lock").exists():
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.05)
        started = time.monotonic()
        second = kedro_run(raw, data)
        _, stderr = second.communicate(timeout=120)
        refused_after = time.monotonic() - started
        assert second.returncode == 2
        [line] = [line for line in stderr.splitlines() if line.startswith("fruits: error:")]
        assert "another run is writing to" in line and f"pid {first.pid} " in line
        assert first.poll() is None, "the first run must still be running: the second waited"
    finally:
        _, first_err = first.communicate(timeout=600)
    assert first.returncode == 0, first_err[-3000:]
    assert refused_after < 60  # no model, no Spark job: the lock is taken before the run
    assert report(data)["accepted"] == len(CLASSES) * 4
    assert not (data / ".fruits-run.lock").exists()


def test_the_lock_is_exclusive_and_a_dead_holder_is_taken_over(tmp_path):
    lock_file = tmp_path / "data" / ".fruits-run.lock"
    lock, other = RunLockDataset(filepath=str(lock_file)), RunLockDataset(filepath=str(lock_file))
    lock.acquire("run A")
    with pytest.raises(RunLockedError, match=r"another run is writing .*run A"):
        other.acquire("run B")
    assert lock.load()["run"] == "run A"
    lock.release()
    assert not lock_file.exists()
    # A run killed without leaving its lock: its process no longer exists on this machine.
    gone = subprocess.Popen(["true"])
    gone.wait()
    holder = {"run": "killed", "host": socket.gethostname(), "pid": gone.pid,
              "started": time.time(), "heartbeat": time.time()}  # fmt: skip
    lock_file.write_text(json.dumps(holder))
    other.acquire("run B")
    assert other.load()["run"] == "run B"
    other.release()
    # On another machine, the holder is gone when its heartbeat stopped long enough ago.
    lock_file.write_text(json.dumps({**holder, "host": "elsewhere", "heartbeat": time.time()}))
    with pytest.raises(RunLockedError):
        RunLockDataset(filepath=str(lock_file), stale_after_seconds=60).acquire("run C")
    lock_file.write_text(json.dumps({**holder, "host": "elsewhere", "heartbeat": 0}))
    taker = RunLockDataset(filepath=str(lock_file), stale_after_seconds=60)
    taker.acquire("run C")
    taker.release()


def test_the_lock_on_s3_is_a_conditional_put(s3_server):
    """If-None-Match: * on create, If-Match on takeover: of two runs, one wins."""
    s3_server.client().create_bucket(
        Bucket="fruits-locks", CreateBucketConfiguration={"LocationConstraint": "eu-west-3"}
    )
    uri = "s3a://fruits-locks/data/.fruits-run.lock"
    lock, other = RunLockDataset(filepath=uri), RunLockDataset(filepath=uri)
    lock.acquire("run A")
    with pytest.raises(RunLockedError, match="run A"):
        other.acquire("run B")
    lock.release()
    other.acquire("run B")
    assert lock.load()["run"] == "run B"
    other.release()
    assert lock.load() is None


@pytest.mark.pipeline
def test_time_travel_reads_an_earlier_runs_features(tmp_path, spark):
    """The versions in featurization_report read back exactly what that run published."""
    from fruits.spark.feature_store import publish  # noqa: PLC0415

    raw, data = tmp_path / "raw", tmp_path / "data"
    copy_real_images(raw, CLASSES, {"Training": 3})
    run_project(pipelines=FEATURES_ONLY, raw_images_path=str(raw), data_root=str(data),
                **WEIGHTS_PARAMS)  # fmt: skip
    first, first_features = report(data), read_view(data, FEATURES_VIEW)
    copy_real_images(raw, ["Pear"], {"Training": 2})
    (raw / "Training" / "Kiwi" / sorted(os.listdir(raw / "Training" / "Kiwi"))[0]).unlink()
    run_project(pipelines=FEATURES_ONLY, raw_images_path=str(raw), data_root=str(data),
                **WEIGHTS_PARAMS)  # fmt: skip
    second = report(data)
    for name in ("images", "image_feature_store"):
        table = second["tables"][name]
        assert table["read"] == first["tables"][name]["written"][-1]
        assert table["written"] == [table["read"] + 1]
        assert (table["inserted"], table["deleted"]) == (2, 1)

    # As the README shows it: the views over the versions a run left (Spark's versionAsOf).
    def as_left_by(run: dict, name: str):
        table = run["tables"][name]
        version = table["written"][-1] if table["written"] else table["read"]
        return spark.read.format("delta").option("versionAsOf", version).load(table["path"])

    earlier, _ = publish(as_left_by(first, "images"), as_left_by(first, "image_feature_store"))
    now, rejected = publish(as_left_by(second, "images"), as_left_by(second, "image_feature_store"))
    earlier, now = earlier.toPandas(), now.toPandas()
    assert len(earlier) == len(first_features) == len(CLASSES) * 3
    assert len(now) == len(CLASSES) * 3 + 1 and rejected.count() == 0
    ordered = [
        frame.sort_values("path").reset_index(drop=True) for frame in (earlier, first_features)
    ]
    assert list(ordered[0]["path"]) == list(ordered[1]["path"])
    np.testing.assert_array_equal(
        np.stack(ordered[0]["features"]), np.stack(ordered[1]["features"])
    )


@pytest.mark.pipeline
def test_the_old_snapshot_store_is_migrated_without_computing_again(
    tmp_path, monkeypatch, caplog, spark
):
    raw, data = tmp_path / "raw", tmp_path / "data"
    copy_real_images(raw, CLASSES, {"Training": 3})
    run_project(pipelines=FEATURES_ONLY, raw_images_path=str(raw), data_root=str(data),
                **WEIGHTS_PARAMS)  # fmt: skip
    # The layout of the earlier store: Parquet snapshots (Spark's) and a pointer to the current.
    store = data / "04_feature" / "image_feature_store"
    features = read_delta(store)
    spark.read.format("delta").load(str(store)).write.parquet(str(tmp_path / "snapshot"))
    shutil.rmtree(store)
    store.mkdir()
    shutil.move(tmp_path / "snapshot", store / "snapshot-20260101T000000-aaaa")
    (store / "snapshot-20251231T000000-bbbb").mkdir()
    (store / "_CURRENT").write_text("snapshot-20260101T000000-aaaa")

    from fruits.spark import feature_store  # noqa: PLC0415

    def no_inference(*args, **kwargs):
        raise AssertionError("the CNN ran on contents the old store held")

    monkeypatch.setattr(feature_store, "featurize_images", no_inference)
    caplog.set_level("WARNING")
    run_project(pipelines=FEATURES_ONLY, raw_images_path=str(raw), data_root=str(data),
                **WEIGHTS_PARAMS)  # fmt: skip
    assert "holds the previous snapshot store" in caplog.text
    assert not list(store.glob("*snapshot*")) and not (store / "_CURRENT").exists()
    migrated = read_delta(store).sort_values("content_hash").reset_index(drop=True)
    expected = features.sort_values("content_hash").reset_index(drop=True)
    assert list(migrated["content_hash"]) == list(expected["content_hash"])
    assert report(data)["contents_reused"] == len(CLASSES) * 3


def test_maintenance_compacts_after_the_policys_number_of_commits(spark, tmp_path):
    path = str(tmp_path / "table")
    policy = delta_log.Maintenance(optimize_every=2, vacuum_retention_hours=168)
    for number in range(3):
        rows = spark.createDataFrame([(f"k{number}", number)], "key string, value int")
        changes = delta.TableChanges(rows=lambda rows=rows: delta.upserts(rows))
        assert delta.apply_changes(spark, path, changes, ["key"])
        delta_log.maintain(spark, path, policy)
    operations = [
        row["operation"]
        for row in DeltaTable.forPath(spark, path).history().orderBy("version").collect()
    ]
    # Two commits, then OPTIMIZE (and VACUUM, which keeps every recent file); then one more
    # change: not yet two since the OPTIMIZE.
    assert operations[:3] == ["WRITE", "WRITE", "OPTIMIZE"]
    assert operations.count("OPTIMIZE") == 1 and operations[-1] == "WRITE"
    assert sorted(spark.read.format("delta").load(path).toPandas()["key"]) == [
        f"k{number}" for number in range(3)
    ]
    # Every version is still readable: nothing recent was vacuumed.
    first = spark.read.format("delta").option("versionAsOf", 0).load(path).toPandas()
    assert list(first["key"]) == ["k0"]


def test_new_keys_are_appended_and_known_ones_merged(spark, tmp_path):
    path = str(tmp_path / "table")

    def apply(rows: list[tuple[str, int]], gone: list[str] = ()) -> None:
        frame = spark.createDataFrame(rows, "key string, value int")
        changes = delta.upserts(frame)
        if gone:
            removed = spark.createDataFrame([(key,) for key in gone], "key string")
            changes = changes.unionByName(delta.deletes(removed, changes))
        assert delta.apply_changes(spark, path, delta.TableChanges(rows=lambda: changes), ["key"])

    apply([("a", 1)])
    apply([("b", 2), ("c", 3)])  # new keys only: an append
    apply([("b", 20), ("d", 4)])  # one key known: a merge
    apply([("e", 5)], gone=["a"])  # a delete: a merge
    history = DeltaTable.forPath(spark, path).history().orderBy("version").collect()
    assert [(row["operation"], row["operationParameters"].get("mode")) for row in history] == [
        ("WRITE", "Overwrite"),
        ("WRITE", "Append"),
        ("MERGE", None),
        ("MERGE", None),
    ]
    table = spark.read.format("delta").load(path).toPandas().sort_values("key")
    assert table.values.tolist() == [["b", 20], ["c", 3], ["d", 4], ["e", 5]]


def test_table_properties_are_set_at_creation_or_before_the_next_commit_of_rows(spark, tmp_path):
    feed = {"delta.enableChangeDataFeed": "true"}

    def properties(path: str) -> dict[str, str]:
        return {r.key: r.value for r in spark.sql(f"SHOW TBLPROPERTIES delta.`{path}`").collect()}

    def apply(path: str, key: str, wanted: dict[str, str] | None) -> bool:
        rows = delta.upserts(spark.createDataFrame([(key, 1)], "key string, value int"))
        return delta.apply_changes(spark, path, delta.TableChanges(lambda: rows), ["key"], wanted)

    created = str(tmp_path / "created")
    assert apply(created, "a", feed)
    assert properties(created)["delta.enableChangeDataFeed"] == "true"
    # A table made without them (by an earlier release): set in a commit of its own.
    older = str(tmp_path / "older")
    assert apply(older, "a", None)
    assert "delta.enableChangeDataFeed" not in properties(older)
    assert apply(older, "b", feed)
    assert properties(older)["delta.enableChangeDataFeed"] == "true"
    operations = [row.operation for row in DeltaTable.forPath(spark, older).history().collect()]
    assert sorted(operations) == ["SET TBLPROPERTIES", "WRITE", "WRITE"]
    changed = spark.read.format("delta").option("readChangeFeed", "true")
    inserted = changed.option("startingVersion", 2).load(older).select("key", "_change_type")
    assert [tuple(row) for row in inserted.collect()] == [("b", "insert")]


def test_counted_changes_are_applied_without_counting_them_again(spark, tmp_path, monkeypatch):
    path = str(tmp_path / "table")
    rows = spark.createDataFrame([("a", 1), ("b", 2)], "key string, value int")
    assert delta.apply_changes(
        spark, path, delta.TableChanges(rows=lambda: delta.upserts(rows)), ["key"]
    )

    def no_query(*args):
        raise AssertionError("the changes' keys were looked up in the table")

    monkeypatch.setattr(delta, "_kinds_and_held", no_query)
    new = delta.upserts(spark.createDataFrame([("c", 3)], "key string, value int"))
    appended = delta.CountedChanges(new, {delta.UPSERT: 0})
    assert delta.apply_changes(spark, path, delta.TableChanges(rows=lambda: appended), ["key"])
    replaced = delta.upserts(spark.createDataFrame([("a", 10)], "key string, value int"))
    gone = delta.deletes(spark.createDataFrame([("b",)], "key string"), replaced)
    merged = delta.CountedChanges(replaced.unionByName(gone), {delta.UPSERT: 1, delta.DELETE: 1})
    assert delta.apply_changes(spark, path, delta.TableChanges(rows=lambda: merged), ["key"])
    history = DeltaTable.forPath(spark, path).history().orderBy("version").collect()
    assert [row["operation"] for row in history] == ["WRITE", "WRITE", "MERGE"]
    table = spark.read.format("delta").load(path).toPandas().sort_values("key")
    assert table.values.tolist() == [["a", 10], ["c", 3]]


def test_unchanged_sources_compute_nothing(spark, tmp_path):
    path = str(tmp_path / "table")
    rows = spark.createDataFrame([("a", 1)], "key string, value int")
    first = delta.TableChanges(rows=lambda: delta.upserts(rows), sources={"input": "v1"})
    assert delta.apply_changes(spark, path, first, ["key"])

    def never():
        raise AssertionError("computed although the sources are unchanged")

    assert not delta.apply_changes(spark, path, delta.TableChanges(never, {"input": "v1"}), ["key"])
    # New sources without a change: recorded (an empty commit), so the next run skips.
    empty = delta.TableChanges(rows=lambda: delta.upserts(rows).limit(0), sources={"input": "v2"})
    assert not delta.apply_changes(spark, path, empty, ["key"])
    assert not delta.apply_changes(spark, path, delta.TableChanges(never, {"input": "v2"}), ["key"])
    assert pd.DataFrame(spark.read.format("delta").load(path).toPandas())["key"].tolist() == ["a"]


def test_table_digest_follows_delta_versions_without_a_spark_job(spark, tmp_path):
    path = str(tmp_path / "table")
    rows = spark.createDataFrame([("a", 1)], "key string, value int")
    rows.write.format("delta").save(path)
    context = spark.sparkContext
    context.setJobGroup("digest", "the digest of a Delta table")
    try:
        first = delta.table_digest(spark.read.format("delta").load(path))
        # Read from the plan: no job (listing the files took one).
        assert context.statusTracker().getJobIdsForGroup("digest") == []
        spark.read.format("delta").load(path).inputFiles()
        assert context.statusTracker().getJobIdsForGroup("digest") != []
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)
    again = spark.read.format("delta").load(path)
    assert delta.table_digest(again.select("key").where("value > 0")) == first
    rows.write.format("delta").mode("append").save(path)
    appended = delta.table_digest(spark.read.format("delta").load(path))
    assert appended != first and delta.current_version(spark, path) == 1
    earlier = spark.read.format("delta").option("versionAsOf", 0).load(path)
    assert delta.table_digest(earlier) == first
    # The same place, made again: another table (a new id), though at version 0 again.
    shutil.rmtree(path)
    rows.write.format("delta").save(path)
    assert delta.table_digest(spark.read.format("delta").load(path)) not in (first, appended)
    # A join reads both tables; files of another format are listed instead.
    other = str(tmp_path / "other")
    rows.write.format("delta").save(other)
    joined = (
        spark.read.format("delta").load(path).join(spark.read.format("delta").load(other), "key")
    )
    assert delta.table_digest(joined) != delta.table_digest(spark.read.format("delta").load(path))
    parquet = str(tmp_path / "parquet")
    rows.write.parquet(parquet)
    assert not delta.table_digest(spark.read.parquet(parquet)).startswith("delta:")
