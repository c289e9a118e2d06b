"""Small, bounded selections of the distributed tables, for figures and notebooks."""

from __future__ import annotations

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F


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
    pca_features: DataFrame, total: int, max_points: int, seed: int
) -> pd.DataFrame:
    """A random sample of about ``max_points`` of the ``total`` images (``label``, ``pc1``,
    ``pc2``): one query, and only the sample reaches the driver."""
    return (
        pca_features.sample(fraction=min(1.0, max_points / max(total, 1)), seed=seed)
        .select(
            "label", F.col("pca_features")[0].alias("pc1"), F.col("pca_features")[1].alias("pc2")
        )
        .limit(max_points)
        .toPandas()
    )


def calibration_contents(images: DataFrame, count: int, train_split: str) -> list[bytes]:
    """The bytes of up to ``count`` images of ``train_split``, to calibrate a quantized backbone.

    Chosen by a digest of their class folder and file name: spread over the classes, the
    same images wherever the folder is mounted, in the same order. Only they are read.
    """
    segments = F.split("path", "/")
    name = F.concat_ws("/", F.element_at(segments, -2), F.element_at(segments, -1))
    chosen = (
        images.where((F.col("split") == train_split) & (F.col("size") > 0))
        .select(F.sha2(name, 256).alias("digest"), "path", "content")
        .orderBy("digest", "path")
        .limit(count)
        .collect()
    )
    return [bytes(row["content"]) for row in sorted(chosen, key=lambda row: (row[0], row[1]))]
