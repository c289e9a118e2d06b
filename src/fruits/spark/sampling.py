"""Small, bounded selections of the distributed tables, for figures and notebooks."""

from __future__ import annotations

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fruits.spark.listing import RawFiles


def first_images_per_label(
    images: DataFrame, max_classes: int, per_class: int
) -> list[tuple[str, bytes]]:
    """``(label, content)`` of the first ``per_class`` images (by path) of the first
    ``max_classes`` labels (alphabetically): at most ``max_classes * per_class`` rows."""
    # One aggregation chooses by name (paths only); then only the chosen images' bytes are
    # read. A window over every image would shuffle the whole table for a handful of rows.
    first_paths = F.slice(F.array_sort(F.collect_list("path")), 1, per_class)
    chosen = (
        images.groupBy("label")
        .agg(first_paths.alias("paths"))
        .orderBy("label")
        .limit(max_classes)
        .collect()
    )
    # Already in display order: labels sorted by the query, each label's paths by array_sort.
    chosen_paths = [(row["label"], path) for row in chosen for path in row["paths"]]
    wanted = [path for _, path in chosen_paths]
    contents = images.where(F.col("path").isin(wanted)).select("path", "content").collect()
    by_path = {row["path"]: row["content"] for row in contents}
    return [(label, by_path[path]) for label, path in chosen_paths]


def first_two_components(
    pca_features: DataFrame, max_points: int, seed: int
) -> tuple[pd.DataFrame, int]:
    """A random sample of about ``max_points`` images (``label``, ``pc1``, ``pc2``), and
    how many images there are in all. Only the sample reaches the driver."""
    total = pca_features.count()
    sample = (
        pca_features.sample(fraction=min(1.0, max_points / max(total, 1)), seed=seed)
        .select(
            "label", F.col("pca_features")[0].alias("pc1"), F.col("pca_features")[1].alias("pc2")
        )
        .limit(max_points)
        .toPandas()
    )
    return sample, total


def calibration_contents(raw_files: RawFiles, count: int, test_split: str) -> list[bytes]:
    """The bytes of about ``count`` image files for calibrating a quantized backbone.

    Chosen by a digest of their path: spread over the classes, the same files on every run
    and machine, none in a folder named ``test_split`` (what the classifier is scored on).
    Only the chosen files are read.
    """
    segments = F.split("path", "/")
    in_test = F.array_contains(segments, test_split)
    # Class folder and file name: the same choice wherever the folder is mounted.
    name = F.concat_ws("/", F.element_at(segments, -2), F.element_at(segments, -1))
    chosen = (
        raw_files.listing()
        .where((F.col("size") > 0) & ~in_test)
        .orderBy(F.sha2(name, 256), "path")
        .limit(count)
        .select("path")
        .collect()
    )
    read = raw_files.read([row["path"] for row in chosen]).select("content").collect()
    return [bytes(row["content"]) for row in read if row["content"]]
