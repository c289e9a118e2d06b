"""SparkSnapshotDataset: readers only ever see a complete snapshot."""

from fruits.datasets import SparkSnapshotDataset
from fruits.datasets.spark_snapshot import POINTER


def _values(frame) -> list[int]:
    return sorted(row.value for row in frame.collect())


def test_versions_are_swapped_whole_and_old_ones_cleaned(spark, tmp_path):
    dataset = SparkSnapshotDataset(filepath=str(tmp_path / "store"))
    assert dataset.load() is None and not dataset.exists()

    dataset.save(spark.createDataFrame([(1,), (2,)], "value int"))
    first = dataset.current_snapshot()
    assert _values(dataset.load()) == [1, 2]

    # A run killed while writing leaves a snapshot folder the pointer never named.
    unfinished = tmp_path / "store" / "snapshot-killed"
    (unfinished / "_temporary").mkdir(parents=True)
    (unfinished / "_temporary" / "part-00000.parquet").write_bytes(b"half a file")
    assert _values(dataset.load()) == [1, 2]

    # The next version may be computed from the current one (read and written in one run).
    dataset.save(dataset.load().selectExpr("value * 10 AS value"))
    assert _values(dataset.load()) == [10, 20]
    second = dataset.current_snapshot()

    dataset.save(spark.createDataFrame([(3,)], "value int"))
    assert _values(dataset.load()) == [3]
    kept = {path.name for path in (tmp_path / "store").iterdir()}
    assert kept == {POINTER, second, dataset.current_snapshot()}  # previous + current only
    assert first not in kept and not unfinished.exists()
    assert (tmp_path / "store" / POINTER).read_text() == dataset.current_snapshot()
