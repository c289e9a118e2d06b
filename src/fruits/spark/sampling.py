"""Small, bounded selections of the distributed tables, for figures and notebooks."""

from __future__ import annotations

import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def first_images_per_label(
    images: DataFrame, max_classes: int, per_class: int
) -> list[tuple[str, bytes]]:
    """``(label, content)`` of the first ``per_class`` images (by path) of the first
    ``max_classes`` labels (alphabetically): at most ``max_classes * per_class`` rows."""
    first_images = Window.partitionBy("label").orderBy("path")
    chosen_labels = images.select("label").distinct().orderBy("label").limit(max_classes)
    # Chosen by name first: only the chosen images' bytes are read afterwards.
    chosen = (
        images.select("label", "path")
        .join(chosen_labels, "label")
        .withColumn("rank", F.row_number().over(first_images))
        .where(F.col("rank") <= per_class)
        .collect()
    )
    rank = {row["path"]: (row["label"], row["rank"]) for row in chosen}
    contents = {
        row["path"]: row["content"]
        for row in images.where(F.col("path").isin(list(rank))).select("path", "content").collect()
    }
    samples = [
        {"label": label, "content": contents[path]}
        for path, (label, _) in sorted(rank.items(), key=lambda item: item[1])
    ]
    return [(row["label"], row["content"]) for row in samples]


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
