"""When to refit a model: an order-independent digest of its input, and the reuse rule."""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def frame_digest(frame: DataFrame, columns: list[str]) -> str:
    """An order-independent digest of ``frame``'s rows over ``columns``.

    A count and an exact (decimal) sum of per-row hashes: the same rows in any order and
    partitioning give the same digest; any changed, added or removed row changes it.
    """
    summary = frame.select(
        F.count("*").alias("rows"),
        F.sum(F.xxhash64(*columns).cast("decimal(38,0)")).alias("hash_sum"),
    ).first()
    return f"{summary['rows']}:{summary['hash_sum']}"


def reuses_previous(
    refit: str,
    previous_model: Any | None,
    previous_report: dict[str, Any] | None,
    digest: str,
    settings: dict[str, Any],
) -> bool:
    """Whether ``on_change`` keeps the last run's model: same input digest and settings.

    ``previous_report`` is the report saved with that model, holding ``input_digest``
    and ``settings`` as this run would record them.
    """
    previous = previous_report or {}
    return (
        refit == "on_change"
        and previous_model is not None
        and previous.get("input_digest") == digest
        and previous.get("settings") == settings
    )
